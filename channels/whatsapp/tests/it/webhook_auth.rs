//! Webhook authentication over the exact raw bytes, and the verification GET.

use http::{HeaderMap, HeaderValue};
use switchboard_core::adapter::WebhookAuth;
use switchboard_core::crypto::hmac_sha256;
use switchboard_core::error::WebhookRejection;

use crate::support::{APP_SECRET, VERIFY_TOKEN, fixture, offline_adapter};

fn signed(body: &[u8], secret: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let sig = format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    );
    headers.insert("X-Hub-Signature-256", HeaderValue::from_str(&sig).unwrap());
    headers
}

#[test]
fn a_body_signed_with_the_app_secret_is_verified() {
    let body = fixture("meta-openapi__msg-text.json");
    let auth = offline_adapter().authenticate_webhook(&signed(&body, APP_SECRET), &body);
    assert!(matches!(auth, Ok(WebhookAuth::Verified)));
}

#[test]
fn a_signature_made_with_another_secret_is_invalid() {
    let body = fixture("meta-openapi__msg-text.json");
    let auth = offline_adapter().authenticate_webhook(&signed(&body, "another-secret"), &body);
    assert_eq!(
        auth.unwrap_err(),
        WebhookRejection::Invalid("X-Hub-Signature-256")
    );
}

#[test]
fn a_missing_signature_header_is_reported_as_missing() {
    let body = fixture("meta-openapi__msg-text.json");
    let auth = offline_adapter().authenticate_webhook(&HeaderMap::new(), &body);
    assert_eq!(
        auth.unwrap_err(),
        WebhookRejection::Missing("X-Hub-Signature-256")
    );
}

#[test]
fn malformed_signature_headers_are_invalid() {
    let body = b"{}";
    for value in [
        "md5=abcd",
        "sha256=not-hex",
        "sha256=",
        "abcdef",
        "sha256=abcd",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("x-hub-signature-256", HeaderValue::from_static(value));
        let auth = offline_adapter().authenticate_webhook(&headers, body);
        assert_eq!(
            auth.unwrap_err(),
            WebhookRejection::Invalid("X-Hub-Signature-256"),
            "{value}"
        );
    }
}

#[test]
fn a_body_with_escaped_unicode_is_verified_over_its_exact_bytes_and_parses_to_the_real_text() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"pn"},"messages":[{"from":"33612345678","id":"wamid.u","timestamp":"1700000000","type":"text","text":{"body":"J'ai mang\u00e9 des p\u00e2tes \ud83c\udf5d @ https:\/\/x.fr"}}]}}]}]}"#;
    let adapter = offline_adapter();
    assert!(
        adapter
            .authenticate_webhook(&signed(body, APP_SECRET), body)
            .is_ok()
    );
    let events = adapter.parse_webhook(body).unwrap();
    let switchboard_core::domain::InboundEvent::Message(m) = &events[0] else {
        panic!()
    };
    assert_eq!(
        m.text.as_deref(),
        Some("J'ai mangé des pâtes 🍝 @ https://x.fr")
    );
}

#[test]
fn a_re_serialized_body_no_longer_matches_the_signature() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"text":{"body":"caf\u00e9 https:\/\/a.b"}}]}}]}]}"#;
    let headers = signed(body, APP_SECRET);
    let reserialized = serde_json::from_slice::<serde_json::Value>(body)
        .unwrap()
        .to_string();
    assert_ne!(reserialized.as_bytes(), body.as_slice());
    let auth = offline_adapter().authenticate_webhook(&headers, reserialized.as_bytes());
    assert_eq!(
        auth.unwrap_err(),
        WebhookRejection::Invalid("X-Hub-Signature-256")
    );
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn verification_with_the_right_token_echoes_the_raw_challenge() {
    let q = query(&[
        ("hub.mode", "subscribe"),
        ("hub.challenge", "1158201444"),
        ("hub.verify_token", VERIFY_TOKEN),
    ]);
    assert_eq!(
        offline_adapter().verify_subscription(&q).as_deref(),
        Some("1158201444")
    );
}

#[test]
fn verification_with_a_wrong_token_or_mode_or_nothing_is_refused() {
    let adapter = offline_adapter();
    for q in [
        query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "1"),
            ("hub.verify_token", "wrong"),
        ]),
        query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "1"),
            ("hub.verify_token", &format!("{VERIFY_TOKEN}x")),
        ]),
        query(&[
            ("hub.mode", "unsubscribe"),
            ("hub.challenge", "1"),
            ("hub.verify_token", VERIFY_TOKEN),
        ]),
        query(&[("hub.mode", "subscribe"), ("hub.challenge", "1")]),
        query(&[]),
    ] {
        assert_eq!(adapter.verify_subscription(&q), None, "{q:?}");
    }
}

#[test]
fn a_rejection_hint_names_the_app_secret_setting_and_no_chat_is_a_group() {
    let adapter = offline_adapter();
    assert!(
        adapter
            .webhook_auth_hint()
            .contains("channels.whatsapp.app_secret")
    );
    assert!(!adapter.is_group_chat("15551234567"));
}
