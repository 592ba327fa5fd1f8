//! Simulated customer messages: builds the `messages` webhook Meta would send for a customer
//! writing to one of the seeded numbers, opens that customer's 24-hour window, and delivers it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::state::{Shared, State};

/// A customer message to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedInbound {
    /// The business number written to; the first seeded number when absent.
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// The customer's `wa_id` (digits). May be absent when only `user_id` is given.
    #[serde(default)]
    pub from: Option<String>,
    /// The customer's profile name.
    #[serde(default)]
    pub name: Option<String>,
    /// A business-scoped user id (`US.134…`).
    #[serde(default)]
    pub user_id: Option<String>,
    pub content: SimulatedContent,
}

/// What the customer sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SimulatedContent {
    Text {
        body: String,
    },
    Image {
        caption: Option<String>,
    },
    Audio {
        voice: bool,
    },
    Video {
        caption: Option<String>,
    },
    Document {
        filename: String,
        caption: Option<String>,
    },
    Sticker,
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    Reaction {
        message_id: String,
        emoji: String,
    },
    ButtonReply {
        id: String,
        title: String,
    },
    /// Any message object; `from`, `id` and `timestamp` are filled in when absent.
    Raw {
        message: Value,
    },
}

/// What happened to a simulated message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundReceipt {
    pub message_id: String,
    pub phone_number_id: String,
    /// HTTP status of the first delivery attempt; `None` when not delivered (no target, not
    /// subscribed, or batched).
    pub delivery_status: Option<u16>,
}

/// Simulates one customer message.
///
/// # Errors
/// When the phone number is not seeded or no sender is given.
pub(crate) async fn simulate(
    inner: &Shared,
    spec: SimulatedInbound,
) -> Result<InboundReceipt, String> {
    let (waba, change, receipt) = build(inner, &spec)?;
    let status = super::delivery::deliver_change(inner, &waba, change).await;
    Ok(InboundReceipt {
        delivery_status: status,
        ..receipt
    })
}

fn build(
    inner: &Shared,
    spec: &SimulatedInbound,
) -> Result<(String, Value, InboundReceipt), String> {
    if spec.from.is_none() && spec.user_id.is_none() {
        return Err("give `from` (wa_id) or `user_id`".to_owned());
    }
    let mut st = inner.lock();
    let (phone_id, waba_id, display) = resolve_phone(&st, spec.phone_number_id.as_deref())?;
    let (n, now) = (st.next(), st.now());
    let mut message = content(&spec.content);
    strip_nulls(&mut message);
    if message.get("id").is_none() {
        let from = spec.from.as_deref().unwrap_or_default();
        message["id"] = json!(format!("wamid.HBgL{from}FQIAEhgU{n:016X}"));
    }
    message["timestamp"] = json!(now.to_string());
    if let Some(from) = &spec.from {
        message["from"] = json!(from);
        st.windows.insert((phone_id.clone(), from.clone()), now);
    }
    if let Some(user_id) = &spec.user_id {
        message["from_user_id"] = json!(user_id);
    }
    let receipt = InboundReceipt {
        message_id: message["id"].as_str().unwrap_or_default().to_owned(),
        phone_number_id: phone_id.clone(),
        delivery_status: None,
    };
    let metadata = json!({"display_phone_number": display, "phone_number_id": phone_id});
    let value = json!({"messaging_product": "whatsapp", "metadata": metadata, "contacts": [contact(spec)], "messages": [message]});
    Ok((
        waba_id,
        json!({"value": value, "field": "messages"}),
        receipt,
    ))
}

/// (phone number id, WABA id, display number) of the addressed (or first seeded) number.
fn resolve_phone(st: &State, wanted: Option<&str>) -> Result<(String, String, String), String> {
    let phone_id = match wanted {
        Some(id) => id.to_owned(),
        None => st
            .seed
            .wabas()
            .find_map(|(_, w)| w.phone_numbers.first())
            .map(|p| p.id.clone())
            .ok_or("no phone number is seeded")?,
    };
    let (waba, phone) = st
        .seed
        .phone(&phone_id)
        .ok_or_else(|| format!("phone number {phone_id} is not seeded"))?;
    Ok((
        phone_id.clone(),
        waba.id.clone(),
        phone.display_phone_number.clone(),
    ))
}

/// The `contacts[]` entry: profile name, `wa_id` and/or business-scoped `user_id`.
fn contact(spec: &SimulatedInbound) -> Value {
    let name = spec.name.clone().unwrap_or_else(|| "Customer".to_owned());
    let mut contact = json!({"profile": {"name": name}});
    if let Some(from) = &spec.from {
        contact["wa_id"] = json!(from);
    }
    if let Some(user_id) = &spec.user_id {
        contact["user_id"] = json!(user_id);
    }
    contact
}

/// Meta leaves absent fields out rather than sending `null`.
fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

fn media_id() -> String {
    "1003383421387256".to_owned()
}

fn content(content: &SimulatedContent) -> Value {
    let sha = "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=";
    match content {
        SimulatedContent::Text { body } => json!({"type": "text", "text": {"body": body}}),
        SimulatedContent::Image { caption } => {
            json!({"type": "image", "image": {"caption": caption, "mime_type": "image/jpeg", "sha256": sha, "id": media_id()}})
        }
        SimulatedContent::Audio { voice } => {
            json!({"type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": sha, "id": media_id(), "voice": voice}})
        }
        SimulatedContent::Video { caption } => {
            json!({"type": "video", "video": {"caption": caption, "mime_type": "video/mp4", "sha256": sha, "id": media_id()}})
        }
        SimulatedContent::Document { filename, caption } => {
            json!({"type": "document", "document": {"caption": caption, "filename": filename, "mime_type": "application/pdf", "sha256": sha, "id": media_id()}})
        }
        SimulatedContent::Sticker => {
            json!({"type": "sticker", "sticker": {"mime_type": "image/webp", "sha256": sha, "id": media_id(), "animated": false}})
        }
        SimulatedContent::Location {
            latitude,
            longitude,
            name,
            address,
        } => {
            json!({"type": "location", "location": {"latitude": latitude, "longitude": longitude, "name": name, "address": address}})
        }
        SimulatedContent::Reaction { message_id, emoji } => {
            json!({"type": "reaction", "reaction": {"message_id": message_id, "emoji": emoji}})
        }
        SimulatedContent::ButtonReply { id, title } => {
            json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": id, "title": title}}})
        }
        SimulatedContent::Raw { message } => message.clone(),
    }
}
