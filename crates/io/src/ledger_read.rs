//! Reading a partner's ledger extract (CSV or XLSX) through a [`LedgerMapping`] into
//! [`Posting`]s, in one streaming pass and constant memory. The hashes of the first
//! [`REFERENCES_KEPT`] references are kept (at most 1 MB), so a reference repeated within
//! that many rows is listed with the other bad rows; the store checks every reference at
//! commit, in bounded memory, and refuses any other repeat naming both lines.
//!
//! All or nothing: every good row goes to the caller's callback until the first bad row; after
//! that the callback is no longer called, but the rest of the file is still read so that every
//! bad row can be listed (the first `max_errors` of them, and a count of the rest). The caller
//! writes the postings in one transaction and rolls it back when the read fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Read};
use std::path::Path;

use concordat_core::agreement::Agreement;
use concordat_core::ledger::{Posting, SUSPENSE};
use concordat_core::{FinancialYear, Money, Period};
use jiff::civil::Date;
use sha2::{Digest, Sha256};

use crate::ledger_mapping::{Derived, LedgerMapping, SourceFormat, Unmapped};

/// The ids a posting may map to: those of the agreement the ledger is imported into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportTargets {
    pub funds: BTreeSet<String>,
    pub partners: BTreeSet<String>,
    pub localities: BTreeSet<String>,
}

impl ImportTargets {
    pub fn from_agreement(agreement: &Agreement) -> ImportTargets {
        ImportTargets {
            funds: agreement.funds.iter().map(|f| f.id.clone()).collect(),
            partners: agreement.partners.iter().map(|p| p.id.clone()).collect(),
            localities: agreement.localities.iter().map(|l| l.id.clone()).collect(),
        }
    }
}

/// How a read reports progress and how many bad rows it lists.
#[derive(Clone, Copy)]
pub struct ReadOptions<'a> {
    /// Called with (bytes read, file size) every few megabytes and at the end.
    pub progress: Option<&'a dyn Fn(u64, u64)>,
    /// Bad rows listed in full; the rest are counted.
    pub max_errors: usize,
}

impl Default for ReadOptions<'_> {
    fn default() -> Self {
        ReadOptions {
            progress: None,
            max_errors: 100,
        }
    }
}

/// A row that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The line of a CSV file (the header is usually line 1) or the row of a worksheet.
    pub line: u64,
    /// The column's name in the header row.
    pub column: String,
    pub value: String,
    pub reason: String,
}

impl BadRow {
    /// `FILE:LINE: column COLUMN: 'VALUE' REASON`.
    pub fn render(&self, file: &str) -> String {
        format!(
            "{file}:{}: column {}: '{}' {}",
            self.line, self.column, self.value, self.reason
        )
    }
}

/// What a read found: the figures a finance officer reconciles to the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSummary {
    /// The file's name as given.
    pub file_name: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub bytes: u64,
    /// Data rows read (after the header; blank lines are not rows).
    pub rows_read: u64,
    /// Good rows, made into postings (all of them passed to the callback when `bad_rows` is 0).
    pub postings: u64,
    pub bad_rows: u64,
    /// The sum of every posting's amount.
    pub control_total: Money,
    pub fund_totals: BTreeMap<String, Money>,
    /// Sum of the positive amounts, and of the negative ones (a negative number).
    pub debit_total: Money,
    pub credit_total: Money,
    pub suspense_postings: u64,
    pub suspense_total: Money,
    pub first_date: Option<Date>,
    pub last_date: Option<Date>,
}

/// Why a read failed. Only `Callback` can happen after postings were passed on; in every case
/// the caller must discard what it was given.
#[derive(Debug)]
pub enum ReadFailure<E> {
    Io {
        name: String,
        source: io::Error,
    },
    /// The workbook cannot be read, or the sheet is not in it.
    Workbook {
        name: String,
        message: String,
    },
    /// Columns the mapping names are not in the header row.
    Header {
        name: String,
        line: u64,
        missing: Vec<String>,
        found: Vec<String>,
    },
    /// Rows that cannot be imported; `summary.bad_rows` counts all of them.
    BadRows {
        summary: Box<ReadSummary>,
        rows: Vec<BadRow>,
    },
    /// The callback refused a posting.
    Callback(E),
}

impl<E: fmt::Display> fmt::Display for ReadFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFailure::Io { name, source } => write!(f, "cannot read {name}: {source}"),
            ReadFailure::Workbook { name, message } => write!(f, "{name}: {message}"),
            ReadFailure::Header {
                name,
                line,
                missing,
                found,
            } => write!(
                f,
                "{name}:{line}: the header row has no columns named {}; it has: {}",
                missing.join(", "),
                found.join(", ")
            ),
            ReadFailure::BadRows { summary, rows } => {
                write!(
                    f,
                    "{}: {} bad row{}; nothing was imported",
                    summary.file_name,
                    summary.bad_rows,
                    if summary.bad_rows == 1 { "" } else { "s" }
                )?;
                for row in rows {
                    write!(f, "\n{}", row.render(&summary.file_name))?;
                }
                let rest = summary.bad_rows - rows.len() as u64;
                if rest > 0 {
                    write!(f, "\n... and {rest} more bad rows")?;
                }
                Ok(())
            }
            ReadFailure::Callback(e) => write!(f, "{e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ReadFailure<E> {}

/// SHA-256 of a file, lowercase hex: what an importer checks before writing, to refuse a file
/// it has imported before. Reads the file once more (about 1.5 GB/s here).
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// How dates are written in the source's text cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateFormat {
    /// `2024-04-30`
    Iso,
    /// `30/04/2024` (also `1/4/2024`)
    Uk,
    /// A strftime pattern.
    Pattern(String),
}

impl DateFormat {
    pub fn parse(text: &str) -> Result<DateFormat, String> {
        match text {
            "iso" | "%Y-%m-%d" => Ok(DateFormat::Iso),
            "uk" | "%d/%m/%Y" => Ok(DateFormat::Uk),
            p if p.contains("%d") && p.contains("%m") && p.contains("%Y") => {
                Ok(DateFormat::Pattern(p.to_string()))
            }
            other => Err(format!(
                "date_format = {other:?} is not a date format: write \"iso\" (2024-04-30), \"uk\" (30/04/2024) or a pattern with %d, %m and %Y"
            )),
        }
    }

    fn read(&self, text: &str) -> Option<Date> {
        match self {
            DateFormat::Iso => {
                let b = text.as_bytes();
                if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
                    return None;
                }
                Date::new(digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..])?).ok()
            }
            DateFormat::Uk => {
                let mut parts = text.split('/');
                let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
                if parts.next().is_some() || d.len() > 2 || m.len() > 2 || y.len() != 4 {
                    return None;
                }
                Date::new(
                    digits(y.as_bytes())?,
                    digits(m.as_bytes())?,
                    digits(d.as_bytes())?,
                )
                .ok()
            }
            DateFormat::Pattern(p) => jiff::fmt::strtime::parse(p, text).ok()?.to_date().ok(),
        }
    }

    fn describe(&self) -> String {
        match self {
            DateFormat::Iso => "a date such as 2024-04-30".into(),
            DateFormat::Uk => "a date such as 30/04/2024".into(),
            DateFormat::Pattern(p) => format!("a date in the form {p}"),
        }
    }
}

fn digits<T: TryFrom<u32>>(b: &[u8]) -> Option<T> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = b.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    T::try_from(v).ok()
}

/// An Excel serial day number (1900 date system) as a date. Serials before 1 March 1900 are
/// refused, Excel counting a 29 February 1900 that never was.
fn excel_date(serial: f64) -> Option<Date> {
    if !serial.is_finite() || !(61.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let days = serial.floor() as i64;
    Date::constant(1899, 12, 30)
        .checked_add(jiff::Span::new().try_days(days).ok()?)
        .ok()
}

/// An Excel number as pence, rounded once (half away from zero) from its shortest decimal
/// form, so that 0.1 + 0.2 stored as 0.30000000000000004 reads as 30p.
pub fn excel_pence(value: f64) -> Option<i64> {
    if !value.is_finite() || value.abs() >= 9.0e16 {
        return None;
    }
    let text = format!("{}", value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let whole: i64 = whole.parse().ok()?;
    let f = fraction.as_bytes();
    let digit = |i: usize| f.get(i).map(|d| i64::from(d - b'0')).unwrap_or(0);
    let mut pence = whole.checked_mul(100)? + digit(0) * 10 + digit(1);
    if digit(2) >= 5 {
        pence += 1;
    }
    Some(if value < 0.0 { -pence } else { pence })
}

/// `-?digits(.d{1,2})?` straight from the bytes: the form nearly every extract writes.
fn fast_pence(b: &[u8]) -> Option<i64> {
    let (negative, b) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let (whole, fraction) = match memchr_dot(b) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[b.len()..]),
    };
    if whole.is_empty() || whole.len() > 15 || fraction.len() > 2 {
        return None;
    }
    if b.len() > whole.len() && fraction.is_empty() {
        return None;
    }
    let mut pence: i64 = 0;
    for &d in whole {
        if !d.is_ascii_digit() {
            return None;
        }
        pence = pence * 10 + i64::from(d - b'0');
    }
    let mut frac = 0;
    for &d in fraction {
        if !d.is_ascii_digit() {
            return None;
        }
        frac = frac * 10 + i64::from(d - b'0');
    }
    if fraction.len() == 1 {
        frac *= 10;
    }
    let pence = pence * 100 + frac;
    Some(if negative { -pence } else { pence })
}

fn memchr_dot(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'.')
}

/// One cell as the row processor sees it, whichever the file format.
enum CellRef<'a> {
    Text(&'a [u8]),
    /// A numeric (or date) worksheet cell, with its shortest decimal text.
    Number(f64, &'a str),
}

trait Row {
    fn cell(&self, index: usize) -> CellRef<'_>;
}

impl Row for csv::ByteRecord {
    fn cell(&self, index: usize) -> CellRef<'_> {
        CellRef::Text(self.get(index).unwrap_or(b""))
    }
}

#[derive(Debug, Clone)]
enum XCell {
    Empty,
    Text(String),
    Number(f64, String),
}

impl Row for Vec<XCell> {
    fn cell(&self, index: usize) -> CellRef<'_> {
        match self.get(index) {
            None | Some(XCell::Empty) => CellRef::Text(b""),
            Some(XCell::Text(t)) => CellRef::Text(t.as_bytes()),
            Some(XCell::Number(v, t)) => CellRef::Number(*v, t),
        }
    }
}

/// A column of the header row the mapping uses.
#[derive(Debug, Clone)]
struct Col {
    index: usize,
    name: String,
}

/// A code-bearing attribute (fund, service, partner, locality) and where it can come from.
struct Attribute {
    /// "fund", "service line", "partner", "locality".
    noun: &'static str,
    /// The mapping's table name, for messages: "funds", ...
    table_name: &'static str,
    column: Option<Col>,
    table: Option<HashMap<String, String>>,
    /// Which [`Derived`] field applies.
    pick: fn(&Derived) -> Option<&String>,
    default: Option<String>,
}

/// Where a mapped id came from, for the messages of a bad row.
struct Resolved<'a> {
    id: &'a str,
    column: &'a str,
    value: &'a str,
}

enum Resolution<'a> {
    Found(Resolved<'a>),
    /// A code that no table maps: (column, value, reason).
    Unmapped(BadRow),
    Nothing,
}

/// The mapping fitted to one file's header row.
struct Plan {
    date: Col,
    reference: Col,
    amount: Option<Col>,
    debit_credit: Option<(Col, Col)>,
    cost_centre: Option<Col>,
    subjective: Option<Col>,
    supplier: Option<Col>,
    description: Option<Col>,
    period: Option<Col>,
    attributes: [Attribute; 4],
    cost_centres: HashMap<String, Derived>,
    subjectives: HashMap<String, Derived>,
    unmapped: Unmapped,
    date_format: DateFormat,
}

impl Plan {
    fn new(mapping: &LedgerMapping, header: &[String]) -> Result<Plan, Vec<String>> {
        let mut missing = Vec::new();
        let mut find = |name: &Option<String>| -> Option<Col> {
            let name = name.as_ref()?;
            match header.iter().position(|h| h == name) {
                Some(index) => Some(Col {
                    index,
                    name: name.clone(),
                }),
                None => {
                    if !missing.contains(name) {
                        missing.push(name.clone());
                    }
                    None
                }
            }
        };
        let c = &mapping.columns;
        let date = find(&Some(c.date.clone()));
        let reference = find(&Some(c.reference.clone()));
        let amount = find(&c.amount);
        let debit = find(&c.debit);
        let credit = find(&c.credit);
        let cost_centre = find(&c.cost_centre);
        let subjective = find(&c.subjective);
        let supplier = find(&c.supplier);
        let description = find(&c.description);
        let period = find(&c.period);
        let fund = find(&c.fund);
        let service = find(&c.service);
        let partner = find(&c.partner);
        let locality = find(&c.locality);
        if !missing.is_empty() {
            return Err(missing);
        }
        let table = |t: &Option<BTreeMap<String, String>>| {
            t.as_ref()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        let d = &mapping.defaults;
        Ok(Plan {
            date: date.expect("checked"),
            reference: reference.expect("checked"),
            amount,
            debit_credit: debit.zip(credit),
            cost_centre,
            subjective,
            supplier,
            description,
            period,
            attributes: [
                Attribute {
                    noun: "fund",
                    table_name: "funds",
                    column: fund,
                    table: table(&mapping.funds),
                    pick: |d| d.fund.as_ref(),
                    default: d.fund.clone(),
                },
                Attribute {
                    noun: "service line",
                    table_name: "services",
                    column: service,
                    table: table(&mapping.services),
                    pick: |d| d.service.as_ref(),
                    default: d.service.clone(),
                },
                Attribute {
                    noun: "partner",
                    table_name: "partners",
                    column: partner,
                    table: table(&mapping.partners),
                    pick: |d| d.partner.as_ref(),
                    default: d.partner.clone(),
                },
                Attribute {
                    noun: "locality",
                    table_name: "localities",
                    column: locality,
                    table: table(&mapping.localities),
                    pick: |d| d.locality.as_ref(),
                    default: d.locality.clone(),
                },
            ],
            cost_centres: mapping
                .cost_centres
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            subjectives: mapping
                .subjectives
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            unmapped: mapping.unmapped,
            date_format: DateFormat::parse(&mapping.source.date_format).unwrap_or(DateFormat::Iso),
        })
    }
}

/// References whose hashes the reader keeps to list a repeat among the bad rows: every one
/// of a file of up to this many rows. Beyond it the table is full and only looked up.
pub const REFERENCES_KEPT: usize = 1 << 16;

/// The 64-bit hashes of the references seen, up to a limit: an open-addressed table with
/// linear probing, kept at most half full. One cache line is touched per insert, which
/// matters at a million rows (a general hash set touches two).
struct ReferenceSet {
    slots: Vec<u64>,
    len: usize,
    /// Hashes kept at most; then new ones are only looked up.
    limit: usize,
}

impl ReferenceSet {
    fn new(rows: usize, limit: usize) -> ReferenceSet {
        ReferenceSet {
            slots: vec![0; (rows.min(limit).max(512) * 2).next_power_of_two()],
            len: 0,
            limit,
        }
    }

    /// False if the hash was there already. 0 marks an empty slot, so hash 0 is stored as 1.
    /// Once `limit` hashes are kept, a new one is not: true means "not among those kept".
    fn insert(&mut self, hash: u64) -> bool {
        if self.len >= self.limit {
            return !self.contains(hash.max(1));
        }
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![0; self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, grown);
            for h in old.into_iter().filter(|&h| h != 0) {
                self.place(h);
            }
        }
        let inserted = self.place(hash.max(1));
        self.len += usize::from(inserted);
        inserted
    }

    fn contains(&self, hash: u64) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = (hash >> 20) as usize & mask;
        loop {
            match self.slots[i] {
                0 => return false,
                h if h == hash => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn place(&mut self, hash: u64) -> bool {
        let mask = self.slots.len() - 1;
        // The high bits pick the slot: SipHash mixes them as well as the low ones.
        let mut i = (hash >> 20) as usize & mask;
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = hash;
                    return true;
                }
                h if h == hash => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }
}

/// The running state of one read: totals, the references seen, the bad rows.
struct Importer<'a> {
    plan: Plan,
    targets: &'a ImportTargets,
    summary: ReadSummary,
    /// 64-bit SipHash of the first [`REFERENCES_KEPT`] references seen.
    references: ReferenceSet,
    bad: Vec<BadRow>,
    max_errors: usize,
}

fn text_of<'r>(row: &'r impl Row, col: &Col, line: u64) -> Result<&'r str, BadRow> {
    match row.cell(col.index) {
        CellRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(str::trim)
            .map_err(|_| BadRow {
                line,
                column: col.name.clone(),
                value: String::from_utf8_lossy(bytes).into_owned(),
                reason: "is not UTF-8 text".into(),
            }),
        CellRef::Number(_, text) => Ok(text),
    }
}

fn optional_text(row: &impl Row, col: &Option<Col>, line: u64) -> Result<Option<String>, BadRow> {
    match col {
        None => Ok(None),
        Some(col) => {
            let t = text_of(row, col, line)?;
            Ok((!t.is_empty()).then(|| t.to_string()))
        }
    }
}

fn bad(line: u64, col: &Col, value: &str, reason: impl Into<String>) -> BadRow {
    BadRow {
        line,
        column: col.name.clone(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Importer<'_> {
    fn amount(&self, row: &impl Row, col: &Col, line: u64, required: bool) -> Result<i64, BadRow> {
        match row.cell(col.index) {
            CellRef::Number(v, text) => {
                excel_pence(v).ok_or_else(|| bad(line, col, text, "is not an amount of money"))
            }
            CellRef::Text(_) => {
                let t = text_of(row, col, line)?;
                if t.is_empty() {
                    return if required {
                        Err(bad(line, col, t, "is empty: every row needs an amount"))
                    } else {
                        Ok(0)
                    };
                }
                if let Some(p) = fast_pence(t.as_bytes()) {
                    return Ok(p);
                }
                Money::parse(t).map(Money::pence).map_err(|e| {
                    let reason = match e {
                        concordat_core::money::MoneyError::Parse { reason, .. } => reason,
                        concordat_core::money::MoneyError::Overflow => "it is too large",
                    };
                    bad(line, col, t, format!("is not an amount of money: {reason}"))
                })
            }
        }
    }

    /// One attribute's id: own column, then cost centre, then subjective, then default.
    fn resolve<'p, R: Row>(
        plan: &'p Plan,
        which: usize,
        row: &'p R,
        line: u64,
        cost_centre: Option<&'p str>,
        subjective: Option<&'p str>,
    ) -> Result<Resolution<'p>, BadRow> {
        let a = &plan.attributes[which];
        if let Some(col) = &a.column {
            let code = text_of(row, col, line)?;
            if !code.is_empty() {
                return Ok(match &a.table {
                    None => Resolution::Found(Resolved {
                        id: code,
                        column: &col.name,
                        value: code,
                    }),
                    Some(table) => match table.get(code) {
                        Some(id) => Resolution::Found(Resolved {
                            id,
                            column: &col.name,
                            value: code,
                        }),
                        None => Resolution::Unmapped(bad(
                            line,
                            col,
                            code,
                            format!("is not in the mapping's [{}]", a.table_name),
                        )),
                    },
                });
            }
        }
        for (code, col, table) in [
            (cost_centre, &plan.cost_centre, &plan.cost_centres),
            (subjective, &plan.subjective, &plan.subjectives),
        ] {
            if let (Some(code), Some(col)) = (code, col)
                && let Some(id) = table.get(code).and_then(|d| (a.pick)(d))
            {
                return Ok(Resolution::Found(Resolved {
                    id,
                    column: &col.name,
                    value: code,
                }));
            }
        }
        if let Some(id) = &a.default {
            return Ok(Resolution::Found(Resolved {
                id,
                column: "(defaults)",
                value: id,
            }));
        }
        // Partner and locality are optional: a row may have neither.
        if which >= 2 {
            return Ok(Resolution::Nothing);
        }
        // Say which code failed to give one: a cost centre the mapping does not know, else
        // the subjective code, else the cost centre whose entry lacks this attribute.
        let derivations = [
            (
                cost_centre,
                &plan.cost_centre,
                &plan.cost_centres,
                "cost_centres",
            ),
            (
                subjective,
                &plan.subjective,
                &plan.subjectives,
                "subjectives",
            ),
        ];
        let unknown = derivations.iter().find(|(code, col, table, _)| {
            col.is_some() && !table.is_empty() && !code.is_some_and(|c| table.contains_key(c))
        });
        let configured = derivations
            .iter()
            .rev()
            .find(|(_, col, table, _)| col.is_some() && !table.is_empty());
        if let Some((code, Some(col), table, name)) = unknown.or(configured) {
            let code = code.unwrap_or("");
            let reason = if table.contains_key(code) {
                format!("gives no {}: its entry in [{name}] has none", a.noun)
            } else {
                format!("gives no {}: it is not in the mapping's [{name}]", a.noun)
            };
            return Ok(Resolution::Unmapped(bad(line, col, code, reason)));
        }
        match &a.column {
            Some(col) => Ok(Resolution::Unmapped(bad(
                line,
                col,
                "",
                format!("is empty: the row has no {}", a.noun),
            ))),
            None => Ok(Resolution::Nothing),
        }
    }

    /// Checks a mapped id against the agreement's.
    fn target(
        &self,
        line: u64,
        found: Resolved<'_>,
        noun: &str,
        known: &BTreeSet<String>,
    ) -> Result<String, BadRow> {
        if known.contains(found.id) {
            return Ok(found.id.to_string());
        }
        let ids = if known.is_empty() {
            format!("the agreement has no {noun}s")
        } else {
            format!(
                "the agreement's {noun}s are {}",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        let via = if found.value == found.id {
            String::new()
        } else {
            format!(" maps to '{}', which", found.id)
        };
        Err(BadRow {
            line,
            column: found.column.to_string(),
            value: found.value.to_string(),
            reason: format!("{via} is not a {noun} of the agreement: {ids}")
                .trim_start()
                .to_string(),
        })
    }

    fn posting(&mut self, row: &impl Row, line: u64) -> Result<Posting, BadRow> {
        let plan = &self.plan;
        let date_text = text_of(row, &plan.date, line)?;
        let date = match row.cell(plan.date.index) {
            CellRef::Number(serial, _) => excel_date(serial),
            CellRef::Text(_) => plan.date_format.read(date_text),
        }
        .ok_or_else(|| {
            bad(
                line,
                &plan.date,
                date_text,
                format!("is not {}", plan.date_format.describe()),
            )
        })?;
        let period = match &plan.period {
            None => Period::containing(date),
            Some(col) => {
                let t = text_of(row, col, line)?;
                if t.is_empty() {
                    Period::containing(date)
                } else {
                    read_period(t, date).ok_or_else(|| {
                        bad(line, col, t, "is not a period such as P06 or 2024/25-P06")
                    })?
                }
            }
        };
        let reference = text_of(row, &plan.reference, line)?;
        if reference.is_empty() {
            return Err(bad(
                line,
                &plan.reference,
                reference,
                "is empty: every row needs its reference",
            ));
        }
        let pence = match (&plan.amount, &plan.debit_credit) {
            (Some(col), _) => self.amount(row, col, line, true)?,
            (None, Some((debit, credit))) => {
                let d = self.amount(row, debit, line, false)?;
                let c = self.amount(row, credit, line, false)?;
                let blank = |col: &Col| matches!(text_of(row, col, line), Ok(""));
                if blank(debit) && blank(credit) {
                    return Err(bad(
                        line,
                        debit,
                        "",
                        "is empty, and so is the credit: every row needs an amount",
                    ));
                }
                d.checked_sub(c)
                    .ok_or_else(|| bad(line, debit, "", "with the credit, is too large"))?
            }
            (None, None) => unreachable!("the mapping has an amount"),
        };
        let cost_centre = optional_text(row, &plan.cost_centre, line)?;
        let subjective = optional_text(row, &plan.subjective, line)?;
        let mut unmapped: Option<BadRow> = None;
        let mut ids: [Option<String>; 4] = Default::default();
        for (which, slot) in ids.iter_mut().enumerate() {
            let r = Self::resolve(
                plan,
                which,
                row,
                line,
                cost_centre.as_deref(),
                subjective.as_deref(),
            )?;
            match r {
                Resolution::Found(found) => {
                    let known = match which {
                        0 => Some(&self.targets.funds),
                        2 => Some(&self.targets.partners),
                        3 => Some(&self.targets.localities),
                        _ => None,
                    };
                    *slot = Some(match known {
                        Some(known) => {
                            self.target(line, found, plan.attributes[which].noun, known)?
                        }
                        None => found.id.to_string(),
                    });
                }
                Resolution::Unmapped(b) => {
                    // Without a fund the posting has nowhere to go, suspense or not.
                    if which == 0 || plan.unmapped == Unmapped::Error {
                        return Err(b);
                    }
                    unmapped.get_or_insert(b);
                }
                Resolution::Nothing if which == 0 => {
                    return Err(BadRow {
                        line,
                        column: "(none)".into(),
                        value: String::new(),
                        reason: "no column, cost centre, subjective code or default gives the fund"
                            .into(),
                    });
                }
                Resolution::Nothing if which == 1 => {
                    if plan.unmapped == Unmapped::Error {
                        return Err(BadRow {
                            line,
                            column: "(none)".into(),
                            value: String::new(),
                            reason: "no column, cost centre, subjective code or default gives the service line".into(),
                        });
                    }
                    unmapped.get_or_insert(BadRow {
                        line,
                        column: String::new(),
                        value: String::new(),
                        reason: String::new(),
                    });
                }
                Resolution::Nothing => {}
            }
        }
        let [fund, service, partner, locality] = ids;
        let service_line = if unmapped.is_some() {
            SUSPENSE.to_string()
        } else {
            service.expect("a service line or suspense")
        };
        let key = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            reference.hash(&mut h);
            h.finish()
        };
        if !self.references.insert(key) {
            return Err(bad(
                line,
                &plan.reference,
                reference,
                "repeats a reference earlier in the file",
            ));
        }
        Ok(Posting {
            source_line: line,
            date,
            period,
            fund: fund.expect("a fund"),
            service_line,
            partner,
            locality,
            cost_centre,
            subjective,
            supplier: optional_text(row, &plan.supplier, line)?,
            reference: reference.to_string(),
            description: optional_text(row, &plan.description, line)?,
            amount: Money::from_pence(pence),
        })
    }

    /// Adds a good posting to the totals; an overflowing total makes the row bad.
    fn count(&mut self, posting: &Posting) -> Result<(), BadRow> {
        let s = &mut self.summary;
        let overflow = || BadRow {
            line: posting.source_line,
            column: "(totals)".into(),
            value: posting.amount.to_plain(),
            reason: "makes the file's total too large to hold".into(),
        };
        let amount = posting.amount;
        s.control_total = s
            .control_total
            .checked_add(amount)
            .map_err(|_| overflow())?;
        if amount.is_negative() {
            s.credit_total = s.credit_total.checked_add(amount).map_err(|_| overflow())?;
        } else {
            s.debit_total = s.debit_total.checked_add(amount).map_err(|_| overflow())?;
        }
        match s.fund_totals.get_mut(&posting.fund) {
            Some(t) => *t = t.checked_add(amount).map_err(|_| overflow())?,
            None => {
                s.fund_totals.insert(posting.fund.clone(), amount);
            }
        }
        if posting.is_suspense() {
            s.suspense_postings += 1;
            s.suspense_total = s
                .suspense_total
                .checked_add(amount)
                .map_err(|_| overflow())?;
        }
        s.first_date = Some(s.first_date.map_or(posting.date, |d| d.min(posting.date)));
        s.last_date = Some(s.last_date.map_or(posting.date, |d| d.max(posting.date)));
        s.postings += 1;
        Ok(())
    }

    fn reject(&mut self, row: BadRow) {
        self.summary.bad_rows += 1;
        if self.bad.len() < self.max_errors {
            self.bad.push(row);
        }
    }

    /// One data row: a posting for the callback while no row has been bad.
    fn row<E>(
        &mut self,
        row: &impl Row,
        line: u64,
        on_posting: &mut impl FnMut(Posting) -> Result<(), E>,
    ) -> Result<(), ReadFailure<E>> {
        self.summary.rows_read += 1;
        let result = self
            .posting(row, line)
            .and_then(|p| self.count(&p).map(|()| p));
        match result {
            Ok(posting) => {
                if self.summary.bad_rows == 0 {
                    on_posting(posting).map_err(ReadFailure::Callback)?;
                }
            }
            Err(b) => self.reject(b),
        }
        Ok(())
    }

    fn finish<E>(self) -> Result<ReadSummary, ReadFailure<E>> {
        if self.summary.bad_rows > 0 {
            Err(ReadFailure::BadRows {
                summary: Box::new(self.summary),
                rows: self.bad,
            })
        } else {
            Ok(self.summary)
        }
    }
}

fn read_period(text: &str, date: Date) -> Option<Period> {
    if let Some(n) = text.strip_prefix('P').or_else(|| text.strip_prefix('p')) {
        if n.is_empty() || n.len() > 2 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return FinancialYear::containing(date).period(n.parse().ok()?);
    }
    text.parse().ok()
}

/// Counts and hashes the bytes as the CSV reader takes them, and reports progress.
struct Tally<'a, R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    total: u64,
    next_report: u64,
    progress: Option<&'a dyn Fn(u64, u64)>,
}

impl<R: Read> Read for Tally<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        if let Some(progress) = self.progress
            && (self.bytes >= self.next_report || n == 0)
        {
            progress(self.bytes, self.total);
            self.next_report = self.bytes + (4 << 20);
        }
        Ok(n)
    }
}

/// Reads the ledger at `path` through `mapping`, passing each posting to `on_posting` (see the
/// module's notes on all or nothing). The format comes from the mapping, else the extension.
pub fn read_ledger<'t, E>(
    path: &Path,
    mapping: &LedgerMapping,
    targets: &'t ImportTargets,
    options: ReadOptions<'_>,
    mut on_posting: impl FnMut(Posting) -> Result<(), E>,
) -> Result<ReadSummary, ReadFailure<E>> {
    let name = path.display().to_string();
    let format = mapping.source.format.unwrap_or_else(|| {
        let xlsx = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
        if xlsx {
            SourceFormat::Xlsx
        } else {
            SourceFormat::Csv
        }
    });
    let io_error = |source| ReadFailure::Io {
        name: name.clone(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let total = file.metadata().map_err(io_error)?.len();
    let summary = ReadSummary {
        file_name: name.clone(),
        sha256: String::new(),
        bytes: 0,
        rows_read: 0,
        postings: 0,
        bad_rows: 0,
        control_total: Money::ZERO,
        fund_totals: BTreeMap::new(),
        debit_total: Money::ZERO,
        credit_total: Money::ZERO,
        suspense_postings: 0,
        suspense_total: Money::ZERO,
        first_date: None,
        last_date: None,
    };
    let new_importer = |header: &[String], line: u64| -> Result<Importer<'t>, ReadFailure<E>> {
        let plan = Plan::new(mapping, header).map_err(|missing| ReadFailure::Header {
            name: name.clone(),
            line,
            missing,
            found: header.to_vec(),
        })?;
        Ok(Importer {
            plan,
            targets,
            summary: summary.clone(),
            // About 100 bytes a row in a typical extract: room for that many (up to the
            // limit), to save regrowing.
            references: ReferenceSet::new(
                usize::try_from(total / 100).unwrap_or(usize::MAX),
                REFERENCES_KEPT,
            ),
            bad: Vec::new(),
            max_errors: options.max_errors,
        })
    };
    let header_row = mapping.source.header_row.max(1);
    match format {
        SourceFormat::Csv => {
            let delimiter = match mapping.source.delimiter.as_str() {
                "\\t" | "\t" => b'\t',
                d => d.as_bytes().first().copied().unwrap_or(b','),
            };
            let tally = Tally {
                inner: file,
                hasher: Sha256::new(),
                bytes: 0,
                total,
                next_report: 0,
                progress: options.progress,
            };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(delimiter)
                .buffer_capacity(1 << 17)
                .from_reader(tally);
            let mut record = csv::ByteRecord::new();
            let read = |reader: &mut csv::Reader<Tally<'_, File>>, record: &mut csv::ByteRecord| {
                reader.read_byte_record(record).map_err(|e| match e.kind() {
                    csv::ErrorKind::Io(_) => ReadFailure::Io {
                        name: name.clone(),
                        source: io::Error::other(e.to_string()),
                    },
                    _ => ReadFailure::Io {
                        name: name.clone(),
                        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                    },
                })
            };
            // Lines before the header row are titles and notes: skipped.
            let mut header_line = 0;
            let mut header = Vec::new();
            while read(&mut reader, &mut record)? {
                let line = record.position().map_or(0, |p| p.line());
                if line >= header_row {
                    header_line = line;
                    header = record
                        .iter()
                        .map(|h| String::from_utf8_lossy(h).trim().to_string())
                        .collect();
                    break;
                }
            }
            let mut importer = new_importer(&header, header_line.max(header_row))?;
            let width = header.len();
            while read(&mut reader, &mut record)? {
                let line = record.position().map_or(0, |p| p.line());
                if record.len() != width {
                    importer.summary.rows_read += 1;
                    importer.reject(BadRow {
                        line,
                        column: "(row)".into(),
                        value: record
                            .iter()
                            .map(String::from_utf8_lossy)
                            .collect::<Vec<_>>()
                            .join(&char::from(delimiter).to_string()),
                        reason: format!("has {} fields; the header row has {width}", record.len()),
                    });
                    continue;
                }
                importer.row(&record, line, &mut on_posting)?;
            }
            let mut tally = reader.into_inner();
            // The CSV reader stops at the end; make sure every byte is counted and hashed.
            let mut rest = Vec::new();
            tally.read_to_end(&mut rest).map_err(io_error)?;
            importer.summary.bytes = tally.bytes;
            importer.summary.sha256 = hex::encode(tally.hasher.finalize());
            importer.finish()
        }
        SourceFormat::Xlsx => {
            drop(file);
            if let Some(progress) = options.progress {
                progress(0, total);
            }
            let sha256 = file_sha256(path).map_err(io_error)?;
            let workbook_error = |message: String| ReadFailure::Workbook {
                name: name.clone(),
                message,
            };
            let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(path)
                .map_err(|e: calamine::XlsxError| workbook_error(format!("cannot open: {e}")))?;
            let sheets = calamine::Reader::sheet_names(&workbook);
            let sheet = match &mapping.source.sheet {
                Some(s) if sheets.contains(s) => s.clone(),
                Some(s) => {
                    return Err(workbook_error(format!(
                        "there is no sheet named '{s}'; the sheets are: {}",
                        sheets.join(", ")
                    )));
                }
                None => sheets
                    .first()
                    .cloned()
                    .ok_or_else(|| workbook_error("the workbook has no sheets".into()))?,
            };
            let mut cells = workbook
                .worksheet_cells_reader(&sheet)
                .map_err(|e| workbook_error(format!("cannot read sheet '{sheet}': {e}")))?;
            let mut importer: Option<Importer<'t>> = None;
            let mut current: Vec<XCell> = Vec::new();
            let mut current_row: Option<u32> = None;
            let mut flush = |row: u32,
                             cells: &mut Vec<XCell>,
                             importer: &mut Option<Importer<'t>>|
             -> Result<(), ReadFailure<E>> {
                let line = u64::from(row) + 1;
                let blank = cells.iter().all(|c| matches!(c, XCell::Empty));
                if line >= header_row && !blank {
                    match importer {
                        None => {
                            let header: Vec<String> = cells
                                .iter()
                                .map(|c| match c {
                                    XCell::Empty => String::new(),
                                    XCell::Text(t) | XCell::Number(_, t) => t.trim().to_string(),
                                })
                                .collect();
                            *importer = Some(new_importer(&header, line)?);
                        }
                        Some(importer) => importer.row(&*cells, line, &mut on_posting)?,
                    }
                }
                cells.clear();
                Ok(())
            };
            while let Some(cell) = cells
                .next_cell()
                .map_err(|e| workbook_error(format!("cannot read sheet '{sheet}': {e}")))?
            {
                let (row, column) = cell.get_position();
                if current_row != Some(row) {
                    if let Some(r) = current_row {
                        flush(r, &mut current, &mut importer)?;
                    }
                    current_row = Some(row);
                }
                let column = column as usize;
                if current.len() <= column {
                    current.resize(column + 1, XCell::Empty);
                }
                current[column] = to_xcell(cell.get_value());
            }
            if let Some(r) = current_row {
                flush(r, &mut current, &mut importer)?;
            }
            let mut importer = match importer {
                Some(i) => i,
                None => new_importer(&[], header_row)?,
            };
            if let Some(progress) = options.progress {
                progress(total, total);
            }
            importer.summary.bytes = total;
            importer.summary.sha256 = sha256;
            importer.finish()
        }
    }
}

fn to_xcell(value: &calamine::DataRef<'_>) -> XCell {
    use calamine::DataRef;
    match value {
        DataRef::Empty => XCell::Empty,
        DataRef::Int(i) => XCell::Number(*i as f64, i.to_string()),
        DataRef::Float(f) => XCell::Number(*f, format!("{f}")),
        DataRef::DateTime(d) => XCell::Number(d.as_f64(), format!("{}", d.as_f64())),
        // An ISO date-time cell: the date part is what a posting needs.
        DataRef::DateTimeIso(s) => XCell::Text(s.split('T').next().unwrap_or("").to_string()),
        DataRef::String(s) | DataRef::DurationIso(s) => XCell::Text(s.clone()),
        DataRef::SharedString(s) => XCell::Text((*s).to_string()),
        DataRef::Bool(b) => XCell::Text(if *b { "TRUE" } else { "FALSE" }.into()),
        DataRef::Error(e) => XCell::Text(format!("#{e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_set_finds_repeats_as_it_grows() {
        let mut set = ReferenceSet::new(0, usize::MAX);
        let start = set.slots.len();
        // Hash 0 and 1 share a slot value: 0 marks an empty slot.
        assert!(set.insert(0));
        assert!(!set.insert(1));
        let hashes: Vec<u64> = (2..20_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        assert!(hashes.iter().all(|&h| set.insert(h)));
        assert!(set.slots.len() > start, "it grew");
        assert!(set.len * 2 <= set.slots.len());
        assert!(hashes.iter().all(|&h| !set.insert(h)));
        assert_eq!(set.len, 19_999);
    }

    #[test]
    fn a_full_reference_set_still_finds_repeats_of_what_it_kept() {
        let limit = 1_000;
        let mut set = ReferenceSet::new(1 << 20, limit);
        let slots = set.slots.len();
        let hash = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        assert!((0..5_000).all(|i| set.insert(hash(i))));
        assert_eq!(
            (set.len, set.slots.len()),
            (limit, slots),
            "it stopped at the limit"
        );
        // Those kept are still found; those after the limit were not kept.
        assert!((0..limit as u64).all(|i| !set.insert(hash(i))));
        assert!((limit as u64..5_000).all(|i| set.insert(hash(i))));
    }

    #[test]
    fn amounts_in_the_plain_form_are_read_from_the_bytes() {
        assert_eq!(fast_pence(b"-1234.5"), Some(-123_450));
        assert_eq!(fast_pence(b"0.07"), Some(7));
        assert_eq!(fast_pence(b"12"), Some(1_200));
        for other in [
            &b"12."[..],
            b"1.234",
            b"1,234.00",
            b"(1.00)",
            b"",
            b"-",
            b"1e5",
        ] {
            assert_eq!(fast_pence(other), None, "{other:?}");
        }
    }
}
