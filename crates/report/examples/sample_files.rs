//! Writes the sample report's CSV files, Excel workbook and SVG charts into a folder
//! (default: `sample-report` in the current directory), without building typst.
//!
//! `cargo run -p concordat-report --example sample_files -- OUT_DIR`

use std::path::PathBuf;

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
    for (name, bytes) in render_csv(&report)? {
        std::fs::write(out_dir.join(name), bytes)?;
    }
    std::fs::write(out_dir.join("report.xlsx"), render_xlsx(&report)?)?;
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
    println!("wrote the sample report to {}", out_dir.display());
    Ok(())
}
