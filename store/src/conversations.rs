//! Conversations: one per integration and external chat, upserted as messages arrive or are
//! sent; times only move forward.

use async_trait::async_trait;
use std::sync::LazyLock;
use switchboard_core::store::{
    Conversation, ConversationStore, ConversationUpsert, Page, StoreResult,
};
use switchboard_core::{BusinessId, ConversationId, IntegrationId, StoreError};

use crate::sql::{Db, Row};
use crate::{Backend, SqlStore, common};

pub(crate) const CONVERSATION_COLUMNS: &str = "id, business_id, integration_id, channel_type, \
    external_chat_id, contact_name, last_message_at, window_expires_at, unreachable, created_at";

/// What an upsert of a conversation does when the chat exists: times only move forward, a
/// name is kept when the message carries none, and the row of another business is never
/// touched (no row comes back for it). `greatest` is the dialect's word ([`Db::greatest`]).
fn upsert_conflict(greatest: &str) -> String {
    format!(
        "ON CONFLICT (integration_id, external_chat_id) DO UPDATE SET \
             contact_name = COALESCE(excluded.contact_name, conversations.contact_name), \
             last_message_at = {greatest}(COALESCE(conversations.last_message_at, \
                 excluded.last_message_at), excluded.last_message_at), \
             window_expires_at = CASE \
                 WHEN excluded.window_expires_at IS NULL THEN conversations.window_expires_at \
                 ELSE {greatest}(COALESCE(conversations.window_expires_at, \
                     excluded.window_expires_at), excluded.window_expires_at) END, \
             updated_at = excluded.updated_at \
         WHERE conversations.business_id = excluded.business_id"
    )
}

/// [`upsert_conflict`] on PostgreSQL, for its set-based units.
pub(crate) static PG_UPSERT_CONFLICT: LazyLock<String> =
    LazyLock::new(|| upsert_conflict("GREATEST"));

/// The conversations list: newest activity first, in the order of
/// `conversations_business_activity_idx`; `$1` the business, `$2` the limit and, `after_cursor`,
/// `$3` the last conversation of the previous page (of the same business).
///
/// A statement for the first page and one for the others: a plan made once for any cursor
/// (SQLite's, PostgreSQL's generic one) could not seek to it. SQLite seeks an indexed
/// expression by a plain bound, not by a row value, hence the bound on the time before the
/// comparison that orders ties by id.
fn list_conversations_sql(after_cursor: bool) -> String {
    let after_cursor = if after_cursor {
        "AND COALESCE(last_message_at, created_at) <= \
             (SELECT COALESCE(last_message_at, created_at) FROM conversations \
              WHERE id = $3 AND business_id = $1) \
         AND (COALESCE(last_message_at, created_at), id) < \
             (SELECT COALESCE(last_message_at, created_at), id FROM conversations \
              WHERE id = $3 AND business_id = $1)"
    } else {
        ""
    };
    format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations \
         WHERE business_id = $1 {after_cursor} \
         ORDER BY COALESCE(last_message_at, created_at) DESC, id DESC LIMIT $2"
    )
}

fn conversation(row: Row<'_>) -> StoreResult<Conversation> {
    Ok(Conversation {
        id: ConversationId::from_uuid(row.get("id")?),
        business_id: BusinessId::from_uuid(row.get("business_id")?),
        integration_id: IntegrationId::from_uuid(row.get("integration_id")?),
        channel_type: row.name("channel_type", common::channel)?,
        external_chat_id: row.get("external_chat_id")?,
        contact_name: row.get("contact_name")?,
        last_message_at: row.opt_time("last_message_at")?,
        window_expires_at: row.opt_time("window_expires_at")?,
        unreachable: row.get("unreachable")?,
        created_at: row.time("created_at")?,
    })
}

#[async_trait]
impl<B: Backend> ConversationStore for SqlStore<B> {
    async fn upsert_conversation(&self, upsert: ConversationUpsert) -> StoreResult<Conversation> {
        let db: Db<'_> = self.db();
        let sql = format!(
            "INSERT INTO conversations (id, business_id, integration_id, channel_type, \
                 external_chat_id, contact_name, last_message_at, window_expires_at, \
                 created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) {conflict} \
             RETURNING {CONVERSATION_COLUMNS}",
            conflict = upsert_conflict(db.greatest())
        );
        // Another business's row comes back as no row: NotFound.
        db.query(&sql)
            .bind(ConversationId::new().as_uuid())
            .bind(upsert.business_id.as_uuid())
            .bind(upsert.integration_id.as_uuid())
            .bind(upsert.channel_type.as_str())
            .bind(&upsert.external_chat_id)
            .bind(upsert.contact_name.as_deref())
            .bind_time(upsert.last_message_at)
            .bind_opt_time(upsert.window_expires_at)
            .bind_time(common::now())
            .fetch_optional(conversation)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn conversation(
        &self,
        business: BusinessId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE business_id = $1 AND id = $2"
        );
        self.db()
            .query(&sql)
            .bind(business.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(conversation)
            .await
    }

    async fn conversations_by_ids(
        &self,
        ids: &[(BusinessId, ConversationId)],
    ) -> StoreResult<Vec<Conversation>> {
        // By id, then kept only where the business matches: ids are unique, so this is the
        // set of pairs that exist.
        let db = self.db();
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {}",
            db.in_uuids("id", "$1")
        );
        let found = db
            .query(&sql)
            .bind_uuids(ids.iter().map(|(_, id)| id.as_uuid()))
            .fetch_all(conversation)
            .await?;
        Ok(found
            .into_iter()
            .filter(|c| ids.contains(&(c.business_id, c.id)))
            .collect())
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
        self.db()
            .query(&sql)
            .bind(integration.as_uuid())
            .bind(external_chat_id)
            .fetch_optional(conversation)
            .await
    }

    async fn list_conversations(
        &self,
        business: BusinessId,
        page: Page<ConversationId>,
    ) -> StoreResult<Vec<Conversation>> {
        let sql = list_conversations_sql(page.before.is_some());
        let mut query = self
            .db()
            .query(&sql)
            .bind(business.as_uuid())
            .bind(common::limit(page.limit));
        if let Some(before) = page.before {
            query = query.bind(before.as_uuid());
        }
        query.fetch_all(conversation).await
    }

    async fn set_unreachable(&self, id: ConversationId, unreachable: bool) -> StoreResult<()> {
        self.db()
            .query("UPDATE conversations SET unreachable = $2, updated_at = $3 WHERE id = $1")
            .bind(id.as_uuid())
            .bind(unreachable)
            .bind_time(common::now())
            .execute_one()
            .await
    }
}

#[cfg(test)]
mod tests {
    use switchboard_core::store::Store;
    use uuid::Uuid;

    use super::*;
    use crate::SqliteStore;
    use crate::messages::list_messages_sql;

    /// What SQLite's planner says it does with `sql`, one line per step.
    async fn plan(store: &SqliteStore, sql: &str) -> Vec<String> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(store.pool())
            .await
            .expect("a plan");
        rows.iter()
            .map(|row| sqlx::Row::get(row, "detail"))
            .collect()
    }

    #[tokio::test]
    async fn a_page_after_a_cursor_seeks_to_it_in_the_lists_index() {
        let dir = std::env::temp_dir().join(format!("sb-plan-{}", Uuid::new_v4().simple()));
        let store = SqliteStore::connect(&format!("sqlite://{}/plan.db", dir.display()))
            .await
            .expect("open SQLite");
        store.migrate().await.expect("migrate");
        let cases = [
            (
                list_conversations_sql(true),
                "conversations_business_activity_idx (business_id=? AND <expr><?)",
            ),
            (
                list_conversations_sql(false),
                "conversations_business_activity_idx (business_id=?)",
            ),
            (
                list_messages_sql(true),
                "messages_conversation_idx (conversation_id=? AND id<?)",
            ),
            (
                list_messages_sql(false),
                "messages_conversation_idx (conversation_id=?)",
            ),
        ];
        for (sql, seek) in cases {
            let steps = plan(&store, &sql).await;
            assert!(
                steps.iter().any(|step| step.ends_with(seek)),
                "{sql}\n{steps:#?}"
            );
            // In the index's order: no step sorts what it read.
            assert!(
                !steps.iter().any(|step| step.contains("TEMP B-TREE")),
                "{sql}\n{steps:#?}"
            );
        }
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
