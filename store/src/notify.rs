//! Cross-instance wake-ups on PostgreSQL: `pg_notify` on `switchboard_inbox` when webhooks are
//! stored (by the inbox writer, at most once per 10 ms and once after the last batch) or
//! replayed (by the requeue's own statement), and on
//! `switchboard_jobs` when a job becomes pending (by a trigger); a [`Subscription`] listens for
//! both. SQLite serves one instance, whose in-process wake-ups suffice.
//!
//! Every notification carries the [`InstanceTag`] of the store whose connection sent it: the
//! session setting [`INSTANCE_SETTING`], which the trigger and the statements read. An
//! instance's own notifications would only wake a second worker for work the in-process
//! wake-up already handed to one, whose claim then comes back empty; its listener passes over
//! them.

use std::sync::Arc;

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

/// The session setting that holds a connection's [`InstanceTag`]; its pool sets it when the
/// connection starts. A placeholder setting: PostgreSQL accepts any name with a dot.
pub(crate) const INSTANCE_SETTING: &str = "switchboard.instance";

/// The payload of every notification: the sending connection's tag (empty without one).
macro_rules! notify_payload {
    () => {
        "coalesce(current_setting('switchboard.instance', true), '')"
    };
}
pub(crate) use notify_payload;

/// A random tag per store, hence per process in production.
#[derive(Debug, Clone)]
pub(crate) struct InstanceTag(Arc<str>);

impl InstanceTag {
    pub(crate) fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string().into())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `LISTEN` on both channels. It reconnects by itself after a lost connection.
#[derive(Debug)]
pub struct Subscription {
    listener: PgListener,
    /// Notifications with this payload are passed over: the listening instance sent them.
    own: Option<String>,
}

impl Subscription {
    /// The next notification sent by another instance (or by any, without a tag of its own).
    ///
    /// # Errors
    /// When the connection fails and cannot be re-established.
    pub async fn recv(&mut self) -> Result<Topic, StoreError> {
        loop {
            let notification = self.listener.recv().await.map_err(from_sqlx)?;
            if self.own.as_deref() == Some(notification.payload()) {
                continue;
            }
            match notification.channel() {
                INBOX => return Ok(Topic::Inbox),
                JOBS => return Ok(Topic::Jobs),
                _ => {}
            }
        }
    }
}

/// Listens for wake-ups on the database at `url`: `Some` on PostgreSQL, `None` on SQLite.
/// Notifications tagged `own` (the listening instance's [`Store::wake_up_tag`]) are passed
/// over.
///
/// [`Store::wake_up_tag`]: switchboard_core::store::Store::wake_up_tag
///
/// # Errors
/// When PostgreSQL cannot be reached.
pub async fn subscribe(url: &str, own: Option<&str>) -> Result<Option<Subscription>, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(None);
    }
    let mut listener = PgListener::connect(url).await.map_err(from_sqlx)?;
    listener
        .listen_all([INBOX, JOBS])
        .await
        .map_err(from_sqlx)?;
    Ok(Some(Subscription {
        listener,
        own: own.map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_payload_reads_the_setting_the_pool_sets() {
        assert!(notify_payload!().contains(&format!("'{}'", super::INSTANCE_SETTING)));
    }
}
