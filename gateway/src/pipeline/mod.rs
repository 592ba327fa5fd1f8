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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchboard_core::domain::{DeliveryStatus, Integration};
use switchboard_core::error::StoreError;
use switchboard_core::store::{Job, JobEnd, Store, Work};
use switchboard_core::{IntegrationId, JobId};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::state::AppState;
use governor::Governor;
use outbox::{Outcome, Ran, SendStep};
use responder::Responder;

/// Provider calls and responder calls in flight at once in one process, across all job
/// workers. Each is an HTTP request on a connection of its own while it lasts; unbounded, a
/// large backlog opened a thousand connections and doubled the process's memory (BENCHMARKS.md).
const MAX_CONCURRENT_CALLS: usize = 64;

/// Jobs claimed at once by one job worker. A batch runs side by side, so this also bounds how
/// much one worker holds in memory; the inbox takes `workers.batch` rows at once.
const MAX_JOB_BATCH: u32 = 64;

/// A webhook rate (requests per second, measured by this process) from which the inbox worker
/// defers its next batch (see [`Pipeline::yield_to_ingest`]). Well above the rate of a busy
/// normal day (500 answered messages a second bring about 2,000 webhooks a second, with the
/// status reports); reached in floods and bursts.
const INGEST_FLOOD_RATE: f64 = 4_000.0;

/// The longest the inbox worker defers to the webhook path before it takes a batch anyway, so
/// replies keep flowing during a flood.
const MAX_INGEST_DEFERRAL: Duration = Duration::from_secs(1);

/// During a flood the inbox worker takes this fraction of `workers.batch` per batch (16 rows a
/// second at the default 256). Every row taken then costs the webhook path: its reply is sent,
/// and the provider's three status reports come back as webhooks. Measured on the benchmark's
/// flood: a whole batch once a second showed in the slowest responses; a quarter cost about
/// 10 % of the ingest rate, a sixteenth about 4 % (BENCHMARKS.md). The trickle only keeps the
/// oldest chats moving; the backlog is answered at full speed once the flood ends.
const FLOOD_BATCH_DIVISOR: u32 = 16;

/// How often a deferring inbox worker looks at the webhook rate again.
const INGEST_SAMPLE: Duration = Duration::from_millis(10);

/// The integrations with these ids, read in one query: each id maps to its integration, or to
/// `None` where there is none.
async fn integrations_by_id(
    store: &dyn Store,
    ids: impl IntoIterator<Item = IntegrationId>,
) -> Result<HashMap<IntegrationId, Option<Integration>>, StoreError> {
    let mut found: HashMap<IntegrationId, Option<Integration>> =
        ids.into_iter().map(|id| (id, None)).collect();
    if !found.is_empty() {
        let ids: Vec<IntegrationId> = found.keys().copied().collect();
        for integration in store.integrations_by_ids(&ids).await? {
            found.insert(integration.id, Some(integration));
        }
    }
    Ok(found)
}

/// Whether `received` webhooks within `elapsed` is a flood (see [`INGEST_FLOOD_RATE`]).
fn is_flood(received: u64, elapsed: Duration) -> bool {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let rate = received as f64 / elapsed.as_secs_f64().max(1e-3);
    rate >= INGEST_FLOOD_RATE
}

/// Wake-ups shared by the HTTP layer and the workers.
#[derive(Debug, Default)]
pub struct Wakeups {
    /// A webhook body was stored.
    pub inbox: Notify,
    /// A job was queued or released.
    pub jobs: Notify,
    /// Webhooks stored since start.
    webhooks_received: std::sync::atomic::AtomicU64,
}

impl Wakeups {
    /// Counts a stored webhook, for the inbox worker's view of the webhook rate.
    pub fn webhook_received(&self) {
        self.webhooks_received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn webhooks_received(&self) -> u64 {
        self.webhooks_received
            .load(std::sync::atomic::Ordering::Relaxed)
    }
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
    /// How long a processed webhook is kept after it was received (`None`: forever).
    pub inbox_retention: Option<Duration>,
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
    /// Chats held back after a row of theirs failed (see `inbox.rs`).
    held_chats: inbox::HeldChats,
    /// Bounds the provider and responder calls in flight (see [`MAX_CONCURRENT_CALLS`]).
    calls: tokio::sync::Semaphore,
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
            held_chats: inbox::HeldChats::default(),
            calls: tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS),
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

    /// Turns other instances' `NOTIFY`s into local wake-ups (this instance's own are passed
    /// over: it woke its workers in process); polling covers any gap.
    async fn listen_loop(
        self: Arc<Self>,
        url: secrecy::SecretString,
        mut shutdown: watch::Receiver<bool>,
    ) {
        use secrecy::ExposeSecret;
        use switchboard_store::Topic;
        while !*shutdown.borrow() {
            let own = self.app.store.wake_up_tag();
            let mut subscription =
                match switchboard_store::subscribe(url.expose_secret(), own).await {
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
        let mut last_batch = (
            tokio::time::Instant::now(),
            self.app.wake.webhooks_received(),
        );
        while !*shutdown.borrow() {
            let flooding = self.yield_to_ingest(last_batch).await;
            last_batch = (
                tokio::time::Instant::now(),
                self.app.wake.webhooks_received(),
            );
            let limit = if flooding {
                (self.settings.batch / FLOOD_BATCH_DIVISOR).max(1)
            } else {
                self.settings.batch
            };
            match self
                .drain_inbox_once(limit)
                .await
                .map(|drained| drained.claimed)
            {
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

    /// While webhooks arrive faster than [`INGEST_FLOOD_RATE`], waits — at most
    /// [`MAX_INGEST_DEFERRAL`] after the previous batch began — before the next batch.
    /// Acknowledging the provider quickly comes first: it retries, and in the end disables, a
    /// slow webhook, and what it sends is durable once acknowledged. The batches taken after a
    /// flood are fuller, so cheaper per row. On several instances each one defers to its own
    /// webhook traffic only.
    async fn yield_to_ingest(&self, (since, received_then): (tokio::time::Instant, u64)) -> bool {
        let until = since + MAX_INGEST_DEFERRAL;
        let (mut at, mut received) = (since, received_then);
        loop {
            let now = tokio::time::Instant::now();
            let count = self.app.wake.webhooks_received();
            if !is_flood(count.saturating_sub(received), now.duration_since(at)) {
                return false;
            }
            if now >= until {
                return true;
            }
            (at, received) = (now, count);
            tokio::time::sleep(INGEST_SAMPLE).await;
        }
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
    /// The batch is read in bulk; sends are checked, their messages marked `uncertain` in one
    /// commit, then every provider call and responder runs side by side, and every outcome is
    /// written in one more commit. A claim never holds two jobs of one queue (one
    /// conversation), so running a batch side by side keeps each conversation in order.
    ///
    /// # Errors
    /// A store failure while claiming, reading or marking; the jobs' leases then run out and
    /// they run again.
    pub async fn run_jobs_once(&self, worker: &str) -> Result<usize, StoreError> {
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
                outbox::RESPOND_JOB => responds.push(job),
                outbox::SEND_JOB => {
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
                before.status_sets.push(outbox::status(
                    call.payload.message_id,
                    DeliveryStatus::Uncertain,
                ));
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
            self.wake_jobs();
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
                    if job.kind == outbox::SEND_JOB
                        && let Ok(payload) =
                            serde_json::from_value::<outbox::SendPayload>(job.payload.clone())
                    {
                        unit.status_sets.push(outbox::failed(
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::is_flood;

    #[test]
    fn a_flood_is_four_thousand_webhooks_a_second_or_more() {
        assert!(!is_flood(0, Duration::from_millis(10)));
        // 500 answered messages a second: about 2,000 webhooks a second with status reports.
        assert!(!is_flood(20, Duration::from_millis(10)));
        assert!(!is_flood(2_000, Duration::from_secs(1)));
        assert!(is_flood(40, Duration::from_millis(10)));
        assert!(is_flood(16_000, Duration::from_secs(1)));
        // No time elapsed is not a division by zero; a burst in no time is a flood.
        assert!(!is_flood(0, Duration::ZERO));
        assert!(is_flood(10, Duration::ZERO));
    }
}
