//! Building the adapter from `channels.whatsapp`: defaults, errors naming full keys, the
//! descriptor and the consent URL.

use serde_json::json;
use switchboard_core::adapter::ConnectKind;
use switchboard_core::registry::ChannelConfig;

use crate::support::{APP_ID, offline_adapter, section, services};

fn build(
    section: serde_json::Value,
) -> Result<switchboard_whatsapp::WhatsAppConfig, switchboard_core::error::ConfigError> {
    switchboard_whatsapp::WhatsAppConfig::from_channel_config(
        &ChannelConfig {
            name: "whatsapp".into(),
            section,
        },
        &services(),
    )
}

#[test]
fn defaults_fill_redirect_uri_hosts_version_and_scopes() {
    let cfg =
        build(json!({"enabled": true, "app_id": "1", "app_secret": "s", "verify_token": "v"}))
            .unwrap();
    assert_eq!(
        cfg.redirect_uri.as_str(),
        "https://gw.example.com/api/integrations/whatsapp/callback"
    );
    assert_eq!(cfg.graph_base_url.as_str(), "https://graph.facebook.com/");
    assert_eq!(cfg.dialog_base_url.as_str(), "https://www.facebook.com/");
    assert_eq!(cfg.graph_version, "v26.0");
    assert_eq!(
        cfg.scopes,
        [
            "whatsapp_business_management",
            "whatsapp_business_messaging",
            "business_management"
        ]
    );
    assert_eq!(cfg.config_id, None);
}

#[test]
fn missing_or_empty_secrets_name_the_full_key() {
    let err = build(json!({"app_id": "1", "verify_token": "v"})).unwrap_err();
    assert_eq!(err.key, "channels.whatsapp.app_secret");
    let err = build(json!({"app_id": "1", "app_secret": " ", "verify_token": "v"})).unwrap_err();
    assert_eq!(err.key, "channels.whatsapp.app_secret");
    let err = build(json!({"app_id": "1", "app_secret": "s", "verify_token": ""})).unwrap_err();
    assert_eq!(err.key, "channels.whatsapp.verify_token");
    let err = build(json!({"app_secret": "s", "verify_token": "v"})).unwrap_err();
    assert_eq!(err.key, "channels.whatsapp.app_id");
}

#[test]
fn malformed_urls_and_versions_name_the_full_key() {
    let base = json!({"app_id": "1", "app_secret": "s", "verify_token": "v"});
    for (field, value) in [
        ("graph_base_url", "graph.facebook.com"),
        ("dialog_base_url", "ftp://x"),
        ("redirect_uri", "::"),
        ("graph_version", "25.0"),
    ] {
        let mut section = base.clone();
        section[field] = json!(value);
        assert_eq!(
            build(section).unwrap_err().key,
            format!("channels.whatsapp.{field}"),
            "{field}"
        );
    }
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let cfg = build(section("http://127.0.0.1:9")).unwrap();
    let debug = format!("{cfg:?}");
    assert!(
        !debug.contains(crate::support::APP_SECRET)
            && !debug.contains(crate::support::VERIFY_TOKEN)
    );
}

#[test]
fn the_descriptor_says_oauth_with_media_templates_receipts_and_a_24_hour_window() {
    let adapter = offline_adapter();
    let d = adapter.descriptor();
    assert_eq!(
        (d.name.as_str(), d.display_name.as_str(), d.connect_kind),
        ("whatsapp", "WhatsApp", ConnectKind::Oauth)
    );
    assert!(
        d.capabilities.media
            && d.capabilities.templates
            && d.capabilities.read_receipts
            && d.capabilities.account_choice
    );
    assert_eq!(d.capabilities.reply_window.unwrap().as_secs(), 86_400);
}

#[test]
fn rate_limits_follow_metas_throughput_and_pair_rate() {
    let limits = offline_adapter().rate_limits();
    let account = limits.per_account.unwrap();
    assert_eq!((account.count, account.per.as_secs()), (80, 1));
    let chat = limits.per_chat.unwrap();
    assert_eq!((chat.interval().as_secs(), chat.burst), (6, 45));
}

#[test]
fn the_authorize_url_carries_client_redirect_state_scope_and_response_type() {
    let url = offline_adapter().authorize_url("st@te/1").unwrap();
    assert_eq!(url.path(), "/v26.0/dialog/oauth");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], APP_ID);
    assert_eq!(
        q["redirect_uri"],
        "https://gw.example.com/api/integrations/whatsapp/callback"
    );
    assert_eq!(q["state"], "st@te/1");
    assert_eq!(q["response_type"], "code");
    assert_eq!(
        q["scope"],
        "whatsapp_business_management,whatsapp_business_messaging,business_management"
    );
}

#[test]
fn a_config_id_selects_facebook_login_for_business() {
    let mut s = section("http://127.0.0.1:9");
    s["config_id"] = json!("987654321");
    let adapter = switchboard_whatsapp::build_adapter(
        &ChannelConfig {
            name: "whatsapp".into(),
            section: s,
        },
        &services(),
    )
    .unwrap();
    let url = adapter.authorize_url("s").unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["config_id"], "987654321");
    assert!(!q.contains_key("scope"));
}

#[test]
fn the_adapter_is_registered_under_the_name_whatsapp() {
    let names: Vec<&str> = switchboard_core::Registry::registrations()
        .unwrap()
        .iter()
        .map(|r| r.name)
        .collect();
    assert!(names.contains(&"whatsapp"), "{names:?}");
}
