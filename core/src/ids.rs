//! Typed identifiers. A `BusinessId` cannot be passed where an `IntegrationId` is expected,
//! and a [`ChannelName`] is known to be well-formed once it exists.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Declares a UUID-backed identifier newtype. Ids are UUIDv7, so they sort by creation time.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered identifier.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A tenant: one business using the gateway.
    BusinessId
);
uuid_id!(
    /// One connection of a business to one channel account.
    IntegrationId
);
uuid_id!(
    /// A conversation with one external chat on one integration.
    ConversationId
);
uuid_id!(
    /// A stored message, inbound or outbound.
    MessageId
);
uuid_id!(
    /// A row of the durable webhook inbox.
    EventId
);
uuid_id!(
    /// A row of the jobs/outbox table.
    JobId
);

/// The name of a channel as it appears in URLs and config: `whatsapp`, `telegram`.
///
/// Lower-case ASCII letters, digits and `_`, starting with a letter, at most 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ChannelName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a valid channel name (lower-case letters, digits and `_`, starting with a letter, at most 32 characters)"
)]
pub struct InvalidChannelName(pub String);

impl ChannelName {
    /// Parses a channel name.
    ///
    /// # Errors
    /// When the name is empty, too long or has characters outside `[a-z0-9_]`.
    pub fn parse(name: &str) -> Result<Self, InvalidChannelName> {
        let valid = (1..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidChannelName(name.to_owned()))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChannelName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_lower_case_identifiers() {
        assert!(ChannelName::parse("whatsapp").is_ok());
        assert!(ChannelName::parse("tele_gram2").is_ok());
        for bad in ["", "WhatsApp", "2fa", "a-b", "a b", &"x".repeat(33)] {
            assert!(ChannelName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ids_round_trip_through_strings() {
        let id = IntegrationId::new();
        let parsed: IntegrationId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }
}
