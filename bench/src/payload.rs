//! Signed WhatsApp webhook bodies, one text message each, with a unique message id and a
//! unique sender per index.
//!
//! The body is built once per business number as Meta sends it (`meta_json`), with fixed-width
//! placeholders where the index goes; a request then costs one copy, ten digits written into
//! each slot and one HMAC-SHA256 from a pre-keyed state. No JSON is serialised while the load
//! runs.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use switchboard_whatsapp::emulator::meta_json;

/// Where an index goes: ten digits, zero-padded.
const SLOT: &[u8] = b"9999999999";
/// Senders are `1555` followed by the ten digits of the index.
const SENDER_PREFIX: &str = "1555";

/// One business number's template.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    slots: Vec<usize>,
}

/// Builds signed bodies for message indexes.
#[derive(Debug, Clone)]
pub struct Payloads {
    templates: Vec<Template>,
    keyed: Hmac<Sha256>,
}

impl Payloads {
    /// Bodies from senders to the numbers `phone_number_ids` (round-robin by index) of the
    /// WABA `waba_id`, signed with `app_secret`.
    pub fn new(waba_id: &str, phone_number_ids: &[String], app_secret: &str) -> Self {
        let templates = phone_number_ids
            .iter()
            .map(|phone| template(waba_id, phone))
            .collect();
        let keyed = Hmac::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key");
        Self { templates, keyed }
    }

    /// The body of message `n` and its `X-Hub-Signature-256` value.
    pub fn signed(&self, n: u64) -> (Bytes, String) {
        let index = usize::try_from(n).unwrap_or(usize::MAX);
        let template = &self.templates[index % self.templates.len()];
        let mut body = template.bytes.clone();
        let digits = format!("{n:010}");
        for &at in &template.slots {
            body[at..at + SLOT.len()].copy_from_slice(digits.as_bytes());
        }
        let mut mac = self.keyed.clone();
        mac.update(&body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        (Bytes::from(body), signature)
    }
}

/// The message index a reply went to, from the recipient's digits.
pub fn index_of_recipient(to: &str) -> Option<u64> {
    let digits: String = to.chars().filter(char::is_ascii_digit).collect();
    digits.strip_prefix(SENDER_PREFIX)?.parse().ok()
}

fn template(waba_id: &str, phone_number_id: &str) -> Template {
    let slot = std::str::from_utf8(SLOT).expect("ASCII");
    let from = format!("{SENDER_PREFIX}{slot}");
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": format!("Customer {slot}")}, "wa_id": from}],
            "messages": [{
                "from": from,
                "id": format!("wamid.bench.{slot}"),
                "timestamp": chrono::Utc::now().timestamp().to_string(),
                "type": "text",
                "text": {"body": format!("Hello, is order {slot} ready?")}
            }]
        }}]}]
    });
    let bytes = meta_json(&body).into_bytes();
    let slots = bytes
        .windows(SLOT.len())
        .enumerate()
        .filter(|(_, window)| *window == SLOT)
        .map(|(at, _)| at)
        .collect();
    Template { bytes, slots }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_index_gets_its_own_id_and_sender_and_a_valid_signature() {
        let payloads = Payloads::new("1", &["106540352242922".to_owned()], "secret");
        let (body, signature) = payloads.signed(42);
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains("wamid.bench.0000000042"), "{text}");
        assert!(text.contains("\"from\":\"15550000000042\""), "{text}");
        assert!(!text.contains("9999999999"), "{text}");
        let expected = switchboard_whatsapp::emulator::signature("secret", &body);
        assert_eq!(signature, expected);
        assert_eq!(index_of_recipient("+15550000000042"), Some(42));
    }
}
