//! [`WhatsAppAdapter`]: the `ChannelAdapter` implementation, wiring the connect flow
//! (`oauth`), live status (`status`), webhook authentication and parsing (`webhook`) and
//! sending (`send`) to the trait the gateway calls.

use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use secrecy::ExposeSecret;
use serde_json::Value;
use switchboard_core::adapter::{
    CallbackParams, Capabilities, ChannelDescriptor, ConnectAttempt, ConnectKind, Credentials,
    IntegrationContext, LiveStatus, NewConnection, OAuthOutcome, Rate, RateLimits, WebhookAuth,
};
use switchboard_core::crypto::{HmacVerifier, constant_time_eq};
use switchboard_core::domain::{InboundEvent, OutboundMessage, SendFailure, SendReceipt};
use switchboard_core::error::{AdapterError, ConnectError, ParseError, WebhookRejection};
use switchboard_core::{ChannelAdapter, ChannelName};

use crate::config::WhatsAppConfig;
use crate::credentials::WhatsAppCredentials;
use crate::graph::Graph;

/// The header Meta signs webhooks with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The WhatsApp Cloud API adapter.
#[derive(Debug)]
pub struct WhatsAppAdapter {
    pub(crate) config: WhatsAppConfig,
    pub(crate) graph: Graph,
    pub(crate) channel: ChannelName,
    descriptor: ChannelDescriptor,
    /// The app secret, prepared once for checking webhook signatures.
    signatures: HmacVerifier,
}

impl WhatsAppAdapter {
    /// Builds the adapter around the gateway's shared HTTP client.
    ///
    /// # Panics
    /// Never: `whatsapp` is a valid channel name.
    #[must_use]
    pub fn new(config: WhatsAppConfig, http: reqwest::Client) -> Self {
        let channel =
            ChannelName::parse(crate::CHANNEL).expect("`whatsapp` is a valid channel name");
        let descriptor = ChannelDescriptor {
            name: channel.clone(),
            display_name: "WhatsApp".to_owned(),
            connect_kind: ConnectKind::Oauth,
            capabilities: Capabilities {
                media: true,
                templates: true,
                read_receipts: true,
                reply_window: Some(Duration::from_secs(24 * 60 * 60)),
                groups: false,
                account_choice: true,
            },
        };
        let graph = Graph::new(
            http,
            config.graph_base_url.clone(),
            config.graph_version.clone(),
        );
        let signatures = HmacVerifier::new(config.app_secret.expose_secret().as_bytes());
        Self {
            config,
            graph,
            channel,
            descriptor,
            signatures,
        }
    }

    /// The validated configuration.
    #[must_use]
    pub fn config(&self) -> &WhatsAppConfig {
        &self.config
    }
}

#[async_trait]
impl ChannelAdapter for WhatsAppAdapter {
    fn descriptor(&self) -> &ChannelDescriptor {
        &self.descriptor
    }

    /// 80 messages per second per number (Meta's default throughput) and, per customer, one
    /// message per 6 seconds with bursts of up to 45 that borrow future quota (131056 beyond).
    fn rate_limits(&self) -> RateLimits {
        RateLimits {
            per_account: Some(Rate::new(80, Duration::from_secs(1), 80)),
            per_chat: Some(Rate::new(1, Duration::from_secs(6), 45)),
            per_group: None,
        }
    }

    fn webhook_auth_hint(&self) -> &'static str {
        "Meta signs with the app secret: check channels.whatsapp.app_secret (META_APP_SECRET)"
    }

    fn authorize_url(&self, state: &str) -> Result<url::Url, ConnectError> {
        let mut url = self.config.dialog_base_url.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!(
            "{prefix}/{}/dialog/oauth",
            self.config.graph_version
        ));
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.config.app_id);
            q.append_pair("redirect_uri", self.config.redirect_uri.as_str());
            q.append_pair("state", state);
            q.append_pair("response_type", "code");
            match &self.config.config_id {
                Some(config_id) => q.append_pair("config_id", config_id),
                None => q.append_pair("scope", &self.config.scopes.join(",")),
            };
        }
        Ok(url)
    }

    #[tracing::instrument(skip_all, fields(channel = "whatsapp", business_id = %attempt.business_id))]
    async fn finish_oauth(
        &self,
        params: &CallbackParams,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<OAuthOutcome, ConnectError> {
        self.finish_callback(params, attempt).await
    }

    #[tracing::instrument(skip_all, fields(channel = "whatsapp", business_id = %attempt.business_id, option_id = %option_id))]
    async fn choose_account(
        &self,
        pending: &Credentials,
        option_id: &str,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<NewConnection, ConnectError> {
        self.finish_choice(pending, option_id, attempt).await
    }

    #[tracing::instrument(skip_all, fields(channel = "whatsapp", integration_id = %ctx.integration.id))]
    async fn status(&self, ctx: &IntegrationContext) -> LiveStatus {
        self.live_status(ctx).await
    }

    #[tracing::instrument(skip_all, fields(channel = "whatsapp", integration_id = %ctx.integration.id))]
    async fn disconnect(&self, ctx: &IntegrationContext) -> Result<(), AdapterError> {
        self.unsubscribe(ctx).await
    }

    fn verify_subscription(&self, query: &[(String, String)]) -> Option<String> {
        let get = |k: &str| {
            query
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
        };
        let token = get("hub.verify_token")?;
        let expected = self.config.verify_token.expose_secret().as_bytes();
        let token_ok =
            token.len() == expected.len() && constant_time_eq(token.as_bytes(), expected);
        (get("hub.mode") == Some("subscribe") && token_ok)
            .then(|| get("hub.challenge").unwrap_or_default().to_owned())
    }

    fn authenticate_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookAuth, WebhookRejection> {
        const NAME: &str = "X-Hub-Signature-256";
        let header = headers
            .get(SIGNATURE_HEADER)
            .ok_or(WebhookRejection::Missing(NAME))?;
        let hex_sig = header
            .to_str()
            .ok()
            .and_then(|v| v.trim().strip_prefix("sha256="))
            .ok_or(WebhookRejection::Invalid(NAME))?;
        let signature = hex::decode(hex_sig).map_err(|_| WebhookRejection::Invalid(NAME))?;
        if self.signatures.verify(body, &signature) {
            Ok(WebhookAuth::Verified)
        } else {
            Err(WebhookRejection::Invalid(NAME))
        }
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<InboundEvent>, ParseError> {
        crate::webhook::parse(body)
    }

    #[tracing::instrument(skip_all, fields(channel = "whatsapp", integration_id = %ctx.integration.id))]
    async fn send(
        &self,
        ctx: &IntegrationContext,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, SendFailure> {
        let creds: WhatsAppCredentials = ctx.credentials.parse().map_err(|_| {
            SendFailure::new(
                switchboard_core::domain::FailureClass::NeedsReauth,
                "credentials",
                "The stored WhatsApp credentials are unreadable; reconnect WhatsApp.",
            )
        })?;
        let path = format!("{}/messages", creds.phone_number_id);
        let bodies = crate::send::request_bodies(message)?;
        let mut ids = Vec::new();
        for (part, body) in bodies.iter().enumerate() {
            let answer = self
                .graph
                .post(&path, &creds.access_token, Some(body))
                .await
                .map_err(|e| {
                    let failure = crate::send::classify_part(&e, part, bodies.len());
                    tracing::warn!(code = %failure.code, class = ?failure.class, "whatsapp send failed");
                    failure
                })?;
            ids.extend(
                answer
                    .get("messages")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.get("id").and_then(Value::as_str))
                    .map(str::to_owned),
            );
        }
        Ok(SendReceipt {
            provider_message_ids: ids,
        })
    }
}
