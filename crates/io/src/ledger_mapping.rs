//! The ledger mapping: a small TOML file that says which columns of a partner's finance-system
//! extract hold what, and how its codes become the partnership's own ids (fund, service line,
//! partner of origin, locality). The format is documented key by key in docs/ledger-mapping.md.
//!
//! A mapping with mistakes gets findings placed at their line and column, with a "did you
//! mean" for a mistyped key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml_edit::TableLike;

/// A ledger mapping, read and checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerMapping {
    #[serde(default)]
    pub source: Source,
    pub columns: Columns,
    /// What happens to a row whose codes do not map.
    #[serde(default)]
    pub unmapped: Unmapped,
    /// Ids used when neither a column nor a derivation gives one.
    #[serde(default)]
    pub defaults: Derived,
    /// Source code → agreement id. Absent: the code itself is the id.
    pub funds: Option<BTreeMap<String, String>>,
    pub services: Option<BTreeMap<String, String>>,
    pub partners: Option<BTreeMap<String, String>>,
    pub localities: Option<BTreeMap<String, String>>,
    /// Cost centre → the ids it implies.
    #[serde(default)]
    pub cost_centres: BTreeMap<String, Derived>,
    /// Subjective (account) code → the ids it implies.
    #[serde(default)]
    pub subjectives: BTreeMap<String, Derived>,
}

/// Where the rows are and how their text is written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `csv` or `xlsx`; absent: from the file's extension.
    pub format: Option<SourceFormat>,
    /// The worksheet of an xlsx file; absent: the first.
    pub sheet: Option<String>,
    /// The line (CSV) or worksheet row holding the column names, counting from 1.
    #[serde(default = "one")]
    pub header_row: u64,
    /// One character; `\t` for tab-separated files.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// `iso` (`2024-04-30`), `uk` (`30/04/2024`) or a strftime pattern such as `%d.%m.%Y`.
    #[serde(default = "iso")]
    pub date_format: String,
}

impl Default for Source {
    fn default() -> Self {
        Source {
            format: None,
            sheet: None,
            header_row: 1,
            delimiter: comma(),
            date_format: iso(),
        }
    }
}

fn one() -> u64 {
    1
}
fn comma() -> String {
    ",".into()
}
fn iso() -> String {
    "iso".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Csv,
    Xlsx,
}

/// Column names (as in the header row) for each thing a posting needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub date: String,
    pub reference: String,
    /// One signed amount column, or a `debit` and `credit` pair.
    pub amount: Option<String>,
    pub debit: Option<String>,
    pub credit: Option<String>,
    pub cost_centre: Option<String>,
    pub subjective: Option<String>,
    pub supplier: Option<String>,
    pub description: Option<String>,
    pub fund: Option<String>,
    pub service: Option<String>,
    pub partner: Option<String>,
    pub locality: Option<String>,
    /// `P06` or `2024/25-P06`, overriding the period of the date.
    pub period: Option<String>,
}

/// Ids implied by a cost centre or subjective code, or used by default. Values are the
/// agreement's ids (and the service line's name), not source codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    pub fund: Option<String>,
    pub service: Option<String>,
    pub partner: Option<String>,
    pub locality: Option<String>,
}

/// What happens to a row whose codes do not map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmapped {
    /// The row is a bad row: the file is refused.
    #[default]
    Error,
    /// The posting goes to the service line `SUSPENSE`, to be reclassified before its period
    /// can be closed. A row whose fund cannot be found is still a bad row.
    Suspense,
}

/// A mistake in a mapping file, placed at its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingFinding {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl MappingFinding {
    /// `FILE:LINE:COLUMN: error: message`.
    pub fn render(&self, file: &str) -> String {
        format!(
            "{file}:{}:{}: error: {}",
            self.line, self.column, self.message
        )
    }
}

/// Why a mapping file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_all(.name, .findings))]
    Invalid {
        name: String,
        findings: Vec<MappingFinding>,
    },
}

fn render_all(name: &str, findings: &[MappingFinding]) -> String {
    findings
        .iter()
        .map(|f| f.render(name))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and checks the mapping file at `path`.
pub fn read_mapping(path: &Path) -> Result<LedgerMapping, MappingError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| MappingError::Io {
        name: name.clone(),
        source,
    })?;
    parse_mapping(&text).map_err(|findings| MappingError::Invalid { name, findings })
}

/// Checks mapping text; the findings are sorted by place.
pub fn parse_mapping(text: &str) -> Result<LedgerMapping, Vec<MappingFinding>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let at = |offset: usize, message: String| {
        let (line, column) = line_column(text, offset);
        MappingFinding {
            line,
            column,
            message,
        }
    };
    let doc = match toml_edit::Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            return Err(vec![at(
                offset,
                format!("this is not valid TOML: {}", e.message().trim()),
            )]);
        }
    };
    let mapping: LedgerMapping = match toml::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            return Err(vec![at(offset, explain_serde_error(e.message()))]);
        }
    };
    let span = |path: &[&str]| key_offset(doc.as_table(), path);
    let mut findings = Vec::new();
    let s = &mapping.source;
    if !(s.delimiter == "\\t" || s.delimiter.len() == 1 && s.delimiter.is_ascii()) {
        findings.push(at(
            span(&["source", "delimiter"]),
            format!(
                "delimiter = {:?} must be one character, such as \",\" or \";\" (or \"\\t\" for tab)",
                s.delimiter
            ),
        ));
    }
    if s.header_row == 0 {
        findings.push(at(
            span(&["source", "header_row"]),
            "header_row counts from 1 (the first line or row)".into(),
        ));
    }
    if let Err(message) = crate::ledger_read::DateFormat::parse(&s.date_format) {
        findings.push(at(span(&["source", "date_format"]), message));
    }
    let c = &mapping.columns;
    match (&c.amount, &c.debit, &c.credit) {
        (Some(_), None, None) | (None, Some(_), Some(_)) => {}
        (Some(_), _, _) => findings.push(at(
            span(&["columns", "amount"]),
            "give either `amount` or a `debit` and `credit` pair, not both".into(),
        )),
        (None, Some(_), None) | (None, None, Some(_)) => findings.push(at(
            span(&["columns"]),
            "`debit` and `credit` go together: add the other one".into(),
        )),
        (None, None, None) => findings.push(at(
            span(&["columns"]),
            "the amount column is missing: add `amount = \"...\"` (or `debit` and `credit`)".into(),
        )),
    }
    // Deriving from codes needs the column the codes are in.
    for (table, column, key) in [
        (&mapping.cost_centres, &c.cost_centre, "cost_centre"),
        (&mapping.subjectives, &c.subjective, "subjective"),
    ] {
        if !table.is_empty() && column.is_none() {
            let name = if key == "cost_centre" {
                "cost_centres"
            } else {
                "subjectives"
            };
            findings.push(at(
                span(&[name]),
                format!("[{name}] needs the column it reads: add `{key} = \"...\"` to [columns]"),
            ));
        }
    }
    if findings.is_empty() {
        Ok(mapping)
    } else {
        findings.sort_by_key(|f| (f.line, f.column));
        Err(findings)
    }
}

/// The byte offset of the deepest key of `path` the document has (0 if none).
fn key_offset(table: &dyn TableLike, path: &[&str]) -> usize {
    let Some((first, rest)) = path.split_first() else {
        return 0;
    };
    let here = table
        .key(first)
        .and_then(|k| k.span())
        .map(|s| s.start)
        .unwrap_or(0);
    match table.get(first).and_then(|item| item.as_table_like()) {
        Some(inner) if !rest.is_empty() => match key_offset(inner, rest) {
            0 => here,
            deeper => deeper,
        },
        _ => here,
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// Serde's wording in the user's: an unknown key or value gets a "did you mean".
fn explain_serde_error(message: &str) -> String {
    let message = message.trim();
    let split = |rest: &str| -> (String, Vec<String>) {
        let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
        (
            word.to_string(),
            expected
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect(),
        )
    };
    let closest = |word: &str, known: &[String]| -> Option<String> {
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        crate::closest(word, &known).map(str::to_string)
    };
    let listed = |known: &[String]| {
        known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, known) = split(rest);
        return match closest(&key, &known) {
            Some(k) => format!("unknown key `{key}`: did you mean `{k}`?"),
            None => format!(
                "unknown key `{key}`: the keys allowed here are {}",
                listed(&known)
            ),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, known) = split(rest);
        return match closest(&value, &known) {
            Some(k) => format!("`{value}` is not a value this key takes: did you mean `{k}`?"),
            None => format!(
                "`{value}` is not a value this key takes: write one of {}",
                listed(&known)
            ),
        };
    }
    if let Some(field) = message.strip_prefix("missing field `") {
        return format!(
            "the key `{}` is required here: add it",
            field.trim_end_matches('`')
        );
    }
    message.to_string()
}
