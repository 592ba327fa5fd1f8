//! Normalized domain types: what the gateway stores and reasons about, whatever the provider.
//!
//! Adapters translate provider payloads into these types (inbound) and these types into
//! provider requests (outbound). Anything a provider sends that has no field here is kept in a
//! `raw` JSON value, so nothing a provider says is ever lost in translation.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BusinessId, ChannelName, IntegrationId};

/// Lifecycle state of an integration, as shown in the status object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationState {
    NotConnected,
    Connected,
    NeedsReauth,
    Error,
}

impl IntegrationState {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotConnected => "not_connected",
            Self::Connected => "connected",
            Self::NeedsReauth => "needs_reauth",
            Self::Error => "error",
        }
    }

    /// Parses the stored form.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "not_connected" => Self::NotConnected,
            "connected" => Self::Connected,
            "needs_reauth" => Self::NeedsReauth,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// An integration as stored: one business's connection to one channel account.
///
/// Credentials are not part of it; they are fetched (and decrypted) only where a provider call
/// needs them, see [`crate::adapter::IntegrationContext`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Integration {
    pub id: IntegrationId,
    pub business_id: BusinessId,
    pub channel: ChannelName,
    /// Human label of the account (verified name, bot username).
    pub channel_name: Option<String>,
    /// The provider account the gateway routes by: a WhatsApp phone number id, a Telegram bot id.
    pub account_id: Option<String>,
    /// The account's parent at the provider: a WhatsApp Business Account id.
    pub parent_account_id: Option<String>,
    pub is_active: bool,
    pub state: IntegrationState,
    pub state_reason: Option<String>,
    /// Non-secret account details the adapter wants to show (number, verified name, username).
    pub details: serde_json::Value,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub last_webhook_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What kind of chat a conversation is with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    #[default]
    Direct,
    Group,
    Channel,
}

/// The external chat an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRef {
    /// The provider's chat id as a string (WhatsApp `wa_id` or `user_id`, Telegram chat id).
    /// Telegram ids are 64-bit and negative for groups; a string keeps them exact.
    pub external_id: String,
    pub kind: ChatKind,
    pub title: Option<String>,
}

/// The person (or bot, or channel) an inbound message comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Contact {
    /// The provider's address for replying (WhatsApp `wa_id`, Telegram user id).
    pub external_id: Option<String>,
    /// A provider-scoped user id kept beside the address (WhatsApp business-scoped `user_id`).
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub username: Option<String>,
    pub is_bot: bool,
}

/// The type of a message. Unknown provider types are kept by name in [`MessageKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    Audio,
    Voice,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    /// A reply to interactive content: a button, a list row, a flow, a callback query.
    Interactive,
    /// A quick-reply button of a template.
    Button,
    Reaction,
    Order,
    System,
    /// A change of an earlier message.
    Edit,
    /// A deletion (revoke) of an earlier message.
    Delete,
    /// The provider says it could not deliver the content to the gateway.
    Unsupported,
    Template,
    /// A kind this version does not know; the provider's name for it.
    Other(String),
}

impl MessageKind {
    /// The stored name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
            Self::Location => "location",
            Self::Contacts => "contacts",
            Self::Interactive => "interactive",
            Self::Button => "button",
            Self::Reaction => "reaction",
            Self::Order => "order",
            Self::System => "system",
            Self::Edit => "edit",
            Self::Delete => "delete",
            Self::Unsupported => "unsupported",
            Self::Template => "template",
            Self::Other(name) => name,
        }
    }

    /// Parses the stored name; anything unknown is [`MessageKind::Other`].
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        match raw {
            "text" => Self::Text,
            "image" => Self::Image,
            "audio" => Self::Audio,
            "voice" => Self::Voice,
            "video" => Self::Video,
            "document" => Self::Document,
            "sticker" => Self::Sticker,
            "location" => Self::Location,
            "contacts" => Self::Contacts,
            "interactive" => Self::Interactive,
            "button" => Self::Button,
            "reaction" => Self::Reaction,
            "order" => Self::Order,
            "system" => Self::System,
            "edit" => Self::Edit,
            "delete" => Self::Delete,
            "unsupported" => Self::Unsupported,
            "template" => Self::Template,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether an automated responder may answer a message of this kind:
    /// content from people, not reactions, edits, deletions or system notices.
    #[must_use]
    pub fn is_answerable(&self) -> bool {
        matches!(
            self,
            Self::Text
                | Self::Image
                | Self::Audio
                | Self::Voice
                | Self::Video
                | Self::Document
                | Self::Sticker
                | Self::Location
                | Self::Contacts
                | Self::Interactive
                | Self::Button
                | Self::Order
        )
    }
}

/// A reference to media held by the provider; the gateway stores the reference, not the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MediaRef {
    /// The provider's media id (WhatsApp media id, Telegram `file_id`).
    pub id: Option<String>,
    pub url: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub filename: Option<String>,
    pub size: Option<u64>,
}

/// A message received from a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The integration account it arrived on (phone number id, bot id).
    pub account_id: String,
    /// The provider's id for this message, unique per integration and stable across redelivery.
    pub provider_message_id: String,
    pub chat: ChatRef,
    pub sender: Contact,
    pub kind: MessageKind,
    /// Text, caption, button title, or the emoji of a reaction.
    pub text: Option<String>,
    pub media: Option<MediaRef>,
    /// The provider message id this one replies to, reacts to, edits or deletes.
    pub reply_to: Option<String>,
    /// Topic / thread inside a chat (Telegram forum topics).
    pub thread_id: Option<String>,
    /// When the provider says the message was sent.
    pub timestamp: DateTime<Utc>,
    /// In groups, whether the message mentions or replies to the business's bot; `true` in
    /// direct chats. The responder only answers addressed messages.
    pub addressed_to_us: bool,
    /// The provider's representation of the message, kept whole.
    pub raw: serde_json::Value,
}

impl InboundMessage {
    /// Whether the automated responder should answer this message.
    #[must_use]
    pub fn wants_reply(&self) -> bool {
        self.kind.is_answerable() && self.addressed_to_us && !self.sender.is_bot
    }
}

/// Delivery state of an outbound message, ordered by progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored, waiting in the outbox.
    Queued,
    /// Sent to the provider, outcome not known (timeout after the request left).
    Uncertain,
    /// Accepted by the provider.
    Sent,
    Delivered,
    Read,
    /// Voice message played (WhatsApp).
    Played,
    /// Final failure.
    Failed,
}

impl DeliveryStatus {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Uncertain => "uncertain",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => Self::Queued,
            "uncertain" => Self::Uncertain,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A provider's report on an outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub account_id: String,
    pub provider_message_id: String,
    pub status: DeliveryStatus,
    pub timestamp: DateTime<Utc>,
    /// The recipient's address, when the provider says it.
    pub recipient: Option<String>,
    /// Provider error code and human reason, for `failed`.
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    /// The gateway's reference the provider echoed back ([`OutboundMessage::reference`]).
    #[serde(default)]
    pub reference: Option<String>,
    pub raw: serde_json::Value,
}

/// Something about the account rather than one message: a bot blocked by a user, a template
/// approved, a quality rating change, a webhook-level error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// The integration account, when the event names one.
    pub account_id: Option<String>,
    /// A stable snake_case name: `bot_blocked`, `bot_unblocked`, `template_status`,
    /// `phone_quality`, `account_update`, `webhook_error`, or the provider's field name.
    pub kind: String,
    /// The chat concerned, if any (a user who blocked the bot).
    pub chat_id: Option<String>,
    pub summary: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub raw: serde_json::Value,
}

/// One normalized event parsed from a webhook body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum InboundEvent {
    Message(Box<InboundMessage>),
    Status(StatusUpdate),
    Account(AccountEvent),
}

impl InboundEvent {
    /// The integration account the event is for, used to route it.
    #[must_use]
    pub fn account_id(&self) -> Option<&str> {
        match self {
            Self::Message(m) => Some(&m.account_id),
            Self::Status(s) => Some(&s.account_id),
            Self::Account(a) => a.account_id.as_deref(),
        }
    }
}

/// What to send. Adapters refuse what their channel cannot carry with a permanent failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundContent {
    Text {
        body: String,
        #[serde(default)]
        preview_url: bool,
    },
    Template {
        name: String,
        language: String,
        #[serde(default)]
        components: Vec<serde_json::Value>,
    },
    Media {
        kind: MediaKind,
        /// A link the provider fetches, or a provider media id.
        #[serde(flatten)]
        source: MediaSource,
        caption: Option<String>,
        filename: Option<String>,
    },
    /// Up to three reply buttons under a text.
    Buttons {
        body: String,
        buttons: Vec<ReplyButton>,
    },
    Reaction {
        /// The provider message id reacted to.
        message_id: String,
        emoji: String,
    },
    /// Mark an inbound message read (WhatsApp blue ticks).
    MarkRead { message_id: String },
    /// A "typing…" style indicator (Telegram `sendChatAction`).
    ChatAction { action: String },
}

impl OutboundContent {
    /// Whether this content may be sent outside a reply window (templates may).
    #[must_use]
    pub const fn is_template(&self) -> bool {
        matches!(self, Self::Template { .. })
    }

    /// The stored message type.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text { .. } | Self::Buttons { .. } => MessageKind::Text,
            Self::Template { .. } => MessageKind::Template,
            Self::Media { kind, .. } => match kind {
                MediaKind::Image => MessageKind::Image,
                MediaKind::Audio => MessageKind::Audio,
                MediaKind::Video => MessageKind::Video,
                MediaKind::Document => MessageKind::Document,
                MediaKind::Sticker => MessageKind::Sticker,
            },
            Self::Reaction { .. } => MessageKind::Reaction,
            Self::MarkRead { .. } | Self::ChatAction { .. } => MessageKind::System,
        }
    }

    /// The text stored for display.
    #[must_use]
    pub fn display_text(&self) -> Option<String> {
        match self {
            Self::Text { body, .. } | Self::Buttons { body, .. } => Some(body.clone()),
            Self::Template { name, .. } => Some(format!("[template {name}]")),
            Self::Media { caption, .. } => caption.clone(),
            Self::Reaction { emoji, .. } => Some(emoji.clone()),
            Self::MarkRead { .. } | Self::ChatAction { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    Link(String),
    Id(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

/// An outbound message addressed to one chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The chat's external id (WhatsApp `wa_id`, Telegram chat id).
    pub to: String,
    pub content: OutboundContent,
    /// Provider message id this answers (quoted reply).
    pub reply_to: Option<String>,
    /// Topic inside a chat (Telegram forum topics).
    pub thread_id: Option<String>,
    /// The gateway's id for this message, for providers that echo one back in their status
    /// reports (WhatsApp `biz_opaque_callback_data`), so an uncertain send can be reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// The provider's acknowledgement of a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// Provider message ids; more than one when a long text was split.
    pub provider_message_ids: Vec<String>,
}

/// How a failed send should be treated. Classified by the adapter from the provider's error
/// body (never from the HTTP status alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum FailureClass {
    /// Try again later; `after` is the provider's hint when it gave one. `per_recipient` when
    /// only this recipient is limited (WhatsApp 131056), not the whole integration.
    Retry {
        after: Option<Duration>,
        per_recipient: bool,
    },
    /// The token is invalid or revoked: mark the integration `needs_reauth` and hold its queue.
    NeedsReauth,
    /// WhatsApp's 24-hour customer service window is closed: only templates may be sent.
    WindowClosed,
    /// The recipient cannot be reached any more (blocked the bot, left the chat).
    Unreachable,
    /// The chat moved (Telegram group upgraded to a supergroup): resend to the new id.
    ChatMigrated { to: String },
    /// The request may have reached the provider but its outcome is unknown: never resend
    /// blindly; wait for a status webhook.
    Uncertain,
    /// Final; the reason says why.
    Permanent,
}

/// A failed send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{class:?}: {code}: {reason}")]
pub struct SendFailure {
    #[serde(flatten)]
    pub class: FailureClass,
    /// The provider's error code (`131047`, `429`) or a gateway code (`timeout`).
    pub code: String,
    /// Human-readable reason, safe to show to the business (never contains secrets).
    pub reason: String,
}

impl SendFailure {
    #[must_use]
    pub fn new(class: FailureClass, code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            class,
            code: code.into(),
            reason: reason.into(),
        }
    }

    #[must_use]
    pub fn permanent(code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(FailureClass::Permanent, code, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_status_orders_by_progress() {
        assert!(DeliveryStatus::Read > DeliveryStatus::Delivered);
        assert!(DeliveryStatus::Delivered > DeliveryStatus::Sent);
        assert!(DeliveryStatus::Sent > DeliveryStatus::Queued);
    }

    #[test]
    fn message_kind_round_trips_including_unknown() {
        for name in ["text", "voice", "order", "edit", "poll_vote_2027"] {
            assert_eq!(MessageKind::parse(name).as_str(), name);
        }
        assert_eq!(
            MessageKind::parse("poll_vote_2027"),
            MessageKind::Other("poll_vote_2027".into())
        );
    }

    #[test]
    fn outbound_content_has_a_stable_json_shape() {
        let content: OutboundContent =
            serde_json::from_str(r#"{"type":"text","body":"hi"}"#).unwrap();
        assert_eq!(
            content,
            OutboundContent::Text {
                body: "hi".into(),
                preview_url: false
            }
        );
        let media: OutboundContent = serde_json::from_str(
            r#"{"type":"media","kind":"image","link":"https://x/y.png","caption":"c","filename":null}"#,
        )
        .unwrap();
        assert!(matches!(
            media,
            OutboundContent::Media {
                source: MediaSource::Link(_),
                ..
            }
        ));
    }
}

/// Text as every store can keep it: NUL characters, which JSON allows (`\u0000`) and
/// PostgreSQL refuses in text and JSONB, become U+FFFD. Without this a message carrying one
/// could never be stored, and would hold up the messages delivered with it.
#[must_use]
pub fn storable_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// [`storable_text`] for every string (keys included) of a JSON value.
pub fn make_storable(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) if text.contains('\0') => *text = text.replace('\0', "\u{fffd}"),
        Value::Array(items) => items.iter_mut().for_each(make_storable),
        Value::Object(map) if map.keys().any(|k| k.contains('\0')) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                make_storable(&mut item);
                map.insert(storable_text(&key).into_owned(), item);
            }
        }
        Value::Object(map) => map.values_mut().for_each(make_storable),
        _ => {}
    }
}

#[cfg(test)]
mod storable_tests {
    use super::{make_storable, storable_text};

    #[test]
    fn nul_characters_become_replacement_characters_everywhere() {
        assert_eq!(storable_text("a\0b\0"), "a\u{fffd}b\u{fffd}");
        assert!(matches!(
            storable_text("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
        let mut value = serde_json::json!({
            "text": "x\u{0}y",
            "list": ["\u{0}", 1, {"k\u{0}": "v\u{0}"}],
            "n": null,
        });
        make_storable(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "text": "x\u{fffd}y",
                "list": ["\u{fffd}", 1, {"k\u{fffd}": "v\u{fffd}"}],
                "n": null,
            })
        );
    }
}
