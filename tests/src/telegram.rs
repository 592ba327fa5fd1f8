//! Helpers for end-to-end suites against the Telegram Bot API emulator.
//!
//! [`TelegramWorld`] is the real gateway (a [`TestApp`]) with the Telegram channel enabled and
//! pointed at a fresh emulator, one tenant and one bot seeded in the emulator (not connected
//! yet). Its methods speak the gateway's public HTTP API; the few that look behind it (the
//! stored webhook secret, the jobs of a tenant) use the gateway's own store and cipher.

pub use crate::eventually;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::store::{Job, JobState};
use switchboard_core::{BusinessId, ChannelName};
use switchboard_telegram::adapter::TelegramCredentials;
use switchboard_telegram::emulator::{
    BotRequest, Emulator, EmulatorConfig, EmulatorHandle, RetrySchedule, SeededBot, SentMessage,
};

use crate::{Backend, TestApp};

/// The bot every world starts with.
pub const BOT_ID: i64 = 7_123_456_789;
/// Its username.
pub const BOT_USERNAME: &str = "switchboard_e2e_bot";
/// The text of the default static responder (`config/default.toml`).
pub const AUTO_REPLY: &str =
    "Thanks for your message! We received it and will get back to you shortly.";
/// The gateway's Telegram webhook path.
pub const WEBHOOK_PATH: &str = "/api/webhooks/telegram";

/// An emulator configured for end-to-end runs: `setWebhook` is not throttled (tests reconnect
/// within a second) and a webhook that keeps failing is retried every 100 ms for as long as a
/// test runs, so `getWebhookInfo` keeps reporting pending updates.
#[must_use]
pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        throttle_set_webhook: false,
        retry: RetrySchedule {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
            max_attempts: 10_000,
        },
        ..EmulatorConfig::default()
    }
}

/// The gateway, the emulator, one tenant and one bot.
#[derive(Debug)]
pub struct TelegramWorld {
    pub app: TestApp,
    pub emulator: EmulatorHandle,
    pub bot: SeededBot,
    pub business: BusinessId,
    /// The tenant's API key.
    pub key: String,
}

impl TelegramWorld {
    /// Starts the emulator with [`emulator_config`] and the gateway on `backend`.
    /// `None` when the backend is unavailable.
    pub async fn spawn(backend: Backend, extra: &str) -> Option<Self> {
        Self::spawn_with(backend, emulator_config(), extra).await
    }

    /// Starts the emulator with `config`, then the gateway with the Telegram channel pointed
    /// at it and `extra` TOML on top.
    ///
    /// # Panics
    /// When the emulator or the gateway cannot start.
    pub async fn spawn_with(backend: Backend, config: EmulatorConfig, extra: &str) -> Option<Self> {
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let toml = format!(
            "[channels.telegram]\nenabled = true\napi_base_url = \"{}\"\nrequest_timeout_secs = 5\n{extra}",
            emulator.base_url()
        );
        let app = TestApp::spawn(backend, &toml).await?;
        let bot = emulator
            .add_bot(BotRequest {
                id: Some(BOT_ID),
                username: Some(BOT_USERNAME.into()),
                first_name: Some("Switchboard E2E".into()),
                token: None,
            })
            .expect("bot seeded");
        let (business, key) = app.tenant("Acme").await;
        Some(Self {
            app,
            emulator,
            bot,
            business,
            key,
        })
    }

    /// The webhook URL the gateway registers.
    #[must_use]
    pub fn webhook_url(&self) -> String {
        self.app.url(WEBHOOK_PATH)
    }

    /// `POST /api/integrations/telegram/connect {"bot_token"}` as the tenant with `key`.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn connect_as(&self, key: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .post(self.app.url("/api/integrations/telegram/connect"))
            .bearer_auth(key)
            .json(&json!({ "bot_token": token }))
            .send()
            .await
            .expect("connect request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Connects this world's bot for this world's tenant and checks the `201`.
    ///
    /// # Panics
    /// When the connect is not `201 connected`.
    pub async fn connect(&self) -> Value {
        let (status, body) = self.connect_as(&self.key, &self.bot.token).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["state"], "connected", "{body}");
        body
    }

    /// `GET path` as the tenant.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("GET request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body as the tenant.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("POST request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The live status object.
    pub async fn status(&self) -> Value {
        let (status, body) = self.get("/api/integrations/telegram/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `DELETE /api/integrations/telegram/disconnect`.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn disconnect(&self) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .delete(self.app.url("/api/integrations/telegram/disconnect"))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("disconnect request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts `body` to the gateway's Telegram webhook as Telegram would, with `secret` in the
    /// secret-token header (none when `None`).
    ///
    /// # Panics
    /// When the request fails.
    pub async fn post_webhook(&self, secret: Option<&str>, body: &str) -> StatusCode {
        let mut request = self
            .app
            .client
            .post(self.webhook_url())
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send().await.expect("webhook request").status()
    }

    /// The webhook secret the gateway stored for this tenant's Telegram integration, decrypted
    /// with the gateway's own cipher.
    ///
    /// # Panics
    /// When there is no active integration with credentials.
    pub async fn stored_secret(&self) -> String {
        let store = self.app.state.store.as_ref();
        let channel = ChannelName::parse("telegram").expect("channel name");
        let integration = store
            .integration_for(self.business, &channel)
            .await
            .expect("store")
            .expect("an integration");
        let context = switchboard::connections::context(store, &self.app.state.cipher, integration)
            .await
            .expect("credentials decrypt")
            .expect("credentials stored");
        let credentials: TelegramCredentials =
            context.credentials.parse().expect("telegram credentials");
        credentials.webhook_secret
    }

    /// Sets the bot's webhook at the emulator directly, as another program holding the token
    /// could, with our URL but `secret`.
    ///
    /// # Panics
    /// When the emulator refuses.
    pub async fn set_webhook_behind_our_back(&self, secret: &str) {
        let response: Value = self
            .app
            .client
            .post(format!(
                "{}/bot{}/setWebhook",
                self.emulator.base_url(),
                self.bot.token
            ))
            .json(&json!({ "url": self.webhook_url(), "secret_token": secret }))
            .send()
            .await
            .expect("setWebhook")
            .json()
            .await
            .expect("setWebhook answer");
        assert_eq!(response["ok"], true, "{response}");
    }

    /// The tenant's conversation with the Telegram chat `chat_id`, if any.
    pub async fn conversation(&self, chat_id: i64) -> Option<Value> {
        let external = chat_id.to_string();
        let (_, list) = self.get("/api/conversations").await;
        list["items"]
            .as_array()?
            .iter()
            .find(|c| c["external_chat_id"] == external.as_str())
            .cloned()
    }

    /// The messages of the conversation with `chat_id`, newest first (empty when none).
    pub async fn messages(&self, chat_id: i64) -> Vec<Value> {
        let Some(conversation) = self.conversation(chat_id).await else {
            return Vec::new();
        };
        let id = conversation["id"].as_str().expect("conversation id");
        let (_, page) = self.get(&format!("/api/conversations/{id}/messages")).await;
        page["items"].as_array().cloned().unwrap_or_default()
    }

    /// The outbound messages of the conversation with `chat_id`, newest first.
    pub async fn outbound(&self, chat_id: i64) -> Vec<Value> {
        self.messages(chat_id)
            .await
            .into_iter()
            .filter(|m| m["direction"] == "outbound")
            .collect()
    }

    /// What the bot sent to `chat_id`, as the emulator recorded it.
    #[must_use]
    pub fn sent_to(&self, chat_id: i64) -> Vec<SentMessage> {
        self.emulator
            .sent_messages()
            .into_iter()
            .filter(|s| s.chat_id == chat_id)
            .collect()
    }

    /// Waits until the tenant has `count` `send` jobs in `state` (a job is finished just after
    /// its message's status is written) and returns them.
    pub async fn wait_for_send_jobs(&self, state: JobState, count: usize) -> Vec<Job> {
        eventually(
            &format!("{count} {} send job(s)", state.as_str()),
            || async { self.send_jobs(state).await.len() == count },
        )
        .await;
        self.send_jobs(state).await
    }

    /// The tenant's `send` jobs in `state`.
    ///
    /// # Panics
    /// On a store failure.
    pub async fn send_jobs(&self, state: JobState) -> Vec<Job> {
        self.app
            .state
            .store
            .list_jobs(self.business, state, 100)
            .await
            .expect("jobs")
            .into_iter()
            .filter(|j| j.kind == "send")
            .collect()
    }
}
