//! The message pipeline inside `serve`: builds its workers and spawns them.
//!
//! - [`inbox::InboxWorker`] drains the webhook inbox into conversations, messages, statuses
//!   and reply jobs;
//! - [`job_worker::JobWorker`] runs `respond` and `send` jobs (their kinds and payloads are in
//!   [`jobs`]);
//! - [`sweeper::Sweeper`] flags expiring tokens and deletes old processed webhooks;
//! - [`listener`] turns other instances' `NOTIFY`s into local wake-ups (PostgreSQL).
//!
//! Work is found by polling the store, woken early by in-process notifications (a webhook was
//! stored, a job was queued) and, on PostgreSQL, by `LISTEN/NOTIFY` from other instances. Every
//! claim is a lease: a worker that dies leaves rows that come back when the lease ends.

mod flood;
pub mod governor;
mod held_chats;
pub mod inbox;
pub mod job_worker;
pub mod jobs;
pub mod listener;
pub mod responder;
pub mod retry;
pub mod sweeper;

use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::WorkerSettings;
use crate::state::AppState;
use inbox::InboxWorker;
use job_worker::JobWorker;
use responder::Responder;
use sweeper::Sweeper;

/// The pipeline's workers, built and not yet running.
#[derive(Debug)]
pub struct Pipeline {
    pub inbox: Arc<InboxWorker>,
    pub jobs: Arc<JobWorker>,
    pub sweeper: Arc<Sweeper>,
    app: AppState,
    /// Job loops to run (`workers.count`).
    job_loops: usize,
    /// The database to `LISTEN` on for other instances' wake-ups (PostgreSQL only).
    listen_url: Option<SecretString>,
}

impl Pipeline {
    #[must_use]
    pub fn new(
        app: AppState,
        settings: WorkerSettings,
        responder: Arc<dyn Responder>,
        responder_enabled: bool,
        listen_url: Option<SecretString>,
    ) -> Arc<Self> {
        let inbox = InboxWorker::new(
            app.clone(),
            settings.clone(),
            Arc::clone(&responder),
            responder_enabled,
        );
        let sweeper = Sweeper::new(Arc::clone(&app.store), settings.inbox_retention);
        let job_loops = settings.count.max(1);
        let jobs = JobWorker::new(app.clone(), settings, responder);
        Arc::new(Self {
            inbox: Arc::new(inbox),
            jobs: Arc::new(jobs),
            sweeper: Arc::new(sweeper),
            app,
            job_loops,
            listen_url,
        })
    }

    /// Starts the workers; they stop taking work when `shutdown` turns true and finish what they
    /// hold. Await the returned set to know they are done.
    pub fn spawn(&self, shutdown: watch::Receiver<bool>) -> JoinSet<()> {
        let mut set = JoinSet::new();
        set.spawn(Arc::clone(&self.inbox).run(shutdown.clone()));
        for n in 0..self.job_loops {
            set.spawn(Arc::clone(&self.jobs).run(n, shutdown.clone()));
        }
        if let Some(url) = self.listen_url.clone() {
            let (store, wake) = (Arc::clone(&self.app.store), Arc::clone(&self.app.wake));
            set.spawn(listener::run(store, wake, url, shutdown.clone()));
        }
        set.spawn(Arc::clone(&self.sweeper).run(shutdown));
        set
    }
}
