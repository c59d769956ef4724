//! Ledger imports through a mapping: every kind of bad row named at its line, column and value;
//! all or nothing; codes mapped by column, cost centre and subjective; CSV and XLSX alike.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use concordat_core::Money;
use concordat_core::ledger::{Posting, SUSPENSE};
use concordat_io::ledger_mapping::{LedgerMapping, Unmapped, parse_mapping, read_mapping};
use concordat_io::ledger_read::{
    ImportTargets, ReadFailure, ReadOptions, ReadSummary, excel_pence, file_sha256, read_ledger,
};
use concordat_ledger::generate::{GeneratedTotals, LedgerSpec, gen_ledger_spec, generate};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ledger_fixtures")
        .join(name)
}

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("concordat-io-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn targets() -> ImportTargets {
    ImportTargets {
        funds: ids(&["bcf", "mh"]),
        partners: ids(&["council", "icb"]),
        localities: ids(&["halton", "st-helens"]),
    }
}

/// Reads everything the callback is given.
fn read_all(
    path: &Path,
    mapping: &LedgerMapping,
    targets: &ImportTargets,
    max_errors: usize,
) -> (Vec<Posting>, Result<ReadSummary, ReadFailure<String>>) {
    let mut postings = Vec::new();
    let options = ReadOptions {
        progress: None,
        max_errors,
    };
    let result = read_ledger(path, mapping, targets, options, |p| {
        postings.push(p);
        Ok::<(), String>(())
    });
    (postings, result)
}

fn render_failure(failure: &ReadFailure<String>) -> (Vec<String>, u64) {
    match failure {
        ReadFailure::BadRows { summary, rows } => (
            rows.iter().map(|r| r.render("f.csv")).collect(),
            summary.bad_rows,
        ),
        other => panic!("expected bad rows, got {other}"),
    }
}

#[test]
fn every_kind_of_bad_row_is_named_with_its_line_column_and_value() {
    let mapping = read_mapping(&fixture("plain.toml")).unwrap();
    let (postings, result) = read_all(&fixture("bad-rows.csv"), &mapping, &targets(), 100);
    let failure = result.unwrap_err();
    let (rows, count) = render_failure(&failure);
    assert_eq!(
        rows,
        [
            "f.csv:3: column date: '2024-02-30' is not a date such as 2024-04-30",
            "f.csv:4: column amount: '' is empty: every row needs an amount",
            "f.csv:5: column amount: '12.3.4' is not an amount of money: it must have one or two digits after the decimal point",
            "f.csv:6: column reference: '' is empty: every row needs its reference",
            "f.csv:7: column reference: 'R1' repeats a reference earlier in the file",
            "f.csv:8: column fund: 'LD' is not in the mapping's [funds]",
            "f.csv:9: column partner: 'nobody' is not a partner of the agreement: the agreement's partners are council, icb",
            "f.csv:10: column (row): '2024-04-03,BCF,Home care,council,R9' has 5 fields; the header row has 6",
        ]
    );
    assert_eq!(count, 8);
    // Only the row before the first bad one reached the callback; the good row after did not.
    assert_eq!(postings.len(), 1);
    assert_eq!(postings[0].reference, "R1");
    assert_eq!(postings[0].fund, "bcf");
    let ReadFailure::BadRows { summary, .. } = &failure else {
        unreachable!()
    };
    assert_eq!(summary.rows_read, 10);

    // A cap on the list, with the rest counted.
    let (_, result) = read_all(&fixture("bad-rows.csv"), &mapping, &targets(), 3);
    let failure = result.unwrap_err();
    let (rows, count) = render_failure(&failure);
    assert_eq!((rows.len(), count), (3, 8));
    let text = failure.to_string();
    assert!(text.contains("8 bad rows; nothing was imported"), "{text}");
    assert!(text.ends_with("... and 5 more bad rows"), "{text}");
}

#[test]
fn a_fund_outside_the_agreement_says_which_funds_exist() {
    let mut mapping = read_mapping(&fixture("plain.toml")).unwrap();
    mapping
        .funds
        .as_mut()
        .unwrap()
        .insert("MH".into(), "mental-health".into());
    let dir = scratch("fund");
    let file = dir.join("l.csv");
    std::fs::write(
        &file,
        "date,fund,service,partner,reference,amount\n2024-04-01,MH,Home care,council,R1,1\n",
    )
    .unwrap();
    let (postings, result) = read_all(&file, &mapping, &targets(), 100);
    assert!(postings.is_empty());
    let (rows, _) = render_failure(&result.unwrap_err());
    assert_eq!(
        rows,
        [
            "f.csv:2: column fund: 'MH' maps to 'mental-health', which is not a fund of the agreement: the agreement's funds are bcf, mh"
        ]
    );
}

/// Line, date, service line, locality, partner, pence.
type Brief<'a> = (u64, String, &'a str, Option<&'a str>, Option<&'a str>, i64);

#[test]
fn cost_centres_debits_credits_brackets_and_uk_dates() {
    let mut mapping = read_mapping(&fixture("council-extract.toml")).unwrap();
    assert_eq!(mapping.unmapped, Unmapped::Error);
    // D5's codes give no service line: with unmapped = "error" the file is refused.
    let (postings, result) = read_all(&fixture("council-extract.csv"), &mapping, &targets(), 100);
    let (rows, _) = render_failure(&result.unwrap_err());
    assert_eq!(
        rows,
        [
            "f.csv:7: column Subjective: '5999' gives no service line: it is not in the mapping's [subjectives]"
        ]
    );
    assert_eq!(postings.len(), 4, "rows before the bad one were offered");

    mapping.unmapped = Unmapped::Suspense;
    let (postings, result) = read_all(&fixture("council-extract.csv"), &mapping, &targets(), 100);
    let summary = result.unwrap();
    let brief: Vec<Brief<'_>> = postings
        .iter()
        .map(|p| {
            (
                p.source_line,
                p.date.to_string(),
                p.service_line.as_str(),
                p.locality.as_deref(),
                p.partner.as_deref(),
                p.amount.pence(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            (
                3,
                "2024-04-03".into(),
                "Home care",
                Some("st-helens"),
                Some("council"),
                123_456
            ),
            (
                4,
                "2024-04-04".into(),
                "Residential placements",
                None,
                Some("council"),
                50_000
            ),
            (
                5,
                "2024-04-05".into(),
                "Home care",
                Some("st-helens"),
                Some("council"),
                -2_000
            ),
            (
                6,
                "2024-04-30".into(),
                "Residential placements",
                None,
                Some("council"),
                -10_000
            ),
            (7, "2024-04-30".into(), SUSPENSE, None, Some("council"), 750),
        ]
    );
    assert!(postings.iter().all(|p| p.fund == "bcf"));
    assert_eq!(postings[0].supplier.as_deref(), Some("Oak, Ltd"));
    assert_eq!(postings[0].cost_centre.as_deref(), Some("C1234"));
    assert_eq!(postings[0].description.as_deref(), Some("Home care April"));
    assert_eq!(postings[0].period.to_string(), "2024/25-P01");
    assert_eq!(summary.rows_read, 5);
    assert_eq!(summary.postings, 5);
    assert_eq!(summary.control_total, Money::from_pence(162_206));
    assert_eq!(summary.debit_total, Money::from_pence(174_206));
    assert_eq!(summary.credit_total, Money::from_pence(-12_000));
    assert_eq!(summary.suspense_postings, 1);
    assert_eq!(summary.suspense_total, Money::from_pence(750));
    assert_eq!(summary.fund_totals["bcf"], Money::from_pence(162_206));
    assert_eq!(summary.first_date.unwrap().to_string(), "2024-04-03");
    assert_eq!(summary.last_date.unwrap().to_string(), "2024-04-30");
    let sha = file_sha256(&fixture("council-extract.csv")).unwrap();
    assert_eq!(summary.sha256, sha);
    assert_eq!(sha.len(), 64);
    assert_eq!(
        summary.bytes,
        std::fs::metadata(fixture("council-extract.csv"))
            .unwrap()
            .len()
    );

    // An unknown cost centre gives no fund: a bad row even in suspense mode.
    let dir = scratch("cc");
    let file = dir.join("x.csv");
    let text = std::fs::read_to_string(fixture("council-extract.csv")).unwrap();
    std::fs::write(&file, text.replace("D5,C2000", "D5,C9999")).unwrap();
    let (_, result) = read_all(&file, &mapping, &targets(), 100);
    let (rows, _) = render_failure(&result.unwrap_err());
    assert_eq!(
        rows,
        [
            "f.csv:7: column Cost Centre: 'C9999' gives no fund: it is not in the mapping's [cost_centres]"
        ]
    );
}

#[test]
fn missing_columns_are_named_with_what_the_header_has() {
    let mapping = read_mapping(&fixture("plain.toml")).unwrap();
    let dir = scratch("header");
    let file = dir.join("l.csv");
    // A byte-order mark before the header row is not part of the first column's name.
    std::fs::write(&file, "\u{feff}date,fund,value\n2024-04-01,BCF,1.00\n").unwrap();
    let (_, result) = read_all(&file, &mapping, &targets(), 100);
    let text = result.unwrap_err().to_string();
    assert!(
        text.ends_with(
            "l.csv:1: the header row has no columns named reference, amount, service, partner; it has: date, fund, value"
        ),
        "{text}"
    );
}

fn write_generated(dir: &Path, spec: &LedgerSpec) -> (PathBuf, GeneratedTotals) {
    let path = dir.join("ledger.csv");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let totals = generate(spec, file).unwrap();
    (path, totals)
}

fn gen_targets() -> ImportTargets {
    ImportTargets {
        funds: ids(&["BCF-2024", "LD-POOL", "MH-POOL", "CES-POOL"]),
        partners: ids(&[
            "Halton BC",
            "St Helens MBC",
            "NHS Cheshire and Merseyside ICB",
        ]),
        localities: BTreeSet::new(),
    }
}

#[test]
fn one_bad_row_in_a_hundred_thousand_is_named_and_stops_the_postings() {
    let dir = scratch("big");
    let (path, totals) = write_generated(&dir, &gen_ledger_spec(100_000, 11));
    let mapping = read_mapping(&example("examples/mappings/concordat-ledger.toml")).unwrap();

    // The good file first: its totals are the generator's, to the penny.
    let (postings, result) = read_all(&path, &mapping, &gen_targets(), 100);
    let summary = result.unwrap();
    assert_eq!(postings.len(), 100_000);
    assert_eq!(summary.postings, 100_000);
    assert_eq!(summary.control_total, totals.total);
    assert_eq!(summary.fund_totals, totals.by_fund);
    assert_eq!(
        summary
            .debit_total
            .checked_add(summary.credit_total)
            .unwrap(),
        totals.total
    );
    let mut cells: BTreeMap<(String, String), Money> = BTreeMap::new();
    for p in &postings {
        let cell = cells
            .entry((p.fund.clone(), p.service_line.clone()))
            .or_default();
        *cell = cell.checked_add(p.amount).unwrap();
    }
    assert_eq!(cells, totals.by_fund_service);

    // Now break line 61,234.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let broken = lines[61_233].rsplit_once(',').unwrap().0.to_string() + ",12.x5";
    lines[61_233] = &broken;
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let progress_calls = std::cell::Cell::new(0u32);
    let last = std::cell::Cell::new((0u64, 0u64));
    let progress = |done: u64, total: u64| {
        progress_calls.set(progress_calls.get() + 1);
        last.set((done, total));
    };
    let mut offered = 0u64;
    let mut last_line = 0;
    let result = read_ledger(
        &path,
        &mapping,
        &gen_targets(),
        ReadOptions {
            progress: Some(&progress),
            max_errors: 100,
        },
        |p| {
            offered += 1;
            last_line = p.source_line;
            Ok::<(), String>(())
        },
    );
    let (rows, count) = render_failure(result.as_ref().unwrap_err());
    assert_eq!(
        rows,
        [
            "f.csv:61234: column amount: '12.x5' is not an amount of money: it contains a character that is not a digit"
        ]
    );
    assert_eq!(count, 1);
    assert_eq!(offered, 61_232, "lines 2 to 61,233 only");
    assert_eq!(last_line, 61_233);
    let ReadFailure::BadRows { summary, .. } = result.unwrap_err() else {
        unreachable!()
    };
    assert_eq!(summary.rows_read, 100_000, "the whole file was read");
    assert!(progress_calls.get() >= 2);
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(last.get(), (size, size));
    assert_eq!(summary.sha256, file_sha256(&path).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_gen_ledger_mapping_reads_its_format_into_the_halton_agreement() {
    let agreement =
        concordat_io::read_agreement_file(&example("examples/agreements/halton-st-helens.toml"))
            .unwrap();
    let targets = ImportTargets::from_agreement(agreement.agreement.as_ref().unwrap());
    assert_eq!(targets.funds, ids(&["aligned-budgets"]));
    let mapping = read_mapping(&example("examples/mappings/gen-ledger.toml")).unwrap();
    let dir = scratch("gen-ledger");
    let (path, totals) = write_generated(&dir, &gen_ledger_spec(2_000, 20240401));
    let (postings, result) = read_all(&path, &mapping, &targets, 100);
    let summary = result.unwrap();
    assert_eq!(summary.postings, 2_000);
    assert_eq!(summary.control_total, totals.total);
    assert_eq!(summary.fund_totals.len(), 1);
    assert_eq!(summary.fund_totals["aligned-budgets"], totals.total);
    let partners: BTreeSet<String> = postings.iter().filter_map(|p| p.partner.clone()).collect();
    assert_eq!(partners, ids(&["halton", "pct", "st-helens"]));
    assert!(postings.iter().all(|p| !p.is_suspense()));
    assert_eq!(summary.first_date.unwrap().to_string(), "2024-04-01");
    assert_eq!(summary.last_date.unwrap().to_string(), "2025-03-31");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Days since 1899-12-30: the Excel serial of a date.
fn serial(date: jiff::civil::Date) -> f64 {
    (date - jiff::civil::date(1899, 12, 30)).get_days() as f64
}

#[test]
fn an_xlsx_reads_the_same_postings_as_its_csv() {
    let dir = scratch("xlsx");
    let (csv_path, totals) = write_generated(&dir, &gen_ledger_spec(1_500, 5));
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet().set_name("Ledger").unwrap();
    let date_format = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
    for (row, line) in text.lines().enumerate() {
        let row = row as u32;
        for (col, cell) in line.split(',').enumerate() {
            let col = col as u16;
            match (row, col) {
                (0, _) => sheet.write_string(row, col, cell),
                // Dates as date cells, except one written as text, as extracts sometimes have.
                (1, 0) => sheet.write_string(row, col, cell),
                (_, 0) => sheet.write_number_with_format(
                    row,
                    col,
                    serial(cell.parse().unwrap()),
                    &date_format,
                ),
                // Subjective codes as numbers: they must still read as "5101".
                (_, 4) => sheet.write_number(row, col, cell.parse::<f64>().unwrap()),
                (_, 7) => sheet.write_number(row, col, cell.parse::<f64>().unwrap()),
                _ => sheet.write_string(row, col, cell),
            }
            .unwrap();
        }
    }
    let xlsx_path = dir.join("ledger.xlsx");
    workbook.save(&xlsx_path).unwrap();

    let mapping = read_mapping(&example("examples/mappings/concordat-ledger.toml")).unwrap();
    let (from_csv, csv_summary) = read_all(&csv_path, &mapping, &gen_targets(), 100);
    let (from_xlsx, xlsx_summary) = read_all(&xlsx_path, &mapping, &gen_targets(), 100);
    let (csv_summary, xlsx_summary) = (csv_summary.unwrap(), xlsx_summary.unwrap());
    assert_eq!(from_xlsx.len(), 1_500);
    assert_eq!(from_xlsx, from_csv, "the same postings, line for line");
    assert_eq!(xlsx_summary.control_total, totals.total);
    assert_eq!(xlsx_summary.fund_totals, csv_summary.fund_totals);
    assert_eq!(xlsx_summary.debit_total, csv_summary.debit_total);
    assert_eq!(xlsx_summary.sha256, file_sha256(&xlsx_path).unwrap());

    // A sheet that is not there is named, with the ones that are.
    let mut wrong = mapping.clone();
    wrong.source.sheet = Some("Sheet9".into());
    let (_, result) = read_all(&xlsx_path, &wrong, &gen_targets(), 100);
    let message = result.unwrap_err().to_string();
    assert!(
        message.ends_with("there is no sheet named 'Sheet9'; the sheets are: Ledger"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn excel_numbers_are_rounded_to_pence_once() {
    assert_eq!(excel_pence(0.1 + 0.2), Some(30));
    assert_eq!(excel_pence(1234.56), Some(123_456));
    assert_eq!(excel_pence(-1234.5), Some(-123_450));
    assert_eq!(
        excel_pence(2.675),
        Some(268),
        "half away from zero on the decimal"
    );
    assert_eq!(excel_pence(-0.005), Some(-1));
    assert_eq!(excel_pence(0.0049), Some(0));
    assert_eq!(excel_pence(1e20), None);
    assert_eq!(excel_pence(f64::NAN), None);
}

#[test]
fn mapping_mistakes_are_placed_with_a_did_you_mean() {
    let findings =
        parse_mapping("[columns]\ndate = \"d\"\nreferense = \"r\"\namount = \"a\"\n").unwrap_err();
    assert_eq!(
        findings
            .iter()
            .map(|f| f.render("m.toml"))
            .collect::<Vec<_>>(),
        ["m.toml:3:1: error: unknown key `referense`: did you mean `reference`?"]
    );
    let findings = parse_mapping(
        "unmapped = \"suspence\"\n[columns]\ndate = \"d\"\nreference = \"r\"\namount = \"a\"\n",
    )
    .unwrap_err();
    assert_eq!(
        findings[0].render("m.toml"),
        "m.toml:1:12: error: `suspence` is not a value this key takes: did you mean `suspense`?"
    );
    let findings = parse_mapping(
        "[source]\ndelimiter = \";;\"\ndate_format = \"dd-mm\"\n[columns]\ndate = \"d\"\nreference = \"r\"\ndebit = \"dr\"\n[cost_centres.C1]\nfund = \"x\"\n",
    )
    .unwrap_err();
    let rendered: Vec<String> = findings.iter().map(|f| f.render("m.toml")).collect();
    assert_eq!(
        rendered,
        [
            "m.toml:2:1: error: delimiter = \";;\" must be one character, such as \",\" or \";\" (or \"\\t\" for tab)",
            "m.toml:3:1: error: date_format = \"dd-mm\" is not a date format: write \"iso\" (2024-04-30), \"uk\" (30/04/2024) or a pattern with %d, %m and %Y",
            "m.toml:4:2: error: `debit` and `credit` go together: add the other one",
            "m.toml:8:2: error: [cost_centres] needs the column it reads: add `cost_centre = \"...\"` to [columns]",
        ]
    );
    let findings = parse_mapping("[columns\n").unwrap_err();
    assert!(
        findings[0].render("m.toml").starts_with("m.toml:1:"),
        "{:?}",
        findings
    );
    // The shipped examples are valid.
    for name in ["gen-ledger.toml", "concordat-ledger.toml"] {
        read_mapping(&example(&format!("examples/mappings/{name}"))).unwrap();
    }
}

#[test]
fn semicolons_periods_and_a_strftime_date_format() {
    let mapping = parse_mapping(
        "[source]\ndelimiter = \";\"\ndate_format = \"%d.%m.%Y\"\n[columns]\ndate = \"Datum\"\nreference = \"Ref\"\namount = \"Betrag\"\nperiod = \"Per\"\n[defaults]\nfund = \"bcf\"\nservice = \"Home care\"\n",
    )
    .unwrap();
    let dir = scratch("semi");
    let file = dir.join("l.txt");
    std::fs::write(
        &file,
        "Datum;Ref;Betrag;Per\n31.03.2025;A;1.00;P13\n01.04.2025;B;-2;2024/25-P12\n01.05.2024;C;3;P03\n",
    )
    .unwrap();
    let (postings, result) = read_all(&file, &mapping, &targets(), 100);
    let (rows, _) = render_failure(&result.unwrap_err());
    assert_eq!(
        rows,
        ["f.csv:2: column Per: 'P13' is not a period such as P06 or 2024/25-P06"]
    );
    assert!(postings.is_empty());
    std::fs::write(
        &file,
        "Datum;Ref;Betrag;Per\n01.04.2025;B;-2;2024/25-P12\n01.05.2024;C;3;P03\n15.05.2024;D;4;\n",
    )
    .unwrap();
    let (postings, result) = read_all(&file, &mapping, &targets(), 100);
    result.unwrap();
    let periods: Vec<String> = postings.iter().map(|p| p.period.to_string()).collect();
    assert_eq!(periods, ["2024/25-P12", "2024/25-P03", "2024/25-P02"]);
}
