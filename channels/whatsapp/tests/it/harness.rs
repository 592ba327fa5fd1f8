//! Emulator harness: starts an emulator and an adapter pointed at it, drives the consent
//! dialog over HTTP, and builds integration contexts from finished connections.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_core::adapter::{
    CallbackParams, ConnectAttempt, IntegrationContext, NewConnection, OAuthOutcome,
};
use switchboard_core::domain::{Integration, IntegrationState};
use switchboard_core::error::ConnectError;
use switchboard_core::{BusinessId, ChannelAdapter, ChannelName, IntegrationId};
use switchboard_whatsapp::emulator::{DialogMode, Emulator, EmulatorConfig, EmulatorHandle, Seed};

use crate::support::{APP_ID, APP_SECRET, Directory, adapter};

pub struct Env {
    pub emulator: EmulatorHandle,
    pub adapter: Arc<dyn ChannelAdapter>,
    pub business: BusinessId,
    pub directory: Directory,
}

pub async fn env_with(seed: Seed) -> Env {
    let mut config = EmulatorConfig::new(APP_ID, APP_SECRET);
    config.seed = seed;
    config.faults.dialog = DialogMode::AutoApprove;
    let emulator = Emulator::start(config).await.expect("emulator binds");
    let adapter = adapter(emulator.base_url());
    Env {
        emulator,
        adapter,
        business: BusinessId::new(),
        directory: Directory::default(),
    }
}

pub async fn env() -> Env {
    env_with(Seed::sandbox()).await
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows the adapter's consent URL once and turns the `302` into callback parameters.
pub async fn consent(env: &Env) -> (CallbackParams, url::Url) {
    let url = env.adapter.authorize_url("state-123").unwrap();
    let response = no_redirects().get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    (callback_params(&location), location)
}

pub fn callback_params(location: &url::Url) -> CallbackParams {
    let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
    CallbackParams {
        code: q.get("code").cloned(),
        error: q.get("error").cloned(),
        error_reason: q.get("error_reason").cloned(),
        error_description: q.get("error_description").cloned(),
    }
}

impl Env {
    pub fn attempt(&self) -> ConnectAttempt<'_> {
        ConnectAttempt {
            business_id: self.business,
            directory: &self.directory,
        }
    }

    /// Consent (auto-approve) and `finish_oauth`.
    pub async fn connect(&self) -> Result<OAuthOutcome, ConnectError> {
        let (params, _) = consent(self).await;
        self.adapter.finish_oauth(&params, &self.attempt()).await
    }

    /// Connects and expects exactly one number.
    pub async fn connected(&self) -> NewConnection {
        match self.connect().await {
            Ok(OAuthOutcome::Connected(conn)) => conn,
            other => panic!("expected a connection, got {other:?}"),
        }
    }
}

pub fn context(conn: &NewConnection) -> IntegrationContext {
    let now = chrono::Utc::now();
    IntegrationContext {
        integration: Integration {
            id: IntegrationId::new(),
            business_id: BusinessId::new(),
            channel: ChannelName::parse("whatsapp").unwrap(),
            channel_name: conn.channel_name.clone(),
            account_id: Some(conn.account_id.clone()),
            parent_account_id: conn.parent_account_id.clone(),
            is_active: true,
            state: IntegrationState::Connected,
            state_reason: None,
            details: conn.details.clone(),
            token_expires_at: conn.token_expires_at,
            last_webhook_at: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        },
        credentials: conn.credentials.clone(),
    }
}
