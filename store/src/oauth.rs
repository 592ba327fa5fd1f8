//! OAuth states (single use, by hash) and pending account choices.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use switchboard_core::crypto::EncryptedBlob;
use switchboard_core::store::{OAuthState, OAuthStore, PendingChoice, SecretHash, StoreResult};
use switchboard_core::{BusinessId, ChannelName, StoreError};

use crate::sql::Row;
use crate::{Backend, SqlStore, common};

fn hash(row: Row<'_>, column: &str) -> StoreResult<SecretHash> {
    let bytes: Vec<u8> = row.get(column)?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{column} is not 32 bytes")))?;
    Ok(SecretHash(bytes))
}

fn oauth_state(row: Row<'_>) -> StoreResult<OAuthState> {
    Ok(OAuthState {
        state_hash: hash(row, "state_hash")?,
        business_id: BusinessId::from_uuid(row.get("business_id")?),
        channel: row.name("channel", common::channel)?,
        session_hash: hash(row, "session_hash")?,
        expires_at: row.time("expires_at")?,
    })
}

fn pending_choice(row: Row<'_>) -> StoreResult<PendingChoice> {
    let options: Json<Value> = row.get("options")?;
    Ok(PendingChoice {
        business_id: BusinessId::from_uuid(row.get("business_id")?),
        channel: row.name("channel", common::channel)?,
        pending: EncryptedBlob::from_stored(row.get("pending")?),
        options: options.0,
        expires_at: row.time("expires_at")?,
    })
}

#[async_trait]
impl<B: Backend> OAuthStore for SqlStore<B> {
    async fn put_oauth_state(&self, state: OAuthState) -> StoreResult<()> {
        self.db()
            .query(
                "INSERT INTO oauth_states \
                 (state_hash, business_id, channel, session_hash, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&state.state_hash.0[..])
            .bind(state.business_id.as_uuid())
            .bind(state.channel.as_str())
            .bind(&state.session_hash.0[..])
            .bind_time(state.expires_at)
            .bind_time(common::now())
            .execute()
            .await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state_hash: SecretHash,
        session_hash: SecretHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OAuthState>> {
        // Deleting is the take: of two concurrent takes only one gets the row back. An expired
        // state is deleted too, and found as nothing.
        let state = self
            .db()
            .query(
                "DELETE FROM oauth_states WHERE state_hash = $1 AND session_hash = $2 \
                 RETURNING state_hash, business_id, channel, session_hash, expires_at",
            )
            .bind(&state_hash.0[..])
            .bind(&session_hash.0[..])
            .fetch_optional(oauth_state)
            .await?;
        Ok(state.filter(|s| s.expires_at > now))
    }

    async fn delete_expired_oauth(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut deleted = 0;
        for table in ["oauth_states", "pending_choices"] {
            let sql = format!("DELETE FROM {table} WHERE expires_at <= $1");
            deleted += self.db().query(&sql).bind_time(now).execute().await?;
        }
        Ok(deleted)
    }

    async fn put_pending_choice(&self, choice: PendingChoice) -> StoreResult<()> {
        self.db()
            .query(
                "INSERT INTO pending_choices \
                 (business_id, channel, pending, options, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (business_id, channel) DO UPDATE SET pending = excluded.pending, \
                 options = excluded.options, expires_at = excluded.expires_at, \
                 created_at = excluded.created_at",
            )
            .bind(choice.business_id.as_uuid())
            .bind(choice.channel.as_str())
            .bind(choice.pending.as_bytes())
            .bind(Json(&choice.options))
            .bind_time(choice.expires_at)
            .bind_time(common::now())
            .execute()
            .await?;
        Ok(())
    }

    async fn pending_choice(
        &self,
        business: BusinessId,
        channel: &ChannelName,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PendingChoice>> {
        self.db()
            .query(
                "SELECT business_id, channel, pending, options, expires_at FROM pending_choices \
             WHERE business_id = $1 AND channel = $2 AND expires_at > $3",
            )
            .bind(business.as_uuid())
            .bind(channel.as_str())
            .bind_time(now)
            .fetch_optional(pending_choice)
            .await
    }

    async fn clear_pending_choice(
        &self,
        business: BusinessId,
        channel: &ChannelName,
    ) -> StoreResult<()> {
        self.db()
            .query("DELETE FROM pending_choices WHERE business_id = $1 AND channel = $2")
            .bind(business.as_uuid())
            .bind(channel.as_str())
            .execute()
            .await?;
        Ok(())
    }
}
