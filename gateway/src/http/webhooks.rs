//! `/api/webhooks/{channel}`: provider verification (`GET`) and events (`POST`).
//!
//! The `POST` path is the hot path and does exactly this: the adapter authenticates the raw
//! bytes (before any parsing), the bytes are stored durably in the inbox, and only then the
//! provider gets its `200`. Parsing, routing by account and everything after happen in the
//! workers, so a slow database write is the only thing between a provider and its `200`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::json;
use switchboard_core::adapter::WebhookAuth;
use switchboard_core::store::{NewWebhookEvent, SecretHash};

use super::channel::Channel;
use super::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router(max_body_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/api/webhooks/{channel}", get(verify).post(receive))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

/// Provider verification: `200` with the adapter's answer (WhatsApp's raw `hub.challenge`),
/// else `403`.
async fn verify(channel: Channel, RawQuery(query): RawQuery) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    match channel.0.verify_subscription(&pairs) {
        Some(body) => (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "text/plain")], body).into_response(),
        None => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": "verification_failed", "message": "hub.mode or hub.verify_token does not match"}})),
        )
            .into_response(),
    }
}

/// The acknowledgement, the same for every stored webhook.
const STORED: &str = r#"{"ok":true}"#;

/// Authenticate, store the exact bytes, then acknowledge.
///
/// The request is taken apart by hand rather than by extractors: this runs once per provider
/// event, and the `HeaderMap` extractor would copy every header of every request.
async fn receive(State(app): State<AppState>, request: Request) -> ApiResult<Response> {
    let (mut parts, body) = request.into_parts();
    let channel = Channel::from_request_parts(&mut parts, &app).await?;
    let headers = std::mem::take(&mut parts.headers);
    // The body limit (`DefaultBodyLimit`) travels in the request's extensions.
    let body = Bytes::from_request(Request::from_parts(parts, body), &app)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("unreadable_body", rejection.body_text())
            }
        })?;
    let auth = channel
        .0
        .authenticate_webhook(&headers, &body)
        .map_err(|rejection| rejected(&app, &channel, rejection.to_string()))?;
    let integration_id = match auth {
        WebhookAuth::Verified => None,
        WebhookAuth::PerIntegrationSecret(secret) => {
            let hash = SecretHash::of(secret.expose_secret().as_bytes());
            let integration = app
                .store
                .active_by_webhook_secret(channel.name(), hash)
                .await?
                .ok_or_else(|| {
                    rejected(
                        &app,
                        &channel,
                        "secret token matches no connected integration".into(),
                    )
                })?;
            Some(integration.id)
        }
    };
    let received_at = Utc::now();
    app.store
        .insert_webhook_event(NewWebhookEvent {
            channel: channel.name().clone(),
            integration_id,
            body,
            received_at,
        })
        .await?;
    // Only stored webhooks count towards a flood: rejected requests cost the pipeline nothing.
    app.wake.webhook_received();
    app.wake.inbox.notify_one();
    if let Some(id) = integration_id {
        app.store.touch_webhook(id, received_at).await?;
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], STORED).into_response())
}

/// A webhook that failed authentication: counted for the operator's log, answered `401`.
fn rejected(app: &AppState, channel: &Channel, why: String) -> ApiError {
    app.rejections
        .record(channel.name().as_str(), &why, channel.0.webhook_auth_hint());
    ApiError::WebhookUnauthorized(why)
}
