//! How the shared store code ([`super::shared`]) talks to either database.
//!
//! SQL is written once with `$1, $2, …` placeholders, which SQLite (through
//! sqlx) understands as well as PostgreSQL. Arguments travel as [`Arg`]s, so a
//! query is built without naming the database; rows come back as the shared
//! row structs of [`super::rows`]. [`Conn`] is implemented for both
//! connection types below; what really differs between the backends (row
//! locks, a few statements) is [`Dialect`], implemented in each backend's
//! module.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dataerai_proto::api::OwnerType;
use serde_json::Value;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::types::Json;
use sqlx::FromRow;

use super::time::{db_time, DbTime};
use super::BlobLocation;
use crate::error::Result;
use crate::rules::signed;

/// One bound value: text, integer, time (bound through [`db_time`]), JSON,
/// float or boolean,
/// each maybe `NULL`.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Time(Option<DbTime>),
    Json(Value),
    Float(Option<f64>),
    Bool(Option<bool>),
}

impl Arg {
    /// A JSON column's value.
    pub fn json<T: serde::Serialize>(v: &T) -> Arg {
        Arg::Json(serde_json::to_value(v).expect("serialising JSON values cannot fail"))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_string()))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&String>> for Arg {
    fn from(v: Option<&String>) -> Self {
        Arg::Text(v.cloned())
    }
}
impl From<OwnerType> for Arg {
    fn from(v: OwnerType) -> Self {
        Arg::from(v.as_str())
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<u64> for Arg {
    fn from(v: u64) -> Self {
        Arg::Int(Some(signed(v)))
    }
}
impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}
impl From<Option<u64>> for Arg {
    fn from(v: Option<u64>) -> Self {
        Arg::Int(v.map(signed))
    }
}
impl From<Option<u32>> for Arg {
    fn from(v: Option<u32>) -> Self {
        Arg::Int(v.map(i64::from))
    }
}
impl From<DateTime<Utc>> for Arg {
    fn from(v: DateTime<Utc>) -> Self {
        Arg::Time(Some(db_time(v)))
    }
}
impl From<Option<DateTime<Utc>>> for Arg {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::Time(v.map(db_time))
    }
}

/// `args![a, b, …]`: the arguments of a query, in placeholder order.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        vec![$($crate::meta::sql::Arg::from($arg)),*]
    };
}
pub(crate) use args;

/// A row struct both databases decode (every `#[derive(sqlx::FromRow)]` of
/// [`super::rows`], and tuples of plain values).
pub(crate) trait Decoded:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Decoded for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// A connection (pooled or inside a transaction) the shared code runs
/// queries on.
#[async_trait]
pub(crate) trait Conn: Send {
    /// Rows changed.
    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64>;
    async fn fetch_optional<T: Decoded>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<T>>;
    async fn fetch_all<T: Decoded>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>>;

    async fn fetch_one<T: Decoded>(&mut self, sql: &str, args: Vec<Arg>) -> Result<T> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }
}

/// What the two databases do differently, implemented in `sqlite.rs` and
/// `postgres.rs`.
#[async_trait]
pub(crate) trait Dialect: Conn {
    /// Appended to a `SELECT` whose rows a write transaction decides on:
    /// `FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write
    /// transactions hold the database's one write lock from their start.
    const FOR_UPDATE: &'static str;
    /// As [`Self::FOR_UPDATE`], for rows that may be shared (`FOR SHARE`).
    const FOR_SHARE: &'static str;
    /// The column that orders versions completed in the same microsecond by
    /// creation (SQLite's `rowid`, PostgreSQL's `seq`).
    const CREATION_ORDER: &'static str;
    /// How this database indexes and matches full text.
    const FULL_TEXT: crate::search::sql::FullText;
    /// Whether a statement built with [`Marks`] numbers its placeholders
    /// (`$1, $2, …`, PostgreSQL) or writes plain `?`s (SQLite, below).
    const NUMBERED_MARKS: bool = true;
    /// Most arguments of one multi-row statement ([`insert_rows`]).
    const MAX_ARGS: usize = 30_000;

    /// Of `candidates` (sorted, no duplicates), the content ids whose blobs
    /// no live (non-aborted) content file uses any more, as its own chunks
    /// or through a dedup pointer.
    async fn unreferenced(&mut self, candidates: Vec<String>) -> Result<Vec<String>>;
    /// Record the verified checksums (in file order) of a content's files.
    async fn set_checksums(&mut self, content_id: &str, checksums: &[String]) -> Result<()>;

    /// The dedup lookup of many files (a batch's): for each, where a
    /// complete file of its owner with its size and checksum is stored, if
    /// anywhere (in `wanted`'s order). By default one query per file.
    async fn stored_files(&mut self, wanted: &[StoredFileKey]) -> Result<Vec<Option<BlobLocation>>>
    where
        Self: Sized,
    {
        let mut out = Vec::with_capacity(wanted.len());
        for key in wanted {
            out.push(super::shared::find_stored_file(self, key).await?);
        }
        Ok(out)
    }
}

/// The placeholders of a statement whose arguments are bound in the order
/// its placeholders appear, each once: `$1, $2, …` on PostgreSQL, `?` on
/// SQLite. SQLite looks a named placeholder up by walking the statement's
/// list of names, when it prepares the statement and again when each
/// argument is bound, so a statement of n `$n`s costs n² steps; a plain `?`
/// is found by its position. The batch statements carry hundreds of
/// arguments (docs/performance.md, "Small files").
pub(crate) struct Marks {
    numbered: bool,
    given: usize,
}

impl Marks {
    /// The placeholders of one statement on `C`'s database.
    pub fn of<C: Dialect>() -> Marks {
        Marks {
            numbered: C::NUMBERED_MARKS,
            given: 0,
        }
    }

    /// The next placeholder.
    pub fn one(&mut self) -> String {
        self.given += 1;
        if self.numbered {
            format!("${}", self.given)
        } else {
            "?".to_string()
        }
    }

    /// The next `n` placeholders, comma-separated.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }

    /// `(…), (…), …`: `rows` rows of the next `width` placeholders each.
    pub fn rows(&mut self, rows: usize, width: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(width)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Insert `rows` (`width` values each, flattened) into `table` in as few
/// multi-row statements as [`Dialect::MAX_ARGS`] allows, each ending with
/// `tail` (an `ON CONFLICT` clause, or nothing).
pub(crate) async fn insert_rows<C: Dialect>(
    c: &mut C,
    table: &str,
    columns: &str,
    width: usize,
    rows: Vec<Arg>,
    tail: &str,
) -> Result<()> {
    let per_statement = (C::MAX_ARGS / width) * width;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Arg> = rows.by_ref().take(per_statement).collect();
        let values = Marks::of::<C>().rows(chunk.len() / width, width);
        c.execute(
            &format!("INSERT INTO {table} ({columns}) VALUES {values}{tail}"),
            chunk,
        )
        .await?;
    }
    Ok(())
}

/// What the dedup lookup ([`Dialect::stored_files`]) looks for: a complete
/// file of this owner with this size and checksum.
pub(crate) struct StoredFileKey {
    pub owner_type: OwnerType,
    pub owner_id: String,
    pub size: u64,
    pub checksum: String,
}

/// Bind `args` to a query of either database.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
                Arg::Time(v) => query.bind(v),
                Arg::Json(v) => query.bind(Json(v)),
                Arg::Float(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
            };
        }
        query
    }};
}

/// [`Conn`] for a connection type of sqlx (written once, expanded twice).
macro_rules! impl_conn {
    ($conn:ty) => {
        #[async_trait]
        impl Conn for $conn {
            async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
                let done = bind_all!(sqlx::query(sql), args)
                    .execute(&mut *self)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn fetch_optional<T: Decoded>(
                &mut self,
                sql: &str,
                args: Vec<Arg>,
            ) -> Result<Option<T>> {
                let row = bind_all!(sqlx::query(sql), args)
                    .fetch_optional(&mut *self)
                    .await?;
                Ok(row.map(|r| T::from_row(&r)).transpose()?)
            }

            async fn fetch_all<T: Decoded>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
                let rows = bind_all!(sqlx::query(sql), args)
                    .fetch_all(&mut *self)
                    .await?;
                Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
            }
        }
    };
}

impl_conn!(SqliteConnection);
impl_conn!(PgConnection);

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared SQL relies on SQLite taking `$n` placeholders, reusing one
    /// (`$1` twice) and taking them out of order.
    #[tokio::test]
    async fn sqlite_takes_numbered_placeholders() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let (a, b, c): (String, i64, String) = conn
            .fetch_one("SELECT $2, $1 + 1, $2 || $2", args![41i64, "x"])
            .await
            .unwrap();
        assert_eq!((a.as_str(), b, c.as_str()), ("x", 42, "xx"));
    }

    /// Statements built with `Marks` bind in order on both kinds of
    /// placeholders: rows inserted across several statements
    /// (more than `MAX_ARGS` arguments) come back as given.
    #[tokio::test]
    async fn rows_inserted_with_marks_come_back_as_given() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let c = &mut *conn;
        assert_eq!(Marks::of::<SqliteConnection>().rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(Marks::of::<PgConnection>().rows(2, 2), "($1, $2), ($3, $4)");
        c.execute("CREATE TABLE t (n INTEGER, s TEXT, x INTEGER)", vec![])
            .await
            .unwrap();
        let n = <SqliteConnection as Dialect>::MAX_ARGS / 3 + 7;
        let mut rows = Vec::new();
        for i in 0..n {
            rows.extend(args![i as u64, format!("s{i}"), Option::<u64>::None]);
        }
        insert_rows(c, "t", "n, s, x", 3, rows, "").await.unwrap();
        let back: Vec<(i64, String, Option<i64>)> = c
            .fetch_all("SELECT n, s, x FROM t ORDER BY rowid", vec![])
            .await
            .unwrap();
        assert_eq!(back.len(), n);
        for (i, (k, s, x)) in back.into_iter().enumerate() {
            assert_eq!((k, s, x), (i as i64, format!("s{i}"), None));
        }
    }
}
