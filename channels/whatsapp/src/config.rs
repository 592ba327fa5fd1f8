//! The `channels.whatsapp` config section, parsed once at start-up.
//!
//! Secrets are `SecretString`s so they redact themselves; every problem is a
//! [`ConfigError`] naming the full key (`channels.whatsapp.app_secret`).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use switchboard_core::error::ConfigError;
use switchboard_core::registry::{AdapterServices, ChannelConfig};
use url::Url;

/// The Graph API version used when config names none (the newest released, July 2026).
pub const DEFAULT_GRAPH_VERSION: &str = "v26.0";
/// Meta's API host.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.facebook.com";
/// Meta's login dialog host.
pub const DEFAULT_DIALOG_BASE_URL: &str = "https://www.facebook.com";
/// The permissions asked for by default.
pub const DEFAULT_SCOPES: &str =
    "whatsapp_business_management,whatsapp_business_messaging,business_management";
/// The callback path on the gateway, appended to `server.public_url` by default.
pub const CALLBACK_PATH: &str = "/api/integrations/whatsapp/callback";

/// The validated WhatsApp configuration.
#[derive(Debug, Clone)]
pub struct WhatsAppConfig {
    pub app_id: String,
    pub app_secret: SecretString,
    pub verify_token: SecretString,
    pub redirect_uri: Url,
    pub graph_base_url: Url,
    pub dialog_base_url: Url,
    pub graph_version: String,
    pub scopes: Vec<String>,
    /// Facebook Login for Business configuration id, when used.
    pub config_id: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    app_id: Option<serde_json::Value>,
    app_secret: Option<SecretString>,
    verify_token: Option<SecretString>,
    redirect_uri: Option<String>,
    graph_base_url: Option<String>,
    dialog_base_url: Option<String>,
    graph_version: Option<String>,
    scopes: Option<serde_json::Value>,
    config_id: Option<serde_json::Value>,
}

impl WhatsAppConfig {
    /// Parses and validates the section.
    ///
    /// # Errors
    /// Missing or empty secrets, malformed URLs or version, naming the full key.
    pub fn from_channel_config(
        config: &ChannelConfig,
        services: &AdapterServices,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = config.parse()?;
        let key = |field: &str| config.key(field);
        let app_id = scalar_text(raw.app_id.as_ref())
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| ConfigError::new(key("app_id"), "must be set to the Meta app id"))?;
        let app_secret = required_secret(raw.app_secret, &key("app_secret"))?;
        let verify_token = required_secret(raw.verify_token, &key("verify_token"))?;
        let redirect_uri = match raw.redirect_uri.filter(|s| !s.trim().is_empty()) {
            Some(text) => parse_url(&text, &key("redirect_uri"))?,
            None => parse_url(
                &services.public_endpoint(CALLBACK_PATH),
                "server.public_url",
            )?,
        };
        let graph_version = raw
            .graph_version
            .unwrap_or_else(|| DEFAULT_GRAPH_VERSION.to_owned());
        if !is_graph_version(&graph_version) {
            return Err(ConfigError::new(
                key("graph_version"),
                format!("`{graph_version}` is not a Graph API version like `v26.0`"),
            ));
        }
        Ok(Self {
            app_id,
            app_secret,
            verify_token,
            redirect_uri,
            graph_base_url: base_url(
                raw.graph_base_url,
                DEFAULT_GRAPH_BASE_URL,
                &key("graph_base_url"),
            )?,
            dialog_base_url: base_url(
                raw.dialog_base_url,
                DEFAULT_DIALOG_BASE_URL,
                &key("dialog_base_url"),
            )?,
            graph_version,
            scopes: parse_scopes(raw.scopes.as_ref(), &key("scopes"))?,
            config_id: scalar_text(raw.config_id.as_ref()).filter(|id| !id.trim().is_empty()),
        })
    }

    /// The app access token `{app_id}|{app_secret}` used for `debug_token`.
    #[must_use]
    pub fn app_token(&self) -> SecretString {
        SecretString::from(format!(
            "{}|{}",
            self.app_id,
            self.app_secret.expose_secret()
        ))
    }
}

/// Whether `text` looks like `v25.0`.
#[must_use]
pub fn is_graph_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    let all_digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    all_digits(parts.next()) && all_digits(parts.next()) && parts.next().is_none()
}

fn scalar_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required_secret(value: Option<SecretString>, key: &str) -> Result<SecretString, ConfigError> {
    value
        .filter(|s| !s.expose_secret().trim().is_empty())
        .ok_or_else(|| ConfigError::new(key, "must be set (it is a secret; there is no default)"))
}

fn parse_url(text: &str, key: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text.trim())
        .map_err(|e| ConfigError::new(key, format!("`{text}` is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            key,
            format!("`{text}` must be an http(s) URL with a host"),
        ));
    }
    Ok(url)
}

fn base_url(value: Option<String>, default: &str, key: &str) -> Result<Url, ConfigError> {
    let text = value.filter(|s| !s.trim().is_empty());
    parse_url(text.as_deref().unwrap_or(default), key)
}

fn parse_scopes(value: Option<&serde_json::Value>, key: &str) -> Result<Vec<String>, ConfigError> {
    let list: Vec<String> = match value {
        None => split_scopes(DEFAULT_SCOPES),
        Some(serde_json::Value::String(s)) => split_scopes(s),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ConfigError::new(key, "must be a list of permission names"))?,
        Some(_) => {
            return Err(ConfigError::new(
                key,
                "must be a comma-separated string or a list",
            ));
        }
    };
    if list.is_empty() {
        return Err(ConfigError::new(key, "must name at least one permission"));
    }
    Ok(list)
}

fn split_scopes(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
