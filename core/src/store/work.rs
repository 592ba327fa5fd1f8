//! Units of work: the writes of a whole batch of inbox rows or jobs, committed together.
//!
//! The pipeline's throughput is bound by round trips and durable commits, not by CPU: a unit
//! lets a backend apply a batch with a few set-based statements and one commit. The phases run
//! in a fixed order (the fields of [`Work`], top to bottom), so a unit means the same on every
//! backend whatever order its parts were added in.
//!
//! Every part is idempotent: a unit that is applied again (a worker died before it knew the
//! outcome) changes nothing that it did not change the first time, apart from account events,
//! which are records. The default [`Store::commit`](super::Store::commit) applies the parts one
//! by one (a crash half-way is then repaired by the re-run); PostgreSQL applies a unit in one
//! transaction.

use chrono::{DateTime, Utc};

use super::{ConversationUpsert, InboxState, Inserted, NewJob, NewMessage};
use crate::domain::{DeliveryStatus, MessageKind};
use crate::ids::{ConversationId, EventId, IntegrationId, JobId, MessageId};

/// Builds the job that follows a stored message, from the message's id and conversation
/// (for a repeat, the ids of the message stored first). Give the job a dedupe key derived from
/// the message id: the follow-up is ensured for repeats too, and the key keeps it to one.
#[derive(Clone)]
pub struct FollowUp(std::sync::Arc<dyn Fn(MessageId, ConversationId) -> NewJob + Send + Sync>);

impl FollowUp {
    pub fn new(
        build: impl Fn(MessageId, ConversationId) -> NewJob + Send + Sync + 'static,
    ) -> Self {
        Self(std::sync::Arc::new(build))
    }

    #[must_use]
    pub fn job(&self, message: MessageId, conversation: ConversationId) -> NewJob {
        (self.0)(message, conversation)
    }
}

impl std::fmt::Debug for FollowUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FollowUp")
    }
}

/// An inbound message: its conversation is upserted, the message stored once per
/// (integration, provider id) with status `delivered`, and its follow-up ensured.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub conversation: ConversationUpsert,
    pub provider_message_id: String,
    pub kind: MessageKind,
    pub text: Option<String>,
    pub payload: serde_json::Value,
    pub provider_timestamp: DateTime<Utc>,
    pub follow_up: Option<FollowUp>,
    /// Replies decided already (a local responder), queued into the arrival's conversation
    /// when the arrival is new, and only then: a repeat of a stored message has its replies
    /// already. That is exact only where the arrival and its replies commit together (see
    /// [`Store::atomic_units`](super::Store::atomic_units)); the part-by-part default loses
    /// them if it is cut off between the two.
    pub replies: Vec<ReplyDraft>,
}

/// An outbound message into the conversation of the arrival it answers, queued with status
/// `queued` under a local id (`sb:…`) that makes it exist once.
#[derive(Debug, Clone)]
pub struct ReplyDraft {
    pub local_id: String,
    pub kind: MessageKind,
    pub text: Option<String>,
    pub payload: serde_json::Value,
    pub follow_up: Option<FollowUp>,
}

impl ReplyDraft {
    /// The message to store, once the conversation is known.
    #[must_use]
    pub fn message(&self, conversation: ConversationId, integration: IntegrationId) -> NewMessage {
        NewMessage {
            conversation_id: conversation,
            integration_id: integration,
            direction: super::Direction::Outbound,
            provider_message_id: Some(self.local_id.clone()),
            kind: self.kind.clone(),
            text: self.text.clone(),
            payload: self.payload.clone(),
            status: DeliveryStatus::Queued,
            provider_timestamp: None,
        }
    }
}

/// A message into a known conversation (an outbound message under a local key), stored once
/// per (integration, provider id), and its follow-up ensured.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message: NewMessage,
    pub follow_up: Option<FollowUp>,
}

/// A status reported by the provider, applied monotonically (see
/// [`ConversationStore::apply_status`](super::ConversationStore::apply_status)).
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub integration_id: IntegrationId,
    pub provider_message_id: String,
    pub status: DeliveryStatus,
    pub at: DateTime<Utc>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    /// The gateway's own message id, echoed by the provider. A message of this integration
    /// that has no provider id yet (its send timed out, or a worker died mid-send) adopts the
    /// reported one first, unless another message holds it.
    pub reference: Option<MessageId>,
}

/// A status set by the gateway itself (queued → uncertain, failed), not monotonic.
#[derive(Debug, Clone)]
pub struct StatusSet {
    pub message_id: MessageId,
    pub status: DeliveryStatus,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
}

/// A send the provider accepted: the message takes the provider's id (unless another message
/// of the integration holds it) and becomes `sent` unless a later status is already known.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message_id: MessageId,
    pub provider_message_id: Option<String>,
}

/// An account event recorded on its integration; `reachable` marks the conversation with
/// that chat (if any) unreachable (`Some(false)`) or reachable again (`Some(true)`).
#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub integration_id: IntegrationId,
    pub kind: String,
    pub summary: String,
    pub raw: serde_json::Value,
    pub chat: Option<String>,
    pub reachable: Option<bool>,
}

/// What becomes of a claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    Complete,
    /// Back to pending at the time, recording the error.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Back to pending at the time without counting the attempt (running jobs only).
    Postpone {
        at: DateTime<Utc>,
    },
    /// Held until the integration is re-authorised.
    Hold {
        error: String,
    },
    Kill {
        error: String,
    },
}

/// Everything a batch writes, applied phase by phase in the order of the fields.
#[derive(Debug, Default, Clone)]
pub struct Work {
    /// Webhooks attributed to integrations (`last_webhook_at` moves forward only); first, so
    /// that nothing a webhook brought is visible before its arrival time is.
    pub webhook_touches: Vec<(IntegrationId, DateTime<Utc>)>,
    pub arrivals: Vec<Arrival>,
    pub outgoing: Vec<Outgoing>,
    pub statuses: Vec<StatusReport>,
    pub status_sets: Vec<StatusSet>,
    pub accepted: Vec<Accepted>,
    pub account_events: Vec<AccountRecord>,
    pub job_ends: Vec<(JobId, JobEnd)>,
    /// Inbox rows finished, last of all.
    pub inbox: Vec<(EventId, InboxState, Option<String>)>,
}

impl Work {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.arrivals.is_empty()
            && self.outgoing.is_empty()
            && self.statuses.is_empty()
            && self.status_sets.is_empty()
            && self.accepted.is_empty()
            && self.account_events.is_empty()
            && self.webhook_touches.is_empty()
            && self.job_ends.is_empty()
            && self.inbox.is_empty()
    }

    /// Moves every part of `other` behind this unit's parts of the same phase.
    pub fn append(&mut self, mut other: Self) {
        self.arrivals.append(&mut other.arrivals);
        self.outgoing.append(&mut other.outgoing);
        self.statuses.append(&mut other.statuses);
        self.status_sets.append(&mut other.status_sets);
        self.accepted.append(&mut other.accepted);
        self.account_events.append(&mut other.account_events);
        self.webhook_touches.append(&mut other.webhook_touches);
        self.job_ends.append(&mut other.job_ends);
        self.inbox.append(&mut other.inbox);
    }
}

/// A message a unit stored or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub message: Inserted,
    pub conversation_id: ConversationId,
}

impl Stored {
    #[must_use]
    pub const fn message_id(&self) -> MessageId {
        match self.message {
            Inserted::New(id) | Inserted::Duplicate(id) => id,
        }
    }
}

/// What a committed unit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// One per [`Work::arrivals`], in order.
    pub arrivals: Vec<Stored>,
    /// One per [`Arrival::replies`] of each new arrival, arrival by arrival, in order.
    pub replies: Vec<Stored>,
    /// One per [`Work::outgoing`], in order.
    pub outgoing: Vec<Stored>,
    /// Follow-up jobs created (not found already queued).
    pub jobs_created: u64,
}

/// Applies a unit part by part through the other store methods: what
/// [`Store::commit`](super::Store::commit) does unless a backend does better. Not atomic; every
/// part is idempotent and the inbox rows are finished last, so a unit cut short by a crash is
/// completed by its re-run.
///
/// # Errors
/// The first store failure; the parts before it stay applied.
pub async fn commit_part_by_part<S: super::Store + ?Sized>(
    store: &S,
    work: Work,
) -> super::StoreResult<Committed> {
    use super::Direction;
    let mut committed = Committed::default();
    for (integration, at) in &work.webhook_touches {
        match store.touch_webhook(*integration, *at).await {
            Ok(()) | Err(crate::StoreError::NotFound) => {}
            Err(error) => return Err(error),
        }
    }
    for arrival in work.arrivals {
        let conversation = store.upsert_conversation(arrival.conversation).await?;
        let message = store
            .insert_message(NewMessage {
                conversation_id: conversation.id,
                integration_id: conversation.integration_id,
                direction: Direction::Inbound,
                provider_message_id: Some(arrival.provider_message_id),
                kind: arrival.kind,
                text: arrival.text,
                payload: arrival.payload,
                status: DeliveryStatus::Delivered,
                provider_timestamp: Some(arrival.provider_timestamp),
            })
            .await?;
        let stored = Stored {
            message,
            conversation_id: conversation.id,
        };
        committed.jobs_created += ensure_follow_up(store, arrival.follow_up, stored).await?;
        committed.arrivals.push(stored);
        if matches!(message, Inserted::Duplicate(_)) {
            continue;
        }
        for reply in arrival.replies {
            let message = store
                .insert_message(reply.message(conversation.id, conversation.integration_id))
                .await?;
            let stored = Stored {
                message,
                conversation_id: conversation.id,
            };
            committed.jobs_created += ensure_follow_up(store, reply.follow_up, stored).await?;
            committed.replies.push(stored);
        }
    }
    for outgoing in work.outgoing {
        let conversation_id = outgoing.message.conversation_id;
        let message = store.insert_message(outgoing.message).await?;
        let stored = Stored {
            message,
            conversation_id,
        };
        committed.jobs_created += ensure_follow_up(store, outgoing.follow_up, stored).await?;
        committed.outgoing.push(stored);
    }
    for report in &work.statuses {
        if let Some(reference) = report.reference {
            adopt(
                store,
                reference,
                report.integration_id,
                &report.provider_message_id,
            )
            .await?;
        }
        store
            .apply_status(super::StatusChange {
                integration_id: report.integration_id,
                provider_message_id: &report.provider_message_id,
                status: report.status,
                at: report.at,
                error_code: report.error_code.as_deref(),
                error_reason: report.error_reason.as_deref(),
            })
            .await?;
    }
    for set in &work.status_sets {
        store
            .set_message_status(
                set.message_id,
                set.status,
                set.error_code.as_deref(),
                set.error_reason.as_deref(),
            )
            .await?;
    }
    for accepted in &work.accepted {
        let Some(message) = store.message(accepted.message_id).await? else {
            continue;
        };
        let adopted = match &accepted.provider_message_id {
            Some(provider_id) => adopt_any(store, &message, provider_id)
                .await?
                .then_some(provider_id),
            None => None,
        };
        // `sent` applies through the message's provider id as it now is (monotonic).
        if let Some(provider_id) = adopted.or(message.provider_message_id.as_ref()) {
            store
                .apply_status(super::StatusChange {
                    integration_id: message.integration_id,
                    provider_message_id: provider_id,
                    status: DeliveryStatus::Sent,
                    at: Utc::now(),
                    error_code: None,
                    error_reason: None,
                })
                .await?;
        } else if message.status < DeliveryStatus::Sent {
            store
                .set_message_status(message.id, DeliveryStatus::Sent, None, None)
                .await?;
        }
    }
    for record in &work.account_events {
        if let (Some(chat), Some(reachable)) = (record.chat.as_deref(), record.reachable)
            && let Some(conversation) = store
                .conversation_by_chat(record.integration_id, chat)
                .await?
        {
            store.set_unreachable(conversation.id, !reachable).await?;
        }
        store
            .record_integration_event(
                record.integration_id,
                &record.kind,
                &record.summary,
                &record.raw,
            )
            .await?;
    }
    for (id, end) in work.job_ends {
        match end {
            JobEnd::Complete => store.complete_job(id).await?,
            JobEnd::Retry { at, error } => store.retry_job(id, at, &error).await?,
            JobEnd::Postpone { at } => match store.postpone_job(id, at).await {
                // Only a running job is postponed; another outcome got there first.
                Ok(()) | Err(crate::StoreError::NotFound) => {}
                Err(error) => return Err(error),
            },
            JobEnd::Hold { error } => store.hold_job(id, &error).await?,
            JobEnd::Kill { error } => store.kill_job(id, &error).await?,
        }
    }
    for (id, state, note) in work.inbox {
        store
            .finish_webhook_event(id, state, note.as_deref())
            .await?;
    }
    Ok(committed)
}

/// Creates a stored message's follow-up job unless it exists; 1 when it was created.
async fn ensure_follow_up<S: super::Store + ?Sized>(
    store: &S,
    follow_up: Option<FollowUp>,
    stored: Stored,
) -> super::StoreResult<u64> {
    let Some(follow_up) = follow_up else {
        return Ok(0);
    };
    match store
        .enqueue_job(follow_up.job(stored.message_id(), stored.conversation_id))
        .await
    {
        Ok(_) => Ok(1),
        Err(crate::StoreError::Conflict(_)) => Ok(0),
        Err(error) => Err(error),
    }
}

/// A placeholder (`sb:…`) or missing provider id: the send's outcome was not known.
#[must_use]
pub fn is_placeholder(provider_message_id: Option<&str>) -> bool {
    provider_message_id.is_none_or(|p| p.starts_with("sb:"))
}

/// The referenced message adopts the provider id if it is this integration's and still has a
/// placeholder, and no other message holds the id.
async fn adopt<S: super::Store + ?Sized>(
    store: &S,
    reference: MessageId,
    integration: IntegrationId,
    provider_id: &str,
) -> super::StoreResult<()> {
    let Some(message) = store.message(reference).await? else {
        return Ok(());
    };
    if message.integration_id == integration
        && is_placeholder(message.provider_message_id.as_deref())
    {
        adopt_any(store, &message, provider_id).await?;
    }
    Ok(())
}

/// Sets the provider id unless another message of the integration holds it; whether it did.
async fn adopt_any<S: super::Store + ?Sized>(
    store: &S,
    message: &super::Message,
    provider_id: &str,
) -> super::StoreResult<bool> {
    match store.set_provider_message_id(message.id, provider_id).await {
        Ok(()) => Ok(true),
        Err(crate::StoreError::Conflict(_)) => Ok(false),
        Err(error) => Err(error),
    }
}
