//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers and every migration is applied.
async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    match app.store.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": app.store.backend() })),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "not_ready", "error": { "code": "database_not_ready", "message": "the database is unreachable or not migrated" } }),
                ),
            )
        }
    }
}
