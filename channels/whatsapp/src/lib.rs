//! `switchboard-whatsapp`: the WhatsApp Cloud API channel of Switchboard.
//!
//! The crate holds two things:
//!
//! - [`WhatsAppAdapter`], the [`ChannelAdapter`] that connects a
//!   business through Facebook Login (code exchange, long-lived token, `debug_token`, WABA and
//!   phone-number discovery, `subscribed_apps`), authenticates and parses Meta's webhooks, and
//!   sends messages through `/{phone-number-id}/messages`, classifying failures by Graph error
//!   code. It registers itself under the name `whatsapp` with `inventory`.
//! - `emulator` (cargo feature `emulator`): a stateful Graph API and Facebook Login dialog served
//!   on loopback, used by the tests and the gateway's sandbox mode.
//!
//! The adapter only talks to Meta and translates; the gateway owns routes, OAuth state,
//! storage, queues and retries.

mod adapter;
pub mod config;
mod credentials;
mod discovery;
pub mod graph;
mod oauth;
pub mod send;
mod status;
pub mod webhook;

#[cfg(feature = "emulator")]
pub mod emulator;

use std::sync::Arc;

use switchboard_core::registry::{AdapterServices, ChannelConfig, ChannelRegistration};
use switchboard_core::{ChannelAdapter, error::ConfigError};

pub use adapter::WhatsAppAdapter;
pub use config::WhatsAppConfig;
pub use credentials::{Candidate, PendingChoice, WhatsAppCredentials};

/// The channel's name in URLs and config.
pub const CHANNEL: &str = "whatsapp";

/// Builds the adapter from `channels.whatsapp`; the factory registered with `inventory`.
///
/// # Errors
/// A [`ConfigError`] naming the offending key.
pub fn build_adapter(
    config: &ChannelConfig,
    services: &AdapterServices,
) -> Result<Arc<dyn ChannelAdapter>, ConfigError> {
    let parsed = WhatsAppConfig::from_channel_config(config, services)?;
    Ok(Arc::new(WhatsAppAdapter::new(
        parsed,
        services.http.clone(),
    )))
}

switchboard_core::inventory::submit!(ChannelRegistration {
    name: CHANNEL,
    build: build_adapter,
});
