//! The pipeline end to end through the `loopback` channel: inbound → stored → one automated
//! reply sent; duplicates; order; a row the database refuses; retries; held queues; dead
//! letters; the uncertain outcome; quarantine and replay; the conversation API and its tenant
//! isolation.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_tests::app::LOOPBACK_SECRET;
use switchboard_tests::channel::{attempts, delivered, refuse_tokens, sign};
use switchboard_tests::{Backend, TestApp, eventually};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn connect(app: &TestApp, key: &str, account: &str) {
    let response = app
        .client
        .post(app.url("/api/integrations/loopback/connect"))
        .bearer_auth(key)
        .json(&json!({ "token": account }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn inbound(app: &TestApp, body: &Value) {
    inbound_bytes(app, serde_json::to_vec(body).unwrap()).await;
}

/// Posts `bytes` signed as the loopback channel's webhook; it must be acknowledged.
async fn inbound_bytes(app: &TestApp, bytes: Vec<u8>) {
    let response = app
        .client
        .post(app.url("/api/webhooks/loopback"))
        .header("x-loopback-signature", sign(LOOPBACK_SECRET, &bytes))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn message(account: &str, id: &str, chat: &str, text: &str) -> Value {
    json!({ "account": account, "id": id, "chat": chat, "text": text })
}

async fn get(app: &TestApp, key: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn thread(app: &TestApp, key: &str, chat: &str) -> Vec<Value> {
    let (_, list) = get(app, key, "/api/conversations").await;
    let Some(conversation) = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["external_chat_id"] == chat)
    else {
        return Vec::new();
    };
    let (_, messages) = get(
        app,
        key,
        &format!(
            "/api/conversations/{}/messages",
            conversation["id"].as_str().unwrap()
        ),
    )
    .await;
    messages["items"].as_array().unwrap().clone()
}

async fn setup(
    backend: switchboard_tests::Backend,
    extra: &str,
) -> Option<(TestApp, String, String)> {
    let app = TestApp::spawn(backend, extra).await?;
    let (_, key) = app.tenant("Acme").await;
    let account = unique("acct");
    connect(&app, &key, &account).await;
    Some((app, key, account))
}

crate::on_both_backends! {
    async fn an_inbound_message_delivered_three_times_is_stored_once_and_answered_once(backend: Backend) {
        let Some((app, key, account)) = setup(backend, "").await else { return };
        let body = json!([message(&account, "m1", "alice", "hello")]);
        for _ in 0..3 {
            inbound(&app, &body).await;
        }
        // And once more inside a batch with another message.
        inbound(&app, &json!([message(&account, "m1", "alice", "hello"), message(&account, "m2", "bob", "hi")])).await;
        eventually("both replies", || async { delivered(&account).len() >= 2 }).await;
        eventually("replies marked sent", || async {
            thread(&app, &key, "alice").await.iter().any(|m| m["direction"] == "outbound" && m["status"] == "sent")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let replies = delivered(&account);
        assert_eq!(replies.iter().filter(|d| d.to == "alice").count(), 1, "{replies:?}");
        assert_eq!(replies.iter().filter(|d| d.to == "bob").count(), 1);
        assert!(replies[0].text.starts_with("Thanks for your message"));
        let alice = thread(&app, &key, "alice").await;
        assert_eq!(alice.len(), 2, "one inbound and one reply: {alice:?}");
        assert_eq!(alice[1]["direction"], "inbound");
        assert_eq!(alice[1]["text"], "hello");
        assert!(alice[0]["provider_message_id"].as_str().unwrap().starts_with("lb-"), "the provider's id replaces the placeholder");
    }

    async fn a_burst_in_one_conversation_is_answered_in_order(backend: Backend) {
        let Some((app, _key, account)) = setup(backend, "[responder]\nkind = \"echo\"\n").await else { return };
        for n in 0..6 {
            inbound(&app, &json!([message(&account, &format!("b{n}"), "carol", &format!("message {n}"))])).await;
        }
        eventually("six echoes", || async { delivered(&account).len() == 6 }).await;
        let texts: Vec<String> = delivered(&account).into_iter().map(|d| d.text).collect();
        let expected: Vec<String> = (0..6).map(|n| format!("message {n}")).collect();
        assert_eq!(texts, expected);
    }

    async fn retryable_failures_are_retried_until_the_send_succeeds(backend: Backend) {
        let Some((app, key, account)) = setup(backend, "").await else { return };
        inbound(&app, &json!([message(&account, "r1", "retry-2-dave", "hi")])).await;
        eventually("delivered after retries", || async { delivered(&account).len() == 1 }).await;
        assert_eq!(attempts(&account, "retry-2-dave"), 3);
        eventually("sent", || async {
            thread(&app, &key, "retry-2-dave").await.iter().any(|m| m["status"] == "sent")
        })
        .await;
    }

    async fn a_refused_token_holds_the_queue_until_the_channel_is_reconnected(backend: Backend) {
        let Some((app, key, account)) = setup(backend, "").await else { return };
        refuse_tokens(&account, true);
        inbound(&app, &json!([message(&account, "t1", "reauth-erin", "hi")])).await;
        eventually("needs_reauth", || async {
            get(&app, &key, "/api/integrations").await.1[0]["state"] == "needs_reauth"
        })
        .await;
        inbound(&app, &json!([message(&account, "t2", "reauth-erin", "still there?")])).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(attempts(&account, "reauth-erin"), 1, "a held queue does not burn attempts");
        let queued = thread(&app, &key, "reauth-erin").await;
        assert!(queued.iter().filter(|m| m["direction"] == "outbound").all(|m| m["status"] == "queued"), "{queued:?}");
        refuse_tokens(&account, false);
        connect(&app, &key, &account).await;
        eventually("both replies after reconnect", || async { delivered(&account).len() == 2 }).await;
    }

    async fn a_blocked_recipient_fails_the_message_and_the_conversation_becomes_unreachable(backend: Backend) {
        let Some((app, key, account)) = setup(backend, "").await else { return };
        inbound(&app, &json!([message(&account, "x1", "blocked-frank", "hi")])).await;
        eventually("failed", || async {
            thread(&app, &key, "blocked-frank").await.iter().any(|m| m["status"] == "failed")
        })
        .await;
        let reply = thread(&app, &key, "blocked-frank").await.into_iter().find(|m| m["direction"] == "outbound").unwrap();
        assert_eq!(reply["error_code"], "403");
        assert_eq!(reply["error_reason"], "bot was blocked by the user");
        let (_, list) = get(&app, &key, "/api/conversations").await;
        let conversation = list["items"].as_array().unwrap().iter().find(|c| c["external_chat_id"] == "blocked-frank").unwrap().clone();
        assert_eq!(conversation["unreachable"], true);
    }

    async fn an_unknown_outcome_is_marked_uncertain_and_never_repeated(backend: Backend) {
        let Some((app, key, account)) = setup(backend, "").await else { return };
        inbound(&app, &json!([message(&account, "u1", "timeout-gina", "hi")])).await;
        eventually("uncertain", || async {
            thread(&app, &key, "timeout-gina").await.iter().any(|m| m["status"] == "uncertain")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(attempts(&account, "timeout-gina"), 1);
    }

    async fn exhausted_attempts_end_in_the_dead_letter_list_and_can_be_retried(backend: Backend) {
        let Some((app, key, account)) = setup(backend, "[workers]\nmax_attempts = 2\n").await else { return };
        inbound(&app, &json!([message(&account, "d1", "retry-3-hank", "hi")])).await;
        eventually("dead", || async { !get(&app, &key, "/api/jobs/dead").await.1["items"].as_array().unwrap().is_empty() }).await;
        let dead = get(&app, &key, "/api/jobs/dead").await.1["items"][0].clone();
        assert_eq!(dead["kind"], "send");
        assert!(dead["last_error"].as_str().unwrap().contains("provider busy"), "{dead}");
        let failed = thread(&app, &key, "retry-3-hank").await.into_iter().find(|m| m["direction"] == "outbound").unwrap();
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error_code"], "attempts_exhausted");
        // Another tenant cannot retry it.
        let (_, other) = app.tenant("Other").await;
        let path = format!("/api/jobs/{}/retry", dead["id"].as_str().unwrap());
        let refused = app.client.post(app.url(&path)).bearer_auth(&other).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        let retried = app.client.post(app.url(&path)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(retried.status(), StatusCode::ACCEPTED);
        eventually("delivered after the retry", || async { delivered(&account).len() == 1 }).await;
        assert_eq!(attempts(&account, "retry-3-hank"), 4);
    }

    async fn an_unparseable_body_is_quarantined_visible_and_replayable(backend: Backend) {
        let Some((app, key, _account)) = setup(backend, "").await else { return };
        let garbage = b"{\"this is\": not a loopback body".to_vec();
        let response = app
            .client
            .post(app.url("/api/webhooks/loopback"))
            .header("x-loopback-signature", sign(LOOPBACK_SECRET, &garbage))
            .body(garbage)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        eventually("quarantined", || async { !get(&app, &key, "/api/events/quarantine").await.1["items"].as_array().unwrap().is_empty() }).await;
        let item = get(&app, &key, "/api/events/quarantine").await.1["items"][0].clone();
        assert_eq!(item["channel"], "loopback");
        assert!(item["error"].as_str().unwrap().contains("expected"), "{item}");
        assert!(item["body"].is_null(), "a body not attributable to this tenant is not shown");
        let path = format!("/api/events/quarantine/{}/replay", item["id"].as_str().unwrap());
        let replayed = app.client.post(app.url(&path)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(replayed.status(), StatusCode::ACCEPTED);
        let again = app.client.post(app.url(&path)).bearer_auth(&key).send().await.unwrap();
        assert!(matches!(again.status(), StatusCode::ACCEPTED | StatusCode::CONFLICT));
        eventually("quarantined again after replay", || async {
            get(&app, &key, "/api/events/quarantine").await.1["items"].as_array().unwrap().len() == 1
        })
        .await;
    }

    async fn people_reply_by_hand_and_send_to_new_recipients_through_the_api(backend: Backend) {
        let Some((app, key, account)) = setup(backend, "[responder]\nkind = \"off\"\n").await else { return };
        inbound(&app, &json!([message(&account, "h1", "ivan", "hello?")])).await;
        eventually("conversation", || async { !thread(&app, &key, "ivan").await.is_empty() }).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(delivered(&account).is_empty(), "responder off: no automated reply");
        let (_, list) = get(&app, &key, "/api/conversations").await;
        let id = list["items"][0]["id"].as_str().unwrap().to_owned();
        let response = app
            .client
            .post(app.url(&format!("/api/conversations/{id}/messages")))
            .bearer_auth(&key)
            .json(&json!({ "text": "Hi Ivan, how can we help?" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let queued: Value = response.json().await.unwrap();
        assert_eq!(queued["direction"], "outbound");
        assert!(matches!(queued["status"].as_str(), Some("queued" | "uncertain" | "sent")));
        eventually("manual reply delivered", || async { delivered(&account).len() == 1 }).await;
        let sent = app
            .client
            .post(app.url("/api/messages"))
            .bearer_auth(&key)
            .json(&json!({ "channel": "loopback", "to": "judy", "text": "Your order is ready" }))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
        eventually("API send delivered", || async { delivered(&account).iter().any(|d| d.to == "judy") }).await;
        for bad in [json!({ "channel": "loopback", "to": "judy" }), json!({ "channel": "loopback", "to": "", "text": "x" }), json!({ "channel": "nope", "to": "judy", "text": "x" })] {
            let response = app.client.post(app.url("/api/messages")).bearer_auth(&key).json(&bad).send().await.unwrap();
            assert!(response.status().is_client_error(), "{bad}");
        }
    }

    async fn conversations_are_invisible_to_other_tenants(backend: Backend) {
        let Some((app, key, account)) = setup(backend, "").await else { return };
        let (_, other) = app.tenant("Other").await;
        inbound(&app, &json!([message(&account, "p1", "kate", "private")])).await;
        eventually("conversation", || async { !thread(&app, &key, "kate").await.is_empty() }).await;
        let id = get(&app, &key, "/api/conversations").await.1["items"][0]["id"].as_str().unwrap().to_owned();
        assert!(get(&app, &other, "/api/conversations").await.1["items"].as_array().unwrap().is_empty());
        let (status, _) = get(&app, &other, &format!("/api/conversations/{id}/messages")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let reply = app
            .client
            .post(app.url(&format!("/api/conversations/{id}/messages")))
            .bearer_auth(&other)
            .json(&json!({ "text": "not mine" }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::NOT_FOUND);
        let send = app
            .client
            .post(app.url("/api/messages"))
            .bearer_auth(&other)
            .json(&json!({ "channel": "loopback", "to": "kate", "text": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(send.status(), StatusCode::BAD_REQUEST, "the other tenant has no loopback connection");
        let (status, _) = get(&app, &other, "/api/conversations/not-an-id/messages").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

crate::on_both_backends! {
    async fn tokens_expiring_within_seven_days_are_flagged_needs_reauth_ahead_of_time(backend: Backend) {
        let Some((app, key, _account)) = setup(backend, "").await else { return };
        let listed = get(&app, &key, "/api/integrations").await.1;
        let integration_id: switchboard_core::IntegrationId = listed[0]["integration_id"].as_str().unwrap().parse().unwrap();
        let store = app.state.store.as_ref();
        store.set_token_expiry(integration_id, Some(chrono::Utc::now() + chrono::Duration::days(30))).await.unwrap();
        assert_eq!(app.pipeline.sweeper.expiring_tokens().await.unwrap(), 0, "30 days ahead is fine");
        store.set_token_expiry(integration_id, Some(chrono::Utc::now() + chrono::Duration::days(3))).await.unwrap();
        assert_eq!(app.pipeline.sweeper.expiring_tokens().await.unwrap(), 1);
        let integration = store.integration_by_id(integration_id).await.unwrap().unwrap();
        assert_eq!(integration.state, switchboard_core::domain::IntegrationState::NeedsReauth);
        assert!(integration.state_reason.as_deref().unwrap().contains("expires on"), "{:?}", integration.state_reason);
        let status = get(&app, &key, "/api/integrations").await.1;
        assert_eq!(status[0]["state"], "needs_reauth");
        assert_eq!(app.pipeline.sweeper.expiring_tokens().await.unwrap(), 0, "flagged once");
    }
}

/// Installs (or removes) a trigger that makes storing a message with the text `poison` fail:
/// a row the database refuses, as a full disk or a bug would.
async fn poison(app: &TestApp, backend: Backend, on: bool) {
    use sqlx::Connection as _;
    let sql = match (backend, on) {
        (Backend::Postgres, true) => {
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'poisoned message'; END $$; \
             CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW \
             WHEN (NEW.text = 'poison') EXECUTE FUNCTION poison()"
        }
        (Backend::Postgres, false) => "DROP TRIGGER poison ON messages",
        (Backend::Sqlite, true) => {
            "CREATE TRIGGER poison BEFORE INSERT ON messages \
             WHEN NEW.text = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned message'); END"
        }
        (Backend::Sqlite, false) => "DROP TRIGGER poison",
    };
    let url = app.database_url();
    let outcome = match backend {
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut connection).await.map(drop)
        }
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut connection).await.map(drop)
        }
    };
    outcome.unwrap();
}

fn inbound_texts(thread: &[Value]) -> Vec<String> {
    // The thread lists the newest first; oldest first reads better in assertions.
    thread
        .iter()
        .rev()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

crate::on_both_backends! {
    async fn a_row_the_database_refuses_holds_up_only_itself_and_the_later_rows_of_its_chat(backend: Backend) {
        // No workers: the four webhooks are stored first and then drained as one batch.
        let Some(app) = TestApp::spawn_without_workers(backend, "[workers]\nlease_secs = 5\n").await else { return };
        let (_, key) = app.tenant("Acme").await;
        let account = unique("acct");
        connect(&app, &key, &account).await;
        poison(&app, backend, true).await;
        inbound(&app, &json!([message(&account, "p1", "alice", "hello")])).await;
        inbound(&app, &json!([message(&account, "p2", "bob", "poison")])).await;
        inbound(&app, &json!([message(&account, "p3", "bob", "after the poison")])).await;
        inbound(&app, &json!([message(&account, "p4", "carol", "hi")])).await;

        let first = app.pipeline.inbox.drain_once(10).await.unwrap();
        assert_eq!((first.claimed, first.finished), (4, 2), "{first:?}");
        assert_eq!(inbound_texts(&thread(&app, &key, "alice").await), ["hello"]);
        assert_eq!(inbound_texts(&thread(&app, &key, "carol").await), ["hi"]);
        // The refused row is not stored, and the row after it in the same chat waits for it.
        assert!(inbound_texts(&thread(&app, &key, "bob").await).is_empty());
        let replies_to = |who: &'static str| delivered(&account).iter().filter(|d| d.to == who).count();
        eventually("alice and carol answered", || async {
            app.pipeline.jobs.run_once("test").await.unwrap();
            replies_to("alice") == 1 && replies_to("carol") == 1
        })
        .await;
        assert_eq!(replies_to("bob"), 0);
        // A later row of that chat, in a later batch, waits as well; other chats do not.
        inbound(&app, &json!([message(&account, "p5", "bob", "later still")])).await;
        inbound(&app, &json!([message(&account, "p6", "dave", "unrelated")])).await;
        let held = app.pipeline.inbox.drain_once(10).await.unwrap();
        assert_eq!((held.claimed, held.finished), (2, 1), "{held:?}");
        assert!(inbound_texts(&thread(&app, &key, "bob").await).is_empty());
        assert_eq!(inbound_texts(&thread(&app, &key, "dave").await), ["unrelated"]);

        // Repaired: the rows come back when their leases end, in their order.
        poison(&app, backend, false).await;
        tokio::time::sleep(Duration::from_millis(5_300)).await;
        let second = app.pipeline.inbox.drain_once(10).await.unwrap();
        assert_eq!((second.claimed, second.finished), (3, 3), "{second:?}");
        assert_eq!(
            inbound_texts(&thread(&app, &key, "bob").await),
            ["poison", "after the poison", "later still"]
        );
        eventually("bob answered three times", || async {
            app.pipeline.jobs.run_once("test").await.unwrap();
            replies_to("bob") == 3
        })
        .await;
        // Nothing was stored or answered twice because of the failed attempt.
        assert_eq!(inbound_texts(&thread(&app, &key, "alice").await), ["hello"]);
        assert_eq!((replies_to("alice"), replies_to("carol")), (1, 1));
        assert_eq!(app.pipeline.inbox.drain_once(10).await.unwrap().claimed, 0);
    }
}

/// Moves every inbox row `days` into the past: its receipt time and its time-ordered id, as if
/// it had been stored then.
async fn backdate_inbox(app: &TestApp, backend: Backend, days: i64) {
    use sqlx::Connection as _;
    let shift = chrono::Duration::days(days);
    let older = |id: uuid::Uuid| {
        let (secs, nanos) = id.get_timestamp().expect("a time-ordered id").to_unix();
        let millis = i64::try_from(secs).unwrap() * 1_000 + i64::from(nanos / 1_000_000);
        let millis = u64::try_from(millis - shift.num_milliseconds()).unwrap();
        let rest: &[u8; 10] = id.as_bytes()[6..].try_into().unwrap();
        uuid::Builder::from_unix_timestamp_millis(millis, rest).into_uuid()
    };
    // The same statements on either backend's connection; times are integer microseconds on
    // SQLite.
    macro_rules! backdate {
        ($connection:ty, $shift:expr) => {{
            let mut connection = <$connection>::connect(app.database_url()).await.unwrap();
            let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM webhook_events")
                .fetch_all(&mut connection)
                .await
                .unwrap();
            for id in ids {
                sqlx::query(
                    "UPDATE webhook_events SET id = $2, received_at = received_at - $3 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(older(id))
                .bind($shift)
                .execute(&mut connection)
                .await
                .unwrap();
            }
        }};
    }
    match backend {
        Backend::Postgres => backdate!(sqlx::PgConnection, shift),
        Backend::Sqlite => backdate!(sqlx::SqliteConnection, shift.num_microseconds().unwrap()),
    }
}

crate::on_both_backends! {
    async fn processed_webhooks_older_than_the_retention_leave_the_inbox_and_their_messages_stay(backend: Backend) {
        let config = "[workers]\ninbox_retention_days = 2\n";
        let Some(app) = TestApp::spawn_without_workers(backend, config).await else { return };
        let (_, key) = app.tenant("Acme").await;
        let account = unique("acct");
        connect(&app, &key, &account).await;
        inbound(&app, &json!([message(&account, "r1", "alice", "hello")])).await;
        inbound_bytes(&app, b"{\"this is\": not a loopback body".to_vec()).await;
        let drained = app.pipeline.inbox.drain_once(10).await.unwrap();
        assert_eq!(drained.finished, 2, "{drained:?}");
        let (_, running) = tokio::sync::watch::channel(false);

        assert_eq!(app.pipeline.sweeper.processed_webhooks(&running).await.unwrap(), 0, "received just now");
        backdate_inbox(&app, backend, 1).await;
        assert_eq!(app.pipeline.sweeper.processed_webhooks(&running).await.unwrap(), 0, "a day old, kept for two");
        backdate_inbox(&app, backend, 2).await;
        assert_eq!(app.pipeline.sweeper.processed_webhooks(&running).await.unwrap(), 1, "three days old");
        // The quarantined body stays for an operator, and the message is still in its thread.
        let quarantined = get(&app, &key, "/api/events/quarantine").await.1;
        assert_eq!(quarantined["items"].as_array().unwrap().len(), 1, "{quarantined}");
        assert_eq!(inbound_texts(&thread(&app, &key, "alice").await), ["hello"]);
        assert_eq!(app.pipeline.sweeper.processed_webhooks(&running).await.unwrap(), 0, "nothing left");
    }
}
