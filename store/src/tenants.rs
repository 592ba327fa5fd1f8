//! Businesses and their API keys (stored by hash).

use async_trait::async_trait;
use switchboard_core::BusinessId;
use switchboard_core::store::{Business, SecretHash, StoreResult, TenantStore};

use crate::sql::Row;
use crate::{Backend, SqlStore, common};

fn business(row: Row<'_>) -> StoreResult<Business> {
    Ok(Business {
        id: BusinessId::from_uuid(row.get("id")?),
        name: row.get("name")?,
        created_at: row.time("created_at")?,
    })
}

#[async_trait]
impl<B: Backend> TenantStore for SqlStore<B> {
    async fn create_business(&self, name: &str) -> StoreResult<Business> {
        let created = Business {
            id: BusinessId::new(),
            name: name.to_owned(),
            created_at: common::now(),
        };
        self.db()
            .query("INSERT INTO businesses (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(created.id.as_uuid())
            .bind(&created.name)
            .bind_time(created.created_at)
            .execute()
            .await?;
        Ok(created)
    }

    async fn get_business(&self, id: BusinessId) -> StoreResult<Option<Business>> {
        self.db()
            .query("SELECT id, name, created_at FROM businesses WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(business)
            .await
    }

    async fn add_api_key(
        &self,
        business: BusinessId,
        key_hash: SecretHash,
        label: &str,
    ) -> StoreResult<()> {
        self.db()
            .query(
                "INSERT INTO api_keys (key_hash, business_id, label, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&key_hash.0[..])
            .bind(business.as_uuid())
            .bind(label)
            .bind_time(common::now())
            .execute()
            .await?;
        Ok(())
    }

    async fn business_by_api_key(&self, key_hash: SecretHash) -> StoreResult<Option<BusinessId>> {
        self.db()
            .query("SELECT business_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(&key_hash.0[..])
            .fetch_optional(|row| Ok(BusinessId::from_uuid(row.get("business_id")?)))
            .await
    }
}
