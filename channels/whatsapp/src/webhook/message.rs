//! `value.messages[]`: what customers send, per type, into [`InboundMessage`].
//!
//! The sender is matched to `value.contacts[]` by `wa_id` (or business-scoped `user_id`, which
//! since 2026 may come without any `wa_id`); the chat id is the `wa_id`, falling back to the
//! `user_id`. The whole message object is kept as `raw`.

use serde_json::Value;
use switchboard_core::domain::{
    ChatKind, ChatRef, Contact, InboundEvent, InboundMessage, MediaRef, MessageKind,
};

use super::{Origin, at, text, unix_time};

pub(crate) fn event(origin: &Origin, contacts: &[Value], raw: Value) -> InboundEvent {
    let sender = sender(contacts, &raw);
    let group = at(&raw, "/group_id");
    let chat = ChatRef {
        external_id: group
            .clone()
            .or_else(|| sender.external_id.clone())
            .or_else(|| sender.user_id.clone())
            .unwrap_or_default(),
        kind: if group.is_some() {
            ChatKind::Group
        } else {
            ChatKind::Direct
        },
        title: if group.is_some() {
            None
        } else {
            sender.name.clone()
        },
    };
    let type_name = at(&raw, "/type").unwrap_or_else(|| "unknown".to_owned());
    let content = content(&type_name, &raw);
    InboundEvent::Message(Box::new(InboundMessage {
        account_id: origin
            .phone_number_id
            .clone()
            .or_else(|| origin.waba_id.clone())
            .unwrap_or_default(),
        provider_message_id: at(&raw, "/id").unwrap_or_default(),
        chat,
        sender,
        kind: content.kind,
        text: content.text,
        media: content.media,
        reply_to: content.reply_to.or_else(|| at(&raw, "/context/id")),
        thread_id: None,
        timestamp: unix_time(raw.get("timestamp"))
            .or_else(|| {
                origin
                    .entry_time
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            })
            .unwrap_or_else(chrono::Utc::now),
        addressed_to_us: true,
        raw,
    }))
}

fn sender(contacts: &[Value], msg: &Value) -> Contact {
    let from = at(msg, "/from");
    let from_user = at(msg, "/from_user_id");
    let matches = |c: &&Value| {
        (from.is_some() && at(c, "/wa_id") == from)
            || (from_user.is_some() && at(c, "/user_id") == from_user)
    };
    let contact = contacts.iter().find(matches).or(if contacts.len() == 1 {
        contacts.first()
    } else {
        None
    });
    let field = |p: &str| contact.and_then(|c| at(c, p));
    let wa_id = from.or_else(|| field("/wa_id"));
    Contact {
        phone: wa_id.as_ref().map(|w| format!("+{w}")),
        external_id: wa_id,
        user_id: from_user.or_else(|| field("/user_id")),
        name: field("/profile/name"),
        username: field("/profile/username"),
        is_bot: false,
    }
}

#[derive(Default)]
struct Content {
    kind: Option<MessageKind>,
    text: Option<String>,
    media: Option<MediaRef>,
    reply_to: Option<String>,
}

struct Parsed {
    kind: MessageKind,
    text: Option<String>,
    media: Option<MediaRef>,
    reply_to: Option<String>,
}

fn content(type_name: &str, raw: &Value) -> Parsed {
    let c = typed(type_name, raw);
    Parsed {
        kind: c
            .kind
            .unwrap_or_else(|| MessageKind::Other(type_name.to_owned())),
        text: c.text,
        media: c.media,
        reply_to: c.reply_to,
    }
}

fn typed(type_name: &str, raw: &Value) -> Content {
    let body = raw.get(type_name).cloned().unwrap_or(Value::Null);
    let s = |p: &str| at(&body, p);
    let plain = |kind: MessageKind, text: Option<String>| Content {
        kind: Some(kind),
        text,
        ..Content::default()
    };
    match type_name {
        "text" => plain(MessageKind::Text, s("/body")),
        "image" | "video" | "document" | "sticker" | "audio" => Content {
            media: Some(media(&body)),
            ..plain(media_kind(type_name, &body), s("/caption"))
        },
        "location" => plain(MessageKind::Location, location_text(&body)),
        "contacts" => plain(MessageKind::Contacts, contacts_text(&body)),
        "interactive" => plain(MessageKind::Interactive, interactive_text(&body)),
        "button" => plain(MessageKind::Button, s("/text").or_else(|| s("/payload"))),
        "reaction" => Content {
            reply_to: s("/message_id"),
            // An empty emoji means the reaction was removed.
            ..plain(MessageKind::Reaction, s("/emoji").filter(|e| !e.is_empty()))
        },
        "order" => plain(MessageKind::Order, order_text(&body)),
        "system" => plain(MessageKind::System, s("/body")),
        "unsupported" | "unknown" => plain(MessageKind::Unsupported, None),
        "revoke" => Content {
            reply_to: s("/original_message_id"),
            ..plain(MessageKind::Delete, None)
        },
        "edit" => edit(&body),
        _ => Content::default(),
    }
}

fn media_kind(type_name: &str, body: &Value) -> MessageKind {
    match type_name {
        "image" => MessageKind::Image,
        "video" => MessageKind::Video,
        "document" => MessageKind::Document,
        "sticker" => MessageKind::Sticker,
        _ if body.get("voice").and_then(Value::as_bool) == Some(true) => MessageKind::Voice,
        _ => MessageKind::Audio,
    }
}

fn media(body: &Value) -> MediaRef {
    MediaRef {
        id: at(body, "/id"),
        url: at(body, "/url"),
        mime_type: at(body, "/mime_type"),
        sha256: at(body, "/sha256"),
        filename: at(body, "/filename"),
        size: body.get("file_size").and_then(Value::as_u64),
    }
}

fn edit(body: &Value) -> Content {
    let inner = body.get("message").cloned().unwrap_or(Value::Null);
    let inner_type = at(&inner, "/type").unwrap_or_default();
    let parsed = typed(&inner_type, &inner);
    Content {
        kind: Some(MessageKind::Edit),
        text: parsed.text,
        media: parsed.media,
        reply_to: at(body, "/original_message_id"),
    }
}

fn location_text(body: &Value) -> Option<String> {
    let named = [at(body, "/name"), at(body, "/address")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    if !named.is_empty() {
        return Some(named);
    }
    Some(format!(
        "{},{}",
        body.get("latitude").and_then(text)?,
        body.get("longitude").and_then(text)?
    ))
}

fn contacts_text(body: &Value) -> Option<String> {
    let names: Vec<String> = body
        .as_array()?
        .iter()
        .filter_map(|c| at(c, "/name/formatted_name"))
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

fn interactive_text(body: &Value) -> Option<String> {
    [
        "/button_reply/title",
        "/list_reply/title",
        "/nfm_reply/body",
    ]
    .iter()
    .find_map(|p| at(body, p))
}

fn order_text(body: &Value) -> Option<String> {
    let items = body
        .get("product_items")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let note = at(body, "/text").filter(|t| !t.is_empty());
    Some(match note {
        Some(note) => format!("Order of {items} item(s): {note}"),
        None => format!("Order of {items} item(s)"),
    })
}
