//! Turning a Telegram webhook body (one `Update`) into normalized [`InboundEvent`]s.
//!
//! The update body does not name the bot it was sent to; the gateway knows the integration from
//! the secret header. Events are therefore produced for a [`ParseContext`]: through the
//! [`switchboard_core::ChannelAdapter`] trait the context is empty (`account_id` is `""`,
//! `AccountEvent::account_id` is `None`) and the gateway assigns the integration's account;
//! [`parse_update`] with a filled context is there for callers that know the bot.
//!
//! Unknown update kinds are kept as account events named after the kind, with the raw JSON;
//! only a body that is not an `Update` at all is a [`ParseError`].

mod addressing;
mod content;
mod ids;
mod message;
mod other;

use serde_json::{Map, Value};
use switchboard_core::domain::InboundEvent;
use switchboard_core::error::ParseError;

pub use addressing::entity_text;
pub use ids::{message_key, parse_message_key};

/// The provider ids of messages a send created (a `Message` result), empty for `true` results.
#[must_use]
pub fn ids_of_sent(result: &Value) -> Vec<String> {
    ids::key_of(result).into_iter().collect()
}

/// What the parser knows about the receiving bot.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseContext<'a> {
    /// The bot id to put in events; empty when the caller routes events itself.
    pub account_id: &'a str,
    /// The bot's username (without `@`), when known: makes group addressing exact.
    pub bot_username: Option<&'a str>,
}

/// Parses one webhook body.
///
/// # Errors
/// When the body is not a JSON object with an integer `update_id` and an update field.
pub fn parse_update(body: &[u8], ctx: &ParseContext<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ParseError(format!("not JSON: {e}")))?;
    let Value::Object(update) = value else {
        return Err(ParseError("a Telegram update is a JSON object".into()));
    };
    let update_id = update
        .get("update_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ParseError("no integer update_id: not a Telegram update".into()))?;
    let Some((kind, payload)) = update.iter().find(|(k, _)| k.as_str() != "update_id") else {
        return Err(ParseError("update carries no update field".into()));
    };
    Ok(dispatch(kind, payload, update_id, &update, ctx))
}

fn dispatch(
    kind: &str,
    payload: &Value,
    update_id: i64,
    update: &Map<String, Value>,
    ctx: &ParseContext<'_>,
) -> Vec<InboundEvent> {
    let raw = Value::Object(update.clone());
    let event = match kind {
        "message" | "channel_post" | "business_message" => message::new_message(payload, ctx, raw),
        "edited_message" | "edited_channel_post" | "edited_business_message" => {
            message::edited_message(payload, update_id, ctx, raw)
        }
        "callback_query" => message::callback_query(payload, ctx, raw),
        "message_reaction" => message::reaction(payload, update_id, ctx, raw),
        "deleted_business_messages" => {
            return message::deleted_business_messages(payload, update_id, ctx, &raw);
        }
        "my_chat_member" => Some(other::my_chat_member(payload, ctx, raw)),
        _ => None,
    };
    let event = event.unwrap_or_else(|| other::generic(kind, update, ctx));
    let mut events = vec![event];
    if kind == "message" {
        events.extend(other::migration(payload, ctx, update));
    }
    events
}
