//! The durable webhook inbox: raw bodies stored before they are acknowledged, leased to
//! workers for processing.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreResult;
use crate::ids::{ChannelName, EventId, IntegrationId};

/// Processing state of an inbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// Stored, not processed yet.
    Pending,
    /// Parsed and applied.
    Processed,
    /// Authentic but could not be parsed; kept for replay.
    Quarantined,
    /// Authentic but for no active integration.
    Unrouted,
}

impl InboxState {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Quarantined => "quarantined",
            Self::Unrouted => "unrouted",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "processed" => Self::Processed,
            "quarantined" => Self::Quarantined,
            "unrouted" => Self::Unrouted,
            _ => return None,
        })
    }
}

/// A webhook body to store: exactly the bytes received.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent {
    pub channel: ChannelName,
    /// Known at receipt when the request was routed by a per-integration secret.
    pub integration_id: Option<IntegrationId>,
    pub body: bytes::Bytes,
    pub received_at: DateTime<Utc>,
}

/// A stored webhook body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: EventId,
    pub channel: ChannelName,
    pub integration_id: Option<IntegrationId>,
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
    pub state: InboxState,
    pub attempts: i32,
    pub error: Option<String>,
}

#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Durably stores a webhook body; returns once it is committed.
    async fn insert_webhook_event(&self, event: NewWebhookEvent) -> StoreResult<EventId>;
    async fn webhook_event(&self, id: EventId) -> StoreResult<Option<WebhookEvent>>;
    /// Leases up to `limit` pending events (oldest first) for `lease`; a crashed worker's
    /// events come back when the lease ends.
    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>>;
    /// Records the outcome of processing an event.
    async fn finish_webhook_event(
        &self,
        id: EventId,
        state: InboxState,
        error: Option<&str>,
    ) -> StoreResult<()>;
    /// Events in a state, newest first (the quarantine list), optionally only one channel's.
    async fn webhook_events_in_state(
        &self,
        state: InboxState,
        limit: u32,
    ) -> StoreResult<Vec<WebhookEvent>>;
    /// Puts a quarantined or unrouted event back to pending.
    async fn requeue_webhook_event(&self, id: EventId) -> StoreResult<bool>;
    /// Deletes up to `limit` processed events received before `before`, oldest first; returns
    /// how many. Events in any other state are kept whatever their age: pending ones are still
    /// to be processed, quarantined and unrouted ones are listed for an operator to act on.
    async fn delete_processed_webhook_events(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64>;
}
