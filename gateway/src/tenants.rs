//! Creating tenants and their API keys (the `tenant create` command).

use secrecy::{ExposeSecret, SecretString};
use switchboard_core::error::StoreError;
use switchboard_core::store::{Business, Store};

use crate::http::auth::{api_key_hash, generate_api_key};

/// A new business and its first API key (shown once; only its hash is stored).
#[derive(Debug)]
pub struct NewTenant {
    pub business: Business,
    pub api_key: SecretString,
}

/// Creates a business with one API key.
///
/// # Errors
/// A store failure.
pub async fn create(store: &dyn Store, name: &str) -> Result<NewTenant, StoreError> {
    let business = store.create_business(name).await?;
    let api_key = generate_api_key();
    store
        .add_api_key(
            business.id,
            api_key_hash(api_key.expose_secret()),
            "default",
        )
        .await?;
    Ok(NewTenant { business, api_key })
}
