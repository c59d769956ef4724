//! Pages that change things: ledger imports (run in the background with a progress page),
//! budgets and their revisions, period close, new agreement versions (shown as a diff before
//! they are accepted), and API tokens; and the audit log. Every form carries the session's
//! CSRF token, and every change goes through the store's write path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use concordat_app::finance;
use concordat_core::access::{Permission, Role};
use concordat_core::{FinancialYear, Money, Period};
use concordat_store::{AccountChange, ApiTokenRow};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Principal, SignedIn};
use crate::error::WebError;
use crate::pages::{agreement_crumbs, default_period, visible_agreement};
use crate::views::{
    Block, Chrome, FieldKind, Page, cell, field, link, num, post_form, section, table, untitled,
};

// ---------------------------------------------------------------------------------------------
// Imports

/// The column mappings that come with Concordat, by name.
/// The first is the default: columns already named and coded with the agreement's ids.
pub(crate) const MAPPINGS: &[(&str, &str, &str)] = &[
    (
        "concordat-ledger",
        "Columns date, fund, service, partner, subjective, supplier, reference, amount, already in the agreement's ids",
        include_str!("../../../examples/mappings/concordat-ledger.toml"),
    ),
    (
        "gen-ledger",
        "The benchmark ledger's codes, mapped onto Halton and St Helens",
        include_str!("../../../examples/mappings/gen-ledger.toml"),
    ),
];

/// An import running in the background.
pub(crate) struct Job {
    pub partnership_key: String,
    pub file_name: String,
    pub started_by: String,
    pub bytes_read: AtomicU64,
    pub bytes_total: AtomicU64,
    pub outcome: Mutex<Option<JobOutcome>>,
    pub done: tokio::sync::Notify,
    pub started: std::time::Instant,
}

/// How long a finished import's result page stays available.
const JOB_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Forgets finished imports older than [`JOB_KEPT`], so the list does not grow forever.
fn prune(jobs: &mut HashMap<String, Arc<Job>>) {
    jobs.retain(|_, j| {
        j.started.elapsed() < JOB_KEPT || j.outcome.lock().expect("job lock").is_none()
    });
}

pub(crate) enum JobOutcome {
    Imported(Vec<(String, String)>),
    AlreadyImported(String),
    BadRows {
        rows: Vec<concordat_io::ledger_read::BadRow>,
        total: u64,
    },
    Refused(String),
}

pub(crate) type Jobs = Arc<Mutex<HashMap<String, Arc<Job>>>>;

fn import_form(key: &str, p: &Principal, errors: &[(String, String)]) -> Block {
    let error_for = |id: &str| errors.iter().find(|(_, t)| t == id).map(|(m, _)| m.clone());
    let mut options: Vec<(String, String)> = MAPPINGS
        .iter()
        .map(|(name, label, _)| (name.to_string(), label.to_string()))
        .collect();
    options.push(("upload".into(), "The mapping file uploaded below".into()));
    Block::Form(post_form(
        format!("/agreements/{key}/imports"),
        p.csrf_token(),
        "Import",
        vec![
            field("file", "Ledger extract (CSV or Excel .xlsx)", FieldKind::File)
                .hint("All or nothing: if any row is bad, nothing is imported and every bad row is listed")
                .error(error_for("file")),
            field("mapping", "Column mapping", FieldKind::Select(options)).value(MAPPINGS[0].0),
            field("mapping_file", "Your own mapping file (TOML), if chosen above", FieldKind::File)
                .hint("See docs/ledger-mapping.md for how to write one")
                .error(error_for("mapping_file")),
        ],
    ))
}

pub(crate) async fn imports_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    imports_view(&state, &p, &a, Vec::new()).await
}

async fn imports_view(
    state: &AppState,
    p: &Principal,
    a: &concordat_core::Agreement,
    errors: Vec<(String, String)>,
) -> Result<Response, WebError> {
    let key = &a.id;
    let mut page = Page::new(
        Chrome::for_user("Ledger imports", p).crumbs(agreement_crumbs(a)),
        "Ledger imports",
    )
    .caption(a.title.clone());
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page.errors = errors.clone();
    if p.may(key, Permission::ImportLedger) {
        page = page.section(
            section("Import a ledger extract", "upload").with(import_form(key, p, &errors)),
        );
    }
    let imports = state.store.imports(key).await?;
    let rows = imports
        .iter()
        .rev()
        .map(|i| {
            vec![
                num(i.import_id.to_string()),
                cell(crate::views::file_name(&i.file_name)),
                cell(crate::views::when(&i.imported_at)),
                cell(i.imported_by.clone()),
                num(concordat_report::grouped_integer(i.rows)),
                num(Money::from_pence(i.control_total_pence).to_string()),
                cell(i.file_sha256[..12.min(i.file_sha256.len())].to_string()),
            ]
        })
        .collect::<Vec<_>>();
    let mut done = section("Files imported", "imported");
    if rows.is_empty() {
        done.push(Block::Para("No files have been imported yet.".into()));
    } else {
        done.push(Block::Table(table(
            "Each file imported, newest first",
            vec![
                num("Import"),
                cell("File"),
                cell("Imported"),
                cell("By"),
                num("Postings"),
                num("Control total"),
                cell("SHA-256"),
            ],
            rows,
        )));
    }
    page = page.section(done);
    Ok((status, page.html()?).into_response())
}

/// Saves the upload, starts the import in the background, and shows its progress page
/// (after waiting briefly, so a small file's result appears at once).
pub(crate) async fn import_upload(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::ImportLedger).await?;
    let dir = tempfile::tempdir().map_err(|e| WebError::Internal(e.into()))?;
    let mut csrf = String::new();
    let mut file: Option<(String, std::path::PathBuf, u64)> = None;
    let mut mapping_choice = MAPPINGS[0].0.to_string();
    let mut mapping_upload: Option<std::path::PathBuf> = None;
    while let Some(mut part) = multipart
        .next_field()
        .await
        .map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?
    {
        let name = part.name().unwrap_or("").to_string();
        match name.as_str() {
            "csrf" => csrf = part.text().await.unwrap_or_default(),
            "mapping" => mapping_choice = part.text().await.unwrap_or_default(),
            "file" | "mapping_file" => {
                // The CSRF token comes first in the form; nothing is saved without it.
                p.check_csrf(&csrf)?;
                let original = part.file_name().unwrap_or("").to_string();
                let target = dir.path().join(if name == "file" {
                    "upload"
                } else {
                    "mapping.toml"
                });
                let mut out = tokio::fs::File::create(&target)
                    .await
                    .map_err(|e| WebError::Internal(e.into()))?;
                let mut size = 0u64;
                while let Some(chunk) = part
                    .chunk()
                    .await
                    .map_err(|e| WebError::BadRequest(format!("The upload stopped: {e}")))?
                {
                    size += chunk.len() as u64;
                    tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                        .await
                        .map_err(|e| WebError::Internal(e.into()))?;
                }
                tokio::io::AsyncWriteExt::flush(&mut out)
                    .await
                    .map_err(|e| WebError::Internal(e.into()))?;
                if name == "file" {
                    file = Some((original, target, size));
                } else if size > 0 {
                    mapping_upload = Some(target);
                }
            }
            _ => {}
        }
    }
    p.check_csrf(&csrf)?;
    let mut errors = Vec::new();
    let file = match file {
        Some((name, path, size)) if size > 0 && !name.is_empty() => Some((name, path)),
        _ => {
            errors.push((
                "Select a ledger extract to import".to_string(),
                "file".to_string(),
            ));
            None
        }
    };
    let mapping_path = if mapping_choice == "upload" {
        match mapping_upload {
            Some(path) => Some(path),
            None => {
                errors.push((
                    "Select your mapping file, or choose one of Concordat's mappings".into(),
                    "mapping_file".into(),
                ));
                None
            }
        }
    } else {
        match MAPPINGS.iter().find(|(name, _, _)| *name == mapping_choice) {
            Some((_, _, text)) => {
                let path = dir.path().join("mapping.toml");
                std::fs::write(&path, text).map_err(|e| WebError::Internal(e.into()))?;
                Some(path)
            }
            None => {
                errors.push(("Choose a column mapping".into(), "mapping".into()));
                None
            }
        }
    };
    let (Some((file_name, file_path)), Some(mapping_path)) = (file, mapping_path) else {
        return imports_view(&state, &p, &a, errors).await;
    };
    // Keep the extension: the reader tells Excel from CSV by it.
    let file_path = {
        let ext = std::path::Path::new(&file_name)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("csv")
            .to_lowercase();
        let renamed = file_path.with_extension(ext);
        std::fs::rename(&file_path, &renamed).map_err(|e| WebError::Internal(e.into()))?;
        renamed
    };

    let job_id = crate::auth::new_token()[..24].to_string();
    let job = Arc::new(Job {
        partnership_key: key.clone(),
        file_name: file_name.clone(),
        started_by: p.display_name.clone(),
        bytes_read: AtomicU64::new(0),
        bytes_total: AtomicU64::new(0),
        outcome: Mutex::new(None),
        done: tokio::sync::Notify::new(),
        started: std::time::Instant::now(),
    });
    {
        let mut jobs = state.jobs.lock().expect("jobs lock");
        prune(&mut jobs);
        jobs.insert(job_id.clone(), job.clone());
    }
    let actor = p.actor();
    let at = state.now();
    let store = state.store.clone();
    let running = job.clone();
    let watched = job.clone();
    let finished = job.done.notified();
    let work = tokio::spawn(async move {
        let listener = {
            let job = running.clone();
            Arc::new(move |done: u64, total: u64| {
                job.bytes_read.store(done, Ordering::Relaxed);
                job.bytes_total.store(total, Ordering::Relaxed);
            }) as concordat_app::import::Progress
        };
        let result = concordat_app::import::import(
            store.as_ref(),
            &actor,
            &at,
            concordat_app::import::ImportRequest {
                agreement: &a,
                file: &file_path,
                mapping: &mapping_path,
                max_errors: 100,
                progress: Some(listener),
                file_label: Some(&file_name),
            },
        )
        .await;
        let hide = |text: String| {
            text.replace(&file_path.display().to_string(), &file_name)
                .replace(&mapping_path.display().to_string(), "the mapping")
        };
        let outcome = match result {
            Ok(imported @ concordat_app::import::Imported::New { .. }) => {
                let concordat_app::import::Imported::New {
                    outcome,
                    summary,
                    elapsed,
                } = &imported
                else {
                    unreachable!()
                };
                let mut rows = vec![
                    ("Import".to_string(), format!("#{}", outcome.import_id)),
                    (
                        "Rows read".into(),
                        concordat_report::grouped_integer(summary.rows_read as i64),
                    ),
                    (
                        "Postings".into(),
                        concordat_report::grouped_integer(outcome.rows),
                    ),
                    ("Control total".into(), summary.control_total.to_string()),
                    ("Debits".into(), summary.debit_total.to_string()),
                    ("Credits".into(), summary.credit_total.to_string()),
                ];
                if let (Some(first), Some(last)) = (summary.first_date, summary.last_date) {
                    rows.push(("Dates".into(), format!("{first} to {last}")));
                }
                for (fund, total) in &outcome.totals_per_fund {
                    rows.push((
                        format!("Fund {fund}"),
                        Money::from_pence(*total).to_string(),
                    ));
                }
                if summary.suspense_postings > 0 {
                    rows.push((
                        "In suspense".into(),
                        format!(
                            "{} postings, {}",
                            summary.suspense_postings, summary.suspense_total
                        ),
                    ));
                }
                rows.push(("File SHA-256".into(), summary.sha256.clone()));
                rows.push((
                    "Time taken".into(),
                    format!("{:.2} s", elapsed.as_secs_f64()),
                ));
                JobOutcome::Imported(rows)
            }
            Ok(other) => {
                JobOutcome::AlreadyImported(hide(concordat_app::import::describe(&a, &other)))
            }
            Err(e) => match e.downcast_ref::<concordat_app::import::BadRows>() {
                Some(bad) => JobOutcome::BadRows {
                    rows: bad.rows.clone(),
                    total: bad.bad_rows,
                },
                None => JobOutcome::Refused(hide(format!("{e:#}"))),
            },
        };
        *running.outcome.lock().expect("job lock") = Some(outcome);
        running.done.notify_waiters();
        drop(dir);
    });
    // If the import's task fails outright, its transaction is rolled back: say so, rather
    // than leave the progress page waiting for ever.
    tokio::spawn(async move {
        if let Err(e) = work.await {
            tracing::error!(error = %e, "an import task failed");
            let mut outcome = watched.outcome.lock().expect("job lock");
            if outcome.is_none() {
                *outcome = Some(JobOutcome::Refused(
                    "The import stopped unexpectedly; nothing from this file was imported. Try again, and tell the system's administrator if it happens again.".into(),
                ));
            }
            drop(outcome);
            watched.done.notify_waiters();
        }
    });
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), finished).await;
    Ok(Redirect::to(&format!("/agreements/{key}/imports/jobs/{job_id}")).into_response())
}

pub(crate) async fn import_job(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, job_id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let job = state
        .jobs
        .lock()
        .expect("jobs lock")
        .get(&job_id)
        .cloned()
        .filter(|j| j.partnership_key == key)
        .ok_or(WebError::NotFound)?;
    let mut crumbs = agreement_crumbs(&a);
    crumbs.push(link("Ledger imports", format!("/agreements/{key}/imports")));
    let outcome = job.outcome.lock().expect("job lock");
    let heading = match &*outcome {
        None => format!("Importing {}", job.file_name),
        Some(JobOutcome::Imported(_)) => format!("{} is imported", job.file_name),
        Some(JobOutcome::AlreadyImported(_)) => format!("{} was already imported", job.file_name),
        Some(_) => format!("{} was not imported", job.file_name),
    };
    let mut page = Page::new(
        Chrome::for_user(&heading, &p).crumbs(crumbs),
        heading.clone(),
    )
    .caption(a.title.clone());
    let mut status = StatusCode::OK;
    match &*outcome {
        None => {
            let done = job.bytes_read.load(Ordering::Relaxed);
            let total = job.bytes_total.load(Ordering::Relaxed);
            // Before reading, the import checks the file's SHA-256 against those imported.
            let state = match done.saturating_mul(100).checked_div(total) {
                None => format!(
                    "Checking whether the file was imported before. Started by {}.",
                    job.started_by
                ),
                Some(percent) => format!(
                    "{percent}% of the file read ({} of {} bytes). Started by {}.",
                    concordat_report::grouped_integer(i64::try_from(done).unwrap_or(i64::MAX)),
                    concordat_report::grouped_integer(i64::try_from(total).unwrap_or(i64::MAX)),
                    job.started_by
                ),
            };
            page = page.section(
                untitled("progress")
                    .with(Block::Progress(state))
                    .with(Block::Inset(
                        "Nothing is written until the whole file has been read and checked.".into(),
                    ))
                    .with(Block::Links(vec![link(
                        "Check progress",
                        format!("/agreements/{key}/imports/jobs/{job_id}"),
                    )])),
            );
        }
        Some(JobOutcome::Imported(rows)) => {
            page.success = Some(format!("{} is imported", job.file_name));
            page = page.section(
                section("Control totals", "totals")
                    .with(Block::Summary(rows.clone()))
                    .with(Block::Para(
                        "Reconcile these to the source system's report of the same extract.".into(),
                    )),
            );
        }
        Some(JobOutcome::AlreadyImported(text)) => {
            page = page.section(untitled("already").with(Block::Inset(text.clone())));
        }
        Some(JobOutcome::BadRows { rows, total }) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            page.errors = rows
                .iter()
                .take(20)
                .map(|r| {
                    (
                        format!(
                            "Line {}, column {}: '{}' {}",
                            r.line, r.column, r.value, r.reason
                        ),
                        format!("line-{}", r.line),
                    )
                })
                .collect();
            if rows.len() > 20 {
                page.errors.push((
                    format!("and {} more bad rows, listed below", *total as usize - 20),
                    "bad-rows".into(),
                ));
            }
            let mut sec = section("Bad rows", "bad-rows").with(Block::Para(format!(
                "{total} {} cannot be imported, so nothing from this file was imported. Correct {} in the extract and upload it again.",
                if *total == 1 { "row" } else { "rows" },
                if *total == 1 { "it" } else { "them" }
            )));
            let mut listed = table(
                "Every bad row",
                vec![num("Line"), cell("Column"), cell("Value"), cell("Reason")],
                rows.iter()
                    .map(|r| {
                        vec![
                            num(r.line.to_string()),
                            cell(r.column.clone()),
                            cell(r.value.clone()),
                            cell(r.reason.clone()),
                        ]
                    })
                    .collect(),
            );
            // The error summary's links land on these rows.
            listed.row_ids = rows.iter().map(|r| format!("line-{}", r.line)).collect();
            sec.push(Block::Table(listed));
            if *total as usize > rows.len() {
                sec.push(Block::Para(format!(
                    "{} more bad rows are not listed.",
                    *total as usize - rows.len()
                )));
            }
            page = page.section(sec);
        }
        Some(JobOutcome::Refused(text)) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            page.errors = vec![(
                text.lines()
                    .next()
                    .unwrap_or("The file was refused")
                    .to_string(),
                "refused".into(),
            )];
            page = page
                .section(section("Why it was refused", "refused").with(Block::Code(text.clone())));
        }
    }
    drop(outcome);
    if p.may(&key, Permission::ImportLedger) {
        page =
            page.section(section("Import another file", "upload").with(import_form(&key, &p, &[])));
    }
    Ok((status, page.html()?).into_response())
}

// ---------------------------------------------------------------------------------------------
// Budgets

#[derive(Deserialize, Default)]
pub(crate) struct YearQuery {
    #[serde(default)]
    year: Option<String>,
    /// After a change, the page it redirects to says what was done (post, redirect, get: a
    /// refresh does not repeat the change).
    #[serde(default)]
    done: Option<String>,
}

/// The banner after a change, from the redirect's `done`.
fn done_banner(done: Option<&str>) -> Option<String> {
    done.filter(|d| !d.is_empty() && d.chars().count() <= 200)
        .map(str::to_string)
}

async fn budget_year(
    state: &AppState,
    a: &concordat_core::Agreement,
    text: Option<&str>,
) -> Result<FinancialYear, WebError> {
    match text.filter(|t| !t.is_empty()) {
        Some(t) => t.parse().map_err(|_| {
            WebError::BadRequest(format!("'{t}' is not a financial year like 2024/25"))
        }),
        None => Ok(default_period(state, a).await?.year()),
    }
}

pub(crate) async fn budgets_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, fund_id)): Path<(String, String)>,
    Query(q): Query<YearQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let year = budget_year(&state, &a, q.year.as_deref()).await?;
    budgets_view(
        &state,
        &p,
        &a,
        &fund_id,
        year,
        Vec::new(),
        done_banner(q.done.as_deref()),
        &BudgetForm::default(),
    )
    .await
}

#[derive(Deserialize, Default)]
pub(crate) struct BudgetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    year: String,
    #[serde(default)]
    service_line: String,
    #[serde(default)]
    annual: String,
    #[serde(default)]
    phasing: String,
    #[serde(default)]
    client_income: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    authority: String,
    #[serde(default)]
    delegated: String,
    #[serde(default)]
    new_line: String,
    #[serde(default)]
    partner: String,
    #[serde(default)]
    locality: String,
}

#[allow(clippy::too_many_arguments)]
async fn budgets_view(
    state: &AppState,
    p: &Principal,
    a: &concordat_core::Agreement,
    fund_id: &str,
    year: FinancialYear,
    errors: Vec<(String, String)>,
    success: Option<String>,
    form: &BudgetForm,
) -> Result<Response, WebError> {
    let key = &a.id;
    let fund = crate::pages::fund_of(a, fund_id)?;
    let mut crumbs = agreement_crumbs(a);
    crumbs.push(link(
        fund.name.clone(),
        format!("/agreements/{key}/funds/{fund_id}"),
    ));
    let title = format!("Budgets for {year}");
    let mut page =
        Page::new(Chrome::for_user(&title, p).crumbs(crumbs), title).caption(fund.name.clone());
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page.errors = errors.clone();
    page.success = success;
    let lines = state
        .store
        .budgets(key, Some(fund_id), i64::from(year.start_year()))
        .await?;
    let mut current = section("Budget lines", "lines");
    if lines.is_empty() {
        current.push(Block::Para(format!(
            "There are no budget lines for {year} yet."
        )));
    } else {
        let rows = lines
            .iter()
            .map(|l| {
                let annual: i64 = l.period_amounts_pence.iter().sum();
                vec![
                    cell(l.service_line.clone()),
                    cell(
                        l.partner
                            .clone()
                            .map(|x| finance::partner_name(a, &x).to_string())
                            .unwrap_or_default(),
                    ),
                    cell(l.locality.clone().unwrap_or_default()),
                    num(Money::from_pence(annual).to_string()),
                    num(Money::from_pence(l.client_income_pence).to_string()),
                    num(l.revision.to_string()),
                ]
            })
            .collect();
        current.push(Block::Table(table(
            "Current revision of each line",
            vec![
                cell("Service line"),
                cell("Partner"),
                cell("Locality"),
                num("Annual budget"),
                num("Client income"),
                num("Revision"),
            ],
            rows,
        )));
    }
    page = page.section(current);
    let mut history_rows = Vec::new();
    for l in &lines {
        for r in state
            .store
            .budget_history(
                key,
                fund_id,
                i64::from(year.start_year()),
                &l.service_line,
                l.partner.as_deref(),
                l.locality.as_deref(),
            )
            .await?
        {
            let annual: i64 = r.line.period_amounts_pence.iter().sum();
            history_rows.push(vec![
                cell(r.line.service_line.clone()),
                num(r.line.revision.to_string()),
                num(Money::from_pence(annual).to_string()),
                cell(crate::views::when(&r.set_at)),
                cell(r.set_by.clone()),
                cell(r.reason.clone()),
                cell(r.authority.clone().unwrap_or_default()),
            ]);
        }
    }
    if !history_rows.is_empty() {
        page = page.section(section("Revisions", "revisions").with(Block::Table(table(
            "Every revision, with who made it and why",
            vec![
                cell("Service line"),
                num("Revision"),
                num("Annual budget"),
                cell("Set"),
                cell("By"),
                cell("Reason"),
                cell("Authority"),
            ],
            history_rows,
        ))));
    }
    if p.may(key, Permission::ManageBudgets) {
        let error_for = |id: &str| errors.iter().find(|(_, t)| t == id).map(|(m, _)| m.clone());
        let form = post_form(
            format!("/agreements/{key}/funds/{fund_id}/budgets"),
            p.csrf_token(),
            "Set budget",
            vec![
                field("year", "", FieldKind::Hidden).value(year.to_string()),
                field("service_line", "Service line", FieldKind::Text).value(form.service_line.clone()).error(error_for("service_line")),
                field("partner", "Whose budget line (for aligned budgets)", FieldKind::Select(
                    std::iter::once((String::new(), "The pool's, not one partner's".to_string()))
                        .chain(a.parties().map(|x| (x.id.clone(), x.name.clone())))
                        .collect(),
                ))
                .value(form.partner.clone())
                .error(error_for("partner")),
                field("locality", "Locality (where lines are kept by locality)", FieldKind::Select(
                    std::iter::once((String::new(), "None".to_string()))
                        .chain(a.localities.iter().map(|l| (l.id.clone(), l.name.clone())))
                        .collect(),
                ))
                .value(form.locality.clone())
                .error(error_for("locality")),
                field("annual", "Annual budget, in pounds", FieldKind::Text).hint("For example, 1,250,000.00").value(form.annual.clone()).error(error_for("annual")),
                field("phasing", "Phasing across P01–P12", FieldKind::Text).hint("even, or twelve amounts separated by commas that add up to the annual budget").value(if form.phasing.is_empty() { "even".to_string() } else { form.phasing.clone() }).error(error_for("phasing")),
                field("client_income", "Client income, in pounds (where the partners budget net of it)", FieldKind::Text).value(if form.client_income.is_empty() { "0.00".to_string() } else { form.client_income.clone() }).error(error_for("client_income")),
                field("reason", "Reason for the budget or revision", FieldKind::Textarea).value(form.reason.clone()).error(error_for("reason")),
                field("authority", "Decision reference (a revision needs the decision that authorised it)", FieldKind::Text).hint("As in the decision log, for example JCPB-2001-07-4. Leave it empty when first setting a line, or when you act under delegated authority below.").value(form.authority.clone()).error(error_for("authority")),
                field("delegated", "Or act under delegated authority", FieldKind::Select(
                    std::iter::once((String::new(), "No: the decision above authorises it".to_string()))
                        .chain(delegated_choices(p, a))
                        .collect(),
                ))
                .value(form.delegated.clone()),
                field("new_line", "Is this a new service line?", FieldKind::Select(vec![("no".into(), "No: it is an existing line".into()), ("yes".into(), "Yes: add it as a new line".into())])).value(if form.new_line.is_empty() { "no".to_string() } else { form.new_line.clone() }),
            ],
        );
        page = page.section(section("Set or revise a budget line", "set").with(Block::Form(form)));
    }
    Ok((status, page.html()?).into_response())
}

/// The delegated levels of the scheme of delegation held by a role the user has here, as
/// (role, label) choices for the budget form.
fn delegated_choices(p: &Principal, a: &concordat_core::Agreement) -> Vec<(String, String)> {
    let held = p.roles_in(&a.id).unwrap_or(&[]);
    held.iter()
        .flat_map(|role| {
            concordat_core::governance::levels_for_role(&a.decision_levels, role.as_str())
                .into_iter()
                .map(move |l| {
                    let limit = l
                        .limit
                        .map_or("no limit".to_string(), |m| format!("up to {m}"));
                    (
                        role.as_str().to_string(),
                        format!("Yes: as {} ({limit}): {}", role.label(), l.description),
                    )
                })
        })
        .collect()
}

/// The role chosen on the form, if the user holds it here: a role they do not hold is
/// ignored, so the revision then needs a decision.
fn delegated_role(p: &Principal, a: &concordat_core::Agreement, chosen: &str) -> Option<String> {
    let held = p.roles_in(&a.id).unwrap_or(&[]);
    held.iter()
        .find(|r| r.as_str() == chosen.trim())
        .map(|r| r.as_str().to_string())
}

pub(crate) async fn budget_set(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, fund_id)): Path<(String, String)>,
    Form(form): Form<BudgetForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::ManageBudgets).await?;
    let fund = crate::pages::fund_of(&a, &fund_id)?.clone();
    let year = budget_year(&state, &a, Some(&form.year)).await?;
    let mut errors = Vec::new();
    let annual = match form.annual.trim().parse::<Money>() {
        Ok(m) => Some(m),
        Err(_) => {
            errors.push((
                "Enter the annual budget in pounds, like 1,250,000.00".to_string(),
                "annual".to_string(),
            ));
            None
        }
    };
    let client_income = match form.client_income.trim() {
        "" => Some(Money::ZERO),
        text => match text.parse::<Money>() {
            Ok(m) => Some(m),
            Err(_) => {
                errors.push((
                    "Enter client income in pounds, like 12,000.00, or 0".to_string(),
                    "client_income".to_string(),
                ));
                None
            }
        },
    };
    if form.reason.trim().is_empty() {
        errors.push((
            "Enter the reason for the budget or revision".to_string(),
            "reason".to_string(),
        ));
    }
    if form.service_line.trim().is_empty() {
        errors.push((
            "Enter the service line".to_string(),
            "service_line".to_string(),
        ));
    }
    if let (true, Some(annual), Some(client_income)) = (errors.is_empty(), annual, client_income) {
        let result = concordat_app::set_budget(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &a,
            &fund,
            concordat_app::BudgetRequest {
                year,
                service_line: form.service_line.trim().to_string(),
                partner: Some(form.partner.trim().to_string()).filter(|s| !s.is_empty()),
                locality: Some(form.locality.trim().to_string()).filter(|s| !s.is_empty()),
                annual,
                phasing: if form.phasing.trim().is_empty() {
                    "even".into()
                } else {
                    form.phasing.trim().to_string()
                },
                client_income,
                reason: form.reason.trim().to_string(),
                authority: Some(form.authority.trim().to_string()).filter(|s| !s.is_empty()),
                delegated: delegated_role(&p, &a, &form.delegated),
                new_line: form.new_line == "yes",
            },
        )
        .await;
        match result {
            Ok(set) => {
                let message = format!(
                    "{} {year}: budget {annual} set as revision {}",
                    form.service_line.trim(),
                    set.revision
                );
                return Ok(Redirect::to(&format!(
                    "/agreements/{key}/funds/{fund_id}/budgets?year={}&done={}",
                    crate::views::url_encode(&year.to_string()),
                    crate::views::url_encode(&message)
                ))
                .into_response());
            }
            Err(e) => match e.downcast::<concordat_app::BudgetRefusal>() {
                Ok(r) => errors.push((r.message, r.field.to_string())),
                Err(e) => return Err(WebError::Internal(e)),
            },
        }
    }
    budgets_view(&state, &p, &a, &fund_id, year, errors, None, &form).await
}

// ---------------------------------------------------------------------------------------------
// Periods

#[derive(Deserialize, Default)]
pub(crate) struct PeriodForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    confirm: String,
}

pub(crate) async fn periods_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<YearQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let year = budget_year(&state, &a, q.year.as_deref()).await?;
    periods_view(
        &state,
        &p,
        &a,
        year,
        Vec::new(),
        done_banner(q.done.as_deref()),
    )
    .await
}

async fn periods_view(
    state: &AppState,
    p: &Principal,
    a: &concordat_core::Agreement,
    year: FinancialYear,
    errors: Vec<(String, String)>,
    success: Option<String>,
) -> Result<Response, WebError> {
    let key = &a.id;
    let closed = state.store.closed_periods(key).await?;
    let title = format!("Periods of {year}");
    let mut page = Page::new(
        Chrome::for_user(&title, p).crumbs(agreement_crumbs(a)),
        title,
    )
    .caption(a.title.clone());
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page.errors = errors.clone();
    page.success = success;
    let start = i64::from(year.start_year());
    let rows = year
        .periods()
        .map(|period| {
            let is_closed = closed.contains(&(start, i64::from(period.number())));
            vec![
                cell(period.to_string()),
                cell(format!("{} to {}", period.first_day(), period.last_day())),
                if is_closed {
                    cell("closed").tag("grey")
                } else {
                    cell("open").tag("green")
                },
            ]
        })
        .collect();
    page = page.section(untitled("periods").with(Block::Table(table(
        "P01 to P12",
        vec![cell("Period"), cell("Dates"), cell("Status")],
        rows,
    ))));
    if p.may(key, Permission::ClosePeriod) {
        let open: Vec<(String, String)> = year
            .periods()
            .filter(|period| !closed.contains(&(start, i64::from(period.number()))))
            .map(|period| (period.to_string(), period.to_string()))
            .collect();
        if !open.is_empty() {
            let error_for = |id: &str| errors.iter().find(|(_, t)| t == id).map(|(m, _)| m.clone());
            let mut form = post_form(
                format!("/agreements/{key}/periods"),
                p.csrf_token(),
                "Close the period",
                vec![
                    field("period", "Period to close", FieldKind::Select(open.clone())).value(open[0].0.clone()).error(error_for("period")),
                    field("confirm", "Type CLOSE to confirm", FieldKind::Text)
                        .hint("A closed period is locked: nothing more can be posted to it, and corrections go into an open period")
                        .error(error_for("confirm")),
                ],
            );
            form.warning = true;
            page = page.section(section("Close a period", "close").with(Block::Form(form)));
        }
    }
    Ok((status, page.html()?).into_response())
}

pub(crate) async fn period_close(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Form(form): Form<PeriodForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::ClosePeriod).await?;
    let period: Period = match form.period.parse() {
        Ok(period) => period,
        Err(_) => {
            let year = default_period(&state, &a).await?.year();
            return periods_view(
                &state,
                &p,
                &a,
                year,
                vec![("Choose the period to close".into(), "period".into())],
                None,
            )
            .await;
        }
    };
    if form.confirm.trim() != "CLOSE" {
        return periods_view(
            &state,
            &p,
            &a,
            period.year(),
            vec![(
                "Type CLOSE to confirm that the period is to be closed".into(),
                "confirm".into(),
            )],
            None,
        )
        .await;
    }
    match state
        .store
        .close_period(
            &p.actor(),
            &state.now(),
            &key,
            i64::from(period.year().start_year()),
            i64::from(period.number()),
        )
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!(
            "/agreements/{key}/periods?year={}&done={}",
            crate::views::url_encode(&period.year().to_string()),
            crate::views::url_encode(&format!("{period} is closed"))
        ))
        .into_response()),
        Err(concordat_store::StoreError::Invalid(message)) => {
            periods_view(
                &state,
                &p,
                &a,
                period.year(),
                vec![(message, "period".into())],
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Audit log

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    text: String,
}

/// Audit records listed at once.
const AUDIT_ROWS_SHOWN: usize = 500;

pub(crate) async fn audit_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::ReadAudit).await?;
    let records = state.store.audit_log(Some(&key)).await?;
    let verification = state.store.verify_partnership_audit(&key).await?;
    let mut page = Page::new(
        Chrome::for_user("Audit log", &p).crumbs(agreement_crumbs(&a)),
        "Audit log",
    )
    .caption(a.title.clone());
    let verdict = match &verification.first_mismatch {
        None => Block::Inset(format!(
            "The hash chain verifies: all {} records of this partnership are as they were written.",
            verification.records_checked
        )),
        Some(first) => Block::Warning(format!(
            "The hash chain does not verify: {} problem{} found, the first at record {} ({:?}). Tell the partnership's auditor.",
            verification.mismatches,
            if verification.mismatches == 1 {
                ""
            } else {
                "s"
            },
            first.seq,
            first.reason
        )),
    };
    page = page.section(section("Verification", "verification").with(verdict));
    let mut actions: Vec<String> = records.iter().map(|r| r.action.clone()).collect();
    actions.sort();
    actions.dedup();
    let mut options = vec![(String::new(), "Any".to_string())];
    options.extend(actions.iter().map(|x| (x.clone(), x.clone())));
    page = page.section(
        section("Filter", "filter").with(Block::Form(crate::views::get_form(
            format!("/agreements/{key}/audit"),
            "Filter",
            vec![
                field("action", "Action", FieldKind::Select(options)).value(q.action.clone()),
                field("actor", "Who", FieldKind::Text).value(q.actor.clone()),
                field("text", "Containing", FieldKind::Text)
                    .hint("Searches what was changed, before and after")
                    .value(q.text.clone()),
            ],
        ))),
    );
    let needle = q.text.to_lowercase();
    let matching: Vec<_> = records
        .iter()
        .rev()
        .filter(|r| q.action.is_empty() || r.action == q.action)
        .filter(|r| q.actor.is_empty() || r.actor.to_lowercase().contains(&q.actor.to_lowercase()))
        .filter(|r| {
            needle.is_empty()
                || r.entity.to_lowercase().contains(&needle)
                || r.before_json
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&needle)
                || r.after_json
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&needle)
        })
        .collect();
    let clip = |text: &Option<String>| {
        let text = text.clone().unwrap_or_else(|| "–".into());
        if text.chars().count() > 160 {
            text.chars().take(160).collect::<String>() + "…"
        } else {
            text
        }
    };
    let shown: Vec<Vec<_>> = matching
        .iter()
        .take(AUDIT_ROWS_SHOWN)
        .map(|r| {
            vec![
                num(r.seq.to_string()),
                cell(crate::views::when(&r.recorded_at)),
                cell(r.actor.clone()),
                cell(r.action.clone()),
                cell(r.entity.clone()),
                cell(clip(&r.before_json)),
                cell(clip(&r.after_json)),
            ]
        })
        .collect();
    let caption = if matching.len() > shown.len() {
        format!(
            "{} records match, newest first; the newest {} are shown (narrow the filter to see the rest)",
            matching.len(),
            shown.len()
        )
    } else {
        format!("{} records match, newest first", matching.len())
    };
    page = page.section(section("Records", "records").with(Block::Table(table(
        &caption,
        vec![
            num("No."),
            cell("When"),
            cell("Who"),
            cell("Action"),
            cell("What"),
            cell("Before"),
            cell("After"),
        ],
        shown,
    ))));
    Ok(page.html()?.into_response())
}

// ---------------------------------------------------------------------------------------------
// Agreement versions

pub(crate) async fn version_upload(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::ChangeAgreement).await?;
    let mut csrf = String::new();
    let mut text = None;
    let mut file_name = String::new();
    while let Some(part) = multipart
        .next_field()
        .await
        .map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?
    {
        match part.name().unwrap_or("") {
            "csrf" => csrf = part.text().await.unwrap_or_default(),
            "file" => {
                p.check_csrf(&csrf)?;
                file_name = part.file_name().unwrap_or("agreement.toml").to_string();
                let bytes = part
                    .bytes()
                    .await
                    .map_err(|e| WebError::BadRequest(format!("The upload stopped: {e}")))?;
                text = Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                    WebError::BadRequest("The agreement file must be UTF-8 text".into())
                })?);
            }
            _ => {}
        }
    }
    p.check_csrf(&csrf)?;
    let text = text.filter(|t| !t.is_empty()).ok_or_else(|| {
        WebError::BadRequest("Select the new version of the agreement file".into())
    })?;
    version_preview(&state, &p, &a, &file_name, &text, None).await
}

async fn version_preview(
    state: &AppState,
    p: &Principal,
    a: &concordat_core::Agreement,
    file_name: &str,
    text: &str,
    authority_error: Option<(String, String)>,
) -> Result<Response, WebError> {
    let key = &a.id;
    let stored = state
        .store
        .get_agreement(key)
        .await?
        .ok_or(WebError::NotFound)?;
    let mut page = Page::new(
        Chrome::for_user("Check the new version", p).crumbs(agreement_crumbs(a)),
        "Check the new version",
    )
    .caption(a.title.clone());
    let parsed = concordat_io::parse_agreement(file_name, text.to_string());
    let mut status = StatusCode::OK;
    match &parsed.agreement {
        Some(new) if new.id != a.id => {
            status = StatusCode::BAD_REQUEST;
            page.errors.push((
                format!("The file is for agreement '{}', not '{}'", new.id, a.id),
                "diff".into(),
            ));
        }
        _ => {
            let errors: Vec<String> = parsed.errors().map(|f| f.render(file_name)).collect();
            for e in &errors {
                page.errors.push((e.clone(), "diff".into()));
            }
            if text == stored.source_text {
                page = page.section(untitled("same").with(Block::Inset("This file is the same as the current version: accepting it would change nothing.".into())));
            }
            let diff = line_diff(&stored.source_text, text);
            page = page.section(
                section(
                    &format!("Changes from version {}", stored.current_version),
                    "diff",
                )
                .with(Block::Code(diff)),
            );
            if errors.is_empty() && text != stored.source_text {
                let changes = parsed
                    .agreement
                    .as_ref()
                    .map(|new| concordat_app::governance::contribution_changes(a, new))
                    .unwrap_or_default();
                let mut accept = section("Accept it", "accept");
                let mut fields = vec![
                    field("source", "", FieldKind::Hidden).value(text),
                    field("file_name", "", FieldKind::Hidden).value(file_name),
                    field("based_on", "", FieldKind::Hidden).value(stored.source_sha256.clone()),
                ];
                if !changes.is_empty() {
                    accept.push(Block::Table(table(
                        "Contributions this version varies",
                        vec![
                            cell("Fund"),
                            cell("Partner"),
                            cell("Year"),
                            num("Now"),
                            num("In this version"),
                        ],
                        changes
                            .iter()
                            .map(|c| {
                                vec![
                                    cell(c.fund.clone()),
                                    cell(c.partner.clone()),
                                    cell(c.year.to_string()),
                                    num(c.before.to_string()),
                                    num(c.after.to_string()),
                                ]
                            })
                            .collect(),
                    )));
                    fields.push(
                        field("authority", "The contribution-variation decision that authorised it", FieldKind::Text)
                            .hint("Its reference in the decision log; the decision's amount must cover the variations")
                            .error(authority_error.as_ref().map(|(m, _)| m.clone())),
                    );
                }
                if let Some(e) = authority_error {
                    page.errors.push(e);
                    status = StatusCode::UNPROCESSABLE_ENTITY;
                }
                accept.push(Block::Form(post_form(
                    format!("/agreements/{key}/versions/accept"),
                    p.csrf_token(),
                    "Accept as the new version",
                    fields,
                )));
                page = page.section(accept);
            } else if !errors.is_empty() {
                status = StatusCode::BAD_REQUEST;
            }
        }
    }
    Ok((status, page.html()?).into_response())
}

/// The most line pairs [`line_diff`] compares (4 million: 16 MB of table).
const MAX_DIFF_CELLS: usize = 4_000_000;

/// A line diff: `- ` removed, `+ ` added, `  ` unchanged (longest common subsequence; an
/// agreement file is a few hundred lines).
fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    // The comparison table grows with the product of the two lengths; an agreement file is
    // a few hundred lines, so anything far bigger is not one.
    if n.saturating_mul(m) > MAX_DIFF_CELLS {
        return format!(
            "The files are too large to compare line by line ({n} and {m} lines): is this the agreement file?"
        );
    }
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(format!("  {}", a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    // Show only the changes with three lines either side.
    let changed: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.starts_with("  "))
        .map(|(k, _)| k)
        .collect();
    if changed.is_empty() {
        return "No changes.".into();
    }
    let mut keep = vec![false; out.len()];
    for k in changed {
        for slot in keep
            .iter_mut()
            .take((k + 4).min(out.len()))
            .skip(k.saturating_sub(3))
        {
            *slot = true;
        }
    }
    let mut shown = Vec::new();
    let mut gap = false;
    for (k, line) in out.into_iter().enumerate() {
        if keep[k] {
            shown.push(line);
            gap = false;
        } else if !gap {
            shown.push("  …".into());
            gap = true;
        }
    }
    shown.join("\n")
}

#[derive(Deserialize, Default)]
pub(crate) struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    file_name: String,
    #[serde(default)]
    based_on: String,
    #[serde(default)]
    authority: String,
}

pub(crate) async fn version_accept(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Form(form): Form<AcceptForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::ChangeAgreement).await?;
    let stored = state
        .store
        .get_agreement(&key)
        .await?
        .ok_or(WebError::NotFound)?;
    if stored.source_sha256 != form.based_on {
        return Err(WebError::BadRequest(
            "The agreement changed since this version was compared with it. Upload the file again to see the changes against the current version.".into(),
        ));
    }
    let file = concordat_io::parse_agreement(&form.file_name, form.source.clone());
    let new = match &file.agreement {
        Some(new) if file.is_valid() && new.id == a.id => new.clone(),
        _ => return version_preview(&state, &p, &a, &form.file_name, &form.source, None).await,
    };
    let loaded = concordat_app::governance::load_version(
        state.store.as_ref(),
        &p.actor(),
        &state.now(),
        &file,
        &new,
        Some(form.authority.clone()),
    )
    .await;
    match loaded {
        Ok(_) => Ok(Redirect::to(&format!("/agreements/{key}#versions")).into_response()),
        Err(e) => match e.downcast::<concordat_app::governance::GovernanceRefusal>() {
            Ok(r) => {
                version_preview(
                    &state,
                    &p,
                    &a,
                    &form.file_name,
                    &form.source,
                    Some((r.message, r.field.to_string())),
                )
                .await
            }
            Err(e) => Err(WebError::Internal(e)),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// API tokens

#[derive(Deserialize, Default)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    token_id: String,
}

/// The roles a token made by `p` in `key` may have.
fn token_roles(p: &Principal, key: &str) -> Vec<Role> {
    concordat_core::access::token_roles(p.roles_in(key).unwrap_or(&[]))
}

pub(crate) async fn tokens_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::ManageTokens).await?;
    tokens_view(&state, &p, &a, Vec::new(), None).await
}

async fn tokens_view(
    state: &AppState,
    p: &Principal,
    a: &concordat_core::Agreement,
    errors: Vec<(String, String)>,
    created: Option<String>,
) -> Result<Response, WebError> {
    let key = &a.id;
    let mut page = Page::new(
        Chrome::for_user("API tokens", p).crumbs(agreement_crumbs(a)),
        "API tokens",
    )
    .caption(a.title.clone());
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page.errors = errors.clone();
    if let Some(token) = created {
        page.success = Some("The token is created".into());
        page = page.section(
            section("The new token", "new-token")
                .with(Block::Warning(
                    "Copy it now: it is shown only once, and Concordat keeps only its hash.".into(),
                ))
                .with(Block::Code(token)),
        );
    }
    let tokens = state.store.api_tokens(key).await?;
    let rows = tokens
        .iter()
        .map(|t| {
            vec![
                cell(t.token_id.clone()),
                cell(t.name.clone()),
                cell(Role::parse(&t.role).map_or(t.role.clone(), |r| r.label().to_string())),
                cell(crate::views::when(&t.created_at)),
                cell(t.created_by.clone()),
                match &t.revoked_at {
                    Some(at) => cell(format!("revoked {}", crate::views::when(at))).tag("grey"),
                    None => cell("valid").tag("green"),
                },
            ]
        })
        .collect::<Vec<_>>();
    let mut list = section("Tokens", "tokens");
    if rows.is_empty() {
        list.push(Block::Para(
            "There are no tokens for this partnership.".into(),
        ));
    } else {
        list.push(Block::Table(table(
            "Tokens for machine clients",
            vec![
                cell("Id"),
                cell("Name"),
                cell("Role"),
                cell("Created"),
                cell("By"),
                cell("Status"),
            ],
            rows,
        )));
    }
    page = page.section(list);
    let error_for = |id: &str| errors.iter().find(|(_, t)| t == id).map(|(m, _)| m.clone());
    let roles: Vec<(String, String)> = token_roles(p, key)
        .iter()
        .map(|r| (r.as_str().to_string(), r.label().to_string()))
        .collect();
    page = page.section(
        section("Create a token", "create").with(Block::Form(post_form(
            format!("/agreements/{key}/tokens"),
            p.csrf_token(),
            "Create token",
            vec![
                field("action", "", FieldKind::Hidden).value("create"),
                field("name", "What the token is for", FieldKind::Text)
                    .hint("For example, the council's finance system")
                    .error(error_for("name")),
                field("role", "Role", FieldKind::Select(roles)).value("viewer"),
            ],
        ))),
    );
    let valid: Vec<(String, String)> = tokens
        .iter()
        .filter(|t| t.revoked_at.is_none())
        .map(|t| (t.token_id.clone(), format!("{} ({})", t.token_id, t.name)))
        .collect();
    if !valid.is_empty() {
        let mut form = post_form(
            format!("/agreements/{key}/tokens"),
            p.csrf_token(),
            "Revoke token",
            vec![
                field("action", "", FieldKind::Hidden).value("revoke"),
                field("token_id", "Token to revoke", FieldKind::Select(valid))
                    .error(error_for("token_id")),
            ],
        );
        form.warning = true;
        page = page.section(section("Revoke a token", "revoke").with(Block::Form(form)));
    }
    Ok((status, page.html()?).into_response())
}

pub(crate) async fn token_change(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::ManageTokens).await?;
    match form.action.as_str() {
        "create" => {
            if form.name.trim().is_empty() {
                return tokens_view(
                    &state,
                    &p,
                    &a,
                    vec![("Enter what the token is for".into(), "name".into())],
                    None,
                )
                .await;
            }
            let role = Role::parse(&form.role)
                .filter(|r| token_roles(&p, &key).contains(r))
                .ok_or_else(|| {
                    WebError::BadRequest(
                        "Choose a role you hold yourself (or viewer): a token cannot do more than the person who creates it".into(),
                    )
                })?;
            let (secret, token_id) = crate::auth::new_api_token();
            state
                .store
                .change_accounts(
                    &p.actor(),
                    &state.now(),
                    AccountChange::CreateToken(ApiTokenRow {
                        partnership_key: key.clone(),
                        token_id,
                        token_hash: crate::auth::token_hash(&secret),
                        name: form.name.trim().to_string(),
                        role: role.as_str().to_string(),
                        created_at: String::new(),
                        created_by: String::new(),
                        revoked_at: None,
                    }),
                )
                .await?;
            tokens_view(&state, &p, &a, Vec::new(), Some(secret)).await
        }
        "revoke" => {
            match state
                .store
                .change_accounts(
                    &p.actor(),
                    &state.now(),
                    AccountChange::RevokeToken {
                        partnership_key: key.clone(),
                        token_id: form.token_id.clone(),
                    },
                )
                .await
            {
                Ok(()) => tokens_view(&state, &p, &a, Vec::new(), None).await,
                Err(concordat_store::StoreError::Invalid(m)) => {
                    tokens_view(&state, &p, &a, vec![(m, "token_id".into())], None).await
                }
                Err(e) => Err(e.into()),
            }
        }
        _ => Err(WebError::BadRequest("Unknown action".into())),
    }
}
