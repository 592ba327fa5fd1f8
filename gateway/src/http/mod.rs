//! The HTTP edge. Each module owns a `router()`; they are merged here, in one visible place,
//! and the layers are applied once.

pub mod auth;
pub mod channel;
pub mod error;
pub mod health;
pub mod integrations;
pub mod messages;
pub mod oauth;
pub mod session;
pub mod webhooks;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// The whole HTTP API, with `pages` (the dashboard) merged under the same layers.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let max_body = state.web.max_webhook_body_bytes;
    Router::new()
        .merge(health::router())
        .merge(integrations::router())
        .merge(messages::router())
        .merge(session::router())
        .merge(pages)
        .fallback(not_found)
        // Spans carry the path only: query strings hold OAuth codes and states.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
        }))
        // Merged after the tracing layer, so it does not apply here: the webhook route is the
        // hot path, and a span per request cost about a fifth of its throughput (measured,
        // BENCHMARKS.md). Its server errors are still logged, by `ApiError`.
        .merge(webhooks::router(max_body))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The headers every answer carries, where its handler has not set its own: nothing is
/// sniffed, framed, sent as a referrer or kept in a cache, and an answer that is not a page
/// may load nothing.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": {"code": "not_found", "message": "no such endpoint"}}),
        ),
    )
}
