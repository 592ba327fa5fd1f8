//! Bot API request shapes, built as data before any HTTP happens.
//!
//! Every call the adapter makes is an [`ApiRequest`] produced here or in [`crate::outbound`],
//! so the conformance test can check each method and parameter against the machine-readable
//! Bot API spec without a network.

use serde_json::{Map, Value, json};

/// One Bot API call: a method name and its JSON parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: &'static str,
    pub params: Map<String, Value>,
}

impl ApiRequest {
    #[must_use]
    pub fn new(method: &'static str) -> Self {
        Self {
            method,
            params: Map::new(),
        }
    }

    /// Adds a parameter.
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.params.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a parameter when there is a value.
    #[must_use]
    pub fn with_opt(self, name: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.with(name, v),
            None => self,
        }
    }
}

/// `getMe`: who the token belongs to.
#[must_use]
pub fn get_me() -> ApiRequest {
    ApiRequest::new("getMe")
}

/// `getWebhookInfo`: where updates go and how delivery is doing.
#[must_use]
pub fn get_webhook_info() -> ApiRequest {
    ApiRequest::new("getWebhookInfo")
}

/// `deleteWebhook`, keeping pending updates (they expire upstream after 24 h anyway).
#[must_use]
pub fn delete_webhook() -> ApiRequest {
    ApiRequest::new("deleteWebhook").with("drop_pending_updates", false)
}

/// `setWebhook` with our URL, the per-integration secret and an explicit `allowed_updates`.
/// Pending updates are kept (`drop_pending_updates=false`): a reconnect must not lose messages.
#[must_use]
pub fn set_webhook(
    url: &str,
    secret: &str,
    allowed_updates: &[String],
    max_connections: u32,
) -> ApiRequest {
    ApiRequest::new("setWebhook")
        .with("url", url)
        .with("secret_token", secret)
        .with("allowed_updates", json!(allowed_updates))
        .with("max_connections", max_connections)
        .with("drop_pending_updates", false)
}
