//! The one implementation of [`Store`], over either backend.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::accounts::{self, AccountChange};
use crate::audit::{AuditRecord, AuditVerification, GENESIS_HASH, canonical_json};
use crate::db::{Arg, Pool, Row, Tx};
use crate::ledger_store::{self, period_text};
use crate::payments;
use crate::proceedings::{
    self, DecisionRow, PaperInfo, PaperRow, ProceedingKind, ProceedingRow, StoredDecision,
    StoredProceeding,
};
use crate::{
    Actor, AgreementLoad, AgreementSummary, CONNECT_TIMEOUT, LoadOutcome, PartnerRow, Store,
    StoreError, StoredAgreement, VersionInfo, redact,
};
use crate::{ApiTokenRow, GrantRow, OrganisationRow, SessionRow, UserRow};
use crate::{
    BudgetLineRow, BudgetRevisionRow, BudgetRow, CommitmentRow, CorrectionRow, ForecastOverrideRow,
    ImportHeader, ImportRow, ImportStart, PaymentRow, PostingFilter, ReclassifyRow,
    StoredCommitment, StoredPayment, StoredPosting, TotalsRow,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite writer waits for another writer before giving up.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct SqlStore {
    pool: Pool,
}

/// `PRAGMA cache_size` of every SQLite connection: 64 MiB (negative: in KiB).
pub(crate) const SQLITE_CACHE_SIZE: &str = "-65536";

impl SqlStore {
    /// Opens a SQLite file (`Some(path)`, created if missing) or a private in-memory database.
    pub(crate) async fn open_sqlite(url: &str, path: Option<&str>) -> Result<SqlStore, StoreError> {
        let open_error = |cause| StoreError::OpenSqlite {
            url: url.to_string(),
            cause,
        };
        let (options, pool_options) = match path {
            Some(path) => (
                SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // In WAL mode NORMAL survives an application crash; only a power cut can
                    // lose the last commits (never corrupt the file). It saves an fsync per
                    // commit.
                    .synchronous(SqliteSynchronous::Normal)
                    // 64 MiB of page cache (the default is 2 MiB): a large import touches
                    // index pages all over the file, and rereading them dominated its time.
                    // (An import now lowers it on its own connection: see ledger_store.)
                    .pragma("cache_size", SQLITE_CACHE_SIZE),
                SqlitePoolOptions::new().max_connections(4),
            ),
            // Each connection to ":memory:" is its own database, so keep exactly one, forever.
            None => (
                SqliteConnectOptions::new().in_memory(true),
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None),
            ),
        };
        let options = options.foreign_keys(true).busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(open_error)?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|cause| StoreError::Migrate {
                url: url.to_string(),
                cause,
            })?;
        Ok(SqlStore {
            pool: Pool::Sqlite(pool),
        })
    }

    pub(crate) async fn open_postgres(
        url: &str,
        options: PgConnectOptions,
    ) -> Result<SqlStore, StoreError> {
        let shown = redact(url);
        // One direct connection first: the pool would retry a refused connection until its
        // timeout and then report only that it timed out, hiding the reason.
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| StoreError::UnreachablePostgres {
                url: shown.clone(),
                cause: sqlx::Error::PoolTimedOut,
            })?
            .map_err(|cause| match cause {
                sqlx::Error::Io(_) | sqlx::Error::Tls(_) => StoreError::UnreachablePostgres {
                    url: shown.clone(),
                    cause,
                },
                cause => StoreError::RefusedPostgres {
                    url: shown.clone(),
                    cause,
                },
            })?;
        // The probe has done its job; failing to close it politely changes nothing.
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|cause| StoreError::UnreachablePostgres {
                url: shown.clone(),
                cause,
            })?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|cause| StoreError::Migrate { url: shown, cause })?;
        Ok(SqlStore {
            pool: Pool::Postgres(pool),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The write path

/// A state change. Each is applied by [`SqlStore::write`], the only code that writes.
enum Command {
    LoadAgreement(AgreementLoad),
    ClosePeriod {
        key: String,
        year_start: i64,
        period: i64,
    },
    Correction {
        key: String,
        correction: CorrectionRow,
    },
    Reclassify {
        key: String,
        reclassify: ReclassifyRow,
    },
    SetBudget(BudgetRow),
    RecordCommitment(CommitmentRow),
    ReleaseCommitment {
        key: String,
        reference: String,
        reason: String,
    },
    SetForecastOverride(ForecastOverrideRow),
    RecordPayment(PaymentRow),
    ReversePayment {
        key: String,
        reference: String,
        reason: String,
    },
    Account(AccountChange),
    PutProceeding(ProceedingRow),
    AddPaper(PaperRow),
    RecordDecision {
        decision: DecisionRow,
        budgets: Vec<BudgetRow>,
    },
}

impl Command {
    fn partnership_key(&self) -> &str {
        match self {
            Command::LoadAgreement(load) => &load.partnership_key,
            Command::ClosePeriod { key, .. }
            | Command::Correction { key, .. }
            | Command::Reclassify { key, .. }
            | Command::ReleaseCommitment { key, .. }
            | Command::ReversePayment { key, .. } => key,
            Command::SetBudget(b) => &b.partnership_key,
            Command::RecordCommitment(c) => &c.partnership_key,
            Command::SetForecastOverride(f) => &f.partnership_key,
            Command::RecordPayment(p) => &p.partnership_key,
            Command::Account(a) => a.chain_key(),
            Command::PutProceeding(p) => &p.partnership_key,
            Command::AddPaper(p) => &p.partnership_key,
            Command::RecordDecision { decision, .. } => &decision.partnership_key,
        }
    }

    fn describe(&self) -> String {
        match self {
            Command::LoadAgreement(load) => format!("load agreement {}", load.partnership_key),
            Command::ClosePeriod {
                key,
                year_start,
                period,
            } => format!("close {} of {key}", period_text(*year_start, *period)),
            Command::Correction { key, correction } => {
                format!("post correction {} in {key}", correction.reference)
            }
            Command::Reclassify { key, reclassify } => {
                format!("reclassify {} in {key}", reclassify.reference)
            }
            Command::SetBudget(b) => format!(
                "set budget {}/{} of {}",
                b.fund, b.service_line, b.partnership_key
            ),
            Command::RecordCommitment(c) => {
                format!("record commitment {} in {}", c.reference, c.partnership_key)
            }
            Command::ReleaseCommitment { key, reference, .. } => {
                format!("release commitment {reference} in {key}")
            }
            Command::SetForecastOverride(f) => format!(
                "set forecast override {}/{} of {}",
                f.fund, f.service_line, f.partnership_key
            ),
            Command::RecordPayment(p) => {
                format!("record payment {} in {}", p.reference, p.partnership_key)
            }
            Command::ReversePayment { key, reference, .. } => {
                format!("reverse payment {reference} in {key}")
            }
            Command::Account(a) => a.describe(),
            Command::PutProceeding(p) => format!(
                "record {} {} in {}",
                p.kind.as_str(),
                p.reference,
                p.partnership_key
            ),
            Command::AddPaper(p) => format!(
                "add paper {} to meeting {} in {}",
                p.file_name, p.meeting, p.partnership_key
            ),
            Command::RecordDecision { decision, .. } => format!(
                "record decision {} in {}",
                decision.reference, decision.partnership_key
            ),
        }
    }
}

/// What a command returns to its caller.
pub(crate) enum CommandResult {
    Load(LoadOutcome),
    Done,
    Posting(Box<StoredPosting>),
    Reclassified(Box<[StoredPosting; 2]>),
    Revision(i64),
    Revisions(Vec<i64>),
}

/// A command's effect within the transaction: its result, and the audit entry describing what
/// it changed (`None` when it changed nothing).
pub(crate) struct Change {
    pub(crate) result: CommandResult,
    pub(crate) audit: Option<AuditEntry>,
}

/// The "what" of an audit record; the write path adds who, when, sequence and hashes.
pub(crate) struct AuditEntry {
    pub(crate) action: &'static str,
    pub(crate) entity: String,
    pub(crate) before_json: Option<String>,
    pub(crate) after_json: Option<String>,
}

/// Refuses values that would make an audit record ambiguous: empty, or with a line break
/// (the hash formula separates fields with "\n").
pub(crate) fn check_field(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!(
            "the {what} is empty; every change must say who made it, when, and to what"
        )));
    }
    if value.contains(['\n', '\r']) {
        return Err(StoreError::Invalid(format!(
            "the {what} {value:?} contains a line break, which the audit log does not allow"
        )));
    }
    Ok(())
}

impl SqlStore {
    /// The single write path: in ONE transaction, applies `command` and appends the audit
    /// record saying who (`actor`) did what, when (`at`), with the state before and after.
    ///
    /// If anything fails, the transaction is rolled back and nothing is written. A command
    /// that reports no change is rolled back too, so nothing can be written without an audit
    /// record.
    async fn write(
        &self,
        actor: &Actor,
        at: &str,
        command: Command,
    ) -> Result<CommandResult, StoreError> {
        let key = command.partnership_key().to_string();
        check_field("partnership key", &key)?;
        check_field("actor", &actor.name)?;
        check_field("time of the change", at)?;
        let doing = command.describe();
        let failed = || StoreError::doing(&doing);

        let mut tx = self.pool.begin().await.map_err(failed())?;
        tx.lock_partnership(&key).await.map_err(failed())?;
        let change = match command {
            Command::LoadAgreement(load) => apply_load(&mut tx, actor, at, load, &doing).await?,
            Command::ClosePeriod {
                key,
                year_start,
                period,
            } => {
                ledger_store::apply_close_period(
                    &mut tx, actor, at, &key, year_start, period, &doing,
                )
                .await?
            }
            Command::Correction { key, correction } => {
                ledger_store::apply_correction(&mut tx, &key, correction, &doing).await?
            }
            Command::Reclassify { key, reclassify } => {
                ledger_store::apply_reclassify(&mut tx, &key, reclassify, &doing).await?
            }
            Command::SetBudget(b) => {
                ledger_store::apply_set_budget(&mut tx, actor, at, b, &doing).await?
            }
            Command::RecordCommitment(c) => {
                ledger_store::apply_record_commitment(&mut tx, actor, at, c, &doing).await?
            }
            Command::ReleaseCommitment {
                key,
                reference,
                reason,
            } => {
                ledger_store::apply_release_commitment(
                    &mut tx, actor, at, &key, &reference, &reason, &doing,
                )
                .await?
            }
            Command::SetForecastOverride(f) => {
                ledger_store::apply_set_forecast(&mut tx, actor, at, f, &doing).await?
            }
            Command::RecordPayment(p) => {
                payments::apply_record_payment(&mut tx, actor, at, p, &doing).await?
            }
            Command::ReversePayment {
                key,
                reference,
                reason,
            } => {
                payments::apply_reverse_payment(
                    &mut tx, actor, at, &key, &reference, &reason, &doing,
                )
                .await?
            }
            Command::Account(change) => {
                accounts::apply(&mut tx, &actor.name, at, change, &doing).await?
            }
            Command::PutProceeding(p) => {
                proceedings::apply_put(&mut tx, actor, at, p, &doing).await?
            }
            Command::AddPaper(p) => {
                proceedings::apply_add_paper(&mut tx, actor, at, p, &doing).await?
            }
            Command::RecordDecision { decision, budgets } => {
                proceedings::apply_record_decision(&mut tx, actor, at, decision, budgets, &doing)
                    .await?
            }
        };
        match &change.audit {
            None => tx.rollback().await.map_err(failed())?,
            Some(entry) => {
                append_audit(&mut tx, &key, actor, at, entry)
                    .await
                    .map_err(failed())?;
                tx.commit().await.map_err(failed())?;
            }
        }
        Ok(change.result)
    }
}

fn entity_of_version(key: &str, version: i64) -> String {
    format!("agreement:{key}:v{version}")
}

/// Applies a load inside the write transaction (see [`Store::load_agreement`]).
async fn apply_load(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    load: AgreementLoad,
    doing: &str,
) -> Result<Change, StoreError> {
    let db = |cause| StoreError::Database {
        doing: doing.to_string(),
        cause,
    };
    let key = load.partnership_key.as_str();
    let current = tx
        .fetch_optional(
            "SELECT p.current_version AS current_version, v.source_sha256 AS source_sha256, \
                    v.model_json AS model_json \
             FROM partnership p \
             LEFT JOIN agreement_version v \
               ON v.partnership_key = p.partnership_key AND v.version = p.current_version \
             WHERE p.partnership_key = $1",
            &[Arg::Text(key)],
        )
        .await
        .map_err(db)?;
    let current = match current {
        None => None,
        Some(row) => {
            let version = row.int("current_version").map_err(db)?;
            let (Some(sha), Some(model)) = (
                row.opt_text("source_sha256").map_err(db)?,
                row.opt_text("model_json").map_err(db)?,
            ) else {
                return Err(StoreError::Damaged(format!(
                    "partnership {key} says its current version is {version}, \
                     but that version is not stored"
                )));
            };
            Some((version, sha, model))
        }
    };

    let model_json = canonical_json(&load.model_json);
    let (version, result, action, before_json) = match current {
        Some((version, sha, _)) if sha == load.source_sha256 => {
            return Ok(Change {
                result: CommandResult::Load(LoadOutcome::Unchanged { version }),
                audit: None,
            });
        }
        None => {
            tx.execute(
                "INSERT INTO partnership \
                   (partnership_key, title, status, current_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    Arg::Text(key),
                    Arg::Text(&load.title),
                    Arg::Text(&load.status),
                    Arg::Int(1),
                    Arg::Text(at),
                    Arg::Text(at),
                ],
            )
            .await
            .map_err(db)?;
            (
                1,
                LoadOutcome::Created { version: 1 },
                "agreement.create",
                None,
            )
        }
        Some((previous, _, previous_model)) => {
            let version = previous + 1;
            tx.execute(
                "UPDATE partnership \
                 SET title = $2, status = $3, current_version = $4, updated_at = $5 \
                 WHERE partnership_key = $1",
                &[
                    Arg::Text(key),
                    Arg::Text(&load.title),
                    Arg::Text(&load.status),
                    Arg::Int(version),
                    Arg::Text(at),
                ],
            )
            .await
            .map_err(db)?;
            (
                version,
                LoadOutcome::NewVersion { version, previous },
                "agreement.new-version",
                Some(previous_model),
            )
        }
    };

    if let Some(reference) = &load.authority {
        proceedings::check_decision_kind(tx, key, reference, "contribution-variation", doing)
            .await?;
    }
    tx.execute(
        "INSERT INTO agreement_version \
           (partnership_key, version, source_sha256, source_path, source_text, model_json, \
            loaded_at, loaded_by, authority) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            Arg::Text(key),
            Arg::Int(version),
            Arg::Text(&load.source_sha256),
            Arg::Text(&load.source_path),
            Arg::Text(&load.source_text),
            Arg::Text(&model_json),
            Arg::Text(at),
            Arg::Text(&actor.name),
            Arg::OptText(load.authority.as_deref()),
        ],
    )
    .await
    .map_err(db)?;

    // Partners are a projection of the current version, so they are replaced, not merged.
    tx.execute(
        "DELETE FROM partner WHERE partnership_key = $1",
        &[Arg::Text(key)],
    )
    .await
    .map_err(db)?;
    for p in &load.partners {
        tx.execute(
            "INSERT INTO partner (partnership_key, partner_id, name, kind) \
             VALUES ($1, $2, $3, $4)",
            &[
                Arg::Text(key),
                Arg::Text(&p.partner_id),
                Arg::Text(&p.name),
                Arg::Text(&p.kind),
            ],
        )
        .await
        .map_err(db)?;
    }

    Ok(Change {
        result: CommandResult::Load(result),
        audit: Some(AuditEntry {
            action,
            entity: entity_of_version(key, version),
            before_json,
            after_json: Some(model_json),
        }),
    })
}

/// Appends the next record of the partnership's chain and moves the chain head to it.
pub(crate) async fn append_audit(
    tx: &mut Tx,
    key: &str,
    actor: &Actor,
    at: &str,
    entry: &AuditEntry,
) -> Result<(), sqlx::Error> {
    let head = tx
        .fetch_optional(
            "SELECT seq, hash FROM audit_head WHERE partnership_key = $1",
            &[Arg::Text(key)],
        )
        .await?;
    let (seq, prev_hash) = match head {
        Some(row) => (row.int("seq")? + 1, row.text("hash")?),
        None => (1, GENESIS_HASH.to_string()),
    };
    let mut record = AuditRecord {
        partnership_key: key.to_string(),
        seq,
        recorded_at: at.to_string(),
        actor: actor.name.clone(),
        action: entry.action.to_string(),
        entity: entry.entity.clone(),
        before_json: entry.before_json.clone(),
        after_json: entry.after_json.clone(),
        prev_hash,
        hash: String::new(),
    };
    record.hash = record.compute_hash();
    tx.execute(
        "INSERT INTO audit_record \
           (partnership_key, seq, recorded_at, actor, action, entity, before_json, after_json, \
            prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            Arg::Text(&record.partnership_key),
            Arg::Int(record.seq),
            Arg::Text(&record.recorded_at),
            Arg::Text(&record.actor),
            Arg::Text(&record.action),
            Arg::Text(&record.entity),
            Arg::OptText(record.before_json.as_deref()),
            Arg::OptText(record.after_json.as_deref()),
            Arg::Text(&record.prev_hash),
            Arg::Text(&record.hash),
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO audit_head (partnership_key, seq, hash) VALUES ($1, $2, $3) \
         ON CONFLICT (partnership_key) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        &[
            Arg::Text(key),
            Arg::Int(record.seq),
            Arg::Text(&record.hash),
        ],
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reads

const AUDIT_COLUMNS: &str = "partnership_key, seq, recorded_at, actor, action, entity, \
                             before_json, after_json, prev_hash, hash";

fn audit_record(row: &Row) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        partnership_key: row.text("partnership_key")?,
        seq: row.int("seq")?,
        recorded_at: row.text("recorded_at")?,
        actor: row.text("actor")?,
        action: row.text("action")?,
        entity: row.text("entity")?,
        before_json: row.opt_text("before_json")?,
        after_json: row.opt_text("after_json")?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

impl SqlStore {
    async fn chain(&self, key: &str) -> Result<Vec<AuditRecord>, sqlx::Error> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_record WHERE partnership_key = $1 ORDER BY seq"
        );
        self.pool
            .fetch_all(&sql, &[Arg::Text(key)])
            .await?
            .iter()
            .map(audit_record)
            .collect()
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.pool.backend()
    }

    async fn load_agreement(
        &self,
        actor: &Actor,
        at: &str,
        load: AgreementLoad,
    ) -> Result<LoadOutcome, StoreError> {
        match self.write(actor, at, Command::LoadAgreement(load)).await? {
            CommandResult::Load(outcome) => Ok(outcome),
            _ => Err(unexpected()),
        }
    }

    async fn list_agreements(&self) -> Result<Vec<AgreementSummary>, StoreError> {
        let failed = || StoreError::doing("list agreements");
        let rows = self
            .pool
            .fetch_all(
                "SELECT partnership_key, title, status, current_version, created_at, updated_at \
                 FROM partnership",
                &[],
            )
            .await
            .map_err(failed())?;
        let mut list = rows
            .iter()
            .map(|row| {
                Ok(AgreementSummary {
                    partnership_key: row.text("partnership_key")?,
                    title: row.text("title")?,
                    status: row.text("status")?,
                    current_version: row.int("current_version")?,
                    created_at: row.text("created_at")?,
                    updated_at: row.text("updated_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(failed())?;
        // Sorted here, not by ORDER BY, so the order is the same whatever the collation.
        list.sort_by(|a, b| a.partnership_key.cmp(&b.partnership_key));
        Ok(list)
    }

    async fn get_agreement(&self, key: &str) -> Result<Option<StoredAgreement>, StoreError> {
        let failed = || StoreError::doing(format!("read agreement {key}"));
        let Some(row) = self
            .pool
            .fetch_optional(
                "SELECT p.partnership_key AS partnership_key, p.title AS title, \
                        p.status AS status, p.current_version AS current_version, \
                        p.created_at AS created_at, p.updated_at AS updated_at, \
                        v.source_path AS source_path, v.source_text AS source_text, \
                        v.source_sha256 AS source_sha256, v.model_json AS model_json \
                 FROM partnership p \
                 LEFT JOIN agreement_version v \
                   ON v.partnership_key = p.partnership_key AND v.version = p.current_version \
                 WHERE p.partnership_key = $1",
                &[Arg::Text(key)],
            )
            .await
            .map_err(failed())?
        else {
            return Ok(None);
        };
        let current_version = row.int("current_version").map_err(failed())?;
        let missing = || {
            StoreError::Damaged(format!(
                "partnership {key} says its current version is {current_version}, \
                 but that version is not stored"
            ))
        };
        let model_text = row
            .opt_text("model_json")
            .map_err(failed())?
            .ok_or_else(missing)?;
        let model_json = serde_json::from_str(&model_text).map_err(|e| {
            StoreError::Damaged(format!(
                "the model of agreement {key} version {current_version} is not valid JSON: {e}"
            ))
        })?;
        let versions = self
            .pool
            .fetch_all(
                "SELECT version, source_sha256, source_path, loaded_at, loaded_by, authority \
                 FROM agreement_version WHERE partnership_key = $1 ORDER BY version",
                &[Arg::Text(key)],
            )
            .await
            .map_err(failed())?
            .iter()
            .map(|v| {
                Ok(VersionInfo {
                    version: v.int("version")?,
                    source_sha256: v.text("source_sha256")?,
                    source_path: v.text("source_path")?,
                    loaded_at: v.text("loaded_at")?,
                    loaded_by: v.text("loaded_by")?,
                    authority: v.opt_text("authority")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(failed())?;
        Ok(Some(StoredAgreement {
            partnership_key: row.text("partnership_key").map_err(failed())?,
            title: row.text("title").map_err(failed())?,
            status: row.text("status").map_err(failed())?,
            current_version,
            created_at: row.text("created_at").map_err(failed())?,
            updated_at: row.text("updated_at").map_err(failed())?,
            source_path: row
                .opt_text("source_path")
                .map_err(failed())?
                .ok_or_else(missing)?,
            source_text: row
                .opt_text("source_text")
                .map_err(failed())?
                .ok_or_else(missing)?,
            source_sha256: row
                .opt_text("source_sha256")
                .map_err(failed())?
                .ok_or_else(missing)?,
            model_json,
            versions,
        }))
    }

    async fn partners(&self, key: &str) -> Result<Vec<PartnerRow>, StoreError> {
        let failed = || StoreError::doing(format!("read the partners of {key}"));
        let mut partners = self
            .pool
            .fetch_all(
                "SELECT partner_id, name, kind FROM partner WHERE partnership_key = $1",
                &[Arg::Text(key)],
            )
            .await
            .map_err(failed())?
            .iter()
            .map(|row| {
                Ok(PartnerRow {
                    partner_id: row.text("partner_id")?,
                    name: row.text("name")?,
                    kind: row.text("kind")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(failed())?;
        partners.sort_by(|a, b| a.partner_id.cmp(&b.partner_id));
        Ok(partners)
    }

    async fn audit_log(&self, key: Option<&str>) -> Result<Vec<AuditRecord>, StoreError> {
        if let Some(key) = key {
            return self
                .chain(key)
                .await
                .map_err(StoreError::doing(format!("read the audit log of {key}")));
        }
        let failed = || StoreError::doing("read the audit log");
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_record");
        let mut records = self
            .pool
            .fetch_all(&sql, &[])
            .await
            .map_err(failed())?
            .iter()
            .map(audit_record)
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(failed())?;
        records.sort_by(|a, b| {
            (a.partnership_key.as_str(), a.seq).cmp(&(b.partnership_key.as_str(), b.seq))
        });
        Ok(records)
    }

    async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let failed = || StoreError::doing("verify the audit log");
        let mut heads = BTreeMap::new();
        for row in self
            .pool
            .fetch_all("SELECT partnership_key, seq, hash FROM audit_head", &[])
            .await
            .map_err(failed())?
        {
            heads.insert(
                row.text("partnership_key").map_err(failed())?,
                (
                    row.int("seq").map_err(failed())?,
                    row.text("hash").map_err(failed())?,
                ),
            );
        }
        let mut partnerships = BTreeSet::new();
        for row in self
            .pool
            .fetch_all("SELECT partnership_key FROM partnership", &[])
            .await
            .map_err(failed())?
        {
            partnerships.insert(row.text("partnership_key").map_err(failed())?);
        }
        // A chain may outlive its partnership row, or lose its head, so take every key seen.
        let mut keys: BTreeSet<String> = partnerships.clone();
        keys.extend(heads.keys().cloned());
        for row in self
            .pool
            .fetch_all("SELECT DISTINCT partnership_key FROM audit_record", &[])
            .await
            .map_err(failed())?
        {
            keys.insert(row.text("partnership_key").map_err(failed())?);
        }

        // One chain at a time, so memory is bounded by the longest chain, not the whole log.
        let mut report = AuditVerification::default();
        for key in &keys {
            let records = self.chain(key).await.map_err(failed())?;
            report.check_chain(key, &records, heads.remove(key), partnerships.contains(key));
        }
        Ok(report)
    }

    async fn audit_head_seq(&self, key: &str) -> Result<i64, StoreError> {
        let failed = || StoreError::doing(format!("read the audit head of {key}"));
        self.pool
            .fetch_optional(
                "SELECT seq FROM audit_head WHERE partnership_key = $1",
                &[Arg::Text(key)],
            )
            .await
            .map_err(failed())?
            .map(|row| row.int("seq"))
            .transpose()
            .map_err(failed())
            .map(|seq| seq.unwrap_or(0))
    }

    async fn verify_partnership_audit(&self, key: &str) -> Result<AuditVerification, StoreError> {
        let failed = || StoreError::doing(format!("verify the audit log of {key}"));
        let head = self
            .pool
            .fetch_optional(
                "SELECT seq, hash FROM audit_head WHERE partnership_key = $1",
                &[Arg::Text(key)],
            )
            .await
            .map_err(failed())?
            .map(|row| Ok::<_, sqlx::Error>((row.int("seq")?, row.text("hash")?)))
            .transpose()
            .map_err(failed())?;
        let exists = self
            .pool
            .fetch_optional(
                "SELECT partnership_key FROM partnership WHERE partnership_key = $1",
                &[Arg::Text(key)],
            )
            .await
            .map_err(failed())?
            .is_some();
        let records = self.chain(key).await.map_err(failed())?;
        let mut report = AuditVerification::default();
        report.check_chain(key, &records, head, exists);
        Ok(report)
    }

    async fn execute_raw_for_tests(&self, sql: &str) -> Result<(), StoreError> {
        self.pool
            .execute_raw(sql)
            .await
            .map_err(StoreError::doing(format!("run test SQL {sql:?}")))
    }

    async fn begin_import(
        &self,
        actor: &Actor,
        at: &str,
        header: ImportHeader,
    ) -> Result<ImportStart, StoreError> {
        ledger_store::begin_import(&self.pool, actor, at, header).await
    }

    async fn close_period(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        year_start: i64,
        period: i64,
    ) -> Result<(), StoreError> {
        let command = Command::ClosePeriod {
            key: key.to_string(),
            year_start,
            period,
        };
        self.write(actor, at, command).await.map(drop)
    }

    async fn closed_periods(&self, key: &str) -> Result<Vec<(i64, i64)>, StoreError> {
        ledger_store::closed_periods(&self.pool, key).await
    }

    async fn post_correction(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        correction: CorrectionRow,
    ) -> Result<StoredPosting, StoreError> {
        let command = Command::Correction {
            key: key.to_string(),
            correction,
        };
        match self.write(actor, at, command).await? {
            CommandResult::Posting(p) => Ok(*p),
            _ => Err(unexpected()),
        }
    }

    async fn reclassify(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        reclassify: ReclassifyRow,
    ) -> Result<[StoredPosting; 2], StoreError> {
        let command = Command::Reclassify {
            key: key.to_string(),
            reclassify,
        };
        match self.write(actor, at, command).await? {
            CommandResult::Reclassified(pair) => Ok(*pair),
            _ => Err(unexpected()),
        }
    }

    async fn set_budget(
        &self,
        actor: &Actor,
        at: &str,
        budget: BudgetRow,
    ) -> Result<i64, StoreError> {
        match self.write(actor, at, Command::SetBudget(budget)).await? {
            CommandResult::Revision(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn budgets(
        &self,
        key: &str,
        fund: Option<&str>,
        year_start: i64,
    ) -> Result<Vec<BudgetLineRow>, StoreError> {
        ledger_store::budgets(&self.pool, key, fund, year_start).await
    }

    async fn budget_history(
        &self,
        key: &str,
        fund: &str,
        year_start: i64,
        service_line: &str,
        partner: Option<&str>,
        locality: Option<&str>,
    ) -> Result<Vec<BudgetRevisionRow>, StoreError> {
        ledger_store::budget_history(
            &self.pool,
            key,
            fund,
            year_start,
            service_line,
            partner,
            locality,
        )
        .await
    }

    async fn record_commitment(
        &self,
        actor: &Actor,
        at: &str,
        commitment: CommitmentRow,
    ) -> Result<(), StoreError> {
        self.write(actor, at, Command::RecordCommitment(commitment))
            .await
            .map(drop)
    }

    async fn release_commitment(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        reference: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let command = Command::ReleaseCommitment {
            key: key.to_string(),
            reference: reference.to_string(),
            reason: reason.to_string(),
        };
        self.write(actor, at, command).await.map(drop)
    }

    async fn commitments(
        &self,
        key: &str,
        fund: Option<&str>,
        year_start: i64,
    ) -> Result<Vec<StoredCommitment>, StoreError> {
        ledger_store::commitments(&self.pool, key, fund, year_start).await
    }

    async fn set_forecast_override(
        &self,
        actor: &Actor,
        at: &str,
        forecast: ForecastOverrideRow,
    ) -> Result<(), StoreError> {
        self.write(actor, at, Command::SetForecastOverride(forecast))
            .await
            .map(drop)
    }

    async fn forecast_overrides(
        &self,
        key: &str,
        fund: Option<&str>,
        year_start: i64,
    ) -> Result<Vec<ForecastOverrideRow>, StoreError> {
        ledger_store::forecast_overrides(&self.pool, key, fund, year_start).await
    }

    async fn ledger_totals(
        &self,
        key: &str,
        fund: Option<&str>,
        year_start: i64,
    ) -> Result<Vec<TotalsRow>, StoreError> {
        ledger_store::ledger_totals(&self.pool, key, fund, year_start).await
    }

    async fn postings(
        &self,
        key: &str,
        filter: &PostingFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<StoredPosting>, StoreError> {
        ledger_store::postings(&self.pool, key, filter, limit, offset).await
    }

    async fn imports(&self, key: &str) -> Result<Vec<ImportRow>, StoreError> {
        ledger_store::imports(&self.pool, key).await
    }

    async fn put_proceeding(
        &self,
        actor: &Actor,
        at: &str,
        row: ProceedingRow,
    ) -> Result<(), StoreError> {
        match self.write(actor, at, Command::PutProceeding(row)).await? {
            CommandResult::Done => Ok(()),
            _ => Err(unexpected()),
        }
    }

    async fn proceedings(
        &self,
        key: &str,
        kind: ProceedingKind,
    ) -> Result<Vec<StoredProceeding>, StoreError> {
        proceedings::proceedings(&self.pool, key, kind).await
    }

    async fn add_paper(&self, actor: &Actor, at: &str, paper: PaperRow) -> Result<i64, StoreError> {
        match self.write(actor, at, Command::AddPaper(paper)).await? {
            CommandResult::Revision(id) => Ok(id),
            _ => Err(unexpected()),
        }
    }

    async fn papers(&self, key: &str, meeting: &str) -> Result<Vec<PaperInfo>, StoreError> {
        proceedings::papers(&self.pool, key, meeting).await
    }

    async fn paper(
        &self,
        key: &str,
        meeting: &str,
        paper_id: i64,
    ) -> Result<Option<(PaperInfo, Vec<u8>)>, StoreError> {
        proceedings::paper(&self.pool, key, meeting, paper_id).await
    }

    async fn record_decision(
        &self,
        actor: &Actor,
        at: &str,
        decision: DecisionRow,
        budgets: Vec<BudgetRow>,
    ) -> Result<Vec<i64>, StoreError> {
        match self
            .write(actor, at, Command::RecordDecision { decision, budgets })
            .await?
        {
            CommandResult::Revisions(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn decisions(&self, key: &str) -> Result<Vec<StoredDecision>, StoreError> {
        proceedings::decisions(&self.pool, key).await
    }

    async fn record_payment(
        &self,
        actor: &Actor,
        at: &str,
        payment: PaymentRow,
    ) -> Result<(), StoreError> {
        match self
            .write(actor, at, Command::RecordPayment(payment))
            .await?
        {
            CommandResult::Done => Ok(()),
            _ => Err(unexpected()),
        }
    }

    async fn reverse_payment(
        &self,
        actor: &Actor,
        at: &str,
        key: &str,
        reference: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let command = Command::ReversePayment {
            key: key.to_string(),
            reference: reference.to_string(),
            reason: reason.to_string(),
        };
        match self.write(actor, at, command).await? {
            CommandResult::Done => Ok(()),
            _ => Err(unexpected()),
        }
    }

    async fn payments(&self, key: &str, year_start: i64) -> Result<Vec<StoredPayment>, StoreError> {
        payments::payments(&self.pool, key, year_start).await
    }

    async fn change_accounts(
        &self,
        actor: &Actor,
        at: &str,
        change: AccountChange,
    ) -> Result<(), StoreError> {
        match self.write(actor, at, Command::Account(change)).await? {
            CommandResult::Done => Ok(()),
            _ => Err(unexpected()),
        }
    }

    async fn user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        accounts::user(&self.pool, username).await
    }

    async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        accounts::users(&self.pool).await
    }

    async fn organisations(&self) -> Result<Vec<OrganisationRow>, StoreError> {
        accounts::organisations(&self.pool).await
    }

    async fn parties(&self, org_key: &str) -> Result<Vec<(String, String)>, StoreError> {
        accounts::parties(&self.pool, org_key).await
    }

    async fn grants(
        &self,
        username: Option<&str>,
        partnership_key: Option<&str>,
    ) -> Result<Vec<GrantRow>, StoreError> {
        accounts::grants(&self.pool, username, partnership_key).await
    }

    async fn recent_sign_in_failures(
        &self,
        username: &str,
        since: &str,
    ) -> Result<Vec<String>, StoreError> {
        accounts::recent_failures(&self.pool, username, since).await
    }

    async fn session_user(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(SessionRow, UserRow)>, StoreError> {
        accounts::session_user(&self.pool, token_hash, now).await
    }

    async fn api_token(&self, token_hash: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        accounts::api_token(&self.pool, token_hash).await
    }

    async fn api_tokens(&self, key: &str) -> Result<Vec<ApiTokenRow>, StoreError> {
        accounts::api_tokens(&self.pool, key).await
    }

    async fn posting(
        &self,
        key: &str,
        reference: &str,
    ) -> Result<Option<StoredPosting>, StoreError> {
        ledger_store::posting(&self.pool, key, reference).await
    }
}

fn unexpected() -> StoreError {
    StoreError::Damaged("the write path returned a result of the wrong kind".into())
}
