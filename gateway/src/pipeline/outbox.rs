//! The outbox: every outbound message is a `messages` row (status `queued`) and a `send` job
//! first, then sent by a worker. Automated replies start as a `respond` job that asks the
//! responder and queues its replies.
//!
//! Exactly-once-or-uncertain: before the provider call the message is marked `uncertain`; it
//! becomes `sent` on success or goes back to `queued` only when the failure proves the request
//! never took effect. A job re-run after a crash finds its message `uncertain` and does not
//! send again — the provider's status webhook reconciles it instead of a blind repeat.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::domain::{
    DeliveryStatus, FailureClass, IntegrationState, OutboundMessage, SendFailure,
};
use switchboard_core::error::StoreError;
use switchboard_core::registry::Lookup;
use switchboard_core::store::{
    Conversation, Direction, Inserted, Job, NewJob, NewMessage, StatusChange,
};
use switchboard_core::{BusinessId, ConversationId, Integration, MessageId};

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

/// Stores an outbound message and its send job. `key` makes both exist once (a re-run of the
/// same respond job finds them); `None` for one-off sends.
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
    let store = app.store.as_ref();
    let local_id = key.clone().unwrap_or_else(|| format!("sb:{}", uuid_like()));
    let inserted = store
        .insert_message(NewMessage {
            conversation_id: conversation.id,
            integration_id: conversation.integration_id,
            direction: Direction::Outbound,
            // A local placeholder until the provider's id replaces it; unique per integration,
            // so a re-run finds the same row.
            provider_message_id: Some(local_id),
            kind: outbound.content.kind(),
            text: outbound.content.display_text(),
            payload: json!({ "outbound": outbound }),
            status: DeliveryStatus::Queued,
            provider_timestamp: None,
        })
        .await?;
    let (Inserted::New(message_id) | Inserted::Duplicate(message_id)) = inserted;
    let mut outbound = outbound;
    outbound.reference = Some(message_id.to_string());
    let payload = SendPayload {
        message_id,
        conversation_id: conversation.id,
        outbound,
    };
    let job = store
        .enqueue_job(NewJob {
            kind: SEND_JOB.into(),
            business_id: conversation.business_id,
            integration_id: Some(conversation.integration_id),
            payload: serde_json::to_value(&payload).unwrap_or_default(),
            run_at: Utc::now(),
            dedupe_key: Some(format!("send:{message_id}")),
            queue_key: Some(conversation_queue(conversation.id)),
            max_attempts,
        })
        .await;
    match job {
        Ok(_) | Err(StoreError::Conflict(_)) => {
            app.wake.jobs.notify_one();
            Ok(message_id)
        }
        Err(error) => Err(error),
    }
}

fn uuid_like() -> String {
    switchboard_core::MessageId::new().to_string()
}

impl Pipeline {
    /// Asks the responder about an inbound message and queues its replies (once: the reply
    /// keys are derived from the inbound message).
    pub(super) async fn run_respond(&self, job: &Job) -> Result<Outcome, StoreError> {
        let payload: RespondPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return Ok(Outcome::Dead(format!("malformed respond job: {error}"))),
        };
        let store = self.app.store.as_ref();
        let Some(conversation) = store
            .conversation(job.business_id, payload.conversation_id)
            .await?
        else {
            return Ok(Outcome::Dead("the conversation no longer exists".into()));
        };
        let Some(message) = store.message(payload.message_id).await? else {
            return Ok(Outcome::Dead("the message no longer exists".into()));
        };
        let context = self.context(&conversation, payload.message_id).await?;
        let Some(integration) = store.integration_by_id(conversation.integration_id).await? else {
            return Ok(Outcome::Dead("the integration no longer exists".into()));
        };
        let input = super::responder::ResponderInput {
            business_id: job.business_id,
            integration_id: integration.id,
            channel: integration.channel.clone(),
            conversation: conversation.clone(),
            message,
            context,
        };
        let replies = match self.responder.respond(&input).await {
            Ok(replies) => replies,
            Err(error) if error.retryable => {
                return Ok(Outcome::Retry {
                    after: retry::backoff(job.attempts),
                    error: error.message,
                });
            }
            Err(error) => return Ok(Outcome::Dead(error.message)),
        };
        let reply_to = input
            .message
            .provider_message_id
            .clone()
            .filter(|id| !id.starts_with("sb:"));
        for (n, content) in replies.into_iter().enumerate() {
            let outbound = OutboundMessage {
                to: conversation.external_chat_id.clone(),
                content,
                reply_to: reply_to.clone(),
                thread_id: input
                    .message
                    .payload
                    .get("thread_id")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned),
                reference: None,
            };
            let key = format!("sb:reply:{}:{n}", payload.message_id);
            queue_message(
                &self.app,
                &conversation,
                outbound,
                Some(key),
                self.settings.max_attempts,
            )
            .await?;
        }
        Ok(Outcome::Done)
    }

    /// Recent messages of the conversation, oldest first, for the responder.
    async fn context(
        &self,
        conversation: &Conversation,
        upto: MessageId,
    ) -> Result<Vec<switchboard_core::store::Message>, StoreError> {
        let page = switchboard_core::store::Page {
            before: None,
            limit: 20,
        };
        let mut recent = self.app.store.list_messages(conversation.id, page).await?;
        recent.retain(|m| m.id <= upto);
        recent.reverse();
        Ok(recent)
    }

    /// Sends one queued message.
    pub(super) async fn run_send(&self, job: &Job) -> Result<Outcome, StoreError> {
        let payload: SendPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return Ok(Outcome::Dead(format!("malformed send job: {error}"))),
        };
        let store = self.app.store.as_ref();
        let Some(message) = store.message(payload.message_id).await? else {
            return Ok(Outcome::Dead("the message no longer exists".into()));
        };
        match message.status {
            DeliveryStatus::Queued => {}
            DeliveryStatus::Uncertain => {
                if let Some(outcome) = self.reconcile(&message).await? {
                    return Ok(outcome);
                }
            }
            // Sent before (a re-run after a crash), or final.
            _ => return Ok(Outcome::Done),
        }
        let Some(conversation) = store
            .conversation(job.business_id, payload.conversation_id)
            .await?
        else {
            return Ok(Outcome::Dead("the conversation no longer exists".into()));
        };
        let integration = store.integration_by_id(conversation.integration_id).await?;
        let Some(integration) = integration.filter(|i| i.is_active) else {
            return self
                .fail(&message.id, "not_connected", "the channel is disconnected")
                .await;
        };
        if integration.state == IntegrationState::NeedsReauth {
            return Ok(Outcome::Hold(
                "waiting for the channel to be reconnected".into(),
            ));
        }
        let Lookup::Enabled(adapter) = self.app.registry.lookup(integration.channel.as_str())
        else {
            return Ok(Outcome::Postpone(std::time::Duration::from_secs(60)));
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
            return self.fail(&message.id, "window_closed", reason).await;
        }
        if conversation.unreachable {
            return self
                .fail(
                    &message.id,
                    "unreachable",
                    "the recipient blocked or left the chat",
                )
                .await;
        }
        let group = conversation.external_chat_id.starts_with('-');
        if let Err(wait) = self.governor.reserve(
            integration.id,
            &conversation.external_chat_id,
            group,
            &adapter.rate_limits(),
        ) {
            return Ok(Outcome::Postpone(wait));
        }
        let Some(ctx) = connections::context(store, &self.app.cipher, integration.clone()).await?
        else {
            return self
                .fail(
                    &message.id,
                    "not_connected",
                    "the channel has no credentials",
                )
                .await;
        };
        store
            .set_message_status(message.id, DeliveryStatus::Uncertain, None, None)
            .await?;
        let result = adapter.send(&ctx, &payload.outbound).await;
        self.record_send(job, &integration, &conversation, &payload, result)
            .await
    }

    async fn record_send(
        &self,
        job: &Job,
        integration: &Integration,
        conversation: &Conversation,
        payload: &SendPayload,
        result: Result<switchboard_core::domain::SendReceipt, SendFailure>,
    ) -> Result<Outcome, StoreError> {
        let store = self.app.store.as_ref();
        let id = payload.message_id;
        let failure = match result {
            Ok(receipt) => {
                match receipt.provider_message_ids.first() {
                    Some(provider_id) => {
                        // The provider's status reports may have arrived first (and adopted the
                        // id through the reference): `sent` must not overwrite `read`.
                        match store.set_provider_message_id(id, provider_id).await {
                            Ok(()) => {}
                            // The provider reused an id the integration already has: the send
                            // happened, so record it; only status matching is lost.
                            Err(StoreError::Conflict(_)) => {
                                tracing::warn!(message_id = %id, provider_id, "the provider's message id is already taken");
                                store
                                    .set_message_status(id, DeliveryStatus::Sent, None, None)
                                    .await?;
                                return Ok(Outcome::Done);
                            }
                            Err(error) => return Err(error),
                        }
                        store
                            .apply_status(StatusChange {
                                integration_id: integration.id,
                                provider_message_id: provider_id,
                                status: DeliveryStatus::Sent,
                                at: Utc::now(),
                                error_code: None,
                                error_reason: None,
                            })
                            .await?;
                    }
                    None => {
                        store
                            .set_message_status(id, DeliveryStatus::Sent, None, None)
                            .await?;
                    }
                }
                tracing::info!(message_id = %id, integration_id = %integration.id, "sent");
                return Ok(Outcome::Done);
            }
            Err(failure) => failure,
        };
        tracing::warn!(message_id = %id, code = %failure.code, class = ?failure.class, "send failed");
        match failure.class {
            FailureClass::Retry { after, .. } => {
                store
                    .set_message_status(id, DeliveryStatus::Queued, None, None)
                    .await?;
                Ok(Outcome::Retry {
                    after: retry::delay(job.attempts, after),
                    error: format!("{}: {}", failure.code, failure.reason),
                })
            }
            FailureClass::NeedsReauth => {
                store
                    .set_message_status(id, DeliveryStatus::Queued, None, None)
                    .await?;
                store
                    .set_state(
                        integration.id,
                        IntegrationState::NeedsReauth,
                        Some(&failure.reason),
                    )
                    .await?;
                Ok(Outcome::Hold(format!(
                    "the provider refused the token: {}",
                    failure.reason
                )))
            }
            FailureClass::WindowClosed => self.fail(&id, "window_closed", &failure.reason).await,
            FailureClass::Unreachable => {
                store.set_unreachable(conversation.id, true).await?;
                self.fail(&id, &failure.code, &failure.reason).await
            }
            FailureClass::ChatMigrated { to } => {
                store
                    .set_message_status(id, DeliveryStatus::Queued, None, None)
                    .await?;
                self.requeue_migrated(job, conversation, payload, &to).await
            }
            FailureClass::Uncertain => {
                store
                    .set_message_status(
                        id,
                        DeliveryStatus::Uncertain,
                        Some(&failure.code),
                        Some(&failure.reason),
                    )
                    .await?;
                Ok(self.await_evidence(integration))
            }
            FailureClass::Permanent => self.fail(&id, &failure.code, &failure.reason).await,
        }
    }

    /// The chat moved (a group became a supergroup): the conversation follows it and the
    /// message is queued again to the new id.
    async fn requeue_migrated(
        &self,
        job: &Job,
        conversation: &Conversation,
        payload: &SendPayload,
        to: &str,
    ) -> Result<Outcome, StoreError> {
        let store = self.app.store.as_ref();
        let moved = store
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
        // Queue the copy first, under a key derived from the original: a crash in between
        // re-runs this and finds the copy instead of losing or doubling it.
        let key = format!("sb:migrated:{}", payload.message_id);
        queue_message(&self.app, &moved, outbound, Some(key), job.max_attempts).await?;
        store
            .set_message_status(
                payload.message_id,
                DeliveryStatus::Failed,
                Some("chat_migrated"),
                Some(&format!("the chat moved to {to}; resent there")),
            )
            .await?;
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
    async fn reconcile(
        &self,
        message: &switchboard_core::store::Message,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(integration) = self
            .app
            .store
            .integration_by_id(message.integration_id)
            .await?
        else {
            return Ok(Some(Outcome::Done));
        };
        if matches!(self.await_evidence(&integration), Outcome::Done) {
            return Ok(Some(Outcome::Done));
        }
        let since = message.status_at.unwrap_or(message.created_at);
        let window = chrono::Duration::from_std(self.settings.reconcile_after).unwrap_or_default();
        let waited = Utc::now() - since;
        if waited < window {
            let rest = (window - waited).to_std().unwrap_or_default();
            return Ok(Some(Outcome::Postpone(rest)));
        }
        tracing::warn!(message_id = %message.id, "no status report after an uncertain send; sending again");
        self.app
            .store
            .set_message_status(message.id, DeliveryStatus::Queued, None, None)
            .await?;
        Ok(None)
    }

    async fn fail(&self, id: &MessageId, code: &str, reason: &str) -> Result<Outcome, StoreError> {
        self.app
            .store
            .set_message_status(*id, DeliveryStatus::Failed, Some(code), Some(reason))
            .await?;
        Ok(Outcome::Dead(format!("{code}: {reason}")))
    }
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
