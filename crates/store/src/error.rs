//! What can go wrong in the store, worded for the person who has to put it right.

/// An error from the store.
///
/// Each message names the database (with any password hidden) or the operation, and includes
/// the underlying cause in its text. The cause is kept in a field rather than exposed through
/// [`std::error::Error::source`], so that `{:#}` in the CLI does not print it twice.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database address is not one the store understands.
    #[error(
        "cannot use database address {url:?}: {reason} \
         (use sqlite:FILE, a file path, or postgres://user@host/database)"
    )]
    BadAddress { url: String, reason: String },

    /// The SQLite file could not be created or opened.
    #[error("cannot open database {url}: {cause}")]
    OpenSqlite { url: String, cause: sqlx::Error },

    /// No PostgreSQL server answered at the address given.
    #[error(
        "cannot reach PostgreSQL at {url}: {cause} (is the server running and the address right?)"
    )]
    UnreachablePostgres { url: String, cause: sqlx::Error },

    /// A PostgreSQL server answered but refused the connection (authentication, missing
    /// database, permissions…).
    #[error("PostgreSQL at {url} refused the connection: {cause}")]
    RefusedPostgres { url: String, cause: sqlx::Error },

    /// The schema could not be brought up to date.
    #[error(
        "cannot bring the schema of {url} up to date: {cause} \
         (a migration that was already applied must not be edited; add a new numbered one)"
    )]
    Migrate {
        url: String,
        cause: sqlx::migrate::MigrateError,
    },

    /// A query failed while doing something.
    #[error("database error while trying to {doing}: {cause}")]
    Database { doing: String, cause: sqlx::Error },

    /// The caller asked for something the store will not do.
    #[error("{0}")]
    Invalid(String),

    /// An imported posting falls in a period that is closed.
    #[error(
        "line {line}: posting {reference:?} is in {period}, which is closed; \
         nothing from this file was imported"
    )]
    ClosedPeriod {
        line: i64,
        reference: String,
        period: String,
    },

    /// An imported posting repeats a reference the partnership already has, or one earlier in
    /// the same file (`in_this_file`).
    #[error(
        "line {line}: reference {reference:?} {}; nothing from this file was imported",
        repeated_where(*.in_this_file, .earlier_file, *.earlier_import_id, .earlier_line)
    )]
    DuplicateReference {
        line: i64,
        reference: String,
        earlier_file: String,
        earlier_import_id: i64,
        /// `", line N"` when the earlier line is known, else empty.
        earlier_line: String,
        /// The earlier posting is in the file being imported.
        in_this_file: bool,
    },

    /// The reader's row count or control total differ from what was written.
    #[error(
        "the file {file_name:?} says {expected_rows} rows totalling {expected_total_pence} pence, \
         but {written_rows} rows totalling {written_total_pence} pence were written; \
         nothing was imported"
    )]
    ControlTotalMismatch {
        file_name: String,
        expected_rows: i64,
        expected_total_pence: i64,
        written_rows: i64,
        written_total_pence: i64,
    },

    /// A period cannot be closed, or written to.
    #[error("period {period}: {reason}")]
    Period { period: String, reason: String },

    /// Data read back from the database is not what the store wrote.
    #[error("stored data is damaged: {0}")]
    Damaged(String),
}

impl StoreError {
    /// A closure for `map_err` that names the operation that failed.
    pub(crate) fn doing(doing: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let doing = doing.into();
        move |cause| StoreError::Database { doing, cause }
    }
}

/// Where a repeated reference was met before, for [`StoreError::DuplicateReference`].
fn repeated_where(
    in_this_file: bool,
    earlier_file: &str,
    earlier_import_id: i64,
    earlier_line: &str,
) -> String {
    if in_this_file {
        let line = earlier_line.trim_start_matches(", ");
        format!("repeats {line} of this file ({earlier_file:?})")
    } else {
        format!(
            "was already imported from {earlier_file:?} (import {earlier_import_id}{earlier_line})"
        )
    }
}
