//! The PostgreSQL backend: for production and for any number of gateway instances sharing one
//! database. What differs in kind from SQLite lives here: queue claims with `FOR UPDATE SKIP
//! LOCKED` under a lease (`claims`), the group-commit inbox writer (`inbox`), units of work as
//! set-based statements in one transaction (`work`), and the pool's session settings.
//!
//! [`PgStore::pool`](crate::PgStore::pool) exposes the pool for what lives beside the store
//! traits (LISTEN/NOTIFY wake-ups of the workers).

mod claims;
mod inbox;
mod work;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use switchboard_core::EventId;
use switchboard_core::store::{Committed, Job, NewWebhookEvent, StoreResult, WebhookEvent, Work};

use crate::error::db;
use crate::sql::Db;
use crate::{Backend, SqlStore, common};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// How long an acquire waits for a free connection before `Unavailable`.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The planner settings every pooled connection starts its session with.
///
/// Every statement reads or writes by key or walks a queue's partial index in order up to a
/// limit; with scans, sorts and hash and merge joins off, those are the only plans left, so a
/// plan settled while a table was nearly empty cannot turn into a read of the whole backlog.
/// With the plans settled, each statement is planned once per connection (`force_generic_plan`);
/// a statement whose plan would depend on a parameter is written as separate statements.
/// Figures: BENCHMARKS.md, "Planner settings and generic plans".
const SESSION_SETTINGS: [(&str, &str); 6] = [
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("enable_sort", "off"),
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("plan_cache_mode", "force_generic_plan"),
];

/// The PostgreSQL backend of [`SqlStore`].
#[derive(Debug, Clone)]
pub struct PgBackend {
    pool: PgPool,
    /// The group-commit writers of `insert_webhook_event`, shared by every clone.
    inbox: inbox::InboxWriter,
    /// When abandoned jobs were last buried (the `now` of that claim), shared by every clone.
    buried_at: std::sync::Arc<std::sync::Mutex<Option<DateTime<Utc>>>>,
    /// What this store's connections sign their wake-ups with.
    instance: crate::notify::InstanceTag,
}

impl SqlStore<PgBackend> {
    /// Connects to a `postgres://` / `postgresql://` URL with the default pool size (10).
    /// Does not migrate.
    ///
    /// # Errors
    /// `Database` for a malformed URL, `Unavailable` when the server cannot be reached.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with_pool_size(url, 10).await
    }

    /// Connects with at most `max_connections` connections.
    ///
    /// # Errors
    /// As [`PgStore::connect`].
    pub async fn connect_with_pool_size(url: &str, max_connections: u32) -> StoreResult<Self> {
        // The URL may hold a password: it is never part of an error.
        let instance = crate::notify::InstanceTag::new();
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| common::config_error("malformed PostgreSQL URL".into()))?
            .options(SESSION_SETTINGS)
            .options([(crate::notify::INSTANCE_SETTING, instance.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Measured: a ping before every acquire costs 14–25% on the hot path.
            .test_before_acquire(false)
            // A connection's buffers grow to the largest statement or result it carried (a
            // unit of a whole batch, a claimed batch of bodies) and keep that size: released
            // connections give back what is above the driver's 8 KiB, so only connections in
            // use hold large buffers (measured: several MiB of resident memory under load).
            .after_release(|connection, _| {
                Box::pin(async move {
                    sqlx::Connection::shrink_buffers(connection);
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(db)?;
        Ok(Self {
            backend: PgBackend {
                pool,
                inbox: inbox::InboxWriter::default(),
                buried_at: std::sync::Arc::default(),
                instance,
            },
        })
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.backend.pool
    }
}

#[async_trait]
impl Backend for PgBackend {
    const NAME: &'static str = "postgres";

    fn db(&self) -> Db<'_> {
        Db::Postgres(&self.pool)
    }

    async fn insert_webhook_event(&self, event: NewWebhookEvent) -> StoreResult<EventId> {
        let id = EventId::new();
        // Group-committed: when this returns, the row is committed.
        self.inbox.insert(&self.pool, id, event).await?;
        Ok(id)
    }

    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>> {
        claims::webhook_events(&self.pool, limit, lease, now).await
    }

    async fn requeue_webhook_event(&self, id: EventId) -> StoreResult<bool> {
        claims::requeue_webhook_event(&self.pool, id).await
    }

    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>> {
        if self.bury_due(now) {
            claims::bury_abandoned_jobs(&self.pool, now).await?;
        }
        claims::jobs(&self.pool, worker, limit, lease, now).await
    }

    fn atomic_units(&self) -> bool {
        true
    }

    fn wake_up_tag(&self) -> Option<&str> {
        Some(self.instance.as_str())
    }

    async fn commit(&self, _store: &SqlStore<Self>, work: Work) -> StoreResult<Committed> {
        work::commit_unit(&self.pool, work).await
    }
}

impl PgBackend {
    /// Whether this claim should bury abandoned jobs first: at most once a second of claim
    /// time per process. The claim itself never takes a job whose last attempt was abandoned;
    /// burying only makes such jobs `dead` for people to see, and a second's delay is fine.
    fn bury_due(&self, now: DateTime<Utc>) -> bool {
        let mut last = self
            .buried_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last.is_none_or(|at| now < at || now - at >= chrono::Duration::seconds(1));
        if due {
            *last = Some(now);
        }
        due
    }
}

/// A timestamp as stored: truncated to microseconds.
pub(crate) fn ts(at: DateTime<Utc>) -> DateTime<Utc> {
    common::truncate(at)
}

pub(crate) fn opt_ts(at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    at.map(ts)
}
