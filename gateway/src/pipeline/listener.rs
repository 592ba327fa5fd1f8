//! Other instances' wake-ups (PostgreSQL `LISTEN/NOTIFY`) turned into local ones. This
//! instance's own are passed over: it woke its workers in process. Polling covers any gap.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use switchboard_core::store::Store;
use switchboard_store::Topic;
use tokio::sync::watch;

use crate::state::Wakeups;

/// How long a failed `LISTEN` waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Listens on `url` until `shutdown` turns true; returns at once on a database without
/// notifications (SQLite).
pub async fn run(
    store: Arc<dyn Store>,
    wake: Arc<Wakeups>,
    url: SecretString,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let own = store.wake_up_tag();
        let mut subscription = match switchboard_store::subscribe(url.expose_secret(), own).await {
            Ok(Some(subscription)) => subscription,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "LISTEN failed; relying on polling for now");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                topic = subscription.recv() => match topic {
                    Ok(Topic::Inbox) => wake.inbox.notify_one(),
                    Ok(Topic::Jobs) => wake.jobs.notify_one(),
                    Err(error) => {
                        tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                        break;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
