//! Connecting a Telegram bot through `POST /api/integrations/telegram/connect` (issue 4): token
//! checks, the webhook and its secret at the emulator, ownership across tenants, secret
//! rotation, live status, disconnect and webhook authentication.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::ChannelName;
use switchboard_telegram::emulator::SimulatedMessage;
use switchboard_tests::telegram::{BOT_USERNAME, TelegramWorld, eventually};

/// A `message` update as Telegram posts it, for a private chat.
fn update(update_id: i64, chat_id: i64, text: &str) -> String {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": 7,
            "from": {"id": chat_id, "is_bot": false, "first_name": "Ann"},
            "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            "date": chrono::Utc::now().timestamp(),
            "text": text,
        }
    })
    .to_string()
}

fn hello() -> SimulatedMessage {
    SimulatedMessage {
        text: "hello".into(),
        from_id: Some(310_000_001),
        ..Default::default()
    }
}

/// Whether the gateway stored a Telegram integration for the world's tenant at all.
async fn stored(world: &TelegramWorld) -> bool {
    let channel = ChannelName::parse("telegram").unwrap();
    world
        .app
        .state
        .store
        .integration_for(world.business, &channel)
        .await
        .unwrap()
        .is_some()
}

/// Waits until the emulator has delivered `update_id` and returns the HTTP statuses the
/// gateway answered it with.
async fn delivered(world: &TelegramWorld, update_id: i64) -> Vec<Option<u16>> {
    let done = world
        .emulator
        .wait_for_deliveries(std::time::Duration::from_secs(10), |d| {
            d.iter().any(|a| a.update_id == update_id)
        })
        .await;
    assert!(done, "update {update_id} was never delivered");
    world
        .emulator
        .deliveries()
        .into_iter()
        .filter(|a| a.update_id == update_id)
        .map(|a| a.status)
        .collect()
}

fn assert_invalid_token(status: StatusCode, body: &Value, token: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_bot_token", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    if !token.is_empty() {
        assert!(
            !body.to_string().contains(token),
            "the token is echoed: {body}"
        );
    }
}

crate::on_both_backends! {
    async fn a_good_token_connects_the_bot_and_registers_our_webhook_with_a_secret(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        let body = world.connect().await;
        assert_eq!(body["channel"], "telegram");
        assert_eq!(body["connected"], true);
        assert_eq!(body["bot_username"], BOT_USERNAME);
        assert_eq!(body["account"]["display_name"], BOT_USERNAME);
        assert_eq!(body["account"]["account_id"], world.bot.id.to_string());
        assert!(!body.to_string().contains(&world.bot.token), "credentials leak: {body}");

        let info = world.emulator.webhook_info(world.bot.id).unwrap();
        assert_eq!(info["url"], world.webhook_url(), "{info}");
        let allowed = info["allowed_updates"].as_array().unwrap();
        for kind in ["message", "my_chat_member"] {
            assert!(allowed.contains(&json!(kind)), "{info}");
        }
        // The emulator holds the secret the gateway stored: its delivery is accepted.
        let secret = world.stored_secret().await;
        assert!(secret.len() >= 32, "a random secret");
        let sim = world.emulator.simulate_message(world.bot.id, &hello()).unwrap();
        let statuses = delivered(&world, sim["update_id"].as_i64().unwrap()).await;
        assert_eq!(statuses, vec![Some(200)]);

        let status = world.status().await;
        assert_eq!(status["state"], "connected", "{status}");
        assert_eq!(status["bot_username"], BOT_USERNAME);
        assert_eq!(status["webhook_url_matches"], true);
        assert!(status["last_webhook_at"].is_string(), "the delivery was recorded: {status}");
    }

    async fn a_malformed_token_is_rejected_with_400_and_nothing_is_stored(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        let key = world.key.clone();
        for token in ["not-a-token", "123456:short", "12x456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX", ""] {
            let (status, body) = world.connect_as(&key, token).await;
            assert_invalid_token(status, &body, token);
        }
        let response = world.app.client.post(world.app.url("/api/integrations/telegram/connect"))
            .bearer_auth(&key).json(&json!({ "token": world.bot.token })).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(!stored(&world).await, "nothing is stored for a refused token");
        assert_eq!(world.status().await["state"], "not_connected");
        assert_eq!(world.emulator.webhook_info(world.bot.id).unwrap()["url"], "");
    }

    async fn a_revoked_or_unknown_token_is_rejected_with_400_without_echoing_it(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        let unknown = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ";
        let (status, body) = world.connect_as(&world.key, unknown).await;
        assert_invalid_token(status, &body, unknown);

        world.emulator.revoke_token(world.bot.id).unwrap();
        let (status, body) = world.connect_as(&world.key, &world.bot.token).await;
        assert_invalid_token(status, &body, &world.bot.token);
        assert!(!stored(&world).await);
        assert_eq!(world.emulator.webhook_info(world.bot.id).unwrap()["url"], "");
    }

    async fn a_bot_connected_by_another_tenant_is_refused_with_409_and_its_webhook_is_untouched(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        let first_secret = world.stored_secret().await;
        let (_, other) = world.app.tenant("Other").await;
        let (status, body) = world.connect_as(&other, &world.bot.token).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "bot_in_use");
        assert!(!body.to_string().contains(&world.bot.token));

        // Same URL, same secret: updates still reach the first tenant.
        assert_eq!(world.emulator.webhook_info(world.bot.id).unwrap()["url"], world.webhook_url());
        assert_eq!(world.stored_secret().await, first_secret);
        let sim = world.emulator.simulate_message(world.bot.id, &hello()).unwrap();
        assert_eq!(delivered(&world, sim["update_id"].as_i64().unwrap()).await, vec![Some(200)]);
        eventually("the first tenant gets the message", || async {
            world.conversation(310_000_001).await.is_some()
        })
        .await;
        let theirs: Value = world.app.client.get(world.app.url("/api/integrations/telegram/status"))
            .bearer_auth(&other).send().await.unwrap().json().await.unwrap();
        assert_eq!(theirs["state"], "not_connected", "{theirs}");
    }

    async fn reconnecting_rotates_the_secret_and_the_old_one_stops_working(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        let first = world.connect().await;
        let old = world.stored_secret().await;
        let second = world.connect().await;
        assert_eq!(first["integration_id"], second["integration_id"], "reconnect updates the same integration");
        let new = world.stored_secret().await;
        assert_ne!(old, new);
        assert_eq!(world.post_webhook(Some(&old), &update(1, 42, "old")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(world.post_webhook(Some(&new), &update(2, 42, "new")).await, StatusCode::OK);
        // The emulator was given the new secret too.
        let sim = world.emulator.simulate_message(world.bot.id, &hello()).unwrap();
        assert_eq!(delivered(&world, sim["update_id"].as_i64().unwrap()).await, vec![Some(200)]);
    }

    async fn failing_webhook_deliveries_make_the_status_error_with_telegrams_reason(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        // Another program re-registers our URL with a secret the gateway does not know.
        world.set_webhook_behind_our_back("someone-elses-secret").await;
        let sim = world.emulator.simulate_message(world.bot.id, &hello()).unwrap();
        let update_id = sim["update_id"].as_i64().unwrap();
        assert!(world.emulator.wait_for_deliveries(std::time::Duration::from_secs(10), |d| {
            d.iter().filter(|a| a.update_id == update_id && a.status == Some(401)).count() >= 2
        }).await);

        let status = world.status().await;
        assert_eq!(status["state"], "error", "{status}");
        assert_eq!(status["connected"], false);
        let reason = status["state_reason"].as_str().unwrap();
        assert!(reason.contains("Wrong response from the webhook: 401 Unauthorized"), "{reason}");
        assert_eq!(status["last_error_message"], "Wrong response from the webhook: 401 Unauthorized");
        assert!(status["pending_update_count"].as_u64().unwrap() >= 1, "{status}");

        // Reconnecting takes the webhook back; the pending update arrives.
        world.connect().await;
        eventually("the pending update is delivered", || async {
            world.conversation(310_000_001).await.is_some()
        })
        .await;
        eventually("connected again", || async { world.status().await["state"] == "connected" }).await;
    }

    async fn a_revoked_token_makes_the_status_needs_reauth(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        world.emulator.revoke_token(world.bot.id).unwrap();
        let status = world.status().await;
        assert_eq!(status["state"], "needs_reauth", "{status}");
        assert_eq!(status["connected"], false);
        assert!(status["state_reason"].as_str().unwrap().contains("reconnect"), "{status}");
        // The stored state follows, so the integration list shows it too.
        let (_, list) = world.get("/api/integrations").await;
        let telegram = list.as_array().unwrap().iter().find(|i| i["channel"] == "telegram").unwrap().clone();
        assert_eq!(telegram["state"], "needs_reauth", "{telegram}");
    }

    async fn disconnect_deletes_the_webhook_and_the_secret_stops_working(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        let secret = world.stored_secret().await;
        let (status, body) = world.disconnect().await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "not_connected", "{body}");
        assert_eq!(body["connected"], false);
        let info = world.emulator.webhook_info(world.bot.id).unwrap();
        assert_eq!(info["url"], "", "deleteWebhook was called: {info}");
        assert_eq!(world.post_webhook(Some(&secret), &update(1, 42, "late")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(world.status().await["state"], "not_connected");
        let (status, again) = world.disconnect().await;
        assert_eq!(status, StatusCode::OK, "disconnect is idempotent");
        assert_eq!(again["state"], "not_connected");
    }

    async fn the_webhook_secret_header_is_required_and_must_match(backend: Backend) {
        let Some(world) = TelegramWorld::spawn(backend, "").await else { return };
        world.connect().await;
        let secret = world.stored_secret().await;
        assert_eq!(world.post_webhook(None, &update(1, 501, "no secret")).await, StatusCode::UNAUTHORIZED);
        let wrong = "A".repeat(secret.len());
        assert_eq!(world.post_webhook(Some(&wrong), &update(2, 502, "wrong")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(world.post_webhook(Some("not a secret!"), &update(3, 503, "bad")).await, StatusCode::UNAUTHORIZED);
        let refused = world.app.client.post(world.webhook_url()).body(update(4, 504, "x")).send().await.unwrap();
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_signature", "{body}");
        assert_eq!(world.post_webhook(Some(&secret), &update(5, 505, "right")).await, StatusCode::OK);
        eventually("the authentic update is processed", || async {
            world.messages(505).await.iter().any(|m| m["text"] == "right")
        })
        .await;
        let (_, list) = world.get("/api/conversations").await;
        let chats: Vec<&Value> = list["items"].as_array().unwrap().iter().map(|c| &c["external_chat_id"]).collect();
        assert_eq!(chats, vec![&json!("505")], "only the authentic update was stored");
    }
}
