//! Helpers for end-to-end suites against the WhatsApp Graph API emulator.
