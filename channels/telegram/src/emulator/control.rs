//! Test and sandbox controls: seeding bots and chats, simulating inbound messages and other
//! updates, fault switches, and the records of what was sent and delivered. The same operations
//! are Rust methods on [`super::EmulatorHandle`] and JSON endpoints under `/_emulator/`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::state::{Bot, ChatSpec, SeededBot};

/// A bot to create. Missing fields are generated.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BotRequest {
    pub id: Option<i64>,
    /// A well-formed token to use; generated from the id when absent.
    pub token: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
}

/// A text message from a person, as if typed in a Telegram client.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SimulatedMessage {
    pub text: String,
    /// The chat; defaults to the private chat with the sender.
    pub chat_id: Option<i64>,
    /// `private`, `group`, `supergroup` or `channel`; defaults by the sign of the chat id.
    pub chat_type: Option<String>,
    pub chat_title: Option<String>,
    /// The sender's user id (default 100000001).
    pub from_id: Option<i64>,
    pub first_name: Option<String>,
    pub username: Option<String>,
    pub reply_to_message_id: Option<i64>,
    pub message_thread_id: Option<i64>,
}

/// Errors of control operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no bot with id {0}")]
    UnknownBot(i64),
    #[error("invalid request: {0}")]
    Invalid(String),
}

fn token_for(id: i64, salt: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut state = (id as u64) ^ salt ^ 0x9e37_79b9_7f4a_7c15;
    let secret: String = (0..35)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % 64) as usize] as char
        })
        .collect();
    format!("{id}:{secret}")
}

/// The entities Telegram's server marks in a typed text: a leading `/command` and every
/// `@username` mention (5–32 word characters after an `@` that does not follow a word
/// character). Offsets and lengths count UTF-16 code units.
fn text_entities(text: &str) -> Vec<Value> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut entities = Vec::new();
    if text.starts_with('/') {
        let command = text.split_whitespace().next().unwrap_or_default();
        let length: usize = command.chars().map(char::len_utf16).sum();
        entities.push(json!({"offset": 0, "length": length, "type": "bot_command"}));
    }
    let mut offset = 0;
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        if c == '@' && !previous.is_some_and(is_word) {
            let name_length = text[at + 1..].chars().take_while(|c| is_word(*c)).count();
            if (5..=32).contains(&name_length) {
                entities
                    .push(json!({"offset": offset, "length": name_length + 1, "type": "mention"}));
            }
        }
        offset += c.len_utf16();
        previous = Some(c);
    }
    entities
}

impl Shared {
    pub(crate) fn add_bot(&self, request: BotRequest) -> Result<SeededBot, ControlError> {
        let mut inner = self.lock();
        let id = request
            .id
            .or_else(|| {
                request
                    .token
                    .as_deref()
                    .and_then(|t| t.split(':').next()?.parse().ok())
            })
            .unwrap_or_else(|| 7_000_000_000 + inner.bots.len() as i64 + 1);
        let salt =
            u64::try_from(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
        let token = request.token.unwrap_or_else(|| token_for(id, salt));
        let parsed = crate::token::BotToken::parse(&token)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        if parsed.bot_id() != id || parsed.expose() != token {
            return Err(ControlError::Invalid(
                "the token must start with the bot id".into(),
            ));
        }
        let seed = SeededBot {
            id,
            username: request.username.unwrap_or_else(|| format!("test_{id}_bot")),
            first_name: request.first_name.unwrap_or_else(|| "Test Bot".to_owned()),
            token: token.clone(),
        };
        let mut bot = Bot::new(seed.clone());
        // A bot given a new token (@BotFather's /revoke) keeps its chats' message and update
        // counters: Telegram never reuses a message id within a chat.
        if let Some(old) = inner.bot_by_id(id) {
            bot.next_message_id = std::mem::take(&mut old.next_message_id);
            bot.next_update_id = old.next_update_id;
        }
        inner.bots.retain(|_, b| b.seed.id != id);
        inner.bots.insert(token, bot);
        Ok(seed)
    }

    pub(crate) fn add_chat(&self, chat: ChatSpec) {
        self.lock().chats.insert(chat.id, chat);
    }

    /// Queues an update of `kind` for the bot and starts delivery; returns the `update_id`.
    pub(crate) fn inject(
        self: &Arc<Self>,
        bot_id: i64,
        kind: &str,
        payload: Value,
    ) -> Result<i64, ControlError> {
        let (token, update_id) = {
            let mut inner = self.lock();
            let bot = inner
                .bot_by_id(bot_id)
                .ok_or(ControlError::UnknownBot(bot_id))?;
            let (update_id, _) = bot.enqueue(kind, payload);
            (bot.seed.token.clone(), update_id)
        };
        super::delivery::kick(self, &token);
        Ok(update_id)
    }

    /// Builds a `message` update from a simulated text and queues it.
    pub(crate) fn simulate(
        self: &Arc<Self>,
        bot_id: i64,
        sim: &SimulatedMessage,
    ) -> Result<Value, ControlError> {
        if sim.text.is_empty() {
            return Err(ControlError::Invalid("text is empty".into()));
        }
        let from_id = sim.from_id.unwrap_or(100_000_001);
        let chat_id = sim.chat_id.unwrap_or(from_id);
        let kind = sim
            .chat_type
            .clone()
            .unwrap_or_else(|| if chat_id > 0 { "private" } else { "supergroup" }.to_owned());
        let first_name = sim
            .first_name
            .clone()
            .unwrap_or_else(|| "Sandbox".to_owned());
        let chat = ChatSpec {
            id: chat_id,
            title: (kind != "private").then(|| {
                sim.chat_title
                    .clone()
                    .unwrap_or_else(|| "Sandbox group".into())
            }),
            first_name: (kind == "private").then(|| first_name.clone()),
            username: (kind == "private").then(|| sim.username.clone()).flatten(),
            is_forum: sim.message_thread_id.is_some(),
            kind,
        };
        self.add_chat(chat.clone());
        let message = self.simulated_message(bot_id, sim, &chat, from_id, &first_name)?;
        let message_id = message["message_id"].clone();
        let update_id = self.inject(bot_id, "message", message)?;
        Ok(json!({"update_id": update_id, "message_id": message_id, "chat_id": chat_id}))
    }

    fn simulated_message(
        &self,
        bot_id: i64,
        sim: &SimulatedMessage,
        chat: &ChatSpec,
        from_id: i64,
        first_name: &str,
    ) -> Result<Value, ControlError> {
        let mut inner = self.lock();
        let sent_by_bot = |id: i64| {
            inner
                .sent
                .iter()
                .any(|s| s.chat_id == chat.id && s.message_id == id)
        };
        let replied_from_bot = sim.reply_to_message_id.is_some_and(sent_by_bot);
        let bot = inner
            .bot_by_id(bot_id)
            .ok_or(ControlError::UnknownBot(bot_id))?;
        let mut from = json!({"id": from_id, "is_bot": false, "first_name": first_name, "language_code": "en"});
        if let Some(username) = &sim.username {
            from["username"] = json!(username);
        }
        let mut message = json!({
            "message_id": bot.next_message_id(chat.id), "from": from, "chat": chat.to_json(),
            "date": chrono::Utc::now().timestamp(), "text": sim.text,
        });
        let entities = text_entities(&sim.text);
        if !entities.is_empty() {
            message["entities"] = Value::Array(entities);
        }
        if let Some(thread) = sim.message_thread_id {
            message["message_thread_id"] = json!(thread);
            message["is_topic_message"] = json!(true);
        }
        if let Some(reply) = sim.reply_to_message_id {
            let author = if replied_from_bot {
                bot.user_json()
            } else {
                message["from"].clone()
            };
            message["reply_to_message"] = json!({"message_id": reply, "from": author,
                "chat": chat.to_json(), "date": chrono::Utc::now().timestamp() - 1});
        }
        Ok(message)
    }

    /// The user of private chat `chat_id` blocks (or unblocks) the bot: sends fail with `403`
    /// and the bot receives a `my_chat_member` update.
    pub(crate) fn set_blocked(
        self: &Arc<Self>,
        bot_id: i64,
        chat_id: i64,
        blocked: bool,
    ) -> Result<i64, ControlError> {
        let payload = {
            let mut inner = self.lock();
            let chat = inner.chats.get(&chat_id).map_or_else(
                || json!({"id": chat_id, "type": "private", "first_name": "User"}),
                ChatSpec::to_json,
            );
            let bot = inner
                .bot_by_id(bot_id)
                .ok_or(ControlError::UnknownBot(bot_id))?;
            let (old, new) = if blocked {
                bot.blocked_by.insert(chat_id);
                ("member", "kicked")
            } else {
                bot.blocked_by.remove(&chat_id);
                ("kicked", "member")
            };
            let user = json!({"id": chat_id, "is_bot": false, "first_name": chat.get("first_name").cloned().unwrap_or(json!("User"))});
            let mut new_member = json!({"user": bot.user_json(), "status": new});
            if blocked {
                new_member["until_date"] = json!(0);
            }
            json!({"chat": chat, "from": user, "date": chrono::Utc::now().timestamp(),
                   "old_chat_member": {"user": bot.user_json(), "status": old},
                   "new_chat_member": new_member})
        };
        self.inject(bot_id, "my_chat_member", payload)
    }

    /// The basic group `from` becomes supergroup `to`.
    pub(crate) fn migrate(&self, from: i64, to: i64) {
        let mut inner = self.lock();
        inner.migrated.insert(from, to);
        let title = inner.chats.get(&from).and_then(|c| c.title.clone());
        let supergroup = ChatSpec {
            id: to,
            kind: "supergroup".into(),
            title,
            first_name: None,
            username: None,
            is_forum: false,
        };
        inner.chats.insert(to, supergroup);
    }

    pub(crate) fn revoke(&self, bot_id: i64) -> Result<(), ControlError> {
        let mut inner = self.lock();
        let bot = inner
            .bot_by_id(bot_id)
            .ok_or(ControlError::UnknownBot(bot_id))?;
        bot.revoked = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_mentions_are_marked_with_utf16_offsets() {
        let entities = text_entities("/start@our_bot hi 👋 @our_bot, mail@example.com @abc");
        assert_eq!(
            entities,
            vec![
                json!({"offset": 0, "length": 14, "type": "bot_command"}),
                json!({"offset": 21, "length": 8, "type": "mention"}),
            ]
        );
    }
}
