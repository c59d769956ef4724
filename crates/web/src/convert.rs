//! A report model (the same one the PDF, Excel and CSV renderers take) as page sections, so
//! a statement on screen says exactly what its download says. Charts become images served
//! by the chart route, with their figures in a table beside them.

use concordat_report::{Block as ReportBlock, Cell as ReportCell, Rag, Report};

use crate::views::{Block, Cell, Section, Table, cell, section};

/// The report's title block as a summary list, then each of its sections.
pub(crate) fn report_sections(report: &Report, chart_src: &dyn Fn(&str) -> String) -> Vec<Section> {
    let mut out = Vec::new();
    out.push(section("About this report", "about").with(Block::Summary(report.meta.clone())));
    for (i, s) in report.sections.iter().enumerate() {
        let mut sec = section(&s.heading, &format!("section-{}", i + 1));
        for block in &s.blocks {
            match block {
                ReportBlock::Paragraph(text) => sec.push(Block::Para(text.clone())),
                ReportBlock::Notes(notes) => {
                    for n in notes {
                        sec.push(Block::Inset(n.clone()));
                    }
                }
                ReportBlock::Table(t) => sec.push(Block::Table(table(t))),
                ReportBlock::Chart(chart) => {
                    sec.push(Block::Image {
                        src: chart_src(&chart.name),
                        alt: format!(
                            "{} (the figures are in the table that follows)",
                            chart.title
                        ),
                    });
                    sec.push(Block::Table(chart_table(chart)));
                }
            }
        }
        out.push(sec);
    }
    out
}

fn report_cell(c: &ReportCell, numeric: bool) -> Cell {
    match c {
        ReportCell::Rag(rag) => cell(rag.to_string()).tag(match rag {
            Rag::Green => "green",
            Rag::Amber => "yellow",
            Rag::Red => "red",
        }),
        other => {
            let mut out = cell(other.to_display());
            out.numeric = numeric;
            out
        }
    }
}

pub(crate) fn table(t: &concordat_report::Table) -> Table {
    let head = t
        .columns
        .iter()
        .map(|c| {
            let mut h = cell(c.heading.clone());
            h.numeric = c.kind.is_numeric();
            h
        })
        .collect();
    let kinds: Vec<bool> = t.columns.iter().map(|c| c.kind.is_numeric()).collect();
    let mut rows: Vec<Vec<Cell>> = t
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&kinds)
                .map(|(c, n)| report_cell(c, *n))
                .collect()
        })
        .collect();
    if let Some(total) = &t.total_row {
        rows.push(
            total
                .iter()
                .zip(&kinds)
                .map(|(c, n)| report_cell(c, *n))
                .collect(),
        );
    }
    Table {
        caption: t.caption.clone(),
        head,
        rows,
        row_ids: Vec::new(),
    }
}

/// A chart's figures, for anyone who would rather read than look (and for screen readers).
pub(crate) fn chart_table(chart: &concordat_report::Chart) -> Table {
    let mut t = table(&chart.to_table());
    t.caption = format!("{}: the figures", chart.title);
    t
}
