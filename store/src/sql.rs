//! One statement, two drivers: what lets every capability write its statements and its row
//! mapping once for both backends.
//!
//! [`Db`] is a borrowed pool of either backend. A [`Query`] built from it binds values the
//! way that backend stores them (timestamps as `timestamptz` or as INTEGER microseconds, id
//! lists as arrays or as JSON) and hands each result row to a mapping function as a [`Row`],
//! which decodes columns the same way. The few dialect words that differ are methods of
//! [`Db`]. Statements are sqlx's own (`$1` placeholders work on both); what differs in kind
//! (queue claims, the group-commit writer, set-based units) is written against sqlx directly in
//! the backend's own module.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Decode, Encode, Postgres, Row as _, Sqlite, Type};
use switchboard_core::StoreError;
use switchboard_core::store::StoreResult;
use uuid::Uuid;

use crate::{common, error::db};

/// A pool of one of the two backends.
#[derive(Debug, Clone, Copy)]
pub enum Db<'a> {
    Postgres(&'a PgPool),
    Sqlite(&'a SqlitePool),
}

/// A value both drivers encode.
pub(crate) trait Value<'q>:
    'q + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>
{
}

impl<'q, T> Value<'q> for T where
    T: 'q + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>
{
}

/// A column type both drivers decode.
pub(crate) trait Column:
    for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

impl<'a> Db<'a> {
    /// A statement to bind and run.
    pub(crate) fn query(self, sql: &'a str) -> Query<'a> {
        match self {
            Self::Postgres(pool) => Query::Postgres(pool, sqlx::query(sql)),
            Self::Sqlite(pool) => Query::Sqlite(pool, sqlx::query(sql)),
        }
    }

    /// Applies the backend's pending migrations.
    pub(crate) async fn migrate(self) -> StoreResult<()> {
        match self {
            Self::Postgres(pool) => crate::postgres::MIGRATOR.run(pool).await,
            Self::Sqlite(pool) => crate::sqlite::MIGRATOR.run(pool).await,
        }
        .map_err(common::from_migrate)
    }

    /// Readiness: the database answers and every migration is applied.
    pub(crate) async fn ready(self) -> StoreResult<()> {
        self.query("SELECT 1").execute().await?;
        let applied = self
            .query("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(|row| row.get::<i64>("version"))
            .await
            .map_err(|_| StoreError::Unavailable("migrations have not been applied".into()))?;
        let migrator = match self {
            Self::Postgres(_) => &crate::postgres::MIGRATOR,
            Self::Sqlite(_) => &crate::sqlite::MIGRATOR,
        };
        common::check_applied(migrator, &applied)
    }

    /// The scalar function for the larger of two values (`GREATEST` ignores a NULL argument,
    /// SQLite's `max` returns NULL: callers `COALESCE` what may be NULL).
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Self::Postgres(_) => "GREATEST",
            Self::Sqlite(_) => "max",
        }
    }

    /// `column` is one of the ids bound as `param` with [`Query::bind_uuids`].
    pub(crate) fn in_uuids(self, column: &str, param: &str) -> String {
        match self {
            Self::Postgres(_) => format!("{column} = ANY({param})"),
            Self::Sqlite(_) => format!("{column} IN (SELECT unhex(value) FROM json_each({param}))"),
        }
    }

    /// `column` is one of the strings bound as `param` with [`Query::bind_texts`].
    pub(crate) fn in_texts(self, column: &str, param: &str) -> String {
        match self {
            Self::Postgres(_) => format!("{column} = ANY({param})"),
            Self::Sqlite(_) => format!("{column} IN (SELECT value FROM json_each({param}))"),
        }
    }
}

/// A statement with its arguments, on the pool it will run on.
pub(crate) enum Query<'q> {
    Postgres(&'q PgPool, sqlx::query::Query<'q, Postgres, PgArguments>),
    Sqlite(
        &'q SqlitePool,
        sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    ),
}

impl<'q> Query<'q> {
    /// Binds the next parameter.
    #[must_use]
    pub(crate) fn bind<T: Value<'q>>(self, value: T) -> Self {
        match self {
            Self::Postgres(pool, query) => Self::Postgres(pool, query.bind(value)),
            Self::Sqlite(pool, query) => Self::Sqlite(pool, query.bind(value)),
        }
    }

    /// Binds a time, as the backend stores times (both keep microseconds).
    #[must_use]
    pub(crate) fn bind_time(self, at: DateTime<Utc>) -> Self {
        self.bind_opt_time(Some(at))
    }

    /// Binds a time that may be absent.
    #[must_use]
    pub(crate) fn bind_opt_time(self, at: Option<DateTime<Utc>>) -> Self {
        match self {
            Self::Postgres(pool, query) => {
                Self::Postgres(pool, query.bind(at.map(common::truncate)))
            }
            Self::Sqlite(pool, query) => {
                Self::Sqlite(pool, query.bind(at.map(|at| at.timestamp_micros())))
            }
        }
    }

    /// Binds a list of ids for [`Db::in_uuids`].
    #[must_use]
    pub(crate) fn bind_uuids(self, ids: impl Iterator<Item = Uuid>) -> Self {
        match self {
            Self::Postgres(pool, query) => {
                Self::Postgres(pool, query.bind(ids.collect::<Vec<_>>()))
            }
            Self::Sqlite(pool, query) => {
                let hex: Vec<String> = ids.map(|id| id.simple().to_string()).collect();
                Self::Sqlite(pool, query.bind(json_array(&hex)))
            }
        }
    }

    /// Binds a list of strings for [`Db::in_texts`].
    #[must_use]
    pub(crate) fn bind_texts(self, texts: &'q [String]) -> Self {
        match self {
            Self::Postgres(pool, query) => Self::Postgres(pool, query.bind(texts)),
            Self::Sqlite(pool, query) => Self::Sqlite(pool, query.bind(json_array(texts))),
        }
    }

    /// Every row, each through `map`.
    pub(crate) async fn fetch_all<T>(
        self,
        map: impl Fn(Row<'_>) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        match self {
            Self::Postgres(pool, query) => {
                let rows = query.fetch_all(pool).await.map_err(db)?;
                rows.iter().map(|row| map(Row::Postgres(row))).collect()
            }
            Self::Sqlite(pool, query) => {
                let rows = query.fetch_all(pool).await.map_err(db)?;
                rows.iter().map(|row| map(Row::Sqlite(row))).collect()
            }
        }
    }

    /// The first row if there is one, through `map`.
    pub(crate) async fn fetch_optional<T>(
        self,
        map: impl Fn(Row<'_>) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        match self {
            Self::Postgres(pool, query) => {
                let row = query.fetch_optional(pool).await.map_err(db)?;
                row.as_ref().map(|row| map(Row::Postgres(row))).transpose()
            }
            Self::Sqlite(pool, query) => {
                let row = query.fetch_optional(pool).await.map_err(db)?;
                row.as_ref().map(|row| map(Row::Sqlite(row))).transpose()
            }
        }
    }

    /// The one row the statement returns, through `map`.
    pub(crate) async fn fetch_one<T>(
        self,
        map: impl Fn(Row<'_>) -> StoreResult<T> + Send,
    ) -> StoreResult<T> {
        self.fetch_optional(map)
            .await?
            .ok_or_else(|| common::from_sqlx(sqlx::Error::RowNotFound))
    }

    /// Runs the statement; how many rows it changed.
    pub(crate) async fn execute(self) -> StoreResult<u64> {
        match self {
            Self::Postgres(pool, query) => {
                Ok(query.execute(pool).await.map_err(db)?.rows_affected())
            }
            Self::Sqlite(pool, query) => Ok(query.execute(pool).await.map_err(db)?.rows_affected()),
        }
    }

    /// Runs an update by key: `NotFound` when it changed no row.
    pub(crate) async fn execute_one(self) -> StoreResult<()> {
        match self.execute().await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

/// A JSON array of strings, SQLite's way of passing a list as one parameter.
fn json_array(items: &[String]) -> String {
    serde_json::Value::from(items).to_string()
}

/// A result row of either backend.
#[derive(Clone, Copy)]
pub enum Row<'r> {
    Postgres(&'r PgRow),
    Sqlite(&'r SqliteRow),
}

impl Row<'_> {
    /// Reads a column.
    pub(crate) fn get<T: Column>(self, column: &str) -> StoreResult<T> {
        match self {
            Self::Postgres(row) => row.try_get(column).map_err(db),
            Self::Sqlite(row) => row.try_get(column).map_err(db),
        }
    }

    /// Reads a time column.
    pub(crate) fn time(self, column: &str) -> StoreResult<DateTime<Utc>> {
        self.opt_time(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
    }

    /// Reads a nullable time column.
    pub(crate) fn opt_time(self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        match self {
            Self::Postgres(row) => row.try_get(column).map_err(db),
            Self::Sqlite(row) => match row.try_get::<Option<i64>, _>(column).map_err(db)? {
                None => Ok(None),
                Some(micros) => DateTime::from_timestamp_micros(micros)
                    .map(Some)
                    .ok_or_else(|| StoreError::Corrupt(format!("{column} out of range"))),
            },
        }
    }

    /// Reads a text column holding one of a set of names (`parse` of the domain type).
    pub(crate) fn name<T>(
        self,
        column: &str,
        parse: impl FnOnce(&str) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let raw: String = self.get(column)?;
        parse(&raw)
    }
}
