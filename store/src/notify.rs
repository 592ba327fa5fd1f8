//! Cross-instance wake-ups on PostgreSQL: `pg_notify` on `switchboard_inbox` when webhooks are
//! stored (by the inbox writer, at most once per 10 ms and once after the last batch) or
//! replayed (by the requeue's own statement), and on
//! `switchboard_jobs` when a job becomes pending (by a trigger); a [`Subscription`] listens for
//! both. SQLite serves one instance, whose in-process wake-ups suffice.

use sqlx::postgres::PgListener;
use switchboard_core::StoreError;

use crate::common::from_sqlx;

/// What a notification says has work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Inbox,
    Jobs,
}

pub(crate) const INBOX: &str = "switchboard_inbox";
const JOBS: &str = "switchboard_jobs";

/// A `LISTEN` on both channels. It reconnects by itself after a lost connection.
#[derive(Debug)]
pub struct Subscription(PgListener);

impl Subscription {
    /// The next notification.
    ///
    /// # Errors
    /// When the connection fails and cannot be re-established.
    pub async fn recv(&mut self) -> Result<Topic, StoreError> {
        loop {
            let notification = self.0.recv().await.map_err(from_sqlx)?;
            match notification.channel() {
                INBOX => return Ok(Topic::Inbox),
                JOBS => return Ok(Topic::Jobs),
                _ => {}
            }
        }
    }
}

/// Listens for wake-ups on the database at `url`: `Some` on PostgreSQL, `None` on SQLite.
///
/// # Errors
/// When PostgreSQL cannot be reached.
pub async fn subscribe(url: &str) -> Result<Option<Subscription>, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(None);
    }
    let mut listener = PgListener::connect(url).await.map_err(from_sqlx)?;
    listener
        .listen_all([INBOX, JOBS])
        .await
        .map_err(from_sqlx)?;
    Ok(Some(Subscription(listener)))
}
