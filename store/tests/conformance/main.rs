//! The conformance suite: one set of tests that every store backend must pass.
//!
//! Each test is an `async fn(Arc<dyn Store>)`; `on_both_backends!` (the workspace's one such
//! macro, from `switchboard_store::testing`) expands a list of them into a `sqlite` and a
//! `postgres` variant, run by [`support::migrated`] or [`support::fresh`]. SQLite runs on a fresh temporary file per test;
//! PostgreSQL on a fresh database per test, created on the server of `TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards, also when
//! the test fails. Without a reachable server the PostgreSQL variants fail under `CI` and are
//! skipped loudly otherwise.

mod conversations;
mod inbox;
mod integrations;
mod jobs;
mod lifecycle;
mod messages;
mod oauth;
mod support;
mod tenants;
mod work;
