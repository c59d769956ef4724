//! Measures the ledger reader: `cargo run --release -p concordat-io --example ledger_read_bench
//! -- [POSTINGS] [FILE]`. Writes a generated ledger of POSTINGS rows (default 1,000,000) to
//! FILE (default: the temporary directory) unless FILE exists, then reads it through the
//! identity mapping three times and prints each time and the median.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use concordat_io::ledger_mapping::read_mapping;
use concordat_io::ledger_read::{ImportTargets, ReadOptions, file_sha256, read_ledger};
use concordat_ledger::generate::{gen_ledger_spec, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let postings: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("a number"));
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("concordat-bench-ledger-{postings}.csv"))
    });
    if !path.exists() {
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        generate(&gen_ledger_spec(postings, 20240401), file).unwrap();
    }
    let mapping = read_mapping(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/mappings/concordat-ledger.toml"),
    )
    .unwrap();
    let ids = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let targets = ImportTargets {
        funds: ids(&["BCF-2024", "LD-POOL", "MH-POOL", "CES-POOL"]),
        partners: ids(&[
            "Halton BC",
            "St Helens MBC",
            "NHS Cheshire and Merseyside ICB",
        ]),
        localities: BTreeSet::new(),
    };
    let bytes = std::fs::metadata(&path).unwrap().len();
    let started = Instant::now();
    file_sha256(&path).unwrap();
    println!("file_sha256: {:.3} s", started.elapsed().as_secs_f64());
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let mut count = 0u64;
        let summary = read_ledger(&path, &mapping, &targets, ReadOptions::default(), |_| {
            count += 1;
            Ok::<(), String>(())
        })
        .unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{} postings, {:.1} MB, control total {}: {secs:.3} s ({:.2} M rows/s)",
            summary.postings,
            bytes as f64 / 1e6,
            summary.control_total.to_report(),
            count as f64 / secs / 1e6
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    println!("median {:.3} s", times[1]);
}
