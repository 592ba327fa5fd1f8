//! The MAC key of dashboard session cookies, and the cookie values it signs.
//!
//! A value is `<key hash hex>.<expiry unix>.<mac hex>`, MAC'd with a key derived from
//! `security.encryption_key`, so every instance accepts it. It carries the API key's hash,
//! never the key.

use chrono::Utc;
use secrecy::{ExposeSecret, SecretBox};
use switchboard_core::crypto::{constant_time_eq, hmac_sha256};
use switchboard_core::store::SecretHash;

/// The MAC key of session cookies.
pub struct SessionKey(pub SecretBox<[u8; 32]>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([REDACTED])")
    }
}

impl SessionKey {
    fn mac(&self, key_hash: &SecretHash, expires: i64) -> [u8; 32] {
        let message = format!("{}.{expires}", hex::encode(key_hash.0));
        hmac_sha256(self.0.expose_secret(), message.as_bytes())
    }

    /// The cookie value for a key hash, valid for `hours`.
    #[must_use]
    pub fn issue(&self, key_hash: &SecretHash, hours: i64) -> String {
        let expires = (Utc::now() + chrono::Duration::hours(hours)).timestamp();
        format!(
            "{}.{expires}.{}",
            hex::encode(key_hash.0),
            hex::encode(self.mac(key_hash, expires))
        )
    }

    /// The API key hash a valid, unexpired cookie value carries.
    #[must_use]
    pub fn verify(&self, value: &str) -> Option<SecretHash> {
        let mut parts = value.split('.');
        let (hash, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let hash: [u8; 32] = hex::decode(hash).ok()?.try_into().ok()?;
        let expires: i64 = expires.parse().ok()?;
        let tag = hex::decode(tag).ok()?;
        let hash = SecretHash(hash);
        let valid =
            constant_time_eq(&self.mac(&hash, expires), &tag) && expires > Utc::now().timestamp();
        valid.then_some(hash)
    }
}
