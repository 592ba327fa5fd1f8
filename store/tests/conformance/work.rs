//! Units of work (`Store::commit`): what a batch of inbox rows or jobs writes, with the same
//! meaning on every backend, whether it is applied in one transaction or part by part.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::domain::{DeliveryStatus, MessageKind};
use switchboard_core::store::{
    Accepted, AccountRecord, Arrival, Direction, FollowUp, InboxState, Inserted, JobEnd, JobState,
    NewJob, NewWebhookEvent, Outgoing, Page, ReplyDraft, StatusReport, StatusSet, Store, Work,
};
use switchboard_core::{ConversationId, Integration, MessageId};

use crate::support::{
    at, business, channel, connected, message, micros, new_id, setup, stored, upsert,
};

switchboard_store::on_both_backends!(crate::support::migrated =>
    arrivals_are_stored_once_each_with_one_follow_up_even_when_repeated,
    status_reports_end_at_the_most_advanced_and_adopt_free_references_only,
    accepted_sends_take_a_free_provider_id_and_never_step_back,
    outgoing_messages_under_one_key_are_stored_once_with_one_job,
    job_ends_inbox_rows_account_events_and_webhook_times_are_applied,
    an_arrival_queues_its_replies_once_into_its_conversation,
    messages_and_conversations_are_read_in_bulk_within_their_business,
);

fn follow_up(integration: &Integration) -> FollowUp {
    let business = integration.business_id;
    let integration = integration.id;
    FollowUp::new(
        move |message: MessageId, conversation: ConversationId| NewJob {
            kind: "respond".into(),
            business_id: business,
            integration_id: Some(integration),
            payload: serde_json::json!({ "message_id": message, "conversation_id": conversation }),
            run_at: at(0),
            dedupe_key: Some(format!("respond:{message}")),
            queue_key: Some(format!("conversation:{conversation}")),
            max_attempts: 5,
        },
    )
}

fn arrival(i: &Integration, chat: &str, name: Option<&str>, pid: &str, secs: i64) -> Arrival {
    Arrival {
        conversation: switchboard_core::store::ConversationUpsert {
            window_expires_at: Some(at(secs + 86_400)),
            ..upsert(i, chat, name, secs)
        },
        provider_message_id: pid.to_owned(),
        kind: MessageKind::Text,
        text: Some(format!("text of {pid}")),
        payload: serde_json::json!({ "pid": pid }),
        provider_timestamp: at(secs),
        follow_up: Some(follow_up(i)),
        replies: Vec::new(),
    }
}

fn report(i: &Integration, pid: &str, status: DeliveryStatus, secs: i64) -> StatusReport {
    StatusReport {
        integration_id: i.id,
        provider_message_id: pid.to_owned(),
        status,
        at: at(secs),
        error_code: None,
        error_reason: None,
        reference: None,
    }
}

async fn arrivals_are_stored_once_each_with_one_follow_up_even_when_repeated(
    store: Arc<dyn Store>,
) {
    let a = business(&store, "A").await;
    let i = connected(&store, a.id, "whatsapp", "pn-1").await;
    let unit = || Work {
        arrivals: vec![
            arrival(&i, "1555", Some("Ann"), "wamid.A", 1),
            arrival(&i, "1555", None, "wamid.A", 1),
            arrival(&i, "1666", Some("Bob"), "wamid.B", 2),
            arrival(&i, "1555", Some("Ann B."), "wamid.C", 3),
        ],
        ..Work::default()
    };
    let first = store.commit(unit()).await.unwrap();
    assert_eq!(first.arrivals.len(), 4);
    let a_id = new_id(first.arrivals[0].message);
    assert_eq!(first.arrivals[1].message, Inserted::Duplicate(a_id));
    let b_id = new_id(first.arrivals[2].message);
    let c_id = new_id(first.arrivals[3].message);
    assert_eq!(
        first.arrivals[0].conversation_id,
        first.arrivals[3].conversation_id
    );
    assert_ne!(
        first.arrivals[0].conversation_id,
        first.arrivals[2].conversation_id
    );
    // One follow-up per distinct message, the repeat's included in its first's.
    assert_eq!(first.jobs_created, 3);

    // The same unit again (a redelivery, or a re-run after a crash) changes nothing.
    let again = store.commit(unit()).await.unwrap();
    let ids: Vec<Inserted> = again.arrivals.iter().map(|s| s.message).collect();
    assert_eq!(
        ids,
        vec![
            Inserted::Duplicate(a_id),
            Inserted::Duplicate(a_id),
            Inserted::Duplicate(b_id),
            Inserted::Duplicate(c_id)
        ]
    );
    assert_eq!(again.jobs_created, 0);

    let chat = store
        .conversation_by_chat(i.id, "1555")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chat.id, first.arrivals[0].conversation_id);
    assert_eq!(chat.contact_name.as_deref(), Some("Ann B."));
    assert_eq!(chat.last_message_at, Some(micros(at(3))));
    assert_eq!(chat.window_expires_at, Some(micros(at(3 + 86_400))));
    let listed = store
        .list_messages(
            chat.id,
            Page {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let listed: Vec<MessageId> = listed.iter().map(|m| m.id).collect();
    assert_eq!(listed, vec![c_id, a_id], "newest first, in arrival order");
    let stored = store.message(a_id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Delivered);
    assert_eq!(stored.text.as_deref(), Some("text of wamid.A"));
    assert_eq!(stored.provider_timestamp, Some(micros(at(1))));

    // The follow-ups carry the stored ids and keep each conversation's queue.
    let jobs = store
        .claim_jobs("w", 10, Duration::from_secs(60), at(10))
        .await
        .unwrap();
    let mut payloads: Vec<(String, String)> = jobs
        .iter()
        .map(|j| {
            (
                j.payload["message_id"].as_str().unwrap().to_owned(),
                j.payload["conversation_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    payloads.sort();
    // Chat 1555's second job waits behind its first: one job per queue per claim.
    let mut expected = vec![
        (a_id.to_string(), chat.id.to_string()),
        (
            b_id.to_string(),
            first.arrivals[2].conversation_id.to_string(),
        ),
    ];
    expected.sort();
    assert_eq!(payloads, expected);
}

async fn status_reports_end_at_the_most_advanced_and_adopt_free_references_only(
    store: Arc<dyn Store>,
) {
    let (i, c) = setup(&store).await;
    let pending = stored(&store, &c, Some("sb:pending"), DeliveryStatus::Uncertain).await;
    let holder = stored(&store, &c, Some("wamid.taken"), DeliveryStatus::Sent).await;
    let blocked = stored(&store, &c, Some("sb:blocked"), DeliveryStatus::Uncertain).await;
    let failing = stored(&store, &c, Some("wamid.f"), DeliveryStatus::Sent).await;
    let with_ref = |pid: &str, status, secs, reference| StatusReport {
        reference: Some(reference),
        ..report(&i, pid, status, secs)
    };
    let mut failed = report(&i, "wamid.f", DeliveryStatus::Failed, 9);
    failed.error_code = Some("131047".into());
    failed.error_reason = Some("Re-engagement message".into());
    let work = Work {
        statuses: vec![
            with_ref("wamid.new", DeliveryStatus::Delivered, 5, pending),
            with_ref("wamid.new", DeliveryStatus::Read, 6, pending),
            with_ref("wamid.new", DeliveryStatus::Sent, 4, pending),
            // Another message holds this id: the reference is not adopted.
            with_ref("wamid.taken", DeliveryStatus::Delivered, 5, blocked),
            failed,
            report(&i, "wamid.f", DeliveryStatus::Delivered, 10),
        ],
        ..Work::default()
    };
    store.commit(work).await.unwrap();

    let adopted = store.message(pending).await.unwrap().unwrap();
    assert_eq!(adopted.provider_message_id.as_deref(), Some("wamid.new"));
    assert_eq!(adopted.status, DeliveryStatus::Read);
    assert_eq!(adopted.status_at, Some(micros(at(6))));
    let still = store.message(blocked).await.unwrap().unwrap();
    assert_eq!(still.provider_message_id.as_deref(), Some("sb:blocked"));
    assert_eq!(still.status, DeliveryStatus::Uncertain);
    assert_eq!(
        store.message(holder).await.unwrap().unwrap().status,
        DeliveryStatus::Delivered
    );
    let failed = store.message(failing).await.unwrap().unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.error_code.as_deref(), Some("131047"));
    assert_eq!(
        failed.error_reason.as_deref(),
        Some("Re-engagement message")
    );

    // A late `delivered` in a later unit does not overwrite `read`.
    let late = Work {
        statuses: vec![report(&i, "wamid.new", DeliveryStatus::Delivered, 7)],
        ..Work::default()
    };
    store.commit(late).await.unwrap();
    assert_eq!(
        store.message(pending).await.unwrap().unwrap().status,
        DeliveryStatus::Read
    );
}

async fn accepted_sends_take_a_free_provider_id_and_never_step_back(store: Arc<dyn Store>) {
    let (i, c) = setup(&store).await;
    let uncertain = DeliveryStatus::Uncertain;
    let plain = stored(&store, &c, Some("sb:1"), uncertain).await;
    let already_read = stored(&store, &c, Some("sb:2"), uncertain).await;
    let clash = stored(&store, &c, Some("sb:3"), uncertain).await;
    let no_id = stored(&store, &c, Some("sb:4"), uncertain).await;
    // The provider's reports for the second send came before its response.
    let early = Work {
        statuses: vec![StatusReport {
            reference: Some(already_read),
            ..report(&i, "wamid.2", DeliveryStatus::Read, 3)
        }],
        ..Work::default()
    };
    store.commit(early).await.unwrap();
    let accepted = |id, pid: Option<&str>| Accepted {
        message_id: id,
        provider_message_id: pid.map(str::to_owned),
    };
    let work = Work {
        accepted: vec![
            accepted(plain, Some("wamid.1")),
            accepted(already_read, Some("wamid.2")),
            accepted(clash, Some("wamid.1")),
            accepted(no_id, None),
        ],
        ..Work::default()
    };
    store.commit(work).await.unwrap();
    let read = |id| {
        let store = Arc::clone(&store);
        async move { store.message(id).await.unwrap().unwrap() }
    };
    let m = read(plain).await;
    assert_eq!(
        (m.provider_message_id.as_deref(), m.status),
        (Some("wamid.1"), DeliveryStatus::Sent)
    );
    let m = read(already_read).await;
    assert_eq!(
        (m.provider_message_id.as_deref(), m.status),
        (Some("wamid.2"), DeliveryStatus::Read)
    );
    let m = read(clash).await;
    assert_eq!(
        (m.provider_message_id.as_deref(), m.status),
        (Some("sb:3"), DeliveryStatus::Sent)
    );
    let m = read(no_id).await;
    assert_eq!(
        (m.provider_message_id.as_deref(), m.status),
        (Some("sb:4"), DeliveryStatus::Sent)
    );
}

async fn outgoing_messages_under_one_key_are_stored_once_with_one_job(store: Arc<dyn Store>) {
    let (i, c) = setup(&store).await;
    let unit = || Work {
        outgoing: vec![Outgoing {
            message: message(&c, Some("sb:reply:x:0"), DeliveryStatus::Queued),
            follow_up: Some(follow_up(&i)),
        }],
        ..Work::default()
    };
    let first = store.commit(unit()).await.unwrap();
    let id = new_id(first.outgoing[0].message);
    assert_eq!(first.outgoing[0].conversation_id, c.id);
    assert_eq!(first.jobs_created, 1);
    let second = store.commit(unit()).await.unwrap();
    assert_eq!(second.outgoing[0].message, Inserted::Duplicate(id));
    assert_eq!(second.jobs_created, 0);
    let m = store.message(id).await.unwrap().unwrap();
    assert_eq!(m.status, DeliveryStatus::Queued);
    // A status the gateway sets is applied as given.
    let set = Work {
        status_sets: vec![StatusSet {
            message_id: id,
            status: DeliveryStatus::Failed,
            error_code: Some("window_closed".into()),
            error_reason: Some("the window is closed".into()),
        }],
        ..Work::default()
    };
    store.commit(set).await.unwrap();
    let m = store.message(id).await.unwrap().unwrap();
    assert_eq!(m.status, DeliveryStatus::Failed);
    assert_eq!(m.error_code.as_deref(), Some("window_closed"));
}

async fn job_ends_inbox_rows_account_events_and_webhook_times_are_applied(store: Arc<dyn Store>) {
    let (i, c) = setup(&store).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = store
            .enqueue_job(NewJob {
                kind: "send".into(),
                business_id: i.business_id,
                integration_id: Some(i.id),
                payload: serde_json::json!({ "n": n }),
                run_at: at(0),
                dedupe_key: None,
                queue_key: None,
                max_attempts: 5,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    let claimed = store
        .claim_jobs("w", 10, Duration::from_secs(60), at(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    let events = [b"one".as_slice(), b"two".as_slice()];
    for body in events {
        store
            .insert_webhook_event(NewWebhookEvent {
                channel: channel("whatsapp"),
                integration_id: None,
                body: bytes::Bytes::copy_from_slice(body),
                received_at: at(1),
            })
            .await
            .unwrap();
    }
    let rows = store
        .claim_webhook_events(10, Duration::from_secs(60), at(1))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let work = Work {
        account_events: vec![AccountRecord {
            integration_id: i.id,
            kind: "bot_blocked".into(),
            summary: "blocked by 15550001".into(),
            raw: serde_json::json!({ "chat": "15550001" }),
            chat: Some(c.external_chat_id.clone()),
            reachable: Some(false),
        }],
        webhook_touches: vec![(i.id, at(40)), (i.id, at(30))],
        job_ends: vec![
            (ids[0], JobEnd::Complete),
            (
                ids[1],
                JobEnd::Retry {
                    at: at(100),
                    error: "503: try later".into(),
                },
            ),
            (ids[2], JobEnd::Postpone { at: at(50) }),
            (
                ids[3],
                JobEnd::Hold {
                    error: "reconnect".into(),
                },
            ),
            (
                ids[4],
                JobEnd::Kill {
                    error: "window_closed".into(),
                },
            ),
        ],
        inbox: vec![
            (rows[0].id, InboxState::Processed, None),
            (
                rows[1].id,
                InboxState::Quarantined,
                Some("not the provider's format".into()),
            ),
        ],
        ..Work::default()
    };
    store.commit(work).await.unwrap();

    let job = |n: usize| {
        let store = Arc::clone(&store);
        let id = ids[n];
        async move { store.job(id).await.unwrap().unwrap() }
    };
    assert_eq!(job(0).await.state, JobState::Done);
    let retried = job(1).await;
    assert_eq!(
        (retried.state, retried.run_at, retried.attempts),
        (JobState::Pending, micros(at(100)), 1)
    );
    assert_eq!(retried.last_error.as_deref(), Some("503: try later"));
    let postponed = job(2).await;
    assert_eq!(
        (postponed.state, postponed.run_at, postponed.attempts),
        (JobState::Pending, micros(at(50)), 0),
        "a postponement gives the attempt back"
    );
    let held = job(3).await;
    assert_eq!(
        (held.state, held.last_error.as_deref()),
        (JobState::Held, Some("reconnect"))
    );
    let dead = job(4).await;
    assert_eq!(
        (dead.state, dead.last_error.as_deref()),
        (JobState::Dead, Some("window_closed"))
    );

    let processed = store.webhook_event(rows[0].id).await.unwrap().unwrap();
    assert_eq!(processed.state, InboxState::Processed);
    let quarantined = store.webhook_event(rows[1].id).await.unwrap().unwrap();
    assert_eq!(quarantined.state, InboxState::Quarantined);
    assert_eq!(
        quarantined.error.as_deref(),
        Some("not the provider's format")
    );
    let pending = store
        .claim_webhook_events(10, Duration::from_secs(60), at(500))
        .await
        .unwrap();
    assert!(pending.is_empty(), "finished rows are not claimed again");

    let conversation = store
        .conversation(i.business_id, c.id)
        .await
        .unwrap()
        .unwrap();
    assert!(conversation.unreachable);
    let recorded = store.integration_events(i.id, 10).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].kind, "bot_blocked");
    assert_eq!(recorded[0].summary, "blocked by 15550001");
    let integration = store.integration_by_id(i.id).await.unwrap().unwrap();
    assert_eq!(integration.last_webhook_at, Some(micros(at(40))));

    // Unblocking makes the conversation reachable again.
    let work = Work {
        account_events: vec![AccountRecord {
            integration_id: i.id,
            kind: "bot_unblocked".into(),
            summary: "unblocked".into(),
            raw: serde_json::json!({}),
            chat: Some(c.external_chat_id.clone()),
            reachable: Some(true),
        }],
        ..Work::default()
    };
    store.commit(work).await.unwrap();
    let conversation = store
        .conversation(i.business_id, c.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!conversation.unreachable);
}

async fn messages_and_conversations_are_read_in_bulk_within_their_business(store: Arc<dyn Store>) {
    let (i, c) = setup(&store).await;
    let other = business(&store, "B").await;
    let one = stored(&store, &c, Some("wamid.1"), DeliveryStatus::Sent).await;
    let two = stored(&store, &c, Some("wamid.2"), DeliveryStatus::Sent).await;
    let mut found: Vec<MessageId> = store
        .messages_by_ids(&[one, two, MessageId::new()])
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    found.sort();
    let mut expected = vec![one, two];
    expected.sort();
    assert_eq!(found, expected);
    let conversations = store
        .conversations_by_ids(&[(i.business_id, c.id), (other.id, c.id)])
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1, "another business does not see it");
    assert_eq!(conversations[0], c);
}

async fn an_arrival_queues_its_replies_once_into_its_conversation(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let i = connected(&store, a.id, "whatsapp", "pn-1").await;
    let answered = |pid: &str, chat: &str, secs| {
        let mut arrival = arrival(&i, chat, None, pid, secs);
        arrival.follow_up = None;
        arrival.replies = (0..2)
            .map(|n| ReplyDraft {
                local_id: format!("sb:reply:{pid}:{n}"),
                kind: MessageKind::Text,
                text: Some(format!("answer {n} to {pid}")),
                payload: serde_json::json!({ "n": n }),
                follow_up: Some(follow_up(&i)),
            })
            .collect();
        arrival
    };
    let unit = || Work {
        arrivals: vec![
            answered("wamid.A", "1555", 1),
            answered("wamid.B", "1666", 2),
        ],
        ..Work::default()
    };
    let first = store.commit(unit()).await.unwrap();
    assert_eq!(first.replies.len(), 4);
    for (n, stored) in first.replies.iter().enumerate() {
        let id = new_id(stored.message);
        let expected = first.arrivals[n / 2].conversation_id;
        assert_eq!(
            stored.conversation_id, expected,
            "reply {n} in its arrival's chat"
        );
        let message = store.message(id).await.unwrap().unwrap();
        assert_eq!(message.direction, Direction::Outbound);
        assert_eq!(message.status, DeliveryStatus::Queued);
        assert_eq!(message.conversation_id, expected);
        assert_eq!(message.integration_id, i.id);
        assert_eq!(
            message.text,
            Some(format!("answer {} to wamid.{}", n % 2, ["A", "B"][n / 2]))
        );
    }
    assert_eq!(first.jobs_created, 4, "one follow-up per reply");
    // The replies are sent: their local ids give way to the provider's.
    let accepted = first
        .replies
        .iter()
        .enumerate()
        .map(|(n, stored)| Accepted {
            message_id: stored.message_id(),
            provider_message_id: Some(format!("wamid.reply.{n}")),
        })
        .collect();
    store
        .commit(Work {
            accepted,
            ..Work::default()
        })
        .await
        .unwrap();
    // Redelivered (in the same unit twice, too): a repeat queues no reply.
    let mut redelivered = unit();
    redelivered.arrivals.push(answered("wamid.A", "1555", 1));
    let again = store.commit(redelivered).await.unwrap();
    assert!(again.replies.is_empty(), "{again:?}");
    assert_eq!(again.jobs_created, 0);
    assert!(
        again
            .arrivals
            .iter()
            .all(|s| matches!(s.message, Inserted::Duplicate(_)))
    );
    let chat = store
        .conversation_by_chat(i.id, "1555")
        .await
        .unwrap()
        .unwrap();
    let thread = store
        .list_messages(
            chat.id,
            Page {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        thread.len(),
        3,
        "one message and its two replies: {thread:?}"
    );
    // A repeat within one unit is a repeat too.
    let twice = Work {
        arrivals: vec![
            answered("wamid.C", "1555", 5),
            answered("wamid.C", "1555", 5),
        ],
        ..Work::default()
    };
    let committed = store.commit(twice).await.unwrap();
    assert_eq!(committed.replies.len(), 2);
    assert_eq!(committed.jobs_created, 2);
}
