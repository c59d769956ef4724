//! The `concordat` command as a person uses it: run the binary, read what it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn concordat(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concordat"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("CONCORDAT_ACTOR", "tester")
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn examples() -> Vec<String> {
    let dir = repo().join("examples/agreements");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    v.sort();
    v
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("concordat-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_example_agreement_passes_check() {
    let files = examples();
    assert!(
        files.len() >= 5,
        "the five seed partnerships are in examples/agreements"
    );
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = concordat(&args, &repo());
    assert!(
        out.status.success(),
        "check failed:\n{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text(&out).contains("error["), "{}", text(&out));
}

#[test]
fn check_names_file_line_and_rule_and_fails() {
    let fixture = repo().join("crates/io/tests/fixtures/a004-no-pool-manager.toml");
    let out = concordat(&["check", fixture.to_str().unwrap()], &repo());
    assert_eq!(out.status.code(), Some(1));
    let printed = text(&out);
    let line = printed
        .lines()
        .find(|l| l.contains("error[A004]"))
        .expect("A004 reported");
    assert!(
        line.starts_with(&format!("{}:", fixture.display())),
        "{line}"
    );
    let mut parts = line[fixture.display().to_string().len() + 1..].split(':');
    let (l, c) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(
        l.parse::<usize>().unwrap() > 1 && c.parse::<usize>().unwrap() >= 1,
        "{line}"
    );
    assert!(
        line.contains("pool manager"),
        "the message says what to change: {line}"
    );
}

#[test]
fn notice_prints_the_iso_date_first_then_the_reasoning() {
    let halton = examples()
        .into_iter()
        .find(|f| f.contains("halton"))
        .expect("Halton example");
    let out = concordat(&["notice", &halton, "--served", "2008-09-30"], &repo());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = text(&out);
    let mut lines = printed.lines();
    assert_eq!(lines.next(), Some("2009-03-31"));
    assert!(printed.contains("end of a financial year"), "{printed}");
    let out = concordat(&["notice", &halton, "--served", "2008-10-01"], &repo());
    assert_eq!(text(&out).lines().next(), Some("2010-03-31"));
}

#[test]
fn load_is_idempotent_and_a_new_version_is_audited() {
    let dir = scratch("load");
    let halton = examples()
        .into_iter()
        .find(|f| f.contains("halton"))
        .unwrap();
    let copy = dir.join("agreement.toml");
    std::fs::copy(&halton, &copy).unwrap();
    let copy_s = copy.to_str().unwrap();

    let first = concordat(&["agreement", "load", copy_s], &dir);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        text(&first).contains("loaded as version 1"),
        "{}",
        text(&first)
    );
    assert!(
        dir.join("concordat.db").exists(),
        "the default database is created on first use"
    );

    let again = concordat(&["agreement", "load", copy_s], &dir);
    assert!(text(&again).contains("unchanged"), "{}", text(&again));

    let edited = std::fs::read_to_string(&copy).unwrap().replacen(
        "\ntitle = \"",
        "\ntitle = \"Revised: ",
        1,
    );
    std::fs::write(&copy, edited).unwrap();
    let second = concordat(&["agreement", "load", copy_s], &dir);
    assert!(text(&second).contains("version 2"), "{}", text(&second));

    let list = text(&concordat(&["agreement", "list"], &dir));
    assert!(
        list.contains("halton") && list.contains("Revised:"),
        "{list}"
    );
    let show = concordat(&["agreement", "show", "halton-st-helens"], &dir);
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    assert!(
        text(&show).contains("v1 loaded") && text(&show).contains("v2 loaded"),
        "{}",
        text(&show)
    );

    let log = text(&concordat(&["audit", "log"], &dir));
    assert_eq!(
        log.lines().count(),
        2,
        "create and new version, nothing for the unchanged load: {log}"
    );
    assert!(log.contains("cli:tester"), "{log}");
    let verify = concordat(&["audit", "verify"], &dir);
    assert!(verify.status.success());
    assert!(
        text(&verify).contains("intact: 2 records"),
        "{}",
        text(&verify)
    );

    let missing = concordat(&["agreement", "show", "no-such"], &dir);
    assert_eq!(missing.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_invalid_file_changes_nothing() {
    let dir = scratch("invalid");
    let fixture = repo().join("crates/io/tests/fixtures/a012-unsigned-active.toml");
    let out = concordat(&["agreement", "load", fixture.to_str().unwrap()], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[A012]"));
    let list = text(&concordat(&["agreement", "list"], &dir));
    assert!(list.contains("No agreements loaded"), "{list}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_loads_the_five_partnerships() {
    let dir = scratch("demo");
    let out = concordat(&["demo", "--no-serve"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = text(&out);
    assert_eq!(
        printed.matches("loaded as version 1").count(),
        examples().len(),
        "{printed}"
    );
    assert!(
        printed.contains("Audit chain:") && printed.contains("intact"),
        "{printed}"
    );
    // Run twice: the demo database is fresh each time.
    let again = concordat(&["demo", "--no-serve"], &dir);
    assert_eq!(
        text(&again).matches("loaded as version 1").count(),
        examples().len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn audit_verify_names_a_record_changed_directly_in_the_database() {
    let dir = scratch("tamper");
    let halton = examples()
        .into_iter()
        .find(|f| f.contains("halton"))
        .unwrap();
    let copy = dir.join("agreement.toml");
    std::fs::copy(&halton, &copy).unwrap();
    assert!(
        concordat(&["agreement", "load", copy.to_str().unwrap()], &dir)
            .status
            .success()
    );
    let edited = std::fs::read_to_string(&copy).unwrap().replacen(
        "status = \"draft\"",
        "status = \"approved\"",
        1,
    );
    std::fs::write(&copy, edited).unwrap();
    assert!(
        concordat(&["agreement", "load", copy.to_str().unwrap()], &dir)
            .status
            .success()
    );
    assert!(concordat(&["audit", "verify"], &dir).status.success());

    // Someone with write access to the file drops the append-only guard and rewrites who
    // made the first change.
    let url = format!("sqlite:{}", dir.join("concordat.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = concordat_store::open(&url).await.unwrap();
        store
            .execute_raw_for_tests(
                "DROP TRIGGER audit_record_no_update; \
                 UPDATE audit_record SET actor = 'cli:mallory' WHERE seq = 1",
            )
            .await
            .unwrap();
    });
    let verify = concordat(&["audit", "verify"], &dir);
    assert_eq!(verify.status.code(), Some(1));
    let printed = text(&verify);
    assert!(
        printed.contains("BROKEN at halton-st-helens record 1"),
        "{printed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET path` over plain HTTP/1.0; the status line and the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

#[cfg(unix)]
#[test]
fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let dir = scratch("serve");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new(env!("CARGO_BIN_EXE_concordat"))
        .args([
            "serve",
            "--json-logs",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--database",
            &format!("sqlite:{}", dir.join("serve.db").display()),
        ])
        .env("RUST_LOG", "info")
        .current_dir(&dir)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let health = loop {
        if let Some(reply) = http_get(port, "/health") {
            break reply;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "the server did not answer"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        health.starts_with("HTTP/1.0 200") || health.starts_with("HTTP/1.1 200"),
        "{health}"
    );
    assert!(
        health.contains(r#""status":"ok""#) && health.contains(r#""database":"sqlite""#),
        "{health}"
    );
    let page = http_get(port, "/agreements").unwrap();
    assert!(
        page.contains(" 303 ") && page.contains("location: /sign-in"),
        "{page}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = server.wait_with_output().unwrap();
    let logs =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    // Structured logs: one JSON object a line, the request among them, then the stop.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "/health" && l["status"] == 200),
        "{logs}"
    );
    assert!(
        lines.iter().any(|l| l["message"] == "concordat stopped"),
        "{logs}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Python 3 that has the `icalendar` package (Debian's `python3-icalendar`), if any.
fn python_with_icalendar() -> Option<String> {
    ["/usr/bin/python3", "python3"]
        .into_iter()
        .find_map(|python| {
            Command::new(python)
                .args(["-c", "import icalendar"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| python.to_string())
        })
}

#[test]
fn the_obligations_calendar_imports_into_a_calendar_application() {
    let dir = scratch("calendar");
    let db = format!("sqlite:{}", dir.join("c.db").display());
    let agreement = repo().join("examples/agreements/hertfordshire.toml");
    let loaded = concordat(
        &[
            "agreement",
            "load",
            &agreement.display().to_string(),
            "--database",
            &db,
        ],
        &dir,
    );
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let table = concordat(
        &[
            "calendar",
            "--agreement",
            "hertfordshire",
            "--from",
            "2001/02",
            "--database",
            &db,
        ],
        &dir,
    );
    let table = text(&table);
    // Four pooled funds: four statements a quarter and four annual returns.
    assert_eq!(table.matches("Quarterly statement").count(), 16, "{table}");
    assert_eq!(table.matches("Annual return").count(), 4, "{table}");
    assert!(
        table.contains("2001-10-31  Quarterly statement, Mental health pooled budget, 2001/02-Q2"),
        "{table}"
    );
    // The records' dates go in too: a meeting scheduled, and two risks due for review on
    // one day (their events must keep apart UIDs).
    std::fs::write(
        dir.join("meeting.toml"),
        "reference = \"JCPB-2002-01\"\nbody = \"jcpb\"\ndate = 2002-01-15\nstatus = \"scheduled\"\n",
    )
    .unwrap();
    let mut records = vec![vec![
        "meeting",
        "record",
        "--agreement",
        "hertfordshire",
        "--file",
        "meeting.toml",
    ]];
    for (reference, title) in [("R1", "Placements overspend"), ("R2", "Staff turnover")] {
        records.push(vec![
            "risk",
            "add",
            "--agreement",
            "hertfordshire",
            "--reference",
            reference,
            "--title",
            title,
            "--owner",
            "Pool manager",
            "--likelihood",
            "3",
            "--impact",
            "4",
            "--review-on",
            "2002-03-31",
        ]);
    }
    for args in records {
        let out = concordat(&[&args[..], &["--database", &db]].concat(), &dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ics = dir.join("h.ics");
    let wrote = concordat(
        &[
            "calendar",
            "--agreement",
            "hertfordshire",
            "--from",
            "2001/02",
            "--to",
            "2002/03",
            "--format",
            "ics",
            "--output",
            &ics.display().to_string(),
            "--database",
            &db,
        ],
        &dir,
    );
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let raw = std::fs::read_to_string(&ics).unwrap();
    assert!(raw.lines().all(|l| l.len() <= 75), "lines are folded");
    assert!(raw.contains("\r\n"), "lines end with CRLF");
    let Some(python) = python_with_icalendar() else {
        assert!(
            std::env::var("CONCORDAT_REQUIRE_ICALENDAR").as_deref() != Ok("1"),
            "no Python with icalendar (Debian package python3-icalendar), and CONCORDAT_REQUIRE_ICALENDAR=1 says there must be"
        );
        eprintln!(
            "\n*** SKIPPED: no Python with icalendar (Debian package python3-icalendar) ***\n"
        );
        return;
    };
    // A calendar application's parser reads it back: every event, with its date and title.
    let script = r#"
import sys, icalendar
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
events = list(cal.walk('VEVENT'))
uids = {str(e['UID']) for e in events}
assert len(uids) == len(events), 'UIDs are unique'
first = min(events, key=lambda e: e['DTSTART'].dt)
print(len(events), first['DTSTART'].dt.isoformat(), str(first['SUMMARY']))
"#;
    let out = Command::new(&python)
        .args(["-c", script, &ics.display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    // Two years: 32 statements, 8 annual returns, 4 dates of the budget-setting timetable,
    // the meeting and the two risk reviews.
    assert!(
        said.starts_with("47 2001-07-31 Quarterly statement, "),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
