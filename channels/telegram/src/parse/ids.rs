//! Provider message ids.
//!
//! Telegram message ids are unique per chat only, so a message is keyed `{chat_id}:{message_id}`
//! (chat ids are 64-bit and negative for groups; both are written as exact decimal integers).
//! Business chats live in their own id space, so their messages carry the connection:
//! `biz:{connection}:{chat_id}:{message_id}`. Edits, reactions and deletions are separate events
//! with their own ids derived from the message key and the `update_id` (the redelivery dedupe
//! key), so they are unique per integration and stable when Telegram sends the update again.

use serde_json::Value;

/// `{chat_id}:{message_id}`, the key of a message in a bot chat.
#[must_use]
pub fn message_key(chat_id: i64, message_id: i64) -> String {
    format!("{chat_id}:{message_id}")
}

/// The key of a Message object, or `None` when it lacks a chat or message id.
pub(crate) fn key_of(message: &Value) -> Option<String> {
    let chat = message.get("chat")?.get("id")?.as_i64()?;
    let id = message.get("message_id")?.as_i64()?;
    Some(
        match message
            .get("business_connection_id")
            .and_then(Value::as_str)
        {
            Some(conn) => format!("biz:{conn}:{}", message_key(chat, id)),
            None => message_key(chat, id),
        },
    )
}

/// Reads `{chat_id}:{message_id}` (or a bare message id) back: `(chat, message)`.
#[must_use]
pub fn parse_message_key(key: &str) -> Option<(Option<i64>, i64)> {
    match key.rsplit_once(':') {
        Some((chat, id)) => {
            let chat = chat.rsplit(':').next()?.parse().ok()?;
            Some((Some(chat), id.parse().ok()?))
        }
        None => Some((None, key.parse().ok()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_round_trip_with_negative_64_bit_chat_ids() {
        let key = message_key(-1_001_293_752_024, 134_546);
        assert_eq!(key, "-1001293752024:134546");
        assert_eq!(
            parse_message_key(&key),
            Some((Some(-1_001_293_752_024), 134_546))
        );
        assert_eq!(parse_message_key("77"), Some((None, 77)));
        assert_eq!(parse_message_key("biz:abc:456:123"), Some((Some(456), 123)));
        assert_eq!(parse_message_key("x:y"), None);
    }
}
