//! Tenants and their API keys: how keys are made and stored, and creating a business with its
//! first key (the `tenant create` command).

use secrecy::{ExposeSecret, SecretString};
use switchboard_core::crypto::random_token;
use switchboard_core::error::StoreError;
use switchboard_core::store::{Business, SecretHash, Store};

/// Prefix of every API key, so leaked keys are recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "sbk_";

/// A new API key: 32 random bytes, URL-safe.
#[must_use]
pub fn generate_api_key() -> SecretString {
    SecretString::from(format!(
        "{API_KEY_PREFIX}{}",
        random_token(32).expose_secret()
    ))
}

/// The hash under which an API key is stored.
#[must_use]
pub fn api_key_hash(key: &str) -> SecretHash {
    SecretHash::of(key.as_bytes())
}

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
