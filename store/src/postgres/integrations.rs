//! Channel integrations, PostgreSQL: one row per (business, channel), re-used on reconnect; a
//! provider account is active in at most one row (partial unique index).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use switchboard_core::crypto::EncryptedBlob;
use switchboard_core::domain::{Integration, IntegrationState};
use switchboard_core::error::Conflict;
use switchboard_core::store::{
    ConnectionRecord, IntegrationEvent, IntegrationStore, SecretHash, StoreResult,
};
use switchboard_core::{BusinessId, ChannelName, IntegrationId, StoreError};

use super::{PgStore, db, get, get_opt_ts, get_ts, one_row, opt_ts, ts};
use crate::common;

const COLUMNS: &str = "id, business_id, channel, channel_name, account_id, parent_account_id, \
    is_active, state, state_reason, details, token_expires_at, last_webhook_at, last_error, \
    created_at, updated_at";

fn integration(row: &PgRow) -> StoreResult<Integration> {
    let channel: String = get(row, "channel")?;
    let state: String = get(row, "state")?;
    let details: Json<Value> = get(row, "details")?;
    Ok(Integration {
        id: IntegrationId::from_uuid(get(row, "id")?),
        business_id: BusinessId::from_uuid(get(row, "business_id")?),
        channel: common::channel(&channel)?,
        channel_name: get(row, "channel_name")?,
        account_id: get(row, "account_id")?,
        parent_account_id: get(row, "parent_account_id")?,
        is_active: get(row, "is_active")?,
        state: common::integration_state(&state)?,
        state_reason: get(row, "state_reason")?,
        details: details.0,
        token_expires_at: get_opt_ts(row, "token_expires_at")?,
        last_webhook_at: get_opt_ts(row, "last_webhook_at")?,
        last_error: get(row, "last_error")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
    })
}

impl PgStore {
    async fn one_integration(&self, sql: &str, id: uuid::Uuid) -> StoreResult<Option<Integration>> {
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(integration).transpose()
    }
}

#[async_trait]
impl IntegrationStore for PgStore {
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
        let row = sqlx::query(&sql)
            .bind(business.as_uuid())
            .bind(channel.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(integration).transpose()
    }

    async fn integration_by_id(&self, id: IntegrationId) -> StoreResult<Option<Integration>> {
        let sql = format!("SELECT {COLUMNS} FROM channel_integrations WHERE id = $1");
        self.one_integration(&sql, id.as_uuid()).await
    }

    async fn list_integrations(&self, business: BusinessId) -> StoreResult<Vec<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations WHERE business_id = $1 ORDER BY channel"
        );
        let rows = sqlx::query(&sql)
            .bind(business.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(integration).collect()
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
        let row = sqlx::query(&sql)
            .bind(channel.as_str())
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(integration).transpose()
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
        let row = sqlx::query(&sql)
            .bind(channel.as_str())
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(integration).transpose()
    }

    async fn credentials(&self, id: IntegrationId) -> StoreResult<Option<EncryptedBlob>> {
        let blob: Option<Option<Vec<u8>>> = sqlx::query_scalar(
            "SELECT credentials FROM channel_integrations WHERE id = $1 AND is_active",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(blob.flatten().map(EncryptedBlob::from_stored))
    }

    async fn deactivate(&self, id: IntegrationId, last_error: Option<&str>) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE channel_integrations SET is_active = FALSE, credentials = NULL, \
                 webhook_secret_hash = NULL, state = 'not_connected', last_error = $2, \
                 updated_at = $3 \
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(last_error)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }

    async fn set_state(
        &self,
        id: IntegrationId,
        state: IntegrationState,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE channel_integrations SET state = $2, state_reason = $3, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(state.as_str())
        .bind(reason)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }

    async fn set_last_error(&self, id: IntegrationId, error: Option<&str>) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE channel_integrations SET last_error = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(error)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }

    async fn set_token_expiry(
        &self,
        id: IntegrationId,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE channel_integrations SET token_expires_at = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(opt_ts(at))
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }

    async fn touch_webhook(&self, id: IntegrationId, at: DateTime<Utc>) -> StoreResult<()> {
        // Not `updated_at`: a webhook is traffic, not a change of the integration.
        let result = sqlx::query(
            "UPDATE channel_integrations \
             SET last_webhook_at = GREATEST(last_webhook_at, $2) WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(ts(at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(&result)
    }

    async fn record_integration_event(
        &self,
        id: IntegrationId,
        kind: &str,
        summary: &str,
        payload: &Value,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO integration_events (id, integration_id, kind, summary, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(id.as_uuid())
        .bind(kind)
        .bind(summary)
        .bind(Json(payload))
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn integration_events(
        &self,
        id: IntegrationId,
        limit: u32,
    ) -> StoreResult<Vec<IntegrationEvent>> {
        let rows = sqlx::query(
            "SELECT kind, summary, payload, created_at FROM integration_events \
             WHERE integration_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(id.as_uuid())
        .bind(common::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let payload: Json<Value> = get(row, "payload")?;
                Ok(IntegrationEvent {
                    kind: get(row, "kind")?,
                    summary: get(row, "summary")?,
                    payload: payload.0,
                    created_at: get_ts(row, "created_at")?,
                })
            })
            .collect()
    }

    async fn expiring_before(&self, before: DateTime<Utc>) -> StoreResult<Vec<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations \
             WHERE is_active AND state = 'connected' AND token_expires_at < $1 \
             ORDER BY token_expires_at"
        );
        let rows = sqlx::query(&sql)
            .bind(ts(before))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(integration).collect()
    }
}

impl PgStore {
    async fn upsert_connection(&self, record: &ConnectionRecord) -> StoreResult<Integration> {
        let now = ts(common::now());
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
        let row = sqlx::query(&sql)
            .bind(IntegrationId::new().as_uuid())
            .bind(record.business_id.as_uuid())
            .bind(record.channel.as_str())
            .bind(record.channel_name.as_deref())
            .bind(&record.account_id)
            .bind(record.parent_account_id.as_deref())
            .bind(record.credentials.as_bytes())
            .bind(record.webhook_secret_hash.as_ref().map(|h| &h.0[..]))
            .bind(Json(&record.details))
            .bind(opt_ts(record.token_expires_at.map(common::truncate)))
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        integration(&row)
    }
}

impl PgStore {
    /// One query for [`switchboard_core::store::Store::integrations_by_ids`].
    pub(super) async fn integrations_by_id_list(
        &self,
        ids: &[IntegrationId],
    ) -> StoreResult<Vec<Integration>> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(IntegrationId::as_uuid).collect();
        let sql = format!("SELECT {COLUMNS} FROM channel_integrations WHERE id = ANY($1)");
        let rows = sqlx::query(&sql)
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(integration).collect()
    }

    /// One query for [`switchboard_core::store::Store::credentials_by_ids`].
    pub(super) async fn credentials_by_id_list(
        &self,
        ids: &[IntegrationId],
    ) -> StoreResult<Vec<(IntegrationId, EncryptedBlob)>> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(IntegrationId::as_uuid).collect();
        let rows: Vec<(uuid::Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT id, credentials FROM channel_integrations \
             WHERE id = ANY($1) AND is_active AND credentials IS NOT NULL",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(id, blob)| {
                (
                    IntegrationId::from_uuid(id),
                    EncryptedBlob::from_stored(blob),
                )
            })
            .collect())
    }

    /// One query for [`switchboard_core::store::Store::active_by_accounts`].
    pub(super) async fn active_by_account_list(
        &self,
        channel: &ChannelName,
        accounts: &[String],
    ) -> StoreResult<Vec<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channel_integrations \
             WHERE channel = $1 AND account_id = ANY($2) AND is_active"
        );
        let rows = sqlx::query(&sql)
            .bind(channel.as_str())
            .bind(accounts)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(integration).collect()
    }
}
