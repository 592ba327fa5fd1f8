//! The parts of a Telegram `Message`: its chat, its sender and its content kind.

use serde_json::Value;
use switchboard_core::domain::{ChatKind, ChatRef, Contact, MediaRef, MessageKind};

/// Service messages: things that happened in the chat rather than content from a person.
const SERVICE_FIELDS: &[&str] = &[
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "successful_payment",
    "refunded_payment",
    "users_shared",
    "chat_shared",
    "connected_website",
    "write_access_allowed",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "giveaway_created",
    "giveaway_completed",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
];

/// Content Telegram has that the normalized kinds do not: kept by Telegram's field name.
const OTHER_CONTENT: &[&str] = &[
    "dice",
    "story",
    "paid_media",
    "poll",
    "game",
    "invoice",
    "giveaway",
    "giveaway_winners",
    "checklist",
    "web_app_data",
];

fn str_field(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// The chat of a message, with its kind and a human title.
pub(crate) fn chat_ref(chat: &Value) -> ChatRef {
    let kind = match chat.get("type").and_then(Value::as_str) {
        Some("group" | "supergroup") => ChatKind::Group,
        Some("channel") => ChatKind::Channel,
        _ => ChatKind::Direct,
    };
    ChatRef {
        external_id: chat
            .get("id")
            .and_then(Value::as_i64)
            .map(|id| id.to_string())
            .unwrap_or_default(),
        kind,
        title: str_field(chat, "title").or_else(|| full_name(chat)),
    }
}

fn full_name(value: &Value) -> Option<String> {
    let first = str_field(value, "first_name")?;
    Some(match str_field(value, "last_name") {
        Some(last) => format!("{first} {last}"),
        None => first,
    })
}

/// Who sent a message: `sender_chat` when the message was sent on behalf of a chat (channel
/// posts, anonymous group admins, whose `from` is a placeholder bot), else `from`.
pub(crate) fn sender(msg: &Value) -> Contact {
    let on_behalf_of_chat = msg.get("sender_chat").is_some_and(Value::is_object);
    if let Some(from) = msg
        .get("from")
        .filter(|f| f.is_object() && !on_behalf_of_chat)
    {
        return Contact {
            external_id: from
                .get("id")
                .and_then(Value::as_i64)
                .map(|i| i.to_string()),
            user_id: None,
            name: full_name(from),
            phone: None,
            username: str_field(from, "username"),
            is_bot: from.get("is_bot").and_then(Value::as_bool).unwrap_or(false),
        };
    }
    let chat = msg.get("sender_chat").cloned().unwrap_or(Value::Null);
    Contact {
        external_id: chat
            .get("id")
            .and_then(Value::as_i64)
            .map(|i| i.to_string()),
        name: str_field(&chat, "title"),
        username: str_field(&chat, "username"),
        ..Contact::default()
    }
}

fn media_of(file: &Value) -> MediaRef {
    MediaRef {
        id: str_field(file, "file_id"),
        url: None,
        mime_type: str_field(file, "mime_type"),
        sha256: None,
        filename: str_field(file, "file_name"),
        size: file.get("file_size").and_then(Value::as_u64),
    }
}

/// The largest size of a photo (by pixels, then bytes).
fn largest_photo(sizes: &Value) -> Option<MediaRef> {
    let area = |s: &Value| {
        let w = s.get("width").and_then(Value::as_u64).unwrap_or(0);
        let h = s.get("height").and_then(Value::as_u64).unwrap_or(0);
        let bytes = s.get("file_size").and_then(Value::as_u64).unwrap_or(0);
        (w * h, bytes)
    };
    sizes
        .as_array()?
        .iter()
        .max_by_key(|s| area(s))
        .map(media_of)
}

type Content = (MessageKind, Option<String>, Option<MediaRef>);

/// The kind, text (text or caption, or a short description) and media of a message.
pub(crate) fn content(msg: &Value) -> Content {
    let caption = str_field(msg, "caption");
    if let Some(text) = str_field(msg, "text") {
        return (MessageKind::Text, Some(text), None);
    }
    if let Some(photo) = msg.get("photo") {
        return (MessageKind::Image, caption, largest_photo(photo));
    }
    let files = [
        ("animation", MessageKind::Video),
        ("video", MessageKind::Video),
        ("video_note", MessageKind::Video),
        ("voice", MessageKind::Voice),
        ("audio", MessageKind::Audio),
        ("document", MessageKind::Document),
    ];
    for (field, kind) in files {
        if let Some(file) = msg.get(field) {
            return (kind, caption, Some(media_of(file)));
        }
    }
    if let Some(sticker) = msg.get("sticker") {
        return (
            MessageKind::Sticker,
            str_field(sticker, "emoji"),
            Some(media_of(sticker)),
        );
    }
    place_or_person(msg).unwrap_or_else(|| other_content(msg, caption))
}

fn place_or_person(msg: &Value) -> Option<Content> {
    if let Some(venue) = msg.get("venue") {
        let text = [str_field(venue, "title"), str_field(venue, "address")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        return Some((MessageKind::Location, Some(text), None));
    }
    if let Some(location) = msg.get("location") {
        let lat = location.get("latitude").and_then(Value::as_f64)?;
        let lon = location.get("longitude").and_then(Value::as_f64)?;
        return Some((MessageKind::Location, Some(format!("{lat},{lon}")), None));
    }
    let contact = msg.get("contact")?;
    let name = full_name(contact).unwrap_or_default();
    let phone = str_field(contact, "phone_number").unwrap_or_default();
    Some((
        MessageKind::Contacts,
        Some(format!("{name} {phone}").trim().to_owned()),
        None,
    ))
}

fn other_content(msg: &Value, caption: Option<String>) -> Content {
    if let Some(field) = OTHER_CONTENT.iter().find(|f| msg.get(**f).is_some()) {
        let payload = &msg[*field];
        let text = match *field {
            "dice" => str_field(payload, "emoji"),
            "poll" => str_field(payload, "question"),
            _ => caption,
        };
        return (MessageKind::Other((*field).to_owned()), text, None);
    }
    if let Some(field) = SERVICE_FIELDS.iter().find(|f| msg.get(**f).is_some()) {
        return (MessageKind::System, Some((*field).to_owned()), None);
    }
    (MessageKind::Other("unknown".to_owned()), caption, None)
}
