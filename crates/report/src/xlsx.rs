//! Excel: a cover sheet with the title block and contents, then one sheet per table (charts
//! included as their tables). Money cells are numbers formatted `£#,##0.00;-£#,##0.00`, dates
//! are dates, RAG is text with a fill colour.

use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

use crate::{Block, COVER_SHEET_NAME, Cell, ColumnKind, Rag, Report, ReportError, Table};

pub const MONEY_FORMAT: &str = "£#,##0.00;-£#,##0.00";
pub const PERCENT_FORMAT: &str = "0.00%";
pub const INTEGER_FORMAT: &str = "#,##0";
pub const DATE_FORMAT: &str = "dd/mm/yyyy";

/// Row (0-based) of each table sheet's header: the caption sits above it.
pub const HEADER_ROW: u32 = 1;

/// The workbook as bytes.
pub fn render_xlsx(report: &Report) -> Result<Vec<u8>, ReportError> {
    report.check()?;
    build(report).map_err(|e| ReportError::Write {
        format: "Excel",
        reason: e.to_string(),
    })
}

struct Formats {
    caption: Format,
    header: Format,
    text: Format,
    money: Format,
    percent: Format,
    integer: Format,
    date: Format,
}

impl Formats {
    fn new(bold: bool) -> Formats {
        let base = || {
            let f = Format::new();
            if bold {
                f.set_bold().set_border_top(FormatBorder::Thin)
            } else {
                f
            }
        };
        Formats {
            caption: Format::new().set_bold().set_font_size(12),
            header: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_border_bottom(FormatBorder::Thin)
                .set_background_color(Color::RGB(0xE8_EC_F2)),
            text: base(),
            money: base().set_num_format(MONEY_FORMAT),
            percent: base().set_num_format(PERCENT_FORMAT),
            integer: base().set_num_format(INTEGER_FORMAT),
            date: base().set_num_format(DATE_FORMAT),
        }
    }
}

fn rag_format(rag: Rag, bold: bool) -> Format {
    // Excel's own "Bad", "Neutral" and "Good" cell styles; the word itself is always written too,
    // so the status never depends on colour alone.
    let (fill, font) = match rag {
        Rag::Red => (0xFF_C7_CE, 0x9C_00_06),
        Rag::Amber => (0xFF_EB_9C, 0x9C_57_00),
        Rag::Green => (0xC6_EF_CE, 0x00_61_00),
    };
    let f = Format::new()
        .set_background_color(Color::RGB(fill))
        .set_font_color(Color::RGB(font));
    if bold { f.set_bold() } else { f }
}

fn build(report: &Report) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let tables = report.tables();
    write_cover(workbook.add_worksheet(), report)?;
    let body = Formats::new(false);
    let total = Formats::new(true);
    for (_, table) in &tables {
        let sheet = workbook.add_worksheet();
        sheet.set_name(&table.name)?;
        write_table(sheet, table, &body, &total)?;
    }
    workbook.save_to_buffer()
}

/// How a sheet prints: A4 landscape, as wide as one page, so a partner's finance officer who
/// prints the statement gets whole rows rather than columns split across pages.
fn set_print_layout(sheet: &mut Worksheet) {
    sheet
        .set_paper_size(A4_PAPER)
        .set_landscape()
        .set_print_fit_to_pages(1, 0);
}

/// Excel's code for A4 paper.
const A4_PAPER: u8 = 9;

/// Characters of the default font that fit on one line of the cover's text column (80 wide).
const COVER_LINE_CHARS: usize = 85;

/// Points per line of the default 11-point font.
const LINE_POINTS: f64 = 15.0;

/// Writes wrapped text and makes its row tall enough for every line: neither Excel nor
/// LibreOffice grows a row for wrapped text when it opens a file, so the text would otherwise
/// run into the rows below it.
fn write_wrapped(
    sheet: &mut Worksheet,
    row: u32,
    text: &str,
    wrap: &Format,
) -> Result<(), XlsxError> {
    sheet.write_string_with_format(row, 1, text, wrap)?;
    let lines = wrapped_lines(text, COVER_LINE_CHARS);
    if lines > 1 {
        sheet.set_row_height(row, LINE_POINTS * lines as f64)?;
    }
    Ok(())
}

/// How many lines `text` takes when wrapped at word boundaries to `width` characters (a word
/// longer than a line is broken across lines).
fn wrapped_lines(text: &str, width: usize) -> usize {
    let width = width.max(1);
    let mut lines = 1;
    let mut used = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if used == 0 {
            used = len;
        } else if used + 1 + len <= width {
            used += 1 + len;
        } else {
            lines += 1;
            used = len;
        }
        while used > width {
            lines += 1;
            used -= width;
        }
    }
    lines
}

fn write_cover(sheet: &mut Worksheet, report: &Report) -> Result<(), XlsxError> {
    sheet.set_name(COVER_SHEET_NAME)?;
    set_print_layout(sheet);
    let title = Format::new().set_bold().set_font_size(16);
    let bold = Format::new().set_bold();
    let heading = Format::new().set_bold().set_font_size(12);
    // Top-aligned, so a row's spare height falls below its text, not between it and its heading.
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    sheet.set_column_width(0, 28)?;
    sheet.set_column_width(1, 80)?;
    sheet.write_string_with_format(0, 0, &report.title, &title)?;
    let mut row = 1;
    if let Some(subtitle) = &report.subtitle {
        sheet.write_string(row, 0, subtitle)?;
        row += 1;
    }
    row += 1;
    for (label, value) in &report.meta {
        sheet.write_string_with_format(row, 0, label, &bold)?;
        sheet.write_string(row, 1, value)?;
        row += 1;
    }
    for section in &report.sections {
        row += 1;
        sheet.write_string_with_format(row, 0, &section.heading, &heading)?;
        row += 1;
        for block in &section.blocks {
            match block {
                Block::Paragraph(text) => {
                    write_wrapped(sheet, row, text, &wrap)?;
                    row += 1;
                }
                Block::Notes(notes) => {
                    for note in notes {
                        write_wrapped(sheet, row, &format!("Note: {note}"), &wrap)?;
                        row += 1;
                    }
                }
                Block::Table(table) => {
                    sheet.write_string(row, 0, format!("Sheet '{}'", table.name))?;
                    sheet.write_string(row, 1, &table.caption)?;
                    row += 1;
                }
                Block::Chart(chart) => {
                    sheet.write_string(row, 0, format!("Sheet '{}'", chart.name))?;
                    sheet.write_string(row, 1, format!("{} (chart figures)", chart.title))?;
                    row += 1;
                }
            }
        }
    }
    Ok(())
}

fn write_table(
    sheet: &mut Worksheet,
    table: &Table,
    body: &Formats,
    total: &Formats,
) -> Result<(), XlsxError> {
    sheet.write_string_with_format(0, 0, &table.caption, &body.caption)?;
    let mut widths: Vec<usize> = table
        .columns
        .iter()
        .map(|c| c.heading.chars().count().min(24))
        .collect();
    for (col, column) in table.columns.iter().enumerate() {
        sheet.write_string_with_format(HEADER_ROW, col as u16, &column.heading, &body.header)?;
    }
    let rows = table.rows.iter().map(|row| (row, body, false));
    let total_row = table.total_row.iter().map(|row| (row, total, true));
    for (row_index, (row, formats, bold)) in (HEADER_ROW + 1..).zip(rows.chain(total_row)) {
        for (col, (cell, column)) in row.iter().zip(&table.columns).enumerate() {
            let c = col as u16;
            widths[col] = widths[col].max(cell.to_display().chars().count());
            match cell {
                Cell::Text(text) => {
                    sheet.write_string_with_format(row_index, c, text, &formats.text)?;
                }
                // Pence to pounds only here, at the edge: i64 pence below 2^53 are held exactly
                // in an f64, and pence / 100 is as close as a double can be to the two-decimal
                // amount, which is all Excel shows with this format.
                Cell::Money(money) => {
                    let pounds = money.pence() as f64 / 100.0;
                    sheet.write_number_with_format(row_index, c, pounds, &formats.money)?;
                }
                Cell::Percent(percent) => {
                    let fraction = percent.basis_points() as f64 / 10_000.0;
                    sheet.write_number_with_format(row_index, c, fraction, &formats.percent)?;
                }
                Cell::Integer(n) => {
                    sheet.write_number_with_format(row_index, c, *n as f64, &formats.integer)?;
                }
                Cell::Date(date) => {
                    sheet.write_datetime_with_format(row_index, c, date, &formats.date)?;
                }
                Cell::Rag(rag) => {
                    sheet.write_string_with_format(
                        row_index,
                        c,
                        rag.to_string(),
                        &rag_format(*rag, bold),
                    )?;
                }
                Cell::Empty => {
                    let format = match column.kind {
                        ColumnKind::Money => &formats.money,
                        _ => &formats.text,
                    };
                    sheet.write_blank(row_index, c, format)?;
                }
            }
        }
    }
    for (col, width) in widths.iter().enumerate() {
        // A little room for Excel's own padding and the £ sign; very long text wraps instead.
        sheet.set_column_width(col as u16, (*width + 3).min(60) as f64)?;
    }
    sheet.set_freeze_panes(HEADER_ROW + 1, 0)?;
    set_print_layout(sheet);
    // The column headings on every printed page.
    sheet.set_repeat_rows(HEADER_ROW, HEADER_ROW)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wrapped_lines;

    #[test]
    fn wrapped_lines_counts_word_wrapped_lines() {
        assert_eq!(wrapped_lines("", 10), 1);
        assert_eq!(wrapped_lines("short", 10), 1);
        assert_eq!(wrapped_lines("exactly ten", 11), 1);
        assert_eq!(wrapped_lines("exactly ten", 10), 2);
        assert_eq!(wrapped_lines("aaaa bbbb cccc dddd", 9), 2);
        assert_eq!(wrapped_lines("aaaa bbbb cccc dddd", 8), 4);
        // A word longer than the line takes as many lines as it needs.
        assert_eq!(wrapped_lines(&"x".repeat(25), 10), 3);
        assert_eq!(wrapped_lines(&format!("ab {}", "x".repeat(20)), 10), 3);
    }
}
