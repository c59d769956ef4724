//! The pool manager's month through the `concordat` command, as a finance officer runs it:
//! load an agreement, import a ledger, set budgets, monitor, close a period, settle, produce the
//! statements. Each database case runs on SQLite and on PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    concordat_testkit::repo_root()
}

fn scratch(name: &str) -> PathBuf {
    concordat_testkit::scratch("money", name)
}

fn run(args: &[&str], dir: &Path, db: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concordat"))
        .args(args)
        .args(["--database", db])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("CONCORDAT_ACTOR", "tester")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "the command failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

use concordat_testkit::{TestDb, sqlite_db};

fn postgres_db() -> Option<TestDb> {
    concordat_testkit::postgres_db("cli")
}

/// A two-partner pooled fund for 2024/25: council £1m (host), ICB £3m, overspends and
/// underspends shared pro rata.
const AGREEMENT: &str = r#"format = 1
id = "test-pool"
title = "Test pooled fund agreement"
legal_basis = "s75-nhs-act-2006"
status = "active"
agreement_date = "2024-03-01"
start_date = "2024-04-01"
term_years = 3
flexibilities = ["pooled-fund"]

[[partners]]
id = "council"
name = "Test County Council"
kind = "county-council"

[[partners]]
id = "icb"
name = "NHS Test Integrated Care Board"
kind = "integrated-care-board"

[terms]
aims = ["Joined-up care at home"]
contribution_variation = "By written agreement of both partners before 28 February"
nhs_functions = ["Rehabilitation services"]
health_related_functions = ["Adult social care"]
resources_in_kind = "Each partner provides its own staff"
fund_management = "The pool manager reports quarterly to the partners"

[[care_groups]]
id = "older-people"
name = "Older people"
min_age = 65

[[funds]]
id = "pool"
name = "Test pool"
kind = "pooled"
host = "council"
pool_manager = { title = "Head of Finance" }

[funds.risk_share]
overspend = { rule = "pro-rata" }
underspend = { rule = "return-pro-rata" }

[[funds.contributions]]
partner = "council"
year = "2024/25"
amount = "£1,000,000"

[[funds.contributions]]
partner = "icb"
year = "2024/25"
amount = "£3,000,000.00"

[[transfers]]
id = "s256-2024"
from = "icb"
to = "council"
basis = "s256"
amount = "£834,000.01"
year = "2024/25"
instalments = "quarterly"
purpose = "Social care that benefits health"

[review]
every_months = 12

[notice]
months = 12

[[signatures]]
partner = "council"
name = "A Director"
title = "Director of Adult Social Services"
date = "2024-03-01"

[[signatures]]
partner = "icb"
name = "A Chief"
title = "Chief Executive"
date = 2024-03-02
"#;

/// Four postings in finance formats adding up to £4,010,000.03: an overspend of £10,000.03
/// against £4m of contributions.
const LEDGER: &str = "date,fund,service,partner,subjective,supplier,reference,amount
2024-04-10,pool,Home care,council,5101,Ashdown Care Ltd,T-1,\"1,500,000.00\"
2024-06-30,pool,Reablement,icb,5201,Cedar Therapy Ltd,T-2,2000000
2024-10-15,pool,Home care,icb,5101,Ashdown Care Ltd,T-3,510000.04
2025-03-31,pool,Reablement,council,5999,Refund,T-4,(0.01)
";

/// The agreement loaded, the identity mapping beside it.
fn set_up(dir: &Path, db: &str) -> PathBuf {
    std::fs::write(dir.join("agreement.toml"), AGREEMENT).unwrap();
    ok(run(&["agreement", "load", "agreement.toml"], dir, db));
    let mapping = repo().join("examples/mappings/concordat-ledger.toml");
    assert!(mapping.exists());
    mapping
}

fn import(dir: &Path, db: &str, file: &str, mapping: &Path) -> Output {
    run(
        &[
            "import",
            file,
            "--agreement",
            "test-pool",
            "--mapping",
            mapping.to_str().unwrap(),
            "--no-progress",
        ],
        dir,
        db,
    )
}

fn monitor_json(dir: &Path, db: &str, period: &str) -> serde_json::Value {
    let out = ok(run(
        &[
            "monitor",
            "--agreement",
            "test-pool",
            "--period",
            period,
            "--format",
            "json",
        ],
        dir,
        db,
    ));
    serde_json::from_str(&out).unwrap()
}

/// The audit log's actions, oldest first (the log's fifth column).
fn audit_actions(dir: &Path, db: &str) -> Vec<String> {
    let actions: Vec<String> = ok(run(&["audit", "log"], dir, db))
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap_or("").to_string())
        .collect();
    // Every test loads the agreement first: if the column moved, say so rather than let a
    // "no such action" assertion pass on the wrong column.
    assert_eq!(
        actions.first().map(String::as_str),
        Some("agreement.create"),
        "{actions:?}"
    );
    actions
}

fn import_twice_adds_nothing_and_totals_equal_the_file(db: &TestDb, dir: &Path) {
    let mapping = set_up(dir, &db.url);
    std::fs::write(dir.join("ledger.csv"), LEDGER).unwrap();
    let first = ok(import(dir, &db.url, "ledger.csv", &mapping));
    assert!(first.contains("postings         4"), "{first}");
    assert!(first.contains("control total    £4,010,000.03"), "{first}");
    assert!(first.contains("credits          -£0.01"), "{first}");
    let second = ok(import(dir, &db.url, "ledger.csv", &mapping));
    assert!(second.contains("already imported"), "{second}");
    assert!(second.contains("Nothing was added"), "{second}");

    let m = monitor_json(dir, &db.url, "2024/25-P12");
    assert_eq!(m["monitoring"]["totals"]["actual_to_date"], "4010000.03");
    let p06 = monitor_json(dir, &db.url, "2024/25-P06");
    assert_eq!(
        p06["monitoring"]["totals"]["actual_to_date"], "3500000.00",
        "to P06: T-1 and T-2 only"
    );
    let imports = audit_actions(dir, &db.url)
        .iter()
        .filter(|a| *a == "ledger.import")
        .count();
    assert_eq!(imports, 1, "one import recorded, not two");
    ok(run(&["audit", "verify"], dir, &db.url));
}

fn one_bad_row_among_many_changes_nothing_and_is_named(db: &TestDb, dir: &Path) {
    let mapping = set_up(dir, &db.url);
    // Many good rows in the pool's terms, one bad amount near the end: by then batches have
    // been written inside the open transaction, which must all be rolled back.
    let rows = ROWS_FOR_THE_BAD_ROW_TEST;
    let bad_line = rows - rows / 10 + 1;
    let mut csv = String::with_capacity(rows * 64);
    csv.push_str("date,fund,service,partner,subjective,supplier,reference,amount\n");
    for i in 0..rows {
        let line = i + 2;
        let amount = if line == bad_line {
            "12.3.4".to_string()
        } else {
            format!("{}.{:02}", 10 + i % 900, i % 100)
        };
        let month = 4 + (i % 9);
        csv.push_str(&format!(
            "2024-{month:02}-15,pool,Home care,council,5101,Ashdown Care Ltd,R-{i:08},{amount}\n"
        ));
    }
    std::fs::write(dir.join("big.csv"), &csv).unwrap();
    let out = import(dir, &db.url, "big.csv", &mapping);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("big.csv:{bad_line}: column amount: '12.3.4'")),
        "{err}"
    );
    assert!(err.contains("1 bad row; nothing was imported"), "{err}");
    let m = monitor_json(dir, &db.url, "2024/25-P12");
    assert_eq!(m["monitoring"]["totals"]["actual_to_date"], "0.00");
    assert!(!audit_actions(dir, &db.url).contains(&"ledger.import".to_string()));

    // The corrected file then imports whole.
    let fixed = csv.replace(",12.3.4\n", ",12.34\n");
    std::fs::write(dir.join("big.csv"), &fixed).unwrap();
    let done = ok(import(dir, &db.url, "big.csv", &mapping));
    assert!(
        done.contains(&format!(
            "postings         {}",
            grouped(u64::try_from(rows).unwrap())
        )),
        "{done}"
    );
}

/// A million rows: one bad row among them must undo the 180 batches already written.
const ROWS_FOR_THE_BAD_ROW_TEST: usize = 1_000_000;

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn closed_period_refuses_postings_and_a_repeated_reference_is_refused(db: &TestDb, dir: &Path) {
    let mapping = set_up(dir, &db.url);
    ok(run(
        &[
            "close-period",
            "--agreement",
            "test-pool",
            "--period",
            "2024/25-P01",
        ],
        dir,
        &db.url,
    ));
    std::fs::write(dir.join("ledger.csv"), LEDGER).unwrap();
    let out = import(dir, &db.url, "ledger.csv", &mapping);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("closed"), "{err}");
    assert!(err.contains("nothing from this file was imported"), "{err}");
    let m = monitor_json(dir, &db.url, "2024/25-P12");
    assert_eq!(m["monitoring"]["totals"]["actual_to_date"], "0.00");

    // Without the April posting the file imports; another file repeating a reference does not.
    let later: String =
        LEDGER
            .lines()
            .filter(|l| !l.contains(",T-1,"))
            .fold(String::new(), |mut s, l| {
                s.push_str(l);
                s.push('\n');
                s
            });
    std::fs::write(dir.join("later.csv"), &later).unwrap();
    ok(import(dir, &db.url, "later.csv", &mapping));
    let again = format!("{later}2024-10-01,pool,Home care,icb,5101,X,T-9,1.00\n");
    std::fs::write(dir.join("again.csv"), again).unwrap();
    let out = import(dir, &db.url, "again.csv", &mapping);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("T-2"), "{}", stderr(&out));
    let m = monitor_json(dir, &db.url, "2024/25-P12");
    assert_eq!(m["monitoring"]["totals"]["actual_to_date"], "2510000.03");
}

fn settlement_shares_the_overspend_to_the_penny(db: &TestDb, dir: &Path) {
    let mapping = set_up(dir, &db.url);
    std::fs::write(dir.join("ledger.csv"), LEDGER).unwrap();
    ok(import(dir, &db.url, "ledger.csv", &mapping));
    let csv = ok(run(
        &[
            "settle",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
            "--format",
            "csv",
        ],
        dir,
        &db.url,
    ));
    // £10,000.03 pro rata 1:3 is £2,500.0075 and £7,500.0225: 250,000 and 750,002 pence, and
    // the odd penny goes to the larger remainder (the council's .75).
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "fund,year,partner,is_host,contribution_due,contribution_received,own_spend,risk_share,balance,position"
    );
    let council = lines.iter().find(|l| l.contains(",council,")).unwrap();
    let icb = lines.iter().find(|l| l.contains(",icb,")).unwrap();
    assert!(
        council.contains(",true,1000000.00,1000000.00,"),
        "{council}"
    );
    assert!(council.contains(",2500.01,"), "{council}");
    assert!(icb.contains(",false,3000000.00,3000000.00,"), "{icb}");
    assert!(icb.ends_with(",7500.02,7500.02,owes-host"), "{icb}");
    let table = ok(run(
        &["settle", "--agreement", "test-pool", "--year", "2024/25"],
        dir,
        &db.url,
    ));
    assert!(
        table.contains("NHS Test Integrated Care Board owes Test County Council £7,500.02."),
        "{table}"
    );
}

fn budgets_monitoring_and_forecast_override(db: &TestDb, dir: &Path) {
    let mapping = set_up(dir, &db.url);
    std::fs::write(dir.join("ledger.csv"), LEDGER).unwrap();
    ok(import(dir, &db.url, "ledger.csv", &mapping));
    for (line, amount) in [("Home care", "2,400,000.00"), ("Reablement", "1,600,000")] {
        ok(run(
            &[
                "budget",
                "set",
                "--agreement",
                "test-pool",
                "--year",
                "2024/25",
                "--service-line",
                line,
                "--annual",
                amount,
                "--reason",
                "Budget agreed by the board",
            ],
            dir,
            &db.url,
        ));
    }
    // A given phasing that does not add up is refused and changes nothing.
    let bad = run(
        &[
            "budget",
            "set",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
            "--service-line",
            "Home care",
            "--annual",
            "1200",
            "--phasing",
            "100;100;100;100;100;100;100;100;100;100;100;99.99",
            "--reason",
            "typo",
        ],
        dir,
        &db.url,
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("adds up to £1,199.99"),
        "{}",
        stderr(&bad)
    );
    let list = ok(run(
        &[
            "budget",
            "list",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
        ],
        dir,
        &db.url,
    ));
    assert!(list.contains("£4,000,000.00"), "{list}");
    assert!(!list.contains("£1,200.00"), "{list}");

    // To P06: Home care £1.5m actual against £1.2m budget to date; run rate 12/6.
    let m = monitor_json(dir, &db.url, "2024/25-P06");
    let rows = m["monitoring"]["rows"].as_array().unwrap();
    let home = rows.iter().find(|r| r["key"] == "Home care").unwrap();
    assert_eq!(home["budget_to_date"], "1200000.00");
    assert_eq!(home["actual_to_date"], "1500000.00");
    assert_eq!(home["forecast_outturn"], "3000000.00");
    assert_eq!(home["variance"], "600000.00");
    assert_eq!(home["rag"], "red");

    ok(run(
        &[
            "forecast",
            "--agreement",
            "test-pool",
            "--period",
            "2024/25-P06",
            "--service-line",
            "Home care",
            "--outturn",
            "2,450,000",
            "--reason",
            "April's payment was for the year",
        ],
        dir,
        &db.url,
    ));
    let m = monitor_json(dir, &db.url, "2024/25-P06");
    let rows = m["monitoring"]["rows"].as_array().unwrap();
    let home = rows.iter().find(|r| r["key"] == "Home care").unwrap();
    assert_eq!(home["forecast_outturn"], "2450000.00");
    assert_eq!(home["forecast_basis"], "override");
    // The partners' exposure adds up to the fund's forecast variance.
    let variance = m["exposure"]["variance"].as_str().unwrap().to_string();
    let shares: Vec<String> = m["exposure"]["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["amount"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shares.len(), 2);
    let pence = |t: &str| -> i64 { t.replace('.', "").parse().unwrap() };
    assert_eq!(
        shares.iter().map(|s| pence(s)).sum::<i64>(),
        pence(&variance)
    );
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    let dir = super::scratch(concat!("sqlite-", stringify!($case)));
                    let db = super::sqlite_db(&dir);
                    super::$case(&db, &dir);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $case() {
                    let Some(db) = super::postgres_db() else { return };
                    let dir = super::scratch(concat!("pg-", stringify!($case)));
                    super::$case(&db, &dir);
                }
            )*
        }
    };
}

fn payments_set_arrears_against_the_schedules(db: &TestDb, dir: &Path) {
    let mapping = set_up(dir, &db.url);
    std::fs::write(dir.join("ledger.csv"), LEDGER).unwrap();
    ok(import(dir, &db.url, "ledger.csv", &mapping));
    let pay = |args: &[&str]| {
        let mut all = vec![
            "payment",
            "record",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
        ];
        all.extend_from_slice(args);
        run(&all, dir, &db.url)
    };
    ok(pay(&[
        "--fund",
        "pool",
        "--partner",
        "council",
        "--paid-on",
        "2024-04-01",
        "--amount",
        "1,000,000",
        "--reference",
        "BACS-C1",
    ]));
    ok(pay(&[
        "--fund",
        "pool",
        "--partner",
        "icb",
        "--paid-on",
        "2024-04-05",
        "--amount",
        "2,000,000",
        "--reference",
        "BACS-I1",
    ]));
    ok(pay(&[
        "--transfer",
        "s256-2024",
        "--paid-on",
        "2024-04-02",
        "--amount",
        "208,500.01",
        "--reference",
        "BACS-T1",
    ]));
    // Refused, and nothing written: a repeated reference, a contribution the agreement does
    // not have, a transfer paid by the wrong partner.
    let audit_before = audit_actions(dir, &db.url).len();
    let e = pay(&[
        "--transfer",
        "s256-2024",
        "--paid-on",
        "2024-07-01",
        "--amount",
        "1",
        "--reference",
        "BACS-T1",
    ]);
    assert!(stderr(&e).contains("BACS-T1"), "{}", stderr(&e));
    let e = run(
        &[
            "payment",
            "record",
            "--agreement",
            "test-pool",
            "--year",
            "2025/26",
            "--fund",
            "pool",
            "--partner",
            "council",
            "--paid-on",
            "2025-04-01",
            "--amount",
            "1",
            "--reference",
            "X",
        ],
        dir,
        &db.url,
    );
    assert!(
        stderr(&e).contains("has no 2025/26 contribution from 'council'"),
        "{}",
        stderr(&e)
    );
    let e = pay(&[
        "--fund",
        "pool",
        "--partner",
        "council",
        "--paid-on",
        "2024-05-01",
        "--amount",
        "-5",
        "--reference",
        "Z",
    ]);
    assert!(stderr(&e).contains("more than zero"), "{}", stderr(&e));
    let e = pay(&[
        "--transfer",
        "s256-2024",
        "--partner",
        "council",
        "--paid-on",
        "2024-07-01",
        "--amount",
        "1",
        "--reference",
        "Y",
    ]);
    assert!(stderr(&e).contains("paid by 'icb'"), "{}", stderr(&e));
    assert_eq!(audit_actions(dir, &db.url).len(), audit_before);

    // As at 1 October: the s256 transfer's first three quarters are due (£208,500.01 then
    // £208,500.00 twice), one paid; the contributions fell due on 1 April.
    let schedule = ok(run(
        &[
            "schedule",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
            "--as-at",
            "2024-10-01",
        ],
        dir,
        &db.url,
    ));
    assert!(
        schedule.contains("due to date £625,500.01, paid £208,500.01, £417,000.00 outstanding"),
        "{schedule}"
    );
    assert!(
        schedule
            .contains("due to date £3,000,000.00, paid £2,000,000.00, £1,000,000.00 outstanding"),
        "{schedule}"
    );
    assert!(
        schedule.contains("2025-01-01 2024/25-P10      £208,500.00\n"),
        "{schedule}"
    );

    // A payment recorded twice by mistake is reversed and stops counting.
    ok(pay(&[
        "--fund",
        "pool",
        "--partner",
        "icb",
        "--paid-on",
        "2024-04-06",
        "--amount",
        "2,000,000",
        "--reference",
        "BACS-I1-DUP",
    ]));
    ok(run(
        &[
            "payment",
            "reverse",
            "--agreement",
            "test-pool",
            "--reference",
            "BACS-I1-DUP",
            "--reason",
            "recorded twice",
        ],
        dir,
        &db.url,
    ));

    // The settlement counts what was received: the ICB owes its unpaid £1m and its share.
    let csv = ok(run(
        &[
            "settle",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
            "--format",
            "csv",
        ],
        dir,
        &db.url,
    ));
    let icb = csv.lines().find(|l| l.contains(",icb,")).unwrap();
    assert!(
        icb.contains(",3000000.00,2000000.00,") && icb.ends_with(",7500.02,1007500.02,owes-host"),
        "{icb}"
    );
}

fn a_refused_batch_mid_file_stops_the_reader_and_leaves_nothing(db: &TestDb, dir: &Path) {
    let mapping = set_up(dir, &db.url);
    std::fs::write(dir.join("ledger.csv"), LEDGER).unwrap();
    ok(import(dir, &db.url, "ledger.csv", &mapping));
    // Enough rows to fill the channel between reader and store many times over; the last
    // repeats a reference from the first file, which only the store can know.
    let mut csv = String::from("date,fund,service,partner,subjective,supplier,reference,amount\n");
    for i in 0..60_000 {
        csv.push_str(&format!(
            "2024-05-{:02},pool,Home care,council,5101,Hale Care Ltd,B-{i:06},1.00\n",
            1 + i % 28
        ));
    }
    csv.push_str("2024-05-31,pool,Home care,council,5101,Hale Care Ltd,T-3,2.00\n");
    std::fs::write(dir.join("second.csv"), &csv).unwrap();
    let out = import(dir, &db.url, "second.csv", &mapping);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("T-3"), "{err}");
    assert!(err.contains("nothing"), "{err}");
    let m = monitor_json(dir, &db.url, "2024/25-P12");
    assert_eq!(m["monitoring"]["totals"]["actual_to_date"], "4010000.03");
    let imports = ok(run(&["imports", "--agreement", "test-pool"], dir, &db.url));
    assert_eq!(imports.lines().count(), 1, "{imports}");
}

fn corrections_reclassification_commitments_and_drill_down(db: &TestDb, dir: &Path) {
    let mapping = set_up(dir, &db.url);
    std::fs::write(dir.join("ledger.csv"), LEDGER).unwrap();
    ok(import(dir, &db.url, "ledger.csv", &mapping));
    ok(run(
        &[
            "close-period",
            "--agreement",
            "test-pool",
            "--period",
            "2024/25-P04",
        ],
        dir,
        &db.url,
    ));
    let correct = |period: &str, reference: &str| {
        run(
            &[
                "correct",
                "--agreement",
                "test-pool",
                "--corrects",
                "T-2",
                "--reference",
                reference,
                "--amount",
                "-250.00",
                "--period",
                period,
                "--reason",
                "credit note CN-17",
            ],
            dir,
            &db.url,
        )
    };
    let refused = correct("2024/25-P04", "C-1");
    assert!(stderr(&refused).contains("closed"), "{}", stderr(&refused));
    ok(correct("2024/25-P08", "C-1"));
    // The correction keeps the corrected posting's service line and partner, and links to it.
    let listed = ok(run(
        &[
            "postings",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
            "--period",
            "2024/25-P08",
        ],
        dir,
        &db.url,
    ));
    assert!(listed.contains("C-1"), "{listed}");
    assert!(listed.contains("Reablement"), "{listed}");
    assert!(listed.contains("-£250.00"), "{listed}");
    assert!(listed.contains("(corrects T-2)"), "{listed}");
    assert!(
        listed.ends_with("Showing 1 of 1 posting; total -£250.00\n"),
        "{listed}"
    );
    // Moving T-3 from Home care to Reablement: the fund's total stays, the lines change.
    ok(run(
        &[
            "reclassify",
            "--agreement",
            "test-pool",
            "--reference",
            "T-3",
            "--service-line",
            "Reablement",
            "--period",
            "2024/25-P08",
            "--reason",
            "coded to the wrong line",
        ],
        dir,
        &db.url,
    ));
    let m = monitor_json(dir, &db.url, "2024/25-P12");
    assert_eq!(m["monitoring"]["totals"]["actual_to_date"], "4009750.03");
    let rows = m["monitoring"]["rows"].as_array().unwrap();
    let line = |name: &str| {
        rows.iter()
            .find(|r| r["key"] == name)
            .map(|r| r["actual_to_date"].as_str().unwrap().to_string())
    };
    assert_eq!(line("Home care").as_deref(), Some("1500000.00"));
    assert_eq!(line("Reablement").as_deref(), Some("2509750.03"));

    // The drill-down says how many postings match and what they add up to, whatever the page:
    // the four imported, the correction and the reclassification's two.
    let postings = |extra: &[&str]| {
        let mut args = vec!["postings", "--agreement", "test-pool", "--year", "2024/25"];
        args.extend_from_slice(extra);
        ok(run(&args, dir, &db.url))
    };
    let first = postings(&["--limit", "2"]);
    assert_eq!(first.lines().count(), 3, "{first}");
    assert!(
        first.ends_with("Showing 2 of 7 postings; total £4,009,750.03 (--offset 2 for the next)\n"),
        "{first}"
    );
    let last = postings(&["--limit", "2", "--offset", "6"]);
    assert!(
        last.ends_with("Showing posting 7 of 7; total £4,009,750.03\n"),
        "{last}"
    );
    let middle = postings(&["--limit", "3", "--offset", "2"]);
    assert!(
        middle.contains("Showing postings 3–5 of 7; total £4,009,750.03 (--offset 5"),
        "{middle}"
    );
    let beyond = postings(&["--offset", "50"]);
    assert_eq!(
        beyond,
        "None shown from number 51: 7 postings match; total £4,009,750.03\n"
    );
    // Filtered, the count and total are the line's: Reablement is T-2, T-4, C-1 and T-3
    // moved in.
    let reablement = postings(&["--service-line", "Reablement"]);
    assert!(
        reablement.ends_with("Showing 4 of 4 postings; total £2,509,750.03\n"),
        "{reablement}"
    );
    let nothing = postings(&["--service-line", "Reablement", "--partner", "nobody"]);
    assert_eq!(nothing, "No postings match.\n");

    // A commitment on a line the fund has; a typo is refused with the line meant.
    let commit = |line: &str, reference: &str| {
        run(
            &[
                "commitment",
                "record",
                "--agreement",
                "test-pool",
                "--reference",
                reference,
                "--period",
                "2024/25-P06",
                "--service-line",
                line,
                "--amount",
                "12,000",
                "--description",
                "care package",
            ],
            dir,
            &db.url,
        )
    };
    let typo = commit("Home cre", "PO-1");
    assert!(
        stderr(&typo).contains("did you mean 'Home care'?"),
        "{}",
        stderr(&typo)
    );
    ok(commit("Home care", "PO-1"));
    let m = monitor_json(dir, &db.url, "2024/25-P06");
    assert_eq!(m["monitoring"]["totals"]["commitments"], "12000.00");
    ok(run(
        &[
            "commitment",
            "release",
            "--agreement",
            "test-pool",
            "--reference",
            "PO-1",
            "--reason",
            "invoiced",
        ],
        dir,
        &db.url,
    ));
    let m = monitor_json(dir, &db.url, "2024/25-P06");
    assert_eq!(m["monitoring"]["totals"]["commitments"], "0.00");
    let actions = audit_actions(dir, &db.url);
    for action in [
        "ledger.correction",
        "ledger.reclassify",
        "commitment.record",
        "commitment.release",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    ok(run(&["audit", "verify"], dir, &db.url));
}

both_backends!(
    a_refused_batch_mid_file_stops_the_reader_and_leaves_nothing,
    corrections_reclassification_commitments_and_drill_down,
    payments_set_arrears_against_the_schedules,
    import_twice_adds_nothing_and_totals_equal_the_file,
    one_bad_row_among_many_changes_nothing_and_is_named,
    closed_period_refuses_postings_and_a_repeated_reference_is_refused,
    settlement_shares_the_overspend_to_the_penny,
    budgets_monitoring_and_forecast_override,
);

#[test]
fn close_period_takes_the_period_as_period_and_still_as_an_argument() {
    let dir = scratch("close-period");
    let db = sqlite_db(&dir);
    set_up(&dir, &db.url);
    let help = ok(run(&["close-period", "--help"], &dir, &db.url));
    assert!(help.contains("--period <PERIOD>"), "{help}");
    assert!(
        help.contains("Usage: concordat close-period [OPTIONS] --agreement <AGREEMENT>"),
        "the bare argument is not advertised:\n{help}"
    );
    let none = run(&["close-period", "--agreement", "test-pool"], &dir, &db.url);
    assert!(!none.status.success());
    assert!(stderr(&none).contains("--period"), "{}", stderr(&none));
    let both = run(
        &[
            "close-period",
            "2024/25-P01",
            "--agreement",
            "test-pool",
            "--period",
            "2024/25-P02",
        ],
        &dir,
        &db.url,
    );
    assert!(!both.status.success(), "two periods at once is refused");
    let closed = ok(run(
        &[
            "close-period",
            "--agreement",
            "test-pool",
            "--period",
            "2024/25-P01",
        ],
        &dir,
        &db.url,
    ));
    assert!(closed.contains("test-pool 2024/25-P01 closed"), "{closed}");
    // The form scripts were written with still works.
    let closed = ok(run(
        &["close-period", "2024/25-P02", "--agreement", "test-pool"],
        &dir,
        &db.url,
    ));
    assert!(closed.contains("test-pool 2024/25-P02 closed"), "{closed}");
    let again = run(
        &[
            "close-period",
            "--agreement",
            "test-pool",
            "--period",
            "2024/25-P02",
        ],
        &dir,
        &db.url,
    );
    assert!(!again.status.success(), "P02 is already closed");
    let closes = audit_actions(&dir, &db.url)
        .iter()
        .filter(|a| *a == "period.close")
        .count();
    assert_eq!(closes, 2);
}

#[test]
fn statements_open_as_pdf_xlsx_and_csv() {
    use calamine::{Reader, Xlsx};
    let dir = scratch("statements");
    let db = sqlite_db(&dir);
    let mapping = set_up(&dir, &db.url);
    std::fs::write(dir.join("ledger.csv"), LEDGER).unwrap();
    ok(import(&dir, &db.url, "ledger.csv", &mapping));
    ok(run(
        &[
            "statement",
            "--agreement",
            "test-pool",
            "--quarter",
            "2024/25-Q2",
            "--format",
            "pdf",
            "--output",
            "q2.pdf",
        ],
        &dir,
        &db.url,
    ));
    let text = Command::new("pdftotext")
        .args(["-layout", "q2.pdf", "-"])
        .current_dir(&dir)
        .output()
        .expect("pdftotext runs: install the Debian package poppler-utils");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("quarterly statement, 2024/25-Q2"), "{text}");
    assert!(text.contains("Test County Council"), "{text}");
    assert!(
        text.contains("£3,500,000.00"),
        "actual to the end of P06:\n{text}"
    );

    ok(run(
        &[
            "statement",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
            "--format",
            "xlsx",
            "--output",
            "year.xlsx",
        ],
        &dir,
        &db.url,
    ));
    let mut book: Xlsx<_> = calamine::open_workbook(dir.join("year.xlsx")).unwrap();
    let sheets = book.sheet_names();
    assert!(sheets.iter().any(|s| s == "Income"), "{sheets:?}");
    let income = book.worksheet_range("Income").unwrap();
    let has = |v: f64| {
        income.rows().any(|r| {
            r.iter()
                .any(|c| matches!(c, calamine::Data::Float(f) if *f == v))
        })
    };
    assert!(has(1_000_000.0) && has(3_000_000.0), "{income:?}");

    ok(run(
        &[
            "statement",
            "--agreement",
            "test-pool",
            "--year",
            "2024/25",
            "--format",
            "csv",
            "--output",
            "year",
        ],
        &dir,
        &db.url,
    ));
    let expenditure = std::fs::read_dir(dir.join("year"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("Expenditure"))
        .expect("an expenditure CSV");
    let csv = std::fs::read_to_string(expenditure).unwrap();
    assert!(csv.contains("4010000.03"), "{csv}");

    // The quarter's charts come as SVG beside its tables.
    ok(run(
        &[
            "statement",
            "--agreement",
            "test-pool",
            "--quarter",
            "2024/25-Q2",
            "--format",
            "csv",
            "--output",
            "q2",
        ],
        &dir,
        &db.url,
    ));
    let svgs: Vec<PathBuf> = std::fs::read_dir(dir.join("q2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    assert!(!svgs.is_empty(), "no SVG chart written");
    for svg in svgs {
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("<title id="),
            "{}",
            svg.display()
        );
    }
}

#[test]
fn an_excel_extract_imports_like_its_csv() {
    let dir = scratch("xlsx");
    let db = sqlite_db(&dir);
    let mapping = set_up(&dir, &db.url);
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet().set_name("Extract").unwrap();
    let rows = [
        ("2024-04-10", "Home care", "council", "T-1", 1_500_000.0),
        ("2024-06-30", "Reablement", "icb", "T-2", 2_000_000.0),
        // A float that is not exactly 510,000.04 in binary: rounded to pence once.
        ("2024-10-15", "Home care", "icb", "T-3", 510_000.0 + 0.04),
        ("2025-03-31", "Reablement", "council", "T-4", -0.01),
    ];
    let header = [
        "date",
        "fund",
        "service",
        "partner",
        "subjective",
        "supplier",
        "reference",
        "amount",
    ];
    for (col, name) in header.iter().enumerate() {
        sheet.write_string(0, col as u16, *name).unwrap();
    }
    for (i, (date, service, partner, reference, amount)) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        sheet.write_string(r, 0, *date).unwrap();
        sheet.write_string(r, 1, "pool").unwrap();
        sheet.write_string(r, 2, *service).unwrap();
        sheet.write_string(r, 3, *partner).unwrap();
        sheet.write_number(r, 4, 5101.0).unwrap();
        sheet.write_string(r, 5, "Supplier").unwrap();
        sheet.write_string(r, 6, *reference).unwrap();
        sheet.write_number(r, 7, *amount).unwrap();
    }
    workbook.save(dir.join("extract.xlsx")).unwrap();
    let out = ok(import(&dir, &db.url, "extract.xlsx", &mapping));
    assert!(out.contains("control total    £4,010,000.03"), "{out}");
    let m = monitor_json(&dir, &db.url, "2024/25-P12");
    assert_eq!(m["monitoring"]["totals"]["actual_to_date"], "4010000.03");
}
