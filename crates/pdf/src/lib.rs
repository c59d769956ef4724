//! A report as PDF: the [`Report`] becomes typst markup, which typst lays out with its own
//! embedded fonts (no system fonts, no network) into an A4, tagged PDF.
//!
//! User text never becomes markup: every string is written as a typst string literal
//! (`#"..."`), inside which only `\` and `"` are special, so a partner called
//! `Smith & Sons #1 [draft] $x$ *bold*` prints exactly as written.

use std::fmt::Write as _;

use concordat_report::svg::describe;
use concordat_report::{
    Block, Cell, Chart, Column, ColumnKind, Rag, Report, ReportError, Table, render_svg,
};
use typst_as_lib::TypstEngine;
use typst_as_lib::typst_kit_options::TypstKitFontOptions;
use typst_layout::PagedDocument;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the report cannot be rendered: {0}")]
    Report(#[from] ReportError),
    #[error("typst could not lay out the report: {0}")]
    Layout(String),
    #[error("typst could not write the PDF: {0}")]
    Export(String),
}

/// The report as PDF bytes.
pub fn render_pdf(report: &Report) -> Result<Vec<u8>, PdfError> {
    report.check()?;
    let markup = to_typst(report);
    let engine = TypstEngine::builder()
        .main_file(markup)
        .search_fonts_with(
            TypstKitFontOptions::default()
                .include_system_fonts(false)
                .include_embedded_fonts(true),
        )
        .build();
    let document: PagedDocument = engine
        .compile()
        .output
        .map_err(|e| PdfError::Layout(e.to_string()))?;
    // PDF/UA-1: the accessibility standard public bodies are asked to meet; typst refuses to
    // write the file if the document breaks it (e.g. an image without alternative text).
    let standards = typst_pdf::PdfStandards::new(&[typst_pdf::PdfStandard::Ua_1])
        .map_err(|e| PdfError::Export(e.message().to_string()))?;
    let options = typst_pdf::PdfOptions {
        tagged: true,
        standards,
        ..Default::default()
    };
    typst_pdf::pdf(&document, &options).map_err(|errors| {
        PdfError::Export(
            errors
                .iter()
                .map(|e| e.message.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

/// A typst string literal that shows `text` exactly: only `\`, `"` and control characters
/// need escaping inside one.
pub fn typst_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Content holding `text` literally, for use where markup is expected: `[#"text"]`.
fn content(text: &str) -> String {
    format!("[#{}]", typst_string(text))
}

const PREAMBLE: &str = r##"
#set text(font: "Libertinus Serif", size: 10pt, lang: "en", region: "gb")
#set par(justify: false, leading: 0.6em)
#let accent = rgb("#1d4f76")
#set heading(numbering: none)
#show heading.where(level: 1): it => block(above: 1.6em, below: 0.8em, sticky: true)[
  #set text(size: 14pt, weight: "bold", fill: accent)
  #it.body
  #v(-0.5em)
  #line(length: 100%, stroke: 0.6pt + accent)
]
"##;

/// The whole report as typst markup.
pub fn to_typst(report: &Report) -> String {
    let mut out = String::new();
    let partnership = report.meta_value("partnership").unwrap_or("");
    let _ = writeln!(
        out,
        "#set document(title: {}, author: {})",
        typst_string(&report.title),
        typst_string(partnership)
    );
    out.push_str(PREAMBLE);
    let _ = writeln!(
        out,
        r#"#set page(paper: "a4", margin: (x: 2cm, top: 2.6cm, bottom: 2.2cm),
  header: [
    #set text(size: 8pt, fill: luma(80))
    #grid(columns: (1fr, auto), column-gutter: 1em, {}, align(right, {}))
    #v(-0.6em)
    #line(length: 100%, stroke: 0.4pt + luma(150))
  ],
  footer: context [
    #set text(size: 8pt, fill: luma(80))
    #align(right)[Page #counter(page).display() of #counter(page).final().first()]
  ],
)"#,
        content(&report.title),
        content(partnership)
    );

    // Title block.
    let _ = writeln!(
        out,
        "#block(width: 100%, inset: (bottom: 0.8em))[#text(size: 20pt, weight: \"bold\", fill: accent)[#{}]]",
        typst_string(&report.title)
    );
    if let Some(subtitle) = &report.subtitle {
        let _ = writeln!(
            out,
            "#block(below: 1.2em)[#text(size: 12pt)[#{}]]",
            typst_string(subtitle)
        );
    }
    if !report.meta.is_empty() {
        out.push_str(
            "#block(width: 100%, fill: luma(244), inset: 10pt, radius: 2pt)[#grid(columns: (auto, 1fr), column-gutter: 1.5em, row-gutter: 0.55em,\n",
        );
        for (label, value) in &report.meta {
            let _ = writeln!(
                out,
                "  [#strong({})], {},",
                typst_string(label),
                content(value)
            );
        }
        out.push_str(")]\n");
    }

    for section in &report.sections {
        let _ = writeln!(out, "\n#heading(level: 1, {})", content(&section.heading));
        for block in &section.blocks {
            match block {
                Block::Paragraph(text) => {
                    let _ = writeln!(out, "#par({})\n", content(text));
                }
                Block::Notes(notes) => {
                    out.push_str("#block(above: 1em)[#set text(size: 9pt)\n#strong[Notes]\n");
                    out.push_str("#enum(");
                    for note in notes {
                        let _ = write!(out, "{}, ", content(note));
                    }
                    out.push_str(")]\n");
                }
                Block::Table(table) => write_table(&mut out, table),
                Block::Chart(chart) => write_chart(&mut out, chart),
            }
        }
    }
    out
}

/// A text column takes the space left over, but only in a narrow table: in a wide one the
/// figures leave no room over, and a `1fr` column would shrink to nothing and overprint its
/// neighbour, so every column is `auto` and typst wraps the widest to fit the page.
fn column_width(column: &Column, wide: bool) -> &'static str {
    if column.kind == ColumnKind::Text && !wide {
        "1fr"
    } else {
        "auto"
    }
}

/// Tables with more columns than this are set smaller and sized by their content.
const WIDE_TABLE_COLUMNS: usize = 6;

fn rag_fill(rag: Rag) -> &'static str {
    match rag {
        Rag::Red => "rgb(\"#ffc7ce\")",
        Rag::Amber => "rgb(\"#ffeb9c\")",
        Rag::Green => "rgb(\"#c6efce\")",
    }
}

fn cell_markup(cell: &Cell, bold: bool) -> String {
    let text = typst_string(&cell.to_display());
    let body = if bold {
        format!("[#strong({text})]")
    } else {
        format!("[#{text}]")
    };
    match cell {
        Cell::Rag(rag) => format!("table.cell(fill: {}){body}", rag_fill(*rag)),
        _ => body,
    }
}

fn write_table(out: &mut String, table: &Table) {
    let wide = table.columns.len() > WIDE_TABLE_COLUMNS;
    let widths: Vec<&str> = table
        .columns
        .iter()
        .map(|c| column_width(c, wide))
        .collect();
    let aligns: Vec<&str> = table
        .columns
        .iter()
        .map(|c| if c.kind.is_numeric() { "right" } else { "left" })
        .collect();
    let _ = writeln!(
        out,
        "#block(above: 1.2em, below: 0.5em, sticky: true)[#text(weight: \"bold\")[#{}]]",
        typst_string(&table.caption)
    );
    let _ = writeln!(
        out,
        r#"#block(width: 100%)[
#set text(size: {}, number-width: "tabular")
#table(
  columns: ({}),
  align: ({}),
  stroke: none,
  inset: (x: 5pt, y: 4pt),
  fill: (_, y) => if y > 0 and calc.even(y) {{ luma(246) }},"#,
        if wide { "7.5pt" } else { "8.5pt" },
        widths.join(", ") + if widths.len() == 1 { "," } else { "" },
        aligns.join(", ") + if aligns.len() == 1 { "," } else { "" }
    );
    out.push_str("  table.header(repeat: true,\n");
    for column in &table.columns {
        let _ = writeln!(
            out,
            "    table.cell(fill: rgb(\"#dfe6ee\"))[#strong({})],",
            typst_string(&column.heading)
        );
    }
    out.push_str("  ),\n  table.hline(stroke: 0.6pt),\n");
    for row in &table.rows {
        out.push_str("  ");
        for cell in row {
            out.push_str(&cell_markup(cell, false));
            out.push_str(", ");
        }
        out.push('\n');
    }
    if let Some(total) = &table.total_row {
        out.push_str("  table.hline(stroke: 0.6pt),\n  ");
        for cell in total {
            out.push_str(&cell_markup(cell, true));
            out.push_str(", ");
        }
        out.push_str("\n  table.hline(stroke: 1.2pt),\n");
    }
    out.push_str(")]\n");
}

fn write_chart(out: &mut String, chart: &Chart) {
    let svg = render_svg(chart);
    let _ = writeln!(
        out,
        "#block(above: 1.2em, below: 1em, breakable: false)[#image(bytes({}), format: \"svg\", width: 100%, alt: {})]",
        typst_string(&svg),
        typst_string(&format!("{}. {}", chart.title, describe(chart)))
    );
    // The figures behind the chart, for anyone who would rather read numbers.
    let mut table = chart.to_table();
    table.caption = format!("Figures for the chart: {}", chart.title);
    write_table(out, &table);
}
