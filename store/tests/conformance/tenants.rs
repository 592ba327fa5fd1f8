//! Businesses and API keys.

use std::sync::Arc;

use switchboard_core::StoreError;
use switchboard_core::error::Conflict;
use switchboard_core::store::Store;

use crate::support::{business, hash};

switchboard_store::on_both_backends!(crate::support::migrated => a_created_business_reads_back_as_it_was_written,
    an_api_key_finds_its_business_and_an_unknown_key_finds_nothing,
    the_same_api_key_cannot_be_added_twice);

async fn a_created_business_reads_back_as_it_was_written(store: Arc<dyn Store>) {
    let created = business(&store, "Acme").await;
    let read = store.get_business(created.id).await.unwrap();
    assert_eq!(read, Some(created));
    let other = switchboard_core::BusinessId::new();
    assert_eq!(store.get_business(other).await.unwrap(), None);
}

async fn an_api_key_finds_its_business_and_an_unknown_key_finds_nothing(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    store
        .add_api_key(a.id, hash("key-a"), "default")
        .await
        .unwrap();
    store
        .add_api_key(b.id, hash("key-b"), "default")
        .await
        .unwrap();
    assert_eq!(
        store.business_by_api_key(hash("key-a")).await.unwrap(),
        Some(a.id)
    );
    assert_eq!(
        store.business_by_api_key(hash("key-b")).await.unwrap(),
        Some(b.id)
    );
    assert_eq!(store.business_by_api_key(hash("nope")).await.unwrap(), None);
}

async fn the_same_api_key_cannot_be_added_twice(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    store.add_api_key(a.id, hash("key"), "one").await.unwrap();
    let again = store.add_api_key(a.id, hash("key"), "two").await;
    assert!(
        matches!(again, Err(StoreError::Conflict(Conflict::Other))),
        "{again:?}"
    );
}
