//! The SQLite backend: one database file in WAL mode, for a single gateway instance (the
//! sandbox, small deployments). Ids are 16-byte UUID blobs, timestamps INTEGER microseconds
//! since the epoch, JSON TEXT, booleans INTEGER (see `migrations/sqlite`).
//!
//! What differs in kind from PostgreSQL: SQLite has one writer at a time, so queue claims run
//! inside `BEGIN IMMEDIATE` (`claims`), every insert is its own commit, and units of work are
//! applied part by part.

mod claims;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use switchboard_core::store::{
    Committed, Job, NewWebhookEvent, StoreResult, WebhookEvent, Work, commit_part_by_part,
};
use switchboard_core::{EventId, StoreError};

use crate::error::db;
use crate::sql::Db;
use crate::{Backend, SqlStore, common};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a writer waits for the lock before giving up with `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the database file (`0600`) and the directories above it (`0700`) where missing, so
/// that SQLite, whose WAL and shared-memory files take the database file's mode, makes no file
/// other users can read. Existing files and directories keep their modes.
fn create_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// The SQLite backend of [`SqlStore`].
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
}

impl SqlStore<SqliteBackend> {
    /// Opens (creating the file and its directory if missing) the database of a
    /// `sqlite://relative/path.db` or `sqlite:///absolute/path.db` URL. Does not migrate.
    ///
    /// # Errors
    /// `Database` for a malformed URL, `Unavailable` when the file cannot be opened.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::open_file(&path_of(url)?).await
    }

    /// Opens (creating it and its directory if missing) the database file at `path`.
    ///
    /// # Errors
    /// `Unavailable` when the directory or the file cannot be created or opened.
    pub async fn open_file(path: &Path) -> StoreResult<Self> {
        create_private(path).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", path.display()))
        })?;
        // WAL with synchronous=FULL: a webhook is acknowledged as soon as its insert commits,
        // and the provider will not send it again, so a commit must survive a power loss too,
        // not only a crash of the process (which NORMAL would already cover). The cost is one
        // WAL fsync per commit.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // Measured: a ping before every acquire costs 14–25% on the hot path.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db)?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool (it must enable foreign keys).
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            backend: SqliteBackend { pool },
        }
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.backend.pool
    }
}

/// The file path of a `sqlite://` URL (query parameters are not supported).
fn path_of(url: &str) -> StoreResult<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| common::config_error("a SQLite URL starts with sqlite://".into()))?;
    if rest.is_empty() || rest.contains('?') {
        return Err(common::config_error(
            "a SQLite URL is sqlite://relative/path.db or sqlite:///absolute/path.db".into(),
        ));
    }
    Ok(PathBuf::from(rest))
}

#[async_trait]
impl Backend for SqliteBackend {
    const NAME: &'static str = "sqlite";

    fn db(&self) -> Db<'_> {
        Db::Sqlite(&self.pool)
    }

    async fn insert_webhook_event(&self, event: NewWebhookEvent) -> StoreResult<EventId> {
        let id = EventId::new();
        // Autocommit: when this returns, the row is committed (and, with synchronous=FULL,
        // on disk).
        self.db()
            .query(
                "INSERT INTO webhook_events (id, channel, integration_id, body, received_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id.as_uuid())
            .bind(event.channel.as_str())
            .bind(event.integration_id.map(|i| i.as_uuid()))
            .bind(&event.body[..])
            .bind_time(event.received_at)
            .execute()
            .await?;
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
        // One instance: its workers are woken in process.
        let requeued = self
            .db()
            .query(crate::inbox::REQUEUE)
            .bind(id.as_uuid())
            .execute()
            .await?;
        Ok(requeued > 0)
    }

    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>> {
        claims::jobs(&self.pool, worker, limit, lease, now).await
    }

    fn atomic_units(&self) -> bool {
        false
    }

    fn wake_up_tag(&self) -> Option<&str> {
        None
    }

    async fn commit(&self, store: &SqlStore<Self>, work: Work) -> StoreResult<Committed> {
        commit_part_by_part(store, work).await
    }
}

/// A timestamp as stored: microseconds since the epoch.
fn ts(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_relative_and_absolute_paths() {
        assert_eq!(
            path_of("sqlite://data/s.db").unwrap(),
            Path::new("data/s.db")
        );
        assert_eq!(
            path_of("sqlite:///var/s.db").unwrap(),
            Path::new("/var/s.db")
        );
        assert!(path_of("sqlite://").is_err());
        assert!(path_of("postgres://x").is_err());
    }
}
