//! Counting and percentiles: what one load run observed, merged across connections.

use std::time::{Duration, Instant};

use hyper::StatusCode;

/// Latencies in microseconds; percentiles by sorting (a run holds at most a few hundred
/// thousand).
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn push(&mut self, latency: Duration) {
        self.0
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (0–100) in milliseconds, nearest rank; `None` when empty.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let rank = (p / 100.0 * self.0.len() as f64).ceil();
        let index = (rank as usize).clamp(1, self.0.len()) - 1;
        Some(f64::from(self.0[index]) / 1000.0)
    }
}

/// What one load run saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// `200`s that arrived inside the measurement window.
    pub ok_in_window: u64,
    /// Every `200`.
    pub ok: u64,
    /// Non-`200` answers and transport errors, over the whole run.
    pub errors: u64,
    /// Latencies of the `200`s inside the window.
    pub latencies: Latencies,
    /// The whole run, warm-up included.
    pub elapsed: Duration,
    /// The measurement window's length.
    pub window: Duration,
}

impl Tally {
    /// Counts one request that left at `sent`.
    pub fn record<E>(
        &mut self,
        outcome: &Result<StatusCode, E>,
        sent: Instant,
        measure_from: Instant,
        end: Instant,
    ) {
        let done = Instant::now();
        match outcome {
            Ok(StatusCode::OK) => {
                self.ok += 1;
                if done >= measure_from && done < end {
                    self.ok_in_window += 1;
                    self.latencies.push(done - sent);
                }
            }
            _ => self.errors += 1,
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.ok_in_window += other.ok_in_window;
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
    }

    /// `200`s per second inside the window.
    pub fn rate(&self) -> f64 {
        let ok = self.ok_in_window as f64;
        ok / self.window.as_secs_f64().max(f64::EPSILON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.push(Duration::from_millis(ms));
        }
        assert_eq!(latencies.percentile_ms(50.0), Some(50.0));
        assert_eq!(latencies.percentile_ms(99.0), Some(99.0));
        assert_eq!(latencies.percentile_ms(100.0), Some(100.0));
        assert_eq!(Latencies::default().percentile_ms(50.0), None);
    }
}
