//! Executing a send plan and classifying Telegram's failures.
//!
//! Classification reads the error envelope (`error_code`, `description`, `parameters`):
//! 429 → retry after `retry_after`; 401/404 → the token is gone; 403 → the chat is unreachable
//! (blocked, kicked, deactivated); 400 with `migrate_to_chat_id` → the group moved; other 4xx →
//! permanent; 5xx and requests that never left → retry; no answer after sending → uncertain.

use std::time::Duration;

use serde_json::Value;
use switchboard_core::domain::{FailureClass, OutboundMessage, SendFailure, SendReceipt};

use crate::api::{ApiError, BotApi};
use crate::outbound::plan;
use crate::parse::ids_of_sent;
use crate::requests::ApiRequest;
use crate::token::BotToken;

/// Longest `retry_after` waited out in-line between the parts of a split text, so that a part
/// already sent is not sent again by a retry of the whole message.
const INLINE_WAIT_LIMIT: Duration = Duration::from_secs(5);

/// Maps a Bot API error to a send failure.
#[must_use]
pub fn classify(error: &ApiError) -> SendFailure {
    match error {
        ApiError::Api {
            code,
            description,
            retry_after,
            migrate_to_chat_id,
        } => classify_envelope(*code, description, *retry_after, *migrate_to_chat_id),
        ApiError::NotSent(why) => SendFailure::new(
            FailureClass::Retry {
                after: None,
                per_recipient: false,
            },
            "network",
            format!("could not reach Telegram: {why}"),
        ),
        ApiError::TimedOut => SendFailure::new(
            FailureClass::Uncertain,
            "timeout",
            "Telegram did not answer; the message may or may not have been sent",
        ),
        ApiError::BadResponse { status } if *status >= 500 => SendFailure::new(
            FailureClass::Retry {
                after: None,
                per_recipient: false,
            },
            status.to_string(),
            format!("Telegram answered HTTP {status} without its error body"),
        ),
        ApiError::BadResponse { status } => SendFailure::new(
            FailureClass::Uncertain,
            "bad_response",
            format!("unexpected answer from Telegram (HTTP {status})"),
        ),
    }
}

fn classify_envelope(
    code: i64,
    description: &str,
    retry_after: Option<u64>,
    migrate_to: Option<i64>,
) -> SendFailure {
    let class = match (code, migrate_to) {
        (_, Some(to)) => FailureClass::ChatMigrated { to: to.to_string() },
        (429, _) => FailureClass::Retry {
            after: Some(Duration::from_secs(retry_after.unwrap_or(1))),
            per_recipient: false,
        },
        (401 | 404, _) => FailureClass::NeedsReauth,
        (403, _) => FailureClass::Unreachable,
        (500.., _) => FailureClass::Retry {
            after: None,
            per_recipient: false,
        },
        _ => FailureClass::Permanent,
    };
    SendFailure::new(class, code.to_string(), description)
}

/// Sends every request of the plan in order and collects the ids of the messages created.
pub(crate) async fn execute(
    api: &BotApi,
    token: &BotToken,
    message: &OutboundMessage,
) -> Result<SendReceipt, SendFailure> {
    let requests = plan(message)?;
    let total = requests.len();
    let mut ids = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        match call_part(api, token, request, index > 0).await {
            Ok(result) => ids.extend(ids_of_sent(&result)),
            Err(error) if index == 0 => return Err(classify(&error)),
            Err(error) => return Err(partial_failure(&error, index, total, &ids)),
        }
    }
    Ok(SendReceipt {
        provider_message_ids: ids,
    })
}

/// One call; a later part of a split text waits out a short 429 once instead of failing.
async fn call_part(
    api: &BotApi,
    token: &BotToken,
    request: &ApiRequest,
    may_wait: bool,
) -> Result<Value, ApiError> {
    match api.call(token, request).await {
        Err(ApiError::Api {
            code: 429,
            retry_after,
            ..
        }) if may_wait => {
            let wait = Duration::from_secs(retry_after.unwrap_or(1));
            if wait > INLINE_WAIT_LIMIT {
                return Err(too_many(retry_after));
            }
            tokio::time::sleep(wait).await;
            api.call(token, request).await
        }
        other => other,
    }
}

fn too_many(retry_after: Option<u64>) -> ApiError {
    ApiError::Api {
        code: 429,
        description: "Too Many Requests".into(),
        retry_after,
        migrate_to_chat_id: None,
    }
}

/// A later part failed after earlier parts went out. Retrying the whole message would repeat
/// them, so a retryable failure becomes `uncertain`; the reason lists what was sent.
fn partial_failure(error: &ApiError, index: usize, total: usize, sent: &[String]) -> SendFailure {
    let mut failure = classify(error);
    if matches!(failure.class, FailureClass::Retry { .. }) {
        failure.class = FailureClass::Uncertain;
    }
    failure.reason = format!(
        "{} (part {} of {total} failed; parts already sent: {})",
        failure.reason,
        index + 1,
        sent.join(", ")
    );
    failure
}
