//! CSV: one file per table (charts included as their tables), for machines and for people who
//! want to reconcile in a spreadsheet. Money is plain decimal pounds (`-1234.50`), dates are ISO
//! (`2024-09-30`), percentages are the number of per cent with two decimals (`22.50`).
//!
//! There is no combined file: the tables have different columns, and the Excel workbook is the
//! one-file form of a report.

use crate::{Cell, Report, ReportError, Table};

/// One CSV per table, in report order: (`<table name>.csv`, bytes). The first column,
/// `row_type`, is `data` or `total`, so a total row is never summed in by mistake; the other
/// column names are [`column_key`] of each heading.
pub fn render_csv(report: &Report) -> Result<Vec<(String, Vec<u8>)>, ReportError> {
    report.check()?;
    report
        .tables()
        .into_iter()
        .map(|(_, table)| Ok((format!("{}.csv", table.name), table_csv(&table)?)))
        .collect()
}

/// A heading as a CSV column name: lower case, runs of anything other than a letter or digit
/// become one `_` ("Budget to date (£)" → `budget_to_date`).
pub fn column_key(heading: &str) -> String {
    let mut key = String::with_capacity(heading.len());
    for c in heading.chars() {
        if c.is_alphanumeric() {
            key.extend(c.to_lowercase());
        } else if !key.is_empty() && !key.ends_with('_') {
            key.push('_');
        }
    }
    while key.ends_with('_') {
        key.pop();
    }
    if key.is_empty() {
        key.push_str("column");
    }
    key
}

/// A cell as plain machine text.
pub fn plain(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) => text.clone(),
        Cell::Money(money) => money.to_plain(),
        Cell::Percent(percent) => crate::percent_number(*percent),
        Cell::Integer(n) => n.to_string(),
        Cell::Date(date) => date.to_string(),
        Cell::Rag(rag) => rag.to_string(),
        Cell::Empty => String::new(),
    }
}

fn table_csv(table: &Table) -> Result<Vec<u8>, ReportError> {
    let write_err = |e: csv::Error| ReportError::Write {
        format: "CSV",
        reason: e.to_string(),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["row_type".to_string()];
    for column in &table.columns {
        // Two headings can fold to the same key ("Budget £" and "Budget (£)"): number the later.
        let key = column_key(&column.heading);
        let mut unique = key.clone();
        let mut n = 2;
        while header.contains(&unique) {
            unique = format!("{key}_{n}");
            n += 1;
        }
        header.push(unique);
    }
    writer.write_record(&header).map_err(write_err)?;
    let rows = table.rows.iter().map(|row| ("data", row));
    for (row_type, row) in rows.chain(table.total_row.iter().map(|row| ("total", row))) {
        let mut record = vec![row_type.to_string()];
        record.extend(row.iter().map(plain));
        writer.write_record(&record).map_err(write_err)?;
    }
    writer.into_inner().map_err(|e| ReportError::Write {
        format: "CSV",
        reason: e.to_string(),
    })
}
