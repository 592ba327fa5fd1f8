//! Planning a send: an [`OutboundMessage`] becomes the Bot API requests that deliver it.
//!
//! Pure and synchronous, so every request shape can be checked against the Bot API spec in a
//! test. Content Telegram cannot carry (templates, read receipts) and values it would refuse
//! (bad ids, over-long captions, oversized button data) are refused here as permanent failures,
//! before any request is made.

use serde_json::{Value, json};
use switchboard_core::domain::{
    MediaKind, MediaSource, OutboundContent, OutboundMessage, SendFailure,
};

use crate::parse::parse_message_key;
use crate::requests::ApiRequest;
use crate::split::{MAX_TEXT_UNITS, split_text, utf16_len};

/// The caption limit of media messages.
pub const MAX_CAPTION_UNITS: usize = 1024;
/// Actions `sendChatAction` accepts.
pub const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

/// Where a message goes: the chat and, in forums, the topic.
struct Target {
    chat_id: Value,
    chat: Option<i64>,
    thread: Option<i64>,
}

impl Target {
    fn request(&self, method: &'static str) -> ApiRequest {
        ApiRequest::new(method)
            .with("chat_id", self.chat_id.clone())
            .with_opt("message_thread_id", self.thread)
    }
}

fn invalid(reason: impl Into<String>) -> SendFailure {
    SendFailure::permanent("invalid_request", reason)
}

fn target(msg: &OutboundMessage) -> Result<Target, SendFailure> {
    let to = msg.to.trim();
    let (chat_id, chat) = match to.parse::<i64>() {
        Ok(id) if id != 0 => (json!(id), Some(id)),
        _ if to.starts_with('@') && to.len() > 1 => (json!(to), None),
        _ => return Err(invalid(format!("`{to}` is not a Telegram chat id"))),
    };
    let thread = match msg.thread_id.as_deref() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| invalid(format!("`{t}` is not a Telegram topic id")))?,
        ),
    };
    Ok(Target {
        chat_id,
        chat,
        thread,
    })
}

/// `reply_parameters` for a reply to a `{chat}:{message}` key (a reply to another chat names it).
fn reply_parameters(reply_to: &str, target: &Target) -> Result<Value, SendFailure> {
    let (chat, message_id) = parse_message_key(reply_to)
        .ok_or_else(|| invalid(format!("`{reply_to}` is not a Telegram message id")))?;
    let mut params = json!({"message_id": message_id, "allow_sending_without_reply": true});
    if let Some(chat) = chat.filter(|c| Some(*c) != target.chat) {
        params["chat_id"] = json!(chat);
    }
    Ok(params)
}

/// The requests that deliver `msg`, in order.
///
/// # Errors
/// A permanent [`SendFailure`] for content Telegram cannot carry or would refuse.
pub fn plan(msg: &OutboundMessage) -> Result<Vec<ApiRequest>, SendFailure> {
    let target = target(msg)?;
    let reply = msg
        .reply_to
        .as_deref()
        .map(|r| reply_parameters(r, &target))
        .transpose()?;
    match &msg.content {
        OutboundContent::Text { body, preview_url } => {
            texts(&target, body, *preview_url, reply.as_ref(), None)
        }
        OutboundContent::Buttons { body, buttons } => {
            let keyboard = buttons
                .iter()
                .map(|b| {
                    if (1..=64).contains(&b.id.len()) {
                        Ok(json!([{"text": b.title, "callback_data": b.id}]))
                    } else {
                        Err(invalid(
                            "button ids must be 1-64 bytes (Telegram callback_data)",
                        ))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let markup = json!({ "inline_keyboard": keyboard });
            texts(&target, body, false, reply.as_ref(), Some(&markup))
        }
        OutboundContent::Media {
            kind,
            source,
            caption,
            ..
        } => media(&target, *kind, source, caption.as_deref(), reply).map(|r| vec![r]),
        OutboundContent::Reaction { message_id, emoji } => {
            let (_, id) = parse_message_key(message_id)
                .ok_or_else(|| invalid(format!("`{message_id}` is not a Telegram message id")))?;
            Ok(vec![
                ApiRequest::new("setMessageReaction")
                    .with("chat_id", target.chat_id.clone())
                    .with("message_id", id)
                    .with("reaction", json!([{"type": "emoji", "emoji": emoji}])),
            ])
        }
        OutboundContent::ChatAction { action } => {
            if !CHAT_ACTIONS.contains(&action.as_str()) {
                return Err(invalid(format!("`{action}` is not a Telegram chat action")));
            }
            Ok(vec![
                target
                    .request("sendChatAction")
                    .with("action", action.as_str()),
            ])
        }
        OutboundContent::Template { .. } => Err(SendFailure::permanent(
            "unsupported",
            "Telegram has no message templates",
        )),
        OutboundContent::MarkRead { .. } => Err(SendFailure::permanent(
            "unsupported",
            "Telegram bots cannot mark messages read",
        )),
    }
}

/// One `sendMessage` per part of a long text; the reply goes on the first part, the keyboard
/// on the last.
fn texts(
    target: &Target,
    body: &str,
    preview: bool,
    reply: Option<&Value>,
    markup: Option<&Value>,
) -> Result<Vec<ApiRequest>, SendFailure> {
    let parts = split_text(body, MAX_TEXT_UNITS);
    if parts.is_empty() {
        return Err(invalid("the message text is empty"));
    }
    let last = parts.len() - 1;
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            target
                .request("sendMessage")
                .with("text", part)
                .with("link_preview_options", json!({ "is_disabled": !preview }))
                .with_opt("reply_parameters", reply.filter(|_| i == 0).cloned())
                .with_opt("reply_markup", markup.filter(|_| i == last).cloned())
        })
        .collect())
}

fn media(
    target: &Target,
    kind: MediaKind,
    source: &MediaSource,
    caption: Option<&str>,
    reply: Option<Value>,
) -> Result<ApiRequest, SendFailure> {
    let (method, field) = match kind {
        MediaKind::Image => ("sendPhoto", "photo"),
        MediaKind::Audio => ("sendAudio", "audio"),
        MediaKind::Video => ("sendVideo", "video"),
        MediaKind::Document => ("sendDocument", "document"),
        MediaKind::Sticker => ("sendSticker", "sticker"),
    };
    let file = match source {
        MediaSource::Link(url) | MediaSource::Id(url) => url.clone(),
    };
    if let Some(text) = caption {
        if kind == MediaKind::Sticker {
            return Err(invalid("stickers cannot carry a caption"));
        }
        if utf16_len(text) > MAX_CAPTION_UNITS {
            return Err(invalid(
                "captions are limited to 1024 characters on Telegram",
            ));
        }
    }
    Ok(target
        .request(method)
        .with(field, file)
        .with_opt("caption", caption)
        .with_opt("reply_parameters", reply))
}
