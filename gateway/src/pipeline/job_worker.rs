//! The job worker: claims due `respond` and `send` jobs in batches and runs them side by side.
//!
//! Exactly-once-or-uncertain: before the provider call the message is marked `uncertain`; it
//! becomes `sent` on success or goes back to `queued` only when the failure proves the request
//! never took effect. A job re-run after a crash finds its message `uncertain` and does not
//! send again — the provider's status webhook reconciles it instead of a blind repeat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchboard_core::adapter::IntegrationContext;
use switchboard_core::domain::{
    DeliveryStatus, FailureClass, IntegrationState, OutboundMessage, SendFailure, SendReceipt,
};
use switchboard_core::error::StoreError;
use switchboard_core::registry::Lookup;
use switchboard_core::store::{
    Accepted, Conversation, ConversationUpsert, Job, JobEnd, Message, Page, StatusSet, Work,
    is_placeholder,
};
use switchboard_core::{
    ChannelAdapter, ConversationId, Integration, IntegrationId, JobId, MessageId,
};
use tokio::sync::{Semaphore, watch};

use super::governor::Governor;
use super::jobs::{
    RESPOND_JOB, RespondPayload, SEND_JOB, SendPayload, failed, job_refs, outgoing, reply_key,
    status,
};
use super::responder::{Responder, ResponderInput};
use super::retry;
use crate::config::WorkerSettings;
use crate::connections;
use crate::state::{AppState, wake};

/// Provider calls and responder calls in flight at once in one process, across all job
/// workers. Each is an HTTP request on a connection of its own while it lasts; unbounded, a
/// large backlog opened a thousand connections and doubled the process's memory (BENCHMARKS.md).
const MAX_CONCURRENT_CALLS: usize = 64;

/// Jobs claimed at once by one job loop. A batch runs side by side, so this also bounds how
/// much one loop holds in memory; the inbox takes `workers.batch` rows at once.
const MAX_JOB_BATCH: u32 = 64;

/// Runs jobs; one per process, shared by `workers.count` loops so that they share the rate
/// governor and the bound on calls in flight.
pub struct JobWorker {
    app: AppState,
    settings: WorkerSettings,
    responder: Arc<dyn Responder>,
    governor: Governor,
    /// Bounds the provider and responder calls in flight (see [`MAX_CONCURRENT_CALLS`]).
    calls: Semaphore,
}

impl std::fmt::Debug for JobWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobWorker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What the worker does with a job after running it.
#[derive(Debug)]
enum Outcome {
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

/// What a claimed batch of jobs needs from the store, read in bulk.
#[derive(Default)]
struct Loaded {
    messages: HashMap<MessageId, Message>,
    conversations: HashMap<ConversationId, Conversation>,
    integrations: HashMap<IntegrationId, Option<Integration>>,
    /// Decrypted credentials, per integration, read when a send of the batch needs them.
    contexts: HashMap<IntegrationId, Option<Arc<IntegrationContext>>>,
}

/// A send that passed every check and goes to the provider.
struct Call {
    payload: SendPayload,
    adapter: Arc<dyn ChannelAdapter>,
    context: Arc<IntegrationContext>,
    conversation: Conversation,
}

impl Call {
    async fn send(&self) -> Result<SendReceipt, SendFailure> {
        self.adapter
            .send(&self.context, &self.payload.outbound)
            .await
    }
}

/// Where a send job stands before the provider call.
enum SendStep {
    Finished(Outcome),
    Call(Box<Call>),
}

/// A job's outcome and what it writes besides its end.
type Ran = (Outcome, Work);

impl JobWorker {
    #[must_use]
    pub fn new(app: AppState, settings: WorkerSettings, responder: Arc<dyn Responder>) -> Self {
        Self {
            app,
            settings,
            responder,
            governor: Governor::default(),
            calls: Semaphore::new(MAX_CONCURRENT_CALLS),
        }
    }

    /// Runs batches until `shutdown` turns true; `n` names this loop's claims.
    pub async fn run(self: Arc<Self>, n: usize, mut shutdown: watch::Receiver<bool>) {
        let worker = format!("{}-{n}", self.settings.worker_id);
        while !*shutdown.borrow() {
            match self.run_once(&worker).await {
                Ok(0) => {
                    let poll = self.settings.poll_interval;
                    if !wake::idle(&self.app.wake.jobs, poll, &mut shutdown).await {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "job worker: store failure; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        tracing::debug!(worker, "job worker stopped");
    }

    /// Claims and runs one batch of due jobs; returns how many were claimed.
    ///
    /// The batch is read in bulk; sends are checked, their messages marked `uncertain` in one
    /// commit, then every provider call and responder runs side by side, and every outcome is
    /// written in one more commit. A claim never holds two jobs of one queue (one
    /// conversation), so running a batch side by side keeps each conversation in order.
    ///
    /// # Errors
    /// A store failure while claiming, reading or marking; the jobs' leases then run out and
    /// they run again.
    pub async fn run_once(&self, worker: &str) -> Result<usize, StoreError> {
        let store = self.app.store.as_ref();
        let jobs = store
            .claim_jobs(
                worker,
                self.settings.batch.min(MAX_JOB_BATCH),
                self.settings.lease,
                Utc::now(),
            )
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let mut loaded = self.load(&jobs).await?;
        let mut ended: Vec<(&Job, Ran)> = Vec::new();
        let mut calls = Vec::new();
        let mut responds = Vec::new();
        for job in &jobs {
            match job.kind.as_str() {
                RESPOND_JOB => responds.push(job),
                SEND_JOB => {
                    let mut work = Work::default();
                    match self.prepare_send(job, &mut loaded, &mut work).await {
                        Ok(SendStep::Finished(outcome)) => ended.push((job, (outcome, work))),
                        Ok(SendStep::Call(call)) => calls.push((job, call)),
                        Err(error) => {
                            tracing::error!(job_id = %job.id, %error, "job failed on a store error; its lease will expire and it runs again");
                        }
                    }
                }
                other => {
                    let outcome = Outcome::Dead(format!("unknown job kind `{other}`"));
                    ended.push((job, (outcome, Work::default())));
                }
            }
        }
        // Before any provider call: its message is `uncertain`, so a crash during the call
        // cannot lead to a blind repeat. Jobs that ended in their checks end in the same commit.
        if !calls.is_empty() || !ended.is_empty() {
            let mut before = self.ends(std::mem::take(&mut ended));
            for (_, call) in &calls {
                before
                    .status_sets
                    .push(status(call.payload.message_id, DeliveryStatus::Uncertain));
            }
            store.commit(before).await?;
        }
        let loaded = &loaded;
        let (responded, sent) = tokio::join!(
            futures::future::join_all(
                responds
                    .iter()
                    .map(|job| async move { (*job, self.run_respond(job, loaded).await) })
            ),
            futures::future::join_all(calls.iter().map(|(job, call)| async move {
                let _permit = self.calls.acquire().await;
                (*job, call, call.send().await)
            })),
        );
        let mut ended = Vec::with_capacity(jobs.len());
        for (job, result) in responded {
            match result {
                Ok(ran) => ended.push((job, ran)),
                Err(error) => {
                    tracing::error!(job_id = %job.id, %error, "job failed on a store error; its lease will expire and it runs again");
                }
            }
        }
        for (job, call, result) in sent {
            match self.record_send(job, call, result).await {
                Ok(ran) => ended.push((job, ran)),
                Err(error) => {
                    tracing::error!(job_id = %job.id, %error, "job failed on a store error; its lease will expire and it runs again");
                }
            }
        }
        self.commit_ends(ended).await;
        Ok(jobs.len())
    }

    /// Writes the jobs' outcomes in one unit; should it fail, job by job, so one job's
    /// problem leaves only that job to its lease.
    async fn commit_ends(&self, ended: Vec<(&Job, Ran)>) {
        if ended.is_empty() {
            return;
        }
        let parts: Vec<(JobId, Work)> = ended
            .into_iter()
            .map(|(job, ran)| (job.id, self.ends(vec![(job, ran)])))
            .collect();
        let mut unit = Work::default();
        for (_, work) in &parts {
            unit.append(work.clone());
        }
        let store = self.app.store.as_ref();
        let created = match store.commit(unit).await {
            Ok(committed) => committed.jobs_created,
            Err(error) => {
                tracing::warn!(%error, jobs = parts.len(), "a batch of job outcomes failed as a whole; writing them one by one");
                let mut created = 0;
                for (id, work) in parts {
                    match store.commit(work).await {
                        Ok(committed) => created += committed.jobs_created,
                        Err(error) => {
                            tracing::error!(job_id = %id, %error, "job outcome not stored; its lease will expire and it runs again");
                        }
                    }
                }
                created
            }
        };
        if created > 0 {
            self.app.wake.jobs.notify_one();
        }
    }

    /// The writes of ended jobs: each job's own, and its end.
    fn ends(&self, ended: Vec<(&Job, Ran)>) -> Work {
        let mut unit = Work::default();
        let now = Utc::now();
        for (job, (outcome, work)) in ended {
            unit.append(work);
            let at = |wait: std::time::Duration| {
                now + chrono::Duration::from_std(wait).unwrap_or_default()
            };
            let end = match outcome {
                Outcome::Done => JobEnd::Complete,
                Outcome::Retry { after, error } if job.attempts < job.max_attempts => {
                    tracing::info!(job_id = %job.id, retry_in_ms = after.as_millis(), %error, "will retry");
                    JobEnd::Retry {
                        at: at(after),
                        error,
                    }
                }
                Outcome::Retry { error, .. } => {
                    // A send that ran out of attempts fails its message with the last error.
                    if job.kind == SEND_JOB
                        && let Ok(payload) =
                            serde_json::from_value::<SendPayload>(job.payload.clone())
                    {
                        unit.status_sets.push(failed(
                            payload.message_id,
                            "attempts_exhausted",
                            &error,
                        ));
                    }
                    JobEnd::Kill {
                        error: format!("out of attempts; last error: {error}"),
                    }
                }
                Outcome::Postpone(wait) => JobEnd::Postpone { at: at(wait) },
                Outcome::Hold(error) => JobEnd::Hold { error },
                Outcome::Dead(error) => JobEnd::Kill { error },
            };
            unit.job_ends.push((job.id, end));
        }
        unit
    }

    /// Reads the messages, conversations and integrations a batch of jobs refers to.
    async fn load(&self, jobs: &[Job]) -> Result<Loaded, StoreError> {
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
            .extend(connections::integrations_by_id(store, named).await?);
        Ok(loaded)
    }

    /// Asks the responder about an inbound message and queues its replies (once: the reply
    /// keys are derived from the inbound message).
    async fn run_respond(&self, job: &Job, loaded: &Loaded) -> Result<Ran, StoreError> {
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
        let input = ResponderInput {
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
        let page = Page {
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
    async fn prepare_send(
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
        let group = adapter.is_group_chat(&conversation.external_chat_id);
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
    async fn record_send(
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
            .upsert_conversation(ConversationUpsert {
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

fn dead(why: impl Into<String>) -> Ran {
    (Outcome::Dead(why.into()), Work::default())
}

/// Fails the message with a code and reason; the job is dead.
fn fail(work: &mut Work, id: MessageId, code: &str, reason: &str) -> Outcome {
    work.status_sets.push(failed(id, code, reason));
    Outcome::Dead(format!("{code}: {reason}"))
}
