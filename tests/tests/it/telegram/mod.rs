//! The Telegram channel through the gateway, against the Bot API emulator: connecting a bot
//! with its token (issue 4) and the message pipeline over Telegram (issue 5).

mod connect;
mod pipeline;
