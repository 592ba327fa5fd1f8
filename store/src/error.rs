//! The one place where driver errors become [`StoreError`]s: unique violations by the index
//! they broke (PostgreSQL names it; SQLite names its columns, or the index of an expression),
//! connection-class errors and lock time-outs as `Unavailable`.

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::postgres::PgDatabaseError;
use switchboard_core::StoreError;
use switchboard_core::error::Conflict;

use crate::common;

/// Unique indexes by the column list SQLite reports for them.
const INDEX_COLUMNS: [(&str, &str); 5] = [
    (
        "channel_integrations.channel, channel_integrations.account_id",
        "channel_integrations_active_account_key",
    ),
    (
        "channel_integrations.business_id, channel_integrations.channel",
        "channel_integrations_business_channel_key",
    ),
    (
        "channel_integrations.channel, channel_integrations.webhook_secret_hash",
        "channel_integrations_webhook_secret_key",
    ),
    (
        "messages.integration_id, messages.provider_message_id",
        "messages_provider_id_key",
    ),
    ("jobs.dedupe_key", "jobs_dedupe_key"),
];

/// Maps a driver error.
pub(crate) fn db(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(e) if e.try_downcast_ref::<PgDatabaseError>().is_some() => {
            postgres(e)
        }
        sqlx::Error::Database(e) => sqlite(e),
        other => common::from_sqlx(other),
    }
}

fn postgres(error: Box<dyn DatabaseError>) -> StoreError {
    if let ErrorKind::UniqueViolation = error.kind() {
        let conflict = error
            .constraint()
            .map_or(Conflict::Other, common::conflict_for_index);
        return StoreError::Conflict(conflict);
    }
    // Class 08 (connection exception), 53 (insufficient resources), 57P (operator
    // intervention: shutdown, cannot connect now).
    let code = error.code().unwrap_or_default();
    if code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") {
        return StoreError::Unavailable(error.message().to_owned());
    }
    StoreError::Database(Box::new(sqlx::Error::Database(error)))
}

fn sqlite(error: Box<dyn DatabaseError>) -> StoreError {
    if let ErrorKind::UniqueViolation = error.kind() {
        return StoreError::Conflict(unique_conflict(error.message()));
    }
    // SQLITE_BUSY and SQLITE_LOCKED (and their extended codes): the lock wait timed out.
    let code: i64 = error.code().and_then(|c| c.parse().ok()).unwrap_or(0);
    if matches!(code & 0xff, 5 | 6) {
        return StoreError::Unavailable(error.message().to_owned());
    }
    StoreError::Database(Box::new(sqlx::Error::Database(error)))
}

fn unique_conflict(message: &str) -> Conflict {
    let detail = message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(message);
    if let Some(name) = detail
        .strip_prefix("index '")
        .and_then(|n| n.strip_suffix('\''))
    {
        return common::conflict_for_index(name);
    }
    INDEX_COLUMNS
        .iter()
        .find(|(columns, _)| *columns == detail)
        .map_or(Conflict::Other, |(_, index)| {
            common::conflict_for_index(index)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_messages_map_to_the_rule_they_break() {
        let msg = "UNIQUE constraint failed: channel_integrations.channel, channel_integrations.account_id";
        assert_eq!(unique_conflict(msg), Conflict::AccountInUse);
        let msg = "UNIQUE constraint failed: jobs.dedupe_key";
        assert_eq!(unique_conflict(msg), Conflict::DuplicateJob);
        let msg = "UNIQUE constraint failed: index 'messages_provider_id_key'";
        assert_eq!(unique_conflict(msg), Conflict::DuplicateMessage);
        assert_eq!(
            unique_conflict("UNIQUE constraint failed: businesses.id"),
            Conflict::Other
        );
    }
}
