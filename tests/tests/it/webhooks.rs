//! The webhook routes: verification GET, authentication before anything is stored, the exact
//! bytes in the inbox before the `200`, per-integration secret routing, and the body limit.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::store::InboxState;
use switchboard_tests::TestApp;
use switchboard_tests::app::LOOPBACK_SECRET;
use switchboard_tests::channel::sign;

/// Every stored webhook body, whatever the workers have done with it since, oldest first.
async fn stored_events(app: &TestApp) -> Vec<switchboard_core::store::WebhookEvent> {
    let mut events = Vec::new();
    for state in [
        InboxState::Pending,
        InboxState::Processed,
        InboxState::Quarantined,
        InboxState::Unrouted,
    ] {
        events.extend(
            app.state
                .store
                .webhook_events_in_state(state, 100)
                .await
                .unwrap(),
        );
    }
    // A row can change state between the queries above: count each once.
    events.sort_by_key(|e| (e.received_at, e.id));
    events.dedup_by_key(|e| e.id);
    events
}

async fn stored_bodies(app: &TestApp) -> Vec<Vec<u8>> {
    stored_events(app)
        .await
        .into_iter()
        .map(|e| e.body)
        .collect()
}

crate::on_both_backends! {
    async fn verification_answers_the_challenge_only_with_the_right_token(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let ok = app.client.get(app.url("/api/webhooks/loopback?token=expected&challenge=1158201444")).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.text().await.unwrap(), "1158201444");
        let bad = app.client.get(app.url("/api/webhooks/loopback?token=wrong&challenge=1")).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::FORBIDDEN);
    }

    async fn an_authentic_body_is_stored_byte_for_byte_before_the_200(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        // Not re-serialisable JSON: odd spacing, escaped unicode, and trailing bytes that are not UTF-8.
        let mut body = br#"[ {"account":"a","id":"m1","chat":"c","text":"caf\u00e9 \ud83d\ude00"} ]"#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        let response = app
            .client
            .post(app.url("/api/webhooks/loopback"))
            .header("x-loopback-signature", sign(LOOPBACK_SECRET, &body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(stored_bodies(&app).await, vec![body]);
    }

    async fn missing_and_wrong_signatures_are_401_and_store_nothing(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let body = br#"[{"account":"a","id":"m1","chat":"c","text":"hi"}]"#;
        let missing = app.client.post(app.url("/api/webhooks/loopback")).body(body.to_vec()).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        let wrong = app
            .client
            .post(app.url("/api/webhooks/loopback"))
            .header("x-loopback-signature", sign("another-secret", body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let reserialised = serde_json::to_vec(&serde_json::from_slice::<Value>(body).unwrap()).unwrap();
        let tampered = app
            .client
            .post(app.url("/api/webhooks/loopback"))
            .header("x-loopback-signature", sign(LOOPBACK_SECRET, &[body.as_slice(), b" "].concat()))
            .body(reserialised)
            .send()
            .await
            .unwrap();
        assert_eq!(tampered.status(), StatusCode::UNAUTHORIZED);
        let body: Value = tampered.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_signature");
        assert!(stored_bodies(&app).await.is_empty());
    }

    async fn authentic_garbage_and_empty_bodies_are_stored_and_acknowledged(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        for body in [b"".to_vec(), b"not json at all".to_vec()] {
            let response = app
                .client
                .post(app.url("/api/webhooks/loopback"))
                .header("x-loopback-signature", sign(LOOPBACK_SECRET, &body))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(stored_bodies(&app).await.len(), 2);
    }

    async fn per_integration_secrets_route_to_their_integration_and_unknown_secrets_are_401(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        let connected: Value = app
            .client
            .post(app.url("/api/integrations/loopback/connect"))
            .bearer_auth(&key)
            .json(&json!({"token": "acct-9"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let routed = app.client.post(app.url("/api/webhooks/loopback")).header("x-loopback-secret", "secret-acct-9").body("[]").send().await.unwrap();
        assert_eq!(routed.status(), StatusCode::OK);
        let unknown = app.client.post(app.url("/api/webhooks/loopback")).header("x-loopback-secret", "secret-acct-8").body("[]").send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        let events = stored_events(&app).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].integration_id.map(|id| id.to_string()), connected["integration_id"].as_str().map(str::to_owned));
        let status: Value = app.client.get(app.url("/api/integrations/loopback/status")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        assert!(status["last_webhook_at"].is_string(), "the integration records its last webhook");
        // After a disconnect the secret stops working.
        app.client.delete(app.url("/api/integrations/loopback/disconnect")).bearer_auth(&key).send().await.unwrap();
        let stale = app.client.post(app.url("/api/webhooks/loopback")).header("x-loopback-secret", "secret-acct-9").body("[]").send().await.unwrap();
        assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    }

    async fn a_body_over_the_limit_is_413(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "[server]\nmax_webhook_body_bytes = 2048\n").await else { return };
        let body = vec![b'x'; 4096];
        let response = app
            .client
            .post(app.url("/api/webhooks/loopback"))
            .header("x-loopback-signature", sign(LOOPBACK_SECRET, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "payload_too_large");
        assert!(stored_bodies(&app).await.is_empty());
    }
}
