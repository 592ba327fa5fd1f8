//! The one place where PostgreSQL driver errors become [`StoreError`]s: unique violations by
//! the name of the index they broke, connection-class errors as `Unavailable`.

use sqlx::error::{DatabaseError, ErrorKind};
use switchboard_core::StoreError;
use switchboard_core::error::Conflict;

use crate::common;

/// Maps a driver error.
pub(crate) fn db(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(e) => database(e),
        other => common::from_sqlx(other),
    }
}

fn database(error: Box<dyn DatabaseError>) -> StoreError {
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
