//! The retry policy, as data: when a retryable send or responder failure is tried again.
//!
//! Starting at 1 s and growing (about 1, 2, 5, 10, 30 s, then minutes) to at most
//! one hour between attempts, with jitter so a burst of failures does not retry in lockstep; a
//! provider's own hint (`retry_after`) wins when it gives one.

use std::time::Duration;

use rand::Rng as _;

/// Delays before attempt 2, 3, …; the last one repeats.
const SCHEDULE_SECS: &[u64] = &[1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];
/// Jitter: ±20 %.
const JITTER: f64 = 0.2;

/// The delay after the `attempt`-th failed attempt (1-based), with jitter.
#[must_use]
pub fn backoff(attempt: i32) -> Duration {
    let index = usize::try_from(attempt.max(1) - 1)
        .unwrap_or(0)
        .min(SCHEDULE_SECS.len() - 1);
    let base = Duration::from_secs(SCHEDULE_SECS[index]);
    let factor = 1.0 + rand::rng().random_range(-JITTER..=JITTER);
    base.mul_f64(factor)
}

/// The delay to wait: the provider's hint when it gave one (never less than it), else the
/// schedule.
#[must_use]
pub fn delay(attempt: i32, hint: Option<Duration>) -> Duration {
    match hint {
        Some(hint) => hint.max(Duration::from_millis(100)),
        None => backoff(attempt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_starts_at_a_second_and_grows_to_an_hour() {
        let within = |attempt: i32, secs: f64| {
            let d = backoff(attempt).as_secs_f64();
            assert!(
                (secs * 0.79..=secs * 1.21).contains(&d),
                "attempt {attempt}: {d}s, expected ~{secs}s"
            );
        };
        within(1, 1.0);
        within(2, 2.0);
        within(3, 5.0);
        within(4, 10.0);
        within(5, 30.0);
        within(6, 60.0);
        within(12, 3600.0);
        within(40, 3600.0);
    }

    #[test]
    fn jitter_spreads_retries() {
        let delays: std::collections::HashSet<u128> =
            (0..20).map(|_| backoff(5).as_millis()).collect();
        assert!(delays.len() > 1, "20 draws were all equal");
    }

    #[test]
    fn a_provider_hint_wins_over_the_schedule() {
        assert_eq!(
            delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(delay(9, Some(Duration::ZERO)), Duration::from_millis(100));
    }
}
