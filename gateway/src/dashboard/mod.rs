//! The dashboard served by the gateway: server-rendered pages under `/dashboard/…` with small
//! hand-written scripts and a stylesheet compiled into the binary (no build step, no CDN).
//! The scripts talk to the public JSON API with the session cookie; every state-changing call
//! sends `X-Switchboard-CSRF: 1`. Pages other than the log-in page need a valid session and
//! redirect to `/dashboard/login` without one. Every response here carries a strict
//! Content-Security-Policy (scripts and styles from `'self'` only).
//!
//! In sandbox mode the pages carry a banner and the conversations page a "Simulate incoming
//! message" form backed by [`sandbox`]'s endpoint.

mod assets;
mod pages;
pub mod sandbox;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use switchboard_core::BusinessId;

use crate::http::session;
use crate::state::AppState;
use pages::Frame;

/// The policy of every dashboard response: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// The dashboard's pages, assets and sandbox controls.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::to("/dashboard/integrations") }),
        )
        .route(
            "/dashboard/",
            get(|| async { Redirect::to("/dashboard/integrations") }),
        )
        .route("/dashboard/login", get(login))
        .route("/dashboard/integrations", get(integrations))
        .route("/dashboard/conversations", get(conversations))
        .route("/dashboard/assets/{file}", get(assets::serve))
        .route("/dashboard/sandbox/inbound", post(sandbox::simulate))
        .layer(axum::middleware::map_response(security_headers))
}

/// The dashboard's policy; the headers every answer carries are added by the HTTP layer.
async fn security_headers(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

/// The business of a valid session cookie, if any.
async fn session_business(app: &AppState, headers: &HeaderMap) -> Option<BusinessId> {
    let value = session::cookie_value(&app.web, headers)?;
    let hash = app.session_key.verify(&value)?;
    app.store.business_by_api_key(hash).await.ok().flatten()
}

/// The log-in page, or straight to the integrations when the session is still valid.
async fn login(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if session_business(&app, &headers).await.is_some() {
        return Redirect::to("/dashboard/integrations").into_response();
    }
    Html(pages::login(&Frame {
        app: &app,
        signed_in: false,
    }))
    .into_response()
}

async fn integrations(State(app): State<AppState>, headers: HeaderMap) -> Response {
    guarded(&app, &headers, pages::integrations).await
}

async fn conversations(State(app): State<AppState>, headers: HeaderMap) -> Response {
    guarded(&app, &headers, pages::conversations).await
}

async fn guarded(app: &AppState, headers: &HeaderMap, page: fn(&Frame<'_>) -> String) -> Response {
    if session_business(app, headers).await.is_none() {
        return Redirect::to("/dashboard/login").into_response();
    }
    Html(page(&Frame {
        app,
        signed_in: true,
    }))
    .into_response()
}
