//! The durable webhook inbox: raw bodies stored before they are acknowledged, leased to
//! workers for processing. The insert and the claim differ in kind per backend (group commit,
//! `SKIP LOCKED`), and so does the requeue's announcement.

/// Puts a quarantined or unrouted row back to pending.
pub(crate) const REQUEUE: &str = "UPDATE webhook_events SET state = 'pending', \
    locked_until = NULL, processed_at = NULL \
    WHERE id = $1 AND state IN ('quarantined', 'unrouted')";

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::store::{InboxState, InboxStore, NewWebhookEvent, StoreResult, WebhookEvent};
use switchboard_core::{EventId, IntegrationId};
use uuid::Uuid;

use crate::sql::Row;
use crate::{Backend, SqlStore, common};

pub(crate) const COLUMNS: &str =
    "id, channel, integration_id, body, received_at, state, attempts, error";

fn event(row: Row<'_>) -> StoreResult<WebhookEvent> {
    let integration: Option<Uuid> = row.get("integration_id")?;
    Ok(WebhookEvent {
        id: EventId::from_uuid(row.get("id")?),
        channel: row.name("channel", common::channel)?,
        integration_id: integration.map(IntegrationId::from_uuid),
        body: row.get("body")?,
        received_at: row.time("received_at")?,
        state: row.name("state", common::inbox_state)?,
        attempts: row.get("attempts")?,
        error: row.get("error")?,
    })
}

/// Claimed rows in the order they were claimed: oldest first.
pub(crate) fn claimed<'r>(rows: impl Iterator<Item = Row<'r>>) -> StoreResult<Vec<WebhookEvent>> {
    let mut events = rows.map(event).collect::<StoreResult<Vec<_>>>()?;
    events.sort_by_key(|e| (e.received_at, e.id));
    Ok(events)
}

#[async_trait]
impl<B: Backend> InboxStore for SqlStore<B> {
    async fn insert_webhook_event(&self, event: NewWebhookEvent) -> StoreResult<EventId> {
        self.backend.insert_webhook_event(event).await
    }

    async fn webhook_event(&self, id: EventId) -> StoreResult<Option<WebhookEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM webhook_events WHERE id = $1");
        self.db()
            .query(&sql)
            .bind(id.as_uuid())
            .fetch_optional(event)
            .await
    }

    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>> {
        self.backend.claim_webhook_events(limit, lease, now).await
    }

    async fn finish_webhook_event(
        &self,
        id: EventId,
        state: InboxState,
        error: Option<&str>,
    ) -> StoreResult<()> {
        self.db()
            .query(
                "UPDATE webhook_events SET state = $2, error = $3, locked_until = NULL, \
                 processed_at = $4 \
             WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(state.as_str())
            .bind(error)
            .bind_time(common::now())
            .execute_one()
            .await
    }

    async fn webhook_events_in_state(
        &self,
        state: InboxState,
        limit: u32,
    ) -> StoreResult<Vec<WebhookEvent>> {
        // The state is part of the statement, so that a plan made once (PostgreSQL's generic
        // plans) can use the index that holds only quarantined and unrouted rows.
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_events WHERE state = '{state}' \
             ORDER BY received_at DESC, id DESC LIMIT $1",
            state = state.as_str()
        );
        self.db()
            .query(&sql)
            .bind(common::limit(limit))
            .fetch_all(event)
            .await
    }

    async fn requeue_webhook_event(&self, id: EventId) -> StoreResult<bool> {
        self.backend.requeue_webhook_event(id).await
    }

    async fn delete_processed_webhook_events(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        // Ids are time-ordered: the walk of the primary key stops at the first id of `before`,
        // so a sweep reads the old rows only. The time is checked as well, whatever the id.
        self.db()
            .query(
                "DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events \
                 WHERE id < $1 AND received_at < $2 AND state = 'processed' \
                 ORDER BY id LIMIT $3)",
            )
            .bind(common::first_id_at(before))
            .bind_time(before)
            .bind(common::limit(limit))
            .execute()
            .await
    }
}
