//! The money commands' shared ground: finding the agreement and fund in the database, and
//! reading a fund's year (totals, budgets, commitments, overrides) into the core's terms.
//! Every figure is worked out by `concordat-core`; this module only fetches and converts.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use concordat_core::agreement::{Agreement, Fund};
use concordat_core::budget::{BudgetLine, Phasing};
use concordat_core::monitor::{Commitment, ForecastOverride, TotalsLine};
use concordat_core::{FinancialYear, Money, Period};
use concordat_store::{BudgetLineRow, PostingFilter, Store, TotalsRow};

/// The agreement as last loaded, read back from the database.
pub async fn stored_agreement(store: &dyn Store, id: &str) -> Result<Agreement> {
    let Some(stored) = store.get_agreement(id).await? else {
        let known: Vec<String> = store
            .list_agreements()
            .await?
            .into_iter()
            .map(|a| a.partnership_key)
            .collect();
        if known.is_empty() {
            bail!(
                "there is no agreement '{id}' in the database, which holds none yet: load one with `concordat agreement load FILE`"
            );
        }
        bail!(
            "there is no agreement '{id}' in the database; it holds: {}",
            known.join(", ")
        );
    };
    serde_json::from_value(stored.model_json).context("the stored agreement cannot be read back")
}

/// The fund `id` of `agreement`, or an error listing the funds it has.
pub fn fund<'a>(agreement: &'a Agreement, id: &str) -> Result<&'a Fund> {
    if let Some(f) = agreement.funds.iter().find(|f| f.id == id) {
        return Ok(f);
    }
    let ids: Vec<&str> = agreement.funds.iter().map(|f| f.id.as_str()).collect();
    if ids.is_empty() {
        bail!("agreement '{}' has no funds", agreement.id);
    }
    bail!(
        "agreement '{}' has no fund '{id}'; its funds are: {}",
        agreement.id,
        ids.join(", ")
    )
}

/// The fund named on the command line, or the agreement's only fund.
pub fn fund_or_only<'a>(agreement: &'a Agreement, id: Option<&str>) -> Result<&'a Fund> {
    match (id, agreement.funds.as_slice()) {
        (Some(id), _) => fund(agreement, id),
        (None, [only]) => Ok(only),
        (None, []) => bail!("agreement '{}' has no funds", agreement.id),
        (None, many) => bail!(
            "agreement '{}' has {} funds: say which with --fund ({})",
            agreement.id,
            many.len(),
            many.iter()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A partner id of the agreement, checked.
pub fn check_partner(agreement: &Agreement, id: &str) -> Result<()> {
    if agreement.partners.iter().any(|p| p.id == id) {
        return Ok(());
    }
    bail!(
        "agreement '{}' has no partner '{id}'; its partners are: {}",
        agreement.id,
        agreement
            .partners
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A locality id of the agreement, checked.
pub fn check_locality(agreement: &Agreement, id: &str) -> Result<()> {
    if agreement.localities.iter().any(|l| l.id == id) {
        return Ok(());
    }
    if agreement.localities.is_empty() {
        bail!("agreement '{}' names no localities", agreement.id);
    }
    bail!(
        "agreement '{}' has no locality '{id}'; its localities are: {}",
        agreement.id,
        agreement
            .localities
            .iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A partner's name, for people; its id where the agreement does not know it.
pub fn partner_name<'a>(agreement: &'a Agreement, id: &'a str) -> &'a str {
    agreement
        .partners
        .iter()
        .find(|p| p.id == id)
        .map_or(id, |p| p.name.as_str())
}

/// A locality's name, for people; its id where the agreement does not know it.
pub fn locality_name<'a>(agreement: &'a Agreement, id: &'a str) -> &'a str {
    agreement
        .localities
        .iter()
        .find(|l| l.id == id)
        .map_or(id, |l| l.name.as_str())
}

pub fn period_of(year_start: i64, number: i64) -> Result<Period> {
    i16::try_from(year_start)
        .ok()
        .and_then(FinancialYear::starting)
        .and_then(|y| u8::try_from(number).ok().and_then(|n| y.period(n)))
        .with_context(|| {
            format!("the database holds a period {year_start}-P{number} that is not a period")
        })
}

fn budget_line(row: BudgetLineRow) -> Result<BudgetLine> {
    let year = period_of(row.year_start, 1)?.year();
    let amounts: [Money; 12] = row
        .period_amounts_pence
        .iter()
        .map(|p| Money::from_pence(*p))
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|v: Vec<Money>| {
            anyhow::anyhow!(
                "the budget for {} has {} period amounts, not 12",
                row.service_line,
                v.len()
            )
        })?;
    let annual = Money::checked_sum(amounts)?;
    Ok(BudgetLine {
        fund: row.fund,
        year,
        service_line: row.service_line,
        partner: row.partner,
        locality: row.locality,
        annual,
        client_income: Money::from_pence(row.client_income_pence),
        phasing: Phasing::Given(amounts),
    })
}

/// Everything monitoring and statements read for a fund's year: aggregates, never postings.
pub struct FundYear {
    pub totals: Vec<TotalsLine>,
    pub budgets: Vec<BudgetLine>,
    pub commitments: Vec<Commitment>,
    /// Overrides as at `as_at`: for each service line, the latest one set for a period up to it.
    pub overrides: Vec<ForecastOverride>,
}

/// A fund's ledger totals for a year, in the core's terms.
pub async fn totals(
    store: &dyn Store,
    key: &str,
    fund: &Fund,
    year: FinancialYear,
) -> Result<Vec<TotalsLine>> {
    store
        .ledger_totals(key, Some(&fund.id), i64::from(year.start_year()))
        .await?
        .into_iter()
        .map(|t| {
            Ok(TotalsLine {
                period: period_of(t.year_start, t.period)?,
                fund: t.fund,
                service_line: t.service_line,
                partner: t.partner,
                locality: t.locality,
                amount: Money::from_pence(t.amount_pence),
            })
        })
        .collect()
}

pub async fn fund_year(
    store: &dyn Store,
    key: &str,
    fund: &Fund,
    year: FinancialYear,
    as_at: Period,
) -> Result<FundYear> {
    let year_start = i64::from(year.start_year());
    let totals = totals(store, key, fund, year).await?;
    let budgets = store
        .budgets(key, Some(&fund.id), year_start)
        .await?
        .into_iter()
        .map(budget_line)
        .collect::<Result<Vec<_>>>()?;
    let commitments = store
        .commitments(key, Some(&fund.id), year_start)
        .await?
        .into_iter()
        .filter(|c| c.commitment.period <= i64::from(as_at.number()))
        .map(|c| Commitment {
            fund: c.commitment.fund,
            service_line: c.commitment.service_line,
            partner: c.commitment.partner,
            locality: c.commitment.locality,
            amount: Money::from_pence(c.commitment.amount_pence),
        })
        .collect();
    let mut latest: BTreeMap<String, (i64, ForecastOverride)> = BTreeMap::new();
    for o in store
        .forecast_overrides(key, Some(&fund.id), year_start)
        .await?
    {
        if o.period > i64::from(as_at.number()) {
            continue;
        }
        let later = latest
            .get(&o.service_line)
            .is_none_or(|(period, _)| o.period >= *period);
        if later {
            latest.insert(
                o.service_line.clone(),
                (
                    o.period,
                    ForecastOverride {
                        service_line: o.service_line,
                        outturn: Money::from_pence(o.outturn_pence),
                        reason: o.reason,
                    },
                ),
            );
        }
    }
    Ok(FundYear {
        totals,
        budgets,
        commitments,
        overrides: latest.into_values().map(|(_, o)| o).collect(),
    })
}

/// What the partnership's other pools are forecast to have spare, for a risk share that first
/// offsets an overspend against them: the forecast underspends of every other fund, added up.
pub async fn other_pools_underspend(
    store: &dyn Store,
    agreement: &Agreement,
    fund: &Fund,
    as_at: Period,
    method: concordat_core::monitor::ForecastMethod,
) -> Result<Money> {
    let mut spare = Money::ZERO;
    for other in agreement.funds.iter().filter(|f| f.id != fund.id) {
        let data = fund_year(store, &agreement.id, other, as_at.year(), as_at).await?;
        if data.budgets.is_empty() {
            continue;
        }
        let m = concordat_core::monitor::monitor(
            &concordat_core::monitor::MonitorInput {
                fund: other,
                as_at,
                totals: &data.totals,
                budgets: &data.budgets,
                commitments: &data.commitments,
                overrides: &data.overrides,
                method,
            },
            concordat_core::monitor::Dimension::Fund,
        )?;
        if m.totals.variance.is_negative() {
            spare = spare.checked_sub(m.totals.variance)?;
        }
    }
    Ok(spare)
}

/// Contributions received for a fund's year, by partner, from the payments recorded up to
/// `up_to` (every payment when `None`). `None` when no contribution to the fund has been
/// recorded as paid for the year at all: the statements then take contributions as received
/// when due, which is what a partnership that does not record payments in Concordat expects.
pub async fn contributions_received(
    store: &dyn Store,
    key: &str,
    fund: &Fund,
    year: FinancialYear,
    up_to: Option<jiff::civil::Date>,
) -> Result<Option<BTreeMap<String, Money>>> {
    let payments: Vec<_> = store
        .payments(key, i64::from(year.start_year()))
        .await?
        .into_iter()
        .map(|p| p.payment)
        .filter(|p| p.kind == concordat_store::PaymentKind::Contribution && p.item == fund.id)
        .collect();
    if payments.is_empty() {
        return Ok(None);
    }
    let mut received: BTreeMap<String, Money> = BTreeMap::new();
    for p in payments {
        let counted = match up_to {
            None => true,
            Some(day) => p.paid_on.as_str() <= day.to_string().as_str(),
        };
        if counted {
            let e = received.entry(p.partner).or_default();
            *e = e.checked_add(Money::from_pence(p.amount_pence))?;
        }
    }
    Ok(Some(received))
}

/// What the partnership's other pools have spare at the year end, for a risk share that first
/// offsets an overspend against them (see `statement::underspend_at_year_end`).
pub async fn other_pools_year_end_underspend(
    store: &dyn Store,
    agreement: &Agreement,
    fund: &Fund,
    year: FinancialYear,
) -> Result<Money> {
    let mut spare = Money::ZERO;
    for other in agreement.funds.iter().filter(|f| f.id != fund.id) {
        let totals = totals(store, &agreement.id, other, year).await?;
        let pool = concordat_core::statement::underspend_at_year_end(other, year, &totals)?;
        spare = spare.checked_add(pool)?;
    }
    Ok(spare)
}

/// The service lines a fund's year already has: those with a budget or a posting.
pub async fn known_service_lines(
    store: &dyn Store,
    key: &str,
    fund: &str,
    year: FinancialYear,
) -> Result<std::collections::BTreeSet<String>> {
    let year_start = i64::from(year.start_year());
    let mut known: std::collections::BTreeSet<String> = store
        .budgets(key, Some(fund), year_start)
        .await?
        .into_iter()
        .map(|b| b.service_line)
        .collect();
    known.extend(
        store
            .ledger_totals(key, Some(fund), year_start)
            .await?
            .into_iter()
            .map(|t| t.service_line),
    );
    Ok(known)
}

/// How many postings match a drill-down filter, and what they add up to, read from the
/// ledger totals (which count every posting by the dimensions the filter names), so no
/// posting is read.
pub async fn matching_postings(
    store: &dyn Store,
    key: &str,
    filter: &PostingFilter,
) -> Result<(i64, Money)> {
    let totals = store
        .ledger_totals(key, filter.fund.as_deref(), filter.year_start)
        .await?;
    let wanted = |t: &TotalsRow| {
        filter.takes(
            t.period,
            &t.service_line,
            t.partner.as_deref(),
            t.locality.as_deref(),
        )
    };
    let mut count: i64 = 0;
    let mut total = Money::ZERO;
    for t in totals.iter().filter(|t| wanted(t)) {
        count += t.postings;
        total = total.checked_add(Money::from_pence(t.amount_pence))?;
    }
    Ok((count, total))
}
