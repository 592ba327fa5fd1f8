//! Rejected webhooks, told to the operator.
//!
//! A webhook that fails authentication cannot be tied to a tenant (its body is not trusted), so
//! the log is the one place to show it. Setting up a provider's webhook with the wrong app
//! secret or secret token is a common mistake, and the provider keeps retrying: every failure
//! logged would flood the log, none logged would leave nothing to diagnose. So each channel logs
//! at most one warning per [`INTERVAL`], counting the rejections since its last one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest time between two warnings of one channel.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Per-channel counts of rejected webhooks since the last warning.
#[derive(Debug, Default)]
pub struct Rejections {
    channels: Mutex<HashMap<String, Window>>,
}

#[derive(Debug)]
struct Window {
    warned_at: Instant,
    unreported: u64,
}

impl Rejections {
    /// Counts one rejected webhook of `channel`; logs a warning with `why` (which must hold no
    /// secret) and the channel's `hint` of what to check when the channel's last warning is
    /// older than [`INTERVAL`].
    pub fn record(&self, channel: &str, why: &str, hint: &str) {
        if let Some(rejected) = self.count(channel, Instant::now()) {
            tracing::warn!(
                channel,
                rejected,
                reason = why,
                hint,
                "webhooks rejected: authentication failed, nothing stored"
            );
        }
    }

    /// Counts one rejection at `now`; returns how many to report when a warning is due.
    fn count(&self, channel: &str, now: Instant) -> Option<u64> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match channels.get_mut(channel) {
            None => {
                channels.insert(
                    channel.to_owned(),
                    Window {
                        warned_at: now,
                        unreported: 0,
                    },
                );
                Some(1)
            }
            Some(window) => {
                window.unreported += 1;
                if now.duration_since(window.warned_at) < INTERVAL {
                    return None;
                }
                let rejected = window.unreported;
                *window = Window {
                    warned_at: now,
                    unreported: 0,
                };
                Some(rejected)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rejection_warns_then_one_warning_per_interval_counts_the_rest() {
        let rejections = Rejections::default();
        let start = Instant::now();
        assert_eq!(rejections.count("whatsapp", start), Some(1));
        for n in 1..=5 {
            let at = start + Duration::from_secs(n);
            assert_eq!(rejections.count("whatsapp", at), None, "{n} s");
        }
        // Channels are counted apart.
        assert_eq!(rejections.count("telegram", start + INTERVAL / 2), Some(1));
        // The sixth since the warning, once the interval has passed.
        assert_eq!(rejections.count("whatsapp", start + INTERVAL), Some(6));
        assert_eq!(
            rejections.count("whatsapp", start + INTERVAL + Duration::from_secs(1)),
            None
        );
        assert_eq!(rejections.count("whatsapp", start + INTERVAL * 2), Some(2));
    }
}
