//! A deterministic ledger generator: a year of postings as a ledger CSV (the columns
//! `date,fund,service,partner[,locality],subjective,supplier,reference,amount`), with the exact
//! totals it wrote. For demonstrations, tests and benchmarks.
//!
//! Everything is integer arithmetic on a seeded splitmix64 stream, so the same spec gives the
//! same bytes on every machine; amounts are drawn from a log-normal-like table (64 quantiles of
//! a log-normal with σ = 1.3, scaled to the median, with ±10% jitter) and about 4% are credits.

use std::collections::BTreeMap;
use std::io::{self, Write};

use concordat_core::{FinancialYear, Money};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSpec {
    pub year: FinancialYear,
    /// Fund ids, with their weights (relative frequency of postings).
    pub funds: Vec<(String, u32)>,
    /// Service lines, chosen with a mild skew towards the first.
    pub services: Vec<String>,
    /// Partner ids (or names), with their weights.
    pub partners: Vec<(String, u32)>,
    /// Locality ids; when given, the file has a `locality` column.
    pub localities: Vec<String>,
    pub postings: u64,
    pub seed: u64,
    /// References are the prefix then the posting's number, eight digits: `PF24-00000001`.
    pub reference_prefix: String,
    /// The median amount in pence.
    pub median_pence: i64,
}

/// The exact totals of what was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedTotals {
    pub postings: u64,
    pub total: Money,
    pub by_fund: BTreeMap<String, Money>,
    pub by_fund_service: BTreeMap<(String, String), Money>,
    /// Bytes written.
    pub bytes: u64,
}

/// Quantiles (per mille of the median) of a log-normal with σ = 1.3, at (i + ½)/64.
const LOG_NORMAL_PER_MILLE: [i64; 64] = [
    43, 75, 101, 125, 147, 169, 191, 213, 235, 258, 280, 304, 328, 352, 377, 403, 429, 457, 485,
    515, 545, 577, 609, 643, 679, 716, 754, 794, 836, 880, 926, 975, 1026, 1079, 1136, 1196, 1259,
    1326, 1397, 1473, 1554, 1641, 1734, 1835, 1943, 2061, 2188, 2328, 2482, 2652, 2841, 3053, 3292,
    3565, 3881, 4251, 4692, 5231, 5907, 6790, 8015, 9877, 13245, 23169,
];

const SUBJECTIVES: [&str; 12] = [
    "5101", "5102", "5110", "5201", "5210", "5301", "5310", "5401", "5501", "5601", "5701", "5999",
];

const SUPPLIER_FIRST: [&str; 10] = [
    "Ashdown",
    "Birchwood",
    "Cedar",
    "Daresbury",
    "Eccleston",
    "Fairfield",
    "Hale",
    "Mersey",
    "Rainford",
    "Windle",
];
const SUPPLIER_SECOND: [&str; 8] = [
    "Care Ltd",
    "Homecare Ltd",
    "Nursing LLP",
    "Support CIC",
    "Living Ltd",
    "Mobility Ltd",
    "Therapy Ltd",
    "Day Centre Trust",
];

/// splitmix64: small, fast and well mixed; good enough for test data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// Cumulative weights, for picking by a uniform draw.
fn cumulative(weights: impl Iterator<Item = u64>) -> Vec<u64> {
    weights
        .scan(0u64, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

fn pick(cumulative: &[u64], rng: &mut SplitMix64) -> usize {
    let total = *cumulative.last().expect("at least one choice");
    let draw = rng.below(total);
    cumulative.partition_point(|&c| c <= draw)
}

/// Writes a field, quoted when it holds a comma, quote or line break.
fn field(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Writes the ledger CSV for `spec` to `out` and returns its exact totals. Fails if `spec` has
/// no funds, services or partners, or a zero total weight.
pub fn generate<W: Write>(spec: &LedgerSpec, mut out: W) -> io::Result<GeneratedTotals> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    if spec.funds.is_empty() || spec.funds.iter().all(|f| f.1 == 0) {
        return Err(invalid("the spec needs at least one fund with a weight"));
    }
    if spec.partners.is_empty() || spec.partners.iter().all(|p| p.1 == 0) {
        return Err(invalid("the spec needs at least one partner with a weight"));
    }
    if spec.services.is_empty() {
        return Err(invalid("the spec needs at least one service line"));
    }
    let mut rng = SplitMix64(spec.seed);
    let fund_cw = cumulative(spec.funds.iter().map(|f| u64::from(f.1)));
    let partner_cw = cumulative(spec.partners.iter().map(|p| u64::from(p.1)));
    // Service k has weight ∝ 1/(k+1)^½, in integers: 1000/√(k+1).
    let service_cw =
        cumulative((0..spec.services.len()).map(|k| 1_000_000 / (k as u64 + 1).isqrt()));
    let first_day = spec.year.first_day();
    let days = (spec.year.last_day() - first_day).get_days() as u64 + 1;
    let dates: Vec<String> = (0..days)
        .map(|d| {
            first_day
                .checked_add(jiff::Span::new().days(d as i64))
                .expect("a day of the year")
                .to_string()
        })
        .collect();
    let mut totals = GeneratedTotals::default();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    buf.extend_from_slice(b"date,fund,service,partner,");
    if !spec.localities.is_empty() {
        buf.extend_from_slice(b"locality,");
    }
    buf.extend_from_slice(b"subjective,supplier,reference,amount\n");
    let mut by_fund_service: BTreeMap<(usize, usize), i128> = BTreeMap::new();
    let mut grand: i128 = 0;
    let n = spec.postings;
    for i in 0..n {
        let date = &dates[(u128::from(i) * u128::from(days) / u128::from(n)) as usize];
        let fund = pick(&fund_cw, &mut rng);
        let service = pick(&service_cw, &mut rng);
        let partner = pick(&partner_cw, &mut rng);
        let locality =
            (!spec.localities.is_empty()).then(|| rng.below(spec.localities.len() as u64) as usize);
        let subjective = SUBJECTIVES[rng.below(SUBJECTIVES.len() as u64) as usize];
        let supplier_first = rng.below(SUPPLIER_FIRST.len() as u64) as usize;
        let supplier_second = rng.below(SUPPLIER_SECOND.len() as u64) as usize;
        let quantile = LOG_NORMAL_PER_MILLE[rng.below(64) as usize];
        let jitter = 900 + rng.below(201) as i64; // 90.0% to 110.0%
        let mut pence = (i128::from(spec.median_pence) * i128::from(quantile) * i128::from(jitter)
            / 1_000_000)
            .clamp(1, 25_000_000) as i64;
        if rng.below(100) < 4 {
            pence = -pence;
        }
        grand += i128::from(pence);
        *by_fund_service.entry((fund, service)).or_default() += i128::from(pence);

        buf.extend_from_slice(date.as_bytes());
        buf.push(b',');
        field(&mut buf, &spec.funds[fund].0);
        buf.push(b',');
        field(&mut buf, &spec.services[service]);
        buf.push(b',');
        field(&mut buf, &spec.partners[partner].0);
        buf.push(b',');
        if let Some(l) = locality {
            field(&mut buf, &spec.localities[l]);
            buf.push(b',');
        }
        buf.extend_from_slice(subjective.as_bytes());
        buf.push(b',');
        buf.extend_from_slice(SUPPLIER_FIRST[supplier_first].as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(SUPPLIER_SECOND[supplier_second].as_bytes());
        buf.push(b',');
        field(&mut buf, &format!("{}{:08}", spec.reference_prefix, i + 1));
        writeln!(buf, ",{}", Money::from_pence(pence).to_plain())?;
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            totals.bytes += buf.len() as u64;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    totals.bytes += buf.len() as u64;
    out.flush()?;
    let money = |v: i128| {
        i64::try_from(v)
            .map(Money::from_pence)
            .map_err(|_| invalid("the totals are too large to hold"))
    };
    totals.postings = n;
    totals.total = money(grand)?;
    let mut by_fund: BTreeMap<String, i128> = BTreeMap::new();
    for ((fund, service), v) in by_fund_service {
        let fund = spec.funds[fund].0.clone();
        *by_fund.entry(fund.clone()).or_default() += v;
        totals
            .by_fund_service
            .insert((fund, spec.services[service].clone()), money(v)?);
    }
    for (fund, v) in by_fund {
        totals.by_fund.insert(fund, money(v)?);
    }
    Ok(totals)
}

/// The funds, 40 service lines and partners of `../shared/bench/gen_ledger.py`'s files, for
/// tests and benchmarks that want a file of the same shape.
pub fn gen_ledger_spec(postings: u64, seed: u64) -> LedgerSpec {
    LedgerSpec {
        year: FinancialYear::starting(2024).expect("2024/25"),
        funds: vec![
            ("BCF-2024".into(), 50),
            ("LD-POOL".into(), 25),
            ("MH-POOL".into(), 15),
            ("CES-POOL".into(), 10),
        ],
        services: GEN_LEDGER_SERVICES.iter().map(|s| s.to_string()).collect(),
        partners: vec![
            ("Halton BC".into(), 40),
            ("St Helens MBC".into(), 25),
            ("NHS Cheshire and Merseyside ICB".into(), 35),
        ],
        localities: Vec::new(),
        postings,
        seed,
        reference_prefix: "PF24-".into(),
        median_pence: 45_000,
    }
}

/// The 40 service lines of the benchmark generator.
pub const GEN_LEDGER_SERVICES: [&str; 40] = [
    "Home care",
    "Residential placements",
    "Nursing placements",
    "Reablement",
    "Carers support",
    "Equipment",
    "Telecare",
    "Day opportunities",
    "Supported living",
    "Shared lives",
    "Direct payments",
    "Extra care housing",
    "Intermediate care beds",
    "Discharge to assess",
    "Hospital discharge support",
    "Rapid response",
    "Community nursing",
    "Falls prevention",
    "Disabled facilities grants",
    "Housing adaptations",
    "Mental health crisis support",
    "Community mental health",
    "Learning disability respite",
    "Transitions support",
    "Advocacy",
    "Social prescribing",
    "Dementia support",
    "End of life care",
    "Stroke rehabilitation",
    "Occupational therapy",
    "Wheelchair services",
    "Continence services",
    "Assistive technology",
    "Brokerage",
    "Care home quality",
    "Workforce development",
    "Prevention and wellbeing",
    "Safeguarding",
    "Integrated care teams",
    "Voluntary sector grants",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summarize::{Dimension, summarize_bytes};

    fn make(spec: &LedgerSpec) -> (Vec<u8>, GeneratedTotals) {
        let mut out = Vec::new();
        let totals = generate(spec, &mut out).unwrap();
        (out, totals)
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
        let spec = gen_ledger_spec(5_000, 7);
        let (a, _) = make(&spec);
        let (b, _) = make(&spec);
        assert_eq!(a, b);
        let (c, _) = make(&LedgerSpec { seed: 8, ..spec });
        assert_ne!(a, c);
    }

    #[test]
    fn totals_equal_a_re_summarize_of_the_output() {
        let mut spec = gen_ledger_spec(20_000, 42);
        // A service with a comma must be quoted and still add up.
        spec.services[3] = "Carers, \"respite\" support".into();
        let (bytes, totals) = make(&spec);
        assert_eq!(totals.bytes, bytes.len() as u64);
        let by_cell = summarize_bytes(&bytes, &[Dimension::Fund, Dimension::Service]).unwrap();
        assert_eq!(by_cell.rows_read, 20_000);
        assert_eq!(by_cell.total, totals.total);
        let cells: BTreeMap<(String, String), Money> = by_cell
            .rows
            .iter()
            .map(|r| ((r.key[0].clone(), r.key[1].clone()), r.amount))
            .collect();
        assert_eq!(cells, totals.by_fund_service);
        let by_fund = summarize_bytes(&bytes, &[Dimension::Fund]).unwrap();
        let funds: BTreeMap<String, Money> = by_fund
            .rows
            .iter()
            .map(|r| (r.key[0].clone(), r.amount))
            .collect();
        assert_eq!(funds, totals.by_fund);
        // Every period of the year has postings.
        let by_period = summarize_bytes(&bytes, &[Dimension::Period]).unwrap();
        assert_eq!(by_period.rows.len(), 12);
    }

    #[test]
    fn amounts_look_like_a_ledger() {
        let (bytes, totals) = make(&gen_ledger_spec(10_000, 1));
        let text = String::from_utf8(bytes).unwrap();
        let amounts: Vec<i64> = text
            .lines()
            .skip(1)
            .map(|l| Money::parse(l.rsplit(',').next().unwrap()).unwrap().pence())
            .collect();
        let credits = amounts.iter().filter(|a| **a < 0).count();
        assert!(
            (250..=550).contains(&credits),
            "{credits} credits in 10,000"
        );
        let mut magnitudes: Vec<i64> = amounts.iter().map(|a| a.abs()).collect();
        magnitudes.sort();
        let median = magnitudes[magnitudes.len() / 2];
        assert!((35_000..=55_000).contains(&median), "median {median}");
        assert_eq!(totals.postings, 10_000);
        assert!(text.starts_with(
            "date,fund,service,partner,subjective,supplier,reference,amount\n2024-04-01,"
        ));
        assert!(
            text.trim_end()
                .lines()
                .last()
                .unwrap()
                .starts_with("2025-03-31,")
        );
        assert!(text.contains(",PF24-00010000,"));
    }

    #[test]
    fn localities_add_a_column() {
        let mut spec = gen_ledger_spec(100, 3);
        spec.localities = vec!["halton".into(), "st-helens".into()];
        let (bytes, _) = make(&spec);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("date,fund,service,partner,locality,subjective,"));
        assert!(text.contains(",halton,") && text.contains(",st-helens,"));
    }
}
