//! Migrations, readiness and choosing a backend from a URL.

use std::sync::Arc;

use switchboard_core::StoreError;
use switchboard_core::store::Store;

use crate::support::{TempDir, business, pg_admin, pg_url};

conformance!(Fresh: ready_fails_before_migrate_and_succeeds_after, migrating_twice_is_harmless);

async fn ready_fails_before_migrate_and_succeeds_after(store: Arc<dyn Store>) {
    assert!(store.ready().await.is_err(), "ready before migrations");
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
}

async fn migrating_twice_is_harmless(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    let kept = business(&store, "kept").await;
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
    assert_eq!(store.get_business(kept.id).await.unwrap(), Some(kept));
}

#[tokio::test]
async fn open_creates_a_missing_sqlite_file_and_its_directory() {
    let dir = TempDir::new();
    let path = dir.0.join("a/b/switchboard.db");
    let store = switchboard_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
    assert!(path.exists());
}

#[tokio::test]
async fn a_sqlite_file_that_cannot_be_created_is_unavailable() {
    let dir = TempDir::new();
    let blocker = dir.0.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let url = format!("sqlite://{}/x.db", blocker.display());
    let result = switchboard_store::open(&url).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn open_picks_postgres_for_postgres_urls() {
    if pg_admin().await.is_none() {
        return;
    }
    let store = switchboard_store::open(&pg_url()).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    let alias = pg_url().replacen("postgres://", "postgresql://", 1);
    assert_eq!(
        switchboard_store::open(&alias).await.unwrap().backend(),
        "postgres"
    );
}

#[tokio::test]
async fn open_refuses_an_unknown_scheme_without_echoing_the_url() {
    let Err(error) = switchboard_store::open("mysql://root:hunter2@db/x").await else {
        panic!("mysql:// was accepted");
    };
    let message = error.to_string();
    assert!(message.contains("mysql"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}
