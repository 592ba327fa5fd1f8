//! Queue claims on PostgreSQL: `FOR UPDATE SKIP LOCKED` under a lease, so any number of gateway
//! instances share the inbox and the jobs queue and each row goes to one claimer, without
//! waiting on each other. Each claim walks its queue's partial index in order up to the limit,
//! whatever the statistics say: the pool's planner settings leave it no other plan.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use switchboard_core::EventId;
use switchboard_core::store::{Job, StoreResult, WebhookEvent};

use super::inbox::notify_sql;
use super::ts;
use crate::common;
use crate::error::db;
use crate::sql::Row;

const INBOX_RETURNING: &str = "w.id, w.channel, w.integration_id, w.body, w.received_at, \
    w.state, w.attempts, w.error";
const JOB_RETURNING: &str = "j.id, j.kind, j.business_id, j.integration_id, j.payload, j.state, \
    j.attempts, j.max_attempts, j.run_at, j.last_error, j.dedupe_key, j.queue_key, j.created_at";

/// Leases up to `limit` pending inbox rows, oldest first.
pub(super) async fn webhook_events(
    pool: &PgPool,
    limit: u32,
    lease: Duration,
    now: DateTime<Utc>,
) -> StoreResult<Vec<WebhookEvent>> {
    let sql = format!(
        "WITH due AS (SELECT id FROM webhook_events \
             WHERE state = 'pending' AND (locked_until IS NULL OR locked_until <= $2) \
             ORDER BY received_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE webhook_events w SET locked_until = $1, attempts = w.attempts + 1 \
         FROM due WHERE w.id = due.id \
         RETURNING {INBOX_RETURNING}"
    );
    let rows = sqlx::query(&sql)
        .bind(ts(common::lease_end(now, lease)))
        .bind(ts(now))
        .bind(common::limit(limit))
        .fetch_all(pool)
        .await
        .map_err(db)?;
    crate::inbox::claimed(rows.iter().map(Row::Postgres))
}

/// Puts a quarantined or unrouted row back to pending, announced like a stored webhook so
/// that whichever instance is idle takes it at once (the replay may have been asked of an
/// instance busy with other work).
pub(super) async fn requeue_webhook_event(pool: &PgPool, id: EventId) -> StoreResult<bool> {
    let sql = concat!(
        "WITH requeued AS (UPDATE webhook_events SET state = 'pending', \
             locked_until = NULL, processed_at = NULL \
         WHERE id = $1 AND state IN ('quarantined', 'unrouted') RETURNING id) ",
        notify_sql!(),
        " FROM requeued"
    );
    let requeued = sqlx::query(sql)
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    Ok(requeued.is_some())
}

/// Makes the jobs whose last attempt was abandoned `dead` ([`common::BURY_ABANDONED_JOBS`]).
pub(super) async fn bury_abandoned_jobs(pool: &PgPool, now: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(common::BURY_ABANDONED_JOBS)
        .bind(ts(now))
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

/// Leases up to `limit` due jobs (pending and due, or running with an ended lease and
/// attempts left), in due order, counting an attempt.
pub(super) async fn jobs(
    pool: &PgPool,
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
         RETURNING {JOB_RETURNING}",
        queue_is_free = common::QUEUE_IS_FREE,
    );
    let rows = sqlx::query(&sql)
        .bind(worker)
        .bind(ts(common::lease_end(now, lease)))
        .bind(ts(now))
        .bind(common::limit(limit))
        .fetch_all(pool)
        .await
        .map_err(db)?;
    crate::jobs::claimed(rows.iter().map(Row::Postgres))
}
