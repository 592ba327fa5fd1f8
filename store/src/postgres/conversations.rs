//! Conversations and messages, PostgreSQL: upsert by external chat, messages deduplicated by
//! provider id, delivery statuses applied monotonically.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use switchboard_core::domain::{DeliveryStatus, MessageKind};
use switchboard_core::store::{
    Conversation, ConversationStore, ConversationUpsert, Inserted, Message, NewMessage, Page,
    StatusChange, StoreResult,
};
use switchboard_core::{BusinessId, ConversationId, IntegrationId, MessageId, StoreError};
use uuid::Uuid;

use super::{PgStore, db, get, get_opt_ts, get_ts, one_row, opt_ts, ts};
use crate::common;

pub(super) const CONVERSATION_COLUMNS: &str = "id, business_id, integration_id, channel_type, \
    external_chat_id, contact_name, last_message_at, window_expires_at, unreachable, created_at";

/// What an upsert of a conversation does when the chat exists: times only move forward
/// (`GREATEST` ignores NULLs), a name is kept when the message carries none, and the row of
/// another business is never touched (no row comes back for it).
pub(super) const UPSERT_CONFLICT: &str = "ON CONFLICT (integration_id, external_chat_id) \
    DO UPDATE SET \
        contact_name = COALESCE(excluded.contact_name, conversations.contact_name), \
        last_message_at = GREATEST(conversations.last_message_at, excluded.last_message_at), \
        window_expires_at = GREATEST(conversations.window_expires_at, \
            excluded.window_expires_at), \
        updated_at = excluded.updated_at \
    WHERE conversations.business_id = excluded.business_id";

/// [`CONVERSATION_COLUMNS`] of a table aliased `c`.
pub(super) const CONVERSATION_COLUMNS_OF_C: &str = "c.id, c.business_id, c.integration_id, \
    c.channel_type, c.external_chat_id, c.contact_name, c.last_message_at, c.window_expires_at, \
    c.unreachable, c.created_at";

pub(super) const MESSAGE_COLUMNS: &str = "id, conversation_id, integration_id, direction, \
    provider_message_id, type, text, payload, status, status_at, error_code, error_reason, \
    provider_timestamp, created_at";

pub(super) fn conversation(row: &PgRow) -> StoreResult<Conversation> {
    let channel: String = get(row, "channel_type")?;
    Ok(Conversation {
        id: ConversationId::from_uuid(get(row, "id")?),
        business_id: BusinessId::from_uuid(get(row, "business_id")?),
        integration_id: IntegrationId::from_uuid(get(row, "integration_id")?),
        channel_type: common::channel(&channel)?,
        external_chat_id: get(row, "external_chat_id")?,
        contact_name: get(row, "contact_name")?,
        last_message_at: get_opt_ts(row, "last_message_at")?,
        window_expires_at: get_opt_ts(row, "window_expires_at")?,
        unreachable: get(row, "unreachable")?,
        created_at: get_ts(row, "created_at")?,
    })
}

pub(super) fn message(row: &PgRow) -> StoreResult<Message> {
    let direction: String = get(row, "direction")?;
    let kind: String = get(row, "type")?;
    let status: String = get(row, "status")?;
    let payload: Json<Value> = get(row, "payload")?;
    Ok(Message {
        id: MessageId::from_uuid(get(row, "id")?),
        conversation_id: ConversationId::from_uuid(get(row, "conversation_id")?),
        integration_id: IntegrationId::from_uuid(get(row, "integration_id")?),
        direction: common::direction(&direction)?,
        provider_message_id: get(row, "provider_message_id")?,
        kind: MessageKind::parse(&kind),
        text: get(row, "text")?,
        payload: payload.0,
        status: common::delivery_status(&status)?,
        status_at: get_opt_ts(row, "status_at")?,
        error_code: get(row, "error_code")?,
        error_reason: get(row, "error_reason")?,
        provider_timestamp: get_opt_ts(row, "provider_timestamp")?,
        created_at: get_ts(row, "created_at")?,
    })
}

#[async_trait]
impl ConversationStore for PgStore {
    async fn upsert_conversation(&self, upsert: ConversationUpsert) -> StoreResult<Conversation> {
        // Another business's row comes back as no row: NotFound (see `UPSERT_CONFLICT`).
        let sql = format!(
            "INSERT INTO conversations (id, business_id, integration_id, channel_type, \
                 external_chat_id, contact_name, last_message_at, window_expires_at, \
                 created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             {UPSERT_CONFLICT} RETURNING {CONVERSATION_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(ConversationId::new().as_uuid())
            .bind(upsert.business_id.as_uuid())
            .bind(upsert.integration_id.as_uuid())
            .bind(upsert.channel_type.as_str())
            .bind(&upsert.external_chat_id)
            .bind(upsert.contact_name.as_deref())
            .bind(ts(upsert.last_message_at))
            .bind(opt_ts(upsert.window_expires_at))
            .bind(ts(common::now()))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map_or(Err(StoreError::NotFound), conversation)
    }

    async fn conversation(
        &self,
        business: BusinessId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE business_id = $1 AND id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(business.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(conversation).transpose()
    }

    async fn conversation_by_chat(
        &self,
        integration: IntegrationId,
        external_chat_id: &str,
    ) -> StoreResult<Option<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations \
             WHERE integration_id = $1 AND external_chat_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(integration.as_uuid())
            .bind(external_chat_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(conversation).transpose()
    }

    async fn list_conversations(
        &self,
        business: BusinessId,
        page: Page<ConversationId>,
    ) -> StoreResult<Vec<Conversation>> {
        // Newest activity first, in the order of `conversations_business_activity_idx`; the
        // cursor is the last conversation of the previous page (of the same business). A
        // statement for the first page and one for the others: the pool's plans are generic,
        // and one made for any cursor could not seek to it.
        let after_cursor = if page.before.is_some() {
            "AND (COALESCE(last_message_at, created_at), id) < \
                 (SELECT COALESCE(last_message_at, created_at), id FROM conversations \
                  WHERE id = $3 AND business_id = $1)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations \
             WHERE business_id = $1 {after_cursor} \
             ORDER BY COALESCE(last_message_at, created_at) DESC, id DESC LIMIT $2"
        );
        let mut query = sqlx::query(&sql)
            .bind(business.as_uuid())
            .bind(common::limit(page.limit));
        if let Some(before) = page.before {
            query = query.bind(before.as_uuid());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(conversation).collect()
    }

    async fn set_unreachable(&self, id: ConversationId, unreachable: bool) -> StoreResult<()> {
        let result =
            sqlx::query("UPDATE conversations SET unreachable = $2, updated_at = $3 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(unreachable)
                .bind(ts(common::now()))
                .execute(&self.pool)
                .await
                .map_err(db)?;
        one_row(&result)
    }

    async fn insert_message(&self, message: NewMessage) -> StoreResult<Inserted> {
        let now = common::now();
        let inserted: Option<Uuid> = sqlx::query_scalar(
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
        .bind(ts(now))
        .bind(opt_ts(message.provider_timestamp))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(id) = inserted {
            return Ok(Inserted::New(MessageId::from_uuid(id)));
        }
        let first: Uuid = sqlx::query_scalar(
            "SELECT id FROM messages WHERE integration_id = $1 AND provider_message_id = $2",
        )
        .bind(message.integration_id.as_uuid())
        .bind(message.provider_message_id.as_deref())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(Inserted::Duplicate(MessageId::from_uuid(first)))
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(message).transpose()
    }

    async fn list_messages(
        &self,
        conversation: ConversationId,
        page: Page<MessageId>,
    ) -> StoreResult<Vec<Message>> {
        // A statement for the first page and one for the others, not `($3 IS NULL OR id < $3)`:
        // the pool's plans are generic, and one made for any cursor could not seek to it.
        let after_cursor = if page.before.is_some() {
            "AND id < $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE conversation_id = $1 {after_cursor} \
             ORDER BY id DESC LIMIT $2"
        );
        let mut query = sqlx::query(&sql)
            .bind(conversation.as_uuid())
            .bind(common::limit(page.limit));
        if let Some(before) = page.before {
            query = query.bind(before.as_uuid());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(message).collect()
    }

    async fn set_provider_message_id(&self, id: MessageId, provider_id: &str) -> StoreResult<()> {
        let result = sqlx::query("UPDATE messages SET provider_message_id = $2 WHERE id = $1")
            .bind(id.as_uuid())
            .bind(provider_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        one_row(&result)
    }

    async fn apply_status(&self, change: StatusChange<'_>) -> StoreResult<bool> {
        let rank = &*common::STATUS_RANK_SQL;
        let sql = format!(
            "UPDATE messages SET status = $3, status_at = $4, \
                 error_code = COALESCE($5, error_code), \
                 error_reason = COALESCE($6, error_reason) \
             WHERE integration_id = $1 AND provider_message_id = $2 AND {rank} < $7"
        );
        let result = sqlx::query(&sql)
            .bind(change.integration_id.as_uuid())
            .bind(change.provider_message_id)
            .bind(change.status.as_str())
            .bind(ts(change.at))
            .bind(change.error_code)
            .bind(change.error_reason)
            .bind(common::status_rank(change.status))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(result.rows_affected() > 0)
    }

    async fn set_message_status(
        &self,
        id: MessageId,
        status: DeliveryStatus,
        error_code: Option<&str>,
        error_reason: Option<&str>,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE messages SET status = $2, status_at = $3, error_code = $4, \
                 error_reason = $5 \
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(status.as_str())
        .bind(ts(common::now()))
        .bind(error_code)
        .bind(error_reason)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }
}
