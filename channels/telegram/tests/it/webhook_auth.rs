//! Authenticating webhook requests by the secret header, before any parsing.

use http::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use switchboard_core::ChannelAdapter;
use switchboard_core::adapter::WebhookAuth;
use switchboard_core::error::WebhookRejection;

fn adapter() -> switchboard_telegram::TelegramAdapter {
    switchboard_telegram::TelegramAdapter::new(
        switchboard_telegram::TelegramConfig::default(),
        &crate::support::services("https://gw.example.com"),
    )
}

fn headers(value: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-Telegram-Bot-Api-Secret-Token",
        HeaderValue::from_bytes(value).unwrap(),
    );
    headers
}

#[test]
fn a_request_without_the_secret_header_is_missing() {
    let err = adapter()
        .authenticate_webhook(&HeaderMap::new(), b"{}")
        .unwrap_err();
    assert!(matches!(err, WebhookRejection::Missing(_)));
}

#[test]
fn a_malformed_secret_is_invalid() {
    for bad in [
        &b""[..],
        b"has space",
        b"plus+",
        &[b'a'; 257],
        &[0xC3, 0xA9],
    ] {
        let err = adapter()
            .authenticate_webhook(&headers(bad), b"{}")
            .unwrap_err();
        assert!(matches!(err, WebhookRejection::Invalid(_)), "{bad:?}");
    }
}

#[test]
fn a_well_formed_secret_is_handed_to_the_gateway_for_lookup() {
    let auth = adapter()
        .authenticate_webhook(&headers(b"abc_DEF-123"), b"not even json")
        .unwrap();
    let WebhookAuth::PerIntegrationSecret(secret) = auth else {
        panic!("{auth:?}")
    };
    assert_eq!(secret.expose_secret(), "abc_DEF-123");
}

#[test]
fn the_adapter_describes_itself_as_a_token_channel_without_templates() {
    let adapter = adapter();
    let d = adapter.descriptor();
    assert_eq!(
        (d.name.as_str(), d.display_name.as_str()),
        ("telegram", "Telegram")
    );
    assert_eq!(d.connect_kind, switchboard_core::ConnectKind::Token);
    assert!(d.capabilities.media && d.capabilities.groups);
    assert!(!d.capabilities.templates && !d.capabilities.read_receipts);
    assert_eq!(d.capabilities.reply_window, None);
    assert_eq!(
        adapter.webhook_url(),
        "https://gw.example.com/api/webhooks/telegram"
    );
}

#[test]
fn the_crate_registers_itself_as_telegram_and_builds_from_config() {
    let regs = switchboard_core::Registry::registrations().unwrap();
    let reg = regs
        .iter()
        .find(|r| r.name == "telegram")
        .expect("registered");
    let config = switchboard_core::registry::ChannelConfig {
        name: "telegram".into(),
        section: serde_json::json!({"enabled": true, "api_base_url": "ftp://x"}),
    };
    let err =
        (reg.build)(&config, &crate::support::services("https://gw.example.com")).unwrap_err();
    assert_eq!(err.key, "channels.telegram.api_base_url");
    let config = switchboard_core::registry::ChannelConfig {
        name: "telegram".into(),
        section: serde_json::json!({"enabled": true}),
    };
    let built = (reg.build)(&config, &crate::support::services("https://gw.example.com")).unwrap();
    assert_eq!(built.descriptor().name.as_str(), "telegram");
}

#[test]
fn a_rejection_hint_names_set_webhook_and_negative_chat_ids_are_groups() {
    let adapter = adapter();
    assert!(adapter.webhook_auth_hint().contains("setWebhook"));
    assert!(adapter.is_group_chat("-1001234567890"));
    assert!(adapter.is_group_chat("-4242"));
    assert!(!adapter.is_group_chat("123456789"));
}
