//! The one place where errors become HTTP responses: a status and a stable snake_case `code`
//! in `{"error": {"code", "message"}}`. Internal details of 5xx errors are logged here, once,
//! and never sent.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_core::error::{Conflict, ConnectError, ConnectErrorKind, StoreError};

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    #[error("unknown channel `{0}`")]
    UnknownChannel(String),
    #[error("channel `{0}` is disabled")]
    ChannelDisabled(String),
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("webhook authentication failed: {0}")]
    WebhookUnauthorized(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("database unavailable")]
    Unavailable(#[source] StoreError),
    /// Anything else: logged, answered as a bare 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound {
                code: "not_found",
                message: "no such resource".into(),
            },
            StoreError::Conflict(Conflict::AccountInUse) => Self::Conflict {
                code: "account_in_use",
                message: "this account is connected to another business".into(),
            },
            StoreError::Conflict(other) => Self::Conflict {
                code: "conflict",
                message: format!("conflicting write ({other:?})"),
            },
            StoreError::Unavailable(_) => Self::Unavailable(error),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A JSON body that could not be read: too large (`413`, the API's bodies are capped at axum's
/// 2 MB default) or not the expected JSON (`400 invalid_body`).
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::bad_request("invalid_body", rejection.body_text())
        }
    }
}

/// A query string that does not fit the endpoint (`400 invalid_query`).
impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}

/// `Query` with the API's JSON error shape on a rejection (axum's own answers plain text).
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid API key (Authorization: Bearer …) or dashboard session is required".into(),
            ),
            Self::UnknownChannel(name) => (
                StatusCode::NOT_FOUND,
                "unknown_channel",
                format!("no channel is called `{name}`"),
            ),
            Self::ChannelDisabled(name) => (
                StatusCode::NOT_FOUND,
                "channel_disabled",
                format!("the `{name}` channel is disabled in this gateway's configuration"),
            ),
            Self::NotFound { code, message } => (StatusCode::NOT_FOUND, code, message.clone()),
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            Self::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            Self::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message.clone()),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than this gateway accepts".into(),
            ),
            Self::WebhookUnauthorized(why) => {
                (StatusCode::UNAUTHORIZED, "invalid_signature", why.clone())
            }
            Self::Connect(error) => (
                connect_status(error.kind),
                error.code,
                error.message.clone(),
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; try again shortly".into(),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the gateway failed; the error was logged".into(),
            ),
        }
    }
}

/// The HTTP status for a connect failure.
#[must_use]
pub fn connect_status(kind: ConnectErrorKind) -> StatusCode {
    match kind {
        ConnectErrorKind::Rejected => StatusCode::BAD_REQUEST,
        ConnectErrorKind::Conflict => StatusCode::CONFLICT,
        ConnectErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ConnectErrorKind::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
        ConnectErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, code, "request failed");
        }
        (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
