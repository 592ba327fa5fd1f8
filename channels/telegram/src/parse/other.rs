//! Updates about the account rather than one message: the bot's membership in a chat (blocked,
//! unblocked, added, removed), group migrations, business connections, and every update kind
//! this version does not model, kept as an account event named after the kind.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use switchboard_core::domain::{AccountEvent, InboundEvent};

use super::ParseContext;

fn account(ctx: &ParseContext<'_>) -> Option<String> {
    (!ctx.account_id.is_empty()).then(|| ctx.account_id.to_owned())
}

fn date_of(payload: &Value) -> Option<DateTime<Utc>> {
    payload
        .get("date")
        .and_then(Value::as_i64)
        .filter(|d| *d > 0)
        .and_then(|d| DateTime::from_timestamp(d, 0))
}

fn status(member: Option<&Value>) -> &str {
    member
        .and_then(|m| m.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
}

/// The bot's own membership changed. In a private chat `member → kicked` means the user blocked
/// the bot and `kicked → member` that they unblocked it; in groups and channels the bot was added
/// or removed.
pub(super) fn my_chat_member(update: &Value, ctx: &ParseContext<'_>, raw: Value) -> InboundEvent {
    let chat = update.get("chat").unwrap_or(&Value::Null);
    let private = chat.get("type").and_then(Value::as_str) == Some("private");
    let old = status(update.get("old_chat_member"));
    let new = status(update.get("new_chat_member"));
    let gone = |s: &str| matches!(s, "left" | "kicked");
    let kind = match (private, gone(old), gone(new)) {
        (true, false, true) => "bot_blocked",
        (true, true, false) => "bot_unblocked",
        (false, true, false) => "bot_added",
        (false, false, true) => "bot_removed",
        _ => "bot_membership_changed",
    };
    InboundEvent::Account(AccountEvent {
        account_id: account(ctx),
        kind: kind.to_owned(),
        chat_id: chat
            .get("id")
            .and_then(Value::as_i64)
            .map(|i| i.to_string()),
        summary: Some(format!("bot status {old} → {new}")),
        timestamp: date_of(update),
        raw,
    })
}

/// A basic group upgraded to a supergroup: sends to the old id now fail with
/// `migrate_to_chat_id`. Emitted beside the service message, with the old chat id.
pub(super) fn migration(
    msg: &Value,
    ctx: &ParseContext<'_>,
    update: &Map<String, Value>,
) -> Option<InboundEvent> {
    let chat_id = msg.get("chat")?.get("id")?.as_i64()?;
    let (old, new) = if let Some(to) = msg.get("migrate_to_chat_id").and_then(Value::as_i64) {
        (chat_id, to)
    } else {
        let from = msg.get("migrate_from_chat_id").and_then(Value::as_i64)?;
        (from, chat_id)
    };
    Some(InboundEvent::Account(AccountEvent {
        account_id: account(ctx),
        kind: "chat_migrated".to_owned(),
        chat_id: Some(old.to_string()),
        summary: Some(format!("group {old} became supergroup {new}")),
        timestamp: date_of(msg),
        raw: Value::Object(update.clone()),
    }))
}

/// Any other update: an account event named after the update field.
pub(super) fn generic(
    kind: &str,
    update: &Map<String, Value>,
    ctx: &ParseContext<'_>,
) -> InboundEvent {
    generic_value(kind, &Value::Object(update.clone()), ctx)
}

pub(super) fn generic_value(kind: &str, raw: &Value, ctx: &ParseContext<'_>) -> InboundEvent {
    let payload = raw.get(kind).unwrap_or(&Value::Null);
    let chat_id = ["chat", "from", "user", "voter_chat"]
        .iter()
        .find_map(|f| {
            payload
                .get(*f)
                .and_then(|v| v.get("id"))
                .and_then(Value::as_i64)
        })
        .or_else(|| payload.get("user_chat_id").and_then(Value::as_i64));
    let summary = match kind {
        "business_connection" => Some(
            if payload.get("is_enabled").and_then(Value::as_bool) == Some(true) {
                "business connection enabled".to_owned()
            } else {
                "business connection disabled".to_owned()
            },
        ),
        "message_reaction_count" => reaction_counts(payload),
        _ => None,
    };
    InboundEvent::Account(AccountEvent {
        account_id: account(ctx),
        kind: kind.to_owned(),
        chat_id: chat_id.map(|i| i.to_string()),
        summary,
        timestamp: date_of(payload),
        raw: raw.clone(),
    })
}

/// "🗿×2 🌭×1" for anonymous reaction counts on a channel post.
fn reaction_counts(payload: &Value) -> Option<String> {
    let list = payload.get("reactions")?.as_array()?;
    let parts: Vec<String> = list
        .iter()
        .filter_map(|r| {
            let label = super::message::reaction_label(r.get("type")?)?;
            let count = r.get("total_count")?.as_u64()?;
            Some(format!("{label}×{count}"))
        })
        .collect();
    Some(parts.join(" "))
}
