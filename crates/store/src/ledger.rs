//! The ledger's plain-data interface: what goes into the store and what comes back out.
//!
//! Money is `i64` pence throughout. A period is the financial year's start (`year_start`,
//! 2024 for 2024/25) and its number 1–12 (P01–P12), so totals can be read by year and period
//! with an index and no text parsing.

use async_trait::async_trait;
use concordat_core::ledger::Posting;
use serde::Serialize;

use crate::StoreError;

/// What identifies one ledger file being imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportHeader {
    pub partnership_key: String,
    /// The file name as the user gave it, kept so postings can be traced back to their file.
    pub file_name: String,
    /// Lowercase hex SHA-256 of the file; importing the same checksum again changes nothing.
    pub file_sha256: String,
    /// Lowercase hex SHA-256 of the mapping that placed its codes.
    pub mapping_sha256: String,
}

/// What [`crate::Store::begin_import`] found.
pub enum ImportStart {
    /// This partnership already has a file with this SHA-256; nothing was written.
    AlreadyImported {
        import_id: i64,
        file_name: String,
        imported_at: String,
        imported_by: String,
        rows: i64,
        control_total_pence: i64,
    },
    /// A new import: an open transaction to stream postings into.
    Session(Box<dyn ImportSession>),
}

/// One posting to import, mapped into the partnership's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostingRow {
    /// Line of the source file, for messages and drill-down.
    pub source_line: i64,
    /// ISO date, `2024-05-31`.
    pub date: String,
    /// Financial year start: 2024 for 2024/25.
    pub year_start: i64,
    /// Period number 1–12.
    pub period: i64,
    pub fund: String,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    pub cost_centre: Option<String>,
    pub subjective: Option<String>,
    pub supplier: Option<String>,
    /// Unique across every file imported into the partnership.
    pub reference: String,
    pub description: Option<String>,
    pub amount_pence: i64,
    /// For a correction: the reference of the posting it corrects.
    pub corrects_reference: Option<String>,
}

/// Moves a posting's text into the row: an import converts a million of them, and copying
/// each string twice showed in the profile.
impl From<Posting> for PostingRow {
    fn from(p: Posting) -> PostingRow {
        PostingRow {
            source_line: i64::try_from(p.source_line).unwrap_or(i64::MAX),
            date: p.date.to_string(),
            year_start: i64::from(p.period.year().start_year()),
            period: i64::from(p.period.number()),
            fund: p.fund,
            service_line: p.service_line,
            partner: p.partner,
            locality: p.locality,
            cost_centre: p.cost_centre,
            subjective: p.subjective,
            supplier: p.supplier,
            reference: p.reference,
            description: p.description,
            amount_pence: p.amount.pence(),
            corrects_reference: None,
        }
    }
}

impl From<&Posting> for PostingRow {
    fn from(p: &Posting) -> PostingRow {
        PostingRow {
            source_line: i64::try_from(p.source_line).unwrap_or(i64::MAX),
            date: p.date.to_string(),
            year_start: i64::from(p.period.year().start_year()),
            period: i64::from(p.period.number()),
            fund: p.fund.clone(),
            service_line: p.service_line.clone(),
            partner: p.partner.clone(),
            locality: p.locality.clone(),
            cost_centre: p.cost_centre.clone(),
            subjective: p.subjective.clone(),
            supplier: p.supplier.clone(),
            reference: p.reference.clone(),
            description: p.description.clone(),
            amount_pence: p.amount.pence(),
            corrects_reference: None,
        }
    }
}

/// What the reader counted in the file, checked at commit against what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummaryRow {
    pub rows: i64,
    pub control_total_pence: i64,
}

/// A committed import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub import_id: i64,
    pub rows: i64,
    pub control_total_pence: i64,
    /// Total per fund, sorted by fund.
    pub totals_per_fund: Vec<(String, i64)>,
}

/// An import in progress: one open transaction.
#[async_trait]
pub trait ImportSession: Send {
    /// Writes a batch of postings. Refuses (and the session must then be dropped or aborted)
    /// a posting into a closed period, or one whose reference is already in the partnership.
    async fn add(&mut self, postings: &[PostingRow]) -> Result<(), StoreError>;

    /// Checks the reader's row count and control total against what was written, writes the
    /// totals and the import's audit record (`ledger.import`), and commits.
    async fn commit(
        self: Box<Self>,
        summary: ImportSummaryRow,
    ) -> Result<ImportOutcome, StoreError>;

    /// Rolls everything back.
    async fn abort(self: Box<Self>);
}

/// One file imported into a partnership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRow {
    pub import_id: i64,
    pub file_name: String,
    pub file_sha256: String,
    pub mapping_sha256: String,
    pub imported_at: String,
    pub imported_by: String,
    pub rows: i64,
    pub control_total_pence: i64,
}

/// A posting as stored: an imported line or a correction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPosting {
    /// The import it came from; `None` for a correction.
    pub import_id: Option<i64>,
    pub posting: PostingRow,
}

/// The sum of the postings sharing the same dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TotalsRow {
    pub fund: String,
    pub year_start: i64,
    pub period: i64,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    pub amount_pence: i64,
    pub postings: i64,
}

/// Which postings to list. `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostingFilter {
    pub fund: Option<String>,
    pub year_start: i64,
    pub period_from: Option<i64>,
    pub period_to: Option<i64>,
    pub service_line: Option<String>,
    pub partner: Option<String>,
    pub locality: Option<String>,
}

impl PostingFilter {
    /// Whether a posting, or a line of totals, in `period` with these dimensions is within the
    /// filter's periods, service line, partner and locality (fund and year are chosen by the
    /// caller's query). One rule for the postings and for the counts read from the totals.
    pub fn takes(
        &self,
        period: i64,
        service_line: &str,
        partner: Option<&str>,
        locality: Option<&str>,
    ) -> bool {
        self.period_from.is_none_or(|from| period >= from)
            && self.period_to.is_none_or(|to| period <= to)
            && self
                .service_line
                .as_deref()
                .is_none_or(|s| s == service_line)
            && self.partner.as_deref().is_none_or(|p| partner == Some(p))
            && self.locality.as_deref().is_none_or(|l| locality == Some(l))
    }
}

/// A correction to an existing posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionRow {
    /// The correction's own reference, unique in the partnership.
    pub reference: String,
    pub corrects_reference: String,
    /// ISO date.
    pub date: String,
    pub year_start: i64,
    /// Must be open.
    pub period: i64,
    pub fund: String,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    pub amount_pence: i64,
    pub reason: String,
}

/// Moves a posting to other dimensions (see [`crate::Store::reclassify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReclassifyRow {
    pub reference: String,
    pub fund: String,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    /// ISO date of the two corrections.
    pub date: String,
    pub year_start: i64,
    /// The open period both corrections go into.
    pub period: i64,
    pub reason: String,
}

/// A budget line to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetRow {
    pub partnership_key: String,
    pub fund: String,
    pub year_start: i64,
    pub service_line: String,
    /// Whose budget, for aligned budgets.
    pub partner: Option<String>,
    pub locality: Option<String>,
    /// Exactly 12: P01..P12.
    pub period_amounts_pence: Vec<i64>,
    /// 0 if none.
    pub client_income_pence: i64,
    pub reason: String,
    /// The decision that authorised it.
    pub authority: Option<String>,
}

/// The current revision of a budget line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetLineRow {
    pub fund: String,
    pub year_start: i64,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    pub revision: i64,
    pub period_amounts_pence: Vec<i64>,
    pub client_income_pence: i64,
}

/// One revision of a budget line, with who set it, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetRevisionRow {
    pub line: BudgetLineRow,
    pub set_at: String,
    pub set_by: String,
    pub reason: String,
    pub authority: Option<String>,
}

/// An order or care package not yet invoiced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitmentRow {
    pub partnership_key: String,
    pub reference: String,
    pub fund: String,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    pub year_start: i64,
    /// The period it was raised in.
    pub period: i64,
    pub amount_pence: i64,
    pub description: Option<String>,
}

/// An open commitment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredCommitment {
    pub commitment: CommitmentRow,
    pub recorded_at: String,
    pub recorded_by: String,
}

/// A forecast outturn set by hand for a service line, as at a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForecastOverrideRow {
    pub partnership_key: String,
    pub fund: String,
    pub year_start: i64,
    pub service_line: String,
    /// The period the forecast is as at.
    pub period: i64,
    pub outturn_pence: i64,
    pub reason: String,
}

/// What a payment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentKind {
    /// A partner's contribution to a fund: the item is the fund's id.
    Contribution,
    /// A funding transfer: the item is the transfer's id.
    Transfer,
}

impl PaymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Contribution => "contribution",
            PaymentKind::Transfer => "transfer",
        }
    }
}

/// A payment of a contribution or a funding transfer, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentRow {
    pub partnership_key: String,
    /// The remittance or payment reference; unique in the partnership.
    pub reference: String,
    pub kind: PaymentKind,
    /// The fund's id (a contribution) or the transfer's id.
    pub item: String,
    /// Who paid.
    pub partner: String,
    /// The financial year it is for: 2024 for 2024/25.
    pub year_start: i64,
    /// ISO date.
    pub paid_on: String,
    pub amount_pence: i64,
}

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPayment {
    pub payment: PaymentRow,
    pub recorded_at: String,
    pub recorded_by: String,
}
