//! Messages: deduplicated by (integration, provider id), delivery statuses applied
//! monotonically in progress order.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::types::Json;
use switchboard_core::domain::{DeliveryStatus, MessageKind};
use switchboard_core::store::{
    Inserted, Message, MessageStore, NewMessage, Page, StatusChange, StoreResult,
};
use switchboard_core::{ConversationId, IntegrationId, MessageId};

use crate::sql::Row;
use crate::{Backend, SqlStore, common};

pub(crate) const MESSAGE_COLUMNS: &str = "id, conversation_id, integration_id, direction, \
    provider_message_id, type, text, payload, status, status_at, error_code, error_reason, \
    provider_timestamp, created_at";

/// A conversation's messages, newest first; `$1` the conversation, `$2` the limit and,
/// `after_cursor`, `$3` the last message of the previous page. A statement for the first page
/// and one for the others, so that each plan seeks to its cursor.
pub(crate) fn list_messages_sql(after_cursor: bool) -> String {
    let after_cursor = if after_cursor { "AND id < $3" } else { "" };
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages \
         WHERE conversation_id = $1 {after_cursor} \
         ORDER BY id DESC LIMIT $2"
    )
}

fn message(row: Row<'_>) -> StoreResult<Message> {
    let kind: String = row.get("type")?;
    let payload: Json<Value> = row.get("payload")?;
    Ok(Message {
        id: MessageId::from_uuid(row.get("id")?),
        conversation_id: ConversationId::from_uuid(row.get("conversation_id")?),
        integration_id: IntegrationId::from_uuid(row.get("integration_id")?),
        direction: row.name("direction", common::direction)?,
        provider_message_id: row.get("provider_message_id")?,
        kind: MessageKind::parse(&kind),
        text: row.get("text")?,
        payload: payload.0,
        status: row.name("status", common::delivery_status)?,
        status_at: row.opt_time("status_at")?,
        error_code: row.get("error_code")?,
        error_reason: row.get("error_reason")?,
        provider_timestamp: row.opt_time("provider_timestamp")?,
        created_at: row.time("created_at")?,
    })
}

#[async_trait]
impl<B: Backend> MessageStore for SqlStore<B> {
    async fn insert_message(&self, message: NewMessage) -> StoreResult<Inserted> {
        let now = common::now();
        let inserted = self
            .db()
            .query(
                "INSERT INTO messages (id, conversation_id, integration_id, direction, \
                     provider_message_id, type, text, payload, status, status_at, \
                     provider_timestamp, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10) \
                 ON CONFLICT (integration_id, provider_message_id) DO NOTHING \
                 RETURNING id",
            )
            .bind(MessageId::new().as_uuid())
            .bind(message.conversation_id.as_uuid())
            .bind(message.integration_id.as_uuid())
            .bind(message.direction.as_str())
            .bind(message.provider_message_id.as_deref())
            .bind(message.kind.as_str())
            .bind(message.text.as_deref())
            .bind(Json(&message.payload))
            .bind(message.status.as_str())
            .bind_time(now)
            .bind_opt_time(message.provider_timestamp)
            .fetch_optional(message_id)
            .await?;
        if let Some(id) = inserted {
            return Ok(Inserted::New(id));
        }
        let first = self
            .db()
            .query("SELECT id FROM messages WHERE integration_id = $1 AND provider_message_id = $2")
            .bind(message.integration_id.as_uuid())
            .bind(message.provider_message_id.as_deref())
            .fetch_one(message_id)
            .await?;
        Ok(Inserted::Duplicate(first))
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        self.db()
            .query(&sql)
            .bind(id.as_uuid())
            .fetch_optional(message)
            .await
    }

    async fn messages_by_ids(&self, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
        let db = self.db();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {}",
            db.in_uuids("id", "$1")
        );
        db.query(&sql)
            .bind_uuids(ids.iter().map(MessageId::as_uuid))
            .fetch_all(message)
            .await
    }

    async fn list_messages(
        &self,
        conversation: ConversationId,
        page: Page<MessageId>,
    ) -> StoreResult<Vec<Message>> {
        let sql = list_messages_sql(page.before.is_some());
        let mut query = self
            .db()
            .query(&sql)
            .bind(conversation.as_uuid())
            .bind(common::limit(page.limit));
        if let Some(before) = page.before {
            query = query.bind(before.as_uuid());
        }
        query.fetch_all(message).await
    }

    async fn set_provider_message_id(&self, id: MessageId, provider_id: &str) -> StoreResult<()> {
        self.db()
            .query("UPDATE messages SET provider_message_id = $2 WHERE id = $1")
            .bind(id.as_uuid())
            .bind(provider_id)
            .execute_one()
            .await
    }

    async fn apply_status(&self, change: StatusChange<'_>) -> StoreResult<bool> {
        let rank = &*common::STATUS_RANK_SQL;
        let sql = format!(
            "UPDATE messages SET status = $3, status_at = $4, \
                 error_code = COALESCE($5, error_code), \
                 error_reason = COALESCE($6, error_reason) \
             WHERE integration_id = $1 AND provider_message_id = $2 AND {rank} < $7"
        );
        let changed = self
            .db()
            .query(&sql)
            .bind(change.integration_id.as_uuid())
            .bind(change.provider_message_id)
            .bind(change.status.as_str())
            .bind_time(change.at)
            .bind(change.error_code)
            .bind(change.error_reason)
            .bind(common::status_rank(change.status))
            .execute()
            .await?;
        Ok(changed > 0)
    }

    async fn set_message_status(
        &self,
        id: MessageId,
        status: DeliveryStatus,
        error_code: Option<&str>,
        error_reason: Option<&str>,
    ) -> StoreResult<()> {
        self.db()
            .query(
                "UPDATE messages SET status = $2, status_at = $3, error_code = $4, \
                     error_reason = $5 \
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(status.as_str())
            .bind_time(common::now())
            .bind(error_code)
            .bind(error_reason)
            .execute_one()
            .await
    }
}

fn message_id(row: Row<'_>) -> StoreResult<MessageId> {
    Ok(MessageId::from_uuid(row.get("id")?))
}
