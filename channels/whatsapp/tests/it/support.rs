//! Shared test helpers: building the adapter from a config section, reading fixtures, and an
//! in-memory `AccountDirectory`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use switchboard_core::adapter::AccountDirectory;
use switchboard_core::domain::{AccountEvent, InboundEvent, InboundMessage, StatusUpdate};
use switchboard_core::error::StoreError;
use switchboard_core::registry::{AdapterServices, ChannelConfig};
use switchboard_core::{BusinessId, ChannelAdapter, ChannelName};

pub const APP_ID: &str = "670843887433847";
pub const APP_SECRET: &str = "test-app-secret-5f2b";
pub const VERIFY_TOKEN: &str = "verify-me-123";
pub const PUBLIC_URL: &str = "https://gw.example.com";

pub fn services() -> AdapterServices {
    AdapterServices {
        http: reqwest::Client::new(),
        public_url: url::Url::parse(PUBLIC_URL).unwrap(),
        sandbox: false,
    }
}

pub fn section(base_url: &str) -> serde_json::Value {
    serde_json::json!({
        "enabled": true,
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "graph_base_url": base_url,
        "dialog_base_url": base_url,
    })
}

/// The adapter configured against `base_url` (the emulator, or an unused host).
pub fn adapter(base_url: &str) -> Arc<dyn ChannelAdapter> {
    let config = ChannelConfig {
        name: "whatsapp".into(),
        section: section(base_url),
    };
    switchboard_whatsapp::build_adapter(&config, &services()).expect("valid config")
}

pub fn offline_adapter() -> Arc<dyn ChannelAdapter> {
    adapter("http://127.0.0.1:9")
}

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/whatsapp-webhooks")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn parse_fixture(name: &str) -> Vec<InboundEvent> {
    offline_adapter()
        .parse_webhook(&fixture(name))
        .unwrap_or_else(|e| panic!("{name} did not parse: {e}"))
}

pub fn only_message(name: &str) -> InboundMessage {
    match parse_fixture(name).as_slice() {
        [InboundEvent::Message(m)] => (**m).clone(),
        other => panic!("{name}: expected one message, got {other:#?}"),
    }
}

pub fn only_status(name: &str) -> StatusUpdate {
    match parse_fixture(name).as_slice() {
        [InboundEvent::Status(s)] => s.clone(),
        other => panic!("{name}: expected one status, got {other:#?}"),
    }
}

pub fn only_account(name: &str) -> AccountEvent {
    match parse_fixture(name).as_slice() {
        [InboundEvent::Account(a)] => a.clone(),
        other => panic!("{name}: expected one account event, got {other:#?}"),
    }
}

/// An `AccountDirectory` over a map of phone number id → owning business.
#[derive(Debug, Default, Clone)]
pub struct Directory(pub Arc<Mutex<HashMap<String, BusinessId>>>);

impl Directory {
    pub fn with_owner(account: &str, owner: BusinessId) -> Self {
        let dir = Self::default();
        dir.0.lock().unwrap().insert(account.to_owned(), owner);
        dir
    }
}

#[async_trait]
impl AccountDirectory for Directory {
    async fn owner_of(
        &self,
        channel: &ChannelName,
        account_id: &str,
    ) -> Result<Option<BusinessId>, StoreError> {
        assert_eq!(channel.as_str(), "whatsapp");
        Ok(self.0.lock().unwrap().get(account_id).copied())
    }
}
