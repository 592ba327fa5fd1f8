//! Dashboard sessions: `POST /api/session {"api_key"}` answers with an HttpOnly, SameSite=Lax
//! cookie (Secure on https); `DELETE /api/session` clears it.
//!
//! The cookie is stateless: `<key hash hex>.<expiry unix>.<mac hex>`, MAC'd with a key derived
//! from `security.encryption_key`, so every instance accepts it. It carries the API key's hash,
//! never the key, and each request still looks the hash up, so revoking the key ends its
//! sessions. State-changing requests that authenticate with the cookie must carry the
//! `X-Switchboard-CSRF: 1` header, which a cross-site form or image cannot send.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use cookie::{Cookie, SameSite};
use secrecy::{ExposeSecret, SecretBox};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::crypto::{constant_time_eq, hmac_sha256};
use switchboard_core::store::SecretHash;

use super::auth::api_key_hash;
use super::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "sb_session";
/// The header a cookie-authenticated state-changing request must carry.
pub const CSRF_HEADER: &str = "x-switchboard-csrf";
const SESSION_HOURS: i64 = 12;

/// The MAC key of session cookies.
pub struct SessionKey(pub SecretBox<[u8; 32]>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([REDACTED])")
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/session", post(login).delete(logout))
}

fn mac(key: &SessionKey, key_hash: &SecretHash, expires: i64) -> [u8; 32] {
    let message = format!("{}.{expires}", hex::encode(key_hash.0));
    hmac_sha256(key.0.expose_secret(), message.as_bytes())
}

/// The cookie value for a key hash, valid for [`SESSION_HOURS`].
fn issue(key: &SessionKey, key_hash: &SecretHash) -> String {
    let expires = (Utc::now() + chrono::Duration::hours(SESSION_HOURS)).timestamp();
    format!(
        "{}.{expires}.{}",
        hex::encode(key_hash.0),
        hex::encode(mac(key, key_hash, expires))
    )
}

/// The API key hash a valid, unexpired cookie value carries.
#[must_use]
pub fn verify(key: &SessionKey, value: &str) -> Option<SecretHash> {
    let mut parts = value.split('.');
    let (hash, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let hash: [u8; 32] = hex::decode(hash).ok()?.try_into().ok()?;
    let expires: i64 = expires.parse().ok()?;
    let tag = hex::decode(tag).ok()?;
    let hash = SecretHash(hash);
    let valid =
        constant_time_eq(&mac(key, &hash, expires), &tag) && expires > Utc::now().timestamp();
    valid.then_some(hash)
}

/// The session cookie's value in a request, if any.
#[must_use]
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    super::oauth::read_cookie(headers, SESSION_COOKIE)
}

fn cookie(app: &AppState, value: String, max_age: cookie::time::Duration) -> HeaderValue {
    let cookie = Cookie::build((SESSION_COOKIE, value))
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
    let Json(login) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let hash = api_key_hash(login.api_key.trim());
    let business = app
        .store
        .business_by_api_key(hash)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let value = issue(&app.session_key, &hash);
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
