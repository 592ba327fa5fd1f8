//! Messages: deduplication by provider id, monotonic delivery statuses, pages.

use std::sync::Arc;

use switchboard_core::domain::{DeliveryStatus, MessageKind};
use switchboard_core::error::Conflict;
use switchboard_core::store::{Direction, Inserted, Page, Store};
use switchboard_core::{ConversationId, MessageId, StoreError};

use crate::support::{at, change, connected, message, micros, new_id, setup, stored, upsert};

switchboard_store::on_both_backends!(crate::support::migrated =>
    a_repeated_provider_message_id_returns_the_first_message,
    messages_are_listed_newest_first_a_page_at_a_time,
    statuses_only_move_forward_whatever_order_they_arrive_in,
    failed_keeps_its_code_and_reason_and_is_final,
    a_provider_id_taken_by_another_message_is_a_duplicate,
    gateway_side_statuses_and_unreachable_are_set_directly,
);

async fn a_repeated_provider_message_id_returns_the_first_message(store: Arc<dyn Store>) {
    let (i, c) = setup(&store).await;
    let first = stored(&store, &c, Some("wamid.1"), DeliveryStatus::Sent).await;
    let again = store
        .insert_message(message(&c, Some("wamid.1"), DeliveryStatus::Read))
        .await;
    assert_eq!(again.unwrap(), Inserted::Duplicate(first));
    // Queued sends have no provider id yet and are all distinct.
    stored(&store, &c, None, DeliveryStatus::Queued).await;
    stored(&store, &c, None, DeliveryStatus::Queued).await;
    // The same provider id on another integration is another message.
    let other = connected(&store, i.business_id, "telegram", "bot-1").await;
    let oc = store
        .upsert_conversation(upsert(&other, "1", None, 0))
        .await
        .unwrap();
    stored(&store, &oc, Some("wamid.1"), DeliveryStatus::Sent).await;
    let read = store.message(first).await.unwrap().unwrap();
    assert_eq!(read.status, DeliveryStatus::Sent);
    assert_eq!(read.kind, MessageKind::Other("poll_vote".into()));
    assert_eq!(read.text.as_deref(), Some("héllo"));
    assert_eq!(read.payload, serde_json::json!({ "raw": [1, 2] }));
    assert_eq!(read.direction, Direction::Outbound);
    assert_eq!(read.provider_timestamp, Some(micros(at(1))));
    assert_eq!(read.conversation_id, c.id);
}

async fn messages_are_listed_newest_first_a_page_at_a_time(store: Arc<dyn Store>) {
    let (_, c) = setup(&store).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let pid = format!("m{n}");
        let inserted = store.insert_message(message(&c, Some(&pid), DeliveryStatus::Sent));
        ids.push(new_id(inserted.await.unwrap()));
    }
    ids.reverse();
    let list = |before, limit| store.list_messages(c.id, Page { before, limit });
    let page1: Vec<_> = list(None, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(page1, ids[..2]);
    let page2: Vec<_> = list(Some(ids[1]), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(page2, ids[2..]);
    assert!(
        store
            .list_messages(
                ConversationId::new(),
                Page {
                    before: None,
                    limit: 9
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
}

async fn statuses_only_move_forward_whatever_order_they_arrive_in(store: Arc<dyn Store>) {
    let (_, c) = setup(&store).await;
    let id = stored(&store, &c, Some("wamid.s"), DeliveryStatus::Sent).await;
    assert!(
        store
            .apply_status(change(&c, DeliveryStatus::Read, 30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply_status(change(&c, DeliveryStatus::Delivered, 20))
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply_status(change(&c, DeliveryStatus::Sent, 10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply_status(change(&c, DeliveryStatus::Read, 31))
            .await
            .unwrap()
    );
    let read = store.message(id).await.unwrap().unwrap();
    assert_eq!(read.status, DeliveryStatus::Read);
    assert_eq!(read.status_at, Some(micros(at(30))));
    assert!(
        store
            .apply_status(change(&c, DeliveryStatus::Played, 40))
            .await
            .unwrap()
    );
    let mut unknown = change(&c, DeliveryStatus::Read, 1);
    unknown.provider_message_id = "wamid.unknown";
    assert!(!store.apply_status(unknown).await.unwrap());
}

async fn failed_keeps_its_code_and_reason_and_is_final(store: Arc<dyn Store>) {
    let (_, c) = setup(&store).await;
    let id = stored(&store, &c, Some("wamid.s"), DeliveryStatus::Sent).await;
    store
        .apply_status(change(&c, DeliveryStatus::Delivered, 5))
        .await
        .unwrap();
    let mut failed = change(&c, DeliveryStatus::Failed, 10);
    failed.error_code = Some("131047");
    failed.error_reason = Some("Re-engagement message");
    assert!(store.apply_status(failed).await.unwrap());
    // Nothing replaces a failure, not even a late read.
    assert!(
        !store
            .apply_status(change(&c, DeliveryStatus::Read, 20))
            .await
            .unwrap()
    );
    let read = store.message(id).await.unwrap().unwrap();
    assert_eq!(read.status, DeliveryStatus::Failed);
    assert_eq!(read.error_code.as_deref(), Some("131047"));
    assert_eq!(read.error_reason.as_deref(), Some("Re-engagement message"));
    // A failure after read is still recorded: the doc comment lets `failed` replace any step.
    let other = stored(&store, &c, Some("wamid.t"), DeliveryStatus::Sent).await;
    let mut read_t = change(&c, DeliveryStatus::Read, 5);
    read_t.provider_message_id = "wamid.t";
    store.apply_status(read_t.clone()).await.unwrap();
    read_t.status = DeliveryStatus::Failed;
    assert!(store.apply_status(read_t).await.unwrap());
    assert_eq!(
        store.message(other).await.unwrap().unwrap().status,
        DeliveryStatus::Failed
    );
}

async fn a_provider_id_taken_by_another_message_is_a_duplicate(store: Arc<dyn Store>) {
    let (_, c) = setup(&store).await;
    stored(&store, &c, Some("wamid.x"), DeliveryStatus::Sent).await;
    let queued = stored(&store, &c, None, DeliveryStatus::Queued).await;
    let clash = store.set_provider_message_id(queued, "wamid.x").await;
    assert!(
        matches!(clash, Err(StoreError::Conflict(Conflict::DuplicateMessage))),
        "{clash:?}"
    );
    store
        .set_provider_message_id(queued, "wamid.y")
        .await
        .unwrap();
    let read = store.message(queued).await.unwrap().unwrap();
    assert_eq!(read.provider_message_id.as_deref(), Some("wamid.y"));
}

async fn gateway_side_statuses_and_unreachable_are_set_directly(store: Arc<dyn Store>) {
    let (i, c) = setup(&store).await;
    let id = stored(&store, &c, None, DeliveryStatus::Queued).await;
    store
        .set_message_status(id, DeliveryStatus::Uncertain, None, None)
        .await
        .unwrap();
    assert_eq!(
        store.message(id).await.unwrap().unwrap().status,
        DeliveryStatus::Uncertain
    );
    store
        .set_message_status(
            id,
            DeliveryStatus::Failed,
            Some("timeout"),
            Some("no answer"),
        )
        .await
        .unwrap();
    let read = store.message(id).await.unwrap().unwrap();
    assert_eq!(
        (read.error_code.as_deref(), read.error_reason.as_deref()),
        (Some("timeout"), Some("no answer"))
    );
    store.set_unreachable(c.id, true).await.unwrap();
    assert!(
        store
            .conversation(i.business_id, c.id)
            .await
            .unwrap()
            .unwrap()
            .unreachable
    );
    let missing = store.set_unreachable(ConversationId::new(), true).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
    assert_eq!(store.message(MessageId::new()).await.unwrap(), None);
}
