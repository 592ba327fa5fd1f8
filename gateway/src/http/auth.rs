//! Tenant authentication: `Authorization: Bearer <api_key>` (keys are stored as SHA-256
//! hashes) or the dashboard session cookie (see [`super::session`]). The [`Tenant`] extractor is how a handler says it needs an authenticated business.

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use switchboard_core::BusinessId;
use switchboard_core::crypto::random_token;
use switchboard_core::store::SecretHash;

use super::error::ApiError;
use super::session;
use crate::state::AppState;

/// Prefix of every API key, so leaked keys are recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "sbk_";

/// A new API key: 32 random bytes, URL-safe.
#[must_use]
pub fn generate_api_key() -> SecretString {
    SecretString::from(format!(
        "{API_KEY_PREFIX}{}",
        random_token(32).expose_secret()
    ))
}

/// The hash under which an API key is stored.
#[must_use]
pub fn api_key_hash(key: &str) -> SecretHash {
    SecretHash::of(key.as_bytes())
}

/// The authenticated business of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant(pub BusinessId);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let hash = match bearer(parts) {
            Some(key) => api_key_hash(key),
            None => {
                let cookie = session::cookie_value(&parts.headers).ok_or(ApiError::Unauthorized)?;
                let hash =
                    session::verify(&state.session_key, &cookie).ok_or(ApiError::Unauthorized)?;
                // A cookie rides along on cross-site requests; a custom header cannot.
                let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
                if !safe && !parts.headers.contains_key(session::CSRF_HEADER) {
                    return Err(ApiError::Forbidden {
                        code: "csrf_header_missing",
                        message: format!(
                            "requests authenticated by the dashboard session must send `{}: 1`",
                            session::CSRF_HEADER
                        ),
                    });
                }
                hash
            }
        };
        let business = state
            .store
            .business_by_api_key(hash)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Self(business))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(key.trim())
        .filter(|k| !k.is_empty())
}
