//! `concordat summarize`: totals straight from a ledger CSV, with no database.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use concordat_ledger::summarize::{Dimension, Summary, summarize_file};

/// How the totals are printed.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    /// Machine-readable: a header row, then one row per key; amounts as plain pounds (`-1234.50`).
    Csv,
    /// Aligned columns for reading, amounts as `£1,234.50`, with a grand total line.
    Table,
}

pub(crate) fn parse_dimension(text: &str) -> Result<Dimension, String> {
    text.parse()
}

pub(crate) fn run(file: &Path, by: &[Dimension], format: Format) -> Result<ExitCode> {
    let started = Instant::now();
    let name = file.display().to_string();
    let input = File::open(file).with_context(|| format!("cannot open {name}"))?;
    let summary = summarize_file(&input, by).map_err(|e| anyhow!(e.render(&name)))?;
    let mut out = BufWriter::new(crate::output::Stdout::lock());
    match format {
        Format::Csv => write_csv(&mut out, &summary)?,
        Format::Table => write_table(&mut out, &summary)?,
    }
    out.flush()?;
    eprintln!(
        "summarize: {name}: {} rows read, {} totals, grand total {}, {:.3} s",
        summary.rows_read,
        summary.rows.len(),
        summary.total,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub(crate) fn write_csv(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    for d in &s.by {
        write!(out, "{d},")?;
    }
    writeln!(out, "postings,amount")?;
    for r in &s.rows {
        for k in &r.key {
            write!(out, "{},", csv_field(k))?;
        }
        writeln!(out, "{},{}", r.postings, r.amount.to_plain())?;
    }
    Ok(())
}

pub(crate) fn write_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    let header: Vec<String> =
        s.by.iter()
            .map(|d| d.name().to_string())
            .chain(["postings".to_string(), "amount".to_string()])
            .collect();
    let total_postings: u64 = s.rows.iter().map(|r| r.postings).sum();
    let mut lines: Vec<Vec<String>> = s
        .rows
        .iter()
        .map(|r| {
            r.key
                .iter()
                .cloned()
                .chain([r.postings.to_string(), r.amount.to_string()])
                .collect()
        })
        .collect();
    let mut total_line = vec![String::new(); s.by.len()];
    total_line[0] = "Total".to_string();
    total_line.extend([total_postings.to_string(), s.total.to_string()]);
    let n = header.len();
    let width = |i: usize| {
        std::iter::once(&header)
            .chain(&lines)
            .chain(std::iter::once(&total_line))
            .map(|l| l[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..n).map(width).collect();
    let numeric = |i: usize| i >= s.by.len();
    let print = |out: &mut dyn Write, l: &[String]| -> io::Result<()> {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if numeric(i) {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())
    };
    print(out, &header)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    print(out, &rule)?;
    for l in lines.drain(..) {
        print(out, &l)?;
    }
    print(out, &rule)?;
    print(out, &total_line)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use concordat_core::Money;
    use concordat_ledger::summarize::summarize_bytes;

    #[test]
    fn csv_and_table_render() {
        let data = "fund,service,amount\nB,\"Care, home\",-1234.5\nA,Telecare,\"1,000,000.00\"\n";
        let s = summarize_bytes(data.as_bytes(), &[Dimension::Fund, Dimension::Service]).unwrap();
        let mut csv = Vec::new();
        write_csv(&mut csv, &s).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "fund,service,postings,amount\nA,Telecare,1,1000000.00\nB,\"Care, home\",1,-1234.50\n"
        );
        let mut table = Vec::new();
        write_table(&mut table, &s).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.contains("A      Telecare           1  £1,000,000.00"),
            "{table}"
        );
        assert!(
            table.contains("Total") && table.contains(&Money::from_pence(99_876_550).to_string()),
            "{table}"
        );
    }
}
