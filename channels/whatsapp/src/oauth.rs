//! The Facebook Login connect flow, after the gateway has checked `state`:
//! code → token → long-lived token → `debug_token` → WABAs → phone numbers → (choice) →
//! `subscribed_apps` → a [`NewConnection`].
//!
//! Every failure becomes a [`ConnectError`] with a stable code and a message a business owner
//! understands; tokens never appear in messages.

use secrecy::ExposeSecret;
use serde_json::Value;
use switchboard_core::adapter::{
    AccountOption, CallbackParams, ConnectAttempt, Credentials, NewConnection, OAuthOutcome,
};
use switchboard_core::error::ConnectError;

use crate::adapter::WhatsAppAdapter;
use crate::credentials::{Candidate, PendingChoice, WhatsAppCredentials};
use crate::graph::GraphError;
use crate::status::TokenInfo;

/// Scopes without which a connection cannot work.
const REQUIRED_SCOPES: [&str; 2] = [
    "whatsapp_business_management",
    "whatsapp_business_messaging",
];

/// A user token with what `debug_token` said about it.
pub(crate) struct Grant {
    pub token: String,
    pub info: TokenInfo,
}

pub(crate) fn upstream(step: &str, err: &GraphError) -> ConnectError {
    tracing::warn!(step, error = %err.reason(), "whatsapp connect step failed");
    ConnectError::upstream(format!("Meta refused to {step}: {}", err.reason()))
}

impl WhatsAppAdapter {
    pub(crate) async fn finish_callback(
        &self,
        params: &CallbackParams,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<OAuthOutcome, ConnectError> {
        let code = callback_code(params)?;
        let grant = self.grant_from_code(code).await?;
        let candidates = self.discover_numbers(&grant).await?;
        match candidates.as_slice() {
            [] => Err(ConnectError::rejected(
                "no_phone_number",
                "The WhatsApp Business Account you shared has no phone number. Add one in WhatsApp Manager, then connect again.",
            )),
            [only] => Ok(OAuthOutcome::Connected(
                self.complete(&grant.token, &grant.info, only, attempt)
                    .await?,
            )),
            several => Ok(choose_outcome(&grant, several)),
        }
    }

    pub(crate) async fn finish_choice(
        &self,
        pending: &Credentials,
        option_id: &str,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<NewConnection, ConnectError> {
        let pending: PendingChoice = pending.parse().map_err(|_| ConnectError::internal())?;
        let candidate = pending
            .candidates
            .iter()
            .find(|c| c.phone_number_id == option_id)
            .ok_or_else(|| {
                ConnectError::rejected(
                    "unknown_account",
                    "That phone number was not one of the choices.",
                )
            })?;
        let info = TokenInfo {
            valid: true,
            expires_at: pending.expires_at,
            scopes: pending.scopes.clone(),
            waba_ids: Vec::new(),
        };
        self.complete(&pending.access_token, &info, candidate, attempt)
            .await
    }

    async fn grant_from_code(&self, code: &str) -> Result<Grant, ConnectError> {
        let token = self.long_lived_token(code).await?;
        let info = self
            .debug_token(&token)
            .await
            .map_err(|e| upstream("describe the token", &e))?;
        if !info.valid {
            return Err(ConnectError::upstream(
                "Meta says the new token is not valid; please connect again.",
            ));
        }
        if let Some(missing) = REQUIRED_SCOPES
            .iter()
            .find(|s| !info.scopes.iter().any(|g| g == *s))
        {
            return Err(ConnectError::rejected(
                "access_denied",
                format!(
                    "The permission `{missing}` was not granted. Connect again and allow every requested permission."
                ),
            ));
        }
        Ok(Grant { token, info })
    }

    /// The code → short-lived token → long-lived token exchanges (same `redirect_uri` as the dialog).
    async fn long_lived_token(&self, code: &str) -> Result<String, ConnectError> {
        let (app_id, secret) = (
            self.config.app_id.as_str(),
            self.config.app_secret.expose_secret(),
        );
        let redirect = self.config.redirect_uri.as_str();
        let exchange = [
            ("client_id", app_id),
            ("redirect_uri", redirect),
            ("client_secret", secret),
            ("code", code),
        ];
        let short = self
            .graph
            .get("oauth/access_token", &exchange, None)
            .await
            .map_err(|e| upstream("accept the authorization code", &e))?;
        let short = access_token(&short)?;
        let extend = [
            ("grant_type", "fb_exchange_token"),
            ("client_id", app_id),
            ("client_secret", secret),
            ("fb_exchange_token", &short),
        ];
        let long = self
            .graph
            .get("oauth/access_token", &extend, None)
            .await
            .map_err(|e| upstream("issue a long-lived token", &e))?;
        access_token(&long)
    }

    /// Checks ownership, subscribes the app to the WABA, and builds the connection.
    async fn complete(
        &self,
        token: &str,
        info: &TokenInfo,
        chosen: &Candidate,
        attempt: &ConnectAttempt<'_>,
    ) -> Result<NewConnection, ConnectError> {
        if attempt
            .taken_by_other(&self.channel, &chosen.phone_number_id)
            .await?
        {
            return Err(ConnectError::conflict(
                "number_in_use",
                format!(
                    "{} is already connected to another Switchboard account.",
                    chosen.e164()
                ),
            ));
        }
        let answer = self
            .graph
            .post(&format!("{}/subscribed_apps", chosen.waba_id), token, None)
            .await
            .map_err(|e| upstream("subscribe this app to your WhatsApp Business Account", &e))?;
        if answer.get("success").and_then(Value::as_bool) != Some(true) {
            return Err(ConnectError::upstream(
                "Meta did not confirm the webhook subscription.",
            ));
        }
        let credentials = WhatsAppCredentials {
            access_token: token.to_owned(),
            expires_at: info.expires_at,
            phone_number_id: chosen.phone_number_id.clone(),
            waba_id: chosen.waba_id.clone(),
            scopes: info.scopes.clone(),
        };
        Ok(NewConnection {
            account_id: chosen.phone_number_id.clone(),
            parent_account_id: Some(chosen.waba_id.clone()),
            channel_name: chosen.verified_name.clone(),
            details: chosen.details(),
            credentials: Credentials::from_value(&credentials),
            token_expires_at: info
                .expires_at
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            webhook_secret: None,
        })
    }
}

fn callback_code(params: &CallbackParams) -> Result<&str, ConnectError> {
    if let Some(error) = params.error.as_deref() {
        if error == "access_denied" || params.error_reason.as_deref() == Some("user_denied") {
            return Err(ConnectError::rejected(
                "access_denied",
                "You cancelled the Facebook permission dialog, so nothing was connected.",
            ));
        }
        return Err(ConnectError::upstream(format!(
            "Facebook Login failed ({error}); please try again."
        )));
    }
    params
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ConnectError::upstream(
                "Facebook returned without an authorization code; please try again.",
            )
        })
}

fn access_token(body: &Value) -> Result<String, ConnectError> {
    body.get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ConnectError::upstream("Meta answered the token exchange without a token."))
}

fn choose_outcome(grant: &Grant, candidates: &[Candidate]) -> OAuthOutcome {
    let pending = PendingChoice {
        access_token: grant.token.clone(),
        expires_at: grant.info.expires_at,
        scopes: grant.info.scopes.clone(),
        candidates: candidates.to_vec(),
    };
    let options = candidates
        .iter()
        .map(|c| AccountOption {
            id: c.phone_number_id.clone(),
            label: c.label(),
            details: c.details(),
        })
        .collect();
    OAuthOutcome::ChooseAccount {
        pending: pending.to_credentials(),
        options,
    }
}
