//! `bench`: measures Switchboard's webhook ingest and end-to-end reply path on PostgreSQL and
//! prints a table of figures next to their targets.
//!
//! It starts a fresh database, the WhatsApp Graph API emulator in this process and the release
//! `switchboard serve` as a child process; drives signed webhooks at it with a load generator of
//! its own; and, in the same run, measures a minimal reference endpoint (HMAC, JSON parse,
//! group-committed INSERT) so the ingest figure is also a ratio. `scripts/bench.sh` builds and
//! runs it; BENCHMARKS.md records the results.

mod args;
mod cpu;
mod e2e;
mod gateway;
mod load;
mod payload;
mod phases;
mod reference;
mod report;
mod stats;

use std::process::ExitCode;

use clap::Parser;

/// Any failure of the set-up; the run stops with its message.
pub type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    let mut args = args::Args::parse();
    // `serve` runs in a working directory of its own: the path must not be relative.
    args.gateway = match std::fs::canonicalize(&args.gateway) {
        Ok(path) => path,
        Err(error) => {
            eprintln!(
                "bench failed: the gateway binary {}: {error}",
                args.gateway.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match runtime.block_on(phases::run(&args)) {
        Ok(report) => {
            println!("{}", report.render(&args));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench failed: {error}");
            ExitCode::FAILURE
        }
    }
}
