//! The durable webhook inbox, SQLite: raw bodies as BLOBs, leased to workers for processing.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use switchboard_core::store::{InboxState, InboxStore, NewWebhookEvent, StoreResult, WebhookEvent};
use switchboard_core::{EventId, IntegrationId};
use uuid::Uuid;

use super::{SqliteStore, db, get, get_ts, one_row, ts};
use crate::common;

const COLUMNS: &str = "id, channel, integration_id, body, received_at, state, attempts, error";

fn event(row: &SqliteRow) -> StoreResult<WebhookEvent> {
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
impl InboxStore for SqliteStore {
    async fn insert_webhook_event(&self, event: NewWebhookEvent) -> StoreResult<EventId> {
        let id = EventId::new();
        // Autocommit: when this returns, the row is committed (and, with synchronous=FULL,
        // on disk).
        sqlx::query(
            "INSERT INTO webhook_events (id, channel, integration_id, body, received_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_uuid())
        .bind(event.channel.as_str())
        .bind(event.integration_id.map(|i| i.as_uuid()))
        .bind(&event.body[..])
        .bind(ts(event.received_at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
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
        let sql = format!(
            "UPDATE webhook_events SET locked_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM webhook_events \
                 WHERE state = 'pending' AND (locked_until IS NULL OR locked_until <= $2) \
                 ORDER BY received_at, id LIMIT $3) \
             RETURNING {COLUMNS}"
        );
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let rows = sqlx::query(&sql)
            .bind(ts(common::lease_end(now, lease)))
            .bind(ts(now))
            .bind(common::limit(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
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

    async fn delete_processed_webhook_events(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        // Ids are time-ordered: the walk of the primary key stops at the first id of `before`,
        // so a sweep reads the old rows only. The time is checked as well, whatever the id.
        let result = sqlx::query(
            "DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events \
                 WHERE id < $1 AND received_at < $2 AND state = 'processed' \
                 ORDER BY id LIMIT $3)",
        )
        .bind(common::first_id_at(before))
        .bind(ts(before))
        .bind(common::limit(limit))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(result.rows_affected())
    }
}
