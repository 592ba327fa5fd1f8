//! Live status from `getMe` + `getWebhookInfo`, and disconnect.

use switchboard_core::ChannelAdapter;
use switchboard_core::domain::IntegrationState;
use switchboard_telegram::emulator::SimulatedMessage;

use crate::support::{Directory, WAIT, World, attempt};

async fn connected(world: &World) -> String {
    let input = serde_json::json!({ "bot_token": world.bot.token });
    let connection = world
        .adapter
        .connect_with_token(&input, &attempt(&Directory::default()))
        .await
        .unwrap();
    secrecy::ExposeSecret::expose_secret(&connection.webhook_secret.unwrap()).to_owned()
}

#[tokio::test]
async fn a_healthy_bot_is_connected_with_its_details() {
    let world = World::new().await;
    let secret = connected(&world).await;
    let status = world.adapter.status(&world.context(&secret)).await;
    assert_eq!(
        status.state,
        IntegrationState::Connected,
        "{:?}",
        status.reason
    );
    assert_eq!(status.details["bot_username"], "switchboard_test_bot");
    assert_eq!(status.details["webhook_url_matches"], true);
    assert_eq!(status.details["pending_update_count"], 0);
}

#[tokio::test]
async fn webhook_delivery_errors_make_the_status_error_with_telegrams_reason() {
    let world = World::new().await;
    let secret = connected(&world).await;
    world.receiver.fail_when("update_id", 1_000);
    let sim = SimulatedMessage {
        text: "will fail".into(),
        ..Default::default()
    };
    world.emulator.simulate_message(world.bot.id, &sim).unwrap();
    assert!(
        world
            .emulator
            .wait_for_deliveries(WAIT, |d| d.len() >= 2)
            .await
    );
    let status = world.adapter.status(&world.context(&secret)).await;
    assert_eq!(status.state, IntegrationState::Error);
    let reason = status.reason.unwrap();
    assert!(
        reason.contains("Wrong response from the webhook: 500 Internal Server Error"),
        "{reason}"
    );
    assert_eq!(status.details["pending_update_count"], 1);
}

#[tokio::test]
async fn a_webhook_pointing_elsewhere_is_an_error() {
    let world = World::new().await;
    let secret = connected(&world).await;
    let other = crate::support::Receiver::start().await;
    let adapter = switchboard_telegram::TelegramAdapter::new(
        switchboard_telegram::TelegramConfig {
            api_base_url: world.emulator.base_url(),
            ..Default::default()
        },
        &crate::support::services(&other.base_url),
    );
    let status = adapter.status(&world.context(&secret)).await;
    assert_eq!(status.state, IntegrationState::Error);
    assert!(status.reason.unwrap().contains("different URL"));
}

#[tokio::test]
async fn a_revoked_token_needs_reauth() {
    let world = World::new().await;
    let secret = connected(&world).await;
    world.emulator.revoke_token(world.bot.id).unwrap();
    let status = world.adapter.status(&world.context(&secret)).await;
    assert_eq!(status.state, IntegrationState::NeedsReauth);
    assert!(status.reason.unwrap().contains("BotFather"));
}

#[tokio::test]
async fn disconnect_deletes_the_webhook_and_reports_a_revoked_token() {
    let world = World::new().await;
    let secret = connected(&world).await;
    world
        .adapter
        .disconnect(&world.context(&secret))
        .await
        .unwrap();
    assert_eq!(
        world.emulator.webhook_info(world.bot.id).unwrap()["url"],
        ""
    );
    let status = world.adapter.status(&world.context(&secret)).await;
    assert_eq!(status.state, IntegrationState::Error, "no webhook any more");
    world.emulator.revoke_token(world.bot.id).unwrap();
    let err = world
        .adapter
        .disconnect(&world.context(&secret))
        .await
        .unwrap_err();
    assert!(
        matches!(err, switchboard_core::AdapterError::TokenRejected(_)),
        "{err:?}"
    );
}
