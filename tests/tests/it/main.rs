//! End-to-end suites: the real gateway over real HTTP on port 0, a fresh database per test,
//! on SQLite and on PostgreSQL.

mod hardening;
mod integrations;
mod oauth;
mod pipeline;
mod registry;
mod routes;
mod session;
mod telegram;
mod webhooks;
mod whatsapp;

pub(crate) use switchboard_store::on_both_backends;
