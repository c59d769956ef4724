//! Notice: the earliest date an agreement can end when a partner serves notice on a given day.
//!
//! A notice period of N months runs to the corresponding date N months on (the corresponding
//! date rule of English law: 30 September + 6 months = 30 March; where the later month is
//! shorter, its last day: 31 August + 6 months = 28 or 29 February). Where notice must expire
//! at the end of a financial year, the agreement ends on the first 31 March on or after that
//! date. A fixed end date that comes first ends the agreement anyway.

use jiff::Span;
use jiff::civil::Date;

use crate::agreement::{Agreement, NoticeExpiry, NoticeTerms};
use crate::calendar::FinancialYear;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeOutcome {
    /// The earliest day on which the agreement can end (its last day in force).
    pub earliest_end: Date,
    /// The reasoning, one step a line, for the person who asked.
    pub reasoning: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("the agreement has no notice terms{}: add [notice] with months and expiring", .fixed_end.map(|d| format!(" (its term ends on {d})")).unwrap_or_default())]
    NoTerms { fixed_end: Option<Date> },
    #[error("notice served on {served} is before the agreement starts ({start})")]
    BeforeStart { served: Date, start: Date },
    #[error("notice served on {served} is after the agreement has already ended ({end})")]
    AfterEnd { served: Date, end: Date },
    #[error("the date is out of range")]
    OutOfRange,
}

/// The earliest end under the notice terms alone.
pub fn earliest_end_under(terms: &NoticeTerms, served: Date) -> Result<NoticeOutcome, NoticeError> {
    let mut reasoning = Vec::new();
    let runs_to = served
        .checked_add(Span::new().months(i64::from(terms.months)))
        .map_err(|_| NoticeError::OutOfRange)?;
    let months = if terms.months == 1 {
        "1 month".to_string()
    } else {
        format!("{} months", terms.months)
    };
    reasoning.push(format!(
        "Notice served on {served}; {months}' notice runs to {runs_to}."
    ));
    let earliest_end = match terms.expiring {
        NoticeExpiry::AnyDay => runs_to,
        NoticeExpiry::EndOfFinancialYear => {
            let year = FinancialYear::containing(runs_to);
            let end = year.last_day();
            if end == runs_to {
                reasoning.push(format!("Notice must expire at the end of a financial year: {runs_to} is the last day of {year}."));
            } else {
                reasoning.push(format!("Notice must expire at the end of a financial year: the first year end on or after {runs_to} is {end}, the last day of {year}."));
            }
            end
        }
    };
    if terms.or_date_agreed_by_all {
        reasoning.push("The partners may together agree another date.".to_string());
    }
    Ok(NoticeOutcome {
        earliest_end,
        reasoning,
    })
}

/// The earliest end of this agreement if notice is served on `served`, taking a fixed end
/// date into account.
pub fn earliest_end(agreement: &Agreement, served: Date) -> Result<NoticeOutcome, NoticeError> {
    let terms = agreement.notice.as_ref().ok_or(NoticeError::NoTerms {
        fixed_end: agreement.fixed_end(),
    })?;
    if let Some(start) = agreement.start_date.and_then(|d| d.exact())
        && served < start
    {
        return Err(NoticeError::BeforeStart { served, start });
    }
    let fixed_end = agreement.fixed_end();
    if let Some(end) = fixed_end
        && served > end
    {
        return Err(NoticeError::AfterEnd { served, end });
    }
    let mut outcome = earliest_end_under(terms, served)?;
    if let Some(end) = fixed_end
        && end <= outcome.earliest_end
    {
        outcome.reasoning.push(format!(
            "The agreement's term ends on {end}, before notice could take effect on {}: it ends on {end} anyway.",
            outcome.earliest_end
        ));
        outcome.earliest_end = end;
    }
    Ok(outcome)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jiff::civil::date;

    fn terms(months: u32, expiring: NoticeExpiry) -> NoticeTerms {
        NoticeTerms {
            months,
            expiring,
            or_date_agreed_by_all: false,
            text: None,
            illustrative: false,
        }
    }

    #[test]
    fn notice_table() {
        use NoticeExpiry::*;
        let cases = [
            // Halton & St Helens: six months expiring at the end of a financial year.
            (6, EndOfFinancialYear, date(2024, 9, 30), date(2025, 3, 31)),
            (6, EndOfFinancialYear, date(2024, 10, 1), date(2026, 3, 31)),
            (6, EndOfFinancialYear, date(2024, 9, 29), date(2025, 3, 31)),
            (6, EndOfFinancialYear, date(2025, 3, 31), date(2026, 3, 31)),
            (6, EndOfFinancialYear, date(2024, 4, 1), date(2025, 3, 31)),
            // Six months from 31 August runs to the end of February, leap year or not.
            (6, AnyDay, date(2023, 8, 31), date(2024, 2, 29)),
            (6, AnyDay, date(2024, 8, 31), date(2025, 2, 28)),
            // The BCF template: twelve months' notice, any day.
            (12, AnyDay, date(2024, 2, 29), date(2025, 2, 28)),
            (12, AnyDay, date(2024, 6, 15), date(2025, 6, 15)),
            (12, EndOfFinancialYear, date(2024, 3, 31), date(2025, 3, 31)),
            (12, EndOfFinancialYear, date(2024, 4, 1), date(2026, 3, 31)),
        ];
        for (months, expiring, served, expected) in cases {
            let out = earliest_end_under(&terms(months, expiring), served).unwrap();
            assert_eq!(
                out.earliest_end, expected,
                "{months} months {expiring:?} served {served}"
            );
        }
    }

    fn agreement(start: &str, end: Option<&str>, term_years: Option<u32>) -> Agreement {
        let mut a: Agreement = serde_json_like();
        a.start_date = Some(crate::agreement::PartialDate::parse(start).unwrap());
        a.end_date = end.map(|e| crate::agreement::PartialDate::parse(e).unwrap());
        a.term_years = term_years;
        a.notice = Some(terms(6, NoticeExpiry::EndOfFinancialYear));
        a
    }

    /// An agreement with nothing in it, for tests to fill in.
    pub(crate) fn serde_json_like() -> Agreement {
        Agreement {
            format: 1,
            id: "t".into(),
            title: "t".into(),
            short_title: None,
            legal_basis: crate::agreement::OneOrMany(vec![]),
            status: crate::agreement::Status::Active,
            draft_number: None,
            document_date: None,
            agreement_date: None,
            start_date: None,
            term_years: None,
            end_date: None,
            flexibilities: vec![],
            predecessor: None,
            summary: None,
            illustrative_note: None,
            partners: vec![],
            terms: Default::default(),
            care_groups: vec![],
            localities: vec![],
            commissioning_areas: vec![],
            delegated_functions: vec![],
            funds: vec![],
            other_budgets: vec![],
            transfers: vec![],
            posts: vec![],
            joint_units: vec![],
            bodies: vec![],
            decision_levels: vec![],
            parts: vec![],
            schedules: vec![],
            annual_agreement_elements: vec![],
            budget_timetable: vec![],
            notice: None,
            review: None,
            disputes: None,
            complaints: None,
            liability: None,
            information_sharing: None,
            exit: None,
            approvals: vec![],
            signatures: vec![],
        }
    }

    #[test]
    fn a_fixed_end_date_that_comes_first_wins() {
        // Trafford: to 31 March 2016. Notice served 1 October 2015 would run to 31 March 2017.
        let a = agreement("2013-11-01", Some("2016-03-31"), None);
        let out = earliest_end(&a, date(2015, 10, 1)).unwrap();
        assert_eq!(out.earliest_end, date(2016, 3, 31));
        assert!(
            out.reasoning
                .last()
                .unwrap()
                .contains("ends on 2016-03-31 anyway")
        );
        // Served early enough, notice still ends it sooner than the fixed date.
        let out = earliest_end(&a, date(2014, 9, 30)).unwrap();
        assert_eq!(out.earliest_end, date(2015, 3, 31));
    }

    #[test]
    fn a_term_in_years_ends_the_day_before_the_anniversary() {
        let a = agreement("2008-04-01", None, Some(3));
        assert_eq!(a.fixed_end(), Some(date(2011, 3, 31)));
        let out = earliest_end(&a, date(2010, 12, 1)).unwrap();
        assert_eq!(out.earliest_end, date(2011, 3, 31));
    }

    #[test]
    fn notice_outside_the_term_is_refused() {
        let a = agreement("2013-11-01", Some("2016-03-31"), None);
        assert!(matches!(
            earliest_end(&a, date(2013, 1, 1)),
            Err(NoticeError::BeforeStart { .. })
        ));
        assert!(matches!(
            earliest_end(&a, date(2016, 4, 1)),
            Err(NoticeError::AfterEnd { .. })
        ));
    }
}
