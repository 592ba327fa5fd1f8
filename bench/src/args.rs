//! The command line: durations, rates and sizes of each phase, all with defaults that make one
//! run take about two minutes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Benchmarks `switchboard serve` on PostgreSQL against a group-committed reference endpoint.
#[derive(Debug, Parser)]
#[command(name = "bench")]
pub struct Args {
    /// The gateway binary (built with `--release`).
    #[arg(long, default_value = "target/release/switchboard")]
    pub gateway: PathBuf,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds of ingest load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds of measured ingest load, for the reference and for the gateway.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Offered rate of the fixed-rate end-to-end run, messages per second.
    #[arg(long, default_value_t = 500)]
    pub e2e_rate: u32,
    /// Seconds of the fixed-rate end-to-end run.
    #[arg(long, default_value_t = 10.0)]
    pub e2e_duration: f64,
    /// Messages of the maximum-rate end-to-end run (sent as fast as the connections allow).
    #[arg(long, default_value_t = 5_000)]
    pub e2e_burst: u64,
    /// Seconds to wait for the last replies of an end-to-end run.
    #[arg(long, default_value_t = 120.0)]
    pub drain_timeout: f64,
    /// Business numbers (one tenant each) the messages are spread over.
    #[arg(long, default_value_t = 32)]
    pub numbers: usize,
    /// Extra environment for `serve`, `KEY=VALUE` (repeatable), e.g.
    /// `SWITCHBOARD_WORKERS__COUNT=8`.
    #[arg(long = "serve-env", value_parser = key_value)]
    pub serve_env: Vec<(String, String)>,
    /// The emulator sends no status webhooks (sent, delivered, read) after each reply; Meta
    /// does, so this is a diagnostic: it shows what the three extra inbox rows per reply cost.
    #[arg(long)]
    pub no_statuses: bool,
    /// Keep each serve process's log and working directory (removed otherwise).
    #[arg(long)]
    pub keep_logs: bool,
    /// Skip the reference and gateway ingest runs.
    #[arg(long)]
    pub skip_ingest: bool,
    /// Skip the end-to-end runs.
    #[arg(long)]
    pub skip_e2e: bool,
}

impl Args {
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    pub fn e2e_duration(&self) -> Duration {
        Duration::from_secs_f64(self.e2e_duration)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.drain_timeout)
    }
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{raw}` is not KEY=VALUE"))
}
