//! `concordat … | head`: when the reader of its output goes away early, a command stops
//! quietly, with no panic and no error line, and exits successfully.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    concordat_testkit::repo_root()
}

fn scratch(name: &str) -> PathBuf {
    concordat_testkit::scratch("pipe", name)
}

fn command(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_concordat"));
    c.args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("CONCORDAT_ACTOR", "tester");
    c
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "the command failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Runs a command as `… | head -c 100` would: reads the first bytes of its output, closes the
/// pipe, and returns how it ended and what it said on standard error.
fn read_a_little_then_close(mut command: Command) -> (std::process::ExitStatus, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).expect("some output first");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).to_string())
}

#[track_caller]
fn assert_quiet(status: std::process::ExitStatus, stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(status.success(), "{status:?}: {stderr}");
}

/// Far more output than a pipe holds (64 KiB on Linux), so the command is still writing when
/// the pipe closes.
const ROWS: usize = 20_000;

#[test]
fn summarize_stops_quietly_when_its_reader_goes() {
    let dir = scratch("summarize");
    let mut csv = String::from("fund,service,amount\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "pool,Service line number {i:06},{}.{:02}\n",
            i,
            i % 100
        ));
    }
    std::fs::write(dir.join("ledger.csv"), csv).unwrap();
    for format in ["csv", "table"] {
        let (status, stderr) = read_a_little_then_close(command(
            &[
                "summarize",
                "ledger.csv",
                "--by",
                "service",
                "--format",
                format,
            ],
            &dir,
        ));
        assert_quiet(status, &stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_database_listing_stops_quietly_when_its_reader_goes() {
    let dir = scratch("postings");
    let db = concordat_testkit::sqlite_db(&dir);
    let with_db = |args: &[&str]| {
        let mut c = command(args, &dir);
        c.args(["--database", &db.url]);
        c
    };
    let agreement = repo().join("examples/agreements/hertfordshire.toml");
    ok(with_db(&["agreement", "load", agreement.to_str().unwrap()])
        .output()
        .unwrap());
    let mut csv = String::from("date,fund,service,partner,subjective,supplier,reference,amount\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "2001-05-15,mental-health,Home care,county-council,5101,Ashdown Care Ltd,R-{i:06},1.00\n"
        ));
    }
    std::fs::write(dir.join("ledger.csv"), csv).unwrap();
    let mapping = repo().join("examples/mappings/concordat-ledger.toml");
    ok(with_db(&[
        "import",
        "ledger.csv",
        "--agreement",
        "hertfordshire",
        "--mapping",
        mapping.to_str().unwrap(),
        "--no-progress",
    ])
    .output()
    .unwrap());
    let limit = ROWS.to_string();
    let (status, stderr) = read_a_little_then_close(with_db(&[
        "postings",
        "--agreement",
        "hertfordshire",
        "--fund",
        "mental-health",
        "--year",
        "2001/02",
        "--limit",
        &limit,
    ]));
    assert_quiet(status, &stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
