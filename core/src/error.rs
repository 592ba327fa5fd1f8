//! Errors of the core layer. Each layer has its own enum; the HTTP edge maps them to status
//! codes and stable `code` strings in one place (`switchboard::http::error`).

use std::fmt;

/// A configuration problem, always naming the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// Full dotted key, e.g. `channels.whatsapp.app_secret`.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Which unique rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The provider account (phone number id, bot id) is active in another integration.
    AccountInUse,
    /// The business already has an active integration for this channel.
    ChannelAlreadyConnected,
    /// The provider message id is already stored for this integration.
    DuplicateMessage,
    /// A job with this dedupe key exists.
    DuplicateJob,
    /// Any other unique rule.
    Other,
}

/// Errors of the store traits. Backends map driver errors to these in one function each.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("not found")]
    NotFound,
    /// Stored data that does not decode (a corrupt row, a key that changed).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Failures of an adapter's non-send provider calls (status, disconnect, connect steps).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The provider rejected our token: the integration needs re-authorisation.
    #[error("token rejected by the provider: {0}")]
    TokenRejected(String),
    /// The provider answered with an error.
    #[error("provider error {code}: {message}")]
    Upstream { code: String, message: String },
    /// The provider could not be reached or answered garbage.
    #[error("provider unreachable: {0}")]
    Transport(String),
    /// Stored credentials do not have the expected shape.
    #[error("stored credentials unusable: {0}")]
    Credentials(String),
}

/// Why a connect attempt failed. `code` is one of the stable codes the README lists
/// (`access_denied`, `no_waba`, `no_phone_number`, `number_in_use`, `bot_in_use`,
/// `invalid_bot_token`, `upstream_error`, ...); `message` is safe to show a business owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ConnectError {
    pub code: &'static str,
    pub message: String,
    pub kind: ConnectErrorKind,
}

/// How a connect failure should surface over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectErrorKind {
    /// The request or the user's choice was wrong (`400`).
    Rejected,
    /// The account belongs to someone else (`409`).
    Conflict,
    /// The provider failed (`502`).
    Upstream,
    /// The adapter does not offer this way of connecting (`405`).
    Unsupported,
    /// The gateway failed (`500`); details were logged.
    Internal,
}

impl ConnectError {
    pub fn rejected(code: &'static str, message: impl Into<String>) -> Self {
        Self::with_kind(code, message, ConnectErrorKind::Rejected)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::with_kind(code, message, ConnectErrorKind::Conflict)
    }

    pub fn upstream(message: impl Into<String>) -> Self {
        Self::with_kind("upstream_error", message, ConnectErrorKind::Upstream)
    }

    #[must_use]
    pub fn unsupported(what: &str) -> Self {
        Self::with_kind(
            "unsupported",
            format!("this channel does not support {what}"),
            ConnectErrorKind::Unsupported,
        )
    }

    #[must_use]
    pub fn internal() -> Self {
        Self::with_kind(
            "internal_error",
            "the gateway failed; the error was logged",
            ConnectErrorKind::Internal,
        )
    }

    fn with_kind(code: &'static str, message: impl Into<String>, kind: ConnectErrorKind) -> Self {
        Self {
            code,
            message: message.into(),
            kind,
        }
    }
}

/// Why a webhook request was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    /// No signature / secret header.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A signature or secret that does not match.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// A stored webhook body that could not be turned into events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}
