//! The `channels.telegram` config section, parsed and validated once at start-up.
//!
//! Every error names the full key (`channels.telegram.api_base_url`), so `switchboard config
//! check` can point at the exact line to fix.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::error::ConfigError;
use switchboard_core::registry::ChannelConfig;

/// The production Bot API host.
pub const DEFAULT_API_BASE_URL: &str = "https://api.telegram.org";

/// Update kinds we ask Telegram for. Passed explicitly on every `setWebhook`: Telegram keeps the
/// previous setting when the parameter is absent, and reactions are opt-in.
pub const DEFAULT_ALLOWED_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "my_chat_member",
    "message_reaction",
    "message_reaction_count",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "read by the gateway through ChannelConfig::enabled; declared so that \
                  deny_unknown_fields accepts it"
    )]
    enabled: bool,
    api_base_url: Option<String>,
    allowed_updates: Option<Vec<String>>,
    max_connections: Option<u32>,
    request_timeout_secs: Option<u64>,
    webhook_error_window_secs: Option<u64>,
}

/// The validated settings of the Telegram adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    /// Base URL of the Bot API, without a trailing slash (`channels.telegram.api_base_url`).
    pub api_base_url: String,
    /// `allowed_updates` for `setWebhook` (`channels.telegram.allowed_updates`).
    pub allowed_updates: Vec<String>,
    /// `max_connections` for `setWebhook`, 1–100, default 40.
    pub max_connections: u32,
    /// Timeout of one Bot API call (`channels.telegram.request_timeout_secs`, default 30).
    pub request_timeout: Duration,
    /// How recent a webhook delivery error must be, with updates still pending, for the
    /// status to be `error` (`channels.telegram.webhook_error_window_secs`, default 600).
    pub webhook_error_window: Duration,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            allowed_updates: DEFAULT_ALLOWED_UPDATES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            max_connections: 40,
            request_timeout: Duration::from_secs(30),
            webhook_error_window: Duration::from_secs(600),
        }
    }
}

impl TelegramConfig {
    /// Parses and validates the section; an absent section yields the defaults.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the offending key.
    pub fn from_channel_config(config: &ChannelConfig) -> Result<Self, ConfigError> {
        let raw: RawConfig = if config.section.is_null() {
            serde_json::from_value(serde_json::json!({}))
                .map_err(|e| ConfigError::new(config.key("enabled"), e.to_string()))?
        } else {
            config.parse()?
        };
        let defaults = Self::default();
        Ok(Self {
            api_base_url: base_url(config, raw.api_base_url)?,
            allowed_updates: allowed_updates(config, raw.allowed_updates)?
                .unwrap_or(defaults.allowed_updates),
            max_connections: max_connections(config, raw.max_connections)?,
            request_timeout: positive_secs(
                config,
                "request_timeout_secs",
                raw.request_timeout_secs,
            )?
            .unwrap_or(defaults.request_timeout),
            webhook_error_window: positive_secs(
                config,
                "webhook_error_window_secs",
                raw.webhook_error_window_secs,
            )?
            .unwrap_or(defaults.webhook_error_window),
        })
    }
}

fn base_url(config: &ChannelConfig, raw: Option<String>) -> Result<String, ConfigError> {
    let Some(text) = raw else {
        return Ok(DEFAULT_API_BASE_URL.to_owned());
    };
    let key = config.key("api_base_url");
    let url = url::Url::parse(&text)
        .map_err(|e| ConfigError::new(key.clone(), format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(key, "must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(key, "must not carry a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn allowed_updates(
    config: &ChannelConfig,
    raw: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(list) = raw else { return Ok(None) };
    let bad = list
        .iter()
        .find(|name| name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
    match bad {
        Some(name) => Err(ConfigError::new(
            config.key("allowed_updates"),
            format!("`{name}` is not an update kind (snake_case names such as `message`)"),
        )),
        None => Ok(Some(list)),
    }
}

fn max_connections(config: &ChannelConfig, raw: Option<u32>) -> Result<u32, ConfigError> {
    match raw {
        None => Ok(40),
        Some(n @ 1..=100) => Ok(n),
        Some(n) => Err(ConfigError::new(
            config.key("max_connections"),
            format!("{n} is outside 1-100"),
        )),
    }
}

fn positive_secs(
    config: &ChannelConfig,
    field: &str,
    raw: Option<u64>,
) -> Result<Option<Duration>, ConfigError> {
    match raw {
        Some(0) => Err(ConfigError::new(config.key(field), "must be at least 1")),
        other => Ok(other.map(Duration::from_secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(value: serde_json::Value) -> ChannelConfig {
        ChannelConfig {
            name: "telegram".into(),
            section: value,
        }
    }

    #[test]
    fn an_empty_section_gives_the_documented_defaults() {
        let config =
            TelegramConfig::from_channel_config(&section(serde_json::json!({"enabled": true})))
                .unwrap();
        assert_eq!(config, TelegramConfig::default());
        assert_eq!(config.api_base_url, "https://api.telegram.org");
    }

    #[test]
    fn a_bad_base_url_is_reported_under_its_full_key() {
        let err = TelegramConfig::from_channel_config(&section(
            serde_json::json!({"api_base_url": "not a url"}),
        ))
        .unwrap_err();
        assert_eq!(err.key, "channels.telegram.api_base_url");
    }

    #[test]
    fn unknown_keys_and_out_of_range_values_name_their_key() {
        let err =
            TelegramConfig::from_channel_config(&section(serde_json::json!({"api_base": "x"})))
                .unwrap_err();
        assert_eq!(err.key, "channels.telegram.api_base");
        let err = TelegramConfig::from_channel_config(&section(
            serde_json::json!({"max_connections": 0}),
        ))
        .unwrap_err();
        assert_eq!(err.key, "channels.telegram.max_connections");
        let err = TelegramConfig::from_channel_config(&section(
            serde_json::json!({"allowed_updates": ["Message!"]}),
        ))
        .unwrap_err();
        assert_eq!(err.key, "channels.telegram.allowed_updates");
    }

    #[test]
    fn a_trailing_slash_on_the_base_url_is_dropped() {
        let config = TelegramConfig::from_channel_config(&section(
            serde_json::json!({"api_base_url": "http://127.0.0.1:9000/"}),
        ))
        .unwrap();
        assert_eq!(config.api_base_url, "http://127.0.0.1:9000");
    }
}
