//! `switchboard-store`: the database backends of Switchboard.
//!
//! Both backends implement every store trait of `switchboard-core` ([`Store`] and its parts)
//! over the same tables (DESIGN §5) and pass one conformance suite (`tests/conformance.rs`):
//!
//! - [`PgStore`] — PostgreSQL, for any number of gateway instances sharing one database
//!   (queues are claimed with `FOR UPDATE SKIP LOCKED`);
//! - [`SqliteStore`] — an embedded SQLite file in WAL mode, for single-instance and sandbox use.
//!
//! [`open`] picks the backend from the database URL. Driver errors become [`StoreError`]s in
//! one function per backend; unique-rule violations become `StoreError::Conflict`.

mod common;
pub mod notify;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use switchboard_core::StoreError;
use switchboard_core::store::Store;

pub use notify::{Subscription, Topic, subscribe};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

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
