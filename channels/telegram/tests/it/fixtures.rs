//! Every real update body in `shared/fixtures/telegram-updates/` is accepted and parsed into the
//! expected events, with exact 64-bit ids, negative `-100…` chat ids, emoji and kinds.

use std::path::PathBuf;

use switchboard_core::ChannelAdapter;
use switchboard_core::domain::{AccountEvent, ChatKind, InboundEvent, InboundMessage, MessageKind};
use switchboard_telegram::{ParseContext, parse_update};

pub(crate) fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/telegram-updates")
}

pub(crate) fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(crate) fn parse(name: &str) -> Vec<InboundEvent> {
    parse_update(&read(name), &ParseContext::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A bare Message object wrapped as the update Telegram would send.
pub(crate) fn wrap_object(name: &str) -> String {
    let message: serde_json::Value =
        serde_json::from_slice(&read(&format!("message-objects/{name}"))).unwrap();
    let kind = if message["chat"]["type"] == "channel" {
        "channel_post"
    } else {
        "message"
    };
    serde_json::json!({"update_id": 1, kind: message}).to_string()
}

pub(crate) fn parse_object(name: &str) -> Vec<InboundEvent> {
    parse_update(wrap_object(name).as_bytes(), &ParseContext::default()).unwrap()
}

pub(crate) fn only_message(events: &[InboundEvent]) -> &InboundMessage {
    match events {
        [InboundEvent::Message(m)] => m,
        other => panic!("expected one message, got {other:?}"),
    }
}

pub(crate) fn only_account(events: &[InboundEvent]) -> &AccountEvent {
    match events {
        [InboundEvent::Account(a)] => a,
        other => panic!("expected one account event, got {other:?}"),
    }
}

#[test]
fn every_fixture_file_is_accepted_through_the_adapter() {
    let world = futures_free_adapter();
    let mut count = 0;
    for sub in ["", "message-objects"] {
        for entry in std::fs::read_dir(dir().join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = if sub.is_empty() {
                    std::fs::read(&path).unwrap()
                } else {
                    wrap_object(path.file_name().unwrap().to_str().unwrap()).into_bytes()
                };
                let events = world
                    .parse_webhook(&bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!events.is_empty(), "{}", path.display());
                count += 1;
            }
        }
    }
    assert_eq!(count, 37 + 16);
}

fn futures_free_adapter() -> switchboard_telegram::TelegramAdapter {
    switchboard_telegram::TelegramAdapter::new(
        switchboard_telegram::TelegramConfig::default(),
        &crate::support::services("https://gw.example.com"),
    )
}

#[test]
fn a_private_text_becomes_an_addressed_text_message_keyed_by_chat_and_id() {
    let m = only_message(&parse("frankenstein-private-text-getupdates.json")).clone();
    assert_eq!(m.provider_message_id, "275808073:2741");
    assert_eq!(m.kind, MessageKind::Text);
    assert_eq!(m.text.as_deref(), Some("dsaf"));
    assert_eq!(m.chat.external_id, "275808073");
    assert_eq!(m.chat.kind, ChatKind::Direct);
    assert_eq!(m.chat.title.as_deref(), Some("Ayrat Badykov"));
    assert_eq!(m.sender.username.as_deref(), Some("Ayrat555"));
    assert!(!m.sender.is_bot);
    assert!(m.addressed_to_us && m.wants_reply());
    assert_eq!(m.timestamp.timestamp(), 1_618_149_703);
    assert_eq!(m.account_id, "", "the gateway assigns the account");
    assert_eq!(m.raw["update_id"], 379_656_753);
}

#[test]
fn emoji_text_and_utf16_entities_survive_parsing() {
    let m = only_message(&parse("nutgram-private-entities-emoji-utf16.json")).clone();
    assert_eq!(
        m.text.as_deref(),
        Some("test bold underline 😆👍 look here")
    );
    let text = m.text.unwrap();
    let link = &m.raw["message"]["entities"][2];
    assert_eq!(
        switchboard_telegram::parse::entity_text(&text, link).unwrap(),
        "look here"
    );
}

#[test]
fn commands_with_and_without_arguments_are_text() {
    let m = only_message(&parse("nutgram-private-command.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::Text, Some("/test"))
    );
    assert_eq!(m.provider_message_id, "10081232:428640");
    let m = only_message(&parse("nutgram-private-command-with-args.json")).clone();
    assert_eq!(m.text.as_deref(), Some("/register HR John Doe"));
}

#[test]
fn a_photo_keeps_its_largest_size_and_caption() {
    let m = only_message(&parse("nutgram-private-photo-caption.json")).clone();
    assert_eq!(m.kind, MessageKind::Image);
    assert_eq!(m.text.as_deref(), Some("asdasdasdasdasdasd"));
    let media = m.media.unwrap();
    assert_eq!(media.id.as_deref(), Some("SAAS"), "720x960 is the largest");
    assert_eq!(media.size, Some(84_913));
    let m = only_message(&parse_object("teloxide-msg-private-photo.json")).clone();
    assert_eq!(m.kind, MessageKind::Image);
    assert_eq!(m.chat.title.as_deref(), Some("Андрей Власов"));
}

#[test]
fn voice_sticker_location_and_contact_map_to_their_kinds() {
    let m = only_message(&parse("nutgram-private-voice.json")).clone();
    assert_eq!(m.kind, MessageKind::Voice);
    let media = m.media.unwrap();
    assert_eq!(
        (media.id.as_deref(), media.mime_type.as_deref()),
        (Some("dfghjjghdjhgd"), Some("audio/ogg"))
    );
    let m = only_message(&parse("nutgram-private-sticker-legacy-thumb.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::Sticker, Some("🤣"))
    );
    let m = only_message(&parse_object("teloxide-msg-private-sticker.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::Sticker, Some("😡"))
    );
    let m = only_message(&parse("nutgram-private-location.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::Location, Some("41.899977,12.501028"))
    );
    let m = only_message(&parse("nutgram-private-contact-vcard.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::Contacts, Some("911 911"))
    );
}

#[test]
fn documents_audio_video_and_media_groups_carry_their_files() {
    let m = only_message(&parse_object("frankenstein-msg-senddocument-result.json")).clone();
    assert_eq!(m.kind, MessageKind::Audio);
    assert!(m.sender.is_bot, "a message the bot sent");
    let media = m.media.unwrap();
    assert_eq!(media.filename.as_deref(), Some("audio.mp3"));
    assert_eq!(media.size, Some(2_957_092));
    let m = only_message(&parse_object("teloxide-msg-media-group-video.json")).clone();
    assert_eq!(m.kind, MessageKind::Video);
    assert_eq!(m.raw["message"]["media_group_id"], "12543417770506682");
    assert_eq!(m.media.unwrap().mime_type.as_deref(), Some("video/mp4"));
    let m = only_message(&parse_object("frankenstein-msg-sendlocation-result.json")).clone();
    assert_eq!(m.text.as_deref(), Some("49.700002,6.949981"));
    let m = only_message(&parse_object("frankenstein-msg-sendcontact-result.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::Contacts, Some("Meow 49"))
    );
    let m = only_message(&parse_object("teloxide-msg-photo-caption-entities.json")).clone();
    assert_eq!(m.kind, MessageKind::Image);
}

#[test]
fn an_edit_is_its_own_event_pointing_at_the_edited_message() {
    let m = only_message(&parse("nutgram-private-edited-message-with-reply.json")).clone();
    assert_eq!(m.kind, MessageKind::Edit);
    assert_eq!(m.provider_message_id, "999999999:23762:edit:62257549");
    assert_eq!(m.reply_to.as_deref(), Some("999999999:23762"));
    assert_eq!(m.text.as_deref(), Some("Editing this message"));
    assert_eq!(m.timestamp.timestamp(), 1_584_985_245);
    assert!(!m.wants_reply());
}

#[test]
fn supergroup_messages_keep_negative_64_bit_ids_and_large_user_ids() {
    let m = only_message(&parse("teloxide-supergroup-command-reply-thread.json")).clone();
    assert_eq!(m.provider_message_id, "-1001293752024:134546");
    assert_eq!(m.chat.kind, ChatKind::Group);
    assert_eq!(m.sender.external_id.as_deref(), Some("5964236329"));
    assert_eq!(m.reply_to.as_deref(), Some("-1001293752024:134545"));
    assert_eq!(m.thread_id, None, "a reply thread, not a forum topic");
    assert!(m.addressed_to_us, "a bare bot command in a group");
    let m = only_message(&parse("teloxide-supergroup-story-large-user-id.json")).clone();
    assert_eq!(m.kind, MessageKind::Other("story".into()));
    assert_eq!(m.sender.external_id.as_deref(), Some("6962620676"));
    assert!(!m.addressed_to_us, "no mention, no reply to a bot");
}

#[test]
fn dice_and_pinned_messages_are_kept_by_kind() {
    let m = only_message(&parse("teloxide-supergroup-dice-emoji.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::Other("dice".into()), Some("🎲"))
    );
    assert_eq!(m.chat.external_id, "-1001276785818");
    let m = only_message(&parse("teloxide-supergroup-pinned-message.json")).clone();
    assert_eq!(
        (&m.kind, m.text.as_deref()),
        (&MessageKind::System, Some("pinned_message"))
    );
    assert!(!m.wants_reply());
}

#[test]
fn forum_topic_messages_carry_the_topic_as_thread_id() {
    let m = only_message(&parse("nutgram-forum-topic-message.json")).clone();
    assert_eq!(m.thread_id.as_deref(), Some("33"));
    assert_eq!(
        m.reply_to, None,
        "the topic's creation message is not a reply"
    );
    assert_eq!(m.text.as_deref(), Some("lòklò"));
    let m = only_message(&parse("nutgram-forum-topic-reply-to-message.json")).clone();
    assert_eq!(m.thread_id.as_deref(), Some("33"));
    assert_eq!(m.reply_to.as_deref(), Some("-1001234567489:70"));
    let m = only_message(&parse("nutgram-forum-general-topic-reply.json")).clone();
    assert_eq!(m.thread_id, None);
    assert_eq!(m.reply_to.as_deref(), Some("-1001234567489:66"));
    let m = only_message(&parse_object("teloxide-msg-forum-topic-created.json")).clone();
    assert_eq!(
        (m.kind, m.thread_id.as_deref()),
        (MessageKind::System, Some("4"))
    );
    let m = only_message(&parse_object("teloxide-msg-forum-topic-message.json")).clone();
    assert_eq!(
        (m.thread_id.as_deref(), m.reply_to.as_deref()),
        (Some("4"), None)
    );
}

#[test]
fn forwarded_link_preview_and_write_access_messages_parse() {
    let m = only_message(&parse("nutgram-private-forward-origin-user.json")).clone();
    assert_eq!(m.text.as_deref(), Some("Ciao"));
    assert_eq!(
        m.raw["message"]["forward_origin"]["sender_user"]["id"],
        429_000
    );
    let m = only_message(&parse("teloxide-private-text-link-preview-disabled.json")).clone();
    assert_eq!(m.provider_message_id, "218485655:6557");
    let m = only_message(&parse("teloxide-private-text-short.json")).clone();
    assert_eq!(
        (m.provider_message_id.as_str(), m.text.as_deref()),
        ("408258968:154", Some("4"))
    );
    let m = only_message(&parse("telegrambots-write-access-allowed.json")).clone();
    assert_eq!(
        (m.kind, m.text.as_deref()),
        (MessageKind::System, Some("write_access_allowed"))
    );
    let m = only_message(&parse("nutgram-private-text.json")).clone();
    assert_eq!(m.provider_message_id, "12345678:123456");
}

#[test]
fn channel_posts_and_anonymous_admins_are_sent_by_the_chat() {
    let m = only_message(&parse_object(
        "teloxide-msg-channel-service-giveaway-created.json",
    ))
    .clone();
    assert_eq!(m.chat.kind, ChatKind::Channel);
    assert_eq!(m.sender.external_id.as_deref(), Some("-1002236736395"));
    assert!(!m.addressed_to_us);
    let m = only_message(&parse_object(
        "teloxide-msg-supergroup-sender-chat-forward-origin.json",
    ))
    .clone();
    assert_eq!(m.sender.external_id.as_deref(), Some("-1001160242915"));
    assert!(!m.sender.is_bot, "GroupAnonymousBot stands in for the chat");
}
