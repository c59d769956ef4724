//! The application functions: what a face (the command line, the web pages, the JSON API)
//! asks for, written once so the faces cannot disagree. Each reads from the store, asks
//! `concordat-core` for the figures and hands back the core's own types or a report model;
//! printing, rendering and HTTP stay with the faces.

pub mod finance;
pub mod import;

use anyhow::Result;
use concordat_core::agreement::{Agreement, Fund, FundKind};
use concordat_core::monitor::{
    self, CrossSubsidyReport, Dimension, Exposure, ForecastMethod, MonitorInput, Monitoring,
    RingFenceBreach,
};
use concordat_core::statement::{self, MemorandumInput, QuarterlyInput};
use concordat_core::{FinancialYear, Period, Quarter};
use concordat_report::statements::{self as reports, Context as ReportContext};
use concordat_store::Store;
use serde::Serialize;

use crate::finance::FundYear;

/// A fund's monitoring for a period, with everything the monitoring screens show beside the
/// table: each partner's exposure under the risk share, cross-subsidy flags for an aligned
/// budget, and ring-fence breaches.
#[derive(Debug, Serialize)]
pub struct FundMonitoring {
    pub agreement: String,
    pub monitoring: Monitoring,
    pub exposure: Exposure,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_subsidy: Option<CrossSubsidyReport>,
    pub ring_fence_breaches: Vec<RingFenceBreach>,
    /// The fund's year had no budget and no postings: every figure is zero.
    #[serde(skip)]
    pub empty: bool,
}

/// Monitoring of `fund` at `as_at`, grouped `by`, forecast by `method`.
pub async fn fund_monitoring(
    store: &dyn Store,
    agreement: &Agreement,
    fund: &Fund,
    as_at: Period,
    method: ForecastMethod,
    by: Dimension,
) -> Result<FundMonitoring> {
    let data = finance::fund_year(store, &agreement.id, fund, as_at.year(), as_at).await?;
    let input = MonitorInput {
        fund,
        as_at,
        totals: &data.totals,
        budgets: &data.budgets,
        commitments: &data.commitments,
        overrides: &data.overrides,
        method,
    };
    let monitoring = monitor::monitor(&input, by)?;
    let other = finance::other_pools_underspend(store, agreement, fund, as_at, method).await?;
    let exposure = monitor::in_year_exposure(&input, other)?;
    let cross_subsidy = (fund.kind == FundKind::Aligned)
        .then(|| monitor::cross_subsidy(&input))
        .transpose()?;
    let ring_fence_breaches = monitor::ring_fences(&input, &agreement.localities)?;
    Ok(FundMonitoring {
        agreement: agreement.id.clone(),
        monitoring,
        exposure,
        cross_subsidy,
        ring_fence_breaches,
        empty: is_empty(&data),
    })
}

fn is_empty(data: &FundYear) -> bool {
    data.budgets.is_empty() && data.totals.is_empty()
}

/// Which statement: the pool manager's quarterly report, or the year-end memorandum account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Quarter(Quarter),
    Year(FinancialYear),
}

impl StatementKind {
    pub fn year(self) -> FinancialYear {
        match self {
            StatementKind::Quarter(q) => q.year(),
            StatementKind::Year(y) => y,
        }
    }

    /// The last period the statement covers.
    pub fn as_at(self) -> Period {
        match self {
            StatementKind::Quarter(q) => q.periods()[2],
            StatementKind::Year(y) => y.period(12).expect("a year has a P12"),
        }
    }
}

/// A statement ready to render, with the file name it is saved under (without extension).
pub struct Statement {
    pub report: concordat_report::Report,
    pub file_stem: String,
    /// No payments of contributions are recorded, so they are counted as received when due.
    pub received_as_due: bool,
    /// The fund's year had no budget and no postings: every figure is zero.
    pub empty: bool,
}

/// Said wherever contributions are counted as received without a payment on record.
pub const RECEIVED_AS_DUE: &str = "no payments of contributions to this fund are recorded for the year, so contributions are taken as received when due (record them with `concordat payment record`)";

/// The statement of `kind` for `fund`, prepared by `prepared_by` at `prepared_at`.
pub async fn statement(
    store: &dyn Store,
    agreement: &Agreement,
    fund: &Fund,
    kind: StatementKind,
    method: ForecastMethod,
    prepared_by: &str,
    prepared_at: &str,
) -> Result<Statement> {
    let year = kind.year();
    let as_at = kind.as_at();
    let data = finance::fund_year(store, &agreement.id, fund, year, as_at).await?;
    let other = match kind {
        StatementKind::Quarter(_) => {
            finance::other_pools_underspend(store, agreement, fund, as_at, method).await?
        }
        StatementKind::Year(_) => {
            finance::other_pools_year_end_underspend(store, agreement, fund, year).await?
        }
    };
    let ctx = ReportContext {
        agreement,
        fund,
        prepared_at: prepared_at.to_string(),
        prepared_by: prepared_by.to_string(),
    };
    // Received by the end of the quarter, or of the year: a payment made later is a debtor
    // at the date of the statement.
    let up_to = Some(match kind {
        StatementKind::Quarter(q) => q.last_day(),
        StatementKind::Year(y) => y.last_day(),
    });
    let received = finance::contributions_received(store, &agreement.id, fund, year, up_to).await?;
    let (report, file_stem) = match kind {
        StatementKind::Quarter(quarter) => {
            let s = statement::quarterly_statement(&QuarterlyInput {
                fund,
                quarter,
                totals: &data.totals,
                budgets: &data.budgets,
                commitments: &data.commitments,
                overrides: &data.overrides,
                method,
                transfers: &agreement.transfers,
                received_to_date: received.as_ref(),
                other_pools_underspend: other,
            })?;
            (
                reports::quarterly_report(&ctx, &s),
                format!("statement-{}-{}", fund.id, file_part(&quarter.to_string())),
            )
        }
        StatementKind::Year(year) => {
            let m = statement::memorandum(&MemorandumInput {
                fund,
                year,
                totals: &data.totals,
                other_income: Vec::new(),
                received: received.clone(),
                other_pools_underspend: other,
            })?;
            (
                reports::memorandum_report(&ctx, &m),
                format!("memorandum-{}-{}", fund.id, file_part(&year.to_string())),
            )
        }
    };
    let received_as_due = received.is_none();
    Ok(Statement {
        report: with_received_note(report, received_as_due),
        file_stem,
        received_as_due,
        empty: is_empty(&data),
    })
}

/// The report with a line in its title block saying how contributions received were counted.
fn with_received_note(
    mut report: concordat_report::Report,
    as_due: bool,
) -> concordat_report::Report {
    report.meta.push((
        "Contributions received".into(),
        if as_due {
            "taken as received when due: no payments are recorded".into()
        } else {
            "as recorded in Concordat".into()
        },
    ));
    report
}

/// `2024/25-P06` as `2024-25-P06`, for a file name.
pub fn file_part(text: &str) -> String {
    text.replace('/', "-")
}

/// The agreement `id` and its fund `fund_id`, or the agreement's only fund.
pub async fn agreement_and_fund(
    store: &dyn Store,
    id: &str,
    fund_id: Option<&str>,
) -> Result<(Agreement, String)> {
    let agreement = finance::stored_agreement(store, id).await?;
    let fund = finance::fund_or_only(&agreement, fund_id)?.id.clone();
    Ok((agreement, fund))
}
