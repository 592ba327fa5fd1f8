//! What the adapter asks the gateway to keep encrypted: the credentials of a connected number,
//! and the pending state of a connect flow that found several numbers.
//!
//! Both are plain serde structs serialised into [`Credentials`]; `Debug` never shows tokens.

use std::fmt;

use serde::{Deserialize, Serialize};
use switchboard_core::adapter::Credentials;

/// Credentials of one connected phone number.
#[derive(Clone, Serialize, Deserialize)]
pub struct WhatsAppCredentials {
    /// The long-lived user (or business integration) token sent as `Bearer`.
    pub access_token: String,
    /// Unix seconds; `None` for tokens that never expire (`expires_at: 0`).
    pub expires_at: Option<i64>,
    pub phone_number_id: String,
    pub waba_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl fmt::Debug for WhatsAppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppCredentials")
            .field("access_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .finish_non_exhaustive()
    }
}

/// A phone number found during discovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub phone_number_id: String,
    pub waba_id: String,
    /// As Meta shows it (`15550783881` or `+1 555-078-3881`).
    pub display_phone_number: String,
    pub verified_name: Option<String>,
    pub quality_rating: Option<String>,
    pub status: Option<String>,
    pub code_verification_status: Option<String>,
}

impl Candidate {
    /// E.164 with a leading `+`: `+15550783881`.
    #[must_use]
    pub fn e164(&self) -> String {
        let digits: String = self
            .display_phone_number
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        format!("+{digits}")
    }

    /// A label for the account picker: `+1 555-078-3881 (Lucky Shrub)`.
    #[must_use]
    pub fn label(&self) -> String {
        let number = pretty_number(&self.e164());
        match &self.verified_name {
            Some(name) => format!("{number} ({name})"),
            None => number,
        }
    }

    /// Non-secret details shown in the status object.
    #[must_use]
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "phone_number": self.e164(),
            "display_phone_number": self.display_phone_number,
            "phone_number_id": self.phone_number_id,
            "waba_id": self.waba_id,
            "display_name": self.verified_name,
            "verified_name": self.verified_name,
            "quality_rating": self.quality_rating,
            "phone_status": self.status,
            "code_verification_status": self.code_verification_status,
        })
    }
}

/// Formats North American numbers as `+1 555-078-3881`; others stay E.164.
fn pretty_number(e164: &str) -> String {
    let digits = &e164[1..];
    if digits.len() == 11 && digits.starts_with('1') {
        format!("+1 {}-{}-{}", &digits[1..4], &digits[4..7], &digits[7..])
    } else {
        e164.to_owned()
    }
}

/// The state of a connect flow waiting for the business to pick a number.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingChoice {
    pub access_token: String,
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub candidates: Vec<Candidate>,
}

impl fmt::Debug for PendingChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingChoice")
            .field("access_token", &"[REDACTED]")
            .field("candidates", &self.candidates)
            .finish_non_exhaustive()
    }
}

impl PendingChoice {
    #[must_use]
    pub fn to_credentials(&self) -> Credentials {
        Credentials::from_value(self)
    }
}
