//! The WhatsApp channel through the gateway, against the Graph API emulator: the OAuth connect
//! flow and its failure codes, status and disconnect (`connect`), Meta's webhook verification
//! and signatures (`webhooks`), and messages in and out through the pipeline (`pipeline`).

mod connect;
mod pipeline;
mod webhooks;
