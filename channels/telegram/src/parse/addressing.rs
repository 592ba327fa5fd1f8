//! Whether a group message is addressed to the bot.
//!
//! A Telegram update does not say which bot received it. In a group a message counts as
//! addressed when it replies to a message of a bot, mentions a bot (`@name` where `name` ends in
//! "bot", which Telegram requires of every bot username, or a `text_mention` of a bot), or is a
//! bot command (a bare `/cmd`, or `/cmd@name` for a bot name). When the caller knows the bot's
//! username ([`super::ParseContext::bot_username`]) the match is exact instead. In privacy mode
//! (Telegram's default) bots only receive such messages anyway, so the heuristic errs only in
//! groups with privacy mode off and several bots. Private chats are always addressed; channel
//! posts never are.

use serde_json::Value;
use switchboard_core::domain::ChatKind;

use super::ParseContext;

pub(crate) fn addressed_to_us(msg: &Value, chat: ChatKind, ctx: &ParseContext<'_>) -> bool {
    match chat {
        ChatKind::Direct => true,
        ChatKind::Channel => false,
        ChatKind::Group => replies_to_bot(msg, ctx) || mentions_bot(msg, ctx),
    }
}

fn is_our_name(name: &str, ctx: &ParseContext<'_>) -> bool {
    let name = name.trim_start_matches('@');
    match ctx.bot_username {
        Some(ours) => name.eq_ignore_ascii_case(ours.trim_start_matches('@')),
        None => name.to_ascii_lowercase().ends_with("bot"),
    }
}

fn is_our_user(user: &Value, ctx: &ParseContext<'_>) -> bool {
    let is_bot = user.get("is_bot").and_then(Value::as_bool) == Some(true);
    let username = user.get("username").and_then(Value::as_str);
    is_bot && (ctx.bot_username.is_none() || username.is_some_and(|u| is_our_name(u, ctx)))
}

fn replies_to_bot(msg: &Value, ctx: &ParseContext<'_>) -> bool {
    msg.get("reply_to_message")
        .and_then(|r| r.get("from"))
        .is_some_and(|from| is_our_user(from, ctx))
}

fn mentions_bot(msg: &Value, ctx: &ParseContext<'_>) -> bool {
    let (text, entities) = match (msg.get("text"), msg.get("caption")) {
        (Some(text), _) => (text, msg.get("entities")),
        (None, Some(caption)) => (caption, msg.get("caption_entities")),
        (None, None) => return false,
    };
    let text = text.as_str().unwrap_or_default();
    let Some(entities) = entities.and_then(Value::as_array) else {
        return false;
    };
    entities.iter().any(|entity| {
        let kind = entity
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "mention" => entity_text(text, entity).is_some_and(|m| is_our_name(&m, ctx)),
            "text_mention" => entity.get("user").is_some_and(|u| is_our_user(u, ctx)),
            "bot_command" => entity_text(text, entity).is_some_and(|command| {
                command
                    .split_once('@')
                    .is_none_or(|(_, name)| is_our_name(name, ctx))
            }),
            _ => false,
        }
    })
}

/// The text an entity covers; offsets and lengths count UTF-16 code units.
pub fn entity_text(text: &str, entity: &Value) -> Option<String> {
    let offset = usize::try_from(entity.get("offset")?.as_u64()?).ok()?;
    let length = usize::try_from(entity.get("length")?.as_u64()?).ok()?;
    let units: Vec<u16> = text.encode_utf16().collect();
    let slice = units.get(offset..offset.checked_add(length)?)?;
    String::from_utf16(slice).ok()
}
