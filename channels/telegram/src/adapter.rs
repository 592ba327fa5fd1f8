//! [`TelegramAdapter`]: the [`ChannelAdapter`] for Telegram bots.
//!
//! Connect: the business pastes a bot token → form check → `getMe` → ownership check (another
//! business's bot is refused with `bot_in_use` before the webhook is touched) → a fresh random
//! webhook secret → `setWebhook`. Inbound requests are authenticated by that secret, which the
//! gateway looks up by hash (`WebhookAuth::PerIntegrationSecret`); parsed events carry an empty
//! account id and the gateway assigns the integration's (see [`crate::parse`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::Integration;
use switchboard_core::adapter::{
    Capabilities, ChannelDescriptor, ConnectAttempt, ConnectKind, Credentials, IntegrationContext,
    LiveStatus, NewConnection, WebhookAuth,
};
use switchboard_core::domain::{InboundEvent, OutboundMessage, SendFailure, SendReceipt};
use switchboard_core::error::{ConfigError, ConnectError, ParseError, WebhookRejection};
use switchboard_core::registry::{AdapterServices, ChannelConfig};
use switchboard_core::{AdapterError, ChannelAdapter, ChannelName};

use crate::api::{ApiError, BotApi};
use crate::config::TelegramConfig;
use crate::parse::{ParseContext, parse_update};
use crate::requests;
use crate::token::{BotToken, WebhookSecret};

/// The header Telegram puts the webhook secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// The gateway path Telegram posts updates to.
pub const WEBHOOK_PATH: &str = "api/webhooks/telegram";
/// Longest `retry_after` waited out when `setWebhook` is throttled (one call per second).
const SET_WEBHOOK_WAIT_LIMIT: u64 = 5;

/// What the gateway stores (encrypted) for a Telegram integration.
#[derive(Clone, Serialize, Deserialize)]
pub struct TelegramCredentials {
    pub bot_token: String,
    pub webhook_secret: String,
}

impl std::fmt::Debug for TelegramCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TelegramCredentials([REDACTED])")
    }
}

/// The Telegram channel adapter.
#[derive(Debug)]
pub struct TelegramAdapter {
    descriptor: ChannelDescriptor,
    config: TelegramConfig,
    api: BotApi,
    webhook_url: String,
}

/// The `build` function of the `inventory` registration.
///
/// # Errors
/// A [`ConfigError`] naming the bad `channels.telegram.*` key.
pub fn build_adapter(
    config: &ChannelConfig,
    services: &AdapterServices,
) -> Result<Arc<dyn ChannelAdapter>, ConfigError> {
    let parsed = TelegramConfig::from_channel_config(config)?;
    Ok(Arc::new(TelegramAdapter::new(parsed, services)))
}

impl TelegramAdapter {
    #[must_use]
    pub fn new(config: TelegramConfig, services: &AdapterServices) -> Self {
        let api = BotApi::new(
            services.http.clone(),
            &config.api_base_url,
            config.request_timeout,
        );
        Self {
            descriptor: descriptor(),
            webhook_url: services.public_endpoint(WEBHOOK_PATH),
            api,
            config,
        }
    }

    /// The URL given to `setWebhook`.
    #[must_use]
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    fn channel(&self) -> &ChannelName {
        &self.descriptor.name
    }

    fn credentials(
        ctx: &IntegrationContext,
    ) -> Result<(BotToken, TelegramCredentials), AdapterError> {
        let creds: TelegramCredentials = ctx.credentials.parse()?;
        let token = BotToken::parse(&creds.bot_token)
            .map_err(|e| AdapterError::Credentials(e.to_string()))?;
        Ok((token, creds))
    }

    /// `setWebhook`, waiting out Telegram's one-call-per-second throttle once.
    async fn set_webhook(&self, token: &BotToken, secret: &WebhookSecret) -> Result<(), ApiError> {
        let request = requests::set_webhook(
            &self.webhook_url,
            secret.expose(),
            &self.config.allowed_updates,
            self.config.max_connections,
        );
        match self.api.call(token, &request).await {
            Err(ApiError::Api {
                code: 429,
                retry_after: Some(wait),
                ..
            }) if wait <= SET_WEBHOOK_WAIT_LIMIT => {
                tokio::time::sleep(Duration::from_secs(wait)).await;
                self.api.call(token, &request).await.map(drop)
            }
            other => other.map(drop),
        }
    }
}

fn descriptor() -> ChannelDescriptor {
    ChannelDescriptor {
        name: ChannelName::parse("telegram").expect("`telegram` is a valid channel name"),
        display_name: "Telegram".to_owned(),
        connect_kind: ConnectKind::Token,
        capabilities: Capabilities {
            media: true,
            templates: false,
            read_receipts: false,
            reply_window: None,
            groups: true,
            account_choice: false,
        },
    }
}

fn invalid_token(message: &str) -> ConnectError {
    ConnectError::rejected("invalid_bot_token", message)
}

fn connect_upstream(step: &str, error: &ApiError) -> ConnectError {
    match error {
        ApiError::Api { description, .. } => {
            ConnectError::upstream(format!("Telegram refused {step}: {description}"))
        }
        other => ConnectError::upstream(format!("{step} failed: {other}")),
    }
}

fn connection_details(me: &Value, bot_id: i64, webhook_url: &str) -> Value {
    json!({
        "bot_username": me.get("username"),
        "bot_id": bot_id.to_string(),
        "bot_name": me.get("first_name"),
        "can_join_groups": me.get("can_join_groups").and_then(Value::as_bool).unwrap_or(false),
        "can_read_all_group_messages":
            me.get("can_read_all_group_messages").and_then(Value::as_bool).unwrap_or(false),
        "supports_inline_queries":
            me.get("supports_inline_queries").and_then(Value::as_bool).unwrap_or(false),
        "can_connect_to_business":
            me.get("can_connect_to_business").and_then(Value::as_bool).unwrap_or(false),
        "webhook_url": webhook_url,
    })
}

fn adapter_error(error: &ApiError) -> AdapterError {
    match error {
        ApiError::Api {
            code: 401 | 404,
            description,
            ..
        } => AdapterError::TokenRejected(description.clone()),
        ApiError::Api {
            code, description, ..
        } => AdapterError::Upstream {
            code: code.to_string(),
            message: description.clone(),
        },
        other => AdapterError::Transport(other.to_string()),
    }
}

#[async_trait]
impl ChannelAdapter for TelegramAdapter {
    fn descriptor(&self) -> &ChannelDescriptor {
        &self.descriptor
    }

    /// Groups, supergroups and channels have negative chat ids; people have positive ones.
    fn is_group_chat(&self, chat_id: &str) -> bool {
        chat_id.starts_with('-')
    }

    fn webhook_auth_hint(&self) -> &'static str {
        "Telegram sends the secret token given to setWebhook: if another program set this bot's webhook, reconnect the bot"
    }

    #[tracing::instrument(skip_all, fields(channel = "telegram", business_id = %attempt.business_id))]
    async fn connect_with_token(
        &self,
        input: &Value,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<NewConnection, ConnectError> {
        let raw = input
            .get("bot_token")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_token("send {\"bot_token\": \"<token from @BotFather>\"}"))?;
        let token = BotToken::parse(raw).map_err(|e| invalid_token(&e.to_string()))?;
        let me = match self.api.call(&token, &requests::get_me()).await {
            Ok(me) => me,
            Err(ApiError::Api {
                code: 401 | 404, ..
            }) => {
                return Err(invalid_token(
                    "Telegram does not accept this bot token (revoked, regenerated or mistyped)",
                ));
            }
            Err(error) => return Err(connect_upstream("getMe", &error)),
        };
        let bot_id = me
            .get("id")
            .and_then(Value::as_i64)
            .unwrap_or(token.bot_id());
        if attempt
            .taken_by_other(self.channel(), &bot_id.to_string())
            .await?
        {
            return Err(ConnectError::conflict(
                "bot_in_use",
                "this bot is already connected to another business",
            ));
        }
        let secret = WebhookSecret::generate();
        self.set_webhook(&token, &secret)
            .await
            .map_err(|e| connect_upstream("setWebhook", &e))?;
        tracing::info!(bot_id, "telegram bot connected, webhook set");
        let credentials = TelegramCredentials {
            bot_token: token.expose().to_owned(),
            webhook_secret: secret.expose().to_owned(),
        };
        Ok(NewConnection {
            account_id: bot_id.to_string(),
            parent_account_id: None,
            channel_name: me
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_owned),
            details: connection_details(&me, bot_id, &self.webhook_url),
            credentials: Credentials::from_value(&credentials),
            token_expires_at: None,
            webhook_secret: Some(secret.into_secret()),
        })
    }

    #[tracing::instrument(skip_all, fields(channel = "telegram", integration_id = %ctx.integration.id))]
    async fn status(&self, ctx: &IntegrationContext) -> LiveStatus {
        match Self::credentials(ctx) {
            Ok((token, _)) => {
                crate::status::live_status(
                    &self.api,
                    &token,
                    &self.webhook_url,
                    self.config.webhook_error_window,
                )
                .await
            }
            Err(error) => LiveStatus {
                state: switchboard_core::domain::IntegrationState::NeedsReauth,
                reason: Some(format!(
                    "stored credentials are unusable ({error}); reconnect"
                )),
                details: json!({}),
                token_expires_at: None,
            },
        }
    }

    #[tracing::instrument(skip_all, fields(channel = "telegram", integration_id = %ctx.integration.id))]
    async fn disconnect(&self, ctx: &IntegrationContext) -> Result<(), AdapterError> {
        let (token, _) = Self::credentials(ctx)?;
        self.api
            .call(&token, &requests::delete_webhook())
            .await
            .map(drop)
            .map_err(|e| adapter_error(&e))
    }

    fn authenticate_webhook(
        &self,
        headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<WebhookAuth, WebhookRejection> {
        const WHAT: &str = "X-Telegram-Bot-Api-Secret-Token";
        let value = headers
            .get(SECRET_HEADER)
            .ok_or(WebhookRejection::Missing(WHAT))?;
        let text = value
            .to_str()
            .map_err(|_| WebhookRejection::Invalid(WHAT))?;
        let secret = WebhookSecret::parse(text).map_err(|_| WebhookRejection::Invalid(WHAT))?;
        Ok(WebhookAuth::PerIntegrationSecret(secret.into_secret()))
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<InboundEvent>, ParseError> {
        parse_update(body, &ParseContext::default())
    }

    /// The gateway knows the bot from the secret the update came with: events name it, and a
    /// group message is addressed to us only when it mentions this bot's username.
    fn parse_webhook_for(
        &self,
        body: &[u8],
        integration: &Integration,
    ) -> Result<Vec<InboundEvent>, ParseError> {
        let username = integration
            .details
            .get("bot_username")
            .and_then(serde_json::Value::as_str)
            .or(integration.channel_name.as_deref())
            .map(|name| name.trim_start_matches('@'));
        parse_update(
            body,
            &ParseContext {
                account_id: integration.account_id.as_deref().unwrap_or_default(),
                bot_username: username,
            },
        )
    }

    #[tracing::instrument(skip_all, fields(channel = "telegram", integration_id = %ctx.integration.id))]
    async fn send(
        &self,
        ctx: &IntegrationContext,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, SendFailure> {
        let (token, _) = Self::credentials(ctx).map_err(|e| {
            SendFailure::new(
                switchboard_core::domain::FailureClass::NeedsReauth,
                "credentials",
                format!("stored credentials are unusable: {e}"),
            )
        })?;
        let result = crate::send::execute(&self.api, &token, message).await;
        if let Err(failure) = &result {
            tracing::warn!(code = %failure.code, class = ?failure.class, "telegram send failed");
        }
        result
    }
}
