//! End-to-end suites: the real gateway over real HTTP on port 0, a fresh database per test,
//! on SQLite and on PostgreSQL.

mod integrations;
mod oauth;
mod pipeline;
mod registry;
mod routes;
mod session;
mod telegram;
mod webhooks;
mod whatsapp;

/// Expands one async test body `async fn name(backend: Backend)` into a `sqlite` and a
/// `postgres` test.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {
        $(
            mod $name {
                use super::*;

                async fn run($backend: switchboard_tests::Backend) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run(switchboard_tests::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run(switchboard_tests::Backend::Postgres).await;
                }
            }
        )*
    };
}
