//! Governance through the `concordat` command, as a board secretary scripts it: meetings and
//! decisions recorded from files, refusals that name the field and write nothing, the decision
//! log as CSV, the registers, notice and the exit statement, the calendar with what is
//! overdue, and the demo's governance. Database cases run on SQLite and on PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use concordat_testkit::{TestDb, sqlite_db};

fn repo() -> PathBuf {
    concordat_testkit::repo_root()
}

fn scratch(name: &str) -> PathBuf {
    concordat_testkit::scratch("governance", name)
}

fn run(args: &[&str], dir: &Path, db: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concordat"))
        .args(args)
        .args(["--database", db])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("CONCORDAT_ACTOR", "secretary")
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

/// The command's error, once it has failed.
#[track_caller]
fn refused(o: Output) -> String {
    assert!(
        !o.status.success(),
        "the command should have been refused:\n{}",
        stdout(&o)
    );
    stderr(&o)
}

fn postgres_db() -> Option<TestDb> {
    concordat_testkit::postgres_db("cli")
}

fn audit_count(dir: &Path, db: &str) -> usize {
    ok(run(
        &["audit", "log", "--agreement", "hertfordshire"],
        dir,
        db,
    ))
    .lines()
    .count()
}

/// The Hertfordshire board (8:8, quorum 6 with each side, a block vote per side) with four
/// a side, a co-optee, and a declaration on item 3. Dates are TOML's own.
const MEETING: &str = r#"reference = "JCPB-2001-07"
body = "jcpb"
date = 2001-07-09
status = "held"
location = "County Hall"

[[attendance]]
name = "Cllr 1"
partner = "county-council"
capacity = "member"
[[attendance]]
name = "Cllr 2"
partner = "county-council"
capacity = "member"
[[attendance]]
name = "Cllr 3"
partner = "county-council"
capacity = "member"
[[attendance]]
name = "Cllr 4"
partner = "county-council"
capacity = "member"
[[attendance]]
name = "PCT member 1"
partner = "pcts"
capacity = "member"
[[attendance]]
name = "PCT member 2"
partner = "pcts"
capacity = "member"
[[attendance]]
name = "PCT member 3"
partner = "pcts"
capacity = "member"
[[attendance]]
name = "PCT member 4"
partner = "pcts"
capacity = "member"
[[attendance]]
name = "Carers' representative"
capacity = "co-opted"

[[declarations]]
member = "PCT member 4"
item = 3
interest = "Non-executive director of a provider"

[[agenda]]
number = 3
title = "Virement to reablement"
"#;

/// The virement, with the budget changes it authorises; `{VOTER}` is an extra voter.
const VIREMENT: &str = r#"reference = "JCPB-2001-07-3"
title = "Virement from residential care to reablement"
resolution = "The board agreed the virement."
level = "joint"
decision_type = "virement"
meeting = "JCPB-2001-07"
agenda_item = 3
fund = "mental-health"
amount = "60000.00"
published = true
votes = [
  { member = "Cllr 1", choice = "for" },
  { member = "Cllr 2", choice = "for" },
  { member = "Cllr 3", choice = "for" },
  { member = "Cllr 4", choice = "for" },
  { member = "PCT member 1", choice = "for" },
  { member = "PCT member 2", choice = "for" },
  { member = "PCT member 3", choice = "for" },{VOTER}
]

[[budget_changes]]
year = "2001/02"
service_line = "Residential care"
annual = "440000.00"

[[budget_changes]]
year = "2001/02"
service_line = "Reablement"
annual = "560000.00"
reason = "Reablement expanded by the board's virement"
"#;

fn virement(voter: &str) -> String {
    VIREMENT.replace("{VOTER}", voter)
}

fn set_up(dir: &Path, db: &str) {
    let agreement = repo().join("examples/agreements/hertfordshire.toml");
    ok(run(
        &["agreement", "load", agreement.to_str().unwrap()],
        dir,
        db,
    ));
    for line in ["Residential care", "Reablement"] {
        ok(run(
            &[
                "budget",
                "set",
                "--agreement",
                "hertfordshire",
                "--fund",
                "mental-health",
                "--year",
                "2001/02",
                "--service-line",
                line,
                "--annual",
                "500000.00",
                "--reason",
                "opening budget",
                "--new-line",
            ],
            dir,
            db,
        ));
    }
}

fn decisions_listed(dir: &Path, db: &str) -> String {
    ok(run(
        &["decision", "list", "--agreement", "hertfordshire"],
        dir,
        db,
    ))
}

fn a_meeting_and_its_decisions_are_recorded_from_files(db: &TestDb, dir: &Path) {
    let db = db.url.as_str();
    set_up(dir, db);
    std::fs::write(dir.join("meeting.toml"), MEETING).unwrap();
    let recorded = ok(run(
        &[
            "meeting",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "meeting.toml",
        ],
        dir,
        db,
    ));
    assert!(
        recorded.contains("Recorded meeting JCPB-2001-07 of the Joint Commissioning Partnership Board on 2001-07-09: held (9 present, 1 declaration"),
        "{recorded}"
    );
    // The same file again is not a second meeting: it needs --update.
    let again = refused(run(
        &[
            "meeting",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "meeting.toml",
        ],
        dir,
        db,
    ));
    assert!(again.contains("--update"), "{again}");

    let before = audit_count(dir, db);
    // Refused: the co-optee votes. The reason names the key in the file.
    std::fs::write(
        dir.join("co-opted.toml"),
        virement("\n  { member = \"Carers' representative\", choice = \"for\" },"),
    )
    .unwrap();
    let error = refused(run(
        &[
            "decision",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "co-opted.toml",
        ],
        dir,
        db,
    ));
    assert!(
        error.contains("co-opted.toml: votes: Carers' representative is not a voting member (co-opted members take part but never vote). Nothing was recorded."),
        "{error}"
    );
    // Refused: the member with a declared interest votes.
    std::fs::write(
        dir.join("interest.toml"),
        virement("\n  { member = \"PCT member 4\", choice = \"for\" },"),
    )
    .unwrap();
    let error = refused(run(
        &[
            "decision",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "interest.toml",
        ],
        dir,
        db,
    ));
    assert!(
        error.contains("votes: PCT member 4 declared an interest in this item"),
        "{error}"
    );
    // Refused: the budget changes move more than the decision authorises.
    std::fs::write(
        dir.join("too-much.toml"),
        virement("").replace("\"60000.00\"", "\"50000.00\""),
    )
    .unwrap();
    let error = refused(run(
        &[
            "decision",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "too-much.toml",
        ],
        dir,
        db,
    ));
    assert!(error.contains("too-much.toml: amount: "), "{error}");
    // Refused: a misspelt key is not silently ignored.
    std::fs::write(
        dir.join("misspelt.toml"),
        virement("").replace("agenda_item", "agenda_itme"),
    )
    .unwrap();
    let error = refused(run(
        &[
            "decision",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "misspelt.toml",
        ],
        dir,
        db,
    ));
    assert!(
        error.contains("misspelt.toml: agenda_itme: not a key of this record"),
        "{error}"
    );
    // Nothing was written by any of them: no decision, no budget revision, no audit record.
    assert!(
        decisions_listed(dir, db).contains("No decisions are recorded for hertfordshire"),
        "{}",
        decisions_listed(dir, db)
    );
    let csv = ok(run(
        &[
            "decision",
            "list",
            "--agreement",
            "hertfordshire",
            "--format",
            "csv",
        ],
        dir,
        db,
    ));
    assert_eq!(csv.lines().count(), 1, "the header only: {csv}");
    assert_eq!(audit_count(dir, db), before);

    // The decision as it stands, from JSON this time: recorded with its budget changes.
    let toml_text = virement("");
    let value: toml::Value = toml::from_str(&toml_text).unwrap();
    std::fs::write(
        dir.join("virement.json"),
        serde_json::to_string_pretty(&value).unwrap(),
    )
    .unwrap();
    let recorded = ok(run(
        &[
            "decision",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "virement.json",
        ],
        dir,
        db,
    ));
    assert!(
        recorded.contains("Recorded decision JCPB-2001-07-3 of 2001-07-09"),
        "{recorded}"
    );
    assert!(
        recorded.contains("8 voting members present, quorum 6 with each partner"),
        "{recorded}"
    );
    assert!(
        recorded.contains("budget mental-health 2001/02 Reablement: £560,000.00: revision 2"),
        "{recorded}"
    );
    assert_eq!(
        audit_count(dir, db),
        before + 1,
        "one audit record for the decision and both changes"
    );
    let history = ok(run(
        &[
            "budget",
            "history",
            "--agreement",
            "hertfordshire",
            "--fund",
            "mental-health",
            "--year",
            "2001/02",
            "--service-line",
            "Reablement",
        ],
        dir,
        db,
    ));
    assert!(
        history.contains("Reablement expanded by the board's virement (authority: JCPB-2001-07-3)"),
        "{history}"
    );

    // The log, as a table, searched, and as CSV with the votes.
    let table = decisions_listed(dir, db);
    assert!(table.contains("JCPB-2001-07-3"), "{table}");
    assert!(table.contains("£60,000.00 yes"), "{table}");
    let none = ok(run(
        &[
            "decision",
            "list",
            "--agreement",
            "hertfordshire",
            "--search",
            "nothing like this",
        ],
        dir,
        db,
    ));
    assert!(
        none.contains("No decision of hertfordshire matches"),
        "{none}"
    );
    let csv = ok(run(
        &[
            "decision",
            "list",
            "--agreement",
            "hertfordshire",
            "--search",
            "reablement virement",
            "--published",
            "--format",
            "csv",
        ],
        dir,
        db,
    ));
    let row = csv.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("JCPB-2001-07-3,2001-07-09,joint,virement,"),
        "{csv}"
    );
    assert!(row.contains(",60000.00,7,0,0,"), "{csv}");
    assert!(row.ends_with(",yes,cli:secretary"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&ok(run(
        &[
            "decision",
            "list",
            "--agreement",
            "hertfordshire",
            "--format",
            "json",
        ],
        dir,
        db,
    )))
    .unwrap();
    assert_eq!(json[0]["decision"]["decided_on"], "2001-07-09");

    // A paper for the meeting, and the meeting as a whole.
    std::fs::write(
        dir.join("report.csv"),
        "line,budget\nReablement,560000.00\n",
    )
    .unwrap();
    let paper = ok(run(
        &[
            "meeting",
            "paper",
            "--agreement",
            "hertfordshire",
            "--meeting",
            "JCPB-2001-07",
            "--title",
            "Pool manager's report",
            "report.csv",
        ],
        dir,
        db,
    ));
    assert!(
        paper.contains("Paper 1 added to meeting JCPB-2001-07"),
        "{paper}"
    );
    let shown = ok(run(
        &[
            "meeting",
            "show",
            "--agreement",
            "hertfordshire",
            "--meeting",
            "JCPB-2001-07",
        ],
        dir,
        db,
    ));
    for expected in [
        "JCPB-2001-07 — Joint Commissioning Partnership Board — 2001-07-09 (held)",
        "Carers' representative — co-opted",
        "PCT member 4, item 3: Non-executive director of a provider",
        "3. Virement to reablement",
        "1. Pool manager's report (report.csv",
        "JCPB-2001-07-3 (item 3): Virement from residential care to reablement (joint, virement, £60,000.00)",
    ] {
        assert!(shown.contains(expected), "{expected:?} in\n{shown}");
    }
    let listed = ok(run(
        &["meeting", "list", "--agreement", "hertfordshire"],
        dir,
        db,
    ));
    assert!(listed.contains("JCPB-2001-07 2001-07-09 held"), "{listed}");
    // Once it has a decision, its attendance is what the decision was checked against.
    let error = refused(run(
        &[
            "meeting",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "meeting.toml",
            "--update",
        ],
        dir,
        db,
    ));
    assert!(error.contains("meeting.toml: attendance: "), "{error}");
    ok(run(&["audit", "verify"], dir, db));
}

fn a_meeting_without_quorum_decides_nothing(db: &TestDb, dir: &Path) {
    let db = db.url.as_str();
    set_up(dir, db);
    // Only the council's side came: four councillors, no PCT member.
    let mut council_only = String::from(
        "reference = \"JCPB-2001-07\"\nbody = \"jcpb\"\ndate = \"2001-07-09\"\nstatus = \"held\"\n",
    );
    for n in 1..=4 {
        council_only.push_str(&format!(
            "\n[[attendance]]\nname = \"Cllr {n}\"\npartner = \"county-council\"\ncapacity = \"member\"\n"
        ));
    }
    council_only.push_str("\n[[agenda]]\nnumber = 3\ntitle = \"Virement to reablement\"\n");
    std::fs::write(dir.join("meeting.toml"), council_only).unwrap();
    ok(run(
        &[
            "meeting",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "meeting.toml",
        ],
        dir,
        db,
    ));
    std::fs::write(dir.join("decision.toml"), virement("")).unwrap();
    let error = refused(run(
        &[
            "decision",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            "decision.toml",
        ],
        dir,
        db,
    ));
    assert!(
        error.contains("decision.toml: meeting: The meeting is not quorate: 4 voting members present; the quorum is 6"),
        "{error}"
    );
    assert!(
        decisions_listed(dir, db).contains("No decisions are recorded"),
        "nothing written"
    );
}

fn the_registers_notice_and_exit(db: &TestDb, dir: &Path) {
    let db = db.url.as_str();
    let agreement = repo().join("examples/agreements/halton-st-helens.toml");
    ok(run(
        &["agreement", "load", agreement.to_str().unwrap()],
        dir,
        db,
    ));
    let key = ["--agreement", "halton-st-helens"];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(key.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let go = |args: &[&str]| {
        run(
            &with(args).iter().map(String::as_str).collect::<Vec<_>>(),
            dir,
            db,
        )
    };

    // A dispute on the ladder: 20 days at each of the first two steps.
    let raised = ok(go(&[
        "dispute",
        "raise",
        "--reference",
        "D-1",
        "--subject",
        "Who pays for a joint placement",
        "--raised-by",
        "st-helens",
        "--on",
        "2008-11-20",
    ]));
    assert!(
        raised.contains(
            "Step 1 of 3: Good-faith discussion between the partners, to be settled by 2008-12-10"
        ),
        "{raised}"
    );
    let error = refused(go(&[
        "dispute",
        "raise",
        "--reference",
        "D-2",
        "--subject",
        "Anything",
        "--raised-by",
        "nobody",
    ]));
    assert!(
        error.contains("--raised-by: 'nobody' is not a partner"),
        "{error}"
    );
    let escalated = ok(go(&[
        "dispute",
        "escalate",
        "--reference",
        "D-1",
        "--on",
        "2008-12-11",
    ]));
    assert!(
        escalated.contains(
            "Step 2 of 3: Escalation through each organisation, to be settled by 2008-12-31"
        ),
        "{escalated}"
    );
    let listed = ok(go(&["dispute", "list", "--as-at", "2009-01-05"]));
    assert!(listed.contains("due 2008-12-31  [overdue]"), "{listed}");
    ok(go(&[
        "dispute",
        "resolve",
        "--reference",
        "D-1",
        "--outcome",
        "Shared equally",
        "--on",
        "2009-01-06",
    ]));
    let error = refused(go(&[
        "dispute",
        "escalate",
        "--reference",
        "D-1",
        "--on",
        "2009-01-07",
    ]));
    assert!(error.contains("--reference: D-1 is resolved"), "{error}");

    // A complaint and a compliment.
    let received = ok(go(&[
        "complaint",
        "receive",
        "--reference",
        "C-1",
        "--summary",
        "Late home care visit",
        "--handled-by",
        "halton",
        "--on",
        "2008-12-03",
    ]));
    assert!(
        received.contains("Next: acknowledge by 2008-12-06 (Halton Borough Council)"),
        "{received}"
    );
    ok(go(&[
        "complaint",
        "receive",
        "--reference",
        "C-2",
        "--kind",
        "compliment",
        "--summary",
        "Thanks to the reablement team",
        "--handled-by",
        "st-helens",
        "--on",
        "2008-12-04",
    ]));
    ok(go(&[
        "complaint",
        "acknowledge",
        "--reference",
        "C-1",
        "--on",
        "2008-12-05",
    ]));
    let listed = ok(go(&["complaint", "list", "--as-at", "2008-12-30"]));
    assert!(
        listed.contains("open: respond by 2008-12-23  [overdue]"),
        "{listed}"
    );

    // Risks: added, re-scored, one closed.
    ok(go(&[
        "risk",
        "add",
        "--reference",
        "R-1",
        "--title",
        "Placements overspend",
        "--owner",
        "Pool manager",
        "--likelihood",
        "4",
        "--impact",
        "4",
        "--review-on",
        "2008-12-31",
    ]));
    let error = refused(go(&[
        "risk",
        "add",
        "--reference",
        "R-2",
        "--title",
        "Anything",
        "--owner",
        "Someone",
        "--likelihood",
        "6",
        "--impact",
        "1",
        "--review-on",
        "2008-12-31",
    ]));
    assert!(
        error.contains("--likelihood: Likelihood is scored 1 to 5, not 6. Nothing was recorded."),
        "{error}"
    );
    ok(go(&[
        "risk",
        "add",
        "--reference",
        "R-2",
        "--title",
        "Journals miscoded",
        "--owner",
        "Commissioning team",
        "--likelihood",
        "2",
        "--impact",
        "3",
        "--review-on",
        "2009-03-31",
    ]));
    let updated = ok(go(&[
        "risk",
        "update",
        "--reference",
        "R-2",
        "--likelihood",
        "3",
        "--review-on",
        "2009-06-30",
    ]));
    assert!(
        updated.contains("likelihood 3 × impact 3 = 9 (medium)"),
        "{updated}"
    );
    ok(go(&[
        "risk",
        "update",
        "--reference",
        "R-1",
        "--close",
        "--on",
        "2009-04-01",
    ]));
    let register = ok(go(&["risk", "list", "--as-at", "2009-07-01"]));
    assert!(
        !register.contains("R-1 "),
        "closed risks are left out: {register}"
    );
    assert!(register.contains("2009-06-30 open"), "{register}");
    assert!(register.contains("[overdue]"), "{register}");
    assert!(ok(go(&["risk", "list", "--all"])).contains("closed"));

    // The calendar has the records' dates, and marks what is overdue.
    let calendar = ok(go(&[
        "calendar",
        "--from",
        "2008/09",
        "--to",
        "2009/10",
        "--as-at",
        "2008-12-30",
    ]));
    assert!(
        calendar.contains("2008-12-23  Complaint C-1: respond (halton)"),
        "{calendar}"
    );
    let line = calendar
        .lines()
        .find(|l| l.contains("Complaint C-1"))
        .unwrap();
    assert!(line.ends_with("[overdue]"), "{line}");
    let line = calendar
        .lines()
        .find(|l| l.contains("Review risk R-2"))
        .unwrap();
    assert!(!line.contains("[overdue]"), "{line}");

    // Notice: the end date first, then the reasoning; once only.
    let notice = ok(go(&[
        "exit",
        "notice",
        "--by",
        "pct",
        "--on",
        "2008-12-15",
        "--reason",
        "Commissioning moves",
    ]));
    assert_eq!(notice.lines().next(), Some("2010-03-31"), "{notice}");
    assert!(
        notice.contains("the first year end on or after 2009-06-15"),
        "{notice}"
    );
    let error = refused(go(&[
        "exit",
        "notice",
        "--by",
        "halton",
        "--on",
        "2009-01-01",
    ]));
    assert!(error.contains("--by: Notice is already served"), "{error}");
    let calendar = ok(go(&["calendar", "--from", "2009/10"]));
    assert!(
        calendar.contains("2010-03-31  The agreement ends: notice served by pct on 2008-12-15"),
        "{calendar}"
    );
    ok(run(&["audit", "verify"], dir, db));
}

fn the_exit_statement_settles_under_the_exit_terms(db: &TestDb, dir: &Path) {
    let db = db.url.as_str();
    set_up(dir, db);
    let args = [
        "exit",
        "statement",
        "--agreement",
        "hertfordshire",
        "--fund",
        "mental-health",
        "--year",
        "2001/02",
    ];
    let table = ok(run(&args, dir, db));
    assert!(
        table.contains("Final statement on exit: mental-health 2001/02"),
        "{table}"
    );
    assert!(
        table.contains("No notice is recorded as served."),
        "{table}"
    );
    assert!(table.contains("excluding non-recurrent"), "{table}");
    assert!(table.contains("year-end settlement 2001/02"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(run(
        &[&args[..], &["--format", "json"]].concat(),
        dir,
        db,
    )))
    .unwrap();
    assert_eq!(json["fund"], "mental-health");
    assert!(json["settlement"]["lines"].as_array().unwrap().len() >= 2);
    let error = refused(run(
        &[
            "exit",
            "statement",
            "--agreement",
            "hertfordshire",
            "--fund",
            "mental-health",
            "--year",
            "2030/31",
        ],
        dir,
        db,
    ));
    assert!(error.contains("--year: "), "{error}");
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

/// A new version that varies a contribution is loaded only with the contribution-variation
/// decision behind it.
fn a_contribution_variation_needs_its_decision(db: &TestDb, dir: &Path) {
    set_up(dir, db.url.as_str());
    let original =
        std::fs::read_to_string(repo().join("examples/agreements/hertfordshire.toml")).unwrap();
    let varied = original.replacen("amount = \"£12,500,000\"", "amount = \"£12,600,000\"", 1);
    assert_ne!(varied, original);
    let file = dir.join("hertfordshire-v2.toml");
    std::fs::write(&file, &varied).unwrap();
    let load = |decision: Option<&str>| {
        let mut args = vec!["agreement", "load", file.to_str().unwrap()];
        if let Some(d) = decision {
            args.extend(["--decision", d]);
        }
        run(&args, dir, db.url.as_str())
    };
    let before = audit_count(dir, db.url.as_str());
    let message = refused(load(None));
    assert!(message.contains("--decision: This version varies contributions (mental-health county-council 2001/02: £12,500,000.00 to £12,600,000.00)"), "{message}");
    assert_eq!(
        audit_count(dir, db.url.as_str()),
        before,
        "nothing was loaded"
    );
    std::fs::write(
        dir.join("variation.toml"),
        "reference = \"CAB-2001-06-7\"\ntitle = \"Mental health contribution\"\nresolution = \"Cabinet agreed an increase of £100,000\"\nlevel = \"reserved\"\ndecision_type = \"contribution-variation\"\npartner = \"county-council\"\ndecided_on = \"2001-06-20\"\nfund = \"mental-health\"\namount = \"100000.00\"\n",
    )
    .unwrap();
    ok(run(
        &[
            "decision",
            "record",
            "--agreement",
            "hertfordshire",
            "--file",
            dir.join("variation.toml").to_str().unwrap(),
        ],
        dir,
        db.url.as_str(),
    ));
    let loaded = ok(load(Some("CAB-2001-06-7")));
    assert!(loaded.contains("version 2"), "{loaded}");
}

both_backends!(
    a_contribution_variation_needs_its_decision,
    a_meeting_and_its_decisions_are_recorded_from_files,
    a_meeting_without_quorum_decides_nothing,
    the_registers_notice_and_exit,
    the_exit_statement_settles_under_the_exit_terms,
);

/// The demo's own database (always SQLite): the seed bodies' meetings and decisions are there.
#[test]
fn the_demo_records_the_seed_bodies_meetings_and_decisions() {
    let dir = scratch("demo");
    let demo = Command::new(env!("CARGO_BIN_EXE_concordat"))
        .args(["demo", "--no-serve", "--database-file", "demo.db"])
        .current_dir(&dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let printed = ok(demo);
    for line in [
        "hertfordshire: 2 meetings (1 held, 1 scheduled), 3 decisions",
        "trafford: 1 meeting (1 held, 0 scheduled), 3 decisions",
        "halton-st-helens: 2 meetings (2 held, 0 scheduled), 1 decision, 1 dispute, 2 complaints or compliments, 2 risks",
    ] {
        assert!(printed.contains(line), "{line:?} in\n{printed}");
    }
    let db = "sqlite:demo.db";
    let csv = |key: &str| {
        ok(run(
            &["decision", "list", "--agreement", key, "--format", "csv"],
            &dir,
            db,
        ))
    };
    let hertfordshire = csv("hertfordshire");
    assert!(
        hertfordshire.contains("JCPB-2001-10-03,2001-10-16,joint,virement,"),
        "{hertfordshire}"
    );
    assert!(
        hertfordshire.contains(",mental-health,60000.00,16,0,0,"),
        "{hertfordshire}"
    );
    assert!(
        hertfordshire.contains("JCPB-2001-10-04,2001-10-16,joint,policy,"),
        "{hertfordshire}"
    );
    // The member who declared an interest in item 4 did not vote on it.
    assert!(hertfordshire.contains(",15,0,0,"), "{hertfordshire}");
    assert!(
        hertfordshire.lines().any(|l| l.starts_with("DEL-")
            && l.contains(",delegated,budget-revision,")
            && l.contains(",Pool manager,")
            && l.contains(",20000.00,")),
        "{hertfordshire}"
    );
    let trafford = csv("trafford");
    for expected in [
        "JCEG-2014-06-02,2014-06-12,joint,policy,",
        "TC-EXEC-2014-07,2014-07-21,reserved,policy,",
        "CD-CFW-2014-09,2014-08-28,delegated,policy,",
        ",\"Corporate Director, Children, Families and Well-being, Trafford Council\",",
    ] {
        assert!(trafford.contains(expected), "{expected:?} in\n{trafford}");
    }
    // The virement moved budget between the two lines from P07; the pool manager's revision
    // is on a third.
    let budgets = ok(run(
        &[
            "budget",
            "list",
            "--agreement",
            "hertfordshire",
            "--fund",
            "mental-health",
            "--year",
            "2001/02",
        ],
        &dir,
        db,
    ));
    let revised: Vec<&str> = budgets
        .lines()
        .filter(|l| l.trim_end().ends_with(" 2"))
        .map(|l| l.split("  ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        revised,
        ["Equipment", "Reablement", "Residential placements"],
        "{budgets}"
    );
    let meetings = ok(run(
        &["meeting", "list", "--agreement", "hertfordshire"],
        &dir,
        db,
    ));
    // Reference, date, status, present, decisions.
    let held: Vec<&str> = meetings
        .lines()
        .find(|l| l.starts_with("JCPB-2001-10 "))
        .map(|l| l.split_whitespace().take(5).collect())
        .unwrap_or_default();
    assert_eq!(
        held,
        ["JCPB-2001-10", "2001-10-16", "held", "19", "2"],
        "{meetings}"
    );
    assert!(
        meetings.contains("JCPB-2002-01 2002-01-15 scheduled"),
        "{meetings}"
    );
    let boards = ok(run(
        &[
            "meeting",
            "show",
            "--agreement",
            "halton-st-helens",
            "--meeting",
            "HSH-OPB-2008-11",
        ],
        &dir,
        db,
    ));
    assert!(
        boards.contains("older-people-budgets-2008-09.csv"),
        "{boards}"
    );
    assert!(boards.contains("HSH-OPB-2008-11-02 (item 2)"), "{boards}");
    let calendar = ok(run(
        &[
            "calendar",
            "--agreement",
            "halton-st-helens",
            "--from",
            "2008/09",
        ],
        &dir,
        db,
    ));
    for expected in [
        "2008-11-27  St Helens and Halton Older People Partnership Boards (HSH-OPB-2008-11)",
        "Dispute HSH-D-2008-01: Good-faith discussion between the partners — time limit",
        "Review risk HSH-R-01",
    ] {
        assert!(calendar.contains(expected), "{expected:?} in\n{calendar}");
    }
    assert!(calendar.contains("[overdue]"), "{calendar}");
    let hertfordshire_calendar = ok(run(
        &[
            "calendar",
            "--agreement",
            "hertfordshire",
            "--from",
            "2001/02",
        ],
        &dir,
        db,
    ));
    assert!(
        hertfordshire_calendar.contains(
            "2002-01-15  Joint Commissioning Partnership Board (JCPB-2002-01)  (scheduled)"
        ),
        "{hertfordshire_calendar}"
    );
    ok(run(&["audit", "verify"], &dir, db));
    let _ = std::fs::remove_dir_all(&dir);
}
