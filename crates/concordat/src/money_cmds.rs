//! The pool manager's month on the command line: import, budgets, commitments, forecast
//! overrides, monitoring, statements, settlement and period close. Each command reads the
//! agreement from the database, asks `concordat-core` for the figures and prints or writes
//! them; every change goes through the store, which records it in the audit log.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use concordat_core::agreement::{Agreement, Fund};
use concordat_core::monitor::{
    self, CrossSubsidyReport, Dimension, Exposure, ForecastMethod, Monitoring, RingFenceBreach,
};
use concordat_core::statement::{self, MemorandumInput, Settlement};
use concordat_core::{FinancialYear, Money, Period, Quarter};
use concordat_store::{CommitmentRow, ForecastOverrideRow, Store};

use crate::{DatabaseArgs, actor, now, open};
use concordat_app::finance::{self, FundYear};
use concordat_app::{RECEIVED_AS_DUE, StatementKind, file_part};

/// Which agreement and fund a command is about.
#[derive(clap::Args, Clone)]
pub(crate) struct FundArgs {
    /// The agreement's id, e.g. `hertfordshire`.
    #[arg(long)]
    agreement: String,
    /// The fund's id in the agreement; may be left out when the agreement has one fund.
    #[arg(long)]
    fund: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum BudgetCommand {
    /// Set a budget line for a fund's year, as its next revision (kept with its reason).
    Set {
        #[command(flatten)]
        target: FundArgs,
        /// The financial year, e.g. 2024/25.
        #[arg(long)]
        year: FinancialYear,
        /// The service line, as the ledger mapping names it.
        #[arg(long)]
        service_line: String,
        /// Whose budget this is, for aligned budgets (a partner id).
        #[arg(long)]
        partner: Option<String>,
        /// The locality, where budgets are set per locality.
        #[arg(long)]
        locality: Option<String>,
        /// The gross annual budget, e.g. `1,250,000.00`.
        #[arg(long, allow_hyphen_values = true)]
        annual: Money,
        /// `even` (12 equal parts to the penny) or 12 amounts P01..P12 separated by `;`,
        /// adding up to the annual budget.
        #[arg(long, default_value = "even")]
        phasing: String,
        /// Client income expected for the year (a positive amount), where the partners budget
        /// net of it.
        #[arg(long, default_value = "0")]
        client_income: Money,
        /// Why the budget is set or revised, for the record.
        #[arg(long)]
        reason: String,
        /// The reference of the decision in the decision log that authorised it; a revision
        /// needs one (or --delegated).
        #[arg(long, conflicts_with = "delegated")]
        authority: Option<String>,
        /// Revise under the delegated authority of this role (e.g. pool_manager), within the
        /// limit the agreement's scheme of delegation gives it; the officer's decision is
        /// recorded in the decision log with the revision.
        #[arg(long)]
        delegated: Option<String>,
        /// The service line is new, though its name is close to an existing one's.
        #[arg(long)]
        new_line: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The current budget lines of a fund's year.
    List {
        #[command(flatten)]
        target: FundArgs,
        #[arg(long)]
        year: FinancialYear,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Every revision of one budget line, with who set it, when and why.
    History {
        #[command(flatten)]
        target: FundArgs,
        #[arg(long)]
        year: FinancialYear,
        #[arg(long)]
        service_line: String,
        #[arg(long)]
        partner: Option<String>,
        #[arg(long)]
        locality: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum CommitmentCommand {
    /// Record an order or care package not yet invoiced.
    Record {
        #[command(flatten)]
        target: FundArgs,
        /// The order or package reference; unique in the partnership.
        #[arg(long)]
        reference: String,
        /// The period it was raised in, e.g. 2024/25-P05.
        #[arg(long)]
        period: Period,
        #[arg(long)]
        service_line: String,
        #[arg(long)]
        partner: Option<String>,
        #[arg(long)]
        locality: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        amount: Money,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Release an open commitment (invoiced or cancelled).
    Release {
        #[arg(long)]
        agreement: String,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The open commitments of a fund's year.
    List {
        #[command(flatten)]
        target: FundArgs,
        #[arg(long)]
        year: FinancialYear,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MonitorFormat {
    Table,
    Csv,
    Json,
    Xlsx,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum StatementFormat {
    Pdf,
    Xlsx,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum SettleFormat {
    Table,
    Csv,
    Json,
}

fn method_arg(text: &str) -> Result<ForecastMethod, String> {
    text.parse()
}

fn dimension_arg(text: &str) -> Result<Dimension, String> {
    text.parse()
}

#[derive(clap::Args)]
pub(crate) struct MonitorArgs {
    #[command(flatten)]
    target: FundArgs,
    /// The period to monitor as at, e.g. 2024/25-P06.
    #[arg(long)]
    period: Period,
    /// Rows by `service`, `partner` (of origin), `locality` or `fund`.
    #[arg(long, default_value = "service", value_parser = dimension_arg)]
    by: Dimension,
    /// How to forecast the outturn where the pool manager has set no override: `run-rate`,
    /// `profile` or `commitments`.
    #[arg(long, default_value = "run-rate", value_parser = method_arg)]
    method: ForecastMethod,
    #[arg(long, value_enum, default_value = "table")]
    format: MonitorFormat,
    /// Where to write the workbook (`--format xlsx`); default `monitor-FUND-PERIOD.xlsx`.
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(clap::Args)]
pub(crate) struct StatementArgs {
    #[command(flatten)]
    target: FundArgs,
    /// The pool manager's quarterly statement for a quarter, e.g. 2024/25-Q2.
    #[arg(long, conflicts_with = "year", required_unless_present = "year")]
    quarter: Option<Quarter>,
    /// The year-end memorandum account for a financial year, e.g. 2024/25.
    #[arg(long)]
    year: Option<FinancialYear>,
    /// Forecast method for the quarterly statement.
    #[arg(long, default_value = "run-rate", value_parser = method_arg)]
    method: ForecastMethod,
    #[arg(long, value_enum, default_value = "pdf")]
    format: StatementFormat,
    /// The file to write (a folder for `csv`); a name from the fund and period by default.
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(clap::Args)]
pub(crate) struct SettleArgs {
    #[command(flatten)]
    target: FundArgs,
    /// The financial year to settle, e.g. 2024/25.
    #[arg(long)]
    year: FinancialYear,
    #[arg(long, value_enum, default_value = "table")]
    format: SettleFormat,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(clap::Args)]
pub(crate) struct ForecastArgs {
    #[command(flatten)]
    target: FundArgs,
    /// The period the forecast is as at, e.g. 2024/25-P06.
    #[arg(long)]
    period: Period,
    #[arg(long)]
    service_line: String,
    /// The forecast outturn for the year.
    #[arg(long, allow_hyphen_values = true)]
    outturn: Money,
    /// Why the pool manager's forecast differs from the method's.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Everything a monitoring view needs, fetched once.
struct Loaded {
    agreement: Agreement,
    data: FundYear,
}

async fn load(
    store: &dyn Store,
    target: &FundArgs,
    year: FinancialYear,
    as_at: Period,
) -> Result<(Loaded, String)> {
    let agreement = finance::stored_agreement(store, &target.agreement).await?;
    let fund_id = finance::fund_or_only(&agreement, target.fund.as_deref())?
        .id
        .clone();
    let fund = finance::fund(&agreement, &fund_id)?;
    let data = finance::fund_year(store, &agreement.id, fund, year, as_at).await?;
    Ok((Loaded { agreement, data }, fund_id))
}

/// When a report is prepared, as its title block shows it.
fn prepared_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string()
}

pub(crate) async fn budget_cmd(command: BudgetCommand) -> Result<ExitCode> {
    match command {
        BudgetCommand::Set {
            target,
            year,
            service_line,
            partner,
            locality,
            annual,
            phasing,
            client_income,
            reason,
            authority,
            delegated,
            new_line,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &target.agreement).await?;
            let fund = finance::fund_or_only(&agreement, target.fund.as_deref())?;
            let set = concordat_app::set_budget(
                store.as_ref(),
                &actor(&db),
                &now(),
                &agreement,
                fund,
                concordat_app::BudgetRequest {
                    year,
                    service_line: service_line.clone(),
                    partner,
                    locality,
                    annual,
                    phasing,
                    client_income,
                    reason,
                    authority,
                    delegated,
                    new_line,
                },
            )
            .await
            .map_err(|e| match e.downcast::<concordat_app::BudgetRefusal>() {
                Ok(r) => anyhow::anyhow!("--{}: {}", r.field.replace('_', "-"), r.message),
                Err(e) => e,
            })?;
            if set.new_service_line {
                eprintln!(
                    "note: '{service_line}' is a new service line for fund '{}' in {year}",
                    fund.id
                );
            }
            let revision = set.revision;
            outln!(
                "{} {year} {service_line}: budget {annual} set as revision {revision}",
                fund.id
            );
        }
        BudgetCommand::List { target, year, db } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &target.agreement).await?;
            let fund = finance::fund_or_only(&agreement, target.fund.as_deref())?;
            let lines = store
                .budgets(&agreement.id, Some(&fund.id), i64::from(year.start_year()))
                .await?;
            if lines.is_empty() {
                outln!(
                    "No budget is set for {} in {year}. Set one with `concordat budget set`.",
                    fund.id
                );
                return Ok(ExitCode::SUCCESS);
            }
            outln!(
                "{:<36} {:<14} {:<14} {:>18} {:>16} {:>4}",
                "service line",
                "partner",
                "locality",
                "annual budget",
                "client income",
                "rev"
            );
            let mut total = Money::ZERO;
            for l in &lines {
                let annual = Money::from_pence(l.period_amounts_pence.iter().sum());
                total = total.checked_add(annual)?;
                outln!(
                    "{:<36} {:<14} {:<14} {:>18} {:>16} {:>4}",
                    l.service_line,
                    l.partner.as_deref().unwrap_or("-"),
                    l.locality.as_deref().unwrap_or("-"),
                    annual.to_string(),
                    Money::from_pence(l.client_income_pence).to_string(),
                    l.revision
                );
            }
            outln!("{:<66} {:>18}", "Total", total.to_string());
        }
        BudgetCommand::History {
            target,
            year,
            service_line,
            partner,
            locality,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &target.agreement).await?;
            let fund = finance::fund_or_only(&agreement, target.fund.as_deref())?;
            let history = store
                .budget_history(
                    &agreement.id,
                    &fund.id,
                    i64::from(year.start_year()),
                    &service_line,
                    partner.as_deref(),
                    locality.as_deref(),
                )
                .await?;
            if history.is_empty() {
                bail!(
                    "no budget has been set for {} {year} '{service_line}'",
                    fund.id
                );
            }
            for r in history {
                let annual = Money::from_pence(r.line.period_amounts_pence.iter().sum());
                outln!(
                    "revision {} {} set {} by {}: {}{}",
                    r.line.revision,
                    annual,
                    r.set_at,
                    r.set_by,
                    r.reason,
                    r.authority
                        .map(|a| format!(" (authority: {a})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn commitment_cmd(command: CommitmentCommand) -> Result<ExitCode> {
    match command {
        CommitmentCommand::Record {
            target,
            reference,
            period,
            service_line,
            partner,
            locality,
            amount,
            description,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &target.agreement).await?;
            let fund = finance::fund_or_only(&agreement, target.fund.as_deref())?;
            if let Some(p) = &partner {
                finance::check_partner(&agreement, p)?;
            }
            if let Some(l) = &locality {
                finance::check_locality(&agreement, l)?;
            }
            if amount.pence() <= 0 {
                bail!(
                    "--amount {amount}: a commitment is money still to be spent, so it is more than zero (release a commitment to take it off)"
                );
            }
            let known = finance::known_service_lines(
                store.as_ref(),
                &agreement.id,
                &fund.id,
                period.year(),
            )
            .await?;
            require_known_line(&known, &service_line, &fund.id, period.year())?;
            store
                .record_commitment(
                    &actor(&db),
                    &now(),
                    CommitmentRow {
                        partnership_key: agreement.id.clone(),
                        reference: reference.clone(),
                        fund: fund.id.clone(),
                        service_line,
                        partner,
                        locality,
                        year_start: i64::from(period.year().start_year()),
                        period: i64::from(period.number()),
                        amount_pence: amount.pence(),
                        description,
                    },
                )
                .await?;
            outln!(
                "commitment {reference} of {amount} recorded against {}",
                fund.id
            );
        }
        CommitmentCommand::Release {
            agreement,
            reference,
            reason,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            require_reason(&reason)?;
            store
                .release_commitment(&actor(&db), &now(), &agreement.id, &reference, &reason)
                .await?;
            outln!("commitment {reference} released");
        }
        CommitmentCommand::List { target, year, db } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &target.agreement).await?;
            let fund = finance::fund_or_only(&agreement, target.fund.as_deref())?;
            let open_ones = store
                .commitments(&agreement.id, Some(&fund.id), i64::from(year.start_year()))
                .await?;
            if open_ones.is_empty() {
                outln!("No open commitments for {} in {year}.", fund.id);
            }
            for c in open_ones {
                let c = c.commitment;
                outln!(
                    "{:<20} P{:02} {:<36} {:>16} {}",
                    c.reference,
                    c.period,
                    c.service_line,
                    Money::from_pence(c.amount_pence).to_string(),
                    c.description.unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn forecast_cmd(args: ForecastArgs) -> Result<ExitCode> {
    let store = open(&args.db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &args.target.agreement).await?;
    let fund = finance::fund_or_only(&agreement, args.target.fund.as_deref())?;
    require_reason(&args.reason)?;
    let known =
        finance::known_service_lines(store.as_ref(), &agreement.id, &fund.id, args.period.year())
            .await?;
    require_known_line(&known, &args.service_line, &fund.id, args.period.year())?;
    store
        .set_forecast_override(
            &actor(&args.db),
            &now(),
            ForecastOverrideRow {
                partnership_key: agreement.id.clone(),
                fund: fund.id.clone(),
                year_start: i64::from(args.period.year().start_year()),
                service_line: args.service_line.clone(),
                period: i64::from(args.period.number()),
                outturn_pence: args.outturn.pence(),
                reason: args.reason,
            },
        )
        .await?;
    outln!(
        "{} {}: forecast outturn for {} set to {}",
        fund.id,
        args.period,
        args.service_line,
        args.outturn
    );
    Ok(ExitCode::SUCCESS)
}

/// The monitoring view and its checks, as one value for JSON.
pub(crate) async fn monitor_cmd(args: MonitorArgs) -> Result<ExitCode> {
    let store = open(&args.db).await?;
    let (agreement, fund_id) = concordat_app::agreement_and_fund(
        store.as_ref(),
        &args.target.agreement,
        args.target.fund.as_deref(),
    )
    .await?;
    let fund = finance::fund(&agreement, &fund_id)?;
    let m = concordat_app::fund_monitoring(
        store.as_ref(),
        &agreement,
        fund,
        args.period,
        args.method,
        args.by,
    )
    .await?;
    if m.empty {
        warn_empty(fund, args.period.year());
    }
    match args.format {
        MonitorFormat::Table => out!(
            "{}",
            monitor_table(
                &agreement,
                &m.monitoring,
                &m.exposure,
                m.cross_subsidy.as_ref(),
                &m.ring_fence_breaches
            )
        ),
        MonitorFormat::Csv => out!("{}", monitor_csv(&m.monitoring)),
        MonitorFormat::Json => outln!("{}", serde_json::to_string_pretty(&m)?),
        MonitorFormat::Xlsx => {
            let report = m.report(&agreement, fund, &actor(&args.db).name, &prepared_now());
            let bytes = concordat_report::render_xlsx(&report)?;
            let path = args.output.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "monitor-{}-{}.xlsx",
                    fund.id,
                    file_part(&args.period.to_string())
                ))
            });
            write_file(&path, &bytes)?;
            outln!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses a service line the fund's year does not have, naming the likeliest one meant.
fn require_known_line(
    known: &std::collections::BTreeSet<String>,
    line: &str,
    fund: &str,
    year: FinancialYear,
) -> Result<()> {
    if known.contains(line) {
        return Ok(());
    }
    let list: Vec<&str> = known.iter().map(String::as_str).collect();
    match concordat_io::closest(line, &list) {
        Some(near) => bail!(
            "--service-line '{line}' is not a service line of fund '{fund}' in {year}; did you mean '{near}'?"
        ),
        None if list.is_empty() => bail!(
            "--service-line '{line}': fund '{fund}' has no budget and no postings in {year} yet"
        ),
        None => bail!(
            "--service-line '{line}' is not a service line of fund '{fund}' in {year}; it has: {}",
            list.join(", ")
        ),
    }
}

/// Refuses an empty reason, naming the flag: every change says why.
fn require_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        bail!("--reason: say why, for the record");
    }
    Ok(())
}

/// Says so when a fund's year has no budget and no postings: the figures would all be zero,
/// which reads as a fund on budget.
fn warn_empty(fund: &Fund, year: FinancialYear) {
    eprintln!(
        "note: fund '{}' has no budget and no postings for {year}: every figure is zero",
        fund.id
    );
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn percent_text(basis_points: Option<i64>) -> String {
    basis_points.map_or_else(
        || "n/a".into(),
        |bp| concordat_report::percent_number(concordat_core::Percent::from_basis_points(bp)),
    )
}

fn rag_text(rag: monitor::Rag) -> &'static str {
    match rag {
        monitor::Rag::Green => "green",
        monitor::Rag::Amber => "amber",
        monitor::Rag::Red => "red",
    }
}

fn basis_text(basis: monitor::ForecastBasis) -> &'static str {
    match basis {
        monitor::ForecastBasis::RunRate => "run-rate",
        monitor::ForecastBasis::Profile => "profile",
        monitor::ForecastBasis::Commitments => "commitments",
        monitor::ForecastBasis::Override => "override",
        monitor::ForecastBasis::Mixed => "mixed",
    }
}

fn dimension_column(by: Dimension) -> &'static str {
    match by {
        Dimension::ServiceLine => "service_line",
        Dimension::Partner => "partner",
        Dimension::Locality => "locality",
        Dimension::Fund => "fund",
    }
}

/// The monitoring rows as CSV: the columns are documented in docs/report-formats.md.
fn monitor_csv(m: &Monitoring) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fund,as_at,{},annual_budget,budget_to_date,actual_to_date,commitments,forecast_outturn,variance,variance_percent,rag,forecast_basis",
        dimension_column(m.by)
    );
    for r in m.rows.iter().chain(std::iter::once(&m.totals)) {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&m.fund),
            m.as_at,
            csv_field(&r.key),
            r.annual_budget.to_plain(),
            r.budget_to_date.to_plain(),
            r.actual_to_date.to_plain(),
            r.commitments.to_plain(),
            r.forecast_outturn.to_plain(),
            r.variance.to_plain(),
            r.variance_basis_points
                .map(|b| percent_text(Some(b)))
                .unwrap_or_default(),
            rag_text(r.rag),
            basis_text(r.forecast_basis)
        );
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn monitor_table(
    agreement: &Agreement,
    m: &Monitoring,
    exposure: &Exposure,
    cross: Option<&CrossSubsidyReport>,
    ring: &[RingFenceBreach],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — fund {} — monitoring as at {} (forecast: {})",
        agreement.title,
        m.fund,
        m.as_at,
        match m.method {
            ForecastMethod::RunRate => "run rate",
            ForecastMethod::Profile => "budget profile",
            ForecastMethod::Commitments => "commitments",
        }
    );
    let key_width = m
        .rows
        .iter()
        .map(|r| label(agreement, m.by, &r.key).chars().count())
        .max()
        .unwrap_or(5)
        .max(12);
    let _ = writeln!(
        out,
        "{:<key_width$} {:>16} {:>16} {:>16} {:>14} {:>16} {:>15} {:>8} {:<6}",
        match m.by {
            Dimension::ServiceLine => "service line",
            Dimension::Partner => "partner",
            Dimension::Locality => "locality",
            Dimension::Fund => "fund",
        },
        "annual budget",
        "budget to date",
        "actual to date",
        "commitments",
        "forecast",
        "variance",
        "var %",
        "RAG"
    );
    for r in m.rows.iter().chain(std::iter::once(&m.totals)) {
        let _ = writeln!(
            out,
            "{:<key_width$} {:>16} {:>16} {:>16} {:>14} {:>16} {:>15} {:>8} {:<6}{}",
            label(agreement, m.by, &r.key),
            r.annual_budget.to_string(),
            r.budget_to_date.to_string(),
            r.actual_to_date.to_string(),
            r.commitments.to_string(),
            r.forecast_outturn.to_string(),
            r.variance.to_string(),
            percent_text(r.variance_basis_points),
            rag_text(r.rag),
            if r.override_reasons.is_empty() {
                String::new()
            } else {
                format!("  override: {}", r.override_reasons.join("; "))
            }
        );
    }
    let t = &m.thresholds;
    let _ = writeln!(
        out,
        "RAG: amber over {}, red over {} of the annual budget; underspend amber over {}{}",
        t.amber_percent,
        t.red_percent,
        t.underspend_amber_percent,
        if t.default_used {
            " (Concordat's defaults: the agreement sets none)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "\nRisk share of the forecast variance ({}): {}",
        exposure.variance, exposure.rule
    );
    for s in &exposure.partners {
        let _ = writeln!(
            out,
            "  {:<40} {:>16}",
            finance::partner_name(agreement, &s.partner),
            s.amount.to_string()
        );
    }
    for (what, amount) in [
        ("met from other pools", exposure.other_pools),
        ("met from the risk pool", exposure.risk_pool),
        ("carried forward", exposure.carried_forward),
        ("contingency", exposure.contingency),
        ("not allocated by the agreement", exposure.unallocated),
    ] {
        if amount != Money::ZERO {
            let _ = writeln!(out, "  {what:<40} {:>16}", amount.to_string());
        }
    }
    if let Some(c) = cross {
        if c.cross_subsidies.is_empty() && c.own_budget_overspends.is_empty() {
            let _ = writeln!(out, "\nCross-subsidy: none found.");
        } else {
            let _ = writeln!(out, "\nCross-subsidy flags:");
            for x in &c.cross_subsidies {
                let _ = writeln!(
                    out,
                    "  {} money ({}) paid for {}, budgeted by {}",
                    finance::partner_name(agreement, &x.paying_partner),
                    x.amount,
                    x.service_line,
                    x.budget_partners
                        .iter()
                        .map(|p| finance::partner_name(agreement, p))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for o in &c.own_budget_overspends {
                let _ = writeln!(
                    out,
                    "  {} is {} over its own budget to date while {} under theirs",
                    finance::partner_name(agreement, &o.partner),
                    o.overspend,
                    o.underspent_partners
                        .iter()
                        .map(|s| format!(
                            "{} is {}",
                            finance::partner_name(agreement, &s.partner),
                            s.amount
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    if agreement.localities.iter().any(|l| l.ring_fenced) {
        if ring.is_empty() {
            let _ = writeln!(
                out,
                "\nRing-fences: every ring-fenced partner's money was spent in its locality."
            );
        } else {
            let _ = writeln!(out, "\nRing-fence breaches:");
            for b in ring {
                let _ = writeln!(
                    out,
                    "  {} money ring-fenced to {} spent {} on {}: {}",
                    finance::partner_name(agreement, &b.partner),
                    b.ring_fenced
                        .iter()
                        .map(|l| finance::locality_name(agreement, l))
                        .collect::<Vec<_>>()
                        .join(", "),
                    b.spent_in
                        .as_deref()
                        .map_or("with no locality".to_string(), |l| {
                            format!("in {}", finance::locality_name(agreement, l))
                        }),
                    b.service_line,
                    b.amount
                );
            }
        }
    }
    out
}

fn label(agreement: &Agreement, by: Dimension, key: &str) -> String {
    match by {
        Dimension::Partner => finance::partner_name(agreement, key).to_string(),
        Dimension::Locality => finance::locality_name(agreement, key).to_string(),
        _ => key.to_string(),
    }
}

pub(crate) async fn statement_cmd(args: StatementArgs) -> Result<ExitCode> {
    let store = open(&args.db).await?;
    let kind = match (args.quarter, args.year) {
        (Some(q), _) => StatementKind::Quarter(q),
        (None, Some(y)) => StatementKind::Year(y),
        (None, None) => bail!("say --quarter 2024/25-Q2 or --year 2024/25"),
    };
    let (agreement, fund_id) = concordat_app::agreement_and_fund(
        store.as_ref(),
        &args.target.agreement,
        args.target.fund.as_deref(),
    )
    .await?;
    let fund = finance::fund(&agreement, &fund_id)?;
    if args.quarter.is_none() && !matches!(args.method, ForecastMethod::RunRate) {
        eprintln!("note: --method plays no part in the memorandum account: the year is over");
    }
    let made = concordat_app::statement(
        store.as_ref(),
        &agreement,
        fund,
        kind,
        args.method,
        &actor(&args.db).name,
        &prepared_now(),
    )
    .await?;
    if made.empty {
        warn_empty(fund, kind.year());
    }
    let report = made.report;
    let stem = made.file_stem;
    match args.format {
        StatementFormat::Pdf => {
            let path = args
                .output
                .unwrap_or_else(|| PathBuf::from(format!("{stem}.pdf")));
            write_file(&path, &concordat_pdf::render_pdf(&report)?)?;
            outln!("wrote {}", path.display());
        }
        StatementFormat::Xlsx => {
            let path = args
                .output
                .unwrap_or_else(|| PathBuf::from(format!("{stem}.xlsx")));
            write_file(&path, &concordat_report::render_xlsx(&report)?)?;
            outln!("wrote {}", path.display());
        }
        StatementFormat::Csv => {
            let dir = args.output.unwrap_or_else(|| PathBuf::from(&stem));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, bytes) in concordat_report::render_csv(&report)? {
                let path = dir.join(&name);
                write_file(&path, &bytes)?;
                outln!("wrote {}", path.display());
            }
            // The charts too, as SVG, for anyone who would rather look than read.
            for section in &report.sections {
                for block in &section.blocks {
                    if let concordat_report::Block::Chart(chart) = block {
                        let path = dir.join(format!("{}.svg", chart.name));
                        write_file(&path, concordat_report::render_svg(chart).as_bytes())?;
                        outln!("wrote {}", path.display());
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn settle_cmd(args: SettleArgs) -> Result<ExitCode> {
    let store = open(&args.db).await?;
    let as_at = args.year.period(12).expect("P12");
    let (loaded, fund_id) = load(store.as_ref(), &args.target, args.year, as_at).await?;
    let agreement = &loaded.agreement;
    let fund = finance::fund(agreement, &fund_id)?;
    let data = &loaded.data;
    if !fund.contributions.iter().any(|c| c.year == args.year) {
        bail!(
            "the agreement sets no contributions to fund '{}' for {}: there is nothing to settle",
            fund.id,
            args.year
        );
    }
    if data.budgets.is_empty() && data.totals.is_empty() {
        warn_empty(fund, args.year);
    }
    let closed = store.closed_periods(&agreement.id).await?;
    if !closed.contains(&(i64::from(args.year.start_year()), 12)) {
        eprintln!(
            "note: {} is not closed, so this settlement is provisional: postings can still be added",
            as_at
        );
    }
    let suspense: Money = Money::checked_sum(
        data.totals
            .iter()
            .filter(|t| t.service_line == concordat_core::ledger::SUSPENSE)
            .map(|t| t.amount),
    )?;
    if suspense != Money::ZERO {
        eprintln!(
            "note: {suspense} of the year's spend is in suspense; reclassify it before settling"
        );
    }
    let other =
        finance::other_pools_year_end_underspend(store.as_ref(), agreement, fund, args.year)
            .await?;
    let received =
        finance::contributions_received(store.as_ref(), &agreement.id, fund, args.year, None)
            .await?;
    // The settlement is the memorandum account's: one reading of the year's totals.
    let settlement = statement::memorandum(&MemorandumInput {
        fund,
        year: args.year,
        totals: &data.totals,
        other_income: Vec::new(),
        received: received.clone(),
        other_pools_underspend: other,
    })?
    .settlement;
    if received.is_none() {
        eprintln!("note: {RECEIVED_AS_DUE}");
    }
    match args.format {
        SettleFormat::Table => out!("{}", settle_table(agreement, &settlement)),
        SettleFormat::Csv => out!("{}", settle_csv(&settlement)),
        SettleFormat::Json => outln!("{}", serde_json::to_string_pretty(&settlement)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn position_text(p: statement::Position) -> &'static str {
    match p {
        statement::Position::OwesHost => "owes the host",
        statement::Position::OwedByHost => "owed by the host",
        statement::Position::Settled => "settled",
    }
}

fn settle_csv(s: &Settlement) -> String {
    let mut out = String::from(
        "fund,year,partner,is_host,contribution_due,contribution_received,own_spend,risk_share,balance,position\n",
    );
    for l in &s.lines {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            csv_field(&s.fund),
            s.year,
            csv_field(&l.partner),
            l.is_host,
            l.contribution_due.to_plain(),
            l.contribution_received.to_plain(),
            l.own_spend.map(Money::to_plain).unwrap_or_default(),
            l.risk_share.to_plain(),
            l.balance.to_plain(),
            match l.position {
                statement::Position::OwesHost => "owes-host",
                statement::Position::OwedByHost => "owed-by-host",
                statement::Position::Settled => "settled",
            }
        );
    }
    out
}

pub(crate) fn settle_table(agreement: &Agreement, s: &Settlement) -> String {
    let mut out = String::new();
    let host = finance::partner_name(agreement, &s.host);
    let _ = writeln!(
        out,
        "{} — fund {} — year-end settlement {}\nhost: {host}",
        agreement.title, s.fund, s.year
    );
    let _ = writeln!(
        out,
        "  contributions due      {:>18}",
        s.contributions_due.to_string()
    );
    let _ = writeln!(
        out,
        "  contributions received {:>18}",
        s.contributions_received.to_string()
    );
    if s.other_income != Money::ZERO {
        let _ = writeln!(
            out,
            "  other income           {:>18}",
            s.other_income.to_string()
        );
    }
    let _ = writeln!(out, "  spend                  {:>18}", s.spend.to_string());
    let _ = writeln!(
        out,
        "  variance               {:>18}  ({})",
        s.variance.to_string(),
        if s.variance.is_negative() {
            "an underspend"
        } else if s.variance == Money::ZERO {
            "on budget"
        } else {
            "an overspend"
        }
    );
    let _ = writeln!(out, "  rule: {}", s.risk_share.rule);
    let names: Vec<String> = s
        .lines
        .iter()
        .map(|l| {
            format!(
                "{}{}",
                finance::partner_name(agreement, &l.partner),
                if l.is_host { " (host)" } else { "" }
            )
        })
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        out,
        "\n{:<width$} {:>16} {:>16} {:>16} {:>16}  position",
        "partner", "contribution due", "received", "risk share", "balance"
    );
    for (l, name) in s.lines.iter().zip(&names) {
        let _ = writeln!(
            out,
            "{name:<width$} {:>16} {:>16} {:>16} {:>16}  {}",
            l.contribution_due.to_string(),
            l.contribution_received.to_string(),
            l.risk_share.to_string(),
            l.balance.to_string(),
            if l.is_host {
                "host"
            } else {
                position_text(l.position)
            }
        );
    }
    let _ = writeln!(out);
    for l in s.lines.iter().filter(|l| !l.is_host) {
        let name = finance::partner_name(agreement, &l.partner);
        let amount = Money::from_pence(l.balance.pence().abs());
        let _ = match l.position {
            statement::Position::OwesHost => writeln!(out, "{name} owes {host} {amount}."),
            statement::Position::OwedByHost => writeln!(out, "{host} owes {name} {amount}."),
            statement::Position::Settled => writeln!(out, "{name} and {host} are settled."),
        };
    }
    if s.pool_balance_after != Money::ZERO {
        let _ = writeln!(
            out,
            "Left in the pool once everyone has settled: {}.",
            s.pool_balance_after
        );
    }
    out
}

/// `concordat close-period`.
pub(crate) async fn close_period_cmd(
    agreement: String,
    period: Period,
    db: DatabaseArgs,
) -> Result<ExitCode> {
    let store = open(&db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
    store
        .close_period(
            &actor(&db),
            &now(),
            &agreement.id,
            i64::from(period.year().start_year()),
            i64::from(period.number()),
        )
        .await?;
    outln!(
        "{} {period} closed: it accepts no more postings; corrections go into an open period",
        agreement.id
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub(crate) struct CorrectArgs {
    #[arg(long)]
    agreement: String,
    /// The reference of the posting corrected.
    #[arg(long)]
    corrects: String,
    /// The correction's own reference; unique in the partnership.
    #[arg(long)]
    reference: String,
    /// The correction's amount: negative to take spend off, positive to add it.
    #[arg(long, allow_hyphen_values = true)]
    amount: Money,
    /// The open period the correction goes into, e.g. 2024/25-P07.
    #[arg(long)]
    period: Period,
    /// The correction's date (in the period); the period's last day by default.
    #[arg(long)]
    date: Option<jiff::civil::Date>,
    /// Where the correction is posted; the corrected posting's own by default.
    #[arg(long)]
    service_line: Option<String>,
    #[arg(long)]
    partner: Option<String>,
    #[arg(long)]
    locality: Option<String>,
    /// Why, for the record.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(clap::Args)]
pub(crate) struct ReclassifyArgs {
    #[arg(long)]
    agreement: String,
    /// The posting to move (typically one in suspense).
    #[arg(long)]
    reference: String,
    /// Where it belongs; each left out keeps the posting's own.
    #[arg(long)]
    fund: Option<String>,
    #[arg(long)]
    service_line: Option<String>,
    #[arg(long)]
    partner: Option<String>,
    #[arg(long)]
    locality: Option<String>,
    /// The open period both corrections go into, e.g. 2024/25-P07.
    #[arg(long)]
    period: Period,
    #[arg(long)]
    date: Option<jiff::civil::Date>,
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(clap::Args)]
pub(crate) struct PostingsArgs {
    #[command(flatten)]
    target: FundArgs,
    #[arg(long)]
    year: FinancialYear,
    /// Only this period, e.g. 2024/25-P06.
    #[arg(long)]
    period: Option<Period>,
    #[arg(long)]
    service_line: Option<String>,
    #[arg(long)]
    partner: Option<String>,
    #[arg(long)]
    locality: Option<String>,
    /// At most this many, from the first by date and reference.
    #[arg(long, default_value_t = 50)]
    limit: i64,
    #[arg(long, default_value_t = 0)]
    offset: i64,
    #[command(flatten)]
    db: DatabaseArgs,
}

fn posting_date(period: Period, date: Option<jiff::civil::Date>) -> Result<jiff::civil::Date> {
    let date = date.unwrap_or_else(|| period.last_day());
    if Period::containing(date) != period {
        bail!("--date {date} is not in {period}");
    }
    Ok(date)
}

/// The posting with `reference`, and the partner and locality its correction goes to: those
/// given on the command line, else the posting's own, checked against the agreement.
async fn posting_and_placement(
    store: &dyn Store,
    agreement: &Agreement,
    reference: &str,
    partner: Option<String>,
    locality: Option<String>,
) -> Result<(concordat_store::PostingRow, Option<String>, Option<String>)> {
    let Some(found) = store.posting(&agreement.id, reference).await? else {
        bail!(
            "there is no posting with reference '{reference}' in {}",
            agreement.id
        );
    };
    let posting = found.posting;
    let partner = partner.or_else(|| posting.partner.clone());
    let locality = locality.or_else(|| posting.locality.clone());
    if let Some(p) = &partner {
        finance::check_partner(agreement, p)?;
    }
    if let Some(l) = &locality {
        finance::check_locality(agreement, l)?;
    }
    Ok((posting, partner, locality))
}

pub(crate) async fn correct_cmd(args: CorrectArgs) -> Result<ExitCode> {
    let store = open(&args.db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &args.agreement).await?;
    require_reason(&args.reason)?;
    let (o, partner, locality) = posting_and_placement(
        store.as_ref(),
        &agreement,
        &args.corrects,
        args.partner,
        args.locality,
    )
    .await?;
    let date = posting_date(args.period, args.date)?;
    let stored = store
        .post_correction(
            &actor(&args.db),
            &now(),
            &agreement.id,
            concordat_store::CorrectionRow {
                reference: args.reference,
                corrects_reference: args.corrects.clone(),
                date: date.to_string(),
                year_start: i64::from(args.period.year().start_year()),
                period: i64::from(args.period.number()),
                fund: o.fund,
                service_line: args.service_line.unwrap_or(o.service_line),
                partner,
                locality,
                amount_pence: args.amount.pence(),
                reason: args.reason,
            },
        )
        .await?;
    outln!(
        "correction {} of {} posted into {} ({}), correcting {}",
        stored.posting.reference,
        args.amount,
        args.period,
        stored.posting.service_line,
        args.corrects
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn reclassify_cmd(args: ReclassifyArgs) -> Result<ExitCode> {
    let store = open(&args.db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &args.agreement).await?;
    require_reason(&args.reason)?;
    let (o, partner, locality) = posting_and_placement(
        store.as_ref(),
        &agreement,
        &args.reference,
        args.partner,
        args.locality,
    )
    .await?;
    let fund = match args.fund {
        Some(f) => finance::fund(&agreement, &f)?.id.clone(),
        None => o.fund,
    };
    let date = posting_date(args.period, args.date)?;
    let [out, into] = store
        .reclassify(
            &actor(&args.db),
            &now(),
            &agreement.id,
            concordat_store::ReclassifyRow {
                reference: args.reference.clone(),
                fund,
                service_line: args.service_line.unwrap_or(o.service_line),
                partner,
                locality,
                date: date.to_string(),
                year_start: i64::from(args.period.year().start_year()),
                period: i64::from(args.period.number()),
                reason: args.reason,
            },
        )
        .await?;
    outln!(
        "{} moved in {}: {} reverses it from {} and {} posts it to {} {}",
        args.reference,
        args.period,
        out.posting.reference,
        out.posting.service_line,
        into.posting.reference,
        into.posting.fund,
        into.posting.service_line
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn postings_cmd(args: PostingsArgs) -> Result<ExitCode> {
    let store = open(&args.db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &args.target.agreement).await?;
    let fund = finance::fund_or_only(&agreement, args.target.fund.as_deref())?;
    if let Some(p) = args.period
        && p.year() != args.year
    {
        bail!("--period {p} is not in {}", args.year);
    }
    let filter = concordat_store::PostingFilter {
        fund: Some(fund.id.clone()),
        year_start: i64::from(args.year.start_year()),
        period_from: args.period.map(|p| i64::from(p.number())),
        period_to: args.period.map(|p| i64::from(p.number())),
        service_line: args.service_line,
        partner: args.partner,
        locality: args.locality,
    };
    let list = store
        .postings(&agreement.id, &filter, args.limit, args.offset)
        .await?;
    let (matching, total) =
        finance::matching_postings(store.as_ref(), &agreement.id, &filter).await?;
    if matching == 0 {
        outln!("No postings match.");
        return Ok(ExitCode::SUCCESS);
    }
    let shown = i64::try_from(list.len()).unwrap_or(i64::MAX);
    for p in list {
        let p = p.posting;
        outln!(
            "{} P{:02} {:<18} {:<32} {:<14} {:>16} {}{}",
            p.date,
            p.period,
            p.reference,
            p.service_line,
            p.partner.as_deref().unwrap_or("-"),
            Money::from_pence(p.amount_pence).to_string(),
            p.supplier.or(p.description).unwrap_or_default(),
            p.corrects_reference
                .map(|r| format!(" (corrects {r})"))
                .unwrap_or_default()
        );
    }
    outln!(
        "{}",
        postings_trailer(shown, args.offset.max(0), matching, total)
    );
    Ok(ExitCode::SUCCESS)
}

/// The line under a drill-down listing: which of the matching postings are shown, how many
/// match, what they all add up to, and how to see the next ones.
fn postings_trailer(shown: i64, offset: i64, matching: i64, total: Money) -> String {
    use concordat_app::import::grouped;
    let of = grouped(matching);
    let noun = if matching == 1 { "posting" } else { "postings" };
    let mut line = match (shown, offset) {
        (0, _) => format!("None shown from number {}: {of} {noun} match", offset + 1),
        (_, 0) => format!("Showing {} of {of} {noun}", grouped(shown)),
        (1, _) => format!("Showing posting {} of {of}", grouped(offset + 1)),
        _ => format!(
            "Showing postings {}–{} of {of}",
            grouped(offset + 1),
            grouped(offset + shown)
        ),
    };
    let _ = write!(line, "; total {total}");
    let next = offset + shown;
    if shown > 0 && next < matching {
        let _ = write!(line, " (--offset {next} for the next)");
    }
    line
}

pub(crate) async fn imports_cmd(agreement: String, db: DatabaseArgs) -> Result<ExitCode> {
    let store = open(&db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
    let list = store.imports(&agreement.id).await?;
    if list.is_empty() {
        outln!("Nothing has been imported into {} yet.", agreement.id);
    }
    for i in list {
        outln!(
            "#{:<4} {} by {}: {} — {} postings, control total {} (sha256 {})",
            i.import_id,
            i.imported_at,
            i.imported_by,
            i.file_name,
            concordat_app::import::grouped(i.rows),
            Money::from_pence(i.control_total_pence),
            &i.file_sha256[..12.min(i.file_sha256.len())]
        );
    }
    Ok(ExitCode::SUCCESS)
}
