//! Live status: `getMe` (is the token still valid?) and `getWebhookInfo` (do updates reach us?).
//!
//! `needs_reauth` when Telegram rejects the token; `error` when the webhook is missing or points
//! elsewhere, or when Telegram reports a recent delivery error while updates are still pending;
//! `connected` otherwise. Telegram's delivery diagnostics go into `details` either way, so the
//! dashboard can show why a bot is silent.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchboard_core::adapter::LiveStatus;
use switchboard_core::domain::IntegrationState;

use crate::api::{ApiError, BotApi};
use crate::requests;
use crate::token::BotToken;

fn live(state: IntegrationState, reason: Option<String>, details: Value) -> LiveStatus {
    LiveStatus {
        state,
        reason,
        details,
        token_expires_at: None,
    }
}

fn date(value: &Value, field: &str) -> Option<DateTime<Utc>> {
    value
        .get(field)
        .and_then(Value::as_i64)
        .filter(|d| *d > 0)
        .and_then(|d| DateTime::from_timestamp(d, 0))
}

/// The state of a call failure that is not about the webhook.
pub(crate) fn unreachable_status(error: &ApiError) -> LiveStatus {
    match error {
        ApiError::Api {
            code: 401 | 404, ..
        } => live(
            IntegrationState::NeedsReauth,
            Some(
                "Telegram rejected the bot token (revoked or regenerated in @BotFather); \
                 reconnect with the new token"
                    .into(),
            ),
            json!({}),
        ),
        other => live(
            IntegrationState::Error,
            Some(format!("could not check the bot with Telegram: {other}")),
            json!({}),
        ),
    }
}

/// Asks Telegram how the bot and its webhook are doing.
pub(crate) async fn live_status(
    api: &BotApi,
    token: &BotToken,
    webhook_url: &str,
    error_window: Duration,
) -> LiveStatus {
    let me = match api.call(token, &requests::get_me()).await {
        Ok(me) => me,
        Err(error) => return unreachable_status(&error),
    };
    let info = match api.call(token, &requests::get_webhook_info()).await {
        Ok(info) => info,
        Err(error) => return unreachable_status(&error),
    };
    judge(&me, &info, webhook_url, error_window, Utc::now())
}

/// Decides the state from `getMe` and `getWebhookInfo` results.
pub(crate) fn judge(
    me: &Value,
    info: &Value,
    webhook_url: &str,
    error_window: Duration,
    now: DateTime<Utc>,
) -> LiveStatus {
    let url = info.get("url").and_then(Value::as_str).unwrap_or_default();
    let pending = info
        .get("pending_update_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let last_error = info.get("last_error_message").and_then(Value::as_str);
    let last_error_at = date(info, "last_error_date");
    let details = json!({
        "bot_username": me.get("username"),
        "bot_id": me.get("id").and_then(Value::as_i64).map(|i| i.to_string()),
        "webhook_url_matches": url == webhook_url,
        "pending_update_count": pending,
        "last_error_message": last_error,
        "last_error_date": last_error_at.map(|d| d.to_rfc3339()),
        "last_synchronization_error_date":
            date(info, "last_synchronization_error_date").map(|d| d.to_rfc3339()),
        "max_connections": info.get("max_connections"),
    });
    if url.is_empty() {
        let reason = "no webhook is set for this bot (deleted by another program?); reconnect";
        return live(IntegrationState::Error, Some(reason.into()), details);
    }
    if url != webhook_url {
        let reason = "the bot's webhook points to a different URL (another program or gateway \
                      took it over); reconnect to take it back";
        return live(IntegrationState::Error, Some(reason.into()), details);
    }
    let window = chrono::Duration::from_std(error_window).unwrap_or(chrono::Duration::MAX);
    let recent = last_error_at.is_some_and(|at| now - at <= window);
    if recent && pending > 0 {
        let reason = format!(
            "Telegram cannot deliver updates to the gateway: {} ({pending} pending)",
            last_error.unwrap_or("unknown error")
        );
        return live(IntegrationState::Error, Some(reason), details);
    }
    live(IntegrationState::Connected, None, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://gw.example.com/api/webhooks/telegram";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn an_old_delivery_error_without_backlog_is_still_connected() {
        let info = json!({"url": URL, "pending_update_count": 0,
            "last_error_date": 1_000, "last_error_message": "Connection refused"});
        let status = judge(
            &json!({"id": 1}),
            &info,
            URL,
            Duration::from_secs(600),
            at(1_100),
        );
        assert_eq!(status.state, IntegrationState::Connected);
        assert_eq!(status.details["last_error_message"], "Connection refused");
    }

    #[test]
    fn a_recent_error_with_pending_updates_is_an_error() {
        let info = json!({"url": URL, "pending_update_count": 3,
            "last_error_date": 1_000,
            "last_error_message": "Wrong response from the webhook: 500 Internal Server Error"});
        let status = judge(
            &json!({"id": 1}),
            &info,
            URL,
            Duration::from_secs(600),
            at(1_100),
        );
        assert_eq!(status.state, IntegrationState::Error);
        assert!(status.reason.unwrap().contains("500 Internal Server Error"));
    }
}
