//! The configuration's types: the sections as read (`Settings`), how they print with secrets
//! redacted, and the checked forms the server and the pipeline take.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::redact::{REDACTED, redact_url, redact_value};

/// Configuration as read, before validation. Its `Debug` output is the redacted form.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub security: SecuritySettings,
    pub log: LogSettings,
    pub workers: WorkersSettings,
    pub responder: ResponderSettings,
    /// One free-form section per channel; each adapter parses its own.
    #[serde(default)]
    pub channels: BTreeMap<String, serde_json::Value>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Settings({})", self.redacted())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub public_url: String,
    #[serde(default)]
    pub frontend_url: String,
    pub max_webhook_body_bytes: usize,
    /// Seconds.
    pub shutdown_grace: u64,
    /// Seconds a client may take to send a request's headers, or to start its next request on
    /// a kept-alive connection.
    pub header_timeout: u64,
    /// Seconds a request body may pause between two chunks.
    pub body_timeout: u64,
    /// Seconds a whole request may take, body and answer included.
    pub request_timeout: u64,
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub auto_migrate: bool,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("max_connections", &self.max_connections)
            .field("auto_migrate", &self.auto_migrate)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    #[serde(default)]
    pub encryption_key: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersSettings {
    pub count: usize,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    pub batch: u32,
    pub max_attempts: i32,
    pub reconcile_secs: u64,
    pub inbox_retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The automated responder (the "AI brain" hook).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponderSettings {
    pub kind: ResponderKind,
    #[serde(default)]
    pub text: String,
    /// For `kind = "webhook"`: where to POST, the signing secret, the timeout in seconds.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponderKind {
    Off,
    Static,
    Echo,
    Webhook,
}

impl Settings {
    /// The configuration as JSON with every secret replaced by `"[REDACTED]"`.
    #[must_use]
    pub fn redacted(&self) -> serde_json::Value {
        let settings = self;
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
                "header_timeout": settings.server.header_timeout,
                "body_timeout": settings.server.body_timeout,
                "request_timeout": settings.server.request_timeout,
                "max_connections": settings.server.max_connections,
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
}

/// Worker settings (`[workers]`), as the pipeline uses them.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Concurrent job workers (inbox draining has one worker per process, which keeps a burst
    /// from one chat in order).
    pub count: usize,
    /// Longest wait between two looks at the queues when nothing woke the worker.
    pub poll_interval: Duration,
    /// How long a claimed row belongs to its worker.
    pub lease: Duration,
    /// Rows claimed at once.
    pub batch: u32,
    /// Attempts of a job before it is dead.
    pub max_attempts: i32,
    /// How long a send of unknown outcome waits for the provider's status report before it is
    /// sent again (channels that report statuses only).
    pub reconcile_after: Duration,
    /// How long a processed webhook is kept after it was received (`None`: forever).
    pub inbox_retention: Option<Duration>,
    /// A name for this process's claims.
    pub worker_id: String,
}

/// What the HTTP server allows a connection (`server.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}
