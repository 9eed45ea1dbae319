//! The one place where the auth queries tell SQLite and PostgreSQL apart: how
//! a connection or a write transaction is obtained, whether a `SELECT` must
//! lock its rows, and which sqlx driver sends a query. Everything else in
//! [`super::store`] is written once for both.

use serde_json::{Map, Value};
use sqlx::pool::PoolConnection;
use sqlx::types::Json;
use sqlx::{
    Arguments, Database, Encode, FromRow, PgConnection, Postgres, Sqlite, SqliteConnection, Type,
};

use crate::error::Result;
use crate::meta::postgres::PgStore;
use crate::meta::shared::Commit;
use crate::meta::sqlite::{SqliteStore, WriteTx};
use crate::meta::time::{db_time, DbTime};

/// A store whose database the auth queries can run on (see [`Db`]).
pub trait AuthBackend: Send + Sync {
    fn auth_db(&self) -> Db<'_>;
}

impl AuthBackend for SqliteStore {
    fn auth_db(&self) -> Db<'_> {
        Db::Sqlite(self)
    }
}

impl AuthBackend for PgStore {
    fn auth_db(&self) -> Db<'_> {
        Db::Postgres(self)
    }
}

/// The database of a store.
pub enum Db<'a> {
    Sqlite(&'a SqliteStore),
    Postgres(&'a PgStore),
}

impl Db<'_> {
    /// A pooled connection, for statements that need no transaction.
    pub async fn reader(&self) -> Result<Reader> {
        Ok(match self {
            Db::Sqlite(s) => Reader::Sqlite(s.pool.acquire().await?),
            Db::Postgres(s) => Reader::Postgres(s.pool.acquire().await?),
        })
    }

    /// Run one statement on a pooled connection (no transaction); answers
    /// how many rows it changed.
    pub async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        let mut reader = self.reader().await?;
        reader.conn().execute(sql, args).await
    }

    /// The rows of one query on a pooled connection (no transaction).
    pub async fn fetch_all<R: AuthRow>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<R>> {
        let mut reader = self.reader().await?;
        reader.conn().fetch_all(sql, args).await
    }

    /// The first row of one query on a pooled connection, if any.
    pub async fn fetch_optional<R: AuthRow>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<R>> {
        Ok(self.fetch_all(sql, args).await?.into_iter().next())
    }

    /// Exactly one row of one query on a pooled connection.
    pub async fn fetch_one<R: AuthRow>(&self, sql: &str, args: &[Arg<'_>]) -> Result<R> {
        let mut reader = self.reader().await?;
        reader.conn().fetch_one(sql, args).await
    }

    /// A write transaction: SQLite takes its one write lock up front (`BEGIN
    /// IMMEDIATE`, queued in-process), PostgreSQL locks the rows it reads
    /// with [`Db::row_lock`].
    pub async fn writer(&self) -> Result<Writer> {
        Ok(Writer(match self {
            Db::Sqlite(s) => WriterKind::Sqlite(s.begin_write().await?),
            Db::Postgres(s) => WriterKind::Postgres(s.begin().await?),
        }))
    }

    /// A write transaction and the row `select` (a `SELECT` with one `$1`
    /// argument, `key`) finds in it, locked until the transaction ends.
    pub async fn writer_with_row<R: AuthRow>(
        &self,
        select: &str,
        key: &str,
    ) -> Result<(Writer, Option<R>)> {
        let mut tx = self.writer().await?;
        let sql = format!("{select}{}", self.row_lock());
        let row = tx.conn().fetch_optional(&sql, &[Arg::Text(key)]).await?;
        Ok((tx, row))
    }

    /// Appended to a `SELECT` in a write transaction whose rows the rest of
    /// the transaction relies on: `" FOR UPDATE"` on PostgreSQL; nothing on
    /// SQLite, whose write transaction already holds the one write lock.
    pub fn row_lock(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE",
        }
    }
}

/// A pooled connection of either backend.
pub enum Reader {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Reader {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Reader::Sqlite(c) => Conn::Sqlite(c),
            Reader::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// A write transaction of either backend; dropped without [`Writer::commit`],
/// it rolls back.
pub struct Writer(WriterKind);

enum WriterKind {
    Sqlite(WriteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Writer {
    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            WriterKind::Sqlite(tx) => Conn::Sqlite(tx),
            WriterKind::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self.0 {
            WriterKind::Sqlite(tx) => tx.commit().await?,
            WriterKind::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// A value bound to a `$n` placeholder: the few types the auth tables hold.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    Bool(bool),
    Time(chrono::DateTime<chrono::Utc>),
    Json(&'a Map<String, Value>),
}

/// A row struct both backends can decode (`#[derive(sqlx::FromRow)]`).
pub trait AuthRow:
    for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> FromRow<'r, sqlx::postgres::PgRow>
    + Send
    + Unpin
{
}

impl<T> AuthRow for T where
    T: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin
{
}

/// A connection of either backend, inside a transaction or not.
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// Run a statement; answers how many rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let q = sqlx::query_with(sql, arguments::<Sqlite>(args)?);
                q.execute(&mut **c).await?.rows_affected()
            }
            Conn::Postgres(c) => {
                let q = sqlx::query_with(sql, arguments::<Postgres>(args)?);
                q.execute(&mut **c).await?.rows_affected()
            }
        })
    }

    /// The row of a query by key, if any.
    pub async fn fetch_optional<R: AuthRow>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<R>> {
        Ok(self.fetch_all(sql, args).await?.into_iter().next())
    }

    pub async fn fetch_all<R: AuthRow>(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<R>> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let q = sqlx::query_as_with(sql, arguments::<Sqlite>(args)?);
                q.fetch_all(&mut **c).await?
            }
            Conn::Postgres(c) => {
                let q = sqlx::query_as_with(sql, arguments::<Postgres>(args)?);
                q.fetch_all(&mut **c).await?
            }
        })
    }

    /// Exactly one row (`sqlx::Error::RowNotFound` otherwise).
    pub async fn fetch_one<R: AuthRow>(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<R> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }
}

/// `args` as the driver's argument list.
fn arguments<'q, DB>(args: &[Arg<'q>]) -> Result<DB::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    DbTime: Encode<'q, DB> + Type<DB>,
    Json<&'q Map<String, Value>>: Encode<'q, DB> + Type<DB>,
{
    let mut out = DB::Arguments::<'q>::default();
    for arg in args {
        match *arg {
            Arg::Text(v) => out.add(v),
            Arg::OptText(v) => out.add(v),
            Arg::Int(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Time(v) => out.add(db_time(v)),
            Arg::Json(v) => out.add(Json(v)),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}
