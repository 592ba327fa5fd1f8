//! The Bot API client: POSTs an [`ApiRequest`] as JSON to `{base}/bot<token>/<method>` and reads
//! Telegram's envelope (`{"ok":true,"result":…}` / `{"ok":false,"error_code":…}`).
//!
//! The token travels in the URL path, so no error produced here ever carries the URL or the
//! token: reqwest errors are reduced to a kind and a fixed message.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::requests::ApiRequest;
use crate::token::BotToken;

/// What went wrong with a Bot API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Telegram answered `ok:false`.
    #[error("Telegram error {code}: {description}")]
    Api {
        code: i64,
        description: String,
        retry_after: Option<u64>,
        migrate_to_chat_id: Option<i64>,
    },
    /// The request never reached Telegram (DNS, connect, TLS): safe to repeat.
    #[error("could not reach Telegram: {0}")]
    NotSent(&'static str),
    /// The request left but no (complete) answer came back: a timeout or a dropped connection.
    /// The outcome is unknown.
    #[error("Telegram did not answer in time")]
    TimedOut,
    /// An answer that is not Telegram's envelope (a proxy's error page, say).
    #[error("unexpected answer from Telegram (HTTP {status})")]
    BadResponse { status: u16 },
}

#[derive(Debug, Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<Value>,
    error_code: Option<i64>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Debug, Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// A Bot API endpoint: the shared HTTP client, the base URL and a per-call timeout.
#[derive(Debug, Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl BotApi {
    #[must_use]
    pub fn new(http: reqwest::Client, base_url: &str, timeout: Duration) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    /// Performs one call and returns its `result`.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn call(&self, token: &BotToken, request: &ApiRequest) -> Result<Value, ApiError> {
        let url = format!("{}/bot{}/{}", self.base_url, token.expose(), request.method);
        let response = self
            .http
            .post(url)
            .timeout(self.timeout)
            .json(&request.params)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| transport_error(&e))?;
        read_envelope(status, &bytes)
    }
}

/// Classifies a reqwest error without keeping its text (which may hold the URL and token).
fn transport_error(error: &reqwest::Error) -> ApiError {
    if error.is_connect() {
        ApiError::NotSent("connection failed")
    } else if error.is_builder() {
        ApiError::NotSent("the request could not be built")
    } else {
        ApiError::TimedOut
    }
}

/// Reads Telegram's envelope from a response.
///
/// # Errors
/// `ok:false` as [`ApiError::Api`], anything else unexpected as [`ApiError::BadResponse`].
pub fn read_envelope(status: u16, body: &[u8]) -> Result<Value, ApiError> {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return Err(ApiError::BadResponse { status });
    };
    if envelope.ok {
        return envelope.result.ok_or(ApiError::BadResponse { status });
    }
    let params = envelope.parameters;
    Err(ApiError::Api {
        code: envelope.error_code.unwrap_or(i64::from(status)),
        description: envelope
            .description
            .unwrap_or_else(|| format!("HTTP {status}")),
        retry_after: params.as_ref().and_then(|p| p.retry_after),
        migrate_to_chat_id: params.and_then(|p| p.migrate_to_chat_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_envelope_carries_retry_after_and_migration() {
        let body = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 14","parameters":{"retry_after":14}}"#;
        assert_eq!(
            read_envelope(429, body).unwrap_err(),
            ApiError::Api {
                code: 429,
                description: "Too Many Requests: retry after 14".into(),
                retry_after: Some(14),
                migrate_to_chat_id: None
            }
        );
        let body = br#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}"#;
        assert!(matches!(
            read_envelope(400, body).unwrap_err(),
            ApiError::Api {
                migrate_to_chat_id: Some(-1_001_234_567_890),
                ..
            }
        ));
    }

    #[test]
    fn a_non_envelope_body_is_a_bad_response() {
        assert_eq!(
            read_envelope(502, b"<html>Bad Gateway</html>").unwrap_err(),
            ApiError::BadResponse { status: 502 }
        );
        assert_eq!(
            read_envelope(200, br#"{"ok":true,"result":true}"#).unwrap(),
            Value::Bool(true)
        );
    }
}
