//! Messages of a conversation, deduplicated by provider id, with their delivery status.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Page, StoreResult};
use crate::domain::{DeliveryStatus, MessageKind};
use crate::ids::{ConversationId, IntegrationId, MessageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: ConversationId,
    pub integration_id: IntegrationId,
    pub direction: Direction,
    pub provider_message_id: Option<String>,
    pub kind: MessageKind,
    pub text: Option<String>,
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    pub provider_timestamp: Option<DateTime<Utc>>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub integration_id: IntegrationId,
    pub direction: Direction,
    pub provider_message_id: Option<String>,
    #[serde(serialize_with = "serialize_kind")]
    pub kind: MessageKind,
    pub text: Option<String>,
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    pub status_at: Option<DateTime<Utc>>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub provider_timestamp: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn serialize_kind<S: serde::Serializer>(kind: &MessageKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// Whether an insert created a row or found the provider id already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New(MessageId),
    Duplicate(MessageId),
}

/// A status change reported by the provider.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    pub integration_id: IntegrationId,
    pub provider_message_id: &'a str,
    pub status: DeliveryStatus,
    pub at: DateTime<Utc>,
    pub error_code: Option<&'a str>,
    pub error_reason: Option<&'a str>,
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Inserts a message once per (integration, provider id); a repeat returns the first id.
    async fn insert_message(&self, message: NewMessage) -> StoreResult<Inserted>;
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// The messages with these ids that exist, in no particular order
    /// ([`MessageStore::message`] for many at once).
    async fn messages_by_ids(&self, ids: &[MessageId]) -> StoreResult<Vec<Message>>;
    /// Newest first.
    async fn list_messages(
        &self,
        conversation: ConversationId,
        page: Page<MessageId>,
    ) -> StoreResult<Vec<Message>>;
    /// Sets the provider id once a send is accepted.
    async fn set_provider_message_id(&self, id: MessageId, provider_id: &str) -> StoreResult<()>;
    /// Applies a status monotonically: only a later step (or `failed`) replaces the current
    /// one, ordered by progress; returns whether the row changed.
    async fn apply_status(&self, change: StatusChange<'_>) -> StoreResult<bool>;
    /// Sets a status directly for gateway-side outcomes (queued → uncertain, failed).
    async fn set_message_status(
        &self,
        id: MessageId,
        status: DeliveryStatus,
        error_code: Option<&str>,
        error_reason: Option<&str>,
    ) -> StoreResult<()>;
}
