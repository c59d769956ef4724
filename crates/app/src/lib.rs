//! The application functions: what a face (the command line, the web pages, the JSON API)
//! asks for, written once so the faces cannot disagree. Each reads from the store, asks
//! `concordat-core` for the figures and hands back the core's own types or a report model;
//! printing, rendering and HTTP stay with the faces.

pub mod finance;
pub mod governance;
pub mod import;

use anyhow::Result;
use concordat_core::agreement::{Agreement, Fund, FundKind};
use concordat_core::monitor::{
    self, CrossSubsidyReport, Dimension, Exposure, ForecastMethod, MonitorInput, Monitoring,
    RingFenceBreach,
};
use concordat_core::statement::{self, ChartPoint, MemorandumInput, QuarterlyInput};
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
    /// Budget, actual and forecast, cumulative across the year.
    pub chart: Vec<ChartPoint>,
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
    let chart = statement::cumulative_chart(&input, monitoring.totals.forecast_outturn)?;
    Ok(FundMonitoring {
        chart,
        agreement: agreement.id.clone(),
        monitoring,
        exposure,
        cross_subsidy,
        ring_fence_breaches,
        empty: is_empty(&data),
    })
}

impl FundMonitoring {
    /// The monitoring as a report (tables, exposure chart, notes), for Excel, PDF or a page.
    pub fn report(
        &self,
        agreement: &Agreement,
        fund: &Fund,
        prepared_by: &str,
        prepared_at: &str,
    ) -> concordat_report::Report {
        let ctx = ReportContext {
            agreement,
            fund,
            prepared_at: prepared_at.to_string(),
            prepared_by: prepared_by.to_string(),
        };
        reports::monitoring_report(
            &ctx,
            &self.monitoring,
            Some(&self.exposure),
            self.cross_subsidy.as_ref(),
            &self.ring_fence_breaches,
        )
    }
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

/// A budget line to set or revise, as a pool manager asks for it.
pub struct BudgetRequest {
    pub year: FinancialYear,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    pub annual: concordat_core::Money,
    /// `even`, or twelve amounts.
    pub phasing: String,
    pub client_income: concordat_core::Money,
    pub reason: String,
    /// The reference of the decision in the decision log that authorises a revision.
    pub authority: Option<String>,
    /// Instead: the officer's role acting under the scheme of delegation, whose decision is
    /// recorded with the revision.
    pub delegated: Option<String>,
    /// Add the line even though it is close to an existing one.
    pub new_line: bool,
}

/// Why a budget was refused, naming the field at fault, in words for the person asking.
#[derive(Debug)]
pub struct BudgetRefusal {
    /// `service_line`, `annual`, `phasing`, `reason`, `partner` or `locality`.
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for BudgetRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BudgetRefusal {}

fn refuse(field: &'static str, message: String) -> anyhow::Error {
    BudgetRefusal { field, message }.into()
}

/// What setting a budget did: the revision stored, and whether the line is new.
pub struct BudgetSet {
    pub revision: i64,
    pub new_service_line: bool,
}

/// Sets (or revises) a budget line through the store's write path. A revision needs
/// authority: the reference of a decision in the log, or the delegated authority of the role
/// acting (checked against the scheme of delegation and recorded as a decision with the
/// revision, in one transaction). A refusal is a [`BudgetRefusal`] inside the error.
pub async fn set_budget(
    store: &dyn Store,
    actor: &concordat_store::Actor,
    at: &str,
    agreement: &Agreement,
    fund: &Fund,
    request: BudgetRequest,
) -> Result<BudgetSet> {
    let authority = request.authority.clone().filter(|a| !a.trim().is_empty());
    let delegated = request.delegated.clone().filter(|d| !d.trim().is_empty());
    let reason = request.reason.clone();
    let (mut row, new_service_line, previous) = budget_row(store, agreement, fund, request).await?;
    let delta = row.period_amounts_pence.iter().sum::<i64>() - previous.unwrap_or(0);
    let refuse_authority = |e: concordat_store::StoreError| match e {
        concordat_store::StoreError::Invalid(m) => refuse("authority", governance::capitalise(&m)),
        other => other.into(),
    };
    if let Some(officer) = delegated {
        use concordat_core::agreement::{DecisionLevelKind, DecisionType};
        let day = governance::day_of(at)?;
        // The log names the office, as the scheme of delegation does, not the role's code.
        let officer =
            concordat_core::governance::levels_for_role(&agreement.decision_levels, &officer)
                .into_iter()
                .find_map(|l| l.officer.clone())
                .unwrap_or(officer);
        let proposal = concordat_core::proceedings::Proposal {
            // The time of the change to the microsecond: unique for one writer.
            reference: format!("DEL-{}", at.replace([':', '-', '.'], "")),
            title: format!("Budget revision, {} / {}", row.fund, row.service_line),
            resolution: reason,
            level: DecisionLevelKind::Delegated,
            decision_type: DecisionType::BudgetRevision,
            meeting: None,
            agenda_item: None,
            officer: Some(officer),
            partner: None,
            decided_on: Some(day),
            fund: Some(fund.id.clone()),
            amount: Some(concordat_core::Money::from_pence(delta.abs())),
            votes: Vec::new(),
            published: false,
        };
        let decision = concordat_core::proceedings::decide(agreement, &proposal, None)
            .map_err(|r| refuse("authority", governance::capitalise(&r.to_string())))?;
        let decision_row = governance::decision_row(agreement, &decision)?;
        row.authority = Some(decision_row.reference.clone());
        let revisions = store
            .record_decision(actor, at, decision_row, vec![row])
            .await
            .map_err(refuse_authority)?;
        return Ok(BudgetSet {
            revision: revisions.first().copied().unwrap_or(1),
            new_service_line,
        });
    }
    if previous.is_some() && authority.is_none() {
        return Err(refuse(
            "authority",
            "This line already has a budget, so this is a revision: give the reference of the decision that authorised it, or act under your delegated authority".into(),
        ));
    }
    row.authority = authority;
    let revision = store
        .set_budget(actor, at, row)
        .await
        .map_err(refuse_authority)?;
    Ok(BudgetSet {
        revision,
        new_service_line,
    })
}

/// A refusal the app gives: of a governance record or decision, or of a budget line.
#[derive(Debug)]
pub enum Refused {
    Governance(governance::GovernanceRefusal),
    Budget(BudgetRefusal),
}

impl Refused {
    /// Takes the refusal out of an error; any other error is given back.
    pub fn of(e: anyhow::Error) -> std::result::Result<Refused, anyhow::Error> {
        match e.downcast::<governance::GovernanceRefusal>() {
            Ok(r) => Ok(Refused::Governance(r)),
            Err(e) => e.downcast::<BudgetRefusal>().map(Refused::Budget),
        }
    }
}

/// The store's row for a budget request, checked; whether its service line is new; and the
/// line's current annual amount in pence, if it has a budget already.
pub(crate) async fn budget_row(
    store: &dyn Store,
    agreement: &Agreement,
    fund: &Fund,
    request: BudgetRequest,
) -> Result<(concordat_store::BudgetRow, bool, Option<i64>)> {
    use concordat_core::budget::{BudgetLine, Phasing};
    if let Some(p) = &request.partner {
        finance::check_partner(agreement, p).map_err(|e| refuse("partner", e.to_string()))?;
    }
    if let Some(l) = &request.locality {
        finance::check_locality(agreement, l).map_err(|e| refuse("locality", e.to_string()))?;
    }
    if request.reason.trim().is_empty() {
        return Err(refuse(
            "reason",
            "Say why the budget is set or revised, for the record".into(),
        ));
    }
    if request.annual.is_negative() {
        return Err(refuse(
            "annual",
            format!("A budget cannot be negative ({})", request.annual),
        ));
    }
    let year = request.year;
    let line_name = request.service_line.trim().to_string();
    if line_name.is_empty() {
        return Err(refuse("service_line", "Enter the service line".into()));
    }
    let known = finance::known_service_lines(store, &agreement.id, &fund.id, year).await?;
    let new_service_line = !known.contains(&line_name);
    if new_service_line && !request.new_line {
        let list: Vec<&str> = known.iter().map(String::as_str).collect();
        if let Some(near) = concordat_io::closest(&line_name, &list) {
            return Err(refuse(
                "service_line",
                format!(
                    "'{line_name}' is not yet a service line of fund '{}' in {year}; did you mean '{near}'? (to add it as a new line, say so)",
                    fund.id
                ),
            ));
        }
    }
    let phasing = Phasing::parse(&request.phasing).map_err(|e| refuse("phasing", e.to_string()))?;
    let line = BudgetLine {
        fund: fund.id.clone(),
        year,
        service_line: line_name.clone(),
        partner: request.partner.clone(),
        locality: request.locality.clone(),
        annual: request.annual,
        client_income: request.client_income,
        phasing,
    };
    line.check().map_err(|e| refuse("phasing", e.to_string()))?;
    let periods = line.gross_by_period()?;
    let year_start = i64::from(year.start_year());
    let previous = store
        .budgets(&agreement.id, Some(&fund.id), year_start)
        .await?
        .into_iter()
        .find(|b| {
            b.service_line == line_name
                && b.partner == request.partner
                && b.locality == request.locality
        })
        .map(|b| b.period_amounts_pence.iter().sum::<i64>());
    Ok((
        concordat_store::BudgetRow {
            partnership_key: agreement.id.clone(),
            fund: fund.id.clone(),
            year_start,
            service_line: line_name,
            partner: request.partner,
            locality: request.locality,
            period_amounts_pence: periods.iter().map(|m| m.pence()).collect(),
            client_income_pence: request.client_income.pence(),
            reason: request.reason,
            authority: request.authority,
        },
        new_service_line,
        previous,
    ))
}

/// What the store keeps of an agreement file that has been read and checked.
pub fn agreement_load(
    file: &concordat_io::AgreementFile,
    agreement: &Agreement,
) -> Result<concordat_store::AgreementLoad> {
    Ok(concordat_store::AgreementLoad {
        partnership_key: agreement.id.clone(),
        title: agreement.title.clone(),
        status: agreement.status.label().to_string(),
        source_path: file.name.clone(),
        source_text: file.source.clone(),
        source_sha256: file.sha256.clone(),
        model_json: serde_json::to_value(agreement)
            .map_err(|e| anyhow::anyhow!("cannot serialise the agreement: {e}"))?,
        partners: agreement
            .partners
            .iter()
            .map(|p| concordat_store::PartnerRow {
                partner_id: p.id.clone(),
                name: p.name.clone(),
                kind: p.kind.label().to_string(),
            })
            .collect(),
        authority: None,
    })
}
