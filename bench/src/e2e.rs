//! End to end: from the moment a signed inbound webhook leaves the load generator to the moment
//! the gateway's automated reply to that customer is accepted by the emulator.
//!
//! Each message index records its send instant; a poller reads the emulator's new sends every
//! millisecond and records, per recipient (one customer per index), the first reply it sees.
//! Latency precision is therefore about a millisecond.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard_whatsapp::emulator::EmulatorHandle;

use crate::payload::index_of_recipient;
use crate::stats::Latencies;

/// Send and reply instants per message index, as nanoseconds after `base` (0: not yet).
#[derive(Debug)]
pub struct Clock {
    base: Instant,
    first: u64,
    sent: Vec<AtomicU64>,
    replied: Vec<AtomicU64>,
}

impl Clock {
    /// Room for indexes `first..first + count`.
    pub fn new(first: u64, count: usize) -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            first,
            sent: (0..count).map(|_| AtomicU64::new(0)).collect(),
            replied: (0..count).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn slot(&self, n: u64) -> Option<usize> {
        usize::try_from(n.checked_sub(self.first)?)
            .ok()
            .filter(|&i| i < self.sent.len())
    }

    fn now(&self) -> u64 {
        // Nanoseconds since `base`: centuries fit.
        u64::try_from(self.base.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    pub fn mark_sent(&self, n: u64) {
        if let Some(i) = self.slot(n) {
            self.sent[i].store(self.now(), Ordering::Relaxed);
        }
    }

    fn mark_replied(&self, n: u64, at: u64) {
        if let Some(i) = self.slot(n) {
            let _ = self.replied[i].compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Messages sent so far and how many of them have a reply.
    pub fn progress(&self) -> (usize, usize) {
        let pairs = self.sent.iter().zip(&self.replied);
        let sent = pairs
            .clone()
            .filter(|(s, _)| s.load(Ordering::Relaxed) > 0)
            .count();
        let answered = pairs
            .filter(|(s, r)| s.load(Ordering::Relaxed) > 0 && r.load(Ordering::Relaxed) > 0)
            .count();
        (sent, answered)
    }

    /// What the run shows: latencies of answered messages, and the span from the first send to
    /// the last reply.
    pub fn outcome(&self) -> Outcome {
        let mut latencies = Latencies::default();
        let (mut first_sent, mut last_reply, mut sent) = (u64::MAX, 0, 0);
        for (s, r) in self.sent.iter().zip(&self.replied) {
            let (s, r) = (s.load(Ordering::Relaxed), r.load(Ordering::Relaxed));
            if s == 0 {
                continue;
            }
            sent += 1;
            first_sent = first_sent.min(s);
            if r > 0 {
                last_reply = last_reply.max(r);
                latencies.push(Duration::from_nanos(r.saturating_sub(s)));
            }
        }
        let span = Duration::from_nanos(last_reply.saturating_sub(first_sent));
        Outcome {
            sent,
            latencies,
            span,
        }
    }
}

/// The result of one end-to-end run.
#[derive(Debug)]
pub struct Outcome {
    pub sent: usize,
    pub latencies: Latencies,
    /// First send to last reply.
    pub span: Duration,
}

impl Outcome {
    pub fn answered(&self) -> usize {
        self.latencies.len()
    }

    /// Replies per second over the span.
    pub fn throughput(&self) -> f64 {
        let answered = self.answered() as f64;
        answered / self.span.as_secs_f64().max(f64::EPSILON)
    }
}

/// Polls the emulator's sends until `stop` is set, marking replies on `clock`.
pub fn watch(
    emulator: Arc<EmulatorHandle>,
    clock: Arc<Clock>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = emulator.sent_messages().len();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let new = emulator.sent_messages_after(seen);
            let at = clock.now();
            seen += new.len();
            for message in &new {
                if let Some(n) = index_of_recipient(&message.to) {
                    clock.mark_replied(n, at);
                }
            }
        }
    })
}

/// Waits until every sent message has a reply, or `timeout` passes.
pub async fn wait_for_replies(clock: &Clock, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let (sent, answered) = clock.progress();
        if answered >= sent {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
