//! Writes a sample report for a made-up pooled fund as PDF, Excel, CSV and SVG charts, so the
//! output can be looked at without a database.
//!
//! `cargo run -p concordat-pdf --example sample_report -- OUT_DIR` (default `sample-report`).

use std::path::PathBuf;
use std::time::Instant;

use concordat_report::sample::sample_report;
use concordat_report::{Block, render_csv, render_svg, render_xlsx};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "sample-report".into()),
    );
    std::fs::create_dir_all(&out_dir)?;
    let report = sample_report();

    let started = Instant::now();
    let pdf = concordat_pdf::render_pdf(&report)?;
    let pdf_time = started.elapsed();
    std::fs::write(out_dir.join("report.pdf"), &pdf)?;
    std::fs::write(out_dir.join("report.xlsx"), render_xlsx(&report)?)?;
    for (name, bytes) in render_csv(&report)? {
        std::fs::write(out_dir.join(name), bytes)?;
    }
    for section in &report.sections {
        for block in &section.blocks {
            if let Block::Chart(chart) = block {
                std::fs::write(
                    out_dir.join(format!("{}.svg", chart.name)),
                    render_svg(chart),
                )?;
            }
        }
    }
    println!(
        "wrote the sample report to {} (PDF {} bytes in {:.0?})",
        out_dir.display(),
        pdf.len(),
        pdf_time
    );
    Ok(())
}
