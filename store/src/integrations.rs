//! Channel integrations: one row per (business, channel), re-used on reconnect; a
//! provider account is active in at most one row (partial unique index).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use switchboard_core::crypto::EncryptedBlob;
use switchboard_core::domain::{Integration, IntegrationState};
use switchboard_core::error::Conflict;
use switchboard_core::store::{
    ConnectionRecord, IntegrationEvent, IntegrationStore, SecretHash, StoreResult,
};
use switchboard_core::{BusinessId, ChannelName, IntegrationId, StoreError};

use crate::sql::Row;
use crate::{Backend, SqlStore, common};

const COLUMNS: &str = "id, business_id, channel, channel_name, account_id, parent_account_id, \
    is_active, state, state_reason, details, token_expires_at, last_webhook_at, last_error, \
    created_at, updated_at";

fn integration(row: Row<'_>) -> StoreResult<Integration> {
    let details: Json<Value> = row.get("details")?;
    Ok(Integration {
        id: IntegrationId::from_uuid(row.get("id")?),
        business_id: BusinessId::from_uuid(row.get("business_id")?),
        channel: row.name("channel", common::channel)?,
        channel_name: row.get("channel_name")?,
        account_id: row.get("account_id")?,
        parent_account_id: row.get("parent_account_id")?,
        is_active: row.get("is_active")?,
        state: row.name("state", common::integration_state)?,
        state_reason: row.get("state_reason")?,
        details: details.0,
        token_expires_at: row.opt_time("token_expires_at")?,
        last_webhook_at: row.opt_time("last_webhook_at")?,
        last_error: row.get("last_error")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

impl<B: Backend> SqlStore<B> {
    async fn one_integration(&self, sql: &str, id: uuid::Uuid) -> StoreResult<Option<Integration>> {
        self.db()
            .query(sql)
            .bind(id)
            .fetch_optional(integration)
            .await
    }
}

#[async_trait]
impl<B: Backend> IntegrationStore for SqlStore<B> {
    async fn save_connection(&self, record: ConnectionRecord) -> StoreResult<Integration> {
        // Two first-time connects of one business can race: the loser may trip the account
        // index before the (business, channel) upsert arbiter sees the winner's row. Once the
        // row exists the upsert takes its update path, so one more try settles it; a real
        // holder in another business fails again.
        match self.upsert_connection(&record).await {
            Err(StoreError::Conflict(Conflict::AccountInUse)) => {
                self.upsert_connection(&record).await
            }
            other => other,
        }
    }

    async fn integration_for(
        &self,
        business: BusinessId,
        channel: &ChannelName,
    ) -> StoreResult<Option<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations WHERE business_id = $1 AND channel = $2 \
             ORDER BY is_active DESC, updated_at DESC LIMIT 1"
        );
        self.db()
            .query(&sql)
            .bind(business.as_uuid())
            .bind(channel.as_str())
            .fetch_optional(integration)
            .await
    }

    async fn integration_by_id(&self, id: IntegrationId) -> StoreResult<Option<Integration>> {
        let sql = format!("SELECT {COLUMNS} FROM channel_integrations WHERE id = $1");
        self.one_integration(&sql, id.as_uuid()).await
    }

    async fn integrations_by_ids(&self, ids: &[IntegrationId]) -> StoreResult<Vec<Integration>> {
        let db = self.db();
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations WHERE {}",
            db.in_uuids("id", "$1")
        );
        db.query(&sql)
            .bind_uuids(ids.iter().map(IntegrationId::as_uuid))
            .fetch_all(integration)
            .await
    }

    async fn list_integrations(&self, business: BusinessId) -> StoreResult<Vec<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations WHERE business_id = $1 ORDER BY channel"
        );
        self.db()
            .query(&sql)
            .bind(business.as_uuid())
            .fetch_all(integration)
            .await
    }

    async fn active_by_account(
        &self,
        channel: &ChannelName,
        account_id: &str,
    ) -> StoreResult<Option<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations \
             WHERE channel = $1 AND account_id = $2 AND is_active"
        );
        self.db()
            .query(&sql)
            .bind(channel.as_str())
            .bind(account_id)
            .fetch_optional(integration)
            .await
    }

    async fn active_by_accounts(
        &self,
        channel: &ChannelName,
        accounts: &[String],
    ) -> StoreResult<Vec<Integration>> {
        let db = self.db();
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations WHERE channel = $1 AND {} AND is_active",
            db.in_texts("account_id", "$2")
        );
        db.query(&sql)
            .bind(channel.as_str())
            .bind_texts(accounts)
            .fetch_all(integration)
            .await
    }

    async fn active_by_webhook_secret(
        &self,
        channel: &ChannelName,
        hash: SecretHash,
    ) -> StoreResult<Option<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations \
             WHERE channel = $1 AND webhook_secret_hash = $2 AND is_active"
        );
        self.db()
            .query(&sql)
            .bind(channel.as_str())
            .bind(&hash.0[..])
            .fetch_optional(integration)
            .await
    }

    async fn credentials(&self, id: IntegrationId) -> StoreResult<Option<EncryptedBlob>> {
        let blob = self
            .db()
            .query("SELECT credentials FROM channel_integrations WHERE id = $1 AND is_active")
            .bind(id.as_uuid())
            .fetch_optional(|row| row.get::<Option<Vec<u8>>>("credentials"))
            .await?;
        Ok(blob.flatten().map(EncryptedBlob::from_stored))
    }

    async fn credentials_by_ids(
        &self,
        ids: &[IntegrationId],
    ) -> StoreResult<Vec<(IntegrationId, EncryptedBlob)>> {
        let db = self.db();
        let sql = format!(
            "SELECT id, credentials FROM channel_integrations \
             WHERE {} AND is_active AND credentials IS NOT NULL",
            db.in_uuids("id", "$1")
        );
        db.query(&sql)
            .bind_uuids(ids.iter().map(IntegrationId::as_uuid))
            .fetch_all(|row| {
                Ok((
                    IntegrationId::from_uuid(row.get("id")?),
                    EncryptedBlob::from_stored(row.get("credentials")?),
                ))
            })
            .await
    }

    async fn deactivate(&self, id: IntegrationId, last_error: Option<&str>) -> StoreResult<()> {
        self.db()
            .query(
                "UPDATE channel_integrations SET is_active = FALSE, credentials = NULL, \
                 webhook_secret_hash = NULL, state = 'not_connected', last_error = $2, \
                 updated_at = $3 \
             WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(last_error)
            .bind_time(common::now())
            .execute_one()
            .await
    }

    async fn set_state(
        &self,
        id: IntegrationId,
        state: IntegrationState,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        self.db()
            .query(
                "UPDATE channel_integrations SET state = $2, state_reason = $3, updated_at = $4 \
             WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(state.as_str())
            .bind(reason)
            .bind_time(common::now())
            .execute_one()
            .await
    }

    async fn set_last_error(&self, id: IntegrationId, error: Option<&str>) -> StoreResult<()> {
        self.db()
            .query("UPDATE channel_integrations SET last_error = $2, updated_at = $3 WHERE id = $1")
            .bind(id.as_uuid())
            .bind(error)
            .bind_time(common::now())
            .execute_one()
            .await
    }

    async fn set_token_expiry(
        &self,
        id: IntegrationId,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.db().query(
            "UPDATE channel_integrations SET token_expires_at = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind_opt_time(at)
        .bind_time(common::now())
        .execute_one().await
    }

    async fn touch_webhook(&self, id: IntegrationId, at: DateTime<Utc>) -> StoreResult<()> {
        // Not `updated_at`: a webhook is traffic, not a change of the integration.
        let sql = format!(
            "UPDATE channel_integrations \
             SET last_webhook_at = {greatest}(COALESCE(last_webhook_at, $2), $2) WHERE id = $1",
            greatest = self.db().greatest()
        );
        self.db()
            .query(&sql)
            .bind(id.as_uuid())
            .bind_time(at)
            .execute_one()
            .await
    }

    async fn record_integration_event(
        &self,
        id: IntegrationId,
        kind: &str,
        summary: &str,
        payload: &Value,
    ) -> StoreResult<()> {
        self.db().query(
            "INSERT INTO integration_events (id, integration_id, kind, summary, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(id.as_uuid())
        .bind(kind)
        .bind(summary)
        .bind(Json(payload))
        .bind_time(common::now())
        .execute().await?;
        Ok(())
    }

    async fn integration_events(
        &self,
        id: IntegrationId,
        limit: u32,
    ) -> StoreResult<Vec<IntegrationEvent>> {
        self.db()
            .query(
                "SELECT kind, summary, payload, created_at FROM integration_events \
             WHERE integration_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(id.as_uuid())
            .bind(common::limit(limit))
            .fetch_all(|row| {
                let payload: Json<Value> = row.get("payload")?;
                Ok(IntegrationEvent {
                    kind: row.get("kind")?,
                    summary: row.get("summary")?,
                    payload: payload.0,
                    created_at: row.time("created_at")?,
                })
            })
            .await
    }

    async fn expiring_before(&self, before: DateTime<Utc>) -> StoreResult<Vec<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations \
             WHERE is_active AND state = 'connected' AND token_expires_at < $1 \
             ORDER BY token_expires_at"
        );
        self.db()
            .query(&sql)
            .bind_time(before)
            .fetch_all(integration)
            .await
    }
}

impl<B: Backend> SqlStore<B> {
    async fn upsert_connection(&self, record: &ConnectionRecord) -> StoreResult<Integration> {
        let now = common::now();
        let sql = format!(
            "INSERT INTO channel_integrations (id, business_id, channel, channel_name, \
                 account_id, parent_account_id, credentials, webhook_secret_hash, is_active, \
                 state, details, token_expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, 'connected', $9, $10, $11, $11) \
             ON CONFLICT (business_id, channel) DO UPDATE SET \
                 channel_name = excluded.channel_name, account_id = excluded.account_id, \
                 parent_account_id = excluded.parent_account_id, \
                 credentials = excluded.credentials, \
                 webhook_secret_hash = excluded.webhook_secret_hash, is_active = TRUE, \
                 state = 'connected', state_reason = NULL, last_error = NULL, \
                 details = excluded.details, token_expires_at = excluded.token_expires_at, \
                 updated_at = excluded.updated_at \
             RETURNING {COLUMNS}"
        );
        self.db()
            .query(&sql)
            .bind(IntegrationId::new().as_uuid())
            .bind(record.business_id.as_uuid())
            .bind(record.channel.as_str())
            .bind(record.channel_name.as_deref())
            .bind(&record.account_id)
            .bind(record.parent_account_id.as_deref())
            .bind(record.credentials.as_bytes())
            .bind(record.webhook_secret_hash.as_ref().map(|h| &h.0[..]))
            .bind(Json(&record.details))
            .bind_opt_time(record.token_expires_at.map(common::truncate))
            .bind_time(now)
            .fetch_one(integration)
            .await
    }
}
