//! The durable webhook inbox, PostgreSQL: raw bodies as BYTEA, leased to workers for processing.
//! Inserts are group-committed ([`InboxWriter`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, PgPool, Postgres};
use switchboard_core::store::{InboxState, InboxStore, NewWebhookEvent, StoreResult, WebhookEvent};
use switchboard_core::{EventId, IntegrationId, StoreError};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{PgStore, db, get, get_ts, one_row, ts};
use crate::common;

const COLUMNS: &str = "id, channel, integration_id, body, received_at, state, attempts, error";
const RETURNING: &str = "w.id, w.channel, w.integration_id, w.body, w.received_at, w.state, \
    w.attempts, w.error";

fn event(row: &PgRow) -> StoreResult<WebhookEvent> {
    let channel: String = get(row, "channel")?;
    let state: String = get(row, "state")?;
    let integration: Option<Uuid> = get(row, "integration_id")?;
    Ok(WebhookEvent {
        id: EventId::from_uuid(get(row, "id")?),
        channel: common::channel(&channel)?,
        integration_id: integration.map(IntegrationId::from_uuid),
        body: get(row, "body")?,
        received_at: get_ts(row, "received_at")?,
        state: common::inbox_state(&state)?,
        attempts: get(row, "attempts")?,
        error: get(row, "error")?,
    })
}

#[async_trait]
impl InboxStore for PgStore {
    async fn insert_webhook_event(&self, event: NewWebhookEvent) -> StoreResult<EventId> {
        let id = EventId::new();
        // Group-committed: when this returns, the row is committed.
        self.inbox.insert(&self.pool, id, event).await?;
        Ok(id)
    }

    async fn webhook_event(&self, id: EventId) -> StoreResult<Option<WebhookEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM webhook_events WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(event).transpose()
    }

    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>> {
        // SKIP LOCKED: concurrent claimers each take different rows, without waiting.
        let sql = format!(
            "WITH due AS (SELECT id FROM webhook_events \
                 WHERE state = 'pending' AND (locked_until IS NULL OR locked_until <= $2) \
                 ORDER BY received_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE webhook_events w SET locked_until = $1, attempts = w.attempts + 1 \
             FROM due WHERE w.id = due.id \
             RETURNING {RETURNING}"
        );
        let rows = sqlx::query(&sql)
            .bind(ts(common::lease_end(now, lease)))
            .bind(ts(now))
            .bind(common::limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut events = rows.iter().map(event).collect::<StoreResult<Vec<_>>>()?;
        events.sort_by_key(|e| (e.received_at, e.id));
        Ok(events)
    }

    async fn finish_webhook_event(
        &self,
        id: EventId,
        state: InboxState,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE webhook_events SET state = $2, error = $3, locked_until = NULL, \
                 processed_at = $4 \
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(state.as_str())
        .bind(error)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }

    async fn webhook_events_in_state(
        &self,
        state: InboxState,
        limit: u32,
    ) -> StoreResult<Vec<WebhookEvent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_events WHERE state = $1 \
             ORDER BY received_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(state.as_str())
            .bind(common::limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(event).collect()
    }

    async fn requeue_webhook_event(&self, id: EventId) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE webhook_events SET state = 'pending', locked_until = NULL, \
                 processed_at = NULL \
             WHERE id = $1 AND state IN ('quarantined', 'unrouted')",
        )
        .bind(id.as_uuid())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(result.rows_affected() > 0)
    }
}

/// Group commit of webhook inserts.
///
/// `insert_webhook_event` is the one write between a provider and its `200`, and the commit's
/// flush to disk dominates it. So callers queue their row and wait; a writer task takes
/// everything waiting (up to [`MAX_ROWS`] rows or [`MAX_BYTES`] of bodies), inserts it as one
/// multi-row `INSERT` (one transaction, one WAL flush) and answers every caller only after the
/// commit. Batches form while the previous commit is in flight; nothing waits on a timer, so a
/// lone request costs about what a plain insert does. A failed batch fails every caller in it.
///
/// The writer starts with the first insert, in the caller's runtime, and stops when the last
/// clone of the store (holding the queue's sender) is dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct InboxWriter {
    queue: Arc<OnceLock<mpsc::Sender<Pending>>>,
}

/// Most rows in one `INSERT`.
const MAX_ROWS: usize = 256;
/// Most body bytes in one `INSERT` (a body may be megabytes).
const MAX_BYTES: usize = 8 << 20;
/// Rows queued before callers wait for room.
const QUEUE: usize = 4096;

/// One caller's row, its id and where its outcome goes.
struct Pending {
    id: EventId,
    event: NewWebhookEvent,
    done: oneshot::Sender<StoreResult<()>>,
}

impl InboxWriter {
    /// Inserts `event` as `id`; returns once it is committed.
    async fn insert(&self, pool: &PgPool, id: EventId, event: NewWebhookEvent) -> StoreResult<()> {
        let queue = self.queue.get_or_init(|| spawn_writer(pool));
        let (done, committed) = oneshot::channel();
        if let Err(mpsc::error::SendError(pending)) = queue.send(Pending { id, event, done }).await
        {
            // The writer's runtime has ended; this caller's own runtime still works.
            return insert_rows(pool, std::slice::from_ref(&pending)).await;
        }
        committed
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the inbox writer stopped".into())))
    }
}

fn spawn_writer(pool: &PgPool) -> mpsc::Sender<Pending> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(write(pool.clone(), receiver));
    sender
}

/// One writer: while its commit is in flight the next batch forms in the queue. (Two or four
/// writers measured no faster: the WAL flush is the limit, and PostgreSQL already shares one
/// flush among concurrent commits.)
///
/// The writer keeps one pooled connection for itself instead of taking one per batch: a
/// connection returned to the pool is pinged (a round trip) before it is idle again, once per
/// batch, hundreds of times a second under load. After a failed batch the connection goes
/// back to the pool (which tests it) and the next batch takes another.
async fn write(pool: PgPool, mut queue: mpsc::Receiver<Pending>) {
    let mut held: Option<PoolConnection<Postgres>> = None;
    while let Some((batch, bytes)) = next_batch(&mut queue).await {
        let outcome = insert_held(&pool, &mut held, &batch, bytes).await;
        for pending in batch {
            let _ = pending.done.send(match &outcome {
                Ok(()) => Ok(()),
                Err(error) => Err(copy_error(error)),
            });
        }
    }
}

/// Waits for one row, then takes whatever else is already waiting, up to the caps; returns the
/// rows and their body bytes.
async fn next_batch(queue: &mut mpsc::Receiver<Pending>) -> Option<(Vec<Pending>, usize)> {
    let first = queue.recv().await?;
    let mut bytes = first.event.body.len();
    let mut batch = vec![first];
    while batch.len() < MAX_ROWS && bytes < MAX_BYTES {
        let Ok(next) = queue.try_recv() else { break };
        bytes += next.event.body.len();
        batch.push(next);
    }
    Some((batch, bytes))
}

/// Inserts `batch` (`bytes` of bodies) on the writer's own connection, taking one from the
/// pool if it has none.
async fn insert_held(
    pool: &PgPool,
    held: &mut Option<PoolConnection<Postgres>>,
    batch: &[Pending],
    bytes: usize,
) -> StoreResult<()> {
    let connection = match held {
        Some(connection) => connection,
        None => held.insert(pool.acquire().await.map_err(db)?),
    };
    let outcome = insert_rows(&mut **connection, batch).await;
    if outcome.is_err() {
        *held = None;
    } else if bytes > SHRINK_AFTER_BYTES {
        // As the pool does on release: a batch of large bodies leaves large buffers behind.
        sqlx::Connection::shrink_buffers(&mut **connection);
    }
    outcome
}

/// Body bytes after which the writer's connection gives its buffers back.
const SHRINK_AFTER_BYTES: usize = 1 << 20;

/// One statement, hence one transaction, for the whole batch.
async fn insert_rows(executor: impl PgExecutor<'_>, batch: &[Pending]) -> StoreResult<()> {
    let ids: Vec<Uuid> = batch.iter().map(|p| p.id.as_uuid()).collect();
    let channels: Vec<&str> = batch.iter().map(|p| p.event.channel.as_str()).collect();
    let integrations: Vec<Option<Uuid>> = batch
        .iter()
        .map(|p| p.event.integration_id.map(|i| i.as_uuid()))
        .collect();
    let bodies: Vec<&[u8]> = batch.iter().map(|p| &p.event.body[..]).collect();
    let received: Vec<DateTime<Utc>> = batch.iter().map(|p| ts(p.event.received_at)).collect();
    sqlx::query(
        "INSERT INTO webhook_events (id, channel, integration_id, body, received_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::bytea[], $5::timestamptz[])",
    )
    .bind(&ids)
    .bind(&channels)
    .bind(&integrations)
    .bind(&bodies)
    .bind(&received)
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(())
}

/// The same error for another caller of a failed batch (driver errors are not `Clone`).
fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Conflict(conflict) => StoreError::Conflict(*conflict),
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        StoreError::Database(source) => StoreError::Database(source.to_string().into()),
    }
}
