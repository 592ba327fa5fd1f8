//! Shared test scaffolding: an emulator with one bot, an adapter pointed at it, a fake account
//! directory, integration contexts, and a webhook receiver that records what Telegram posts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use switchboard_core::adapter::{
    AccountDirectory, ConnectAttempt, Credentials, IntegrationContext,
};
use switchboard_core::domain::{Integration, IntegrationState};
use switchboard_core::error::StoreError;
use switchboard_core::{AdapterServices, BusinessId, ChannelName, IntegrationId};
use switchboard_telegram::adapter::TelegramCredentials;
use switchboard_telegram::emulator::{
    BotRequest, Emulator, EmulatorConfig, EmulatorHandle, SeededBot,
};
use switchboard_telegram::{TelegramAdapter, TelegramConfig};

/// A directory where `owner` (if any) holds every account.
#[derive(Debug, Default)]
pub struct Directory {
    pub owner: Option<BusinessId>,
}

#[async_trait]
impl AccountDirectory for Directory {
    async fn owner_of(&self, _: &ChannelName, _: &str) -> Result<Option<BusinessId>, StoreError> {
        Ok(self.owner)
    }
}

/// One request Telegram posted to the webhook.
#[derive(Debug, Clone)]
pub struct Received {
    pub secret: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Debug, Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Body substring → how many more times to answer 500.
    failures: HashMap<String, usize>,
}

/// A webhook endpoint on loopback that records requests and fails on demand.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub base_url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base_url, state }
    }

    /// Answer 500 to the next `times` requests whose body contains `marker`.
    pub fn fail_when(&self, marker: &str, times: usize) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(marker.to_owned(), times);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = String::from_utf8(body.to_vec()).unwrap();
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let mut state = state.lock().unwrap();
    state.received.push(Received {
        secret: header("x-telegram-bot-api-secret-token"),
        content_type: header("content-type"),
        body: body.clone(),
    });
    let failing = state
        .failures
        .iter_mut()
        .find(|(marker, left)| **left > 0 && body.contains(marker.as_str()));
    match failing {
        Some((_, left)) => {
            *left -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        }
        None => StatusCode::OK,
    }
}

/// An emulator with one seeded bot, a receiver, and an adapter whose webhook is the receiver.
pub struct World {
    pub emulator: EmulatorHandle,
    pub bot: SeededBot,
    pub receiver: Receiver,
    pub adapter: TelegramAdapter,
}

impl World {
    pub async fn new() -> Self {
        Self::with(EmulatorConfig::default(), TelegramConfig::default()).await
    }

    pub async fn with(emulator_config: EmulatorConfig, mut config: TelegramConfig) -> Self {
        let emulator = Emulator::start(emulator_config).await.unwrap();
        let bot = emulator
            .add_bot(BotRequest {
                id: Some(7_123_456_789),
                username: Some("switchboard_test_bot".into()),
                first_name: Some("Switchboard Test".into()),
                token: None,
            })
            .unwrap();
        let receiver = Receiver::start().await;
        config.api_base_url = emulator.base_url();
        let adapter = TelegramAdapter::new(config, &services(&receiver.base_url));
        Self {
            emulator,
            bot,
            receiver,
            adapter,
        }
    }

    /// The context of an integration holding this world's bot with `secret`.
    pub fn context(&self, secret: &str) -> IntegrationContext {
        context_with(&self.bot.token, secret)
    }
}

pub fn services(public_url: &str) -> AdapterServices {
    AdapterServices {
        http: reqwest::Client::new(),
        public_url: url::Url::parse(public_url).unwrap(),
        sandbox: true,
    }
}

pub fn context_with(token: &str, secret: &str) -> IntegrationContext {
    let now = Utc::now();
    IntegrationContext {
        integration: Integration {
            id: IntegrationId::new(),
            business_id: BusinessId::new(),
            channel: ChannelName::parse("telegram").unwrap(),
            channel_name: None,
            account_id: token.split(':').next().map(str::to_owned),
            parent_account_id: None,
            is_active: true,
            state: IntegrationState::Connected,
            state_reason: None,
            details: serde_json::json!({}),
            token_expires_at: None,
            last_webhook_at: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        },
        credentials: Credentials::from_value(&TelegramCredentials {
            bot_token: token.to_owned(),
            webhook_secret: secret.to_owned(),
        }),
    }
}

/// A connect attempt by a fresh business against `directory`.
pub fn attempt(directory: &Directory) -> ConnectAttempt<'_> {
    ConnectAttempt {
        business_id: BusinessId::new(),
        directory,
    }
}

pub const WAIT: Duration = Duration::from_secs(10);
