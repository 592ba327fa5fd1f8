//! The webhook inbox: exact bytes, leases, outcomes, requeue.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchboard_core::EventId;
use switchboard_core::store::{InboxState, NewWebhookEvent, Store};

use crate::support::{at, business, channel, connected};

switchboard_store::on_both_backends!(crate::support::migrated =>
    webhook_bodies_round_trip_byte_for_byte,
    claims_lease_events_oldest_first_and_an_ended_lease_gives_them_back,
    finished_events_leave_the_queue_and_are_listed_by_state_newest_first,
    only_quarantined_or_unrouted_events_can_be_requeued,
    two_hundred_concurrent_inserts_all_commit_with_distinct_ids_and_intact_bodies,
    processed_events_received_before_a_time_are_deleted_oldest_first_and_no_others,
);

fn event(body: &[u8], secs: i64) -> NewWebhookEvent {
    NewWebhookEvent {
        channel: channel("whatsapp"),
        integration_id: None,
        body: Bytes::copy_from_slice(body),
        received_at: at(secs),
    }
}

async fn webhook_bodies_round_trip_byte_for_byte(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let i = connected(&store, a.id, "telegram", "bot-1").await;
    let bodies: [&[u8]; 4] = [
        b"{\"ok\":true}",
        &[0xff, 0xfe, 0x00, 0x80, b'\n'],
        b"",
        b" x ",
    ];
    for (n, body) in bodies.iter().enumerate() {
        let mut new = event(body, i64::try_from(n).unwrap());
        new.channel = channel("telegram");
        new.integration_id = Some(i.id);
        let id = store.insert_webhook_event(new).await.unwrap();
        let read = store.webhook_event(id).await.unwrap().unwrap();
        assert_eq!(read.body, *body);
        assert_eq!(read.channel, channel("telegram"));
        assert_eq!(read.integration_id, Some(i.id));
        assert_eq!(read.state, InboxState::Pending);
        assert_eq!(read.attempts, 0);
        assert_eq!(
            read.received_at.timestamp_micros(),
            at(0).timestamp_micros() + 1_000_000 * i64::try_from(n).unwrap()
        );
    }
    assert_eq!(store.webhook_event(EventId::new()).await.unwrap(), None);
}

async fn claims_lease_events_oldest_first_and_an_ended_lease_gives_them_back(
    store: Arc<dyn Store>,
) {
    let late = store.insert_webhook_event(event(b"late", 5)).await.unwrap();
    let early = store
        .insert_webhook_event(event(b"early", 1))
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    let first = store.claim_webhook_events(1, lease, at(10)).await.unwrap();
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), vec![early]);
    assert_eq!(first[0].attempts, 1);
    let second = store.claim_webhook_events(10, lease, at(11)).await.unwrap();
    assert_eq!(second.iter().map(|e| e.id).collect::<Vec<_>>(), vec![late]);
    assert!(
        store
            .claim_webhook_events(10, lease, at(39))
            .await
            .unwrap()
            .is_empty()
    );
    // The worker died: both leases end and both events come back, oldest first.
    let again = store.claim_webhook_events(10, lease, at(41)).await.unwrap();
    assert_eq!(
        again.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![early, late]
    );
    assert_eq!(again[0].attempts, 2);
}

async fn finished_events_leave_the_queue_and_are_listed_by_state_newest_first(
    store: Arc<dyn Store>,
) {
    let a = store.insert_webhook_event(event(b"a", 1)).await.unwrap();
    let b = store.insert_webhook_event(event(b"b", 2)).await.unwrap();
    let c = store.insert_webhook_event(event(b"c", 3)).await.unwrap();
    let lease = Duration::from_secs(30);
    assert_eq!(
        store
            .claim_webhook_events(10, lease, at(10))
            .await
            .unwrap()
            .len(),
        3
    );
    store
        .finish_webhook_event(a, InboxState::Quarantined, Some("bad json"))
        .await
        .unwrap();
    store
        .finish_webhook_event(b, InboxState::Processed, None)
        .await
        .unwrap();
    store
        .finish_webhook_event(c, InboxState::Quarantined, Some("worse"))
        .await
        .unwrap();
    // Finished events are not claimed again, even after the lease.
    assert!(
        store
            .claim_webhook_events(10, lease, at(100))
            .await
            .unwrap()
            .is_empty()
    );
    let quarantined = store
        .webhook_events_in_state(InboxState::Quarantined, 10)
        .await
        .unwrap();
    assert_eq!(
        quarantined.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![c, a]
    );
    assert_eq!(quarantined[1].error.as_deref(), Some("bad json"));
    let one = store
        .webhook_events_in_state(InboxState::Quarantined, 1)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let processed = store
        .webhook_events_in_state(InboxState::Processed, 10)
        .await
        .unwrap();
    assert_eq!(processed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![b]);
    assert!(
        store
            .webhook_events_in_state(InboxState::Unrouted, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn only_quarantined_or_unrouted_events_can_be_requeued(store: Arc<dyn Store>) {
    let q = store.insert_webhook_event(event(b"q", 1)).await.unwrap();
    let u = store.insert_webhook_event(event(b"u", 2)).await.unwrap();
    let p = store.insert_webhook_event(event(b"p", 3)).await.unwrap();
    let lease = Duration::from_secs(30);
    store.claim_webhook_events(10, lease, at(10)).await.unwrap();
    store
        .finish_webhook_event(q, InboxState::Quarantined, Some("x"))
        .await
        .unwrap();
    store
        .finish_webhook_event(u, InboxState::Unrouted, None)
        .await
        .unwrap();
    store
        .finish_webhook_event(p, InboxState::Processed, None)
        .await
        .unwrap();
    assert!(store.requeue_webhook_event(q).await.unwrap());
    assert!(store.requeue_webhook_event(u).await.unwrap());
    assert!(!store.requeue_webhook_event(p).await.unwrap());
    assert!(!store.requeue_webhook_event(EventId::new()).await.unwrap());
    let claimed = store.claim_webhook_events(10, lease, at(11)).await.unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![q, u]);
}

/// Inserts may be grouped into shared commits: each caller still gets its own id, and only
/// after its row is readable.
async fn two_hundred_concurrent_inserts_all_commit_with_distinct_ids_and_intact_bodies(
    store: Arc<dyn Store>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200_u8 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            // Distinct lengths and bytes, including non-UTF-8 ones.
            let body: Vec<u8> = std::iter::repeat_n(n, usize::from(n) + 1).collect();
            let id = store
                .insert_webhook_event(event(&body, i64::from(n)))
                .await
                .unwrap();
            let read = store.webhook_event(id).await.unwrap();
            assert_eq!(read.map(|e| e.body), Some(body.clone()), "{n}");
            (id, body)
        });
    }
    let mut inserted = std::collections::HashMap::new();
    while let Some(done) = tasks.join_next().await {
        let (id, body) = done.unwrap();
        assert!(inserted.insert(id, body).is_none(), "id {id} given twice");
    }
    assert_eq!(inserted.len(), 200);
    let claimed = store
        .claim_webhook_events(500, Duration::from_secs(30), at(1_000))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 200);
    for event in claimed {
        assert_eq!(
            inserted.get(&event.id).map(Vec::as_slice),
            Some(&event.body[..])
        );
    }
}

async fn processed_events_received_before_a_time_are_deleted_oldest_first_and_no_others(
    store: Arc<dyn Store>,
) {
    let a_moment = || tokio::time::sleep(Duration::from_millis(3));
    let mut old = Vec::new();
    for body in [
        "processed",
        "processed too",
        "pending",
        "quarantined",
        "unrouted",
    ] {
        let mut new = event(body.as_bytes(), 0);
        new.received_at = chrono::Utc::now();
        old.push(store.insert_webhook_event(new).await.unwrap());
        a_moment().await;
    }
    let outcomes = [
        (old[0], InboxState::Processed, None),
        (old[1], InboxState::Processed, None),
        (old[3], InboxState::Quarantined, Some("unparseable")),
        (old[4], InboxState::Unrouted, None),
    ];
    for (id, state, error) in outcomes {
        store.finish_webhook_event(id, state, error).await.unwrap();
    }
    let cutoff = chrono::Utc::now();
    a_moment().await;
    let mut new = event(b"recent", 0);
    new.received_at = chrono::Utc::now();
    let recent = store.insert_webhook_event(new).await.unwrap();
    store
        .finish_webhook_event(recent, InboxState::Processed, None)
        .await
        .unwrap();

    // One at a time, the oldest first.
    let swept = store.delete_processed_webhook_events(cutoff, 1).await;
    assert_eq!(swept.unwrap(), 1);
    assert_eq!(store.webhook_event(old[0]).await.unwrap(), None);
    assert!(store.webhook_event(old[1]).await.unwrap().is_some());
    let swept = store.delete_processed_webhook_events(cutoff, 100).await;
    assert_eq!(swept.unwrap(), 1);
    assert_eq!(store.webhook_event(old[1]).await.unwrap(), None);
    // Nothing else is old and processed: the pending, quarantined, unrouted and recent rows stay.
    let swept = store.delete_processed_webhook_events(cutoff, 100).await;
    assert_eq!(swept.unwrap(), 0);
    for (kept, state) in [
        (old[2], InboxState::Pending),
        (old[3], InboxState::Quarantined),
        (old[4], InboxState::Unrouted),
        (recent, InboxState::Processed),
    ] {
        let row = store.webhook_event(kept).await.unwrap();
        assert_eq!(row.map(|r| r.state), Some(state));
    }
}
