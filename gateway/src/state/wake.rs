//! Early wake-ups for the workers, shared by the HTTP layer (a webhook stored, a message queued)
//! and the workers themselves (a job created); polling covers any that are missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// Wake-ups shared by the HTTP layer and the workers.
#[derive(Debug, Default)]
pub struct Wakeups {
    /// A webhook body was stored.
    pub inbox: Notify,
    /// A job was queued or released.
    pub jobs: Notify,
    /// Webhooks stored since start.
    webhooks_received: AtomicU64,
}

impl Wakeups {
    /// Counts a stored webhook, for the inbox worker's view of the webhook rate.
    pub fn webhook_received(&self) {
        self.webhooks_received.fetch_add(1, Ordering::Relaxed);
    }

    /// Webhooks stored by this process since it started.
    #[must_use]
    pub fn webhooks_received(&self) -> u64 {
        self.webhooks_received.load(Ordering::Relaxed)
    }
}

/// Waits for a wake-up on `notify`, `poll` at most, or shutdown; returns false on shutdown.
pub async fn idle(notify: &Notify, poll: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = notify.notified() => true,
        () = tokio::time::sleep(poll) => true,
        _ = shutdown.changed() => !*shutdown.borrow(),
    }
}
