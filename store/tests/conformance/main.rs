//! The conformance suite: one set of tests that every store backend must pass.
//!
//! Each test is an `async fn(Arc<dyn Store>)`; [`conformance!`] expands a list of them into a
//! `sqlite` and a `postgres` variant. SQLite runs on a fresh temporary file per test;
//! PostgreSQL on a fresh database per test, created on the server of `TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards, also when
//! the test fails. Without a reachable server the PostgreSQL variants fail under `CI` and are
//! skipped loudly otherwise.

/// Expands test functions into `sqlite::NAME` and `postgres::NAME` tests. `migrated` tests
/// get a migrated store, `fresh` ones an empty database.
macro_rules! conformance {
    ($prepare:ident: $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::support::on_sqlite(crate::support::Prepare::$prepare, super::$name)
                        .await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::support::on_postgres(crate::support::Prepare::$prepare, super::$name)
                        .await;
                }
            )+
        }
    };
}

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
