//! Conversations: one per external chat, times that only move forward, tenant isolation, pages.

use std::sync::Arc;

use switchboard_core::StoreError;
use switchboard_core::store::{Conversation, Page, Store};

use crate::support::{at, business, micros, setup, upsert};

switchboard_store::on_both_backends!(crate::support::migrated =>
    upserting_keeps_one_conversation_per_chat_and_only_moves_times_forward,
    another_business_cannot_read_or_touch_a_conversation,
    conversations_are_listed_by_latest_activity_a_page_at_a_time,
    pages_through_conversations_with_the_same_activity_skip_and_repeat_nothing,
    a_conversation_is_found_by_its_integration_and_chat,
);

async fn upserting_keeps_one_conversation_per_chat_and_only_moves_times_forward(
    store: Arc<dyn Store>,
) {
    let (i, c) = setup(&store).await;
    assert_eq!(c.contact_name.as_deref(), Some("Ann"));
    assert_eq!(c.last_message_at, Some(micros(at(0))));
    assert_eq!(c.window_expires_at, None);
    assert!(!c.unreachable);
    let mut later = upsert(&i, "15550001", None, 50);
    later.window_expires_at = Some(at(86_400));
    let c2 = store.upsert_conversation(later).await.unwrap();
    assert_eq!(c2.id, c.id);
    assert_eq!(
        c2.contact_name.as_deref(),
        Some("Ann"),
        "a missing name keeps the old one"
    );
    assert_eq!(c2.window_expires_at, Some(micros(at(86_400))));
    let mut older = upsert(&i, "15550001", Some("Ann B"), 10);
    older.window_expires_at = Some(at(100));
    let c3 = store.upsert_conversation(older).await.unwrap();
    assert_eq!(c3.contact_name.as_deref(), Some("Ann B"));
    assert_eq!(
        c3.last_message_at,
        Some(micros(at(50))),
        "activity never goes back"
    );
    assert_eq!(
        c3.window_expires_at,
        Some(micros(at(86_400))),
        "a window never shrinks"
    );
    let other = store
        .upsert_conversation(upsert(&i, "15550002", None, 1))
        .await
        .unwrap();
    assert_ne!(other.id, c.id);
    assert_eq!(
        store.conversation(i.business_id, c.id).await.unwrap(),
        Some(c3)
    );
}

async fn another_business_cannot_read_or_touch_a_conversation(store: Arc<dyn Store>) {
    let (i, c) = setup(&store).await;
    let b = business(&store, "B").await;
    assert_eq!(store.conversation(b.id, c.id).await.unwrap(), None);
    let page = Page {
        before: None,
        limit: 10,
    };
    assert!(
        store
            .list_conversations(b.id, page)
            .await
            .unwrap()
            .is_empty()
    );
    let mut hijack = upsert(&i, "15550001", Some("Mallory"), 99);
    hijack.business_id = b.id;
    let refused = store.upsert_conversation(hijack).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    let kept = store
        .conversation(i.business_id, c.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.contact_name.as_deref(), Some("Ann"));
}

async fn conversations_are_listed_by_latest_activity_a_page_at_a_time(store: Arc<dyn Store>) {
    let (i, first) = setup(&store).await;
    let second = store
        .upsert_conversation(upsert(&i, "2", None, 20))
        .await
        .unwrap();
    let third = store
        .upsert_conversation(upsert(&i, "3", None, 10))
        .await
        .unwrap();
    // New activity in the oldest conversation brings it to the top.
    store
        .upsert_conversation(upsert(&i, "15550001", None, 30))
        .await
        .unwrap();
    let ids = |cs: Vec<Conversation>| cs.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let all = store.list_conversations(
        i.business_id,
        Page {
            before: None,
            limit: 10,
        },
    );
    assert_eq!(ids(all.await.unwrap()), vec![first.id, second.id, third.id]);
    let page1 = store.list_conversations(
        i.business_id,
        Page {
            before: None,
            limit: 2,
        },
    );
    assert_eq!(ids(page1.await.unwrap()), vec![first.id, second.id]);
    let page2 = Page {
        before: Some(second.id),
        limit: 2,
    };
    let page2 = store
        .list_conversations(i.business_id, page2)
        .await
        .unwrap();
    assert_eq!(ids(page2), vec![third.id]);
    let after_last = Page {
        before: Some(third.id),
        limit: 2,
    };
    assert!(
        store
            .list_conversations(i.business_id, after_last)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn pages_through_conversations_with_the_same_activity_skip_and_repeat_nothing(
    store: Arc<dyn Store>,
) {
    let (i, _) = setup(&store).await;
    // Four conversations at one moment between others: ties are ordered by id.
    for (chat, secs) in [
        ("a", 40),
        ("b", 20),
        ("c", 20),
        ("d", 20),
        ("e", 20),
        ("f", 10),
    ] {
        store
            .upsert_conversation(upsert(&i, chat, None, secs))
            .await
            .unwrap();
    }
    let first_page = Page {
        before: None,
        limit: 100,
    };
    let all = store
        .list_conversations(i.business_id, first_page)
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
    for pair in all.windows(2) {
        let key = |c: &Conversation| (c.last_message_at, c.id);
        assert!(key(&pair[0]) > key(&pair[1]), "{pair:?}");
    }
    // One at a time, each page after the last: the same conversations in the same order.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = Page { before, limit: 1 };
        let items = store.list_conversations(i.business_id, page).await.unwrap();
        let Some(last) = items.last() else { break };
        before = Some(last.id);
        paged.extend(items);
        assert!(paged.len() <= all.len(), "paging does not end: {paged:?}");
    }
    assert_eq!(paged, all);
}

async fn a_conversation_is_found_by_its_integration_and_chat(store: Arc<dyn Store>) {
    let (i, c) = setup(&store).await;
    let found = store
        .conversation_by_chat(i.id, &c.external_chat_id)
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.id), Some(c.id));
    assert!(
        store
            .conversation_by_chat(i.id, "someone-else")
            .await
            .unwrap()
            .is_none()
    );
    let other = switchboard_core::IntegrationId::new();
    assert!(
        store
            .conversation_by_chat(other, &c.external_chat_id)
            .await
            .unwrap()
            .is_none()
    );
}
