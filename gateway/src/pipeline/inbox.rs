//! Draining the durable inbox: each leased `webhook_events` row is parsed by its adapter and
//! applied — conversations upserted, messages inserted once, statuses applied monotonically,
//! account events recorded — and then marked `processed`, `unrouted` (authentic but for no
//! active integration) or `quarantined` (not the provider's format; kept for replay).
//!
//! A row whose processing fails on a store error is left leased: the lease runs out and the row
//! is tried again, so nothing acknowledged is ever dropped. A row that keeps failing is
//! quarantined after [`MAX_INBOX_ATTEMPTS`].

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::json;
use switchboard_core::domain::{
    AccountEvent, DeliveryStatus, InboundEvent, InboundMessage, StatusUpdate,
};
use switchboard_core::error::StoreError;
use switchboard_core::registry::Lookup;
use switchboard_core::store::{
    ConversationUpsert, Direction, InboxState, Inserted, NewJob, NewMessage, StatusChange,
    WebhookEvent,
};
use switchboard_core::{ChannelAdapter, Integration};

use super::Pipeline;
use super::outbox::{RESPOND_JOB, conversation_queue};

/// After this many failed processing attempts a row is quarantined instead of retried.
pub const MAX_INBOX_ATTEMPTS: i32 = 5;

/// A leased row after parsing.
pub(super) enum Prepared {
    /// Already finished (quarantined, or for a disabled channel).
    Finished,
    Ready {
        adapter: std::sync::Arc<dyn ChannelAdapter>,
        events: Vec<InboundEvent>,
    },
}

impl Prepared {
    /// Rows whose messages come from the same chat must be applied in order; others may run
    /// concurrently. The key is the first message's account and chat; rows with only statuses
    /// or account events have none.
    pub(super) fn order_key(&self) -> Option<(String, String)> {
        let Self::Ready { events, .. } = self else {
            return None;
        };
        events.iter().find_map(|event| match event {
            InboundEvent::Message(message) => {
                Some((message.account_id.clone(), message.chat.external_id.clone()))
            }
            _ => None,
        })
    }
}

/// What happened to one row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub messages: usize,
    pub duplicates: usize,
    pub statuses: usize,
    pub account_events: usize,
    pub unrouted: usize,
}

impl Pipeline {
    /// Processes one leased inbox row to its final state.
    ///
    /// # Errors
    /// A store failure; the row stays leased and comes back when the lease ends.
    pub async fn process_webhook_event(&self, event: &WebhookEvent) -> Result<Applied, StoreError> {
        match self.prepare(event).await? {
            Prepared::Finished => Ok(Applied::default()),
            Prepared::Ready { adapter, events } => {
                self.apply_events(event, adapter.as_ref(), &events).await
            }
        }
    }

    /// Parses a row. Rows that cannot be applied (disabled channel, a body that does not parse)
    /// are finished here.
    ///
    /// # Errors
    /// A store failure.
    pub(super) async fn prepare(&self, event: &WebhookEvent) -> Result<Prepared, StoreError> {
        let store = self.app.store.as_ref();
        let Lookup::Enabled(adapter) = self.app.registry.lookup(event.channel.as_str()) else {
            let why = "the channel is not enabled in this gateway";
            store
                .finish_webhook_event(event.id, InboxState::Unrouted, Some(why))
                .await?;
            return Ok(Prepared::Finished);
        };
        let known = match event.integration_id {
            Some(id) => store.integration_by_id(id).await?.filter(|i| i.is_active),
            None => None,
        };
        let parsed = match &known {
            Some(integration) => adapter.parse_webhook_for(&event.body, integration),
            None => adapter.parse_webhook(&event.body),
        };
        match parsed {
            Ok(events) => Ok(Prepared::Ready { adapter, events }),
            Err(error) => {
                tracing::warn!(event_id = %event.id, %error, "quarantined a webhook body that does not parse");
                store
                    .finish_webhook_event(event.id, InboxState::Quarantined, Some(&error.0))
                    .await?;
                Ok(Prepared::Finished)
            }
        }
    }

    /// Applies a parsed row's events and finishes the row.
    ///
    /// # Errors
    /// A store failure; the row stays leased and comes back when the lease ends.
    #[tracing::instrument(skip_all, fields(event_id = %event.id, channel = %event.channel))]
    pub(super) async fn apply_events(
        &self,
        event: &WebhookEvent,
        adapter: &dyn ChannelAdapter,
        events: &[InboundEvent],
    ) -> Result<Applied, StoreError> {
        let store = self.app.store.as_ref();
        let mut applied = Applied::default();
        let mut touched = Vec::new();
        for inbound in events {
            let Some(integration) = self.route(event, inbound).await? else {
                applied.unrouted += 1;
                continue;
            };
            // Webhooks routed by the body (WhatsApp) are attributed here, once per integration.
            if event.integration_id.is_none() && !touched.contains(&integration.id) {
                store
                    .touch_webhook(integration.id, event.received_at)
                    .await?;
                touched.push(integration.id);
            }
            self.apply(adapter, &integration, inbound, &mut applied)
                .await?;
        }
        let (state, note) = if applied.unrouted > 0 && applied.unrouted == events.len() {
            (
                InboxState::Unrouted,
                Some("no active integration holds the account named in the body"),
            )
        } else {
            (InboxState::Processed, None)
        };
        store.finish_webhook_event(event.id, state, note).await?;
        Ok(applied)
    }

    /// The active integration an event is for: the one the request was authenticated for (a
    /// per-integration secret), else the one holding the event's account.
    async fn route(
        &self,
        event: &WebhookEvent,
        inbound: &InboundEvent,
    ) -> Result<Option<Integration>, StoreError> {
        let store = self.app.store.as_ref();
        if let Some(id) = event.integration_id {
            return Ok(store.integration_by_id(id).await?.filter(|i| i.is_active));
        }
        match inbound.account_id().filter(|a| !a.is_empty()) {
            Some(account) => store.active_by_account(&event.channel, account).await,
            None => Ok(None),
        }
    }

    async fn apply(
        &self,
        adapter: &dyn ChannelAdapter,
        integration: &Integration,
        inbound: &InboundEvent,
        applied: &mut Applied,
    ) -> Result<(), StoreError> {
        match inbound {
            InboundEvent::Message(message) => {
                if self.apply_message(adapter, integration, message).await? {
                    applied.messages += 1;
                } else {
                    applied.duplicates += 1;
                }
            }
            InboundEvent::Status(status) => {
                self.apply_status(integration, status).await?;
                applied.statuses += 1;
            }
            InboundEvent::Account(event) => {
                self.apply_account_event(integration, event).await?;
                applied.account_events += 1;
            }
        }
        Ok(())
    }

    /// Stores an inbound message once; a new one that wants a reply gets one respond job.
    /// Returns whether the message was new.
    async fn apply_message(
        &self,
        adapter: &dyn ChannelAdapter,
        integration: &Integration,
        message: &InboundMessage,
    ) -> Result<bool, StoreError> {
        let store = self.app.store.as_ref();
        let window = adapter.descriptor().capabilities.reply_window;
        let window_expires_at = window
            .filter(|_| message.kind.is_answerable())
            .and_then(|w| ChronoDuration::from_std(w).ok())
            .map(|w| message.timestamp + w);
        let conversation = store
            .upsert_conversation(ConversationUpsert {
                business_id: integration.business_id,
                integration_id: integration.id,
                channel_type: integration.channel.clone(),
                external_chat_id: message.chat.external_id.clone(),
                contact_name: message
                    .chat
                    .title
                    .clone()
                    .or_else(|| message.sender.name.clone()),
                last_message_at: message.timestamp,
                window_expires_at,
            })
            .await?;
        let inserted = store
            .insert_message(NewMessage {
                conversation_id: conversation.id,
                integration_id: integration.id,
                direction: Direction::Inbound,
                provider_message_id: Some(message.provider_message_id.clone()),
                kind: message.kind.clone(),
                text: message.text.clone(),
                payload: json!({
                    "sender": message.sender,
                    "chat": message.chat,
                    "media": message.media,
                    "reply_to": message.reply_to,
                    "thread_id": message.thread_id,
                    "raw": message.raw,
                }),
                status: DeliveryStatus::Delivered,
                provider_timestamp: Some(message.timestamp),
            })
            .await?;
        let (is_new, message_id) = match inserted {
            Inserted::New(id) => (true, id),
            Inserted::Duplicate(id) => (false, id),
        };
        // Also for a duplicate: a process that died between storing the message and queueing
        // its reply left it unanswered, and this redelivery or re-run must finish the job. The
        // dedupe key keeps it to one reply.
        if message.wants_reply() && self.responder_enabled {
            let enqueued = store
                .enqueue_job(NewJob {
                    kind: RESPOND_JOB.into(),
                    business_id: integration.business_id,
                    integration_id: Some(integration.id),
                    payload: json!({ "message_id": message_id, "conversation_id": conversation.id }),
                    run_at: Utc::now(),
                    dedupe_key: Some(format!("respond:{message_id}")),
                    queue_key: Some(conversation_queue(conversation.id)),
                    max_attempts: self.settings.max_attempts,
                })
                .await;
            match enqueued {
                Ok(_) => self.wake_jobs(),
                Err(StoreError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(is_new)
    }

    async fn apply_status(
        &self,
        integration: &Integration,
        status: &StatusUpdate,
    ) -> Result<(), StoreError> {
        self.adopt_provider_id(integration, status).await?;
        let changed = self
            .app
            .store
            .apply_status(StatusChange {
                integration_id: integration.id,
                provider_message_id: &status.provider_message_id,
                status: status.status,
                at: status.timestamp,
                error_code: status.error_code.as_deref(),
                error_reason: status.error_reason.as_deref(),
            })
            .await?;
        tracing::debug!(changed, status = status.status.as_str(), "status applied");
        Ok(())
    }

    /// A status that echoes the gateway's reference for a message whose provider id is not
    /// known yet (its send timed out, or a worker died mid-send) gives the message that id, so
    /// the status applies and the send is reconciled instead of repeated.
    async fn adopt_provider_id(
        &self,
        integration: &Integration,
        status: &StatusUpdate,
    ) -> Result<(), StoreError> {
        let Some(id) = status
            .reference
            .as_deref()
            .and_then(|r| r.parse::<switchboard_core::MessageId>().ok())
        else {
            return Ok(());
        };
        let store = self.app.store.as_ref();
        let Some(message) = store.message(id).await? else {
            return Ok(());
        };
        let placeholder = message
            .provider_message_id
            .as_deref()
            .is_none_or(|p| p.starts_with("sb:"));
        if message.integration_id == integration.id && placeholder {
            store
                .set_provider_message_id(id, &status.provider_message_id)
                .await?;
            tracing::info!(message_id = %id, "reconciled a send of unknown outcome from its status report");
        }
        Ok(())
    }

    /// Records an account event on the integration; a bot blocked by a user makes that
    /// conversation unreachable (and unblocking reverses it).
    async fn apply_account_event(
        &self,
        integration: &Integration,
        event: &AccountEvent,
    ) -> Result<(), StoreError> {
        let store = self.app.store.as_ref();
        let unreachable = match event.kind.as_str() {
            "bot_blocked" | "bot_removed" => Some(true),
            "bot_unblocked" | "bot_added" => Some(false),
            _ => None,
        };
        if let (Some(unreachable), Some(chat)) = (unreachable, event.chat_id.as_deref())
            && let Some(conversation) = store.conversation_by_chat(integration.id, chat).await?
        {
            store.set_unreachable(conversation.id, unreachable).await?;
        }
        let summary = event.summary.clone().unwrap_or_else(|| event.kind.clone());
        store
            .record_integration_event(integration.id, &event.kind, &summary, &event.raw)
            .await?;
        tracing::info!(integration_id = %integration.id, kind = %event.kind, "account event");
        Ok(())
    }
}
