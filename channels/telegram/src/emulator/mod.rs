//! A stateful Telegram Bot API emulator: a real HTTP server on loopback, built from the facts in
//! `research/telegram.md`, for tests and the gateway's sandbox mode.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use switchboard_telegram::emulator::{BotRequest, Emulator, EmulatorConfig, SimulatedMessage};
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! let bot = emulator.add_bot(BotRequest::default()).expect("generated bot");
//! // Point the adapter at it: channels.telegram.api_base_url = emulator.base_url()
//! emulator.simulate_message(bot.id, &SimulatedMessage { text: "hi".into(), ..Default::default() })
//!     .expect("known bot");
//! # Ok(()) }
//! ```
//!
//! It serves `/bot<token>/<method>` with the real envelope, token checks, `setWebhook` rules
//! (secret charset, ports/https except on loopback, one call per second), webhook delivery with
//! the secret header, ASCII-escaped bodies, per-chat ordering and retries, `getUpdates`' 409,
//! `sendMessage` validation and flood limits, and fault switches. The controls are Rust methods
//! on [`EmulatorHandle`] and the same operations as JSON under `/_emulator/` (see [`routes`]).
//! Multipart uploads are not parsed (files are passed by `file_id` or URL).

mod botapi;
mod control;
mod delivery;
mod methods;
pub mod routes;
mod state;
mod webhook;
pub mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

pub use control::{BotRequest, ControlError, SimulatedMessage};
pub use state::{
    ChatSpec, DeliveryAttempt, EmulatorConfig, RateLimits, RetrySchedule, SeededBot, SendFault,
    SentMessage,
};

/// State shared by the server, the delivery tasks and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<state::Inner>,
    config: EmulatorConfig,
    http: reqwest::Client,
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, state::Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn webhook_info(&self, bot_id: i64) -> Option<serde_json::Value> {
        let mut inner = self.lock();
        match webhook::webhook_info(inner.bot_by_id(bot_id)?) {
            wire::Answer::Ok { result, .. } => Some(result),
            wire::Answer::Err { .. } => None,
        }
    }
}

/// Starts emulators.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Binds `127.0.0.1:0` and serves until the handle is dropped.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<EmulatorHandle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::start_on(listener, config)
    }

    /// Serves on an already bound listener.
    ///
    /// # Errors
    /// When the listener has no local address.
    pub fn start_on(
        listener: TcpListener,
        config: EmulatorConfig,
    ) -> std::io::Result<EmulatorHandle> {
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(state::Inner::default()),
            config,
            http,
            notify: Notify::new(),
        });
        let app = routes::router()
            .fallback(botapi::handle)
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "telegram emulator stopped");
            }
        });
        Ok(EmulatorHandle {
            shared,
            addr,
            _stop: stop,
        })
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:<port>`: the adapter's `api_base_url`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates (or replaces) a bot; missing id, token and names are generated. Replacing a bot
    /// with a new token stands for @BotFather's `/revoke`: the old token stops working, the bot
    /// starts without a webhook, and message ids in its chats continue where they were.
    ///
    /// # Errors
    /// A token that is malformed or does not start with the id.
    pub fn add_bot(&self, request: BotRequest) -> Result<SeededBot, ControlError> {
        self.shared.add_bot(request)
    }

    /// Makes a chat known, so that bots can send to it.
    pub fn add_chat(&self, chat: ChatSpec) {
        self.shared.add_chat(chat);
    }

    /// A person writes to the bot: queues a `message` update (and makes the chat known).
    /// Returns `{"update_id", "message_id", "chat_id"}`.
    ///
    /// # Errors
    /// Unknown bot or empty text.
    pub fn simulate_message(
        &self,
        bot_id: i64,
        message: &SimulatedMessage,
    ) -> Result<serde_json::Value, ControlError> {
        self.shared.simulate(bot_id, message)
    }

    /// Queues any update (`kind` is the Update field, e.g. `callback_query`); returns its id.
    ///
    /// # Errors
    /// Unknown bot.
    pub fn inject_update(
        &self,
        bot_id: i64,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<i64, ControlError> {
        self.shared.inject(bot_id, kind, payload)
    }

    /// Revokes the bot's token: every call answers `401 Unauthorized`.
    ///
    /// # Errors
    /// Unknown bot.
    pub fn revoke_token(&self, bot_id: i64) -> Result<(), ControlError> {
        self.shared.revoke(bot_id)
    }

    /// The user of private chat `chat_id` blocks the bot (`403` on sends, a `my_chat_member`
    /// update `member → kicked`); returns the update id.
    ///
    /// # Errors
    /// Unknown bot.
    pub fn block_bot(&self, bot_id: i64, chat_id: i64) -> Result<i64, ControlError> {
        self.shared.set_blocked(bot_id, chat_id, true)
    }

    /// The user unblocks the bot (`kicked → member`).
    ///
    /// # Errors
    /// Unknown bot.
    pub fn unblock_bot(&self, bot_id: i64, chat_id: i64) -> Result<i64, ControlError> {
        self.shared.set_blocked(bot_id, chat_id, false)
    }

    /// The basic group `from` becomes supergroup `to`: sends to `from` fail with
    /// `migrate_to_chat_id`.
    pub fn migrate_chat(&self, from: i64, to: i64) {
        self.shared.migrate(from, to);
    }

    /// The next sends (any `send*` method, any bot) answer with these faults, in order.
    pub fn fail_next_sends(&self, faults: impl IntoIterator<Item = SendFault>) {
        self.shared.lock().send_faults.extend(faults);
    }

    /// Deliver every acknowledged update a second time (Telegram's redelivery after a lost ack).
    pub fn set_duplicate_deliveries(&self, on: bool) {
        self.shared.lock().duplicate_deliveries = on;
    }

    /// Every message sent through the emulator, in order.
    #[must_use]
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// Every webhook delivery attempt, in order.
    #[must_use]
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.shared.lock().deliveries.clone()
    }

    /// The bot's `getWebhookInfo` result.
    #[must_use]
    pub fn webhook_info(&self, bot_id: i64) -> Option<serde_json::Value> {
        self.shared.webhook_info(bot_id)
    }

    /// Waits until `done(attempts)` holds for the delivery attempts so far, or `timeout` passes;
    /// returns whether it held. Wakes on every attempt, no polling.
    pub async fn wait_for_deliveries(
        &self,
        timeout: Duration,
        done: impl Fn(&[DeliveryAttempt]) -> bool,
    ) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if done(&self.shared.lock().deliveries) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}
