//! Connecting WhatsApp through the gateway's OAuth routes and the emulator's consent dialog:
//! success with the account in the status, every failure code on the outcome page with nothing
//! stored, the account choice, re-auth, expiry and disconnect.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use switchboard_core::BusinessId;
use switchboard_core::store::InboxState;
use switchboard_tests::whatsapp::{PHONE_NUMBER_ID, WABA_ID, WhatsAppWorld, browser, eventually};
use switchboard_whatsapp::emulator::{DialogMode, Seed, SeedPhone};

/// The business has no integration row, the status says `not_connected` and our app is not
/// subscribed at the emulator.
async fn assert_nothing_connected(world: &WhatsAppWorld, business: BusinessId, key: &str) {
    let rows = world
        .app
        .state
        .store
        .list_integrations(business)
        .await
        .unwrap();
    assert!(rows.is_empty(), "nothing stored: {rows:?}");
    let status = world.status(key).await;
    assert_eq!(status["state"], "not_connected", "{status}");
    assert_eq!(status["connected"], false);
    assert!(!world.emulator.is_subscribed(WABA_ID));
}

/// Connects and expects the outcome page to fail with `code`.
async fn expect_failure(world: &WhatsAppWorld, key: &str, code: &str) {
    let outcome = world.connect(key).await;
    assert_eq!(
        outcome.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        outcome.message
    );
    assert_eq!(outcome.message["ok"], false);
    assert_eq!(outcome.error(), Some(code), "{:?}", outcome.message);
}

crate::on_both_backends! {
    async fn a_tenant_connects_through_the_consent_dialog_and_the_status_shows_the_number(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Lucky Shrub").await;
        let outcome = world.connect(&key).await;
        assert_eq!(outcome.status, StatusCode::OK);
        assert_eq!(outcome.message, json!({"type": "switchboard:oauth", "channel": "whatsapp", "ok": true}));
        assert!(outcome.html.contains("/dashboard/integrations?success=true&amp;channel=whatsapp"), "without an opener: {}", outcome.html);
        assert!(!outcome.html.contains("\"*\""), "never posts to any origin");

        let status = world.status(&key).await;
        assert_eq!(status["state"], "connected", "{status}");
        assert_eq!(status["connected"], true);
        assert_eq!(status["phone_number"], "+15550783881");
        assert_eq!(status["phone_number_id"], PHONE_NUMBER_ID);
        assert_eq!(status["waba_id"], WABA_ID);
        assert_eq!(status["account"]["display_name"], "Lucky Shrub");
        assert_eq!(status["account"]["phone_number"], "+15550783881");
        let expires: DateTime<Utc> = status["token_expires_at"].as_str().expect("an expiry").parse().expect("RFC 3339");
        let days = (expires - Utc::now()).num_days();
        assert!((55..=61).contains(&days), "a long-lived token lasts about 60 days, not {days}");
        assert!(!status.to_string().contains("access_token"), "no secret in the status: {status}");
        assert!(world.emulator.is_subscribed(WABA_ID), "the app is subscribed to the WABA's webhooks");

        let stored = world.app.state.store.list_integrations(business).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(stored[0].is_active);
        assert_eq!(stored[0].account_id.as_deref(), Some(PHONE_NUMBER_ID));
        assert_eq!(status["integration_id"], json!(stored[0].id));
    }

    async fn a_json_client_gets_the_authorize_url_and_finishes_in_the_same_browser(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (_, key) = world.tenant("Acme").await;
        let client = browser();
        let start = client
            .get(world.app.url("/api/integrations/whatsapp/connect"))
            .bearer_auth(&key)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::OK);
        assert!(start.headers().get("set-cookie").is_some_and(|c| c.to_str().unwrap().contains("Path=/api/integrations/")));
        let body: serde_json::Value = start.json().await.unwrap();
        let authorize = url::Url::parse(body["authorize_url"].as_str().unwrap()).unwrap();
        assert_eq!(authorize.path(), "/v26.0/dialog/oauth");
        let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], switchboard_tests::whatsapp::APP_ID);
        assert_eq!(query["redirect_uri"], world.app.url("/api/integrations/whatsapp/callback"));
        assert!(query["scope"].contains("whatsapp_business_messaging"));
        let consent = client.get(authorize).send().await.unwrap();
        assert_eq!(consent.status(), StatusCode::FOUND);
        let callback = switchboard_tests::whatsapp::location(&consent);
        assert_eq!(world.open_callback(&client, &callback).await.message["ok"], true);
        assert_eq!(world.status(&key).await["state"], "connected");
    }

    async fn a_cancelled_consent_dialog_ends_in_access_denied_and_connects_nothing(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        world.emulator.update_faults(|f| f.dialog = DialogMode::AutoDeny);
        let outcome = world.connect(&key).await;
        assert_eq!(outcome.status, StatusCode::BAD_REQUEST);
        assert_eq!(outcome.message, json!({"type": "switchboard:oauth", "channel": "whatsapp", "ok": false, "error": "access_denied"}));
        assert!(outcome.html.contains("/dashboard/integrations?error=access_denied&amp;channel=whatsapp"), "{}", outcome.html);
        assert_nothing_connected(&world, business, &key).await;
    }

    async fn a_callback_from_another_browser_or_with_a_used_state_is_invalid_state(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        // The flow started in one browser; the callback lands in another (login CSRF).
        let callback = world.authorize_in(&browser(), &key).await;
        let stranger = world.open_callback(&browser(), &callback).await;
        assert_eq!(stranger.status, StatusCode::BAD_REQUEST);
        assert_eq!(stranger.error(), Some("invalid_state"));
        assert_nothing_connected(&world, business, &key).await;

        // A state is single use: the second visit of a successful callback is refused.
        let starter = browser();
        let callback = world.authorize_in(&starter, &key).await;
        assert_eq!(world.open_callback(&starter, &callback).await.message["ok"], true);
        let again = world.open_callback(&starter, &callback).await;
        assert_eq!(again.error(), Some("invalid_state"), "{:?}", again.message);
        // An invented state is refused too.
        let forged = world.app.url("/api/integrations/whatsapp/callback?code=AQxyz&state=made-up");
        assert_eq!(world.open_callback(&starter, &forged).await.error(), Some("invalid_state"));
        assert_eq!(world.app.state.store.list_integrations(business).await.unwrap().len(), 1);
    }

    async fn an_account_without_a_whatsapp_business_account_ends_in_no_waba(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        let mut seed = Seed::sandbox();
        seed.businesses[0].owned_wabas.clear();
        world.emulator.seed(seed);
        expect_failure(&world, &key, "no_waba").await;
        assert_nothing_connected(&world, business, &key).await;
    }

    async fn a_whatsapp_business_account_without_numbers_ends_in_no_phone_number(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        world.emulator.seed(Seed::with_numbers(Vec::new()));
        expect_failure(&world, &key, "no_phone_number").await;
        assert_nothing_connected(&world, business, &key).await;
    }

    async fn meta_failing_during_the_callback_ends_in_upstream_error(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        world.emulator.update_faults(|f| f.server_error = true);
        expect_failure(&world, &key, "upstream_error").await;
        world.emulator.update_faults(|f| f.server_error = false);
        assert_nothing_connected(&world, business, &key).await;
    }

    async fn a_number_connected_by_another_tenant_ends_in_number_in_use(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (first, first_key) = world.tenant("First").await;
        let (second, second_key) = world.tenant("Second").await;
        world.connect_ok(&first_key).await;
        expect_failure(&world, &second_key, "number_in_use").await;
        assert!(world.app.state.store.list_integrations(second).await.unwrap().is_empty());
        assert_eq!(world.status(&second_key).await["state"], "not_connected");
        let owner = world.app.state.store.list_integrations(first).await.unwrap();
        assert!(owner.len() == 1 && owner[0].is_active, "the first tenant keeps the number");
        assert_eq!(world.status(&first_key).await["phone_number_id"], PHONE_NUMBER_ID);
    }

    async fn several_numbers_are_chosen_in_the_dashboard_after_the_callback(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        world.emulator.seed(Seed::with_numbers(vec![
            SeedPhone::new("110000000000001", "15550001111", "Shop North"),
            SeedPhone::new("110000000000002", "15550002222", "Shop South"),
        ]));
        let outcome = world.connect(&key).await;
        assert_eq!(outcome.status, StatusCode::OK);
        assert_eq!(outcome.message["ok"], true);
        assert_eq!(outcome.message["next"], "choose_account");
        assert!(world.app.state.store.list_integrations(business).await.unwrap().is_empty(), "nothing stored before the choice");
        assert_eq!(world.status(&key).await["pending_choice"], true);

        let (status, choices) = world.get(&key, "/api/integrations/whatsapp/phone_numbers").await;
        assert_eq!(status, StatusCode::OK, "{choices}");
        let ids: Vec<&str> = choices["options"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 2, "{choices}");
        assert!(ids.contains(&"110000000000001") && ids.contains(&"110000000000002"), "{choices}");
        assert!(choices.to_string().contains("Shop South"), "{choices}");
        assert!(!choices.to_string().contains("access_token"), "no secret in the choices: {choices}");
        let (_, other) = world.tenant("Other").await;
        let (status, _) = world.get(&other, "/api/integrations/whatsapp/phone_numbers").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another tenant sees no choice");
        let (status, _) = world.post(&other, "/api/integrations/whatsapp/phone_numbers", &json!({"phone_number_id": "110000000000001"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nor can it choose");
        let (status, refused) = world.post(&key, "/api/integrations/whatsapp/phone_numbers", &json!({"phone_number_id": "999"})).await;
        assert!(status.is_client_error(), "{refused}");
        assert_eq!(refused["error"]["code"], "unknown_account");

        let (status, connected) = world.post(&key, "/api/integrations/whatsapp/phone_numbers", &json!({"phone_number_id": "110000000000002"})).await;
        assert_eq!(status, StatusCode::OK, "{connected}");
        assert_eq!(connected["state"], "connected");
        let status = world.status(&key).await;
        assert_eq!(status["phone_number_id"], "110000000000002");
        assert_eq!(status["phone_number"], "+15550002222");
        assert!(world.emulator.is_subscribed(WABA_ID));
        let (status, _) = world.get(&key, "/api/integrations/whatsapp/phone_numbers").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the choice is consumed");
    }

    async fn reconnecting_keeps_the_same_integration(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        world.connect_ok(&key).await;
        let first = world.status(&key).await["integration_id"].clone();
        assert!(first.is_string(), "{first}");
        world.connect_ok(&key).await;
        let second = world.status(&key).await;
        assert_eq!(second["integration_id"], first);
        assert_eq!(second["state"], "connected");
        assert_eq!(world.app.state.store.list_integrations(business).await.unwrap().len(), 1);
    }

    async fn after_a_disconnect_the_number_can_be_connected_again_by_anyone(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (first, first_key) = world.tenant("First").await;
        let (_, second_key) = world.tenant("Second").await;
        world.connect_ok(&first_key).await;
        let id = world.status(&first_key).await["integration_id"].clone();
        world.disconnect(&first_key).await;
        world.connect_ok(&first_key).await;
        assert_eq!(world.status(&first_key).await["integration_id"], id, "the same integration is reactivated");
        assert_eq!(world.app.state.store.list_integrations(first).await.unwrap().len(), 1);
        world.disconnect(&first_key).await;
        world.connect_ok(&second_key).await;
        let status = world.status(&second_key).await;
        assert_eq!(status["state"], "connected");
        assert_eq!(status["phone_number_id"], PHONE_NUMBER_ID);
        assert_ne!(status["integration_id"], id);
        assert_eq!(world.status(&first_key).await["state"], "not_connected");
    }

    async fn an_expired_token_turns_the_status_to_needs_reauth(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (_, key) = world.tenant("Acme").await;
        world.connect_ok(&key).await;
        world.emulator.expire_tokens();
        let status = world.status(&key).await;
        assert_eq!(status["state"], "needs_reauth", "{status}");
        assert_eq!(status["connected"], false);
        let reason = status["state_reason"].as_str().expect("a reason");
        assert!(reason.contains("expired") && reason.contains("Reconnect"), "{reason}");
        // Connecting again repairs it.
        world.connect_ok(&key).await;
        assert_eq!(world.status(&key).await["state"], "connected");
    }

    async fn disconnecting_unsubscribes_the_app_and_answers_not_connected(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        world.connect_ok(&key).await;
        assert!(world.emulator.is_subscribed(WABA_ID));
        let after = world.disconnect(&key).await;
        assert_eq!(after["state"], "not_connected", "{after}");
        assert_eq!(after["connected"], false);
        assert!(after["last_error"].is_null(), "{after}");
        assert!(!world.emulator.is_subscribed(WABA_ID), "the app is unsubscribed at Meta");
        let rows = world.app.state.store.list_integrations(business).await.unwrap();
        assert!(rows.iter().all(|i| !i.is_active), "{rows:?}");
        assert_eq!(world.status(&key).await["state"], "not_connected");
        // Idempotent.
        assert_eq!(world.disconnect(&key).await["state"], "not_connected");
    }

    async fn disconnecting_while_meta_fails_still_deactivates_and_records_the_error(backend: Backend) {
        let Some(world) = WhatsAppWorld::start(backend, "").await else { return };
        let (business, key) = world.tenant("Acme").await;
        world.connect_ok(&key).await;
        world.emulator.update_faults(|f| f.server_error = true);
        let after = world.disconnect(&key).await;
        assert_eq!(after["state"], "not_connected", "{after}");
        let error = after["last_error"].as_str().expect("the failed provider call is recorded");
        assert!(error.contains("disconnected locally"), "{error}");
        let rows = world.app.state.store.list_integrations(business).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].is_active);
        assert_eq!(rows[0].last_error.as_deref(), Some(error));
        world.emulator.update_faults(|f| f.server_error = false);
        // Deactivated locally: inbound for the number routes nowhere and is never answered.
        let receipt = world.customer_writes("15557770001", "anyone there?").await;
        assert_eq!(receipt.delivery_status, Some(200), "the webhook is still acknowledged");
        eventually("the event is set aside as unrouted", || async {
            !world.app.state.store.webhook_events_in_state(InboxState::Unrouted, 10).await.unwrap().is_empty()
        })
        .await;
        assert!(world.conversation(&key, "15557770001").await.is_none());
        assert!(world.sent_to("15557770001").is_empty());
    }
}
