//! Crate-level tests of the Telegram adapter and its Bot API emulator, over real loopback HTTP.
//! One test binary; every test starts its own emulator (and webhook receiver) on port 0.

mod conformance;
mod connect;
mod delivery;
mod emulator;
mod fixtures;
mod fixtures_updates;
mod send;
mod status;
mod support;
mod webhook_auth;
