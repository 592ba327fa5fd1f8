//! OAuth states (single use) and account choices waiting for the business.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use super::tenants::SecretHash;
use crate::crypto::EncryptedBlob;
use crate::ids::{BusinessId, ChannelName};

/// A pending OAuth state, bound to a business, a channel and a browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthState {
    pub state_hash: SecretHash,
    pub business_id: BusinessId,
    pub channel: ChannelName,
    pub session_hash: SecretHash,
    pub expires_at: DateTime<Utc>,
}

/// An account choice waiting for the business (several phone numbers after OAuth).
#[derive(Debug, Clone)]
pub struct PendingChoice {
    pub business_id: BusinessId,
    pub channel: ChannelName,
    pub pending: EncryptedBlob,
    pub options: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait OAuthStore: Send + Sync {
    async fn put_oauth_state(&self, state: OAuthState) -> StoreResult<()>;
    /// Removes and returns the state if it exists, was issued to the browser session
    /// `session_hash`, and has not expired at `now` (single use: a second take of the same
    /// state finds nothing). A take from another session finds nothing and leaves the state to
    /// the browser that started the flow.
    async fn take_oauth_state(
        &self,
        state_hash: SecretHash,
        session_hash: SecretHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OAuthState>>;
    /// Deletes the states and pending choices that expired before `now`; returns how many.
    async fn delete_expired_oauth(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Replaces the business's pending choice for the channel.
    async fn put_pending_choice(&self, choice: PendingChoice) -> StoreResult<()>;
    async fn pending_choice(
        &self,
        business: BusinessId,
        channel: &ChannelName,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PendingChoice>>;
    async fn clear_pending_choice(
        &self,
        business: BusinessId,
        channel: &ChannelName,
    ) -> StoreResult<()>;
}
