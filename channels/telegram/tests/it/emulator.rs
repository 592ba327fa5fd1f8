//! The emulator's Bot API surface over raw HTTP: envelope, token checks, parameter encodings,
//! `setWebhook` rules, `getUpdates` conflict, `sendMessage` validation and limits, and the
//! `/_emulator` control endpoints.

use serde_json::{Value, json};
use switchboard_telegram::emulator::{ChatSpec, Emulator, EmulatorConfig, RateLimits};

use crate::support::World;

async fn call(
    base: &str,
    token: &str,
    method: &str,
    params: Value,
) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{base}/bot{token}/{method}"))
        .json(&params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry)
}

#[tokio::test]
async fn malformed_tokens_are_not_found_and_unknown_tokens_unauthorized() {
    let world = World::new().await;
    let base = world.emulator.base_url();
    let (status, body, _) = call(&base, "123:abc", "getMe", json!({})).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"ok": false, "error_code": 404, "description": "Not Found"})
        )
    );
    let (status, body, _) = call(
        &base,
        "5555555555:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "getMe",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
        )
    );
    let (status, _, _) = call(&base, &world.bot.token, "getMee", json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn get_query_form_and_json_parameters_and_any_method_case_work() {
    let world = World::new().await;
    let (base, token) = (world.emulator.base_url(), world.bot.token.clone());
    world.emulator.add_chat(ChatSpec {
        id: 77,
        kind: "private".into(),
        title: None,
        first_name: Some("A".into()),
        username: None,
        is_forum: false,
    });
    let me: Value = reqwest::get(format!("{base}/bot{token}/GETME"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["result"]["username"], "switchboard_test_bot");
    assert_eq!(me["result"]["id"], 7_123_456_789_i64);
    let form: Value = reqwest::Client::new()
        .post(format!("{base}/bot{token}/sendMessage"))
        .form(&[("chat_id", "77"), ("text", "via form")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form["result"]["text"], "via form");
    let (_, json_sent, _) = call(
        &base,
        &token,
        "sendmessage",
        json!({"chat_id": "77", "text": "via json"}),
    )
    .await;
    assert_eq!(json_sent["result"]["chat"]["id"], 77);
    assert_eq!(json_sent["result"]["from"]["is_bot"], true);
}

#[tokio::test]
async fn set_webhook_enforces_telegrams_rules_and_throttle() {
    let world = World::new().await;
    let (base, token) = (world.emulator.base_url(), world.bot.token.clone());
    let cases = [
        (
            json!({"url": "http://example.com/hook"}),
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
        ),
        (
            json!({"url": "https://example.com:8080/hook"}),
            "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
        ),
        (
            json!({"url": "https://example.com/hook", "secret_token": "bad secret"}),
            "Bad Request: secret token contains unallowed characters",
        ),
        (
            json!({"url": "https://example.com/hook", "secret_token": "x".repeat(257)}),
            "Bad Request: secret token is too long",
        ),
    ];
    for (params, description) in cases {
        let (status, body, _) = call(&base, &token, "setWebhook", params).await;
        assert_eq!(
            (status, body["description"].as_str().unwrap()),
            (400, description)
        );
    }
    let (status, body, _) = call(
        &base,
        &token,
        "setWebhook",
        json!({"url": "https://example.com:8443/h", "max_connections": 1000}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (200, Some("Webhook was set"))
    );
    let (status, body, retry) = call(
        &base,
        &token,
        "setWebhook",
        json!({"url": "https://example.com/h"}),
    )
    .await;
    assert_eq!(
        (
            status,
            body["parameters"]["retry_after"].as_u64(),
            retry.as_deref()
        ),
        (429, Some(1), Some("1"))
    );
    assert_eq!(body["description"], "Too Many Requests: retry after 1");
    let info = world.emulator.webhook_info(world.bot.id).unwrap();
    assert_eq!(info["max_connections"], 100, "clamped");
    let (status, body, _) = call(&base, &token, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(
        body["description"],
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
    );
    let (_, body, _) = call(&base, &token, "deleteWebhook", json!({})).await;
    assert_eq!(body["description"], "Webhook was deleted");
    let (_, body, _) = call(&base, &token, "deleteWebhook", json!({})).await;
    assert_eq!(body["description"], "Webhook is already deleted");
}

#[tokio::test]
async fn send_message_validates_text_and_enforces_the_group_minute_limit() {
    let limits = RateLimits {
        per_chat_per_second: 100,
        per_group_per_minute: 20,
        per_bot_per_second: 1000,
    };
    let emulator = Emulator::start(EmulatorConfig {
        rate_limits: Some(limits),
        ..Default::default()
    })
    .await
    .unwrap();
    let bot = emulator.add_bot(Default::default()).unwrap();
    emulator.add_chat(ChatSpec {
        id: -1005,
        kind: "supergroup".into(),
        title: Some("g".into()),
        first_name: None,
        username: None,
        is_forum: false,
    });
    let base = emulator.base_url();
    let (status, body, _) = call(
        &base,
        &bot.token,
        "sendMessage",
        json!({"chat_id": -1005, "text": ""}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: message text is empty"))
    );
    let (_, body, _) = call(&base, &bot.token, "sendMessage", json!({"text": "x"})).await;
    assert_eq!(body["description"], "Bad Request: chat_id is empty");
    let (_, body, _) = call(
        &base,
        &bot.token,
        "sendMessage",
        json!({"chat_id": -1005, "text": "é".repeat(4097)}),
    )
    .await;
    assert_eq!(body["description"], "Bad Request: message is too long");
    let (status, _, _) = call(
        &base,
        &bot.token,
        "sendMessage",
        json!({"chat_id": -1005, "text": "😀".repeat(4096)}),
    )
    .await;
    assert_eq!(status, 200, "the server counts code points");
    for _ in 0..19 {
        let (status, _, _) = call(
            &base,
            &bot.token,
            "sendMessage",
            json!({"chat_id": -1005, "text": "x"}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, body, retry) = call(
        &base,
        &bot.token,
        "sendMessage",
        json!({"chat_id": -1005, "text": "x"}),
    )
    .await;
    assert_eq!(status, 429);
    let after = body["parameters"]["retry_after"].as_u64().unwrap();
    assert!((1..=60).contains(&after));
    assert_eq!(retry, Some(after.to_string()));
}

#[tokio::test]
async fn sandbox_mode_accepts_any_well_formed_token_as_a_new_bot() {
    let emulator = Emulator::start(EmulatorConfig {
        auto_accept_tokens: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let token = "987654321:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    let (status, body, _) = call(&emulator.base_url(), token, "getMe", json!({})).await;
    assert_eq!(
        (status, body["result"]["id"].as_i64()),
        (200, Some(987_654_321))
    );
    let (status, _, _) = call(&emulator.base_url(), "98:short", "getMe", json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_http_controls_seed_bots_simulate_messages_and_inject_faults() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let base = emulator.base_url();
    let http = reqwest::Client::new();
    let bot: Value = http
        .post(format!("{base}/_emulator/bots"))
        .json(&json!({"username": "dash_bot"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (
        bot["id"].as_i64().unwrap(),
        bot["token"].as_str().unwrap().to_owned(),
    );
    let sim: Value = http
        .post(format!("{base}/_emulator/bots/{id}/messages"))
        .json(&json!({"text": "hello from the dashboard", "from_id": 5964236329_i64}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, updates, _) = call(&base, &token, "getUpdates", json!({})).await;
    assert_eq!(updates["result"][0]["update_id"], sim["update_id"]);
    assert_eq!(
        updates["result"][0]["message"]["text"],
        "hello from the dashboard"
    );
    assert_eq!(
        updates["result"][0]["message"]["chat"]["id"],
        5_964_236_329_i64
    );
    let status = http
        .post(format!("{base}/_emulator/faults"))
        .json(&json!({"send": [{"kind": "server_error"}]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 204);
    let (status, _, _) = call(
        &base,
        &token,
        "sendMessage",
        json!({"chat_id": 5964236329_i64, "text": "x"}),
    )
    .await;
    assert_eq!(status, 500);
    let (status, _, _) = call(
        &base,
        &token,
        "sendMessage",
        json!({"chat_id": 5964236329_i64, "text": "ok now"}),
    )
    .await;
    assert_eq!(status, 200);
    let sent: Value = http
        .get(format!("{base}/_emulator/bots/{id}/sent"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent[0]["text"], "ok now");
    http.post(format!("{base}/_emulator/bots/{id}/revoke"))
        .send()
        .await
        .unwrap();
    let (status, _, _) = call(&base, &token, "getMe", json!({})).await;
    assert_eq!(status, 401);
    let missing = http
        .post(format!("{base}/_emulator/bots/1/revoke"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(missing.as_u16(), 404);
}
