//! Postings: lines of a partner's ledger extract, already mapped into the partnership's own
//! terms (fund, service line, partner of origin, locality). Readers in `concordat-io` make
//! them; the store keeps them and their totals; monitoring and statements read the totals.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::calendar::Period;
use crate::money::Money;

/// The service line of a posting whose codes the mapping could not place. A period with any
/// such posting cannot be closed until they are reclassified.
pub const SUSPENSE: &str = "SUSPENSE";

/// One posting, mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// Where it came from in the source file: the line of a CSV (header is line 1) or the row
    /// of a worksheet, so an error or a drill-down can point back to it.
    pub source_line: u64,
    pub date: Date,
    /// The financial period of `date` unless the extract gives one.
    pub period: Period,
    /// The fund's id in the agreement (`[[funds]] id`).
    pub fund: String,
    /// The service line, or [`SUSPENSE`] when the codes did not map.
    pub service_line: String,
    /// The partner of origin's id in the agreement, where the extract or mapping says.
    pub partner: Option<String>,
    /// The locality's id in the agreement, where the mapping says.
    pub locality: Option<String>,
    pub cost_centre: Option<String>,
    /// Subjective (account) code.
    pub subjective: Option<String>,
    pub supplier: Option<String>,
    /// The partner's own reference for the line; unique across every file imported into a
    /// partnership.
    pub reference: String,
    pub description: Option<String>,
    /// Positive is spend, negative is a credit (refund, recharge, income).
    pub amount: Money,
}

impl Posting {
    /// True when the mapping could not place the posting.
    pub fn is_suspense(&self) -> bool {
        self.service_line == SUSPENSE
    }
}
