//! Imported postings are stored a batch at a time, as one columnar blob per batch (the
//! architecture's "columnar batch": interned codes, `i64` pence, period numbers), not a row
//! per posting. Writing a million postings is then a few hundred inserts of a few hundred
//! kilobytes each, rather than a million rows with seventeen bound values each — which is what
//! lets an import that validates, persists and aggregates beat a raw SQLite `.import`.
//!
//! Monitoring never reads these: it reads `ledger_totals`. Drill-down and the suspense check
//! decode them. Beside each batch is the hash of every reference in it, so checking a new
//! file's references, or finding one posting, reads those and decodes only a batch that may
//! hold it.
//!
//! Layout (little-endian), version 1:
//! `u8 version, u32 rows`, then the columns in order: reference (plain text), date, fund,
//! service line, partner, locality, cost centre, subjective, supplier (each dictionary-coded:
//! `u32 entries, entries as text, rows × u32 index`, `u32::MAX` for none), description (plain
//! text, may be none), then `rows ×` source line (`i64`), year start (`i16`), period (`u8`),
//! amount in pence (`i64`). Text is `u32 length` then UTF-8 bytes; a length of `u32::MAX` is
//! none. Corrections are never batched: they are rows of `ledger_posting`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::PostingRow;

/// FNV-1a: for the dictionaries and totals of one batch, whose keys are short codes the
/// importer has already checked. SipHash (the standard map's) was a tenth of an import's time.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(crate) type FnvBuild = BuildHasherDefault<Fnv>;

/// A reference's hash as stored beside its batch: FNV-1a over its UTF-8 bytes. Written to
/// the database, so it must never change (std's hashers may, between Rust releases).
pub(crate) fn reference_hash(reference: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(reference.as_bytes());
    h.finish()
}

/// The reference hashes of `postings`, in order, as stored.
pub(crate) fn encode_reference_hashes(postings: &[PostingRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(postings.len() * 8);
    for p in postings {
        out.extend_from_slice(&reference_hash(&p.reference).to_le_bytes());
    }
    out
}

/// Stored reference hashes back; a length that is not a whole number of hashes is damage.
pub(crate) fn reference_hashes(bytes: &[u8]) -> Result<impl Iterator<Item = u64> + '_, BadBatch> {
    if !bytes.len().is_multiple_of(8) {
        return Err(BadBatch(format!(
            "its reference hashes are {} bytes, not a multiple of 8",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))))
}

/// The postings of one batch added up by fund, service line, partner, locality and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchTotal<'a> {
    pub(crate) fund: &'a str,
    pub(crate) service_line: &'a str,
    pub(crate) partner: Option<&'a str>,
    pub(crate) locality: Option<&'a str>,
    pub(crate) year_start: i64,
    pub(crate) period: i64,
    /// Exact: a batch of 5,000 `i64` amounts cannot overflow an `i128`.
    pub(crate) amount_pence: i128,
    pub(crate) postings: i64,
}

const VERSION: u8 = 1;
const NONE: u32 = u32::MAX;

/// A batch that cannot be read back: the database was altered or damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadBatch(pub(crate) String);

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_text(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => put_u32(out, NONE),
        Some(t) => {
            put_u32(out, t.len() as u32);
            out.extend_from_slice(t.as_bytes());
        }
    }
}

fn put_plain<'a>(out: &mut Vec<u8>, values: impl Iterator<Item = Option<&'a str>>) {
    for v in values {
        put_text(out, v);
    }
}

/// Writes a dictionary-coded column and returns each row's code.
fn put_dictionary<'a>(
    out: &mut Vec<u8>,
    values: impl Iterator<Item = Option<&'a str>>,
) -> (Vec<&'a str>, Vec<u32>) {
    let mut index: HashMap<&str, u32, FnvBuild> = HashMap::default();
    let mut entries: Vec<&str> = Vec::new();
    let codes: Vec<u32> = values
        .map(|v| match v {
            None => NONE,
            Some(text) => *index.entry(text).or_insert_with(|| {
                entries.push(text);
                (entries.len() - 1) as u32
            }),
        })
        .collect();
    put_u32(out, entries.len() as u32);
    for e in &entries {
        put_text(out, Some(e));
    }
    for c in &codes {
        put_u32(out, *c);
    }
    (entries, codes)
}

/// Encodes `postings` (imported lines, never corrections) as one batch.
#[cfg(test)]
pub(crate) fn encode(postings: &[PostingRow]) -> Vec<u8> {
    encode_with_totals(postings).0
}

/// Encodes `postings` as one batch, and adds them up by the dimensions the totals table keeps,
/// using the dictionary codes the encoding makes anyway.
pub(crate) fn encode_with_totals<'a>(postings: &'a [PostingRow]) -> (Vec<u8>, Vec<BatchTotal<'a>>) {
    let mut out = Vec::with_capacity(postings.len() * 64 + 64);
    out.push(VERSION);
    put_u32(&mut out, postings.len() as u32);
    let ps = || postings.iter();
    put_plain(&mut out, ps().map(|p| Some(p.reference.as_str())));
    put_dictionary(&mut out, ps().map(|p| Some(p.date.as_str())));
    let (funds, fund_codes) = put_dictionary(&mut out, ps().map(|p| Some(p.fund.as_str())));
    let (lines, line_codes) = put_dictionary(&mut out, ps().map(|p| Some(p.service_line.as_str())));
    let (partners, partner_codes) = put_dictionary(&mut out, ps().map(|p| p.partner.as_deref()));
    let (localities, locality_codes) =
        put_dictionary(&mut out, ps().map(|p| p.locality.as_deref()));
    put_dictionary(&mut out, ps().map(|p| p.cost_centre.as_deref()));
    put_dictionary(&mut out, ps().map(|p| p.subjective.as_deref()));
    put_dictionary(&mut out, ps().map(|p| p.supplier.as_deref()));
    put_plain(&mut out, ps().map(|p| p.description.as_deref()));
    for p in ps() {
        out.extend_from_slice(&p.source_line.to_le_bytes());
    }
    for p in ps() {
        out.extend_from_slice(&(p.year_start as i16).to_le_bytes());
    }
    for p in ps() {
        out.push(p.period as u8);
    }
    for p in ps() {
        out.extend_from_slice(&p.amount_pence.to_le_bytes());
    }
    type Key = (u32, u32, u32, u32, i64, i64);
    let mut sums: HashMap<Key, (i128, i64), FnvBuild> = HashMap::default();
    for (i, p) in postings.iter().enumerate() {
        let key = (
            fund_codes[i],
            line_codes[i],
            partner_codes[i],
            locality_codes[i],
            p.year_start,
            p.period,
        );
        let e = sums.entry(key).or_insert((0, 0));
        e.0 += i128::from(p.amount_pence);
        e.1 += 1;
    }
    let name = |dict: &[&'a str], code: u32| (code != NONE).then(|| dict[code as usize]);
    let totals = sums
        .into_iter()
        .map(
            |((f, l, pa, lo, year_start, period), (amount_pence, n))| BatchTotal {
                fund: funds[f as usize],
                service_line: lines[l as usize],
                partner: name(&partners, pa),
                locality: name(&localities, lo),
                year_start,
                period,
                amount_pence,
                postings: n,
            },
        )
        .collect();
    (out, totals)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BadBatch> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| BadBatch(format!("it ends early, at byte {}", self.at)))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, BadBatch> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn text(&mut self) -> Result<Option<&'a str>, BadBatch> {
        let len = self.u32()?;
        if len == NONE {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| BadBatch(format!("text at byte {} is not UTF-8", self.at)))
    }

    fn plain(&mut self, rows: usize) -> Result<Vec<Option<&'a str>>, BadBatch> {
        (0..rows).map(|_| self.text()).collect()
    }

    fn dictionary(&mut self, rows: usize) -> Result<Vec<Option<&'a str>>, BadBatch> {
        let entries = self.u32()? as usize;
        let dict: Vec<&str> = (0..entries)
            .map(|_| {
                self.text()?
                    .ok_or_else(|| BadBatch("a dictionary entry is missing".into()))
            })
            .collect::<Result<_, _>>()?;
        (0..rows)
            .map(|_| {
                let code = self.u32()?;
                if code == NONE {
                    Ok(None)
                } else {
                    dict.get(code as usize)
                        .copied()
                        .map(Some)
                        .ok_or_else(|| BadBatch(format!("code {code} is not in its dictionary")))
                }
            })
            .collect()
    }
}

fn header(bytes: &[u8]) -> Result<(Reader<'_>, usize), BadBatch> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.take(1)?[0];
    if version != VERSION {
        return Err(BadBatch(format!(
            "version {version} is not one this build reads"
        )));
    }
    let rows = r.u32()? as usize;
    Ok((r, rows))
}

/// Every posting of a batch.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<PostingRow>, BadBatch> {
    let (mut r, rows) = header(bytes)?;
    let reference = r.plain(rows)?;
    let date = r.dictionary(rows)?;
    let fund = r.dictionary(rows)?;
    let service_line = r.dictionary(rows)?;
    let partner = r.dictionary(rows)?;
    let locality = r.dictionary(rows)?;
    let cost_centre = r.dictionary(rows)?;
    let subjective = r.dictionary(rows)?;
    let supplier = r.dictionary(rows)?;
    let description = r.plain(rows)?;
    let line = r.take(rows * 8)?;
    let year = r.take(rows * 2)?;
    let period = r.take(rows)?;
    let amount = r.take(rows * 8)?;
    if r.at != bytes.len() {
        return Err(BadBatch(format!(
            "{} bytes are left over after its {rows} postings",
            bytes.len() - r.at
        )));
    }
    let required = |v: Option<&str>, what: &str| {
        v.map(str::to_string)
            .ok_or_else(|| BadBatch(format!("a posting has no {what}")))
    };
    let owned = |v: Option<&str>| v.map(str::to_string);
    (0..rows)
        .map(|i| {
            Ok(PostingRow {
                source_line: i64::from_le_bytes(line[i * 8..i * 8 + 8].try_into().expect("8")),
                date: required(date[i], "date")?,
                year_start: i64::from(i16::from_le_bytes(
                    year[i * 2..i * 2 + 2].try_into().expect("2"),
                )),
                period: i64::from(period[i]),
                fund: required(fund[i], "fund")?,
                service_line: required(service_line[i], "service line")?,
                partner: owned(partner[i]),
                locality: owned(locality[i]),
                cost_centre: owned(cost_centre[i]),
                subjective: owned(subjective[i]),
                supplier: owned(supplier[i]),
                reference: required(reference[i], "reference")?,
                description: owned(description[i]),
                amount_pence: i64::from_le_bytes(amount[i * 8..i * 8 + 8].try_into().expect("8")),
                corrects_reference: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posting(i: i64) -> PostingRow {
        PostingRow {
            source_line: i + 2,
            date: format!("2024-{:02}-15", 4 + i % 9),
            year_start: 2024,
            period: 1 + i % 9,
            fund: if i % 3 == 0 { "bcf" } else { "ibcf" }.into(),
            service_line: format!("SL{}", i % 4),
            partner: (i % 2 == 0).then(|| "council".to_string()),
            locality: (i % 5 == 0).then(|| "north".to_string()),
            cost_centre: None,
            subjective: Some(format!("{}", 5100 + i % 7)),
            supplier: Some("Hale, \"Care\" Ltd £".into()),
            reference: format!("INV-{i:06}"),
            description: (i % 2 == 1).then(|| format!("week {i}")),
            amount_pence: (i * 7_919) % 500_000 - 250_000,
            corrects_reference: None,
        }
    }

    #[test]
    fn a_batch_reads_back_exactly() {
        let postings: Vec<PostingRow> = (0..1_000).map(posting).collect();
        let bytes = encode(&postings);
        assert_eq!(decode(&bytes).unwrap(), postings);
        let hashes: Vec<u64> = reference_hashes(&encode_reference_hashes(&postings))
            .unwrap()
            .collect();
        assert_eq!(hashes.len(), 1_000);
        assert_eq!(hashes[7], reference_hash("INV-000007"));
        // Stored in the database: the value for a known input must never change.
        assert_eq!(reference_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(reference_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert!(reference_hashes(&[0; 7]).is_err());
        assert!(decode(&encode(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_batch_is_an_error_not_a_panic() {
        let bytes = encode(&(0..10).map(posting).collect::<Vec<_>>());
        for cut in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).unwrap_err().0.contains("left over"));
        let mut wrong = bytes;
        wrong[0] = 9;
        assert!(decode(&wrong).unwrap_err().0.contains("version 9"));
    }
}
