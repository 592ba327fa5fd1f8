//! The jobs / outbox table: enqueued once per dedupe key, leased, retried, held for
//! re-authorisation, ordered per queue key. The claim differs in kind per backend.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use switchboard_core::store::{Job, JobState, JobStore, NewJob, StoreResult};
use switchboard_core::{BusinessId, IntegrationId, JobId};
use uuid::Uuid;

use crate::sql::Row;
use crate::{Backend, SqlStore, common};

pub(crate) const COLUMNS: &str = "id, kind, business_id, integration_id, payload, state, attempts, \
    max_attempts, run_at, last_error, dedupe_key, queue_key, created_at";

fn job(row: Row<'_>) -> StoreResult<Job> {
    let integration: Option<Uuid> = row.get("integration_id")?;
    let payload: Json<Value> = row.get("payload")?;
    Ok(Job {
        id: JobId::from_uuid(row.get("id")?),
        kind: row.get("kind")?,
        business_id: BusinessId::from_uuid(row.get("business_id")?),
        integration_id: integration.map(IntegrationId::from_uuid),
        payload: payload.0,
        state: row.name("state", common::job_state)?,
        attempts: row.get("attempts")?,
        max_attempts: row.get("max_attempts")?,
        run_at: row.time("run_at")?,
        last_error: row.get("last_error")?,
        dedupe_key: row.get("dedupe_key")?,
        queue_key: row.get("queue_key")?,
        created_at: row.time("created_at")?,
    })
}

impl<B: Backend> SqlStore<B> {
    /// Sets `set` (which may use the error as `$2`) on one job; `NotFound` when there is none.
    async fn update_job(&self, id: JobId, set: &str, error: &str) -> StoreResult<()> {
        let sql = format!("UPDATE jobs SET {set}, updated_at = $3 WHERE id = $1");
        self.db()
            .query(&sql)
            .bind(id.as_uuid())
            .bind(error)
            .bind_time(common::now())
            .execute_one()
            .await
    }
}

/// Claimed jobs in the order they were claimed: the earliest due first.
pub(crate) fn claimed<'r>(rows: impl Iterator<Item = Row<'r>>) -> StoreResult<Vec<Job>> {
    let mut jobs = rows.map(job).collect::<StoreResult<Vec<_>>>()?;
    jobs.sort_by_key(|j| (j.run_at, j.id));
    Ok(jobs)
}

#[async_trait]
impl<B: Backend> JobStore for SqlStore<B> {
    async fn enqueue_job(&self, job: NewJob) -> StoreResult<JobId> {
        let id = JobId::new();
        self.db()
            .query(
                "INSERT INTO jobs (id, kind, business_id, integration_id, payload, max_attempts, \
                 run_at, dedupe_key, queue_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $9, $9)",
            )
            .bind(id.as_uuid())
            .bind(&job.kind)
            .bind(job.business_id.as_uuid())
            .bind(job.integration_id.map(|i| i.as_uuid()))
            .bind(Json(&job.payload))
            .bind(job.max_attempts)
            .bind_time(job.run_at)
            .bind(job.dedupe_key.as_deref())
            .bind_time(common::now())
            .bind(job.queue_key.as_deref())
            .execute()
            .await?;
        Ok(id)
    }

    async fn job(&self, id: JobId) -> StoreResult<Option<Job>> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        self.db()
            .query(&sql)
            .bind(id.as_uuid())
            .fetch_optional(job)
            .await
    }

    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>> {
        self.backend.claim_jobs(worker, limit, lease, now).await
    }

    async fn complete_job(&self, id: JobId) -> StoreResult<()> {
        self.db()
            .query(
                "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, \
                 updated_at = $2 \
             WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind_time(common::now())
            .execute_one()
            .await
    }

    async fn retry_job(&self, id: JobId, run_at: DateTime<Utc>, error: &str) -> StoreResult<()> {
        self.db().query(
            "UPDATE jobs SET state = 'pending', run_at = $2, last_error = $3, locked_by = NULL, \
                 locked_until = NULL, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind_time(run_at)
        .bind(error)
        .bind_time(common::now())
        .execute_one().await
    }

    async fn release_job(&self, id: JobId) -> StoreResult<()> {
        // The claim counted an attempt that never ran: give it back. Only a running job is
        // released; releasing anything else is a no-op, so shutdown may release blindly.
        let sql = format!(
            "UPDATE jobs SET state = 'pending', attempts = {greatest}(attempts - 1, 0), \
                 locked_by = NULL, locked_until = NULL, updated_at = $2 \
             WHERE id = $1 AND state = 'running'",
            greatest = self.db().greatest()
        );
        self.db()
            .query(&sql)
            .bind(id.as_uuid())
            .bind_time(common::now())
            .execute()
            .await?;
        Ok(())
    }

    async fn postpone_job(&self, id: JobId, run_at: DateTime<Utc>) -> StoreResult<()> {
        // Like a release, the attempt the claim counted is given back.
        let sql = format!(
            "UPDATE jobs SET state = 'pending', run_at = $2, \
                 attempts = {greatest}(attempts - 1, 0), \
                 locked_by = NULL, locked_until = NULL, updated_at = $3 \
             WHERE id = $1 AND state = 'running'",
            greatest = self.db().greatest()
        );
        self.db()
            .query(&sql)
            .bind(id.as_uuid())
            .bind_time(run_at)
            .bind_time(common::now())
            .execute_one()
            .await
    }

    async fn kill_job(&self, id: JobId, error: &str) -> StoreResult<()> {
        let set = "state = 'dead', last_error = $2, locked_by = NULL, locked_until = NULL";
        self.update_job(id, set, error).await
    }

    async fn hold_job(&self, id: JobId, error: &str) -> StoreResult<()> {
        let set = "state = 'held', last_error = $2, locked_by = NULL, locked_until = NULL";
        self.update_job(id, set, error).await
    }

    async fn release_held_jobs(
        &self,
        integration: IntegrationId,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.db()
            .query(
                "UPDATE jobs SET state = 'pending', run_at = $2, updated_at = $2 \
             WHERE integration_id = $1 AND state = 'held'",
            )
            .bind(integration.as_uuid())
            .bind_time(now)
            .execute()
            .await
    }

    async fn list_jobs(
        &self,
        business: BusinessId,
        state: JobState,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        // The state is part of the statement: a plan made once for any state (PostgreSQL's
        // generic plans) could not use the index that holds only dead and held jobs.
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE business_id = $1 AND state = '{state}' \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            state = state.as_str()
        );
        self.db()
            .query(&sql)
            .bind(business.as_uuid())
            .bind(common::limit(limit))
            .fetch_all(job)
            .await
    }

    async fn retry_dead_job(
        &self,
        business: BusinessId,
        id: JobId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.db()
            .query(
                "UPDATE jobs SET state = 'pending', attempts = 0, run_at = $3, updated_at = $3 \
             WHERE business_id = $1 AND id = $2 AND state = 'dead'",
            )
            .bind(business.as_uuid())
            .bind(id.as_uuid())
            .bind_time(now)
            .execute()
            .await
            .map(|changed| changed > 0)
    }
}
