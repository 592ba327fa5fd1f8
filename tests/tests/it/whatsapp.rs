//! The WhatsApp channel through the gateway, against the Graph API emulator.
