//! Redaction of secrets for printing the effective configuration and for logs: the helpers that
//! know nothing of the settings' shape.

use serde_json::Value;

pub const REDACTED: &str = "[REDACTED]";

/// Key names whose values are secret in free-form channel sections.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "token", "password", "key"]
        .iter()
        .any(|s| key.contains(s))
}

/// A URL with its password replaced (`postgres://user:[REDACTED]@host/db`).
#[must_use]
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some(REDACTED));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => REDACTED.to_owned(),
    }
}

/// Replaces the values of secret-looking keys (see [`is_secret_key`]) in a free-form section.
pub fn redact_value(value: &mut Value) {
    if let Value::Object(map) = value {
        for (key, inner) in map.iter_mut() {
            if is_secret_key(key) && !inner.is_null() && !matches!(inner, Value::Bool(_)) {
                *inner = Value::String(REDACTED.to_owned());
            } else {
                redact_value(inner);
            }
        }
    }
}
