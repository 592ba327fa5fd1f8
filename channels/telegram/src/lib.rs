//! Switchboard's Telegram channel: the [`TelegramAdapter`] (bot token connect, webhook with a
//! per-integration secret, update parsing, sending with failure classification) and, behind the
//! `emulator` feature, a stateful Bot API emulator serving real HTTP on loopback.
//!
//! The adapter registers itself with `inventory` under the name `telegram`; the gateway builds
//! it from the `channels.telegram` config section (see [`config`]).
//!
//! Decisions the gateway relies on:
//! - Webhooks are routed by the per-integration secret (`WebhookAuth::PerIntegrationSecret`),
//!   because a Telegram update never names the bot. `parse_webhook` therefore leaves
//!   `InboundMessage::account_id` empty (`AccountEvent::account_id` `None`); the gateway sets
//!   it from the integration it matched. [`parse_update`] with a filled [`ParseContext`] does
//!   the same for callers that know the bot (and its username, for exact group addressing).
//! - Provider message ids are `{chat_id}:{message_id}` (see [`parse::message_key`]); edits,
//!   reactions, callbacks and deletions get their own stable ids (see `parse::ids`).
//! - Sends return one id per message created; a long text split in several parts returns
//!   several ids, actions and reactions none.

pub mod adapter;
pub mod api;
pub mod config;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod outbound;
pub mod parse;
pub mod requests;
mod send;
pub mod split;
mod status;
pub mod token;

pub use adapter::TelegramAdapter;
pub use config::TelegramConfig;
pub use parse::{ParseContext, parse_update};

switchboard_core::inventory::submit!(switchboard_core::ChannelRegistration {
    name: "telegram",
    build: adapter::build_adapter,
});
