//! Channel integrations: one per business and channel, holding the provider account, its
//! encrypted credentials and its state, with the account events the provider reported.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreResult;
use super::tenants::SecretHash;
use crate::crypto::EncryptedBlob;
use crate::domain::{Integration, IntegrationState};
use crate::ids::{BusinessId, ChannelName, IntegrationId};

/// What a successful connect writes.
#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    pub business_id: BusinessId,
    pub channel: ChannelName,
    pub channel_name: Option<String>,
    pub account_id: String,
    pub parent_account_id: Option<String>,
    pub details: serde_json::Value,
    pub credentials: EncryptedBlob,
    pub webhook_secret_hash: Option<SecretHash>,
    pub token_expires_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Creates the business's integration for the channel, or updates and reactivates the one
    /// it already has (re-auth keeps the id and the history).
    ///
    /// Fails with `Conflict(AccountInUse)` when the account is active for another business.
    async fn save_connection(&self, record: ConnectionRecord) -> StoreResult<Integration>;
    /// The business's integration for the channel (active or the latest inactive one).
    async fn integration_for(
        &self,
        business: BusinessId,
        channel: &ChannelName,
    ) -> StoreResult<Option<Integration>>;
    async fn integration_by_id(&self, id: IntegrationId) -> StoreResult<Option<Integration>>;
    /// The integrations with these ids that exist, in no particular order.
    async fn integrations_by_ids(&self, ids: &[IntegrationId]) -> StoreResult<Vec<Integration>>;
    async fn list_integrations(&self, business: BusinessId) -> StoreResult<Vec<Integration>>;
    /// The active integration holding a provider account (routing by phone number id / bot id).
    async fn active_by_account(
        &self,
        channel: &ChannelName,
        account_id: &str,
    ) -> StoreResult<Option<Integration>>;
    /// The active integrations of `channel` holding these accounts, in no particular order
    /// ([`IntegrationStore::active_by_account`] for many accounts at once).
    async fn active_by_accounts(
        &self,
        channel: &ChannelName,
        accounts: &[String],
    ) -> StoreResult<Vec<Integration>>;
    /// The active integration whose webhook secret hashes to `hash`.
    async fn active_by_webhook_secret(
        &self,
        channel: &ChannelName,
        hash: SecretHash,
    ) -> StoreResult<Option<Integration>>;
    /// The encrypted credentials of an active integration.
    async fn credentials(&self, id: IntegrationId) -> StoreResult<Option<EncryptedBlob>>;
    /// The encrypted credentials of those of these integrations that are active and hold
    /// some ([`IntegrationStore::credentials`] for many integrations at once), in no
    /// particular order.
    async fn credentials_by_ids(
        &self,
        ids: &[IntegrationId],
    ) -> StoreResult<Vec<(IntegrationId, EncryptedBlob)>>;
    /// Deactivates, wipes credentials and the webhook secret, state `not_connected`.
    async fn deactivate(&self, id: IntegrationId, last_error: Option<&str>) -> StoreResult<()>;
    async fn set_state(
        &self,
        id: IntegrationId,
        state: IntegrationState,
        reason: Option<&str>,
    ) -> StoreResult<()>;
    async fn set_last_error(&self, id: IntegrationId, error: Option<&str>) -> StoreResult<()>;
    async fn set_token_expiry(
        &self,
        id: IntegrationId,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    async fn touch_webhook(&self, id: IntegrationId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Records something the provider said about the account (bot blocked, template status,
    /// quality rating, webhook-level error).
    async fn record_integration_event(
        &self,
        id: IntegrationId,
        kind: &str,
        summary: &str,
        payload: &serde_json::Value,
    ) -> StoreResult<()>;
    /// The integration's most recent account events, newest first.
    async fn integration_events(
        &self,
        id: IntegrationId,
        limit: u32,
    ) -> StoreResult<Vec<IntegrationEvent>>;
    /// Active, connected integrations whose token expires before `before`.
    async fn expiring_before(&self, before: DateTime<Utc>) -> StoreResult<Vec<Integration>>;
}

/// An account event recorded on an integration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntegrationEvent {
    pub kind: String,
    pub summary: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}
