//! The jobs / outbox table, PostgreSQL: claimed with `FOR UPDATE SKIP LOCKED` under a lease,
//! so any number of gateway instances share one queue and each job goes to one claimer.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use switchboard_core::store::{Job, JobState, JobStore, NewJob, StoreResult};
use switchboard_core::{BusinessId, IntegrationId, JobId};
use uuid::Uuid;

use super::{PgStore, db, get, get_ts, one_row, ts};
use crate::common;

const COLUMNS: &str = "id, kind, business_id, integration_id, payload, state, attempts, \
    max_attempts, run_at, last_error, dedupe_key, queue_key, created_at";
const RETURNING: &str = "j.id, j.kind, j.business_id, j.integration_id, j.payload, j.state, \
    j.attempts, j.max_attempts, j.run_at, j.last_error, j.dedupe_key, j.queue_key, j.created_at";

fn job(row: &PgRow) -> StoreResult<Job> {
    let state: String = get(row, "state")?;
    let integration: Option<Uuid> = get(row, "integration_id")?;
    let payload: Json<Value> = get(row, "payload")?;
    Ok(Job {
        id: JobId::from_uuid(get(row, "id")?),
        kind: get(row, "kind")?,
        business_id: BusinessId::from_uuid(get(row, "business_id")?),
        integration_id: integration.map(IntegrationId::from_uuid),
        payload: payload.0,
        state: common::job_state(&state)?,
        attempts: get(row, "attempts")?,
        max_attempts: get(row, "max_attempts")?,
        run_at: get_ts(row, "run_at")?,
        last_error: get(row, "last_error")?,
        dedupe_key: get(row, "dedupe_key")?,
        queue_key: get(row, "queue_key")?,
        created_at: get_ts(row, "created_at")?,
    })
}

impl PgStore {
    /// Whether this claim should bury abandoned jobs first: at most once a second of claim
    /// time per process. The claim itself never takes a job whose last attempt was abandoned;
    /// burying only makes such jobs `dead` for people to see, and a second's delay is fine.
    fn bury_due(&self, now: DateTime<Utc>) -> bool {
        let mut last = self
            .buried_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last.is_none_or(|at| now < at || now - at >= chrono::Duration::seconds(1));
        if due {
            *last = Some(now);
        }
        due
    }

    /// Sets `set` (which may use the error as `$2`) on one job; `NotFound` when there is none.
    async fn update_job(&self, id: JobId, set: &str, error: &str) -> StoreResult<()> {
        let sql = format!("UPDATE jobs SET {set}, updated_at = $3 WHERE id = $1");
        let result = sqlx::query(&sql)
            .bind(id.as_uuid())
            .bind(error)
            .bind(ts(common::now()))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        one_row(&result)
    }
}

#[async_trait]
impl JobStore for PgStore {
    async fn enqueue_job(&self, job: NewJob) -> StoreResult<JobId> {
        let id = JobId::new();
        sqlx::query(
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
        .bind(ts(job.run_at))
        .bind(job.dedupe_key.as_deref())
        .bind(ts(common::now()))
        .bind(job.queue_key.as_deref())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(id)
    }

    async fn job(&self, id: JobId) -> StoreResult<Option<Job>> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(job).transpose()
    }

    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>> {
        let sql = format!(
            "WITH due AS (SELECT id FROM jobs \
                 WHERE ((state = 'pending' AND run_at <= $3) \
                    OR (state = 'running' AND locked_until <= $3 AND attempts < max_attempts)) \
                   AND {queue_is_free} \
                 ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, locked_by = $1, \
                 locked_until = $2, updated_at = $3 \
             FROM due WHERE j.id = due.id \
             RETURNING {RETURNING}",
            queue_is_free = common::QUEUE_IS_FREE,
        );
        if self.bury_due(now) {
            sqlx::query(common::BURY_ABANDONED_JOBS)
                .bind(ts(now))
                .execute(&self.pool)
                .await
                .map_err(db)?;
        }
        // Walks the due index in order up to the limit (the pool's planner settings).
        let rows = sqlx::query(&sql)
            .bind(worker)
            .bind(ts(common::lease_end(now, lease)))
            .bind(ts(now))
            .bind(common::limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut jobs = rows.iter().map(job).collect::<StoreResult<Vec<_>>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    async fn complete_job(&self, id: JobId) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, \
                 updated_at = $2 \
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }

    async fn retry_job(&self, id: JobId, run_at: DateTime<Utc>, error: &str) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE jobs SET state = 'pending', run_at = $2, last_error = $3, locked_by = NULL, \
                 locked_until = NULL, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(ts(run_at))
        .bind(error)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }

    async fn release_job(&self, id: JobId) -> StoreResult<()> {
        // The claim counted an attempt that never ran: give it back. Only a running job is
        // released; releasing anything else is a no-op, so shutdown may release blindly.
        sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = GREATEST(attempts - 1, 0), \
                 locked_by = NULL, locked_until = NULL, updated_at = $2 \
             WHERE id = $1 AND state = 'running'",
        )
        .bind(id.as_uuid())
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn postpone_job(&self, id: JobId, run_at: DateTime<Utc>) -> StoreResult<()> {
        // Like a release, the attempt the claim counted is given back.
        let result = sqlx::query(
            "UPDATE jobs SET state = 'pending', run_at = $2, attempts = GREATEST(attempts - 1, 0), \
                 locked_by = NULL, locked_until = NULL, updated_at = $3 \
             WHERE id = $1 AND state = 'running'",
        )
        .bind(id.as_uuid())
        .bind(ts(run_at))
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
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
        let result = sqlx::query(
            "UPDATE jobs SET state = 'pending', run_at = $2, updated_at = $2 \
             WHERE integration_id = $1 AND state = 'held'",
        )
        .bind(integration.as_uuid())
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(result.rows_affected())
    }

    async fn list_jobs(
        &self,
        business: BusinessId,
        state: JobState,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        // The state is part of the statement: a plan made for any state (the pool's plans are
        // generic) could not use the index that holds only dead and held jobs.
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE business_id = $1 AND state = '{state}' \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            state = state.as_str()
        );
        let rows = sqlx::query(&sql)
            .bind(business.as_uuid())
            .bind(common::limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(job).collect()
    }

    async fn retry_dead_job(
        &self,
        business: BusinessId,
        id: JobId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = $3, updated_at = $3 \
             WHERE business_id = $1 AND id = $2 AND state = 'dead'",
        )
        .bind(business.as_uuid())
        .bind(id.as_uuid())
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(result.rows_affected() > 0)
    }
}
