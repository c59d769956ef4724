//! `concordat`: the command line for finance teams and administrators.

// Standard output goes through `out!`/`outln!` (the `output` module), which stop quietly
// when the reader of a pipe has gone; `println!` would panic.
#![warn(clippy::print_stdout)]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use concordat_app::{finance, import};
use concordat_core::agreement::Agreement;
use concordat_core::notice;
use concordat_io::{AgreementFile, read_agreement_file};
use concordat_store::{Actor, LoadOutcome, Store};
use jiff::civil::Date;

/// An import moves a million postings' worth of short strings between two threads; the
/// system allocator's free lists were a quarter of its time, mimalloc's thread-local heaps a
/// fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[macro_use]
mod output;

mod accounts_cmd;
mod calendar_cmd;
mod demo;
mod demo_governance;
mod governance_cmd;
mod money_cmds;
mod payments_cmd;
mod register_cmd;
mod summarize;
mod summary;

/// Concordat runs health and social care partnerships between councils and NHS bodies:
/// the Section 75 agreement, its money, its decisions and the record of all of it.
#[derive(Parser)]
#[command(name = "concordat", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DatabaseArgs {
    /// Where the data lives: a SQLite file (`sqlite:concordat.db`, the default, created on
    /// first use) or a PostgreSQL server (`postgres://user@host/db`).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:concordat.db")]
    database: String,
    /// Who is making the change, for the audit record (defaults to the login name).
    #[arg(long, env = "CONCORDAT_ACTOR")]
    actor: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Check agreement files against the format and the rules; exits non-zero if any has an error.
    Check {
        /// Agreement files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print errors only, not warnings.
        #[arg(long)]
        quiet: bool,
    },
    /// The earliest date an agreement can end if notice is served on a given day.
    Notice {
        /// The agreement file.
        file: PathBuf,
        /// The day notice is served (YYYY-MM-DD).
        #[arg(long)]
        served: Date,
    },
    /// Load, list and show agreements in the database.
    Agreement {
        #[command(subcommand)]
        command: AgreementCommand,
    },
    /// The audit log: every change, who made it, when, before and after.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Create a fresh embedded database, load the example agreements (the five seed partnerships) and summarise each.
    Demo {
        /// The SQLite file to create (it is replaced if it exists).
        #[arg(long, default_value = "concordat-demo.db")]
        database_file: PathBuf,
        /// Where the web application listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// Load the data and stop, without starting the web application.
        #[arg(long)]
        no_serve: bool,
    },
    /// Run the web application: pages, sign-in, and the JSON API under /api/v1.
    Serve {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// The server is reached through a proxy that terminates TLS: cookies are marked
        /// Secure and responses carry Strict-Transport-Security.
        #[arg(long)]
        behind_tls: bool,
        /// Log one JSON object a line instead of readable text.
        #[arg(long)]
        json_logs: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// What an agreement promises with a date (quarterly statements, annual returns, reviews,
    /// the end of its term) and what its records do (meetings, dispute steps, complaints, risk
    /// reviews, notice), as a table or an iCalendar file.
    Calendar(calendar_cmd::CalendarArgs),
    /// Meetings of the partnership's bodies: attendance, declarations, agenda and papers.
    #[command(subcommand)]
    Meeting(governance_cmd::MeetingCommand),
    /// Decisions, checked against the meeting, the body's terms and the scheme of delegation,
    /// with the budget changes they authorise; and the decision log.
    #[command(subcommand)]
    Decision(governance_cmd::DecisionCommand),
    /// Disputes between the partners, on the agreement's escalation ladder.
    #[command(subcommand)]
    Dispute(register_cmd::DisputeCommand),
    /// Complaints and compliments under the joint protocol.
    #[command(subcommand)]
    Complaint(register_cmd::ComplaintCommand),
    /// The partnership's risk register.
    #[command(subcommand)]
    Risk(register_cmd::RiskCommand),
    /// Notice to end the agreement, and the final statement of a pooled fund on exit.
    #[command(subcommand)]
    Exit(register_cmd::ExitCommand),
    /// Organisations users belong to, and the partners they are in each partnership.
    #[command(subcommand)]
    Org(accounts_cmd::OrgCommand),
    /// User accounts and their roles per partnership.
    #[command(subcommand)]
    User(accounts_cmd::UserCommand),
    /// Bearer tokens for machine clients of the API.
    #[command(subcommand)]
    Token(accounts_cmd::TokenCommand),
    /// Totals straight from a ledger CSV, with no database: postings summed exactly in pence,
    /// grouped by fund, service, period and/or partner. A bad row stops it with the line named.
    Summarize {
        /// The ledger CSV: a header row naming an `amount` column and the columns the grouping
        /// needs (`fund`, `service`, `partner`; `date` for period), in any order; others are ignored.
        file: PathBuf,
        /// What to group by: any of fund, service, period (the financial period of the date,
        /// e.g. 2024/25-P06), partner, in the order wanted.
        #[arg(long, value_delimiter = ',', default_value = "fund,service", value_parser = summarize::parse_dimension)]
        by: Vec<concordat_ledger::summarize::Dimension>,
        /// `table` to read, `csv` for a spreadsheet or another program.
        #[arg(long, value_enum, default_value = "table")]
        format: summarize::Format,
    },
    /// Import a partner's ledger extract (CSV or XLSX) through a column mapping, all or
    /// nothing: any bad row, a posting into a closed period or a repeated reference changes
    /// nothing and is listed. The same file twice adds nothing.
    Import {
        /// The ledger extract.
        file: PathBuf,
        /// The agreement (partnership) the ledger belongs to, e.g. `hertfordshire`.
        #[arg(long)]
        agreement: String,
        /// The column mapping (TOML; see docs/ledger-mapping.md).
        #[arg(long)]
        mapping: PathBuf,
        /// Bad rows listed in full; the rest are counted.
        #[arg(long, default_value_t = 100)]
        max_errors: usize,
        /// No progress bar, even on a terminal.
        #[arg(long)]
        no_progress: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Budgets per fund, year and service line, with phasing across P01–P12 and revisions.
    Budget {
        #[command(subcommand)]
        command: money_cmds::BudgetCommand,
    },
    /// Commitments: orders and care packages not yet invoiced.
    Commitment {
        #[command(subcommand)]
        command: money_cmds::CommitmentCommand,
    },
    /// The pool manager's forecast outturn for a service line, overriding the method, with
    /// the reason.
    Forecast(money_cmds::ForecastArgs),
    /// Budget monitoring as at a period: budget and actual to date, commitments, forecast
    /// outturn, variance, RAG; each partner's exposure under the risk share; cross-subsidy
    /// (aligned budgets) and ring-fence checks.
    Monitor(money_cmds::MonitorArgs),
    /// The pool manager's quarterly statement (--quarter) or the year-end memorandum account
    /// (--year), as PDF, Excel or CSV.
    Statement(money_cmds::StatementArgs),
    /// The year-end settlement under the risk share, to the penny: who owes whom.
    Settle(money_cmds::SettleArgs),
    /// Post a correction to an existing posting into an open period, linked to what it
    /// corrects.
    Correct(money_cmds::CorrectArgs),
    /// Move a posting (typically one in suspense) to where it belongs: a reversal and a
    /// re-posting, both in an open period.
    Reclassify(money_cmds::ReclassifyArgs),
    /// List postings of a fund's year, to drill down from a total.
    Postings(money_cmds::PostingsArgs),
    /// The ledger files imported into a partnership: when, by whom, rows and control total.
    Imports {
        #[arg(long)]
        agreement: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Payments received: contributions to funds and funding transfers.
    Payment {
        #[command(subcommand)]
        command: payments_cmd::PaymentCommand,
    },
    /// Each contribution's and funding transfer's instalments for a year: what has fallen
    /// due, what has been paid, what is outstanding.
    Schedule {
        #[arg(long)]
        agreement: String,
        /// The financial year, e.g. 2024/25.
        #[arg(long)]
        year: concordat_core::FinancialYear,
        /// The day to work it out at (YYYY-MM-DD); today by default.
        #[arg(long)]
        as_at: Option<Date>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Close (lock) a period: it then accepts no more postings. Refused while postings in it
    /// are in suspense.
    ClosePeriod {
        #[arg(long)]
        agreement: String,
        /// The period, e.g. 2024/25-P06.
        #[arg(
            long,
            required_unless_present = "period_argument",
            conflicts_with = "period_argument"
        )]
        period: Option<concordat_core::Period>,
        /// The period as a bare argument, as `close-period` first took it; kept so scripts
        /// written then still run.
        #[arg(hide = true, value_name = "PERIOD")]
        period_argument: Option<concordat_core::Period>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum AgreementCommand {
    /// Load an agreement file: a new agreement, or a new version of one already loaded.
    /// Loading the same file again changes nothing.
    Load {
        file: PathBuf,
        /// For a version that varies contributions: the reference of the
        /// contribution-variation decision in the decision log that authorised it.
        #[arg(long)]
        decision: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the agreements in the database.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Show an agreement: its parties, funds, terms and version history.
    Show {
        /// The agreement's id, e.g. `halton-st-helens`.
        id: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and name the first record that does not match.
    Verify {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Print the audit log, oldest first.
    Log {
        /// Only this agreement's records.
        #[arg(long)]
        agreement: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check { files, quiet } => Ok(check(&files, quiet)),
        Command::Notice { file, served } => notice_cmd(&file, served),
        Command::Agreement { command } => runtime()?.block_on(agreement_cmd(command)),
        Command::Audit { command } => runtime()?.block_on(audit_cmd(command)),
        Command::Demo {
            database_file,
            bind,
            no_serve,
        } => runtime()?.block_on(demo::run(
            &database_file,
            (!no_serve).then_some(bind.as_str()),
        )),
        Command::Serve {
            bind,
            behind_tls,
            json_logs,
            db,
        } => runtime()?.block_on(async {
            let store = open(&db).await?;
            accounts_cmd::serve(store, &bind, behind_tls, json_logs).await
        }),
        Command::Calendar(args) => runtime()?.block_on(calendar_cmd::calendar_cmd(args)),
        Command::Meeting(c) => runtime()?.block_on(governance_cmd::meeting_cmd(c)),
        Command::Decision(c) => runtime()?.block_on(governance_cmd::decision_cmd(c)),
        Command::Dispute(c) => runtime()?.block_on(register_cmd::dispute_cmd(c)),
        Command::Complaint(c) => runtime()?.block_on(register_cmd::complaint_cmd(c)),
        Command::Risk(c) => runtime()?.block_on(register_cmd::risk_cmd(c)),
        Command::Exit(c) => runtime()?.block_on(register_cmd::exit_cmd(c)),
        Command::Org(c) => runtime()?.block_on(accounts_cmd::org_cmd(c)),
        Command::User(c) => runtime()?.block_on(accounts_cmd::user_cmd(c)),
        Command::Token(c) => runtime()?.block_on(accounts_cmd::token_cmd(c)),
        Command::Summarize { file, by, format } => summarize::run(&file, &by, format),
        Command::Import {
            file,
            agreement,
            mapping,
            max_errors,
            no_progress,
            db,
        } => runtime()?.block_on(import_cmd(
            file,
            agreement,
            mapping,
            max_errors,
            no_progress,
            db,
        )),
        Command::Budget { command } => runtime()?.block_on(money_cmds::budget_cmd(command)),
        Command::Commitment { command } => runtime()?.block_on(money_cmds::commitment_cmd(command)),
        Command::Forecast(args) => runtime()?.block_on(money_cmds::forecast_cmd(args)),
        Command::Monitor(args) => runtime()?.block_on(money_cmds::monitor_cmd(args)),
        Command::Statement(args) => runtime()?.block_on(money_cmds::statement_cmd(args)),
        Command::Settle(args) => runtime()?.block_on(money_cmds::settle_cmd(args)),
        Command::Correct(args) => runtime()?.block_on(money_cmds::correct_cmd(args)),
        Command::Reclassify(args) => runtime()?.block_on(money_cmds::reclassify_cmd(args)),
        Command::Postings(args) => runtime()?.block_on(money_cmds::postings_cmd(args)),
        Command::Imports { agreement, db } => {
            runtime()?.block_on(money_cmds::imports_cmd(agreement, db))
        }
        Command::Payment { command } => runtime()?.block_on(payments_cmd::payment_cmd(command)),
        Command::Schedule {
            agreement,
            year,
            as_at,
            db,
        } => runtime()?.block_on(payments_cmd::schedule_cmd(agreement, year, as_at, db)),
        Command::ClosePeriod {
            agreement,
            period,
            period_argument,
            db,
        } => {
            let Some(period) = period.or(period_argument) else {
                bail!("say which period to close: --period 2024/25-P06");
            };
            runtime()?.block_on(money_cmds::close_period_cmd(agreement, period, db))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn check(files: &[PathBuf], quiet: bool) -> ExitCode {
    let mut failed = 0;
    for path in files {
        let name = path.display().to_string();
        match read_agreement_file(path) {
            Err(e) => {
                outln!("{name}:1:1: error[A000]: {}", e.source);
                failed += 1;
            }
            Ok(file) => {
                for f in &file.findings {
                    if !quiet || f.finding.severity == concordat_core::Severity::Error {
                        outln!("{}", f.render(&name));
                    }
                }
                if !file.is_valid() {
                    failed += 1;
                }
            }
        }
    }
    let total = files.len();
    if failed == 0 {
        eprintln!("{total} agreement file{} checked: all valid", plural(total));
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{total} agreement file{} checked: {failed} with errors",
            plural(total)
        );
        ExitCode::FAILURE
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Reads a file and insists it is a valid agreement, printing its errors otherwise.
fn load_valid(path: &Path) -> Result<(AgreementFile, Agreement)> {
    let file = read_agreement_file(path)?;
    let name = path.display().to_string();
    match &file.agreement {
        Some(a) if file.is_valid() => {
            let a = a.clone();
            Ok((file, a))
        }
        _ => {
            for f in file.errors() {
                eprintln!("{}", f.render(&name));
            }
            bail!(
                "{name} is not a valid agreement: nothing was changed (run `concordat check {name}` for every finding)"
            )
        }
    }
}

fn notice_cmd(path: &Path, served: Date) -> Result<ExitCode> {
    let (_, agreement) = load_valid(path)?;
    let outcome = notice::earliest_end(&agreement, served)?;
    outln!("{}", outcome.earliest_end);
    for line in outcome.reasoning {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn actor(db: &DatabaseArgs) -> Actor {
    let name = db
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_string());
    Actor {
        name: format!("cli:{name}"),
    }
}

/// The moment of a change, read here at the edge and passed in: the store never reads a clock.
fn now() -> String {
    jiff::Timestamp::now().to_string()
}

pub(crate) fn today() -> Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

async fn open(db: &DatabaseArgs) -> Result<Box<dyn Store>> {
    Ok(concordat_store::open(&db.database).await?)
}

/// What the store keeps of a loaded agreement file.
pub(crate) fn describe_outcome(key: &str, outcome: &LoadOutcome) -> String {
    match outcome {
        LoadOutcome::Created { version } => format!("{key}: loaded as version {version}"),
        LoadOutcome::Unchanged { version } => {
            format!(
                "{key}: unchanged (the file is identical to version {version}); nothing was written"
            )
        }
        LoadOutcome::NewVersion { version, previous } => {
            format!(
                "{key}: version {version} loaded, replacing version {previous}; the change is in the audit log"
            )
        }
    }
}

async fn agreement_cmd(command: AgreementCommand) -> Result<ExitCode> {
    match command {
        AgreementCommand::Load { file, decision, db } => {
            let (checked, agreement) = load_valid(&file)?;
            let store = open(&db).await?;
            let outcome = concordat_app::governance::load_version(
                store.as_ref(),
                &actor(&db),
                &now(),
                &checked,
                &agreement,
                decision,
            )
            .await
            .map_err(|e| {
                match e.downcast::<concordat_app::governance::GovernanceRefusal>() {
                    Ok(r) => anyhow::anyhow!("--decision: {}. Nothing was loaded.", r.message),
                    Err(e) => e,
                }
            })?;
            outln!("{}", describe_outcome(&agreement.id, &outcome));
        }
        AgreementCommand::List { db } => {
            let store = open(&db).await?;
            let list = store.list_agreements().await?;
            if list.is_empty() {
                outln!("No agreements loaded. Load one with `concordat agreement load FILE`.");
            }
            for a in list {
                outln!(
                    "{:<36} {:<10} v{:<3} {}",
                    a.partnership_key,
                    a.status,
                    a.current_version,
                    a.title
                );
            }
        }
        AgreementCommand::Show { id, db } => {
            let store = open(&db).await?;
            let Some(stored) = store.get_agreement(&id).await? else {
                bail!(
                    "there is no agreement '{id}' in the database (see `concordat agreement list`)"
                );
            };
            let agreement: Agreement = serde_json::from_value(stored.model_json.clone())
                .context("the stored agreement cannot be read back")?;
            out!("{}", summary::render(&agreement, today()));
            outln!("Versions:");
            for v in &stored.versions {
                outln!(
                    "  v{} loaded {} by {} (sha256 {})",
                    v.version,
                    v.loaded_at,
                    v.loaded_by,
                    &v.source_sha256[..12.min(v.source_sha256.len())]
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import_cmd(
    file: PathBuf,
    agreement: String,
    mapping: PathBuf,
    max_errors: usize,
    no_progress: bool,
    db: DatabaseArgs,
) -> Result<ExitCode> {
    let store = open(&db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
    let bar = (!no_progress && std::io::stderr().is_terminal()).then(progress_bar);
    let listener = bar.clone().map(|bar| {
        std::sync::Arc::new(move |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        }) as import::Progress
    });
    let imported = import::import(
        store.as_ref(),
        &actor(&db),
        &now(),
        import::ImportRequest {
            agreement: &agreement,
            file: &file,
            mapping: &mapping,
            max_errors,
            progress: listener,
            file_label: None,
        },
    )
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    out!("{}", import::describe(&agreement, &imported?));
    Ok(ExitCode::SUCCESS)
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} reading [{bar:40}] {bytes}/{total_bytes} ({eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

async fn audit_cmd(command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify { db } => {
            let store = open(&db).await?;
            let report = store.verify_audit().await?;
            match &report.first_mismatch {
                None => {
                    let n = report.records_checked;
                    let s = if n == 1 { "" } else { "s" };
                    outln!("audit chain intact: {n} record{s} checked");
                    Ok(ExitCode::SUCCESS)
                }
                Some(m) => {
                    outln!(
                        "audit chain BROKEN at {} record {}: {}",
                        m.partnership_key,
                        m.seq,
                        m.reason
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Log { agreement, db } => {
            let store = open(&db).await?;
            for r in store.audit_log(agreement.as_deref()).await? {
                outln!(
                    "{} #{} {} {} {} {} {}",
                    r.partnership_key,
                    r.seq,
                    r.recorded_at,
                    r.actor,
                    r.action,
                    r.entity,
                    &r.hash[..12.min(r.hash.len())]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
