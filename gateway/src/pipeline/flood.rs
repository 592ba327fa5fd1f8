//! Deferring to the webhook path during a flood: while webhooks are stored faster than a busy
//! day brings them, the inbox worker waits between batches and takes small ones.

use std::time::Duration;

use tokio::time::Instant;

use crate::state::Wakeups;

/// A webhook rate (requests per second, measured by this process) from which the inbox worker
/// defers its next batch (see [`yield_to_ingest`]). Well above the rate of a busy
/// normal day (500 answered messages a second bring about 2,000 webhooks a second, with the
/// status reports); reached in floods and bursts.
const INGEST_FLOOD_RATE: f64 = 4_000.0;

/// The longest the inbox worker defers to the webhook path before it takes a batch anyway, so
/// replies keep flowing during a flood.
const MAX_INGEST_DEFERRAL: Duration = Duration::from_secs(1);

/// During a flood the inbox worker takes this fraction of `workers.batch` per batch. Every row
/// taken then costs the webhook path its reply and three status reports, so the trickle only
/// keeps the oldest chats moving (BENCHMARKS.md, "Deferring to ingest during a flood"); the
/// backlog is answered at full speed once the flood ends.
const FLOOD_BATCH_DIVISOR: u32 = 16;

/// How often a deferring inbox worker looks at the webhook rate again.
const INGEST_SAMPLE: Duration = Duration::from_millis(10);

/// Whether `received` webhooks within `elapsed` is a flood (see [`INGEST_FLOOD_RATE`]).
fn is_flood(received: u64, elapsed: Duration) -> bool {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let rate = received as f64 / elapsed.as_secs_f64().max(1e-3);
    rate >= INGEST_FLOOD_RATE
}

/// When a batch began, and how many webhooks this process had stored by then.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    at: Instant,
    received: u64,
}

impl Mark {
    #[must_use]
    pub fn now(wake: &Wakeups) -> Self {
        Self {
            at: Instant::now(),
            received: wake.webhooks_received(),
        }
    }
}

/// The rows the next batch takes: `batch`, or a small part of it during a flood.
#[must_use]
pub fn batch_limit(batch: u32, flooding: bool) -> u32 {
    if flooding {
        (batch / FLOOD_BATCH_DIVISOR).max(1)
    } else {
        batch
    }
}

/// While webhooks arrive faster than [`INGEST_FLOOD_RATE`], waits — at most
/// [`MAX_INGEST_DEFERRAL`] after the previous batch began — before the next batch.
/// Acknowledging the provider quickly comes first: it retries, and in the end disables, a
/// slow webhook, and what it sends is durable once acknowledged. The batches taken after a
/// flood are fuller, so cheaper per row. On several instances each one defers to its own
/// webhook traffic only.
pub async fn yield_to_ingest(wake: &Wakeups, since: Mark) -> bool {
    let until = since.at + MAX_INGEST_DEFERRAL;
    let (mut at, mut received) = (since.at, since.received);
    loop {
        let now = Instant::now();
        let count = wake.webhooks_received();
        if !is_flood(count.saturating_sub(received), now.duration_since(at)) {
            return false;
        }
        if now >= until {
            return true;
        }
        (at, received) = (now, count);
        tokio::time::sleep(INGEST_SAMPLE).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::is_flood;

    #[test]
    fn a_flood_is_four_thousand_webhooks_a_second_or_more() {
        assert!(!is_flood(0, Duration::from_millis(10)));
        // 500 answered messages a second: about 2,000 webhooks a second with status reports.
        assert!(!is_flood(20, Duration::from_millis(10)));
        assert!(!is_flood(2_000, Duration::from_secs(1)));
        assert!(is_flood(40, Duration::from_millis(10)));
        assert!(is_flood(16_000, Duration::from_secs(1)));
        // No time elapsed is not a division by zero; a burst in no time is a flood.
        assert!(!is_flood(0, Duration::ZERO));
        assert!(is_flood(10, Duration::ZERO));
    }
}
