//! Reading an agreement file: TOML in, an [`Agreement`] and located findings out. Every finding
//! carries the file's line and column, so a person can go straight to the term at fault.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use concordat_core::agreement::Agreement;
use concordat_core::validate::{Finding, Rule, Severity, validate};
use sha2::{Digest, Sha256};
use toml_edit::{Item, TableLike, Value};

/// A finding placed in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedFinding {
    pub finding: Finding,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub column: usize,
}

impl LocatedFinding {
    /// `FILE:LINE:COLUMN: error[A003]: message`, the form editors and CI logs link from.
    pub fn render(&self, file: &str) -> String {
        format!(
            "{file}:{}:{}: {}[{}]: {}",
            self.line,
            self.column,
            self.finding.severity.label(),
            self.finding.code(),
            self.finding.message
        )
    }
}

/// An agreement file, read and checked.
#[derive(Debug, Clone)]
pub struct AgreementFile {
    /// The name the file was given by (as typed on the command line).
    pub name: String,
    pub source: String,
    /// Hex SHA-256 of the file's bytes: its identity for idempotent loading and audit.
    pub sha256: String,
    /// The agreement, when the file could be read as one (even if it breaks rules).
    pub agreement: Option<Agreement>,
    pub findings: Vec<LocatedFinding>,
}

impl AgreementFile {
    pub fn errors(&self) -> impl Iterator<Item = &LocatedFinding> {
        self.findings
            .iter()
            .filter(|f| f.finding.severity == Severity::Error)
    }

    pub fn is_valid(&self) -> bool {
        self.agreement.is_some() && self.errors().next().is_none()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {name}: {source}")]
pub struct ReadError {
    pub name: String,
    #[source]
    pub source: std::io::Error,
}

/// Reads and checks the agreement file at `path`.
pub fn read_agreement_file(path: &Path) -> Result<AgreementFile, ReadError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ReadError {
        name: name.clone(),
        source,
    })?;
    let source = String::from_utf8(bytes).map_err(|e| ReadError {
        name: name.clone(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is not UTF-8 text ({e})"),
        ),
    })?;
    Ok(parse_agreement(&name, source))
}

/// Checks agreement text that came from somewhere other than a file (an upload, a test).
pub fn parse_agreement(name: &str, source: String) -> AgreementFile {
    let sha256 = hex::encode(Sha256::digest(source.as_bytes()));
    let lines = LineIndex::new(&source);
    let mut file = AgreementFile {
        name: name.to_string(),
        sha256,
        agreement: None,
        findings: Vec::new(),
        source: String::new(),
    };

    let doc = match toml_edit::Document::parse(source.as_str()) {
        Ok(doc) => doc,
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            file.findings.push(lines.locate(
                Finding {
                    rule: Rule::Format,
                    severity: Severity::Error,
                    path: String::new(),
                    message: format!("this is not valid TOML: {}", e.message()),
                },
                at,
            ));
            file.source = source;
            return file;
        }
    };
    let mut spans = BTreeMap::new();
    walk_table(doc.as_table(), "", &mut spans);

    match toml::from_str::<Agreement>(&source) {
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            let (rule, message) = explain_serde_error(e.message());
            file.findings.push(lines.locate(
                Finding {
                    rule,
                    severity: Severity::Error,
                    path: String::new(),
                    message,
                },
                at,
            ));
        }
        Ok(agreement) => {
            if agreement.format != 1 {
                let at = spans
                    .get("format")
                    .map(|r: &Range<usize>| r.start)
                    .unwrap_or(0);
                file.findings.push(lines.locate(
                    Finding {
                        rule: Rule::Format,
                        severity: Severity::Error,
                        path: "format".into(),
                        message: format!(
                            "format = {} is not a format this version reads: write format = 1",
                            agreement.format
                        ),
                    },
                    at,
                ));
            }
            for finding in validate(&agreement) {
                let at = locate_path(&spans, &finding.path);
                file.findings.push(lines.locate(finding, at));
            }
            file.agreement = Some(agreement);
        }
    }
    file.findings.sort_by_key(|f| (f.line, f.column));
    file.source = source;
    file
}

/// The byte offset for a finding's key path: the key itself if the file has it, else the
/// nearest enclosing key or table that it does have (a missing key is reported on its table).
fn locate_path(spans: &BTreeMap<String, Range<usize>>, path: &str) -> usize {
    let mut p = path.to_string();
    loop {
        if let Some(r) = spans.get(&p) {
            return r.start;
        }
        match p.rfind(['.', '[']) {
            Some(i) => p.truncate(i),
            None => return 0,
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk_table(table: &dyn TableLike, prefix: &str, spans: &mut BTreeMap<String, Range<usize>>) {
    for (key, item) in table.iter() {
        let path = join(prefix, key);
        if let Some(span) = table.key(key).and_then(|k| k.span()) {
            spans.insert(path.clone(), span);
        }
        walk_item(item, &path, spans);
    }
}

fn walk_item(item: &Item, path: &str, spans: &mut BTreeMap<String, Range<usize>>) {
    match item {
        Item::Table(t) => {
            if let Some(span) = t.span() {
                spans.entry(path.to_string()).or_insert(span);
            }
            walk_table(t, path, spans);
        }
        Item::ArrayOfTables(aot) => {
            for (i, t) in aot.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(span) = t.span() {
                    spans.insert(p.clone(), span);
                }
                walk_table(t, &p, spans);
            }
        }
        Item::Value(v) => walk_value(v, path, spans),
        Item::None => {}
    }
}

fn walk_value(value: &Value, path: &str, spans: &mut BTreeMap<String, Range<usize>>) {
    match value {
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(span) = v.span() {
                    spans.insert(p.clone(), span);
                }
                walk_value(v, &p, spans);
            }
        }
        Value::InlineTable(t) => walk_table(t, path, spans),
        _ => {}
    }
}

/// Turns serde's wording into the user's: an unknown key or value gets a "did you mean".
fn explain_serde_error(message: &str) -> (Rule, String) {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, known) = split_expected(rest);
        let suggestion = match closest(key, &known) {
            Some(k) => format!(": did you mean `{k}`?"),
            None => format!(": the keys allowed here are {}", backticked(&known)),
        };
        return (Rule::UnknownKey, format!("unknown key `{key}`{suggestion}"));
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, known) = split_expected(rest);
        let suggestion = match closest(value, &known) {
            Some(k) => format!("did you mean `{k}`?"),
            None => format!("write one of {}", backticked(&known)),
        };
        return (
            Rule::Format,
            format!("`{value}` is not a value this key takes: {suggestion}"),
        );
    }
    if let Some(field) = message.strip_prefix("missing field `") {
        let field = field.trim_end_matches('`');
        return (
            Rule::Format,
            format!("the key `{field}` is required here: add it"),
        );
    }
    (Rule::Format, message.to_string())
}

/// Splits serde's "x`, expected one of `a`, `b`" into the word and the words it expected.
fn split_expected(rest: &str) -> (&str, Vec<&str>) {
    let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
    (word, expected.split('`').skip(1).step_by(2).collect())
}

/// The known word close enough to be what the person meant, if any.
/// The known word most like `word`, if any is close enough to be a likely typo.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn backticked(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Byte offsets to 1-based line and column.
struct LineIndex {
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            text: text.to_string(),
        }
    }

    fn locate(&self, finding: Finding, offset: usize) -> LocatedFinding {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|s| *s <= offset);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        LocatedFinding {
            finding,
            line,
            column,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_get_a_did_you_mean() {
        let (rule, msg) = explain_serde_error(
            "unknown field `hots`, expected one of `id`, `name`, `host`, `kind`",
        );
        assert_eq!(rule, Rule::UnknownKey);
        assert_eq!(msg, "unknown key `hots`: did you mean `host`?");
        let (_, msg) = explain_serde_error("unknown field `zzz`, expected `id` or `name`");
        assert!(msg.contains("`id`, `name`"), "{msg}");
    }

    #[test]
    fn lines_and_columns_are_one_based() {
        let idx = LineIndex::new("ab\ncd£e\n");
        let f = Finding {
            rule: Rule::Format,
            severity: Severity::Error,
            path: String::new(),
            message: String::new(),
        };
        let at = idx.locate(f.clone(), 0);
        assert_eq!((at.line, at.column), (1, 1));
        let at = idx.locate(f.clone(), 4);
        assert_eq!((at.line, at.column), (2, 2));
        // Columns count characters, not bytes: '£' is two bytes.
        let at = idx.locate(f, 7);
        assert_eq!((at.line, at.column), (2, 4));
    }
}
