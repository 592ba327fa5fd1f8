//! Changes that are about the account rather than one message: template, quality and account
//! updates, user preferences, echoes, group events, and `value.errors`.
//!
//! Each becomes an [`AccountEvent`] with a stable `kind`; the WABA id, the field and the whole
//! value are kept in `raw`.

use serde_json::{Value, json};
use switchboard_core::domain::AccountEvent;

use super::{Origin, at, error_summary, unix_time};

/// The stable kind of a webhook field.
#[must_use]
pub fn kind_of(field: &str) -> &str {
    match field {
        "message_template_status_update" => "template_status",
        "message_template_quality_update" => "template_quality",
        "template_category_update" => "template_category",
        "phone_number_quality_update" => "phone_quality",
        "phone_number_name_update" => "phone_name",
        "account_update" => "account_update",
        "account_review_update" => "account_review",
        "account_alerts" => "account_alert",
        "user_preferences" => "user_preferences",
        "smb_message_echoes" => "message_echo",
        "" => "unknown",
        other => other,
    }
}

pub(crate) fn field_event(origin: &Origin, value: &Value) -> AccountEvent {
    AccountEvent {
        account_id: origin.phone_number_id.clone(),
        kind: kind_of(&origin.field).to_owned(),
        chat_id: chat_of(value),
        summary: summary(&origin.field, value),
        timestamp: origin
            .entry_time
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .or_else(|| first_timestamp(value)),
        raw: json!({"waba_id": origin.waba_id, "field": origin.field, "value": value}),
    }
}

pub(crate) fn value_error(origin: &Origin, err: &Value) -> AccountEvent {
    let (code, reason) = error_summary(err);
    AccountEvent {
        account_id: origin.phone_number_id.clone(),
        kind: "webhook_error".to_owned(),
        chat_id: None,
        summary: Some(match (code, reason) {
            (Some(c), Some(r)) => format!("{c} {r}"),
            (c, r) => c.or(r).unwrap_or_else(|| "error".to_owned()),
        }),
        timestamp: origin
            .entry_time
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
        raw: json!({"waba_id": origin.waba_id, "field": origin.field, "error": err}),
    }
}

fn chat_of(value: &Value) -> Option<String> {
    at(value, "/user_preferences/0/wa_id")
        .or_else(|| at(value, "/message_echoes/0/to"))
        .or_else(|| at(value, "/groups/0/group_id"))
}

fn first_timestamp(value: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    [
        "/user_preferences/0/timestamp",
        "/message_echoes/0/timestamp",
        "/groups/0/timestamp",
    ]
    .iter()
    .find_map(|p| unix_time(value.pointer(p)))
}

fn summary(field: &str, value: &Value) -> Option<String> {
    let s = |p: &str| at(value, p);
    match field {
        "message_template_status_update" => Some(format!(
            "Template {} ({}) {}{}",
            s("/message_template_name").unwrap_or_default(),
            s("/message_template_language").unwrap_or_default(),
            s("/event").unwrap_or_default(),
            s("/reason")
                .filter(|r| r != "NONE")
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
        )),
        "message_template_quality_update" => Some(format!(
            "Template {} quality {} → {}",
            s("/message_template_name").unwrap_or_default(),
            s("/previous_quality_score").unwrap_or_default(),
            s("/new_quality_score").unwrap_or_default(),
        )),
        "template_category_update" => Some(format!(
            "Template {} category {}",
            s("/message_template_name").unwrap_or_default(),
            s("/new_category").unwrap_or_default(),
        )),
        "phone_number_quality_update" => Some(
            format!(
                "{} {} {}",
                s("/display_phone_number").unwrap_or_default(),
                s("/event").unwrap_or_default(),
                s("/max_daily_conversations_per_business")
                    .or_else(|| s("/current_limit"))
                    .unwrap_or_default(),
            )
            .trim()
            .to_owned(),
        ),
        "user_preferences" => Some(format!(
            "{} {}",
            s("/user_preferences/0/category").unwrap_or_default(),
            s("/user_preferences/0/value").unwrap_or_default(),
        )),
        _ => s("/event")
            .or_else(|| s("/groups/0/type"))
            .or_else(|| s("/message_echoes/0/type")),
    }
}
