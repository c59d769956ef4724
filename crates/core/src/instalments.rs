//! When a contribution or transfer falls due: one payment on 1 April, four on the first day
//! of each quarter, or twelve on the first of each month. The parts are shared by largest
//! remainder, so they always add up to the amount agreed, to the penny.

use jiff::civil::Date;

use crate::agreement::{Contribution, Instalments, Transfer};
use crate::calendar::{FinancialYear, Period};
use crate::money::{Money, MoneyError, allocate};

/// One payment of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instalment {
    /// The day it falls due.
    pub due: Date,
    /// The monthly period it falls due in (P01 for 1 April, P04 for 1 July, …).
    pub period: Period,
    pub amount: Money,
}

/// The payments that make up `amount` for `year`.
///
/// - `annual`: the whole amount on 1 April.
/// - `quarterly`: four equal parts on 1 April, 1 July, 1 October and 1 January.
/// - `monthly`: twelve equal parts on the first of each month, April to March.
///
/// Where the amount does not divide exactly, the odd pennies go one each to the earliest
/// instalments (£834,000.01 quarterly is £208,500.01 on 1 April, then three of £208,500.00).
/// A negative amount (a repayment) is scheduled the same way, with the sign kept.
pub fn schedule(amount: Money, instalments: Instalments, year: FinancialYear) -> Vec<Instalment> {
    let periods: Vec<Period> = match instalments {
        Instalments::Annual => year.periods().take(1).collect(),
        Instalments::Quarterly => year.quarters().map(|q| q.periods()[0]).collect(),
        Instalments::Monthly => year.periods().collect(),
    };
    let weights = vec![1_i64; periods.len()];
    // Equal positive weights can always be allocated: there is at least one and none is negative.
    let parts = allocate(amount, &weights).expect("equal positive weights always allocate");
    periods
        .into_iter()
        .zip(parts)
        .map(|(period, amount)| Instalment {
            due: period.first_day(),
            period,
            amount,
        })
        .collect()
}

/// A contribution's schedule, if the agreement says how it is paid.
pub fn contribution_schedule(contribution: &Contribution) -> Option<Vec<Instalment>> {
    contribution
        .instalments
        .map(|i| schedule(contribution.amount, i, contribution.year))
}

/// A transfer's schedule, if the agreement gives both its year and how it is paid.
pub fn transfer_schedule(transfer: &Transfer) -> Option<Vec<Instalment>> {
    Some(schedule(
        transfer.amount,
        transfer.instalments?,
        transfer.year?,
    ))
}

/// Where a schedule stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidAndDue {
    /// The instalments due on or before the day, added up.
    pub due_to_date: Money,
    /// What has been paid so far.
    pub paid: Money,
    /// Due less paid: positive is owed (in arrears), negative is paid in advance.
    pub outstanding: Money,
}

/// How much of a schedule has fallen due by `today` (an instalment due today counts as due),
/// against what has been paid, and the difference. `today` is passed in: the core has no clock.
pub fn paid_and_due(
    schedule: &[Instalment],
    payments_to_date: Money,
    today: Date,
) -> Result<PaidAndDue, MoneyError> {
    let due_to_date =
        Money::checked_sum(schedule.iter().filter(|i| i.due <= today).map(|i| i.amount))?;
    Ok(PaidAndDue {
        due_to_date,
        paid: payments_to_date,
        outstanding: due_to_date.checked_sub(payments_to_date)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn fy(start: i16) -> FinancialYear {
        FinancialYear::starting(start).unwrap()
    }

    fn pounds(p: i64) -> Money {
        Money::from_pounds(p).unwrap()
    }

    #[test]
    fn annual_is_one_payment_on_1_april() {
        let s = schedule(pounds(4_536_000), Instalments::Annual, fy(2024));
        assert_eq!(
            s,
            vec![Instalment {
                due: date(2024, 4, 1),
                period: fy(2024).period(1).unwrap(),
                amount: pounds(4_536_000),
            }]
        );
    }

    #[test]
    fn quarterly_is_four_equal_parts_on_the_quarter_days() {
        // £4,536,000 / 4 = £1,134,000 exactly.
        let s = schedule(pounds(4_536_000), Instalments::Quarterly, fy(2024));
        let dues: Vec<Date> = s.iter().map(|i| i.due).collect();
        assert_eq!(
            dues,
            vec![
                date(2024, 4, 1),
                date(2024, 7, 1),
                date(2024, 10, 1),
                date(2025, 1, 1)
            ]
        );
        let periods: Vec<String> = s.iter().map(|i| i.period.to_string()).collect();
        assert_eq!(
            periods,
            ["2024/25-P01", "2024/25-P04", "2024/25-P07", "2024/25-P10"]
        );
        assert!(s.iter().all(|i| i.amount == pounds(1_134_000)));
    }

    #[test]
    fn the_odd_penny_goes_to_the_first_instalment() {
        // 83,400,001p / 4 = 20,850,000 remainder 1: the first part takes the penny.
        let s = schedule(
            Money::from_pence(83_400_001),
            Instalments::Quarterly,
            fy(2025),
        );
        let amounts: Vec<i64> = s.iter().map(|i| i.amount.pence()).collect();
        assert_eq!(amounts, [20_850_001, 20_850_000, 20_850_000, 20_850_000]);
    }

    #[test]
    fn monthly_is_twelve_parts_on_the_first_of_each_month() {
        // £1,000,000 = 100,000,000p / 12 = 8,333,333 remainder 4: April–July take a penny each.
        let s = schedule(pounds(1_000_000), Instalments::Monthly, fy(2024));
        assert_eq!(s.len(), 12);
        assert_eq!(s[0].due, date(2024, 4, 1));
        assert_eq!(s[8].due, date(2024, 12, 1));
        assert_eq!(s[9].due, date(2025, 1, 1));
        assert_eq!(s[11].due, date(2025, 3, 1));
        assert_eq!(s[11].period.to_string(), "2024/25-P12");
        let amounts: Vec<i64> = s.iter().map(|i| i.amount.pence()).collect();
        assert_eq!(&amounts[..4], &[8_333_334; 4]);
        assert_eq!(&amounts[4..], &[8_333_333; 8]);
    }

    #[test]
    fn paid_and_due_on_a_day() {
        let s = schedule(pounds(4_536_000), Instalments::Quarterly, fy(2024));
        // 30 September: Q1 and Q2 instalments are due, £2,268,000; £1,134,000 paid.
        let pos = paid_and_due(&s, pounds(1_134_000), date(2024, 9, 30)).unwrap();
        assert_eq!(pos.due_to_date, pounds(2_268_000));
        assert_eq!(pos.paid, pounds(1_134_000));
        assert_eq!(pos.outstanding, pounds(1_134_000));
        // 1 October: the Q3 instalment is due that very day, so £3,402,000 is due.
        let pos = paid_and_due(&s, pounds(1_134_000), date(2024, 10, 1)).unwrap();
        assert_eq!(pos.due_to_date, pounds(3_402_000));
        assert_eq!(pos.outstanding, pounds(2_268_000));
        // Before the year starts nothing is due; a payment in advance shows as negative.
        let pos = paid_and_due(&s, pounds(1_134_000), date(2024, 3, 31)).unwrap();
        assert_eq!(pos.due_to_date, Money::ZERO);
        assert_eq!(pos.outstanding, pounds(-1_134_000));
    }

    proptest! {
        #[test]
        fn parts_always_sum_to_the_amount(
            pence in any::<i64>(),
            which in 0usize..3,
            start in 1900i16..=9998,
        ) {
            let kind = [Instalments::Annual, Instalments::Quarterly, Instalments::Monthly][which];
            let year = fy(start);
            let s = schedule(Money::from_pence(pence), kind, year);
            prop_assert_eq!(s.len(), [1, 4, 12][which]);
            let sum: i128 = s.iter().map(|i| i128::from(i.amount.pence())).sum();
            prop_assert_eq!(sum, i128::from(pence));
            // Equal to the penny, earliest first, and every one inside the year.
            for pair in s.windows(2) {
                prop_assert!(pair[0].due < pair[1].due);
                prop_assert!((pair[0].amount.pence() - pair[1].amount.pence()).abs() <= 1);
            }
            for i in &s {
                prop_assert!(year.contains(i.due));
                prop_assert_eq!(Period::containing(i.due), i.period);
            }
            // By the last day of the year everything is due.
            let pos = paid_and_due(&s, Money::ZERO, year.last_day()).unwrap();
            prop_assert_eq!(pos.due_to_date, Money::from_pence(pence));
        }
    }
}
