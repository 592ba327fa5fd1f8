//! Queue claims on SQLite: the read and the update of a claim run in one `BEGIN IMMEDIATE`
//! transaction, which takes the database's write lock first, so two claimers (even in two
//! processes) never take the same row.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqlitePool;
use switchboard_core::store::{Job, StoreResult, WebhookEvent};

use super::ts;
use crate::common;
use crate::error::db;
use crate::sql::Row;

/// Leases up to `limit` pending inbox rows, oldest first.
pub(super) async fn webhook_events(
    pool: &SqlitePool,
    limit: u32,
    lease: Duration,
    now: DateTime<Utc>,
) -> StoreResult<Vec<WebhookEvent>> {
    let sql = format!(
        "UPDATE webhook_events SET locked_until = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM webhook_events \
             WHERE state = 'pending' AND (locked_until IS NULL OR locked_until <= $2) \
             ORDER BY received_at, id LIMIT $3) \
         RETURNING {}",
        crate::inbox::COLUMNS
    );
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let rows = sqlx::query(&sql)
        .bind(ts(common::lease_end(now, lease)))
        .bind(ts(now))
        .bind(common::limit(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    crate::inbox::claimed(rows.iter().map(Row::Sqlite))
}

/// Buries abandoned jobs ([`common::BURY_ABANDONED_JOBS`]), then leases up to `limit` due
/// jobs in due order, counting an attempt.
pub(super) async fn jobs(
    pool: &SqlitePool,
    worker: &str,
    limit: u32,
    lease: Duration,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Job>> {
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, \
             locked_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM jobs \
             WHERE ((state = 'pending' AND run_at <= $3) \
                OR (state = 'running' AND locked_until <= $3 AND attempts < max_attempts)) \
               AND {queue_is_free} \
             ORDER BY run_at, id LIMIT $4) \
         RETURNING {columns}",
        queue_is_free = common::QUEUE_IS_FREE,
        columns = crate::jobs::COLUMNS,
    );
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    sqlx::query(common::BURY_ABANDONED_JOBS)
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let rows = sqlx::query(&sql)
        .bind(worker)
        .bind(ts(common::lease_end(now, lease)))
        .bind(ts(now))
        .bind(common::limit(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    crate::jobs::claimed(rows.iter().map(Row::Sqlite))
}
