//! The dashboard served by the gateway (being written).

use axum::Router;

use crate::state::AppState;

/// The dashboard's pages and assets.
pub fn router() -> Router<AppState> {
    Router::new()
}
