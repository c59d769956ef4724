//! Exact money: a count of pence in an `i64`. Arithmetic is checked, so an overflow is an
//! error rather than a silent wrap, and shares are allocated by largest remainder so the
//! parts always add up to the whole.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in pence. Negative amounts are allowed (credits, refunds, overspends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{text}' is not an amount of money: {reason}")]
    Parse { text: String, reason: &'static str },
    #[error("the amount is too large to hold (overflow)")]
    Overflow,
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_pence(pence: i64) -> Money {
        Money(pence)
    }

    /// Whole pounds; `None` if the pence would not fit.
    pub fn from_pounds(pounds: i64) -> Option<Money> {
        pounds.checked_mul(100).map(Money)
    }

    pub const fn pence(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_sub(other.0)
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.0.checked_neg().map(Money).ok_or(MoneyError::Overflow)
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        self.0
            .checked_mul(factor)
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    /// Sum of many amounts; an overflow anywhere is an error.
    pub fn checked_sum<I: IntoIterator<Item = Money>>(items: I) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::ZERO, |acc, m| acc.checked_add(m))
    }

    /// Parses the forms finance officers write: `£1,234.56`, `1234.5`, `-12.00`, `(12.00)`,
    /// `1,234`, `-£1,234.56`. Anything else is rejected with the text echoed back.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let err = |reason| MoneyError::Parse {
            text: text.to_string(),
            reason,
        };
        let mut s = text.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        let mut negative = false;
        if let Some(inner) = s.strip_prefix('(') {
            s = inner
                .strip_suffix(')')
                .ok_or_else(|| err("an opening bracket has no closing bracket"))?;
            negative = true;
        }
        if let Some(rest) = s.strip_prefix('-') {
            if negative {
                return Err(err("it is both bracketed and signed"));
            }
            negative = true;
            s = rest;
        }
        if let Some(rest) = s.strip_prefix('£') {
            s = rest;
        }
        if !negative && let Some(rest) = s.strip_prefix('-') {
            negative = true;
            s = rest;
        }
        let (whole, fraction) = match s.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (s, None),
        };
        if whole.is_empty() {
            return Err(err("there are no digits before the decimal point"));
        }
        // Thousands separators are allowed only in their proper places: 1,234,567.
        let groups: Vec<&str> = whole.split(',').collect();
        if groups.len() > 1 {
            if groups[0].is_empty() || groups[0].len() > 3 {
                return Err(err("the thousands separators are misplaced"));
            }
            if groups[1..].iter().any(|g| g.len() != 3) {
                return Err(err("the thousands separators are misplaced"));
            }
        }
        // i128 so that the most negative amount, whose magnitude exceeds i64::MAX, still parses.
        let mut pounds: i128 = 0;
        for c in groups.concat().chars() {
            let d = c
                .to_digit(10)
                .ok_or_else(|| err("it contains a character that is not a digit"))?;
            pounds = pounds * 10 + i128::from(d);
            if pounds > i128::from(i64::MAX) {
                return Err(err("it is too large"));
            }
        }
        let pence_part: i128 = match fraction {
            None => 0,
            Some(f) => {
                if f.is_empty() || f.len() > 2 {
                    return Err(err(
                        "it must have one or two digits after the decimal point",
                    ));
                }
                let mut v: i128 = 0;
                for c in f.chars() {
                    let d = c
                        .to_digit(10)
                        .ok_or_else(|| err("it contains a character that is not a digit"))?;
                    v = v * 10 + i128::from(d);
                }
                if f.len() == 1 { v * 10 } else { v }
            }
        };
        let magnitude = pounds * 100 + pence_part;
        let signed = if negative { -magnitude } else { magnitude };
        i64::try_from(signed)
            .map(Money)
            .map_err(|_| err("it is too large"))
    }

    /// Plain decimal pounds for machine formats (CSV, JSON): `-1234.50`.
    pub fn to_plain(self) -> String {
        let abs = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// Finance-report style: negatives in brackets, `(1,234.56)`, no currency sign.
    pub fn to_report(self) -> String {
        let body = grouped(self.0.unsigned_abs());
        if self.0 < 0 {
            format!("({body})")
        } else {
            body
        }
    }
}

fn grouped(abs_pence: u64) -> String {
    let pounds = (abs_pence / 100).to_string();
    let mut out = String::with_capacity(pounds.len() + pounds.len() / 3 + 3);
    for (i, c) in pounds.chars().enumerate() {
        if i > 0 && (pounds.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}.{:02}", abs_pence % 100)
}

/// On screen: `£1,234,567.89`, `-£1,234.56`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}£{}", grouped(self.0.unsigned_abs()))
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

/// In files money is written as a string (`"£12,500,000"`) so no float ever touches it;
/// a TOML/JSON integer is taken as whole pounds.
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount of money as a string such as \"£1,234.56\", or whole pounds as an integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Money, E> {
                Money::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Money, E> {
                Money::from_pounds(v).ok_or_else(|| E::custom(MoneyError::Overflow))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Money, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(Money::from_pounds)
                    .ok_or_else(|| E::custom(MoneyError::Overflow))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Money, E> {
                Err(E::custom(format!(
                    "{v} is a floating-point number; write money as a string, e.g. \"{v}\" in quotes, so it is exact"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_plain())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("there is nothing to share the amount across")]
    NoWeights,
    #[error("a weight is negative")]
    NegativeWeight,
    #[error("the weights add up to zero")]
    ZeroTotal,
    #[error("the weights are too large to add up")]
    Overflow,
}

/// Shares `total` across `weights` (contributions in pence, percentages in basis points, …)
/// by the largest-remainder method: each part is rounded toward zero, then the pennies left
/// over go one each to the parts with the largest remainders (ties to the earlier part).
/// The parts always add up to `total` exactly.
pub fn allocate(total: Money, weights: &[i64]) -> Result<Vec<Money>, AllocationError> {
    if weights.is_empty() {
        return Err(AllocationError::NoWeights);
    }
    if weights.iter().any(|w| *w < 0) {
        return Err(AllocationError::NegativeWeight);
    }
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum == 0 {
        return Err(AllocationError::ZeroTotal);
    }
    // i128 keeps total × weight exact for any i64 inputs.
    let t = i128::from(total.pence());
    let magnitude = t.abs();
    let mut parts: Vec<i128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let product = magnitude * i128::from(*w);
        parts.push(product / sum);
        remainders.push((product % sum, i));
    }
    let allocated: i128 = parts.iter().sum();
    let mut left = magnitude - allocated;
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    let sign = if t < 0 { -1 } else { 1 };
    // Each part is at most |total|, so it fits back in i64.
    Ok(parts
        .into_iter()
        .map(|p| Money::from_pence((p * sign) as i64))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_forms_finance_officers_write() {
        let cases = [
            ("£1,234.56", 123_456),
            ("1234.5", 123_450),
            ("-12.00", -1_200),
            ("(12.00)", -1_200),
            ("1,234", 123_400),
            ("-£1,234.56", -123_456),
            ("£-5", -500),
            ("0", 0),
            ("£12,500,000", 1_250_000_000),
            (" 7.05 ", 705),
        ];
        for (text, pence) in cases {
            assert_eq!(Money::parse(text), Ok(Money::from_pence(pence)), "{text}");
        }
    }

    #[test]
    fn rejects_anything_else_and_echoes_it() {
        for text in [
            "",
            "abc",
            "12.345",
            "1,23",
            "12,34.00",
            ",123",
            "£",
            "1.",
            ".5",
            "(12",
            "-(12)",
            "1 234",
            "12e3",
            "$12",
            "--1",
            "(-12)",
            "99999999999999999999",
        ] {
            match Money::parse(text) {
                Err(MoneyError::Parse { text: echoed, .. }) => assert_eq!(echoed, text),
                other => panic!("{text:?} should be rejected, got {other:?}"),
            }
        }
    }

    #[test]
    fn displays_for_people_and_machines() {
        assert_eq!(Money::from_pence(123_456_789).to_string(), "£1,234,567.89");
        assert_eq!(Money::from_pence(-123_456).to_string(), "-£1,234.56");
        assert_eq!(Money::from_pence(5).to_string(), "£0.05");
        assert_eq!(Money::from_pence(-123_450).to_plain(), "-1234.50");
        assert_eq!(Money::from_pence(100_000).to_plain(), "1000.00");
        assert_eq!(Money::from_pence(-123_456).to_report(), "(1,234.56)");
        assert_eq!(
            Money::from_pence(i64::MIN).to_plain(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let max = Money::from_pence(i64::MAX);
        assert_eq!(
            max.checked_add(Money::from_pence(1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::from_pence(i64::MIN).checked_sub(Money::from_pence(1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::from_pence(i64::MIN).checked_neg(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn allocation_by_largest_remainder() {
        // £100 three ways: 33.34, 33.33, 33.33.
        let parts = allocate(Money::from_pence(10_000), &[1, 1, 1]).unwrap();
        assert_eq!(
            parts,
            vec![
                Money::from_pence(3_334),
                Money::from_pence(3_333),
                Money::from_pence(3_333)
            ]
        );
        // Westminster's 22% of £15m.
        let parts = allocate(Money::from_pence(1_500_000_000), &[2_200, 7_800]).unwrap();
        assert_eq!(parts[0], Money::from_pence(330_000_000));
        // Negative totals share the same way with the sign kept.
        let parts = allocate(Money::from_pence(-10_000), &[1, 1, 1]).unwrap();
        assert_eq!(
            parts,
            vec![
                Money::from_pence(-3_334),
                Money::from_pence(-3_333),
                Money::from_pence(-3_333)
            ]
        );
        assert_eq!(allocate(Money::ZERO, &[]), Err(AllocationError::NoWeights));
        assert_eq!(
            allocate(Money::ZERO, &[0, 0]),
            Err(AllocationError::ZeroTotal)
        );
        assert_eq!(
            allocate(Money::ZERO, &[1, -1]),
            Err(AllocationError::NegativeWeight)
        );
    }

    proptest! {
        #[test]
        fn allocation_parts_always_sum_to_the_whole(
            total in any::<i64>(),
            weights in proptest::collection::vec(0i64..=i64::MAX, 1..12),
        ) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let parts = allocate(Money::from_pence(total), &weights).unwrap();
            let sum: i128 = parts.iter().map(|p| i128::from(p.pence())).sum();
            prop_assert_eq!(sum, i128::from(total));
            prop_assert_eq!(parts.len(), weights.len());
            // A zero weight never receives anything, and no part exceeds the whole.
            for (p, w) in parts.iter().zip(&weights) {
                if *w == 0 { prop_assert_eq!(p.pence(), 0); }
                prop_assert!(i128::from(p.pence()).abs() <= i128::from(total).abs());
            }
        }

        #[test]
        fn each_part_is_within_a_penny_of_its_exact_share(
            total in -1_000_000_000_000i64..1_000_000_000_000,
            weights in proptest::collection::vec(0i64..1_000_000_000, 1..8),
        ) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let parts = allocate(Money::from_pence(total), &weights).unwrap();
            let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            for (p, w) in parts.iter().zip(&weights) {
                let exact_times_sum = i128::from(total) * i128::from(*w);
                let diff = (i128::from(p.pence()) * sum - exact_times_sum).abs();
                prop_assert!(diff < sum, "part {} strays more than a penny", p.pence());
            }
        }

        #[test]
        fn arithmetic_never_wraps(a in any::<i64>(), b in any::<i64>()) {
            let (x, y) = (Money::from_pence(a), Money::from_pence(b));
            match x.checked_add(y) {
                Ok(s) => prop_assert_eq!(i128::from(s.pence()), i128::from(a) + i128::from(b)),
                Err(_) => prop_assert!(i128::from(a) + i128::from(b) > i128::from(i64::MAX)
                    || i128::from(a) + i128::from(b) < i128::from(i64::MIN)),
            }
            match x.checked_sub(y) {
                Ok(s) => prop_assert_eq!(i128::from(s.pence()), i128::from(a) - i128::from(b)),
                Err(_) => prop_assert!(i128::from(a) - i128::from(b) > i128::from(i64::MAX)
                    || i128::from(a) - i128::from(b) < i128::from(i64::MIN)),
            }
        }

        #[test]
        fn plain_and_display_forms_parse_back(p in any::<i64>()) {
            let m = Money::from_pence(p);
            prop_assert_eq!(Money::parse(&m.to_plain()), Ok(m));
            prop_assert_eq!(Money::parse(&m.to_string()), Ok(m));
            prop_assert_eq!(Money::parse(&m.to_report()), Ok(m));
        }
    }
}
