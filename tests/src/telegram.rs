//! Helpers for end-to-end suites against the Telegram Bot API emulator.
