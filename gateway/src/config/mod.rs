//! Configuration: compiled-in defaults (`config/default.toml`) < the file named by
//! `SWITCHBOARD_CONFIG` < `SWITCHBOARD_*` environment variables (`__` nests) — with the
//! original setup guide's variable names accepted as aliases (the README's configuration table).
//!
//! [`Settings::load`] reads the layers; [`Settings::validate`] turns them into a
//! [`Validated`] configuration or an error naming the offending key. Secrets are `secrecy`
//! types and [`Settings::redacted`] is the only way the configuration is ever printed.

mod redact;
mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use switchboard_core::crypto::EncryptionKey;
use switchboard_core::error::ConfigError;
use url::Url;

pub use redact::redact_url;
pub use settings::{
    DatabaseSettings, LogFormat, LogSettings, ResponderKind, ResponderSettings, SecuritySettings,
    ServerLimits, ServerSettings, Settings, WorkerSettings, WorkersSettings,
};

/// The compiled-in defaults.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Environment variables of the original setup guide and the keys they set. When two name the
/// same key, the later one wins.
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("META_APP_ID", "channels.whatsapp.app_id"),
    ("META_APP_SECRET", "channels.whatsapp.app_secret"),
    ("WHATSAPP_APP_SECRET", "channels.whatsapp.app_secret"),
    ("META_REDIRECT_URI", "channels.whatsapp.redirect_uri"),
    ("WHATSAPP_VERIFY_TOKEN", "channels.whatsapp.verify_token"),
    ("PUBLIC_URL", "server.public_url"),
    ("FRONTEND_URL", "server.frontend_url"),
    ("DATABASE_URL", "database.url"),
    ("LOG_LEVEL", "log.level"),
];

/// The longest `workers.inbox_retention_days`: a hundred years.
const MAX_RETENTION_DAYS: u32 = 36_500;

/// Where the layers come from; tests pass their own environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Overrides `SWITCHBOARD_CONFIG`.
    pub file: Option<PathBuf>,
}

impl Settings {
    /// Reads the layers from the process environment.
    ///
    /// # Errors
    /// A file that does not parse, an unknown key or a value of the wrong type; the message
    /// names the key.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        if let Some(path) = config_file(sources)
            && !path.is_file()
        {
            return Err(ConfigError::new(
                "SWITCHBOARD_CONFIG",
                format!("cannot read the configuration file {}", path.display()),
            ));
        }
        Self::figment(sources)
            .extract()
            .map_err(|e| figment_error(&e))
    }

    /// Only the compiled-in defaults merged with `layers` of TOML (later wins), ignoring the
    /// environment and files; tests build their configuration this way.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_toml(layers: &[&str]) -> Result<Self, ConfigError> {
        layers
            .iter()
            .fold(
                Figment::from(Toml::string(DEFAULT_TOML)),
                |figment, layer| figment.merge(Toml::string(layer)),
            )
            .extract()
            .map_err(|e| figment_error(&e))
    }

    /// The layered figment (exposed for tests).
    #[must_use]
    pub fn figment(sources: &Sources) -> Figment {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = config_file(sources) {
            figment = figment.merge(Toml::file_exact(path));
        }
        for (alias, key) in ENV_ALIASES {
            figment = figment.merge(
                Env::raw()
                    .only(&[alias])
                    .map(move |_| (*key).into())
                    .lowercase(false),
            );
        }
        figment.merge(
            Env::prefixed("SWITCHBOARD_")
                .ignore(&["CONFIG"])
                .split("__"),
        )
    }

    /// Checks every value and resolves defaults that depend on others.
    ///
    /// # Errors
    /// The first problem found, naming its key.
    pub fn validate(self, sandbox: bool) -> Result<Validated, ConfigError> {
        let bind: SocketAddr = self.server.bind.parse().map_err(|_| {
            ConfigError::new("server.bind", "must be an address like 127.0.0.1:8000")
        })?;
        let public_url = parse_base_url("server.public_url", &self.server.public_url)?;
        let frontend_url = if self.server.frontend_url.trim().is_empty() {
            public_url.clone()
        } else {
            parse_base_url("server.frontend_url", &self.server.frontend_url)?
        };
        let limits = self.server_limits()?;
        if self.server.max_webhook_body_bytes < 1024 {
            return Err(ConfigError::new(
                "server.max_webhook_body_bytes",
                "must be at least 1024",
            ));
        }
        let database_url = self.database.url.expose_secret().trim().to_owned();
        if !["postgres://", "postgresql://", "sqlite://"]
            .iter()
            .any(|s| database_url.starts_with(s))
        {
            return Err(ConfigError::new(
                "database.url",
                "must start with postgres://, postgresql:// or sqlite://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        let encryption_key = self.encryption_key(sandbox)?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::new("log.level", e.to_string()))?;
        self.validate_responder()?;
        self.validate_workers()?;
        Ok(Validated {
            bind,
            public_url,
            frontend_url,
            database_url: SecretString::from(database_url),
            encryption_key,
            shutdown_grace: Duration::from_secs(self.server.shutdown_grace),
            limits,
            sandbox,
            settings: self,
        })
    }

    fn server_limits(&self) -> Result<ServerLimits, ConfigError> {
        let server = &self.server;
        let seconds = |key: &str, value: u64, max: u64| {
            if (1..=max).contains(&value) {
                Ok(Duration::from_secs(value))
            } else {
                Err(ConfigError::new(
                    key,
                    format!("must be between 1 and {max} seconds"),
                ))
            }
        };
        if !(1..=1_000_000).contains(&server.max_connections) {
            return Err(ConfigError::new(
                "server.max_connections",
                "must be between 1 and 1000000",
            ));
        }
        Ok(ServerLimits {
            header_timeout: seconds("server.header_timeout", server.header_timeout, 300)?,
            body_timeout: seconds("server.body_timeout", server.body_timeout, 300)?,
            request_timeout: seconds("server.request_timeout", server.request_timeout, 3_600)?,
            max_connections: server.max_connections,
        })
    }

    fn encryption_key(&self, sandbox: bool) -> Result<Option<EncryptionKey>, ConfigError> {
        let configured = self
            .security
            .encryption_key
            .as_ref()
            .map(|k| k.expose_secret().trim())
            .filter(|k| !k.is_empty());
        match configured {
            Some(text) => EncryptionKey::from_base64(text)
                .map(Some)
                .map_err(|e| ConfigError::new("security.encryption_key", e.to_string())),
            None if sandbox => Ok(None),
            None => Err(ConfigError::new(
                "security.encryption_key",
                "is required outside sandbox mode: set it to base64 of 32 random bytes \
                 (for example the output of `openssl rand -base64 32`)",
            )),
        }
    }

    fn validate_responder(&self) -> Result<(), ConfigError> {
        let responder = &self.responder;
        match responder.kind {
            ResponderKind::Static if responder.text.trim().is_empty() => Err(ConfigError::new(
                "responder.text",
                "must not be empty when responder.kind is static",
            )),
            ResponderKind::Webhook => {
                let url = responder.url.as_deref().ok_or_else(|| {
                    ConfigError::new(
                        "responder.url",
                        "is required when responder.kind is webhook",
                    )
                })?;
                parse_base_url("responder.url", url)?;
                if responder
                    .secret
                    .as_ref()
                    .is_none_or(|s| s.expose_secret().is_empty())
                {
                    return Err(ConfigError::new(
                        "responder.secret",
                        "is required when responder.kind is webhook",
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn validate_workers(&self) -> Result<(), ConfigError> {
        let workers = &self.workers;
        if !(1..=256).contains(&workers.count) {
            return Err(ConfigError::new(
                "workers.count",
                "must be between 1 and 256",
            ));
        }
        if workers.poll_interval_ms == 0 {
            return Err(ConfigError::new(
                "workers.poll_interval_ms",
                "must be at least 1",
            ));
        }
        if workers.lease_secs < 5 {
            return Err(ConfigError::new("workers.lease_secs", "must be at least 5"));
        }
        if !(1..=1000).contains(&workers.batch) {
            return Err(ConfigError::new(
                "workers.batch",
                "must be between 1 and 1000",
            ));
        }
        if !(1..=100).contains(&workers.max_attempts) {
            return Err(ConfigError::new(
                "workers.max_attempts",
                "must be between 1 and 100",
            ));
        }
        if workers.inbox_retention_days > MAX_RETENTION_DAYS {
            return Err(ConfigError::new(
                "workers.inbox_retention_days",
                "must be between 0 (keep forever) and 36500",
            ));
        }
        Ok(())
    }

    /// The worker settings for the pipeline.
    #[must_use]
    pub fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings {
            count: self.workers.count,
            poll_interval: Duration::from_millis(self.workers.poll_interval_ms),
            lease: Duration::from_secs(self.workers.lease_secs),
            batch: self.workers.batch,
            max_attempts: self.workers.max_attempts,
            reconcile_after: Duration::from_secs(self.workers.reconcile_secs),
            inbox_retention: (self.workers.inbox_retention_days > 0).then(|| {
                Duration::from_secs(u64::from(self.workers.inbox_retention_days) * 86_400)
            }),
            worker_id: format!("{}-{}", hostname(), std::process::id()),
        }
    }
}

/// A checked configuration, ready to start the gateway with.
#[derive(Debug)]
pub struct Validated {
    pub bind: SocketAddr,
    pub public_url: Url,
    pub frontend_url: Url,
    pub database_url: SecretString,
    /// `None` only in sandbox mode, where the key is kept in the data directory.
    pub encryption_key: Option<EncryptionKey>,
    pub shutdown_grace: Duration,
    pub limits: ServerLimits,
    pub sandbox: bool,
    pub settings: Settings,
}

impl Validated {
    /// Warnings worth printing (not errors): plain-http public URLs outside the sandbox.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.sandbox && self.public_url.scheme() == "http" {
            warnings.push(format!(
                "server.public_url is {}: Meta and Telegram deliver webhooks only to https URLs in production",
                self.public_url
            ));
        }
        warnings
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map_or_else(|_| "switchboard".to_owned(), |h| h.trim().to_owned())
}

/// The configuration file: `--config`, else `SWITCHBOARD_CONFIG`.
fn config_file(sources: &Sources) -> Option<PathBuf> {
    sources.file.clone().or_else(|| {
        std::env::var_os("SWITCHBOARD_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

fn parse_base_url(key: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| ConfigError::new(key, format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            key,
            format!("`{raw}` must be an http:// or https:// URL"),
        ));
    }
    Ok(url)
}

/// Turns figment's error into one naming the key.
fn figment_error(error: &figment::Error) -> ConfigError {
    let key = if error.path.is_empty() {
        "config".to_owned()
    } else {
        error.path.join(".")
    };
    let mut message = error.kind.to_string();
    if let Some(metadata) = &error.metadata {
        message.push_str(&format!(" (from {})", metadata.name));
    }
    ConfigError::new(key, message)
}

#[cfg(test)]
mod tests;
