//! Tenant authentication: `Authorization: Bearer <api_key>` (keys are stored as SHA-256
//! hashes) or the dashboard session cookie (see [`super::session`]). The [`Tenant`] extractor is how a handler says it needs an authenticated business.

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use switchboard_core::BusinessId;

use super::error::ApiError;
use super::session;
use crate::state::AppState;
use crate::tenants::api_key_hash;

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
                let cookie = session::cookie_value(&state.web, &parts.headers)
                    .ok_or(ApiError::Unauthorized)?;
                let hash = state
                    .session_key
                    .verify(&cookie)
                    .ok_or(ApiError::Unauthorized)?;
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
