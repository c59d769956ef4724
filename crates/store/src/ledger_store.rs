//! The ledger over either backend: the streaming import session, the ledger's commands (run
//! by the write path in `sql_store`) and its reads.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use async_trait::async_trait;
use concordat_core::ledger::SUSPENSE;
use serde_json::{Value, json};

use crate::audit::canonical_json;
use crate::batch;
use crate::db::{Arg, Pool, Row, Tx};
use crate::reference_runs::{Candidate, Candidates, Groups, RUN_PAIRS, RunSorter};
use crate::sql_store::{AuditEntry, Change, CommandResult, append_audit, check_field};
use crate::{
    Actor, BudgetLineRow, BudgetRevisionRow, BudgetRow, CommitmentRow, CorrectionRow,
    ForecastOverrideRow, ImportHeader, ImportOutcome, ImportRow, ImportSession, ImportStart,
    ImportSummaryRow, PostingFilter, PostingRow, ReclassifyRow, StoreError, StoredCommitment,
    StoredPosting, TotalsRow,
};

/// Postings per stored batch: a few hundred kilobytes, so a million postings is two hundred
/// inserts, and a lookup by reference decodes little more than it needs.
const POSTINGS_PER_BATCH: usize = 5_000;

/// Batches read per query when walking a partnership's postings, to keep memory bounded.
const BATCHES_PER_PAGE: i64 = 16;

/// `2024/25-P06`, as users write it.
pub(crate) fn period_text(year_start: i64, period: i64) -> String {
    format!(
        "{year_start}/{:02}-P{period:02}",
        (year_start + 1).rem_euclid(100)
    )
}

fn key_part(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

fn from_key_part(value: String) -> Option<String> {
    if value.is_empty() { None } else { Some(value) }
}

fn check_period(year_start: i64, period: i64) -> Result<(), StoreError> {
    if !(1..=12).contains(&period) || !(1900..=9998).contains(&year_start) {
        return Err(StoreError::Invalid(format!(
            "period {period} of the year starting {year_start} does not exist \
             (periods are P01 to P12 of a financial year)"
        )));
    }
    Ok(())
}

pub(crate) fn db(doing: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |cause| StoreError::Database {
        doing: doing.to_string(),
        cause,
    }
}

/// The dimensions a total is kept by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct TotalsKey {
    fund: String,
    year_start: i64,
    period: i64,
    service_line: String,
    partner: String,
    locality: String,
}

impl TotalsKey {
    fn of(p: &PostingRow) -> TotalsKey {
        TotalsKey {
            fund: p.fund.clone(),
            year_start: p.year_start,
            period: p.period,
            service_line: p.service_line.clone(),
            partner: key_part(&p.partner).to_string(),
            locality: key_part(&p.locality).to_string(),
        }
    }
}

/// Adds amounts and counts to the stored totals.
async fn upsert_totals(
    tx: &mut Tx,
    key: &str,
    totals: &HashMap<TotalsKey, (i64, i64)>,
) -> Result<(), sqlx::Error> {
    for (k, (amount, count)) in totals {
        tx.execute(
            "INSERT INTO ledger_totals (partnership_key, fund, year_start, period, service_line, \
                 partner, locality, amount_pence, postings) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (partnership_key, year_start, fund, period, service_line, partner, \
                 locality) \
             DO UPDATE SET amount_pence = ledger_totals.amount_pence + excluded.amount_pence, \
                           postings = ledger_totals.postings + excluded.postings",
            &[
                Arg::Text(key),
                Arg::Text(&k.fund),
                Arg::Int(k.year_start),
                Arg::Int(k.period),
                Arg::Text(&k.service_line),
                Arg::Text(&k.partner),
                Arg::Text(&k.locality),
                Arg::Int(*amount),
                Arg::Int(*count),
            ],
        )
        .await?;
    }
    Ok(())
}

async fn closed_set(tx: &mut Tx, key: &str) -> Result<HashSet<(i64, i64)>, sqlx::Error> {
    tx.fetch_all(
        "SELECT year_start, period FROM closed_period WHERE partnership_key = $1",
        &[Arg::Text(key)],
    )
    .await?
    .iter()
    .map(|r| Ok((r.int("year_start")?, r.int("period")?)))
    .collect()
}

pub(crate) async fn partnership_exists(tx: &mut Tx, key: &str) -> Result<bool, sqlx::Error> {
    Ok(tx
        .fetch_optional(
            "SELECT partnership_key FROM partnership WHERE partnership_key = $1",
            &[Arg::Text(key)],
        )
        .await?
        .is_some())
}

pub(crate) fn no_partnership(key: &str) -> StoreError {
    StoreError::Invalid(format!(
        "there is no partnership {key:?}; load its agreement first"
    ))
}

const POSTING_COLUMNS: &str = "import_id, source_line, posting_date, year_start, period, fund, \
     service_line, partner, locality, cost_centre, subjective, supplier, reference, description, \
     amount_pence, corrects_reference";

fn stored_posting(row: &Row) -> Result<StoredPosting, sqlx::Error> {
    Ok(StoredPosting {
        import_id: row.opt_int("import_id")?,
        posting: PostingRow {
            source_line: row.int("source_line")?,
            date: row.text("posting_date")?,
            year_start: row.int("year_start")?,
            period: row.int("period")?,
            fund: row.text("fund")?,
            service_line: row.text("service_line")?,
            partner: row.opt_text("partner")?,
            locality: row.opt_text("locality")?,
            cost_centre: row.opt_text("cost_centre")?,
            subjective: row.opt_text("subjective")?,
            supplier: row.opt_text("supplier")?,
            reference: row.text("reference")?,
            description: row.opt_text("description")?,
            amount_pence: row.int("amount_pence")?,
            corrects_reference: row.opt_text("corrects_reference")?,
        },
    })
}

fn posting_json(p: &StoredPosting) -> Value {
    serde_json::to_value(p).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// Import

/// `PRAGMA cache_size` of an import's SQLite connection while the import runs: 32 MiB. The
/// transaction's pages beyond it go to the write-ahead log as the import goes, so the page
/// cache stops growing with the file sooner (at 64 MiB it was the largest part of a 1M-posting
/// import's peak memory). Measured at 1M postings: 64 MiB 137 MB peak, 32 MiB 110 MB at the
/// same speed within noise, 8 MiB 80 MB but a fifth slower. Restored when the import commits,
/// is refused at commit or is aborted; a session dropped without either leaves its connection
/// with the smaller cache (slower, never wrong).
const SQLITE_IMPORT_CACHE_SIZE: &str = "-32768";

/// An import in progress: one transaction, with the totals kept in memory until commit.
struct SqlImportSession {
    tx: Tx,
    /// For the checkpoint after commit.
    pool: Pool,
    actor: Actor,
    at: String,
    header: ImportHeader,
    import_id: i64,
    closed: HashSet<(i64, i64)>,
    totals: HashMap<TotalsKey, (i64, i64)>,
    rows: i64,
    total_pence: i64,
    /// (reference hash, line) of every posting so far, in sorted runs: at commit they are
    /// merged with the stored index to find a repeated reference in bounded memory.
    references: RunSorter,
    batch_no: i64,
    /// Set once anything has been refused: the session can then only be rolled back.
    refused: bool,
}

pub(crate) async fn begin_import(
    pool: &Pool,
    actor: &Actor,
    at: &str,
    header: ImportHeader,
) -> Result<ImportStart, StoreError> {
    let key = header.partnership_key.clone();
    check_field("partnership key", &key)?;
    check_field("actor", &actor.name)?;
    check_field("time of the change", at)?;
    check_field("file name", &header.file_name)?;
    check_field("file SHA-256", &header.file_sha256)?;
    let doing = format!("import {} into {key}", header.file_name);
    let failed = db(&doing);
    let mut tx = pool.begin().await.map_err(&failed)?;
    tx.lock_partnership(&key).await.map_err(&failed)?;
    if !partnership_exists(&mut tx, &key).await.map_err(&failed)? {
        return Err(no_partnership(&key));
    }
    if let Some(row) = tx
        .fetch_optional(
            "SELECT import_id, file_name, imported_at, imported_by, rows, control_total_pence \
             FROM ledger_import WHERE partnership_key = $1 AND file_sha256 = $2",
            &[Arg::Text(&key), Arg::Text(&header.file_sha256)],
        )
        .await
        .map_err(&failed)?
    {
        tx.rollback().await.map_err(&failed)?;
        return Ok(ImportStart::AlreadyImported {
            import_id: row.int("import_id").map_err(&failed)?,
            file_name: row.text("file_name").map_err(&failed)?,
            imported_at: row.text("imported_at").map_err(&failed)?,
            imported_by: row.text("imported_by").map_err(&failed)?,
            rows: row.int("rows").map_err(&failed)?,
            control_total_pence: row.int("control_total_pence").map_err(&failed)?,
        });
    }
    let import_id = tx
        .fetch_optional(
            "SELECT COALESCE(MAX(import_id), 0) + 1 AS next_id FROM ledger_import \
             WHERE partnership_key = $1",
            &[Arg::Text(&key)],
        )
        .await
        .map_err(&failed)?
        .map(|r| r.int("next_id"))
        .transpose()
        .map_err(&failed)?
        .unwrap_or(1);
    let closed = closed_set(&mut tx, &key).await.map_err(&failed)?;
    if let Tx::Sqlite(_) = tx {
        tx.execute(
            &format!("PRAGMA cache_size = {SQLITE_IMPORT_CACHE_SIZE}"),
            &[],
        )
        .await
        .map_err(&failed)?;
    }
    Ok(ImportStart::Session(Box::new(SqlImportSession {
        tx,
        pool: pool.clone(),
        actor: actor.clone(),
        at: at.to_string(),
        header,
        import_id,
        closed,
        totals: HashMap::new(),
        rows: 0,
        total_pence: 0,
        references: RunSorter::new(RUN_PAIRS),
        batch_no: 0,
        refused: false,
    })))
}

impl SqlImportSession {
    /// Gives the connection back its usual page cache (see [`SQLITE_IMPORT_CACHE_SIZE`]).
    async fn restore_cache_size(&mut self) -> Result<(), sqlx::Error> {
        if let Tx::Sqlite(_) = self.tx {
            let sql = format!(
                "PRAGMA cache_size = {}",
                crate::sql_store::SQLITE_CACHE_SIZE
            );
            self.tx.execute(&sql, &[]).await?;
        }
        Ok(())
    }

    fn doing(&self) -> String {
        format!(
            "import {} into {}",
            self.header.file_name, self.header.partnership_key
        )
    }

    fn check_row(&self, p: &PostingRow) -> Result<(), StoreError> {
        check_period(p.year_start, p.period)
            .map_err(|e| StoreError::Invalid(format!("line {}: {e}", p.source_line)))?;
        if p.reference.is_empty() {
            return Err(StoreError::Invalid(format!(
                "line {}: the posting has no reference",
                p.source_line
            )));
        }
        if self.closed.contains(&(p.year_start, p.period)) {
            return Err(StoreError::ClosedPeriod {
                line: p.source_line,
                reference: p.reference.clone(),
                period: period_text(p.year_start, p.period),
            });
        }
        Ok(())
    }

    /// Writes one batch: a single row holding its postings as a columnar blob.
    async fn insert_batch(&mut self, postings: &[PostingRow]) -> Result<(), StoreError> {
        let doing = self.doing();
        let key = self.header.partnership_key.clone();
        self.batch_no += 1;
        let years = postings.iter().map(|p| p.year_start);
        let first_year = years.clone().min().unwrap_or(0);
        let last_year = years.max().unwrap_or(0);
        let suspense = postings
            .iter()
            .filter(|p| p.service_line == SUSPENSE)
            .count() as i64;
        let (bytes, totals) = batch::encode_with_totals(postings);
        let hashes = batch::encode_reference_hashes(postings);
        for t in totals {
            let key = TotalsKey {
                fund: t.fund.to_string(),
                year_start: t.year_start,
                period: t.period,
                service_line: t.service_line.to_string(),
                partner: t.partner.unwrap_or("").to_string(),
                locality: t.locality.unwrap_or("").to_string(),
            };
            let entry = self.totals.entry(key).or_insert((0, 0));
            entry.0 = i64::try_from(i128::from(entry.0) + t.amount_pence).map_err(|_| {
                StoreError::Invalid(format!(
                    "the total of fund {} on {} in {} goes beyond what can be held in pence",
                    t.fund,
                    t.service_line,
                    period_text(t.year_start, t.period)
                ))
            })?;
            entry.1 += t.postings;
        }
        self.tx
            .execute(
                "INSERT INTO ledger_batch (partnership_key, import_id, batch_no, rows, \
                     first_year_start, last_year_start, suspense_rows, postings, \
                     reference_hashes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    Arg::Text(&key),
                    Arg::Int(self.import_id),
                    Arg::Int(self.batch_no),
                    Arg::Int(postings.len() as i64),
                    Arg::Int(first_year),
                    Arg::Int(last_year),
                    Arg::Int(suspense),
                    Arg::Bytes(&bytes),
                    Arg::Bytes(&hashes),
                ],
            )
            .await
            .map_err(db(&doing))?;
        Ok(())
    }

    /// Keeps each posting's reference hash and line for the check at commit.
    fn keep_references(&mut self, postings: &[PostingRow]) -> Result<(), StoreError> {
        for p in postings {
            self.references
                .push((batch::reference_hash(&p.reference), p.source_line))
                .map_err(|e| self.temporary_file_error(&e))?;
        }
        Ok(())
    }

    fn temporary_file_error(&self, e: &std::io::Error) -> StoreError {
        temporary_file_error(&self.header.file_name, e)
    }

    /// Refuses the file if a reference in it is already in the partnership (in an earlier
    /// file, a correction) or is repeated in it, naming the earliest such line.
    ///
    /// The file's sorted (hash, line) runs are merged with every import's sorted index (and
    /// the few references kept a row each) in one pass, which also writes this import's
    /// index. Equal hashes are only candidates: each is confirmed against the references
    /// themselves, so two references with the same hash never refuse a good file.
    async fn check_no_repeats(&mut self) -> Result<(), StoreError> {
        let key = self.header.partnership_key.clone();
        let doing = self.doing();
        index_older_imports(&mut self.tx, &key, self.import_id, &doing).await?;
        let mut legacy: Vec<u64> = self
            .tx
            .fetch_all(
                "SELECT reference FROM ledger_posting WHERE partnership_key = $1",
                &[Arg::Text(&key)],
            )
            .await
            .map_err(db(&doing))?
            .iter()
            .map(|row| row.text("reference").map(|r| batch::reference_hash(&r)))
            .collect::<Result<_, _>>()
            .map_err(db(&doing))?;
        legacy.sort_unstable();
        let mut after = None;
        let mut best: Option<Repeat> = None;
        let mut first_pass = true;
        loop {
            let (candidates, left_out) = self.merge_pass(after, first_pass, &legacy).await?;
            first_pass = false;
            for chunk in candidates.chunks(CONFIRM_AT_ONCE) {
                if best
                    .as_ref()
                    .is_some_and(|b| chunk[0].earliest_line() > b.line)
                {
                    break;
                }
                let hashes: HashSet<u64> = chunk.iter().map(|c| c.hash).collect();
                let found = postings_with_hashes(&mut Src::Tx(&mut self.tx), &key, &hashes).await?;
                for c in chunk {
                    if let Some(r) = repeat_of(c, &found, self.import_id, batch::reference_hash)
                        && best.as_ref().is_none_or(|b| r.line < b.line)
                    {
                        best = Some(r);
                    }
                }
            }
            // Candidates beyond the cap come later in the file than every one kept; look at
            // them only while none kept has been confirmed earlier than they can be.
            match (left_out, candidates.last()) {
                (true, Some(last))
                    if best.as_ref().is_none_or(|b| b.line > last.earliest_line()) =>
                {
                    after = Some(last.earliest_line());
                }
                _ => break,
            }
        }
        match best {
            Some(r) => Err(self
                .duplicate(r.line, &r.reference, r.earlier_import, r.earlier_line)
                .await),
            None => Ok(()),
        }
    }

    /// One walk of the file's hashes in order beside the stored ones: the candidates whose
    /// earliest line is after `after`, and whether some were left out past the cap. The first
    /// walk also writes this import's index.
    async fn merge_pass(
        &mut self,
        after: Option<i64>,
        write_index: bool,
        legacy: &[u64],
    ) -> Result<(Vec<Candidate>, bool), StoreError> {
        let key = self.header.partnership_key.clone();
        let doing = self.doing();
        let file_name = self.header.file_name.clone();
        let io_error = |e: std::io::Error| temporary_file_error(&file_name, &e);
        let tx = &mut self.tx;
        let mut stored = StoredHashes::open(tx, &key, self.import_id, legacy, &doing).await?;
        let mut index = IndexWriter::new(self.import_id);
        let mut found = Candidates::new(CANDIDATE_CAP, after);
        let mut groups = Groups::new(self.references.sorted().map_err(io_error)?);
        while let Some(group) = groups.next_group().map_err(io_error)? {
            if write_index {
                for _ in 0..group.count {
                    index.push(tx, &key, group.hash, &doing).await?;
                }
            }
            let hit = stored.contains(tx, &key, group.hash, &doing).await?;
            if let Some(c) = Candidate::of(&group, hit) {
                found.offer(c);
            }
        }
        if write_index {
            index.flush(tx, &key, &doing).await?;
        }
        Ok(found.into_sorted())
    }

    /// The error for the posting at `line`, whose reference was already used by the posting
    /// at `earlier_line` of import `earlier_import` (`None`: a correction).
    async fn duplicate(
        &mut self,
        line: i64,
        reference: &str,
        earlier_import: Option<i64>,
        earlier_line: i64,
    ) -> StoreError {
        let (earlier_file, earlier_import_id) = match earlier_import {
            Some(id) if id == self.import_id => (self.header.file_name.clone(), id),
            Some(id) => {
                let name = self
                    .tx
                    .fetch_optional(
                        "SELECT file_name FROM ledger_import \
                         WHERE partnership_key = $1 AND import_id = $2",
                        &[Arg::Text(&self.header.partnership_key), Arg::Int(id)],
                    )
                    .await
                    .ok()
                    .flatten()
                    .and_then(|row| row.text("file_name").ok())
                    .unwrap_or_else(|| format!("import #{id}"));
                (name, id)
            }
            None => ("a correction".to_string(), 0),
        };
        StoreError::DuplicateReference {
            line,
            reference: reference.to_string(),
            earlier_file,
            earlier_import_id,
            earlier_line: if earlier_import.is_some() {
                format!(", line {earlier_line}")
            } else {
                String::new()
            },
            in_this_file: earlier_import == Some(self.import_id),
        }
    }
}

fn temporary_file_error(file_name: &str, e: &std::io::Error) -> StoreError {
    StoreError::Invalid(format!(
        "cannot keep the references of {file_name} in a temporary file: {e}; nothing from this \
         file was imported"
    ))
}

/// Hashes per stored index chunk: 64 KB blobs.
const INDEX_CHUNK: usize = 8_192;

/// Index chunks held at a time across the earlier imports' cursors, while there are few: one
/// or two imports are read four chunks (256 KB) at a time, for fewer round trips; three or four,
/// two; five or more, one (64 KB), so the merge's memory then grows by 64 KB an import rather
/// than 256 KB.
const INDEX_CHUNKS_HELD: usize = 8;

/// Index chunks read at a time from each of `imports` earlier imports' indexes.
fn chunks_per_read(imports: usize) -> i64 {
    (INDEX_CHUNKS_HELD / imports.max(1)).clamp(1, 4) as i64
}

/// Candidates kept per merge pass: only a file full of repeats has more.
const CANDIDATE_CAP: usize = 4_096;

/// Candidates confirmed per walk over the stored references.
const CONFIRM_AT_ONCE: usize = 64;

/// A confirmed repeat: the posting at `line` of this file, and the earlier one.
struct Repeat {
    line: i64,
    reference: String,
    earlier_import: Option<i64>,
    earlier_line: i64,
}

/// Whether candidate `c` is a real repeat, from every posting with its hash (`found`, in the
/// order `find_posting` would meet them): the earliest line of this import that repeats a
/// reference, and the posting it repeats.
/// `hash` is the reference hash (a parameter so a test can make every reference collide).
fn repeat_of(
    c: &Candidate,
    found: &[StoredPosting],
    import_id: i64,
    hash: impl Fn(&str) -> u64,
) -> Option<Repeat> {
    let mut by_reference: BTreeMap<&str, (Vec<i64>, Option<&StoredPosting>)> = BTreeMap::new();
    for p in found {
        if hash(&p.posting.reference) != c.hash {
            continue;
        }
        let entry = by_reference
            .entry(p.posting.reference.as_str())
            .or_default();
        if p.import_id == Some(import_id) {
            entry.0.push(p.posting.source_line);
        } else {
            entry.1.get_or_insert(p);
        }
    }
    by_reference
        .into_iter()
        .filter_map(|(reference, (mut mine, earlier))| {
            mine.sort_unstable();
            let repeat = |line, earlier_import, earlier_line| Repeat {
                line,
                reference: reference.to_string(),
                earlier_import,
                earlier_line,
            };
            match (mine.as_slice(), earlier) {
                ([first, ..], Some(e)) => Some(repeat(*first, e.import_id, e.posting.source_line)),
                ([first, second, ..], None) => Some(repeat(*second, Some(import_id), *first)),
                _ => None,
            }
        })
        .min_by_key(|r| r.line)
}

/// The imports that `sql` lists (its `import_id` column) for partnership `key` ($1), other
/// than `import_id` ($2).
async fn import_ids(
    tx: &mut Tx,
    sql: &str,
    key: &str,
    import_id: i64,
    doing: &str,
) -> Result<Vec<i64>, StoreError> {
    let failed = db(doing);
    tx.fetch_all(sql, &[Arg::Text(key), Arg::Int(import_id)])
        .await
        .map_err(&failed)?
        .iter()
        .map(|row| row.int("import_id"))
        .collect::<Result<_, _>>()
        .map_err(&failed)
}

/// Builds the index of each earlier import that has none (imported before there was one)
/// from its batches' reference hashes, in bounded memory like a new file's.
async fn index_older_imports(
    tx: &mut Tx,
    key: &str,
    import_id: i64,
    doing: &str,
) -> Result<(), StoreError> {
    let failed = db(doing);
    let missing = import_ids(
        tx,
        "SELECT DISTINCT import_id FROM ledger_batch b \
         WHERE b.partnership_key = $1 AND b.import_id <> $2 AND NOT EXISTS \
             (SELECT 1 FROM ledger_reference_index r \
              WHERE r.partnership_key = b.partnership_key AND r.import_id = b.import_id) \
         ORDER BY import_id",
        key,
        import_id,
        doing,
    )
    .await?;
    for older in missing {
        let mut sorter = RunSorter::new(RUN_PAIRS);
        let mut after = 0;
        loop {
            let sql = format!(
                "SELECT import_id, batch_no, reference_hashes FROM ledger_batch \
                 WHERE partnership_key = $1 AND import_id = $2 AND batch_no > $3 \
                 ORDER BY batch_no LIMIT {}",
                BATCHES_PER_PAGE * 16
            );
            let page = tx
                .fetch_all(&sql, &[Arg::Text(key), Arg::Int(older), Arg::Int(after)])
                .await
                .map_err(&failed)?
                .iter()
                .map(|row| stored_batch(row, "reference_hashes"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(&failed)?;
            let Some(last) = page.last() else { break };
            after = last.batch_no;
            for b in &page {
                for hash in
                    batch::reference_hashes(&b.postings).map_err(|e| damaged_batch(key, b, &e))?
                {
                    sorter
                        .push((hash, 0))
                        .map_err(|e| temporary_file_error(&format!("import #{older}"), &e))?;
                }
            }
        }
        let io_error = |e: std::io::Error| temporary_file_error(&format!("import #{older}"), &e);
        let mut index = IndexWriter::new(older);
        for pair in sorter.sorted().map_err(io_error)? {
            let (hash, _) = pair.map_err(io_error)?;
            index.push(tx, key, hash, doing).await?;
        }
        index.flush(tx, key, doing).await?;
    }
    Ok(())
}

/// Writes one import's sorted hashes as chunks of its index.
struct IndexWriter {
    import_id: i64,
    chunk_no: i64,
    bytes: Vec<u8>,
}

impl IndexWriter {
    fn new(import_id: i64) -> IndexWriter {
        IndexWriter {
            import_id,
            chunk_no: 0,
            bytes: Vec::new(),
        }
    }

    /// The next hash, in ascending order.
    async fn push(
        &mut self,
        tx: &mut Tx,
        key: &str,
        hash: u64,
        doing: &str,
    ) -> Result<(), StoreError> {
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(INDEX_CHUNK * 8);
        }
        self.bytes.extend_from_slice(&hash.to_le_bytes());
        if self.bytes.len() >= INDEX_CHUNK * 8 {
            self.flush(tx, key, doing).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, tx: &mut Tx, key: &str, doing: &str) -> Result<(), StoreError> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        self.chunk_no += 1;
        tx.execute(
            "INSERT INTO ledger_reference_index (partnership_key, import_id, chunk_no, hashes) \
             VALUES ($1, $2, $3, $4)",
            &[
                Arg::Text(key),
                Arg::Int(self.import_id),
                Arg::Int(self.chunk_no),
                Arg::Bytes(&self.bytes),
            ],
        )
        .await
        .map_err(db(doing))?;
        self.bytes.clear();
        Ok(())
    }
}

/// One earlier import's index, read a few chunks at a time in ascending order.
struct IndexCursor {
    import_id: i64,
    /// Chunks read at a time.
    per_read: i64,
    /// The last chunk read.
    chunk_no: i64,
    hashes: Vec<u64>,
    next: usize,
    last: Option<u64>,
    read_all: bool,
}

impl IndexCursor {
    async fn next(
        &mut self,
        tx: &mut Tx,
        key: &str,
        doing: &str,
    ) -> Result<Option<u64>, StoreError> {
        if self.next == self.hashes.len() {
            if self.read_all {
                return Ok(None);
            }
            self.refill(tx, key, doing).await?;
            if self.hashes.is_empty() {
                return Ok(None);
            }
        }
        let hash = self.hashes[self.next];
        self.next += 1;
        if self.last.is_some_and(|last| hash < last) {
            return Err(StoreError::Damaged(format!(
                "the reference index of import #{} of {key} is out of order in chunk {}",
                self.import_id, self.chunk_no
            )));
        }
        self.last = Some(hash);
        Ok(Some(hash))
    }

    async fn refill(&mut self, tx: &mut Tx, key: &str, doing: &str) -> Result<(), StoreError> {
        let failed = db(doing);
        let rows = tx
            .fetch_all(
                &format!(
                    "SELECT chunk_no, hashes FROM ledger_reference_index \
                     WHERE partnership_key = $1 AND import_id = $2 AND chunk_no > $3 \
                     ORDER BY chunk_no LIMIT {}",
                    self.per_read
                ),
                &[
                    Arg::Text(key),
                    Arg::Int(self.import_id),
                    Arg::Int(self.chunk_no),
                ],
            )
            .await
            .map_err(&failed)?;
        self.hashes.clear();
        self.next = 0;
        self.read_all = (rows.len() as i64) < self.per_read;
        for row in &rows {
            self.chunk_no = row.int("chunk_no").map_err(&failed)?;
            let bytes = row.bytes("hashes").map_err(&failed)?;
            let hashes = batch::reference_hashes(&bytes).map_err(|e| {
                StoreError::Damaged(format!(
                    "chunk {} of the reference index of import #{} of {key}: {}",
                    self.chunk_no, self.import_id, e.0
                ))
            })?;
            self.hashes.extend(hashes);
        }
        Ok(())
    }
}

/// The stored references' hashes in ascending order: every earlier import's index, merged,
/// and those of the postings kept a row each.
struct StoredHashes<'a> {
    cursors: Vec<IndexCursor>,
    /// The next hash of each cursor.
    heads: BinaryHeap<std::cmp::Reverse<(u64, usize)>>,
    rows: &'a [u64],
    next_row: usize,
}

impl<'a> StoredHashes<'a> {
    async fn open(
        tx: &mut Tx,
        key: &str,
        import_id: i64,
        rows: &'a [u64],
        doing: &str,
    ) -> Result<StoredHashes<'a>, StoreError> {
        let imports = import_ids(
            tx,
            "SELECT DISTINCT import_id FROM ledger_reference_index \
             WHERE partnership_key = $1 AND import_id <> $2 ORDER BY import_id",
            key,
            import_id,
            doing,
        )
        .await?;
        let mut stored = StoredHashes {
            cursors: Vec::with_capacity(imports.len()),
            heads: BinaryHeap::new(),
            rows,
            next_row: 0,
        };
        let per_read = chunks_per_read(imports.len());
        for (i, import_id) in imports.into_iter().enumerate() {
            let mut cursor = IndexCursor {
                import_id,
                per_read,
                chunk_no: 0,
                hashes: Vec::new(),
                next: 0,
                last: None,
                read_all: false,
            };
            if let Some(head) = cursor.next(tx, key, doing).await? {
                stored.heads.push(std::cmp::Reverse((head, i)));
            }
            stored.cursors.push(cursor);
        }
        Ok(stored)
    }

    /// Whether a stored reference has `hash`; asked with ascending hashes.
    async fn contains(
        &mut self,
        tx: &mut Tx,
        key: &str,
        hash: u64,
        doing: &str,
    ) -> Result<bool, StoreError> {
        while self.rows.get(self.next_row).is_some_and(|&h| h < hash) {
            self.next_row += 1;
        }
        if self.rows.get(self.next_row) == Some(&hash) {
            return Ok(true);
        }
        while let Some(&std::cmp::Reverse((head, i))) = self.heads.peek() {
            if head >= hash {
                return Ok(head == hash);
            }
            self.heads.pop();
            if let Some(next) = self.cursors[i].next(tx, key, doing).await? {
                self.heads.push(std::cmp::Reverse((next, i)));
            }
        }
        Ok(false)
    }
}

/// Every posting of the partnership whose reference hash is in `hashes`, this import's too
/// (its batches are in the transaction): those kept a row each first, then the batches in
/// order, as [`find_posting`] meets them. Decodes only the batches that hold one.
async fn postings_with_hashes(
    src: &mut Src<'_>,
    key: &str,
    hashes: &HashSet<u64>,
) -> Result<Vec<StoredPosting>, StoreError> {
    let doing = format!("look up repeated references in {key}");
    let failed = db(&doing);
    let sql = format!("SELECT {POSTING_COLUMNS} FROM ledger_posting WHERE partnership_key = $1");
    let mut found = Vec::new();
    for row in src
        .fetch_all(&sql, &[Arg::Text(key)])
        .await
        .map_err(&failed)?
    {
        let p = stored_posting(&row).map_err(&failed)?;
        if hashes.contains(&batch::reference_hash(&p.posting.reference)) {
            found.push(p);
        }
    }
    let mut after = (0, 0);
    loop {
        let page = hash_page(src, key, after).await.map_err(&failed)?;
        let Some(last) = page.last() else {
            return Ok(found);
        };
        after = (last.import_id, last.batch_no);
        for h in &page {
            let mut positions = batch::reference_hashes(&h.postings)
                .map_err(|e| damaged_batch(key, h, &e))?
                .enumerate()
                .filter(|(_, x)| hashes.contains(x))
                .map(|(i, _)| i)
                .peekable();
            if positions.peek().is_none() {
                continue;
            }
            let positions: Vec<usize> = positions.collect();
            let Some(b) = batch_postings(src, key, h.import_id, h.batch_no)
                .await
                .map_err(&failed)?
            else {
                continue;
            };
            let all = batch::decode(&b.postings).map_err(|e| damaged_batch(key, &b, &e))?;
            for i in positions {
                if let Some(posting) = all.get(i) {
                    found.push(StoredPosting {
                        import_id: Some(b.import_id),
                        posting: posting.clone(),
                    });
                }
            }
        }
    }
}

#[async_trait]
impl ImportSession for SqlImportSession {
    async fn add(&mut self, postings: &[PostingRow]) -> Result<(), StoreError> {
        if self.refused {
            return Err(StoreError::Invalid(
                "this import was already refused; nothing from it will be written".into(),
            ));
        }
        let result = async {
            let mut rows = self.rows;
            let mut total = self.total_pence;
            for p in postings {
                self.check_row(p)?;
                total = total.checked_add(p.amount_pence).ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "line {}: the file's total goes beyond what can be held in pence",
                        p.source_line
                    ))
                })?;
                rows += 1;
            }
            self.keep_references(postings)?;
            for chunk in postings.chunks(POSTINGS_PER_BATCH) {
                self.insert_batch(chunk).await?;
            }
            self.rows = rows;
            self.total_pence = total;
            Ok(())
        }
        .await;
        if result.is_err() {
            self.refused = true;
        }
        result
    }

    async fn commit(
        self: Box<Self>,
        summary: ImportSummaryRow,
    ) -> Result<ImportOutcome, StoreError> {
        let mut this = *self;
        if this.refused {
            let _ = this.restore_cache_size().await;
            return Err(StoreError::Invalid(
                "this import was refused; nothing from it was written".into(),
            ));
        }
        if summary.rows != this.rows || summary.control_total_pence != this.total_pence {
            let _ = this.restore_cache_size().await;
            return Err(StoreError::ControlTotalMismatch {
                file_name: this.header.file_name.clone(),
                expected_rows: summary.rows,
                expected_total_pence: summary.control_total_pence,
                written_rows: this.rows,
                written_total_pence: this.total_pence,
            });
        }
        if let Err(e) = this.check_no_repeats().await {
            let _ = this.restore_cache_size().await;
            return Err(e);
        }
        let doing = this.doing();
        let failed = db(&doing);
        let key = this.header.partnership_key.clone();
        this.restore_cache_size().await.map_err(&failed)?;
        upsert_totals(&mut this.tx, &key, &this.totals)
            .await
            .map_err(&failed)?;
        this.tx
            .execute(
                "INSERT INTO ledger_import (partnership_key, import_id, file_name, file_sha256, \
                     mapping_sha256, imported_at, imported_by, rows, control_total_pence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    Arg::Text(&key),
                    Arg::Int(this.import_id),
                    Arg::Text(&this.header.file_name),
                    Arg::Text(&this.header.file_sha256),
                    Arg::Text(&this.header.mapping_sha256),
                    Arg::Text(&this.at),
                    Arg::Text(&this.actor.name),
                    Arg::Int(this.rows),
                    Arg::Int(this.total_pence),
                ],
            )
            .await
            .map_err(&failed)?;
        let mut per_fund: BTreeMap<String, i64> = BTreeMap::new();
        for (k, (amount, _)) in &this.totals {
            *per_fund.entry(k.fund.clone()).or_insert(0) += amount;
        }
        let after = json!({
            "file_name": this.header.file_name,
            "file_sha256": this.header.file_sha256,
            "mapping_sha256": this.header.mapping_sha256,
            "rows": this.rows,
            "control_total_pence": this.total_pence,
            "totals_per_fund_pence": per_fund,
        });
        let entry = AuditEntry {
            action: "ledger.import",
            entity: format!("import:{key}:{}", this.import_id),
            before_json: None,
            after_json: Some(canonical_json(&after)),
        };
        append_audit(&mut this.tx, &key, &this.actor, &this.at, &entry)
            .await
            .map_err(&failed)?;
        this.tx.commit().await.map_err(&failed)?;
        // An import writes its postings to SQLite's write-ahead log. Moving them into the
        // database now, and emptying the log, means a process that next opens the database
        // after one that did not close it cleanly has no log the size of the file to recover
        // (measured: monitoring straight after an import went from 64-92 ms to 15-20 ms).
        // It must not wait: with a busy timeout of 0 a checkpoint that would have to wait for
        // a reader is simply skipped, and the import is committed either way.
        if let Pool::Sqlite(p) = &this.pool
            && let Ok(mut conn) = p.acquire().await
        {
            let _ = sqlx::query("PRAGMA busy_timeout = 0")
                .execute(&mut *conn)
                .await;
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await;
            let restore = format!(
                "PRAGMA busy_timeout = {}",
                crate::sql_store::SQLITE_BUSY_TIMEOUT.as_millis()
            );
            if sqlx::query(&restore).execute(&mut *conn).await.is_err() {
                // A connection left without its busy timeout would refuse writes at once:
                // drop it from the pool rather than return it.
                conn.detach();
            }
        }
        Ok(ImportOutcome {
            import_id: this.import_id,
            rows: this.rows,
            control_total_pence: this.total_pence,
            totals_per_fund: per_fund.into_iter().collect(),
        })
    }

    async fn abort(self: Box<Self>) {
        let mut this = *self;
        let _ = this.restore_cache_size().await;
        // Dropping the transaction rolls it back too; rolling back here just does it now.
        let _ = this.tx.rollback().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Commands, run inside the write path's transaction

/// Where a read runs: inside a write's transaction (which sees its own uncommitted batches),
/// or on the pool.
pub(crate) enum Src<'a> {
    Tx(&'a mut Tx),
    Pool(&'a Pool),
}

impl Src<'_> {
    async fn fetch_all<'q>(
        &mut self,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> Result<Vec<Row>, sqlx::Error> {
        match self {
            Src::Tx(tx) => tx.fetch_all(sql, args).await,
            Src::Pool(pool) => pool.fetch_all(sql, args).await,
        }
    }
}

/// One stored batch of imported postings, still encoded.
pub(crate) struct StoredBatch {
    pub(crate) import_id: i64,
    pub(crate) batch_no: i64,
    pub(crate) postings: Vec<u8>,
}

/// The next page of a partnership's batches after `after` (import id, batch number), in
/// order: of one financial year (`year`), or all; only those with suspense postings, if asked.
pub(crate) async fn batch_page(
    src: &mut Src<'_>,
    key: &str,
    year: Option<i64>,
    suspense_only: bool,
    after: (i64, i64),
) -> Result<Vec<StoredBatch>, sqlx::Error> {
    let mut sql = String::from(
        "SELECT import_id, batch_no, postings FROM ledger_batch \
         WHERE partnership_key = $1 AND (import_id > $2 OR (import_id = $2 AND batch_no > $3))",
    );
    let mut args = vec![Arg::Text(key), Arg::Int(after.0), Arg::Int(after.1)];
    if let Some(y) = year {
        args.push(Arg::Int(y));
        sql.push_str(&format!(
            " AND first_year_start <= ${n} AND last_year_start >= ${n}",
            n = args.len()
        ));
    }
    if suspense_only {
        sql.push_str(" AND suspense_rows > 0");
    }
    sql.push_str(&format!(
        " ORDER BY import_id, batch_no LIMIT {BATCHES_PER_PAGE}"
    ));
    src.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(|row| stored_batch(row, "postings"))
        .collect()
}

/// A batch row read back, with the blob of `column` (its postings, or its reference hashes).
fn stored_batch(row: &Row, column: &str) -> Result<StoredBatch, sqlx::Error> {
    Ok(StoredBatch {
        import_id: row.int("import_id")?,
        batch_no: row.int("batch_no")?,
        postings: row.bytes(column)?,
    })
}

/// The next page of a partnership's batches' reference hashes (in `StoredBatch::postings`)
/// after `after`, in order.
async fn hash_page(
    src: &mut Src<'_>,
    key: &str,
    after: (i64, i64),
) -> Result<Vec<StoredBatch>, sqlx::Error> {
    let sql = format!(
        "SELECT import_id, batch_no, reference_hashes FROM ledger_batch \
         WHERE partnership_key = $1 AND (import_id > $2 OR (import_id = $2 AND batch_no > $3)) \
         ORDER BY import_id, batch_no LIMIT {}",
        BATCHES_PER_PAGE * 16
    );
    src.fetch_all(
        &sql,
        &[Arg::Text(key), Arg::Int(after.0), Arg::Int(after.1)],
    )
    .await?
    .iter()
    .map(|row| stored_batch(row, "reference_hashes"))
    .collect()
}

/// One batch's postings.
async fn batch_postings(
    src: &mut Src<'_>,
    key: &str,
    import_id: i64,
    batch_no: i64,
) -> Result<Option<StoredBatch>, sqlx::Error> {
    src.fetch_all(
        "SELECT import_id, batch_no, postings FROM ledger_batch \
         WHERE partnership_key = $1 AND import_id = $2 AND batch_no = $3",
        &[Arg::Text(key), Arg::Int(import_id), Arg::Int(batch_no)],
    )
    .await?
    .first()
    .map(|row| stored_batch(row, "postings"))
    .transpose()
}

pub(crate) fn damaged_batch(key: &str, b: &StoredBatch, e: &batch::BadBatch) -> StoreError {
    StoreError::Damaged(format!(
        "batch {} of import #{} of {key} cannot be read: {}",
        b.batch_no, b.import_id, e.0
    ))
}

/// Calls `each` with every imported posting of a partnership (of one year, or all; with
/// suspense postings only, if asked), a page of batches at a time.
pub(crate) async fn each_batched_posting(
    src: &mut Src<'_>,
    key: &str,
    year: Option<i64>,
    suspense_only: bool,
    mut each: impl FnMut(StoredPosting),
) -> Result<(), StoreError> {
    let doing = format!("read the postings of {key}");
    let failed = db(&doing);
    let mut after = (0, 0);
    loop {
        let page = batch_page(src, key, year, suspense_only, after)
            .await
            .map_err(&failed)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = (last.import_id, last.batch_no);
        for b in &page {
            for posting in batch::decode(&b.postings).map_err(|e| damaged_batch(key, b, &e))? {
                each(StoredPosting {
                    import_id: Some(b.import_id),
                    posting,
                });
            }
        }
    }
}

/// The posting with this reference: a correction (or a posting imported before batches) in
/// `ledger_posting`, else an imported one in a batch.
pub(crate) async fn find_posting(
    src: &mut Src<'_>,
    key: &str,
    reference: &str,
) -> Result<Option<StoredPosting>, StoreError> {
    let doing = format!("look up posting {reference:?} of {key}");
    let failed = db(&doing);
    let sql = format!(
        "SELECT {POSTING_COLUMNS} FROM ledger_posting \
         WHERE partnership_key = $1 AND reference = $2"
    );
    if let Some(row) = src
        .fetch_all(&sql, &[Arg::Text(key), Arg::Text(reference)])
        .await
        .map_err(&failed)?
        .first()
    {
        return stored_posting(row).map(Some).map_err(&failed);
    }
    // The hashes say which batches may hold it; only those are decoded.
    let wanted = batch::reference_hash(reference);
    let mut after = (0, 0);
    loop {
        let page = hash_page(src, key, after).await.map_err(&failed)?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        after = (last.import_id, last.batch_no);
        for h in &page {
            let candidates: Vec<usize> = batch::reference_hashes(&h.postings)
                .map_err(|e| damaged_batch(key, h, &e))?
                .enumerate()
                .filter(|(_, x)| *x == wanted)
                .map(|(i, _)| i)
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let Some(b) = batch_postings(src, key, h.import_id, h.batch_no)
                .await
                .map_err(&failed)?
            else {
                continue;
            };
            let mut all = batch::decode(&b.postings).map_err(|e| damaged_batch(key, &b, &e))?;
            if let Some(i) = candidates
                .into_iter()
                .find(|&i| all.get(i).is_some_and(|p| p.reference == reference))
            {
                return Ok(Some(StoredPosting {
                    import_id: Some(b.import_id),
                    posting: all.swap_remove(i),
                }));
            }
        }
    }
}

/// Writes one correction posting (checked: open period, new reference, existing target) and
/// adds it to the totals.
async fn insert_correction(
    tx: &mut Tx,
    key: &str,
    p: &PostingRow,
    doing: &str,
) -> Result<StoredPosting, StoreError> {
    let failed = db(doing);
    check_period(p.year_start, p.period)?;
    check_field("correction reference", &p.reference)?;
    if closed_set(tx, key)
        .await
        .map_err(&failed)?
        .contains(&(p.year_start, p.period))
    {
        return Err(StoreError::Period {
            period: period_text(p.year_start, p.period),
            reason: format!(
                "it is closed, so correction {:?} cannot be posted into it; \
                 post it into an open period",
                p.reference
            ),
        });
    }
    if find_posting(&mut Src::Tx(tx), key, &p.reference)
        .await?
        .is_some()
    {
        return Err(StoreError::Invalid(format!(
            "reference {:?} is already used by a posting in {key}",
            p.reference
        )));
    }
    let sql = format!(
        "INSERT INTO ledger_posting (partnership_key, {POSTING_COLUMNS}) \
         VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    tx.execute(
        &sql,
        &[
            Arg::Text(key),
            Arg::Int(p.source_line),
            Arg::Text(&p.date),
            Arg::Int(p.year_start),
            Arg::Int(p.period),
            Arg::Text(&p.fund),
            Arg::Text(&p.service_line),
            Arg::OptText(p.partner.as_deref()),
            Arg::OptText(p.locality.as_deref()),
            Arg::OptText(p.cost_centre.as_deref()),
            Arg::OptText(p.subjective.as_deref()),
            Arg::OptText(p.supplier.as_deref()),
            Arg::Text(&p.reference),
            Arg::OptText(p.description.as_deref()),
            Arg::Int(p.amount_pence),
            Arg::OptText(p.corrects_reference.as_deref()),
        ],
    )
    .await
    .map_err(&failed)?;
    let mut totals = HashMap::new();
    totals.insert(TotalsKey::of(p), (p.amount_pence, 1));
    upsert_totals(tx, key, &totals).await.map_err(&failed)?;
    Ok(StoredPosting {
        import_id: None,
        posting: p.clone(),
    })
}

async fn corrected_posting(
    tx: &mut Tx,
    key: &str,
    reference: &str,
    doing: &str,
) -> Result<StoredPosting, StoreError> {
    if !partnership_exists(tx, key).await.map_err(db(doing))? {
        return Err(no_partnership(key));
    }
    find_posting(&mut Src::Tx(tx), key, reference)
        .await?
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "there is no posting with reference {reference:?} in {key} to correct"
            ))
        })
}

pub(crate) async fn apply_correction(
    tx: &mut Tx,
    key: &str,
    c: CorrectionRow,
    doing: &str,
) -> Result<Change, StoreError> {
    check_field("reason", &c.reason)?;
    let before = corrected_posting(tx, key, &c.corrects_reference, doing).await?;
    let row = PostingRow {
        source_line: 0,
        date: c.date,
        year_start: c.year_start,
        period: c.period,
        fund: c.fund,
        service_line: c.service_line,
        partner: c.partner,
        locality: c.locality,
        cost_centre: None,
        subjective: None,
        supplier: None,
        reference: c.reference,
        description: Some(c.reason),
        amount_pence: c.amount_pence,
        corrects_reference: Some(c.corrects_reference),
    };
    let stored = insert_correction(tx, key, &row, doing).await?;
    Ok(Change {
        audit: Some(AuditEntry {
            action: "ledger.correction",
            entity: format!("posting:{key}:{}", row.reference),
            before_json: Some(canonical_json(&posting_json(&before))),
            after_json: Some(canonical_json(&posting_json(&stored))),
        }),
        result: CommandResult::Posting(Box::new(stored)),
    })
}

pub(crate) async fn apply_reclassify(
    tx: &mut Tx,
    key: &str,
    r: ReclassifyRow,
    doing: &str,
) -> Result<Change, StoreError> {
    check_field("reason", &r.reason)?;
    let before = corrected_posting(tx, key, &r.reference, doing).await?;
    if before.posting.corrects_reference.is_some() {
        return Err(StoreError::Invalid(format!(
            "{:?} is itself a correction; reclassify the posting it corrects",
            r.reference
        )));
    }
    // Each reclassification gets its own pair of references, so a posting can be moved again.
    let earlier = tx
        .fetch_optional(
            "SELECT COUNT(*) AS n FROM ledger_posting \
             WHERE partnership_key = $1 AND corrects_reference = $2",
            &[Arg::Text(key), Arg::Text(&r.reference)],
        )
        .await
        .map_err(db(doing))?
        .map(|row| row.int("n"))
        .transpose()
        .map_err(db(doing))?
        .unwrap_or(0);
    let n = earlier / 2 + 1;
    let original = &before.posting;
    let reversal = PostingRow {
        source_line: 0,
        date: r.date.clone(),
        year_start: r.year_start,
        period: r.period,
        reference: format!("{}/reclass-{n}-out", r.reference),
        description: Some(r.reason.clone()),
        amount_pence: original.amount_pence.checked_neg().ok_or_else(|| {
            StoreError::Invalid(format!(
                "the amount of {:?} cannot be reversed",
                r.reference
            ))
        })?,
        corrects_reference: Some(r.reference.clone()),
        ..original.clone()
    };
    let reposting = PostingRow {
        source_line: 0,
        date: r.date,
        year_start: r.year_start,
        period: r.period,
        fund: r.fund,
        service_line: r.service_line,
        partner: r.partner,
        locality: r.locality,
        reference: format!("{}/reclass-{n}-in", r.reference),
        description: Some(r.reason),
        amount_pence: original.amount_pence,
        corrects_reference: Some(r.reference.clone()),
        ..original.clone()
    };
    let out = insert_correction(tx, key, &reversal, doing).await?;
    let into = insert_correction(tx, key, &reposting, doing).await?;
    Ok(Change {
        audit: Some(AuditEntry {
            action: "ledger.reclassify",
            entity: format!("posting:{key}:{}", r.reference),
            before_json: Some(canonical_json(&posting_json(&before))),
            after_json: Some(canonical_json(&json!([
                posting_json(&out),
                posting_json(&into)
            ]))),
        }),
        result: CommandResult::Reclassified(Box::new([out, into])),
    })
}

pub(crate) async fn apply_close_period(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    key: &str,
    year_start: i64,
    period: i64,
    doing: &str,
) -> Result<Change, StoreError> {
    let failed = db(doing);
    check_period(year_start, period)?;
    if !partnership_exists(tx, key).await.map_err(&failed)? {
        return Err(no_partnership(key));
    }
    let shown = period_text(year_start, period);
    if closed_set(tx, key)
        .await
        .map_err(&failed)?
        .contains(&(year_start, period))
    {
        return Err(StoreError::Period {
            period: shown,
            reason: "it is already closed".into(),
        });
    }
    // The service line is written into the SQL, not bound, so that the partial index on
    // suspense postings applies (a bound value cannot match an index's WHERE clause).
    let sql = format!(
        "SELECT p.reference AS reference, p.amount_pence AS amount_pence \
         FROM ledger_posting p \
         WHERE p.partnership_key = $1 AND p.year_start = $2 AND p.period = $3 \
           AND p.service_line = '{SUSPENSE}' AND p.corrects_reference IS NULL \
           AND NOT EXISTS (SELECT 1 FROM ledger_posting c \
               WHERE c.partnership_key = p.partnership_key \
                 AND c.corrects_reference = p.reference)"
    );
    let uncorrected = tx
        .fetch_all(
            &sql,
            &[Arg::Text(key), Arg::Int(year_start), Arg::Int(period)],
        )
        .await
        .map_err(&failed)?;
    let mut suspense: Vec<(String, i64)> = uncorrected
        .iter()
        .map(|r| Ok((r.text("reference")?, r.int("amount_pence")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(&failed)?;
    // Imported postings in suspense are in batches that say they hold some.
    let mut batched = Vec::new();
    each_batched_posting(&mut Src::Tx(tx), key, Some(year_start), true, |p| {
        let p = p.posting;
        if p.service_line == SUSPENSE && p.year_start == year_start && p.period == period {
            batched.push((p.reference, p.amount_pence));
        }
    })
    .await?;
    for (reference, amount) in batched {
        let corrected = tx
            .fetch_optional(
                "SELECT reference FROM ledger_posting \
                 WHERE partnership_key = $1 AND corrects_reference = $2",
                &[Arg::Text(key), Arg::Text(&reference)],
            )
            .await
            .map_err(&failed)?
            .is_some();
        if !corrected {
            suspense.push((reference, amount));
        }
    }
    if !suspense.is_empty() {
        let mut references: Vec<String> = suspense.iter().map(|r| r.0.clone()).collect();
        references.sort();
        let total: i64 = suspense.iter().map(|r| r.1).sum();
        let shown_refs: Vec<&str> = references.iter().take(5).map(String::as_str).collect();
        return Err(StoreError::Period {
            period: shown,
            reason: format!(
                "it cannot be closed: {} posting(s) totalling {total} pence are still on \
                 service line {SUSPENSE} (first: {}); reclassify them first",
                references.len(),
                shown_refs.join(", ")
            ),
        });
    }
    tx.execute(
        "INSERT INTO closed_period (partnership_key, year_start, period, closed_at, closed_by) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            Arg::Text(key),
            Arg::Int(year_start),
            Arg::Int(period),
            Arg::Text(at),
            Arg::Text(&actor.name),
        ],
    )
    .await
    .map_err(&failed)?;
    Ok(Change {
        result: CommandResult::Done,
        audit: Some(AuditEntry {
            action: "period.close",
            entity: format!("period:{key}:{shown}"),
            before_json: None,
            after_json: Some(canonical_json(
                &json!({"year_start": year_start, "period": period, "closed": true}),
            )),
        }),
    })
}

fn budget_line(row: &Row) -> Result<BudgetLineRow, sqlx::Error> {
    let amounts_text = row.text("period_amounts_json")?;
    let period_amounts_pence: Vec<i64> =
        serde_json::from_str(&amounts_text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(BudgetLineRow {
        fund: row.text("fund")?,
        year_start: row.int("year_start")?,
        service_line: row.text("service_line")?,
        partner: from_key_part(row.text("partner")?),
        locality: from_key_part(row.text("locality")?),
        revision: row.int("revision")?,
        period_amounts_pence,
        client_income_pence: row.int("client_income_pence")?,
    })
}

fn budget_revision(row: &Row) -> Result<BudgetRevisionRow, sqlx::Error> {
    Ok(BudgetRevisionRow {
        line: budget_line(row)?,
        set_at: row.text("set_at")?,
        set_by: row.text("set_by")?,
        reason: row.text("reason")?,
        authority: row.opt_text("authority")?,
    })
}

const BUDGET_COLUMNS: &str = "fund, year_start, service_line, partner, locality, revision, \
     period_amounts_json, client_income_pence, reason, authority, set_at, set_by";

fn budget_json(b: &BudgetRevisionRow) -> String {
    canonical_json(&serde_json::to_value(b).unwrap_or(Value::Null))
}

pub(crate) async fn apply_set_budget(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    b: BudgetRow,
    doing: &str,
) -> Result<Change, StoreError> {
    let failed = db(doing);
    let key = b.partnership_key.as_str();
    check_period(b.year_start, 1)?;
    check_field("fund", &b.fund)?;
    check_field("service line", &b.service_line)?;
    check_field("reason", &b.reason)?;
    if b.period_amounts_pence.len() != 12 {
        return Err(StoreError::Invalid(format!(
            "budget {}/{} for {}: {} period amounts given; a budget has exactly 12 (P01 to P12)",
            b.fund,
            b.service_line,
            period_text(b.year_start, 1).split('-').next().unwrap_or(""),
            b.period_amounts_pence.len()
        )));
    }
    if !partnership_exists(tx, key).await.map_err(&failed)? {
        return Err(no_partnership(key));
    }
    let sql = format!(
        "SELECT {BUDGET_COLUMNS} FROM budget_revision \
         WHERE partnership_key = $1 AND fund = $2 AND year_start = $3 AND service_line = $4 \
           AND partner = $5 AND locality = $6 ORDER BY revision DESC LIMIT 1"
    );
    let previous = tx
        .fetch_optional(
            &sql,
            &[
                Arg::Text(key),
                Arg::Text(&b.fund),
                Arg::Int(b.year_start),
                Arg::Text(&b.service_line),
                Arg::Text(key_part(&b.partner)),
                Arg::Text(key_part(&b.locality)),
            ],
        )
        .await
        .map_err(&failed)?
        .as_ref()
        .map(budget_revision)
        .transpose()
        .map_err(&failed)?;
    let revision = previous.as_ref().map_or(1, |p| p.line.revision + 1);
    // A revision moves money the budget agreed did not, so it needs a decision that
    // authorised it (the first setting of a line is the budget agreed, and needs none).
    let annual = |amounts: &[i64]| amounts.iter().sum::<i64>();
    let delta = annual(&b.period_amounts_pence)
        - previous
            .as_ref()
            .map_or(0, |p| annual(&p.line.period_amounts_pence));
    match (&previous, &b.authority) {
        (_, Some(reference)) => {
            crate::proceedings::use_decision(tx, key, reference, &b.fund, delta, doing).await?
        }
        (Some(p), None) => {
            return Err(StoreError::Invalid(format!(
                "budget {}/{} is at revision {}: a revision needs the decision that authorised it (a decision reference from the decision log)",
                b.fund, b.service_line, p.line.revision
            )));
        }
        (None, None) => {}
    }
    let amounts_json = canonical_json(&json!(b.period_amounts_pence));
    tx.execute(
        "INSERT INTO budget_revision (partnership_key, fund, year_start, service_line, partner, \
             locality, revision, period_amounts_json, client_income_pence, reason, authority, \
             set_at, set_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            Arg::Text(key),
            Arg::Text(&b.fund),
            Arg::Int(b.year_start),
            Arg::Text(&b.service_line),
            Arg::Text(key_part(&b.partner)),
            Arg::Text(key_part(&b.locality)),
            Arg::Int(revision),
            Arg::Text(&amounts_json),
            Arg::Int(b.client_income_pence),
            Arg::Text(&b.reason),
            Arg::OptText(b.authority.as_deref()),
            Arg::Text(at),
            Arg::Text(&actor.name),
        ],
    )
    .await
    .map_err(&failed)?;
    let after = BudgetRevisionRow {
        line: BudgetLineRow {
            fund: b.fund.clone(),
            year_start: b.year_start,
            service_line: b.service_line.clone(),
            partner: b.partner.clone(),
            locality: b.locality.clone(),
            revision,
            period_amounts_pence: b.period_amounts_pence.clone(),
            client_income_pence: b.client_income_pence,
        },
        set_at: at.to_string(),
        set_by: actor.name.clone(),
        reason: b.reason.clone(),
        authority: b.authority.clone(),
    };
    Ok(Change {
        result: CommandResult::Revision(revision),
        audit: Some(AuditEntry {
            action: "budget.set",
            entity: format!(
                "budget:{key}:{}:{}:{}:{}:{}",
                b.fund,
                b.year_start,
                b.service_line,
                key_part(&b.partner),
                key_part(&b.locality)
            ),
            before_json: previous.as_ref().map(budget_json),
            after_json: Some(budget_json(&after)),
        }),
    })
}

pub(crate) async fn apply_record_commitment(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    c: CommitmentRow,
    doing: &str,
) -> Result<Change, StoreError> {
    let failed = db(doing);
    let key = c.partnership_key.as_str();
    check_period(c.year_start, c.period)?;
    check_field("commitment reference", &c.reference)?;
    check_field("fund", &c.fund)?;
    check_field("service line", &c.service_line)?;
    if !partnership_exists(tx, key).await.map_err(&failed)? {
        return Err(no_partnership(key));
    }
    let written = tx
        .execute(
            "INSERT INTO commitment (partnership_key, reference, fund, service_line, partner, \
                 locality, year_start, period, amount_pence, description, recorded_at, \
                 recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (partnership_key, reference) DO NOTHING",
            &[
                Arg::Text(key),
                Arg::Text(&c.reference),
                Arg::Text(&c.fund),
                Arg::Text(&c.service_line),
                Arg::OptText(c.partner.as_deref()),
                Arg::OptText(c.locality.as_deref()),
                Arg::Int(c.year_start),
                Arg::Int(c.period),
                Arg::Int(c.amount_pence),
                Arg::OptText(c.description.as_deref()),
                Arg::Text(at),
                Arg::Text(&actor.name),
            ],
        )
        .await
        .map_err(&failed)?;
    if written == 0 {
        return Err(StoreError::Invalid(format!(
            "commitment {:?} is already recorded in {key}",
            c.reference
        )));
    }
    Ok(Change {
        result: CommandResult::Done,
        audit: Some(AuditEntry {
            action: "commitment.record",
            entity: format!("commitment:{key}:{}", c.reference),
            before_json: None,
            after_json: Some(canonical_json(
                &serde_json::to_value(&c).unwrap_or(Value::Null),
            )),
        }),
    })
}

const COMMITMENT_COLUMNS: &str = "partnership_key, reference, fund, service_line, partner, \
     locality, year_start, period, amount_pence, description, recorded_at, recorded_by";

fn stored_commitment(row: &Row) -> Result<StoredCommitment, sqlx::Error> {
    Ok(StoredCommitment {
        commitment: CommitmentRow {
            partnership_key: row.text("partnership_key")?,
            reference: row.text("reference")?,
            fund: row.text("fund")?,
            service_line: row.text("service_line")?,
            partner: row.opt_text("partner")?,
            locality: row.opt_text("locality")?,
            year_start: row.int("year_start")?,
            period: row.int("period")?,
            amount_pence: row.int("amount_pence")?,
            description: row.opt_text("description")?,
        },
        recorded_at: row.text("recorded_at")?,
        recorded_by: row.text("recorded_by")?,
    })
}

pub(crate) async fn apply_release_commitment(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    key: &str,
    reference: &str,
    reason: &str,
    doing: &str,
) -> Result<Change, StoreError> {
    let failed = db(doing);
    check_field("reason", reason)?;
    let sql = format!(
        "SELECT {COMMITMENT_COLUMNS} FROM commitment \
         WHERE partnership_key = $1 AND reference = $2 AND released_at IS NULL"
    );
    let before = tx
        .fetch_optional(&sql, &[Arg::Text(key), Arg::Text(reference)])
        .await
        .map_err(&failed)?
        .as_ref()
        .map(stored_commitment)
        .transpose()
        .map_err(&failed)?
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "there is no open commitment {reference:?} in {key} to release"
            ))
        })?;
    tx.execute(
        "UPDATE commitment SET released_at = $3, released_by = $4, release_reason = $5 \
         WHERE partnership_key = $1 AND reference = $2",
        &[
            Arg::Text(key),
            Arg::Text(reference),
            Arg::Text(at),
            Arg::Text(&actor.name),
            Arg::Text(reason),
        ],
    )
    .await
    .map_err(&failed)?;
    Ok(Change {
        result: CommandResult::Done,
        audit: Some(AuditEntry {
            action: "commitment.release",
            entity: format!("commitment:{key}:{reference}"),
            before_json: Some(canonical_json(
                &serde_json::to_value(&before).unwrap_or(Value::Null),
            )),
            after_json: Some(canonical_json(&json!({"released": true, "reason": reason}))),
        }),
    })
}

pub(crate) async fn apply_set_forecast(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    f: ForecastOverrideRow,
    doing: &str,
) -> Result<Change, StoreError> {
    let failed = db(doing);
    let key = f.partnership_key.as_str();
    check_period(f.year_start, f.period)?;
    check_field("fund", &f.fund)?;
    check_field("service line", &f.service_line)?;
    check_field("reason", &f.reason)?;
    if !partnership_exists(tx, key).await.map_err(&failed)? {
        return Err(no_partnership(key));
    }
    let args = [
        Arg::Text(key),
        Arg::Text(&f.fund),
        Arg::Int(f.year_start),
        Arg::Text(&f.service_line),
        Arg::Int(f.period),
    ];
    let before = tx
        .fetch_optional(
            "SELECT partnership_key, fund, year_start, service_line, period, outturn_pence, \
                    reason FROM forecast_override \
             WHERE partnership_key = $1 AND fund = $2 AND year_start = $3 \
               AND service_line = $4 AND period = $5",
            &args,
        )
        .await
        .map_err(&failed)?
        .as_ref()
        .map(forecast_row)
        .transpose()
        .map_err(&failed)?;
    tx.execute(
        "INSERT INTO forecast_override (partnership_key, fund, year_start, service_line, period, \
             outturn_pence, reason, set_at, set_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (partnership_key, year_start, fund, service_line, period) DO UPDATE SET \
             outturn_pence = excluded.outturn_pence, reason = excluded.reason, \
             set_at = excluded.set_at, set_by = excluded.set_by",
        &[
            args[0],
            args[1],
            args[2],
            args[3],
            args[4],
            Arg::Int(f.outturn_pence),
            Arg::Text(&f.reason),
            Arg::Text(at),
            Arg::Text(&actor.name),
        ],
    )
    .await
    .map_err(&failed)?;
    let to_json =
        |f: &ForecastOverrideRow| canonical_json(&serde_json::to_value(f).unwrap_or(Value::Null));
    Ok(Change {
        result: CommandResult::Done,
        audit: Some(AuditEntry {
            action: "forecast.override",
            entity: format!(
                "forecast:{key}:{}:{}:{}",
                f.fund,
                f.service_line,
                period_text(f.year_start, f.period)
            ),
            before_json: before.as_ref().map(to_json),
            after_json: Some(to_json(&f)),
        }),
    })
}

fn forecast_row(row: &Row) -> Result<ForecastOverrideRow, sqlx::Error> {
    Ok(ForecastOverrideRow {
        partnership_key: row.text("partnership_key")?,
        fund: row.text("fund")?,
        year_start: row.int("year_start")?,
        service_line: row.text("service_line")?,
        period: row.int("period")?,
        outturn_pence: row.int("outturn_pence")?,
        reason: row.text("reason")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Reads

/// `WHERE partnership_key = $1 AND year_start = $2 [AND fund = $3]`.
fn key_year_fund<'a>(
    key: &'a str,
    fund: Option<&'a str>,
    year_start: i64,
) -> (String, Vec<Arg<'a>>) {
    let mut args = vec![Arg::Text(key), Arg::Int(year_start)];
    let mut sql = "WHERE partnership_key = $1 AND year_start = $2".to_string();
    if let Some(fund) = fund {
        args.push(Arg::Text(fund));
        sql.push_str(" AND fund = $3");
    }
    (sql, args)
}

pub(crate) async fn ledger_totals(
    pool: &Pool,
    key: &str,
    fund: Option<&str>,
    year_start: i64,
) -> Result<Vec<TotalsRow>, StoreError> {
    let failed = StoreError::doing(format!("read the ledger totals of {key}"));
    let (filter, args) = key_year_fund(key, fund, year_start);
    let sql = format!(
        "SELECT fund, year_start, period, service_line, partner, locality, amount_pence, \
                postings FROM ledger_totals {filter}"
    );
    let rows = pool.fetch_all(&sql, &args).await;
    let mut totals = rows
        .and_then(|rows| {
            rows.iter()
                .map(|r| {
                    Ok(TotalsRow {
                        fund: r.text("fund")?,
                        year_start: r.int("year_start")?,
                        period: r.int("period")?,
                        service_line: r.text("service_line")?,
                        partner: from_key_part(r.text("partner")?),
                        locality: from_key_part(r.text("locality")?),
                        amount_pence: r.int("amount_pence")?,
                        postings: r.int("postings")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })
        .map_err(failed)?;
    totals.sort_by(|a, b| {
        (&a.fund, a.period, &a.service_line, &a.partner, &a.locality).cmp(&(
            &b.fund,
            b.period,
            &b.service_line,
            &b.partner,
            &b.locality,
        ))
    });
    Ok(totals)
}

pub(crate) async fn postings(
    pool: &Pool,
    key: &str,
    filter: &PostingFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<StoredPosting>, StoreError> {
    let failed = StoreError::doing(format!("read the postings of {key}"));
    let (mut sql_filter, mut args) = key_year_fund(key, filter.fund.as_deref(), filter.year_start);
    let mut conditions: Vec<(&str, &str, Arg<'_>)> = Vec::new();
    if let Some(from) = filter.period_from {
        conditions.push(("period", ">=", Arg::Int(from)));
    }
    if let Some(to) = filter.period_to {
        conditions.push(("period", "<=", Arg::Int(to)));
    }
    if let Some(s) = &filter.service_line {
        conditions.push(("service_line", "=", Arg::Text(s)));
    }
    if let Some(s) = &filter.partner {
        conditions.push(("partner", "=", Arg::Text(s)));
    }
    if let Some(s) = &filter.locality {
        conditions.push(("locality", "=", Arg::Text(s)));
    }
    for (column, op, arg) in conditions {
        args.push(arg);
        sql_filter.push_str(&format!(" AND {column} {op} ${}", args.len()));
    }
    let sql = format!("SELECT {POSTING_COLUMNS} FROM ledger_posting {sql_filter}");
    let rows: Vec<StoredPosting> = pool
        .fetch_all(&sql, &args)
        .await
        .and_then(|rows| rows.iter().map(stored_posting).collect())
        .map_err(failed)?;

    // The first `offset + limit` by date then reference, kept in a bounded max-heap so a
    // year of a million postings is walked without being held.
    let keep = usize::try_from(offset.max(0).saturating_add(limit.max(0))).unwrap_or(usize::MAX);
    let mut heap: BinaryHeap<Ordered> = BinaryHeap::new();
    let mut offer = |p: StoredPosting| {
        if keep == 0 {
            return;
        }
        let item = Ordered(p);
        if heap.len() < keep {
            heap.push(item);
        } else if heap.peek().is_some_and(|top| item < *top) {
            heap.pop();
            heap.push(item);
        }
    };
    for p in rows {
        offer(p);
    }
    let matches = |p: &PostingRow| {
        p.year_start == filter.year_start
            && filter.fund.as_ref().is_none_or(|f| *f == p.fund)
            && filter.takes(
                p.period,
                &p.service_line,
                p.partner.as_deref(),
                p.locality.as_deref(),
            )
    };
    each_batched_posting(
        &mut Src::Pool(pool),
        key,
        Some(filter.year_start),
        false,
        |p| {
            if matches(&p.posting) {
                offer(p);
            }
        },
    )
    .await?;
    let mut sorted: Vec<StoredPosting> = heap.into_sorted_vec().into_iter().map(|o| o.0).collect();
    Ok(sorted.split_off(
        usize::try_from(offset.max(0))
            .unwrap_or(0)
            .min(sorted.len()),
    ))
}

/// A posting ordered as listings show them: by date, then reference.
struct Ordered(StoredPosting);

impl Ordered {
    fn key(&self) -> (&str, &str) {
        (&self.0.posting.date, &self.0.posting.reference)
    }
}

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

pub(crate) async fn posting(
    pool: &Pool,
    key: &str,
    reference: &str,
) -> Result<Option<StoredPosting>, StoreError> {
    find_posting(&mut Src::Pool(pool), key, reference).await
}

pub(crate) async fn imports(pool: &Pool, key: &str) -> Result<Vec<ImportRow>, StoreError> {
    pool.fetch_all(
        "SELECT import_id, file_name, file_sha256, mapping_sha256, imported_at, imported_by, \
                rows, control_total_pence \
         FROM ledger_import WHERE partnership_key = $1 ORDER BY import_id",
        &[Arg::Text(key)],
    )
    .await
    .and_then(|rows| {
        rows.iter()
            .map(|r| {
                Ok(ImportRow {
                    import_id: r.int("import_id")?,
                    file_name: r.text("file_name")?,
                    file_sha256: r.text("file_sha256")?,
                    mapping_sha256: r.text("mapping_sha256")?,
                    imported_at: r.text("imported_at")?,
                    imported_by: r.text("imported_by")?,
                    rows: r.int("rows")?,
                    control_total_pence: r.int("control_total_pence")?,
                })
            })
            .collect()
    })
    .map_err(StoreError::doing(format!("read the imports of {key}")))
}

pub(crate) async fn closed_periods(pool: &Pool, key: &str) -> Result<Vec<(i64, i64)>, StoreError> {
    pool.fetch_all(
        "SELECT year_start, period FROM closed_period WHERE partnership_key = $1 \
         ORDER BY year_start, period",
        &[Arg::Text(key)],
    )
    .await
    .and_then(|rows| {
        rows.iter()
            .map(|r| Ok((r.int("year_start")?, r.int("period")?)))
            .collect()
    })
    .map_err(StoreError::doing(format!(
        "read the closed periods of {key}"
    )))
}

pub(crate) async fn budgets(
    pool: &Pool,
    key: &str,
    fund: Option<&str>,
    year_start: i64,
) -> Result<Vec<BudgetLineRow>, StoreError> {
    let (filter, args) = key_year_fund(key, fund, year_start);
    let sql = format!("SELECT {BUDGET_COLUMNS} FROM budget_revision {filter}");
    let all = pool
        .fetch_all(&sql, &args)
        .await
        .and_then(|rows| rows.iter().map(budget_line).collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::doing(format!("read the budgets of {key}")))?;
    // The current revision of each line is its highest.
    let mut current: BTreeMap<(String, String, Option<String>, Option<String>), BudgetLineRow> =
        BTreeMap::new();
    for line in all {
        let k = (
            line.fund.clone(),
            line.service_line.clone(),
            line.partner.clone(),
            line.locality.clone(),
        );
        match current.get(&k) {
            Some(existing) if existing.revision >= line.revision => {}
            _ => {
                current.insert(k, line);
            }
        }
    }
    Ok(current.into_values().collect())
}

pub(crate) async fn budget_history(
    pool: &Pool,
    key: &str,
    fund: &str,
    year_start: i64,
    service_line: &str,
    partner: Option<&str>,
    locality: Option<&str>,
) -> Result<Vec<BudgetRevisionRow>, StoreError> {
    let sql = format!(
        "SELECT {BUDGET_COLUMNS} FROM budget_revision \
         WHERE partnership_key = $1 AND fund = $2 AND year_start = $3 AND service_line = $4 \
           AND partner = $5 AND locality = $6 ORDER BY revision"
    );
    pool.fetch_all(
        &sql,
        &[
            Arg::Text(key),
            Arg::Text(fund),
            Arg::Int(year_start),
            Arg::Text(service_line),
            Arg::Text(partner.unwrap_or("")),
            Arg::Text(locality.unwrap_or("")),
        ],
    )
    .await
    .and_then(|rows| rows.iter().map(budget_revision).collect())
    .map_err(StoreError::doing(format!("read a budget history of {key}")))
}

pub(crate) async fn commitments(
    pool: &Pool,
    key: &str,
    fund: Option<&str>,
    year_start: i64,
) -> Result<Vec<StoredCommitment>, StoreError> {
    let (filter, args) = key_year_fund(key, fund, year_start);
    let sql =
        format!("SELECT {COMMITMENT_COLUMNS} FROM commitment {filter} AND released_at IS NULL");
    let mut list = pool
        .fetch_all(&sql, &args)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(stored_commitment)
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(StoreError::doing(format!("read the commitments of {key}")))?;
    list.sort_by(|a, b| a.commitment.reference.cmp(&b.commitment.reference));
    Ok(list)
}

pub(crate) async fn forecast_overrides(
    pool: &Pool,
    key: &str,
    fund: Option<&str>,
    year_start: i64,
) -> Result<Vec<ForecastOverrideRow>, StoreError> {
    let (filter, args) = key_year_fund(key, fund, year_start);
    let sql = format!(
        "SELECT partnership_key, fund, year_start, service_line, period, outturn_pence, reason \
         FROM forecast_override {filter}"
    );
    let mut list = pool
        .fetch_all(&sql, &args)
        .await
        .and_then(|rows| rows.iter().map(forecast_row).collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::doing(format!(
            "read the forecast overrides of {key}"
        )))?;
    list.sort_by(|a, b| {
        (&a.fund, &a.service_line, a.period).cmp(&(&b.fund, &b.service_line, b.period))
    });
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(import_id: Option<i64>, line: i64, reference: &str) -> StoredPosting {
        StoredPosting {
            import_id,
            posting: PostingRow {
                source_line: line,
                date: "2024-05-01".into(),
                year_start: 2024,
                period: 2,
                fund: "bcf".into(),
                service_line: "SL1".into(),
                partner: None,
                locality: None,
                cost_centre: None,
                subjective: None,
                supplier: None,
                reference: reference.into(),
                description: None,
                amount_pence: 100,
                corrects_reference: None,
            },
        }
    }

    /// Every reference has the same hash here: only the references tell a repeat.
    fn collide(_: &str) -> u64 {
        7
    }

    fn candidate(first_line: i64, second_line: Option<i64>, stored: bool) -> Candidate {
        Candidate {
            hash: 7,
            first_line,
            second_line,
            stored,
        }
    }

    #[test]
    fn references_that_share_a_hash_are_not_repeats() {
        // This import (3) has X and Y; an earlier one has Z; all with one hash.
        let found = [
            stored(Some(1), 40, "Z"),
            stored(Some(3), 5, "X"),
            stored(Some(3), 9, "Y"),
        ];
        assert!(repeat_of(&candidate(5, Some(9), true), &found, 3, collide).is_none());
        assert!(repeat_of(&candidate(5, Some(9), false), &found, 3, collide).is_none());
    }

    #[test]
    fn the_earliest_real_repeat_is_named_with_what_it_repeats() {
        // Y at line 9 repeats an earlier import's line 40; X at 12 repeats line 5 of this file.
        let found = [
            stored(None, 0, "C"),
            stored(Some(1), 40, "Y"),
            stored(Some(3), 5, "X"),
            stored(Some(3), 9, "Y"),
            stored(Some(3), 12, "X"),
        ];
        let r = repeat_of(&candidate(5, Some(9), true), &found, 3, collide).unwrap();
        assert_eq!(
            (
                r.line,
                r.reference.as_str(),
                r.earlier_import,
                r.earlier_line
            ),
            (9, "Y", Some(1), 40)
        );
        // Without the earlier import, X's repeat within the file.
        let r = repeat_of(&candidate(5, Some(9), false), &found[2..], 3, collide).unwrap();
        assert_eq!(
            (
                r.line,
                r.reference.as_str(),
                r.earlier_import,
                r.earlier_line
            ),
            (12, "X", Some(3), 5)
        );
        // A correction repeated: no earlier import.
        let found = [stored(None, 0, "C"), stored(Some(3), 8, "C")];
        let r = repeat_of(&candidate(8, None, true), &found, 3, collide).unwrap();
        assert_eq!((r.line, r.earlier_import), (8, None));
    }
}
