//! Redaction of secrets for printing the effective configuration and for logs.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::Settings;

const REDACTED: &str = "[REDACTED]";

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

fn redact_value(value: &mut Value) {
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

pub(super) fn redacted(settings: &Settings) -> Value {
    let mut channels = serde_json::to_value(&settings.channels).unwrap_or(Value::Null);
    redact_value(&mut channels);
    let secret_or_unset = |set: bool| {
        if set {
            Value::from(REDACTED)
        } else {
            Value::Null
        }
    };
    json!({
        "server": {
            "bind": settings.server.bind,
            "public_url": settings.server.public_url,
            "frontend_url": settings.server.frontend_url,
            "max_webhook_body_bytes": settings.server.max_webhook_body_bytes,
            "shutdown_grace": settings.server.shutdown_grace,
        },
        "database": {
            "url": redact_url(settings.database.url.expose_secret()),
            "max_connections": settings.database.max_connections,
            "auto_migrate": settings.database.auto_migrate,
        },
        "security": {
            "encryption_key": secret_or_unset(
                settings.security.encryption_key.as_ref().is_some_and(|k| !k.expose_secret().is_empty())
            ),
        },
        "log": { "level": settings.log.level, "format": format!("{:?}", settings.log.format).to_lowercase() },
        "workers": {
            "count": settings.workers.count,
            "poll_interval_ms": settings.workers.poll_interval_ms,
            "lease_secs": settings.workers.lease_secs,
            "batch": settings.workers.batch,
            "max_attempts": settings.workers.max_attempts,
            "reconcile_secs": settings.workers.reconcile_secs,
            "inbox_retention_days": settings.workers.inbox_retention_days,
        },
        "responder": {
            "kind": format!("{:?}", settings.responder.kind).to_lowercase(),
            "text": settings.responder.text,
            "url": settings.responder.url,
            "secret": secret_or_unset(settings.responder.secret.is_some()),
            "timeout": settings.responder.timeout,
        },
        "channels": channels,
    })
}
