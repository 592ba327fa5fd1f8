//! The OAuth redirect flow's gateway side: the `state` (random, stored hashed,
//! single use, 10 minutes) bound to the tenant and to the browser session through an HttpOnly
//! SameSite=Lax nonce cookie; and the callback outcome page that tells the opener window (only
//! at `frontend_url`'s origin) or redirects to the dashboard.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use cookie::{Cookie, SameSite};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use switchboard_core::crypto::random_token;
use switchboard_core::store::{OAuthState, SecretHash};
use switchboard_core::{BusinessId, ChannelName};

use super::error::ApiResult;
use crate::state::{AppState, WebSettings};

/// How long a state and its cookie live.
pub const STATE_TTL_MINUTES: i64 = 10;
const COOKIE_PATH: &str = "/api/integrations/";

fn cookie_name(channel: &ChannelName) -> String {
    format!("sb_oauth_{channel}")
}

/// A started flow: the `state` for the provider and the cookie for the browser.
#[derive(Debug)]
pub struct Started {
    pub state: SecretString,
    pub set_cookie: HeaderValue,
}

/// Creates and stores a state bound to the business and a fresh browser nonce.
///
/// # Errors
/// A store failure.
pub async fn start(
    app: &AppState,
    business: BusinessId,
    channel: &ChannelName,
) -> ApiResult<Started> {
    let state = random_token(32);
    let nonce = random_token(32);
    app.store
        .put_oauth_state(OAuthState {
            state_hash: SecretHash::of(state.expose_secret().as_bytes()),
            business_id: business,
            channel: channel.clone(),
            session_hash: SecretHash::of(nonce.expose_secret().as_bytes()),
            expires_at: Utc::now() + Duration::minutes(STATE_TTL_MINUTES),
        })
        .await?;
    let cookie = Cookie::build((cookie_name(channel), nonce.expose_secret().to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(app.web.secure_cookies())
        .path(COOKIE_PATH)
        .max_age(cookie::time::Duration::minutes(STATE_TTL_MINUTES))
        .build();
    Ok(Started {
        state,
        set_cookie: header_value(&cookie),
    })
}

/// Consumes the state and checks the browser nonce. `None` for an unknown, reused or expired
/// state, or one bound to another browser session (`invalid_state`).
///
/// # Errors
/// A store failure.
pub async fn finish(
    app: &AppState,
    channel: &ChannelName,
    state: Option<&str>,
    headers: &HeaderMap,
) -> ApiResult<Option<OAuthState>> {
    let Some(state) = state.filter(|s| !s.is_empty() && s.len() <= 512) else {
        return Ok(None);
    };
    // The browser's nonce first: a callback in a browser that did not start the flow must not
    // use up the state of the one that did.
    let Some(nonce) = read_cookie(headers, &cookie_name(channel)) else {
        return Ok(None);
    };
    let stored = app
        .store
        .take_oauth_state(
            SecretHash::of(state.as_bytes()),
            SecretHash::of(nonce.as_bytes()),
            Utc::now(),
        )
        .await?;
    Ok(stored.filter(|stored| stored.channel == *channel))
}

/// The value of the cookie `name` in a request, if it is there once. Two cookies of one name
/// (one planted from a neighbouring subdomain, say) are refused rather than one picked by order.
pub(crate) fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .map(|c| c.value().to_owned());
    let value = values.next()?;
    values.all(|other| other == value).then_some(value)
}

/// A `Set-Cookie` value removing the nonce cookie.
#[must_use]
pub fn clear_cookie(web: &WebSettings, channel: &ChannelName) -> HeaderValue {
    let cookie = Cookie::build((cookie_name(channel), ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(web.secure_cookies())
        .path(COOKIE_PATH)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    header_value(&cookie)
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    HeaderValue::from_str(&cookie.to_string()).expect("cookie values are header-safe")
}

/// What the callback page reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    /// Connected at the provider, but the business must choose an account in the dashboard.
    ChooseAccount,
    Failed {
        code: String,
    },
}

/// The callback outcome page: `200` on success, `400` on failure; its script posts
/// `{"type": "switchboard:oauth", …}` to the opener at `frontend_url`'s origin and closes, or
/// without an opener goes to the dashboard; a `<noscript>` link does the same.
#[must_use]
pub fn outcome_page(web: &WebSettings, channel: &ChannelName, outcome: &Outcome) -> Response {
    let (status, message, query) = match outcome {
        Outcome::Connected => (
            StatusCode::OK,
            json!({"type": "switchboard:oauth", "channel": channel, "ok": true}),
            format!("success=true&channel={channel}"),
        ),
        Outcome::ChooseAccount => (
            StatusCode::OK,
            json!({"type": "switchboard:oauth", "channel": channel, "ok": true, "next": "choose_account"}),
            format!("success=true&channel={channel}&next=choose_account"),
        ),
        Outcome::Failed { code } => (
            StatusCode::BAD_REQUEST,
            json!({"type": "switchboard:oauth", "channel": channel, "ok": false, "error": code}),
            format!("error={code}&channel={channel}"),
        ),
    };
    let redirect = format!("{}?{query}", web.integrations_page());
    let title = match outcome {
        Outcome::Failed { .. } => "Connection failed",
        _ => "Connected",
    };
    let script = format!(
        r#"
(function () {{
  var message = {message};
  var origin = {origin};
  var redirect = {redirect};
  if (window.opener && !window.opener.closed) {{
    window.opener.postMessage(message, origin);
    window.close();
  }} else {{
    window.location.replace(redirect);
  }}
}})();
"#,
        message = script_json(&message),
        origin = script_json(&json!(web.frontend_origin())),
        redirect = script_json(&json!(redirect)),
    );
    let page = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><p>{title}. You can close this window.</p>
<noscript><a href="{href}">Back to the dashboard</a></noscript>
<script>{script}</script></body></html>"#,
        href = html_escape(&redirect),
    );
    // The page's one script is allowed by its hash, and nothing else.
    let policy = format!(
        "default-src 'none'; script-src '{}'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        script_hash(&script)
    );
    let policy = HeaderValue::from_str(&policy).expect("a hash is header-safe");
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (CONTENT_SECURITY_POLICY, policy),
        ],
        page,
    )
        .into_response()
}

/// A CSP source for an inline script: `sha256-` and the base64 of its SHA-256.
fn script_hash(script: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(script.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Adds a `Set-Cookie` header to a response.
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

/// JSON safe to embed in a `<script>` element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
