//! Crypto helpers: credential encryption at rest (AES-256-GCM), hashing of look-up secrets
//! (SHA-256), HMAC signatures, random tokens and constant-time comparison.
//!
//! Everything secret is a `secrecy` type, so it redacts itself in `Debug` output.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Version byte in front of every ciphertext, so the format can change later.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// A 256-bit key for credential encryption.
pub struct EncryptionKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be base64 of exactly 32 bytes")]
    Malformed,
}

impl EncryptionKey {
    /// Parses a base64 (standard alphabet) encoding of 32 bytes.
    ///
    /// # Errors
    /// When the text is not base64 or does not decode to 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::Malformed)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    /// A fresh random key.
    #[must_use]
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(SecretBox::new(Box::new(key)))
    }

    /// A 256-bit subkey for another purpose (session cookies), derived with HMAC-SHA256 so the
    /// encryption key itself is used for nothing else.
    #[must_use]
    pub fn derive(&self, label: &str) -> SecretBox<[u8; 32]> {
        SecretBox::new(Box::new(hmac_sha256(
            self.0.expose_secret(),
            label.as_bytes(),
        )))
    }

    /// The base64 form, for writing the sandbox key file.
    #[must_use]
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.0.expose_secret()))
    }
}

/// Credentials as they are stored: a versioned AES-256-GCM ciphertext. Only [`Cipher`] makes
/// one, so a store can only ever be handed encrypted secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedBlob(Vec<u8>);

impl std::fmt::Debug for EncryptedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedBlob({} bytes)", self.0.len())
    }
}

impl EncryptedBlob {
    /// Wraps bytes read back from the database.
    #[must_use]
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error(
        "ciphertext does not decrypt under the configured key (was security.encryption_key changed?)"
    )]
    Decrypt,
    #[error("unknown ciphertext format")]
    Format,
}

/// Encrypts and decrypts credentials with the configured key. Clones share one expanded key
/// (the gateway's state is cloned per request; the key schedule is not copied with it).
#[derive(Clone)]
pub struct Cipher(Arc<Aes256Gcm>);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([REDACTED])")
    }
}

impl Cipher {
    #[must_use]
    pub fn new(key: &EncryptionKey) -> Self {
        Self(Arc::new(Aes256Gcm::new(key.0.expose_secret().into())))
    }

    /// Encrypts with a fresh random nonce. `context` (e.g. the integration's channel) is bound
    /// as associated data, so a ciphertext cannot be moved to another context unnoticed.
    #[must_use]
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> EncryptedBlob {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = aes_gcm::aead::Payload {
            msg: plaintext,
            aad: context,
        };
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        EncryptedBlob(out)
    }

    /// Decrypts a blob made by [`Cipher::encrypt`] with the same `context`.
    ///
    /// # Errors
    /// When the format is unknown or the key or context differ.
    pub fn decrypt(
        &self,
        blob: &EncryptedBlob,
        context: &[u8],
    ) -> Result<SecretBox<[u8]>, CipherError> {
        let bytes = blob.as_bytes();
        let Some((&FORMAT_V1, rest)) = bytes.split_first() else {
            return Err(CipherError::Format);
        };
        if rest.len() < NONCE_LEN {
            return Err(CipherError::Format);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let payload = aes_gcm::aead::Payload {
            msg: sealed,
            aad: context,
        };
        let plain = self
            .0
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| CipherError::Decrypt)?;
        Ok(SecretBox::new(plain.into_boxed_slice()))
    }
}

/// SHA-256 of a secret, used to look secrets up (API keys, OAuth states, webhook secrets)
/// without storing them.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA256 of `body` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Checks an HMAC-SHA256 signature in constant time.
#[must_use]
pub fn verify_hmac_sha256(key: &[u8], body: &[u8], signature: &[u8]) -> bool {
    HmacVerifier::new(key).verify(body, signature)
}

/// An HMAC-SHA256 key prepared once (its padded blocks already hashed), for checking the
/// signatures of many messages under one key, such as a provider's app secret.
#[derive(Clone)]
pub struct HmacVerifier(Hmac<Sha256>);

impl std::fmt::Debug for HmacVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacVerifier([REDACTED])")
    }
}

impl HmacVerifier {
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        Self(<Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length"))
    }

    /// Whether `signature` is the HMAC-SHA256 of `body`, compared in constant time.
    #[must_use]
    pub fn verify(&self, body: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(body);
        mac.verify_slice(signature).is_ok()
    }
}

/// Compares two byte strings in constant time (for equal lengths).
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A random URL-safe token carrying `bytes` bytes of entropy (`A-Za-z0-9_-`).
#[must_use]
pub fn random_token(bytes: usize) -> SecretString {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    SecretString::from(URL_SAFE_NO_PAD.encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_decrypt_round_trip_and_context_binding() {
        let cipher = Cipher::new(&EncryptionKey::generate());
        let blob = cipher.encrypt(b"{\"token\":\"EAAG\"}", b"whatsapp");
        assert!(!blob.as_bytes().windows(4).any(|w| w == b"EAAG"));
        let plain = cipher.decrypt(&blob, b"whatsapp").unwrap();
        assert_eq!(plain.expose_secret(), b"{\"token\":\"EAAG\"}");
        assert_eq!(
            cipher.decrypt(&blob, b"telegram").unwrap_err(),
            CipherError::Decrypt
        );
        let other = Cipher::new(&EncryptionKey::generate());
        assert_eq!(
            other.decrypt(&blob, b"whatsapp").unwrap_err(),
            CipherError::Decrypt
        );
        assert_eq!(
            cipher
                .decrypt(&EncryptedBlob::from_stored(vec![9, 9]), b"")
                .unwrap_err(),
            CipherError::Format
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        let key = EncryptionKey::generate();
        assert!(EncryptionKey::from_base64(key.to_base64().expose_secret()).is_ok());
        assert!(EncryptionKey::from_base64("c2hvcnQ=").is_err());
        assert!(EncryptionKey::from_base64("not base64!").is_err());
        assert_eq!(format!("{key:?}"), "EncryptionKey([REDACTED])");
    }

    #[test]
    fn hmac_verification_is_exact() {
        let sig = hmac_sha256(b"secret", b"body");
        assert!(verify_hmac_sha256(b"secret", b"body", &sig));
        assert!(!verify_hmac_sha256(b"secret", b"body ", &sig));
        assert!(!verify_hmac_sha256(b"other", b"body", &sig));
        assert!(!verify_hmac_sha256(b"secret", b"body", &sig[..31]));
        let verifier = HmacVerifier::new(b"secret");
        // Reusable: each check starts from the prepared key, not from the previous message.
        assert!(verifier.verify(b"body", &sig));
        assert!(!verifier.verify(b"body ", &sig));
        assert!(verifier.verify(b"body", &sig));
        assert_eq!(format!("{verifier:?}"), "HmacVerifier([REDACTED])");
    }

    #[test]
    fn random_tokens_use_the_url_safe_alphabet() {
        let token = random_token(32);
        let text = token.expose_secret();
        assert_eq!(text.len(), 43);
        assert!(
            text.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(text, random_token(32).expose_secret());
    }
}
