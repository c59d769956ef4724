//! Importing a partner's ledger extract into the database, all or nothing.
//!
//! The file is read on a thread of its own and streamed to the store in batches; the store
//! holds one transaction open for the whole file, so a bad row anywhere (or a posting into a
//! closed period, or a repeated reference) leaves the database as it was.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use concordat_core::Agreement;
use concordat_io::ledger_mapping::read_mapping;
use concordat_io::ledger_read::{
    ImportTargets, ReadFailure, ReadOptions, ReadSummary, file_sha256, read_ledger,
};
use concordat_store::{
    Actor, ImportHeader, ImportOutcome, ImportStart, ImportSummaryRow, PostingRow, Store,
    StoreError,
};
use tokio::sync::mpsc;

/// Postings sent to the store at a time.
const BATCH: usize = 5_000;

/// What an import did.
pub enum Imported {
    New {
        outcome: ImportOutcome,
        summary: Box<ReadSummary>,
        elapsed: Duration,
    },
    AlreadyImported {
        /// The file was imported through another mapping than the one given now.
        mapping_differs: bool,
        import_id: i64,
        file_name: String,
        imported_at: String,
        imported_by: String,
        rows: i64,
        control_total_pence: i64,
    },
}

/// The reader stopped because the store refused a batch.
#[derive(Debug)]
struct StoreStopped;

impl std::fmt::Display for StoreStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the store stopped the import")
    }
}

pub struct ImportRequest<'a> {
    pub agreement: &'a Agreement,
    pub file: &'a Path,
    pub mapping: &'a Path,
    pub max_errors: usize,
    /// Told (bytes read, bytes in the file) as the reader goes: a progress bar on a
    /// terminal, a progress page on the web.
    pub progress: Option<Progress>,
    /// The name the file is recorded under, when not its path (an upload saved to a
    /// temporary file keeps the name it was uploaded with).
    pub file_label: Option<&'a str>,
}

/// The file has rows that cannot be imported; nothing was. Carried inside the `anyhow`
/// error so a face can list the rows itself (`error.downcast_ref::<BadRows>()`).
#[derive(Debug)]
pub struct BadRows {
    /// The whole report, as the command line prints it.
    pub message: String,
    /// The bad rows, up to the cap asked for.
    pub rows: Vec<concordat_io::ledger_read::BadRow>,
    /// How many rows were bad in all.
    pub bad_rows: u64,
}

impl std::fmt::Display for BadRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BadRows {}

/// A listener for an import's progress: (bytes read so far, bytes in the file).
pub type Progress = std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>;

pub async fn import(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    request: ImportRequest<'_>,
) -> Result<Imported> {
    // The mapping's own error already names the file and the cause.
    let mapping = read_mapping(request.mapping).map_err(|e| anyhow!("the mapping: {e}"))?;
    let mapping_sha256 = file_sha256(request.mapping).map_err(|e| {
        anyhow!(
            "the mapping: cannot read {}: {e}",
            request.mapping.display()
        )
    })?;
    let file_sha256 = file_sha256(request.file)
        .map_err(|e| anyhow!("cannot read {}: {e}", request.file.display()))?;
    let header = ImportHeader {
        partnership_key: request.agreement.id.clone(),
        file_name: request
            .file_label
            .map_or_else(|| request.file.display().to_string(), str::to_string),
        file_sha256: file_sha256.clone(),
        mapping_sha256: mapping_sha256.clone(),
    };
    let started = Instant::now();
    let mut session = match store.begin_import(actor, at, header).await? {
        ImportStart::AlreadyImported {
            import_id,
            file_name,
            imported_at,
            imported_by,
            rows,
            control_total_pence,
        } => {
            let earlier_mapping = store
                .imports(&request.agreement.id)
                .await?
                .into_iter()
                .find(|i| i.import_id == import_id)
                .map(|i| i.mapping_sha256);
            return Ok(Imported::AlreadyImported {
                mapping_differs: earlier_mapping.is_some_and(|m| m != mapping_sha256),
                import_id,
                file_name,
                imported_at,
                imported_by,
                rows,
                control_total_pence,
            });
        }
        ImportStart::Session(session) => session,
    };

    let targets = ImportTargets::from_agreement(request.agreement);
    let path = request.file.to_path_buf();
    let max_errors = request.max_errors;
    let listener = request.progress.clone();
    let (tx, mut rx) = mpsc::channel::<Vec<PostingRow>>(4);
    let reader = tokio::task::spawn_blocking(move || {
        let progress = move |done: u64, total: u64| {
            if let Some(tell) = &listener {
                tell(done, total);
            }
        };
        let options = ReadOptions {
            progress: Some(&progress),
            max_errors,
        };
        let mut batch = Vec::with_capacity(BATCH);
        let summary = read_ledger(&path, &mapping, &targets, options, |posting| {
            batch.push(PostingRow::from(posting));
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                tx.blocking_send(full).map_err(|_| StoreStopped)?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            tx.blocking_send(batch)
                .map_err(|_| ReadFailure::Callback(StoreStopped))?;
        }
        Ok::<ReadSummary, ReadFailure<StoreStopped>>(summary)
    });

    let mut store_error = None;
    while let Some(batch) = rx.recv().await {
        if let Err(e) = session.add(&batch).await {
            store_error = Some(e);
            break;
        }
    }
    // Closing the channel stops the reader at its next batch if the store refused one.
    drop(rx);
    let read = reader.await;
    let name = request.file.display();
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            session.abort().await;
            bail!("{name}: the ledger reader failed ({e}); nothing was imported");
        }
    };
    if let Some(e) = store_error {
        session.abort().await;
        // The store's message says what was refused and that nothing was imported.
        bail!("{name}: {e}");
    }
    let summary = match read {
        Ok(summary) => summary,
        Err(failure @ ReadFailure::BadRows { .. }) => {
            session.abort().await;
            let message = failure.to_string();
            let ReadFailure::BadRows { summary, rows } = failure else {
                unreachable!("matched as BadRows above")
            };
            return Err(BadRows {
                message,
                rows,
                bad_rows: summary.bad_rows,
            }
            .into());
        }
        Err(failure) => {
            session.abort().await;
            bail!("{failure}; nothing was imported");
        }
    };
    if summary.sha256 != file_sha256 {
        session.abort().await;
        bail!(
            "{name} changed while it was being imported (its SHA-256 is no longer the one checked before reading); nothing was imported: import it again once it is complete"
        );
    }
    let outcome = session
        .commit(ImportSummaryRow {
            rows: i64::try_from(summary.postings).unwrap_or(i64::MAX),
            control_total_pence: summary.control_total.pence(),
        })
        .await
        .map_err(|e| match e {
            // Found at commit now; its message already says nothing was imported.
            e @ StoreError::DuplicateReference { .. } => anyhow!("{name}: {e}"),
            e => anyhow!("{name}: {e}; nothing was imported"),
        })?;
    Ok(Imported::New {
        outcome,
        summary: Box::new(summary),
        elapsed: started.elapsed(),
    })
}

pub use concordat_report::grouped_integer as grouped;

/// The summary a finance officer reconciles to the source system.
pub fn describe(agreement: &Agreement, imported: &Imported) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match imported {
        Imported::AlreadyImported {
            mapping_differs,
            import_id,
            file_name,
            imported_at,
            imported_by,
            rows,
            control_total_pence,
        } => {
            let _ = writeln!(
                out,
                "This file was already imported into {} as import #{import_id} ({file_name}, {imported_at}, by {imported_by}): {} postings, control total {}. Nothing was added.",
                agreement.id,
                grouped(*rows),
                concordat_core::Money::from_pence(*control_total_pence)
            );
            if *mapping_differs {
                let _ = writeln!(
                    out,
                    "It was imported through a different mapping from the one given now: to move postings the old mapping placed wrongly, use `concordat reclassify`."
                );
            }
        }
        Imported::New {
            outcome,
            summary,
            elapsed,
        } => {
            let secs = elapsed.as_secs_f64();
            let _ = writeln!(
                out,
                "Imported {} into {} as import #{}",
                summary.file_name, agreement.id, outcome.import_id
            );
            let _ = writeln!(
                out,
                "  rows read        {}",
                grouped(summary.rows_read as i64)
            );
            let _ = writeln!(out, "  postings         {}", grouped(outcome.rows));
            let _ = writeln!(out, "  control total    {}", summary.control_total);
            let _ = writeln!(out, "  debits           {}", summary.debit_total);
            let _ = writeln!(out, "  credits          {}", summary.credit_total);
            if let (Some(first), Some(last)) = (summary.first_date, summary.last_date) {
                let _ = writeln!(out, "  dates            {first} to {last}");
            }
            for (fund, total) in &outcome.totals_per_fund {
                let _ = writeln!(
                    out,
                    "  fund {fund:<24} {}",
                    concordat_core::Money::from_pence(*total)
                );
            }
            if summary.suspense_postings > 0 {
                let _ = writeln!(
                    out,
                    "  suspense         {} postings, {} (reclassify them before closing their periods)",
                    grouped(summary.suspense_postings as i64),
                    summary.suspense_total
                );
            }
            let _ = writeln!(out, "  file sha256      {}", summary.sha256);
            let rate = if secs > 0.0 {
                format!(
                    " ({} postings a second)",
                    grouped((outcome.rows as f64 / secs) as i64)
                )
            } else {
                String::new()
            };
            let _ = writeln!(out, "  time taken       {secs:.2} s{rate}");
        }
    }
    out
}
