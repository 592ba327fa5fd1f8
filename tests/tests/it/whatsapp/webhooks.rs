//! Meta's side of the webhook routes through the gateway: the `hub.*` verification GET, the
//! `X-Hub-Signature-256` check over the exact bytes (before parsing), and the body limit.

use reqwest::StatusCode;
use switchboard_core::store::InboxState;
use switchboard_tests::TestApp;
use switchboard_tests::whatsapp::{VERIFY_TOKEN, WhatsAppWorld, eventually, sign, text_webhook};
use switchboard_whatsapp::emulator::meta_json;

/// Every stored webhook body, whatever the workers did with it since.
async fn stored_bodies(app: &TestApp) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for state in [
        InboxState::Pending,
        InboxState::Processed,
        InboxState::Quarantined,
        InboxState::Unrouted,
    ] {
        let events = app
            .state
            .store
            .webhook_events_in_state(state, 100)
            .await
            .unwrap();
        bodies.extend(events.into_iter().map(|e| e.body));
    }
    bodies.sort();
    bodies.dedup();
    bodies
}

async fn verify(world: &WhatsAppWorld, query: &str) -> (StatusCode, String) {
    let response = world
        .app
        .client
        .get(world.app.url(&format!("/api/webhooks/whatsapp?{query}")))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

crate::on_both_backends! {
    async fn verification_answers_the_raw_challenge_only_for_subscribe_with_the_right_token(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (status, body) = verify(&world, &format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "1158201444", "the raw challenge, not JSON");
        let (status, _) = verify(&world, "hub.mode=subscribe&hub.verify_token=wrong-token&hub.challenge=1").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = verify(&world, &format!("hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = verify(&world, "hub.mode=subscribe&hub.challenge=1").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    async fn a_signed_webhook_is_accepted_and_a_bad_or_missing_signature_gets_401(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let body = meta_json(&text_webhook("15552220001", "wamid.sig-1", chrono::Utc::now().timestamp(), "hi")).into_bytes();
        assert_eq!(world.post_webhook(body.clone(), None).await, StatusCode::UNAUTHORIZED);
        let forged = switchboard_whatsapp::emulator::signature("another-app-secret", &body);
        assert_eq!(world.post_webhook(body.clone(), Some(&forged)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(world.post_webhook(body.clone(), Some("sha256=not-hex")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(world.post_webhook(body.clone(), Some(forged.trim_start_matches("sha256="))).await, StatusCode::UNAUTHORIZED);
        assert!(stored_bodies(&world.app).await.is_empty(), "nothing unauthenticated is stored");
        assert_eq!(world.post_webhook(body.clone(), Some(&sign(&body))).await, StatusCode::OK);
        assert_eq!(stored_bodies(&world.app).await, vec![body]);
    }

    async fn the_signature_covers_the_exact_bytes_with_escaped_unicode(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (_, key) = world.tenant("Acme").await;
        world.connect_ok(&key).await;
        let from = "15552220002";
        let webhook = text_webhook(from, "wamid.unicode-1", chrono::Utc::now().timestamp(), "café 😀 / olé");
        let body = meta_json(&webhook).into_bytes();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains(r"caf\u00e9 \ud83d\ude00 \/ ol\u00e9"), "Meta's escaping: {text}");
        let signature = sign(&body);
        // The same content re-serialised (unescaped) no longer matches the original signature.
        let reserialised = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
        assert_ne!(reserialised, body);
        assert_eq!(world.post_webhook(reserialised, Some(&signature)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(world.post_webhook(body.clone(), Some(&signature)).await, StatusCode::OK);
        assert!(stored_bodies(&world.app).await.contains(&body), "stored byte for byte");
        eventually("the message is parsed", || async { !world.thread(&key, from).await.is_empty() }).await;
        let thread = world.thread(&key, from).await;
        let inbound = thread.iter().find(|m| m["direction"] == "inbound").unwrap();
        assert_eq!(inbound["text"], "café 😀 / olé");
        assert_eq!(inbound["provider_message_id"], "wamid.unicode-1");
    }

    async fn an_authentic_body_that_does_not_parse_is_acknowledged_and_quarantined(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (_, key) = world.tenant("Acme").await;
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":"#.to_vec();
        assert_eq!(world.post_webhook(body.clone(), Some(&sign(&body))).await, StatusCode::OK);
        assert_eq!(stored_bodies(&world.app).await, vec![body]);
        eventually("quarantined", || async {
            !world.app.state.store.webhook_events_in_state(InboxState::Quarantined, 10).await.unwrap().is_empty()
        })
        .await;
        let (status, list) = world.get(&key, "/api/events/quarantine").await;
        assert_eq!(status, StatusCode::OK);
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(items[0]["channel"], "whatsapp");
        assert!(items[0]["error"].is_string(), "{list}");
    }

    async fn a_body_over_the_limit_gets_413_and_is_not_stored(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "[server]\nmax_webhook_body_bytes = 4096\n").await else { return };
        let padding = "x".repeat(8192);
        let body = meta_json(&text_webhook("15552220003", "wamid.big-1", chrono::Utc::now().timestamp(), &padding)).into_bytes();
        assert_eq!(world.post_webhook(body.clone(), Some(&sign(&body))).await, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(stored_bodies(&world.app).await.is_empty());
        let small = meta_json(&text_webhook("15552220003", "wamid.small-1", chrono::Utc::now().timestamp(), "ok")).into_bytes();
        assert_eq!(world.post_webhook(small.clone(), Some(&sign(&small))).await, StatusCode::OK);
    }
}
