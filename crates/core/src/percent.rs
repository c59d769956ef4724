//! Percentages held exactly, in basis points (hundredths of a per cent), so fixed shares can
//! be checked to add to exactly 100%.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(i64);

impl Percent {
    pub const HUNDRED: Percent = Percent(10_000);

    pub const fn from_basis_points(bp: i64) -> Percent {
        Percent(bp)
    }

    pub const fn basis_points(self) -> i64 {
        self.0
    }

    /// `22`, `22.5`, `22.25%`: at most two decimal places.
    pub fn parse(text: &str) -> Result<Percent, String> {
        let bad = || format!("'{text}' is not a percentage: write it like \"22\" or \"22.5%\"");
        let t = text.trim();
        let t = t.strip_suffix('%').unwrap_or(t).trim();
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if whole.is_empty() || whole.len() > 3 || frac.len() > 2 {
            return Err(bad());
        }
        if !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let w: i64 = whole.parse().map_err(|_| bad())?;
        let f: i64 = if frac.is_empty() {
            0
        } else {
            let v: i64 = frac.parse().map_err(|_| bad())?;
            if frac.len() == 1 { v * 10 } else { v }
        };
        let bp = w * 100 + f;
        if bp > 10_000 {
            return Err(format!("'{text}' is more than 100%"));
        }
        Ok(Percent(bp))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, r) = (self.0 / 100, self.0 % 100);
        if r == 0 {
            write!(f, "{w}%")
        } else if r % 10 == 0 {
            write!(f, "{w}.{}%", r / 10)
        } else {
            write!(f, "{w}.{r:02}%")
        }
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage such as 22 or \"22.5%\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Percent, E> {
                Percent::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Percent, E> {
                Percent::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Percent, E> {
                Percent::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Percent, E> {
                // The shortest text that reads back as this float is what the person wrote.
                Percent::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        assert_eq!(Percent::parse("22").unwrap().basis_points(), 2_200);
        assert_eq!(Percent::parse("22.5%").unwrap().basis_points(), 2_250);
        assert_eq!(Percent::parse("0.05").unwrap().basis_points(), 5);
        assert_eq!(Percent::parse("100").unwrap(), Percent::HUNDRED);
        assert_eq!(Percent::from_basis_points(2_250).to_string(), "22.5%");
        assert_eq!(Percent::from_basis_points(5).to_string(), "0.05%");
        for bad in ["", "abc", "100.01", "1.234", "-5", "5%%"] {
            assert!(Percent::parse(bad).is_err(), "{bad}");
        }
    }
}
