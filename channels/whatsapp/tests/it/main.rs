//! Crate-level tests of `switchboard-whatsapp`: one test binary. Webhook parsing and
//! authentication run without the emulator; everything that talks HTTP runs against the
//! emulator over real loopback HTTP (feature `emulator`).

mod config;
mod fixtures;
mod fixtures_detail;
mod webhook_auth;

#[cfg(feature = "emulator")]
mod controls;
#[cfg(feature = "emulator")]
mod delivery;
#[cfg(feature = "emulator")]
mod emulator_graph;
#[cfg(feature = "emulator")]
mod harness;
#[cfg(feature = "emulator")]
mod oauth_discovery;
#[cfg(feature = "emulator")]
mod oauth_flow;
#[cfg(feature = "emulator")]
mod openapi;
#[cfg(feature = "emulator")]
mod receiver;
#[cfg(feature = "emulator")]
mod send;
#[cfg(feature = "emulator")]
mod send_failures;
#[cfg(feature = "emulator")]
mod status;
mod support;
