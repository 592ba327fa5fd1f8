//! Message-like updates: new messages, edits, callback queries, reactions and deleted business
//! messages, each becoming an [`InboundMessage`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::domain::{ChatKind, InboundEvent, InboundMessage, MessageKind};

use super::ParseContext;
use super::content::{chat_ref, content, sender};
use super::ids::key_of;

fn timestamp(secs: Option<i64>) -> DateTime<Utc> {
    secs.filter(|s| *s > 0)
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or_else(Utc::now)
}

fn int(value: &Value, field: &str) -> Option<i64> {
    value.get(field).and_then(Value::as_i64)
}

/// A message, channel post or business message.
pub(super) fn new_message(msg: &Value, ctx: &ParseContext<'_>, raw: Value) -> Option<InboundEvent> {
    let key = key_of(msg)?;
    let chat = chat_ref(msg.get("chat")?);
    let (kind, text, media) = content(msg);
    let addressed = super::addressing::addressed_to_us(msg, chat.kind, ctx);
    Some(InboundEvent::Message(Box::new(InboundMessage {
        account_id: ctx.account_id.to_owned(),
        provider_message_id: key,
        sender: sender(msg),
        kind,
        text,
        media,
        reply_to: reply_target(msg),
        thread_id: topic_of(msg),
        timestamp: timestamp(int(msg, "date")),
        addressed_to_us: addressed,
        chat,
        raw,
    })))
}

/// The message this one quotes. In a forum topic Telegram sets `reply_to_message` to the
/// topic's creation message on every message; that is not a reply.
fn reply_target(msg: &Value) -> Option<String> {
    let replied = msg.get("reply_to_message")?;
    let is_topic = msg.get("is_topic_message").and_then(Value::as_bool) == Some(true);
    if is_topic && int(replied, "message_id") == int(msg, "message_thread_id") {
        return None;
    }
    key_of(replied)
}

/// The forum topic, only for messages that are in one (`is_topic_message`); a
/// `message_thread_id` without it names a reply thread, which cannot be sent to.
fn topic_of(msg: &Value) -> Option<String> {
    let is_topic = msg.get("is_topic_message").and_then(Value::as_bool) == Some(true);
    is_topic
        .then(|| int(msg, "message_thread_id"))
        .flatten()
        .map(|id| id.to_string())
}

/// An edit of an earlier message: kind `edit`, replying to the edited message's key.
pub(super) fn edited_message(
    msg: &Value,
    update_id: i64,
    ctx: &ParseContext<'_>,
    raw: Value,
) -> Option<InboundEvent> {
    let InboundEvent::Message(mut event) = new_message(msg, ctx, raw)? else {
        return None;
    };
    let key = std::mem::take(&mut event.provider_message_id);
    event.provider_message_id = format!("{key}:edit:{update_id}");
    event.reply_to = Some(key);
    event.kind = MessageKind::Edit;
    event.addressed_to_us = false;
    event.timestamp = timestamp(int(msg, "edit_date").or_else(|| int(msg, "date")));
    Some(InboundEvent::Message(event))
}

/// A button press: kind `interactive` with the button's data as text.
pub(super) fn callback_query(
    query: &Value,
    ctx: &ParseContext<'_>,
    raw: Value,
) -> Option<InboundEvent> {
    let id = query.get("id")?.as_str()?;
    let message = query.get("message");
    let user_id = query.get("from").and_then(|f| int(f, "id"));
    let chat = match message.and_then(|m| m.get("chat")) {
        Some(chat) => chat_ref(chat),
        None => switchboard_core::domain::ChatRef {
            external_id: user_id?.to_string(),
            kind: ChatKind::Direct,
            title: None,
        },
    };
    let text = query
        .get("data")
        .or_else(|| query.get("game_short_name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(InboundEvent::Message(Box::new(InboundMessage {
        account_id: ctx.account_id.to_owned(),
        provider_message_id: format!("callback:{id}"),
        chat,
        sender: sender(query),
        kind: MessageKind::Interactive,
        text,
        media: None,
        reply_to: message.and_then(key_of),
        thread_id: message.and_then(topic_of),
        // A callback query carries no date; it is at most 150 s old when delivered.
        timestamp: Utc::now(),
        addressed_to_us: true,
        raw,
    })))
}

/// A user's (or anonymous admin's) reaction change; the text lists the new reactions.
pub(super) fn reaction(
    update: &Value,
    update_id: i64,
    ctx: &ParseContext<'_>,
    raw: Value,
) -> Option<InboundEvent> {
    let chat_id = int(update.get("chat")?, "id")?;
    let message_id = int(update, "message_id")?;
    let target = super::ids::message_key(chat_id, message_id);
    let actor = update.get("user").map_or_else(
        || sender(&serde_json::json!({"sender_chat": update.get("actor_chat")})),
        |user| sender(&serde_json::json!({ "from": user })),
    );
    let emojis: Vec<String> = update
        .get("new_reaction")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(reaction_label).collect())
        .unwrap_or_default();
    Some(InboundEvent::Message(Box::new(InboundMessage {
        account_id: ctx.account_id.to_owned(),
        provider_message_id: format!("{target}:reaction:{update_id}"),
        chat: chat_ref(update.get("chat")?),
        sender: actor,
        kind: MessageKind::Reaction,
        text: (!emojis.is_empty()).then(|| emojis.join("")),
        media: None,
        reply_to: Some(target),
        thread_id: None,
        timestamp: timestamp(int(update, "date")),
        addressed_to_us: false,
        raw,
    })))
}

/// The visible form of a `ReactionType`.
pub(super) fn reaction_label(reaction: &Value) -> Option<String> {
    match reaction.get("type")?.as_str()? {
        "emoji" => reaction.get("emoji")?.as_str().map(str::to_owned),
        "custom_emoji" => reaction
            .get("custom_emoji_id")?
            .as_str()
            .map(|id| format!("[custom_emoji:{id}]")),
        "paid" => Some("⭐".to_owned()),
        other => Some(format!("[{other}]")),
    }
}

/// Messages a business account deleted: one `delete` event per message.
pub(super) fn deleted_business_messages(
    update: &Value,
    _update_id: i64,
    ctx: &ParseContext<'_>,
    raw: &Value,
) -> Vec<InboundEvent> {
    let Some(chat) = update.get("chat") else {
        return vec![super::other::generic_value(
            "deleted_business_messages",
            raw,
            ctx,
        )];
    };
    let connection = update.get("business_connection_id").cloned();
    let ids = update
        .get("message_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ids.iter()
        .filter_map(|id| {
            let mut target = serde_json::json!({"chat": chat, "message_id": id});
            if let Some(conn) = &connection {
                target["business_connection_id"] = conn.clone();
            }
            let key = key_of(&target)?;
            Some(InboundEvent::Message(Box::new(InboundMessage {
                account_id: ctx.account_id.to_owned(),
                provider_message_id: format!("{key}:delete"),
                chat: chat_ref(chat),
                sender: sender(&serde_json::json!({"from": chat})),
                kind: MessageKind::Delete,
                text: None,
                media: None,
                reply_to: Some(key),
                thread_id: None,
                timestamp: Utc::now(),
                addressed_to_us: false,
                raw: raw.clone(),
            })))
        })
        .collect()
}
