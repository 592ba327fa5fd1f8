//! Live status and disconnect against the emulator.

use switchboard_core::domain::IntegrationState;
use switchboard_core::error::AdapterError;
use switchboard_whatsapp::emulator::Seed;

use crate::harness::{context, env, env_with};

#[tokio::test]
async fn a_fresh_connection_reports_connected_with_number_details() {
    let env = env().await;
    let ctx = context(&env.connected().await);
    let status = env.adapter.status(&ctx).await;
    assert_eq!(status.state, IntegrationState::Connected, "{status:?}");
    assert_eq!(status.reason, None);
    assert_eq!(status.details["verified_name"], "Lucky Shrub");
    assert_eq!(status.details["quality_rating"], "GREEN");
    assert_eq!(status.details["subscribed"], true);
    assert!(status.token_expires_at.is_some());
}

#[tokio::test]
async fn an_expired_token_reports_needs_reauth_with_a_reason() {
    let env = env().await;
    let ctx = context(&env.connected().await);
    env.emulator.expire_tokens();
    let status = env.adapter.status(&ctx).await;
    assert_eq!(status.state, IntegrationState::NeedsReauth);
    assert!(status.reason.unwrap().contains("expired"));
}

#[tokio::test]
async fn an_app_no_longer_subscribed_reports_error() {
    let env = env().await;
    let ctx = context(&env.connected().await);
    env.emulator.set_subscribed("102290129340398", false);
    let status = env.adapter.status(&ctx).await;
    assert_eq!(status.state, IntegrationState::Error);
    assert!(status.reason.unwrap().contains("no longer subscribed"));
}

#[tokio::test]
async fn a_banned_number_reports_error() {
    let mut seed = Seed::sandbox();
    seed.businesses[0].owned_wabas[0].phone_numbers[0].status = "BANNED".into();
    let env = env_with(seed).await;
    let ctx = context(&env.connected().await);
    let status = env.adapter.status(&ctx).await;
    assert_eq!(status.state, IntegrationState::Error);
    assert!(status.reason.unwrap().contains("BANNED"));
}

#[tokio::test]
async fn disconnect_unsubscribes_the_app_from_the_waba() {
    let env = env().await;
    let ctx = context(&env.connected().await);
    assert!(env.emulator.is_subscribed("102290129340398"));
    env.adapter.disconnect(&ctx).await.unwrap();
    assert!(!env.emulator.is_subscribed("102290129340398"));
    assert_eq!(
        env.emulator.snapshot()["subscribed_wabas"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn disconnect_with_an_expired_token_is_a_token_error() {
    let env = env().await;
    let ctx = context(&env.connected().await);
    env.emulator.expire_tokens();
    let err = env.adapter.disconnect(&ctx).await.unwrap_err();
    assert!(matches!(err, AdapterError::TokenRejected(_)), "{err:?}");
}
