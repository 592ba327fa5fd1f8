//! Dashboard sessions: `POST /api/session {"api_key"}` answers with an HttpOnly, SameSite=Lax
//! cookie (Secure on https); `DELETE /api/session` clears it.
//!
//! The cookie is stateless, signed by the [`crate::state::SessionKey`], so every instance accepts
//! it. It carries the API key's hash, never the key, and each request still looks the hash up,
//! so revoking the key ends its sessions. State-changing requests that authenticate with the cookie must carry the
//! `X-Switchboard-CSRF: 1` header, which a cross-site form or image cannot send.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use crate::state::{AppState, WebSettings};
use crate::tenants::api_key_hash;

/// The session cookie's name over plain http (tests, the sandbox).
pub const SESSION_COOKIE: &str = "sb_session";
/// Its name over https: the `__Host-` prefix makes browsers refuse it unless it is `Secure`,
/// has `Path=/` and no `Domain`, so a neighbouring subdomain cannot plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-sb_session";
/// The header a cookie-authenticated state-changing request must carry.
pub const CSRF_HEADER: &str = "x-switchboard-csrf";
const SESSION_HOURS: i64 = 12;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/session", post(login).delete(logout))
}

/// The session cookie's value in a request, if any.
#[must_use]
pub fn cookie_value(web: &WebSettings, headers: &HeaderMap) -> Option<String> {
    super::oauth::read_cookie(headers, cookie_name(web))
}

/// The session cookie's name for this gateway's scheme.
#[must_use]
pub fn cookie_name(web: &WebSettings) -> &'static str {
    if web.secure_cookies() {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

fn cookie(app: &AppState, value: String, max_age: cookie::time::Duration) -> HeaderValue {
    let cookie = Cookie::build((cookie_name(&app.web), value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(app.web.secure_cookies())
        .path("/")
        .max_age(max_age)
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("cookie values are header-safe")
}

#[derive(Deserialize)]
struct Login {
    api_key: String,
}

async fn login(
    State(app): State<AppState>,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let Json(login) = body.map_err(ApiError::from)?;
    let hash = api_key_hash(login.api_key.trim());
    let business = app
        .store
        .business_by_api_key(hash)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let value = app.session_key.issue(&hash, SESSION_HOURS);
    let mut response = (StatusCode::OK, Json(json!({ "business_id": business }))).into_response();
    let max_age = cookie::time::Duration::hours(SESSION_HOURS);
    response
        .headers_mut()
        .append(SET_COOKIE, cookie(&app, value, max_age));
    Ok(response)
}

async fn logout(State(app): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().append(
        SET_COOKIE,
        cookie(&app, String::new(), cookie::time::Duration::ZERO),
    );
    response
}
