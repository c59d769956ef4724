// Pence written pounds_pence (`1_234_567_89`), as money reads.
#![allow(clippy::inconsistent_digit_grouping)]

//! These tests read the PDF back with poppler's `pdftotext` and `pdfinfo` (Debian package
//! `poppler-utils`). Without them the tests fail rather than skip, saying what to install.

use std::io::Write as _;
use std::process::{Command, Stdio};

use concordat_core::Money;
use concordat_pdf::{render_pdf, to_typst, typst_string};
use concordat_report::sample::sample_report;
use concordat_report::{Block, Cell, Column, ColumnKind, Report, Section, Table};

const ODD_PARTNER: &str = r#"Smith & Sons #1 [draft] $x$ *bold* _u_ @ref <b> "q" \ // = h"#;

fn poppler(tool: &str, args: &[&str], pdf: &[u8]) -> String {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "could not run `{tool}` ({e}): install the Debian package poppler-utils \
                 (apt-get install poppler-utils) to run the PDF tests"
            )
        });
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "`{tool}` failed on the PDF");
    String::from_utf8(output.stdout).unwrap()
}

fn pdf_text(pdf: &[u8], pages: Option<(u32, u32)>) -> String {
    let (first, last) = pages.map_or((String::new(), String::new()), |(f, l)| {
        (f.to_string(), l.to_string())
    });
    let mut args = vec!["-enc", "UTF-8"];
    if pages.is_some() {
        args.extend(["-f", first.as_str(), "-l", last.as_str()]);
    }
    args.extend(["-", "-"]);
    poppler("pdftotext", &args, pdf)
}

fn report_with_odd_partner(rows: usize) -> Report {
    let mut report = sample_report();
    report.meta.push(("Partner".into(), ODD_PARTNER.into()));
    let table = Table {
        name: "Ledger lines".into(),
        caption: "Ledger lines by partner".into(),
        columns: vec![
            Column::new("Partner", ColumnKind::Text),
            Column::new("Amount", ColumnKind::Money),
        ],
        rows: (0..rows)
            .map(|i| {
                vec![
                    Cell::text(format!("Partner number {}", i + 1)),
                    Cell::Money(Money::from_pence(1_234_567_89)),
                ]
            })
            .collect(),
        total_row: None,
    };
    report.sections.push(Section {
        heading: ODD_PARTNER.into(),
        blocks: vec![Block::Paragraph(ODD_PARTNER.into()), Block::Table(table)],
    });
    report
}

#[test]
fn typst_strings_escape_only_what_they_must() {
    assert_eq!(typst_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    assert_eq!(typst_string("line\nbreak\u{7}"), r#""line\nbreak\u{7}""#);
    assert_eq!(typst_string("#[$*_]"), r##""#[$*_]""##);
    let markup = to_typst(&report_with_odd_partner(1));
    assert!(!markup.contains(&format!("[{ODD_PARTNER}]")));
}

#[test]
fn pdf_prints_the_title_special_characters_and_money_exactly() {
    let pdf = render_pdf(&report_with_odd_partner(3)).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let text = pdf_text(&pdf, None);
    assert!(
        text.contains("Better Care Fund: quarterly report"),
        "{text}"
    );
    assert!(
        text.contains(ODD_PARTNER),
        "partner name printed literally:\n{text}"
    );
    assert!(text.contains("£1,234,567.89"), "{text}");
    assert!(text.contains("-£95,000.00"), "negative money: {text}");
    assert!(text.contains("-4.39%"), "negative percentages: {text}");
    assert!(text.contains("Page 1 of"), "page numbers: {text}");

    let info = poppler("pdfinfo", &["-"], &pdf);
    assert!(info.contains("Tagged:          yes"), "{info}");
    assert!(info.contains("A4"), "{info}");
    let pdf_ua_part = b"<pdfuaid:part>1</pdfuaid:part>";
    let declares_pdf_ua = pdf.windows(pdf_ua_part.len()).any(|w| w == pdf_ua_part);
    assert!(declares_pdf_ua, "the PDF declares PDF/UA-1 in its metadata");
}

#[test]
fn long_tables_break_across_pages_and_repeat_their_header() {
    let pdf = render_pdf(&report_with_odd_partner(120)).unwrap();
    let info = poppler("pdfinfo", &["-"], &pdf);
    let pages: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("pdfinfo gives the page count");
    assert!(pages >= 4, "120 rows need more pages, got {pages}");
    let last = pdf_text(&pdf, Some((pages, pages)));
    assert!(last.contains("Partner number 120"), "{last}");
    assert!(
        last.contains("Partner") && last.contains("Amount"),
        "{last}"
    );
    let before_last = pdf_text(&pdf, Some((pages - 1, pages - 1)));
    assert!(
        before_last.contains("Amount"),
        "the header repeats on every page: {before_last}"
    );
    assert!(last.contains(&format!("Page {pages} of {pages}")), "{last}");
}

#[test]
fn a_malformed_report_is_refused_before_layout() {
    let mut report = sample_report();
    report.sections[0].blocks.push(Block::Table(Table {
        name: "Cover".into(),
        caption: String::new(),
        columns: vec![],
        rows: vec![],
        total_row: None,
    }));
    let err = render_pdf(&report).unwrap_err().to_string();
    assert!(err.contains("reserved"), "{err}");
}
