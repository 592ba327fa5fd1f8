//! The rate governor: keeps sends inside the provider's limits so they are not refused in the
//! first place (WhatsApp: throughput per number, 1 message / 6 s per recipient with bursts;
//! Telegram: 30/s per bot, 1/s per chat, 20/min per group). The limits come from the adapter
//! ([`switchboard_core::adapter::RateLimits`]); this module only enforces them.
//!
//! Each limit is a GCRA (generic cell rate algorithm) cell: a "theoretical arrival time" per key
//! that a send moves forward by the emission interval, allowed while it stays within the burst
//! tolerance. A send that would break a limit is not sent: the caller postpones the job to the
//! instant returned. The state is per process; several instances each keep their own, and the
//! provider's 429s are still honoured by the retry policy.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_core::IntegrationId;
#[cfg(test)]
use switchboard_core::adapter::Rate;
use switchboard_core::adapter::RateLimits;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(IntegrationId),
    Chat(IntegrationId, String),
}

/// Per-process rate state.
#[derive(Debug, Default)]
pub struct Governor {
    cells: Mutex<HashMap<Key, Instant>>,
}

impl Governor {
    /// Reserves one send to `chat` on `integration`, or says when to try again.
    ///
    /// # Errors
    /// `Err(wait)` when a limit would be exceeded; nothing is reserved then.
    pub fn reserve(
        &self,
        integration: IntegrationId,
        chat: &str,
        group: bool,
        limits: &RateLimits,
    ) -> Result<(), Duration> {
        self.reserve_at(Instant::now(), integration, chat, group, limits)
    }

    fn reserve_at(
        &self,
        now: Instant,
        integration: IntegrationId,
        chat: &str,
        group: bool,
        limits: &RateLimits,
    ) -> Result<(), Duration> {
        let chat_rate = if group {
            limits.per_group.or(limits.per_chat)
        } else {
            limits.per_chat
        };
        let checks = [
            (Key::Account(integration), limits.per_account),
            (Key::Chat(integration, chat.to_owned()), chat_rate),
        ];
        let mut cells = self.cells.lock().expect("governor lock");
        // Check every limit first, then commit all, so a refused send reserves nothing.
        let mut wait = Duration::ZERO;
        let mut updates = Vec::with_capacity(checks.len());
        for (key, rate) in checks {
            let Some(rate) = rate else { continue };
            let interval = rate.interval();
            let tat = cells.get(&key).copied().unwrap_or(now).max(now);
            let allowed_at = tat
                .checked_sub(interval * rate.burst.saturating_sub(1))
                .unwrap_or(now);
            if allowed_at > now {
                wait = wait.max(allowed_at - now);
            }
            updates.push((key, tat + interval));
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for (key, tat) in updates {
            cells.insert(key, tat);
        }
        if cells.len() > 100_000 {
            cells.retain(|_, tat| *tat > now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        RateLimits {
            per_account: Some(Rate::new(30, Duration::from_secs(1), 30)),
            per_chat: Some(Rate::new(1, Duration::from_secs(1), 1)),
            per_group: Some(Rate::new(20, Duration::from_secs(60), 1)),
        }
    }

    #[test]
    fn one_message_per_second_per_chat() {
        let governor = Governor::default();
        let id = IntegrationId::new();
        let t0 = Instant::now();
        assert!(
            governor
                .reserve_at(t0, id, "chat", false, &limits())
                .is_ok()
        );
        let wait = governor
            .reserve_at(t0, id, "chat", false, &limits())
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(
            governor
                .reserve_at(t0, id, "other-chat", false, &limits())
                .is_ok(),
            "chats are independent"
        );
        assert!(
            governor
                .reserve_at(t0 + Duration::from_secs(1), id, "chat", false, &limits())
                .is_ok()
        );
    }

    #[test]
    fn groups_get_twenty_a_minute() {
        let governor = Governor::default();
        let id = IntegrationId::new();
        let t0 = Instant::now();
        assert!(governor.reserve_at(t0, id, "-100", true, &limits()).is_ok());
        assert_eq!(
            governor
                .reserve_at(t0, id, "-100", true, &limits())
                .unwrap_err(),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn the_account_limit_allows_its_burst_then_spaces_sends() {
        let governor = Governor::default();
        let id = IntegrationId::new();
        let t0 = Instant::now();
        for n in 0..30 {
            assert!(
                governor
                    .reserve_at(t0, id, &format!("c{n}"), false, &limits())
                    .is_ok(),
                "send {n}"
            );
        }
        let wait = governor
            .reserve_at(t0, id, "c30", false, &limits())
            .unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(34),
            "{wait:?}"
        );
    }

    #[test]
    fn a_refused_send_reserves_nothing() {
        let governor = Governor::default();
        let id = IntegrationId::new();
        let t0 = Instant::now();
        governor
            .reserve_at(t0, id, "chat", false, &limits())
            .unwrap();
        for _ in 0..100 {
            assert!(
                governor
                    .reserve_at(t0, id, "chat", false, &limits())
                    .is_err()
            );
        }
        // The refused attempts did not use the account's budget.
        for n in 0..29 {
            assert!(
                governor
                    .reserve_at(t0, id, &format!("c{n}"), false, &limits())
                    .is_ok()
            );
        }
    }
}
