//! The runs, in order: the reference endpoint and then the gateway's webhook endpoint under the
//! same closed-loop load (same bodies, same connections, one database); then, on a fresh
//! gateway and database so the ingest backlog does not linger, end to end at a fixed offered
//! rate and at the maximum rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::Fallible;
use crate::args::Args;
use crate::cpu::Snapshot;
use crate::e2e::{self, Clock};
use crate::gateway::{APP_SECRET, Gateway, WABA_ID};
use crate::load::{self, Target, Window};
use crate::payload::Payloads;
use crate::reference;
use crate::report::{EndToEnd, Ingest, Report};

const WEBHOOK_PATH: &str = "/api/webhooks/whatsapp";

/// Runs every phase the arguments ask for.
///
/// # Errors
/// When the database, the binary or a connect flow fails.
pub async fn run(args: &Args) -> Fallible<Report> {
    let mut report = Report::default();
    if !args.skip_ingest {
        ingest_phase(args, &mut report).await?;
    }
    if !args.skip_e2e {
        end_to_end_phase(args, &mut report).await?;
    }
    Ok(report)
}

async fn ingest_phase(args: &Args, report: &mut Report) -> Fallible<()> {
    let gateway = Gateway::start(args).await?;
    eprintln!("ingest: serve logs to {}", gateway.log_path().display());
    let payloads = payloads(&gateway);
    let mut since = Snapshot::take(gateway.pid());
    report.reference = Some(reference_ingest(args, &gateway, &payloads).await?);
    report.cores_since("ingest, reference", &mut since, gateway.pid());
    report.ingest = Some(gateway_ingest(args, &gateway, &payloads).await);
    report.cores_since("ingest, gateway", &mut since, gateway.pid());
    // The same reference while the gateway's workers drain the backlog the ingest left: how
    // much the pipeline's own commits slow any writer to this database.
    report.reference_busy = Some(reference_ingest(args, &gateway, &payloads).await?);
    report.cores_since("ingest, reference again", &mut since, gateway.pid());
    let rss = gateway.peak_rss_kib().unwrap_or(0);
    report.rss_kib.push(("ingest", rss));
    gateway.stop(Duration::from_secs(5));
    Ok(())
}

async fn end_to_end_phase(args: &Args, report: &mut Report) -> Fallible<()> {
    let gateway = Gateway::start(args).await?;
    eprintln!("end to end: serve logs to {}", gateway.log_path().display());
    let payloads = payloads(&gateway);
    let count = u64::from(args.e2e_rate) * args.e2e_duration.ceil() as u64;
    let rate = Some(args.e2e_rate);
    let mut since = Snapshot::take(gateway.pid());
    report.fixed = Some(end_to_end(args, &gateway, &payloads, 0, count, rate).await);
    report.cores_since("end to end, fixed rate", &mut since, gateway.pid());
    report.max = Some(end_to_end(args, &gateway, &payloads, count, args.e2e_burst, None).await);
    report.cores_since("end to end, maximum rate", &mut since, gateway.pid());
    let rss = gateway.peak_rss_kib().unwrap_or(0);
    report.rss_kib.push(("end to end", rss));
    gateway.stop(Duration::from_secs(5));
    Ok(())
}

fn payloads(gateway: &Gateway) -> Arc<Payloads> {
    Arc::new(Payloads::new(
        WABA_ID,
        &gateway.phone_number_ids,
        APP_SECRET,
    ))
}

fn window(args: &Args) -> Window {
    Window {
        warmup: args.warmup(),
        duration: args.duration(),
    }
}

async fn reference_ingest(
    args: &Args,
    gateway: &Gateway,
    payloads: &Arc<Payloads>,
) -> Fallible<Ingest> {
    let running = reference::start(&gateway.database.url, APP_SECRET).await?;
    eprintln!(
        "reference: {} connections for {:.0} s + {:.0} s warm-up",
        args.connections, args.duration, args.warmup
    );
    let target = Target {
        address: running.address,
        path: "/webhook".into(),
        payloads: Arc::clone(payloads),
        on_send: None,
    };
    let tally = load::closed_loop(&target, args.connections, window(args), 0, None).await;
    running.stop();
    Ok(Ingest::from(tally))
}

async fn gateway_ingest(args: &Args, gateway: &Gateway, payloads: &Arc<Payloads>) -> Ingest {
    eprintln!(
        "gateway ingest: {} connections for {:.0} s + {:.0} s warm-up",
        args.connections, args.duration, args.warmup
    );
    let target = Target {
        address: gateway.address,
        path: WEBHOOK_PATH.into(),
        payloads: Arc::clone(payloads),
        on_send: None,
    };
    // Indexes apart from the reference's, so every message id is new to the gateway.
    let tally =
        load::closed_loop(&target, args.connections, window(args), 1_000_000_000, None).await;
    Ingest::from(tally)
}

/// Messages `first..first + count`, at `rate` per second or (`None`) as fast as possible; then
/// waits for the replies.
async fn end_to_end(
    args: &Args,
    gateway: &Gateway,
    payloads: &Arc<Payloads>,
    first: u64,
    count: u64,
    rate: Option<u32>,
) -> EndToEnd {
    let shape = rate.map_or_else(|| "max rate".to_owned(), |r| format!("{r} msg/s"));
    eprintln!("end to end at {shape}: {count} messages");
    let clock = Clock::new(first, usize::try_from(count).unwrap_or(usize::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = e2e::watch(
        Arc::clone(&gateway.emulator),
        Arc::clone(&clock),
        Arc::clone(&stop),
    );
    let marks = Arc::clone(&clock);
    let target = Target {
        address: gateway.address,
        path: WEBHOOK_PATH.into(),
        payloads: Arc::clone(payloads),
        on_send: Some(Arc::new(move |n| marks.mark_sent(n))),
    };
    let tally = match rate {
        Some(rate) => {
            let window = Window {
                warmup: Duration::ZERO,
                duration: args.e2e_duration(),
            };
            load::open_loop(&target, args.connections, window, first, rate).await
        }
        None => {
            let window = Window {
                warmup: Duration::ZERO,
                duration: args.drain_timeout(),
            };
            load::closed_loop(&target, args.connections, window, first, Some(count)).await
        }
    };
    e2e::wait_for_replies(&clock, args.drain_timeout()).await;
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    EndToEnd::new(rate, &tally, clock.outcome())
}
