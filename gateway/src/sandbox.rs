//! Sandbox mode (`serve --sandbox`): the one-command demo that needs no Meta or
//! Telegram account. Before the application is built, [`start`] refuses real
//! provider credentials, starts both provider emulators on loopback ports and points the
//! channel sections at them with generated demo credentials. Once the state exists,
//! [`activate`] creates (or reuses) the sandbox tenant, mints a fresh API key,
//! closes the connections of an earlier run (the emulators forget everything), aims
//! the WhatsApp emulator's webhooks at the gateway and returns the [`SandboxInfo`] the
//! dashboard's "Simulate incoming message" form uses.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use switchboard_core::BusinessId;
use switchboard_core::crypto::random_token;
use switchboard_telegram::emulator as telegram;
use switchboard_whatsapp::emulator as whatsapp;

use crate::config::Validated;
use crate::state::{AppState, Emulators, SandboxInfo};

/// The sandbox tenant's display name.
pub const TENANT_NAME: &str = "Sandbox Business";
/// The file in the data directory that keeps the sandbox tenant's id across runs.
const TENANT_FILE: &str = "sandbox-tenant";
/// Keys that, set to anything off loopback, mean a real provider is configured.
const PROVIDER_URL_KEYS: &[(&str, &str)] = &[
    ("whatsapp", "graph_base_url"),
    ("whatsapp", "dialog_base_url"),
    ("telegram", "api_base_url"),
];

/// Refuses sandbox mode when a real provider is configured, naming the key.
///
/// # Errors
/// A message naming the offending configuration key.
pub fn check_no_real_credentials(
    channels: &std::collections::BTreeMap<String, Value>,
) -> Result<(), String> {
    let secret = channels
        .get("whatsapp")
        .and_then(|s| s.get("app_secret"))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.trim().is_empty());
    if secret {
        return Err(refusal("channels.whatsapp.app_secret is set"));
    }
    for (channel, key) in PROVIDER_URL_KEYS {
        let url = channels
            .get(*channel)
            .and_then(|s| s.get(*key))
            .and_then(Value::as_str);
        if let Some(url) = url.filter(|u| !u.trim().is_empty() && !is_loopback(u)) {
            return Err(refusal(&format!("channels.{channel}.{key} is {url}")));
        }
    }
    Ok(())
}

fn refusal(why: &str) -> String {
    format!(
        "sandbox mode refuses to start with real provider credentials ({why}); \
         sandbox mode uses built-in emulators: remove the setting, or run `serve` without --sandbox"
    )
}

fn is_loopback(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    })
}

/// Whether a channel section says `enabled = false` (the sandbox enables the others).
fn disabled(section: Option<&Value>) -> bool {
    match section.and_then(|s| s.get("enabled")) {
        Some(Value::Bool(enabled)) => !enabled,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

fn section<'a>(config: &'a mut Validated, channel: &str) -> &'a mut Map<String, Value> {
    let value = config
        .settings
        .channels
        .entry(channel.to_owned())
        .or_insert_with(|| json!({}));
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("made an object above")
}

/// Checks the configuration, starts the emulators of the channels not disabled, and writes
/// their base URLs and demo credentials into `config.settings.channels`.
///
/// # Errors
/// Real credentials configured, or an emulator cannot bind a loopback port.
pub async fn start(config: &mut Validated) -> Result<Emulators, String> {
    check_no_real_credentials(&config.settings.channels)?;
    let mut emulators = Emulators {
        whatsapp: None,
        telegram: None,
    };
    if !disabled(config.settings.channels.get("whatsapp")) {
        let app_id = format!(
            "{}",
            1_000_000_000_000_000 + rand::random::<u64>() % 1_000_000_000_000
        );
        let secret = random_token(24);
        let mut emulator_config = whatsapp::EmulatorConfig::new(&app_id, secret.expose_secret());
        emulator_config.app_name = "Switchboard Sandbox".to_owned();
        emulator_config.seed = demo_seed();
        let emulator = whatsapp::Emulator::start(emulator_config)
            .await
            .map_err(|e| format!("cannot start the WhatsApp emulator: {e}"))?;
        let section = section(config, "whatsapp");
        section.insert("enabled".into(), json!(true));
        section.insert("app_id".into(), json!(app_id));
        section.insert("app_secret".into(), json!(secret.expose_secret()));
        section.insert(
            "verify_token".into(),
            json!(random_token(16).expose_secret()),
        );
        section.insert("graph_base_url".into(), json!(emulator.base_url()));
        section.insert("dialog_base_url".into(), json!(emulator.base_url()));
        emulators.whatsapp = Some(emulator);
    }
    if !disabled(config.settings.channels.get("telegram")) {
        let emulator = telegram::Emulator::start(telegram::EmulatorConfig {
            auto_accept_tokens: true,
            ..telegram::EmulatorConfig::default()
        })
        .await
        .map_err(|e| format!("cannot start the Telegram emulator: {e}"))?;
        let section = section(config, "telegram");
        section.insert("enabled".into(), json!(true));
        section.insert("api_base_url".into(), json!(emulator.base_url()));
        emulators.telegram = Some(emulator);
    }
    Ok(emulators)
}

/// Creates or reuses the sandbox tenant, mints its API key for this run, aims the WhatsApp
/// emulator's webhooks at the gateway and announces the key with the dashboard URL.
///
/// # Errors
/// A store failure or an unwritable data directory.
pub async fn activate(
    emulators: Emulators,
    state: &AppState,
    config: &Validated,
) -> Result<SandboxInfo, String> {
    let dir = crate::app::data_dir(config.database_url.expose_secret());
    let (business, api_key) = tenant(state, &dir).await?;
    reset_connections(state, business).await?;
    let base = config.public_url.as_str().trim_end_matches('/');
    if let Some(emulator) = &emulators.whatsapp {
        emulator.set_webhook_url(Some(format!("{base}/api/webhooks/whatsapp")));
    }
    announce(base, &api_key);
    Ok(SandboxInfo {
        business,
        emulators,
    })
}

/// One business, one WhatsApp account holding two numbers, so the number choice shows.
fn demo_seed() -> whatsapp::Seed {
    whatsapp::Seed::with_numbers(vec![
        whatsapp::SeedPhone::new("106540352242922", "15550783881", "Lucky Shrub"),
        whatsapp::SeedPhone::new("106540352242923", "15550783882", "Lucky Shrub Support"),
    ])
}

async fn tenant(state: &AppState, dir: &Path) -> Result<(BusinessId, SecretString), String> {
    let path: PathBuf = dir.join(TENANT_FILE);
    let store = state.store.as_ref();
    let known = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| text.trim().parse::<BusinessId>().ok());
    let exists = match known {
        Some(id) => store.get_business(id).await.map_err(|e| e.to_string())?,
        None => None,
    };
    if let Some(business) = exists {
        let key = crate::tenants::generate_api_key();
        let hash = crate::tenants::api_key_hash(key.expose_secret());
        store
            .add_api_key(business.id, hash, "sandbox")
            .await
            .map_err(|e| e.to_string())?;
        return Ok((business.id, key));
    }
    let created = crate::tenants::create(store, TENANT_NAME)
        .await
        .map_err(|e| e.to_string())?;
    crate::app::create_private_dir(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(&path, created.business.id.to_string())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((created.business.id, created.api_key))
}

/// The emulators start empty on every run, so connections kept from an earlier run point at
/// accounts that no longer exist: they are closed, with a note saying why.
async fn reset_connections(state: &AppState, business: BusinessId) -> Result<(), String> {
    let integrations = state
        .store
        .list_integrations(business)
        .await
        .map_err(|e| e.to_string())?;
    for integration in integrations.into_iter().filter(|i| i.is_active) {
        let note = "the sandbox's emulators start empty on every run: connect again";
        state
            .store
            .deactivate(integration.id, Some(note))
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(channel = %integration.channel, "sandbox: closed a connection of an earlier run");
    }
    Ok(())
}

fn announce(base: &str, api_key: &SecretString) {
    let dashboard = format!("{base}/dashboard/integrations");
    tracing::warn!(
        dashboard = %dashboard,
        "SANDBOX MODE: log in to the dashboard with the API key printed on stdout"
    );
    println!("SANDBOX MODE: emulated WhatsApp and Telegram, demo data only.");
    println!("Dashboard: {dashboard}");
    println!("API key:   {}", api_key.expose_secret());
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn channels(value: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_whatsapp_app_secret_is_refused() {
        let error = check_no_real_credentials(&channels(json!({"whatsapp": {"app_secret": "s"}})));
        assert!(error.unwrap_err().contains("channels.whatsapp.app_secret"));
    }

    #[test]
    fn a_provider_url_off_loopback_is_refused() {
        let error = check_no_real_credentials(&channels(
            json!({"telegram": {"api_base_url": "https://api.telegram.org"}}),
        ));
        assert!(
            error
                .unwrap_err()
                .contains("channels.telegram.api_base_url")
        );
    }

    #[test]
    fn loopback_urls_and_empty_sections_are_accepted() {
        let config = channels(json!({
            "whatsapp": {"graph_base_url": "http://127.0.0.1:9000", "app_secret": ""},
            "telegram": {"enabled": true, "api_base_url": "http://localhost:9001"}
        }));
        assert!(check_no_real_credentials(&config).is_ok());
    }

    #[test]
    fn enabled_false_in_either_spelling_disables() {
        assert!(disabled(Some(&json!({"enabled": false}))));
        assert!(disabled(Some(&json!({"enabled": "false"}))));
        assert!(!disabled(Some(&json!({"enabled": true}))));
        assert!(!disabled(None));
    }
}
