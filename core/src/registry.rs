//! Adapter registration through `inventory`, and the registry the gateway builds from it.
//!
//! A channel crate registers itself with
//! `inventory::submit!(ChannelRegistration { name: "whatsapp", build: build_adapter })`.
//! At start-up the gateway collects every registration, sorts them by name, rejects duplicate
//! names, refuses config sections that name no registered channel, and builds only the
//! channels enabled in config.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::adapter::ChannelAdapter;
use crate::error::ConfigError;
use crate::ids::ChannelName;

/// Services an adapter may use, shared across adapters.
#[derive(Debug, Clone)]
pub struct AdapterServices {
    /// The gateway's HTTP client (timeouts set, connection pool shared).
    pub http: reqwest::Client,
    /// The gateway's public base URL, without a trailing slash (`https://gw.example.com`).
    pub public_url: url::Url,
    /// Sandbox mode: the adapter talks to its in-process emulator.
    pub sandbox: bool,
}

impl AdapterServices {
    /// `{public_url}/{path}` with exactly one slash between.
    #[must_use]
    pub fn public_endpoint(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.public_url.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

/// One channel's config section (`channels.<name>`), as JSON.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub name: String,
    pub section: serde_json::Value,
}

impl ChannelConfig {
    /// Whether the channel is enabled: `channels.<name>.enabled` when it is set; otherwise
    /// whether the section sets anything at all (so configuring a channel switches it on).
    #[must_use]
    pub fn enabled(&self) -> bool {
        match self.section.get("enabled") {
            Some(value) => value.as_bool().unwrap_or(false),
            None => self
                .section
                .as_object()
                .is_some_and(|fields| !fields.is_empty()),
        }
    }

    /// Deserializes the section into the adapter's config type; errors name the full key.
    ///
    /// # Errors
    /// When a key is missing or has the wrong type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_json::from_value(self.section.clone()).map_err(|e| {
            let message = e.to_string();
            // serde names the field in "missing field `x`" / "unknown field `x`".
            let field = message
                .split('`')
                .nth(1)
                .filter(|_| message.contains("field"));
            match field {
                Some(field) => ConfigError::new(self.key(field), message.clone()),
                None => ConfigError::new(format!("channels.{}", self.name), message),
            }
        })
    }

    /// The full dotted key of a field of this section.
    #[must_use]
    pub fn key(&self, field: &str) -> String {
        format!("channels.{}.{field}", self.name)
    }
}

/// Builds an adapter from its config section.
pub type BuildAdapter =
    fn(&ChannelConfig, &AdapterServices) -> Result<Arc<dyn ChannelAdapter>, ConfigError>;

/// A channel crate's registration.
pub struct ChannelRegistration {
    /// The channel's name in URLs and config.
    pub name: &'static str,
    pub build: BuildAdapter,
}

impl fmt::Debug for ChannelRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelRegistration")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ChannelRegistration);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("two channel crates register the name `{0}`")]
    Duplicate(String),
    #[error("registered channel name is invalid: {0}")]
    InvalidName(#[from] crate::ids::InvalidChannelName),
    #[error("channels.{0}: no registered channel is called `{0}` (registered: {1})")]
    UnknownSection(String, String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Whether a channel name is served.
#[derive(Debug, Clone)]
pub enum Lookup {
    Enabled(Arc<dyn ChannelAdapter>),
    /// Registered, but disabled in config.
    Disabled,
    Unknown,
}

/// The channels this gateway serves, built once at start-up.
#[derive(Debug, Clone)]
pub struct Registry {
    registered: Vec<ChannelName>,
    enabled: BTreeMap<ChannelName, Arc<dyn ChannelAdapter>>,
}

impl Registry {
    /// Every registration linked into this binary, sorted by name.
    ///
    /// # Errors
    /// On duplicate or invalid names.
    pub fn registrations() -> Result<Vec<&'static ChannelRegistration>, RegistryError> {
        Self::check(inventory::iter::<ChannelRegistration>.into_iter().collect())
    }

    /// Sorts registrations and rejects duplicate or invalid names.
    ///
    /// # Errors
    /// On duplicate or invalid names.
    pub fn check(
        mut regs: Vec<&ChannelRegistration>,
    ) -> Result<Vec<&ChannelRegistration>, RegistryError> {
        regs.sort_by_key(|r| r.name);
        for pair in regs.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(RegistryError::Duplicate(pair[0].name.to_owned()));
            }
        }
        for reg in &regs {
            ChannelName::parse(reg.name)?;
        }
        Ok(regs)
    }

    /// Builds the registry from all linked registrations and the `channels` config table.
    ///
    /// # Errors
    /// See [`Registry::build_from`].
    pub fn build(
        sections: &BTreeMap<String, serde_json::Value>,
        services: &AdapterServices,
    ) -> Result<Self, RegistryError> {
        Self::build_from(Self::registrations()?, sections, services)
    }

    /// Builds the registry from the given registrations.
    ///
    /// # Errors
    /// Duplicate names, a config section naming no registration, or an enabled channel whose
    /// config is invalid.
    pub fn build_from(
        regs: Vec<&ChannelRegistration>,
        sections: &BTreeMap<String, serde_json::Value>,
        services: &AdapterServices,
    ) -> Result<Self, RegistryError> {
        let regs = Self::check(regs)?;
        if let Some(unknown) = sections
            .keys()
            .find(|name| !regs.iter().any(|r| r.name == name.as_str()))
        {
            let names: Vec<&str> = regs.iter().map(|r| r.name).collect();
            return Err(RegistryError::UnknownSection(
                unknown.clone(),
                names.join(", "),
            ));
        }
        let mut enabled = BTreeMap::new();
        let mut registered = Vec::with_capacity(regs.len());
        for reg in regs {
            let name = ChannelName::parse(reg.name)?;
            registered.push(name.clone());
            let config = ChannelConfig {
                name: reg.name.to_owned(),
                section: sections
                    .get(reg.name)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
            };
            if config.enabled() {
                enabled.insert(name, (reg.build)(&config, services)?);
            }
        }
        Ok(Self {
            registered,
            enabled,
        })
    }

    /// Looks a channel up by its URL segment.
    #[must_use]
    pub fn lookup(&self, name: &str) -> Lookup {
        if let Some((_, adapter)) = self.enabled.iter().find(|(n, _)| n.as_str() == name) {
            Lookup::Enabled(Arc::clone(adapter))
        } else if self.registered.iter().any(|n| n.as_str() == name) {
            Lookup::Disabled
        } else {
            Lookup::Unknown
        }
    }

    /// The enabled adapters, sorted by name.
    pub fn enabled(&self) -> impl Iterator<Item = &Arc<dyn ChannelAdapter>> {
        self.enabled.values()
    }

    /// Every registered channel name, sorted, enabled or not.
    #[must_use]
    pub fn registered(&self) -> &[ChannelName] {
        &self.registered
    }
}

/// Lenient deserializers for adapter config sections.
///
/// Environment variables are typed by figment, so `META_APP_ID=1234567890` arrives as a
/// number. Fields that are strings by nature (ids, secrets, tokens) use these to accept both.
pub mod de {
    use secrecy::SecretString;
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StringOrNumber {
        String(String),
        Integer(i64),
        Unsigned(u64),
        Float(f64),
    }

    impl From<StringOrNumber> for String {
        fn from(value: StringOrNumber) -> Self {
            match value {
                StringOrNumber::String(s) => s,
                StringOrNumber::Integer(n) => n.to_string(),
                StringOrNumber::Unsigned(n) => n.to_string(),
                StringOrNumber::Float(n) => n.to_string(),
            }
        }
    }

    /// A string, or a number read as its decimal text.
    ///
    /// # Errors
    /// When the value is neither.
    pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        StringOrNumber::deserialize(deserializer).map(String::from)
    }

    /// Like [`string`], optional.
    ///
    /// # Errors
    /// When the value is neither a string, a number nor null.
    pub fn opt_string<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        Ok(Option::<StringOrNumber>::deserialize(deserializer)?.map(String::from))
    }

    /// A secret given as a string or a number.
    ///
    /// # Errors
    /// When the value is neither.
    pub fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
        string(deserializer).map(SecretString::from)
    }

    /// Like [`secret`], optional.
    ///
    /// # Errors
    /// When the value is neither a string, a number nor null.
    pub fn opt_secret<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SecretString>, D::Error> {
        Ok(opt_string(deserializer)?.map(SecretString::from))
    }
}
