//! The Telegram channel through the gateway, against the Bot API emulator.
