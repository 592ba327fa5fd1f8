//! The emulator's HTTP controls under `/_emulator/`, as the sandbox dashboard uses them.

use serde_json::json;

use crate::harness::{context, env};
use crate::receiver::Receiver;
use crate::send::{CUSTOMER, text};

#[tokio::test]
async fn the_http_controls_simulate_inbound_switch_faults_and_show_state() {
    let env = env().await;
    let ctx = context(&env.connected().await);
    let receiver = Receiver::start(&env, vec![]).await;
    let http = reqwest::Client::new();
    let base = env.emulator.base_url().to_owned();
    let answer: serde_json::Value = http.post(format!("{base}/_emulator/inbound"))
        .json(&json!({"from": CUSTOMER, "name": "Dashboard", "content": {"type": "text", "body": "from the dashboard"}}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["delivery_status"], 200);
    assert_eq!(receiver.bodies().len(), 1);
    let faults: serde_json::Value = http
        .post(format!("{base}/_emulator/faults"))
        .json(&json!({"rate_limited": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            faults["faults"]["rate_limited"].clone(),
            faults["faults"]["statuses"].clone()
        ),
        (json!(true), json!(true))
    );
    assert_eq!(
        env.adapter.send(&ctx, &text("x")).await.unwrap_err().code,
        "130429"
    );
    http.post(format!("{base}/_emulator/expire_tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        env.adapter.send(&ctx, &text("x")).await.unwrap_err().code,
        "190"
    );
    let state: serde_json::Value = http
        .get(format!("{base}/_emulator/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["subscribed_wabas"], json!(["102290129340398"]));
    assert_eq!(state["deliveries"].as_array().unwrap().len(), 1);
}
