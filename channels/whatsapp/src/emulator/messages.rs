//! `POST /{version}/{phone-number-id}/messages`: validation, the 24-hour customer service
//! window (131047), pair rate limit (131056), throughput (130429), Meta's success body, the
//! record of every accepted message, and the status webhooks that follow each send.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::errors::{GraphFault, check_token, presented_token, require_scope};
use super::state::{SentMessage, Shared, State, WINDOW_SECS};

const TYPES: [&str; 11] = [
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "template",
    "reaction",
];

/// The route handler.
pub(crate) async fn send(
    AxState(inner): AxState<Shared>,
    headers: HeaderMap,
    Path((_v, phone_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let outcome = {
        let mut st = inner.lock();
        accept(&mut st, &headers, &phone_id, &body)
    };
    match outcome {
        Ok(Accepted::Read) => Json(json!({"success": true})).into_response(),
        Ok(Accepted::Message(sent)) => {
            let response = success_body(&sent);
            super::delivery::after_send(&inner, sent);
            Json(response).into_response()
        }
        Err(fault) => fault.into_response(),
    }
}

enum Accepted {
    Read,
    Message(SentMessage),
}

fn invalid(message: &str) -> GraphFault {
    GraphFault::new(StatusCode::BAD_REQUEST, 100, format!("(#100) {message}"))
}

fn accept(
    st: &mut State,
    headers: &HeaderMap,
    phone_id: &str,
    raw: &[u8],
) -> Result<Accepted, GraphFault> {
    authorize(st, headers, phone_id)?;
    let body: Value =
        serde_json::from_slice(raw).map_err(|_| invalid("The request body is not valid JSON"))?;
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err(invalid("The parameter messaging_product is required."));
    }
    if body.get("status").and_then(Value::as_str) == Some("read") {
        return match body.get("message_id").and_then(Value::as_str) {
            Some(_) => Ok(Accepted::Read),
            None => Err(invalid("The parameter message_id is required.")),
        };
    }
    let to = validate_content(&body)?;
    let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
    limits(st, phone_id, &wa_id)?;
    if body.get("type").and_then(Value::as_str) != Some("template") {
        window_open(st, phone_id, &wa_id)?;
    }
    let n = st.next();
    let id = format!("wamid.HBgL{wa_id}{n:08X}FQIAERgS");
    let sent = SentMessage {
        id,
        phone_number_id: phone_id.to_owned(),
        to: to.clone(),
        body,
        timestamp: st.now(),
    };
    st.sent.push(sent.clone());
    Ok(Accepted::Message(sent))
}

/// A usable token that was granted the number's WABA and the messaging permission.
fn authorize(st: &State, headers: &HeaderMap, phone_id: &str) -> Result<(), GraphFault> {
    let record = check_token(st, presented_token(headers, None).as_deref())?;
    let granted = st
        .seed
        .phone(phone_id)
        .is_some_and(|(w, _)| record.grant.wabas.contains(&w.id));
    if !granted {
        return Err(GraphFault::no_object("post", phone_id));
    }
    require_scope(&record, "whatsapp_business_messaging")
}

/// Free-form messages need a customer message within the last 24 hours (131047).
fn window_open(st: &State, phone_id: &str, wa_id: &str) -> Result<(), GraphFault> {
    if !st.faults.enforce_window {
        return Ok(());
    }
    let last = st
        .windows
        .get(&(phone_id.to_owned(), wa_id.to_owned()))
        .copied();
    if last.is_some_and(|t| st.now() - t <= WINDOW_SECS) {
        return Ok(());
    }
    Err(GraphFault::whatsapp(
        StatusCode::BAD_REQUEST,
        131047,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ))
}

/// Checks `to`, `type` and the typed object; returns the recipient.
fn validate_content(body: &Value) -> Result<String, GraphFault> {
    let to = body
        .get("to")
        .or_else(|| body.get("recipient"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("The parameter to is required."))?;
    if !to.contains('.') && to.chars().filter(char::is_ascii_digit).count() < 7 {
        return Err(GraphFault::whatsapp(
            StatusCode::BAD_REQUEST,
            131009,
            "Parameter value is not valid",
            "The recipient phone number is not valid.",
        ));
    }
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("text");
    if !TYPES.contains(&kind) {
        return Err(invalid(&format!(
            "Param type must be one of {{{}}} - got \"{kind}\".",
            TYPES.join(", ")
        )));
    }
    let payload = body
        .get(kind)
        .filter(|p| p.is_object() || (kind == "contacts" && p.is_array()))
        .ok_or_else(|| {
            GraphFault::whatsapp(
                StatusCode::BAD_REQUEST,
                131008,
                "Required parameter is missing",
                &format!("The parameter {kind} is required."),
            )
        })?;
    if let Some(field) = missing_field(kind, payload) {
        return Err(GraphFault::whatsapp(
            StatusCode::BAD_REQUEST,
            131008,
            "Required parameter is missing",
            &format!("Parameter {field} is required."),
        ));
    }
    Ok(to.to_owned())
}

/// The required field of a typed object that is absent, if any.
fn missing_field(kind: &str, payload: &Value) -> Option<&'static str> {
    let absent = |pointer: &str| payload.pointer(pointer).is_none();
    match kind {
        "text" => payload
            .get("body")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            .then_some("text['body']"),
        "template" => (absent("/name") || absent("/language/code"))
            .then_some("template['name'] and template['language']['code']"),
        "reaction" => absent("/message_id").then_some("reaction['message_id']"),
        "interactive" => (absent("/type") || absent("/action"))
            .then_some("interactive['type'] and interactive['action']"),
        "image" | "audio" | "video" | "document" | "sticker" => {
            (absent("/id") && absent("/link")).then_some("link or id")
        }
        _ => None,
    }
}

fn limits(st: &mut State, phone_id: &str, wa_id: &str) -> Result<(), GraphFault> {
    let throttled = GraphFault::whatsapp(
        StatusCode::TOO_MANY_REQUESTS,
        130429,
        "Rate limit hit",
        "Cloud API message throughput has been reached.",
    );
    if st.faults.rate_limited {
        return Err(throttled);
    }
    let now = Instant::now();
    let (per_second, burst) = (
        st.faults.throughput_per_second as usize,
        st.faults.pair_burst as usize,
    );
    if !admit(
        st.number_sends.entry(phone_id.to_owned()).or_default(),
        now,
        Duration::from_secs(1),
        per_second,
    ) {
        return Err(throttled);
    }
    if !admit(
        st.pair_sends
            .entry((phone_id.to_owned(), wa_id.to_owned()))
            .or_default(),
        now,
        Duration::from_secs(6),
        burst,
    ) {
        return Err(GraphFault::whatsapp(
            StatusCode::BAD_REQUEST,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        ));
    }
    Ok(())
}

/// A sliding-window counter: admits when fewer than `max` events happened within `window`.
fn admit(events: &mut VecDeque<Instant>, now: Instant, window: Duration, max: usize) -> bool {
    while events
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        events.pop_front();
    }
    if events.len() >= max {
        return false;
    }
    events.push_back(now);
    true
}

fn success_body(sent: &SentMessage) -> Value {
    let wa_id: String = sent.to.chars().filter(char::is_ascii_digit).collect();
    let contact = if sent.to.contains('.') {
        json!({"input": sent.to, "user_id": sent.to})
    } else {
        json!({"input": sent.to, "wa_id": wa_id})
    };
    let mut message = json!({"id": sent.id});
    if sent.body.get("type").and_then(Value::as_str) == Some("template") {
        message["message_status"] = json!("accepted");
    }
    json!({"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]})
}
