//! Applying a fund's risk-share rule to a year's variance: who pays what towards an
//! overspend, who gets what back from an underspend, and what is met from other pools, a risk
//! pool, carried forward or kept as contingency, to the penny (DOMAIN.md §2.1, §4.5).
//!
//! Signs: a variance is positive for an overspend and negative for an underspend. Every part
//! of an outcome carries the variance's sign, so the parts always add up to the variance: a
//! partner's positive share is what it pays in, a negative share is what it receives back (or
//! keeps); an underspend carried forward shows as a negative amount carried forward.

use std::collections::BTreeMap;
use std::fmt;

use crate::agreement::{Fund, RiskRule, RiskShare};
use crate::calendar::FinancialYear;
use crate::money::{AllocationError, Money, MoneyError, allocate};
use crate::percent::Percent;

/// One contribution to the fund for the year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContributionLine {
    pub partner: String,
    pub amount: Money,
    /// `false` for a one-off payment, left out where a rule excludes non-recurrent payments.
    pub recurrent: bool,
}

/// What a rule may need to know beyond the variance itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskContext {
    /// The year's contributions, in the agreement's order (which also settles which partner
    /// gets an odd penny when two are otherwise tied).
    pub contributions: Vec<ContributionLine>,
    /// The host partner (or lead commissioner).
    pub host: Option<String>,
    /// Each partner's variance on its own functions or budget lines, where known
    /// (positive = overspend), for `each-bears-own`.
    pub own_variances: BTreeMap<String, Money>,
    /// Underspends available in the partnership's other pools, for `offset-other-pools`.
    pub other_pools_underspend: Money,
}

impl RiskContext {
    /// The context a fund gives for a year: that year's contributions, and the host named
    /// for the fund or, where none is named, the partner contributing most that year (the
    /// usual default, DOMAIN.md §2.1; ties go to the partner listed first). Own variances
    /// and other pools' underspends are not in the fund: set them from the ledger.
    pub fn for_fund(fund: &Fund, year: FinancialYear) -> Result<RiskContext, MoneyError> {
        let contributions: Vec<ContributionLine> = fund
            .contributions
            .iter()
            .filter(|c| c.year == year)
            .map(|c| ContributionLine {
                partner: c.partner.clone(),
                amount: c.amount,
                recurrent: c.recurrent,
            })
            .collect();
        let host = match &fund.host {
            Some(h) => Some(h.clone()),
            None => {
                let totals = partner_totals(&contributions, false)?;
                let mut best: Option<(String, Money)> = None;
                for (p, m) in totals {
                    if best.as_ref().is_none_or(|(_, b)| m > *b) {
                        best = Some((p, m));
                    }
                }
                best.map(|(p, _)| p)
            }
        };
        Ok(RiskContext {
            contributions,
            host,
            own_variances: BTreeMap::new(),
            other_pools_underspend: Money::ZERO,
        })
    }
}

/// Whether a variance is an overspend or an underspend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarianceSign {
    Overspend,
    Underspend,
}

impl VarianceSign {
    /// `None` for a variance of exactly zero, which is neither.
    pub fn of(variance: Money) -> Option<VarianceSign> {
        match variance.pence().signum() {
            1 => Some(VarianceSign::Overspend),
            -1 => Some(VarianceSign::Underspend),
            _ => None,
        }
    }
}

impl fmt::Display for VarianceSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarianceSign::Overspend => "an overspend",
            VarianceSign::Underspend => "an underspend",
        })
    }
}

/// One partner's part of the variance: positive it pays in, negative it receives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerShare {
    pub partner: String,
    pub amount: Money,
}

/// Who bears what of a variance. All the parts carry the variance's sign and add up to it
/// exactly; `apply` checks this before returning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskShareOutcome {
    pub variance: Money,
    /// Every contributing partner (in the order of the contributions), then any other
    /// partner a rule named, with its share; a partner that bears nothing shows £0.00.
    pub partners: Vec<PartnerShare>,
    /// Met from underspends in the partnership's other pools.
    pub other_pools: Money,
    /// Met from a risk (contingency) pool set aside for the purpose.
    pub risk_pool: Money,
    /// Underspend left in the pool for next year.
    pub carried_forward: Money,
    /// Underspend kept in the pool as contingency.
    pub contingency: Money,
    /// What the rule could not place: past every partner's cap, past what other pools or a
    /// risk pool could absorb with no later step, or not explained by any partner's own
    /// variance. The partners must agree how to meet it.
    pub unallocated: Money,
}

impl RiskShareOutcome {
    fn empty(variance: Money) -> RiskShareOutcome {
        RiskShareOutcome {
            variance,
            partners: Vec::new(),
            other_pools: Money::ZERO,
            risk_pool: Money::ZERO,
            carried_forward: Money::ZERO,
            contingency: Money::ZERO,
            unallocated: Money::ZERO,
        }
    }

    /// A partner's share, if it appears in the outcome.
    pub fn partner(&self, id: &str) -> Option<Money> {
        self.partners
            .iter()
            .find(|s| s.partner == id)
            .map(|s| s.amount)
    }

    /// All the parts added up: partners, other pools, risk pool, carried forward,
    /// contingency and unallocated.
    pub fn total(&self) -> Result<Money, MoneyError> {
        Money::checked_sum(self.partners.iter().map(|s| s.amount).chain([
            self.other_pools,
            self.risk_pool,
            self.carried_forward,
            self.contingency,
            self.unallocated,
        ]))
    }

    /// The parts add up to exactly the variance.
    pub fn is_balanced(&self) -> bool {
        self.total() == Ok(self.variance)
    }

    fn add_partner(&mut self, partner: &str, amount: Money) -> Result<(), MoneyError> {
        match self.partners.iter_mut().find(|s| s.partner == partner) {
            Some(s) => s.amount = s.amount.checked_add(amount)?,
            None => self.partners.push(PartnerShare {
                partner: partner.to_string(),
                amount,
            }),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskShareError {
    #[error(
        "the rule '{rule}' ({description}) applies only to {applies_to}, but this variance is {actual}"
    )]
    WrongSign {
        rule: &'static str,
        description: String,
        applies_to: VarianceSign,
        actual: VarianceSign,
    },
    #[error(
        "the rule '{rule}' shares by contributions, but there are no {what}contributions for the year to share by"
    )]
    NoContributions {
        rule: &'static str,
        /// "recurrent " when non-recurrent payments were left out, else empty.
        what: &'static str,
    },
    #[error(
        "partner '{partner}' contributes {amount} in total for the year; a negative contribution cannot set a share"
    )]
    NegativeContribution { partner: String, amount: Money },
    #[error("the cap for partner '{partner}' is negative ({cap})")]
    NegativeCap { partner: String, cap: Money },
    #[error("the fixed share for partner '{partner}' is negative ({share})")]
    NegativeShare { partner: String, share: Percent },
    #[error("the fixed shares add up to {total}, not 100%")]
    SharesNotHundred { total: Percent },
    #[error("the rule 'host' needs a host partner, and none is named")]
    NoHost,
    #[error("the risk pool is negative ({amount})")]
    NegativeRiskPool { amount: Money },
    #[error("the underspend available in other pools is negative ({amount})")]
    NegativeOtherPools { amount: Money },
    #[error("a waterfall rule has no steps")]
    EmptyWaterfall,
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("the parts add up to {parts}, not the variance {variance}")]
    Unbalanced { parts: Money, variance: Money },
}

/// The rule's name as written in the agreement file.
pub fn rule_name(rule: &RiskRule) -> &'static str {
    match rule {
        RiskRule::ProRata { .. } => "pro-rata",
        RiskRule::FixedShares { .. } => "fixed-shares",
        RiskRule::EachBearsOwn => "each-bears-own",
        RiskRule::Host => "host",
        RiskRule::OffsetOtherPools => "offset-other-pools",
        RiskRule::RiskPool { .. } => "risk-pool",
        RiskRule::CarryForward => "carry-forward",
        RiskRule::Contingency => "contingency",
        RiskRule::ReturnProRata => "return-pro-rata",
        RiskRule::Waterfall { .. } => "waterfall",
    }
}

/// Which sign of variance a rule can deal with; `None` for both.
///
/// Offsets against other pools and risk pools meet an overspend; carrying forward, keeping
/// as contingency and returning pro rata dispose of an underspend. Using one for the other
/// sign is almost certainly a slip in the agreement file (an overspend "returned pro rata"),
/// so it is an error naming the rule rather than a guess.
pub fn applies_only_to(rule: &RiskRule) -> Option<VarianceSign> {
    match rule {
        RiskRule::OffsetOtherPools | RiskRule::RiskPool { .. } => Some(VarianceSign::Overspend),
        RiskRule::CarryForward | RiskRule::Contingency | RiskRule::ReturnProRata => {
            Some(VarianceSign::Underspend)
        }
        RiskRule::ProRata { .. }
        | RiskRule::FixedShares { .. }
        | RiskRule::EachBearsOwn
        | RiskRule::Host
        | RiskRule::Waterfall { .. } => None,
    }
}

/// Shares a fund's variance under its risk share: the overspend rule for an overspend, the
/// underspend rule for an underspend. Where the agreement gives no rule for that sign, the
/// whole variance is `unallocated`: the partners have to agree it.
pub fn share_variance(
    risk_share: &RiskShare,
    variance: Money,
    ctx: &RiskContext,
) -> Result<RiskShareOutcome, RiskShareError> {
    let rule = match VarianceSign::of(variance) {
        Some(VarianceSign::Overspend) => risk_share.overspend.as_ref(),
        Some(VarianceSign::Underspend) => risk_share.underspend.as_ref(),
        None => return Ok(RiskShareOutcome::empty(variance)),
    };
    match rule {
        Some(rule) => apply(rule, variance, ctx),
        None => {
            let mut out = RiskShareOutcome::empty(variance);
            out.unallocated = variance;
            Ok(out)
        }
    }
}

/// Applies one rule to a year's variance (positive = overspend, negative = underspend).
///
/// What each rule means:
/// - `pro-rata`: each partner bears the variance in proportion to its contributions for the
///   year (with `exclude_non_recurrent`, one-off payments are left out of the proportions).
///   A partner with a cap bears at most its cap; what it would have borne beyond that is
///   shared among the others in proportion to their contributions, again and again until
///   no one is over a cap. If every partner reaches its cap, what is left passes on
///   (to the next step of a waterfall, or to `unallocated`).
/// - `fixed-shares`: each partner bears its agreed percentage; the percentages must add up
///   to exactly 100%.
/// - `each-bears-own`: each partner bears the variance on its own functions. When the
///   amount to share equals the partners' own variances added up, each bears exactly its
///   own, overspends and underspends alike. Otherwise (an earlier step has met part of it,
///   or not every own variance is known) it is shared among the partners whose own
///   variance went the same way, in proportion to those variances and never beyond any
///   one's own; the rest passes on.
/// - `host`: the host (lead commissioner) bears all of an overspend or keeps all of an
///   underspend.
/// - `offset-other-pools`: an overspend is met from underspends in the partnership's other
///   pools, as far as they go; the rest passes on.
/// - `risk-pool`: an overspend is met from a risk pool of the given size, as far as it goes;
///   the rest passes on.
/// - `carry-forward`: an underspend stays in the pool for next year.
/// - `contingency`: an underspend is kept in the pool as contingency.
/// - `return-pro-rata`: an underspend goes back to the partners in proportion to all their
///   contributions for the year.
/// - `waterfall`: the steps in order, each taking what it can and passing the rest on.
///
/// The rule is checked whole before anything is shared, so a step a waterfall never
/// reaches still reports its errors. A variance of zero shares nothing and is not checked
/// for sign, since it is neither an overspend nor an underspend.
pub fn apply(
    rule: &RiskRule,
    variance: Money,
    ctx: &RiskContext,
) -> Result<RiskShareOutcome, RiskShareError> {
    check(rule, VarianceSign::of(variance), ctx)?;
    let mut engine = Engine {
        ctx,
        other_pools_left: ctx.other_pools_underspend,
        out: RiskShareOutcome::empty(variance),
    };
    // Every contributor is listed, even at £0.00, so an outcome always shows all partners.
    for (partner, _) in partner_totals(&ctx.contributions, false)? {
        engine.out.add_partner(&partner, Money::ZERO)?;
    }
    let left = engine.step(rule, variance)?;
    engine.out.unallocated = left;
    let out = engine.out;
    let parts = out.total()?;
    if parts != variance {
        return Err(RiskShareError::Unbalanced { parts, variance });
    }
    Ok(out)
}

/// Everything about a rule that can be wrong whatever the amount.
fn check(
    rule: &RiskRule,
    sign: Option<VarianceSign>,
    ctx: &RiskContext,
) -> Result<(), RiskShareError> {
    if let (Some(actual), Some(applies_to)) = (sign, applies_only_to(rule))
        && actual != applies_to
    {
        return Err(RiskShareError::WrongSign {
            rule: rule_name(rule),
            description: rule.describe(),
            applies_to,
            actual,
        });
    }
    match rule {
        RiskRule::ProRata {
            caps,
            exclude_non_recurrent,
        } => {
            weights(rule, ctx, *exclude_non_recurrent)?;
            if let Some((partner, cap)) = caps.iter().find(|(_, c)| c.is_negative()) {
                return Err(RiskShareError::NegativeCap {
                    partner: partner.clone(),
                    cap: *cap,
                });
            }
        }
        RiskRule::ReturnProRata => {
            weights(rule, ctx, false)?;
        }
        RiskRule::FixedShares { shares } => {
            if let Some((partner, share)) = shares.iter().find(|(_, s)| s.basis_points() < 0) {
                return Err(RiskShareError::NegativeShare {
                    partner: partner.clone(),
                    share: *share,
                });
            }
            let total: i128 = shares.values().map(|s| i128::from(s.basis_points())).sum();
            if total != i128::from(Percent::HUNDRED.basis_points()) {
                let total = i64::try_from(total).unwrap_or(i64::MAX);
                return Err(RiskShareError::SharesNotHundred {
                    total: Percent::from_basis_points(total),
                });
            }
        }
        RiskRule::Host => {
            if ctx.host.is_none() {
                return Err(RiskShareError::NoHost);
            }
        }
        RiskRule::OffsetOtherPools => {
            if ctx.other_pools_underspend.is_negative() {
                return Err(RiskShareError::NegativeOtherPools {
                    amount: ctx.other_pools_underspend,
                });
            }
        }
        RiskRule::RiskPool { amount } => {
            if amount.is_negative() {
                return Err(RiskShareError::NegativeRiskPool { amount: *amount });
            }
        }
        RiskRule::Waterfall { steps } => {
            if steps.is_empty() {
                return Err(RiskShareError::EmptyWaterfall);
            }
            for s in steps {
                check(s, sign, ctx)?;
            }
        }
        RiskRule::EachBearsOwn | RiskRule::CarryForward | RiskRule::Contingency => {}
    }
    Ok(())
}

/// Each partner's contributions for the year added up, in the order partners first appear.
fn partner_totals(
    lines: &[ContributionLine],
    exclude_non_recurrent: bool,
) -> Result<Vec<(String, Money)>, MoneyError> {
    let mut totals: Vec<(String, Money)> = Vec::new();
    for line in lines {
        if exclude_non_recurrent && !line.recurrent {
            continue;
        }
        match totals.iter_mut().find(|(p, _)| *p == line.partner) {
            Some((_, m)) => *m = m.checked_add(line.amount)?,
            None => totals.push((line.partner.clone(), line.amount)),
        }
    }
    Ok(totals)
}

/// The partners with something to share by, and their weights in pence.
fn weights(
    rule: &RiskRule,
    ctx: &RiskContext,
    exclude_non_recurrent: bool,
) -> Result<Vec<(String, i64)>, RiskShareError> {
    let mut out = Vec::new();
    for (partner, total) in partner_totals(&ctx.contributions, exclude_non_recurrent)? {
        if total.is_negative() {
            return Err(RiskShareError::NegativeContribution {
                partner,
                amount: total,
            });
        }
        if total != Money::ZERO {
            out.push((partner, total.pence()));
        }
    }
    if out.is_empty() {
        return Err(RiskShareError::NoContributions {
            rule: rule_name(rule),
            what: if exclude_non_recurrent {
                "recurrent "
            } else {
                ""
            },
        });
    }
    Ok(out)
}

/// `allocate` with weights already checked to be non-negative and not all zero.
fn share(amount: Money, weights: &[i64]) -> Result<Vec<Money>, RiskShareError> {
    allocate(amount, weights).map_err(|e| match e {
        // The weights are checked first, so only an impossible sum can fail here.
        AllocationError::Overflow => RiskShareError::Money(MoneyError::Overflow),
        AllocationError::NoWeights
        | AllocationError::NegativeWeight
        | AllocationError::ZeroTotal => RiskShareError::Money(MoneyError::Overflow),
    })
}

/// `magnitude` with the sign of `like`.
fn with_sign_of(magnitude: Money, like: Money) -> Result<Money, MoneyError> {
    if like.is_negative() {
        magnitude.checked_neg()
    } else {
        Ok(magnitude)
    }
}

fn abs(m: Money) -> Result<Money, MoneyError> {
    if m.is_negative() {
        m.checked_neg()
    } else {
        Ok(m)
    }
}

struct Engine<'a> {
    ctx: &'a RiskContext,
    /// Other pools' underspends not yet used, so two offset steps cannot use them twice.
    other_pools_left: Money,
    out: RiskShareOutcome,
}

impl Engine<'_> {
    /// Applies `rule` to `amount` and returns what it could not place.
    fn step(&mut self, rule: &RiskRule, amount: Money) -> Result<Money, RiskShareError> {
        if amount == Money::ZERO {
            return Ok(Money::ZERO);
        }
        match rule {
            RiskRule::ProRata {
                caps,
                exclude_non_recurrent,
            } => {
                let w = weights(rule, self.ctx, *exclude_non_recurrent)?;
                self.capped_pro_rata(amount, &w, caps)
            }
            RiskRule::ReturnProRata => {
                let w = weights(rule, self.ctx, false)?;
                self.capped_pro_rata(amount, &w, &BTreeMap::new())
            }
            RiskRule::FixedShares { shares } => {
                let bp: Vec<i64> = shares.values().map(|s| s.basis_points()).collect();
                let parts = share(amount, &bp)?;
                for (partner, part) in shares.keys().zip(parts) {
                    self.out.add_partner(partner, part)?;
                }
                Ok(Money::ZERO)
            }
            RiskRule::EachBearsOwn => self.each_bears_own(amount),
            RiskRule::Host => {
                let host = self.ctx.host.as_deref().ok_or(RiskShareError::NoHost)?;
                self.out.add_partner(host, amount)?;
                Ok(Money::ZERO)
            }
            RiskRule::OffsetOtherPools => {
                // Only ever reached with an overspend (checked), so `amount` is positive.
                let take = amount.min(self.other_pools_left);
                self.other_pools_left = self.other_pools_left.checked_sub(take)?;
                self.out.other_pools = self.out.other_pools.checked_add(take)?;
                Ok(amount.checked_sub(take)?)
            }
            RiskRule::RiskPool { amount: pool } => {
                let take = amount.min(*pool);
                self.out.risk_pool = self.out.risk_pool.checked_add(take)?;
                Ok(amount.checked_sub(take)?)
            }
            RiskRule::CarryForward => {
                self.out.carried_forward = self.out.carried_forward.checked_add(amount)?;
                Ok(Money::ZERO)
            }
            RiskRule::Contingency => {
                self.out.contingency = self.out.contingency.checked_add(amount)?;
                Ok(Money::ZERO)
            }
            RiskRule::Waterfall { steps } => {
                let mut left = amount;
                for s in steps {
                    left = self.step(s, left)?;
                }
                Ok(left)
            }
        }
    }

    /// Pro rata with caps. Rather than pass excess pennies round, each round starts afresh:
    /// capped partners bear their caps and the rest is shared among the others; anyone that
    /// pushes over its cap joins the capped and the round is redone. The capped set only
    /// grows, so this ends, and the last round's `allocate` keeps the pennies exact.
    fn capped_pro_rata(
        &mut self,
        amount: Money,
        weights: &[(String, i64)],
        caps: &BTreeMap<String, Money>,
    ) -> Result<Money, RiskShareError> {
        let cap_of = |p: &str| caps.get(p).copied();
        let mut capped = vec![false; weights.len()];
        loop {
            let mut rest = amount;
            for ((p, _), c) in weights.iter().zip(&capped) {
                if *c {
                    let cap = cap_of(p).unwrap_or(Money::ZERO);
                    rest = rest.checked_sub(with_sign_of(cap, amount)?)?;
                }
            }
            let open: Vec<usize> = (0..weights.len()).filter(|i| !capped[*i]).collect();
            let parts = if open.is_empty() {
                Vec::new()
            } else {
                let w: Vec<i64> = open.iter().map(|i| weights[*i].1).collect();
                share(rest, &w)?
            };
            let mut newly_capped = false;
            for (i, part) in open.iter().zip(&parts) {
                if let Some(cap) = cap_of(&weights[*i].0)
                    && abs(*part)? > cap
                {
                    capped[*i] = true;
                    newly_capped = true;
                }
            }
            if newly_capped {
                continue;
            }
            for (i, (p, _)) in weights.iter().enumerate() {
                if capped[i] {
                    let cap = cap_of(p).unwrap_or(Money::ZERO);
                    self.out.add_partner(p, with_sign_of(cap, amount)?)?;
                }
            }
            for (i, part) in open.iter().zip(parts) {
                self.out.add_partner(&weights[*i].0, part)?;
            }
            // With everyone capped nothing shares `rest`, so it passes on.
            return Ok(if open.is_empty() { rest } else { Money::ZERO });
        }
    }

    fn each_bears_own(&mut self, amount: Money) -> Result<Money, RiskShareError> {
        let own = &self.ctx.own_variances;
        if Money::checked_sum(own.values().copied())? == amount {
            for (partner, v) in own {
                self.out.add_partner(partner, *v)?;
            }
            return Ok(Money::ZERO);
        }
        let sign = amount.pence().signum();
        let same: Vec<(&String, Money)> = own
            .iter()
            .filter(|(_, v)| v.pence().signum() == sign)
            .map(|(p, v)| (p, *v))
            .collect();
        let same_total = Money::checked_sum(same.iter().map(|(_, v)| *v))?;
        if abs(same_total)? <= abs(amount)? {
            // Each bears all of its own; what no one's own variance explains passes on.
            for (partner, v) in &same {
                self.out.add_partner(partner, *v)?;
            }
            return Ok(amount.checked_sub(same_total)?);
        }
        let w = same
            .iter()
            .map(|(_, v)| abs(*v).map(Money::pence))
            .collect::<Result<Vec<i64>, _>>()?;
        let parts = share(amount, &w)?;
        for ((partner, _), part) in same.iter().zip(parts) {
            self.out.add_partner(partner, part)?;
        }
        Ok(Money::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{Contribution, ContributionKind, FundKind};
    use proptest::prelude::*;

    fn p(pence: i64) -> Money {
        Money::from_pence(pence)
    }

    fn pounds(pounds: i64) -> Money {
        Money::from_pounds(pounds).unwrap()
    }

    fn line(partner: &str, amount: Money, recurrent: bool) -> ContributionLine {
        ContributionLine {
            partner: partner.into(),
            amount,
            recurrent,
        }
    }

    /// Hertfordshire-like: council £12,500,000, health £27,500,000; total £40,000,000.
    fn herts() -> RiskContext {
        RiskContext {
            contributions: vec![
                line("council", pounds(12_500_000), true),
                line("health", pounds(27_500_000), true),
            ],
            host: Some("council".into()),
            ..RiskContext::default()
        }
    }

    fn pro_rata() -> RiskRule {
        RiskRule::ProRata {
            caps: BTreeMap::new(),
            exclude_non_recurrent: false,
        }
    }

    fn capped(caps: &[(&str, Money)]) -> RiskRule {
        RiskRule::ProRata {
            caps: caps.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            exclude_non_recurrent: false,
        }
    }

    fn shares(out: &RiskShareOutcome) -> Vec<(&str, i64)> {
        out.partners
            .iter()
            .map(|s| (s.partner.as_str(), s.amount.pence()))
            .collect()
    }

    #[test]
    fn pro_rata_to_the_penny() {
        // Overspend £1,000,000.01 = 100,000,001p; weights 12.5m : 27.5m = 0.3125 : 0.6875.
        // council 100,000,001 × 0.3125 = 31,250,000.3125 → 31,250,000 (remainder .3125)
        // health  100,000,001 × 0.6875 = 68,750,000.6875 → 68,750,000 (remainder .6875)
        // One penny left; health has the larger remainder: £312,500.00 and £687,500.01.
        let out = apply(&pro_rata(), p(100_000_001), &herts()).unwrap();
        assert_eq!(
            shares(&out),
            [("council", 31_250_000), ("health", 68_750_001)]
        );
        assert_eq!(out.unallocated, Money::ZERO);
        assert!(out.is_balanced());
    }

    #[test]
    fn pro_rata_can_leave_out_non_recurrent_payments() {
        // Council £10m recurrent + £2m one-off; health £30m. Underspend £400,000.
        let ctx = RiskContext {
            contributions: vec![
                line("council", pounds(10_000_000), true),
                line("council", pounds(2_000_000), false),
                line("health", pounds(30_000_000), true),
            ],
            ..RiskContext::default()
        };
        // Excluding the one-off: 10 : 30, so −£100,000 and −£300,000.
        let rule = RiskRule::ProRata {
            caps: BTreeMap::new(),
            exclude_non_recurrent: true,
        };
        let out = apply(&rule, pounds(-400_000), &ctx).unwrap();
        assert_eq!(
            shares(&out),
            [("council", -10_000_000), ("health", -30_000_000)]
        );
        // Including it: 12 : 30. 40,000,000p × 12/42 = 11,428,571.43 → 11,428,571 (.43);
        // × 30/42 = 28,571,428.57 → 28,571,428 (.57); the spare penny goes to health.
        let out = apply(&pro_rata(), pounds(-400_000), &ctx).unwrap();
        assert_eq!(
            shares(&out),
            [("council", -11_428_571), ("health", -28_571_429)]
        );
    }

    #[test]
    fn a_capped_partner_pays_its_cap_and_the_rest_is_reshared() {
        // Council £10m, health £20m, trust £10m; overspend £2,000,000; health capped £800,000.
        // Round 1: 500,000 / 1,000,000 / 500,000: health is over its cap.
        // Round 2: health 800,000; 1,200,000 shared 1:1 → council 600,000, trust 600,000.
        let ctx = RiskContext {
            contributions: vec![
                line("council", pounds(10_000_000), true),
                line("health", pounds(20_000_000), true),
                line("trust", pounds(10_000_000), true),
            ],
            ..RiskContext::default()
        };
        let out = apply(
            &capped(&[("health", pounds(800_000))]),
            pounds(2_000_000),
            &ctx,
        )
        .unwrap();
        assert_eq!(out.partner("council"), Some(pounds(600_000)));
        assert_eq!(out.partner("health"), Some(pounds(800_000)));
        assert_eq!(out.partner("trust"), Some(pounds(600_000)));
        // Capping again: council also capped at £550,000.
        // Round 2 gives council 600,000 > 550,000, so round 3: 2,000,000 − 800,000 − 550,000
        // = 650,000, all to the trust.
        let out = apply(
            &capped(&[("health", pounds(800_000)), ("council", pounds(550_000))]),
            pounds(2_000_000),
            &ctx,
        )
        .unwrap();
        assert_eq!(out.partner("council"), Some(pounds(550_000)));
        assert_eq!(out.partner("health"), Some(pounds(800_000)));
        assert_eq!(out.partner("trust"), Some(pounds(650_000)));
        assert_eq!(out.unallocated, Money::ZERO);
    }

    #[test]
    fn when_everyone_is_capped_the_rest_is_unallocated() {
        // Herts; overspend £1,000,000; caps council £100,000, health £200,000.
        // Round 1: 312,500 and 687,500, both over their caps; nobody is left to share,
        // so 1,000,000 − 100,000 − 200,000 = 700,000 is unallocated.
        let rule = capped(&[("council", pounds(100_000)), ("health", pounds(200_000))]);
        let out = apply(&rule, pounds(1_000_000), &herts()).unwrap();
        assert_eq!(out.partner("council"), Some(pounds(100_000)));
        assert_eq!(out.partner("health"), Some(pounds(200_000)));
        assert_eq!(out.unallocated, pounds(700_000));
        assert!(out.is_balanced());
    }

    #[test]
    fn fixed_shares_by_basis_points() {
        // Council 22%, health 78% of £1,000,000.01 = 100,000,001p:
        // 22,000,000.22 → 22,000,000 (.22); 78,000,000.78 → 78,000,000 (.78) + the penny.
        let rule = RiskRule::FixedShares {
            shares: [
                ("council".to_string(), Percent::from_basis_points(2_200)),
                ("health".to_string(), Percent::from_basis_points(7_800)),
            ]
            .into(),
        };
        let out = apply(&rule, p(100_000_001), &herts()).unwrap();
        assert_eq!(
            shares(&out),
            [("council", 22_000_000), ("health", 78_000_001)]
        );
        let short = RiskRule::FixedShares {
            shares: [
                ("council".to_string(), Percent::from_basis_points(2_200)),
                ("health".to_string(), Percent::from_basis_points(7_000)),
            ]
            .into(),
        };
        let err = apply(&short, pounds(1), &herts()).unwrap_err();
        assert_eq!(err.to_string(), "the fixed shares add up to 92%, not 100%");
    }

    #[test]
    fn each_bears_its_own() {
        // Pool overspend £70,000: council's functions £100,000 over, health's £30,000 under.
        // The own variances add up to the variance, so each bears exactly its own.
        let mut ctx = herts();
        ctx.own_variances = [
            ("council".to_string(), pounds(100_000)),
            ("health".to_string(), pounds(-30_000)),
        ]
        .into();
        let out = apply(&RiskRule::EachBearsOwn, pounds(70_000), &ctx).unwrap();
        assert_eq!(out.partner("council"), Some(pounds(100_000)));
        assert_eq!(out.partner("health"), Some(pounds(-30_000)));

        // Only council's own variance (£60,000 over) is known of a £100,000 overspend:
        // council bears its £60,000; the £40,000 nobody's own variance explains is unallocated.
        ctx.own_variances = [("council".to_string(), pounds(60_000))].into();
        let out = apply(&RiskRule::EachBearsOwn, pounds(100_000), &ctx).unwrap();
        assert_eq!(out.partner("council"), Some(pounds(60_000)));
        assert_eq!(out.partner("health"), Some(Money::ZERO));
        assert_eq!(out.unallocated, pounds(40_000));
    }

    #[test]
    fn each_bears_own_after_an_offset_shares_what_is_left() {
        // Overspend £900,000: council £600,000 over, health £300,000 over; other pools'
        // underspend £250,000 meets the first part. The £650,000 left = 65,000,000p is
        // shared 600 : 300: council 43,333,333.33 → 43,333,333 (.33), health
        // 21,666,666.67 → 21,666,666 (.67) + the spare penny: £433,333.33 and £216,666.67.
        let mut ctx = herts();
        ctx.own_variances = [
            ("council".to_string(), pounds(600_000)),
            ("health".to_string(), pounds(300_000)),
        ]
        .into();
        ctx.other_pools_underspend = pounds(250_000);
        let rule = RiskRule::Waterfall {
            steps: vec![RiskRule::OffsetOtherPools, RiskRule::EachBearsOwn],
        };
        let out = apply(&rule, pounds(900_000), &ctx).unwrap();
        assert_eq!(out.other_pools, pounds(250_000));
        assert_eq!(out.partner("council"), Some(p(43_333_333)));
        assert_eq!(out.partner("health"), Some(p(21_666_667)));
        assert!(out.is_balanced());
    }

    #[test]
    fn the_host_bears_an_overspend_and_keeps_an_underspend() {
        let out = apply(&RiskRule::Host, pounds(1_000), &herts()).unwrap();
        assert_eq!(shares(&out), [("council", 100_000), ("health", 0)]);
        let out = apply(&RiskRule::Host, pounds(-5_000), &herts()).unwrap();
        assert_eq!(out.partner("council"), Some(pounds(-5_000)));
        let mut ctx = herts();
        ctx.host = None;
        assert_eq!(
            apply(&RiskRule::Host, pounds(1), &ctx),
            Err(RiskShareError::NoHost)
        );
    }

    #[test]
    fn offset_against_other_pools_as_far_as_they_go() {
        // £300,000 overspend, £250,000 underspend elsewhere: £50,000 is left with no step
        // after, so it is unallocated.
        let mut ctx = herts();
        ctx.other_pools_underspend = pounds(250_000);
        let out = apply(&RiskRule::OffsetOtherPools, pounds(300_000), &ctx).unwrap();
        assert_eq!(out.other_pools, pounds(250_000));
        assert_eq!(out.unallocated, pounds(50_000));
        // Two offset steps cannot use the same underspend twice.
        let twice = RiskRule::Waterfall {
            steps: vec![RiskRule::OffsetOtherPools, RiskRule::OffsetOtherPools],
        };
        let out = apply(&twice, pounds(300_000), &ctx).unwrap();
        assert_eq!(out.other_pools, pounds(250_000));
        assert_eq!(out.unallocated, pounds(50_000));
    }

    #[test]
    fn risk_pool_absorbs_up_to_its_size() {
        let rule = RiskRule::RiskPool {
            amount: pounds(500_000),
        };
        let out = apply(&rule, pounds(300_000), &herts()).unwrap();
        assert_eq!(out.risk_pool, pounds(300_000));
        assert_eq!(out.unallocated, Money::ZERO);
        let out = apply(&rule, pounds(600_000), &herts()).unwrap();
        assert_eq!(out.risk_pool, pounds(500_000));
        assert_eq!(out.unallocated, pounds(100_000));
    }

    #[test]
    fn carry_forward_and_contingency_keep_an_underspend_in_the_pool() {
        let out = apply(&RiskRule::CarryForward, pounds(-120_000), &herts()).unwrap();
        assert_eq!(out.carried_forward, pounds(-120_000));
        assert_eq!(shares(&out), [("council", 0), ("health", 0)]);
        let out = apply(&RiskRule::Contingency, pounds(-80_000), &herts()).unwrap();
        assert_eq!(out.contingency, pounds(-80_000));
        assert!(out.is_balanced());
    }

    #[test]
    fn return_pro_rata_gives_an_underspend_back() {
        // Underspend £100,000.01 = 10,000,001p at 0.3125 : 0.6875:
        // 3,125,000.3125 → 3,125,000; 6,875,000.6875 → 6,875,000 + the spare penny.
        let out = apply(&RiskRule::ReturnProRata, p(-10_000_001), &herts()).unwrap();
        assert_eq!(
            shares(&out),
            [("council", -3_125_000), ("health", -6_875_001)]
        );
    }

    #[test]
    fn a_rule_for_the_other_sign_is_an_error_naming_it() {
        let err = apply(&RiskRule::ReturnProRata, pounds(1_000), &herts()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the rule 'return-pro-rata' (returned pro rata to contributions) applies only to \
             an underspend, but this variance is an overspend"
        );
        for rule in [RiskRule::CarryForward, RiskRule::Contingency] {
            assert!(matches!(
                apply(&rule, pounds(1), &herts()),
                Err(RiskShareError::WrongSign {
                    actual: VarianceSign::Overspend,
                    ..
                })
            ));
        }
        let err = apply(&RiskRule::OffsetOtherPools, pounds(-1), &herts()).unwrap_err();
        assert!(matches!(
            err,
            RiskShareError::WrongSign {
                rule: "offset-other-pools",
                applies_to: VarianceSign::Overspend,
                actual: VarianceSign::Underspend,
                ..
            }
        ));
        // A waterfall step is checked even if the steps before it take everything.
        let rule = RiskRule::Waterfall {
            steps: vec![RiskRule::Host, RiskRule::ReturnProRata],
        };
        assert!(matches!(
            apply(&rule, pounds(1), &herts()),
            Err(RiskShareError::WrongSign {
                rule: "return-pro-rata",
                ..
            })
        ));
        // Zero is neither sign: nothing to share, no error.
        let out = apply(&RiskRule::ReturnProRata, Money::ZERO, &herts()).unwrap();
        assert!(out.is_balanced());
        assert_eq!(out.unallocated, Money::ZERO);
    }

    #[test]
    fn waterfall_other_pools_then_risk_pool_then_capped_pro_rata() {
        // Overspend £900,000.
        // 1. Other pools' underspend £250,000 → £650,000 left.
        // 2. Risk pool £500,000 → £150,000 left.
        // 3. Pro rata 0.3125 : 0.6875 with health capped at £50,000: 46,875 / 103,125, so
        //    health pays its £50,000 cap and council the other £100,000.
        let mut ctx = herts();
        ctx.other_pools_underspend = pounds(250_000);
        let rule = RiskRule::Waterfall {
            steps: vec![
                RiskRule::OffsetOtherPools,
                RiskRule::RiskPool {
                    amount: pounds(500_000),
                },
                capped(&[("health", pounds(50_000))]),
            ],
        };
        let out = apply(&rule, pounds(900_000), &ctx).unwrap();
        assert_eq!(out.other_pools, pounds(250_000));
        assert_eq!(out.risk_pool, pounds(500_000));
        assert_eq!(out.partner("council"), Some(pounds(100_000)));
        assert_eq!(out.partner("health"), Some(pounds(50_000)));
        assert_eq!(out.unallocated, Money::ZERO);
        assert!(out.is_balanced());
    }

    #[test]
    fn waterfall_passes_what_the_capped_cannot_bear_to_the_next_step() {
        // £1,000,000 overspend; everyone capped (£100,000 + £200,000), the £700,000 left
        // falls to the host (council): council 800,000, health 200,000.
        let rule = RiskRule::Waterfall {
            steps: vec![
                capped(&[("council", pounds(100_000)), ("health", pounds(200_000))]),
                RiskRule::Host,
            ],
        };
        let out = apply(&rule, pounds(1_000_000), &herts()).unwrap();
        assert_eq!(out.partner("council"), Some(pounds(800_000)));
        assert_eq!(out.partner("health"), Some(pounds(200_000)));
        assert_eq!(out.unallocated, Money::ZERO);
        assert_eq!(
            apply(&RiskRule::Waterfall { steps: vec![] }, pounds(1), &herts()),
            Err(RiskShareError::EmptyWaterfall)
        );
    }

    #[test]
    fn share_variance_picks_the_rule_for_the_sign() {
        let rs = RiskShare {
            overspend: Some(pro_rata()),
            underspend: None,
            note: None,
            illustrative: false,
        };
        let out = share_variance(&rs, pounds(40_000), &herts()).unwrap();
        assert_eq!(out.partner("council"), Some(pounds(12_500)));
        assert_eq!(out.partner("health"), Some(pounds(27_500)));
        // No underspend rule: the partners have to agree it, so it is all unallocated.
        let out = share_variance(&rs, pounds(-40_000), &herts()).unwrap();
        assert_eq!(out.unallocated, pounds(-40_000));
        assert!(out.is_balanced());
    }

    #[test]
    fn context_for_a_fund_year_defaults_the_host_to_the_largest_contributor() {
        let contribution = |partner: &str, year: i16, amount: i64| Contribution {
            partner: partner.into(),
            year: FinancialYear::starting(year).unwrap(),
            amount: pounds(amount),
            kind: ContributionKind::Cash,
            conditions: None,
            instalments: None,
            recurrent: true,
            note: None,
            illustrative: false,
        };
        let fund = Fund {
            id: "pool".into(),
            name: "Pool".into(),
            kind: FundKind::Pooled,
            host: None,
            pool_manager: None,
            care_groups: vec![],
            net_of_client_income: false,
            risk_share: None,
            monitoring: None,
            contributions: vec![
                contribution("council", 2024, 12_500_000),
                contribution("health", 2024, 27_500_000),
                contribution("council", 2025, 50_000_000),
            ],
            note: None,
            illustrative: false,
        };
        let ctx = RiskContext::for_fund(&fund, FinancialYear::starting(2024).unwrap()).unwrap();
        assert_eq!(ctx.contributions.len(), 2);
        assert_eq!(ctx.host.as_deref(), Some("health"));
        let out = apply(&pro_rata(), p(100_000_001), &ctx).unwrap();
        assert_eq!(out.partner("health"), Some(p(68_750_001)));
    }

    const PARTNERS: [&str; 3] = ["council", "health", "trust"];

    fn partner() -> impl Strategy<Value = String> {
        prop::sample::select(&PARTNERS[..]).prop_map(str::to_string)
    }

    fn caps() -> impl Strategy<Value = BTreeMap<String, Money>> {
        prop::collection::btree_map(partner(), (0i64..2_000_000_000).prop_map(p), 0..3)
    }

    fn fixed_shares() -> impl Strategy<Value = RiskRule> {
        (0i64..=10_000, 0i64..=10_000).prop_map(|(a, b)| {
            let (lo, hi) = (a.min(b), a.max(b));
            RiskRule::FixedShares {
                shares: [
                    ("council".to_string(), Percent::from_basis_points(lo)),
                    ("health".to_string(), Percent::from_basis_points(hi - lo)),
                    ("trust".to_string(), Percent::from_basis_points(10_000 - hi)),
                ]
                .into(),
            }
        })
    }

    fn leaf() -> impl Strategy<Value = RiskRule> {
        prop_oneof![
            (caps(), any::<bool>()).prop_map(|(caps, exclude_non_recurrent)| {
                RiskRule::ProRata {
                    caps,
                    exclude_non_recurrent,
                }
            }),
            fixed_shares(),
            Just(RiskRule::EachBearsOwn),
            Just(RiskRule::Host),
            Just(RiskRule::OffsetOtherPools),
            (0i64..2_000_000_000).prop_map(|a| RiskRule::RiskPool { amount: p(a) }),
            Just(RiskRule::CarryForward),
            Just(RiskRule::Contingency),
            Just(RiskRule::ReturnProRata),
        ]
    }

    fn rule() -> impl Strategy<Value = RiskRule> {
        leaf().prop_recursive(2, 12, 4, |inner| {
            prop::collection::vec(inner, 1..4).prop_map(|steps| RiskRule::Waterfall { steps })
        })
    }

    fn context() -> impl Strategy<Value = RiskContext> {
        (
            prop::collection::vec((partner(), 0i64..10_000_000_000, any::<bool>()), 1..6),
            prop::option::of(partner()),
            prop::collection::btree_map(partner(), -2_000_000_000i64..2_000_000_000, 0..3),
            0i64..2_000_000_000,
        )
            .prop_map(|(lines, host, own, other)| RiskContext {
                contributions: lines
                    .into_iter()
                    .map(|(partner, amount, recurrent)| ContributionLine {
                        partner,
                        amount: p(amount),
                        recurrent,
                    })
                    .collect(),
                host,
                own_variances: own.into_iter().map(|(k, v)| (k, p(v))).collect(),
                other_pools_underspend: p(other),
            })
    }

    proptest! {
        #[test]
        fn the_parts_always_add_up_to_the_variance(
            rule in rule(),
            ctx in context(),
            variance in -5_000_000_000i64..5_000_000_000,
        ) {
            match apply(&rule, p(variance), &ctx) {
                Ok(out) => {
                    prop_assert_eq!(out.variance, p(variance));
                    prop_assert_eq!(out.total(), Ok(p(variance)));
                    prop_assert!(out.is_balanced());
                    // Every part goes the variance's way, except that each-bears-own may
                    // net a partner's own underspend against another's overspend.
                    for part in [out.other_pools, out.risk_pool, out.carried_forward,
                                 out.contingency, out.unallocated] {
                        prop_assert!(part.pence() == 0 || part.pence().signum() == variance.signum());
                    }
                }
                // Errors are about the rule or the context, never the arithmetic.
                Err(e) => prop_assert!(
                    !matches!(e, RiskShareError::Unbalanced { .. } | RiskShareError::Money(_)),
                    "{e}"
                ),
            }
        }

        #[test]
        fn pro_rata_and_fixed_shares_never_go_against_the_variance(
            rule in prop_oneof![
                (caps(), any::<bool>()).prop_map(|(caps, exclude_non_recurrent)| {
                    RiskRule::ProRata { caps, exclude_non_recurrent }
                }),
                fixed_shares(),
            ],
            ctx in context(),
            variance in -5_000_000_000i64..5_000_000_000,
        ) {
            if let Ok(out) = apply(&rule, p(variance), &ctx) {
                for s in &out.partners {
                    if variance > 0 {
                        prop_assert!(s.amount.pence() >= 0, "{} pays {}", s.partner, s.amount);
                    } else {
                        prop_assert!(s.amount.pence() <= 0, "{} pays {}", s.partner, s.amount);
                    }
                }
                // A capped partner never bears more than its cap.
                if let RiskRule::ProRata { caps, .. } = &rule {
                    for (partner, cap) in caps {
                        if let Some(m) = out.partner(partner) {
                            prop_assert!(m.pence().abs() <= cap.pence());
                        }
                    }
                    // Whatever is unallocated means everyone sharing is at its cap.
                    if out.unallocated != Money::ZERO {
                        for s in &out.partners {
                            if s.amount != Money::ZERO {
                                prop_assert!(caps.get(&s.partner).is_some_and(|c| s.amount.pence().abs() == c.pence()));
                            }
                        }
                    }
                }
            }
        }

        #[test]
        fn uncapped_pro_rata_is_within_a_penny_of_the_exact_share(
            ctx in context(),
            variance in -5_000_000_000i64..5_000_000_000,
        ) {
            if let Ok(out) = apply(&pro_rata(), p(variance), &ctx) {
                prop_assert_eq!(out.unallocated, Money::ZERO);
                let totals = partner_totals(&ctx.contributions, false).unwrap();
                let sum: i128 = totals.iter().map(|(_, m)| i128::from(m.pence())).sum();
                for (partner, weight) in totals {
                    let got = i128::from(out.partner(&partner).unwrap().pence());
                    let exact_times_sum = i128::from(variance) * i128::from(weight.pence());
                    prop_assert!((got * sum - exact_times_sum).abs() < sum);
                }
            }
        }
    }
}
