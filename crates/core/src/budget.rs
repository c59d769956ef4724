//! Budgets: a line per fund, financial year and service line (optionally whose budget it is,
//! for aligned budgets, and per locality), its annual amount and how it is phased across
//! P01–P12, and client income where the partners budget net of it.
//!
//! Phasing is either `even` (the annual amount shared into 12 by largest remainder, so the
//! periods add up to it exactly) or given per period. Given amounts must add up to the annual
//! amount exactly: a mismatch is an error naming the difference, never a silent rescale.

use serde::{Deserialize, Serialize};

use crate::calendar::{FinancialYear, Period};
use crate::money::{Money, MoneyError, allocate};

/// How a budget is spread across the twelve periods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phasing {
    /// The annual amount in 12 equal parts, odd pennies to the earliest periods.
    Even,
    /// P01..P12 as given; they must add up to the annual amount.
    Given([Money; 12]),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("the phasing has {count} amounts; it needs 12, one for each period P01 to P12")]
    WrongCount { count: usize },
    #[error("the phasing for P{period:02} is '{text}': {reason}")]
    BadAmount {
        period: u8,
        text: String,
        reason: String,
    },
    #[error(
        "the phasing for {service_line} adds up to {phased}, but the annual budget is {annual} (a difference of {difference})"
    )]
    PhasingMismatch {
        service_line: String,
        phased: Money,
        annual: Money,
        difference: Money,
    },
    #[error(
        "the client income for {service_line} is negative ({income}); write it as a positive amount"
    )]
    NegativeIncome { service_line: String, income: Money },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Reads a phasing written as 12 amounts, P01 first, separated by semicolons, line breaks or
/// spaces (`"1,000.00; 1,000.00; …"` or `"100, 100, 100, …"`); amounts in the usual finance
/// formats.
pub fn parse_phasing(text: &str) -> Result<[Money; 12], BudgetError> {
    // A comma can be a thousands separator ("1,234.56"), so amounts are separated by
    // semicolons or line breaks, or else by spaces (a comma just before a space also
    // separates). "100,200" with no space is one amount, never two.
    let parts: Vec<&str> = if text.contains(';') || text.contains('\n') {
        text.split([';', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    } else {
        text.split_whitespace()
            .map(|p| p.trim_end_matches(','))
            .filter(|p| !p.is_empty())
            .collect()
    };
    if parts.len() != 12 {
        return Err(BudgetError::WrongCount { count: parts.len() });
    }
    let mut amounts = [Money::ZERO; 12];
    for (i, part) in parts.iter().enumerate() {
        amounts[i] = Money::parse(part).map_err(|e| BudgetError::BadAmount {
            period: (i + 1) as u8,
            text: (*part).to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(amounts)
}

impl Phasing {
    /// `even`, or 12 amounts as [`parse_phasing`] reads them.
    pub fn parse(text: &str) -> Result<Phasing, BudgetError> {
        if text.trim().eq_ignore_ascii_case("even") {
            Ok(Phasing::Even)
        } else {
            parse_phasing(text).map(Phasing::Given)
        }
    }
}

/// One line of a fund's budget for a year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLine {
    pub fund: String,
    pub year: FinancialYear,
    pub service_line: String,
    /// Whose budget it is (aligned budgets); `None` for the pool as a whole.
    pub partner: Option<String>,
    pub locality: Option<String>,
    /// The gross annual budget (before client income).
    pub annual: Money,
    /// Client income expected for the year, as a positive amount; phased evenly.
    pub client_income: Money,
    pub phasing: Phasing,
}

/// One line's budget in the terms monitoring uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetFigures {
    pub gross: Money,
    pub client_income: Money,
    /// Gross less client income.
    pub net: Money,
}

impl BudgetLine {
    /// An evenly phased line with no client income.
    pub fn even(
        fund: &str,
        year: FinancialYear,
        service_line: &str,
        partner: Option<&str>,
        locality: Option<&str>,
        annual: Money,
    ) -> BudgetLine {
        BudgetLine {
            fund: fund.to_string(),
            year,
            service_line: service_line.to_string(),
            partner: partner.map(str::to_string),
            locality: locality.map(str::to_string),
            annual,
            client_income: Money::ZERO,
            phasing: Phasing::Even,
        }
    }

    /// Checks the line: given phasing adds up to the annual amount, income is not negative.
    pub fn check(&self) -> Result<(), BudgetError> {
        if self.client_income.is_negative() {
            return Err(BudgetError::NegativeIncome {
                service_line: self.service_line.clone(),
                income: self.client_income,
            });
        }
        if let Phasing::Given(amounts) = &self.phasing {
            let phased = Money::checked_sum(amounts.iter().copied())?;
            if phased != self.annual {
                return Err(BudgetError::PhasingMismatch {
                    service_line: self.service_line.clone(),
                    phased,
                    annual: self.annual,
                    difference: phased.checked_sub(self.annual)?,
                });
            }
        }
        Ok(())
    }

    /// The gross budget for each period P01..P12, adding up to `annual` exactly.
    pub fn gross_by_period(&self) -> Result<[Money; 12], BudgetError> {
        self.check()?;
        Ok(match &self.phasing {
            Phasing::Even => even12(self.annual),
            Phasing::Given(amounts) => *amounts,
        })
    }

    /// The budget for each period on the basis monitoring uses: net of client income when
    /// the fund is budgeted net of it, gross otherwise.
    pub fn by_period(&self, net_of_client_income: bool) -> Result<[Money; 12], BudgetError> {
        let mut out = self.gross_by_period()?;
        if net_of_client_income {
            for (slot, income) in out.iter_mut().zip(even12(self.client_income)) {
                *slot = slot.checked_sub(income)?;
            }
        }
        Ok(out)
    }

    /// The annual figure on the basis monitoring uses.
    pub fn monitored_annual(&self, net_of_client_income: bool) -> Result<Money, BudgetError> {
        Ok(if net_of_client_income {
            self.annual.checked_sub(self.client_income)?
        } else {
            self.annual
        })
    }

    /// Budget to the end of `period` (P01 up to and including it) on the monitored basis.
    /// A period of an earlier year gives zero; of a later year, the whole annual figure.
    pub fn to_date(
        &self,
        period: Period,
        net_of_client_income: bool,
    ) -> Result<Money, BudgetError> {
        let periods = if period.year() < self.year {
            0
        } else if period.year() > self.year {
            12
        } else {
            usize::from(period.number())
        };
        let phased = self.by_period(net_of_client_income)?;
        Ok(Money::checked_sum(phased[..periods].iter().copied())?)
    }

    /// Gross, client income and net for the year.
    pub fn figures(&self) -> Result<BudgetFigures, BudgetError> {
        Ok(BudgetFigures {
            gross: self.annual,
            client_income: self.client_income,
            net: self.annual.checked_sub(self.client_income)?,
        })
    }
}

/// `amount` in 12 parts by largest remainder (odd pennies to the earliest periods).
pub fn even12(amount: Money) -> [Money; 12] {
    let parts = allocate(amount, &[1; 12]).expect("twelve equal weights always allocate");
    let mut out = [Money::ZERO; 12];
    out.copy_from_slice(&parts);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fy() -> FinancialYear {
        FinancialYear::starting(2024).unwrap()
    }

    #[test]
    fn even_phasing_of_an_awkward_amount_adds_to_the_penny() {
        // £1,000,000.01 = 100,000,001p; ÷ 12 = 8,333,333 rem 5, so P01..P05 get 8,333,334p
        // and P06..P12 get 8,333,333p: 5 × 8,333,334 + 7 × 8,333,333 = 100,000,001.
        let line = BudgetLine::even(
            "f",
            fy(),
            "Home care",
            None,
            None,
            Money::from_pence(100_000_001),
        );
        let p = line.gross_by_period().unwrap();
        assert_eq!(p[0], Money::from_pence(8_333_334));
        assert_eq!(p[4], Money::from_pence(8_333_334));
        assert_eq!(p[5], Money::from_pence(8_333_333));
        assert_eq!(p[11], Money::from_pence(8_333_333));
        assert_eq!(
            Money::checked_sum(p).unwrap(),
            Money::from_pence(100_000_001)
        );
        // To date at P06: 5 × 8,333,334 + 8,333,333 = 50,000,003.
        let p06: Period = "2024/25-P06".parse().unwrap();
        assert_eq!(
            line.to_date(p06, false).unwrap(),
            Money::from_pence(50_000_003)
        );
        let next_year: Period = "2025/26-P01".parse().unwrap();
        assert_eq!(line.to_date(next_year, false).unwrap(), line.annual);
        let last_year: Period = "2023/24-P12".parse().unwrap();
        assert_eq!(line.to_date(last_year, false).unwrap(), Money::ZERO);
    }

    #[test]
    fn given_phasing_is_parsed_and_checked() {
        let amounts = parse_phasing("100 100 100 100 100 100 100 100 100 100 100 1100").unwrap();
        assert_eq!(amounts[11], Money::from_pounds(1_100).unwrap());
        let semis = parse_phasing("1,000.00; 0; 0; 0; 0; 0; 0; 0; 0; 0; 0; (500.00)").unwrap();
        assert_eq!(semis[0], Money::from_pounds(1_000).unwrap());
        assert_eq!(semis[11], Money::from_pounds(-500).unwrap());
        let mut line = BudgetLine::even(
            "f",
            fy(),
            "Home care",
            None,
            None,
            Money::from_pounds(2_200).unwrap(),
        );
        line.phasing = Phasing::Given(amounts);
        assert!(line.check().is_ok());
        // P01..P03 = £300.
        let p03: Period = "2024/25-P03".parse().unwrap();
        assert_eq!(
            line.to_date(p03, false).unwrap(),
            Money::from_pounds(300).unwrap()
        );
        line.annual = Money::from_pounds(2_000).unwrap();
        let err = line.check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the phasing for Home care adds up to £2,200.00, but the annual budget is £2,000.00 (a difference of £200.00)"
        );
    }

    #[test]
    fn bad_phasing_names_the_period() {
        let err = parse_phasing("1 2 3 4 5 6 seven 8 9 10 11 12").unwrap_err();
        assert!(
            matches!(err, BudgetError::BadAmount { period: 7, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("the phasing for P07 is 'seven'"),
            "{err}"
        );
        assert_eq!(Phasing::parse(" Even ").unwrap(), Phasing::Even);
        assert!(matches!(
            Phasing::parse("1 2 3 4 5 6 7 8 9 10 11 12").unwrap(),
            Phasing::Given(_)
        ));
        let commas = parse_phasing("1,000, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12").unwrap();
        assert_eq!(commas[0], Money::from_pounds(1_000).unwrap());
        assert_eq!(commas[1], Money::from_pounds(2).unwrap());
        // Twelve amounts run together with bare commas are not guessed at.
        assert!(parse_phasing("1,2,3,4,5,6,7,8,9,10,11,12").is_err());
        let err = parse_phasing("1 2 3").unwrap_err();
        assert_eq!(err, BudgetError::WrongCount { count: 3 });
    }

    #[test]
    fn net_of_client_income() {
        // Gross £12,000 less income £1,200 = net £10,800; by period gross £1,000 less
        // income £100 = £900; to P04 = 4 × £900 = £3,600 (gross 4 × £1,000 = £4,000).
        let mut line = BudgetLine::even(
            "f",
            fy(),
            "Residential",
            None,
            None,
            Money::from_pounds(12_000).unwrap(),
        );
        line.client_income = Money::from_pounds(1_200).unwrap();
        let f = line.figures().unwrap();
        assert_eq!(f.net, Money::from_pounds(10_800).unwrap());
        let p04: Period = "2024/25-P04".parse().unwrap();
        assert_eq!(
            line.to_date(p04, true).unwrap(),
            Money::from_pounds(3_600).unwrap()
        );
        assert_eq!(
            line.to_date(p04, false).unwrap(),
            Money::from_pounds(4_000).unwrap()
        );
        assert_eq!(
            line.monitored_annual(true).unwrap(),
            Money::from_pounds(10_800).unwrap()
        );
        line.client_income = Money::from_pounds(-1).unwrap();
        assert!(matches!(
            line.check(),
            Err(BudgetError::NegativeIncome { .. })
        ));
    }
}
