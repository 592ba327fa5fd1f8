//! `POST /dashboard/sandbox/inbound`: the sandbox's "Simulate incoming message". It asks the
//! in-process emulator of the chosen channel to have a customer write to the business's
//! connected number or bot; the emulator then delivers the webhook like the provider would.
//! Outside sandbox mode the endpoint does not exist (`404`, whoever asks). Authenticated like
//! the API: a cookie-authenticated call must carry `X-Switchboard-CSRF: 1`.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::ChannelName;
use switchboard_telegram::emulator::SimulatedMessage;
use switchboard_whatsapp::emulator::{SimulatedContent, SimulatedInbound};

use crate::http::auth::Tenant;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::state::SandboxInfo;

/// The simulated customer's message.
#[derive(Debug, Deserialize)]
pub struct Simulate {
    pub channel: String,
    #[serde(default)]
    pub contact_name: Option<String>,
    /// Digits: the WhatsApp number or the Telegram user id.
    #[serde(default)]
    pub contact: Option<String>,
    pub text: String,
}

/// The handler.
///
/// # Errors
/// `404` outside sandbox mode; `401`/`403` without a session; `400` for a bad body; `409`
/// when the channel is not connected.
pub async fn simulate(
    State(app): State<AppState>,
    tenant: Result<Tenant, ApiError>,
    body: Result<Json<Simulate>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Some(info) = app.sandbox.clone() else {
        return Err(ApiError::not_found("not_found", "no such endpoint"));
    };
    let Tenant(business) = tenant?;
    let Json(body) = body.map_err(ApiError::from)?;
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "write a message to simulate",
        ));
    }
    let contact = digits(body.contact.as_deref())?;
    let name = body
        .contact_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let channel = ChannelName::parse(&body.channel)
        .map_err(|_| ApiError::bad_request("invalid_body", "unknown channel"))?;
    let account = app
        .store
        .integration_for(business, &channel)
        .await?
        .filter(|i| i.is_active)
        .and_then(|i| i.account_id)
        .ok_or_else(|| ApiError::Conflict {
            code: "not_connected",
            message: format!(
                "connect {channel} on the Integrations page before simulating a message"
            ),
        })?;
    let receipt = match channel.as_ref() {
        "whatsapp" => whatsapp(&info, account, contact, name, text).await?,
        "telegram" => telegram(&info, &account, contact, name, text)?,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "no emulator for this channel",
            ));
        }
    };
    Ok(Json(
        json!({ "simulated": true, "channel": channel, "receipt": receipt }),
    ))
}

fn digits(contact: Option<&str>) -> ApiResult<Option<String>> {
    let Some(contact) = contact.map(|c| c.trim().trim_start_matches('+')) else {
        return Ok(None);
    };
    if contact.is_empty() {
        return Ok(None);
    }
    if contact.len() > 15 || !contact.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the contact number or id must be up to 15 digits",
        ));
    }
    Ok(Some(contact.to_owned()))
}

fn no_emulator() -> ApiError {
    ApiError::bad_request(
        "invalid_body",
        "this channel is not emulated in this sandbox",
    )
}

async fn whatsapp(
    info: &SandboxInfo,
    phone_number_id: String,
    contact: Option<String>,
    name: Option<String>,
    text: &str,
) -> ApiResult<Value> {
    let emulator = info.emulators.whatsapp.as_ref().ok_or_else(no_emulator)?;
    let receipt = emulator
        .simulate_inbound(SimulatedInbound {
            phone_number_id: Some(phone_number_id),
            from: Some(contact.unwrap_or_else(|| "15551234567".to_owned())),
            name,
            user_id: None,
            content: SimulatedContent::Text {
                body: text.to_owned(),
            },
        })
        .await
        .map_err(|message| ApiError::bad_request("simulation_failed", message))?;
    Ok(json!(receipt))
}

fn telegram(
    info: &SandboxInfo,
    bot_id: &str,
    contact: Option<String>,
    name: Option<String>,
    text: &str,
) -> ApiResult<Value> {
    let emulator = info.emulators.telegram.as_ref().ok_or_else(no_emulator)?;
    let bot_id: i64 = bot_id
        .parse()
        .map_err(|_| ApiError::Internal("telegram account id is not a bot id".into()))?;
    let from_id = contact
        .and_then(|c| c.parse::<i64>().ok())
        .filter(|id| *id > 0);
    let message = SimulatedMessage {
        text: text.to_owned(),
        from_id,
        first_name: name,
        ..SimulatedMessage::default()
    };
    emulator
        .simulate_message(bot_id, &message)
        .map_err(|e| ApiError::bad_request("simulation_failed", e.to_string()))
}
