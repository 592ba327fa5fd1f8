//! What both backends share: timestamp truncation, decoding of stored enum names, the map from
//! unique index names to [`Conflict`]s, and the SQL that ranks delivery statuses.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_core::domain::{DeliveryStatus, IntegrationState};
use switchboard_core::error::Conflict;
use switchboard_core::store::{Direction, InboxState, JobState};
use switchboard_core::{ChannelName, StoreError};

/// Both databases keep microseconds; truncating before writing makes round-trips exact.
pub(crate) fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// The current time, as it will be stored.
pub(crate) fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// `now + lease`, saturating at a far-future instant for absurd leases.
pub(crate) fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::days(3650));
    truncate(
        now.checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

/// A problem with the URL or the backend's set-up, not with the data.
pub(crate) fn config_error(message: String) -> StoreError {
    StoreError::Database(message.into())
}

fn corrupt(what: &str, raw: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} `{raw}`"))
}

pub(crate) fn channel(raw: &str) -> Result<ChannelName, StoreError> {
    ChannelName::parse(raw).map_err(|_| corrupt("channel", raw))
}

pub(crate) fn integration_state(raw: &str) -> Result<IntegrationState, StoreError> {
    IntegrationState::parse(raw).ok_or_else(|| corrupt("integration state", raw))
}

pub(crate) fn inbox_state(raw: &str) -> Result<InboxState, StoreError> {
    InboxState::parse(raw).ok_or_else(|| corrupt("inbox state", raw))
}

pub(crate) fn job_state(raw: &str) -> Result<JobState, StoreError> {
    JobState::parse(raw).ok_or_else(|| corrupt("job state", raw))
}

pub(crate) fn delivery_status(raw: &str) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::parse(raw).ok_or_else(|| corrupt("delivery status", raw))
}

pub(crate) fn direction(raw: &str) -> Result<Direction, StoreError> {
    match raw {
        "inbound" => Ok(Direction::Inbound),
        "outbound" => Ok(Direction::Outbound),
        _ => Err(corrupt("direction", raw)),
    }
}

/// Which rule a unique index stands for. The names are those of the migrations.
pub(crate) fn conflict_for_index(index: &str) -> Conflict {
    match index {
        "channel_integrations_active_account_key" => Conflict::AccountInUse,
        "channel_integrations_business_channel_key" => Conflict::ChannelAlreadyConnected,
        "messages_provider_id_key" => Conflict::DuplicateMessage,
        "jobs_dedupe_key" => Conflict::DuplicateJob,
        _ => Conflict::Other,
    }
}

/// Every delivery status in progress order (the order of [`DeliveryStatus`]'s `Ord`).
pub(crate) const STATUS_ORDER: [DeliveryStatus; 7] = [
    DeliveryStatus::Queued,
    DeliveryStatus::Uncertain,
    DeliveryStatus::Sent,
    DeliveryStatus::Delivered,
    DeliveryStatus::Read,
    DeliveryStatus::Played,
    DeliveryStatus::Failed,
];

/// `CASE status WHEN 'queued' THEN 0 … END`: the stored status's rank, for monotonic updates.
pub(crate) static STATUS_RANK_SQL: LazyLock<String> = LazyLock::new(|| {
    let arms: String = STATUS_ORDER
        .iter()
        .enumerate()
        .map(|(rank, status)| format!(" WHEN '{}' THEN {rank}", status.as_str()))
        .collect();
    format!("(CASE status{arms} ELSE -1 END)")
});

/// The rank of a status in [`STATUS_ORDER`].
pub(crate) fn status_rank(status: DeliveryStatus) -> i64 {
    let rank = STATUS_ORDER.iter().position(|s| *s == status).unwrap_or(0);
    i64::try_from(rank).unwrap_or(0)
}

/// Buries the jobs whose last allowed attempt was claimed and whose lease then ended without an
/// outcome (the worker died, maybe because of the job): they become `dead` instead of being
/// claimed again, so a job that crashes its worker cannot loop. `$1` is now.
pub(crate) const BURY_ABANDONED_JOBS: &str = "UPDATE jobs SET state = 'dead', locked_by = NULL, \
        locked_until = NULL, updated_at = $1, \
        last_error = 'the lease of the last attempt ended without an outcome' \
    WHERE state = 'running' AND locked_until <= $1 AND attempts >= max_attempts";

/// The claim condition that keeps a queue in order: a job whose queue has an earlier job that
/// is pending, running or held waits (`jobs` is the candidate row).
pub(crate) const QUEUE_IS_FREE: &str = "(jobs.queue_key IS NULL OR NOT EXISTS (\
    SELECT 1 FROM jobs earlier WHERE earlier.queue_key = jobs.queue_key AND earlier.id < jobs.id \
    AND earlier.state IN ('pending', 'running', 'held')))";

/// A `limit` as SQL wants it.
pub(crate) fn limit(limit: u32) -> i64 {
    i64::from(limit)
}

/// The least time-ordered id (UUIDv7) made at `at`: every id made before `at` is below it.
///
/// Rows keyed by such ids (inbox rows, jobs) are in the order they were made, so a sweep of
/// old rows walks the primary key up to this id and reads no newer row.
pub(crate) fn first_id_at(at: DateTime<Utc>) -> uuid::Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid()
}

/// Maps the driver errors that are not about a particular database's rules: connection and
/// pool problems are `Unavailable`, decoding problems `Corrupt`, the rest `Database`.
pub(crate) fn from_sqlx(error: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match error {
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
            StoreError::Unavailable(error.to_string())
        }
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. } => StoreError::Corrupt(error.to_string()),
        other => StoreError::Database(Box::new(other)),
    }
}

/// Maps a migration failure.
pub(crate) fn from_migrate(error: sqlx::migrate::MigrateError) -> StoreError {
    match error {
        sqlx::migrate::MigrateError::Execute(inner) => from_sqlx(inner),
        other => StoreError::Database(Box::new(other)),
    }
}

/// The versions a database must have applied, given the embedded migrator and the rows of
/// `_sqlx_migrations` that succeeded; `Unavailable` naming the first missing one.
pub(crate) fn check_applied(
    migrator: &sqlx::migrate::Migrator,
    applied: &[i64],
) -> Result<(), StoreError> {
    let missing = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .find(|m| !applied.contains(&m.version));
    match missing {
        Some(m) => Err(StoreError::Unavailable(format!(
            "migration {} ({}) is not applied",
            m.version, m.description
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_order_matches_the_domain_order() {
        assert!(STATUS_ORDER.windows(2).all(|w| w[0] < w[1]));
        for status in STATUS_ORDER {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn pool_problems_are_unavailable_and_decoding_problems_corrupt() {
        assert!(matches!(
            from_sqlx(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        let decode = sqlx::Error::ColumnNotFound("state".into());
        assert!(matches!(from_sqlx(decode), StoreError::Corrupt(_)));
        assert!(matches!(
            from_sqlx(sqlx::Error::RowNotFound),
            StoreError::Database(_)
        ));
    }

    #[test]
    fn unique_indexes_map_to_their_conflicts() {
        let pairs = [
            (
                "channel_integrations_active_account_key",
                Conflict::AccountInUse,
            ),
            (
                "channel_integrations_business_channel_key",
                Conflict::ChannelAlreadyConnected,
            ),
            ("messages_provider_id_key", Conflict::DuplicateMessage),
            ("jobs_dedupe_key", Conflict::DuplicateJob),
            ("api_keys_pkey", Conflict::Other),
        ];
        for (index, conflict) in pairs {
            assert_eq!(conflict_for_index(index), conflict, "{index}");
        }
    }

    #[test]
    fn truncation_keeps_microseconds() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(truncate(at).timestamp_subsec_nanos(), 123_456_000);
    }
}
