//! The message pipeline inside `serve`: workers that drain the webhook inbox, run `respond`
//! and `send` jobs, and sweep expiring tokens.
//!
//! Work is found by polling the store, woken early by in-process notifications (a webhook was
//! stored, a job was queued) and, on PostgreSQL, by `LISTEN/NOTIFY` from other instances. Every
//! claim is a lease: a worker that dies leaves rows that come back when the lease ends.

pub mod governor;
pub mod inbox;
pub mod outbox;
pub mod responder;
pub mod retry;
mod sweeper;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt as _;
use switchboard_core::error::StoreError;
use switchboard_core::store::Job;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::state::AppState;
use governor::Governor;
use outbox::Outcome;
use responder::Responder;

/// Groups of inbox rows (one chat's rows each) applied at the same time by the inbox worker.
/// Measured (BENCHMARKS.md): applying groups concurrently raised end-to-end throughput by
/// well under 2× but took durable commits from the webhook path and cut ingest by 2–5×, so
/// the groups are applied one after another until the pipeline's writes are batched.
const INBOX_CONCURRENCY: usize = 1;

/// Wake-ups shared by the HTTP layer and the workers.
#[derive(Debug, Default)]
pub struct Wakeups {
    /// A webhook body was stored.
    pub inbox: Notify,
    /// A job was queued or released.
    pub jobs: Notify,
}

/// Worker settings (`[workers]`).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Concurrent job workers (inbox draining has one worker per process, which keeps a burst
    /// from one chat in order).
    pub count: usize,
    /// Longest wait between two looks at the queues when nothing woke the worker.
    pub poll_interval: Duration,
    /// How long a claimed row belongs to its worker.
    pub lease: Duration,
    /// Rows claimed at once.
    pub batch: u32,
    /// Attempts of a job before it is dead.
    pub max_attempts: i32,
    /// How long a send of unknown outcome waits for the provider's status report before it is
    /// sent again (channels that report statuses only).
    pub reconcile_after: Duration,
    /// A name for this process's claims.
    pub worker_id: String,
}

/// The running pipeline's shared state.
pub struct Pipeline {
    pub app: AppState,
    pub settings: WorkerSettings,
    responder: Arc<dyn Responder>,
    responder_enabled: bool,
    governor: Governor,
    /// The database to `LISTEN` on for other instances' wake-ups (PostgreSQL only).
    listen_url: Option<secrecy::SecretString>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    #[must_use]
    pub fn new(
        app: AppState,
        settings: WorkerSettings,
        responder: Arc<dyn Responder>,
        responder_enabled: bool,
        listen_url: Option<secrecy::SecretString>,
    ) -> Arc<Self> {
        Arc::new(Self {
            app,
            settings,
            responder,
            responder_enabled,
            governor: Governor::default(),
            listen_url,
        })
    }

    fn wake_jobs(&self) {
        self.app.wake.jobs.notify_one();
    }

    /// Starts the workers; they stop taking work when `shutdown` turns true and finish what they
    /// hold. Await the returned set to know they are done.
    pub fn spawn(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> JoinSet<()> {
        let mut set = JoinSet::new();
        let me = Arc::clone(self);
        let stop = shutdown.clone();
        set.spawn(async move { me.inbox_loop(stop).await });
        for n in 0..self.settings.count.max(1) {
            let me = Arc::clone(self);
            let stop = shutdown.clone();
            set.spawn(async move { me.job_loop(n, stop).await });
        }
        if let Some(url) = self.listen_url.clone() {
            let me = Arc::clone(self);
            let stop = shutdown.clone();
            set.spawn(async move { me.listen_loop(url, stop).await });
        }
        let me = Arc::clone(self);
        set.spawn(async move { me.sweeper_loop(shutdown).await });
        set
    }

    /// Turns other instances' `NOTIFY`s into local wake-ups; polling covers any gap.
    async fn listen_loop(
        self: Arc<Self>,
        url: secrecy::SecretString,
        mut shutdown: watch::Receiver<bool>,
    ) {
        use secrecy::ExposeSecret;
        use switchboard_store::Topic;
        while !*shutdown.borrow() {
            let mut subscription = match switchboard_store::subscribe(url.expose_secret()).await {
                Ok(Some(subscription)) => subscription,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "LISTEN failed; relying on polling for now");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    topic = subscription.recv() => match topic {
                        Ok(Topic::Inbox) => self.app.wake.inbox.notify_one(),
                        Ok(Topic::Jobs) => self.app.wake.jobs.notify_one(),
                        Err(error) => {
                            tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                            break;
                        }
                    },
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// Waits for a wake-up, the poll interval, or shutdown; returns false on shutdown.
    async fn idle(&self, notify: &Notify, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            () = notify.notified() => true,
            () = tokio::time::sleep(self.settings.poll_interval) => true,
            _ = shutdown.changed() => !*shutdown.borrow(),
        }
    }

    async fn inbox_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self.drain_inbox_once().await {
                Ok(0) => {
                    if !self.idle(&self.app.wake.inbox, &mut shutdown).await {
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

    /// Claims and processes one batch of inbox rows; returns how many were claimed.
    ///
    /// # Errors
    /// A store failure while claiming.
    pub async fn drain_inbox_once(&self) -> Result<usize, StoreError> {
        let store = self.app.store.as_ref();
        let events = store
            .claim_webhook_events(self.settings.batch, self.settings.lease, Utc::now())
            .await?;
        // Parse the batch, then apply it concurrently: rows of one chat in order (they share a
        // group), everything else side by side. The store round trips, not the CPU, bound this.
        let mut groups: Vec<Vec<(&switchboard_core::store::WebhookEvent, inbox::Prepared)>> =
            Vec::new();
        let mut group_of: std::collections::HashMap<(String, String), usize> =
            std::collections::HashMap::new();
        for event in &events {
            if event.attempts > inbox::MAX_INBOX_ATTEMPTS {
                let why = "processing failed repeatedly; kept for replay";
                store
                    .finish_webhook_event(
                        event.id,
                        switchboard_core::store::InboxState::Quarantined,
                        Some(why),
                    )
                    .await?;
                continue;
            }
            let prepared = match self.prepare(event).await {
                Ok(prepared) => prepared,
                Err(error) => {
                    tracing::error!(event_id = %event.id, %error, "inbox event not processed; it will be retried");
                    continue;
                }
            };
            match prepared.order_key() {
                Some(key) => {
                    let index = *group_of.entry(key).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[index].push((event, prepared));
                }
                None => groups.push(vec![(event, prepared)]),
            }
        }
        // A few groups at a time: more would take commits from the webhook path itself.
        futures::stream::iter(groups)
            .for_each_concurrent(INBOX_CONCURRENCY, |group| async move {
            for (event, prepared) in group {
                let inbox::Prepared::Ready { adapter, events } = prepared else { continue };
                if let Err(error) = self.apply_events(event, adapter.as_ref(), &events).await {
                    tracing::error!(event_id = %event.id, %error, "inbox event not processed; it will be retried");
                    // Later rows of the same chat must wait for this one: leave them leased too.
                    break;
                }
            }
        })
        .await;
        Ok(events.len())
    }

    async fn job_loop(self: Arc<Self>, n: usize, mut shutdown: watch::Receiver<bool>) {
        let worker = format!("{}-{n}", self.settings.worker_id);
        while !*shutdown.borrow() {
            match self.run_jobs_once(&worker).await {
                Ok(0) => {
                    if !self.idle(&self.app.wake.jobs, &mut shutdown).await {
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
    /// # Errors
    /// A store failure while claiming.
    pub async fn run_jobs_once(&self, worker: &str) -> Result<usize, StoreError> {
        let jobs = self
            .app
            .store
            .claim_jobs(
                worker,
                self.settings.batch.min(8),
                self.settings.lease,
                Utc::now(),
            )
            .await?;
        // A claim never holds two jobs of one queue, so a batch could run side by side; it runs
        // in turn, for the same reason as the inbox (see `INBOX_CONCURRENCY`).
        for job in &jobs {
            if let Err(error) = self.run_job(job).await {
                tracing::error!(job_id = %job.id, %error, "job failed on a store error; its lease will expire and it runs again");
            }
        }
        Ok(jobs.len())
    }

    #[tracing::instrument(skip_all, fields(job_id = %job.id, kind = %job.kind, attempt = job.attempts))]
    async fn run_job(&self, job: &Job) -> Result<(), StoreError> {
        let outcome = match job.kind.as_str() {
            outbox::RESPOND_JOB => self.run_respond(job).await?,
            outbox::SEND_JOB => self.run_send(job).await?,
            other => Outcome::Dead(format!("unknown job kind `{other}`")),
        };
        let store = self.app.store.as_ref();
        match outcome {
            Outcome::Done => store.complete_job(job.id).await,
            Outcome::Retry { after, error } if job.attempts < job.max_attempts => {
                let at = Utc::now() + chrono::Duration::from_std(after).unwrap_or_default();
                tracing::info!(retry_in_ms = after.as_millis(), %error, "will retry");
                store.retry_job(job.id, at, &error).await
            }
            Outcome::Retry { error, .. } => {
                store
                    .kill_job(job.id, &format!("out of attempts; last error: {error}"))
                    .await?;
                self.fail_message_of(job, "attempts_exhausted", &error)
                    .await
            }
            Outcome::Postpone(wait) => {
                let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                store.postpone_job(job.id, at).await
            }
            Outcome::Hold(why) => store.hold_job(job.id, &why).await,
            Outcome::Dead(why) => store.kill_job(job.id, &why).await,
        }
    }

    /// A send job that ran out of attempts fails its message with the last error.
    async fn fail_message_of(&self, job: &Job, code: &str, reason: &str) -> Result<(), StoreError> {
        if job.kind != outbox::SEND_JOB {
            return Ok(());
        }
        if let Ok(payload) = serde_json::from_value::<outbox::SendPayload>(job.payload.clone()) {
            self.app
                .store
                .set_message_status(
                    payload.message_id,
                    switchboard_core::domain::DeliveryStatus::Failed,
                    Some(code),
                    Some(reason),
                )
                .await?;
        }
        Ok(())
    }
}
