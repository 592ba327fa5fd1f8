//! Test support for Switchboard's end-to-end suites: a test channel registered through
//! `inventory` from outside the gateway (the proof that a new channel needs no gateway edit),
//! fresh databases per test on both backends, and [`TestApp`], the real gateway served on
//! port 0.

pub mod app;
pub mod channel;
pub mod telegram;
pub mod whatsapp;

pub use app::TestApp;
pub use switchboard_store::testing::{Backend, TestDatabase};

use std::future::Future;
use std::time::Duration;

/// Polls `check` until it holds (workers and webhooks are asynchronous), failing after 15 s.
///
/// # Panics
/// When `check` does not hold in time.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
