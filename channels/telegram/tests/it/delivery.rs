//! The emulator delivers updates like Telegram: secret header, ASCII-escaped bodies with the
//! newline after `update_id`, strict per-chat order, retries with `last_error_message`,
//! duplicates on demand, and `my_chat_member` when a user blocks the bot.

use secrecy::ExposeSecret;
use switchboard_core::ChannelAdapter;
use switchboard_core::domain::InboundEvent;
use switchboard_telegram::TelegramConfig;
use switchboard_telegram::emulator::{EmulatorConfig, RetrySchedule, SimulatedMessage};

use crate::support::{Directory, WAIT, World, attempt};

async fn connect(world: &World) -> String {
    let input = serde_json::json!({ "bot_token": world.bot.token });
    let c = world
        .adapter
        .connect_with_token(&input, &attempt(&Directory::default()))
        .await
        .unwrap();
    c.webhook_secret.unwrap().expose_secret().to_owned()
}

fn say(text: &str, chat: i64) -> SimulatedMessage {
    SimulatedMessage {
        text: text.into(),
        chat_id: Some(chat),
        from_id: Some(chat.abs()),
        ..Default::default()
    }
}

fn successes(world: &World) -> usize {
    world
        .emulator
        .deliveries()
        .iter()
        .filter(|d| d.status == Some(200))
        .count()
}

#[tokio::test]
async fn updates_arrive_with_the_secret_header_and_telegrams_ascii_escaping() {
    let world = World::new().await;
    let secret = connect(&world).await;
    let update = world
        .emulator
        .simulate_message(world.bot.id, &say("Привет 😆", 6_962_620_676))
        .unwrap();
    assert!(
        world
            .emulator
            .wait_for_deliveries(WAIT, |d| !d.is_empty())
            .await
    );
    let received = world.receiver.received();
    let body = &received[0].body;
    assert_eq!(received[0].secret.as_deref(), Some(secret.as_str()));
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("application/json")
    );
    assert!(body.is_ascii());
    assert!(body.starts_with(&format!(
        "{{\"update_id\":{},\n\"message\":",
        update["update_id"]
    )));
    assert!(
        body.contains(r"\u041f\u0440\u0438\u0432\u0435\u0442 \ud83d\ude06"),
        "{body}"
    );
    let events = world.adapter.parse_webhook(body.as_bytes()).unwrap();
    let InboundEvent::Message(m) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(m.text.as_deref(), Some("Привет 😆"));
    assert_eq!(m.chat.external_id, "6962620676");
    assert!(m.wants_reply());
}

#[tokio::test]
async fn a_failing_update_holds_back_its_chat_but_is_retried_until_acknowledged() {
    let world = World::new().await;
    connect(&world).await;
    world.receiver.fail_when("first-in-A", 2);
    for (text, chat) in [
        ("first-in-A", 111),
        ("second-in-A", 111),
        ("only-in-B", 222),
    ] {
        world
            .emulator
            .simulate_message(world.bot.id, &say(text, chat))
            .unwrap();
    }
    assert!(
        world
            .emulator
            .wait_for_deliveries(WAIT, |d| d.iter().filter(|a| a.status == Some(200)).count()
                == 3)
            .await
    );
    let bodies: Vec<String> = world
        .receiver
        .received()
        .into_iter()
        .map(|r| r.body)
        .collect();
    let last_first = bodies
        .iter()
        .rposition(|b| b.contains("first-in-A"))
        .unwrap();
    let first_second = bodies
        .iter()
        .position(|b| b.contains("second-in-A"))
        .unwrap();
    assert!(last_first < first_second, "{bodies:#?}");
    assert_eq!(
        bodies.iter().filter(|b| b.contains("first-in-A")).count(),
        3
    );
    let errors: Vec<_> = world
        .emulator
        .deliveries()
        .into_iter()
        .filter_map(|d| d.error)
        .collect();
    assert_eq!(
        errors,
        vec!["Wrong response from the webhook: 500 Internal Server Error"; 2]
    );
    let info = world.emulator.webhook_info(world.bot.id).unwrap();
    assert_eq!(
        info["last_error_message"],
        "Wrong response from the webhook: 500 Internal Server Error"
    );
    assert_eq!(info["pending_update_count"], 0);
    assert_eq!(successes(&world), 3);
}

#[tokio::test]
async fn an_update_is_dropped_after_the_last_retry() {
    let retry = RetrySchedule {
        max_attempts: 3,
        ..RetrySchedule::compressed()
    };
    let world = World::with(
        EmulatorConfig {
            retry,
            ..Default::default()
        },
        TelegramConfig::default(),
    )
    .await;
    connect(&world).await;
    world.receiver.fail_when("doomed", 100);
    world
        .emulator
        .simulate_message(world.bot.id, &say("doomed", 5))
        .unwrap();
    assert!(
        world
            .emulator
            .wait_for_deliveries(WAIT, |d| d.len() == 3)
            .await
    );
    let info = world.emulator.webhook_info(world.bot.id).unwrap();
    assert_eq!(info["pending_update_count"], 0);
    assert!(info["last_error_date"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn a_duplicate_delivery_parses_to_the_same_provider_message_id() {
    let world = World::new().await;
    connect(&world).await;
    world.emulator.set_duplicate_deliveries(true);
    world
        .emulator
        .simulate_message(world.bot.id, &say("twice", 9))
        .unwrap();
    assert!(
        world
            .emulator
            .wait_for_deliveries(WAIT, |d| d.len() == 2)
            .await
    );
    let ids: Vec<String> = world
        .receiver
        .received()
        .iter()
        .map(
            |r| match &world.adapter.parse_webhook(r.body.as_bytes()).unwrap()[0] {
                InboundEvent::Message(m) => m.provider_message_id.clone(),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn blocking_the_bot_delivers_a_bot_blocked_event_for_the_chat() {
    let world = World::new().await;
    connect(&world).await;
    world
        .emulator
        .simulate_message(world.bot.id, &say("hi", 4242))
        .unwrap();
    world.emulator.block_bot(world.bot.id, 4242).unwrap();
    assert!(
        world
            .emulator
            .wait_for_deliveries(WAIT, |d| d.len() == 2)
            .await
    );
    let received = world.receiver.received();
    let blocked = received
        .iter()
        .find(|r| r.body.contains("my_chat_member"))
        .unwrap();
    let events = world
        .adapter
        .parse_webhook(blocked.body.as_bytes())
        .unwrap();
    let InboundEvent::Account(a) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (a.kind.as_str(), a.chat_id.as_deref()),
        ("bot_blocked", Some("4242"))
    );
}

#[tokio::test]
async fn a_group_reply_to_the_bot_is_addressed_and_a_plain_group_message_is_not() {
    let world = World::new().await;
    connect(&world).await;
    let sent = world
        .adapter
        .send(&world.context("s"), &{
            world
                .emulator
                .simulate_message(world.bot.id, &say("seed", -100_777))
                .unwrap();
            switchboard_core::domain::OutboundMessage {
                to: "-100777".into(),
                content: switchboard_core::domain::OutboundContent::Text {
                    body: "bot says".into(),
                    preview_url: false,
                },
                reply_to: None,
                thread_id: None,
                reference: None,
            }
        })
        .await
        .unwrap();
    let (_, bot_msg) = sent.provider_message_ids[0].split_once(':').unwrap();
    let reply = SimulatedMessage {
        reply_to_message_id: Some(bot_msg.parse().unwrap()),
        ..say("answer", -100_777)
    };
    world
        .emulator
        .simulate_message(world.bot.id, &reply)
        .unwrap();
    assert!(
        world
            .emulator
            .wait_for_deliveries(WAIT, |d| d.len() == 2)
            .await
    );
    let addressed: Vec<bool> = world
        .receiver
        .received()
        .iter()
        .map(
            |r| match &world.adapter.parse_webhook(r.body.as_bytes()).unwrap()[0] {
                InboundEvent::Message(m) => m.addressed_to_us,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(addressed, vec![false, true]);
}
