//! Conversations: one per integration and external chat.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Page, StoreResult};
use crate::ids::{BusinessId, ChannelName, ConversationId, IntegrationId};

/// A conversation with one external chat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub business_id: BusinessId,
    pub integration_id: IntegrationId,
    pub channel_type: ChannelName,
    pub external_chat_id: String,
    pub contact_name: Option<String>,
    pub last_message_at: Option<DateTime<Utc>>,
    /// When the provider's reply window closes (WhatsApp: 24 h after the last inbound).
    pub window_expires_at: Option<DateTime<Utc>>,
    pub unreachable: bool,
    pub created_at: DateTime<Utc>,
}

/// Upsert of a conversation when a message arrives or is sent.
#[derive(Debug, Clone)]
pub struct ConversationUpsert {
    pub business_id: BusinessId,
    pub integration_id: IntegrationId,
    pub channel_type: ChannelName,
    pub external_chat_id: String,
    pub contact_name: Option<String>,
    pub last_message_at: DateTime<Utc>,
    /// A new window end, when this message opens or extends one.
    pub window_expires_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn upsert_conversation(&self, upsert: ConversationUpsert) -> StoreResult<Conversation>;
    async fn conversation(
        &self,
        business: BusinessId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>>;
    /// The conversations with these (business, id) pairs that exist, in no particular order
    /// ([`ConversationStore::conversation`] for many at once).
    async fn conversations_by_ids(
        &self,
        ids: &[(BusinessId, ConversationId)],
    ) -> StoreResult<Vec<Conversation>>;
    /// The conversation of an integration with an external chat, if any.
    async fn conversation_by_chat(
        &self,
        integration: IntegrationId,
        external_chat_id: &str,
    ) -> StoreResult<Option<Conversation>>;
    /// Newest activity first.
    async fn list_conversations(
        &self,
        business: BusinessId,
        page: Page<ConversationId>,
    ) -> StoreResult<Vec<Conversation>>;
    async fn set_unreachable(&self, id: ConversationId, unreachable: bool) -> StoreResult<()>;
}
