//! The emulator's state: bots, chats, webhooks, pending updates, fault switches and the record
//! of everything sent. One mutex, never held across an `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::wire::update_body;

/// How the emulator behaves. `Default` is strict about tokens and lenient about loopback URLs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Sandbox mode: any well-formed unknown token becomes a new bot instead of `401`.
    pub auto_accept_tokens: bool,
    /// Accept `http://` and any port for webhook URLs on loopback hosts (tests, sandbox);
    /// other hosts must be `https` on 443/80/88/8443 as on Telegram.
    pub allow_loopback_webhooks: bool,
    /// Telegram's one `setWebhook` per second (`429 retry after 1`).
    pub throttle_set_webhook: bool,
    /// Flood control on sends; `None` turns it off.
    pub rate_limits: Option<RateLimits>,
    /// Redelivery of updates the webhook did not acknowledge with a 2xx.
    pub retry: RetrySchedule,
    /// How long a webhook may take to answer (Telegram: 60 s, "Read timeout expired").
    pub webhook_timeout: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            auto_accept_tokens: false,
            allow_loopback_webhooks: true,
            throttle_set_webhook: true,
            rate_limits: Some(RateLimits::default()),
            retry: RetrySchedule::compressed(),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

/// Flood limits on sends (Telegram FAQ: about 1/s per chat with short bursts, 20/min per group,
/// 30/s per bot). Exceeding one answers `429` with `retry_after`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Messages allowed to one chat within any second (the "short burst").
    pub per_chat_per_second: usize,
    pub per_group_per_minute: usize,
    pub per_bot_per_second: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_chat_per_second: 3,
            per_group_per_minute: 20,
            per_bot_per_second: 30,
        }
    }
}

/// Webhook redelivery: the first retry is immediate, then `base · 2^(n-1)` capped at `cap`;
/// after `max_attempts` failed attempts the update is dropped.
#[derive(Debug, Clone, Copy)]
pub struct RetrySchedule {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl RetrySchedule {
    /// Telegram's schedule: 0, 2, 4, 8 … s, capped at 60 s (Telegram drops after 24 h).
    #[must_use]
    pub fn telegram() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 1_500,
        }
    }

    /// The same shape in milliseconds, for tests and the sandbox.
    #[must_use]
    pub fn compressed() -> Self {
        Self {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(200),
            max_attempts: 8,
        }
    }

    /// The wait after the `failures`-th failed attempt.
    #[must_use]
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures <= 1 {
            return Duration::ZERO;
        }
        let factor = 2u32.saturating_pow(failures - 1);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// A bot created in the emulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededBot {
    pub id: i64,
    pub token: String,
    pub username: String,
    pub first_name: String,
}

/// A message a bot sent, as recorded for assertions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub bot_id: i64,
    /// The Bot API method, as called (`sendMessage`, `sendPhoto`, …).
    pub method: String,
    pub chat_id: i64,
    pub message_id: i64,
    pub text: Option<String>,
    /// Every parameter as the server saw it (strings; JSON values as JSON text).
    pub params: BTreeMap<String, String>,
}

/// One attempt to deliver an update to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    pub bot_id: i64,
    pub update_id: i64,
    /// The HTTP status the webhook answered, if it answered.
    pub status: Option<u16>,
    /// What `getWebhookInfo.last_error_message` recorded for a failure.
    pub error: Option<String>,
}

/// A failure the next sends answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SendFault {
    /// `429 Too Many Requests: retry after N`.
    TooManyRequests { retry_after: u64 },
    /// `500 Internal Server Error`.
    ServerError,
    /// The message is sent, but the answer comes only after `millis` (client timeouts).
    Stall { millis: u64 },
}

#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub url: String,
    pub secret: Option<String>,
    pub max_connections: i64,
    pub allowed_updates: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub update_id: i64,
    pub kind: String,
    pub payload: Value,
    pub failures: u32,
}

impl Pending {
    pub fn body(&self) -> String {
        update_body(self.update_id, &self.kind, &self.payload)
    }
}

#[derive(Debug)]
pub(crate) struct Bot {
    pub seed: SeededBot,
    pub revoked: bool,
    pub webhook: Option<Webhook>,
    pub last_set_webhook: Option<Instant>,
    pub last_error: Option<(i64, String)>,
    /// Pending updates per delivery queue (chat, user, …), each delivered strictly in order.
    pub queues: BTreeMap<i64, VecDeque<Pending>>,
    pub active_queues: HashSet<i64>,
    pub next_update_id: i64,
    pub blocked_by: HashSet<i64>,
    pub next_message_id: HashMap<i64, i64>,
    pub send_times: VecDeque<(Instant, i64)>,
}

impl Bot {
    pub fn new(seed: SeededBot) -> Self {
        // Telegram starts a fresh queue at a random id in [2 000 001, 1 000 000 000].
        let start = 2_000_001 + (seed.id.rem_euclid(997_000_000));
        Self {
            seed,
            revoked: false,
            webhook: None,
            last_set_webhook: None,
            last_error: None,
            queues: BTreeMap::new(),
            active_queues: HashSet::new(),
            next_update_id: start,
            blocked_by: HashSet::new(),
            next_message_id: HashMap::new(),
            send_times: VecDeque::new(),
        }
    }

    pub fn pending_count(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    /// Queues an update; returns its id and queue key.
    pub fn enqueue(&mut self, kind: &str, payload: Value) -> (i64, i64) {
        let update_id = self.next_update_id;
        self.next_update_id += 1;
        let key = queue_key(kind, &payload);
        self.queues.entry(key).or_default().push_back(Pending {
            update_id,
            kind: kind.to_owned(),
            payload,
            failures: 0,
        });
        (update_id, key)
    }

    pub fn next_message_id(&mut self, chat_id: i64) -> i64 {
        let next = self.next_message_id.entry(chat_id).or_insert(1);
        let id = *next;
        *next += 1;
        id
    }

    pub fn user_json(&self) -> Value {
        json!({"id": self.seed.id, "is_bot": true, "first_name": self.seed.first_name,
               "username": self.seed.username})
    }
}

/// Telegram's delivery queue of an update: one per chat for messages, separate queues for
/// callback queries, membership changes and reactions (offsets of 2^33 as in the server).
fn queue_key(kind: &str, payload: &Value) -> i64 {
    const SHIFT: i64 = 1 << 33;
    let chat = payload
        .get("chat")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_i64);
    let user = payload
        .get("from")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_i64);
    match kind {
        "callback_query" => user.unwrap_or(0) + 3 * SHIFT,
        "my_chat_member" => chat.unwrap_or(0) + 5 * SHIFT,
        "message_reaction" | "message_reaction_count" => chat.unwrap_or(0) + 8 * SHIFT,
        _ => chat.or(user).unwrap_or(0),
    }
}

/// A chat the emulator knows; sends to unknown chats fail with "chat not found".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSpec {
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub username: Option<String>,
    #[serde(default)]
    pub is_forum: bool,
}

impl ChatSpec {
    pub(crate) fn to_json(&self) -> Value {
        let mut chat = json!({"id": self.id, "type": self.kind});
        for (field, value) in [
            ("title", &self.title),
            ("first_name", &self.first_name),
            ("username", &self.username),
        ] {
            if let Some(v) = value {
                chat[field] = json!(v);
            }
        }
        if self.is_forum {
            chat["is_forum"] = json!(true);
        }
        chat
    }
}

/// Everything behind the lock.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub bots: HashMap<String, Bot>,
    pub chats: HashMap<i64, ChatSpec>,
    pub migrated: HashMap<i64, i64>,
    pub send_faults: VecDeque<SendFault>,
    pub duplicate_deliveries: bool,
    pub sent: Vec<SentMessage>,
    pub deliveries: Vec<DeliveryAttempt>,
}

impl Inner {
    pub fn bot_by_id(&mut self, id: i64) -> Option<&mut Bot> {
        self.bots.values_mut().find(|b| b.seed.id == id)
    }

    pub fn token_of(&self, id: i64) -> Option<String> {
        self.bots
            .values()
            .find(|b| b.seed.id == id)
            .map(|b| b.seed.token.clone())
    }
}
