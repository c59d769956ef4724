//! Every validation rule has a fixture in `tests/fixtures/` that breaks it. The fixture marks
//! the line where the finding must be reported with `# <- CODE` (and `warning` where the rule
//! only warns); this test checks the code, the severity and the line.

use std::path::Path;

use concordat_core::Severity;
use concordat_io::read_agreement_file;

struct Expectation {
    code: String,
    severity: Severity,
    line: usize,
}

fn expectations(text: &str) -> Vec<Expectation> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let (_, marker) = line.split_once("# <- ")?;
            let mut words = marker.split_whitespace();
            let code = words.next()?.to_string();
            let severity = if words.next() == Some("warning") {
                Severity::Warning
            } else {
                Severity::Error
            };
            Some(Expectation {
                code,
                severity,
                line: i + 1,
            })
        })
        .collect()
}

#[test]
fn each_fixture_reports_its_rule_at_its_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    let mut codes_seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = read_agreement_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let expected = expectations(&text);
        let rendered: Vec<String> = file.findings.iter().map(|f| f.render(&name)).collect();
        if name.starts_with("valid") {
            assert!(
                file.is_valid() && file.findings.is_empty(),
                "{name} should have no findings: {rendered:#?}"
            );
            continue;
        }
        assert!(!expected.is_empty(), "{name} marks no expected finding");
        for e in &expected {
            let hit = file.findings.iter().any(|f| {
                f.finding.code() == e.code && f.finding.severity == e.severity && f.line == e.line
            });
            assert!(
                hit,
                "{name}: expected {:?}[{}] at line {}, got {rendered:#?}",
                e.severity, e.code, e.line
            );
            codes_seen.insert(e.code.clone());
        }
        let only_warnings = expected.iter().all(|e| e.severity == Severity::Warning);
        assert_eq!(
            file.is_valid(),
            only_warnings,
            "{name}: validity; findings {rendered:#?}"
        );
        checked += 1;
    }
    // Every rule code from A000 to A017 has at least one fixture.
    for n in 0..=17 {
        let code = format!("A{n:03}");
        assert!(codes_seen.contains(&code), "no fixture breaks rule {code}");
    }
    assert!(checked >= 18);
}

#[test]
fn findings_render_as_file_line_column() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let file = read_agreement_file(&dir.join("a001-unknown-key.toml")).unwrap();
    let line = file.findings[0].render("x.toml");
    assert!(line.starts_with("x.toml:"), "{line}");
    assert!(
        line.contains(": error[A001]: unknown key `hots`: did you mean `host`?"),
        "{line}"
    );
}

#[test]
fn the_same_text_has_the_same_identity() {
    let a = concordat_io::parse_agreement("a", "format = 1\n".to_string());
    let b = concordat_io::parse_agreement("b", "format = 1\n".to_string());
    let c = concordat_io::parse_agreement("c", "format = 1 \n".to_string());
    assert_eq!(a.sha256, b.sha256);
    assert_ne!(a.sha256, c.sha256);
    assert_eq!(a.sha256.len(), 64);
}
