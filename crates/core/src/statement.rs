//! The year-end settlement, the pool manager's quarterly statement and the year-end
//! memorandum account (annual return): plain figures, every one a `Money`, that the
//! renderers turn into CSV, Excel and PDF.
//!
//! Settlement signs: a partner's `balance` is positive when it owes the host, negative when
//! the host owes it. For a pooled fund the host holds the money: a partner owes the host its
//! unpaid contributions plus its share of an overspend (less its share of an underspend
//! returned). For an aligned fund each partner has already borne its own variance by
//! spending its own budget; it owes the host (as lead) the difference between the share the
//! risk share gives it and the variance it bore.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;

use crate::agreement::{Fund, FundKind, Instalments, RiskRule, Transfer};
use crate::budget::BudgetLine;
use crate::calendar::{FinancialYear, Period, Quarter};
use crate::instalments::{
    Instalment, contribution_schedule, paid_and_due, schedule, transfer_schedule,
};
use crate::money::{AllocationError, Money, MoneyError, allocate};
use crate::monitor::{
    Commitment, Dimension, Exposure, ForecastMethod, ForecastOverride, MonitorError, MonitorInput,
    Monitoring, TotalsLine, exposure, in_year_exposure, monitor,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("sharing the gross expenditure: {0}")]
    Allocation(#[from] AllocationError),
    #[error(
        "the partners' own spend adds up to {own}, but the fund's spend is {spend}; for an aligned fund they must agree"
    )]
    OwnSpendMismatch { own: Money, spend: Money },
    #[error("fund '{fund}' has no host partner and no contributions for {year} to choose one from")]
    NoHost { fund: String, year: FinancialYear },
}

/// Each partner's contributions due for `year` (the agreement's order, first appearance).
fn due_by_partner(fund: &Fund, year: FinancialYear) -> Result<Vec<(String, Money)>, MoneyError> {
    let mut out: Vec<(String, Money)> = Vec::new();
    for c in fund.contributions.iter().filter(|c| c.year == year) {
        match out.iter_mut().find(|(p, _)| *p == c.partner) {
            Some((_, a)) => *a = a.checked_add(c.amount)?,
            None => out.push((c.partner.clone(), c.amount)),
        }
    }
    Ok(out)
}

/// What the year-end settlement needs.
#[derive(Debug, Clone)]
pub struct SettlementInput<'a> {
    pub fund: &'a Fund,
    pub year: FinancialYear,
    /// The fund's expenditure for the year (postings added up, credits netted off).
    pub spend: Money,
    /// Income other than contributions (held by the host).
    pub other_income: Money,
    /// Spend by partner of origin. Required for an aligned fund (it must add up to `spend`);
    /// for a pooled fund it only sets own variances (spend less contribution) for
    /// `each-bears-own`, and may be empty.
    pub own_spend: BTreeMap<String, Money>,
    /// Contributions received for the year by partner; `None` means as due.
    pub received: Option<BTreeMap<String, Money>>,
    /// Underspends in the partnership's other pools, for `offset-other-pools`.
    pub other_pools_underspend: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    OwesHost,
    OwedByHost,
    Settled,
}

impl Position {
    fn of(balance: Money) -> Position {
        match balance.pence() {
            0 => Position::Settled,
            b if b > 0 => Position::OwesHost,
            _ => Position::OwedByHost,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementLine {
    pub partner: String,
    pub is_host: bool,
    pub contribution_due: Money,
    pub contribution_received: Money,
    /// Its own spend (aligned funds, or where given).
    pub own_spend: Option<Money>,
    /// Its own spend less its contribution (aligned funds, or where own spend is given).
    pub own_variance: Option<Money>,
    /// Its part of the variance under the risk share (positive = it pays in).
    pub risk_share: Money,
    /// Positive: it owes the host; negative: the host owes it. For the host's own line, what
    /// the host as a partner puts into (positive) or takes from (negative) the fund.
    pub balance: Money,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settlement {
    pub fund: String,
    pub year: FinancialYear,
    pub kind: FundKind,
    pub host: String,
    pub contributions_due: Money,
    pub contributions_received: Money,
    pub other_income: Money,
    pub spend: Money,
    /// Spend − other income − contributions due: positive is an overspend.
    pub variance: Money,
    pub risk_share: Exposure,
    pub lines: Vec<SettlementLine>,
    /// The non-host partners' balances added up: what the host receives (positive) or pays
    /// out (negative) in all.
    pub due_to_host: Money,
    /// For a pooled fund, what is left in the pool once everyone has settled: contributions
    /// received + other income − spend + every partner's balance. It equals what the risk
    /// share keeps in the pool (carried forward, contingency) less what it met from outside
    /// the partners (risk pool, other pools) or left unallocated. Zero for an aligned fund.
    pub pool_balance_after: Money,
}

impl Settlement {
    pub fn line(&self, partner: &str) -> Option<&SettlementLine> {
        self.lines.iter().find(|l| l.partner == partner)
    }
}

/// The year-end settlement, to the penny.
pub fn settle(input: &SettlementInput<'_>) -> Result<Settlement, StatementError> {
    let fund = input.fund;
    let due = due_by_partner(fund, input.year)?;
    let ctx = crate::risk_share::RiskContext::for_fund(fund, input.year)?;
    let host = ctx.host.clone().ok_or_else(|| StatementError::NoHost {
        fund: fund.id.clone(),
        year: input.year,
    })?;
    let due_of = |p: &str| {
        due.iter()
            .find(|(q, _)| q == p)
            .map_or(Money::ZERO, |(_, a)| *a)
    };
    let contributions_due = Money::checked_sum(due.iter().map(|(_, a)| *a))?;
    let variance = input
        .spend
        .checked_sub(input.other_income)?
        .checked_sub(contributions_due)?;
    let aligned = fund.kind == FundKind::Aligned;
    if aligned {
        let own = Money::checked_sum(input.own_spend.values().copied())?;
        if own != input.spend {
            return Err(StatementError::OwnSpendMismatch {
                own,
                spend: input.spend,
            });
        }
    }
    // Partners: the contributors in order, then anyone else with own spend, then the host.
    let mut partners: Vec<String> = due.iter().map(|(p, _)| p.clone()).collect();
    for p in input.own_spend.keys() {
        if !partners.contains(p) {
            partners.push(p.clone());
        }
    }
    if !partners.contains(&host) {
        partners.push(host.clone());
    }
    let mut own_variances = BTreeMap::new();
    for p in &partners {
        if let Some(s) = input.own_spend.get(p) {
            let mut v = s.checked_sub(due_of(p))?;
            if aligned && *p == host {
                // The host holds the other income, so it lessens the host's own variance.
                v = v.checked_sub(input.other_income)?;
            }
            own_variances.insert(p.clone(), v);
        }
    }
    let risk_share = exposure(
        fund,
        input.year,
        variance,
        own_variances.clone(),
        input.other_pools_underspend,
    )?;
    for s in &risk_share.partners {
        if !partners.contains(&s.partner) {
            partners.push(s.partner.clone());
        }
    }
    let mut lines = Vec::new();
    let mut contributions_received = Money::ZERO;
    for p in &partners {
        let d = due_of(p);
        let received = match &input.received {
            Some(r) => r.get(p).copied().unwrap_or(Money::ZERO),
            None => d,
        };
        contributions_received = contributions_received.checked_add(received)?;
        let share = risk_share.partner(p);
        let own_spend = input.own_spend.get(p).copied();
        let own_variance = own_variances.get(p).copied();
        let balance = if aligned {
            share.checked_sub(own_variance.unwrap_or(Money::ZERO))?
        } else {
            d.checked_sub(received)?.checked_add(share)?
        };
        lines.push(SettlementLine {
            partner: p.clone(),
            is_host: *p == host,
            contribution_due: d,
            contribution_received: received,
            own_spend,
            own_variance,
            risk_share: share,
            balance,
            position: Position::of(balance),
        });
    }
    let due_to_host = Money::checked_sum(lines.iter().filter(|l| !l.is_host).map(|l| l.balance))?;
    let pool_balance_after = if aligned {
        Money::ZERO
    } else {
        let all = Money::checked_sum(lines.iter().map(|l| l.balance))?;
        contributions_received
            .checked_add(input.other_income)?
            .checked_sub(input.spend)?
            .checked_add(all)?
    };
    Ok(Settlement {
        fund: fund.id.clone(),
        year: input.year,
        kind: fund.kind,
        host,
        contributions_due,
        contributions_received,
        other_income: input.other_income,
        spend: input.spend,
        variance,
        risk_share,
        lines,
        due_to_host,
        pool_balance_after,
    })
}

/// A contribution's position at a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContributionPosition {
    pub partner: String,
    pub due_for_year: Money,
    pub due_to_date: Money,
    pub received: Money,
    /// Due to date less received: positive is in arrears.
    pub outstanding: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalmentDue {
    pub due: Date,
    pub period: Period,
    pub amount: Money,
}

impl From<&Instalment> for InstalmentDue {
    fn from(i: &Instalment) -> InstalmentDue {
        InstalmentDue {
            due: i.due,
            period: i.period,
            amount: i.amount,
        }
    }
}

/// A funding transfer's instalments falling due in the quarter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferDue {
    pub id: String,
    pub from: String,
    pub to: String,
    pub basis: String,
    pub instalments: Vec<InstalmentDue>,
    pub amount: Money,
}

/// One period of the budget / actual / forecast chart, cumulative from P01.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartPoint {
    pub period: Period,
    pub budget: Money,
    /// `None` after the statement's last period.
    pub actual: Option<Money>,
    /// Actual up to the statement's last period, then the rest of the forecast outturn spread
    /// evenly over the periods still to come; P12 is the forecast outturn.
    pub forecast: Money,
}

/// What the quarterly statement needs.
#[derive(Debug, Clone, Copy)]
pub struct QuarterlyInput<'a> {
    pub fund: &'a Fund,
    pub quarter: Quarter,
    pub totals: &'a [TotalsLine],
    pub budgets: &'a [BudgetLine],
    pub commitments: &'a [Commitment],
    pub overrides: &'a [ForecastOverride],
    pub method: ForecastMethod,
    /// The agreement's transfers.
    pub transfers: &'a [Transfer],
    /// Contributions received so far this year by partner; `None` means as due.
    pub received_to_date: Option<&'a BTreeMap<String, Money>>,
    /// Underspends forecast in the partnership's other pools, for `offset-other-pools`.
    pub other_pools_underspend: Money,
}

/// The pool manager's quarterly statement to the partners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarterlyStatement {
    pub fund: String,
    pub quarter: Quarter,
    /// The last period of the quarter: the figures are to its end.
    pub as_at: Period,
    pub contributions: Vec<ContributionPosition>,
    /// By service line, with the totals row.
    pub monitoring: Monitoring,
    /// The forecast variance shared under the risk share.
    pub exposure: Exposure,
    pub transfers_due: Vec<TransferDue>,
    /// P01..P12.
    pub chart: Vec<ChartPoint>,
}

/// The quarterly statement for a fund.
pub fn quarterly_statement(
    input: &QuarterlyInput<'_>,
) -> Result<QuarterlyStatement, StatementError> {
    let fund = input.fund;
    let year = input.quarter.year();
    let as_at = input.quarter.periods()[2];
    let today = input.quarter.last_day();
    let m_input = MonitorInput {
        fund,
        as_at,
        totals: input.totals,
        budgets: input.budgets,
        commitments: input.commitments,
        overrides: input.overrides,
        method: input.method,
    };
    let monitoring = monitor(&m_input, Dimension::ServiceLine)?;
    let exposure = in_year_exposure(&m_input, input.other_pools_underspend)?;

    let mut contributions = Vec::new();
    for (partner, due_for_year) in due_by_partner(fund, year)? {
        let mut instalments: Vec<Instalment> = Vec::new();
        for c in fund
            .contributions
            .iter()
            .filter(|c| c.year == year && c.partner == partner)
        {
            // With no schedule in the agreement, the contribution is due on 1 April.
            instalments.extend(
                contribution_schedule(c)
                    .unwrap_or_else(|| schedule(c.amount, Instalments::Annual, year)),
            );
        }
        let due_to_date = paid_and_due(&instalments, Money::ZERO, today)?.due_to_date;
        let received = match input.received_to_date {
            Some(r) => r.get(&partner).copied().unwrap_or(Money::ZERO),
            None => due_to_date,
        };
        contributions.push(ContributionPosition {
            partner,
            due_for_year,
            due_to_date,
            received,
            outstanding: due_to_date.checked_sub(received)?,
        });
    }

    let quarter_periods = input.quarter.periods();
    let mut transfers_due = Vec::new();
    for t in input.transfers.iter().filter(|t| t.year == Some(year)) {
        let Some(sched) = transfer_schedule(t) else {
            continue;
        };
        let instalments: Vec<InstalmentDue> = sched
            .iter()
            .filter(|i| quarter_periods.contains(&i.period))
            .map(InstalmentDue::from)
            .collect();
        if instalments.is_empty() {
            continue;
        }
        let amount = Money::checked_sum(instalments.iter().map(|i| i.amount))?;
        transfers_due.push(TransferDue {
            id: t.id.clone(),
            from: t.from.clone(),
            to: t.to.clone(),
            basis: t.basis.label().to_string(),
            instalments,
            amount,
        });
    }

    let chart = cumulative_chart(&m_input, monitoring.totals.forecast_outturn)?;
    Ok(QuarterlyStatement {
        fund: fund.id.clone(),
        quarter: input.quarter,
        as_at,
        contributions,
        monitoring,
        exposure,
        transfers_due,
        chart,
    })
}

/// The budget / actual / forecast chart at `input.as_at`, cumulative from P01 to P12.
pub fn cumulative_chart(
    input: &MonitorInput<'_>,
    forecast_outturn: Money,
) -> Result<Vec<ChartPoint>, StatementError> {
    let fund = input.fund;
    let year = input.as_at.year();
    let net = fund.net_of_client_income;
    let mut budget = [Money::ZERO; 12];
    for b in input
        .budgets
        .iter()
        .filter(|b| b.fund == fund.id && b.year == year)
    {
        for (slot, amount) in budget
            .iter_mut()
            .zip(b.by_period(net).map_err(MonitorError::from)?)
        {
            *slot = slot.checked_add(amount)?;
        }
    }
    let mut actual = [Money::ZERO; 12];
    for t in input
        .totals
        .iter()
        .filter(|t| t.fund == fund.id && t.period.year() == year)
    {
        let i = usize::from(t.period.number()) - 1;
        actual[i] = actual[i].checked_add(t.amount)?;
    }
    let elapsed = usize::from(input.as_at.number());
    let actual_to_date = Money::checked_sum(actual[..elapsed].iter().copied())?;
    let remaining = 12 - elapsed;
    let rest = if remaining == 0 {
        Vec::new()
    } else {
        allocate(
            forecast_outturn.checked_sub(actual_to_date)?,
            &vec![1; remaining],
        )?
    };
    let mut out = Vec::with_capacity(12);
    let (mut b, mut a, mut f) = (Money::ZERO, Money::ZERO, Money::ZERO);
    for (i, period) in year.periods().enumerate() {
        b = b.checked_add(budget[i])?;
        if i < elapsed {
            a = a.checked_add(actual[i])?;
            f = a;
        } else {
            f = f.checked_add(rest[i - elapsed])?;
        }
        out.push(ChartPoint {
            period,
            budget: b,
            actual: (i < elapsed).then_some(a),
            forecast: f,
        });
    }
    Ok(out)
}

/// Income other than contributions (client contributions, grants, interest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncomeLine {
    pub description: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceLineSpend {
    pub service_line: String,
    pub amount: Money,
}

/// The figures a partner needs for its own accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerAccounts {
    pub partner: String,
    pub contribution: Money,
    /// Its share of the pool's gross expenditure, on `Memorandum::expenditure_basis`.
    pub share_of_gross_expenditure: Money,
    /// Its share of the surplus (positive) or deficit (negative) under the risk share.
    pub share_of_surplus: Money,
}

/// What the memorandum account needs.
#[derive(Debug, Clone)]
pub struct MemorandumInput<'a> {
    pub fund: &'a Fund,
    pub year: FinancialYear,
    /// Totals lines; those for this fund and year make the expenditure.
    pub totals: &'a [TotalsLine],
    pub other_income: Vec<IncomeLine>,
    /// Contributions received; `None` means as due.
    pub received: Option<BTreeMap<String, Money>>,
    pub other_pools_underspend: Money,
}

/// The year-end memorandum account / annual return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Memorandum {
    pub fund: String,
    pub year: FinancialYear,
    pub contributions: Vec<IncomeLine>,
    pub other_income: Vec<IncomeLine>,
    pub total_income: Money,
    pub expenditure: Vec<ServiceLineSpend>,
    pub total_expenditure: Money,
    /// Total income − total expenditure: positive is a surplus, negative a deficit.
    pub surplus: Money,
    /// The surplus or deficit under the risk share (as a variance: an overspend positive).
    pub distribution: Exposure,
    pub settlement: Settlement,
    /// How gross expenditure is shared among the partners for their accounts.
    pub expenditure_basis: String,
    pub partner_accounts: Vec<PartnerAccounts>,
}

/// What a pool has spare at the end of `year`: its contributions due less its spend (the
/// totals of the fund and year added up), where that is more than nothing. For a risk share
/// that first offsets an overspend against the partnership's other pools; forecasts play no
/// part once the year is over.
pub fn underspend_at_year_end(
    fund: &Fund,
    year: FinancialYear,
    totals: &[TotalsLine],
) -> Result<Money, MoneyError> {
    let contributions = Money::checked_sum(
        fund.contributions
            .iter()
            .filter(|c| c.year == year)
            .map(|c| c.amount),
    )?;
    let spend = Money::checked_sum(
        totals
            .iter()
            .filter(|t| t.fund == fund.id && t.period.year() == year)
            .map(|t| t.amount),
    )?;
    Ok(if spend < contributions {
        contributions.checked_sub(spend)?
    } else {
        Money::ZERO
    })
}

/// The memorandum account for a fund and year.
pub fn memorandum(input: &MemorandumInput<'_>) -> Result<Memorandum, StatementError> {
    let fund = input.fund;
    let mut by_line: BTreeMap<&str, Money> = BTreeMap::new();
    let mut own_spend: BTreeMap<String, Money> = BTreeMap::new();
    for t in input
        .totals
        .iter()
        .filter(|t| t.fund == fund.id && t.period.year() == input.year)
    {
        let e = by_line
            .entry(t.service_line.as_str())
            .or_insert(Money::ZERO);
        *e = e.checked_add(t.amount)?;
        if let Some(p) = &t.partner {
            let e = own_spend.entry(p.clone()).or_insert(Money::ZERO);
            *e = e.checked_add(t.amount)?;
        }
    }
    let expenditure: Vec<ServiceLineSpend> = by_line
        .into_iter()
        .map(|(l, a)| ServiceLineSpend {
            service_line: l.to_string(),
            amount: a,
        })
        .collect();
    let total_expenditure = Money::checked_sum(expenditure.iter().map(|e| e.amount))?;
    let due = due_by_partner(fund, input.year)?;
    let contributions: Vec<IncomeLine> = due
        .iter()
        .map(|(p, a)| IncomeLine {
            description: p.clone(),
            amount: *a,
        })
        .collect();
    let other_total = Money::checked_sum(input.other_income.iter().map(|i| i.amount))?;
    let total_income =
        Money::checked_sum(contributions.iter().map(|c| c.amount))?.checked_add(other_total)?;
    let surplus = total_income.checked_sub(total_expenditure)?;
    // For a pooled fund, spend with no partner of origin is the pool's; own spend only
    // matters to `each-bears-own`. For an aligned fund every line must name its partner.
    let settlement = settle(&SettlementInput {
        fund,
        year: input.year,
        spend: total_expenditure,
        other_income: other_total,
        own_spend,
        received: input.received.clone(),
        other_pools_underspend: input.other_pools_underspend,
    })?;
    let distribution = settlement.risk_share.clone();

    let fixed = [
        fund.risk_share.as_ref().and_then(|r| r.overspend.as_ref()),
        fund.risk_share.as_ref().and_then(|r| r.underspend.as_ref()),
    ]
    .into_iter()
    .flatten()
    .find_map(|r| match r {
        RiskRule::FixedShares { shares } => Some(shares),
        _ => None,
    });
    let partners: Vec<String> = settlement.lines.iter().map(|l| l.partner.clone()).collect();
    let (expenditure_basis, weights): (String, Vec<i64>) = match fixed {
        Some(shares) => (
            "the fixed shares of the risk share".into(),
            partners
                .iter()
                .map(|p| shares.get(p).map_or(0, |s| s.basis_points()))
                .collect(),
        ),
        None => (
            "in proportion to contributions for the year".into(),
            partners
                .iter()
                .map(|p| {
                    due.iter()
                        .find(|(q, _)| q == p)
                        .map_or(0, |(_, a)| a.pence())
                })
                .collect(),
        ),
    };
    let shares = allocate(total_expenditure, &weights)?;
    let partner_accounts = settlement
        .lines
        .iter()
        .zip(shares)
        .map(|(l, share)| {
            Ok(PartnerAccounts {
                partner: l.partner.clone(),
                contribution: l.contribution_due,
                share_of_gross_expenditure: share,
                share_of_surplus: l.risk_share.checked_neg()?,
            })
        })
        .collect::<Result<Vec<_>, MoneyError>>()?;
    Ok(Memorandum {
        fund: fund.id.clone(),
        year: input.year,
        contributions,
        other_income: input.other_income.clone(),
        total_income,
        expenditure,
        total_expenditure,
        surplus,
        distribution,
        settlement,
        expenditure_basis,
        partner_accounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{RiskShare, TransferBasis};
    use crate::monitor::tests::{fund, fy, pounds, total};
    use crate::percent::Percent;
    use proptest::prelude::*;

    fn risk_share(overspend: RiskRule, underspend: RiskRule) -> Option<RiskShare> {
        Some(RiskShare {
            overspend: Some(overspend),
            underspend: Some(underspend),
            note: None,
            illustrative: false,
        })
    }

    fn pro_rata() -> RiskRule {
        RiskRule::ProRata {
            caps: BTreeMap::new(),
            exclude_non_recurrent: false,
        }
    }

    fn fixed(council_bp: i64, health_bp: i64) -> RiskRule {
        RiskRule::FixedShares {
            shares: [
                (
                    "council".to_string(),
                    Percent::from_basis_points(council_bp),
                ),
                ("health".to_string(), Percent::from_basis_points(health_bp)),
            ]
            .into_iter()
            .collect(),
        }
    }

    /// Pooled, hosted by health: council £400,000, health £600,000, paid quarterly;
    /// overspends pro rata, underspends returned pro rata.
    fn pooled_pro_rata() -> Fund {
        fund(
            FundKind::Pooled,
            Some("health"),
            &[("council", pounds(400_000)), ("health", pounds(600_000))],
            risk_share(pro_rata(), RiskRule::ReturnProRata),
        )
    }

    /// Every period: Home care £55,000, Nursing £30,000, no partner of origin.
    fn year_of_totals(upto: u8) -> Vec<TotalsLine> {
        (1..=upto)
            .flat_map(|n| {
                let p = format!("2024/25-P{n:02}");
                [
                    total(&p, "Home care", None, None, pounds(55_000)),
                    total(&p, "Nursing", None, None, pounds(30_000)),
                ]
            })
            .collect()
    }

    #[test]
    fn a_pool_has_spare_only_what_it_did_not_spend() {
        let fund = pooled_pro_rata();
        let year = "2024/25".parse().unwrap();
        // £1m of contributions; twelve periods of £85,000 is £1,020,000: nothing spare.
        assert_eq!(
            underspend_at_year_end(&fund, year, &year_of_totals(12)).unwrap(),
            Money::ZERO
        );
        // Eleven periods, £935,000: £65,000 spare. Another year's or fund's lines do not count.
        let mut totals = year_of_totals(11);
        totals.push(total("2025/26-P01", "Home care", None, None, pounds(9_999)));
        let mut other = total("2024/25-P03", "Home care", None, None, pounds(7_777));
        other.fund = "another-pool".into();
        totals.push(other);
        assert_eq!(
            underspend_at_year_end(&fund, year, &totals).unwrap(),
            pounds(65_000)
        );
    }

    fn transfer(id: &str, year: i16, amount: Money) -> Transfer {
        Transfer {
            id: id.into(),
            from: "health".into(),
            to: "council".into(),
            basis: TransferBasis::S256,
            amount,
            year: FinancialYear::starting(year),
            purpose: None,
            conditions: None,
            via: None,
            instalments: Some(Instalments::Quarterly),
            approximate: false,
            note: None,
            illustrative: false,
        }
    }

    #[test]
    fn quarterly_statement_for_a_pooled_pro_rata_fund() {
        let f = pooled_pro_rata();
        // Budgets: Home care £640,000 = 64,000,000p ÷ 12 = 5,333,333 rem 4, so P01..P04
        // 5,333,334p and P05..P12 5,333,333p; Nursing £360,000 = £30,000 a period.
        let budgets = vec![
            BudgetLine::even("pool", fy(), "Home care", None, None, pounds(640_000)),
            BudgetLine::even("pool", fy(), "Nursing", None, None, pounds(360_000)),
        ];
        let totals = year_of_totals(6);
        let transfers = vec![
            transfer("t1", 2024, pounds(100_000)),
            transfer("t0", 2023, pounds(1)),
        ];
        let received: BTreeMap<String, Money> = [
            ("council".to_string(), pounds(200_000)),
            ("health".to_string(), pounds(150_000)),
        ]
        .into_iter()
        .collect();
        let q2: Quarter = "2024/25-Q2".parse().unwrap();
        let s = quarterly_statement(&QuarterlyInput {
            fund: &f,
            quarter: q2,
            totals: &totals,
            budgets: &budgets,
            commitments: &[],
            overrides: &[],
            method: ForecastMethod::RunRate,
            transfers: &transfers,
            received_to_date: Some(&received),
            other_pools_underspend: Money::ZERO,
        })
        .unwrap();
        assert_eq!(s.as_at.to_string(), "2024/25-P06");
        // Quarterly instalments on 1 April and 1 July are due by 30 September:
        // council 2 × £100,000, health 2 × £150,000; health has paid £150,000.
        assert_eq!(s.contributions[0].partner, "council");
        assert_eq!(s.contributions[0].due_for_year, pounds(400_000));
        assert_eq!(s.contributions[0].due_to_date, pounds(200_000));
        assert_eq!(s.contributions[0].outstanding, Money::ZERO);
        assert_eq!(s.contributions[1].due_to_date, pounds(300_000));
        assert_eq!(s.contributions[1].received, pounds(150_000));
        assert_eq!(s.contributions[1].outstanding, pounds(150_000));
        // Run rate: Home care £330,000 × 2 = £660,000, +£20,000 = 3.125%: red; Nursing
        // £180,000 × 2 = £360,000, on budget: green. Fund: £1,020,000, +£20,000 = 2%: amber.
        let rows = &s.monitoring.rows;
        assert_eq!(rows[0].key, "Home care");
        assert_eq!(rows[0].forecast_outturn, pounds(660_000));
        assert_eq!(rows[0].rag, crate::monitor::Rag::Red);
        assert_eq!(rows[1].variance, Money::ZERO);
        assert_eq!(rows[1].rag, crate::monitor::Rag::Green);
        assert_eq!(s.monitoring.totals.variance, pounds(20_000));
        assert_eq!(s.monitoring.totals.rag, crate::monitor::Rag::Amber);
        // Exposure: £20,000 pro rata 40:60 = council £8,000, health £12,000.
        assert_eq!(s.exposure.partner("council"), pounds(8_000));
        assert_eq!(s.exposure.partner("health"), pounds(12_000));
        assert_eq!(s.exposure.unallocated, Money::ZERO);
        // Transfer t1 £100,000 quarterly: the 1 July instalment of £25,000 falls in Q2;
        // t0 is for another year.
        assert_eq!(s.transfers_due.len(), 1);
        assert_eq!(s.transfers_due[0].id, "t1");
        assert_eq!(s.transfers_due[0].amount, pounds(25_000));
        assert_eq!(
            s.transfers_due[0].instalments[0].period.to_string(),
            "2024/25-P04"
        );
        assert_eq!(s.transfers_due[0].basis, "s256");
        // Chart: budget to P06 = 4 × 5,333,334 + 2 × 5,333,333 + 6 × 3,000,000 = 50,000,002p;
        // actual to P06 £510,000; the forecast's other £510,000 over six periods is £85,000
        // each, so P07 = £595,000 and P12 = £1,020,000.
        assert_eq!(s.chart.len(), 12);
        assert_eq!(s.chart[5].budget, Money::from_pence(50_000_002));
        assert_eq!(s.chart[5].actual, Some(pounds(510_000)));
        assert_eq!(s.chart[5].forecast, pounds(510_000));
        assert_eq!(s.chart[6].actual, None);
        assert_eq!(s.chart[6].forecast, pounds(595_000));
        assert_eq!(s.chart[11].forecast, pounds(1_020_000));
        assert_eq!(s.chart[11].budget, pounds(1_000_000));
    }

    #[test]
    fn memorandum_for_a_pooled_pro_rata_fund() {
        let f = pooled_pro_rata();
        let totals = year_of_totals(12);
        let m = memorandum(&MemorandumInput {
            fund: &f,
            year: fy(),
            totals: &totals,
            other_income: vec![IncomeLine {
                description: "Client contributions".into(),
                amount: pounds(5_000),
            }],
            received: None,
            other_pools_underspend: Money::ZERO,
        })
        .unwrap();
        // Income £400,000 + £600,000 + £5,000 = £1,005,000; spend 12 × £55,000 = £660,000
        // Home care and 12 × £30,000 = £360,000 Nursing, £1,020,000: a deficit of £15,000.
        assert_eq!(m.total_income, pounds(1_005_000));
        assert_eq!(m.expenditure[0].amount, pounds(660_000));
        assert_eq!(m.expenditure[1].amount, pounds(360_000));
        assert_eq!(m.total_expenditure, pounds(1_020_000));
        assert_eq!(m.surplus, pounds(-15_000));
        // Overspend £15,000 pro rata 40:60: council £6,000, health £9,000.
        assert_eq!(m.distribution.variance, pounds(15_000));
        assert_eq!(m.distribution.partner("council"), pounds(6_000));
        assert_eq!(m.distribution.partner("health"), pounds(9_000));
        // Settlement: contributions paid in full, so the council owes the host its £6,000
        // and the host puts in its own £9,000; nothing is left in the pool.
        let s = &m.settlement;
        assert_eq!(s.host, "health");
        let council = s.line("council").unwrap();
        assert_eq!(council.balance, pounds(6_000));
        assert_eq!(council.position, Position::OwesHost);
        assert_eq!(s.line("health").unwrap().balance, pounds(9_000));
        assert_eq!(s.due_to_host, pounds(6_000));
        assert_eq!(s.pool_balance_after, Money::ZERO);
        // For their accounts: gross spend £1,020,000 shared 40:60 = £408,000 / £612,000;
        // each partner's share of the deficit.
        assert_eq!(
            m.expenditure_basis,
            "in proportion to contributions for the year"
        );
        let a = &m.partner_accounts;
        assert_eq!(a[0].partner, "council");
        assert_eq!(a[0].contribution, pounds(400_000));
        assert_eq!(a[0].share_of_gross_expenditure, pounds(408_000));
        assert_eq!(a[0].share_of_surplus, pounds(-6_000));
        assert_eq!(a[1].share_of_gross_expenditure, pounds(612_000));
        assert_eq!(a[1].share_of_surplus, pounds(-9_000));
    }

    #[test]
    fn memorandum_and_settlement_for_fixed_shares() {
        // Council £333,333.33, health £666,666.67 (£1,000,000); fixed shares 30:70 both ways;
        // no host named, so the larger contributor, health, hosts.
        let f = fund(
            FundKind::Pooled,
            None,
            &[
                ("council", Money::from_pence(33_333_333)),
                ("health", Money::from_pence(66_666_667)),
            ],
            risk_share(fixed(3_000, 7_000), fixed(3_000, 7_000)),
        );
        // Spend £950,000.01: an underspend of 4,999,999p. 30% = 1,499,999.7p, 70% =
        // 3,499,999.3p; rounded toward zero that is 4,999,998p, and the odd penny goes to the
        // larger remainder (council): council −1,500,000p, health −3,499,999p.
        let totals = vec![total(
            "2024/25-P12",
            "Home care",
            None,
            None,
            Money::from_pence(95_000_001),
        )];
        let received: BTreeMap<String, Money> = [
            ("council".to_string(), pounds(300_000)),
            ("health".to_string(), Money::from_pence(66_666_667)),
        ]
        .into_iter()
        .collect();
        let m = memorandum(&MemorandumInput {
            fund: &f,
            year: fy(),
            totals: &totals,
            other_income: vec![],
            received: Some(received),
            other_pools_underspend: Money::ZERO,
        })
        .unwrap();
        assert_eq!(m.surplus, Money::from_pence(4_999_999));
        assert_eq!(
            m.distribution.partner("council"),
            Money::from_pence(-1_500_000)
        );
        assert_eq!(
            m.distribution.partner("health"),
            Money::from_pence(-3_499_999)
        );
        let s = &m.settlement;
        assert_eq!(s.host, "health");
        // Council: unpaid 33,333,333 − 30,000,000 = 3,333,333p, less its 1,500,000p of the
        // underspend = 1,833,333p owed to the host (£18,333.33).
        let council = s.line("council").unwrap();
        assert_eq!(council.contribution_received, pounds(300_000));
        assert_eq!(council.balance, Money::from_pence(1_833_333));
        assert_eq!(council.position, Position::OwesHost);
        // The host keeps its own 3,499,999p share: it takes that from the pool.
        assert_eq!(
            s.line("health").unwrap().balance,
            Money::from_pence(-3_499_999)
        );
        // Pool: received 96,666,667 − spend 95,000,001 = 1,666,666; + 1,833,333 − 3,499,999 = 0.
        assert_eq!(s.pool_balance_after, Money::ZERO);
        // Gross spend 95,000,001p at 30:70: 28,500,000.3 → 28,500,000; 66,500,000.7 → 66,500,001.
        assert_eq!(m.expenditure_basis, "the fixed shares of the risk share");
        assert_eq!(
            m.partner_accounts[0].share_of_gross_expenditure,
            Money::from_pence(28_500_000)
        );
        assert_eq!(
            m.partner_accounts[1].share_of_gross_expenditure,
            Money::from_pence(66_500_001)
        );
        assert_eq!(
            m.partner_accounts[0].share_of_surplus,
            Money::from_pence(1_500_000)
        );
    }

    #[test]
    fn aligned_settlement_says_who_owes_whom() {
        // Aligned, council leads: £500,000 each; 50:50 both ways. The council spent
        // £530,000 (+£30,000), health £490,000 (−£10,000): +£20,000 in all, £10,000 each.
        // The council bore £30,000 but should bear £10,000; health bore −£10,000 but
        // should bear £10,000: health owes the lead £20,000.
        let f = fund(
            FundKind::Aligned,
            Some("council"),
            &[("council", pounds(500_000)), ("health", pounds(500_000))],
            risk_share(fixed(5_000, 5_000), fixed(5_000, 5_000)),
        );
        let own_spend: BTreeMap<String, Money> = [
            ("council".to_string(), pounds(530_000)),
            ("health".to_string(), pounds(490_000)),
        ]
        .into_iter()
        .collect();
        let input = SettlementInput {
            fund: &f,
            year: fy(),
            spend: pounds(1_020_000),
            other_income: Money::ZERO,
            own_spend,
            received: None,
            other_pools_underspend: Money::ZERO,
        };
        let s = settle(&input).unwrap();
        assert_eq!(s.variance, pounds(20_000));
        let health = s.line("health").unwrap();
        assert_eq!(health.own_variance, Some(pounds(-10_000)));
        assert_eq!(health.risk_share, pounds(10_000));
        assert_eq!(health.balance, pounds(20_000));
        assert_eq!(health.position, Position::OwesHost);
        assert_eq!(s.line("council").unwrap().balance, pounds(-20_000));
        assert_eq!(s.due_to_host, pounds(20_000));
        // Own spend that does not add up to the fund's spend is refused.
        let bad = SettlementInput {
            spend: pounds(1_000_000),
            ..input
        };
        assert!(matches!(
            settle(&bad),
            Err(StatementError::OwnSpendMismatch { .. })
        ));
    }

    fn rule_for(choice: u8) -> (RiskRule, RiskRule) {
        match choice {
            0 => (pro_rata(), RiskRule::ReturnProRata),
            1 => (fixed(3_333, 6_667), fixed(3_333, 6_667)),
            2 => (RiskRule::Host, RiskRule::CarryForward),
            _ => (
                RiskRule::Waterfall {
                    steps: vec![
                        RiskRule::RiskPool {
                            amount: pounds(1_000),
                        },
                        pro_rata(),
                    ],
                },
                RiskRule::Contingency,
            ),
        }
    }

    proptest! {
        #[test]
        fn contributions_less_spend_is_the_balance(
            council in 1i64..10_000_000_000,
            health in 0i64..10_000_000_000,
            spend in proptest::collection::vec((1u8..=12, 0u8..2, -100_000_000i64..2_000_000_000), 0..30),
            other in 0i64..10_000_000,
            paid in proptest::option::of((0i64..10_000_000_000, 0i64..10_000_000_000)),
            choice in 0u8..4,
        ) {
            let (over, under) = rule_for(choice);
            let f = fund(
                FundKind::Pooled,
                Some("health"),
                &[("council", Money::from_pence(council)), ("health", Money::from_pence(health))],
                risk_share(over, under),
            );
            let totals: Vec<TotalsLine> = spend.iter().map(|(n, s, a)| TotalsLine {
                fund: "pool".into(),
                period: fy().period(*n).unwrap(),
                service_line: ["Home care", "Nursing"][usize::from(*s)].into(),
                partner: None,
                locality: None,
                amount: Money::from_pence(*a),
            }).collect();
            let received = paid.map(|(c, h)| [
                ("council".to_string(), Money::from_pence(c)),
                ("health".to_string(), Money::from_pence(h)),
            ].into_iter().collect());
            let m = memorandum(&MemorandumInput {
                fund: &f,
                year: fy(),
                totals: &totals,
                other_income: vec![IncomeLine { description: "Other".into(), amount: Money::from_pence(other) }],
                received,
                other_pools_underspend: Money::ZERO,
            }).unwrap();
            let spent: i64 = spend.iter().map(|(_, _, a)| a).sum();
            // Income less spend is the surplus, and the surplus is the variance reversed.
            prop_assert_eq!(m.total_expenditure.pence(), spent);
            prop_assert_eq!(m.total_income.pence(), council + health + other);
            prop_assert_eq!(m.surplus.pence(), council + health + other - spent);
            prop_assert_eq!(m.distribution.variance.checked_neg().unwrap(), m.surplus);
            // The shares and the other parts add up to the variance exactly.
            let d = &m.distribution;
            let parts = Money::checked_sum(d.partners.iter().map(|p| p.amount).chain([
                d.other_pools, d.risk_pool, d.carried_forward, d.contingency, d.unallocated,
            ])).unwrap();
            prop_assert_eq!(parts, d.variance);
            // Once everyone settles, the pool holds exactly what the rule keeps in it
            // (carried forward, contingency) less what it met from outside the partners.
            let s = &m.settlement;
            let kept = Money::checked_sum([d.other_pools, d.risk_pool, d.carried_forward, d.contingency, d.unallocated]).unwrap();
            prop_assert_eq!(s.pool_balance_after, kept.checked_neg().unwrap());
            // Contributions received + other income − spend + what partners pay in = balance.
            let paid_in = Money::checked_sum(s.lines.iter().map(|l| l.balance)).unwrap();
            prop_assert_eq!(
                s.contributions_received.pence() + other - spent + paid_in.pence(),
                s.pool_balance_after.pence()
            );
            // The partners' shares of gross spend add up to it.
            let shared = Money::checked_sum(m.partner_accounts.iter().map(|a| a.share_of_gross_expenditure)).unwrap();
            prop_assert_eq!(shared, m.total_expenditure);
        }

        #[test]
        fn every_quarter_balances(
            council in 0i64..10_000_000_000,
            health in 1i64..10_000_000_000,
            spend in proptest::collection::vec((1u8..=12, 0u8..2, -100_000_000i64..2_000_000_000), 0..30),
            budget in 0i64..10_000_000_000,
            paid in proptest::option::of((0i64..10_000_000_000, 0i64..10_000_000_000)),
            quarter in 1u8..=4,
            method in 0u8..3,
        ) {
            let f = fund(
                FundKind::Pooled,
                Some("health"),
                &[("council", Money::from_pence(council)), ("health", Money::from_pence(health))],
                risk_share(pro_rata(), RiskRule::ReturnProRata),
            );
            let totals: Vec<TotalsLine> = spend.iter().map(|(n, s, a)| TotalsLine {
                fund: "pool".into(),
                period: fy().period(*n).unwrap(),
                service_line: ["Home care", "Nursing"][usize::from(*s)].into(),
                partner: None,
                locality: None,
                amount: Money::from_pence(*a),
            }).collect();
            let budgets = vec![BudgetLine::even("pool", fy(), "Home care", None, None, Money::from_pence(budget))];
            let received: Option<BTreeMap<String, Money>> = paid.map(|(c, h)| [
                ("council".to_string(), Money::from_pence(c)),
                ("health".to_string(), Money::from_pence(h)),
            ].into_iter().collect());
            let q = Quarter::new(fy(), quarter).unwrap();
            let s = quarterly_statement(&QuarterlyInput {
                fund: &f,
                quarter: q,
                totals: &totals,
                budgets: &budgets,
                commitments: &[],
                overrides: &[],
                method: [ForecastMethod::RunRate, ForecastMethod::Profile, ForecastMethod::Commitments][usize::from(method)],
                transfers: &[],
                received_to_date: received.as_ref(),
                other_pools_underspend: Money::ZERO,
            }).unwrap();
            // Actual to date is every posting up to the quarter's end.
            let last = i64::from(quarter) * 3;
            let to_date: i64 = spend.iter().filter(|(n, _, _)| i64::from(*n) <= last).map(|(_, _, a)| a).sum();
            prop_assert_eq!(s.monitoring.totals.actual_to_date.pence(), to_date);
            let at = &s.chart[usize::try_from(last).unwrap() - 1];
            prop_assert_eq!(at.actual, Some(s.monitoring.totals.actual_to_date));
            prop_assert_eq!(at.budget, s.monitoring.totals.budget_to_date);
            prop_assert_eq!(s.chart[11].forecast, s.monitoring.totals.forecast_outturn);
            prop_assert_eq!(s.chart[11].budget.pence(), budget);
            // Quarterly instalments: due to date is a quarter of the year per quarter passed
            // (odd pennies first), and outstanding is due less received.
            for c in &s.contributions {
                prop_assert_eq!(c.outstanding, c.due_to_date.checked_sub(c.received).unwrap());
                let year = if c.partner == "council" { council } else { health };
                let parts = allocate(Money::from_pence(year), &[1; 4]).unwrap();
                let due = Money::checked_sum(parts[..usize::from(quarter)].iter().copied()).unwrap();
                prop_assert_eq!(c.due_to_date, due);
            }
            // The exposure's parts add up to the forecast variance.
            let e = &s.exposure;
            prop_assert_eq!(e.variance, s.monitoring.totals.variance);
            let parts = Money::checked_sum(e.partners.iter().map(|p| p.amount).chain([
                e.other_pools, e.risk_pool, e.carried_forward, e.contingency, e.unallocated,
            ])).unwrap();
            prop_assert_eq!(parts, e.variance);
        }

        #[test]
        fn partner_shares_add_up_to_any_variance(
            council in 0i64..10_000_000_000,
            health in 1i64..10_000_000_000,
            council_spend in -1_000_000_000i64..20_000_000_000,
            health_spend in -1_000_000_000i64..20_000_000_000,
            choice in 0u8..2,
        ) {
            let (over, under) = rule_for(choice);
            let f = fund(
                FundKind::Aligned,
                Some("council"),
                &[("council", Money::from_pence(council)), ("health", Money::from_pence(health))],
                risk_share(over, under),
            );
            let own_spend: BTreeMap<String, Money> = [
                ("council".to_string(), Money::from_pence(council_spend)),
                ("health".to_string(), Money::from_pence(health_spend)),
            ].into_iter().collect();
            let s = settle(&SettlementInput {
                fund: &f, year: fy(), spend: Money::from_pence(council_spend + health_spend),
                other_income: Money::ZERO, own_spend, received: None, other_pools_underspend: Money::ZERO,
            }).unwrap();
            let variance = council_spend + health_spend - council - health;
            prop_assert_eq!(s.variance.pence(), variance);
            let shares: i64 = s.lines.iter().map(|l| l.risk_share.pence()).sum();
            prop_assert_eq!(shares, variance);
            // What the partners owe each other nets to nothing.
            let balances: i64 = s.lines.iter().map(|l| l.balance.pence()).sum();
            prop_assert_eq!(balances, 0);
            prop_assert_eq!(s.due_to_host.pence(), -s.line("council").unwrap().balance.pence());
        }
    }
}
