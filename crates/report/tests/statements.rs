//! The statement reports, built from figures the core crate works out for a small fund whose
//! figures are worked out by hand in the comments.

use std::collections::BTreeMap;

use calamine::{Reader, Xlsx, open_workbook_from_rs};
use concordat_core::agreement::{
    Agreement, Contribution, ContributionKind, Flexibility, Fund, FundKind, Instalments,
    LegalBasis, Locality, OneOrMany, Partner, PartnerKind, Person, RiskRule, RiskShare, Status,
    Transfer, TransferBasis, WrittenTerms,
};
use concordat_core::budget::BudgetLine;
use concordat_core::monitor::{
    Dimension, ForecastMethod, MonitorInput, TotalsLine, cross_subsidy, in_year_exposure, monitor,
    ring_fences,
};
use concordat_core::statement::{
    IncomeLine, MemorandumInput, QuarterlyInput, SettlementInput, memorandum, quarterly_statement,
    settle,
};
use concordat_core::{FinancialYear, Money, Percent, Period, Quarter};
use concordat_report::{
    Block, Cell, ChartData, Context, Report, SeriesStyle, Table, memorandum_report,
    monitoring_report, quarterly_report, render_csv, render_xlsx, settlement_report,
};

const COUNCIL: &str = "Northshire County Council";
const HEALTH: &str = "NHS Northshire Integrated Care Board";
const FUND_NAME: &str = "Northshire Better Care Fund";

fn pounds(p: i64) -> Money {
    Money::from_pounds(p).unwrap()
}

fn fy() -> FinancialYear {
    FinancialYear::starting(2024).unwrap()
}

fn period(text: &str) -> Period {
    text.parse().unwrap()
}

fn partner(id: &str, name: &str, kind: PartnerKind) -> Partner {
    Partner {
        id: id.into(),
        name: name.into(),
        kind,
        party: true,
        code: None,
        role: None,
        successor_of: None,
        people: vec![],
    }
}

fn agreement(fund: &Fund, localities: Vec<Locality>) -> Agreement {
    Agreement {
        format: 1,
        id: "northshire".into(),
        title: "Northshire Health and Care Partnership Agreement".into(),
        short_title: None,
        legal_basis: OneOrMany(vec![LegalBasis::S75NhsAct2006]),
        status: Status::Active,
        draft_number: None,
        document_date: None,
        agreement_date: None,
        start_date: None,
        term_years: None,
        end_date: None,
        flexibilities: vec![Flexibility::PooledFund],
        predecessor: None,
        summary: None,
        illustrative_note: None,
        partners: vec![
            partner("council", COUNCIL, PartnerKind::CountyCouncil),
            partner("health", HEALTH, PartnerKind::IntegratedCareBoard),
        ],
        terms: WrittenTerms::default(),
        care_groups: vec![],
        localities,
        commissioning_areas: vec![],
        delegated_functions: vec![],
        funds: vec![fund.clone()],
        other_budgets: vec![],
        transfers: vec![],
        posts: vec![],
        joint_units: vec![],
        bodies: vec![],
        decision_levels: vec![],
        parts: vec![],
        schedules: vec![],
        annual_agreement_elements: vec![],
        budget_timetable: vec![],
        notice: None,
        review: None,
        disputes: None,
        complaints: None,
        liability: None,
        information_sharing: None,
        exit: None,
        approvals: vec![],
        signatures: vec![],
    }
}

fn pro_rata() -> RiskRule {
    RiskRule::ProRata {
        caps: BTreeMap::new(),
        exclude_non_recurrent: false,
    }
}

/// A fund with quarterly contributions for 2024/25 and the given risk share rules.
fn fund(
    kind: FundKind,
    host: Option<&str>,
    contributions: &[(&str, Money)],
    rules: (RiskRule, RiskRule),
) -> Fund {
    Fund {
        id: "bcf".into(),
        name: FUND_NAME.into(),
        kind,
        host: host.map(str::to_string),
        pool_manager: Some(Person {
            name: Some("A. Example".into()),
            title: "Head of Integrated Commissioning".into(),
            roles: vec!["pool-manager".into()],
            phone: None,
            email: None,
            note: None,
            illustrative: false,
        }),
        care_groups: vec![],
        net_of_client_income: false,
        risk_share: Some(RiskShare {
            overspend: Some(rules.0),
            underspend: Some(rules.1),
            note: None,
            illustrative: false,
        }),
        monitoring: None,
        contributions: contributions
            .iter()
            .map(|(p, a)| Contribution {
                partner: p.to_string(),
                year: fy(),
                amount: *a,
                kind: ContributionKind::Cash,
                conditions: None,
                instalments: Some(Instalments::Quarterly),
                recurrent: true,
                note: None,
                illustrative: false,
            })
            .collect(),
        note: None,
        illustrative: false,
    }
}

/// Pooled, hosted by health: council £400,000, health £600,000; pro rata both ways.
fn pooled() -> Fund {
    fund(
        FundKind::Pooled,
        Some("health"),
        &[("council", pounds(400_000)), ("health", pounds(600_000))],
        (pro_rata(), RiskRule::ReturnProRata),
    )
}

fn total(
    p: &str,
    line: &str,
    partner: Option<&str>,
    locality: Option<&str>,
    amount: Money,
) -> TotalsLine {
    TotalsLine {
        fund: "bcf".into(),
        period: period(p),
        service_line: line.into(),
        partner: partner.map(str::to_string),
        locality: locality.map(str::to_string),
        amount,
    }
}

/// Every period to `upto`: Home care £55,000 and Nursing £30,000.
fn year_of_totals(upto: u8) -> Vec<TotalsLine> {
    (1..=upto)
        .flat_map(|n| {
            let p = format!("2024/25-P{n:02}");
            [
                total(&p, "Home care", None, None, pounds(55_000)),
                total(&p, "Nursing", None, None, pounds(30_000)),
            ]
        })
        .collect()
}

fn context<'a>(agreement: &'a Agreement, fund: &'a Fund) -> Context<'a> {
    Context {
        agreement,
        fund,
        prepared_at: "2026-12-01 18:40 UTC".into(),
        prepared_by: "Pool manager".into(),
    }
}

fn table<'r>(report: &'r Report, name: &str) -> &'r Table {
    report
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .find_map(|b| match b {
            Block::Table(t) if t.name == name => Some(t),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no table '{name}'"))
}

fn money(cell: &Cell) -> Money {
    match cell {
        Cell::Money(m) => *m,
        other => panic!("expected money, found {other:?}"),
    }
}

fn text(cell: &Cell) -> &str {
    match cell {
        Cell::Text(t) => t,
        other => panic!("expected text, found {other:?}"),
    }
}

/// The sum of a money column's data rows.
fn column_sum(t: &Table, column: usize) -> Money {
    Money::checked_sum(t.rows.iter().map(|r| money(&r[column]))).unwrap()
}

fn total_cell(t: &Table, column: usize) -> Money {
    money(&t.total_row.as_ref().expect("a total row")[column])
}

/// Every paragraph and note, one per line.
fn words(report: &Report) -> String {
    let mut out = String::new();
    for block in report.sections.iter().flat_map(|s| &s.blocks) {
        match block {
            Block::Paragraph(p) => out.push_str(p),
            Block::Notes(notes) => out.push_str(&notes.join("\n")),
            _ => continue,
        }
        out.push('\n');
    }
    out
}

fn csv_file(report: &Report, name: &str) -> String {
    let files = render_csv(report).unwrap();
    let (_, bytes) = files
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no CSV file '{name}'"));
    String::from_utf8(bytes).unwrap()
}

fn sheet_names(report: &Report) -> Vec<String> {
    let bytes = render_xlsx(report).unwrap();
    let book: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    book.sheet_names()
}

/// The core crate's Q2 statement: run rate to P06 forecasts £1,020,000 against £1,000,000,
/// an overspend of £20,000 shared 40:60 (council £8,000, health £12,000); health has paid
/// £150,000 of the £300,000 due to date; a £100,000 quarterly transfer has £25,000 due in P04.
fn q2_report() -> Report {
    let f = pooled();
    let a = agreement(&f, vec![]);
    let budgets = vec![
        BudgetLine::even("bcf", fy(), "Home care", None, None, pounds(640_000)),
        BudgetLine::even("bcf", fy(), "Nursing", None, None, pounds(360_000)),
    ];
    let totals = year_of_totals(6);
    let transfers = vec![Transfer {
        id: "dfg".into(),
        from: "health".into(),
        to: "council".into(),
        basis: TransferBasis::S256,
        amount: pounds(100_000),
        year: Some(fy()),
        purpose: None,
        conditions: None,
        via: None,
        instalments: Some(Instalments::Quarterly),
        approximate: false,
        note: None,
        illustrative: false,
    }];
    let received: BTreeMap<String, Money> = [
        ("council".to_string(), pounds(200_000)),
        ("health".to_string(), pounds(150_000)),
    ]
    .into_iter()
    .collect();
    let q2: Quarter = "2024/25-Q2".parse().unwrap();
    let s = quarterly_statement(&QuarterlyInput {
        fund: &f,
        quarter: q2,
        totals: &totals,
        budgets: &budgets,
        commitments: &[],
        overrides: &[],
        method: ForecastMethod::RunRate,
        transfers: &transfers,
        received_to_date: Some(&received),
        other_pools_underspend: Money::ZERO,
    })
    .unwrap();
    quarterly_report(&context(&a, &f), &s)
}

#[test]
fn quarterly_report_adds_up_and_names_the_partners() {
    let r = q2_report();
    r.check().unwrap();
    assert_eq!(r.title, "Pooled fund quarterly statement, 2024/25-Q2");
    assert_eq!(r.meta_value("Host partner"), Some(HEALTH));
    assert_eq!(
        r.meta_value("Pool manager"),
        Some("A. Example, Head of Integrated Commissioning")
    );
    assert_eq!(
        r.meta_value("Fund"),
        Some("Northshire Better Care Fund (bcf)")
    );
    assert_eq!(r.meta_value("Prepared at"), Some("2026-12-01 18:40 UTC"));

    // Contributions: names, not ids; each total is the sum of its column.
    let c = table(&r, "Contributions");
    let partners: Vec<&str> = c.rows.iter().map(|row| text(&row[0])).collect();
    assert_eq!(partners, [COUNCIL, HEALTH]);
    for column in 1..=4 {
        assert_eq!(
            total_cell(c, column),
            column_sum(c, column),
            "column {column}"
        );
    }
    assert_eq!(total_cell(c, 1), pounds(1_000_000));
    assert_eq!(total_cell(c, 3), pounds(350_000));
    assert_eq!(money(&c.rows[1][4]), pounds(150_000));
    assert!(words(&r).contains(&format!("{HEALTH} has £150,000.00 of its contributions")));

    // Monitoring: Home care +£20,000 (3.13%, red), the fund +£20,000 (2.00%, amber).
    let m = table(&r, "Monitoring by service line");
    assert_eq!(text(&m.rows[0][0]), "Home care");
    assert_eq!(money(&m.rows[0][6]), pounds(20_000));
    assert_eq!(m.rows[0][7], Cell::Percent(Percent::from_basis_points(313)));
    assert_eq!(m.rows[0][8], Cell::Rag(concordat_report::Rag::Red));
    assert_eq!(total_cell(m, 6), column_sum(m, 6));
    let totals = m.total_row.as_ref().unwrap();
    assert_eq!(totals[8], Cell::Rag(concordat_report::Rag::Amber));

    // Exposure: the partners' shares add up to the forecast variance.
    let e = table(&r, "Risk share exposure");
    assert_eq!(e.rows.len(), 2, "nothing falls outside the partners");
    assert_eq!(column_sum(e, 1), total_cell(e, 1));
    assert_eq!(total_cell(e, 1), pounds(20_000));
    assert_eq!(money(&e.rows[0][1]), pounds(8_000));
    assert!(words(&r).contains("risk share for an overspend: pro rata to contributions."));

    // Transfers: the 1 July instalment.
    let t = table(&r, "Transfers due");
    assert_eq!(t.rows.len(), 1);
    assert_eq!(text(&t.rows[0][1]), HEALTH);
    assert_eq!(text(&t.rows[0][5]), "P04");
    assert_eq!(total_cell(t, 6), pounds(25_000));

    // The charts: three cumulative lines over P01–P12, and one bar per partner.
    let charts: Vec<_> = r
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .filter_map(|b| match b {
            Block::Chart(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(charts.len(), 2);
    assert_eq!(
        charts[0].title,
        "Budget, actual and forecast, cumulative, P01–P12"
    );
    let ChartData::Periods { periods, series } = &charts[0].data else {
        panic!("a period chart");
    };
    assert_eq!(periods.first().map(String::as_str), Some("P01"));
    assert_eq!(periods.len(), 12);
    assert_eq!(series.len(), 3);
    assert!(series.iter().all(|s| s.style == SeriesStyle::Line));
    assert_eq!(series[1].values[5], Some(pounds(510_000)));
    assert_eq!(series[1].values[6], None);
    assert_eq!(series[2].values[11], Some(pounds(1_020_000)));
    let ChartData::PartnerBars { bars, .. } = &charts[1].data else {
        panic!("a partner chart");
    };
    assert_eq!(bars[1].partner, HEALTH);
    assert_eq!(bars[1].amount, pounds(12_000));

    assert!(words(&r).contains("These are Concordat's defaults"));
    assert!(words(&r).contains("run rate"));
}

#[test]
fn quarterly_report_renders_to_csv_and_excel() {
    let r = q2_report();
    let contributions = csv_file(&r, "Contributions.csv");
    assert!(
        contributions.contains(&format!(
            "data,{HEALTH},600000.00,300000.00,150000.00,150000.00\n"
        )),
        "{contributions}"
    );
    assert!(contributions.contains("total,Total,1000000.00,500000.00,350000.00,150000.00\n"));
    let chart = csv_file(&r, "Budget actual and forecast.csv");
    assert!(chart.starts_with("row_type,period,budget,actual,forecast\n"));
    assert!(chart.contains("data,P07,"), "{chart}");
    let sheets = sheet_names(&r);
    for name in [
        "Cover",
        "Contributions",
        "Monitoring by service line",
        "Risk share exposure",
        "Exposure by partner",
    ] {
        assert!(sheets.iter().any(|s| s == name), "{name} in {sheets:?}");
    }
}

#[test]
fn memorandum_report_shows_the_deficit_and_who_owes_whom() {
    // Income £1,000,000 + £5,000 client contributions; spend £1,020,000: a deficit of
    // £15,000, shared 40:60 (council £6,000, health £9,000). Contributions were paid in full,
    // so the council owes the host its £6,000.
    let f = pooled();
    let a = agreement(&f, vec![]);
    let totals = year_of_totals(12);
    let m = memorandum(&MemorandumInput {
        fund: &f,
        year: fy(),
        totals: &totals,
        other_income: vec![IncomeLine {
            description: "Client contributions".into(),
            amount: pounds(5_000),
        }],
        received: None,
        other_pools_underspend: Money::ZERO,
    })
    .unwrap();
    let r = memorandum_report(&context(&a, &f), &m);
    r.check().unwrap();
    assert_eq!(
        r.title,
        "Memorandum account, Northshire Better Care Fund, 2024/25"
    );

    let income = table(&r, "Income");
    assert_eq!(
        text(&income.rows[0][0]),
        format!("Contribution from {COUNCIL}")
    );
    assert_eq!(column_sum(income, 1), total_cell(income, 1));
    assert_eq!(total_cell(income, 1), pounds(1_005_000));
    let spend = table(&r, "Expenditure");
    assert_eq!(column_sum(spend, 1), pounds(1_020_000));
    assert_eq!(total_cell(spend, 1), pounds(1_020_000));
    let result = table(&r, "Result for the year");
    assert_eq!(total_cell(result, 1), pounds(-15_000));

    let d = table(&r, "Risk share distribution");
    assert_eq!(column_sum(d, 1), pounds(15_000));
    assert_eq!(total_cell(d, 1), pounds(15_000));

    let s = table(&r, "Settlement");
    assert_eq!(text(&s.rows[0][0]), COUNCIL);
    assert_eq!(text(&s.rows[1][0]), format!("{HEALTH} (host)"));
    assert_eq!(text(&s.rows[0][5]), "owes host");
    let host = table(&r, "Host debtors and creditors");
    assert_eq!(host.rows.len(), 1);
    assert_eq!(money(&host.rows[0][1]), pounds(6_000));
    assert_eq!(total_cell(host, 3), pounds(6_000));
    let w = words(&r);
    assert!(
        w.contains(&format!("{COUNCIL} owes the host £6,000.00.")),
        "{w}"
    );
    assert!(w.contains("leaves a deficit of £15,000.00"), "{w}");

    let accounts = table(&r, "Partner accounts");
    assert_eq!(total_cell(accounts, 2), pounds(1_020_000));
    assert_eq!(column_sum(accounts, 2), pounds(1_020_000));
    assert!(w.contains("in proportion to contributions for the year"));

    let csv = csv_file(&r, "Partner accounts.csv");
    assert!(
        csv.contains(&format!("data,{COUNCIL},400000.00,408000.00,-6000.00\n")),
        "{csv}"
    );
    assert!(csv_file(&r, "Result for the year.csv").contains("total,Deficit,-15000.00\n"));
    assert!(
        sheet_names(&r)
            .iter()
            .any(|s| s == "Host debtors and creditors")
    );
}

#[test]
fn settlement_report_says_the_host_owes_a_partner_its_underspend() {
    // Pooled, fixed shares 30:70; spend £900,000 against £1,000,000 paid in full: an
    // underspend of £100,000, of which the council's 30% (£30,000) comes back from the host.
    let f = fund(
        FundKind::Pooled,
        Some("health"),
        &[("council", pounds(400_000)), ("health", pounds(600_000))],
        {
            let shares = RiskRule::FixedShares {
                shares: [
                    ("council".to_string(), Percent::from_basis_points(3_000)),
                    ("health".to_string(), Percent::from_basis_points(7_000)),
                ]
                .into_iter()
                .collect(),
            };
            (shares.clone(), shares)
        },
    );
    let a = agreement(&f, vec![]);
    let s = settle(&SettlementInput {
        fund: &f,
        year: fy(),
        spend: pounds(900_000),
        other_income: Money::ZERO,
        own_spend: BTreeMap::new(),
        received: None,
        other_pools_underspend: Money::ZERO,
    })
    .unwrap();
    let r = settlement_report(&context(&a, &f), &s);
    r.check().unwrap();
    assert_eq!(
        r.title,
        "Year-end settlement, Northshire Better Care Fund, 2024/25"
    );
    let w = words(&r);
    assert!(
        w.contains(&format!("The host owes {COUNCIL} £30,000.00.")),
        "{w}"
    );
    assert!(w.contains("an underspend of £100,000.00"), "{w}");
    // The rule names the partners, not their ids.
    assert!(
        w.contains(&format!("fixed shares ({COUNCIL} 30%, {HEALTH} 70%)")),
        "{w}"
    );
    assert!(!w.contains("council 30%"), "{w}");

    let shares = table(&r, "Risk share");
    assert_eq!(column_sum(shares, 1), pounds(-100_000));
    assert_eq!(total_cell(shares, 1), s.variance);
    let host = table(&r, "Host debtors and creditors");
    assert_eq!(money(&host.rows[0][2]), pounds(30_000));
    assert_eq!(total_cell(host, 3), pounds(-30_000));
    let figures = csv_file(&r, "Settlement figures.csv");
    assert!(
        figures.contains("data,Variance (overspend positive),-100000.00\n"),
        "{figures}"
    );
    assert!(figures.contains("data,Net due to the host from the other partners,-30000.00\n"));
    render_xlsx(&r).unwrap();
}

#[test]
fn settlement_report_for_aligned_budgets_shows_own_spend() {
    // Aligned, council leads: £500,000 each, 50:50. The council spent £530,000 (+£30,000),
    // health £490,000 (−£10,000): +£20,000 in all, £10,000 each, so health owes the lead
    // £20,000.
    let half = Percent::from_basis_points(5_000);
    let shares = RiskRule::FixedShares {
        shares: [("council".to_string(), half), ("health".to_string(), half)]
            .into_iter()
            .collect(),
    };
    let f = fund(
        FundKind::Aligned,
        Some("council"),
        &[("council", pounds(500_000)), ("health", pounds(500_000))],
        (shares.clone(), shares),
    );
    let a = agreement(&f, vec![]);
    let own_spend: BTreeMap<String, Money> = [
        ("council".to_string(), pounds(530_000)),
        ("health".to_string(), pounds(490_000)),
    ]
    .into_iter()
    .collect();
    let s = settle(&SettlementInput {
        fund: &f,
        year: fy(),
        spend: pounds(1_020_000),
        other_income: Money::ZERO,
        own_spend,
        received: None,
        other_pools_underspend: Money::ZERO,
    })
    .unwrap();
    let r = settlement_report(&context(&a, &f), &s);
    r.check().unwrap();
    assert!(
        r.meta_value("Fund kind")
            .unwrap()
            .starts_with("Aligned budgets")
    );
    assert_eq!(r.meta_value("Host partner"), Some(COUNCIL));
    let t = table(&r, "Settlement");
    let headings: Vec<&str> = t.columns.iter().map(|c| c.heading.as_str()).collect();
    assert_eq!(
        headings,
        [
            "Partner",
            "Contribution due",
            "Contribution received",
            "Own spend",
            "Own variance",
            "Risk share",
            "Balance",
            "Position"
        ]
    );
    let health = t.rows.iter().find(|row| text(&row[0]) == HEALTH).unwrap();
    assert_eq!(money(&health[4]), pounds(-10_000));
    assert_eq!(money(&health[6]), pounds(20_000));
    assert_eq!(total_cell(t, 5), pounds(20_000));
    let w = words(&r);
    assert!(
        w.contains(&format!("{HEALTH} owes the host £20,000.00.")),
        "{w}"
    );
    assert!(
        !w.contains("left in the pool"),
        "an aligned fund has no pool: {w}"
    );
    assert!(csv_file(&r, "Settlement.csv").contains("-10000.00"));
}

#[test]
fn monitoring_report_by_partner_with_cross_subsidy_and_ring_fences() {
    // Aligned budgets: Home care is the council's (£120,000, £30,000 to P03), Nursing
    // health's (£240,000, £60,000 to P03). To P03 the council spent £36,000 on Home care in
    // the North (its ring-fenced locality) and £2,000 on health's Nursing in the South;
    // health spent £50,000 on Nursing.
    let f = fund(
        FundKind::Aligned,
        Some("council"),
        &[("council", pounds(120_000)), ("health", pounds(240_000))],
        (pro_rata(), RiskRule::ReturnProRata),
    );
    let localities = vec![
        Locality {
            id: "north".into(),
            name: "North Northshire".into(),
            partners: vec!["council".into()],
            ring_fenced: true,
        },
        Locality {
            id: "south".into(),
            name: "South Northshire".into(),
            partners: vec![],
            ring_fenced: false,
        },
    ];
    let a = agreement(&f, localities.clone());
    let budgets = vec![
        BudgetLine::even(
            "bcf",
            fy(),
            "Home care",
            Some("council"),
            None,
            pounds(120_000),
        ),
        BudgetLine::even(
            "bcf",
            fy(),
            "Nursing",
            Some("health"),
            None,
            pounds(240_000),
        ),
    ];
    let mut totals: Vec<TotalsLine> = (1..=3)
        .map(|n| {
            total(
                &format!("2024/25-P{n:02}"),
                "Home care",
                Some("council"),
                Some("north"),
                pounds(12_000),
            )
        })
        .collect();
    totals.push(total(
        "2024/25-P02",
        "Nursing",
        Some("council"),
        Some("south"),
        pounds(2_000),
    ));
    totals.push(total(
        "2024/25-P03",
        "Nursing",
        Some("health"),
        None,
        pounds(50_000),
    ));
    let input = MonitorInput {
        fund: &f,
        as_at: period("2024/25-P03"),
        totals: &totals,
        budgets: &budgets,
        commitments: &[],
        overrides: &[],
        method: ForecastMethod::RunRate,
    };
    let m = monitor(&input, Dimension::Partner).unwrap();
    let e = in_year_exposure(&input, Money::ZERO).unwrap();
    let c = cross_subsidy(&input).unwrap();
    let breaches = ring_fences(&input, &localities).unwrap();
    assert_eq!(breaches.len(), 1);
    let ctx = context(&a, &f);

    let r = monitoring_report(&ctx, &m, Some(&e), Some(&c), &breaches);
    r.check().unwrap();
    assert_eq!(
        r.title,
        "Budget monitoring, Northshire Better Care Fund, 2024/25-P03"
    );
    let t = table(&r, "Monitoring by partner");
    let names: Vec<&str> = t.rows.iter().map(|row| text(&row[0])).collect();
    assert_eq!(names, [COUNCIL, HEALTH]);
    // Actual to date: £36,000 + £2,000 + £50,000.
    assert_eq!(total_cell(t, 3), pounds(88_000));
    assert_eq!(column_sum(t, 3), pounds(88_000));
    assert_eq!(column_sum(t, 6), total_cell(t, 6));

    let exposure = table(&r, "Risk share exposure");
    assert_eq!(column_sum(exposure, 1), total_cell(exposure, 1));
    assert_eq!(total_cell(exposure, 1), m.totals.variance);

    let x = table(&r, "Cross-subsidies");
    assert_eq!(
        x.rows[0][..3],
        [
            Cell::text(COUNCIL),
            Cell::text("Nursing"),
            Cell::text(HEALTH)
        ]
    );
    assert_eq!(money(&x.rows[0][3]), pounds(2_000));
    // The council is £6,000 over its own £30,000 while health is £10,000 under its own.
    let o = table(&r, "Own budget overspends");
    assert_eq!(money(&o.rows[0][3]), pounds(6_000));
    assert_eq!(text(&o.rows[0][4]), format!("{HEALTH} (£10,000.00 under)"));
    let b = table(&r, "Ring-fence breaches");
    assert_eq!(
        b.rows[0],
        [
            Cell::text(COUNCIL),
            Cell::text("North Northshire"),
            Cell::text("South Northshire"),
            Cell::text("Nursing"),
            Cell::Money(pounds(2_000)),
        ]
    );
    assert!(csv_file(&r, "Ring-fence breaches.csv").contains("2000.00"));
    render_xlsx(&r).unwrap();

    // With no checks given and no breaches: no cross-subsidy section, and "none found".
    let plain = monitoring_report(&ctx, &m, None, None, &[]);
    plain.check().unwrap();
    assert!(plain.sections.iter().all(|s| s.heading != "Cross-subsidy"));
    assert!(words(&plain).contains("Ring-fence check to the end of P03: none found."));
    render_xlsx(&plain).unwrap();
}
