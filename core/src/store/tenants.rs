//! Tenants (businesses) and their API keys, stored by hash.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreResult;
use crate::ids::BusinessId;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// SHA-256 of a secret used for look-ups (API key, OAuth state, session nonce, webhook secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    #[must_use]
    pub fn of(secret: &[u8]) -> Self {
        Self(crate::crypto::sha256(secret))
    }
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_business(&self, name: &str) -> StoreResult<Business>;
    async fn get_business(&self, id: BusinessId) -> StoreResult<Option<Business>>;
    /// Stores an API key by its hash.
    async fn add_api_key(
        &self,
        business: BusinessId,
        key_hash: SecretHash,
        label: &str,
    ) -> StoreResult<()>;
    /// The business owning a (non-revoked) API key.
    async fn business_by_api_key(&self, key_hash: SecretHash) -> StoreResult<Option<BusinessId>>;
}
