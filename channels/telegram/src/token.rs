//! Parsed secrets of the Telegram channel: the bot token a business pastes and the
//! per-integration webhook secret Telegram echoes back in `X-Telegram-Bot-Api-Secret-Token`.
//!
//! Both are parsed once at the boundary ("parse, don't validate"), so the rest of the crate only
//! ever holds well-formed values. Neither type prints its secret part in `Debug`.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Length of the secret part of a bot token as BotFather issues it.
const TOKEN_SECRET_LEN: usize = 35;
/// Longest allowed webhook secret (Bot API `setWebhook.secret_token`).
const MAX_SECRET_LEN: usize = 256;

/// Whether `c` belongs to the URL-safe alphabet Telegram uses for secrets (`A-Za-z0-9_-`).
#[must_use]
pub fn is_secret_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A well-formed bot token: `<bot id>:<35 chars of A-Za-z0-9_->`.
///
/// Form is checked locally; whether Telegram knows the token is decided by `getMe`.
#[derive(Clone)]
pub struct BotToken {
    secret: SecretString,
    bot_id: i64,
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BotToken({}:[REDACTED])", self.bot_id)
    }
}

impl BotToken {
    /// Parses a pasted token. Surrounding whitespace and a mistaken leading `bot` (copied from
    /// an API URL) are tolerated.
    ///
    /// # Errors
    /// When the text is not of the token's form.
    pub fn parse(raw: &str) -> Result<Self, MalformedToken> {
        let text = raw.trim();
        let text = text.strip_prefix("bot").unwrap_or(text);
        let (id, secret) = text.split_once(':').ok_or(MalformedToken)?;
        let id_ok = (1..=19).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit());
        let secret_ok = secret.len() == TOKEN_SECRET_LEN && secret.chars().all(is_secret_char);
        if !id_ok || !secret_ok || id.starts_with('0') {
            return Err(MalformedToken);
        }
        let bot_id = id.parse::<i64>().map_err(|_| MalformedToken)?;
        Ok(Self {
            secret: SecretString::from(text.to_owned()),
            bot_id,
        })
    }

    /// The bot's user id, the part before the colon.
    #[must_use]
    pub fn bot_id(&self) -> i64 {
        self.bot_id
    }

    /// The whole token, for the request path only.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

/// The pasted text is not a bot token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this is not a Telegram bot token (expected `<digits>:<35 characters>` from @BotFather)")]
pub struct MalformedToken;

/// A webhook secret: 1–256 characters of `A-Za-z0-9_-`.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

impl WebhookSecret {
    /// Parses a header value or a stored secret.
    ///
    /// # Errors
    /// When the value is empty, too long or has a character outside `A-Za-z0-9_-`.
    pub fn parse(raw: &str) -> Result<Self, InvalidSecret> {
        let ok = (1..=MAX_SECRET_LEN).contains(&raw.len()) && raw.chars().all(is_secret_char);
        if ok {
            Ok(Self(SecretString::from(raw.to_owned())))
        } else {
            Err(InvalidSecret)
        }
    }

    /// A fresh random secret of 43 characters (32 bytes of entropy).
    #[must_use]
    pub fn generate() -> Self {
        Self(switchboard_core::crypto::random_token(32))
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    #[must_use]
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

/// A webhook secret that Telegram would never send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("webhook secret must be 1-256 characters of A-Za-z0-9_-")]
pub struct InvalidSecret;

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "1276618370:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawA";

    #[test]
    fn a_botfather_token_parses_and_names_its_bot() {
        let token = BotToken::parse(GOOD).unwrap();
        assert_eq!(token.bot_id(), 1_276_618_370);
        assert_eq!(token.expose(), GOOD);
        assert!(!format!("{token:?}").contains("AAHdq"));
    }

    #[test]
    fn whitespace_and_a_bot_prefix_are_tolerated() {
        let token = BotToken::parse(&format!("  bot{GOOD}\n")).unwrap();
        assert_eq!(token.expose(), GOOD);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
            "abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawA",
            "0123:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawA",
            "1276618370:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw!",
            "1276618370AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawA",
            "1276618370:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawAx",
        ] {
            assert_eq!(BotToken::parse(bad).unwrap_err(), MalformedToken, "{bad}");
        }
    }

    #[test]
    fn webhook_secrets_follow_the_bot_api_charset_and_length() {
        assert!(WebhookSecret::parse("a").is_ok());
        assert!(WebhookSecret::parse(&"x".repeat(256)).is_ok());
        assert!(WebhookSecret::parse("").is_err());
        assert!(WebhookSecret::parse(&"x".repeat(257)).is_err());
        assert!(WebhookSecret::parse("has space").is_err());
        assert!(WebhookSecret::parse("plus+sign").is_err());
        let fresh = WebhookSecret::generate();
        assert!(fresh.expose().len() >= 32);
        assert!(WebhookSecret::parse(fresh.expose()).is_ok());
    }
}
