//! Draining the durable inbox: a batch of leased `webhook_events` rows is parsed by their
//! adapters and turned into one unit of work — conversations upserted, messages inserted once,
//! statuses applied monotonically, account events recorded, reply jobs ensured — committed
//! together with the rows' final states: `processed`, `unrouted` (authentic but for no active
//! integration) or `quarantined` (not the provider's format; kept for replay).
//!
//! A batch whose unit fails is applied again row by row, so one row that cannot be stored holds
//! up only itself and the later rows of its chat, which must wait for it: in its batch, and
//! until its lease ends in later batches too ([`HeldChats`]). A row whose processing
//! fails is left leased: the lease runs out and the row is tried again, so nothing acknowledged
//! is ever dropped. A row that keeps failing is quarantined after [`MAX_INBOX_ATTEMPTS`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::json;
use switchboard_core::domain::{
    AccountEvent, InboundEvent, InboundMessage, OutboundContent, OutboundMessage, StatusUpdate,
    make_storable, storable_text,
};
use switchboard_core::error::ParseError;
use switchboard_core::error::StoreError;
use switchboard_core::registry::Lookup;
use switchboard_core::store::{
    AccountRecord, Arrival, ConversationUpsert, InboxState, ReplyDraft, StatusReport, WebhookEvent,
    Work,
};
use switchboard_core::{ChannelAdapter, ChannelName, EventId, Integration, IntegrationId};
use tokio::sync::watch;

use super::flood;
use super::held_chats::{HeldChats, chats_of};
use super::jobs::{reply_key, respond_follow_up, send_follow_up};
use super::responder::Responder;
use crate::config::WorkerSettings;
use crate::connections;
use crate::state::{AppState, wake};

/// After this many failed processing attempts a row is quarantined instead of retried.
pub const MAX_INBOX_ATTEMPTS: i32 = 5;

/// What a drained batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows finished (processed, unrouted or quarantined).
    pub finished: usize,
    /// Reply jobs created.
    pub jobs_created: u64,
}

/// Integrations looked up while planning one batch (their state may change between batches,
/// so the cache lives no longer than one).
#[derive(Default)]
struct Routes {
    by_id: HashMap<IntegrationId, Option<Integration>>,
    by_account: HashMap<(ChannelName, String), Option<Integration>>,
    /// Bodies parsed while looking ahead ([`InboxWorker::prefetch`]), taken when planned.
    parsed: HashMap<EventId, Result<Vec<InboundEvent>, ParseError>>,
}

/// Drains the inbox: one per process, which keeps a burst from one chat in order.
pub struct InboxWorker {
    app: AppState,
    settings: WorkerSettings,
    responder: Arc<dyn Responder>,
    responder_enabled: bool,
    /// Chats held back after a row of theirs failed.
    held_chats: HeldChats,
}

impl std::fmt::Debug for InboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxWorker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl InboxWorker {
    #[must_use]
    pub fn new(
        app: AppState,
        settings: WorkerSettings,
        responder: Arc<dyn Responder>,
        responder_enabled: bool,
    ) -> Self {
        Self {
            app,
            settings,
            responder,
            responder_enabled,
            held_chats: HeldChats::default(),
        }
    }

    /// Drains batches until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_batch = flood::Mark::now(&self.app.wake);
        while !*shutdown.borrow() {
            let flooding = flood::yield_to_ingest(&self.app.wake, last_batch).await;
            last_batch = flood::Mark::now(&self.app.wake);
            let limit = flood::batch_limit(self.settings.batch, flooding);
            match self.drain_once(limit).await.map(|drained| drained.claimed) {
                Ok(0) => {
                    let poll = self.settings.poll_interval;
                    if !wake::idle(&self.app.wake.inbox, poll, &mut shutdown).await {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "inbox worker: store failure; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        tracing::debug!("inbox worker stopped");
    }

    /// Claims one batch of at most `limit` inbox rows and applies it.
    ///
    /// # Errors
    /// A store failure while claiming.
    pub async fn drain_once(&self, limit: u32) -> Result<Drained, StoreError> {
        let store = self.app.store.as_ref();
        let events = store
            .claim_webhook_events(limit, self.settings.lease, Utc::now())
            .await?;
        let mut drained = Drained {
            claimed: events.len(),
            ..Drained::default()
        };
        if events.is_empty() {
            return Ok(drained);
        }
        // Planning reads only (integrations); should a read fail, the whole batch stays leased
        // and comes back, so no row of a chat overtakes an earlier one.
        let mut routes = Routes::default();
        self.prefetch(&events, &mut routes).await?;
        let mut unit = Work::default();
        let mut applied = Vec::with_capacity(events.len());
        for event in &events {
            let work = self.plan(event, &mut routes).await?;
            if self.held_chats.holds_back(event.id, &work) {
                continue;
            }
            unit.append(work);
            applied.push(event.id);
        }
        match store.commit(unit).await {
            Ok(committed) => {
                drained.finished = applied.len();
                drained.jobs_created = committed.jobs_created;
                self.held_chats.release(&applied);
            }
            Err(error) => {
                tracing::warn!(%error, rows = events.len(), "a batch of inbox rows failed as a whole; applying its rows one by one");
                self.apply_one_by_one(&events, &mut drained).await;
            }
        }
        if drained.jobs_created > 0 {
            self.app.wake.jobs.notify_one();
        }
        tracing::debug!(?drained, "inbox batch");
        Ok(drained)
    }

    /// The fallback for a batch whose unit failed: each row planned again (planning is cheap
    /// and the fallback rare, so the batch's plan is not kept for it) and committed as a unit
    /// of its own. A row that fails stays leased, and so do the later rows of its chat, which
    /// must not overtake it.
    async fn apply_one_by_one(&self, events: &[WebhookEvent], drained: &mut Drained) {
        let mut routes = Routes::default();
        let mut blocked_chats = Vec::new();
        for event in events {
            let work = match self.plan(event, &mut routes).await {
                Ok(work) => work,
                Err(error) => {
                    // The rest of the batch stays leased too, so nothing overtakes this row.
                    tracing::error!(event_id = %event.id, %error, "inbox batch not processed; it will be retried");
                    return;
                }
            };
            let chats = chats_of(&work);
            if chats.iter().any(|chat| blocked_chats.contains(chat))
                || self.held_chats.holds_back(event.id, &work)
            {
                continue;
            }
            match self.app.store.commit(work).await {
                Ok(committed) => {
                    drained.finished += 1;
                    drained.jobs_created += committed.jobs_created;
                    self.held_chats.release(&[event.id]);
                }
                Err(error) => {
                    tracing::error!(event_id = %event.id, %error, "inbox event not processed; it will be retried");
                    // Until its lease ends, later rows of its chats wait in later batches too.
                    self.held_chats
                        .hold(event.id, &chats, Instant::now() + self.settings.lease);
                    blocked_chats.extend(chats);
                }
            }
        }
    }

    /// Parses a row and plans what it writes, its final state included.
    async fn plan(&self, event: &WebhookEvent, routes: &mut Routes) -> Result<Work, StoreError> {
        let mut work = Work::default();
        if event.attempts > MAX_INBOX_ATTEMPTS {
            let why = "processing failed repeatedly; kept for replay";
            work.inbox
                .push((event.id, InboxState::Quarantined, Some(why.into())));
            return Ok(work);
        }
        let Lookup::Enabled(adapter) = self.app.registry.lookup(event.channel.as_str()) else {
            let why = "the channel is not enabled in this gateway";
            work.inbox
                .push((event.id, InboxState::Unrouted, Some(why.into())));
            return Ok(work);
        };
        let known = match event.integration_id {
            Some(id) => self.integration(id, routes).await?,
            None => None,
        };
        let parsed = match routes.parsed.remove(&event.id) {
            Some(parsed) => parsed,
            None => parse(adapter.as_ref(), event, known.as_ref()),
        };
        let mut inbound = match parsed {
            Ok(inbound) => inbound,
            Err(error) => {
                tracing::warn!(event_id = %event.id, %error, "quarantined a webhook body that does not parse");
                work.inbox
                    .push((event.id, InboxState::Quarantined, Some(error.0)));
                return Ok(work);
            }
        };
        let mut unrouted = 0;
        let items = inbound.len();
        for item in &mut inbound {
            let Some(integration) = self.route(event, item, routes).await? else {
                unrouted += 1;
                continue;
            };
            // Webhooks routed by the body (WhatsApp) are attributed here.
            if event.integration_id.is_none() {
                work.webhook_touches
                    .push((integration.id, event.received_at));
            }
            match item {
                InboundEvent::Message(message) => {
                    work.arrivals
                        .push(self.arrival(adapter.as_ref(), &integration, message));
                }
                InboundEvent::Status(status) => work.statuses.push(report(&integration, status)),
                InboundEvent::Account(account) => {
                    tracing::info!(integration_id = %integration.id, kind = %account.kind, "account event");
                    work.account_events.push(record(&integration, account));
                }
            }
        }
        let finished = if unrouted > 0 && unrouted == items {
            let why = "no active integration holds the account named in the body";
            (event.id, InboxState::Unrouted, Some(why.into()))
        } else {
            (event.id, InboxState::Processed, None)
        };
        work.inbox.push(finished);
        Ok(work)
    }

    /// Looks ahead over a batch so that planning it asks the store nothing: the integrations
    /// its rows were authenticated for, and those holding the accounts its bodies name, each
    /// kind in one query (a batch names up to one account per row; asked one by one, those
    /// round trips took half of a batch's time). The bodies parsed here are kept for planning.
    async fn prefetch(
        &self,
        events: &[WebhookEvent],
        routes: &mut Routes,
    ) -> Result<(), StoreError> {
        let store = self.app.store.as_ref();
        let named = events.iter().filter_map(|e| e.integration_id);
        let by_id = connections::integrations_by_id(store, named).await?;
        routes.by_id.extend(
            by_id
                .into_iter()
                .map(|(id, found)| (id, found.filter(|i| i.is_active))),
        );
        let mut wanted: HashMap<ChannelName, Vec<String>> = HashMap::new();
        for event in events.iter().filter(|e| e.attempts <= MAX_INBOX_ATTEMPTS) {
            let Lookup::Enabled(adapter) = self.app.registry.lookup(event.channel.as_str()) else {
                continue;
            };
            let known = event
                .integration_id
                .and_then(|id| routes.by_id.get(&id).cloned().flatten());
            let parsed = parse(adapter.as_ref(), event, known.as_ref());
            if let (None, Ok(items)) = (event.integration_id, &parsed) {
                let accounts = items
                    .iter()
                    .filter_map(InboundEvent::account_id)
                    .filter(|a| !a.is_empty());
                wanted
                    .entry(event.channel.clone())
                    .or_default()
                    .extend(accounts.map(str::to_owned));
            }
            routes.parsed.insert(event.id, parsed);
        }
        for (channel, mut accounts) in wanted {
            accounts.sort_unstable();
            accounts.dedup();
            let found = store.active_by_accounts(&channel, &accounts).await?;
            for account in accounts {
                routes.by_account.insert((channel.clone(), account), None);
            }
            for integration in found {
                if let Some(account) = integration.account_id.clone() {
                    routes
                        .by_account
                        .insert((channel.clone(), account), Some(integration));
                }
            }
        }
        Ok(())
    }

    async fn integration(
        &self,
        id: IntegrationId,
        routes: &mut Routes,
    ) -> Result<Option<Integration>, StoreError> {
        if let Some(known) = routes.by_id.get(&id) {
            return Ok(known.clone());
        }
        let found = self
            .app
            .store
            .integration_by_id(id)
            .await?
            .filter(|i| i.is_active);
        routes.by_id.insert(id, found.clone());
        Ok(found)
    }

    /// The active integration an event is for: the one the request was authenticated for (a
    /// per-integration secret), else the one holding the event's account.
    async fn route(
        &self,
        event: &WebhookEvent,
        inbound: &InboundEvent,
        routes: &mut Routes,
    ) -> Result<Option<Integration>, StoreError> {
        if let Some(id) = event.integration_id {
            return self.integration(id, routes).await;
        }
        let Some(account) = inbound.account_id().filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let key = (event.channel.clone(), account.to_owned());
        if let Some(known) = routes.by_account.get(&key) {
            return Ok(known.clone());
        }
        let found = self
            .app
            .store
            .active_by_account(&event.channel, account)
            .await?;
        routes.by_account.insert(key, found.clone());
        Ok(found)
    }

    /// An inbound message to store once; one that wants a reply gets one respond job — also
    /// when it is a repeat: a process that died between storing the message and queueing its
    /// reply left it unanswered, and this redelivery or re-run must finish the job. The dedupe
    /// key keeps it to one reply. The message's raw JSON moves into the stored payload.
    fn arrival(
        &self,
        adapter: &dyn ChannelAdapter,
        integration: &Integration,
        message: &mut InboundMessage,
    ) -> Arrival {
        let window = adapter.descriptor().capabilities.reply_window;
        let window_expires_at = window
            .filter(|_| message.kind.is_answerable())
            .and_then(|w| ChronoDuration::from_std(w).ok())
            .map(|w| message.timestamp + w);
        // NUL characters become U+FFFD before anything is stored or answered (see
        // `storable_text`): the same text on every backend.
        let text = message
            .text
            .as_deref()
            .map(|t| storable_text(t).into_owned());
        let wants_reply = message.wants_reply() && self.responder_enabled;
        // A local responder answers at once, where the store commits the message and its
        // replies together; otherwise the responder is asked through a respond job, whose
        // dedupe key keeps a message to one answer across crashes and redeliveries.
        let immediate = if wants_reply && self.app.store.atomic_units() {
            self.responder.immediate(&message.kind, text.as_deref())
        } else {
            None
        };
        let replies = immediate
            .as_ref()
            .map(|replies| self.reply_drafts(integration, message, replies))
            .unwrap_or_default();
        let follow_up = (wants_reply && immediate.is_none())
            .then(|| respond_follow_up(integration, self.settings.max_attempts));
        let mut payload = json!({
                "sender": message.sender,
                "chat": message.chat,
                "media": message.media,
                "reply_to": message.reply_to,
                "thread_id": message.thread_id,
        });
        // The raw JSON is moved, not copied: the parsed message is not used after this.
        if let Some(fields) = payload.as_object_mut() {
            fields.insert("raw".into(), std::mem::take(&mut message.raw));
        }
        make_storable(&mut payload);
        Arrival {
            conversation: ConversationUpsert {
                business_id: integration.business_id,
                integration_id: integration.id,
                channel_type: integration.channel.clone(),
                external_chat_id: storable_text(&message.chat.external_id).into_owned(),
                contact_name: message
                    .chat
                    .title
                    .as_deref()
                    .or(message.sender.name.as_deref())
                    .map(|name| storable_text(name).into_owned()),
                last_message_at: message.timestamp,
                window_expires_at,
            },
            provider_message_id: storable_text(&message.provider_message_id).into_owned(),
            kind: message.kind.clone(),
            text,
            payload,
            provider_timestamp: message.timestamp,
            follow_up,
            replies,
        }
    }

    /// A local responder's replies to an inbound message, as drafts queued with it.
    fn reply_drafts(
        &self,
        integration: &Integration,
        message: &InboundMessage,
        replies: &[OutboundContent],
    ) -> Vec<ReplyDraft> {
        replies
            .iter()
            .enumerate()
            .map(|(n, content)| {
                let outbound = OutboundMessage {
                    to: message.chat.external_id.clone(),
                    content: content.clone(),
                    reply_to: Some(message.provider_message_id.clone()),
                    thread_id: message.thread_id.clone(),
                    reference: None,
                };
                let mut payload = json!({ "outbound": outbound });
                make_storable(&mut payload);
                ReplyDraft {
                    local_id: reply_key(&storable_text(&message.provider_message_id), n),
                    kind: content.kind(),
                    text: content.display_text(),
                    payload,
                    follow_up: Some(send_follow_up(
                        integration.business_id,
                        integration.id,
                        outbound,
                        self.settings.max_attempts,
                    )),
                }
            })
            .collect()
    }
}

/// A provider status report. One that echoes the gateway's reference for a message whose
/// provider id is not known yet (its send timed out, or a worker died mid-send) gives the
/// message that id, so the status applies and the send is reconciled instead of repeated.
fn report(integration: &Integration, status: &StatusUpdate) -> StatusReport {
    let storable = |text: &Option<String>| text.as_deref().map(|t| storable_text(t).into_owned());
    StatusReport {
        integration_id: integration.id,
        provider_message_id: storable_text(&status.provider_message_id).into_owned(),
        status: status.status,
        at: status.timestamp,
        error_code: storable(&status.error_code),
        error_reason: storable(&status.error_reason),
        reference: status.reference.as_deref().and_then(|r| r.parse().ok()),
    }
}

/// An account event on the integration; a bot blocked by a user makes that conversation
/// unreachable (and unblocking reverses it).
fn record(integration: &Integration, event: &AccountEvent) -> AccountRecord {
    let reachable = match event.kind.as_str() {
        "bot_blocked" | "bot_removed" => Some(false),
        "bot_unblocked" | "bot_added" => Some(true),
        _ => None,
    };
    let mut raw = event.raw.clone();
    make_storable(&mut raw);
    let summary = event.summary.as_deref().unwrap_or(&event.kind);
    AccountRecord {
        integration_id: integration.id,
        kind: storable_text(&event.kind).into_owned(),
        summary: storable_text(summary).into_owned(),
        raw,
        chat: event
            .chat_id
            .as_deref()
            .map(|c| storable_text(c).into_owned()),
        reachable,
    }
}

/// A row's body as its adapter reads it (for the integration it was authenticated for, if any).
fn parse(
    adapter: &dyn ChannelAdapter,
    event: &WebhookEvent,
    known: Option<&Integration>,
) -> Result<Vec<InboundEvent>, ParseError> {
    match known {
        Some(integration) => adapter.parse_webhook_for(&event.body, integration),
        None => adapter.parse_webhook(&event.body),
    }
}
