//! Capability-shaped store traits. The gateway's backends (PostgreSQL, SQLite) implement each
//! of them and pass one conformance suite. Secrets reach a store only as hashes or as
//! [`EncryptedBlob`]s.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::crypto::EncryptedBlob;
use crate::domain::{DeliveryStatus, Integration, IntegrationState, MessageKind};
use crate::error::StoreError;
use crate::ids::{
    BusinessId, ChannelName, ConversationId, EventId, IntegrationId, JobId, MessageId,
};

mod work;

pub use work::{
    Accepted, AccountRecord, Arrival, Committed, FollowUp, JobEnd, Outgoing, ReplyDraft,
    StatusReport, StatusSet, Stored, Work, commit_part_by_part, is_placeholder,
};

pub type StoreResult<T> = Result<T, StoreError>;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// SHA-256 of a secret used for look-ups (API key, OAuth state, session nonce, webhook secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    #[must_use]
    pub fn of(secret: &[u8]) -> Self {
        Self(crate::crypto::sha256(secret))
    }
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_business(&self, name: &str) -> StoreResult<Business>;
    async fn get_business(&self, id: BusinessId) -> StoreResult<Option<Business>>;
    /// Stores an API key by its hash.
    async fn add_api_key(
        &self,
        business: BusinessId,
        key_hash: SecretHash,
        label: &str,
    ) -> StoreResult<()>;
    /// The business owning a (non-revoked) API key.
    async fn business_by_api_key(&self, key_hash: SecretHash) -> StoreResult<Option<BusinessId>>;
}

/// What a successful connect writes.
#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    pub business_id: BusinessId,
    pub channel: ChannelName,
    pub channel_name: Option<String>,
    pub account_id: String,
    pub parent_account_id: Option<String>,
    pub details: serde_json::Value,
    pub credentials: EncryptedBlob,
    pub webhook_secret_hash: Option<SecretHash>,
    pub token_expires_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Creates the business's integration for the channel, or updates and reactivates the one
    /// it already has (re-auth keeps the id and the history).
    ///
    /// Fails with `Conflict(AccountInUse)` when the account is active for another business.
    async fn save_connection(&self, record: ConnectionRecord) -> StoreResult<Integration>;
    /// The business's integration for the channel (active or the latest inactive one).
    async fn integration_for(
        &self,
        business: BusinessId,
        channel: &ChannelName,
    ) -> StoreResult<Option<Integration>>;
    async fn integration_by_id(&self, id: IntegrationId) -> StoreResult<Option<Integration>>;
    async fn list_integrations(&self, business: BusinessId) -> StoreResult<Vec<Integration>>;
    /// The active integration holding a provider account (routing by phone number id / bot id).
    async fn active_by_account(
        &self,
        channel: &ChannelName,
        account_id: &str,
    ) -> StoreResult<Option<Integration>>;
    /// The active integration whose webhook secret hashes to `hash`.
    async fn active_by_webhook_secret(
        &self,
        channel: &ChannelName,
        hash: SecretHash,
    ) -> StoreResult<Option<Integration>>;
    /// The encrypted credentials of an active integration.
    async fn credentials(&self, id: IntegrationId) -> StoreResult<Option<EncryptedBlob>>;
    /// Deactivates, wipes credentials and the webhook secret, state `not_connected`.
    async fn deactivate(&self, id: IntegrationId, last_error: Option<&str>) -> StoreResult<()>;
    async fn set_state(
        &self,
        id: IntegrationId,
        state: IntegrationState,
        reason: Option<&str>,
    ) -> StoreResult<()>;
    async fn set_last_error(&self, id: IntegrationId, error: Option<&str>) -> StoreResult<()>;
    async fn set_token_expiry(
        &self,
        id: IntegrationId,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    async fn touch_webhook(&self, id: IntegrationId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Records something the provider said about the account (bot blocked, template status,
    /// quality rating, webhook-level error).
    async fn record_integration_event(
        &self,
        id: IntegrationId,
        kind: &str,
        summary: &str,
        payload: &serde_json::Value,
    ) -> StoreResult<()>;
    /// The integration's most recent account events, newest first.
    async fn integration_events(
        &self,
        id: IntegrationId,
        limit: u32,
    ) -> StoreResult<Vec<IntegrationEvent>>;
    /// Active, connected integrations whose token expires before `before`.
    async fn expiring_before(&self, before: DateTime<Utc>) -> StoreResult<Vec<Integration>>;
}

/// An account event recorded on an integration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntegrationEvent {
    pub kind: String,
    pub summary: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A pending OAuth state, bound to a business, a channel and a browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthState {
    pub state_hash: SecretHash,
    pub business_id: BusinessId,
    pub channel: ChannelName,
    pub session_hash: SecretHash,
    pub expires_at: DateTime<Utc>,
}

/// An account choice waiting for the business (several phone numbers after OAuth).
#[derive(Debug, Clone)]
pub struct PendingChoice {
    pub business_id: BusinessId,
    pub channel: ChannelName,
    pub pending: EncryptedBlob,
    pub options: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait OAuthStore: Send + Sync {
    async fn put_oauth_state(&self, state: OAuthState) -> StoreResult<()>;
    /// Removes and returns the state if it exists and has not expired at `now` (single use:
    /// a second take of the same state finds nothing).
    async fn take_oauth_state(
        &self,
        state_hash: SecretHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OAuthState>>;
    /// Replaces the business's pending choice for the channel.
    async fn put_pending_choice(&self, choice: PendingChoice) -> StoreResult<()>;
    async fn pending_choice(
        &self,
        business: BusinessId,
        channel: &ChannelName,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PendingChoice>>;
    async fn clear_pending_choice(
        &self,
        business: BusinessId,
        channel: &ChannelName,
    ) -> StoreResult<()>;
}

/// Processing state of an inbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// Stored, not processed yet.
    Pending,
    /// Parsed and applied.
    Processed,
    /// Authentic but could not be parsed; kept for replay.
    Quarantined,
    /// Authentic but for no active integration.
    Unrouted,
}

impl InboxState {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Quarantined => "quarantined",
            Self::Unrouted => "unrouted",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "processed" => Self::Processed,
            "quarantined" => Self::Quarantined,
            "unrouted" => Self::Unrouted,
            _ => return None,
        })
    }
}

/// A webhook body to store: exactly the bytes received.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent {
    pub channel: ChannelName,
    /// Known at receipt when the request was routed by a per-integration secret.
    pub integration_id: Option<IntegrationId>,
    pub body: bytes::Bytes,
    pub received_at: DateTime<Utc>,
}

/// A stored webhook body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: EventId,
    pub channel: ChannelName,
    pub integration_id: Option<IntegrationId>,
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
    pub state: InboxState,
    pub attempts: i32,
    pub error: Option<String>,
}

#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Durably stores a webhook body; returns once it is committed.
    async fn insert_webhook_event(&self, event: NewWebhookEvent) -> StoreResult<EventId>;
    async fn webhook_event(&self, id: EventId) -> StoreResult<Option<WebhookEvent>>;
    /// Leases up to `limit` pending events (oldest first) for `lease`; a crashed worker's
    /// events come back when the lease ends.
    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>>;
    /// Records the outcome of processing an event.
    async fn finish_webhook_event(
        &self,
        id: EventId,
        state: InboxState,
        error: Option<&str>,
    ) -> StoreResult<()>;
    /// Events in a state, newest first (the quarantine list), optionally only one channel's.
    async fn webhook_events_in_state(
        &self,
        state: InboxState,
        limit: u32,
    ) -> StoreResult<Vec<WebhookEvent>>;
    /// Puts a quarantined or unrouted event back to pending.
    async fn requeue_webhook_event(&self, id: EventId) -> StoreResult<bool>;
    /// Deletes up to `limit` processed events received before `before`, oldest first; returns
    /// how many. Events in any other state are kept whatever their age: pending ones are still
    /// to be processed, quarantined and unrouted ones are listed for an operator to act on.
    async fn delete_processed_webhook_events(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64>;
}

/// A conversation with one external chat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub business_id: BusinessId,
    pub integration_id: IntegrationId,
    pub channel_type: ChannelName,
    pub external_chat_id: String,
    pub contact_name: Option<String>,
    pub last_message_at: Option<DateTime<Utc>>,
    /// When the provider's reply window closes (WhatsApp: 24 h after the last inbound).
    pub window_expires_at: Option<DateTime<Utc>>,
    pub unreachable: bool,
    pub created_at: DateTime<Utc>,
}

/// Upsert of a conversation when a message arrives or is sent.
#[derive(Debug, Clone)]
pub struct ConversationUpsert {
    pub business_id: BusinessId,
    pub integration_id: IntegrationId,
    pub channel_type: ChannelName,
    pub external_chat_id: String,
    pub contact_name: Option<String>,
    pub last_message_at: DateTime<Utc>,
    /// A new window end, when this message opens or extends one.
    pub window_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: ConversationId,
    pub integration_id: IntegrationId,
    pub direction: Direction,
    pub provider_message_id: Option<String>,
    pub kind: MessageKind,
    pub text: Option<String>,
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    pub provider_timestamp: Option<DateTime<Utc>>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub integration_id: IntegrationId,
    pub direction: Direction,
    pub provider_message_id: Option<String>,
    #[serde(serialize_with = "serialize_kind")]
    pub kind: MessageKind,
    pub text: Option<String>,
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    pub status_at: Option<DateTime<Utc>>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub provider_timestamp: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn serialize_kind<S: serde::Serializer>(kind: &MessageKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// Whether an insert created a row or found the provider id already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New(MessageId),
    Duplicate(MessageId),
}

/// A status change reported by the provider.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    pub integration_id: IntegrationId,
    pub provider_message_id: &'a str,
    pub status: DeliveryStatus,
    pub at: DateTime<Utc>,
    pub error_code: Option<&'a str>,
    pub error_reason: Option<&'a str>,
}

/// A page request: items strictly older than `before` (by id), at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Page<T> {
    pub before: Option<T>,
    pub limit: u32,
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn upsert_conversation(&self, upsert: ConversationUpsert) -> StoreResult<Conversation>;
    async fn conversation(
        &self,
        business: BusinessId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>>;
    /// The conversation of an integration with an external chat, if any.
    async fn conversation_by_chat(
        &self,
        integration: IntegrationId,
        external_chat_id: &str,
    ) -> StoreResult<Option<Conversation>>;
    /// Newest activity first.
    async fn list_conversations(
        &self,
        business: BusinessId,
        page: Page<ConversationId>,
    ) -> StoreResult<Vec<Conversation>>;
    async fn set_unreachable(&self, id: ConversationId, unreachable: bool) -> StoreResult<()>;
    /// Inserts a message once per (integration, provider id); a repeat returns the first id.
    async fn insert_message(&self, message: NewMessage) -> StoreResult<Inserted>;
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// Newest first.
    async fn list_messages(
        &self,
        conversation: ConversationId,
        page: Page<MessageId>,
    ) -> StoreResult<Vec<Message>>;
    /// Sets the provider id once a send is accepted.
    async fn set_provider_message_id(&self, id: MessageId, provider_id: &str) -> StoreResult<()>;
    /// Applies a status monotonically: only a later step (or `failed`) replaces the current
    /// one, ordered by progress; returns whether the row changed.
    async fn apply_status(&self, change: StatusChange<'_>) -> StoreResult<bool>;
    /// Sets a status directly for gateway-side outcomes (queued → uncertain, failed).
    async fn set_message_status(
        &self,
        id: MessageId,
        status: DeliveryStatus,
        error_code: Option<&str>,
        error_reason: Option<&str>,
    ) -> StoreResult<()>;
}

/// State of a job row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    /// Waiting for the integration to be re-authorised.
    Held,
    Done,
    /// Out of attempts or permanently failed; retryable from the API.
    Dead,
}

impl JobState {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Held => "held",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "held" => Self::Held,
            "done" => Self::Done,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What to do: `send`, `respond`, ...
    pub kind: String,
    pub business_id: BusinessId,
    pub integration_id: Option<IntegrationId>,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
    /// A key that makes the job exist at most once (e.g. "reply to message X").
    pub dedupe_key: Option<String>,
    /// Jobs sharing a queue key run one at a time, in creation order (e.g. one conversation's
    /// replies): a job is not claimed while an earlier job of its queue is pending, running or
    /// held.
    pub queue_key: Option<String>,
    pub max_attempts: i32,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub business_id: BusinessId,
    pub integration_id: Option<IntegrationId>,
    pub payload: serde_json::Value,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub dedupe_key: Option<String>,
    pub queue_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Enqueues a job; `Conflict(DuplicateJob)` when the dedupe key exists.
    async fn enqueue_job(&self, job: NewJob) -> StoreResult<JobId>;
    async fn job(&self, id: JobId) -> StoreResult<Option<Job>>;
    /// Leases up to `limit` due jobs (pending with `run_at <= now`, or running with an expired
    /// lease), counting an attempt; each job goes to one claimer only.
    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>>;
    async fn complete_job(&self, id: JobId) -> StoreResult<()>;
    /// Back to pending at `run_at`, recording the error.
    async fn retry_job(&self, id: JobId, run_at: DateTime<Utc>, error: &str) -> StoreResult<()>;
    /// Back to pending without counting the attempt (shutdown).
    async fn release_job(&self, id: JobId) -> StoreResult<()>;
    /// Back to pending at `run_at` without counting the attempt (the rate governor said
    /// "not yet").
    async fn postpone_job(&self, id: JobId, run_at: DateTime<Utc>) -> StoreResult<()>;
    async fn kill_job(&self, id: JobId, error: &str) -> StoreResult<()>;
    /// Holds the job until its integration is re-authorised.
    async fn hold_job(&self, id: JobId, error: &str) -> StoreResult<()>;
    /// Releases every held job of an integration; returns how many.
    async fn release_held_jobs(
        &self,
        integration: IntegrationId,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    async fn list_jobs(
        &self,
        business: BusinessId,
        state: JobState,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// A dead job of this business back to pending with a fresh attempt budget.
    async fn retry_dead_job(
        &self,
        business: BusinessId,
        id: JobId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

/// Everything a backend provides.
#[async_trait]
pub trait Store:
    TenantStore
    + IntegrationStore
    + OAuthStore
    + InboxStore
    + ConversationStore
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

    /// The integrations with these ids that exist, in no particular order.
    ///
    /// # Errors
    /// A store failure.
    async fn integrations_by_ids(&self, ids: &[IntegrationId]) -> StoreResult<Vec<Integration>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(self.integration_by_id(*id).await?);
        }
        Ok(found)
    }

    /// The encrypted credentials of those of these integrations that are active and hold
    /// some ([`IntegrationStore::credentials`] for many integrations at once), in no
    /// particular order.
    ///
    /// # Errors
    /// A store failure.
    async fn credentials_by_ids(
        &self,
        ids: &[IntegrationId],
    ) -> StoreResult<Vec<(IntegrationId, EncryptedBlob)>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(blob) = self.credentials(*id).await? {
                found.push((*id, blob));
            }
        }
        Ok(found)
    }

    /// The active integrations of `channel` holding these accounts, in no particular order
    /// ([`IntegrationStore::active_by_account`] for many accounts at once).
    ///
    /// # Errors
    /// A store failure.
    async fn active_by_accounts(
        &self,
        channel: &ChannelName,
        accounts: &[String],
    ) -> StoreResult<Vec<Integration>> {
        let mut found = Vec::with_capacity(accounts.len());
        for account in accounts {
            found.extend(self.active_by_account(channel, account).await?);
        }
        Ok(found)
    }

    /// The messages with these ids that exist, in no particular order.
    ///
    /// # Errors
    /// A store failure.
    async fn messages_by_ids(&self, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(self.message(*id).await?);
        }
        Ok(found)
    }

    /// The conversations with these (business, id) pairs that exist, in no particular order.
    ///
    /// # Errors
    /// A store failure.
    async fn conversations_by_ids(
        &self,
        ids: &[(BusinessId, ConversationId)],
    ) -> StoreResult<Vec<Conversation>> {
        let mut found = Vec::with_capacity(ids.len());
        for (business, id) in ids {
            found.extend(self.conversation(*business, *id).await?);
        }
        Ok(found)
    }
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend())
    }
}
