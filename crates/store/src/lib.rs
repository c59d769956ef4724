//! Concordat's store: where partnerships, their agreement versions and the audit log live.
//!
//! One [`Store`] trait, two backends behind it: SQLite (the embedded default, one file) and
//! PostgreSQL (the multi-user server). [`open`] picks the backend from the address, applies the
//! migrations for it and hands back a `Box<dyn Store>`.
//!
//! Rules that hold for both backends:
//!
//! - **One write path.** Every change runs in one transaction together with the audit record
//!   that describes it (who, when, what, before and after). If either fails, neither happens.
//! - **The caller supplies the time.** The store never reads a clock, so the same calls give
//!   the same database, and tests are deterministic.
//! - **A hash chain per partnership.** Each audit record carries the hash of the one before;
//!   [`Store::verify_audit`] recomputes them all. The formula is on [`AuditRecord`].
//! - **Every table carries `partnership_key`**, so a distributed PostgreSQL can shard by it.
//! - The interface is plain data (strings, `i64`, JSON values): the store knows nothing of the
//!   domain model it keeps.

mod accounts;
mod audit;
mod batch;
mod db;
mod error;
mod ledger;
mod ledger_store;
mod payments;
mod proceedings;
mod reference_runs;
mod sql_store;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

pub use accounts::{
    ACCOUNTS_CHAIN, AccountChange, ApiTokenRow, GrantRow, NewUser, OrganisationRow, SessionRow,
    UserRow,
};
pub use audit::{
    AuditMismatch, AuditRecord, AuditVerification, GENESIS_HASH, MismatchReason, canonical_json,
};
pub use error::StoreError;
pub use ledger::{
    BudgetLineRow, BudgetRevisionRow, BudgetRow, CommitmentRow, CorrectionRow, ForecastOverrideRow,
    ImportHeader, ImportOutcome, ImportRow, ImportSession, ImportStart, ImportSummaryRow,
    PaymentKind, PaymentRow, PostingFilter, PostingRow, ReclassifyRow, StoredCommitment,
    StoredPayment, StoredPosting, TotalsRow,
};

pub use proceedings::{
    DecisionRow, PaperInfo, PaperRow, ProceedingKind, ProceedingRow, StoredDecision,
    StoredProceeding,
};

use sql_store::SqlStore;

/// Who made a change, as it will appear in the audit log: `"cli:alice"`, `"web:bob@council"`,
/// `"system"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub name: String,
}

impl Actor {
    pub fn new(name: impl Into<String>) -> Actor {
        Actor { name: name.into() }
    }
}

/// An agreement file as loaded: its text, its checksum, and the model read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreementLoad {
    pub partnership_key: String,
    pub title: String,
    pub status: String,
    /// The file name as the user gave it, kept so a version can be traced back to its file.
    pub source_path: String,
    pub source_text: String,
    /// Lowercase hex SHA-256 of `source_text`; loading the same checksum again changes nothing.
    pub source_sha256: String,
    pub model_json: Value,
    /// The partners named in this version; they replace the stored partners.
    pub partners: Vec<PartnerRow>,
    /// The contribution-variation decision (its reference in the decision log) behind a
    /// version that changes contributions; the store refuses a reference that is not one.
    pub authority: Option<String>,
}

/// A partner to a partnership. `partner_id` is unique within its partnership only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerRow {
    pub partner_id: String,
    pub name: String,
    pub kind: String,
}

/// What [`Store::load_agreement`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LoadOutcome {
    /// A new partnership, stored as version 1.
    Created { version: i64 },
    /// The source is identical to the current version; nothing was written.
    Unchanged { version: i64 },
    /// A changed source, stored as the next version.
    NewVersion { version: i64, previous: i64 },
}

impl LoadOutcome {
    /// The version that is current after the load.
    pub fn version(&self) -> i64 {
        match *self {
            LoadOutcome::Created { version }
            | LoadOutcome::Unchanged { version }
            | LoadOutcome::NewVersion { version, .. } => version,
        }
    }
}

/// One line of the list of partnerships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgreementSummary {
    pub partnership_key: String,
    pub title: String,
    pub status: String,
    pub current_version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A partnership with its current agreement version in full and the history of versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAgreement {
    pub partnership_key: String,
    pub title: String,
    pub status: String,
    pub current_version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// The current version's file name, text, checksum and model.
    pub source_path: String,
    pub source_text: String,
    pub source_sha256: String,
    pub model_json: Value,
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// One stored version of an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    pub version: i64,
    pub source_sha256: String,
    pub source_path: String,
    pub loaded_at: String,
    pub loaded_by: String,
    /// The decision that authorised the version's changes to contributions, if any.
    pub authority: Option<String>,
}

/// The store: the same behaviour over SQLite and PostgreSQL.
///
/// Times (`at`) are RFC 3339 UTC text supplied by the caller; the store never reads a clock.
/// Lists come back in a fixed order (keys in byte order, then numbers ascending) that does not
/// depend on the database's collation.
#[async_trait]
pub trait Store: Send + Sync {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Stores an agreement file, idempotently.
    ///
    /// - New partnership → version 1, audit action `agreement.create`, before = none,
    ///   after = the model.
    /// - Same `source_sha256` as the current version → [`LoadOutcome::Unchanged`]; nothing is
    ///   written, not even an audit record.
    /// - Changed source → version n+1, audit action `agreement.new-version`, before = the
    ///   previous model, after = the new one; title, status and partners are replaced.
    async fn load_agreement(
        &self,
        actor: &Actor,
        at: &str,
        load: AgreementLoad,
    ) -> Result<LoadOutcome, StoreError>;

    /// Every partnership, sorted by key.
    async fn list_agreements(&self) -> Result<Vec<AgreementSummary>, StoreError>;

    /// One partnership with its current version, or `None` if there is no such key.
    async fn get_agreement(&self, key: &str) -> Result<Option<StoredAgreement>, StoreError>;

    /// The partners of one partnership (as of its current version), sorted by partner id.
    async fn partners(&self, key: &str) -> Result<Vec<PartnerRow>, StoreError>;

    /// The audit log of one partnership, or of all, sorted by partnership key then sequence.
    async fn audit_log(&self, key: Option<&str>) -> Result<Vec<AuditRecord>, StoreError>;

    /// Recomputes every audit chain and reports the first record that does not hold
    /// (altered, unlinked, missing), with the number of records checked.
    async fn verify_audit(&self) -> Result<AuditVerification, StoreError>;

    /// How many changes the partnership has had: the sequence number of its last audit record
    /// (0 for none). Every change to it goes through the write path and bumps this, so a
    /// cache can tell whether what it holds is still current.
    async fn audit_head_seq(&self, key: &str) -> Result<i64, StoreError>;

    /// The same check for one partnership's chain only.
    async fn verify_partnership_audit(&self, key: &str) -> Result<AuditVerification, StoreError>;

    /// Runs SQL directly against the database, bypassing the write path and the audit log.
    ///
    /// **For tests only**: it exists so that the conformance suite can tamper with stored data
    /// the way someone with database access could, and check that [`Store::verify_audit`]
    /// notices. Application code must never call it.
    async fn execute_raw_for_tests(&self, sql: &str) -> Result<(), StoreError>;

    // -----------------------------------------------------------------------------------------
    // The ledger

    /// Starts importing one ledger file into a partnership, all or nothing.
    ///
    /// If a file with the same SHA-256 was already imported into this partnership, nothing is
    /// written (not even an audit record) and [`ImportStart::AlreadyImported`] says when and
    /// by whom. Otherwise the returned session holds one open transaction: feed it postings
    /// in batches with [`ImportSession::add`], then [`ImportSession::commit`]. Dropping the
    /// session (or [`ImportSession::abort`]) rolls everything back. While the session is
    /// open, other writers to the same database (SQLite) or partnership (PostgreSQL) wait.
    async fn begin_import(
        &self,
        actor: &Actor,
        at: &str,
        header: ImportHeader,
    ) -> Result<ImportStart, StoreError>;

    /// Closes (locks) period `period` (1–12) of the financial year starting in `year_start`.
    /// Refused if it is already closed, or if a posting in it is on the suspense service line
    /// and has not been corrected. Audit action `period.close`.
    async fn close_period(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        year_start: i64,
        period: i64,
    ) -> Result<(), StoreError>;

    /// Closed periods as `(year_start, period)`, in order.
    async fn closed_periods(&self, key: &str) -> Result<Vec<(i64, i64)>, StoreError>;

    /// Posts one correction to an existing posting, into an open period. Audit action
    /// `ledger.correction`, before = the corrected posting, after = the correction.
    async fn post_correction(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        correction: CorrectionRow,
    ) -> Result<StoredPosting, StoreError>;

    /// Moves a posting (typically one in suspense) to other dimensions: two corrections in one
    /// transaction, one reversing it where it was and one posting it where it belongs. Audit
    /// action `ledger.reclassify`, before = the posting, after = both corrections.
    async fn reclassify(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        reclassify: ReclassifyRow,
    ) -> Result<[StoredPosting; 2], StoreError>;

    /// Sets a budget line, as its next revision (1, 2, …). Audit action `budget.set`, before =
    /// the previous revision, after = the new one. Returns the revision number.
    ///
    /// Revision 2 onwards must cite, in `authority`, a budget-revision or virement decision in
    /// the decision log (for the same fund, if it names one) with enough of its amount left;
    /// the change in the line's annual amount is drawn down from it. Refused otherwise.
    async fn set_budget(
        &self,
        actor: &Actor,
        at: &str,
        budget: BudgetRow,
    ) -> Result<i64, StoreError>;

    /// The current revision of every budget line of a year (of one fund, or all), sorted by
    /// fund, service line, partner, locality.
    async fn budgets(
        &self,
        key: &str,
        fund: Option<&str>,
        year_start: i64,
    ) -> Result<Vec<BudgetLineRow>, StoreError>;

    /// Every revision of one budget line, oldest first.
    async fn budget_history(
        &self,
        key: &str,
        fund: &str,
        year_start: i64,
        service_line: &str,
        partner: Option<&str>,
        locality: Option<&str>,
    ) -> Result<Vec<BudgetRevisionRow>, StoreError>;

    /// Records an order or care package not yet invoiced. Audit action `commitment.record`.
    async fn record_commitment(
        &self,
        actor: &Actor,
        at: &str,
        commitment: CommitmentRow,
    ) -> Result<(), StoreError>;

    /// Releases an open commitment (invoiced, cancelled…). Audit action `commitment.release`.
    async fn release_commitment(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        reference: &str,
        reason: &str,
    ) -> Result<(), StoreError>;

    /// Open commitments of a year (of one fund, or all), sorted by reference.
    async fn commitments(
        &self,
        key: &str,
        fund: Option<&str>,
        year_start: i64,
    ) -> Result<Vec<StoredCommitment>, StoreError>;

    /// Sets the forecast outturn of a service line as at a period, replacing any override for
    /// the same line and period. Audit action `forecast.override`.
    async fn set_forecast_override(
        &self,
        actor: &Actor,
        at: &str,
        forecast: ForecastOverrideRow,
    ) -> Result<(), StoreError>;

    /// Forecast overrides of a year (of one fund, or all), sorted by fund, service line,
    /// period.
    async fn forecast_overrides(
        &self,
        key: &str,
        fund: Option<&str>,
        year_start: i64,
    ) -> Result<Vec<ForecastOverrideRow>, StoreError>;

    /// Ledger totals by fund, period, service line, partner and locality for a year (of one
    /// fund, or all), sorted by those dimensions.
    async fn ledger_totals(
        &self,
        key: &str,
        fund: Option<&str>,
        year_start: i64,
    ) -> Result<Vec<TotalsRow>, StoreError>;

    /// Postings matching `filter`, sorted by date then reference, `limit` from `offset`.
    async fn postings(
        &self,
        key: &str,
        filter: &PostingFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<StoredPosting>, StoreError>;

    /// The files imported into a partnership, oldest first.
    async fn imports(&self, key: &str) -> Result<Vec<ImportRow>, StoreError>;

    /// Records a payment of a contribution or a funding transfer. Refused if its reference is
    /// already recorded. Audit action `payment.record`.
    async fn record_payment(
        &self,
        actor: &Actor,
        at: &str,
        payment: PaymentRow,
    ) -> Result<(), StoreError>;

    /// Reverses a payment recorded in error: it no longer counts, but stays on record with who
    /// reversed it, when and why. Audit action `payment.reverse`.
    async fn reverse_payment(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        reference: &str,
        reason: &str,
    ) -> Result<(), StoreError>;

    /// The payments recorded for a financial year and not reversed, by date then reference.
    async fn payments(&self, key: &str, year_start: i64) -> Result<Vec<StoredPayment>, StoreError>;

    // -----------------------------------------------------------------------------------------
    // Proceedings: meetings, decisions, disputes, complaints, risks, notice

    /// Adds (`row.new`) or replaces a meeting, dispute, complaint, risk or notice record.
    /// Audit actions `meeting.record`/`meeting.update`, `dispute.raise`/`dispute.update`,
    /// `complaint.receive`/…, `risk.add`/…, `notice.serve` (which also puts the partnership's
    /// status to "in notice" in the same transaction); before = the record replaced.
    async fn put_proceeding(
        &self,
        actor: &Actor,
        at: &str,
        row: ProceedingRow,
    ) -> Result<(), StoreError>;

    /// The records of one kind, by date then reference.
    async fn proceedings(
        &self,
        key: &str,
        kind: ProceedingKind,
    ) -> Result<Vec<StoredProceeding>, StoreError>;

    /// Stores a paper for a meeting whole; returns its number within the meeting. Audit
    /// action `meeting.paper`, after = its name, type, size and SHA-256.
    async fn add_paper(&self, actor: &Actor, at: &str, paper: PaperRow) -> Result<i64, StoreError>;

    async fn papers(&self, key: &str, meeting: &str) -> Result<Vec<PaperInfo>, StoreError>;

    async fn paper(
        &self,
        key: &str,
        meeting: &str,
        paper_id: i64,
    ) -> Result<Option<(PaperInfo, Vec<u8>)>, StoreError>;

    /// Records a decision that stands and, in the same transaction, the budget revisions it
    /// authorises (each citing it, drawing down its amount). Audit action `decision.record`,
    /// after = the decision and every budget change. Returns the revisions set.
    async fn record_decision(
        &self,
        actor: &Actor,
        at: &str,
        decision: DecisionRow,
        budgets: Vec<BudgetRow>,
    ) -> Result<Vec<i64>, StoreError>;

    /// The decision log, by date then reference.
    async fn decisions(&self, key: &str) -> Result<Vec<StoredDecision>, StoreError>;

    /// Changes who may use the system (organisations, users, grants, sessions, tokens),
    /// through the write path. A grant to a user whose organisation is not party to the
    /// partnership is refused unless it carries a reason.
    async fn change_accounts(
        &self,
        actor: &Actor,
        at: &str,
        change: AccountChange,
    ) -> Result<(), StoreError>;

    async fn user(&self, username: &str) -> Result<Option<UserRow>, StoreError>;

    /// Every user, by user name.
    async fn users(&self) -> Result<Vec<UserRow>, StoreError>;

    async fn organisations(&self) -> Result<Vec<OrganisationRow>, StoreError>;

    /// The (partnership, partner id) pairs the organisation is party to.
    async fn parties(&self, org_key: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Grants held by a user, or in a partnership, or (both `None`) all of them.
    async fn grants(
        &self,
        username: Option<&str>,
        partnership_key: Option<&str>,
    ) -> Result<Vec<GrantRow>, StoreError>;

    /// The times of `username`'s failed sign-ins after `since` and after its last successful
    /// sign-in, oldest first: what throttling counts.
    async fn recent_sign_in_failures(
        &self,
        username: &str,
        since: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// The session with this identifier hash and its user, in one query, unless the session
    /// has ended or expired at `now`.
    async fn session_user(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(SessionRow, UserRow)>, StoreError>;

    /// The bearer token with this hash, unless revoked.
    async fn api_token(&self, token_hash: &str) -> Result<Option<ApiTokenRow>, StoreError>;

    /// A partnership's tokens, revoked ones included.
    async fn api_tokens(&self, key: &str) -> Result<Vec<ApiTokenRow>, StoreError>;

    /// The posting (imported line or correction) with this reference, if there is one.
    async fn posting(
        &self,
        key: &str,
        reference: &str,
    ) -> Result<Option<StoredPosting>, StoreError>;
}

/// How long to wait for a PostgreSQL server before saying it cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (and if need be creates) the database at `url`, brings its schema up to date, and
/// returns the store for it.
///
/// Accepted addresses:
///
/// - `sqlite:PATH`, `sqlite://PATH`, or a plain file path → SQLite; the file is created if
///   missing. Everything after the prefix is the path (no `?options`: the store sets WAL
///   mode, foreign keys and a busy timeout itself). `sqlite:///abs/path` is an absolute path.
/// - `sqlite::memory:` → a private in-memory SQLite database (gone when the store is dropped).
/// - `postgres://…` or `postgresql://…` → PostgreSQL; the database must exist.
pub async fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    let store = match Address::parse(url)? {
        Address::SqliteFile(path) => SqlStore::open_sqlite(url, Some(path)).await?,
        Address::SqliteMemory => SqlStore::open_sqlite(url, None).await?,
        Address::Postgres => {
            let options = sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| {
                StoreError::BadAddress {
                    url: redact(url),
                    reason: e.to_string(),
                }
            })?;
            SqlStore::open_postgres(url, options).await?
        }
    };
    Ok(Box::new(store))
}

#[derive(Debug, PartialEq, Eq)]
enum Address<'a> {
    SqliteFile(&'a str),
    SqliteMemory,
    Postgres,
}

impl<'a> Address<'a> {
    fn parse(url: &'a str) -> Result<Address<'a>, StoreError> {
        let bad = |reason: &str| StoreError::BadAddress {
            url: redact(url),
            reason: reason.to_string(),
        };
        let lower = url.to_ascii_lowercase();
        if url.trim().is_empty() {
            return Err(bad("the address is empty"));
        }
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Address::Postgres);
        }
        if lower == "sqlite::memory:" {
            return Ok(Address::SqliteMemory);
        }
        // The scheme is ASCII, so the lowercase copy has the same byte offsets.
        let path = if lower.starts_with("sqlite://") {
            &url["sqlite://".len()..]
        } else if lower.starts_with("sqlite:") {
            &url["sqlite:".len()..]
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(bad(&format!("the scheme {scheme:?} is not supported")));
        } else {
            url
        };
        if path.is_empty() {
            return Err(bad("there is no file name after \"sqlite:\""));
        }
        Ok(Address::SqliteFile(path))
    }
}

/// The address with any password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_pick_the_backend() {
        let ok = |u| Address::parse(u).unwrap();
        assert_eq!(ok("sqlite:data/c.db"), Address::SqliteFile("data/c.db"));
        assert_eq!(ok("sqlite://c.db"), Address::SqliteFile("c.db"));
        assert_eq!(ok("sqlite:///srv/c.db"), Address::SqliteFile("/srv/c.db"));
        assert_eq!(ok("c.db"), Address::SqliteFile("c.db"));
        assert_eq!(ok("SQLite:C.db"), Address::SqliteFile("C.db"));
        assert_eq!(ok("sqlite::memory:"), Address::SqliteMemory);
        assert_eq!(ok("postgres://u@h/db"), Address::Postgres);
        assert_eq!(ok("postgresql://u@h/db"), Address::Postgres);
        for bad in ["", "sqlite:", "sqlite://", "mysql://u@h/db"] {
            let e = Address::parse(bad).unwrap_err().to_string();
            assert!(e.contains("use sqlite:FILE"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/concordat?sslmode=disable"),
            "postgres://app:***@db.example:5432/concordat?sslmode=disable"
        );
        assert_eq!(redact("postgres://app@db/c"), "postgres://app@db/c");
        assert_eq!(redact("sqlite:a:b@c.db"), "sqlite:a:b@c.db");
    }
}
