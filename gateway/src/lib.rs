//! Switchboard, the gateway: HTTP API, configuration, CLI, and the glue between the channel
//! adapters and the store. `main.rs` is a thin wrapper over [`cli::main`]; the tests drive
//! [`app::build`] and [`app::run`] on port 0.

// Force-link the channel crates so their `inventory` registrations are in every binary that
// uses this library, tests included (a crate nobody references is not linked).
use switchboard_telegram as _;
use switchboard_whatsapp as _;

pub mod app;
pub mod cli;
pub mod config;
pub mod connections;
pub mod dashboard;
pub mod http;
pub mod pipeline;
pub mod sandbox;
pub mod server;
pub mod state;
pub mod tenants;
