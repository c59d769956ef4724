//! The UK public-sector financial calendar: the year runs 1 April – 31 March and is written
//! `2024/25`; periods P01 (April) – P12 (March), written `2024/25-P06`; quarters Q1 (Apr–Jun)
//! – Q4 (Jan–Mar), written `2024/25-Q2`.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not {expected}")]
pub struct CalendarError {
    pub text: String,
    pub expected: &'static str,
}

/// A financial year, named by the calendar year in which it starts (2024 for 2024/25).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FinancialYear(i16);

impl FinancialYear {
    pub fn starting(start_year: i16) -> Option<FinancialYear> {
        // jiff dates run to 9999; the year after must exist too.
        (1900..=9998)
            .contains(&start_year)
            .then_some(FinancialYear(start_year))
    }

    pub fn start_year(self) -> i16 {
        self.0
    }

    /// The financial year a date falls in.
    pub fn containing(date: Date) -> FinancialYear {
        if date.month() >= 4 {
            FinancialYear(date.year())
        } else {
            FinancialYear(date.year() - 1)
        }
    }

    /// 1 April.
    pub fn first_day(self) -> Date {
        Date::new(self.0, 4, 1).expect("1 April exists")
    }

    /// 31 March of the following calendar year.
    pub fn last_day(self) -> Date {
        Date::new(self.0 + 1, 3, 31).expect("31 March exists")
    }

    pub fn next(self) -> FinancialYear {
        FinancialYear(self.0 + 1)
    }

    pub fn period(self, number: u8) -> Option<Period> {
        (1..=12)
            .contains(&number)
            .then_some(Period { year: self, number })
    }

    pub fn periods(self) -> impl Iterator<Item = Period> {
        (1..=12).map(move |number| Period { year: self, number })
    }

    pub fn quarters(self) -> impl Iterator<Item = Quarter> {
        (1..=4).map(move |number| Quarter { year: self, number })
    }

    pub fn contains(self, date: Date) -> bool {
        FinancialYear::containing(date) == self
    }
}

impl fmt::Display for FinancialYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:02}", self.0, (self.0 + 1).rem_euclid(100))
    }
}

impl FromStr for FinancialYear {
    type Err = CalendarError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || CalendarError {
            text: text.to_string(),
            expected: "a financial year such as 2024/25",
        };
        let (start, end) = text.trim().split_once('/').ok_or_else(err)?;
        if start.len() != 4
            || end.len() != 2
            || !start.bytes().chain(end.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let start: i16 = start.parse().map_err(|_| err())?;
        let end: i16 = end.parse().map_err(|_| err())?;
        if (start + 1).rem_euclid(100) != end {
            return Err(err());
        }
        FinancialYear::starting(start).ok_or_else(err)
    }
}

/// A monthly period of a financial year: P01 is April, P12 is March.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: FinancialYear,
    number: u8,
}

impl Period {
    pub fn year(self) -> FinancialYear {
        self.year
    }

    pub fn number(self) -> u8 {
        self.number
    }

    pub fn containing(date: Date) -> Period {
        let year = FinancialYear::containing(date);
        // April (4) → 1 … December (12) → 9, January (1) → 10 … March (3) → 12.
        let number = ((date.month() as u8 + 8) % 12) + 1;
        Period { year, number }
    }

    /// The calendar year and month this period covers.
    fn year_month(self) -> (i16, i8) {
        let month = ((self.number + 2) % 12 + 1) as i8;
        let year = if month >= 4 {
            self.year.0
        } else {
            self.year.0 + 1
        };
        (year, month)
    }

    pub fn first_day(self) -> Date {
        let (y, m) = self.year_month();
        Date::new(y, m, 1).expect("the first of a month exists")
    }

    pub fn last_day(self) -> Date {
        self.first_day().last_of_month()
    }

    pub fn quarter(self) -> Quarter {
        Quarter {
            year: self.year,
            number: (self.number - 1) / 3 + 1,
        }
    }

    /// The period index across years, so periods can be compared and stepped.
    pub fn ordinal(self) -> i32 {
        i32::from(self.year.0) * 12 + i32::from(self.number) - 1
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-P{:02}", self.year, self.number)
    }
}

impl FromStr for Period {
    type Err = CalendarError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || CalendarError {
            text: text.to_string(),
            expected: "a period such as 2024/25-P06",
        };
        let (year, p) = text.trim().split_once("-P").ok_or_else(err)?;
        let year: FinancialYear = year.parse().map_err(|_| err())?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        year.period(p.parse().map_err(|_| err())?).ok_or_else(err)
    }
}

/// A quarter of a financial year: Q1 is April–June, Q4 is January–March.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: FinancialYear,
    number: u8,
}

impl Quarter {
    pub fn new(year: FinancialYear, number: u8) -> Option<Quarter> {
        (1..=4)
            .contains(&number)
            .then_some(Quarter { year, number })
    }

    pub fn year(self) -> FinancialYear {
        self.year
    }

    pub fn number(self) -> u8 {
        self.number
    }

    pub fn containing(date: Date) -> Quarter {
        Period::containing(date).quarter()
    }

    pub fn periods(self) -> [Period; 3] {
        let first = (self.number - 1) * 3 + 1;
        [0, 1, 2].map(|i| Period {
            year: self.year,
            number: first + i,
        })
    }

    pub fn first_day(self) -> Date {
        self.periods()[0].first_day()
    }

    pub fn last_day(self) -> Date {
        self.periods()[2].last_day()
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-Q{}", self.year, self.number)
    }
}

impl FromStr for Quarter {
    type Err = CalendarError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || CalendarError {
            text: text.to_string(),
            expected: "a quarter such as 2024/25-Q2",
        };
        let (year, q) = text.trim().split_once("-Q").ok_or_else(err)?;
        let year: FinancialYear = year.parse().map_err(|_| err())?;
        if q.len() != 1 {
            return Err(err());
        }
        Quarter::new(year, q.parse().map_err(|_| err())?).ok_or_else(err)
    }
}

macro_rules! text_serde {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
text_serde!(FinancialYear, "financial year");
text_serde!(Period, "period");
text_serde!(Quarter, "quarter");

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn years_run_april_to_march() {
        let fy: FinancialYear = "2024/25".parse().unwrap();
        assert_eq!(fy.first_day(), date(2024, 4, 1));
        assert_eq!(fy.last_day(), date(2025, 3, 31));
        assert_eq!(FinancialYear::containing(date(2025, 3, 31)), fy);
        assert_eq!(
            FinancialYear::containing(date(2025, 4, 1)).to_string(),
            "2025/26"
        );
        assert_eq!(
            "1999/00".parse::<FinancialYear>().unwrap().start_year(),
            1999
        );
        for bad in ["2024/26", "2024-25", "24/25", "2024/2025", "abcd/ef", ""] {
            assert!(bad.parse::<FinancialYear>().is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_and_quarters() {
        let cases = [
            (date(2024, 4, 1), "2024/25-P01", "2024/25-Q1"),
            (date(2024, 9, 30), "2024/25-P06", "2024/25-Q2"),
            (date(2024, 10, 1), "2024/25-P07", "2024/25-Q3"),
            (date(2024, 12, 31), "2024/25-P09", "2024/25-Q3"),
            (date(2025, 1, 1), "2024/25-P10", "2024/25-Q4"),
            (date(2025, 3, 31), "2024/25-P12", "2024/25-Q4"),
        ];
        for (d, p, q) in cases {
            assert_eq!(Period::containing(d).to_string(), p);
            assert_eq!(Quarter::containing(d).to_string(), q);
            assert_eq!(p.parse::<Period>().unwrap(), Period::containing(d));
            assert_eq!(q.parse::<Quarter>().unwrap(), Quarter::containing(d));
        }
        let p11: Period = "2023/24-P11".parse().unwrap();
        assert_eq!(p11.first_day(), date(2024, 2, 1));
        assert_eq!(p11.last_day(), date(2024, 2, 29), "leap year February");
        let q2: Quarter = "2024/25-Q2".parse().unwrap();
        assert_eq!(
            (q2.first_day(), q2.last_day()),
            (date(2024, 7, 1), date(2024, 9, 30))
        );
        for bad in [
            "2024/25-P13",
            "2024/25-P00",
            "2024/25-P6",
            "2024/25-Q5",
            "2024/25-Q0",
            "P06",
        ] {
            assert!(
                bad.parse::<Period>().is_err() && bad.parse::<Quarter>().is_err(),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn every_date_is_inside_its_period_quarter_and_year(days in 0i32..40_000) {
            let d = date(1990, 1, 1).checked_add(jiff::Span::new().days(days)).unwrap();
            let p = Period::containing(d);
            prop_assert!(p.first_day() <= d && d <= p.last_day());
            let q = p.quarter();
            prop_assert!(q.first_day() <= d && d <= q.last_day());
            prop_assert!(q.periods().contains(&p));
            prop_assert!(p.year().first_day() <= d && d <= p.year().last_day());
            prop_assert_eq!(p.to_string().parse::<Period>().unwrap(), p);
        }
    }
}
