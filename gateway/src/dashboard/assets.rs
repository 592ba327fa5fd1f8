//! The dashboard's static files, compiled into the binary from `assets/`.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const JS: &str = "text/javascript; charset=utf-8";

/// Every asset: name, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    ("common.js", JS, include_str!("assets/common.js")),
    ("errors.js", JS, include_str!("assets/errors.js")),
    ("login.js", JS, include_str!("assets/login.js")),
    (
        "integrations.js",
        JS,
        include_str!("assets/integrations.js"),
    ),
    (
        "conversations.js",
        JS,
        include_str!("assets/conversations.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
];

/// `GET /dashboard/assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
