//! The emulator answers like Graph: real error bodies for bad codes, secrets and tokens,
//! `debug_token` only with the app token, cursor paging, and the dialog's input checks.

use serde_json::{Value, json};
use switchboard_core::adapter::OAuthOutcome;
use switchboard_core::registry::ChannelConfig;
use switchboard_whatsapp::emulator::{Seed, SeedPhone};

use crate::harness::{Env, callback_params, consent, env, env_with, no_redirects};
use crate::support::{APP_ID, APP_SECRET, section, services};

async fn get(
    env: &Env,
    path: &str,
    query: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/v26.0/{path}", env.emulator.base_url()))
        .query(query)
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

async fn code(env: &Env) -> String {
    consent(env).await.0.code.unwrap()
}

#[tokio::test]
async fn a_code_exchanged_with_another_redirect_uri_gets_metas_error_body() {
    let env = env().await;
    let code = code(&env).await;
    let (status, headers, body) = get(
        &env,
        "oauth/access_token",
        &[
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("redirect_uri", "http://evil.example/cb"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert!(body["error"]["message"].as_str().unwrap().starts_with(
        "Error validating verification code. Please make sure your redirect_uri is identical"
    ));
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("OAuth \"Facebook Platform\"")
    );
    assert!(body["error"]["fbtrace_id"].is_string());
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_and_the_code_stays_usable() {
    let env = env().await;
    let code = code(&env).await;
    let redirect = "https://gw.example.com/api/integrations/whatsapp/callback";
    let (status, _, body) = get(
        &env,
        "oauth/access_token",
        &[
            ("client_id", APP_ID),
            ("client_secret", "nope"),
            ("redirect_uri", redirect),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (400, json!("Error validating client secret."))
    );
    let (status, _, body) = get(
        &env,
        "oauth/access_token",
        &[
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("redirect_uri", redirect),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["token_type"].clone(), body["expires_in"].clone()),
        (json!("bearer"), json!(7200))
    );
}

#[tokio::test]
async fn debug_token_requires_the_app_token_and_only_answers_get() {
    let env = env().await;
    let (status, _, body) = get(
        &env,
        "debug_token",
        &[("input_token", "EAAGx"), ("access_token", "EAAGx")],
    )
    .await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!(100)));
    let app_token = format!("{APP_ID}|{APP_SECRET}");
    let (status, _, body) = get(
        &env,
        "debug_token",
        &[("input_token", "garbage"), ("access_token", &app_token)],
    )
    .await;
    assert_eq!(
        (
            status,
            body["data"]["is_valid"].clone(),
            body["data"]["error"]["code"].clone()
        ),
        (200, json!(false), json!(190))
    );
    let post = reqwest::Client::new()
        .post(format!("{}/v26.0/debug_token", env.emulator.base_url()))
        .send()
        .await
        .unwrap();
    let body: Value = post.json().await.unwrap();
    assert_eq!(
        (
            body["error"]["code"].clone(),
            body["error"]["error_subcode"].clone()
        ),
        (json!(100), json!(33))
    );
}

#[tokio::test]
async fn phone_numbers_are_cursor_paged_with_next_only_while_more_remain() {
    let numbers = (0..3)
        .map(|i| SeedPhone::new(&format!("90{i}"), &format!("1555000000{i}"), "N"))
        .collect();
    let env = env_with(Seed::with_numbers(numbers)).await;
    let Ok(OAuthOutcome::ChooseAccount { pending, .. }) = env.connect().await else {
        panic!()
    };
    let token = pending
        .parse::<switchboard_whatsapp::PendingChoice>()
        .unwrap()
        .access_token;
    let (_, _, first) = get(
        &env,
        "102290129340398/phone_numbers",
        &[("limit", "2"), ("access_token", &token)],
    )
    .await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let next = first["paging"]["next"].as_str().unwrap();
    assert!(next.starts_with(env.emulator.base_url()));
    let after = first["paging"]["cursors"]["after"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _, last) = get(
        &env,
        "102290129340398/phone_numbers",
        &[("limit", "2"), ("after", &after), ("access_token", &token)],
    )
    .await;
    assert_eq!(last["data"][0]["id"], "902");
    assert!(last["paging"].get("next").is_none());
    let (status, _, body) = get(&env, "999999/phone_numbers", &[("access_token", &token)]).await;
    assert_eq!(
        (status, body["error"]["error_subcode"].clone()),
        (400, json!(33))
    );
}

#[tokio::test]
async fn the_dialog_refuses_an_unknown_app_id() {
    let env = env().await;
    let url = format!(
        "{}/v26.0/dialog/oauth?client_id=1&redirect_uri=https://x.example/cb&state=s",
        env.emulator.base_url()
    );
    let response = no_redirects().get(url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("Invalid App ID"));
}

#[tokio::test]
async fn a_grant_without_the_messaging_permission_is_access_denied() {
    let env = env().await;
    let mut s = section(env.emulator.base_url());
    s["scopes"] = json!("whatsapp_business_management,business_management");
    let adapter = switchboard_whatsapp::build_adapter(
        &ChannelConfig {
            name: "whatsapp".into(),
            section: s,
        },
        &services(),
    )
    .unwrap();
    let url = adapter.authorize_url("s").unwrap();
    let response = no_redirects().get(url).send().await.unwrap();
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let err = adapter
        .finish_oauth(&callback_params(&location), &env.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.code, "access_denied");
    assert!(err.message.contains("whatsapp_business_messaging"));
}
