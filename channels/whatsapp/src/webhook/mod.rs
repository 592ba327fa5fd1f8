//! Meta's webhook POST bodies → normalized [`InboundEvent`]s.
//!
//! One body may carry several entries (WABAs), each with several changes (fields), each with
//! several messages, statuses or errors; all are read. Every event of a `messages`-like change
//! is routed by that change's `metadata.phone_number_id`. Structs are permissive (everything
//! optional, raw JSON kept), so an unknown field or type is never a parse failure; only a body
//! that is not a WhatsApp webhook at all is a [`ParseError`].

mod account;
mod message;
mod status;

use serde::Deserialize;
use serde_json::Value;
use switchboard_core::domain::InboundEvent;
use switchboard_core::error::ParseError;

/// The `object` of every WhatsApp Business Account webhook.
pub const OBJECT: &str = "whatsapp_business_account";

#[derive(Debug, Deserialize)]
struct Envelope {
    object: Option<String>,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: Option<Value>,
    time: Option<i64>,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    field: Option<String>,
    #[serde(default)]
    value: Value,
}

/// Where a change happened: the WABA, the phone number, and the entry's time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub waba_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub entry_time: Option<i64>,
    pub field: String,
}

/// Parses a webhook body.
///
/// # Errors
/// When the body is not JSON or not a WhatsApp Business Account webhook.
pub fn parse(body: &[u8]) -> Result<Vec<InboundEvent>, ParseError> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| ParseError(format!("not a WhatsApp webhook body: {e}")))?;
    match envelope.object.as_deref() {
        Some(OBJECT) => {}
        Some(other) => {
            return Err(ParseError(format!(
                "webhook object is `{other}`, not `{OBJECT}`"
            )));
        }
        None => return Err(ParseError("webhook body has no `object`".into())),
    }
    let mut events = Vec::new();
    for entry in envelope.entry {
        for change in entry.changes {
            let origin = Origin {
                waba_id: entry.id.as_ref().and_then(text),
                phone_number_id: change
                    .value
                    .pointer("/metadata/phone_number_id")
                    .and_then(text),
                entry_time: entry.time,
                field: change.field.clone().unwrap_or_default(),
            };
            parse_change(&origin, &change.value, &mut events);
        }
    }
    Ok(events)
}

fn parse_change(origin: &Origin, value: &Value, out: &mut Vec<InboundEvent>) {
    let list = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    if origin.field != "messages" {
        out.push(InboundEvent::Account(account::field_event(origin, value)));
        return;
    }
    let contacts = list("contacts");
    for raw in list("messages") {
        out.push(message::event(origin, &contacts, raw));
    }
    for raw in list("statuses") {
        out.push(status::event(origin, raw));
    }
    for raw in list("errors") {
        out.push(InboundEvent::Account(account::value_error(origin, &raw)));
    }
    let known = [
        "messaging_product",
        "metadata",
        "contacts",
        "messages",
        "statuses",
        "errors",
    ];
    let other: Vec<&String> = value
        .as_object()
        .map(|o| o.keys().filter(|k| !known.contains(&k.as_str())).collect())
        .unwrap_or_default();
    if !other.is_empty() {
        out.push(InboundEvent::Account(account::field_event(origin, value)));
    }
}

/// A JSON string or number as text (Meta sends ids and timestamps as strings, fixtures
/// sometimes as numbers).
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `pointer` into `value` as text.
pub(crate) fn at(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(text)
}

/// Unix seconds (string or number) as a time.
pub(crate) fn unix_time(value: Option<&Value>) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs = value.and_then(text)?.parse::<i64>().ok()?;
    chrono::DateTime::from_timestamp(secs, 0)
}

/// `code title: details` of a Meta error object.
pub(crate) fn error_summary(err: &Value) -> (Option<String>, Option<String>) {
    let code = err.get("code").and_then(text);
    let title = err
        .get("title")
        .and_then(Value::as_str)
        .or_else(|| err.get("message").and_then(Value::as_str));
    let details = err
        .pointer("/error_data/details")
        .and_then(Value::as_str)
        .or_else(|| err.get("details").and_then(Value::as_str));
    let reason = match (title, details) {
        (Some(t), Some(d)) if t != d => Some(format!("{t}: {d}")),
        (Some(t), _) => Some(t.to_owned()),
        (None, d) => d.map(str::to_owned),
    };
    (code, reason)
}
