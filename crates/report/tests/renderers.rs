// Pence written pounds_pence (`1_234_567_89`), as money reads.
#![allow(clippy::inconsistent_digit_grouping)]

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use concordat_core::{Money, Percent};
use concordat_report::sample::sample_report;
use concordat_report::{
    Block, Cell, Chart, ChartData, Column, ColumnKind, PartnerBar, Rag, Report, ReportError,
    Section, Series, SeriesStyle, Table, render_csv, render_svg, render_xlsx,
};
use jiff::civil::date;

const ODD_PARTNER: &str = "Smith & Sons #1 [draft] $x$ *bold* \"quoted\", <ltd>";

fn small_report() -> Report {
    Report {
        title: "Small report".into(),
        subtitle: None,
        meta: vec![("Partnership".into(), "Test partnership".into())],
        sections: vec![Section {
            heading: "Contributions".into(),
            blocks: vec![
                Block::Paragraph("Two partners.".into()),
                Block::Table(Table {
                    name: "Contributions".into(),
                    caption: "Contributions by partner".into(),
                    columns: vec![
                        Column::new("Partner", ColumnKind::Text),
                        Column::new("Amount (£)", ColumnKind::Money),
                        Column::new("Share %", ColumnKind::Percent),
                        Column::new("Due date", ColumnKind::Date),
                        Column::new("Instalments", ColumnKind::Integer),
                        Column::new("RAG", ColumnKind::Rag),
                    ],
                    rows: vec![
                        vec![
                            Cell::text(ODD_PARTNER),
                            Cell::Money(Money::from_pence(123_456_789)),
                            Cell::Percent(Percent::from_basis_points(2_250)),
                            Cell::Date(date(2024, 9, 30)),
                            Cell::Integer(4),
                            Cell::Rag(Rag::Green),
                        ],
                        vec![
                            Cell::text("NHS Example ICB"),
                            Cell::Money(Money::from_pence(-123_450)),
                            Cell::Percent(Percent::from_basis_points(7_750)),
                            Cell::Empty,
                            Cell::Integer(1_000),
                            Cell::Rag(Rag::Red),
                        ],
                    ],
                    total_row: Some(vec![
                        Cell::text("Total"),
                        Cell::Money(Money::from_pence(123_333_339)),
                        Cell::Percent(Percent::HUNDRED),
                        Cell::Empty,
                        Cell::Integer(1_004),
                        Cell::Empty,
                    ]),
                }),
                Block::Chart(Chart {
                    name: "Exposure".into(),
                    title: "Exposure by partner".into(),
                    data: ChartData::PartnerBars {
                        value_label: "Exposure".into(),
                        bars: vec![
                            PartnerBar {
                                partner: ODD_PARTNER.into(),
                                amount: Money::from_pence(50_000),
                            },
                            PartnerBar {
                                partner: "NHS Example ICB".into(),
                                amount: Money::from_pence(-25_050),
                            },
                        ],
                    },
                }),
            ],
        }],
    }
}

#[test]
fn csv_has_one_file_per_table_with_exact_bytes() {
    let files = render_csv(&small_report()).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Contributions.csv", "Exposure.csv"]);
    assert_eq!(
        String::from_utf8(files[0].1.clone()).unwrap(),
        "row_type,partner,amount,share,due_date,instalments,rag\n\
         data,\"Smith & Sons #1 [draft] $x$ *bold* \"\"quoted\"\", <ltd>\",1234567.89,22.50,2024-09-30,4,Green\n\
         data,NHS Example ICB,-1234.50,77.50,,1000,Red\n\
         total,Total,1233333.39,100.00,,1004,\n"
    );
    assert_eq!(
        String::from_utf8(files[1].1.clone()).unwrap(),
        "row_type,partner,exposure\n\
         data,\"Smith & Sons #1 [draft] $x$ *bold* \"\"quoted\"\", <ltd>\",500.00\n\
         data,NHS Example ICB,-250.50\n"
    );
}

#[test]
fn xlsx_reads_back_with_numbers_dates_and_formats() {
    let bytes = render_xlsx(&small_report()).unwrap();
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    assert_eq!(
        workbook.sheet_names(),
        ["Cover", "Contributions", "Exposure"]
    );

    let cover = workbook.worksheet_range("Cover").unwrap();
    assert_eq!(
        cover.get_value((0, 0)),
        Some(&Data::String("Small report".into()))
    );
    assert_eq!(
        cover.get_value((2, 1)),
        Some(&Data::String("Test partnership".into()))
    );

    let sheet = workbook.worksheet_range("Contributions").unwrap();
    let at = |row, col| sheet.get_value((row, col)).cloned();
    assert_eq!(
        at(0, 0),
        Some(Data::String("Contributions by partner".into()))
    );
    assert_eq!(at(1, 1), Some(Data::String("Amount (£)".into())));
    assert_eq!(at(2, 0), Some(Data::String(ODD_PARTNER.into())));
    // Money is a number of pounds, which rounds back to the exact pence.
    let Some(Data::Float(pounds)) = at(2, 1) else {
        panic!("money should be a number, got {:?}", at(2, 1))
    };
    assert_eq!((pounds * 100.0).round() as i64, 123_456_789);
    assert_eq!(at(3, 1), Some(Data::Float(-1234.5)));
    assert_eq!(at(2, 2), Some(Data::Float(0.225)));
    assert_eq!(at(2, 4), Some(Data::Float(4.0)));
    assert_eq!(at(2, 5), Some(Data::String("Green".into())));
    match at(2, 3) {
        Some(Data::DateTime(dt)) => {
            // Excel's serial day for 30 September 2024.
            assert_eq!(dt.as_f64(), 45565.0);
        }
        other => panic!("the due date should be a date, got {other:?}"),
    }
    assert_eq!(at(4, 0), Some(Data::String("Total".into())));
    let Some(Data::Float(total)) = at(4, 1) else {
        panic!("total should be a number")
    };
    assert_eq!((total * 100.0).round() as i64, 123_333_339);

    let styles = workbook.worksheet_style("Contributions").unwrap();
    let money_format = styles
        .get((2, 1))
        .and_then(|s| s.number_format.as_ref())
        .map(|f| f.format_code.clone());
    assert_eq!(money_format.as_deref(), Some("£#,##0.00;-£#,##0.00"));
    let bold = |row, col| {
        styles
            .get((row, col))
            .and_then(|s| s.font.as_ref())
            .is_some_and(|f| f.is_bold())
    };
    assert!(bold(1, 0), "the header row is bold");
    assert!(bold(4, 1), "the total row is bold");
    assert!(!bold(2, 1), "body rows are not bold");
    let red_fill = styles
        .get((3, 5))
        .and_then(|s| s.fill.as_ref())
        .and_then(|f| f.foreground_color.or(f.background_color))
        .map(|c| (c.red, c.green, c.blue));
    assert_eq!(red_fill, Some((0xFF, 0xC7, 0xCE)));

    let exposure = workbook.worksheet_range("Exposure").unwrap();
    assert_eq!(exposure.get_value((3, 1)), Some(&Data::Float(-250.5)));
}

/// The XML of one part of an .xlsx file.
fn xlsx_part(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut part = archive.by_name(name).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut part, &mut xml).unwrap();
    xml
}

#[test]
fn xlsx_prints_a_page_wide_and_gives_wrapped_text_its_lines() {
    let mut report = small_report();
    let long = "The deficit is an overspend of £312,396.26. The agreement's risk share for an \
                overspend: pro rata to contributions. It falls: Hertfordshire County Council \
                £312,396.26, and nothing to the other partners this year.";
    report.sections[0]
        .blocks
        .insert(0, Block::Paragraph(long.into()));
    let bytes = render_xlsx(&report).unwrap();
    // Every sheet prints landscape on A4, one page wide.
    for sheet in 1..=3 {
        let xml = xlsx_part(&bytes, &format!("xl/worksheets/sheet{sheet}.xml"));
        assert!(
            xml.contains(r#"<pageSetUpPr fitToPage="1"/>"#),
            "sheet {sheet}: {xml}"
        );
        assert!(xml.contains(r#"orientation="landscape""#), "sheet {sheet}");
        assert!(xml.contains(r#"paperSize="9""#), "sheet {sheet}");
        assert!(xml.contains(r#"fitToHeight="0""#), "sheet {sheet}");
    }
    // The long paragraph's row on the cover is as many lines high as its text (15 points a
    // line); the short one keeps the default height.
    let cover = xlsx_part(&bytes, "xl/worksheets/sheet1.xml");
    let heights: Vec<f64> = cover
        .split(r#" ht=""#)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(heights, [45.0], "{cover}");
    // Table sheets repeat their column headings on every printed page.
    let workbook = xlsx_part(&bytes, "xl/workbook.xml");
    assert!(workbook.contains("_xlnm.Print_Titles"), "{workbook}");
}

#[test]
fn sample_report_renders_everywhere() {
    let report = sample_report();
    report.check().unwrap();
    assert_eq!(render_csv(&report).unwrap().len(), 4);
    assert!(render_xlsx(&report).unwrap().starts_with(b"PK"));
}

fn svg_of(chart: &Chart) -> (String, String) {
    let svg = render_svg(chart);
    let doc = roxmltree::Document::parse(&svg)
        .unwrap_or_else(|e| panic!("the SVG is not well-formed XML: {e}\n{svg}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("role"), Some("img"));
    let text_of = |tag: &str| {
        root.children()
            .find(|n| n.tag_name().name() == tag)
            .and_then(|n| n.text())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        !svg.contains("<script") && !svg.contains("@import") && !svg.contains("href"),
        "no script or external resources"
    );
    (text_of("title"), text_of("desc"))
}

#[test]
fn partner_chart_svg_is_well_formed_and_describes_its_figures() {
    let report = small_report();
    let Block::Chart(chart) = &report.sections[0].blocks[2] else {
        panic!()
    };
    let (title, desc) = svg_of(chart);
    assert_eq!(title, "Exposure by partner");
    assert_eq!(
        desc,
        format!("Exposure by partner: {ODD_PARTNER} £500.00, NHS Example ICB -£250.50.")
    );
}

#[test]
fn period_chart_svg_lists_every_period_and_breaks_at_missing_figures() {
    let chart = Chart {
        name: "Trend".into(),
        title: "Budget and actual".into(),
        data: ChartData::Periods {
            periods: vec!["P01".into(), "P02".into(), "P03".into()],
            series: vec![
                Series {
                    name: "Budget".into(),
                    style: SeriesStyle::Bar,
                    values: vec![Some(Money::from_pence(1_234_567_89)); 3],
                },
                Series {
                    name: "Actual".into(),
                    style: SeriesStyle::Line,
                    values: vec![
                        Some(Money::from_pence(-100)),
                        Some(Money::from_pence(200)),
                        None,
                    ],
                },
            ],
        },
    };
    let (title, desc) = svg_of(&chart);
    assert_eq!(title, "Budget and actual");
    assert_eq!(
        desc,
        "Budget (bars): P01 £1,234,567.89, P02 £1,234,567.89, P03 £1,234,567.89. \
         Actual (line): P01 -£1.00, P02 £2.00, P03 no figure."
    );
    let svg = render_svg(&chart);
    assert!(svg.contains(">£1.25m</text>"), "round £ axis labels: {svg}");
    assert!(
        svg.contains("stroke-dasharray"),
        "lines differ by dash pattern"
    );
}

#[test]
fn malformed_tables_are_refused_with_the_place() {
    let mut report = small_report();
    let Block::Table(table) = &mut report.sections[0].blocks[1] else {
        panic!()
    };
    table.rows[1][1] = Cell::Integer(5);
    assert_eq!(
        report.check(),
        Err(ReportError::CellKind {
            table: "Contributions".into(),
            row: 2,
            column: "Amount (£)".into(),
            cell: "integer",
            kind: ColumnKind::Money,
        })
    );
    table_mut(&mut report).rows[1].pop();
    assert!(matches!(
        render_csv(&report),
        Err(ReportError::RowWidth {
            row: 2,
            found: 5,
            expected: 6,
            ..
        })
    ));

    let mut report = small_report();
    table_mut(&mut report).name = "exposure".into();
    let err = render_xlsx(&report).unwrap_err().to_string();
    assert!(err.contains("same name"), "{err}");

    let mut report = small_report();
    table_mut(&mut report).name = "A name that is far too long for a sheet".into();
    let err = render_xlsx(&report).unwrap_err().to_string();
    assert!(err.contains("31 characters"), "{err}");

    let mut report = small_report();
    report.title = " ".into();
    assert_eq!(render_xlsx(&report), Err(ReportError::NoTitle));

    let mut report = small_report();
    table_mut(&mut report).name = "Q2/Q3".into();
    assert!(render_csv(&report).unwrap_err().to_string().contains("'/'"));
}

fn table_mut(report: &mut Report) -> &mut Table {
    match &mut report.sections[0].blocks[1] {
        Block::Table(table) => table,
        _ => panic!("the second block is the table"),
    }
}
