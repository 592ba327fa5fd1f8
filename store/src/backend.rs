//! What each backend supplies beside the statements both share: its pool, and the operations
//! that differ in kind (queue claims, the inbox insert, units of work, wake-ups).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::EventId;
use switchboard_core::store::{Committed, Job, NewWebhookEvent, StoreResult, WebhookEvent, Work};

use crate::SqlStore;
use crate::sql::Db;

/// A database backend of [`SqlStore`]: PostgreSQL or SQLite. Sealed: the two are the set.
#[async_trait]
pub trait Backend: std::fmt::Debug + Clone + Send + Sync + Sized + 'static {
    /// `postgres` or `sqlite` ([`switchboard_core::store::Store::backend`]).
    const NAME: &'static str;

    /// The pool, for the statements both backends share.
    fn db(&self) -> Db<'_>;

    /// Durably stores a webhook body; returns once it is committed.
    async fn insert_webhook_event(&self, event: NewWebhookEvent) -> StoreResult<EventId>;

    /// Leases up to `limit` pending inbox rows, oldest first.
    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>>;

    /// Puts a quarantined or unrouted row back to pending (and announces it where other
    /// instances need to know).
    async fn requeue_webhook_event(&self, id: EventId) -> StoreResult<bool>;

    /// Leases up to `limit` due jobs, each to one claimer only.
    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>>;

    /// Whether [`Backend::commit`] applies a unit in one transaction.
    fn atomic_units(&self) -> bool;

    /// What this backend's wake-ups to other instances carry, if they leave the process.
    fn wake_up_tag(&self) -> Option<&str>;

    /// Applies a unit of work.
    async fn commit(&self, store: &SqlStore<Self>, work: Work) -> StoreResult<Committed>;
}
