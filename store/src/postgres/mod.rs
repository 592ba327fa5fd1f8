//! The PostgreSQL backend: for production and for any number of gateway instances sharing one
//! database. Queues (inbox, jobs) are claimed with `FOR UPDATE SKIP LOCKED` under a lease.
//!
//! [`PgStore::pool`] exposes the pool for what lives beside the store traits (LISTEN/NOTIFY
//! wake-ups of the workers).

mod conversations;
mod error;
mod inbox;
mod integrations;
mod jobs;
mod oauth;
mod tenants;
mod work;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use switchboard_core::StoreError;
use switchboard_core::crypto::EncryptedBlob;
use switchboard_core::domain::Integration;
use switchboard_core::store::{Committed, Conversation, Message, Store, StoreResult, Work};
use switchboard_core::{BusinessId, ChannelName, ConversationId, IntegrationId, MessageId};

use crate::common;
pub(crate) use error::db;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// How long an acquire waits for a free connection before `Unavailable`.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Begins a transaction on a connection from `pool` whose planner has `methods` (its
/// `enable_*` settings) switched off until the transaction ends: for statements whose right
/// plan is known whatever the statistics say. `BEGIN` and the settings travel as one simple
/// query, so this costs no round trip more than `pool.begin()`.
pub(crate) async fn begin_planned_without(
    pool: &PgPool,
    methods: &[PlannerMethod],
) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut statement = String::from("BEGIN");
    for method in methods {
        statement.push_str("; SET LOCAL ");
        statement.push_str(method.setting());
        statement.push_str(" = off");
    }
    pool.begin_with(statement).await.map_err(db)
}

/// A planner method [`begin_planned_without`] can switch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlannerMethod {
    SeqScan,
    BitmapScan,
    Sort,
    HashJoin,
    MergeJoin,
}

impl PlannerMethod {
    /// The planner's setting for the method.
    const fn setting(self) -> &'static str {
        match self {
            Self::SeqScan => "enable_seqscan",
            Self::BitmapScan => "enable_bitmapscan",
            Self::Sort => "enable_sort",
            Self::HashJoin => "enable_hashjoin",
            Self::MergeJoin => "enable_mergejoin",
        }
    }
}

/// What a batch of reads or writes by key leaves the planner: one index probe per key. A
/// batch touches at most a few hundred rows, each by a key with an index. Without statistics
/// (a young database), while the tables are mid-sized, or with the plan a prepared statement
/// settled on while its table was nearly empty, the planner would rather hash a whole table
/// than probe its index once per array element, and every batch would then read every row.
/// Probing is right at any size.
pub(crate) const PROBE_BY_KEY: [PlannerMethod; 3] = [
    PlannerMethod::SeqScan,
    PlannerMethod::HashJoin,
    PlannerMethod::MergeJoin,
];

/// Runs a queue's claim (`sql`, an `… ORDER BY … LIMIT … FOR UPDATE SKIP LOCKED` over the
/// queue's partial index, with `bind` adding its parameters) in a transaction whose planner
/// walks that index in order and stops at the limit, whatever the statistics say.
///
/// Left to its estimates, the planner would rather read every pending row and sort them
/// whenever it believes there are few: while the table is young, after a flood it has not
/// analysed yet, or with the plan it settled on for a prepared statement while the table was
/// nearly empty. Under a flood that is the whole backlog, on every claim: measured, 450 ms per
/// claim of 16 rows with 200,000 inbox rows pending, against 0.2 ms walking the index
/// (BENCHMARKS.md, "The queue claims' plans"). Two round trips more per claim.
async fn claim_in_index_order<'q>(
    pool: &PgPool,
    sql: &'q str,
    bind: impl FnOnce(PgQuery<'q>) -> PgQuery<'q>,
) -> StoreResult<Vec<PgRow>> {
    const CLAIM: [PlannerMethod; 3] = [
        PlannerMethod::SeqScan,
        PlannerMethod::BitmapScan,
        PlannerMethod::Sort,
    ];
    fetch_all_planned_without(pool, &CLAIM, sql, bind).await
}

/// A statement with its parameters still to bind.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The rows of `sql` (with `bind` adding its parameters), run alone in a transaction begun by
/// [`begin_planned_without`] with `methods` off.
pub(crate) async fn fetch_all_planned_without<'q>(
    pool: &PgPool,
    methods: &[PlannerMethod],
    sql: &'q str,
    bind: impl FnOnce(PgQuery<'q>) -> PgQuery<'q>,
) -> StoreResult<Vec<PgRow>> {
    let mut tx = begin_planned_without(pool, methods).await?;
    let rows = bind(sqlx::query(sql))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(rows)
}

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The group-commit writers of `insert_webhook_event`, shared by every clone.
    inbox: inbox::InboxWriter,
    /// When abandoned jobs were last buried (the `now` of that claim), shared by every clone.
    buried_at: std::sync::Arc<std::sync::Mutex<Option<DateTime<Utc>>>>,
}

impl PgStore {
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
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| common::config_error("malformed PostgreSQL URL".into()))?;
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
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool.
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            inbox: inbox::InboxWriter::default(),
            buried_at: std::sync::Arc::default(),
        }
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(common::from_migrate)
    }

    async fn ready(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .map_err(|_| StoreError::Unavailable("migrations have not been applied".into()))?;
        common::check_applied(&MIGRATOR, &applied)
    }

    fn atomic_units(&self) -> bool {
        true
    }

    async fn commit(&self, work: Work) -> StoreResult<Committed> {
        self.commit_unit(work).await
    }

    async fn integrations_by_ids(&self, ids: &[IntegrationId]) -> StoreResult<Vec<Integration>> {
        self.integrations_by_id_list(ids).await
    }

    async fn credentials_by_ids(
        &self,
        ids: &[IntegrationId],
    ) -> StoreResult<Vec<(IntegrationId, EncryptedBlob)>> {
        self.credentials_by_id_list(ids).await
    }

    async fn active_by_accounts(
        &self,
        channel: &ChannelName,
        accounts: &[String],
    ) -> StoreResult<Vec<Integration>> {
        self.active_by_account_list(channel, accounts).await
    }

    async fn messages_by_ids(&self, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
        self.messages_by_id_list(ids).await
    }

    async fn conversations_by_ids(
        &self,
        ids: &[(BusinessId, ConversationId)],
    ) -> StoreResult<Vec<Conversation>> {
        self.conversations_by_id_list(ids).await
    }
}

/// A timestamp as stored: truncated to microseconds.
pub(crate) fn ts(at: DateTime<Utc>) -> DateTime<Utc> {
    common::truncate(at)
}

pub(crate) fn opt_ts(at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    at.map(ts)
}

/// `NotFound` when an update by id touched no row.
pub(crate) fn one_row(result: &sqlx::postgres::PgQueryResult) -> StoreResult<()> {
    if result.rows_affected() == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Reads a column.
pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(db)
}

/// Reads a timestamp column.
pub(crate) fn get_ts(row: &PgRow, column: &str) -> StoreResult<DateTime<Utc>> {
    get(row, column)
}

/// Reads a nullable timestamp column.
pub(crate) fn get_opt_ts(row: &PgRow, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    get(row, column)
}
