//! Capability-shaped store traits. The gateway's backends (PostgreSQL, SQLite) implement each
//! of them and pass one conformance suite. Secrets reach a store only as hashes or as
//! [`EncryptedBlob`](crate::crypto::EncryptedBlob)s.
//!
//! One file per capability, with the same name here, in `switchboard-store` and in its
//! conformance suite.

use async_trait::async_trait;

use crate::error::StoreError;

mod conversations;
mod inbox;
mod integrations;
mod jobs;
mod messages;
mod oauth;
mod tenants;
mod work;

pub use conversations::{Conversation, ConversationStore, ConversationUpsert};
pub use inbox::{InboxState, InboxStore, NewWebhookEvent, WebhookEvent};
pub use integrations::{ConnectionRecord, IntegrationEvent, IntegrationStore};
pub use jobs::{Job, JobState, JobStore, NewJob};
pub use messages::{Direction, Inserted, Message, MessageStore, NewMessage, StatusChange};
pub use oauth::{OAuthState, OAuthStore, PendingChoice};
pub use tenants::{Business, SecretHash, TenantStore};

pub use work::{
    Accepted, AccountRecord, Arrival, Committed, FollowUp, JobEnd, Outgoing, ReplyDraft,
    StatusReport, StatusSet, Stored, Work, commit_part_by_part, is_placeholder,
};

pub type StoreResult<T> = Result<T, StoreError>;

/// A page request: items strictly older than `before` (by id), at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Page<T> {
    pub before: Option<T>,
    pub limit: u32,
}

/// Everything a backend provides.
#[async_trait]
pub trait Store:
    TenantStore
    + IntegrationStore
    + OAuthStore
    + InboxStore
    + ConversationStore
    + MessageStore
    + JobStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is (`postgres`, `sqlite`).
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Readiness: the database answers and every migration is applied.
    async fn ready(&self) -> StoreResult<()>;

    /// Whether [`Store::commit`] applies a unit in one transaction (all of it or nothing).
    fn atomic_units(&self) -> bool {
        false
    }

    /// What the wake-ups this store sends to other instances carry (PostgreSQL's `NOTIFY`
    /// payload), so that a listener of this instance can pass over its own: whatever caused
    /// them already woke this instance's workers in process. `None` where wake-ups never leave
    /// the process.
    fn wake_up_tag(&self) -> Option<&str> {
        None
    }

    /// Applies a unit of work (see [`Work`]). The default goes part by part through the other
    /// methods; a backend may apply the whole unit in one transaction.
    ///
    /// # Errors
    /// A store failure; with the default, the parts before it stay applied.
    async fn commit(&self, work: Work) -> StoreResult<Committed> {
        commit_part_by_part(self, work).await
    }
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend())
    }
}
