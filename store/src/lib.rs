//! `switchboard-store`: the database backends of Switchboard.
//!
//! One store type, [`SqlStore`], implements every store trait of `switchboard-core` over the
//! tables of `migrations/` and passes one conformance suite (`tests/conformance/`). It is
//! generic over its [`Backend`]:
//!
//! - [`PgStore`] — PostgreSQL, for any number of gateway instances sharing one database
//!   (queues are claimed with `FOR UPDATE SKIP LOCKED`, units are set-based transactions);
//! - [`SqliteStore`] — an embedded SQLite file in WAL mode, for single-instance and sandbox use.
//!
//! Each capability's statements and row mapping are written once, in the file of its name
//! (`tenants`, `integrations`, `oauth`, `inbox`, `conversations`, `messages`, `jobs`), through
//! the two-driver executor of `sql`; the backend modules hold only what differs in kind.
//! [`open`] picks the backend from the database URL. Driver errors become [`StoreError`]s in
//! one function (`error`); unique-rule violations become `StoreError::Conflict`.

mod backend;
mod common;
mod conversations;
mod error;
mod inbox;
mod integrations;
mod jobs;
mod messages;
pub mod notify;
mod oauth;
pub mod postgres;
mod sql;
pub mod sqlite;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::StoreError;
use switchboard_core::store::{Committed, Store, StoreResult, Work};

pub use backend::Backend;
pub use notify::{Subscription, Topic, subscribe};
pub use postgres::PgBackend;
pub use sqlite::SqliteBackend;

/// The store: the statements both backends share, over a backend `B`.
#[derive(Debug, Clone)]
pub struct SqlStore<B> {
    backend: B,
}

/// The PostgreSQL store.
pub type PgStore = SqlStore<PgBackend>;
/// The SQLite store.
pub type SqliteStore = SqlStore<SqliteBackend>;

impl<B: Backend> SqlStore<B> {
    pub(crate) fn db(&self) -> sql::Db<'_> {
        self.backend.db()
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.db().migrate().await
    }

    async fn ready(&self) -> StoreResult<()> {
        self.db().ready().await
    }

    fn atomic_units(&self) -> bool {
        self.backend.atomic_units()
    }

    fn wake_up_tag(&self) -> Option<&str> {
        self.backend.wake_up_tag()
    }

    async fn commit(&self, work: Work) -> StoreResult<Committed> {
        self.backend.commit(self, work).await
    }
}

/// Connects to the database named by `url`: `postgres://…` / `postgresql://…` or
/// `sqlite://relative/path.db` / `sqlite:///absolute/path.db`. Does not migrate.
///
/// # Errors
/// `Unavailable` when the database cannot be reached or opened; `Database` for an unsupported
/// scheme or a malformed URL (the message never repeats the URL, which may hold a password).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with_pool(url, None).await
}

/// Like [`open`], with the PostgreSQL pool's size (`database.max_connections`); SQLite keeps its
/// own small pool (one writer at a time anyway).
///
/// # Errors
/// As [`open`].
pub async fn open_with_pool(
    url: &str,
    max_connections: Option<u32>,
) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "postgres" | "postgresql" => Ok(Arc::new(match max_connections {
            Some(size) => PgStore::connect_with_pool_size(url, size).await?,
            None => PgStore::connect(url).await?,
        })),
        "sqlite" => Ok(Arc::new(SqliteStore::connect(url).await?)),
        _ => Err(common::config_error(format!(
            "unsupported database URL scheme `{scheme}`: use postgres://, postgresql:// or sqlite://"
        ))),
    }
}
