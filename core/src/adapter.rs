//! The [`ChannelAdapter`] trait: everything the gateway needs from a channel, and nothing
//! about HTTP routing, storage, queues or retries, which the gateway owns.
//!
//! An adapter translates between one provider and the normalized domain types. It never
//! touches the database; where a connect flow must know whether an account is already taken,
//! it asks the narrow [`AccountDirectory`] it is handed.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::{
    InboundEvent, Integration, IntegrationState, OutboundMessage, SendFailure, SendReceipt,
};
use crate::error::{AdapterError, ConnectError, ParseError, StoreError, WebhookRejection};
use crate::ids::{BusinessId, ChannelName};

/// How a business connects the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectKind {
    /// A redirect to the provider's consent page and back (`GET …/connect`, `…/callback`).
    Oauth,
    /// A pasted credential (`POST …/connect` with a body).
    Token,
}

/// What the channel can do; shown to the dashboard and used by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub media: bool,
    pub templates: bool,
    pub read_receipts: bool,
    /// The customer-service window after the last inbound message outside of which only
    /// templates may be sent (WhatsApp: 24 h). `None`: no window.
    #[serde(with = "opt_secs")]
    pub reply_window: Option<Duration>,
    pub groups: bool,
    /// Whether the account must be chosen from several after the OAuth callback.
    pub account_choice: bool,
}

mod opt_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }
}

/// A rate: `count` per `per`, allowing bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub count: u32,
    #[serde(skip)]
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    #[must_use]
    pub const fn new(count: u32, per: Duration, burst: u32) -> Self {
        Self { count, per, burst }
    }

    /// The spacing between two sends at this rate.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }
}

/// The provider's sending limits the gateway stays within.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RateLimits {
    /// For the whole account (a phone number's throughput, a bot's broadcast limit).
    pub per_account: Option<Rate>,
    /// For one recipient chat.
    pub per_chat: Option<Rate>,
    /// For one group chat, when different from `per_chat`.
    pub per_group: Option<Rate>,
}

/// The adapter's description of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelDescriptor {
    #[serde(rename = "channel")]
    pub name: ChannelName,
    pub display_name: String,
    pub connect_kind: ConnectKind,
    pub capabilities: Capabilities,
}

/// Decrypted credentials of an integration, as the adapter serialised them. The gateway stores
/// them encrypted and never looks inside.
#[derive(Clone)]
pub struct Credentials(SecretString);

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials([REDACTED])")
    }
}

impl Credentials {
    /// Serialises an adapter's credential struct.
    ///
    /// # Panics
    /// Never for plain structs of strings and numbers.
    pub fn from_value<T: Serialize>(value: &T) -> Self {
        Self(SecretString::from(
            serde_json::to_string(value).expect("credential structs serialise to JSON"),
        ))
    }

    /// Wraps decrypted JSON text.
    #[must_use]
    pub fn from_json_text(text: SecretString) -> Self {
        Self(text)
    }

    /// Reads the adapter's credential struct back.
    ///
    /// # Errors
    /// When the stored JSON does not have the expected shape.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, AdapterError> {
        serde_json::from_str(self.0.expose_secret())
            .map_err(|e| AdapterError::Credentials(e.to_string()))
    }

    #[must_use]
    pub fn expose_json(&self) -> &str {
        self.0.expose_secret()
    }
}

/// An integration with its decrypted credentials, handed to provider calls.
#[derive(Debug, Clone)]
pub struct IntegrationContext {
    pub integration: Integration,
    pub credentials: Credentials,
}

/// A finished connection, to be stored by the gateway.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// The provider account routed by (phone number id, bot id).
    pub account_id: String,
    pub parent_account_id: Option<String>,
    /// Human label (verified name, bot username).
    pub channel_name: Option<String>,
    /// Non-secret details merged into the status object (`phone_number`, `bot_username`, ...).
    pub details: serde_json::Value,
    pub credentials: Credentials,
    pub token_expires_at: Option<DateTime<Utc>>,
    /// A secret the provider presents on every webhook, looked up by its hash (Telegram).
    pub webhook_secret: Option<SecretString>,
}

/// One account the business may choose after an OAuth callback.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AccountOption {
    pub id: String,
    pub label: String,
    pub details: serde_json::Value,
}

/// The result of an OAuth callback.
#[derive(Debug, Clone)]
pub enum OAuthOutcome {
    Connected(NewConnection),
    /// Several accounts qualify. The gateway stores `pending` encrypted and hands it back to
    /// [`ChannelAdapter::choose_account`] with the business's choice.
    ChooseAccount {
        pending: Credentials,
        options: Vec<AccountOption>,
    },
}

/// The query of an OAuth redirect back to the gateway.
#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_reason: Option<String>,
    pub error_description: Option<String>,
}

/// Tells a connect flow whether a provider account is already taken, without giving the
/// adapter the database.
#[async_trait]
pub trait AccountDirectory: Send + Sync {
    /// The business whose active integration holds `account_id` on `channel`, if any.
    async fn owner_of(
        &self,
        channel: &ChannelName,
        account_id: &str,
    ) -> Result<Option<BusinessId>, StoreError>;
}

/// Who is connecting, and the directory to check account ownership with.
pub struct ConnectAttempt<'a> {
    pub business_id: BusinessId,
    pub directory: &'a dyn AccountDirectory,
}

impl fmt::Debug for ConnectAttempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectAttempt")
            .field("business_id", &self.business_id)
            .finish_non_exhaustive()
    }
}

impl ConnectAttempt<'_> {
    /// Whether `account_id` is active in another business's integration. Store failures count
    /// as an internal error of the connect flow.
    ///
    /// # Errors
    /// [`ConnectError::internal`] when the directory fails.
    pub async fn taken_by_other(
        &self,
        channel: &ChannelName,
        account_id: &str,
    ) -> Result<bool, ConnectError> {
        match self.directory.owner_of(channel, account_id).await {
            Ok(owner) => Ok(owner.is_some_and(|b| b != self.business_id)),
            Err(_) => Err(ConnectError::internal()),
        }
    }
}

/// The live status an adapter reports after asking the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStatus {
    pub state: IntegrationState,
    /// Why, when the state is not `connected`; safe to show a business owner.
    pub reason: Option<String>,
    /// Extra fields merged into the status object (`verified_name`, `quality_rating`, ...).
    pub details: serde_json::Value,
    /// A fresher token expiry, when the provider told one.
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// The outcome of authenticating a webhook request.
#[derive(Debug)]
pub enum WebhookAuth {
    /// Authentic for the whole channel (an app-level signature); events name their accounts.
    Verified,
    /// The request presents a per-integration secret; the gateway finds the integration by the
    /// secret's hash, and a secret that matches none is refused with `401`.
    PerIntegrationSecret(SecretString),
}

/// A channel. Implementations live in the channel crates and are registered with
/// [`crate::registry::ChannelRegistration`]; the gateway uses them as `Arc<dyn ChannelAdapter>`.
///
/// Connect methods have defaults answering "unsupported", so an OAuth channel implements the
/// OAuth pair and a token channel implements [`ChannelAdapter::connect_with_token`].
#[async_trait]
pub trait ChannelAdapter: Send + Sync + fmt::Debug + 'static {
    /// Id, display name, connect kind and capabilities.
    fn descriptor(&self) -> &ChannelDescriptor;

    /// The provider's sending limits; the gateway's rate governor stays within them.
    fn rate_limits(&self) -> RateLimits {
        RateLimits::default()
    }

    /// Whether `chat_id` names a group chat, which providers limit apart from one-to-one chats.
    fn is_group_chat(&self, chat_id: &str) -> bool {
        let _ = chat_id;
        false
    }

    /// What an operator should check when this channel's webhooks fail authentication; logged
    /// with the rejection, so it names settings, never their values.
    fn webhook_auth_hint(&self) -> &'static str {
        "check the channel's webhook secret"
    }

    /// OAuth channels: the provider's consent URL carrying `state`.
    ///
    /// # Errors
    /// [`ConnectError::unsupported`] for token channels.
    fn authorize_url(&self, state: &str) -> Result<url::Url, ConnectError> {
        let _ = state;
        Err(ConnectError::unsupported("OAuth connect"))
    }

    /// OAuth channels: finish the callback (the gateway has already checked `state`).
    async fn finish_oauth(
        &self,
        params: &CallbackParams,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<OAuthOutcome, ConnectError> {
        let _ = (params, attempt);
        Err(ConnectError::unsupported("OAuth connect"))
    }

    /// OAuth channels with several accounts: complete the connection with the chosen one.
    async fn choose_account(
        &self,
        pending: &Credentials,
        option_id: &str,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<NewConnection, ConnectError> {
        let _ = (pending, option_id, attempt);
        Err(ConnectError::unsupported("choosing an account"))
    }

    /// Token channels: connect with the JSON body of `POST …/connect`. `existing` is the
    /// business's current integration for this channel, if any (to undo or rotate).
    async fn connect_with_token(
        &self,
        input: &serde_json::Value,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<NewConnection, ConnectError> {
        let _ = (input, attempt);
        Err(ConnectError::unsupported("token connect"))
    }

    /// Asks the provider how the integration is doing.
    async fn status(&self, ctx: &IntegrationContext) -> LiveStatus;

    /// Undoes the provider side (unsubscribe, delete the webhook). The gateway deactivates
    /// locally whatever this returns, and records an error.
    async fn disconnect(&self, ctx: &IntegrationContext) -> Result<(), AdapterError>;

    /// Answers a webhook verification `GET`: `Some(body)` for `200`, `None` for `403`.
    fn verify_subscription(&self, query: &[(String, String)]) -> Option<String> {
        let _ = query;
        None
    }

    /// Authenticates a webhook `POST` from its headers and exact bytes, before any parsing.
    ///
    /// # Errors
    /// A missing or wrong signature or secret (`401`).
    fn authenticate_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookAuth, WebhookRejection>;

    /// Parses a stored, authenticated webhook body into normalized events. Unknown kinds become
    /// events of kind "other", never errors; an error means the body is not the provider's
    /// format at all, and the gateway quarantines it.
    ///
    /// # Errors
    /// When the body is not a payload of this provider.
    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<InboundEvent>, ParseError>;

    /// Like [`ChannelAdapter::parse_webhook`], for a body already known to belong to
    /// `integration` (authenticated by its per-integration secret). Adapters whose payloads do
    /// not name their own account (Telegram updates do not name the bot) fill it in here, and
    /// can tell what addresses the account (a mention of this bot, not any bot).
    ///
    /// # Errors
    /// As [`ChannelAdapter::parse_webhook`].
    fn parse_webhook_for(
        &self,
        body: &[u8],
        integration: &Integration,
    ) -> Result<Vec<InboundEvent>, ParseError> {
        let _ = integration;
        self.parse_webhook(body)
    }

    /// Sends one message.
    ///
    /// # Errors
    /// A classified [`SendFailure`].
    async fn send(
        &self,
        ctx: &IntegrationContext,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, SendFailure>;
}
