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
    Actor, AgreementLoad, BudgetRow, CommitmentRow, CorrectionRow, ForecastOverrideRow,
    GENESIS_HASH, ImportHeader, ImportOutcome, ImportStart, ImportSummaryRow, LoadOutcome,
    MismatchReason, PartnerRow, PaymentKind, PaymentRow, PostingFilter, PostingRow, ReclassifyRow,
    Store, StoreError, canonical_json, open,
};
use concordat_store::{DecisionRow, PaperRow, ProceedingKind, ProceedingRow};
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
    import_commits_and_totals_equal_the_control_total,
    same_file_imported_twice_writes_nothing,
    reference_repeated_from_another_file_is_refused,
    repeats_are_found_through_the_merge_across_files_and_within_one,
    a_hash_shared_by_two_references_does_not_refuse_a_good_file,
    repeats_are_found_at_every_boundary_of_a_large_stored_index,
    aborted_or_dropped_import_leaves_nothing,
    control_total_mismatch_leaves_nothing,
    posting_into_a_closed_period_is_refused,
    close_waits_for_suspense_to_be_reclassified,
    corrections_need_their_posting_and_update_totals,
    budgets_keep_revisions_and_history,
    a_revision_needs_a_decision_that_covers_it,
    a_decision_and_its_budget_changes_are_one_transaction,
    proceedings_are_added_changed_and_audited,
    meeting_papers_are_stored_whole,
    commitments_are_recorded_and_released,
    forecast_overrides_replace_and_list,
    totals_equal_postings_after_any_sequence,
    payments_are_recorded_once_and_listed_by_date,
    postings_stored_a_row_each_before_batches_still_count,
    suspense_in_a_batch_holds_its_period_open,
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
        authority: None,
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
        "ledger_import",
        "ledger_posting",
        "ledger_batch",
        "ledger_reference_index",
        "ledger_totals",
        "closed_period",
        "budget_revision",
        "commitment",
        "forecast_override",
        "payment",
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

// ---------------------------------------------------------------------------------------------
// The ledger

const Y: i64 = 2024;

/// A partnership to import into.
async fn ledger_partnership(store: &dyn Store, key: &str) {
    store
        .load_agreement(
            &alice(),
            T1,
            agreement(key, key, council_and_icb("North Council")),
        )
        .await
        .unwrap();
}

fn posting(
    line: i64,
    reference: &str,
    fund: &str,
    service_line: &str,
    period: i64,
    amount_pence: i64,
) -> PostingRow {
    PostingRow {
        source_line: line,
        date: format!("2024-{:02}-10", (period + 2) % 12 + 1),
        year_start: Y,
        period,
        fund: fund.into(),
        service_line: service_line.into(),
        partner: Some(if line % 2 == 0 { "council" } else { "icb" }.into()),
        locality: if line % 3 == 0 {
            None
        } else {
            Some("north".into())
        },
        cost_centre: Some("CC1".into()),
        subjective: None,
        supplier: Some("Care Ltd".into()),
        reference: reference.into(),
        description: Some(format!("line {line}")),
        amount_pence,
        corrects_reference: None,
    }
}

/// `n` postings with references `{prefix}-{i}`, over two funds, 12 periods and 5 service lines.
fn postings_of(prefix: &str, n: usize) -> Vec<PostingRow> {
    (0..n)
        .map(|i| {
            let fund = if i % 4 == 0 { "ibcf" } else { "bcf" };
            let amount = (i as i64 * 7_919) % 1_000_000 - 100_000;
            posting(
                i as i64 + 2,
                &format!("{prefix}-{i}"),
                fund,
                &format!("SL{}", i % 5),
                (i % 12) as i64 + 1,
                amount,
            )
        })
        .collect()
}

fn header(key: &str, file_name: &str) -> ImportHeader {
    ImportHeader {
        partnership_key: key.into(),
        file_name: file_name.into(),
        file_sha256: sha256(file_name),
        mapping_sha256: sha256("mapping"),
    }
}

/// Imports `rows` in batches of 1,000 with the right summary; `Ok(None)` if already imported.
async fn import(
    store: &dyn Store,
    key: &str,
    file_name: &str,
    rows: &[PostingRow],
) -> Result<Option<ImportOutcome>, StoreError> {
    let ImportStart::Session(mut session) = store
        .begin_import(&alice(), T2, header(key, file_name))
        .await?
    else {
        return Ok(None);
    };
    for batch in rows.chunks(1_000) {
        session.add(batch).await?;
    }
    let summary = ImportSummaryRow {
        rows: rows.len() as i64,
        control_total_pence: rows.iter().map(|p| p.amount_pence).sum(),
    };
    session.commit(summary).await.map(Some)
}

async fn totals_sum(store: &dyn Store, key: &str) -> (i64, i64) {
    store
        .ledger_totals(key, None, Y)
        .await
        .unwrap()
        .iter()
        .fold((0, 0), |(a, n), t| (a + t.amount_pence, n + t.postings))
}

fn all_postings() -> PostingFilter {
    PostingFilter {
        year_start: Y,
        ..PostingFilter::default()
    }
}

async fn posting_count(store: &dyn Store, key: &str) -> usize {
    store
        .postings(key, &all_postings(), i64::MAX, 0)
        .await
        .unwrap()
        .len()
}

async fn assert_chain_intact(store: &dyn Store) {
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
}

async fn import_commits_and_totals_equal_the_control_total(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let rows = postings_of("A", 3_000);
    let control: i64 = rows.iter().map(|p| p.amount_pence).sum();
    let outcome = import(&*store, "p", "jan.csv", &rows)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (outcome.import_id, outcome.rows, outcome.control_total_pence),
        (1, 3_000, control)
    );
    let bcf: i64 = rows
        .iter()
        .filter(|p| p.fund == "bcf")
        .map(|p| p.amount_pence)
        .sum();
    assert_eq!(
        outcome.totals_per_fund,
        vec![
            ("bcf".to_string(), bcf),
            ("ibcf".to_string(), control - bcf)
        ]
    );
    assert_eq!(totals_sum(&*store, "p").await, (control, 3_000));
    assert_eq!(
        store
            .ledger_totals("p", Some("bcf"), Y)
            .await
            .unwrap()
            .iter()
            .map(|t| t.amount_pence)
            .sum::<i64>(),
        bcf
    );
    assert!(
        store
            .ledger_totals("p", None, 2023)
            .await
            .unwrap()
            .is_empty()
    );
    // Drill-down: filtered, sorted by date then reference, paged.
    let filter = PostingFilter {
        fund: Some("bcf".into()),
        period_from: Some(2),
        period_to: Some(3),
        service_line: Some("SL1".into()),
        ..all_postings()
    };
    let page = store.postings("p", &filter, 10, 0).await.unwrap();
    let all = store.postings("p", &filter, 10_000, 0).await.unwrap();
    let expected: Vec<&PostingRow> = rows
        .iter()
        .filter(|p| p.fund == "bcf" && (2..=3).contains(&p.period) && p.service_line == "SL1")
        .collect();
    assert_eq!(all.len(), expected.len());
    assert!(all.len() > 10);
    assert_eq!(page[..], all[..10]);
    assert!(
        all.windows(2)
            .all(|w| (&w[0].posting.date, &w[0].posting.reference)
                <= (&w[1].posting.date, &w[1].posting.reference))
    );
    assert!(all.iter().all(|p| p.import_id == Some(1)));
    let one = all
        .iter()
        .find(|p| p.posting.reference == expected[0].reference)
        .unwrap();
    assert_eq!(&one.posting, expected[0]);
    let imports = store.imports("p").await.unwrap();
    assert_eq!(imports.len(), 1);
    assert_eq!(
        (
            imports[0].file_name.as_str(),
            imports[0].rows,
            imports[0].control_total_pence,
            imports[0].imported_by.as_str()
        ),
        ("jan.csv", 3_000, control, "cli:alice")
    );
    let log = store.audit_log(Some("p")).await.unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.before_json.as_deref()),
        ("ledger.import", None)
    );
    let after = last.after().unwrap().unwrap();
    assert_eq!(after["rows"], json!(3_000));
    assert_eq!(after["control_total_pence"], json!(control));
    assert_eq!(after["totals_per_fund_pence"]["bcf"], json!(bcf));
    assert_eq!(after["file_sha256"], json!(sha256("jan.csv")));
    assert_chain_intact(&*store).await;
}

async fn same_file_imported_twice_writes_nothing(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let rows = postings_of("A", 50);
    import(&*store, "p", "jan.csv", &rows)
        .await
        .unwrap()
        .unwrap();
    let audit_before = audit_count(&*store).await;
    match store
        .begin_import(&bob(), T3, header("p", "jan.csv"))
        .await
        .unwrap()
    {
        ImportStart::AlreadyImported {
            import_id,
            file_name,
            imported_at,
            imported_by,
            rows: n,
            control_total_pence,
        } => {
            assert_eq!(
                (
                    import_id,
                    file_name.as_str(),
                    imported_at.as_str(),
                    imported_by.as_str(),
                    n
                ),
                (1, "jan.csv", T2, "cli:alice", 50)
            );
            assert_eq!(
                control_total_pence,
                rows.iter().map(|p| p.amount_pence).sum::<i64>()
            );
        }
        ImportStart::Session(_) => panic!("the same file was accepted twice"),
    }
    assert_eq!(audit_count(&*store).await, audit_before);
    assert_eq!(store.imports("p").await.unwrap().len(), 1);
    assert_eq!(posting_count(&*store, "p").await, 50);
    // The same file into another partnership is a different import.
    ledger_partnership(&*store, "q").await;
    assert!(
        import(&*store, "q", "jan.csv", &rows)
            .await
            .unwrap()
            .is_some()
    );
}

async fn reference_repeated_from_another_file_is_refused(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    import(&*store, "p", "jan.csv", &postings_of("A", 100))
        .await
        .unwrap()
        .unwrap();
    let before = (totals_sum(&*store, "p").await, audit_count(&*store).await);
    let mut rows = postings_of("B", 2_500);
    rows[1_700].reference = "A-42".into();
    let line = rows[1_700].source_line;
    let e = import(&*store, "p", "feb.csv", &rows).await.unwrap_err();
    match &e {
        StoreError::DuplicateReference {
            line: l,
            reference,
            earlier_file,
            earlier_import_id,
            ..
        } => {
            assert_eq!(
                (
                    *l,
                    reference.as_str(),
                    earlier_file.as_str(),
                    *earlier_import_id
                ),
                (line, "A-42", "jan.csv", 1)
            );
        }
        other => panic!("wrong error: {other}"),
    }
    let message = e.to_string();
    assert!(
        message.contains(&format!("line {line}"))
            && message.contains("A-42")
            && message.contains("jan.csv"),
        "{message}"
    );
    assert_eq!(
        (totals_sum(&*store, "p").await, audit_count(&*store).await),
        before
    );
    assert_eq!(posting_count(&*store, "p").await, 100);
    assert_eq!(store.imports("p").await.unwrap().len(), 1);
    // A reference repeated within one file is refused too, naming both lines.
    let mut rows = postings_of("C", 10);
    rows[7].reference = "C-3".into();
    let e = import(&*store, "p", "mar.csv", &rows)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 9: reference \"C-3\" repeats line 5 of this file (\"mar.csv\")"),
        "{e}"
    );
    // Another partnership may use the same references.
    ledger_partnership(&*store, "q").await;
    import(&*store, "q", "q.csv", &postings_of("A", 100))
        .await
        .unwrap()
        .unwrap();
    assert_chain_intact(&*store).await;
}

/// The repeat an import was refused for: (line, reference, earlier file, import, line).
fn repeat(e: &StoreError) -> (i64, &str, &str, i64, &str) {
    match e {
        StoreError::DuplicateReference {
            line,
            reference,
            earlier_file,
            earlier_import_id,
            earlier_line,
            ..
        } => (
            *line,
            reference,
            earlier_file,
            *earlier_import_id,
            earlier_line,
        ),
        other => panic!("wrong error: {other}"),
    }
}

async fn repeats_are_found_through_the_merge_across_files_and_within_one(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    // Two earlier files, so the merge walks two stored indexes beside the new file.
    import(&*store, "p", "jan.csv", &postings_of("A", 3_000))
        .await
        .unwrap()
        .unwrap();
    import(&*store, "p", "feb.csv", &postings_of("B", 2_000))
        .await
        .unwrap()
        .unwrap();
    let before = (totals_sum(&*store, "p").await, audit_count(&*store).await);
    // A repeat within the file (line 902 repeats line 102) comes before one of an earlier
    // file (line 1,502 repeats feb.csv's line 1,001): the earliest line is the one named.
    let mut rows = postings_of("C", 4_000);
    rows[900].reference = "C-100".into();
    rows[1_500].reference = "B-999".into();
    let e = import(&*store, "p", "mar.csv", &rows).await.unwrap_err();
    assert_eq!(repeat(&e), (902, "C-100", "mar.csv", 3, ", line 102"));
    // The other way round: line 2,002 repeats jan.csv's line 3,001, line 3,502 its own 12.
    let mut rows = postings_of("C", 4_000);
    rows[2_000].reference = "A-2999".into();
    rows[3_500].reference = "C-10".into();
    let e = import(&*store, "p", "mar.csv", &rows).await.unwrap_err();
    assert_eq!(repeat(&e), (2_002, "A-2999", "jan.csv", 1, ", line 3001"));
    let message = e.to_string();
    assert!(
        message.contains("line 2002")
            && message.contains("\"jan.csv\" (import 1, line 3001)")
            && message.contains("nothing from this file was imported"),
        "{message}"
    );
    assert_eq!(
        (totals_sum(&*store, "p").await, audit_count(&*store).await),
        before,
        "nothing was written"
    );
    assert_eq!(store.imports("p").await.unwrap().len(), 2);
    // The good file imports, and its own index then catches a repeat of it.
    import(&*store, "p", "mar.csv", &postings_of("C", 4_000))
        .await
        .unwrap()
        .unwrap();
    let mut rows = postings_of("D", 10);
    rows[4].reference = "C-3999".into();
    let e = import(&*store, "p", "apr.csv", &rows).await.unwrap_err();
    assert_eq!(repeat(&e), (6, "C-3999", "mar.csv", 3, ", line 4001"));
    // A database from before the index: it is built from the batches when first needed.
    store
        .execute_raw_for_tests("DELETE FROM ledger_reference_index")
        .await
        .unwrap();
    let e = import(&*store, "p", "apr.csv", &rows).await.unwrap_err();
    assert_eq!(repeat(&e), (6, "C-3999", "mar.csv", 3, ", line 4001"));
    import(&*store, "p", "apr.csv", &postings_of("D", 10))
        .await
        .unwrap()
        .unwrap();
    let mut rows = postings_of("E", 10);
    rows[9].reference = "A-0".into();
    let e = import(&*store, "p", "may.csv", &rows).await.unwrap_err();
    assert_eq!(repeat(&e), (11, "A-0", "jan.csv", 1, ", line 2"));
    assert_eq!(posting_count(&*store, "p").await, 9_010);
    assert_chain_intact(&*store).await;
}

async fn repeats_are_found_at_every_boundary_of_a_large_stored_index(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    // 40,000 references: a stored index of five chunks of 8,192 hashes, read four at a time
    // while it is the only earlier import, one at a time once there are five.
    import(&*store, "p", "big.csv", &postings_of("A", 40_000))
        .await
        .unwrap()
        .unwrap();
    // The index is in hash order: take the references at its chunk and read boundaries.
    let mut by_hash: Vec<(u64, usize)> = (0..40_000)
        .map(|i| (reference_hash(&format!("A-{i}")), i))
        .collect();
    by_hash.sort_unstable();
    for small_imports in [0, 4] {
        for n in 0..small_imports {
            let name = format!("small-{n}.csv");
            import(&*store, "p", &name, &postings_of(&format!("S{n}"), 3))
                .await
                .unwrap()
                .unwrap();
        }
        let before = (totals_sum(&*store, "p").await, audit_count(&*store).await);
        for at in [0, 8_191, 8_192, 16_384, 32_767, 32_768, 39_999] {
            let i = by_hash[at].1;
            let mut rows = postings_of("B", 5);
            rows[2].reference = format!("A-{i}");
            let e = import(&*store, "p", "again.csv", &rows).await.unwrap_err();
            let earlier_line = format!(", line {}", i + 2);
            assert_eq!(
                repeat(&e),
                (
                    4,
                    rows[2].reference.as_str(),
                    "big.csv",
                    1,
                    earlier_line.as_str()
                ),
                "the reference at place {at} of the index, beside {small_imports} small imports"
            );
        }
        assert_eq!(
            (totals_sum(&*store, "p").await, audit_count(&*store).await),
            before,
            "nothing was written"
        );
    }
    import(&*store, "p", "again.csv", &postings_of("B", 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(posting_count(&*store, "p").await, 40_017);
}

/// FNV-1a, as the store hashes references (migration 0004 says so).
fn reference_hash(reference: &str) -> u64 {
    reference.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

async fn a_hash_shared_by_two_references_does_not_refuse_a_good_file(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    import(
        &*store,
        "p",
        "jan.csv",
        &[posting(2, "OLD-1", "bcf", "SL1", 2, 100)],
    )
    .await
    .unwrap()
    .unwrap();
    // As if OLD-1 and NEW-7 had the same hash: OLD-1's stored hash becomes NEW-7's, and the
    // index is dropped so that it is built again from the batch's hashes.
    let hex: String = reference_hash("NEW-7")
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let blob = if db.backend == "sqlite" {
        format!("X'{hex}'")
    } else {
        format!("'\\x{hex}'::bytea")
    };
    for sql in [
        format!("UPDATE ledger_batch SET reference_hashes = {blob} WHERE partnership_key = 'p'"),
        "DELETE FROM ledger_reference_index WHERE partnership_key = 'p'".to_string(),
    ] {
        store.execute_raw_for_tests(&sql).await.unwrap();
    }
    // The hash is there, the reference is not: the file is good.
    let rows = [
        posting(2, "NEW-1", "bcf", "SL1", 2, 100),
        posting(3, "NEW-7", "bcf", "SL1", 3, 250),
    ];
    let outcome = import(&*store, "p", "feb.csv", &rows)
        .await
        .unwrap()
        .expect("imported");
    assert_eq!((outcome.rows, outcome.control_total_pence), (2, 350));
    // A real repeat of NEW-7 is still refused, naming the posting that has it.
    let rows = [posting(5, "NEW-7", "bcf", "SL1", 3, 1)];
    let e = import(&*store, "p", "mar.csv", &rows).await.unwrap_err();
    assert_eq!(repeat(&e), (5, "NEW-7", "feb.csv", 2, ", line 3"));
    assert_eq!(posting_count(&*store, "p").await, 3);
}

async fn aborted_or_dropped_import_leaves_nothing(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let audit_before = audit_count(&*store).await;
    // A bad row found at the very end of a 50,000-row file: everything before it goes too.
    let rows = postings_of("A", 50_000);
    let ImportStart::Session(mut session) = store
        .begin_import(&alice(), T2, header("p", "big.csv"))
        .await
        .unwrap()
    else {
        panic!("new file reported as imported");
    };
    for batch in rows[..49_999].chunks(5_000) {
        session.add(batch).await.unwrap();
    }
    session.abort().await;
    assert_eq!(posting_count(&*store, "p").await, 0);
    assert_eq!(totals_sum(&*store, "p").await, (0, 0));
    assert!(store.imports("p").await.unwrap().is_empty());
    assert_eq!(audit_count(&*store).await, audit_before);
    // Dropped without commit: the same.
    {
        let ImportStart::Session(mut session) = store
            .begin_import(&alice(), T2, header("p", "big.csv"))
            .await
            .unwrap()
        else {
            panic!("aborted file reported as imported");
        };
        session.add(&rows[..2_000]).await.unwrap();
    }
    assert_eq!(posting_count(&*store, "p").await, 0);
    assert_eq!(audit_count(&*store).await, audit_before);
    // And the file can then be imported whole.
    import(&*store, "p", "big.csv", &rows[..1_000])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(posting_count(&*store, "p").await, 1_000);
    assert_chain_intact(&*store).await;
}

async fn control_total_mismatch_leaves_nothing(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let audit_before = audit_count(&*store).await;
    let rows = postings_of("A", 20);
    let ImportStart::Session(mut session) = store
        .begin_import(&alice(), T2, header("p", "a.csv"))
        .await
        .unwrap()
    else {
        panic!()
    };
    session.add(&rows).await.unwrap();
    let total: i64 = rows.iter().map(|p| p.amount_pence).sum();
    let e = session
        .commit(ImportSummaryRow {
            rows: 20,
            control_total_pence: total + 1,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::ControlTotalMismatch {
                expected_rows: 20,
                written_rows: 20,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("a.csv"), "{e}");
    assert_eq!(posting_count(&*store, "p").await, 0);
    assert_eq!(totals_sum(&*store, "p").await, (0, 0));
    assert_eq!(audit_count(&*store).await, audit_before);
}

async fn posting_into_a_closed_period_is_refused(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    store.close_period(&bob(), T2, "p", Y, 1).await.unwrap();
    assert_eq!(store.closed_periods("p").await.unwrap(), vec![(Y, 1)]);
    let rows = vec![
        posting(2, "R1", "bcf", "SL1", 2, 500),
        posting(3, "R2", "bcf", "SL1", 1, 700),
    ];
    let e = import(&*store, "p", "a.csv", &rows).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::ClosedPeriod { line: 3, reference, period } if reference == "R2" && period == "2024/25-P01"),
        "{e}"
    );
    assert!(e.to_string().contains("2024/25-P01"), "{e}");
    assert_eq!(posting_count(&*store, "p").await, 0);
    // Closing twice is refused with the reason.
    let e = store
        .close_period(&bob(), T3, "p", Y, 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2024/25-P01") && e.contains("already closed"),
        "{e}"
    );
    // A correction cannot go into a closed period either.
    import(&*store, "p", "b.csv", &rows[..1])
        .await
        .unwrap()
        .unwrap();
    let e = store
        .post_correction(
            &bob(),
            T3,
            "p",
            CorrectionRow {
                reference: "R1-fix".into(),
                corrects_reference: "R1".into(),
                date: "2024-04-30".into(),
                year_start: Y,
                period: 1,
                fund: "bcf".into(),
                service_line: "SL1".into(),
                partner: None,
                locality: None,
                amount_pence: -500,
                reason: "wrong line".into(),
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("closed") && e.contains("R1-fix"), "{e}");
    assert_chain_intact(&*store).await;
}

async fn close_waits_for_suspense_to_be_reclassified(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let rows = vec![
        posting(2, "R1", "bcf", "SL1", 3, 1_000),
        posting(3, "S1", "bcf", "SUSPENSE", 3, 2_500),
        posting(4, "S2", "bcf", "SUSPENSE", 4, 300),
    ];
    import(&*store, "p", "a.csv", &rows).await.unwrap().unwrap();
    let audit_before = audit_count(&*store).await;
    let e = store
        .close_period(&bob(), T3, "p", Y, 3)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2024/25-P03") && e.contains("SUSPENSE") && e.contains("S1"),
        "{e}"
    );
    assert_eq!(audit_count(&*store).await, audit_before);
    assert!(store.closed_periods("p").await.unwrap().is_empty());
    let [out, into] = store
        .reclassify(
            &bob(),
            T3,
            "p",
            ReclassifyRow {
                reference: "S1".into(),
                fund: "bcf".into(),
                service_line: "SL2".into(),
                partner: Some("icb".into()),
                locality: None,
                date: "2024-06-30".into(),
                year_start: Y,
                period: 3,
                reason: "cost centre 123 is home care".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (out.posting.amount_pence, out.posting.service_line.as_str()),
        (-2_500, "SUSPENSE")
    );
    assert_eq!(
        (
            into.posting.amount_pence,
            into.posting.service_line.as_str()
        ),
        (2_500, "SL2")
    );
    assert_eq!(into.posting.corrects_reference.as_deref(), Some("S1"));
    let p3: Vec<_> = store
        .ledger_totals("p", None, Y)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.period == 3)
        .collect();
    let suspense: i64 = p3
        .iter()
        .filter(|t| t.service_line == "SUSPENSE")
        .map(|t| t.amount_pence)
        .sum();
    let sl2: i64 = p3
        .iter()
        .filter(|t| t.service_line == "SL2")
        .map(|t| t.amount_pence)
        .sum();
    assert_eq!((suspense, sl2), (0, 2_500));
    let log = store.audit_log(Some("p")).await.unwrap();
    let record = log.last().unwrap();
    assert_eq!(record.action, "ledger.reclassify");
    assert_eq!(
        record.before().unwrap().unwrap()["posting"]["reference"],
        json!("S1")
    );
    assert_eq!(
        record.after().unwrap().unwrap().as_array().unwrap().len(),
        2
    );
    store.close_period(&bob(), T3, "p", Y, 3).await.unwrap();
    // P04 still has its suspense posting.
    assert!(store.close_period(&bob(), T3, "p", Y, 4).await.is_err());
    assert_eq!(store.closed_periods("p").await.unwrap(), vec![(Y, 3)]);
    let last = store.audit_log(Some("p")).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("period.close", "cli:bob")
    );
    assert_chain_intact(&*store).await;
}

async fn corrections_need_their_posting_and_update_totals(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    import(
        &*store,
        "p",
        "a.csv",
        &[posting(2, "R1", "bcf", "SL1", 2, 10_000)],
    )
    .await
    .unwrap()
    .unwrap();
    let correction = |corrects: &str| CorrectionRow {
        reference: "R1-c1".into(),
        corrects_reference: corrects.into(),
        date: "2024-06-01".into(),
        year_start: Y,
        period: 3,
        fund: "bcf".into(),
        service_line: "SL1".into(),
        partner: None,
        locality: None,
        amount_pence: -1_234,
        reason: "credit note".into(),
    };
    let audit_before = audit_count(&*store).await;
    let e = store
        .post_correction(&bob(), T3, "p", correction("NOPE"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("NOPE"), "{e}");
    assert_eq!(audit_count(&*store).await, audit_before);
    let stored = store
        .post_correction(&bob(), T3, "p", correction("R1"))
        .await
        .unwrap();
    assert_eq!(
        (stored.import_id, stored.posting.amount_pence),
        (None, -1_234)
    );
    assert_eq!(totals_sum(&*store, "p").await, (10_000 - 1_234, 2));
    // Both are found by reference: the correction with the link to what it corrects.
    let found = store.posting("p", "R1-c1").await.unwrap().unwrap();
    assert_eq!(found.posting.corrects_reference.as_deref(), Some("R1"));
    assert_eq!(found.posting.amount_pence, -1_234);
    let original = store.posting("p", "R1").await.unwrap().unwrap();
    assert!(
        original.import_id.is_some(),
        "an imported line names its import"
    );
    assert_eq!(original.posting.amount_pence, 10_000);
    assert!(store.posting("p", "NOPE").await.unwrap().is_none());
    assert!(store.posting("other", "R1").await.unwrap().is_none());
    let record = store.audit_log(Some("p")).await.unwrap().pop().unwrap();
    assert_eq!(record.action, "ledger.correction");
    assert_eq!(
        record.before().unwrap().unwrap()["posting"]["amount_pence"],
        json!(10_000)
    );
    assert_eq!(
        record.after().unwrap().unwrap()["posting"]["corrects_reference"],
        json!("R1")
    );
    // The reference is now taken, by a correction.
    let e = store
        .post_correction(&bob(), T3, "p", correction("R1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("R1-c1"), "{e}");
    let e = import(
        &*store,
        "p",
        "b.csv",
        &[posting(5, "R1-c1", "bcf", "SL1", 4, 1)],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 5") && e.contains("correction"), "{e}");
    assert_chain_intact(&*store).await;
}

fn budget(service_line: &str, partner: Option<&str>, p01: i64, reason: &str) -> BudgetRow {
    let mut period_amounts_pence = vec![100_000; 12];
    period_amounts_pence[0] = p01;
    BudgetRow {
        partnership_key: "p".into(),
        fund: "bcf".into(),
        year_start: Y,
        service_line: service_line.into(),
        partner: partner.map(Into::into),
        locality: None,
        period_amounts_pence,
        client_income_pence: 5_000,
        reason: reason.into(),
        authority: None,
    }
}

/// A budget-revision decision of `amount_pence` for fund bcf.
fn decision(reference: &str, amount_pence: i64) -> DecisionRow {
    DecisionRow {
        partnership_key: "p".into(),
        reference: reference.into(),
        decided_on: "2024-06-12".into(),
        level: "joint".into(),
        decision_type: "budget-revision".into(),
        title: "Budget revision".into(),
        body: Some("board".into()),
        meeting: Some("B-2024-06".into()),
        fund: Some("bcf".into()),
        amount_pence: Some(amount_pence),
        published: true,
        record: serde_json::json!({"reference": reference}),
    }
}

async fn budgets_keep_revisions_and_history(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    assert_eq!(
        store
            .set_budget(&alice(), T1, budget("SL1", None, 1, "original"))
            .await
            .unwrap(),
        1
    );
    store
        .record_decision(
            &bob(),
            T2,
            decision("Board 2024-03-12 item 4", 10),
            Vec::new(),
        )
        .await
        .unwrap();
    let mut revised = budget("SL1", None, 2, "virement");
    revised.authority = Some("Board 2024-03-12 item 4".into());
    assert_eq!(store.set_budget(&bob(), T2, revised).await.unwrap(), 2);
    assert_eq!(
        store
            .set_budget(&alice(), T2, budget("SL1", Some("icb"), 3, "aligned"))
            .await
            .unwrap(),
        1
    );
    let mut other_fund = budget("SL9", None, 4, "ibcf");
    other_fund.fund = "ibcf".into();
    store.set_budget(&alice(), T2, other_fund).await.unwrap();
    let lines = store.budgets("p", Some("bcf"), Y).await.unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (
            lines[0].partner.as_deref(),
            lines[0].revision,
            lines[0].period_amounts_pence[0]
        ),
        (None, 2, 2)
    );
    assert_eq!(
        (
            lines[1].partner.as_deref(),
            lines[1].revision,
            lines[1].period_amounts_pence[0]
        ),
        (Some("icb"), 1, 3)
    );
    assert_eq!(lines[0].period_amounts_pence.len(), 12);
    assert_eq!(lines[0].client_income_pence, 5_000);
    assert_eq!(store.budgets("p", None, Y).await.unwrap().len(), 3);
    assert!(store.budgets("p", None, Y + 1).await.unwrap().is_empty());
    let history = store
        .budget_history("p", "bcf", Y, "SL1", None, None)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0].set_by.as_str(),
            history[0].reason.as_str(),
            history[0].line.revision
        ),
        ("cli:alice", "original", 1)
    );
    assert_eq!(
        (history[1].set_at.as_str(), history[1].reason.as_str()),
        (T2, "virement")
    );
    assert_eq!(
        history[1].authority.as_deref(),
        Some("Board 2024-03-12 item 4")
    );
    let log = store.audit_log(Some("p")).await.unwrap();
    let second = log
        .iter()
        .filter(|r| r.action == "budget.set")
        .nth(1)
        .unwrap();
    assert_eq!(
        second.before().unwrap().unwrap()["line"]["revision"],
        json!(1)
    );
    assert_eq!(
        second.after().unwrap().unwrap()["line"]["revision"],
        json!(2)
    );
    // Eleven amounts are refused, naming the line.
    let mut short = budget("SL1", None, 1, "short");
    short.period_amounts_pence.pop();
    let e = store
        .set_budget(&alice(), T3, short)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("11") && e.contains("SL1"), "{e}");
    assert_eq!(
        store
            .budget_history("p", "bcf", Y, "SL1", None, None)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_chain_intact(&*store).await;
}

fn commitment(reference: &str, fund: &str, amount_pence: i64) -> CommitmentRow {
    CommitmentRow {
        partnership_key: "p".into(),
        reference: reference.into(),
        fund: fund.into(),
        service_line: "SL1".into(),
        partner: Some("council".into()),
        locality: None,
        year_start: Y,
        period: 5,
        amount_pence,
        description: Some("care package".into()),
    }
}

async fn commitments_are_recorded_and_released(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    store
        .record_commitment(&alice(), T1, commitment("PO-2", "bcf", 700))
        .await
        .unwrap();
    store
        .record_commitment(&alice(), T1, commitment("PO-1", "bcf", 300))
        .await
        .unwrap();
    store
        .record_commitment(&alice(), T1, commitment("PO-3", "ibcf", 50))
        .await
        .unwrap();
    let e = store
        .record_commitment(&alice(), T1, commitment("PO-1", "bcf", 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("PO-1"), "{e}");
    let open_bcf = store.commitments("p", Some("bcf"), Y).await.unwrap();
    let refs: Vec<_> = open_bcf
        .iter()
        .map(|c| c.commitment.reference.as_str())
        .collect();
    assert_eq!(refs, ["PO-1", "PO-2"]);
    assert_eq!(open_bcf[1].commitment, commitment("PO-2", "bcf", 700));
    store
        .release_commitment(&bob(), T2, "p", "PO-2", "invoiced")
        .await
        .unwrap();
    let open: Vec<_> = store
        .commitments("p", None, Y)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.commitment.reference)
        .collect();
    assert_eq!(open, ["PO-1", "PO-3"]);
    let e = store
        .release_commitment(&bob(), T2, "p", "PO-2", "again")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("PO-2"), "{e}");
    let record = store.audit_log(Some("p")).await.unwrap().pop().unwrap();
    assert_eq!(
        (record.action.as_str(), record.entity.as_str()),
        ("commitment.release", "commitment:p:PO-2")
    );
    assert_eq!(
        record.before().unwrap().unwrap()["commitment"]["amount_pence"],
        json!(700)
    );
    assert_chain_intact(&*store).await;
}

async fn forecast_overrides_replace_and_list(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let forecast = |period, outturn_pence, reason: &str| ForecastOverrideRow {
        partnership_key: "p".into(),
        fund: "bcf".into(),
        year_start: Y,
        service_line: "SL1".into(),
        period,
        outturn_pence,
        reason: reason.into(),
    };
    store
        .set_forecast_override(&alice(), T1, forecast(6, 1_000, "winter pressures"))
        .await
        .unwrap();
    store
        .set_forecast_override(&alice(), T2, forecast(6, 1_500, "more winter"))
        .await
        .unwrap();
    store
        .set_forecast_override(&alice(), T2, forecast(7, 2_000, "P07 view"))
        .await
        .unwrap();
    assert_eq!(
        store.forecast_overrides("p", Some("bcf"), Y).await.unwrap(),
        vec![
            forecast(6, 1_500, "more winter"),
            forecast(7, 2_000, "P07 view")
        ]
    );
    assert!(
        store
            .forecast_overrides("p", Some("ibcf"), Y)
            .await
            .unwrap()
            .is_empty()
    );
    let log = store.audit_log(Some("p")).await.unwrap();
    let second = log
        .iter()
        .filter(|r| r.action == "forecast.override")
        .nth(1)
        .unwrap();
    assert_eq!(
        second.before().unwrap().unwrap()["outturn_pence"],
        json!(1_000)
    );
    assert_eq!(
        second.after().unwrap().unwrap()["outturn_pence"],
        json!(1_500)
    );
    assert_chain_intact(&*store).await;
}

/// After imports, corrections and reclassifications in a pseudo-random order, the totals
/// agree with the postings for every fund and period.
async fn totals_equal_postings_after_any_sequence(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    // A small linear congruential generator: the same sequence every run.
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut references: Vec<String> = Vec::new();
    for step in 0..30 {
        match next(3) {
            0 => {
                let n = next(200) as usize + 1;
                let rows: Vec<PostingRow> = (0..n)
                    .map(|i| {
                        let service_line = if next(5) == 0 {
                            "SUSPENSE".to_string()
                        } else {
                            format!("SL{}", next(3))
                        };
                        let fund = if next(2) == 0 { "bcf" } else { "ibcf" };
                        posting(
                            i as i64 + 2,
                            &format!("S{step}-{i}"),
                            fund,
                            &service_line,
                            next(12) as i64 + 1,
                            next(2_000_000) as i64 - 500_000,
                        )
                    })
                    .collect();
                import(&*store, "p", &format!("file-{step}.csv"), &rows)
                    .await
                    .unwrap()
                    .unwrap();
                references.extend(rows.into_iter().map(|p| p.reference));
            }
            1 if !references.is_empty() => {
                let target = references[next(references.len() as u64) as usize].clone();
                store
                    .post_correction(
                        &bob(),
                        T3,
                        "p",
                        CorrectionRow {
                            reference: format!("C{step}"),
                            corrects_reference: target,
                            date: "2024-09-01".into(),
                            year_start: Y,
                            period: next(12) as i64 + 1,
                            fund: "bcf".into(),
                            service_line: format!("SL{}", next(3)),
                            partner: if next(2) == 0 {
                                None
                            } else {
                                Some("icb".into())
                            },
                            locality: None,
                            amount_pence: next(100_000) as i64 - 50_000,
                            reason: "adjustment".into(),
                        },
                    )
                    .await
                    .unwrap();
            }
            2 if !references.is_empty() => {
                let target = references[next(references.len() as u64) as usize].clone();
                store
                    .reclassify(
                        &bob(),
                        T3,
                        "p",
                        ReclassifyRow {
                            reference: target,
                            fund: "ibcf".into(),
                            service_line: "SL7".into(),
                            partner: None,
                            locality: Some("south".into()),
                            date: "2024-10-01".into(),
                            year_start: Y,
                            period: next(12) as i64 + 1,
                            reason: "reclassified".into(),
                        },
                    )
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    let mut from_postings = std::collections::BTreeMap::new();
    for p in store
        .postings("p", &all_postings(), i64::MAX, 0)
        .await
        .unwrap()
    {
        let e = from_postings
            .entry((p.posting.fund.clone(), p.posting.period))
            .or_insert((0i64, 0i64));
        e.0 += p.posting.amount_pence;
        e.1 += 1;
    }
    let mut from_totals = std::collections::BTreeMap::new();
    for t in store.ledger_totals("p", None, Y).await.unwrap() {
        let e = from_totals
            .entry((t.fund.clone(), t.period))
            .or_insert((0i64, 0i64));
        e.0 += t.amount_pence;
        e.1 += t.postings;
    }
    assert!(
        from_postings.len() > 10,
        "the sequence should touch many funds and periods"
    );
    assert_eq!(from_totals, from_postings);
    assert_chain_intact(&*store).await;
}

fn payment(reference: &str, paid_on: &str, amount_pence: i64) -> PaymentRow {
    PaymentRow {
        partnership_key: "p".into(),
        reference: reference.into(),
        kind: PaymentKind::Contribution,
        item: "bcf".into(),
        partner: "council".into(),
        year_start: Y,
        paid_on: paid_on.into(),
        amount_pence,
    }
}

async fn payments_are_recorded_once_and_listed_by_date(db: &TestDb) {
    let store = db.open().await;
    let e = store
        .record_payment(&alice(), T1, payment("BACS-1", "2024-04-01", 100))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no partnership"), "{e}");
    ledger_partnership(&*store, "p").await;
    store
        .record_payment(&alice(), T1, payment("BACS-2", "2024-07-01", 250_000))
        .await
        .unwrap();
    store
        .record_payment(&alice(), T1, payment("BACS-1", "2024-04-01", 250_001))
        .await
        .unwrap();
    let audit_before = audit_count(&*store).await;
    let e = store
        .record_payment(&bob(), T2, payment("BACS-1", "2024-10-01", 5))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("BACS-1") && e.contains("already"), "{e}");
    let e = store
        .record_payment(&bob(), T2, payment("BACS-3", "1 October 2024", 5))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("ISO date"), "{e}");
    assert_eq!(
        audit_count(&*store).await,
        audit_before,
        "refusals write nothing"
    );
    let listed = store.payments("p", Y).await.unwrap();
    let refs: Vec<_> = listed
        .iter()
        .map(|p| p.payment.reference.as_str())
        .collect();
    assert_eq!(refs, ["BACS-1", "BACS-2"], "by date");
    assert_eq!(listed[0].payment, payment("BACS-1", "2024-04-01", 250_001));
    assert_eq!(listed[0].recorded_by, alice().name);
    assert!(store.payments("p", Y + 1).await.unwrap().is_empty());
    let record = store.audit_log(Some("p")).await.unwrap().pop().unwrap();
    assert_eq!(
        (record.action.as_str(), record.entity.as_str()),
        ("payment.record", "payment:p:BACS-1")
    );
    // A payment recorded in error is reversed: it stops counting, its record stays.
    store
        .reverse_payment(&bob(), T3, "p", "BACS-2", "paid to the wrong fund")
        .await
        .unwrap();
    let refs: Vec<_> = store
        .payments("p", Y)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.payment.reference)
        .collect();
    assert_eq!(refs, ["BACS-1"]);
    let e = store
        .reverse_payment(&bob(), T3, "p", "BACS-2", "again")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("reversed already"), "{e}");
    let record = store.audit_log(Some("p")).await.unwrap().pop().unwrap();
    assert_eq!(record.action, "payment.reverse");
    assert_eq!(
        record.before().unwrap().unwrap()["amount_pence"],
        json!(250_000)
    );
    // Its reference stays taken.
    let e = store
        .record_payment(&alice(), T3, payment("BACS-2", "2024-07-02", 250_000))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("already"), "{e}");
    assert_chain_intact(&*store).await;
}

/// Databases from before migration 0004 hold imported postings a row each in ledger_posting;
/// every read and check must still see them.
async fn postings_stored_a_row_each_before_batches_still_count(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    store
        .execute_raw_for_tests(
            "INSERT INTO ledger_import (partnership_key, import_id, file_name, file_sha256, \
                 mapping_sha256, imported_at, imported_by, rows, control_total_pence) \
             VALUES ('p', 1, 'old.csv', 'sha-old', 'm', '2025-01-01T00:00:00Z', 'alice', 1, 500)",
        )
        .await
        .unwrap();
    store
        .execute_raw_for_tests(
            "INSERT INTO ledger_posting (partnership_key, import_id, source_line, posting_date, \
                 year_start, period, fund, service_line, partner, locality, cost_centre, \
                 subjective, supplier, reference, description, amount_pence, corrects_reference) \
             VALUES ('p', 1, 7, '2024-05-10', 2024, 2, 'bcf', 'SL1', NULL, NULL, NULL, NULL, \
                 NULL, 'OLD-1', NULL, 500, NULL)",
        )
        .await
        .unwrap();
    let e = import(
        &*store,
        "p",
        "new.csv",
        &[
            posting(2, "NEW-1", "bcf", "SL1", 2, 100),
            posting(3, "OLD-1", "bcf", "SL1", 3, 100),
        ],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("OLD-1") && e.contains("old.csv"), "{e}");
    let found = store.posting("p", "OLD-1").await.unwrap().unwrap();
    assert_eq!((found.import_id, found.posting.source_line), (Some(1), 7));
    import(
        &*store,
        "p",
        "new.csv",
        &[posting(2, "NEW-1", "bcf", "SL1", 2, 100)],
    )
    .await
    .unwrap()
    .unwrap();
    let listed: Vec<String> = store
        .postings("p", &all_postings(), 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.posting.reference)
        .collect();
    assert_eq!(
        listed,
        ["NEW-1", "OLD-1"],
        "both stores, by date then reference"
    );
}

async fn suspense_in_a_batch_holds_its_period_open(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let mut rows = postings_of("S", 12_000);
    rows[11_500].service_line = concordat_core::ledger::SUSPENSE.into();
    let period = rows[11_500].period;
    import(&*store, "p", "s.csv", &rows).await.unwrap().unwrap();
    let e = store
        .close_period(&alice(), T3, "p", Y, period)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("S-11500"), "{e}");
    let other = if period == 1 { 2 } else { 1 };
    store
        .close_period(&alice(), T3, "p", Y, other)
        .await
        .unwrap();
}

async fn a_revision_needs_a_decision_that_covers_it(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    store
        .set_budget(&alice(), T1, budget("SL1", None, 100, "original"))
        .await
        .unwrap();
    let audit_before = store.audit_log(Some("p")).await.unwrap().len();
    // No authority at all.
    let e = store
        .set_budget(&alice(), T2, budget("SL1", None, 150, "more"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs the decision that authorised it"), "{e}");
    // A reference that is not in the decision log.
    let mut cited = budget("SL1", None, 150, "more");
    cited.authority = Some("D-404".into());
    let e = store
        .set_budget(&alice(), T2, cited.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no decision \"D-404\""), "{e}");
    // A decision for less than the change: +50 pence against 30 authorised.
    store
        .record_decision(&bob(), T2, decision("D-1", 30), Vec::new())
        .await
        .unwrap();
    cited.authority = Some("D-1".into());
    let e = store
        .set_budget(&alice(), T2, cited.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("30 pence of increases is left"), "{e}");
    // A decision about something else.
    let mut policy = decision("D-2", 1_000);
    policy.decision_type = "policy".into();
    store
        .record_decision(&bob(), T2, policy, Vec::new())
        .await
        .unwrap();
    cited.authority = Some("D-2".into());
    let e = store
        .set_budget(&alice(), T2, cited.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a budget revision or virement"), "{e}");
    // Only the two decisions were written.
    assert_eq!(
        store.audit_log(Some("p")).await.unwrap().len(),
        audit_before + 2
    );
    assert_eq!(
        store.budgets("p", Some("bcf"), Y).await.unwrap()[0].revision,
        1
    );
    // Within what is left it stands, and draws the decision down.
    let mut small = budget("SL1", None, 120, "some more");
    small.authority = Some("D-1".into());
    assert_eq!(store.set_budget(&alice(), T2, small).await.unwrap(), 2);
    let log = store.decisions("p").await.unwrap();
    let d1 = log.iter().find(|d| d.decision.reference == "D-1").unwrap();
    assert_eq!((d1.used_increase_pence, d1.used_decrease_pence), (20, 0));
    let mut again = budget("SL1", None, 135, "and more");
    again.authority = Some("D-1".into());
    let e = store
        .set_budget(&alice(), T2, again)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("10 pence of increases is left"), "{e}");
    assert_chain_intact(&*store).await;
}

async fn a_decision_and_its_budget_changes_are_one_transaction(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    store
        .set_budget(&alice(), T1, budget("SL1", None, 1_000, "original"))
        .await
        .unwrap();
    store
        .set_budget(&alice(), T1, budget("SL2", None, 1_000, "original"))
        .await
        .unwrap();
    // A virement of 400 pence from SL1 to SL2, authorised by the decision that records it.
    let mut virement = decision("D-V", 400);
    virement.decision_type = "virement".into();
    let revisions = store
        .record_decision(
            &bob(),
            T2,
            virement.clone(),
            vec![
                budget("SL1", None, 600, "virement to SL2"),
                budget("SL2", None, 1_400, "virement from SL1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(revisions, [2, 2]);
    let history = store
        .budget_history("p", "bcf", Y, "SL2", None, None)
        .await
        .unwrap();
    assert_eq!(history[1].authority.as_deref(), Some("D-V"));
    let log = store.audit_log(Some("p")).await.unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("decision.record", "cli:bob")
    );
    let after: serde_json::Value =
        serde_json::from_str(last.after_json.as_deref().unwrap()).unwrap();
    assert_eq!(
        after["budget_changes"].as_array().unwrap().len(),
        2,
        "{after}"
    );
    // If one budget change fails, neither the decision nor the other change is written.
    let before = store.audit_log(Some("p")).await.unwrap().len();
    let mut too_far = decision("D-W", 100);
    too_far.decision_type = "virement".into();
    let e = store
        .record_decision(
            &bob(),
            T2,
            too_far,
            vec![
                budget("SL1", None, 500, "virement"),
                budget("SL2", None, 2_000, "virement"),
            ],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("decision D-W authorises"), "{e}");
    assert_eq!(store.audit_log(Some("p")).await.unwrap().len(), before);
    assert!(
        store
            .decisions("p")
            .await
            .unwrap()
            .iter()
            .all(|d| d.decision.reference != "D-W")
    );
    let lines = store.budgets("p", Some("bcf"), Y).await.unwrap();
    assert_eq!(
        lines.iter().map(|l| l.revision).collect::<Vec<_>>(),
        [2, 2],
        "the first change was rolled back with the decision"
    );
    // A reference is used once.
    let e = store
        .record_decision(&bob(), T2, virement, Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("already in the decision log"), "{e}");
    assert_chain_intact(&*store).await;
}

async fn proceedings_are_added_changed_and_audited(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let row = |reference: &str, dated: &str, status: &str, new: bool| ProceedingRow {
        partnership_key: "p".into(),
        kind: ProceedingKind::Risk,
        reference: reference.into(),
        status: status.into(),
        title: format!("risk {reference}"),
        dated: dated.into(),
        record: serde_json::json!({"status": status}),
        new,
    };
    store
        .put_proceeding(&alice(), T1, row("R2", "2024-09-01", "open", true))
        .await
        .unwrap();
    store
        .put_proceeding(&alice(), T1, row("R1", "2024-10-01", "open", true))
        .await
        .unwrap();
    let e = store
        .put_proceeding(&alice(), T1, row("R1", "2024-10-01", "open", true))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("already recorded"), "{e}");
    let e = store
        .put_proceeding(&alice(), T1, row("R9", "2024-10-01", "open", false))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no risk \"R9\""), "{e}");
    store
        .put_proceeding(&bob(), T2, row("R1", "2024-10-01", "closed", false))
        .await
        .unwrap();
    let risks = store.proceedings("p", ProceedingKind::Risk).await.unwrap();
    assert_eq!(
        risks
            .iter()
            .map(|r| (r.reference.as_str(), r.status.as_str()))
            .collect::<Vec<_>>(),
        [("R2", "open"), ("R1", "closed")]
    );
    assert_eq!(
        (risks[1].created_by.as_str(), risks[1].updated_by.as_str()),
        ("cli:alice", "cli:bob")
    );
    assert!(
        store
            .proceedings("p", ProceedingKind::Dispute)
            .await
            .unwrap()
            .is_empty()
    );
    let last = store.audit_log(Some("p")).await.unwrap().pop().unwrap();
    assert_eq!(last.action, "risk.update");
    assert!(last.before_json.unwrap().contains("open"));
    // Notice served puts the agreement in notice.
    let mut notice = row("notice", "2024-11-15", "served", true);
    notice.kind = ProceedingKind::Notice;
    store.put_proceeding(&alice(), T2, notice).await.unwrap();
    assert_eq!(
        store.get_agreement("p").await.unwrap().unwrap().status,
        "in notice"
    );
    assert_chain_intact(&*store).await;
}

async fn meeting_papers_are_stored_whole(db: &TestDb) {
    let store = db.open().await;
    ledger_partnership(&*store, "p").await;
    let paper = |name: &str, content: &[u8]| PaperRow {
        partnership_key: "p".into(),
        meeting: "B-1".into(),
        title: "Finance report".into(),
        file_name: name.into(),
        media_type: "application/pdf".into(),
        content: content.to_vec(),
    };
    let e = store
        .add_paper(&alice(), T1, paper("a.pdf", b"%PDF"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no meeting \"B-1\""), "{e}");
    store
        .put_proceeding(
            &alice(),
            T1,
            ProceedingRow {
                partnership_key: "p".into(),
                kind: ProceedingKind::Meeting,
                reference: "B-1".into(),
                status: "held".into(),
                title: "Board".into(),
                dated: "2024-06-12".into(),
                record: serde_json::json!({}),
                new: true,
            },
        )
        .await
        .unwrap();
    let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    assert_eq!(
        store
            .add_paper(&alice(), T1, paper("a.pdf", &content))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .add_paper(&alice(), T1, paper("b.pdf", b"x"))
            .await
            .unwrap(),
        2
    );
    let (info, bytes) = store.paper("p", "B-1", 1).await.unwrap().unwrap();
    assert_eq!(bytes, content);
    assert_eq!(info.size_bytes, 70_000);
    assert_eq!(info.sha256.len(), 64);
    assert_eq!(store.papers("p", "B-1").await.unwrap().len(), 2);
    assert!(store.paper("p", "B-1", 3).await.unwrap().is_none());
    assert!(
        store
            .add_paper(&alice(), T1, paper("c.pdf", b""))
            .await
            .is_err()
    );
    let last = store.audit_log(Some("p")).await.unwrap().pop().unwrap();
    assert_eq!(last.action, "meeting.paper");
    let after = last.after_json.unwrap();
    assert!(
        after.contains("b.pdf") && !after.contains("c.pdf"),
        "{after}"
    );
    assert_chain_intact(&*store).await;
}
