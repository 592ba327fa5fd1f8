//! Token connect, live status, disconnect, listing, and tenant isolation, through the generic
//! routes dispatched to the `loopback` test channel.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_tests::TestApp;

async fn connect(app: &TestApp, key: &str, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/integrations/loopback/connect"))
        .bearer_auth(key)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, key: &str, path: &str) -> Value {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

crate::on_both_backends! {
    async fn token_connect_answers_201_with_the_status_object(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (business, key) = app.tenant("Acme").await;
        let response = connect(&app, &key, "acct-1").await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["channel"], "loopback");
        assert_eq!(body["state"], "connected");
        assert_eq!(body["connected"], true);
        assert_eq!(body["account"]["display_name"], "Loopback acct-1");
        assert_eq!(body["loopback_account"], "acct-1", "account details are flat on the object too");
        assert!(body["token_expires_at"].is_null());
        assert!(body.to_string().find("token-acct-1").is_none(), "credentials never leave the gateway");
        let stored = app.state.store.integration_for(business, &"loopback".parse_channel()).await.unwrap().unwrap();
        assert_eq!(stored.account_id.as_deref(), Some("acct-1"));
        assert!(stored.is_active);
    }

    async fn a_refused_token_is_a_400_and_stores_nothing(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (business, key) = app.tenant("Acme").await;
        let response = connect(&app, &key, "bad").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_token");
        assert!(app.state.store.integration_for(business, &"loopback".parse_channel()).await.unwrap().is_none());
        let garbage = app
            .client
            .post(app.url("/api/integrations/loopback/connect"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
        let body: Value = garbage.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_body");
    }

    async fn status_is_live_and_disconnect_is_idempotent(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        let before = get_json(&app, &key, "/api/integrations/loopback/status").await;
        assert_eq!(before["state"], "not_connected");
        assert_eq!(before["connected"], false);
        assert_eq!(connect(&app, &key, "acct-1").await.status(), StatusCode::CREATED);
        let live = get_json(&app, &key, "/api/integrations/loopback/status").await;
        assert_eq!(live["state"], "connected");
        assert_eq!(live["checked_live"], true, "status asks the adapter");
        let response = app.client.delete(app.url("/api/integrations/loopback/disconnect")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["state"], "not_connected");
        let again = app.client.delete(app.url("/api/integrations/loopback/disconnect")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        let body: Value = again.json().await.unwrap();
        assert_eq!(body["state"], "not_connected");
    }

    async fn a_failing_upstream_disconnect_is_recorded_but_does_not_block(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (business, key) = app.tenant("Acme").await;
        assert_eq!(connect(&app, &key, "flaky").await.status(), StatusCode::CREATED);
        let response = app.client.delete(app.url("/api/integrations/loopback/disconnect")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["state"], "not_connected");
        assert!(body["last_error"].as_str().unwrap().contains("provider call failed"), "{body}");
        let stored = app.state.store.integration_for(business, &"loopback".parse_channel()).await.unwrap().unwrap();
        assert!(!stored.is_active);
        assert!(app.state.store.credentials(stored.id).await.unwrap().is_none(), "secrets are wiped");
    }

    async fn reconnecting_keeps_the_integration_id(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        let first: Value = connect(&app, &key, "acct-1").await.json().await.unwrap();
        app.client.delete(app.url("/api/integrations/loopback/disconnect")).bearer_auth(&key).send().await.unwrap();
        let second: Value = connect(&app, &key, "acct-1").await.json().await.unwrap();
        assert_eq!(first["integration_id"], second["integration_id"]);
        assert_eq!(second["state"], "connected");
    }

    async fn tenants_see_and_change_only_their_own_integrations(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (a, key_a) = app.tenant("A").await;
        let (_, key_b) = app.tenant("B").await;
        assert_eq!(connect(&app, &key_a, "acct-a").await.status(), StatusCode::CREATED);
        // B sees nothing of A's connection.
        let status_b = get_json(&app, &key_b, "/api/integrations/loopback/status").await;
        assert_eq!(status_b["state"], "not_connected");
        assert!(status_b["integration_id"].is_null());
        let list_b = get_json(&app, &key_b, "/api/integrations").await;
        assert_eq!(list_b[0]["state"], "not_connected");
        // B's disconnect does not touch A's integration.
        let response = app.client.delete(app.url("/api/integrations/loopback/disconnect")).bearer_auth(&key_b).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let stored = app.state.store.integration_for(a, &"loopback".parse_channel()).await.unwrap().unwrap();
        assert!(stored.is_active, "A is still connected");
        // B cannot take A's account.
        let taken = connect(&app, &key_b, "acct-a").await;
        assert_eq!(taken.status(), StatusCode::CONFLICT);
        let body: Value = taken.json().await.unwrap();
        assert_eq!(body["error"]["code"], "account_in_use");
        // Once A lets go, B may connect it.
        app.client.delete(app.url("/api/integrations/loopback/disconnect")).bearer_auth(&key_a).send().await.unwrap();
        assert_eq!(connect(&app, &key_b, "acct-a").await.status(), StatusCode::CREATED);
    }

    async fn the_list_shows_every_enabled_channel_with_the_tenants_state(backend: Backend) {
        let Some(app) = TestApp::spawn(backend, "").await else { return };
        let (_, key) = app.tenant("Acme").await;
        connect(&app, &key, "acct-1").await;
        let list = get_json(&app, &key, "/api/integrations").await;
        let entry = &list.as_array().unwrap()[0];
        assert_eq!(entry["channel"], "loopback");
        assert_eq!(entry["display_name"], "Loopback");
        assert_eq!(entry["connect_kind"], "token");
        assert_eq!(entry["state"], "connected");
    }
}

/// Test shorthand for a channel name.
trait ParseChannel {
    fn parse_channel(&self) -> switchboard_core::ChannelName;
}

impl ParseChannel for str {
    fn parse_channel(&self) -> switchboard_core::ChannelName {
        switchboard_core::ChannelName::parse(self).unwrap()
    }
}
