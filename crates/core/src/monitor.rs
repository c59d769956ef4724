//! Budget monitoring for a fund as at a period: budget to date, actual to date, commitments,
//! forecast outturn, variance and RAG, by service line, partner of origin, locality or the
//! fund as a whole; cross-subsidy and ring-fence checks; each partner's in-year exposure
//! under the fund's risk share.
//!
//! Everything is worked out per cell (service line × partner × locality) and then added up,
//! so every view of the same figures adds up to the same totals row, to the penny.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::agreement::{Fund, Locality, MonitoringThresholds};
use crate::budget::{BudgetError, BudgetLine};
use crate::calendar::Period;
use crate::money::{AllocationError, Money, MoneyError, allocate};
use crate::percent::Percent;
use crate::risk_share::{RiskContext, RiskShareError, RiskShareOutcome, share_variance};

/// A total of postings for one fund, period, service line, partner of origin and locality
/// (what the store's totals table holds). Positive is spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalsLine {
    pub fund: String,
    pub period: Period,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    pub amount: Money,
}

/// Spend committed but not yet invoiced (care packages, orders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    pub fund: String,
    pub service_line: String,
    pub partner: Option<String>,
    pub locality: Option<String>,
    pub amount: Money,
}

/// The pool manager's own forecast outturn for a service line, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastOverride {
    pub service_line: String,
    pub outturn: Money,
    pub reason: String,
}

/// How the forecast outturn is worked out where there is no override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForecastMethod {
    /// Actual to date ÷ periods elapsed × 12 (rounded half away from zero to the penny).
    RunRate,
    /// Actual to date + the budget profile for the periods still to come.
    Profile,
    /// Actual to date + open commitments.
    Commitments,
}

impl ForecastMethod {
    /// The name [`FromStr`](std::str::FromStr) reads: `run-rate`, `profile`, `commitments`.
    pub fn as_str(self) -> &'static str {
        match self {
            ForecastMethod::RunRate => "run-rate",
            ForecastMethod::Profile => "profile",
            ForecastMethod::Commitments => "commitments",
        }
    }
}

impl std::str::FromStr for ForecastMethod {
    type Err = String;
    /// `run-rate`, `profile` or `commitments`, as written on the command line.
    fn from_str(text: &str) -> Result<ForecastMethod, String> {
        match text {
            "run-rate" => Ok(ForecastMethod::RunRate),
            "profile" => Ok(ForecastMethod::Profile),
            "commitments" => Ok(ForecastMethod::Commitments),
            other => Err(format!(
                "'{other}' is not a forecast method: use run-rate, profile or commitments"
            )),
        }
    }
}

/// The method behind a row's forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForecastBasis {
    RunRate,
    Profile,
    Commitments,
    /// The pool manager's override.
    Override,
    /// Some of the row's lines are overridden and some are not.
    Mixed,
}

impl From<ForecastMethod> for ForecastBasis {
    fn from(m: ForecastMethod) -> ForecastBasis {
        match m {
            ForecastMethod::RunRate => ForecastBasis::RunRate,
            ForecastMethod::Profile => ForecastBasis::Profile,
            ForecastMethod::Commitments => ForecastBasis::Commitments,
        }
    }
}

/// What the rows are by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dimension {
    ServiceLine,
    /// Partner of origin (for budgets, whose budget it is).
    Partner,
    Locality,
    /// One row for the fund as a whole.
    Fund,
}

impl Dimension {
    /// The name [`FromStr`](std::str::FromStr) reads: `service`, `partner`, `locality`, `fund`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::ServiceLine => "service",
            Dimension::Partner => "partner",
            Dimension::Locality => "locality",
            Dimension::Fund => "fund",
        }
    }
}

impl std::str::FromStr for Dimension {
    type Err = String;
    /// `service`, `partner`, `locality` or `fund`, as written on the command line.
    fn from_str(text: &str) -> Result<Dimension, String> {
        match text {
            "service" | "service-line" => Ok(Dimension::ServiceLine),
            "partner" => Ok(Dimension::Partner),
            "locality" => Ok(Dimension::Locality),
            "fund" => Ok(Dimension::Fund),
            other => Err(format!(
                "'{other}' is not something to monitor by: use service, partner, locality or fund"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rag {
    Green,
    Amber,
    Red,
}

/// The thresholds in force, with whether they are Concordat's defaults.
///
/// Concordat's defaults (not a rule of the Regulations): an overspend over 1% of the annual
/// budget is amber, over 3% red; an underspend over 3% is amber, because slippage matters to
/// the partners too (money they could have used elsewhere), but never red. "Over" is strictly
/// greater: exactly 1% is green. A line with no annual budget (zero or less) that overspends
/// at all is red.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    pub amber_percent: Percent,
    pub red_percent: Percent,
    pub amber_amount: Option<Money>,
    pub red_amount: Option<Money>,
    pub underspend_amber_percent: Percent,
    /// True when the agreement set none of them and Concordat's defaults are used.
    pub default_used: bool,
}

impl Thresholds {
    pub const DEFAULT_AMBER: Percent = Percent::from_basis_points(100);
    pub const DEFAULT_RED: Percent = Percent::from_basis_points(300);
    pub const DEFAULT_UNDERSPEND_AMBER: Percent = Percent::from_basis_points(300);

    pub fn for_fund(fund: &Fund) -> Thresholds {
        Thresholds::from_agreement(fund.monitoring.as_ref())
    }

    pub fn from_agreement(m: Option<&MonitoringThresholds>) -> Thresholds {
        let d = MonitoringThresholds::default();
        let m = m.unwrap_or(&d);
        Thresholds {
            amber_percent: m.amber_percent.unwrap_or(Self::DEFAULT_AMBER),
            red_percent: m.red_percent.unwrap_or(Self::DEFAULT_RED),
            amber_amount: m.amber_amount,
            red_amount: m.red_amount,
            underspend_amber_percent: m
                .underspend_amber_percent
                .unwrap_or(Self::DEFAULT_UNDERSPEND_AMBER),
            default_used: *m == d,
        }
    }

    /// What is wrong with the thresholds, if anything: a red threshold at or below its amber
    /// one would rate lines red before they were ever amber.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.red_percent <= self.amber_percent {
            out.push(format!(
                "monitoring: red_percent ({}) should be more than amber_percent ({})",
                self.red_percent, self.amber_percent
            ));
        }
        if let (Some(amber), Some(red)) = (self.amber_amount, self.red_amount)
            && red <= amber
        {
            out.push(format!(
                "monitoring: red_amount ({red}) should be more than amber_amount ({amber})"
            ));
        }
        out
    }

    /// The RAG of `variance` (forecast − annual budget, positive = overspend).
    pub fn rate(&self, variance: Money, annual: Money) -> Rag {
        let v = i128::from(variance.pence());
        let a = i128::from(annual.pence());
        // variance / annual > bp / 10,000, kept in integers.
        let over = |pct: Percent, magnitude: i128| -> bool {
            if a <= 0 {
                magnitude > 0
            } else {
                magnitude * 10_000 > i128::from(pct.basis_points()) * a
            }
        };
        if v > 0 {
            let past_amount = |t: Option<Money>| t.is_some_and(|t| variance > t);
            if over(self.red_percent, v) || past_amount(self.red_amount) {
                Rag::Red
            } else if over(self.amber_percent, v) || past_amount(self.amber_amount) {
                Rag::Amber
            } else {
                Rag::Green
            }
        } else if v < 0 && a > 0 && over(self.underspend_amber_percent, -v) {
            Rag::Amber
        } else {
            Rag::Green
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    #[error("budget: {0}")]
    Budget(#[from] BudgetError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("sharing an override: {0}")]
    Allocation(#[from] AllocationError),
    #[error("risk share: {0}")]
    RiskShare(#[from] RiskShareError),
    #[error("there are two forecast overrides for service line '{service_line}'")]
    DuplicateOverride { service_line: String },
}

/// What monitoring needs. Lines for other funds or years are ignored.
#[derive(Debug, Clone, Copy)]
pub struct MonitorInput<'a> {
    pub fund: &'a Fund,
    pub as_at: Period,
    pub totals: &'a [TotalsLine],
    pub budgets: &'a [BudgetLine],
    pub commitments: &'a [Commitment],
    pub overrides: &'a [ForecastOverride],
    pub method: ForecastMethod,
}

/// One row of the monitoring report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorRow {
    /// The service line, partner, locality or fund id; "(none)" where the lines do not say.
    pub key: String,
    pub annual_budget: Money,
    pub budget_to_date: Money,
    pub actual_to_date: Money,
    pub commitments: Money,
    pub forecast_outturn: Money,
    /// Forecast outturn − annual budget: positive is an overspend.
    pub variance: Money,
    /// Variance as basis points (hundredths of a per cent) of the annual budget, rounded
    /// half away from zero; `None` where there is no annual budget.
    pub variance_basis_points: Option<i64>,
    pub rag: Rag,
    pub forecast_basis: ForecastBasis,
    /// The reasons for any override in the row.
    pub override_reasons: Vec<String>,
}

/// The monitoring report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Monitoring {
    pub fund: String,
    pub as_at: Period,
    pub by: Dimension,
    pub method: ForecastMethod,
    pub thresholds: Thresholds,
    pub rows: Vec<MonitorRow>,
    /// The rows added up; its RAG is rated on its own figures.
    pub totals: MonitorRow,
}

/// The key used where a line does not name a partner or locality.
pub const NONE_KEY: &str = "(none)";

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
struct CellKey {
    service_line: String,
    partner: Option<String>,
    locality: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Cell {
    annual: Money,
    to_date: Money,
    actual: Money,
    commitments: Money,
    forecast: Money,
    overridden: Option<String>,
}

fn cells(input: &MonitorInput<'_>) -> Result<BTreeMap<CellKey, Cell>, MonitorError> {
    let fund = input.fund;
    let year = input.as_at.year();
    let net = fund.net_of_client_income;
    let mut cells: BTreeMap<CellKey, Cell> = BTreeMap::new();
    let key = |s: &str, p: &Option<String>, l: &Option<String>| CellKey {
        service_line: s.to_string(),
        partner: p.clone(),
        locality: l.clone(),
    };
    for b in input
        .budgets
        .iter()
        .filter(|b| b.fund == fund.id && b.year == year)
    {
        let c = cells
            .entry(key(&b.service_line, &b.partner, &b.locality))
            .or_default();
        c.annual = c.annual.checked_add(b.monitored_annual(net)?)?;
        c.to_date = c.to_date.checked_add(b.to_date(input.as_at, net)?)?;
    }
    for t in input.totals.iter().filter(|t| {
        t.fund == fund.id && t.period.year() == year && t.period.number() <= input.as_at.number()
    }) {
        let c = cells
            .entry(key(&t.service_line, &t.partner, &t.locality))
            .or_default();
        c.actual = c.actual.checked_add(t.amount)?;
    }
    for m in input.commitments.iter().filter(|m| m.fund == fund.id) {
        let c = cells
            .entry(key(&m.service_line, &m.partner, &m.locality))
            .or_default();
        c.commitments = c.commitments.checked_add(m.amount)?;
    }
    let elapsed = i128::from(input.as_at.number());
    for c in cells.values_mut() {
        c.forecast = match input.method {
            ForecastMethod::RunRate => {
                Money::from_pence(div_round(i128::from(c.actual.pence()) * 12, elapsed)?)
            }
            ForecastMethod::Profile => c.actual.checked_add(c.annual.checked_sub(c.to_date)?)?,
            ForecastMethod::Commitments => c.actual.checked_add(c.commitments)?,
        };
    }
    // Overrides: the service line's outturn is shared across its cells in proportion to
    // their annual budgets (equally where none has a positive budget), so every view adds
    // up to the same total.
    let mut seen = BTreeSet::new();
    for o in input.overrides {
        if !seen.insert(o.service_line.as_str()) {
            return Err(MonitorError::DuplicateOverride {
                service_line: o.service_line.clone(),
            });
        }
        let mut line: Vec<(&CellKey, &mut Cell)> = cells
            .iter_mut()
            .filter(|(k, _)| k.service_line == o.service_line)
            .collect();
        if line.is_empty() {
            cells.insert(key(&o.service_line, &None, &None), Cell::default());
            line = cells
                .iter_mut()
                .filter(|(k, _)| k.service_line == o.service_line)
                .collect();
        }
        let mut weights: Vec<i64> = line.iter().map(|(_, c)| c.annual.pence().max(0)).collect();
        if weights.iter().all(|w| *w == 0) {
            weights = vec![1; weights.len()];
        }
        let parts = allocate(o.outturn, &weights)?;
        for ((_, c), part) in line.into_iter().zip(parts) {
            c.forecast = part;
            c.overridden = Some(o.reason.clone());
        }
    }
    Ok(cells)
}

/// `n / d` rounded half away from zero; `d` > 0.
fn div_round(n: i128, d: i128) -> Result<i64, MoneyError> {
    let q = n / d;
    let r = n % d;
    let q = if 2 * r.abs() >= d { q + n.signum() } else { q };
    i64::try_from(q).map_err(|_| MoneyError::Overflow)
}

fn variance_bp(variance: Money, annual: Money) -> Result<Option<i64>, MoneyError> {
    if annual.pence() <= 0 {
        return Ok(None);
    }
    div_round(
        i128::from(variance.pence()) * 10_000,
        i128::from(annual.pence()),
    )
    .map(Some)
}

fn row_from(
    key: String,
    cells: &[&Cell],
    method: ForecastMethod,
    thresholds: &Thresholds,
) -> Result<MonitorRow, MoneyError> {
    let sum = |f: fn(&Cell) -> Money| Money::checked_sum(cells.iter().map(|c| f(c)));
    let annual = sum(|c| c.annual)?;
    let forecast = sum(|c| c.forecast)?;
    let variance = forecast.checked_sub(annual)?;
    let overridden = cells.iter().filter(|c| c.overridden.is_some()).count();
    let forecast_basis = if overridden == 0 {
        method.into()
    } else if overridden == cells.len() {
        ForecastBasis::Override
    } else {
        ForecastBasis::Mixed
    };
    let mut override_reasons: Vec<String> =
        cells.iter().filter_map(|c| c.overridden.clone()).collect();
    override_reasons.sort();
    override_reasons.dedup();
    Ok(MonitorRow {
        key,
        annual_budget: annual,
        budget_to_date: sum(|c| c.to_date)?,
        actual_to_date: sum(|c| c.actual)?,
        commitments: sum(|c| c.commitments)?,
        forecast_outturn: forecast,
        variance,
        variance_basis_points: variance_bp(variance, annual)?,
        rag: thresholds.rate(variance, annual),
        forecast_basis,
        override_reasons,
    })
}

/// The monitoring report by `by`.
pub fn monitor(input: &MonitorInput<'_>, by: Dimension) -> Result<Monitoring, MonitorError> {
    let cells = cells(input)?;
    let thresholds = Thresholds::for_fund(input.fund);
    let mut groups: BTreeMap<String, Vec<&Cell>> = BTreeMap::new();
    for (k, c) in &cells {
        let key = match by {
            Dimension::ServiceLine => k.service_line.clone(),
            Dimension::Partner => k.partner.clone().unwrap_or_else(|| NONE_KEY.into()),
            Dimension::Locality => k.locality.clone().unwrap_or_else(|| NONE_KEY.into()),
            Dimension::Fund => input.fund.id.clone(),
        };
        groups.entry(key).or_default().push(c);
    }
    let rows = groups
        .into_iter()
        .map(|(k, cs)| row_from(k, &cs, input.method, &thresholds))
        .collect::<Result<Vec<_>, _>>()?;
    let all: Vec<&Cell> = cells.values().collect();
    let totals = row_from("Total".into(), &all, input.method, &thresholds)?;
    Ok(Monitoring {
        fund: input.fund.id.clone(),
        as_at: input.as_at,
        by,
        method: input.method,
        thresholds,
        rows,
        totals,
    })
}

/// One partner's part of a variance under the risk share (positive = it pays in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExposureShare {
    pub partner: String,
    pub amount: Money,
}

/// A risk-share outcome in serialisable form: the parts add up to `variance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exposure {
    pub variance: Money,
    pub partners: Vec<ExposureShare>,
    pub other_pools: Money,
    pub risk_pool: Money,
    pub carried_forward: Money,
    pub contingency: Money,
    pub unallocated: Money,
    /// The rule applied, in words; "no risk share in the agreement" where there is none.
    pub rule: String,
}

impl Exposure {
    pub fn from_outcome(o: &RiskShareOutcome, rule: String) -> Exposure {
        Exposure {
            variance: o.variance,
            partners: o
                .partners
                .iter()
                .map(|s| ExposureShare {
                    partner: s.partner.clone(),
                    amount: s.amount,
                })
                .collect(),
            other_pools: o.other_pools,
            risk_pool: o.risk_pool,
            carried_forward: o.carried_forward,
            contingency: o.contingency,
            unallocated: o.unallocated,
            rule,
        }
    }

    pub fn partner(&self, id: &str) -> Money {
        self.partners
            .iter()
            .find(|s| s.partner == id)
            .map_or(Money::ZERO, |s| s.amount)
    }
}

/// Shares `variance` under the fund's risk share for `year`, with each partner's own variance
/// (for `each-bears-own`) and the underspend available in other pools (for
/// `offset-other-pools`). With no risk share in the agreement the whole variance is
/// unallocated.
pub fn exposure(
    fund: &Fund,
    year: crate::calendar::FinancialYear,
    variance: Money,
    own_variances: BTreeMap<String, Money>,
    other_pools_underspend: Money,
) -> Result<Exposure, MonitorError> {
    let mut ctx = RiskContext::for_fund(fund, year)?;
    ctx.own_variances = own_variances;
    ctx.other_pools_underspend = other_pools_underspend;
    match &fund.risk_share {
        Some(rs) => {
            let out = share_variance(rs, variance, &ctx)?;
            let rule = match crate::risk_share::VarianceSign::of(variance) {
                Some(crate::risk_share::VarianceSign::Overspend) => rs.overspend.as_ref(),
                Some(crate::risk_share::VarianceSign::Underspend) => rs.underspend.as_ref(),
                None => None,
            }
            .map_or_else(|| "no rule for this variance".to_string(), |r| r.describe());
            Ok(Exposure::from_outcome(&out, rule))
        }
        None => Ok(Exposure {
            variance,
            partners: Vec::new(),
            other_pools: Money::ZERO,
            risk_pool: Money::ZERO,
            carried_forward: Money::ZERO,
            contingency: Money::ZERO,
            unallocated: variance,
            rule: "no risk share in the agreement".into(),
        }),
    }
}

/// Each partner's in-year exposure: the fund's forecast variance shared under its risk share,
/// with each partner's own forecast variance (by partner of origin) for `each-bears-own`.
/// `other_pools_underspend` is what the partnership's other pools are forecast to have spare.
pub fn in_year_exposure(
    input: &MonitorInput<'_>,
    other_pools_underspend: Money,
) -> Result<Exposure, MonitorError> {
    let by_partner = monitor(input, Dimension::Partner)?;
    let own: BTreeMap<String, Money> = by_partner
        .rows
        .iter()
        .filter(|r| r.key != NONE_KEY)
        .map(|r| (r.key.clone(), r.variance))
        .collect();
    exposure(
        input.fund,
        input.as_at.year(),
        by_partner.totals.variance,
        own,
        other_pools_underspend,
    )
}

/// One partner's money paying for a line budgeted by another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrossSubsidy {
    /// The partner of origin of the spend.
    pub paying_partner: String,
    pub service_line: String,
    /// Whose budget the line is.
    pub budget_partners: Vec<String>,
    /// Actual to date with `paying_partner` as partner of origin on the line.
    pub amount: Money,
}

/// A partner over its own budget to date while another is under its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnBudgetOverspend {
    pub partner: String,
    /// Its own lines: its budget to date and its own spend on them.
    pub budget_to_date: Money,
    pub actual_to_date: Money,
    pub overspend: Money,
    /// Partners under their own budget to date, with the underspend: the money at risk of
    /// being drawn on.
    pub underspent_partners: Vec<ExposureShare>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrossSubsidyReport {
    pub cross_subsidies: Vec<CrossSubsidy>,
    pub own_budget_overspends: Vec<OwnBudgetOverspend>,
}

/// Cross-subsidy checks for budgets whose lines belong to partners (aligned budgets, lead
/// commissioning), to date at `input.as_at`. A service line belongs to the partners with a
/// budget line for it in the year; lines with no partner are the pool's and not checked.
pub fn cross_subsidy(input: &MonitorInput<'_>) -> Result<CrossSubsidyReport, MonitorError> {
    let fund = input.fund;
    let year = input.as_at.year();
    let net = fund.net_of_client_income;
    let mut owners: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut own_budget: BTreeMap<&str, Money> = BTreeMap::new();
    for b in input
        .budgets
        .iter()
        .filter(|b| b.fund == fund.id && b.year == year)
    {
        if let Some(p) = &b.partner {
            owners
                .entry(b.service_line.as_str())
                .or_default()
                .insert(p.as_str());
            let e = own_budget.entry(p.as_str()).or_insert(Money::ZERO);
            *e = e.checked_add(b.to_date(input.as_at, net)?)?;
        }
    }
    let mut crossing: BTreeMap<(&str, &str), Money> = BTreeMap::new();
    let mut own_actual: BTreeMap<&str, Money> = BTreeMap::new();
    for t in input.totals.iter().filter(|t| {
        t.fund == fund.id && t.period.year() == year && t.period.number() <= input.as_at.number()
    }) {
        let (Some(payer), Some(line_owners)) =
            (t.partner.as_deref(), owners.get(t.service_line.as_str()))
        else {
            continue;
        };
        if line_owners.contains(payer) {
            let e = own_actual.entry(payer).or_insert(Money::ZERO);
            *e = e.checked_add(t.amount)?;
        } else {
            let e = crossing
                .entry((payer, t.service_line.as_str()))
                .or_insert(Money::ZERO);
            *e = e.checked_add(t.amount)?;
        }
    }
    let cross_subsidies = crossing
        .into_iter()
        .filter(|(_, amount)| *amount != Money::ZERO)
        .map(|((payer, line), amount)| CrossSubsidy {
            paying_partner: payer.to_string(),
            service_line: line.to_string(),
            budget_partners: owners[line].iter().map(|s| s.to_string()).collect(),
            amount,
        })
        .collect();
    let mut positions: Vec<(&str, Money, Money, Money)> = Vec::new();
    for (p, budget) in &own_budget {
        let actual = own_actual.get(p).copied().unwrap_or(Money::ZERO);
        positions.push((p, *budget, actual, actual.checked_sub(*budget)?));
    }
    let mut own_budget_overspends = Vec::new();
    for (p, budget, actual, over) in &positions {
        if over.pence() <= 0 {
            continue;
        }
        let underspent: Vec<ExposureShare> = positions
            .iter()
            .filter(|(q, _, _, o)| q != p && o.is_negative())
            .map(|(q, _, _, o)| {
                Ok(ExposureShare {
                    partner: q.to_string(),
                    amount: o.checked_neg()?,
                })
            })
            .collect::<Result<_, MoneyError>>()?;
        if !underspent.is_empty() {
            own_budget_overspends.push(OwnBudgetOverspend {
                partner: p.to_string(),
                budget_to_date: *budget,
                actual_to_date: *actual,
                overspend: *over,
                underspent_partners: underspent,
            });
        }
    }
    Ok(CrossSubsidyReport {
        cross_subsidies,
        own_budget_overspends,
    })
}

/// Money from a ring-fenced locality's partner spent outside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingFenceBreach {
    /// The ring-fenced locality (or localities) the partner's money belongs to.
    pub ring_fenced: Vec<String>,
    pub partner: String,
    /// Where it was spent; `None` where the postings name no locality.
    pub spent_in: Option<String>,
    pub service_line: String,
    pub amount: Money,
}

/// Ring-fence checks to date: for each partner of a locality with `ring_fenced = true`, spend
/// with that partner of origin must be in that locality (or another ring-fenced locality the
/// partner belongs to). Totals elsewhere, or naming no locality, are flagged.
pub fn ring_fences(
    input: &MonitorInput<'_>,
    localities: &[Locality],
) -> Result<Vec<RingFenceBreach>, MonitorError> {
    let mut fenced: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for l in localities.iter().filter(|l| l.ring_fenced) {
        for p in &l.partners {
            fenced.entry(p.as_str()).or_default().insert(l.id.as_str());
        }
    }
    let year = input.as_at.year();
    let mut breaches: BTreeMap<(&str, Option<&str>, &str), Money> = BTreeMap::new();
    for t in input.totals.iter().filter(|t| {
        t.fund == input.fund.id
            && t.period.year() == year
            && t.period.number() <= input.as_at.number()
    }) {
        let Some(partner) = t.partner.as_deref() else {
            continue;
        };
        let Some(homes) = fenced.get(partner) else {
            continue;
        };
        if t.locality.as_deref().is_some_and(|l| homes.contains(l)) {
            continue;
        }
        let e = breaches
            .entry((partner, t.locality.as_deref(), t.service_line.as_str()))
            .or_insert(Money::ZERO);
        *e = e.checked_add(t.amount)?;
    }
    Ok(breaches
        .into_iter()
        .filter(|(_, a)| *a != Money::ZERO)
        .map(|((partner, spent_in, line), amount)| RingFenceBreach {
            ring_fenced: fenced[partner].iter().map(|s| s.to_string()).collect(),
            partner: partner.to_string(),
            spent_in: spent_in.map(str::to_string),
            service_line: line.to_string(),
            amount,
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn method_and_dimension_names_read_back() {
        for m in [
            ForecastMethod::RunRate,
            ForecastMethod::Profile,
            ForecastMethod::Commitments,
        ] {
            assert_eq!(m.as_str().parse::<ForecastMethod>(), Ok(m));
        }
        for d in [
            Dimension::ServiceLine,
            Dimension::Partner,
            Dimension::Locality,
            Dimension::Fund,
        ] {
            assert_eq!(d.as_str().parse::<Dimension>(), Ok(d));
        }
    }
    use crate::agreement::{Contribution, ContributionKind, FundKind, Instalments, RiskShare};
    use crate::calendar::FinancialYear;
    use proptest::prelude::*;

    pub(crate) fn pounds(p: i64) -> Money {
        Money::from_pounds(p).unwrap()
    }

    pub(crate) fn period(text: &str) -> Period {
        text.parse().unwrap()
    }

    pub(crate) fn fy() -> FinancialYear {
        FinancialYear::starting(2024).unwrap()
    }

    pub(crate) fn fund(
        kind: FundKind,
        host: Option<&str>,
        contributions: &[(&str, Money)],
        risk_share: Option<RiskShare>,
    ) -> Fund {
        Fund {
            id: "pool".into(),
            name: "Pool".into(),
            kind,
            host: host.map(str::to_string),
            pool_manager: None,
            care_groups: vec![],
            net_of_client_income: false,
            risk_share,
            monitoring: None,
            contributions: contributions
                .iter()
                .map(|(p, a)| Contribution {
                    partner: p.to_string(),
                    year: fy(),
                    amount: *a,
                    kind: ContributionKind::Cash,
                    conditions: None,
                    instalments: Some(Instalments::Quarterly),
                    recurrent: true,
                    note: None,
                    illustrative: false,
                })
                .collect(),
            note: None,
            illustrative: false,
        }
    }

    pub(crate) fn total(
        p: &str,
        line: &str,
        partner: Option<&str>,
        locality: Option<&str>,
        amount: Money,
    ) -> TotalsLine {
        TotalsLine {
            fund: "pool".into(),
            period: period(p),
            service_line: line.into(),
            partner: partner.map(str::to_string),
            locality: locality.map(str::to_string),
            amount,
        }
    }

    fn commitment(line: &str, amount: Money) -> Commitment {
        Commitment {
            fund: "pool".into(),
            service_line: line.into(),
            partner: None,
            locality: None,
            amount,
        }
    }

    /// Budgets (all even): Home care £120,000 (£10,000 a period), Residential £240,000
    /// (£20,000), Equipment £12,000 (£1,000). To P06: £60,000, £120,000, £6,000.
    /// Actuals to P06: Home care 6 × £11,000 = £66,000; Residential £54,000 + £60,000 =
    /// £114,000; Equipment £3,000. A P07 line and another fund's line are left out.
    /// Commitments: Home care £50,000, Residential £130,000, Equipment £1,000.
    /// Override: Equipment outturn £15,000.
    struct Fixture {
        fund: Fund,
        budgets: Vec<BudgetLine>,
        totals: Vec<TotalsLine>,
        commitments: Vec<Commitment>,
        overrides: Vec<ForecastOverride>,
    }

    fn fixture() -> Fixture {
        let budgets = vec![
            BudgetLine::even("pool", fy(), "Home care", None, None, pounds(120_000)),
            BudgetLine::even("pool", fy(), "Residential", None, None, pounds(240_000)),
            BudgetLine::even("pool", fy(), "Equipment", None, None, pounds(12_000)),
        ];
        let mut totals: Vec<TotalsLine> = (1..=6)
            .map(|n| {
                total(
                    &format!("2024/25-P{n:02}"),
                    "Home care",
                    None,
                    None,
                    pounds(11_000),
                )
            })
            .collect();
        totals.push(total(
            "2024/25-P02",
            "Residential",
            None,
            None,
            pounds(54_000),
        ));
        totals.push(total(
            "2024/25-P05",
            "Residential",
            None,
            None,
            pounds(60_000),
        ));
        totals.push(total("2024/25-P04", "Equipment", None, None, pounds(3_000)));
        totals.push(total(
            "2024/25-P07",
            "Home care",
            None,
            None,
            pounds(99_999),
        ));
        let mut other = total("2024/25-P01", "Home care", None, None, pounds(77_777));
        other.fund = "other".into();
        totals.push(other);
        Fixture {
            fund: fund(FundKind::Pooled, None, &[], None),
            budgets,
            totals,
            commitments: vec![
                commitment("Home care", pounds(50_000)),
                commitment("Residential", pounds(130_000)),
                commitment("Equipment", pounds(1_000)),
            ],
            overrides: vec![ForecastOverride {
                service_line: "Equipment".into(),
                outturn: pounds(15_000),
                reason: "Stock replacement in Q4".into(),
            }],
        }
    }

    fn run(f: &Fixture, method: ForecastMethod, by: Dimension) -> Monitoring {
        let input = MonitorInput {
            fund: &f.fund,
            as_at: period("2024/25-P06"),
            totals: &f.totals,
            budgets: &f.budgets,
            commitments: &f.commitments,
            overrides: &f.overrides,
            method,
        };
        monitor(&input, by).unwrap()
    }

    fn row<'a>(m: &'a Monitoring, key: &str) -> &'a MonitorRow {
        m.rows.iter().find(|r| r.key == key).unwrap()
    }

    #[test]
    fn run_rate_forecast_with_an_override() {
        let m = run(&fixture(), ForecastMethod::RunRate, Dimension::ServiceLine);
        assert!(m.thresholds.default_used);
        let home = row(&m, "Home care");
        assert_eq!(home.annual_budget, pounds(120_000));
        assert_eq!(home.budget_to_date, pounds(60_000));
        assert_eq!(home.actual_to_date, pounds(66_000));
        assert_eq!(home.commitments, pounds(50_000));
        // £66,000 ÷ 6 × 12 = £132,000; variance £12,000 = 10% of £120,000: red.
        assert_eq!(home.forecast_outturn, pounds(132_000));
        assert_eq!(home.variance, pounds(12_000));
        assert_eq!(home.variance_basis_points, Some(1_000));
        assert_eq!(home.rag, Rag::Red);
        assert_eq!(home.forecast_basis, ForecastBasis::RunRate);
        // £114,000 × 2 = £228,000; −£12,000 = −5%: an underspend over 3% is amber.
        let res = row(&m, "Residential");
        assert_eq!(res.forecast_outturn, pounds(228_000));
        assert_eq!(res.variance_basis_points, Some(-500));
        assert_eq!(res.rag, Rag::Amber);
        // Override £15,000: +£3,000 = 25%: red, and the row says why.
        let eq = row(&m, "Equipment");
        assert_eq!(eq.forecast_outturn, pounds(15_000));
        assert_eq!(eq.forecast_basis, ForecastBasis::Override);
        assert_eq!(
            eq.override_reasons,
            vec!["Stock replacement in Q4".to_string()]
        );
        assert_eq!(eq.rag, Rag::Red);
        // Totals: budget £372,000, to date £186,000, actual £183,000, commitments £181,000,
        // forecast £132,000 + £228,000 + £15,000 = £375,000, variance £3,000 =
        // 3,000 / 372,000 = 0.806% → 81 bp: green.
        let t = &m.totals;
        assert_eq!(t.annual_budget, pounds(372_000));
        assert_eq!(t.budget_to_date, pounds(186_000));
        assert_eq!(t.actual_to_date, pounds(183_000));
        assert_eq!(t.commitments, pounds(181_000));
        assert_eq!(t.forecast_outturn, pounds(375_000));
        assert_eq!(t.variance, pounds(3_000));
        assert_eq!(t.variance_basis_points, Some(81));
        assert_eq!(t.rag, Rag::Green);
        assert_eq!(t.forecast_basis, ForecastBasis::Mixed);
    }

    #[test]
    fn profile_and_commitments_forecasts() {
        let f = fixture();
        let m = run(&f, ForecastMethod::Profile, Dimension::ServiceLine);
        // Home care £66,000 + (£120,000 − £60,000) = £126,000: +5%, red.
        assert_eq!(row(&m, "Home care").forecast_outturn, pounds(126_000));
        assert_eq!(row(&m, "Home care").rag, Rag::Red);
        // Residential £114,000 + £120,000 = £234,000: −2.5%, green.
        assert_eq!(row(&m, "Residential").forecast_outturn, pounds(234_000));
        assert_eq!(row(&m, "Residential").rag, Rag::Green);
        assert_eq!(
            row(&m, "Residential").forecast_basis,
            ForecastBasis::Profile
        );
        let m = run(&f, ForecastMethod::Commitments, Dimension::ServiceLine);
        // Home care £66,000 + £50,000 = £116,000: −£4,000 = −3.33%, amber.
        assert_eq!(row(&m, "Home care").forecast_outturn, pounds(116_000));
        assert_eq!(row(&m, "Home care").variance_basis_points, Some(-333));
        assert_eq!(row(&m, "Home care").rag, Rag::Amber);
        // Residential £114,000 + £130,000 = £244,000: +£4,000 = 1.67%, amber.
        assert_eq!(row(&m, "Residential").forecast_outturn, pounds(244_000));
        assert_eq!(row(&m, "Residential").rag, Rag::Amber);
        assert_eq!(row(&m, "Equipment").forecast_outturn, pounds(15_000));
        // The fund as a whole: one row equal to the totals row.
        let m = run(&f, ForecastMethod::Commitments, Dimension::Fund);
        assert_eq!(m.rows.len(), 1);
        assert_eq!(m.rows[0].forecast_outturn, m.totals.forecast_outturn);
        assert_eq!(
            m.totals.forecast_outturn,
            pounds(116_000 + 244_000 + 15_000)
        );
    }

    #[test]
    fn methods_and_dimensions_parse() {
        assert_eq!("run-rate".parse(), Ok(ForecastMethod::RunRate));
        assert_eq!("commitments".parse(), Ok(ForecastMethod::Commitments));
        assert!(
            "runrate"
                .parse::<ForecastMethod>()
                .unwrap_err()
                .contains("'runrate'")
        );
        assert_eq!("service".parse(), Ok(Dimension::ServiceLine));
        assert_eq!("locality".parse(), Ok(Dimension::Locality));
        assert!("ward".parse::<Dimension>().is_err());
    }

    #[test]
    fn run_rate_rounds_half_away_from_zero() {
        // 10,001p × 12 ÷ 7 = 17,144.57p → 17,145p; −10,001p → −17,145p; 7p × 12 ÷ 8 = 10.5 → 11.
        assert_eq!(div_round(10_001 * 12, 7).unwrap(), 17_145);
        assert_eq!(div_round(-10_001 * 12, 7).unwrap(), -17_145);
        assert_eq!(div_round(7 * 12, 8).unwrap(), 11);
        assert_eq!(div_round(-7 * 12, 8).unwrap(), -11);
    }

    #[test]
    fn override_is_shared_across_partners_by_budget() {
        // Home care budgets: council £30,000, health £10,000; override £44,000.01 shared
        // 3:1 = £33,000.0075 → £33,000.01 (the larger remainder) and £11,000.00.
        let f = fund(FundKind::Aligned, None, &[], None);
        let budgets = vec![
            BudgetLine::even(
                "pool",
                fy(),
                "Home care",
                Some("council"),
                None,
                pounds(30_000),
            ),
            BudgetLine::even(
                "pool",
                fy(),
                "Home care",
                Some("health"),
                None,
                pounds(10_000),
            ),
        ];
        let overrides = vec![ForecastOverride {
            service_line: "Home care".into(),
            outturn: Money::from_pence(4_400_001),
            reason: "Winter pressures".into(),
        }];
        let input = MonitorInput {
            fund: &f,
            as_at: period("2024/25-P03"),
            totals: &[],
            budgets: &budgets,
            commitments: &[],
            overrides: &overrides,
            method: ForecastMethod::RunRate,
        };
        let m = monitor(&input, Dimension::Partner).unwrap();
        assert_eq!(
            row(&m, "council").forecast_outturn,
            Money::from_pence(3_300_001)
        );
        assert_eq!(row(&m, "health").forecast_outturn, pounds(11_000));
        assert_eq!(m.totals.forecast_outturn, Money::from_pence(4_400_001));
        let twice = [overrides[0].clone(), overrides[0].clone()];
        let input = MonitorInput {
            overrides: &twice,
            ..input
        };
        assert!(matches!(
            monitor(&input, Dimension::Partner),
            Err(MonitorError::DuplicateOverride { .. })
        ));
    }

    #[test]
    fn rag_at_each_boundary() {
        let t = Thresholds::from_agreement(None);
        let annual = pounds(100_000);
        let p = Money::from_pence;
        // Default: amber over 1% (£1,000), red over 3% (£3,000), underspend amber over 3%.
        assert_eq!(t.rate(p(100_000), annual), Rag::Green);
        assert_eq!(t.rate(p(100_001), annual), Rag::Amber);
        assert_eq!(t.rate(p(300_000), annual), Rag::Amber);
        assert_eq!(t.rate(p(300_001), annual), Rag::Red);
        assert_eq!(t.rate(p(-300_000), annual), Rag::Green);
        assert_eq!(t.rate(p(-300_001), annual), Rag::Amber);
        assert_eq!(t.rate(pounds(-50_000), annual), Rag::Amber);
        assert_eq!(t.rate(Money::ZERO, annual), Rag::Green);
        // No budget: any overspend is red, an underspend green.
        assert_eq!(t.rate(p(1), Money::ZERO), Rag::Red);
        assert_eq!(t.rate(p(-1), Money::ZERO), Rag::Green);
        // The agreement's own: amber over 2%, red over 5% or over £2,500.
        let own = MonitoringThresholds {
            amber_percent: Some(Percent::from_basis_points(200)),
            red_percent: Some(Percent::from_basis_points(500)),
            red_amount: Some(pounds(2_500)),
            ..MonitoringThresholds::default()
        };
        let t = Thresholds::from_agreement(Some(&own));
        assert!(!t.default_used);
        assert_eq!(t.rate(pounds(2_000), annual), Rag::Green);
        assert_eq!(t.rate(p(200_001), annual), Rag::Amber);
        assert_eq!(t.rate(pounds(2_500), annual), Rag::Amber);
        assert_eq!(t.rate(p(250_001), annual), Rag::Red);
        // The underspend threshold left out: Concordat's default 3% still applies.
        assert_eq!(t.rate(p(-300_001), annual), Rag::Amber);
        assert!(t.problems().is_empty());
        let upside_down = MonitoringThresholds {
            amber_percent: Some(Percent::from_basis_points(500)),
            red_percent: Some(Percent::from_basis_points(200)),
            ..MonitoringThresholds::default()
        };
        assert_eq!(
            Thresholds::from_agreement(Some(&upside_down)).problems(),
            vec!["monitoring: red_percent (2%) should be more than amber_percent (5%)".to_string()]
        );
    }

    #[test]
    fn cross_subsidy_and_own_budget_overspend() {
        // Budgets: Home care is the council's (£120,000: £30,000 to P03); Community nursing
        // the health body's (£240,000: £60,000 to P03). To P03 the council spent £33,000 on
        // Home care (£3,000 over), health £50,000 on nursing (£10,000 under) and £5,000 of
        // health's money went on Home care: a cross-subsidy.
        let f = fund(FundKind::Aligned, Some("council"), &[], None);
        let budgets = vec![
            BudgetLine::even(
                "pool",
                fy(),
                "Home care",
                Some("council"),
                None,
                pounds(120_000),
            ),
            BudgetLine::even(
                "pool",
                fy(),
                "Community nursing",
                Some("health"),
                None,
                pounds(240_000),
            ),
        ];
        let totals = vec![
            total(
                "2024/25-P01",
                "Home care",
                Some("council"),
                None,
                pounds(20_000),
            ),
            total(
                "2024/25-P03",
                "Home care",
                Some("council"),
                None,
                pounds(13_000),
            ),
            total(
                "2024/25-P02",
                "Home care",
                Some("health"),
                None,
                pounds(5_000),
            ),
            total(
                "2024/25-P02",
                "Community nursing",
                Some("health"),
                None,
                pounds(50_000),
            ),
            // After the as-at period: not counted.
            total(
                "2024/25-P04",
                "Home care",
                Some("health"),
                None,
                pounds(9_000),
            ),
        ];
        let input = MonitorInput {
            fund: &f,
            as_at: period("2024/25-P03"),
            totals: &totals,
            budgets: &budgets,
            commitments: &[],
            overrides: &[],
            method: ForecastMethod::Profile,
        };
        let r = cross_subsidy(&input).unwrap();
        assert_eq!(
            r.cross_subsidies,
            vec![CrossSubsidy {
                paying_partner: "health".into(),
                service_line: "Home care".into(),
                budget_partners: vec!["council".into()],
                amount: pounds(5_000),
            }]
        );
        assert_eq!(
            r.own_budget_overspends,
            vec![OwnBudgetOverspend {
                partner: "council".into(),
                budget_to_date: pounds(30_000),
                actual_to_date: pounds(33_000),
                overspend: pounds(3_000),
                underspent_partners: vec![ExposureShare {
                    partner: "health".into(),
                    amount: pounds(10_000),
                }],
            }]
        );
    }

    #[test]
    fn ring_fence_breaches() {
        let localities = vec![
            Locality {
                id: "st-helens".into(),
                name: "St Helens".into(),
                partners: vec!["sthelens-council".into()],
                ring_fenced: true,
            },
            Locality {
                id: "knowsley".into(),
                name: "Knowsley".into(),
                partners: vec!["knowsley-council".into()],
                ring_fenced: false,
            },
        ];
        let f = fund(FundKind::Pooled, None, &[], None);
        let totals = vec![
            // In its own locality: fine.
            total(
                "2024/25-P01",
                "Home care",
                Some("sthelens-council"),
                Some("st-helens"),
                pounds(10_000),
            ),
            // St Helens money spent in Knowsley: £2,000 + £500 = £2,500.
            total(
                "2024/25-P01",
                "Home care",
                Some("sthelens-council"),
                Some("knowsley"),
                pounds(2_000),
            ),
            total(
                "2024/25-P02",
                "Home care",
                Some("sthelens-council"),
                Some("knowsley"),
                pounds(500),
            ),
            // No locality named: flagged, £100.
            total(
                "2024/25-P02",
                "Equipment",
                Some("sthelens-council"),
                None,
                pounds(100),
            ),
            // Knowsley is not ring-fenced: not flagged.
            total(
                "2024/25-P02",
                "Home care",
                Some("knowsley-council"),
                Some("st-helens"),
                pounds(700),
            ),
        ];
        let input = MonitorInput {
            fund: &f,
            as_at: period("2024/25-P02"),
            totals: &totals,
            budgets: &[],
            commitments: &[],
            overrides: &[],
            method: ForecastMethod::RunRate,
        };
        let b = ring_fences(&input, &localities).unwrap();
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(b[0].spent_in, None);
        assert_eq!(b[0].service_line, "Equipment");
        assert_eq!(b[0].amount, pounds(100));
        assert_eq!(b[1].spent_in.as_deref(), Some("knowsley"));
        assert_eq!(b[1].amount, pounds(2_500));
        assert_eq!(b[1].ring_fenced, vec!["st-helens".to_string()]);
    }

    fn arb_cells() -> impl Strategy<Value = Vec<(u8, u8, u8, u8, i64)>> {
        proptest::collection::vec(
            (
                0u8..3,
                0u8..3,
                0u8..3,
                1u8..=12,
                -1_000_000_000i64..1_000_000_000,
            ),
            0..40,
        )
    }

    proptest! {
        #[test]
        fn totals_row_is_the_sum_of_the_rows(
            totals in arb_cells(),
            budgets in proptest::collection::vec((0u8..3, 0u8..3, 0u8..3, 0i64..10_000_000_000), 0..10),
            commits in proptest::collection::vec((0u8..3, -1_000_000i64..100_000_000), 0..6),
            override_amount in proptest::option::of(-1_000_000i64..1_000_000_000),
            as_at in 1u8..=12,
        ) {
            let name = |i: u8| ["Home care", "Nursing", "Equipment"][usize::from(i)].to_string();
            let opt = |i: u8, names: [&str; 2]| (i > 0).then(|| names[usize::from(i) - 1].to_string());
            let f = fund(FundKind::Pooled, None, &[], None);
            let totals: Vec<TotalsLine> = totals.iter().map(|(s, p, l, n, a)| TotalsLine {
                fund: "pool".into(),
                period: fy().period(*n).unwrap(),
                service_line: name(*s),
                partner: opt(*p, ["council", "health"]),
                locality: opt(*l, ["north", "south"]),
                amount: Money::from_pence(*a),
            }).collect();
            let budgets: Vec<BudgetLine> = budgets.iter().map(|(s, p, l, a)| BudgetLine {
                partner: opt(*p, ["council", "health"]),
                locality: opt(*l, ["north", "south"]),
                ..BudgetLine::even("pool", fy(), &name(*s), None, None, Money::from_pence(*a))
            }).collect();
            let commitments: Vec<Commitment> = commits.iter().map(|(s, a)| commitment(&name(*s), Money::from_pence(*a))).collect();
            let overrides: Vec<ForecastOverride> = override_amount.iter().map(|a| ForecastOverride {
                service_line: "Nursing".into(), outturn: Money::from_pence(*a), reason: "r".into(),
            }).collect();
            let mut grand: Option<MonitorRow> = None;
            for method in [ForecastMethod::RunRate, ForecastMethod::Profile, ForecastMethod::Commitments] {
                for by in [Dimension::ServiceLine, Dimension::Partner, Dimension::Locality, Dimension::Fund] {
                    let input = MonitorInput {
                        fund: &f, as_at: fy().period(as_at).unwrap(), totals: &totals, budgets: &budgets,
                        commitments: &commitments, overrides: &overrides, method,
                    };
                    let m = monitor(&input, by).unwrap();
                    let sum = |g: fn(&MonitorRow) -> Money| Money::checked_sum(m.rows.iter().map(g)).unwrap();
                    prop_assert_eq!(sum(|r| r.annual_budget), m.totals.annual_budget);
                    prop_assert_eq!(sum(|r| r.budget_to_date), m.totals.budget_to_date);
                    prop_assert_eq!(sum(|r| r.actual_to_date), m.totals.actual_to_date);
                    prop_assert_eq!(sum(|r| r.commitments), m.totals.commitments);
                    prop_assert_eq!(sum(|r| r.forecast_outturn), m.totals.forecast_outturn);
                    prop_assert_eq!(sum(|r| r.variance), m.totals.variance);
                    if method == ForecastMethod::RunRate {
                        // Every view of the same figures has the same totals row.
                        match &grand {
                            None => grand = Some(m.totals.clone()),
                            Some(g) => prop_assert_eq!(g, &m.totals),
                        }
                    }
                }
            }
        }
    }
}
