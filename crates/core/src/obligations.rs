//! What an agreement promises with a date: the pool manager's quarterly statements and each
//! pooled fund's annual return, the agreement's reviews, and the end of its term. The faces
//! show them as a calendar and export them as iCalendar.

use jiff::civil::Date;
use serde::Serialize;

use crate::agreement::{Agreement, FundKind};
use crate::calendar::{FinancialYear, Quarter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationKind {
    QuarterlyStatement,
    AnnualReturn,
    BudgetTimetable,
    Review,
    ScheduleReview,
    NoticeWindow,
    TermEnd,
    Meeting,
    DisputeStep,
    ComplaintAcknowledgement,
    ComplaintResponse,
    RiskReview,
    NoticeEnds,
}

impl ObligationKind {
    pub fn label(self) -> &'static str {
        match self {
            ObligationKind::QuarterlyStatement => "Quarterly statement",
            ObligationKind::AnnualReturn => "Annual return",
            ObligationKind::BudgetTimetable => "Budget timetable",
            ObligationKind::Review => "Review",
            ObligationKind::ScheduleReview => "Schedule review",
            ObligationKind::NoticeWindow => "Last day to serve notice",
            ObligationKind::TermEnd => "End of term",
            ObligationKind::Meeting => "Meeting",
            ObligationKind::DisputeStep => "Dispute step due",
            ObligationKind::ComplaintAcknowledgement => "Complaint to acknowledge",
            ObligationKind::ComplaintResponse => "Complaint to answer",
            ObligationKind::RiskReview => "Risk review",
            ObligationKind::NoticeEnds => "Notice ends the agreement",
        }
    }
}

/// One dated promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Obligation {
    pub due: Date,
    pub kind: ObligationKind,
    pub title: String,
    /// Where the date comes from, in words.
    pub basis: String,
    /// The fund it is about, if one.
    pub fund: Option<String>,
    /// For something Concordat keeps a record of (a complaint, a dispute step, a risk
    /// review): still waiting on it. `false` for promises whose keeping it does not track.
    pub open: bool,
}

impl Obligation {
    /// Still waited on and past its date.
    pub fn overdue(&self, today: Date) -> bool {
        self.open && self.due < today
    }
}

/// Months after a year's end by which the annual return is due, where the agreement does not
/// say: SI 2000/617's own deadline is not known to Concordat, so this is a default.
pub const ANNUAL_RETURN_MONTHS: i8 = 3;

/// The last day of the month after `date`'s month.
fn end_of_next_month(date: Date) -> Option<Date> {
    date.last_of_month()
        .tomorrow()
        .ok()
        .map(|d| d.last_of_month())
}

/// The agreement's obligations falling in the financial years `from` to `to` (inclusive),
/// while it is in force: from its start to the end of its term, where it has one.
pub fn obligations(a: &Agreement, from: FinancialYear, to: FinancialYear) -> Vec<Obligation> {
    let first = from.first_day();
    let last = to.last_day();
    let starts = a.start_date.map(|d| d.earliest());
    let ends = a.fixed_end();
    let in_term = |d: Date| starts.is_none_or(|s| d >= s) && ends.is_none_or(|e| d <= e);
    let mut out = Vec::new();
    let mut year = from;
    while year <= to {
        for fund in a.funds.iter().filter(|f| f.kind == FundKind::Pooled) {
            for q in year.quarters() {
                if !in_term(q.last_day()) {
                    continue;
                }
                if let Some(due) = end_of_next_month(q.last_day()) {
                    out.push(quarterly(fund.id.clone(), &fund.name, q, due));
                }
            }
            if in_term(year.last_day())
                && let Ok(due) = year
                    .last_day()
                    .checked_add(jiff::Span::new().months(ANNUAL_RETURN_MONTHS))
            {
                out.push(Obligation {
                    due: due.last_of_month(),
                    kind: ObligationKind::AnnualReturn,
                    title: format!("Annual return and memorandum account, {}, {year}", fund.name),
                    basis: format!(
                        "the pool's income and expenditure for {year}, {ANNUAL_RETURN_MONTHS} months after the year end (Concordat's default: the agreement sets no date)"
                    ),
                    fund: Some(fund.id.clone()),
                    open: false,
                });
            }
        }
        year = year.next();
    }
    if let Some(review) = &a.review
        && let Some(mut due) = review.first_due.map(|d| d.earliest())
    {
        let every = review.every_months.filter(|m| *m > 0);
        while due <= last {
            if due >= first && in_term(due) {
                out.push(Obligation {
                    due,
                    kind: ObligationKind::Review,
                    title: format!("Review of the agreement: {}", a.title),
                    basis: match every {
                        Some(m) => format!("reviewed every {m} months"),
                        None => "the review the agreement sets".into(),
                    },
                    fund: None,
                    open: false,
                });
            }
            let Some(m) = every else { break };
            match due.checked_add(jiff::Span::new().months(i64::from(m))) {
                Ok(next) => due = next,
                Err(_) => break,
            }
        }
    }
    if let Some(end) = ends
        && end >= first
        && end <= last
    {
        out.push(Obligation {
            due: end,
            kind: ObligationKind::TermEnd,
            title: format!("End of the agreement's term: {}", a.title),
            basis: "the agreement's end date or term".into(),
            fund: None,
            open: false,
        });
    }
    // Schedules reviewed each year: on the anniversary of the start, where the start is known.
    if let Some(start) = a.start_date.and_then(|d| d.exact()) {
        for sch in a.schedules.iter().filter(|x| x.annual_review) {
            let mut years = 1;
            while let Ok(due) = start.checked_add(jiff::Span::new().years(years)) {
                if due > last {
                    break;
                }
                if due >= first && in_term(due) {
                    out.push(Obligation {
                        due,
                        kind: ObligationKind::ScheduleReview,
                        title: format!("Annual review of Schedule {}: {}", sch.number, sch.title),
                        basis: "the schedule is reviewed each year; Concordat dates it on the anniversary of the start".into(),
                        fund: None,
                        open: false,
                    });
                }
                years += 1;
            }
        }
    }
    // Where notice can only end the agreement at a year end: the last day to serve it for
    // each year end in range.
    if let Some(terms) = a
        .notice
        .as_ref()
        .filter(|t| t.expiring == crate::agreement::NoticeExpiry::EndOfFinancialYear)
    {
        let mut year = from;
        while year <= to.next() {
            let end = year.last_day();
            if in_term(end)
                && let Some(due) = last_day_to_serve(terms, end)
                && due >= first
                && due <= last
                && in_term(due)
            {
                out.push(Obligation {
                    due,
                    kind: ObligationKind::NoticeWindow,
                    title: format!("Last day to serve notice to end the agreement on {end}"),
                    basis: format!(
                        "{} months' written notice, expiring at the end of a financial year",
                        terms.months
                    ),
                    fund: None,
                    open: false,
                });
            }
            year = year.next();
        }
    }
    // The timetable for setting a year's budget runs in the twelve months before it starts.
    // A year's timetable falls before it starts, so the year after `to` can have steps in range.
    let mut year = from;
    while year <= to.next() {
        for step in &a.budget_timetable {
            let calendar_year = if step.month >= 4 {
                year.start_year() - 1
            } else {
                year.start_year()
            };
            let (Ok(m), Ok(d)) = (i8::try_from(step.month), i8::try_from(step.day)) else {
                continue;
            };
            if let Ok(due) = Date::new(calendar_year, m, d)
                && due >= first
                && due <= last
                && in_term(due)
            {
                out.push(Obligation {
                    due,
                    kind: ObligationKind::BudgetTimetable,
                    title: format!("{}, for {year}", step.what),
                    basis: if step.illustrative {
                        "the budget-setting timetable (illustrative)".into()
                    } else {
                        "the agreement's budget-setting timetable".into()
                    },
                    fund: None,
                    open: false,
                });
            }
        }
        year = year.next();
    }
    out.sort_by(|x, y| (x.due, x.kind, &x.fund).cmp(&(y.due, y.kind, &y.fund)));
    out
}

/// The last day notice can be served under `terms` for the agreement to end on `end`.
fn last_day_to_serve(terms: &crate::agreement::NoticeTerms, end: Date) -> Option<Date> {
    let ends = |d: Date| {
        crate::notice::earliest_end_under(terms, d)
            .ok()
            .map(|o| o.earliest_end)
    };
    let mut day = end
        .checked_sub(jiff::Span::new().months(i64::from(terms.months)))
        .ok()?;
    // Month arithmetic clamps at month ends; settle on the exact day by stepping.
    for _ in 0..4 {
        match day.tomorrow() {
            Ok(next) if ends(next) == Some(end) => day = next,
            _ => break,
        }
    }
    for _ in 0..4 {
        if ends(day) == Some(end) {
            return Some(day);
        }
        day = day.yesterday().ok()?;
    }
    None
}

fn quarterly(fund_id: String, fund_name: &str, q: Quarter, due: Date) -> Obligation {
    Obligation {
        due,
        kind: ObligationKind::QuarterlyStatement,
        title: format!("Quarterly statement, {fund_name}, {q}"),
        basis: format!(
            "the pool manager's report to the partners for {q} (P{:02}–P{:02}), by the end of the month after the quarter",
            q.periods()[0].number(),
            q.periods()[2].number()
        ),
        fund: Some(fund_id),
        open: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{NoticeExpiry, NoticeTerms};

    fn terms(months: u32) -> NoticeTerms {
        NoticeTerms {
            months,
            expiring: NoticeExpiry::EndOfFinancialYear,
            or_date_agreed_by_all: false,
            text: None,
            illustrative: false,
        }
    }

    fn date(y: i16, m: i8, d: i8) -> Date {
        Date::new(y, m, d).unwrap()
    }

    #[test]
    fn the_last_day_to_serve_notice_is_the_last_that_still_ends_at_that_year_end() {
        // 30 September + 6 months = 30 March: the year end; 1 October runs to 1 April.
        assert_eq!(
            last_day_to_serve(&terms(6), date(2026, 3, 31)),
            Some(date(2025, 9, 30))
        );
        assert_eq!(
            last_day_to_serve(&terms(1), date(2026, 3, 31)),
            Some(date(2026, 2, 28))
        );
        assert_eq!(
            last_day_to_serve(&terms(12), date(2026, 3, 31)),
            Some(date(2025, 3, 31))
        );
    }
}
