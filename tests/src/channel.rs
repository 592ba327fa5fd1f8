//! `loopback`: a complete channel that lives outside the gateway and registers itself with
//! `inventory`, exactly as a real channel crate does. It fakes the provider in memory:
//!
//! - OAuth: `authorize_url` points at `https://consent.invalid/authorize`; the callback's `code`
//!   says what happens (`account-<id>` connects account `<id>`, `choose` offers accounts `a`
//!   and `b`, anything else is refused).
//! - Token connect: `{"token": "<account>"}`; `"bad"` is refused.
//! - Webhooks: `X-Loopback-Signature: <hex hmac-sha256(secret, body)>` (channel-level) or
//!   `X-Loopback-Secret: <token>` (per integration, routed by hash like Telegram).
//! - Bodies: a JSON array of `{"account","id","chat","text"}` messages.
//!
//! `dormant` is a second channel that tests keep disabled.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use http::HeaderMap;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use switchboard_core::adapter::{
    AccountOption, CallbackParams, Capabilities, ChannelDescriptor, ConnectAttempt, ConnectKind,
    Credentials, IntegrationContext, LiveStatus, NewConnection, OAuthOutcome, WebhookAuth,
};

use switchboard_core::domain::{
    ChatKind, ChatRef, Contact, FailureClass, InboundEvent, InboundMessage, IntegrationState,
    MessageKind, OutboundMessage, SendFailure, SendReceipt,
};
use switchboard_core::error::{
    AdapterError, ConfigError, ConnectError, ParseError, WebhookRejection,
};
use switchboard_core::registry::{AdapterServices, ChannelConfig, de};
use switchboard_core::{ChannelAdapter, ChannelName, ChannelRegistration, crypto};

/// The section `channels.loopback`.
#[derive(Debug, Deserialize)]
struct LoopbackConfig {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the registry, not the adapter")]
    enabled: bool,
    #[serde(deserialize_with = "de::secret")]
    signing_secret: SecretString,
}

#[derive(Debug)]
pub struct Loopback {
    descriptor: ChannelDescriptor,
    signing_secret: SecretString,
}

#[derive(Debug, serde::Serialize, Deserialize)]
struct LoopbackCredentials {
    token: String,
}

fn build(
    config: &ChannelConfig,
    _services: &AdapterServices,
) -> Result<Arc<dyn ChannelAdapter>, ConfigError> {
    let parsed: LoopbackConfig = config.parse()?;
    if secrecy::ExposeSecret::expose_secret(&parsed.signing_secret).is_empty() {
        return Err(ConfigError::new(
            config.key("signing_secret"),
            "must not be empty",
        ));
    }
    Ok(Arc::new(Loopback {
        descriptor: descriptor("loopback", "Loopback"),
        signing_secret: parsed.signing_secret,
    }))
}

fn descriptor(name: &str, display: &str) -> ChannelDescriptor {
    ChannelDescriptor {
        name: ChannelName::parse(name).expect("valid name"),
        display_name: display.into(),
        connect_kind: ConnectKind::Token,
        capabilities: Capabilities {
            media: false,
            templates: false,
            read_receipts: false,
            reply_window: None,
            groups: false,
            account_choice: true,
        },
    }
}

switchboard_core::inventory::submit!(ChannelRegistration {
    name: "loopback",
    build,
});

fn build_dormant(
    _config: &ChannelConfig,
    _services: &AdapterServices,
) -> Result<Arc<dyn ChannelAdapter>, ConfigError> {
    panic!("the dormant channel is never enabled in tests, so it must never be built")
}

switchboard_core::inventory::submit!(ChannelRegistration {
    name: "dormant",
    build: build_dormant,
});

fn connection(account: &str) -> NewConnection {
    NewConnection {
        account_id: account.to_owned(),
        parent_account_id: Some(format!("parent-{account}")),
        channel_name: Some(format!("Loopback {account}")),
        details: json!({ "loopback_account": account }),
        credentials: Credentials::from_value(&LoopbackCredentials {
            token: format!("token-{account}"),
        }),
        token_expires_at: None,
        webhook_secret: Some(SecretString::from(format!("secret-{account}"))),
    }
}

async fn claim(account: &str, attempt: &ConnectAttempt<'_>) -> Result<NewConnection, ConnectError> {
    let channel = ChannelName::parse("loopback").expect("valid name");
    if attempt.taken_by_other(&channel, account).await? {
        return Err(ConnectError::conflict(
            "account_in_use",
            "held by another business",
        ));
    }
    Ok(connection(account))
}

#[async_trait]
impl ChannelAdapter for Loopback {
    fn descriptor(&self) -> &ChannelDescriptor {
        &self.descriptor
    }

    fn authorize_url(&self, state: &str) -> Result<url::Url, ConnectError> {
        let mut url = url::Url::parse("https://consent.invalid/authorize").expect("static URL");
        url.query_pairs_mut().append_pair("state", state);
        Ok(url)
    }

    async fn finish_oauth(
        &self,
        params: &CallbackParams,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<OAuthOutcome, ConnectError> {
        if params.error.as_deref() == Some("access_denied") {
            return Err(ConnectError::rejected(
                "access_denied",
                "the user cancelled",
            ));
        }
        match params.code.as_deref() {
            Some("choose") => Ok(OAuthOutcome::ChooseAccount {
                pending: Credentials::from_value(&json!({ "grant": "pending" })),
                options: ["a", "b"]
                    .iter()
                    .map(|id| AccountOption {
                        id: (*id).into(),
                        label: format!("Account {id}"),
                        details: json!({}),
                    })
                    .collect(),
            }),
            Some(code) if code.starts_with("account-") => Ok(OAuthOutcome::Connected(
                claim(&code["account-".len()..], attempt).await?,
            )),
            _ => Err(ConnectError::upstream("the code was refused")),
        }
    }

    async fn choose_account(
        &self,
        pending: &Credentials,
        option_id: &str,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<NewConnection, ConnectError> {
        let pending: serde_json::Value = pending.parse().map_err(|_| ConnectError::internal())?;
        assert_eq!(
            pending["grant"], "pending",
            "the pending grant round-trips through encryption"
        );
        if !["a", "b"].contains(&option_id) {
            return Err(ConnectError::rejected(
                "unknown_account",
                "not one of the offered accounts",
            ));
        }
        claim(option_id, attempt).await
    }

    async fn connect_with_token(
        &self,
        input: &serde_json::Value,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<NewConnection, ConnectError> {
        match input.get("token").and_then(serde_json::Value::as_str) {
            None | Some("bad") => Err(ConnectError::rejected(
                "invalid_token",
                "the token was refused",
            )),
            Some(account) => claim(account, attempt).await,
        }
    }

    async fn status(&self, ctx: &IntegrationContext) -> LiveStatus {
        let healthy = ctx
            .credentials
            .parse::<LoopbackCredentials>()
            .is_ok_and(|c| !c.token.contains("revoked"));
        LiveStatus {
            state: if healthy {
                IntegrationState::Connected
            } else {
                IntegrationState::NeedsReauth
            },
            reason: (!healthy).then(|| "token revoked".to_owned()),
            details: json!({ "checked_live": true }),
            token_expires_at: None,
        }
    }

    async fn disconnect(&self, ctx: &IntegrationContext) -> Result<(), AdapterError> {
        if ctx.integration.account_id.as_deref() == Some("flaky") {
            return Err(AdapterError::Transport("provider unreachable".into()));
        }
        Ok(())
    }

    fn verify_subscription(&self, query: &[(String, String)]) -> Option<String> {
        let get = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        (get("token") == Some("expected")).then(|| get("challenge").unwrap_or_default().to_owned())
    }

    fn authenticate_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookAuth, WebhookRejection> {
        if let Some(secret) = headers.get("x-loopback-secret") {
            let secret = secret
                .to_str()
                .map_err(|_| WebhookRejection::Invalid("X-Loopback-Secret"))?;
            return Ok(WebhookAuth::PerIntegrationSecret(SecretString::from(
                secret.to_owned(),
            )));
        }
        let signature = headers
            .get("x-loopback-signature")
            .ok_or(WebhookRejection::Missing("X-Loopback-Signature"))?;
        let signature = hex::decode(signature.as_bytes())
            .map_err(|_| WebhookRejection::Invalid("X-Loopback-Signature"))?;
        let key = secrecy::ExposeSecret::expose_secret(&self.signing_secret).as_bytes();
        if crypto::verify_hmac_sha256(key, body, &signature) {
            Ok(WebhookAuth::Verified)
        } else {
            Err(WebhookRejection::Invalid("X-Loopback-Signature"))
        }
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<InboundEvent>, ParseError> {
        #[derive(Deserialize)]
        struct Item {
            account: String,
            id: String,
            chat: String,
            text: String,
        }
        let items: Vec<Item> =
            serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
        Ok(items
            .into_iter()
            .map(|item| {
                InboundEvent::Message(Box::new(InboundMessage {
                    account_id: item.account,
                    provider_message_id: item.id,
                    chat: ChatRef {
                        external_id: item.chat.clone(),
                        kind: ChatKind::Direct,
                        title: None,
                    },
                    sender: Contact {
                        external_id: Some(item.chat),
                        ..Contact::default()
                    },
                    kind: MessageKind::Text,
                    text: Some(item.text),
                    media: None,
                    reply_to: None,
                    thread_id: None,
                    timestamp: Utc::now(),
                    addressed_to_us: true,
                    raw: serde_json::Value::Null,
                }))
            })
            .collect())
    }

    /// Behaves by recipient: `retry-<n>…` fails retryably n times first, `reauth…` refuses
    /// the token while [`refuse_tokens`] is on for the account, `blocked…` is unreachable,
    /// `perm…` fails permanently, `timeout…` has an unknown outcome; anyone else receives it.
    async fn send(
        &self,
        ctx: &IntegrationContext,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, SendFailure> {
        let account = ctx.integration.account_id.clone().unwrap_or_default();
        let to = message.to.as_str();
        let mut state = SENDS.lock().expect("sends lock");
        let attempt = state
            .attempts
            .entry((account.clone(), to.to_owned()))
            .or_default();
        *attempt += 1;
        let attempt = *attempt;
        if let Some(n) = to
            .strip_prefix("retry-")
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse::<u32>().ok())
            && attempt <= n
        {
            return Err(SendFailure::new(
                FailureClass::Retry {
                    after: Some(Duration::from_millis(50)),
                    per_recipient: false,
                },
                "503",
                "provider busy",
            ));
        }
        if to.starts_with("reauth") && state.refused.contains(&account) {
            return Err(SendFailure::new(
                FailureClass::NeedsReauth,
                "401",
                "token revoked",
            ));
        }
        if to.starts_with("blocked") {
            return Err(SendFailure::new(
                FailureClass::Unreachable,
                "403",
                "bot was blocked by the user",
            ));
        }
        if to.starts_with("perm") {
            return Err(SendFailure::permanent("400", "chat not found"));
        }
        if to.starts_with("timeout") {
            return Err(SendFailure::new(
                FailureClass::Uncertain,
                "timeout",
                "no answer after the request was sent",
            ));
        }
        let text = message.content.display_text().unwrap_or_default();
        state.delivered.push(Delivered {
            account,
            to: to.to_owned(),
            text,
        });
        Ok(SendReceipt {
            provider_message_ids: vec![format!("lb-{}", state.delivered.len())],
        })
    }
}

/// A message the loopback provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub account: String,
    pub to: String,
    pub text: String,
}

#[derive(Debug, Default)]
struct Sends {
    delivered: Vec<Delivered>,
    attempts: std::collections::HashMap<(String, String), u32>,
    refused: std::collections::HashSet<String>,
}

/// Process-wide provider state; tests use unique account ids, so they do not see each other.
static SENDS: std::sync::LazyLock<std::sync::Mutex<Sends>> =
    std::sync::LazyLock::new(Default::default);

/// Messages accepted for `account`, in order.
#[must_use]
pub fn delivered(account: &str) -> Vec<Delivered> {
    let state = SENDS.lock().expect("sends lock");
    state
        .delivered
        .iter()
        .filter(|d| d.account == account)
        .cloned()
        .collect()
}

/// Send attempts to `to` on `account`.
#[must_use]
pub fn attempts(account: &str, to: &str) -> u32 {
    let state = SENDS.lock().expect("sends lock");
    state
        .attempts
        .get(&(account.to_owned(), to.to_owned()))
        .copied()
        .unwrap_or(0)
}

/// Makes the provider refuse (or accept again) the account's token for `reauth…` recipients.
pub fn refuse_tokens(account: &str, refuse: bool) {
    let mut state = SENDS.lock().expect("sends lock");
    if refuse {
        state.refused.insert(account.to_owned());
    } else {
        state.refused.remove(account);
    }
}

/// The `X-Loopback-Signature` of a body.
#[must_use]
pub fn sign(secret: &str, body: &[u8]) -> String {
    hex::encode(crypto::hmac_sha256(secret.as_bytes(), body))
}
