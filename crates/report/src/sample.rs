//! A made-up quarterly report for a made-up pooled fund, for tests, docs and the sample
//! program. The figures are invented but add up: the total row is the sum of its column.

// Amounts in pence are written pounds_pence (`1_234_567_89` is £1,234,567.89) so they read as
// money, which clippy's digit-grouping lints would otherwise reject.
#![allow(clippy::inconsistent_digit_grouping, clippy::mistyped_literal_suffixes)]

use concordat_core::{Money, Percent};
use jiff::civil::date;

use crate::{
    Block, Cell, Chart, ChartData, Column, ColumnKind, PartnerBar, Rag, Report, Section, Series,
    SeriesStyle, Table,
};

fn m(pence: i64) -> Cell {
    Cell::Money(Money::from_pence(pence))
}

/// The quarter-two report of the Northshire Better Care Fund.
pub fn sample_report() -> Report {
    let service_lines = [
        (
            "Community health services",
            1_234_567_89,
            1_180_250_00,
            2_450_000_00,
            Rag::Green,
        ),
        (
            "Reablement and rehabilitation",
            456_000_00,
            512_340_55,
            980_000_00,
            Rag::Red,
        ),
        (
            "Disabled facilities grant",
            210_000_00,
            198_765_43,
            420_000_00,
            Rag::Green,
        ),
        (
            "Carers' support",
            88_500_00,
            93_120_10,
            177_000_00,
            Rag::Amber,
        ),
        (
            "Care homes & nursing placements",
            2_015_000_00,
            2_065_500_00,
            4_030_000_00,
            Rag::Amber,
        ),
    ];
    let mut rows = Vec::new();
    let (mut budget_total, mut actual_total, mut variance_total, mut year_total) = (0, 0, 0, 0);
    for (name, budget, actual, year_budget, rag) in service_lines {
        let variance = actual - budget;
        rows.push(vec![
            Cell::text(name),
            m(budget),
            m(actual),
            m(variance),
            Cell::Percent(Percent::from_basis_points(variance * 10_000 / budget)),
            m(year_budget),
            Cell::Rag(rag),
        ]);
        budget_total += budget;
        actual_total += actual;
        variance_total += variance;
        year_total += year_budget;
    }
    let monitoring = Table {
        name: "Monitoring Q2".into(),
        caption: "Budget and actual to the end of P06 by service line".into(),
        columns: vec![
            Column::new("Service line", ColumnKind::Text),
            Column::new("Budget to date", ColumnKind::Money),
            Column::new("Actual to date", ColumnKind::Money),
            Column::new("Variance", ColumnKind::Money),
            Column::new("Variance %", ColumnKind::Percent),
            Column::new("Annual budget", ColumnKind::Money),
            Column::new("RAG", ColumnKind::Rag),
        ],
        rows,
        total_row: Some(vec![
            Cell::text("Total"),
            m(budget_total),
            m(actual_total),
            m(variance_total),
            Cell::Empty,
            m(year_total),
            Cell::Empty,
        ]),
    };

    let contributions = Table {
        name: "Contributions".into(),
        caption: "Contributions due and received to date".into(),
        columns: vec![
            Column::new("Partner", ColumnKind::Text),
            Column::new("Due date", ColumnKind::Date),
            Column::new("Due", ColumnKind::Money),
            Column::new("Received", ColumnKind::Money),
            Column::new("Instalments", ColumnKind::Integer),
        ],
        rows: vec![
            vec![
                Cell::text("Northshire County Council (host)"),
                Cell::Date(date(2024, 9, 30)),
                m(1_001_033_95),
                m(1_001_033_95),
                Cell::Integer(2),
            ],
            vec![
                Cell::text("NHS Northshire Integrated Care Board"),
                Cell::Date(date(2024, 9, 30)),
                m(3_003_101_84),
                m(2_850_000_00),
                Cell::Integer(2),
            ],
        ],
        total_row: Some(vec![
            Cell::text("Total"),
            Cell::Empty,
            m(4_004_135_79),
            m(3_851_033_95),
            Cell::Integer(4),
        ]),
    };

    let budget: [i64; 12] = [
        666_011_32, 667_011_31, 668_011_31, 667_011_31, 667_011_31, 669_011_39, 676_000_00,
        676_000_00, 676_000_00, 676_000_00, 676_000_00, 676_000_00,
    ];
    let actual: [Option<i64>; 12] = [
        Some(640_120_40),
        Some(655_980_10),
        Some(689_300_00),
        Some(702_115_83),
        Some(690_450_25),
        Some(671_990_00),
        None,
        None,
        None,
        None,
        None,
        None,
    ];
    // The forecast picks up from the latest actual (P06) and runs to the year end.
    let forecast: Vec<Option<Money>> = actual
        .iter()
        .enumerate()
        .map(|(i, a)| match (i, a) {
            (5, Some(latest)) => Some(Money::from_pence(*latest)),
            (_, None) => Some(Money::from_pence(695_000_00)),
            _ => None,
        })
        .collect();
    let periods: Vec<String> = (1..=12).map(|p| format!("P{p:02}")).collect();
    let trend = Chart {
        name: "Budget v actual".into(),
        title: "Budget, actual and forecast by period, 2024/25".into(),
        data: ChartData::Periods {
            periods,
            series: vec![
                Series {
                    name: "Budget".into(),
                    style: SeriesStyle::Bar,
                    values: budget.iter().map(|b| Some(Money::from_pence(*b))).collect(),
                },
                Series {
                    name: "Actual".into(),
                    style: SeriesStyle::Line,
                    values: actual.iter().map(|a| a.map(Money::from_pence)).collect(),
                },
                Series {
                    name: "Forecast".into(),
                    style: SeriesStyle::Line,
                    values: forecast,
                },
            ],
        },
    };
    let exposure = Chart {
        name: "Risk share exposure".into(),
        title: "Each partner's share of the forecast overspend".into(),
        data: ChartData::PartnerBars {
            value_label: "Risk-share exposure".into(),
            bars: vec![
                PartnerBar {
                    partner: "Northshire County Council".into(),
                    amount: Money::from_pence(143_215_67),
                },
                PartnerBar {
                    partner: "NHS Northshire ICB".into(),
                    amount: Money::from_pence(286_431_33),
                },
                PartnerBar {
                    partner: "Risk pool (underspend offset)".into(),
                    amount: Money::from_pence(-95_000_00),
                },
            ],
        },
    };

    Report {
        title: "Better Care Fund: quarterly report".into(),
        subtitle: Some("Quarter 2, 2024/25 (April to September 2024)".into()),
        meta: vec![
            (
                "Partnership".into(),
                "Northshire Health and Care Partnership".into(),
            ),
            ("Fund".into(), "Better Care Fund pooled fund".into()),
            ("Host".into(), "Northshire County Council".into()),
            (
                "Pool manager".into(),
                "A. Example, Head of Integrated Commissioning".into(),
            ),
            ("Period".into(), "2024/25-P06".into()),
            ("Prepared at".into(), "2024-10-14 09:30".into()),
        ],
        sections: vec![
            Section {
                heading: "Summary".into(),
                blocks: vec![
                    Block::Paragraph(
                        "At the end of period 6 the pooled fund is forecast to overspend by \
                         £334,647.00. Under the agreement's risk share the overspend falls to \
                         the partners in proportion to their contributions, after the risk pool."
                            .into(),
                    ),
                    Block::Chart(trend),
                ],
            },
            Section {
                heading: "Monitoring by service line".into(),
                blocks: vec![Block::Table(monitoring)],
            },
            Section {
                heading: "Contributions".into(),
                blocks: vec![Block::Table(contributions)],
            },
            Section {
                heading: "Risk share".into(),
                blocks: vec![
                    Block::Chart(exposure),
                    Block::Notes(vec![
                        "Figures are unaudited and subject to the year-end memorandum account."
                            .into(),
                        "RAG: red over 5% variance, amber over 2%, green otherwise.".into(),
                    ]),
                ],
            },
        ],
    }
}
