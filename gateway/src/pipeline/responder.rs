//! The responder: the pluggable "brain" that decides the automated reply to an inbound message.
//!
//! The pipeline calls [`Responder::respond`] once per inbound message it has decided deserves an
//! answer (from a person, answerable kind, addressed to us; see
//! `switchboard_core::domain::InboundMessage::wants_reply`) and queues whatever comes back as
//! outbound messages. The responder itself does not filter; it only answers. An empty `Vec`
//! means "no reply". A [`ResponderError`] says whether asking again later may help
//! (`retryable`) and carries a message that is safe to show to the business owner.
//!
//! [`build`] picks the implementation from `responder.kind`:
//!
//! - `off`: never replies.
//! - `static` (the default): replies `responder.text` to every message.
//! - `echo`: replies the inbound text (or caption) verbatim; a message without text is described
//!   by its type in brackets, e.g. `[image]`, `[location]`.
//! - `webhook`: asks an external service (the "brain") over HTTP, as specified below.
//!
//! # The webhook contract
//!
//! ## Request
//!
//! `POST {responder.url}` with these headers:
//!
//! | Header | Value |
//! |---|---|
//! | `Content-Type` | `application/json` |
//! | `X-Switchboard-Timestamp` | Unix time in seconds when the request was signed, decimal, e.g. `1795999999` |
//! | `X-Switchboard-Signature` | `sha256=` followed by the lower-case hex HMAC-SHA256 described below |
//! | `X-Switchboard-Delivery` | the inbound message's id (a UUID); identical on every retry for the same message |
//!
//! and this body (all timestamps RFC 3339 in UTC; fields may be `null` where marked `?`):
//!
//! ```json
//! {
//!   "event": "message",
//!   "business_id": "0193…",
//!   "integration_id": "0193…",
//!   "channel": "whatsapp",
//!   "conversation": { "id": "0193…", "external_chat_id": "15551234567", "contact_name?": "Ada" },
//!   "message": {
//!     "id": "0193…",
//!     "provider_message_id?": "wamid.HBg…",
//!     "direction": "inbound",
//!     "type": "text",
//!     "text?": "Hello",
//!     "provider_timestamp?": "2026-11-24T00:55:00Z",
//!     "created_at": "2026-11-24T00:55:01.123456Z"
//!   },
//!   "context": [ /* earlier messages of the conversation, same shape, oldest first */ ]
//! }
//! ```
//!
//! `direction` is `inbound` or `outbound`; `type` is the stored message type (`text`, `image`,
//! `audio`, `voice`, `video`, `document`, `sticker`, `location`, `contacts`, `interactive`,
//! `button`, `order`, …; new types may appear). `context` holds at most [`CONTEXT_LIMIT`] messages
//! that came before `message` in the conversation, in both directions, and never `message`
//! itself. New fields may be added to any object; brains must ignore fields they do not know.
//!
//! ## Signature
//!
//! The signature covers the timestamp and the exact body bytes, joined by a dot:
//!
//! ```text
//! signed_payload = X-Switchboard-Timestamp + "." + raw_body_bytes
//! X-Switchboard-Signature = "sha256=" + hex(HMAC_SHA256(key = responder.secret as UTF-8 bytes, signed_payload))
//! ```
//!
//! To verify: read the raw body *before* parsing it, recompute the HMAC with the shared secret,
//! compare it with the header in constant time, and reject requests whose timestamp is more than
//! a few minutes (we suggest 5) away from your clock. Binding the timestamp stops an attacker from
//! replaying a captured request later.
//!
//! ## Answer
//!
//! - `200` (any `2xx`) with a JSON object:
//!   - `{"reply": R}`: one reply;
//!   - `{"replies": [R, …]}`: up to [`MAX_REPLIES`] replies, sent in order;
//!   - `{}`, `{"reply": null}`, `{"replies": []}`: no reply.
//!
//!   Any other top-level field, or both `reply` and `replies`, is an error.
//! - `204`, or a `2xx` with an empty body: no reply.
//!
//! Each `R` is either the shorthand `{"text": "…"}` or a full outbound content object as the
//! gateway's send API takes it, for example `{"type": "text", "body": "…", "preview_url": false}`,
//! `{"type": "template", "name": "…", "language": "en_US", "components": […]}`,
//! `{"type": "media", "kind": "image", "link": "https://…", "caption": null, "filename": null}`,
//! `{"type": "buttons", "body": "…", "buttons": [{"id": "…", "title": "…"}]}` or
//! `{"type": "reaction", "message_id": "<provider_message_id>", "emoji": "👍"}`.
//! A text with an empty body is an error. The answer body may be at most [`MAX_ANSWER_BYTES`].
//!
//! ## Failures and retries
//!
//! The request times out after `responder.timeout` seconds (default 10), counting from the
//! connection attempt until the answer is read whole.
//!
//! - **Retryable** (the gateway asks again later with the same `X-Switchboard-Delivery`): a
//!   timeout, a failed connection, any other network failure, `5xx`, `429` and `408`.
//! - **Final** (no retry; the message says why, e.g. "the responder webhook answered 404 Not
//!   Found"): any other status outside `2xx`, and a `2xx` whose body is not an answer of the shape
//!   above.
//!
//! A timeout does not prove the brain did not act, so a brain should treat
//! `X-Switchboard-Delivery` as an idempotency key and answer a repeated delivery the same way
//! (or with no reply) instead of acting twice.
//!
//! The secret is never logged and never appears in an error message.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use switchboard_core::crypto::hmac_sha256;
use switchboard_core::domain::{MessageKind, OutboundContent};
use switchboard_core::ids::{BusinessId, ChannelName, ConversationId, IntegrationId, MessageId};
use switchboard_core::store::{Conversation, Message};
use url::Url;

/// At most this many earlier messages are sent to a webhook brain as `context`.
pub const CONTEXT_LIMIT: usize = 20;
/// The webhook timeout when `responder.timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest webhook answer read; a longer one is a final error.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// The most replies one webhook answer may carry.
pub const MAX_REPLIES: usize = 10;

/// `sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub const SIGNATURE_HEADER: &str = "x-switchboard-signature";
/// Unix seconds when the request was signed.
pub const TIMESTAMP_HEADER: &str = "x-switchboard-timestamp";
/// The inbound message id: the same on every retry, an idempotency key for the brain.
pub const DELIVERY_HEADER: &str = "x-switchboard-delivery";

pub use crate::config::{ResponderKind, ResponderSettings};

/// What a responder is asked about: one inbound message and where it belongs.
#[derive(Debug, Clone)]
pub struct ResponderInput {
    pub business_id: BusinessId,
    pub integration_id: IntegrationId,
    pub channel: ChannelName,
    pub conversation: Conversation,
    /// The inbound message to answer, as stored.
    pub message: Message,
    /// Earlier messages of the conversation, oldest first, at most [`CONTEXT_LIMIT`] of them
    /// (a longer list is cut to its newest entries).
    pub context: Vec<Message>,
}

/// Why a responder could not decide on a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ResponderError {
    /// Whether asking again later may succeed.
    pub retryable: bool,
    /// Safe to show to the business owner; never contains a secret.
    pub message: String,
}

impl ResponderError {
    /// An error worth retrying later.
    #[must_use]
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }

    /// An error that asking again will not fix.
    #[must_use]
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }

    /// Replaces every occurrence of `secret` in the message (defence in depth: a brain could
    /// echo the secret back in a malformed answer that the message quotes).
    fn redacted(mut self, secret: &str) -> Self {
        if !secret.is_empty() && self.message.contains(secret) {
            self.message = self.message.replace(secret, "[REDACTED]");
        }
        self
    }
}

/// Decides the automated replies to an inbound message.
#[async_trait]
pub trait Responder: Send + Sync + fmt::Debug {
    /// The replies to send, in order; empty for none.
    ///
    /// # Errors
    /// When no decision could be made; see [`ResponderError::retryable`].
    async fn respond(&self, input: &ResponderInput)
    -> Result<Vec<OutboundContent>, ResponderError>;

    /// Whether [`ResponderInput::context`] is read; when not, it is left empty and the
    /// conversation's history is not loaded for it.
    fn uses_context(&self) -> bool {
        true
    }

    /// A responder that decides from the message alone, at once and without failing (a fixed
    /// text, an echo), answers here: the inbox then queues the replies in the same commit as
    /// the message, without a `respond` job. `None` asks through a `respond` job.
    fn immediate(&self, _kind: &MessageKind, _text: Option<&str>) -> Option<Vec<OutboundContent>> {
        None
    }
}

/// The responder the settings ask for.
///
/// Settings are validated at start-up; should a webhook responder still lack a usable URL or
/// secret, the result fails every message with a final error naming the setting, rather than
/// panicking.
#[must_use]
pub fn build(settings: &ResponderSettings, http: reqwest::Client) -> Arc<dyn Responder> {
    match settings.kind {
        ResponderKind::Off => Arc::new(OffResponder),
        ResponderKind::Static => Arc::new(StaticResponder {
            text: settings.text.clone(),
        }),
        ResponderKind::Echo => Arc::new(EchoResponder),
        ResponderKind::Webhook => match WebhookResponder::new(settings, http) {
            Ok(webhook) => Arc::new(webhook),
            Err(reason) => {
                tracing::warn!(%reason, "the webhook responder is misconfigured");
                Arc::new(MisconfiguredResponder { reason })
            }
        },
    }
}

/// The signature header value for `body` signed at `timestamp` (see the module docs).
#[must_use]
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(body.len() + 21);
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    format!("sha256={}", hex::encode(hmac_sha256(secret, &signed)))
}

#[derive(Debug)]
struct OffResponder;

#[async_trait]
impl Responder for OffResponder {
    fn uses_context(&self) -> bool {
        false
    }

    async fn respond(&self, _: &ResponderInput) -> Result<Vec<OutboundContent>, ResponderError> {
        Ok(Vec::new())
    }
}

#[derive(Debug)]
struct StaticResponder {
    text: String,
}

#[async_trait]
impl Responder for StaticResponder {
    fn uses_context(&self) -> bool {
        false
    }

    fn immediate(&self, _: &MessageKind, _: Option<&str>) -> Option<Vec<OutboundContent>> {
        if self.text.trim().is_empty() {
            return Some(Vec::new());
        }
        Some(vec![text(self.text.clone())])
    }

    async fn respond(&self, _: &ResponderInput) -> Result<Vec<OutboundContent>, ResponderError> {
        Ok(self.immediate(&MessageKind::Text, None).unwrap_or_default())
    }
}

#[derive(Debug)]
struct EchoResponder;

#[async_trait]
impl Responder for EchoResponder {
    fn uses_context(&self) -> bool {
        false
    }

    fn immediate(&self, kind: &MessageKind, said: Option<&str>) -> Option<Vec<OutboundContent>> {
        let body = match said {
            Some(said) if !said.trim().is_empty() => said.to_owned(),
            _ => format!("[{}]", kind.as_str()),
        };
        Some(vec![text(body)])
    }

    async fn respond(
        &self,
        input: &ResponderInput,
    ) -> Result<Vec<OutboundContent>, ResponderError> {
        let message = &input.message;
        Ok(self
            .immediate(&message.kind, message.text.as_deref())
            .unwrap_or_default())
    }
}

#[derive(Debug)]
struct MisconfiguredResponder {
    reason: String,
}

#[async_trait]
impl Responder for MisconfiguredResponder {
    fn uses_context(&self) -> bool {
        false
    }

    async fn respond(&self, _: &ResponderInput) -> Result<Vec<OutboundContent>, ResponderError> {
        Err(ResponderError::permanent(self.reason.clone()))
    }
}

fn text(body: String) -> OutboundContent {
    OutboundContent::Text {
        body,
        preview_url: false,
    }
}

/// Asks an external brain over HTTP; see the module docs for the contract.
struct WebhookResponder {
    http: reqwest::Client,
    url: Url,
    secret: SecretString,
    timeout: Duration,
}

impl fmt::Debug for WebhookResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the origin: a URL may carry credentials in its user info or query.
        f.debug_struct("WebhookResponder")
            .field("origin", &self.url.origin().ascii_serialization())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookResponder {
    fn new(settings: &ResponderSettings, http: reqwest::Client) -> Result<Self, String> {
        let raw = settings
            .url
            .as_deref()
            .ok_or("the responder webhook has no URL: set responder.url")?;
        let url = Url::parse(raw)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or("responder.url is not an http(s) URL")?;
        let secret = settings
            .secret
            .clone()
            .filter(|secret| !secret.expose_secret().is_empty())
            .ok_or("the responder webhook has no signing secret: set responder.secret")?;
        let timeout = settings
            .timeout
            .map_or(DEFAULT_TIMEOUT, |secs| Duration::from_secs(secs.max(1)));
        Ok(Self {
            http,
            url,
            secret,
            timeout,
        })
    }

    async fn call(&self, input: &ResponderInput) -> Result<Vec<OutboundContent>, ResponderError> {
        let body = serde_json::to_vec(&WebhookRequest::new(input)).map_err(|_| {
            ResponderError::permanent("the request for the responder webhook could not be encoded")
        })?;
        let timestamp = Utc::now().timestamp();
        let signature = sign(self.secret.expose_secret().as_bytes(), timestamp, &body);
        let response = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, input.message.id.to_string())
            .body(body)
            .send()
            .await
            .map_err(|error| self.transport_error(error))?;
        let status = response.status();
        tracing::debug!(status = status.as_u16(), "the responder webhook answered");
        if !status.is_success() {
            return Err(status_error(status));
        }
        let answer = read_bounded(response).await.map_err(|error| match error {
            ReadError::TooLarge => ResponderError::permanent(format!(
                "the responder webhook answered {status} with more than {} KiB",
                MAX_ANSWER_BYTES / 1024
            )),
            ReadError::Transport(error) => self.transport_error(error),
        })?;
        if status == StatusCode::NO_CONTENT || answer.trim_ascii().is_empty() {
            return Ok(Vec::new());
        }
        parse_answer(&answer).map_err(|reason| {
            ResponderError::permanent(format!(
                "the responder webhook answered {status} with an invalid answer: {reason}"
            ))
        })
    }

    fn transport_error(&self, error: reqwest::Error) -> ResponderError {
        let error = error.without_url();
        tracing::warn!(%error, "the responder webhook request failed");
        if error.is_timeout() {
            ResponderError::transient(format!(
                "the responder webhook did not answer within {} s",
                self.timeout.as_secs()
            ))
        } else if error.is_connect() {
            ResponderError::transient("could not connect to the responder webhook")
        } else if error.is_builder() {
            ResponderError::permanent("the request to the responder webhook could not be built")
        } else if error.is_redirect() {
            ResponderError::permanent("the responder webhook redirected too many times")
        } else {
            ResponderError::transient("the connection to the responder webhook failed")
        }
    }
}

#[async_trait]
impl Responder for WebhookResponder {
    #[tracing::instrument(skip_all, fields(
        business_id = %input.business_id,
        integration_id = %input.integration_id,
        message_id = %input.message.id,
    ))]
    async fn respond(
        &self,
        input: &ResponderInput,
    ) -> Result<Vec<OutboundContent>, ResponderError> {
        self.call(input)
            .await
            .map_err(|error| error.redacted(self.secret.expose_secret()))
    }
}

fn status_error(status: StatusCode) -> ResponderError {
    let message = format!("the responder webhook answered {status}");
    let retryable = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    ResponderError { retryable, message }
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads the answer body, giving up as soon as it exceeds [`MAX_ANSWER_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let announced = response.content_length().unwrap_or(0);
    if usize::try_from(announced).map_or(true, |len| len > MAX_ANSWER_BYTES) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a `2xx` answer body into replies; the error says what is wrong with it.
fn parse_answer(body: &[u8]) -> Result<Vec<OutboundContent>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("not JSON ({error})"))?;
    let Value::Object(mut answer) = value else {
        return Err("not a JSON object".to_owned());
    };
    let reply = answer.remove("reply").filter(|v| !v.is_null());
    let replies = answer.remove("replies").filter(|v| !v.is_null());
    if let Some(field) = answer.keys().next() {
        return Err(format!(
            "unexpected field `{field}` (an answer has `reply` or `replies`)"
        ));
    }
    let specs = match (reply, replies) {
        (Some(_), Some(_)) => return Err("both `reply` and `replies`".to_owned()),
        (Some(reply), None) => vec![reply],
        (None, Some(Value::Array(replies))) => replies,
        (None, Some(_)) => return Err("`replies` is not an array".to_owned()),
        (None, None) => Vec::new(),
    };
    if specs.len() > MAX_REPLIES {
        return Err(format!(
            "{} replies, more than the {MAX_REPLIES} allowed",
            specs.len()
        ));
    }
    let many = specs.len() > 1;
    specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            parse_reply(spec).map_err(|reason| {
                if many {
                    format!("reply {}: {reason}", index + 1)
                } else {
                    reason
                }
            })
        })
        .collect()
}

/// One reply: the `{"text": …}` shorthand or a full `OutboundContent` object.
fn parse_reply(spec: Value) -> Result<OutboundContent, String> {
    let Value::Object(fields) = &spec else {
        return Err("a reply is not a JSON object".to_owned());
    };
    let content = if fields.contains_key("type") {
        serde_json::from_value(spec).map_err(|error| error.to_string())?
    } else {
        match fields.get("text") {
            Some(Value::String(body)) if fields.len() == 1 => text(body.clone()),
            Some(Value::String(_)) => {
                return Err("the `text` shorthand takes no other field".to_owned());
            }
            Some(_) => return Err("`text` is not a string".to_owned()),
            None => return Err("a reply needs `text` or `type`".to_owned()),
        }
    };
    match &content {
        OutboundContent::Text { body, .. } | OutboundContent::Buttons { body, .. }
            if body.trim().is_empty() =>
        {
            Err("the reply text is empty".to_owned())
        }
        _ => Ok(content),
    }
}

/// The request body; its shape is part of the webhook contract (see the module docs), so it is
/// spelled out here instead of serializing the stored types.
#[derive(Serialize)]
struct WebhookRequest<'a> {
    event: &'static str,
    business_id: BusinessId,
    integration_id: IntegrationId,
    channel: &'a str,
    conversation: ConversationView<'a>,
    message: MessageView<'a>,
    context: Vec<MessageView<'a>>,
}

#[derive(Serialize)]
struct ConversationView<'a> {
    id: ConversationId,
    external_chat_id: &'a str,
    contact_name: Option<&'a str>,
}

#[derive(Serialize)]
struct MessageView<'a> {
    id: MessageId,
    provider_message_id: Option<&'a str>,
    direction: &'static str,
    #[serde(rename = "type")]
    kind: &'a str,
    text: Option<&'a str>,
    provider_timestamp: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl<'a> WebhookRequest<'a> {
    fn new(input: &'a ResponderInput) -> Self {
        let earlier: Vec<&Message> = input
            .context
            .iter()
            .filter(|message| message.id != input.message.id)
            .collect();
        let skip = earlier.len().saturating_sub(CONTEXT_LIMIT);
        Self {
            event: "message",
            business_id: input.business_id,
            integration_id: input.integration_id,
            channel: input.channel.as_str(),
            conversation: ConversationView {
                id: input.conversation.id,
                external_chat_id: &input.conversation.external_chat_id,
                contact_name: input.conversation.contact_name.as_deref(),
            },
            message: MessageView::new(&input.message),
            context: earlier[skip..]
                .iter()
                .map(|m| MessageView::new(m))
                .collect(),
        }
    }
}

impl<'a> MessageView<'a> {
    fn new(message: &'a Message) -> Self {
        Self {
            id: message.id,
            provider_message_id: message.provider_message_id.as_deref(),
            direction: message.direction.as_str(),
            kind: message.kind.as_str(),
            text: message.text.as_deref(),
            provider_timestamp: message.provider_timestamp,
            created_at: message.created_at,
        }
    }
}

#[cfg(test)]
mod tests;
