//! Live status and disconnect: what `debug_token`, `subscribed_apps` and the phone number node
//! say right now, mapped to `connected`, `needs_reauth` or `error` with a reason.

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use switchboard_core::adapter::{IntegrationContext, LiveStatus};
use switchboard_core::domain::IntegrationState;
use switchboard_core::error::AdapterError;

use crate::adapter::WhatsAppAdapter;
use crate::credentials::WhatsAppCredentials;
use crate::graph::GraphError;

/// What `debug_token` says about a token.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct TokenInfo {
    pub valid: bool,
    /// Unix seconds; `None` when Meta says `0` (never expires).
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
    /// WABA ids from `granular_scopes`, newest first as Meta orders them.
    pub waba_ids: Vec<String>,
}

impl TokenInfo {
    fn from_body(body: &Value) -> Self {
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut waba_ids: Vec<String> = Vec::new();
        for grant in data
            .get("granular_scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let scope = grant
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if scope.starts_with("whatsapp_business_") {
                for id in strings(grant.get("target_ids")) {
                    if !waba_ids.contains(&id) {
                        waba_ids.push(id);
                    }
                }
            }
        }
        Self {
            valid: data
                .get("is_valid")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            expires_at: data
                .get("expires_at")
                .and_then(Value::as_i64)
                .filter(|s| *s > 0),
            scopes: strings(data.get("scopes")),
            waba_ids,
        }
    }
}

fn live(
    state: IntegrationState,
    reason: Option<String>,
    details: Value,
    expiry: Option<i64>,
) -> LiveStatus {
    LiveStatus {
        state,
        reason,
        details,
        token_expires_at: expiry.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
    }
}

const REAUTH: &str = "Reconnect WhatsApp to give Switchboard a fresh permission.";

impl WhatsAppAdapter {
    /// `GET debug_token` with the app token.
    pub(crate) async fn debug_token(&self, token: &str) -> Result<TokenInfo, GraphError> {
        let app = self.config.app_token();
        let body = self
            .graph
            .get(
                "debug_token",
                &[
                    ("input_token", token),
                    ("access_token", app.expose_secret()),
                ],
                None,
            )
            .await?;
        Ok(TokenInfo::from_body(&body))
    }

    pub(crate) async fn live_status(&self, ctx: &IntegrationContext) -> LiveStatus {
        let Ok(creds) = ctx.credentials.parse::<WhatsAppCredentials>() else {
            let reason = format!("The stored credentials are unreadable. {REAUTH}");
            return live(IntegrationState::NeedsReauth, Some(reason), json!({}), None);
        };
        let info = match self.debug_token(&creds.access_token).await {
            Ok(info) => info,
            Err(err) => {
                let reason = format!("Could not check the token: {}", err.reason());
                return live(
                    IntegrationState::Error,
                    Some(reason),
                    json!({}),
                    creds.expires_at,
                );
            }
        };
        if let Some(problem) = token_problem(&info) {
            let details = json!({"token_valid": info.valid});
            return live(
                IntegrationState::NeedsReauth,
                Some(format!("{problem} {REAUTH}")),
                details,
                info.expires_at,
            );
        }
        self.account_status(&creds, &info).await
    }

    async fn account_status(&self, creds: &WhatsAppCredentials, info: &TokenInfo) -> LiveStatus {
        let (subscribed, number) = match self.account_nodes(creds).await {
            Ok(nodes) => nodes,
            Err(e) if e.is_token_error() => {
                let reason = format!("Meta rejected the access token. {REAUTH}");
                return live(
                    IntegrationState::NeedsReauth,
                    Some(reason),
                    json!({}),
                    info.expires_at,
                );
            }
            Err(e) => {
                let reason = format!("Could not read the account from Meta: {}", e.reason());
                return live(
                    IntegrationState::Error,
                    Some(reason),
                    json!({}),
                    info.expires_at,
                );
            }
        };
        let is_subscribed = subscribed
            .get("data")
            .and_then(Value::as_array)
            .is_some_and(|apps| apps.iter().any(|a| self.is_our_app(a)));
        let text = |k: &str| number.get(k).and_then(Value::as_str).map(str::to_owned);
        let phone_status = text("status");
        let details = json!({
            "token_valid": true,
            "subscribed": is_subscribed,
            "verified_name": text("verified_name"),
            "display_name": text("verified_name"),
            "quality_rating": text("quality_rating"),
            "phone_status": phone_status,
            "display_phone_number": text("display_phone_number"),
            "code_verification_status": text("code_verification_status"),
            "messaging_limit_tier": text("messaging_limit_tier"),
            "scopes": info.scopes,
        });
        let (state, reason) = judge(is_subscribed, phone_status.as_deref());
        live(state, reason, details, info.expires_at)
    }

    /// `GET /{waba}/subscribed_apps` and `GET /{phone-number-id}`.
    async fn account_nodes(
        &self,
        creds: &WhatsAppCredentials,
    ) -> Result<(Value, Value), GraphError> {
        let token = Some(creds.access_token.as_str());
        let fields = "id,display_phone_number,verified_name,quality_rating,status,code_verification_status,name_status,messaging_limit_tier";
        let apps_path = format!("{}/subscribed_apps", creds.waba_id);
        let subscribed = self.graph.get(&apps_path, &[], token).await?;
        let number = self
            .graph
            .get(&creds.phone_number_id, &[("fields", fields)], token)
            .await?;
        Ok((subscribed, number))
    }

    fn is_our_app(&self, app: &Value) -> bool {
        app.pointer("/whatsapp_business_api_data/id")
            .and_then(Value::as_str)
            == Some(self.config.app_id.as_str())
    }

    pub(crate) async fn unsubscribe(&self, ctx: &IntegrationContext) -> Result<(), AdapterError> {
        let creds: WhatsAppCredentials = ctx.credentials.parse()?;
        match self
            .graph
            .delete(
                &format!("{}/subscribed_apps", creds.waba_id),
                &creds.access_token,
            )
            .await
        {
            Ok(body) if body.get("success").and_then(Value::as_bool) == Some(true) => Ok(()),
            Ok(_) => Err(AdapterError::Upstream {
                code: "unexpected".into(),
                message: "Meta did not confirm the unsubscription".into(),
            }),
            Err(e) if e.is_token_error() => Err(AdapterError::TokenRejected(e.reason())),
            Err(GraphError::Api(e)) => Err(AdapterError::Upstream {
                code: e.code.to_string(),
                message: e.reason(),
            }),
            Err(e) => Err(AdapterError::Transport(e.reason())),
        }
    }
}

/// The state for a valid token, from the subscription and the number's status.
fn judge(is_subscribed: bool, phone_status: Option<&str>) -> (IntegrationState, Option<String>) {
    const UNUSABLE: [&str; 7] = [
        "BANNED",
        "RESTRICTED",
        "DELETED",
        "UNLINKED",
        "MIGRATED",
        "DISCONNECTED",
        "FLAGGED",
    ];
    if !is_subscribed {
        let reason = "This app is no longer subscribed to the WhatsApp Business Account, so no messages arrive. Reconnect WhatsApp.";
        return (IntegrationState::Error, Some(reason.to_owned()));
    }
    match phone_status.filter(|s| UNUSABLE.contains(s)) {
        Some(bad) => (
            IntegrationState::Error,
            Some(format!(
                "Meta reports the phone number as {bad}; it cannot send or receive messages."
            )),
        ),
        None => (IntegrationState::Connected, None),
    }
}

/// Why a token cannot be used: invalid, expired, or missing a permission.
fn token_problem(info: &TokenInfo) -> Option<String> {
    let now = chrono::Utc::now().timestamp();
    if !info.valid || info.expires_at.is_some_and(|e| e <= now) {
        return Some("The Meta access token has expired or was revoked.".to_owned());
    }
    [
        "whatsapp_business_messaging",
        "whatsapp_business_management",
    ]
    .iter()
    .find(|s| !info.scopes.iter().any(|g| g == *s))
    .map(|missing| format!("The permission `{missing}` was removed."))
}
