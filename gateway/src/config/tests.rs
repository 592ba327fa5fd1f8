//! Layering order, every alias, and each validation error naming its key.
#![expect(
    clippy::result_large_err,
    reason = "figment's Jail API returns figment::Error by value"
)]

use figment::Jail;
use secrecy::ExposeSecret;

use super::*;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn load() -> Settings {
    Settings::load(&Sources::default()).expect("configuration loads")
}

fn validation_error(jail_setup: impl FnOnce(&mut Jail), sandbox: bool) -> ConfigError {
    let mut error = None;
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail_setup(jail);
        error = Some(load().validate(sandbox).expect_err("validation fails"));
        Ok(())
    });
    error.expect("jail ran")
}

#[test]
fn defaults_are_safe_and_complete() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let settings = load();
        assert_eq!(settings.server.bind, "127.0.0.1:8000");
        assert_eq!(settings.server.max_webhook_body_bytes, 4 * 1024 * 1024);
        assert_eq!(settings.server.shutdown_grace, 20);
        assert_eq!(
            settings.database.url.expose_secret(),
            "sqlite://data/switchboard.db"
        );
        assert_eq!(settings.responder.kind, ResponderKind::Static);
        let validated = settings
            .validate(true)
            .expect("defaults are valid in sandbox mode");
        assert_eq!(
            validated.frontend_url, validated.public_url,
            "frontend_url defaults to public_url"
        );
        assert!(validated.encryption_key.is_none());
        Ok(())
    });
}

#[test]
fn file_overrides_defaults_and_environment_overrides_file() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file(
            "switchboard.toml",
            "[server]\nbind = \"0.0.0.0:9000\"\npublic_url = \"https://file.example\"\n[log]\nlevel = \"debug\"\n",
        )?;
        jail.set_env("SWITCHBOARD_CONFIG", "switchboard.toml");
        jail.set_env("SWITCHBOARD_SERVER__PUBLIC_URL", "https://env.example");
        let settings = load();
        assert_eq!(settings.server.bind, "0.0.0.0:9000", "file beats default");
        assert_eq!(
            settings.server.public_url, "https://env.example",
            "environment beats file"
        );
        assert_eq!(settings.log.level, "debug");
        assert_eq!(
            settings.database.url.expose_secret(),
            "sqlite://data/switchboard.db",
            "untouched default stays"
        );
        Ok(())
    });
}

#[test]
fn double_underscore_nests_into_channel_sections() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("SWITCHBOARD_CHANNELS__TELEGRAM__ENABLED", "false");
        jail.set_env(
            "SWITCHBOARD_CHANNELS__TELEGRAM__API_BASE_URL",
            "http://127.0.0.1:9999",
        );
        let settings = load();
        let telegram = &settings.channels["telegram"];
        assert_eq!(telegram["enabled"], serde_json::json!(false));
        assert_eq!(
            telegram["api_base_url"],
            serde_json::json!("http://127.0.0.1:9999")
        );
        Ok(())
    });
}

#[test]
fn every_alias_of_the_original_setup_guide_sets_its_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("META_APP_ID", "app-id-1");
        jail.set_env("META_APP_SECRET", "meta-secret");
        jail.set_env("META_REDIRECT_URI", "https://gw.example/cb");
        jail.set_env("WHATSAPP_VERIFY_TOKEN", "verify-me");
        jail.set_env("PUBLIC_URL", "https://gw.example");
        jail.set_env("FRONTEND_URL", "https://app.example");
        jail.set_env("DATABASE_URL", "postgres://u:p@db/switchboard");
        jail.set_env("LOG_LEVEL", "warn");
        let settings = load();
        let whatsapp = &settings.channels["whatsapp"];
        assert_eq!(whatsapp["app_id"], "app-id-1");
        assert_eq!(whatsapp["app_secret"], "meta-secret");
        assert_eq!(whatsapp["redirect_uri"], "https://gw.example/cb");
        assert_eq!(whatsapp["verify_token"], "verify-me");
        assert_eq!(settings.server.public_url, "https://gw.example");
        assert_eq!(settings.server.frontend_url, "https://app.example");
        assert_eq!(
            settings.database.url.expose_secret(),
            "postgres://u:p@db/switchboard"
        );
        assert_eq!(settings.log.level, "warn");
        Ok(())
    });
}

#[test]
fn whatsapp_app_secret_alias_beats_meta_app_secret_and_prefixed_beats_both() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("META_APP_SECRET", "meta");
        jail.set_env("WHATSAPP_APP_SECRET", "whatsapp");
        assert_eq!(load().channels["whatsapp"]["app_secret"], "whatsapp");
        jail.set_env("SWITCHBOARD_CHANNELS__WHATSAPP__APP_SECRET", "prefixed");
        assert_eq!(load().channels["whatsapp"]["app_secret"], "prefixed");
        Ok(())
    });
}

#[test]
fn encryption_key_is_required_outside_sandbox() {
    let error = validation_error(|_| {}, false);
    assert_eq!(error.key, "security.encryption_key");
    assert!(error.message.contains("required"), "{error}");
}

#[test]
fn a_malformed_encryption_key_is_named() {
    let error = validation_error(
        |jail| jail.set_env("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", "c2hvcnQ="),
        true,
    );
    assert_eq!(error.key, "security.encryption_key");
}

#[test]
fn a_valid_encryption_key_is_accepted() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY);
        assert!(
            load()
                .validate(false)
                .expect("valid")
                .encryption_key
                .is_some()
        );
        Ok(())
    });
}

#[test]
fn each_malformed_value_is_reported_with_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("SWITCHBOARD_SERVER__BIND", "not-an-address", "server.bind"),
        ("PUBLIC_URL", "ftp://example.com", "server.public_url"),
        (
            "SWITCHBOARD_SERVER__PUBLIC_URL",
            "not a url",
            "server.public_url",
        ),
        ("FRONTEND_URL", "::::", "server.frontend_url"),
        ("DATABASE_URL", "mysql://localhost/db", "database.url"),
        (
            "SWITCHBOARD_SERVER__MAX_WEBHOOK_BODY_BYTES",
            "10",
            "server.max_webhook_body_bytes",
        ),
        (
            "SWITCHBOARD_DATABASE__MAX_CONNECTIONS",
            "0",
            "database.max_connections",
        ),
        ("LOG_LEVEL", "info,[=", "log.level"),
        ("SWITCHBOARD_RESPONDER__TEXT", "\" \"", "responder.text"),
        (
            "SWITCHBOARD_WORKERS__INBOX_RETENTION_DAYS",
            "36501",
            "workers.inbox_retention_days",
        ),
    ];
    for (var, value, key) in cases {
        let error = validation_error(|jail| jail.set_env(var, value), true);
        assert_eq!(error.key, *key, "{var}={value} gave {error}");
    }
}

#[test]
fn a_webhook_responder_needs_a_url_and_a_secret() {
    let error = validation_error(
        |jail| jail.set_env("SWITCHBOARD_RESPONDER__KIND", "webhook"),
        true,
    );
    assert_eq!(error.key, "responder.url");
    let error = validation_error(
        |jail| {
            jail.set_env("SWITCHBOARD_RESPONDER__KIND", "webhook");
            jail.set_env("SWITCHBOARD_RESPONDER__URL", "https://brain.example/reply");
        },
        true,
    );
    assert_eq!(error.key, "responder.secret");
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("SWITCHBOARD_SERVER__BINDD", "x");
        let error = Settings::load(&Sources::default()).expect_err("unknown key");
        assert!(error.to_string().contains("bindd"), "{error}");
        jail.clear_env();
        jail.set_env("SWITCHBOARD_SERVER__SHUTDOWN_GRACE", "soon");
        let error = Settings::load(&Sources::default()).expect_err("wrong type");
        assert_eq!(error.key, "server.shutdown_grace", "{error}");
        Ok(())
    });
}

#[test]
fn a_missing_config_file_is_an_error() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("SWITCHBOARD_CONFIG", "does-not-exist.toml");
        let error = Settings::load(&Sources::default()).expect_err("missing file");
        assert!(error.to_string().contains("does-not-exist.toml"), "{error}");
        Ok(())
    });
}

#[test]
fn the_printed_configuration_never_contains_secrets() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY);
        jail.set_env(
            "DATABASE_URL",
            "postgres://user:hunter2@db.example/switchboard",
        );
        jail.set_env("META_APP_SECRET", "app-secret-value");
        jail.set_env("WHATSAPP_VERIFY_TOKEN", "verify-token-value");
        jail.set_env("SWITCHBOARD_CHANNELS__TELEGRAM__ENABLED", "true");
        let settings = load();
        let printed = settings.redacted().to_string();
        for secret in [KEY, "hunter2", "app-secret-value", "verify-token-value"] {
            assert!(!printed.contains(secret), "{secret} leaked into {printed}");
        }
        assert!(
            printed.contains("db.example"),
            "non-secret parts stay readable"
        );
        assert_eq!(settings.redacted()["channels"]["telegram"]["enabled"], true);
        let debug = format!("{settings:?}");
        for secret in [KEY, "hunter2", "app-secret-value"] {
            assert!(!debug.contains(secret), "{secret} leaked into Debug output");
        }
        Ok(())
    });
}

#[test]
fn http_public_url_is_warned_about_outside_sandbox() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("SWITCHBOARD_SECURITY__ENCRYPTION_KEY", KEY);
        let validated = load().validate(false).expect("valid");
        assert!(validated.warnings().iter().any(|w| w.contains("https")));
        jail.set_env("PUBLIC_URL", "https://gw.example");
        assert!(load().validate(false).expect("valid").warnings().is_empty());
        Ok(())
    });
}

#[test]
fn numeric_looking_environment_values_can_be_read_as_strings_by_adapters() {
    #[derive(serde::Deserialize)]
    struct Section {
        #[serde(deserialize_with = "switchboard_core::registry::de::string")]
        app_id: String,
    }
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("META_APP_ID", "1234567890");
        let settings = load();
        let section: Section =
            serde_json::from_value(settings.channels["whatsapp"].clone()).expect("parses");
        assert_eq!(section.app_id, "1234567890");
        Ok(())
    });
}

#[test]
fn processed_webhooks_are_kept_thirty_days_by_default_and_zero_keeps_them_forever() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let days = |settings: Settings| settings.worker_settings().inbox_retention;
        assert_eq!(days(load()), Some(Duration::from_secs(30 * 86_400)));
        jail.set_env("SWITCHBOARD_WORKERS__INBOX_RETENTION_DAYS", "0");
        assert_eq!(days(load()), None);
        jail.set_env("SWITCHBOARD_WORKERS__INBOX_RETENTION_DAYS", "36500");
        assert!(load().validate(true).is_ok());
        Ok(())
    });
}
