//! Graph API error bodies as Meta writes them, and the bearer-token check every Graph route
//! runs (missing, unknown, expired tokens and missing permissions).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::{State, TokenRecord};

/// A Graph error response: `{"error": {message, type, code, error_subcode?, error_data?, fbtrace_id}}`.
#[derive(Debug, Clone)]
pub(crate) struct GraphFault {
    pub status: StatusCode,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    pub error_type: &'static str,
    pub details: Option<String>,
    pub transient: bool,
}

impl GraphFault {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            subcode: None,
            message: message.into(),
            error_type: "OAuthException",
            details: None,
            transient: false,
        }
    }

    pub fn subcode(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    /// A WhatsApp error: `(#code) title` with `error_data.details`.
    pub fn whatsapp(status: StatusCode, code: i64, title: &str, details: &str) -> Self {
        let mut fault = Self::new(status, code, format!("(#{code}) {title}"));
        fault.details = Some(details.to_owned());
        fault
    }

    pub fn body(&self) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "fbtrace_id": "AZ7hU3mulatorTraceId",
        });
        if let Some(sub) = self.subcode {
            error["error_subcode"] = json!(sub);
        }
        if let Some(details) = &self.details {
            error["error_data"] = json!({"messaging_product": "whatsapp", "details": details});
        }
        if self.transient {
            error["is_transient"] = json!(true);
        }
        json!({ "error": error })
    }

    /// Meta's "object does not exist or no permission" error (code 100, subcode 33).
    pub fn no_object(method: &str, id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            100,
            format!("Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"),
        )
        .subcode(33)
    }

    /// Code 4: the app's call budget is spent.
    pub fn app_rate_limit() -> Self {
        let mut fault = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            4,
            "(#4) Application request limit reached",
        );
        fault.transient = true;
        fault
    }

    /// The transient 5xx Graph answers during incidents.
    pub fn server_error() -> Self {
        let mut fault = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            2,
            "An unexpected error has occurred. Please retry your request later.",
        );
        fault.transient = true;
        fault
    }
}

impl IntoResponse for GraphFault {
    fn into_response(self) -> Response {
        let www = format!(
            "OAuth \"Facebook Platform\" \"invalid_request\" \"{}\"",
            self.message.replace('"', "'")
        );
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Ok(value) = HeaderValue::from_str(&www) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The token of a request: `Authorization: Bearer …` or the `access_token` query parameter.
pub(crate) fn presented_token(headers: &HeaderMap, query_token: Option<&str>) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .map(str::to_owned)
        .or_else(|| query_token.map(str::to_owned))
}

/// The record of a usable user token, or the error Graph answers.
pub(crate) fn check_token(state: &State, token: Option<&str>) -> Result<TokenRecord, GraphFault> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(GraphFault::new(
            StatusCode::BAD_REQUEST,
            2500,
            "An active access token must be used to query information about the current user.",
        ));
    };
    let Some(record) = state.tokens.get(token) else {
        return Err(GraphFault::new(
            StatusCode::BAD_REQUEST,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        ));
    };
    if let Some(expired) = record.expires_at.filter(|e| *e <= state.now()) {
        let when = chrono::DateTime::from_timestamp(expired, 0)
            .map(|t| t.format("%A, %d-%b-%y %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        return Err(GraphFault::new(
            StatusCode::BAD_REQUEST,
            190,
            format!("Error validating access token: Session has expired on {when}."),
        )
        .subcode(463));
    }
    Ok(record.clone())
}

/// `(#10)` when a permission is missing.
pub(crate) fn require_scope(record: &TokenRecord, scope: &str) -> Result<(), GraphFault> {
    if record.grant.scopes.iter().any(|s| s == scope) {
        Ok(())
    } else {
        Err(GraphFault::new(
            StatusCode::FORBIDDEN,
            10,
            format!("(#10) Application does not have permission for this action ({scope})"),
        ))
    }
}
