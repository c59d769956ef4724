//! `concordat summarize` as a finance officer runs it: a ledger CSV in, totals out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn concordat(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concordat"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("concordat-summarize-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Plain pounds (`-1234.50`) to pence, independently of the code under test.
fn pence(text: &str) -> i128 {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (w, f) = t.split_once('.').expect("two decimals");
    assert_eq!(f.len(), 2, "{text}");
    let v = w.parse::<i128>().unwrap() * 100 + f.parse::<i128>().unwrap();
    if neg { -v } else { v }
}

/// CSV output with no quoted fields: key (joined by `|`) → (postings, pence).
fn totals(csv: &str) -> BTreeMap<String, (u64, i128)> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = f.len();
            (
                f[..n - 2].join("|"),
                (f[n - 2].parse().unwrap(), pence(f[n - 1])),
            )
        })
        .collect()
}

#[test]
fn totals_equal_the_generators_own() {
    let dir = scratch("gen");
    let spec = concordat_ledger::generate::gen_ledger_spec(30_000, 20240401);
    let file = std::fs::File::create(dir.join("ledger.csv")).unwrap();
    let made = concordat_ledger::generate::generate(&spec, std::io::BufWriter::new(file)).unwrap();
    let grand = i128::from(made.total.pence());
    let cells: Vec<(String, i128)> = made
        .by_fund_service
        .iter()
        .map(|((f, s), v)| (format!("{f}|{s}"), i128::from(v.pence())))
        .collect();
    let funds: Vec<(String, i128)> = made
        .by_fund
        .iter()
        .map(|(f, v)| (f.clone(), i128::from(v.pence())))
        .collect();
    assert_eq!(funds.len(), 4);
    assert!(cells.len() > 100, "most of the 4 × 40 cells have postings");

    let o = concordat(
        &[
            "summarize",
            "ledger.csv",
            "--by",
            "fund,service",
            "--format",
            "csv",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("fund,service,postings,amount\n"), "{out}");
    let t = totals(&out);
    let keys: Vec<&String> = t.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "sorted by key");
    assert_eq!(t.values().map(|v| v.1).sum::<i128>(), grand);
    assert_eq!(t.values().map(|v| v.0).sum::<u64>(), 30000);
    assert_eq!(t.len(), cells.len(), "one row per fund and service line");
    for (k, v) in &cells {
        assert_eq!(t[k].1, *v, "cell {k}");
    }
    let control = stderr(&o);
    assert!(control.contains("30000 rows read"), "{control}");

    // Read through a pipe rather than from the file: the same totals.
    let mut child = Command::new(env!("CARGO_BIN_EXE_concordat"))
        .args([
            "summarize",
            "/dev/stdin",
            "--by",
            "fund,service",
            "--format",
            "csv",
        ])
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().unwrap();
    let bytes = std::fs::read(dir.join("ledger.csv")).unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut input, &bytes));
    let piped = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(stdout(&piped), out, "piped and file totals agree");

    let o = concordat(
        &["summarize", "ledger.csv", "--by", "fund", "--format", "csv"],
        &dir,
    );
    let t = totals(&stdout(&o));
    for (k, v) in &funds {
        assert_eq!(t[k].1, *v, "fund {k}");
    }

    // Every grouping, in any order, adds up to the same grand total.
    for by in ["period", "partner,period", "service,partner,period,fund"] {
        let o = concordat(
            &["summarize", "ledger.csv", "--by", by, "--format", "csv"],
            &dir,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let t = totals(&stdout(&o));
        assert_eq!(t.values().map(|v| v.1).sum::<i128>(), grand, "--by {by}");
    }
    let o = concordat(
        &[
            "summarize",
            "ledger.csv",
            "--by",
            "period",
            "--format",
            "csv",
        ],
        &dir,
    );
    let t = totals(&stdout(&o));
    assert_eq!(t.len(), 12);
    assert!(t.contains_key("2024/25-P01") && t.contains_key("2024/25-P12"));
    let _ = std::fs::remove_dir_all(&dir);
}

const HAND_MADE: &str = "date,fund,service,partner,subjective,supplier,reference,amount
2024-04-03,BCF,Home care,Halton BC,5101,\"Oak, Ltd\",R1,\"1,234.56\"
2024-04-09,BCF,Home care,Halton BC,5101,Elm Ltd,R2,(34.56)
2024-05-01,BCF,Telecare,St Helens MBC,5102,Elm Ltd,R3,\"(1,000.00)\"
2024-05-02,LD,Telecare,St Helens MBC,5102,Elm Ltd,R4,£2500
2024-10-31,LD,\"Carers, support\",Halton BC,5103,Elm Ltd,R5,-0.50
";

#[test]
fn quoted_and_bracketed_amounts_in_csv_and_table() {
    let dir = scratch("hand");
    std::fs::write(dir.join("ledger.csv"), HAND_MADE).unwrap();
    let o = concordat(
        &[
            "summarize",
            "ledger.csv",
            "--by",
            "fund,service",
            "--format",
            "csv",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "fund,service,postings,amount
BCF,Home care,2,1200.00
BCF,Telecare,1,-1000.00
LD,\"Carers, support\",1,-0.50
LD,Telecare,1,2500.00
"
    );
    assert!(stderr(&o).contains("5 rows read"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("grand total £2,699.50"),
        "{}",
        stderr(&o)
    );

    let o = concordat(&["summarize", "ledger.csv", "--by", "partner,period"], &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "partner        period       postings     amount");
    assert_eq!(lines[2], "Halton BC      2024/25-P01         2  £1,200.00");
    assert_eq!(lines[3], "Halton BC      2024/25-P07         1     -£0.50");
    assert_eq!(lines[4], "St Helens MBC  2024/25-P02         2  £1,500.00");
    assert_eq!(lines[6], "Total                              5  £2,699.50");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_row_is_named_and_nothing_is_totalled() {
    let dir = scratch("bad");
    let bad = format!("{HAND_MADE}2024-11-01,LD,Telecare,Halton BC,5101,Elm Ltd,R6,12.3.4\n");
    std::fs::write(dir.join("ledger.csv"), bad).unwrap();
    let o = concordat(&["summarize", "ledger.csv", "--format", "csv"], &dir);
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "", "no totals when a row is bad");
    assert!(
        stderr(&o).contains("ledger.csv:7: column amount: '12.3.4' is not an amount of money: "),
        "{}",
        stderr(&o)
    );

    let bad = HAND_MADE.replace("2024-10-31", "2024-02-30");
    std::fs::write(dir.join("ledger.csv"), bad).unwrap();
    // The date is only read when periods are asked for.
    let o = concordat(&["summarize", "ledger.csv", "--by", "fund"], &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = concordat(&["summarize", "ledger.csv", "--by", "fund,period"], &dir);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ledger.csv:6: column date: '2024-02-30' is not a date"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_columns_and_bad_groupings_are_named() {
    let dir = scratch("missing");
    std::fs::write(
        dir.join("ledger.csv"),
        "date,fund,value\n2024-04-01,BCF,1.00\n",
    )
    .unwrap();
    let o = concordat(&["summarize", "ledger.csv", "--by", "fund,service"], &dir);
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains(
            "ledger.csv: the header row has no columns named service, amount; it has: date, fund, value"
        ),
        "{}",
        stderr(&o)
    );
    let o = concordat(&["summarize", "ledger.csv", "--by", "fund,locality"], &dir);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("'locality' is not something to group by"),
        "{}",
        stderr(&o)
    );
    let o = concordat(&["summarize", "no-such.csv"], &dir);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot open no-such.csv"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
