//! Connecting a bot: token form, `getMe`, ownership, webhook registration, secret rotation.

use secrecy::ExposeSecret;
use switchboard_core::BusinessId;
use switchboard_core::ChannelAdapter;
use switchboard_core::error::ConnectErrorKind;
use switchboard_telegram::adapter::TelegramCredentials;

use crate::support::{Directory, World, attempt};

#[tokio::test]
async fn a_good_token_connects_and_registers_the_webhook_with_a_fresh_secret() {
    let world = World::new().await;
    let directory = Directory::default();
    let input = serde_json::json!({ "bot_token": world.bot.token });
    let connection = world
        .adapter
        .connect_with_token(&input, &attempt(&directory))
        .await
        .unwrap();
    assert_eq!(connection.account_id, "7123456789");
    assert_eq!(
        connection.channel_name.as_deref(),
        Some("switchboard_test_bot")
    );
    assert_eq!(connection.details["bot_username"], "switchboard_test_bot");
    assert_eq!(connection.details["bot_id"], "7123456789");
    assert_eq!(connection.details["bot_name"], "Switchboard Test");
    assert_eq!(connection.details["can_join_groups"], true);
    assert_eq!(connection.token_expires_at, None);
    let secret = connection
        .webhook_secret
        .unwrap()
        .expose_secret()
        .to_owned();
    assert!(
        secret.len() >= 32
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    );
    let creds: TelegramCredentials = connection.credentials.parse().unwrap();
    assert_eq!(
        (creds.bot_token.as_str(), creds.webhook_secret.as_str()),
        (world.bot.token.as_str(), secret.as_str())
    );
    assert!(!format!("{:?}", connection.credentials).contains(&world.bot.token));
    let info = world.emulator.webhook_info(world.bot.id).unwrap();
    assert_eq!(
        info["url"],
        format!("{}/api/webhooks/telegram", world.receiver.base_url)
    );
    assert_eq!(info["max_connections"], 40);
    assert!(
        info["allowed_updates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "message_reaction")
    );
}

#[tokio::test]
async fn a_malformed_token_is_rejected_without_calling_telegram() {
    let world = World::new().await;
    let directory = Directory::default();
    for input in [
        serde_json::json!({"bot_token": "123:short"}),
        serde_json::json!({"bot_token": 5}),
        serde_json::json!({}),
    ] {
        let err = world
            .adapter
            .connect_with_token(&input, &attempt(&directory))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code, err.kind),
            ("invalid_bot_token", ConnectErrorKind::Rejected)
        );
    }
}

#[tokio::test]
async fn unknown_and_revoked_tokens_are_invalid_bot_tokens_and_never_echoed() {
    let world = World::new().await;
    let directory = Directory::default();
    let unknown = "5555555555:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let err = world
        .adapter
        .connect_with_token(
            &serde_json::json!({"bot_token": unknown}),
            &attempt(&directory),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.kind),
        ("invalid_bot_token", ConnectErrorKind::Rejected)
    );
    assert!(!err.message.contains(unknown));
    world.emulator.revoke_token(world.bot.id).unwrap();
    let err = world
        .adapter
        .connect_with_token(
            &serde_json::json!({"bot_token": world.bot.token}),
            &attempt(&directory),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "invalid_bot_token");
    assert!(!err.message.contains(&world.bot.token));
}

#[tokio::test]
async fn a_bot_held_by_another_business_is_refused_before_the_webhook_is_touched() {
    let world = World::new().await;
    let directory = Directory {
        owner: Some(BusinessId::new()),
    };
    let err = world
        .adapter
        .connect_with_token(
            &serde_json::json!({"bot_token": world.bot.token}),
            &attempt(&directory),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.kind),
        ("bot_in_use", ConnectErrorKind::Conflict)
    );
    assert_eq!(
        world.emulator.webhook_info(world.bot.id).unwrap()["url"],
        ""
    );
}

#[tokio::test]
async fn the_same_business_reconnecting_rotates_the_secret_despite_the_one_per_second_limit() {
    let world = World::new().await;
    let business = BusinessId::new();
    let directory = Directory {
        owner: Some(business),
    };
    let attempt = switchboard_core::adapter::ConnectAttempt {
        business_id: business,
        directory: &directory,
    };
    let input = serde_json::json!({ "bot_token": world.bot.token });
    let first = world
        .adapter
        .connect_with_token(&input, &attempt)
        .await
        .unwrap();
    let second = world
        .adapter
        .connect_with_token(&input, &attempt)
        .await
        .unwrap();
    let (a, b) = (
        first.webhook_secret.unwrap(),
        second.webhook_secret.unwrap(),
    );
    assert_ne!(a.expose_secret(), b.expose_secret());
    let sim = switchboard_telegram::emulator::SimulatedMessage {
        text: "after rotation".into(),
        ..Default::default()
    };
    world.emulator.simulate_message(world.bot.id, &sim).unwrap();
    assert!(
        world
            .emulator
            .wait_for_deliveries(crate::support::WAIT, |d| !d.is_empty())
            .await
    );
    let received = world.receiver.received();
    assert_eq!(received[0].secret.as_deref(), Some(b.expose_secret()));
}

#[tokio::test]
async fn an_unreachable_telegram_is_an_upstream_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let config = switchboard_telegram::TelegramConfig {
        api_base_url: dead,
        ..Default::default()
    };
    let adapter = switchboard_telegram::TelegramAdapter::new(
        config,
        &crate::support::services("http://127.0.0.1:1"),
    );
    let directory = Directory::default();
    let token = "5555555555:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let err = adapter
        .connect_with_token(
            &serde_json::json!({"bot_token": token}),
            &attempt(&directory),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.kind),
        ("upstream_error", ConnectErrorKind::Upstream)
    );
    assert!(!err.message.contains(token), "{}", err.message);
}
