//! `value.statuses[]`: delivery reports on messages the business sent.
//!
//! `sent`, `delivered`, `read`, `played` and `failed` map to [`DeliveryStatus`]; a status name
//! this version does not know becomes an account event (`message_status`) rather than being
//! dropped. Pricing and conversation blocks stay in `raw`.

use serde_json::{Value, json};
use switchboard_core::domain::{AccountEvent, DeliveryStatus, InboundEvent, StatusUpdate};

use super::{Origin, at, error_summary, unix_time};

pub(crate) fn event(origin: &Origin, raw: Value) -> InboundEvent {
    let name = at(&raw, "/status").unwrap_or_default();
    let status = match name.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "played" => DeliveryStatus::Played,
        "failed" => DeliveryStatus::Failed,
        _ => return unknown(origin, &name, &raw),
    };
    let (error_code, error_reason) = raw
        .pointer("/errors/0")
        .map(error_summary)
        .unwrap_or_default();
    InboundEvent::Status(StatusUpdate {
        account_id: origin
            .phone_number_id
            .clone()
            .or_else(|| origin.waba_id.clone())
            .unwrap_or_default(),
        provider_message_id: at(&raw, "/id").unwrap_or_default(),
        status,
        timestamp: unix_time(raw.get("timestamp"))
            .or_else(|| {
                origin
                    .entry_time
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            })
            .unwrap_or_else(chrono::Utc::now),
        recipient: at(&raw, "/recipient_id").or_else(|| at(&raw, "/recipient_user_id")),
        error_code,
        error_reason,
        reference: at(&raw, "/biz_opaque_callback_data"),
        raw,
    })
}

fn unknown(origin: &Origin, name: &str, raw: &Value) -> InboundEvent {
    InboundEvent::Account(AccountEvent {
        account_id: origin.phone_number_id.clone(),
        kind: "message_status".to_owned(),
        chat_id: at(raw, "/recipient_id"),
        summary: Some(format!(
            "status `{name}` for {}",
            at(raw, "/id").unwrap_or_default()
        )),
        timestamp: unix_time(raw.get("timestamp")),
        raw: json!({"waba_id": origin.waba_id, "field": origin.field, "status": raw}),
    })
}
