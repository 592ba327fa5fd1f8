//! Outbound messages: the JSON bodies of `POST /{phone-number-id}/messages`, and the
//! classification of failures by Graph `error.code` (never by HTTP status).
//!
//! Recipients that are plain digits (a `wa_id`) are sent with a leading `+`: without it Meta
//! prepends the business number's country code. Business-scoped user ids (`US.134…`) go in
//! `recipient` instead of `to`.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::domain::{
    FailureClass, MediaKind, MediaSource, OutboundContent, OutboundMessage, SendFailure,
};

use crate::graph::{ApiError, GraphError};

/// Meta's limit on a text body.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Meta's limit on reply buttons.
pub const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;

/// The request bodies for one outbound message (several when a long text is split).
///
/// # Errors
/// A permanent failure for content WhatsApp cannot carry.
pub fn request_bodies(message: &OutboundMessage) -> Result<Vec<Value>, SendFailure> {
    let mut bodies = content_bodies(message)?;
    // Meta echoes `biz_opaque_callback_data` in the message's status webhooks; the gateway
    // reconciles sends of unknown outcome with it. Only the last part of a split text carries
    // it, so a status for it means the whole message went out.
    if let (Some(reference), Some(last)) = (&message.reference, bodies.last_mut())
        && last.get("type").is_some()
    {
        last["biz_opaque_callback_data"] = json!(reference);
    }
    Ok(bodies)
}

fn content_bodies(message: &OutboundMessage) -> Result<Vec<Value>, SendFailure> {
    match &message.content {
        OutboundContent::MarkRead { message_id } => Ok(vec![json!({
            "messaging_product": "whatsapp", "status": "read", "message_id": message_id,
        })]),
        OutboundContent::Text { body, preview_url } => {
            let chunks = split_text(body);
            Ok(chunks
                .iter()
                .enumerate()
                .map(|(i, chunk)| {
                    let reply = if i == 0 {
                        message.reply_to.as_deref()
                    } else {
                        None
                    };
                    envelope(
                        &message.to,
                        reply,
                        "text",
                        json!({"preview_url": preview_url, "body": chunk}),
                    )
                })
                .collect())
        }
        content => {
            let (kind, payload) = typed_payload(content)?;
            Ok(vec![envelope(
                &message.to,
                message.reply_to.as_deref(),
                kind,
                payload,
            )])
        }
    }
}

fn envelope(to: &str, reply_to: Option<&str>, kind: &str, payload: Value) -> Value {
    let mut body =
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "type": kind});
    let address = if to.contains('.') { "recipient" } else { "to" };
    body[address] = json!(normalize_recipient(to));
    body[kind] = payload;
    if let Some(id) = reply_to {
        body["context"] = json!({"message_id": id});
    }
    body
}

/// `16505551234` → `+16505551234`; anything else unchanged.
#[must_use]
pub fn normalize_recipient(to: &str) -> String {
    let trimmed = to.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{trimmed}")
    } else {
        trimmed.to_owned()
    }
}

fn typed_payload(content: &OutboundContent) -> Result<(&'static str, Value), SendFailure> {
    Ok(match content {
        OutboundContent::Template {
            name,
            language,
            components,
        } => {
            // `policy` is required by the OpenAPI spec; `deterministic` is its only value.
            let mut t =
                json!({"name": name, "language": {"policy": "deterministic", "code": language}});
            if !components.is_empty() {
                t["components"] = json!(components);
            }
            ("template", t)
        }
        OutboundContent::Media {
            kind,
            source,
            caption,
            filename,
        } => media_payload(*kind, source, caption.as_deref(), filename.as_deref()),
        OutboundContent::Buttons { body, buttons } => {
            ("interactive", buttons_payload(body, buttons)?)
        }
        OutboundContent::Reaction { message_id, emoji } => (
            "reaction",
            json!({"message_id": message_id, "emoji": emoji}),
        ),
        OutboundContent::ChatAction { .. } => {
            return Err(SendFailure::permanent(
                "unsupported",
                "WhatsApp has no chat actions; nothing was sent.",
            ));
        }
        OutboundContent::Text { .. } | OutboundContent::MarkRead { .. } => {
            unreachable!("handled by request_bodies")
        }
    })
}

fn media_payload(
    kind: MediaKind,
    source: &MediaSource,
    caption: Option<&str>,
    filename: Option<&str>,
) -> (&'static str, Value) {
    let name = match kind {
        MediaKind::Image => "image",
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
        MediaKind::Document => "document",
        MediaKind::Sticker => "sticker",
    };
    let mut media = match source {
        MediaSource::Link(link) => json!({"link": link}),
        MediaSource::Id(id) => json!({"id": id}),
    };
    // Meta ignores captions on audio and stickers and file names outside documents.
    if let Some(caption) = caption.filter(|_| {
        matches!(
            kind,
            MediaKind::Image | MediaKind::Video | MediaKind::Document
        )
    }) {
        media["caption"] = json!(caption);
    }
    if let Some(filename) = filename.filter(|_| kind == MediaKind::Document) {
        media["filename"] = json!(filename);
    }
    (name, media)
}

fn buttons_payload(
    body: &str,
    buttons: &[switchboard_core::domain::ReplyButton],
) -> Result<Value, SendFailure> {
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return Err(SendFailure::permanent(
            "invalid_buttons",
            format!(
                "WhatsApp allows 1 to {MAX_BUTTONS} reply buttons, not {}.",
                buttons.len()
            ),
        ));
    }
    if let Some(long) = buttons
        .iter()
        .find(|b| b.title.chars().count() > MAX_BUTTON_TITLE)
    {
        return Err(SendFailure::permanent(
            "invalid_buttons",
            format!(
                "Button title `{}` is longer than {MAX_BUTTON_TITLE} characters.",
                long.title
            ),
        ));
    }
    let buttons: Vec<Value> = buttons
        .iter()
        .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
        .collect();
    Ok(json!({"type": "button", "body": {"text": body}, "action": {"buttons": buttons}}))
}

/// Splits a text into chunks of at most [`MAX_TEXT_CHARS`], preferring line and word breaks.
#[must_use]
pub fn split_text(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut rest = text;
    while rest.chars().count() > MAX_TEXT_CHARS {
        let hard = rest
            .char_indices()
            .nth(MAX_TEXT_CHARS)
            .map_or(rest.len(), |(i, _)| i);
        let cut = rest[..hard]
            .rfind('\n')
            .or_else(|| rest[..hard].rfind(' '))
            .filter(|&i| i > 0)
            .unwrap_or(hard);
        chunks.push(rest[..cut].to_owned());
        rest = rest[cut..].trim_start_matches([' ', '\n']);
    }
    if !rest.is_empty() || chunks.is_empty() {
        chunks.push(rest.to_owned());
    }
    chunks
}

/// Classifies the failure of part `part` (0-based) of a message sent in `total` parts. Once a
/// part went out, a retry would repeat it, so later failures are final and say what was sent.
#[must_use]
pub(crate) fn classify_part(err: &GraphError, part: usize, total: usize) -> SendFailure {
    let failure = classify(err);
    if part == 0 {
        return failure;
    }
    SendFailure::permanent(
        failure.code,
        format!("Only {part} of {total} parts were sent: {}", failure.reason),
    )
}

/// Classifies a failed Graph call of a send.
#[must_use]
pub(crate) fn classify(err: &GraphError) -> SendFailure {
    match err {
        GraphError::Api(api) => classify_api(api),
        GraphError::Connect => SendFailure::new(
            FailureClass::Retry {
                after: None,
                per_recipient: false,
            },
            "connect",
            "Meta could not be reached; nothing was sent.",
        ),
        GraphError::Timeout => SendFailure::new(
            FailureClass::Uncertain,
            "timeout",
            "Meta did not answer in time; the message may have been sent.",
        ),
        GraphError::Malformed { status } if *status >= 500 || *status == 0 => SendFailure::new(
            FailureClass::Retry {
                after: None,
                per_recipient: false,
            },
            format!("http_{status}"),
            err.reason(),
        ),
        GraphError::Malformed { status } => {
            SendFailure::permanent(format!("http_{status}"), err.reason())
        }
    }
}

/// Classifies a Graph error body by its `code`.
#[must_use]
pub fn classify_api(api: &ApiError) -> SendFailure {
    let retry = |per_recipient, after: Option<Duration>| FailureClass::Retry {
        after,
        per_recipient,
    };
    let class = match api.code {
        190 | 102 => FailureClass::NeedsReauth,
        4 | 80007 | 130429 | 131000 | 131016 | 131057 | 133004 | 1 | 2 => retry(false, None),
        131056 => retry(true, None),
        131047 => FailureClass::WindowClosed,
        _ => FailureClass::Permanent,
    };
    SendFailure::new(class, api.code.to_string(), api.reason())
}
