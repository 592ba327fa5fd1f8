//! The jobs (outbox) queue: leased, retried, held for re-authorisation, ordered per queue key.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreResult;
use crate::ids::{BusinessId, IntegrationId, JobId};

/// State of a job row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    /// Waiting for the integration to be re-authorised.
    Held,
    Done,
    /// Out of attempts or permanently failed; retryable from the API.
    Dead,
}

impl JobState {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Held => "held",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "held" => Self::Held,
            "done" => Self::Done,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What to do: `send`, `respond`, ...
    pub kind: String,
    pub business_id: BusinessId,
    pub integration_id: Option<IntegrationId>,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
    /// A key that makes the job exist at most once (e.g. "reply to message X").
    pub dedupe_key: Option<String>,
    /// Jobs sharing a queue key run one at a time, in creation order (e.g. one conversation's
    /// replies): a job is not claimed while an earlier job of its queue is pending, running or
    /// held.
    pub queue_key: Option<String>,
    pub max_attempts: i32,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub business_id: BusinessId,
    pub integration_id: Option<IntegrationId>,
    pub payload: serde_json::Value,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub dedupe_key: Option<String>,
    pub queue_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Enqueues a job; `Conflict(DuplicateJob)` when the dedupe key exists.
    async fn enqueue_job(&self, job: NewJob) -> StoreResult<JobId>;
    async fn job(&self, id: JobId) -> StoreResult<Option<Job>>;
    /// Leases up to `limit` due jobs (pending with `run_at <= now`, or running with an expired
    /// lease), counting an attempt; each job goes to one claimer only.
    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>>;
    async fn complete_job(&self, id: JobId) -> StoreResult<()>;
    /// Back to pending at `run_at`, recording the error.
    async fn retry_job(&self, id: JobId, run_at: DateTime<Utc>, error: &str) -> StoreResult<()>;
    /// Back to pending without counting the attempt (shutdown).
    async fn release_job(&self, id: JobId) -> StoreResult<()>;
    /// Back to pending at `run_at` without counting the attempt (the rate governor said
    /// "not yet").
    async fn postpone_job(&self, id: JobId, run_at: DateTime<Utc>) -> StoreResult<()>;
    async fn kill_job(&self, id: JobId, error: &str) -> StoreResult<()>;
    /// Holds the job until its integration is re-authorised.
    async fn hold_job(&self, id: JobId, error: &str) -> StoreResult<()>;
    /// Releases every held job of an integration; returns how many.
    async fn release_held_jobs(
        &self,
        integration: IntegrationId,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    async fn list_jobs(
        &self,
        business: BusinessId,
        state: JobState,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// A dead job of this business back to pending with a fresh attempt budget.
    async fn retry_dead_job(
        &self,
        business: BusinessId,
        id: JobId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}
