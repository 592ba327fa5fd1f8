//! The registry: the exact set of linked channels, duplicates rejected, disabled channels not
//! built, config sections naming no channel refused.

use std::collections::BTreeMap;

use serde_json::json;
use switchboard_core::registry::{ChannelRegistration, Lookup, Registry, RegistryError};
use switchboard_core::{AdapterServices, ChannelAdapter};

fn services() -> AdapterServices {
    AdapterServices {
        http: reqwest::Client::new(),
        public_url: url::Url::parse("http://127.0.0.1:8000").unwrap(),
        sandbox: false,
    }
}

#[test]
fn the_linked_channels_are_exactly_the_built_in_ones_plus_the_test_channels() {
    let names: Vec<&str> = Registry::registrations()
        .unwrap()
        .iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["dormant", "loopback", "telegram", "whatsapp"]);
}

fn never_built(
    _: &switchboard_core::registry::ChannelConfig,
    _: &AdapterServices,
) -> Result<std::sync::Arc<dyn ChannelAdapter>, switchboard_core::error::ConfigError> {
    panic!("a disabled channel must not be built")
}

#[test]
fn duplicate_channel_names_are_rejected() {
    let a = ChannelRegistration {
        name: "twin",
        build: never_built,
    };
    let b = ChannelRegistration {
        name: "twin",
        build: never_built,
    };
    let error = Registry::check(vec![&a, &b]).unwrap_err();
    assert!(
        matches!(error, RegistryError::Duplicate(ref name) if name == "twin"),
        "{error}"
    );
}

#[test]
fn invalid_channel_names_are_rejected() {
    let bad = ChannelRegistration {
        name: "Bad-Name",
        build: never_built,
    };
    assert!(matches!(
        Registry::check(vec![&bad]),
        Err(RegistryError::InvalidName(_))
    ));
}

#[test]
fn disabled_channels_are_known_but_not_built() {
    let dormant = ChannelRegistration {
        name: "dormant",
        build: never_built,
    };
    let mut sections = BTreeMap::new();
    sections.insert("dormant".to_owned(), json!({ "enabled": false }));
    let registry = Registry::build_from(vec![&dormant], &sections, &services()).unwrap();
    assert!(matches!(registry.lookup("dormant"), Lookup::Disabled));
    assert!(matches!(registry.lookup("nope"), Lookup::Unknown));
    assert_eq!(registry.enabled().count(), 0);
    // No section at all: disabled too.
    let registry = Registry::build_from(vec![&dormant], &BTreeMap::new(), &services()).unwrap();
    assert!(matches!(registry.lookup("dormant"), Lookup::Disabled));
}

#[test]
fn a_config_section_naming_no_registered_channel_stops_start_up() {
    let mut sections = BTreeMap::new();
    sections.insert("whatsap".to_owned(), json!({ "enabled": true }));
    let error = Registry::build(&sections, &services()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("channels.whatsap"), "{message}");
    assert!(
        message.contains("whatsapp"),
        "the message lists the registered channels: {message}"
    );
}

#[test]
fn an_enabled_channel_with_invalid_config_names_the_key() {
    let mut sections = BTreeMap::new();
    sections.insert("loopback".to_owned(), json!({ "enabled": true }));
    let error = Registry::build(&sections, &services()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("channels.loopback.signing_secret"),
        "{error}"
    );
}
