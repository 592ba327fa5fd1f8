//! The outbox: every outbound message is a `messages` row (status `queued`) and a `send` job
//! first, then sent by a worker. Automated replies start as a `respond` job that asks the
//! responder and queues its replies.
//!
//! Exactly-once-or-uncertain: before the provider call the message is marked `uncertain`; it
//! becomes `sent` on success or goes back to `queued` only when the failure proves the request
//! never took effect. A job re-run after a crash finds its message `uncertain` and does not
//! send again — the provider's status webhook reconciles it instead of a blind repeat.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::adapter::IntegrationContext;
use switchboard_core::domain::{
    DeliveryStatus, FailureClass, IntegrationState, OutboundMessage, SendFailure, SendReceipt,
    make_storable, storable_text,
};
use switchboard_core::error::StoreError;
use switchboard_core::registry::Lookup;
use switchboard_core::store::{
    Accepted, Conversation, Direction, FollowUp, Job, Message, NewJob, NewMessage, Outgoing,
    StatusSet, Stored, Work, is_placeholder,
};
use switchboard_core::{
    BusinessId, ChannelAdapter, ConversationId, Integration, IntegrationId, MessageId,
};

use super::Pipeline;
use super::retry;
use crate::connections;

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

/// What the worker does with a job after running it.
#[derive(Debug)]
pub(super) enum Outcome {
    Done,
    Retry {
        after: std::time::Duration,
        error: String,
    },
    /// Not now, and it does not count as an attempt (rate limit).
    Postpone(std::time::Duration),
    Hold(String),
    Dead(String),
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
        NewJob {
            kind: SEND_JOB.into(),
            business_id: business,
            integration_id: Some(integration),
            payload,
            run_at: Utc::now(),
            dedupe_key: Some(format!("send:{message_id}")),
            queue_key: Some(conversation_queue(conversation_id)),
            max_attempts,
        }
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

/// Stores an outbound message and its send job (see [`outgoing`]).
///
/// # Errors
/// A store failure.
pub async fn queue_message(
    app: &crate::state::AppState,
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

/// What a claimed batch of jobs needs from the store, read in bulk.
#[derive(Default)]
pub(super) struct Loaded {
    messages: HashMap<MessageId, Message>,
    conversations: HashMap<ConversationId, Conversation>,
    integrations: HashMap<IntegrationId, Option<Integration>>,
    /// Decrypted credentials, per integration, read when a send of the batch needs them.
    contexts: HashMap<IntegrationId, Option<Arc<IntegrationContext>>>,
}

/// A send that passed every check and goes to the provider.
pub(super) struct Call {
    pub(super) payload: SendPayload,
    adapter: Arc<dyn ChannelAdapter>,
    context: Arc<IntegrationContext>,
    conversation: Conversation,
}

impl Call {
    pub(super) async fn send(&self) -> Result<SendReceipt, SendFailure> {
        self.adapter
            .send(&self.context, &self.payload.outbound)
            .await
    }
}

/// Where a send job stands before the provider call.
pub(super) enum SendStep {
    Finished(Outcome),
    Call(Box<Call>),
}

/// A job's outcome and what it writes besides its end.
pub(super) type Ran = (Outcome, Work);

impl Pipeline {
    /// Reads the messages, conversations and integrations a batch of jobs refers to.
    pub(super) async fn load(&self, jobs: &[Job]) -> Result<Loaded, StoreError> {
        let store = self.app.store.as_ref();
        let mut message_ids = Vec::new();
        let mut conversation_ids = Vec::new();
        for job in jobs {
            if let Some((message, conversation)) = job_refs(job) {
                message_ids.push(message);
                conversation_ids.push((job.business_id, conversation));
            }
        }
        let mut loaded = Loaded::default();
        if !message_ids.is_empty() {
            for message in store.messages_by_ids(&message_ids).await? {
                loaded.messages.insert(message.id, message);
            }
            for conversation in store.conversations_by_ids(&conversation_ids).await? {
                loaded.conversations.insert(conversation.id, conversation);
            }
        }
        let named: Vec<IntegrationId> = loaded
            .conversations
            .values()
            .map(|c| c.integration_id)
            .chain(loaded.messages.values().map(|m| m.integration_id))
            .collect();
        loaded
            .integrations
            .extend(super::integrations_by_id(store, named).await?);
        Ok(loaded)
    }

    /// Asks the responder about an inbound message and queues its replies (once: the reply
    /// keys are derived from the inbound message).
    pub(super) async fn run_respond(&self, job: &Job, loaded: &Loaded) -> Result<Ran, StoreError> {
        let payload: RespondPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return Ok(dead(format!("malformed respond job: {error}"))),
        };
        let Some(conversation) = loaded.conversations.get(&payload.conversation_id) else {
            return Ok(dead("the conversation no longer exists"));
        };
        let Some(message) = loaded.messages.get(&payload.message_id) else {
            return Ok(dead("the message no longer exists"));
        };
        let Some(Some(integration)) = loaded.integrations.get(&conversation.integration_id) else {
            return Ok(dead("the integration no longer exists"));
        };
        let context = if self.responder.uses_context() {
            self.context(conversation, payload.message_id).await?
        } else {
            Vec::new()
        };
        let input = super::responder::ResponderInput {
            business_id: job.business_id,
            integration_id: integration.id,
            channel: integration.channel.clone(),
            conversation: conversation.clone(),
            message: message.clone(),
            context,
        };
        let answer = {
            let _permit = self.calls.acquire().await;
            self.responder.respond(&input).await
        };
        let replies = match answer {
            Ok(replies) => replies,
            Err(error) if error.retryable => {
                let outcome = Outcome::Retry {
                    after: retry::backoff(job.attempts),
                    error: error.message,
                };
                return Ok((outcome, Work::default()));
            }
            Err(error) => return Ok(dead(error.message)),
        };
        let reply_to = input
            .message
            .provider_message_id
            .clone()
            .filter(|id| !is_placeholder(Some(id)));
        let thread_id = input
            .message
            .payload
            .get("thread_id")
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        let mut work = Work::default();
        for (n, content) in replies.into_iter().enumerate() {
            let outbound = OutboundMessage {
                to: conversation.external_chat_id.clone(),
                content,
                reply_to: reply_to.clone(),
                thread_id: thread_id.clone(),
                reference: None,
            };
            let key = match input.message.provider_message_id.as_deref() {
                Some(provider_id) if !is_placeholder(Some(provider_id)) => {
                    reply_key(provider_id, n)
                }
                _ => format!("sb:reply:{}:{n}", payload.message_id),
            };
            work.outgoing.push(outgoing(
                conversation,
                outbound,
                Some(key),
                self.settings.max_attempts,
            ));
        }
        Ok((Outcome::Done, work))
    }

    /// Recent messages of the conversation, oldest first, for the responder.
    async fn context(
        &self,
        conversation: &Conversation,
        upto: MessageId,
    ) -> Result<Vec<Message>, StoreError> {
        let page = switchboard_core::store::Page {
            before: None,
            limit: 20,
        };
        let mut recent = self.app.store.list_messages(conversation.id, page).await?;
        recent.retain(|m| m.id <= upto);
        recent.reverse();
        Ok(recent)
    }

    /// Checks a send job up to the provider call: whether it still needs sending, may be sent
    /// now, and with which credentials. Checks that end the job write into `work`.
    pub(super) async fn prepare_send(
        &self,
        job: &Job,
        loaded: &mut Loaded,
        work: &mut Work,
    ) -> Result<SendStep, StoreError> {
        let payload: SendPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => {
                let why = format!("malformed send job: {error}");
                return Ok(SendStep::Finished(Outcome::Dead(why)));
            }
        };
        let Some(message) = loaded.messages.get(&payload.message_id) else {
            let why = "the message no longer exists".into();
            return Ok(SendStep::Finished(Outcome::Dead(why)));
        };
        match message.status {
            DeliveryStatus::Queued => {}
            DeliveryStatus::Uncertain => {
                if let Some(outcome) = self.reconcile(message, loaded) {
                    return Ok(SendStep::Finished(outcome));
                }
                tracing::warn!(message_id = %message.id, "no status report after an uncertain send; sending again");
            }
            // Sent before (a re-run after a crash), or final.
            _ => return Ok(SendStep::Finished(Outcome::Done)),
        }
        let id = message.id;
        let Some(conversation) = loaded.conversations.get(&payload.conversation_id).cloned() else {
            let why = "the conversation no longer exists".into();
            return Ok(SendStep::Finished(Outcome::Dead(why)));
        };
        let integration = loaded
            .integrations
            .get(&conversation.integration_id)
            .cloned()
            .flatten();
        let Some(integration) = integration.filter(|i| i.is_active) else {
            let why = "the channel is disconnected";
            return Ok(SendStep::Finished(fail(work, id, "not_connected", why)));
        };
        if integration.state == IntegrationState::NeedsReauth {
            let why = "waiting for the channel to be reconnected".into();
            return Ok(SendStep::Finished(Outcome::Hold(why)));
        }
        let Lookup::Enabled(adapter) = self.app.registry.lookup(integration.channel.as_str())
        else {
            let wait = std::time::Duration::from_secs(60);
            return Ok(SendStep::Finished(Outcome::Postpone(wait)));
        };
        let capabilities = &adapter.descriptor().capabilities;
        if capabilities.reply_window.is_some()
            && !payload.outbound.content.is_template()
            && conversation
                .window_expires_at
                .is_none_or(|end| end <= Utc::now())
        {
            let reason =
                "the 24-hour customer service window is closed; only templates can be sent";
            return Ok(SendStep::Finished(fail(work, id, "window_closed", reason)));
        }
        if conversation.unreachable {
            let reason = "the recipient blocked or left the chat";
            return Ok(SendStep::Finished(fail(work, id, "unreachable", reason)));
        }
        let group = conversation.external_chat_id.starts_with('-');
        if let Err(wait) = self.governor.reserve(
            integration.id,
            &conversation.external_chat_id,
            group,
            &adapter.rate_limits(),
        ) {
            return Ok(SendStep::Finished(Outcome::Postpone(wait)));
        }
        if !loaded.contexts.contains_key(&integration.id) {
            // The first send of the batch that gets this far reads the credentials of every
            // integration the batch names, in one query.
            let wanted: Vec<Integration> = loaded
                .integrations
                .values()
                .flatten()
                .filter(|i| !loaded.contexts.contains_key(&i.id))
                .cloned()
                .collect();
            let store = self.app.store.as_ref();
            let read = connections::contexts(store, &self.app.cipher, wanted).await?;
            for (id, context) in read {
                loaded.contexts.insert(id, context.map(Arc::new));
            }
        }
        let context = loaded.contexts.get(&integration.id).cloned().flatten();
        let Some(context) = context else {
            let reason = "the channel has no credentials";
            return Ok(SendStep::Finished(fail(work, id, "not_connected", reason)));
        };
        Ok(SendStep::Call(Box::new(Call {
            payload,
            adapter,
            context,
            conversation,
        })))
    }

    /// Records the provider's answer to a send.
    pub(super) async fn record_send(
        &self,
        job: &Job,
        call: &Call,
        result: Result<SendReceipt, SendFailure>,
    ) -> Result<Ran, StoreError> {
        let store = self.app.store.as_ref();
        let id = call.payload.message_id;
        let integration = &call.context.integration;
        let mut work = Work::default();
        let failure = match result {
            Ok(receipt) => {
                // The provider's status reports may have arrived first (and adopted the id
                // through the reference): `sent` does not overwrite `read`.
                work.accepted.push(Accepted {
                    message_id: id,
                    provider_message_id: receipt.provider_message_ids.first().cloned(),
                });
                tracing::info!(message_id = %id, integration_id = %integration.id, "sent");
                return Ok((Outcome::Done, work));
            }
            Err(failure) => failure,
        };
        tracing::warn!(message_id = %id, code = %failure.code, class = ?failure.class, "send failed");
        let outcome = match failure.class {
            FailureClass::Retry { after, .. } => {
                work.status_sets.push(status(id, DeliveryStatus::Queued));
                Outcome::Retry {
                    after: retry::delay(job.attempts, after),
                    error: format!("{}: {}", failure.code, failure.reason),
                }
            }
            FailureClass::NeedsReauth => {
                work.status_sets.push(status(id, DeliveryStatus::Queued));
                store
                    .set_state(
                        integration.id,
                        IntegrationState::NeedsReauth,
                        Some(&failure.reason),
                    )
                    .await?;
                Outcome::Hold(format!(
                    "the provider refused the token: {}",
                    failure.reason
                ))
            }
            FailureClass::WindowClosed => fail(&mut work, id, "window_closed", &failure.reason),
            FailureClass::Unreachable => {
                store.set_unreachable(call.conversation.id, true).await?;
                fail(&mut work, id, &failure.code, &failure.reason)
            }
            FailureClass::ChatMigrated { to } => {
                self.requeue_migrated(job, &call.conversation, &call.payload, &to, &mut work)
                    .await?
            }
            FailureClass::Uncertain => {
                work.status_sets.push(StatusSet {
                    error_code: Some(failure.code.clone()),
                    error_reason: Some(failure.reason.clone()),
                    ..status(id, DeliveryStatus::Uncertain)
                });
                self.await_evidence(integration)
            }
            FailureClass::Permanent => fail(&mut work, id, &failure.code, &failure.reason),
        };
        Ok((outcome, work))
    }

    /// The chat moved (a group became a supergroup): the conversation follows it and the
    /// message is queued again to the new id, in the same unit that fails the original.
    async fn requeue_migrated(
        &self,
        job: &Job,
        conversation: &Conversation,
        payload: &SendPayload,
        to: &str,
        work: &mut Work,
    ) -> Result<Outcome, StoreError> {
        let moved = self
            .app
            .store
            .upsert_conversation(switchboard_core::store::ConversationUpsert {
                business_id: conversation.business_id,
                integration_id: conversation.integration_id,
                channel_type: conversation.channel_type.clone(),
                external_chat_id: to.to_owned(),
                contact_name: conversation.contact_name.clone(),
                last_message_at: Utc::now(),
                window_expires_at: conversation.window_expires_at,
            })
            .await?;
        let mut outbound = payload.outbound.clone();
        outbound.to = to.to_owned();
        outbound.reference = None;
        // A key derived from the original: a re-run finds the copy instead of doubling it.
        let key = format!("sb:migrated:{}", payload.message_id);
        work.outgoing
            .push(outgoing(&moved, outbound, Some(key), job.max_attempts));
        let why = format!("the chat moved to {to}; resent there");
        work.status_sets
            .push(failed(payload.message_id, "chat_migrated", &why));
        Ok(Outcome::Done)
    }

    /// After a send of unknown outcome, wait for the provider's status report when the
    /// channel gives them (the job stays in its queue, so later messages wait too); channels
    /// without status reports leave the message `uncertain` for a person to judge.
    fn await_evidence(&self, integration: &Integration) -> Outcome {
        let reports = match self.app.registry.lookup(integration.channel.as_str()) {
            Lookup::Enabled(adapter) => adapter.descriptor().capabilities.read_receipts,
            _ => false,
        };
        if reports {
            Outcome::Postpone(self.settings.reconcile_after)
        } else {
            Outcome::Done
        }
    }

    /// A send job found its message `uncertain` (a previous attempt's outcome is unknown, or a
    /// worker died mid-send). A status report would have moved it on; while the window for
    /// one is open, wait; once it has passed with no report, the provider never got it: send
    /// again. `None` means "send now".
    fn reconcile(&self, message: &Message, loaded: &Loaded) -> Option<Outcome> {
        let Some(Some(integration)) = loaded.integrations.get(&message.integration_id) else {
            return Some(Outcome::Done);
        };
        if matches!(self.await_evidence(integration), Outcome::Done) {
            return Some(Outcome::Done);
        }
        let since = message.status_at.unwrap_or(message.created_at);
        let window = chrono::Duration::from_std(self.settings.reconcile_after).unwrap_or_default();
        let waited = Utc::now() - since;
        if waited < window {
            let rest = (window - waited).to_std().unwrap_or_default();
            return Some(Outcome::Postpone(rest));
        }
        None
    }
}

/// The message and conversation a `respond` or `send` job is about.
fn job_refs(job: &Job) -> Option<(MessageId, ConversationId)> {
    let field = |name: &str| job.payload.get(name)?.as_str();
    Some((
        field("message_id")?.parse().ok()?,
        field("conversation_id")?.parse().ok()?,
    ))
}

fn dead(why: impl Into<String>) -> Ran {
    (Outcome::Dead(why.into()), Work::default())
}

pub(super) fn status(id: MessageId, status: DeliveryStatus) -> StatusSet {
    StatusSet {
        message_id: id,
        status,
        error_code: None,
        error_reason: None,
    }
}

/// The message `failed` with a code and reason.
pub(super) fn failed(id: MessageId, code: &str, reason: &str) -> StatusSet {
    StatusSet {
        error_code: Some(code.to_owned()),
        error_reason: Some(reason.to_owned()),
        ..status(id, DeliveryStatus::Failed)
    }
}

/// Fails the message with a code and reason; the job is dead.
fn fail(work: &mut Work, id: MessageId, code: &str, reason: &str) -> Outcome {
    work.status_sets.push(failed(id, code, reason));
    Outcome::Dead(format!("{code}: {reason}"))
}

/// The conversation for sending to `to` on an integration, created if needed (API sends to a
/// new recipient).
///
/// # Errors
/// A store failure.
pub async fn conversation_for(
    app: &crate::state::AppState,
    business: BusinessId,
    integration: &Integration,
    to: &str,
) -> Result<Conversation, StoreError> {
    if let Some(existing) = app.store.conversation_by_chat(integration.id, to).await? {
        return Ok(existing);
    }
    app.store
        .upsert_conversation(switchboard_core::store::ConversationUpsert {
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
