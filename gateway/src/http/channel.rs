//! The [`Channel`] extractor: resolves the `{channel}` path segment to an enabled adapter, or
//! answers `404 unknown_channel` / `404 channel_disabled`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use switchboard_core::ChannelAdapter;
use switchboard_core::registry::Lookup;

use super::error::ApiError;
use crate::state::AppState;

/// The enabled adapter named by the request path.
#[derive(Debug, Clone)]
pub struct Channel(pub Arc<dyn ChannelAdapter>);

impl FromRequestParts<AppState> for Channel {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Borrowed from the matched route: no map of owned strings per request.
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::UnknownChannel(String::new()))?;
        let name = params
            .iter()
            .find_map(|(key, value)| (key == "channel").then_some(value))
            .unwrap_or_default();
        match state.registry.lookup(name) {
            Lookup::Enabled(adapter) => Ok(Self(adapter)),
            Lookup::Disabled => Err(ApiError::ChannelDisabled(name.to_owned())),
            Lookup::Unknown => Err(ApiError::UnknownChannel(name.to_owned())),
        }
    }
}

impl Channel {
    #[must_use]
    pub fn name(&self) -> &switchboard_core::ChannelName {
        &self.0.descriptor().name
    }
}
