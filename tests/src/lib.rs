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
