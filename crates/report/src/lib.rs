//! A renderer-neutral report: a title block, sections of paragraphs, tables, charts and notes.
//! Statements and monitoring build a [`Report`]; the renderers here turn it into CSV files, an
//! Excel workbook and SVG charts, and `concordat-pdf` turns it into a PDF.
//!
//! Every renderer first calls [`Report::check`], so a malformed report (a table row with the
//! wrong number of cells, a money column holding text, two tables with the same name) is refused
//! with an error naming the table, row and column rather than rendered wrongly.

use std::collections::HashSet;
use std::fmt;

use concordat_core::{Money, Percent};
use jiff::civil::Date;

pub mod csv_render;
pub mod ics;
pub mod statements;
pub mod svg;
pub mod xlsx;

pub use csv_render::render_csv;
pub use ics::render_ics;
pub use statements::{
    Context, memorandum_report, monitoring_report, quarterly_report, settlement_report,
};
pub use svg::render_svg;
pub use xlsx::render_xlsx;

/// Longest table or chart name: Excel's limit for a sheet name.
pub const MAX_NAME_CHARS: usize = 31;

/// The name of the first sheet in the workbook, so no table may use it.
pub const COVER_SHEET_NAME: &str = "Cover";

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub title: String,
    pub subtitle: Option<String>,
    /// Label and value pairs for the title block: partnership, fund, host, pool manager,
    /// period, prepared at...
    pub meta: Vec<(String, String)>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub heading: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Paragraph(String),
    Table(Table),
    Chart(Chart),
    Notes(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The CSV file name (without `.csv`) and Excel sheet name: at most 31 characters, unique
    /// in the report (ignoring case), none of `[ ] : * ? / \ < > | "`.
    pub name: String,
    pub caption: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    pub total_row: Option<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub heading: String,
    pub kind: ColumnKind,
}

impl Column {
    pub fn new(heading: impl Into<String>, kind: ColumnKind) -> Column {
        Column {
            heading: heading.into(),
            kind,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    Money,
    Percent,
    Integer,
    Date,
    Rag,
}

impl ColumnKind {
    /// Numbers read better aligned to the right.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnKind::Money | ColumnKind::Percent | ColumnKind::Integer
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Money(Money),
    Percent(Percent),
    Integer(i64),
    Date(Date),
    Rag(Rag),
    Empty,
}

impl Cell {
    pub fn text(value: impl Into<String>) -> Cell {
        Cell::Text(value.into())
    }

    /// Whether this cell may sit in a column of `kind`. Empty fits anywhere, and a text cell
    /// may label a row in any column (e.g. "Total" or "n/a").
    fn fits(&self, kind: ColumnKind) -> bool {
        matches!(
            (self, kind),
            (Cell::Empty, _)
                | (Cell::Text(_), _)
                | (Cell::Money(_), ColumnKind::Money)
                | (Cell::Percent(_), ColumnKind::Percent)
                | (Cell::Integer(_), ColumnKind::Integer)
                | (Cell::Date(_), ColumnKind::Date)
                | (Cell::Rag(_), ColumnKind::Rag)
        )
    }

    /// The cell as people read it in a PDF or on screen: money as `£1,234.56` / `-£1,234.56`.
    pub fn to_display(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Money(money) => money.to_string(),
            Cell::Percent(percent) => format!("{}%", percent_number(*percent)),
            Cell::Integer(n) => grouped_integer(*n),
            Cell::Date(date) => date.strftime("%-d %B %Y").to_string(),
            Cell::Rag(rag) => rag.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

/// A percentage as a number with two decimals and its sign, `-4.39` for -4.39%: variances can
/// be negative, which `Percent`'s own display does not expect.
pub fn percent_number(percent: Percent) -> String {
    let bp = percent.basis_points();
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `1234567` as `1,234,567`.
pub fn grouped_integer(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Red, amber or green status against the agreement's variance thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rag {
    Red,
    Amber,
    Green,
}

impl fmt::Display for Rag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rag::Red => "Red",
            Rag::Amber => "Amber",
            Rag::Green => "Green",
        })
    }
}

/// A chart always carries its numbers, so every renderer can also show it as a table
/// ([`Chart::to_table`]): the CSV and Excel renderers do exactly that.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File and sheet name for the chart's figures; same rules as [`Table::name`].
    pub name: String,
    pub title: String,
    pub data: ChartData,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChartData {
    /// Series across the periods of a year (budget, actual, forecast, cumulative...).
    Periods {
        /// Labels along the axis, usually `P01`..`P12`.
        periods: Vec<String>,
        series: Vec<Series>,
    },
    /// One horizontal bar per partner, positive to the right and negative to the left
    /// (e.g. each partner's risk-share exposure).
    PartnerBars {
        /// What the amounts are, e.g. "Risk-share exposure".
        value_label: String,
        bars: Vec<PartnerBar>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub style: SeriesStyle,
    /// One value per period; `None` where there is no figure (e.g. actuals for future periods).
    pub values: Vec<Option<Money>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStyle {
    Line,
    Bar,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartnerBar {
    pub partner: String,
    pub amount: Money,
}

impl Chart {
    /// The chart's figures as a table: one row per period (a column per series) or one row
    /// per partner.
    pub fn to_table(&self) -> Table {
        match &self.data {
            ChartData::Periods { periods, series } => {
                let mut columns = vec![Column::new("Period", ColumnKind::Text)];
                columns.extend(
                    series
                        .iter()
                        .map(|s| Column::new(s.name.clone(), ColumnKind::Money)),
                );
                let rows = periods
                    .iter()
                    .enumerate()
                    .map(|(i, period)| {
                        let mut row = vec![Cell::Text(period.clone())];
                        row.extend(series.iter().map(|s| {
                            s.values
                                .get(i)
                                .copied()
                                .flatten()
                                .map_or(Cell::Empty, Cell::Money)
                        }));
                        row
                    })
                    .collect();
                Table {
                    name: self.name.clone(),
                    caption: self.title.clone(),
                    columns,
                    rows,
                    total_row: None,
                }
            }
            ChartData::PartnerBars { value_label, bars } => Table {
                name: self.name.clone(),
                caption: self.title.clone(),
                columns: vec![
                    Column::new("Partner", ColumnKind::Text),
                    Column::new(value_label.clone(), ColumnKind::Money),
                ],
                rows: bars
                    .iter()
                    .map(|bar| vec![Cell::Text(bar.partner.clone()), Cell::Money(bar.amount)])
                    .collect(),
                total_row: None,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the report has no title")]
    NoTitle,
    #[error("table '{table}' has no columns")]
    NoColumns { table: String },
    #[error("table '{name}': {reason}")]
    BadName { name: String, reason: String },
    #[error("table '{table}' row {row}: has {found} cells but the table has {expected} columns")]
    RowWidth {
        table: String,
        /// 1-based; the total row is reported as row 0.
        row: usize,
        found: usize,
        expected: usize,
    },
    #[error("table '{table}' row {row}, column '{column}': a {cell} value in a {kind:?} column")]
    CellKind {
        table: String,
        row: usize,
        column: String,
        cell: &'static str,
        kind: ColumnKind,
    },
    #[error(
        "chart '{chart}', series '{series}': has {found} values but the chart has {expected} periods"
    )]
    SeriesLength {
        chart: String,
        series: String,
        found: usize,
        expected: usize,
    },
    #[error("writing {format}: {reason}")]
    Write {
        format: &'static str,
        reason: String,
    },
}

impl Report {
    /// Every table in the report, charts included as their tables, in order.
    pub fn tables(&self) -> Vec<(&Section, Table)> {
        let mut out = Vec::new();
        for section in &self.sections {
            for block in &section.blocks {
                match block {
                    Block::Table(table) => out.push((section, table.clone())),
                    Block::Chart(chart) => out.push((section, chart.to_table())),
                    Block::Paragraph(_) | Block::Notes(_) => {}
                }
            }
        }
        out
    }

    /// The value of a meta entry, by label, ignoring case (e.g. "Partnership").
    pub fn meta_value(&self, label: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(label))
            .map(|(_, v)| v.as_str())
    }

    /// Checks names, row widths, cell kinds and series lengths; renderers call this first.
    pub fn check(&self) -> Result<(), ReportError> {
        if self.title.trim().is_empty() {
            // An accessible PDF must have a title, and so should every report.
            return Err(ReportError::NoTitle);
        }
        let mut seen = HashSet::new();
        for section in &self.sections {
            for block in &section.blocks {
                match block {
                    Block::Table(table) => {
                        check_name(&table.name, &mut seen)?;
                        check_table(table)?;
                    }
                    Block::Chart(chart) => {
                        check_name(&chart.name, &mut seen)?;
                        if let ChartData::Periods { periods, series } = &chart.data {
                            for s in series {
                                if s.values.len() != periods.len() {
                                    return Err(ReportError::SeriesLength {
                                        chart: chart.name.clone(),
                                        series: s.name.clone(),
                                        found: s.values.len(),
                                        expected: periods.len(),
                                    });
                                }
                            }
                        }
                    }
                    Block::Paragraph(_) | Block::Notes(_) => {}
                }
            }
        }
        Ok(())
    }
}

fn check_name(name: &str, seen: &mut HashSet<String>) -> Result<(), ReportError> {
    let bad = |reason: &str| {
        Err(ReportError::BadName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.trim().is_empty() {
        return bad("the name is empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad("the name is longer than 31 characters (Excel's limit for a sheet name)");
    }
    if let Some(c) = name
        .chars()
        // Excel refuses `[ ] : * ? / \` in sheet names; `< > | "` cannot be in a file name
        // on Windows, and the name is also the CSV file's name.
        .find(|c| {
            matches!(
                c,
                '[' | ']' | ':' | '*' | '?' | '/' | '\\' | '<' | '>' | '|' | '"'
            ) || c.is_control()
        })
    {
        return bad(&format!(
            "the name contains '{}', which a sheet or file name cannot hold",
            c.escape_default()
        ));
    }
    if name.starts_with('\'') || name.ends_with('\'') || name.starts_with('.') {
        return bad("the name may not start or end with an apostrophe or start with a dot");
    }
    let folded = name.to_lowercase();
    if folded == COVER_SHEET_NAME.to_lowercase() || folded == "history" {
        return bad("the name is reserved for a sheet of the workbook");
    }
    if !seen.insert(folded) {
        return bad("another table or chart in the report has the same name (ignoring case)");
    }
    Ok(())
}

fn check_table(table: &Table) -> Result<(), ReportError> {
    if table.columns.is_empty() {
        return Err(ReportError::NoColumns {
            table: table.name.clone(),
        });
    }
    let numbered = table.rows.iter().enumerate().map(|(i, row)| (i + 1, row));
    for (row_number, row) in numbered.chain(table.total_row.iter().map(|row| (0, row))) {
        if row.len() != table.columns.len() {
            return Err(ReportError::RowWidth {
                table: table.name.clone(),
                row: row_number,
                found: row.len(),
                expected: table.columns.len(),
            });
        }
        for (cell, column) in row.iter().zip(&table.columns) {
            if !cell.fits(column.kind) {
                return Err(ReportError::CellKind {
                    table: table.name.clone(),
                    row: row_number,
                    column: column.heading.clone(),
                    cell: cell_kind_name(cell),
                    kind: column.kind,
                });
            }
        }
    }
    Ok(())
}

fn cell_kind_name(cell: &Cell) -> &'static str {
    match cell {
        Cell::Text(_) => "text",
        Cell::Money(_) => "money",
        Cell::Percent(_) => "percent",
        Cell::Integer(_) => "integer",
        Cell::Date(_) => "date",
        Cell::Rag(_) => "RAG",
        Cell::Empty => "empty",
    }
}

/// A small made-up report used by tests, the docs and the sample program.
pub mod sample;
