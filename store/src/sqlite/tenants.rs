//! Businesses and their API keys (stored by hash), SQLite.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use switchboard_core::BusinessId;
use switchboard_core::store::{Business, SecretHash, StoreResult, TenantStore};
use uuid::Uuid;

use super::{SqliteStore, db, get, get_ts, ts};
use crate::common;

fn business(row: &SqliteRow) -> StoreResult<Business> {
    Ok(Business {
        id: BusinessId::from_uuid(get(row, "id")?),
        name: get(row, "name")?,
        created_at: get_ts(row, "created_at")?,
    })
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_business(&self, name: &str) -> StoreResult<Business> {
        let created = Business {
            id: BusinessId::new(),
            name: name.to_owned(),
            created_at: common::now(),
        };
        sqlx::query("INSERT INTO businesses (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(created.id.as_uuid())
            .bind(&created.name)
            .bind(ts(created.created_at))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(created)
    }

    async fn get_business(&self, id: BusinessId) -> StoreResult<Option<Business>> {
        let row = sqlx::query("SELECT id, name, created_at FROM businesses WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(business).transpose()
    }

    async fn add_api_key(
        &self,
        business: BusinessId,
        key_hash: SecretHash,
        label: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (key_hash, business_id, label, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&key_hash.0[..])
        .bind(business.as_uuid())
        .bind(label)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn business_by_api_key(&self, key_hash: SecretHash) -> StoreResult<Option<BusinessId>> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT business_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&key_hash.0[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(id.map(BusinessId::from_uuid))
    }
}
