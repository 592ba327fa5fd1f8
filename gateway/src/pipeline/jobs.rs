//! The job kinds, their payloads and queue keys, and the units of work that create them: what
//! the inbox worker, the job worker and the API's send endpoint share.
//!
//! Every outbound message is a `messages` row (status `queued`) and a `send` job first, then
//! sent by the job worker. Automated replies start as a `respond` job that asks the responder
//! and queues its replies.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::domain::{DeliveryStatus, OutboundMessage, make_storable, storable_text};
use switchboard_core::error::StoreError;
use switchboard_core::store::{
    Conversation, ConversationUpsert, Direction, FollowUp, Job, NewJob, NewMessage, Outgoing,
    StatusSet, Stored, Work,
};
use switchboard_core::{BusinessId, ConversationId, Integration, IntegrationId, MessageId};

use crate::state::AppState;

pub const RESPOND_JOB: &str = "respond";
pub const SEND_JOB: &str = "send";

/// The queue that keeps one conversation's jobs in order.
#[must_use]
pub fn conversation_queue(id: ConversationId) -> String {
    format!("conversation:{id}")
}

/// The local id of the `n`th automated reply to an inbound message: the same whether a local
/// responder answered in the inbox or a respond job did, so a message is answered once.
#[must_use]
pub fn reply_key(inbound_provider_id: &str, n: usize) -> String {
    format!("sb:reply:{inbound_provider_id}:{n}")
}

/// The payload of a `send` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendPayload {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub outbound: OutboundMessage,
}

/// The payload of a `respond` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RespondPayload {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
}

/// The message and conversation a `respond` or `send` job is about.
#[must_use]
pub fn job_refs(job: &Job) -> Option<(MessageId, ConversationId)> {
    let field = |name: &str| job.payload.get(name)?.as_str();
    Some((
        field("message_id")?.parse().ok()?,
        field("conversation_id")?.parse().ok()?,
    ))
}

/// The follow-up of a stored inbound message that wants an answer: its `respond` job. The dedupe
/// key keeps a message to one answer across crashes and redeliveries.
#[must_use]
pub fn respond_follow_up(integration: &Integration, max_attempts: i32) -> FollowUp {
    let (business, integration) = (integration.business_id, integration.id);
    FollowUp::new(move |message_id, conversation_id| {
        let payload = json!({ "message_id": message_id, "conversation_id": conversation_id });
        let target = (business, integration, conversation_id);
        conversation_job(RESPOND_JOB, target, payload, message_id, max_attempts)
    })
}

/// A job of `kind` about one message, in its conversation's queue and deduplicated by the
/// message (`{kind}:{message}`).
fn conversation_job(
    kind: &str,
    (business, integration, conversation): (BusinessId, IntegrationId, ConversationId),
    payload: serde_json::Value,
    message: MessageId,
    max_attempts: i32,
) -> NewJob {
    NewJob {
        kind: kind.into(),
        business_id: business,
        integration_id: Some(integration),
        payload,
        run_at: Utc::now(),
        dedupe_key: Some(format!("{kind}:{message}")),
        queue_key: Some(conversation_queue(conversation)),
        max_attempts,
    }
}

/// The follow-up of a queued outbound message: its `send` job, carrying the message id as the
/// reference the provider echoes in its status reports.
#[must_use]
pub fn send_follow_up(
    business: BusinessId,
    integration: IntegrationId,
    outbound: OutboundMessage,
    max_attempts: i32,
) -> FollowUp {
    FollowUp::new(move |message_id, conversation_id| {
        let mut outbound = outbound.clone();
        outbound.reference = Some(message_id.to_string());
        let payload = SendPayload {
            message_id,
            conversation_id,
            outbound,
        };
        let mut payload = serde_json::to_value(&payload).unwrap_or_default();
        make_storable(&mut payload);
        let target = (business, integration, conversation_id);
        conversation_job(SEND_JOB, target, payload, message_id, max_attempts)
    })
}

/// An outbound message and its send job, as a part of a unit of work. `key` makes both exist
/// once (a re-run of the same respond job finds them); `None` for one-off sends.
#[must_use]
pub fn outgoing(
    conversation: &Conversation,
    outbound: OutboundMessage,
    key: Option<String>,
    max_attempts: i32,
) -> Outgoing {
    // A local placeholder until the provider's id replaces it; unique per integration, so a
    // re-run finds the same row.
    let local_id = key.unwrap_or_else(|| format!("sb:{}", MessageId::new()));
    // As what arrives: NUL characters become U+FFFD (see `storable_text`); the send job's
    // payload, which the provider call is made from, gets the same.
    let mut payload = json!({ "outbound": outbound });
    make_storable(&mut payload);
    Outgoing {
        message: NewMessage {
            conversation_id: conversation.id,
            integration_id: conversation.integration_id,
            direction: Direction::Outbound,
            provider_message_id: Some(local_id),
            kind: outbound.content.kind(),
            text: outbound
                .content
                .display_text()
                .map(|text| storable_text(&text).into_owned()),
            payload,
            status: DeliveryStatus::Queued,
            provider_timestamp: None,
        },
        follow_up: Some(send_follow_up(
            conversation.business_id,
            conversation.integration_id,
            outbound,
            max_attempts,
        )),
    }
}

/// Stores an outbound message and its send job (see [`outgoing`]) and wakes the job workers.
///
/// # Errors
/// A store failure.
pub async fn queue_message(
    app: &AppState,
    conversation: &Conversation,
    outbound: OutboundMessage,
    key: Option<String>,
    max_attempts: i32,
) -> Result<MessageId, StoreError> {
    let work = Work {
        outgoing: vec![outgoing(conversation, outbound, key, max_attempts)],
        ..Work::default()
    };
    let committed = app.store.commit(work).await?;
    app.wake.jobs.notify_one();
    committed
        .outgoing
        .first()
        .map(Stored::message_id)
        .ok_or_else(|| StoreError::Corrupt("a committed message went missing".into()))
}

/// The conversation for sending to `to` on an integration, created if needed (API sends to a
/// new recipient).
///
/// # Errors
/// A store failure.
pub async fn conversation_for(
    app: &AppState,
    business: BusinessId,
    integration: &Integration,
    to: &str,
) -> Result<Conversation, StoreError> {
    if let Some(existing) = app.store.conversation_by_chat(integration.id, to).await? {
        return Ok(existing);
    }
    app.store
        .upsert_conversation(ConversationUpsert {
            business_id: business,
            integration_id: integration.id,
            channel_type: integration.channel.clone(),
            external_chat_id: to.to_owned(),
            contact_name: None,
            last_message_at: Utc::now(),
            window_expires_at: None,
        })
        .await
}

/// A message's new delivery status, without an error.
#[must_use]
pub fn status(id: MessageId, status: DeliveryStatus) -> StatusSet {
    StatusSet {
        message_id: id,
        status,
        error_code: None,
        error_reason: None,
    }
}

/// The message `failed` with a code and reason.
#[must_use]
pub fn failed(id: MessageId, code: &str, reason: &str) -> StatusSet {
    StatusSet {
        error_code: Some(code.to_owned()),
        error_reason: Some(reason.to_owned()),
        ..status(id, DeliveryStatus::Failed)
    }
}
