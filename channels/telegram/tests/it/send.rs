//! Sending through the emulator: ids, reply and topic parameters, splitting, and the
//! classification of every failure class.

use std::time::Duration;

use switchboard_core::ChannelAdapter;
use switchboard_core::domain::{
    FailureClass, MediaKind, MediaSource, OutboundContent, OutboundMessage, SendFailure,
    SendReceipt,
};
use switchboard_telegram::TelegramConfig;
use switchboard_telegram::emulator::{ChatSpec, EmulatorConfig, RateLimits, SendFault};
use switchboard_telegram::split::utf16_len;

use crate::support::World;

const USER: i64 = 6_962_620_676;
const GROUP: i64 = -1_001_293_752_024;

fn chat(id: i64, kind: &str) -> ChatSpec {
    ChatSpec {
        id,
        kind: kind.into(),
        title: None,
        first_name: Some("U".into()),
        username: None,
        is_forum: false,
    }
}

async fn world_with(config: EmulatorConfig, adapter: TelegramConfig) -> World {
    let world = World::with(config, adapter).await;
    world.emulator.add_chat(chat(USER, "private"));
    world.emulator.add_chat(chat(GROUP, "supergroup"));
    world
}

async fn world() -> World {
    world_with(EmulatorConfig::default(), TelegramConfig::default()).await
}

fn text(to: i64, body: &str) -> OutboundMessage {
    OutboundMessage {
        to: to.to_string(),
        content: OutboundContent::Text {
            body: body.into(),
            preview_url: false,
        },
        reply_to: None,
        thread_id: None,
        reference: None,
    }
}

async fn send(world: &World, message: &OutboundMessage) -> Result<SendReceipt, SendFailure> {
    world.adapter.send(&world.context("secret"), message).await
}

#[tokio::test]
async fn a_text_reply_in_a_topic_returns_the_chat_scoped_id() {
    let world = world().await;
    let mut message = text(GROUP, "hello 👋");
    message.reply_to = Some(format!("{GROUP}:134546"));
    message.thread_id = Some("134545".into());
    let receipt = send(&world, &message).await.unwrap();
    assert_eq!(receipt.provider_message_ids, vec![format!("{GROUP}:1")]);
    let sent = world.emulator.sent_messages();
    assert_eq!(sent[0].text.as_deref(), Some("hello 👋"));
    assert_eq!(sent[0].params["message_thread_id"], "134545");
    let reply: serde_json::Value =
        serde_json::from_str(&sent[0].params["reply_parameters"]).unwrap();
    assert_eq!(reply["message_id"], 134_546);
    assert_eq!(reply.get("chat_id"), None, "same chat");
}

#[tokio::test]
async fn a_long_text_is_split_into_several_messages_with_all_ids() {
    let world = world().await;
    let paragraph = "word ".repeat(300);
    let body = [
        paragraph.trim(),
        paragraph.trim(),
        paragraph.trim(),
        paragraph.trim(),
    ]
    .join("\n\n");
    assert!(utf16_len(&body) > 4096);
    let receipt = send(&world, &text(USER, &body)).await.unwrap();
    assert_eq!(receipt.provider_message_ids.len(), 2);
    let sent = world.emulator.sent_messages();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|m| utf16_len(m.text.as_deref().unwrap()) <= 4096)
    );
    // Three paragraphs do not fit 4096 units: the cut falls on the second paragraph break.
    assert_eq!(
        sent[0].text.as_deref().unwrap(),
        [paragraph.trim(); 2].join("\n\n")
    );
    assert_eq!(
        sent[1].text.as_deref().unwrap(),
        [paragraph.trim(); 2].join("\n\n")
    );
}

#[tokio::test]
async fn exactly_4096_units_is_one_message_and_4097_is_two() {
    let world = world().await;
    let receipt = send(&world, &text(USER, &"a".repeat(4096))).await.unwrap();
    assert_eq!(receipt.provider_message_ids.len(), 1);
    let receipt = send(&world, &text(USER, &"a".repeat(4097))).await.unwrap();
    assert_eq!(receipt.provider_message_ids.len(), 2);
}

#[tokio::test]
async fn emoji_are_counted_in_utf16_and_never_cut_in_half() {
    let world = world().await;
    let body = "😀".repeat(3000);
    let receipt = send(&world, &text(USER, &body)).await.unwrap();
    assert_eq!(receipt.provider_message_ids.len(), 2);
    let parts: Vec<String> = world
        .emulator
        .sent_messages()
        .into_iter()
        .map(|m| m.text.unwrap())
        .collect();
    assert_eq!(utf16_len(&parts[0]), 4096);
    assert_eq!(parts.concat(), body);
}

async fn failure(world: &World, message: &OutboundMessage) -> SendFailure {
    send(world, message).await.unwrap_err()
}

#[tokio::test]
async fn an_unknown_chat_is_a_permanent_failure_with_telegrams_description() {
    let world = world().await;
    let f = failure(&world, &text(12_345, "hi")).await;
    assert_eq!(
        (f.class, f.code.as_str(), f.reason.as_str()),
        (
            FailureClass::Permanent,
            "400",
            "Bad Request: chat not found"
        )
    );
}

#[tokio::test]
async fn a_user_who_blocked_the_bot_is_unreachable() {
    let world = world().await;
    world.emulator.block_bot(world.bot.id, USER).unwrap();
    let f = failure(&world, &text(USER, "hi")).await;
    assert_eq!(
        (f.class, f.reason.as_str()),
        (
            FailureClass::Unreachable,
            "Forbidden: bot was blocked by the user"
        )
    );
}

#[tokio::test]
async fn a_revoked_token_needs_reauth() {
    let world = world().await;
    world.emulator.revoke_token(world.bot.id).unwrap();
    assert_eq!(
        failure(&world, &text(USER, "hi")).await.class,
        FailureClass::NeedsReauth
    );
}

#[tokio::test]
async fn a_migrated_group_names_its_new_chat_id() {
    let world = world().await;
    world.emulator.add_chat(chat(-599_075_523, "group"));
    world
        .emulator
        .migrate_chat(-599_075_523, -1_001_555_296_434);
    let f = failure(&world, &text(-599_075_523, "hi")).await;
    assert_eq!(
        f.class,
        FailureClass::ChatMigrated {
            to: "-1001555296434".into()
        }
    );
    assert!(send(&world, &text(-1_001_555_296_434, "hi")).await.is_ok());
}

#[tokio::test]
async fn too_many_requests_retries_after_telegrams_hint_and_5xx_retries() {
    let world = world().await;
    world.emulator.fail_next_sends([
        SendFault::TooManyRequests { retry_after: 7 },
        SendFault::ServerError,
    ]);
    let f = failure(&world, &text(USER, "hi")).await;
    assert_eq!(
        f.class,
        FailureClass::Retry {
            after: Some(Duration::from_secs(7)),
            per_recipient: false
        }
    );
    assert_eq!(f.code, "429");
    let f = failure(&world, &text(USER, "hi")).await;
    assert_eq!(
        f.class,
        FailureClass::Retry {
            after: None,
            per_recipient: false
        }
    );
    assert!(world.emulator.sent_messages().is_empty());
}

#[tokio::test]
async fn the_emulators_flood_control_is_classified_as_retry() {
    let limits = RateLimits {
        per_chat_per_second: 1,
        ..RateLimits::default()
    };
    let world = world_with(
        EmulatorConfig {
            rate_limits: Some(limits),
            ..Default::default()
        },
        TelegramConfig::default(),
    )
    .await;
    send(&world, &text(USER, "one")).await.unwrap();
    let f = failure(&world, &text(USER, "two")).await;
    assert_eq!(
        f.class,
        FailureClass::Retry {
            after: Some(Duration::from_secs(1)),
            per_recipient: false
        }
    );
    assert!(f.reason.starts_with("Too Many Requests: retry after"));
}

#[tokio::test]
async fn a_timeout_after_sending_is_uncertain_and_the_message_did_go_out() {
    let adapter = TelegramConfig {
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let world = world_with(EmulatorConfig::default(), adapter).await;
    world
        .emulator
        .fail_next_sends([SendFault::Stall { millis: 1_500 }]);
    let f = failure(&world, &text(USER, "slow")).await;
    assert_eq!(
        (f.class, f.code.as_str()),
        (FailureClass::Uncertain, "timeout")
    );
    assert_eq!(world.emulator.sent_messages().len(), 1);
}

#[tokio::test]
async fn an_unreachable_api_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let world = world().await;
    let adapter = switchboard_telegram::TelegramAdapter::new(
        TelegramConfig {
            api_base_url: dead,
            ..Default::default()
        },
        &crate::support::services("http://127.0.0.1:1"),
    );
    let f = adapter
        .send(&world.context("s"), &text(USER, "hi"))
        .await
        .unwrap_err();
    assert_eq!(
        (f.class, f.code.as_str()),
        (
            FailureClass::Retry {
                after: None,
                per_recipient: false
            },
            "network"
        )
    );
    assert!(!f.reason.contains(&world.bot.token));
}

#[tokio::test]
async fn media_actions_and_reactions_use_their_methods() {
    let world = world().await;
    let photo = OutboundMessage {
        content: OutboundContent::Media {
            kind: MediaKind::Image,
            source: MediaSource::Id("AgADphoto".into()),
            caption: Some("look 📷".into()),
            filename: None,
        },
        ..text(USER, "")
    };
    let receipt = send(&world, &photo).await.unwrap();
    assert_eq!(receipt.provider_message_ids, vec![format!("{USER}:1")]);
    let typing = OutboundMessage {
        content: OutboundContent::ChatAction {
            action: "typing".into(),
        },
        ..text(USER, "")
    };
    assert!(
        send(&world, &typing)
            .await
            .unwrap()
            .provider_message_ids
            .is_empty()
    );
    let react = OutboundMessage {
        content: OutboundContent::Reaction {
            message_id: format!("{USER}:1"),
            emoji: "👍".into(),
        },
        ..text(USER, "")
    };
    assert!(send(&world, &react).await.is_ok());
    let sent = world.emulator.sent_messages();
    assert_eq!(
        (sent[0].method.as_str(), sent[0].params["photo"].as_str()),
        ("sendPhoto", "AgADphoto")
    );
    assert_eq!(sent[0].params["caption"], "look 📷");
}

#[tokio::test]
async fn content_telegram_cannot_carry_is_refused_permanently() {
    let world = world().await;
    for content in [
        OutboundContent::Template {
            name: "t".into(),
            language: "en".into(),
            components: vec![],
        },
        OutboundContent::MarkRead {
            message_id: "1:2".into(),
        },
        OutboundContent::ChatAction {
            action: "dancing".into(),
        },
        OutboundContent::Text {
            body: "  ".into(),
            preview_url: false,
        },
    ] {
        let message = OutboundMessage {
            content,
            ..text(USER, "")
        };
        assert_eq!(
            failure(&world, &message).await.class,
            FailureClass::Permanent
        );
    }
    assert_eq!(
        failure(&world, &text(0, "x")).await.class,
        FailureClass::Permanent
    );
    assert!(world.emulator.sent_messages().is_empty());
}
