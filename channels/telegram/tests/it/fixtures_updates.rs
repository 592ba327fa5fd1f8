//! Fixture updates that are not plain messages: callback queries, membership changes,
//! reactions, business updates, migrations, unknown kinds, and bodies that are not updates.

use switchboard_core::domain::{InboundEvent, MessageKind};
use switchboard_telegram::{ParseContext, parse_update};

use crate::fixtures::{only_account, only_message, parse, parse_object};

#[test]
fn callback_queries_become_interactive_replies_with_their_data() {
    let m = only_message(&parse("nutgram-callback-query.json")).clone();
    assert_eq!(m.kind, MessageKind::Interactive);
    assert_eq!(m.provider_message_id, "callback:666728699048485871");
    assert_eq!(m.text.as_deref(), Some("thedata"));
    assert_eq!(m.reply_to.as_deref(), Some("222222222:69587"));
    assert_eq!(m.sender.external_id.as_deref(), Some("222222222"));
    assert!(m.wants_reply());
    let m = only_message(&parse("nutgram-callback-query-inaccessible-message.json")).clone();
    assert_eq!(m.reply_to.as_deref(), Some("222222222:69587"));
}

#[test]
fn a_private_kick_is_the_user_blocking_the_bot() {
    let a = only_account(&parse("teloxide-my-chat-member-private-bot-blocked.json")).clone();
    assert_eq!(a.kind, "bot_blocked");
    assert_eq!(a.chat_id.as_deref(), Some("0"));
    assert_eq!(a.account_id, None);
    assert_eq!(a.timestamp.unwrap().timestamp(), 1_644_677_726);
}

#[test]
fn reactions_are_events_on_the_reacted_message() {
    let m = only_message(&parse("teloxide-message-reaction-user.json")).clone();
    assert_eq!(m.kind, MessageKind::Reaction);
    assert_eq!(m.text.as_deref(), Some("🌭"));
    assert_eq!(m.reply_to.as_deref(), Some("-1002184233434:35"));
    assert_eq!(m.provider_message_id, "-1002184233434:35:reaction:71651249");
    assert_eq!(m.sender.external_id.as_deref(), Some("1459074222"));
    let m = only_message(&parse(
        "teloxide-message-reaction-anonymous-actor-chat-cyrillic.json",
    ))
    .clone();
    assert_eq!(m.text, None, "the reaction was removed");
    assert_eq!(m.sender.name.as_deref(), Some("тест"));
    assert_eq!(m.chat.title.as_deref(), Some("тест"));
    let a = only_account(&parse("teloxide-message-reaction-count-channel.json")).clone();
    assert_eq!(a.kind, "message_reaction_count");
    assert_eq!(a.summary.as_deref(), Some("🗿×2 🌭×1"));
    assert_eq!(a.chat_id.as_deref(), Some("-1002236736395"));
}

#[test]
fn business_updates_are_parsed() {
    let m = only_message(&parse("nutgram-business-message.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::Text, Some("Ciao"))
    );
    let m = only_message(&parse("nutgram-edited-business-message.json")).clone();
    assert_eq!(m.kind, MessageKind::Edit);
    let a = only_account(&parse("nutgram-business-connection.json")).clone();
    assert_eq!(a.kind, "business_connection");
    assert_eq!(a.summary.as_deref(), Some("business connection enabled"));
    assert_eq!(a.chat_id.as_deref(), Some("12345"));
    let events = parse("nutgram-deleted-business-messages.json");
    let ids: Vec<_> = events
        .iter()
        .map(|e| match e {
            InboundEvent::Message(m) => (m.kind.clone(), m.reply_to.clone().unwrap()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            (MessageKind::Delete, "biz:123:456:123".to_owned()),
            (MessageKind::Delete, "biz:123:456:321".to_owned()),
        ]
    );
}

#[test]
fn update_kinds_without_a_message_model_are_kept_as_account_events() {
    for (file, kind, chat) in [
        (
            "nutgram-inline-query.json",
            "inline_query",
            Some("123456789"),
        ),
        ("nutgram-poll-answer.json", "poll_answer", Some("123456789")),
        (
            "teloxide-chat-boost.json",
            "chat_boost",
            Some("-1002236736395"),
        ),
        (
            "teloxide-removed-chat-boost.json",
            "removed_chat_boost",
            Some("-1002236736395"),
        ),
        (
            "teloxide-purchased-paid-media.json",
            "purchased_paid_media",
            Some("408258968"),
        ),
    ] {
        let a = only_account(&parse(file)).clone();
        assert_eq!(
            (a.kind.as_str(), a.chat_id.as_deref()),
            (kind, chat),
            "{file}"
        );
        assert!(a.raw.get(kind).is_some());
    }
}

#[test]
fn a_group_migration_adds_a_chat_migrated_event() {
    let events = parse_object("teloxide-msg-group-migrate-to-supergroup.json");
    assert_eq!(events.len(), 2);
    let InboundEvent::Account(a) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(a.kind, "chat_migrated");
    assert_eq!(a.chat_id.as_deref(), Some("-599075523"));
    assert!(a.summary.as_deref().unwrap().contains("-1001555296434"));
    let events = parse_object("teloxide-msg-supergroup-migrate-from-group.json");
    let InboundEvent::Account(a) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(a.chat_id.as_deref(), Some("-599075523"));
}

#[test]
fn a_known_bot_fills_the_account_and_decides_addressing_exactly() {
    let body = br#"{"update_id":5,"message":{"message_id":9,"date":1700000000,
        "chat":{"id":-1001,"type":"supergroup","title":"g"},
        "from":{"id":42,"is_bot":false,"first_name":"A"},
        "text":"hi @other_bot and @our_bot","entities":[
        {"type":"mention","offset":3,"length":10},{"type":"mention","offset":18,"length":8}]}}"#;
    let ctx = ParseContext {
        account_id: "777",
        bot_username: Some("our_bot"),
    };
    let m = only_message(&parse_update(body, &ctx).unwrap()).clone();
    assert_eq!(m.account_id, "777");
    assert!(m.addressed_to_us);
    let ctx = ParseContext {
        account_id: "777",
        bot_username: Some("third_bot"),
    };
    assert!(!only_message(&parse_update(body, &ctx).unwrap()).addressed_to_us);
}

#[test]
fn bodies_that_are_not_updates_are_parse_errors_and_unknown_kinds_are_not() {
    let ctx = ParseContext::default();
    assert!(parse_update(b"not json", &ctx).is_err());
    assert!(parse_update(b"[1]", &ctx).is_err());
    assert!(parse_update(br#"{"message":{}}"#, &ctx).is_err());
    let events = parse_update(br#"{"update_id":1,"guest_message_2027":{"x":1}}"#, &ctx).unwrap();
    assert_eq!(only_account(&events).kind, "guest_message_2027");
}
