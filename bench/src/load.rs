//! The load generator: `connections` kept-alive HTTP/1.1 connections, one task each, posting
//! signed webhooks with consecutive message indexes.
//!
//! Two shapes: [`closed_loop`] (each connection sends its next request as soon as the previous
//! one is answered: the server's maximum rate) and [`open_loop`] (message `n` leaves at
//! `start + n / rate`, whatever the server does: a fixed offered rate). A response is counted
//! when it arrives; a latency is recorded only for responses inside the measurement window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;

use crate::payload::Payloads;
use crate::stats::Tally;

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Where the load goes and what it sends.
#[derive(Clone)]
pub struct Target {
    pub address: SocketAddr,
    pub path: String,
    pub payloads: Arc<Payloads>,
    /// Called with a message index just before its request leaves.
    pub on_send: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// When to measure: responses between `warmup` and `warmup + duration` after the start.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub duration: Duration,
}

/// One connection, reconnected after a transport error.
struct Connection {
    address: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    async fn post(&mut self, target: &Target, n: u64) -> Fallible<StatusCode> {
        let (body, signature) = target.payloads.signed(n);
        let request = Request::post(target.path.as_str())
            .header(header::HOST, "127.0.0.1")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-hub-signature-256", signature)
            .body(Full::new(body))?;
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(open(self.address).await?),
        };
        sender.ready().await?;
        if let Some(on_send) = &target.on_send {
            on_send(n);
        }
        let result = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Fallible::Ok(status)
        }
        .await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

async fn open(address: SocketAddr) -> Fallible<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends as fast as `connections` connections allow, from index `first` on, for
/// `window.warmup + window.duration`, or until `limit` messages were sent.
pub async fn closed_loop(
    target: &Target,
    connections: usize,
    window: Window,
    first: u64,
    limit: Option<u64>,
) -> Tally {
    let next = Arc::new(AtomicU64::new(first));
    let last = limit.map_or(u64::MAX, |limit| first + limit);
    let start = Instant::now();
    let pace = move |_: u64| async {};
    run(target, connections, window, start, &next, last, pace).await
}

/// Sends `rate` messages per second for `window.warmup + window.duration`, from index `first`.
pub async fn open_loop(
    target: &Target,
    connections: usize,
    window: Window,
    first: u64,
    rate: u32,
) -> Tally {
    let next = Arc::new(AtomicU64::new(first));
    let total = (window.warmup + window.duration).as_secs_f64() * f64::from(rate);
    let last = first + total.round() as u64;
    let start = Instant::now();
    let interval = 1.0 / f64::from(rate);
    let pace = move |n: u64| {
        let at = start + Duration::from_secs_f64((n - first) as f64 * interval);
        tokio::time::sleep_until(at.into())
    };
    run(target, connections, window, start, &next, last, pace).await
}

async fn run<F, P>(
    target: &Target,
    connections: usize,
    window: Window,
    start: Instant,
    next: &Arc<AtomicU64>,
    last: u64,
    pace: P,
) -> Tally
where
    P: Fn(u64) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (target, next, pace) = (target.clone(), Arc::clone(next), pace.clone());
        tasks.spawn(async move {
            let mut connection = Connection {
                address: target.address,
                sender: None,
            };
            let mut tally = Tally::default();
            let (measure_from, end) = (
                start + window.warmup,
                start + window.warmup + window.duration,
            );
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= last || Instant::now() >= end {
                    break;
                }
                pace(n).await;
                let sent = Instant::now();
                let outcome = connection.post(&target, n).await;
                tally.record(&outcome, sent, measure_from, end);
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.expect("a load task panicked"));
    }
    total.elapsed = start.elapsed();
    total.window = window.duration;
    total
}
