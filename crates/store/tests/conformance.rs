//! The store's conformance suite: every case is written once and run unchanged against SQLite
//! and PostgreSQL, each test on a fresh database of its own.
//!
//! PostgreSQL: the server is `CONCORDAT_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test creates its own database there and
//! drops it afterwards. If the server cannot be reached the PostgreSQL tests are skipped with a
//! loud message, unless `CONCORDAT_REQUIRE_POSTGRES=1` (as in CI), which makes them fail.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use concordat_store::{
    Actor, AgreementLoad, GENESIS_HASH, LoadOutcome, MismatchReason, PartnerRow, Store,
    canonical_json, open,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor};

// ---------------------------------------------------------------------------------------------
// Fixtures

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh database for one test, removed when the test ends (also when it panics).
struct TestDb {
    backend: &'static str,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(PathBuf),
    Postgres { server: String, name: String },
}

impl TestDb {
    async fn open(&self) -> Box<dyn Store> {
        open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open the test database: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Postgres { server, name } => {
                // Drop runs outside async code (and maybe while panicking), so drop the database
                // from a thread with a runtime of its own.
                let (server, db_name) = (server.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    rt.block_on(async {
                        let mut conn = sqlx::PgConnection::connect(&server).await?;
                        let sql = format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)");
                        conn.execute(sql.as_str()).await?;
                        conn.close().await
                    })
                    .map_err(|e| e.to_string())
                })
                .join();
                if let Ok(Err(e)) = dropped {
                    eprintln!("warning: could not drop test database {name}: {e}");
                }
            }
        }
    }
}

/// `<pid>_<counter>_<nanos>`: unique across parallel tests and concurrent test runs.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}_{n}_{nanos}", std::process::id())
}

fn sqlite_db() -> TestDb {
    let path = std::env::temp_dir().join(format!("concordat_test_{}.db", unique_suffix()));
    TestDb {
        backend: "sqlite",
        url: format!("sqlite:{}", path.display()),
        cleanup: Cleanup::SqliteFile(path),
    }
}

/// The server URL with its password (if any) hidden, for messages.
fn shown(server: &str) -> String {
    let Some((scheme, rest)) = server.split_once("://") else {
        return server.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => server.to_string(),
    }
}

/// The server URL pointed at another database on the same server.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// A fresh PostgreSQL database, or `None` (after saying so loudly) when there is no server and
/// PostgreSQL is not required.
async fn postgres_db() -> Option<TestDb> {
    let server =
        std::env::var("CONCORDAT_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string());
    let required = std::env::var("CONCORDAT_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::PgConnection::connect(&server),
    )
    .await;
    let why = match connected {
        Ok(Ok(mut conn)) => {
            let name = format!("concordat_test_{}", unique_suffix());
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL at {} cannot create a test database: {e}",
                        shown(&server)
                    )
                });
            let _ = conn.close().await;
            return Some(TestDb {
                backend: "postgres",
                url: with_database(&server, &name),
                cleanup: Cleanup::Postgres { server, name },
            });
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 10 s".to_string(),
    };
    if required {
        panic!(
            "PostgreSQL not reachable at {} ({why}), and CONCORDAT_REQUIRE_POSTGRES=1 says it \
             must be: start it, or point CONCORDAT_TEST_POSTGRES at a server",
            shown(&server)
        );
    }
    eprintln!(
        "SKIPPED: PostgreSQL not reachable at {} ({why}) — set CONCORDAT_REQUIRE_POSTGRES=1 to \
         make this a failure",
        shown(&server)
    );
    None
}

/// Runs each case once per backend: `sqlite::<case>` and `postgres::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = super::sqlite_db();
                    super::$case(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(db) = super::postgres_db().await else { return };
                    super::$case(&db).await;
                }
            )*
        }
    };
}

conformance!(
    fresh_database_has_the_schema_and_is_empty,
    load_creates_version_one_with_one_audit_record,
    loading_the_same_source_again_writes_nothing,
    changed_source_gives_the_next_version_with_before_and_after,
    list_get_and_partners_return_what_was_loaded,
    partners_are_scoped_to_their_partnership,
    partners_cannot_exist_without_their_partnership,
    audit_chains_are_per_partnership_and_log_is_ordered,
    untouched_chain_verifies,
    altered_record_is_detected_and_named,
    rehashed_record_is_caught_by_the_next_link,
    deleted_record_is_detected_as_a_gap,
    deleted_last_record_is_detected,
    audit_records_cannot_be_changed_by_plain_sql,
    reopening_keeps_everything,
    failed_write_leaves_nothing,
    failure_while_appending_the_audit_record_undoes_the_change,
    bad_actor_or_time_is_refused_before_anything_is_written,
    concurrent_loads_keep_versions_and_chain_contiguous,
);

// ---------------------------------------------------------------------------------------------
// Test data

const T1: &str = "2025-04-01T09:00:00Z";
const T2: &str = "2025-05-01T10:30:00Z";
const T3: &str = "2025-06-01T11:45:00Z";

fn alice() -> Actor {
    Actor::new("cli:alice")
}

fn bob() -> Actor {
    Actor::new("cli:bob")
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn partner(id: &str, name: &str, kind: &str) -> PartnerRow {
    PartnerRow {
        partner_id: id.into(),
        name: name.into(),
        kind: kind.into(),
    }
}

/// An agreement for `key` whose source is `text`; the model's keys are deliberately out of
/// order, so the stored text shows whether it was canonicalised.
fn agreement(key: &str, text: &str, partners: Vec<PartnerRow>) -> AgreementLoad {
    AgreementLoad {
        partnership_key: key.into(),
        title: format!("{key} pooled budget"),
        status: "active".into(),
        source_path: format!("examples/agreements/{key}.toml"),
        source_text: text.into(),
        source_sha256: sha256(text),
        model_json: json!({
            "title": format!("{key} pooled budget"),
            "id": key,
            "source": text,
            "partners": partners.iter().map(|p| json!({"name": p.name, "id": p.partner_id}))
                .collect::<Vec<_>>(),
        }),
        partners,
    }
}

fn council_and_icb(council_name: &str) -> Vec<PartnerRow> {
    vec![
        partner("icb", "North ICB", "icb"),
        partner("council", council_name, "council"),
    ]
}

/// Loads and checks the outcome.
async fn load(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    load: AgreementLoad,
    expected: LoadOutcome,
) {
    let key = load.partnership_key.clone();
    let outcome = store
        .load_agreement(actor, at, load)
        .await
        .unwrap_or_else(|e| panic!("loading {key}: {e}"));
    assert_eq!(outcome, expected, "loading {key}");
}

/// Builds three records in partnership `a` (and one in `b`) for the tampering cases.
async fn three_versions_of_a(store: &dyn Store) {
    let p = || council_and_icb("North Council");
    load(
        store,
        &alice(),
        T1,
        agreement("a", "v1", p()),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    load(
        store,
        &alice(),
        T1,
        agreement("b", "v1", p()),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    let v2 = LoadOutcome::NewVersion {
        version: 2,
        previous: 1,
    };
    load(store, &bob(), T2, agreement("a", "v2", p()), v2).await;
    let v3 = LoadOutcome::NewVersion {
        version: 3,
        previous: 2,
    };
    load(store, &alice(), T3, agreement("a", "v3", p()), v3).await;
    assert!(store.verify_audit().await.unwrap().is_intact());
}

/// Removes the triggers that make audit records append-only, as someone with full access to
/// the database could. The one place the suite speaks each backend's dialect: SQLite and
/// PostgreSQL spell DROP TRIGGER differently.
async fn drop_append_only_guard(store: &dyn Store) {
    let sql = match store.backend() {
        "sqlite" => "DROP TRIGGER audit_record_no_update; DROP TRIGGER audit_record_no_delete;",
        _ => {
            "DROP TRIGGER audit_record_no_update ON audit_record; \
             DROP TRIGGER audit_record_no_delete ON audit_record;"
        }
    };
    store.execute_raw_for_tests(sql).await.unwrap();
}

async fn audit_count(store: &dyn Store) -> usize {
    store.audit_log(None).await.unwrap().len()
}

// ---------------------------------------------------------------------------------------------
// Cases

async fn fresh_database_has_the_schema_and_is_empty(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.backend(), db.backend);
    assert!(store.list_agreements().await.unwrap().is_empty());
    assert!(store.get_agreement("a").await.unwrap().is_none());
    assert!(store.partners("a").await.unwrap().is_empty());
    assert!(store.audit_log(None).await.unwrap().is_empty());
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact());
    assert_eq!((report.chains_checked, report.records_checked), (0, 0));
    // Every table carries the partnership key (a distributed PostgreSQL shards by it).
    for table in [
        "partnership",
        "agreement_version",
        "partner",
        "audit_record",
        "audit_head",
    ] {
        store
            .execute_raw_for_tests(&format!(
                "SELECT partnership_key FROM {table} WHERE partnership_key IS NULL"
            ))
            .await
            .unwrap_or_else(|e| panic!("{table} has no partnership_key column: {e}"));
    }
}

async fn load_creates_version_one_with_one_audit_record(db: &TestDb) {
    let store = db.open().await;
    let a = agreement("a", "first text", council_and_icb("North Council"));
    let model = a.model_json.clone();
    load(
        &*store,
        &alice(),
        T1,
        a,
        LoadOutcome::Created { version: 1 },
    )
    .await;

    let log = store.audit_log(Some("a")).await.unwrap();
    assert_eq!(log.len(), 1);
    let r = &log[0];
    assert_eq!(r.partnership_key, "a");
    assert_eq!(r.seq, 1);
    assert_eq!(r.recorded_at, T1);
    assert_eq!(r.actor, "cli:alice");
    assert_eq!(r.action, "agreement.create");
    assert_eq!(r.entity, "agreement:a:v1");
    assert_eq!(r.before_json, None);
    assert_eq!(
        r.after_json.as_deref(),
        Some(canonical_json(&model).as_str())
    );
    assert_eq!(r.after().unwrap(), Some(model));
    assert_eq!(r.prev_hash, GENESIS_HASH);
    assert_eq!(r.hash, r.compute_hash());
    assert_eq!(r.hash.len(), 64);
}

async fn loading_the_same_source_again_writes_nothing(db: &TestDb) {
    let store = db.open().await;
    let a = || agreement("a", "same text", council_and_icb("North Council"));
    load(
        &*store,
        &alice(),
        T1,
        a(),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    load(
        &*store,
        &bob(),
        T2,
        a(),
        LoadOutcome::Unchanged { version: 1 },
    )
    .await;
    load(
        &*store,
        &bob(),
        T3,
        a(),
        LoadOutcome::Unchanged { version: 1 },
    )
    .await;

    assert_eq!(audit_count(&*store).await, 1);
    let stored = store.get_agreement("a").await.unwrap().unwrap();
    assert_eq!(stored.current_version, 1);
    assert_eq!(stored.versions.len(), 1);
    assert_eq!(
        stored.updated_at, T1,
        "an unchanged load must not touch the partnership"
    );
    assert_eq!(stored.versions[0].loaded_by, "cli:alice");
}

async fn changed_source_gives_the_next_version_with_before_and_after(db: &TestDb) {
    let store = db.open().await;
    let v1 = agreement("a", "text one", council_and_icb("North Council"));
    let mut v2 = agreement("a", "text two", council_and_icb("North Council"));
    v2.title = "Renamed pooled budget".into();
    v2.status = "ending".into();
    let (m1, m2) = (v1.model_json.clone(), v2.model_json.clone());
    load(
        &*store,
        &alice(),
        T1,
        v1,
        LoadOutcome::Created { version: 1 },
    )
    .await;
    let second = LoadOutcome::NewVersion {
        version: 2,
        previous: 1,
    };
    load(&*store, &bob(), T2, v2, second).await;

    let log = store.audit_log(Some("a")).await.unwrap();
    assert_eq!(log.len(), 2);
    let r = &log[1];
    assert_eq!((r.seq, r.recorded_at.as_str()), (2, T2));
    assert_eq!(r.actor, "cli:bob");
    assert_eq!(r.action, "agreement.new-version");
    assert_eq!(r.entity, "agreement:a:v2");
    assert_eq!(r.before().unwrap(), Some(m1));
    assert_eq!(r.after().unwrap(), Some(m2.clone()));
    assert_eq!(r.prev_hash, log[0].hash);

    let stored = store.get_agreement("a").await.unwrap().unwrap();
    assert_eq!(stored.current_version, 2);
    assert_eq!(stored.title, "Renamed pooled budget");
    assert_eq!(stored.status, "ending");
    assert_eq!(stored.source_text, "text two");
    assert_eq!(stored.model_json, m2);
    assert_eq!(
        (stored.created_at.as_str(), stored.updated_at.as_str()),
        (T1, T2)
    );
    let versions: Vec<(i64, &str, &str)> = stored
        .versions
        .iter()
        .map(|v| (v.version, v.loaded_at.as_str(), v.loaded_by.as_str()))
        .collect();
    assert_eq!(versions, [(1, T1, "cli:alice"), (2, T2, "cli:bob")]);

    // Going back to the first text is a change from the current version, so a new version.
    let back = agreement("a", "text one", council_and_icb("North Council"));
    let third = LoadOutcome::NewVersion {
        version: 3,
        previous: 2,
    };
    load(&*store, &alice(), T3, back, third).await;
    assert_eq!(audit_count(&*store).await, 3);
}

async fn list_get_and_partners_return_what_was_loaded(db: &TestDb) {
    let store = db.open().await;
    // Loaded out of order: the list comes back sorted by key.
    let b = agreement(
        "bcf-south",
        "south",
        vec![partner("south-icb", "South ICB", "icb")],
    );
    let a = agreement("bcf-north", "north", council_and_icb("North Council"));
    let a_model = a.model_json.clone();
    load(
        &*store,
        &alice(),
        T1,
        b,
        LoadOutcome::Created { version: 1 },
    )
    .await;
    load(&*store, &bob(), T2, a, LoadOutcome::Created { version: 1 }).await;

    let list = store.list_agreements().await.unwrap();
    let keys: Vec<&str> = list.iter().map(|s| s.partnership_key.as_str()).collect();
    assert_eq!(keys, ["bcf-north", "bcf-south"]);
    let north = &list[0];
    assert_eq!(north.title, "bcf-north pooled budget");
    assert_eq!(north.status, "active");
    assert_eq!(north.current_version, 1);
    assert_eq!(
        (north.created_at.as_str(), north.updated_at.as_str()),
        (T2, T2)
    );

    let stored = store.get_agreement("bcf-north").await.unwrap().unwrap();
    assert_eq!(stored.partnership_key, "bcf-north");
    assert_eq!(stored.source_path, "examples/agreements/bcf-north.toml");
    assert_eq!(stored.source_text, "north");
    assert_eq!(stored.source_sha256, sha256("north"));
    assert_eq!(stored.model_json, a_model);
    assert_eq!(stored.versions.len(), 1);
    assert_eq!(stored.versions[0].source_sha256, sha256("north"));
    assert_eq!(
        stored.versions[0].source_path,
        "examples/agreements/bcf-north.toml"
    );
    assert!(store.get_agreement("bcf-east").await.unwrap().is_none());

    assert_eq!(
        store.partners("bcf-north").await.unwrap(),
        [
            partner("council", "North Council", "council"),
            partner("icb", "North ICB", "icb"),
        ]
    );
    assert_eq!(
        store.partners("bcf-south").await.unwrap(),
        [partner("south-icb", "South ICB", "icb")]
    );
    assert!(store.partners("bcf-east").await.unwrap().is_empty());
}

async fn partners_are_scoped_to_their_partnership(db: &TestDb) {
    let store = db.open().await;
    let north = |text| agreement("north", text, council_and_icb("North Council"));
    let south = agreement("south", "s1", council_and_icb("South Council"));
    load(
        &*store,
        &alice(),
        T1,
        north("n1"),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    load(
        &*store,
        &alice(),
        T1,
        south,
        LoadOutcome::Created { version: 1 },
    )
    .await;
    let name_of_council = |partners: Vec<PartnerRow>| {
        partners
            .into_iter()
            .find(|p| p.partner_id == "council")
            .map(|p| p.name)
    };
    let north_partners = store.partners("north").await.unwrap();
    assert_eq!(
        name_of_council(north_partners).as_deref(),
        Some("North Council")
    );
    let south_partners = store.partners("south").await.unwrap();
    assert_eq!(
        name_of_council(south_partners).as_deref(),
        Some("South Council")
    );

    // A new version replaces its own partners and leaves the other partnership's alone.
    let mut n2 = north("n2");
    n2.partners = vec![partner("council", "North Council (renamed)", "council")];
    let second = LoadOutcome::NewVersion {
        version: 2,
        previous: 1,
    };
    load(&*store, &alice(), T2, n2, second).await;
    assert_eq!(
        store.partners("north").await.unwrap(),
        [partner("council", "North Council (renamed)", "council")]
    );
    assert_eq!(store.partners("south").await.unwrap().len(), 2);
}

async fn partners_cannot_exist_without_their_partnership(db: &TestDb) {
    let store = db.open().await;
    let orphan = store
        .execute_raw_for_tests(
            "INSERT INTO partner (partnership_key, partner_id, name, kind) \
             VALUES ('nowhere', 'council', 'A Council', 'council')",
        )
        .await;
    assert!(orphan.is_err(), "foreign keys must be enforced");
}

async fn audit_chains_are_per_partnership_and_log_is_ordered(db: &TestDb) {
    let store = db.open().await;
    let p = || council_and_icb("Council");
    load(
        &*store,
        &alice(),
        T1,
        agreement("b", "1", p()),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    load(
        &*store,
        &alice(),
        T1,
        agreement("a", "1", p()),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    let v2 = LoadOutcome::NewVersion {
        version: 2,
        previous: 1,
    };
    load(&*store, &alice(), T2, agreement("b", "2", p()), v2).await;

    let all: Vec<(String, i64)> = store
        .audit_log(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.partnership_key, r.seq))
        .collect();
    assert_eq!(all, [("a".into(), 1), ("b".into(), 1), ("b".into(), 2)]);
    let a = store.audit_log(Some("a")).await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].prev_hash, GENESIS_HASH,
        "each partnership starts its own chain"
    );
    assert!(store.audit_log(Some("zzz")).await.unwrap().is_empty());
}

async fn untouched_chain_verifies(db: &TestDb) {
    let store = db.open().await;
    three_versions_of_a(&*store).await;
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.first_mismatch);
    assert_eq!(report.chains_checked, 2);
    assert_eq!(report.records_checked, 4);
    assert_eq!(report.mismatches, 0);
}

async fn altered_record_is_detected_and_named(db: &TestDb) {
    let store = db.open().await;
    three_versions_of_a(&*store).await;
    drop_append_only_guard(&*store).await;
    store
        .execute_raw_for_tests(
            "UPDATE audit_record SET actor = 'mallory' WHERE partnership_key = 'a' AND seq = 2",
        )
        .await
        .unwrap();

    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.records_checked, 4);
    assert_eq!(report.mismatches, 1, "only the altered record is reported");
    let m = report.first_mismatch.expect("the change must be detected");
    assert_eq!((m.partnership_key.as_str(), m.seq), ("a", 2));
    assert!(
        matches!(m.reason, MismatchReason::HashMismatch { .. }),
        "{}",
        m.reason
    );
    let message = m.to_string();
    assert!(
        message.starts_with("partnership a record 2: hash mismatch"),
        "{message}"
    );
}

async fn rehashed_record_is_caught_by_the_next_link(db: &TestDb) {
    let store = db.open().await;
    three_versions_of_a(&*store).await;
    drop_append_only_guard(&*store).await;
    // A careful forger changes record 2 and gives it a correct hash for its new content...
    let mut forged = store.audit_log(Some("a")).await.unwrap()[1].clone();
    forged.actor = "mallory".into();
    forged.hash = forged.compute_hash();
    store
        .execute_raw_for_tests(&format!(
            "UPDATE audit_record SET actor = 'mallory', hash = '{}' \
             WHERE partnership_key = 'a' AND seq = 2",
            forged.hash
        ))
        .await
        .unwrap();
    // ...but record 3 still points at the old hash.
    let m = store.verify_audit().await.unwrap().first_mismatch.unwrap();
    assert_eq!((m.partnership_key.as_str(), m.seq), ("a", 3));
    assert!(
        matches!(m.reason, MismatchReason::BrokenLink { .. }),
        "{}",
        m.reason
    );

    // Forging the last record instead is caught by the chain head.
    let mut last = store.audit_log(Some("b")).await.unwrap()[0].clone();
    last.actor = "mallory".into();
    last.hash = last.compute_hash();
    store
        .execute_raw_for_tests(&format!(
            "UPDATE audit_record SET actor = 'mallory', hash = '{}' \
             WHERE partnership_key = 'b' AND seq = 1",
            last.hash
        ))
        .await
        .unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.mismatches, 2);
}

async fn deleted_record_is_detected_as_a_gap(db: &TestDb) {
    let store = db.open().await;
    three_versions_of_a(&*store).await;
    drop_append_only_guard(&*store).await;
    store
        .execute_raw_for_tests("DELETE FROM audit_record WHERE partnership_key = 'a' AND seq = 2")
        .await
        .unwrap();
    let report = store.verify_audit().await.unwrap();
    let m = report.first_mismatch.expect("the gap must be detected");
    assert_eq!((m.partnership_key.as_str(), m.seq), ("a", 3));
    assert_eq!(m.reason, MismatchReason::SeqGap { expected: 2 });
    assert_eq!(report.records_checked, 3);
}

async fn deleted_last_record_is_detected(db: &TestDb) {
    let store = db.open().await;
    three_versions_of_a(&*store).await;
    drop_append_only_guard(&*store).await;
    store
        .execute_raw_for_tests("DELETE FROM audit_record WHERE partnership_key = 'a' AND seq = 3")
        .await
        .unwrap();
    let m = store.verify_audit().await.unwrap().first_mismatch.unwrap();
    assert_eq!((m.partnership_key.as_str(), m.seq), ("a", 3));
    assert_eq!(m.reason, MismatchReason::TailMissing { head_seq: 3 });
}

async fn audit_records_cannot_be_changed_by_plain_sql(db: &TestDb) {
    let store = db.open().await;
    three_versions_of_a(&*store).await;
    for sql in [
        "UPDATE audit_record SET actor = 'mallory' WHERE partnership_key = 'a' AND seq = 2",
        "DELETE FROM audit_record WHERE partnership_key = 'a' AND seq = 3",
    ] {
        let e = store
            .execute_raw_for_tests(sql)
            .await
            .expect_err("audit records are append-only");
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    assert!(store.verify_audit().await.unwrap().is_intact());
    assert_eq!(audit_count(&*store).await, 4);
}

async fn reopening_keeps_everything(db: &TestDb) {
    let store = db.open().await;
    three_versions_of_a(&*store).await;
    let list = store.list_agreements().await.unwrap();
    let log = store.audit_log(None).await.unwrap();
    let a = store.get_agreement("a").await.unwrap();
    drop(store);

    // Opening again runs the migrator again: it must find nothing to do and change nothing.
    let store = db.open().await;
    assert_eq!(store.list_agreements().await.unwrap(), list);
    assert_eq!(store.audit_log(None).await.unwrap(), log);
    assert_eq!(store.get_agreement("a").await.unwrap(), a);
    assert!(store.verify_audit().await.unwrap().is_intact());
    // And the chain carries on from where it was.
    let p = council_and_icb("North Council");
    load(
        &*store,
        &alice(),
        T3,
        agreement("a", "v3", p.clone()),
        LoadOutcome::Unchanged { version: 3 },
    )
    .await;
    let v4 = LoadOutcome::NewVersion {
        version: 4,
        previous: 3,
    };
    load(&*store, &alice(), T3, agreement("a", "v4", p), v4).await;
    let chain = store.audit_log(Some("a")).await.unwrap();
    assert_eq!(chain.len(), 4);
    assert_eq!(chain[3].prev_hash, chain[2].hash);
    assert!(store.verify_audit().await.unwrap().is_intact());
}

async fn failed_write_leaves_nothing(db: &TestDb) {
    let store = db.open().await;
    // Two partners with the same id: the write fails part-way, after the partnership and its
    // version rows were inserted.
    let duplicate = vec![
        partner("council", "North Council", "council"),
        partner("council", "North Council again", "council"),
    ];
    let e = store
        .load_agreement(&alice(), T1, agreement("a", "v1", duplicate.clone()))
        .await
        .expect_err("a duplicate partner id must fail the load");
    assert!(e.to_string().contains("load agreement a"), "{e}");
    assert!(store.list_agreements().await.unwrap().is_empty());
    assert!(store.get_agreement("a").await.unwrap().is_none());
    assert!(store.partners("a").await.unwrap().is_empty());
    assert_eq!(audit_count(&*store).await, 0);
    assert!(store.verify_audit().await.unwrap().is_intact());

    // The same for a new version of an existing partnership: version 1 stays as it was.
    let good = council_and_icb("North Council");
    load(
        &*store,
        &alice(),
        T1,
        agreement("a", "v1", good.clone()),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    let before = store.get_agreement("a").await.unwrap();
    store
        .load_agreement(&bob(), T2, agreement("a", "v2", duplicate))
        .await
        .expect_err("a duplicate partner id must fail the load");
    assert_eq!(store.get_agreement("a").await.unwrap(), before);
    assert_eq!(store.partners("a").await.unwrap().len(), 2);
    assert_eq!(audit_count(&*store).await, 1);
    assert!(store.verify_audit().await.unwrap().is_intact());
}

async fn failure_while_appending_the_audit_record_undoes_the_change(db: &TestDb) {
    let store = db.open().await;
    let p = || council_and_icb("North Council");
    load(
        &*store,
        &alice(),
        T1,
        agreement("a", "v1", p()),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    let before = store.get_agreement("a").await.unwrap();
    // Without its chain head the next write would start the chain again at seq 1, which is
    // taken: the change is applied, then appending its audit record fails.
    store
        .execute_raw_for_tests("DELETE FROM audit_head WHERE partnership_key = 'a'")
        .await
        .unwrap();
    let mut v2 = agreement("a", "v2", vec![partner("council", "Renamed", "council")]);
    v2.title = "Renamed".into();
    store
        .load_agreement(&bob(), T2, v2)
        .await
        .expect_err("the audit record cannot be appended");
    assert_eq!(store.get_agreement("a").await.unwrap(), before);
    assert_eq!(store.partners("a").await.unwrap(), {
        let mut p = p();
        p.sort_by(|x, y| x.partner_id.cmp(&y.partner_id));
        p
    });
    assert_eq!(audit_count(&*store).await, 1);
    // And the missing head is itself reported.
    let m = store.verify_audit().await.unwrap().first_mismatch.unwrap();
    assert_eq!((m.partnership_key.as_str(), m.seq), ("a", 1));
    assert_eq!(m.reason, MismatchReason::HeadMismatch { head: None });
}

async fn bad_actor_or_time_is_refused_before_anything_is_written(db: &TestDb) {
    let store = db.open().await;
    let a = || agreement("a", "v1", council_and_icb("North Council"));
    for (actor, at) in [("", T1), ("cli:alice\nsystem", T1), ("cli:alice", "")] {
        let e = store
            .load_agreement(&Actor::new(actor), at, a())
            .await
            .expect_err("must be refused");
        assert!(matches!(e, concordat_store::StoreError::Invalid(_)), "{e}");
    }
    assert!(store.list_agreements().await.unwrap().is_empty());
    assert_eq!(audit_count(&*store).await, 0);
}

async fn concurrent_loads_keep_versions_and_chain_contiguous(db: &TestDb) {
    let store = db.open().await;
    let s: &dyn Store = &*store;
    let p = || council_and_icb("North Council");
    // Four different texts for one partnership, at once: each becomes one version, in some
    // order, and none may take another's version or sequence number.
    let who = alice();
    let (r1, r2, r3, r4) = tokio::join!(
        s.load_agreement(&who, T1, agreement("a", "w", p())),
        s.load_agreement(&who, T1, agreement("a", "x", p())),
        s.load_agreement(&who, T1, agreement("a", "y", p())),
        s.load_agreement(&who, T1, agreement("a", "z", p())),
    );
    let mut versions: Vec<i64> = [r1, r2, r3, r4]
        .into_iter()
        .map(|r| r.expect("concurrent load").version())
        .collect();
    versions.sort();
    assert_eq!(versions, [1, 2, 3, 4]);
    let seqs: Vec<i64> = s
        .audit_log(Some("a"))
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let report = s.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.first_mismatch);
}

// ---------------------------------------------------------------------------------------------
// Opening: addresses and errors (not per backend)

#[tokio::test]
async fn sqlite_addresses_open_the_same_file_in_wal_mode() {
    let db = sqlite_db();
    let Cleanup::SqliteFile(path) = &db.cleanup else {
        unreachable!()
    };
    let path = path.display().to_string();
    let store = open(&format!("sqlite:{path}")).await.unwrap();
    load(
        &*store,
        &alice(),
        T1,
        agreement("a", "v1", council_and_icb("North Council")),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    drop(store);
    for url in [format!("sqlite://{path}"), path.clone()] {
        let store = open(&url).await.unwrap();
        assert_eq!(store.list_agreements().await.unwrap().len(), 1, "{url}");
    }
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{path}"))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_in_memory_works_for_one_store() {
    let store = open("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    load(
        &*store,
        &alice(),
        T1,
        agreement("a", "v1", vec![]),
        LoadOutcome::Created { version: 1 },
    )
    .await;
    assert_eq!(store.list_agreements().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_file_that_cannot_be_created_says_so() {
    let dir = std::env::temp_dir().join(format!("concordat_missing_{}", unique_suffix()));
    let url = format!("sqlite:{}", dir.join("c.db").display());
    let e = open(&url)
        .await
        .err()
        .expect("the directory does not exist");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot open database {url}: ")),
        "{e}"
    );
}

#[tokio::test]
async fn unreachable_postgres_says_so_without_the_password() {
    // Port 1 on the loopback interface: nothing listens there, so the refusal is immediate.
    let e = open("postgres://concordat:s3cret@127.0.0.1:1/concordat")
        .await
        .err()
        .expect("nothing listens on port 1");
    let message = e.to_string();
    assert!(
        message.starts_with(
            "cannot reach PostgreSQL at postgres://concordat:***@127.0.0.1:1/concordat: "
        ),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn unknown_address_is_refused_with_the_accepted_forms() {
    let e = open("mysql://root@localhost/c").await.err().unwrap();
    let message = e.to_string();
    assert!(message.contains("\"mysql\" is not supported"), "{message}");
    assert!(
        message.contains("use sqlite:FILE, a file path, or postgres://"),
        "{message}"
    );
}

#[test]
fn test_database_urls_keep_the_server_and_its_options() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/postgres?sslmode=disable", "t1"),
        "postgres://u:p@h/t1?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    assert_eq!(shown("postgres://u:p@h/db"), "postgres://u:***@h/db");
}
