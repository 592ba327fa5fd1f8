//! Connection bookkeeping shared by the HTTP handlers and the workers: turning an adapter's
//! [`NewConnection`] into an encrypted stored integration, decrypting it back into an
//! [`IntegrationContext`] for provider calls, and rendering the integration status object (the README's HTTP API).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use switchboard_core::adapter::{
    AccountDirectory, ChannelDescriptor, Credentials, IntegrationContext, LiveStatus, NewConnection,
};
use switchboard_core::crypto::{Cipher, EncryptedBlob};
use switchboard_core::domain::{Integration, IntegrationState};
use switchboard_core::error::StoreError;
use switchboard_core::store::{ConnectionRecord, SecretHash, Store};
use switchboard_core::{BusinessId, ChannelName, IntegrationId};

/// Associated data binding stored credentials to their business and channel.
fn credentials_context(business: BusinessId, channel: &ChannelName) -> Vec<u8> {
    format!("switchboard:credentials:{channel}:{business}").into_bytes()
}

/// Associated data binding a pending account choice to its business and channel.
fn pending_context(business: BusinessId, channel: &ChannelName) -> Vec<u8> {
    format!("switchboard:pending:{channel}:{business}").into_bytes()
}

/// Encrypts adapter credentials for storage.
#[must_use]
pub fn seal(
    cipher: &Cipher,
    business: BusinessId,
    channel: &ChannelName,
    credentials: &Credentials,
) -> EncryptedBlob {
    cipher.encrypt(
        credentials.expose_json().as_bytes(),
        &credentials_context(business, channel),
    )
}

/// Encrypts a pending account choice.
#[must_use]
pub fn seal_pending(
    cipher: &Cipher,
    business: BusinessId,
    channel: &ChannelName,
    pending: &Credentials,
) -> EncryptedBlob {
    cipher.encrypt(
        pending.expose_json().as_bytes(),
        &pending_context(business, channel),
    )
}

/// Decrypts a pending account choice.
///
/// # Errors
/// `Corrupt` when it does not decrypt.
pub fn open_pending(
    cipher: &Cipher,
    business: BusinessId,
    channel: &ChannelName,
    blob: &EncryptedBlob,
) -> Result<Credentials, StoreError> {
    open_blob(cipher, blob, &pending_context(business, channel))
}

fn open_blob(
    cipher: &Cipher,
    blob: &EncryptedBlob,
    context: &[u8],
) -> Result<Credentials, StoreError> {
    use secrecy::ExposeSecret;
    let plain = cipher
        .decrypt(blob, context)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let text = std::str::from_utf8(plain.expose_secret())
        .map_err(|_| StoreError::Corrupt("credentials are not UTF-8".into()))?;
    Ok(Credentials::from_json_text(SecretString::from(
        text.to_owned(),
    )))
}

/// Stores a finished connection, encrypted (reconnecting updates the same integration), and
/// releases the sends that were held while it needed re-authorisation.
///
/// # Errors
/// `Conflict(AccountInUse)` when another business holds the account, or a store failure.
pub async fn save(
    store: &dyn Store,
    cipher: &Cipher,
    business: BusinessId,
    channel: &ChannelName,
    connection: NewConnection,
) -> Result<Integration, StoreError> {
    let credentials = seal(cipher, business, channel, &connection.credentials);
    let webhook_secret_hash = connection.webhook_secret.as_ref().map(|s| {
        use secrecy::ExposeSecret;
        SecretHash::of(s.expose_secret().as_bytes())
    });
    let integration = store
        .save_connection(ConnectionRecord {
            business_id: business,
            channel: channel.clone(),
            channel_name: connection.channel_name,
            account_id: connection.account_id,
            parent_account_id: connection.parent_account_id,
            details: connection.details,
            credentials,
            webhook_secret_hash,
            token_expires_at: connection.token_expires_at,
        })
        .await?;
    // Sends held while the token was bad resume now.
    let released = store
        .release_held_jobs(integration.id, chrono::Utc::now())
        .await?;
    if released > 0 {
        tracing::info!(integration_id = %integration.id, released, "reconnected; held sends resume");
    }
    Ok(integration)
}

/// The integration with its decrypted credentials, for a provider call. `None` when it has no
/// credentials (disconnected).
///
/// # Errors
/// A store failure, or `Corrupt` when the credentials do not decrypt.
pub async fn context(
    store: &dyn Store,
    cipher: &Cipher,
    integration: Integration,
) -> Result<Option<IntegrationContext>, StoreError> {
    let Some(blob) = store.credentials(integration.id).await? else {
        return Ok(None);
    };
    open_context(cipher, integration, &blob).map(Some)
}

/// The integration with its credentials decrypted from `blob`.
fn open_context(
    cipher: &Cipher,
    integration: Integration,
    blob: &EncryptedBlob,
) -> Result<IntegrationContext, StoreError> {
    let credentials = open_blob(
        cipher,
        blob,
        &credentials_context(integration.business_id, &integration.channel),
    )?;
    Ok(IntegrationContext {
        integration,
        credentials,
    })
}

/// [`context`] for several integrations, their credentials read in one query: `None` for
/// those without credentials.
///
/// # Errors
/// A store failure, or `Corrupt` when credentials do not decrypt.
pub async fn contexts(
    store: &dyn Store,
    cipher: &Cipher,
    integrations: Vec<Integration>,
) -> Result<HashMap<IntegrationId, Option<IntegrationContext>>, StoreError> {
    let ids: Vec<IntegrationId> = integrations.iter().map(|i| i.id).collect();
    let mut blobs: HashMap<IntegrationId, EncryptedBlob> =
        store.credentials_by_ids(&ids).await?.into_iter().collect();
    let mut contexts = HashMap::with_capacity(integrations.len());
    for integration in integrations {
        let id = integration.id;
        let context = match blobs.remove(&id) {
            Some(blob) => Some(open_context(cipher, integration, &blob)?),
            None => None,
        };
        contexts.insert(id, context);
    }
    Ok(contexts)
}

/// The integrations with these ids, read in one query: each id maps to its integration, or to
/// `None` where there is none.
///
/// # Errors
/// A store failure.
pub async fn integrations_by_id(
    store: &dyn Store,
    ids: impl IntoIterator<Item = IntegrationId>,
) -> Result<HashMap<IntegrationId, Option<Integration>>, StoreError> {
    let mut found: HashMap<IntegrationId, Option<Integration>> =
        ids.into_iter().map(|id| (id, None)).collect();
    if !found.is_empty() {
        let ids: Vec<IntegrationId> = found.keys().copied().collect();
        for integration in store.integrations_by_ids(&ids).await? {
            found.insert(integration.id, Some(integration));
        }
    }
    Ok(found)
}

/// Looks account ownership up for adapters' connect flows.
#[derive(Debug)]
pub struct StoreDirectory<'a>(pub &'a dyn Store);

#[async_trait]
impl AccountDirectory for StoreDirectory<'_> {
    async fn owner_of(
        &self,
        channel: &ChannelName,
        account_id: &str,
    ) -> Result<Option<BusinessId>, StoreError> {
        Ok(self
            .0
            .active_by_account(channel, account_id)
            .await?
            .map(|i| i.business_id))
    }
}

fn rfc3339(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

/// The status object for one channel and this business's integration, if any.
/// `live` overrides the stored state with what the provider just said.
#[must_use]
pub fn status_object(
    descriptor: &ChannelDescriptor,
    integration: Option<&Integration>,
    live: Option<&LiveStatus>,
) -> Value {
    let mut object = Map::new();
    object.insert("channel".into(), json!(descriptor.name));
    object.insert("display_name".into(), json!(descriptor.display_name));
    object.insert("connect_kind".into(), json!(descriptor.connect_kind));
    object.insert("capabilities".into(), json!(descriptor.capabilities));
    let active = integration.filter(|i| i.is_active);
    let state = match (active, live) {
        (Some(_), Some(live)) => live.state,
        (Some(i), None) => i.state,
        (None, _) => IntegrationState::NotConnected,
    };
    object.insert("state".into(), json!(state));
    object.insert(
        "connected".into(),
        json!(state == IntegrationState::Connected),
    );
    object.insert("integration_id".into(), json!(integration.map(|i| i.id)));
    let reason = live
        .and_then(|l| l.reason.clone())
        .or_else(|| active.and_then(|i| i.state_reason.clone()));
    object.insert("state_reason".into(), json!(reason));
    object.insert(
        "last_error".into(),
        json!(integration.and_then(|i| i.last_error.clone())),
    );
    object.insert(
        "last_webhook_at".into(),
        rfc3339(integration.and_then(|i| i.last_webhook_at)),
    );
    let expiry = active.and_then(|i| live.and_then(|l| l.token_expires_at).or(i.token_expires_at));
    object.insert("token_expires_at".into(), rfc3339(expiry));
    if let Some(integration) = active {
        // Stored details, then what the provider just said.
        let mut details = Map::new();
        for source in [Some(&integration.details), live.map(|l| &l.details)]
            .into_iter()
            .flatten()
        {
            if let Value::Object(fields) = source {
                details.extend(fields.clone());
            }
        }
        let mut account = Map::new();
        account.insert("display_name".into(), json!(integration.channel_name));
        account.insert("account_id".into(), json!(integration.account_id));
        for (key, value) in details {
            // Account fields are also flat on the status object (`phone_number`,
            // `bot_username`, …), except where they would shadow a channel field.
            if !object.contains_key(&key) {
                object.insert(key.clone(), value.clone());
            }
            account.insert(key, value);
        }
        object.insert("account".into(), Value::Object(account));
    }
    Value::Object(object)
}
