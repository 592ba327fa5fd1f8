//! `switchboard-core`: the vocabulary every other Switchboard crate speaks.
//!
//! It holds the typed identifiers and normalized domain types (what an inbound message, a
//! status update or an outbound message *is*, independent of any provider), the
//! [`ChannelAdapter`] trait that each channel crate implements, the `inventory`-based adapter
//! registration type, the capability-shaped store traits the gateway's database backends
//! implement, and the crypto helpers (credential encryption, hashing, constant-time checks).
//!
//! It deliberately depends on no web framework and no database driver: adapters and the
//! gateway meet here and nowhere else.

pub mod adapter;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod ids;
pub mod registry;
pub mod store;

pub use adapter::{ChannelAdapter, ChannelDescriptor, ConnectKind};
pub use domain::Integration;
pub use error::{AdapterError, StoreError};
pub use ids::{BusinessId, ChannelName, ConversationId, EventId, IntegrationId, JobId, MessageId};
pub use registry::{AdapterServices, ChannelRegistration, Registry, RegistryError};

// Re-exported so that channel crates register themselves with the exact same `inventory`
// version the gateway collects with.
pub use inventory;
