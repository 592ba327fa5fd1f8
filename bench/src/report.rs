//! The printed table: each figure next to its target and whether it is met.

use std::fmt::Write as _;

use crate::args::Args;
use crate::cpu::{Shares, Snapshot};
use crate::e2e::Outcome;
use crate::stats::Tally;

/// Ingest at the maximum rate of `connections` connections.
#[derive(Debug)]
pub struct Ingest {
    pub rate: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: u64,
}

impl From<Tally> for Ingest {
    fn from(mut tally: Tally) -> Self {
        Self {
            rate: tally.rate(),
            p50_ms: tally.latencies.percentile_ms(50.0),
            p99_ms: tally.latencies.percentile_ms(99.0),
            errors: tally.errors,
        }
    }
}

/// One end-to-end run.
#[derive(Debug)]
pub struct EndToEnd {
    /// The offered rate; `None` for the maximum-rate run.
    pub rate: Option<u32>,
    pub sent: usize,
    pub answered: usize,
    /// Inbound messages per second actually sent (acknowledged `200`s over the send phase).
    pub sent_rate: f64,
    /// Replies per second, first send to last reply.
    pub throughput: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: u64,
}

impl EndToEnd {
    pub fn new(rate: Option<u32>, tally: &Tally, mut outcome: Outcome) -> Self {
        let sent_rate = tally.ok as f64 / tally.elapsed.as_secs_f64().max(f64::EPSILON);
        Self {
            rate,
            sent: outcome.sent,
            answered: outcome.answered(),
            sent_rate,
            throughput: outcome.throughput(),
            p50_ms: outcome.latencies.percentile_ms(50.0),
            p99_ms: outcome.latencies.percentile_ms(99.0),
            errors: tally.errors,
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Report {
    pub reference: Option<Ingest>,
    /// The reference again, while the gateway's workers drain the ingest backlog.
    pub reference_busy: Option<Ingest>,
    pub ingest: Option<Ingest>,
    pub fixed: Option<EndToEnd>,
    pub max: Option<EndToEnd>,
    /// Peak RSS of each serve process, by phase.
    pub rss_kib: Vec<(&'static str, u64)>,
    /// Where the cores went, by phase (diagnostic).
    pub cores: Vec<(&'static str, Shares)>,
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

impl Report {
    /// Records where the cores went in `phase`, which began at `since`; the next phase begins
    /// now.
    pub fn cores_since(&mut self, phase: &'static str, since: &mut Option<Snapshot>, pid: u32) {
        let now = Snapshot::take(pid);
        if let Some(shares) = since
            .zip(now)
            .and_then(|(before, after)| before.until(&after))
        {
            self.cores.push((phase, shares));
        }
        *since = now;
    }

    /// The table, as printed.
    pub fn render(&self, args: &Args) -> String {
        let mut out = String::new();
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let _ = writeln!(
            out,
            "\nSwitchboard benchmark: {cores} cores, {} connections, ingest {} s after {} s warm-up, {} numbers\n",
            args.connections, args.duration, args.warmup, args.numbers
        );
        let _ = writeln!(
            out,
            "| measurement | rate | p50 ms | p99 ms | errors | target | verdict |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|");
        self.render_ingest(&mut out);
        self.render_e2e(&mut out);
        for (phase, kib) in &self.rss_kib {
            let mb = *kib as f64 / 1024.0;
            let _ = writeln!(
                out,
                "| peak RSS of serve ({phase}) | {mb:.1} MiB | | | | ≤ 64 MiB | {} |",
                verdict(mb <= 64.0)
            );
        }
        if !self.cores.is_empty() {
            let _ = writeln!(
                out,
                "\nWhere the cores went (shares of all {cores}; the bench process is the load generator, the emulator and the reference):"
            );
            for (phase, shares) in &self.cores {
                let _ = writeln!(out, "- {phase}: {shares}");
            }
        }
        out
    }

    fn render_ingest(&self, out: &mut String) {
        if let Some(r) = &self.reference {
            let _ = writeln!(
                out,
                "| ingest, reference (HMAC + parse + group-committed INSERT) | {:.0} req/s | {} | {} | {} | | |",
                r.rate,
                ms(r.p50_ms),
                ms(r.p99_ms),
                r.errors
            );
        }
        let Some(g) = &self.ingest else { return };
        let p99_met = g.p99_ms.is_some_and(|p| p <= 15.0) && g.errors == 0;
        let _ = writeln!(
            out,
            "| ingest, gateway `POST /api/webhooks/whatsapp` | {:.0} req/s | {} | {} | {} | p99 ≤ 15 ms, no errors | {} |",
            g.rate,
            ms(g.p50_ms),
            ms(g.p99_ms),
            g.errors,
            verdict(p99_met)
        );
        if let Some(r) = &self.reference_busy {
            let _ = writeln!(
                out,
                "| ingest, reference again, while the gateway's workers drain the ingest backlog | {:.0} req/s | {} | {} | {} | (diagnostic) | |",
                r.rate,
                ms(r.p50_ms),
                ms(r.p99_ms),
                r.errors
            );
        }
        if let Some(r) = &self.reference {
            let ratio = g.rate / r.rate.max(f64::EPSILON);
            let _ = writeln!(
                out,
                "| ingest ratio gateway / reference | {ratio:.2}× | | | | ≥ 1.00× | {} |",
                verdict(ratio >= 1.0)
            );
        }
    }

    fn render_e2e(&self, out: &mut String) {
        for run in [&self.fixed, &self.max].into_iter().flatten() {
            let (name, target, met) = match run.rate {
                Some(rate) => (
                    format!(
                        "end to end at {rate} msg/s offered ({:.0} sent/s)",
                        run.sent_rate
                    ),
                    "p99 ≤ 250 ms, all answered",
                    run.p99_ms.is_some_and(|p| p <= 250.0),
                ),
                None => (
                    format!("end to end at max rate ({:.0} sent/s)", run.sent_rate),
                    "≥ 2,000 msg/s, all answered",
                    run.throughput >= 2000.0,
                ),
            };
            let complete = run.answered == run.sent && run.errors == 0;
            let _ = writeln!(
                out,
                "| {name}: {}/{} answered | {:.0} msg/s | {} | {} | {} | {target} | {} |",
                run.answered,
                run.sent,
                run.throughput,
                ms(run.p50_ms),
                ms(run.p99_ms),
                run.errors,
                verdict(met && complete)
            );
        }
    }
}
