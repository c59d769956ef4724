//! The little the store needs from a database, over either backend.
//!
//! The store's logic (the write path, the audit chain, the reads) is written once against these
//! enums; only here does the code say "SQLite" or "PostgreSQL". The SQL itself is shared: `$1`
//! placeholders work in both (SQLite reads `$NNN` as a numbered parameter), and integers are
//! 64-bit in both schemas.

use sqlx::postgres::{PgPool, PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqlitePool, SqliteRow};
use sqlx::{Database, Encode, Row as _, Type, query::Query};

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bytes(&'a [u8]),
}

fn bind<'q, DB>(
    mut query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    args: &[Arg<'q>],
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
{
    for arg in args {
        query = match *arg {
            Arg::Text(s) => query.bind(s),
            Arg::OptText(s) => query.bind(s),
            Arg::Int(i) => query.bind(i),
            Arg::OptInt(i) => query.bind(i),
            Arg::Bytes(b) => query.bind(b),
        };
    }
    query
}

/// A connection pool to one of the two backends.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Starts a write transaction.
    ///
    /// SQLite gets `BEGIN IMMEDIATE`: it takes the write lock at once, so a transaction that
    /// reads and then writes cannot fail half-way because another writer got in first (busy
    /// timeout applies instead). PostgreSQL serialises writers per partnership with
    /// [`Tx::lock_partnership`].
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    pub(crate) async fn fetch_all<'q>(
        &self,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => bind(sqlx::query(sql), args)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Pool::Postgres(p) => bind(sqlx::query(sql), args)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    pub(crate) async fn fetch_optional<'q>(
        &self,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> Result<Option<Row>, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => bind(sqlx::query(sql), args)
                .fetch_optional(p)
                .await?
                .map(Row::Sqlite),
            Pool::Postgres(p) => bind(sqlx::query(sql), args)
                .fetch_optional(p)
                .await?
                .map(Row::Postgres),
        })
    }

    /// Runs SQL text as given, possibly several statements, with no parameters.
    pub(crate) async fn execute_raw(&self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Pool::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
            Pool::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
        }
    }
}

/// An open transaction. Dropping it without [`Tx::commit`] rolls it back.
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// Makes concurrent writers to the same partnership wait for each other, so that two of
    /// them cannot both take the same next version or audit sequence number. SQLite needs
    /// nothing here: `BEGIN IMMEDIATE` already admits one writer at a time.
    pub(crate) async fn lock_partnership(&mut self, key: &str) -> Result<(), sqlx::Error> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(key)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn execute<'q>(
        &mut self,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Tx::Sqlite(t) => bind(sqlx::query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::Postgres(t) => bind(sqlx::query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        })
    }

    pub(crate) async fn fetch_optional<'q>(
        &mut self,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> Result<Option<Row>, sqlx::Error> {
        Ok(match self {
            Tx::Sqlite(t) => bind(sqlx::query(sql), args)
                .fetch_optional(&mut **t)
                .await?
                .map(Row::Sqlite),
            Tx::Postgres(t) => bind(sqlx::query(sql), args)
                .fetch_optional(&mut **t)
                .await?
                .map(Row::Postgres),
        })
    }

    pub(crate) async fn fetch_all<'q>(
        &mut self,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Tx::Sqlite(t) => bind(sqlx::query(sql), args)
                .fetch_all(&mut **t)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Tx::Postgres(t) => bind(sqlx::query(sql), args)
                .fetch_all(&mut **t)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }
}

/// A result row from either backend, read by column name.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    pub(crate) fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        match self {
            Row::Sqlite(r) => r.try_get(column),
            Row::Postgres(r) => r.try_get(column),
        }
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            Row::Sqlite(r) => r.try_get(column),
            Row::Postgres(r) => r.try_get(column),
        }
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        match self {
            Row::Sqlite(r) => r.try_get(column),
            Row::Postgres(r) => r.try_get(column),
        }
    }

    pub(crate) fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        match self {
            Row::Sqlite(r) => r.try_get(column),
            Row::Postgres(r) => r.try_get(column),
        }
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        match self {
            Row::Sqlite(r) => r.try_get(column),
            Row::Postgres(r) => r.try_get(column),
        }
    }
}
