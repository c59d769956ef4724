//! The core crate's figures as reports a partner's finance officer reads: the pool manager's
//! quarterly statement, the year-end memorandum account, the year-end settlement and a
//! budget monitoring report.
//!
//! Every table shows partners by name (from the agreement's `partners`), never by id, and
//! every amount is a money cell, so the CSV, Excel and PDF forms carry exact figures. Nothing
//! here works a figure out afresh: the totals come from the core crate, and where a table adds
//! a total row it is the sum of the cells above it.
//!
//! Signs follow the core crate. A variance is forecast (or actual) spend less budget (or
//! contributions): positive is an overspend. A partner's share of a variance is positive when
//! it bears an overspend and negative when an underspend is returned to it. A settlement
//! balance is positive when the partner owes the host.

use concordat_core::agreement::{Agreement, Fund, FundKind, Person};
use concordat_core::monitor::{
    self, CrossSubsidyReport, Dimension, Exposure, ForecastBasis, ForecastMethod, MonitorRow,
    Monitoring, NONE_KEY, RingFenceBreach, Thresholds,
};
use concordat_core::risk_share::RiskContext;
use concordat_core::statement::{
    Memorandum, Position, QuarterlyStatement, Settlement, SettlementLine,
};
use concordat_core::{FinancialYear, Money, Percent, Period};
use jiff::civil::Date;

use crate::{
    Block, Cell, Chart, ChartData, Column, ColumnKind, PartnerBar, Rag, Report, Section, Series,
    SeriesStyle, Table, percent_number,
};

/// Who the report is for and who made it: the agreement (for partner names and the
/// partnership's title), the fund, and when and by whom the report was prepared.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub agreement: &'a Agreement,
    pub fund: &'a Fund,
    /// When the report was prepared, as it should be printed, e.g. "2026-12-01 18:40 UTC".
    pub prepared_at: String,
    pub prepared_by: String,
}

/// The pool manager's quarterly statement to the partners: contributions, monitoring by
/// service line, each partner's exposure under the risk share, transfers due in the quarter
/// and the cumulative budget / actual / forecast chart.
pub fn quarterly_report(ctx: &Context<'_>, s: &QuarterlyStatement) -> Report {
    let year = s.quarter.year();
    let [first, _, last] = s.quarter.periods();
    let kind = match ctx.fund.kind {
        FundKind::Pooled => "Pooled fund",
        FundKind::Aligned => "Aligned budgets",
    };
    let when = vec![
        ("Financial year".to_string(), year.to_string()),
        (
            "Quarter".to_string(),
            format!("{} ({}–{})", s.quarter, short(first), short(last)),
        ),
        ("Figures to".to_string(), end_of(s.as_at)),
    ];

    let totals = &s.monitoring.totals;
    let mut summary = vec![Block::Paragraph(outturn_sentence(totals, s.as_at))];
    summary.push(Block::Chart(cumulative_chart(s)));

    let contributions = Section {
        heading: "Contributions".into(),
        blocks: vec![
            Block::Table(ctx.contributions_table(s)),
            Block::Paragraph(ctx.arrears_paragraph(s)),
        ],
    };

    let monitoring = Section {
        heading: "Monitoring by service line".into(),
        blocks: vec![Block::Table(
            ctx.monitoring_table("Monitoring by service line", &s.monitoring),
        )],
    };

    let mut risk = vec![Block::Paragraph(
        ctx.exposure_paragraph(&s.exposure, "The forecast outturn"),
    )];
    risk.push(Block::Table(ctx.exposure_table(
        "Risk share exposure",
        format!("Each partner's share of the forecast variance for {year} under the risk share"),
        &s.exposure,
    )));
    if let Some(chart) = ctx.exposure_chart(&s.exposure) {
        risk.push(Block::Chart(chart));
    }
    risk.push(Block::Notes(vec![exposure_sign_note()]));

    let transfers = Section {
        heading: "Transfers due in the quarter".into(),
        blocks: ctx.transfers_blocks(s),
    };

    let mut notes = vec![thresholds_note(&s.monitoring.thresholds)];
    notes.push(method_note(s.monitoring.method));
    notes.extend(override_notes(ctx, &s.monitoring));
    notes.push(
        "Contributions are due on their instalment dates in the agreement (1 April where it \
         gives none); due to date counts every instalment due by the end of the quarter."
            .into(),
    );

    Report {
        title: format!("{kind} quarterly statement, {}", s.quarter),
        subtitle: Some(format!(
            "{}: figures to the end of {} ({})",
            ctx.fund.name,
            short(s.as_at),
            long_date(s.as_at.last_day())
        )),
        meta: ctx.meta(year, when),
        sections: vec![
            Section {
                heading: "Summary".into(),
                blocks: summary,
            },
            contributions,
            monitoring,
            Section {
                heading: "Risk share".into(),
                blocks: risk,
            },
            transfers,
            Section {
                heading: "Notes".into(),
                blocks: vec![Block::Notes(notes)],
            },
        ],
    }
}

/// The year-end memorandum account (annual return): income, expenditure, the surplus or
/// deficit and its distribution under the risk share, the settlement with the debtor and
/// creditor position between the host and each partner, and the figures each partner needs
/// for its own accounts.
pub fn memorandum_report(ctx: &Context<'_>, m: &Memorandum) -> Report {
    let year = m.year;
    let s = &m.settlement;

    let mut income_rows: Vec<Vec<Cell>> = m
        .contributions
        .iter()
        .map(|c| {
            vec![
                Cell::Text(format!(
                    "Contribution from {}",
                    ctx.partner_name(&c.description)
                )),
                Cell::Money(c.amount),
            ]
        })
        .collect();
    income_rows.extend(
        m.other_income
            .iter()
            .map(|i| vec![Cell::Text(i.description.clone()), Cell::Money(i.amount)]),
    );
    let income = Table {
        name: "Income".into(),
        caption: format!("Income of the fund for {year}: partners' contributions and other income"),
        columns: vec![
            Column::new("Income", ColumnKind::Text),
            Column::new("Amount", ColumnKind::Money),
        ],
        rows: income_rows,
        total_row: Some(vec![
            Cell::text("Total income"),
            Cell::Money(m.total_income),
        ]),
    };
    let expenditure = Table {
        name: "Expenditure".into(),
        caption: format!("Expenditure of the fund for {year} by service line"),
        columns: vec![
            Column::new("Service line", ColumnKind::Text),
            Column::new("Amount", ColumnKind::Money),
        ],
        rows: m
            .expenditure
            .iter()
            .map(|e| vec![Cell::Text(e.service_line.clone()), Cell::Money(e.amount)])
            .collect(),
        total_row: Some(vec![
            Cell::text("Total expenditure"),
            Cell::Money(m.total_expenditure),
        ]),
    };
    let result = Table {
        name: "Result for the year".into(),
        caption: format!("Surplus (positive) or deficit (negative) for {year}"),
        columns: vec![
            Column::new("Item", ColumnKind::Text),
            Column::new("Amount", ColumnKind::Money),
        ],
        rows: vec![
            vec![Cell::text("Total income"), Cell::Money(m.total_income)],
            vec![
                Cell::text("Total expenditure"),
                Cell::Money(m.total_expenditure),
            ],
        ],
        total_row: Some(vec![
            Cell::text(surplus_label(m.surplus)),
            Cell::Money(m.surplus),
        ]),
    };
    let result_words = format!(
        "Total income of {} less total expenditure of {} leaves {} for {year}.",
        m.total_income,
        m.total_expenditure,
        surplus_words(m.surplus)
    );

    let distribution = Section {
        heading: "Distribution under the risk share".into(),
        blocks: vec![
            Block::Paragraph(ctx.exposure_paragraph(
                &m.distribution,
                &format!("The {}", surplus_label(m.surplus).to_lowercase()),
            )),
            Block::Table(ctx.exposure_table(
                "Risk share distribution",
                format!("The {year} surplus or deficit shared under the risk share"),
                &m.distribution,
            )),
            Block::Notes(vec![exposure_sign_note()]),
        ],
    };

    let mut settlement = vec![Block::Table(ctx.settlement_table(s))];
    settlement.push(Block::Table(ctx.host_position_table(s)));
    settlement.push(Block::Paragraph(ctx.settlement_words(s).join(" ")));

    let accounts = Table {
        name: "Partner accounts".into(),
        caption: format!("Figures for each partner's own accounts, {year}"),
        columns: vec![
            Column::new("Partner", ColumnKind::Text),
            Column::new("Contribution", ColumnKind::Money),
            Column::new("Share of gross expenditure", ColumnKind::Money),
            Column::new("Share of surplus or deficit", ColumnKind::Money),
        ],
        rows: m
            .partner_accounts
            .iter()
            .map(|a| {
                vec![
                    Cell::Text(ctx.partner_name(&a.partner)),
                    Cell::Money(a.contribution),
                    Cell::Money(a.share_of_gross_expenditure),
                    Cell::Money(a.share_of_surplus),
                ]
            })
            .collect(),
        total_row: Some(vec![
            Cell::text("Total"),
            sum_cell(m.partner_accounts.iter().map(|a| a.contribution)),
            sum_cell(
                m.partner_accounts
                    .iter()
                    .map(|a| a.share_of_gross_expenditure),
            ),
            sum_cell(m.partner_accounts.iter().map(|a| a.share_of_surplus)),
        ]),
    };

    Report {
        title: format!("Memorandum account, {}, {year}", ctx.fund.name),
        subtitle: Some(format!(
            "Annual return for the financial year {year} ({} to {})",
            long_date(year.first_day()),
            long_date(year.last_day())
        )),
        meta: ctx.meta(year, vec![("Financial year".into(), year.to_string())]),
        sections: vec![
            Section {
                heading: "Income and expenditure".into(),
                blocks: vec![
                    Block::Table(income),
                    Block::Table(expenditure),
                    Block::Table(result),
                    Block::Paragraph(result_words),
                ],
            },
            distribution,
            Section {
                heading: "Settlement".into(),
                blocks: settlement,
            },
            Section {
                heading: "Partner accounts".into(),
                blocks: vec![
                    Block::Table(accounts),
                    Block::Notes(vec![
                        format!(
                            "Gross expenditure is shared among the partners on this basis: {}.",
                            m.expenditure_basis
                        ),
                        "A partner's share of the surplus is positive; its share of a deficit \
                         is negative."
                            .into(),
                    ]),
                ],
            },
        ],
    }
}

/// The year-end settlement: each partner's line, the variance and the rule that shares it,
/// what passes between the host and each partner, and what is left in the pool.
pub fn settlement_report(ctx: &Context<'_>, s: &Settlement) -> Report {
    let year = s.year;
    let mut figures = vec![
        vec![
            Cell::text("Contributions due"),
            Cell::Money(s.contributions_due),
        ],
        vec![
            Cell::text("Contributions received"),
            Cell::Money(s.contributions_received),
        ],
        vec![Cell::text("Other income"), Cell::Money(s.other_income)],
        vec![Cell::text("Expenditure"), Cell::Money(s.spend)],
        vec![
            Cell::text("Variance (overspend positive)"),
            Cell::Money(s.variance),
        ],
        vec![
            Cell::text("Net due to the host from the other partners"),
            Cell::Money(s.due_to_host),
        ],
    ];
    if s.kind == FundKind::Pooled {
        figures.push(vec![
            Cell::text("Left in the pool after settlement"),
            Cell::Money(s.pool_balance_after),
        ]);
    }
    let figures = Table {
        name: "Settlement figures".into(),
        caption: format!("The fund's figures for {year}"),
        columns: vec![
            Column::new("Item", ColumnKind::Text),
            Column::new("Amount", ColumnKind::Money),
        ],
        rows: figures,
        total_row: None,
    };
    let summary = format!(
        "Expenditure of {} less other income of {} and contributions due of {} gives {} for {year}.",
        s.spend,
        s.other_income,
        s.contributions_due,
        variance_words(s.variance)
    );

    Report {
        title: format!("Year-end settlement, {}, {year}", ctx.fund.name),
        subtitle: Some(format!(
            "Who owes whom once the {year} variance is shared under the risk share"
        )),
        meta: ctx.meta(year, vec![("Financial year".into(), year.to_string())]),
        sections: vec![
            Section {
                heading: "Summary".into(),
                blocks: vec![
                    Block::Paragraph(summary),
                    Block::Table(figures),
                    Block::Paragraph(ctx.settlement_words(s).join(" ")),
                ],
            },
            Section {
                heading: "Risk share".into(),
                blocks: vec![
                    Block::Paragraph(ctx.exposure_paragraph(&s.risk_share, "The variance")),
                    Block::Table(ctx.exposure_table(
                        "Risk share",
                        format!("The {year} variance shared under the risk share"),
                        &s.risk_share,
                    )),
                    Block::Notes(vec![exposure_sign_note()]),
                ],
            },
            Section {
                heading: "Settlement by partner".into(),
                blocks: vec![
                    Block::Table(ctx.settlement_table(s)),
                    Block::Table(ctx.host_position_table(s)),
                    Block::Notes(vec![settlement_sign_note(s.kind)]),
                ],
            },
        ],
    }
}

/// A budget monitoring report: the rows with their total, and where given each partner's
/// exposure, the cross-subsidy checks and the ring-fence check (an empty `ring_fences` is
/// reported as "none found").
pub fn monitoring_report(
    ctx: &Context<'_>,
    m: &Monitoring,
    exposure: Option<&Exposure>,
    cross_subsidy: Option<&CrossSubsidyReport>,
    ring_fences: &[RingFenceBreach],
) -> Report {
    let year = m.as_at.year();
    let by = match m.by {
        Dimension::ServiceLine => "service line",
        Dimension::Partner => "partner",
        Dimension::Locality => "locality",
        Dimension::Fund => "fund",
    };
    let table_name = match m.by {
        Dimension::Fund => "Monitoring for the fund".to_string(),
        _ => format!("Monitoring by {by}"),
    };
    let mut sections = vec![
        Section {
            heading: "Summary".into(),
            blocks: vec![Block::Paragraph(outturn_sentence(&m.totals, m.as_at))],
        },
        Section {
            heading: format!("Monitoring by {by}"),
            blocks: vec![Block::Table(ctx.monitoring_table(&table_name, m))],
        },
    ];

    if let Some(e) = exposure {
        let mut blocks = vec![Block::Paragraph(
            ctx.exposure_paragraph(e, "The forecast outturn"),
        )];
        blocks.push(Block::Table(ctx.exposure_table(
            "Risk share exposure",
            format!("Each partner's share of the forecast variance for {year}"),
            e,
        )));
        if let Some(chart) = ctx.exposure_chart(e) {
            blocks.push(Block::Chart(chart));
        }
        blocks.push(Block::Notes(vec![exposure_sign_note()]));
        sections.push(Section {
            heading: "Risk share exposure".into(),
            blocks,
        });
    }

    if let Some(c) = cross_subsidy {
        sections.push(Section {
            heading: "Cross-subsidy".into(),
            blocks: ctx.cross_subsidy_blocks(c, m.as_at),
        });
    }

    sections.push(Section {
        heading: "Ring fences".into(),
        blocks: ctx.ring_fence_blocks(ring_fences, m.as_at),
    });

    let mut notes = vec![thresholds_note(&m.thresholds), method_note(m.method)];
    notes.extend(override_notes(ctx, m));
    sections.push(Section {
        heading: "Notes".into(),
        blocks: vec![Block::Notes(notes)],
    });

    Report {
        title: format!("Budget monitoring, {}, {}", ctx.fund.name, m.as_at),
        subtitle: Some(format!(
            "By {by}, figures to the end of {} ({}); forecast by {}",
            short(m.as_at),
            long_date(m.as_at.last_day()),
            method_label(m.method)
        )),
        meta: ctx.meta(
            year,
            vec![
                ("Financial year".into(), year.to_string()),
                ("Period".into(), m.as_at.to_string()),
                ("Figures to".into(), end_of(m.as_at)),
            ],
        ),
        sections,
    }
}

impl Context<'_> {
    /// A partner's name from the agreement; its id where the agreement does not list it.
    fn partner_name(&self, id: &str) -> String {
        self.agreement
            .partner(id)
            .map_or_else(|| id.to_string(), |p| p.name.clone())
    }

    fn locality_name(&self, id: &str) -> String {
        self.agreement
            .localities
            .iter()
            .find(|l| l.id == id)
            .map_or_else(|| id.to_string(), |l| l.name.clone())
    }

    /// The title block: partnership, fund, kind, host, pool manager, then `when`, then who
    /// prepared the report and when.
    fn meta(&self, year: FinancialYear, when: Vec<(String, String)>) -> Vec<(String, String)> {
        let fund = self.fund;
        let mut meta = vec![
            ("Partnership".to_string(), self.agreement.title.clone()),
            ("Fund".to_string(), format!("{} ({})", fund.name, fund.id)),
            (
                "Fund kind".to_string(),
                match fund.kind {
                    FundKind::Pooled => "Pooled fund".to_string(),
                    FundKind::Aligned => {
                        "Aligned budgets (each partner's budget stays its own)".to_string()
                    }
                },
            ),
        ];
        let host = match &fund.host {
            Some(id) => self.partner_name(id),
            None => match RiskContext::for_fund(fund, year).ok().and_then(|c| c.host) {
                Some(id) => format!(
                    "{} (the largest contributor for {year}: the agreement names no host)",
                    self.partner_name(&id)
                ),
                None => "None named in the agreement".to_string(),
            },
        };
        meta.push(("Host partner".to_string(), host));
        if let Some(person) = &fund.pool_manager {
            meta.push(("Pool manager".to_string(), person_text(person)));
        }
        meta.extend(when);
        meta.push(("Prepared at".to_string(), self.prepared_at.clone()));
        meta.push(("Prepared by".to_string(), self.prepared_by.clone()));
        meta
    }

    /// The rule text with partner ids in fixed shares ("fixed shares (council 30%, ...)")
    /// replaced by partner names.
    fn rule_with_names(&self, rule: &str) -> String {
        const FIXED: &str = "fixed shares (";
        let mut out = String::with_capacity(rule.len());
        let mut rest = rule;
        while let Some(i) = rest.find(FIXED) {
            let start = i + FIXED.len();
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let Some(end) = after.find(')') else {
                rest = after;
                break;
            };
            let named: Vec<String> = after[..end]
                .split(", ")
                .map(|item| match item.rsplit_once(' ') {
                    Some((id, share)) => format!("{} {share}", self.partner_name(id)),
                    None => item.to_string(),
                })
                .collect();
            out.push_str(&named.join(", "));
            rest = &after[end..];
        }
        out.push_str(rest);
        out
    }

    fn row_label(&self, by: Dimension, key: &str) -> String {
        match by {
            Dimension::ServiceLine => key.to_string(),
            Dimension::Partner if key == NONE_KEY => "No partner of origin named".into(),
            Dimension::Partner => self.partner_name(key),
            Dimension::Locality if key == NONE_KEY => "No locality named".into(),
            Dimension::Locality => self.locality_name(key),
            Dimension::Fund if key == self.fund.id => self.fund.name.clone(),
            Dimension::Fund => key.to_string(),
        }
    }

    fn contributions_table(&self, s: &QuarterlyStatement) -> Table {
        let c = &s.contributions;
        Table {
            name: "Contributions".into(),
            caption: format!(
                "Partners' contributions for {}: due for the year, and due and received to the \
                 end of {}",
                s.quarter.year(),
                short(s.as_at)
            ),
            columns: vec![
                Column::new("Partner", ColumnKind::Text),
                Column::new("Due for year", ColumnKind::Money),
                Column::new("Due to date", ColumnKind::Money),
                Column::new("Received", ColumnKind::Money),
                Column::new("Outstanding", ColumnKind::Money),
            ],
            rows: c
                .iter()
                .map(|p| {
                    vec![
                        Cell::Text(self.partner_name(&p.partner)),
                        Cell::Money(p.due_for_year),
                        Cell::Money(p.due_to_date),
                        Cell::Money(p.received),
                        Cell::Money(p.outstanding),
                    ]
                })
                .collect(),
            total_row: Some(vec![
                Cell::text("Total"),
                sum_cell(c.iter().map(|p| p.due_for_year)),
                sum_cell(c.iter().map(|p| p.due_to_date)),
                sum_cell(c.iter().map(|p| p.received)),
                sum_cell(c.iter().map(|p| p.outstanding)),
            ]),
        }
    }

    fn arrears_paragraph(&self, s: &QuarterlyStatement) -> String {
        let mut parts = Vec::new();
        for p in &s.contributions {
            let name = self.partner_name(&p.partner);
            match p.outstanding.pence().signum() {
                1 => parts.push(format!(
                    "{name} has {} of its contributions due to date still to pay.",
                    p.outstanding
                )),
                -1 => parts.push(format!(
                    "{name} has paid {} ahead of its instalments.",
                    magnitude(p.outstanding)
                )),
                _ => {}
            }
        }
        if parts.is_empty() {
            "Every partner has paid the contributions due to date.".into()
        } else {
            parts.join(" ")
        }
    }

    fn monitoring_table(&self, name: &str, m: &Monitoring) -> Table {
        let key_heading = match m.by {
            Dimension::ServiceLine => "Service line",
            Dimension::Partner => "Partner",
            Dimension::Locality => "Locality",
            Dimension::Fund => "Fund",
        };
        let row = |label: String, r: &MonitorRow| {
            vec![
                Cell::Text(label),
                Cell::Money(r.annual_budget),
                Cell::Money(r.budget_to_date),
                Cell::Money(r.actual_to_date),
                Cell::Money(r.commitments),
                Cell::Money(r.forecast_outturn),
                Cell::Money(r.variance),
                r.variance_basis_points.map_or(Cell::text("n/a"), |bp| {
                    Cell::Percent(Percent::from_basis_points(bp))
                }),
                Cell::Rag(rag(r.rag)),
                Cell::text(basis_label(r.forecast_basis)),
            ]
        };
        Table {
            name: name.into(),
            caption: format!(
                "Budget, actual and forecast outturn for {} by {}, to the end of {}",
                m.as_at.year(),
                key_heading.to_lowercase(),
                short(m.as_at)
            ),
            columns: vec![
                Column::new(key_heading, ColumnKind::Text),
                Column::new("Annual budget", ColumnKind::Money),
                Column::new("Budget to date", ColumnKind::Money),
                Column::new("Actual to date", ColumnKind::Money),
                Column::new("Commitments", ColumnKind::Money),
                Column::new("Forecast outturn", ColumnKind::Money),
                Column::new("Variance", ColumnKind::Money),
                Column::new("Variance %", ColumnKind::Percent),
                Column::new("RAG", ColumnKind::Rag),
                Column::new("Forecast basis", ColumnKind::Text),
            ],
            rows: m
                .rows
                .iter()
                .map(|r| row(self.row_label(m.by, &r.key), r))
                .collect(),
            total_row: Some(row("Total".into(), &m.totals)),
        }
    }

    /// Each partner's share of `e`, then what falls elsewhere; the total is the variance.
    fn exposure_table(&self, name: &str, caption: String, e: &Exposure) -> Table {
        let mut rows: Vec<Vec<Cell>> = e
            .partners
            .iter()
            .map(|p| {
                vec![
                    Cell::Text(self.partner_name(&p.partner)),
                    Cell::Money(p.amount),
                ]
            })
            .collect();
        for (label, amount) in other_parts(e) {
            rows.push(vec![Cell::text(label), Cell::Money(amount)]);
        }
        Table {
            name: name.into(),
            caption,
            columns: vec![
                Column::new("Falls to", ColumnKind::Text),
                Column::new("Share of variance", ColumnKind::Money),
            ],
            rows,
            total_row: Some(vec![Cell::text("Total variance"), Cell::Money(e.variance)]),
        }
    }

    fn exposure_chart(&self, e: &Exposure) -> Option<Chart> {
        if e.partners.is_empty() {
            return None;
        }
        Some(Chart {
            name: "Exposure by partner".into(),
            title: format!(
                "Each partner's share of the forecast {}",
                variance_noun(e.variance)
            ),
            data: ChartData::PartnerBars {
                value_label: "Share of forecast variance".into(),
                bars: e
                    .partners
                    .iter()
                    .map(|p| PartnerBar {
                        partner: self.partner_name(&p.partner),
                        amount: p.amount,
                    })
                    .collect(),
            },
        })
    }

    /// What the variance is, the rule that shares it and where it falls, in words.
    /// `subject` names the variance: "The forecast outturn", "The deficit".
    fn exposure_paragraph(&self, e: &Exposure, subject: &str) -> String {
        let v = e.variance;
        if v == Money::ZERO {
            return format!("{subject} shows no variance, so there is nothing to share.");
        }
        let noun = variance_noun(v);
        let mut text = format!("{subject} is {}. ", variance_words(v));
        match e.rule.as_str() {
            "no risk share in the agreement" => {
                text.push_str(
                    "The agreement has no risk share for this fund, so none of it is allocated \
                     to the partners.",
                );
                return text;
            }
            "no rule for this variance" => {
                text.push_str(&format!(
                    "The risk share sets no rule for an {noun}, so none of it is allocated to \
                     the partners."
                ));
                return text;
            }
            rule => text.push_str(&format!(
                "The agreement's risk share for an {noun}: {}.",
                self.rule_with_names(rule)
            )),
        }
        let mut parts: Vec<String> = e
            .partners
            .iter()
            .map(|p| format!("{} {}", self.partner_name(&p.partner), p.amount))
            .collect();
        parts.extend(
            other_parts(e)
                .into_iter()
                .map(|(label, amount)| format!("{} {amount}", label.to_lowercase())),
        );
        if !parts.is_empty() {
            text.push_str(&format!(" It falls: {}.", parts.join("; ")));
        }
        text
    }

    fn transfers_blocks(&self, s: &QuarterlyStatement) -> Vec<Block> {
        if s.transfers_due.is_empty() {
            return vec![Block::Paragraph(format!(
                "No funding transfers fall due in {}.",
                s.quarter
            ))];
        }
        let mut rows = Vec::new();
        for t in &s.transfers_due {
            for i in &t.instalments {
                rows.push(vec![
                    Cell::Text(t.id.clone()),
                    Cell::Text(self.partner_name(&t.from)),
                    Cell::Text(self.partner_name(&t.to)),
                    Cell::Text(t.basis.clone()),
                    Cell::Date(i.due),
                    Cell::Text(short(i.period)),
                    Cell::Money(i.amount),
                ]);
            }
        }
        let table = Table {
            name: "Transfers due".into(),
            caption: format!("Funding transfers falling due in {}", s.quarter),
            columns: vec![
                Column::new("Transfer", ColumnKind::Text),
                Column::new("From", ColumnKind::Text),
                Column::new("To", ColumnKind::Text),
                Column::new("Basis", ColumnKind::Text),
                Column::new("Due date", ColumnKind::Date),
                Column::new("Period", ColumnKind::Text),
                Column::new("Amount", ColumnKind::Money),
            ],
            rows,
            total_row: Some(vec![
                Cell::text("Total"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                sum_cell(s.transfers_due.iter().map(|t| t.amount)),
            ]),
        };
        vec![Block::Table(table)]
    }

    fn settlement_table(&self, s: &Settlement) -> Table {
        let own = s.lines.iter().any(|l| l.own_spend.is_some());
        let mut columns = vec![
            Column::new("Partner", ColumnKind::Text),
            Column::new("Contribution due", ColumnKind::Money),
            Column::new("Contribution received", ColumnKind::Money),
        ];
        if own {
            columns.push(Column::new("Own spend", ColumnKind::Money));
            columns.push(Column::new("Own variance", ColumnKind::Money));
        }
        columns.extend([
            Column::new("Risk share", ColumnKind::Money),
            Column::new("Balance", ColumnKind::Money),
            Column::new("Position", ColumnKind::Text),
        ]);
        let money_or_empty = |m: Option<Money>| m.map_or(Cell::Empty, Cell::Money);
        let rows = s
            .lines
            .iter()
            .map(|l| {
                let mut name = self.partner_name(&l.partner);
                if l.is_host {
                    name.push_str(" (host)");
                }
                let mut row = vec![
                    Cell::Text(name),
                    Cell::Money(l.contribution_due),
                    Cell::Money(l.contribution_received),
                ];
                if own {
                    row.push(money_or_empty(l.own_spend));
                    row.push(money_or_empty(l.own_variance));
                }
                row.extend([
                    Cell::Money(l.risk_share),
                    Cell::Money(l.balance),
                    Cell::text(position_text(l)),
                ]);
                row
            })
            .collect();
        let mut total = vec![
            Cell::text("Total"),
            sum_cell(s.lines.iter().map(|l| l.contribution_due)),
            sum_cell(s.lines.iter().map(|l| l.contribution_received)),
        ];
        if own {
            total.push(sum_cell(s.lines.iter().filter_map(|l| l.own_spend)));
            total.push(sum_cell(s.lines.iter().filter_map(|l| l.own_variance)));
        }
        // Balances are not added up: the host's own line means something different.
        total.extend([
            sum_cell(s.lines.iter().map(|l| l.risk_share)),
            Cell::Empty,
            Cell::Empty,
        ]);
        Table {
            name: "Settlement".into(),
            caption: format!(
                "Each partner's settlement for {}: a positive balance is owed to the host, a \
                 negative one is owed by the host",
                s.year
            ),
            columns,
            rows,
            total_row: Some(total),
        }
    }

    /// The debtor and creditor position between the host and each other partner.
    fn host_position_table(&self, s: &Settlement) -> Table {
        let others: Vec<&SettlementLine> = s.lines.iter().filter(|l| !l.is_host).collect();
        let debtor = |l: &SettlementLine| {
            if l.balance.pence() > 0 {
                l.balance
            } else {
                Money::ZERO
            }
        };
        let creditor = |l: &SettlementLine| {
            if l.balance.pence() < 0 {
                magnitude(l.balance)
            } else {
                Money::ZERO
            }
        };
        Table {
            name: "Host debtors and creditors".into(),
            caption: format!(
                "Between the host ({}) and each other partner at the end of {}",
                self.partner_name(&s.host),
                s.year
            ),
            columns: vec![
                Column::new("Partner", ColumnKind::Text),
                Column::new("Owed to host (debtor)", ColumnKind::Money),
                Column::new("Owed by host (creditor)", ColumnKind::Money),
                Column::new("Net due to host", ColumnKind::Money),
            ],
            rows: others
                .iter()
                .map(|l| {
                    vec![
                        Cell::Text(self.partner_name(&l.partner)),
                        Cell::Money(debtor(l)),
                        Cell::Money(creditor(l)),
                        Cell::Money(l.balance),
                    ]
                })
                .collect(),
            total_row: Some(vec![
                Cell::text("Total"),
                sum_cell(others.iter().map(|l| debtor(l))),
                sum_cell(others.iter().map(|l| creditor(l))),
                Cell::Money(s.due_to_host),
            ]),
        }
    }

    /// Who owes whom, one sentence each, then the net position and what is left in the pool.
    fn settlement_words(&self, s: &Settlement) -> Vec<String> {
        let host = self.partner_name(&s.host);
        let mut out = Vec::new();
        for l in &s.lines {
            let name = self.partner_name(&l.partner);
            let amount = magnitude(l.balance);
            let sentence = match (l.is_host, l.position, s.kind) {
                (false, Position::OwesHost, _) => format!("{name} owes the host {amount}."),
                (false, Position::OwedByHost, _) => format!("The host owes {name} {amount}."),
                (false, Position::Settled, _) => {
                    format!("{name} and the host are settled: nothing is owed either way.")
                }
                (true, Position::OwesHost, FundKind::Pooled) => {
                    format!("As a partner, the host ({name}) puts {amount} into the fund.")
                }
                (true, Position::OwedByHost, FundKind::Pooled) => {
                    format!("As a partner, the host ({name}) takes {amount} from the fund.")
                }
                (true, Position::OwesHost, FundKind::Aligned) => format!(
                    "As a partner, the host ({name}) bears a further {amount} under the risk share."
                ),
                (true, Position::OwedByHost, FundKind::Aligned) => {
                    format!("As a partner, the host ({name}) is due {amount} under the risk share.")
                }
                (true, Position::Settled, _) => {
                    format!("As a partner, the host ({name}) neither puts in nor takes out.")
                }
            };
            out.push(sentence);
        }
        out.push(match s.due_to_host.pence().signum() {
            1 => format!(
                "In all, the host ({host}) receives {} from the other partners.",
                s.due_to_host
            ),
            -1 => format!(
                "In all, the host ({host}) pays {} to the other partners.",
                magnitude(s.due_to_host)
            ),
            _ => {
                format!("In all, nothing passes between the host ({host}) and the other partners.")
            }
        });
        if s.kind == FundKind::Pooled {
            let after = s.pool_balance_after;
            out.push(match after.pence().signum() {
                1 => format!(
                    "Once everyone has settled, the pool holds {after}: what the risk share \
                     keeps in it (carried forward or contingency)."
                ),
                -1 => format!(
                    "Once everyone has settled, the pool is {} short: the part met from \
                     outside the partners (a risk pool or other pools) or left unallocated.",
                    magnitude(after)
                ),
                _ => "Once everyone has settled, nothing is left in the pool.".into(),
            });
        }
        out
    }

    fn cross_subsidy_blocks(&self, c: &CrossSubsidyReport, as_at: Period) -> Vec<Block> {
        let mut blocks = Vec::new();
        if c.cross_subsidies.is_empty() {
            blocks.push(Block::Paragraph(format!(
                "Cross-subsidy check to the end of {}: none found. No partner's money has been \
                 spent on a service line budgeted by another partner.",
                short(as_at)
            )));
        } else {
            blocks.push(Block::Paragraph(format!(
                "Cross-subsidy check to the end of {}: {} found where one partner's money has \
                 been spent on a service line budgeted by another.",
                short(as_at),
                count(c.cross_subsidies.len(), "case", "cases")
            )));
            blocks.push(Block::Table(Table {
                name: "Cross-subsidies".into(),
                caption: "Spend with one partner as origin on a line budgeted by another".into(),
                columns: vec![
                    Column::new("Paying partner", ColumnKind::Text),
                    Column::new("Service line", ColumnKind::Text),
                    Column::new("Budgeted by", ColumnKind::Text),
                    Column::new("Actual to date", ColumnKind::Money),
                ],
                rows: c
                    .cross_subsidies
                    .iter()
                    .map(|x| {
                        vec![
                            Cell::Text(self.partner_name(&x.paying_partner)),
                            Cell::Text(x.service_line.clone()),
                            Cell::Text(self.names(&x.budget_partners)),
                            Cell::Money(x.amount),
                        ]
                    })
                    .collect(),
                total_row: Some(vec![
                    Cell::text("Total"),
                    Cell::Empty,
                    Cell::Empty,
                    sum_cell(c.cross_subsidies.iter().map(|x| x.amount)),
                ]),
            }));
        }
        if c.own_budget_overspends.is_empty() {
            blocks.push(Block::Paragraph(
                "No partner is over its own budget to date while another is under its own.".into(),
            ));
        } else {
            blocks.push(Block::Paragraph(
                "These partners are over their own budgets to date while others are under \
                 theirs, so the others' underspends are at risk of being drawn on:"
                    .into(),
            ));
            blocks.push(Block::Table(Table {
                name: "Own budget overspends".into(),
                caption: "Partners over their own budget to date, and those under theirs".into(),
                columns: vec![
                    Column::new("Partner", ColumnKind::Text),
                    Column::new("Budget to date", ColumnKind::Money),
                    Column::new("Actual to date", ColumnKind::Money),
                    Column::new("Overspend", ColumnKind::Money),
                    Column::new("Partners under their own budget", ColumnKind::Text),
                ],
                rows: c
                    .own_budget_overspends
                    .iter()
                    .map(|o| {
                        let under: Vec<String> = o
                            .underspent_partners
                            .iter()
                            .map(|u| {
                                format!("{} ({} under)", self.partner_name(&u.partner), u.amount)
                            })
                            .collect();
                        vec![
                            Cell::Text(self.partner_name(&o.partner)),
                            Cell::Money(o.budget_to_date),
                            Cell::Money(o.actual_to_date),
                            Cell::Money(o.overspend),
                            Cell::Text(under.join("; ")),
                        ]
                    })
                    .collect(),
                total_row: None,
            }));
        }
        blocks
    }

    fn ring_fence_blocks(&self, breaches: &[RingFenceBreach], as_at: Period) -> Vec<Block> {
        if breaches.is_empty() {
            return vec![Block::Paragraph(format!(
                "Ring-fence check to the end of {}: none found. No money from a ring-fenced \
                 locality's partner has been spent outside it.",
                short(as_at)
            ))];
        }
        let localities = |ids: &[String]| {
            ids.iter()
                .map(|l| self.locality_name(l))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            Block::Paragraph(format!(
                "Ring-fence check to the end of {}: {} found where a ring-fenced locality's \
                 partner's money was spent outside it.",
                short(as_at),
                count(breaches.len(), "breach", "breaches")
            )),
            Block::Table(Table {
                name: "Ring-fence breaches".into(),
                caption: "Money from a ring-fenced locality's partner spent outside it".into(),
                columns: vec![
                    Column::new("Partner", ColumnKind::Text),
                    Column::new("Ring-fenced to", ColumnKind::Text),
                    Column::new("Spent in", ColumnKind::Text),
                    Column::new("Service line", ColumnKind::Text),
                    Column::new("Amount", ColumnKind::Money),
                ],
                rows: breaches
                    .iter()
                    .map(|b| {
                        vec![
                            Cell::Text(self.partner_name(&b.partner)),
                            Cell::Text(localities(&b.ring_fenced)),
                            Cell::Text(b.spent_in.as_deref().map_or_else(
                                || "No locality named".into(),
                                |l| self.locality_name(l),
                            )),
                            Cell::Text(b.service_line.clone()),
                            Cell::Money(b.amount),
                        ]
                    })
                    .collect(),
                total_row: Some(vec![
                    Cell::text("Total"),
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Empty,
                    sum_cell(breaches.iter().map(|b| b.amount)),
                ]),
            }),
        ]
    }

    fn names(&self, ids: &[String]) -> String {
        ids.iter()
            .map(|id| self.partner_name(id))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// "Budget, actual and forecast, cumulative, P01–P12": three lines.
fn cumulative_chart(s: &QuarterlyStatement) -> Chart {
    budget_actual_forecast_chart(&s.chart)
}

/// The budget, actual and forecast lines across the year, from the core's chart points.
pub fn budget_actual_forecast_chart(chart: &[concordat_core::statement::ChartPoint]) -> Chart {
    let periods = chart.iter().map(|p| short(p.period)).collect();
    Chart {
        name: "Budget actual and forecast".into(),
        title: "Budget, actual and forecast, cumulative, P01–P12".into(),
        data: ChartData::Periods {
            periods,
            series: vec![
                Series {
                    name: "Budget".into(),
                    style: SeriesStyle::Line,
                    values: chart.iter().map(|p| Some(p.budget)).collect(),
                },
                Series {
                    name: "Actual".into(),
                    style: SeriesStyle::Line,
                    values: chart.iter().map(|p| p.actual).collect(),
                },
                Series {
                    name: "Forecast".into(),
                    style: SeriesStyle::Line,
                    values: chart.iter().map(|p| Some(p.forecast)).collect(),
                },
            ],
        },
    }
}

/// The parts of a variance that fall other than to the partners, where not zero.
fn other_parts(e: &Exposure) -> Vec<(&'static str, Money)> {
    [
        ("Met from underspends in other pools", e.other_pools),
        ("Met from the risk pool", e.risk_pool),
        ("Carried forward in the pool", e.carried_forward),
        ("Kept in the pool as contingency", e.contingency),
        ("Not allocated by the risk share", e.unallocated),
    ]
    .into_iter()
    .filter(|(_, amount)| *amount != Money::ZERO)
    .collect()
}

/// "At the end of P06 ... the forecast outturn is ...: an overspend of £x (2.00%), Amber."
fn outturn_sentence(t: &MonitorRow, as_at: Period) -> String {
    let mut text = format!(
        "At the end of {} ({}) actual spend to date is {} against a budget to date of {}. The \
         forecast outturn for {} is {} against an annual budget of {}: ",
        short(as_at),
        long_date(as_at.last_day()),
        t.actual_to_date,
        t.budget_to_date,
        as_at.year(),
        t.forecast_outturn,
        t.annual_budget
    );
    text.push_str(&variance_words(t.variance));
    if let Some(bp) = t.variance_basis_points
        && t.variance != Money::ZERO
    {
        text.push_str(&format!(
            " ({}% of the annual budget)",
            percent_number(Percent::from_basis_points(bp.abs()))
        ));
    }
    text.push_str(&format!(", rated {}.", rag(t.rag)));
    text
}

fn thresholds_note(t: &Thresholds) -> String {
    let mut text = format!(
        "RAG thresholds: an overspend of more than {} of the annual budget is amber and more \
         than {} red",
        t.amber_percent, t.red_percent
    );
    if let Some(a) = t.amber_amount {
        text.push_str(&format!("; any overspend over {a} is at least amber"));
    }
    if let Some(r) = t.red_amount {
        text.push_str(&format!("; any overspend over {r} is red"));
    }
    text.push_str(&format!(
        "; an underspend of more than {} is amber (slippage), never red. A line with no annual \
         budget that overspends at all is red.",
        t.underspend_amber_percent
    ));
    if t.default_used {
        text.push_str(
            " These are Concordat's defaults, not a rule of the Regulations: the agreement \
             sets no monitoring thresholds for this fund.",
        );
    } else {
        text.push_str(
            " These are the agreement's thresholds for this fund (Concordat's defaults for any \
             it leaves out).",
        );
    }
    text
}

fn method_note(method: ForecastMethod) -> String {
    let how = match method {
        ForecastMethod::RunRate => "by run rate: actual to date ÷ periods elapsed × 12",
        ForecastMethod::Profile => {
            "by profile: actual to date plus the budget profile for the periods still to come"
        }
        ForecastMethod::Commitments => "from commitments: actual to date plus open commitments",
    };
    format!(
        "Forecast outturn {how}, except where the pool manager has overridden a line's forecast \
         (forecast basis \"{}\").",
        basis_label(ForecastBasis::Override)
    )
}

fn override_notes(ctx: &Context<'_>, m: &Monitoring) -> Vec<String> {
    m.rows
        .iter()
        .filter(|r| !r.override_reasons.is_empty())
        .map(|r| {
            format!(
                "{}: the forecast is the pool manager's: {}.",
                ctx.row_label(m.by, &r.key),
                r.override_reasons.join("; ")
            )
        })
        .collect()
}

fn exposure_sign_note() -> String {
    "Shares of a variance: a positive amount is an overspend the partner bears; a negative \
     amount is an underspend returned to it."
        .into()
}

fn settlement_sign_note(kind: FundKind) -> String {
    let how = match kind {
        FundKind::Pooled => {
            "For a pooled fund the host holds the money: a partner owes the host its unpaid \
             contributions plus its share of an overspend, less its share of an underspend."
        }
        FundKind::Aligned => {
            "For aligned budgets each partner has already borne its own variance by spending \
             its own budget: it owes the host (as lead) the difference between its share under \
             the risk share and the variance it bore."
        }
    };
    format!(
        "{how} A positive balance is owed to the host; a negative one is owed by the host. The \
         host's own line is what it puts into (positive) or takes from (negative) the fund as \
         a partner."
    )
}

fn position_text(l: &SettlementLine) -> &'static str {
    match (l.is_host, l.position) {
        (_, Position::Settled) => "settled",
        (false, Position::OwesHost) => "owes host",
        (false, Position::OwedByHost) => "owed by host",
        (true, Position::OwesHost) => "host: pays in",
        (true, Position::OwedByHost) => "host: takes out",
    }
}

fn rag(r: monitor::Rag) -> Rag {
    match r {
        monitor::Rag::Red => Rag::Red,
        monitor::Rag::Amber => Rag::Amber,
        monitor::Rag::Green => Rag::Green,
    }
}

fn basis_label(b: ForecastBasis) -> &'static str {
    match b {
        ForecastBasis::RunRate => "Run rate",
        ForecastBasis::Profile => "Profile",
        ForecastBasis::Commitments => "Commitments",
        ForecastBasis::Override => "Pool manager's override",
        ForecastBasis::Mixed => "Mixed (some lines overridden)",
    }
}

fn method_label(m: ForecastMethod) -> &'static str {
    match m {
        ForecastMethod::RunRate => "run rate",
        ForecastMethod::Profile => "budget profile",
        ForecastMethod::Commitments => "commitments",
    }
}

fn person_text(p: &Person) -> String {
    match &p.name {
        Some(name) => format!("{name}, {}", p.title),
        None => p.title.clone(),
    }
}

fn variance_noun(v: Money) -> &'static str {
    if v.is_negative() {
        "underspend"
    } else {
        "overspend"
    }
}

/// "an overspend of £20,000.00", "an underspend of £5.00", "on budget".
fn variance_words(v: Money) -> String {
    match v.pence().signum() {
        0 => "on budget, with no variance".into(),
        _ => format!("an {} of {}", variance_noun(v), magnitude(v)),
    }
}

fn surplus_label(surplus: Money) -> &'static str {
    if surplus.is_negative() {
        "Deficit"
    } else {
        "Surplus"
    }
}

fn surplus_words(surplus: Money) -> String {
    match surplus.pence().signum() {
        0 => "neither a surplus nor a deficit".into(),
        _ => format!(
            "a {} of {}",
            surplus_label(surplus).to_lowercase(),
            magnitude(surplus)
        ),
    }
}

/// The amount without its sign, for words that already say which way it goes.
fn magnitude(m: Money) -> Money {
    if m.is_negative() {
        m.checked_neg().unwrap_or(m)
    } else {
        m
    }
}

/// The sum of a column as a cell; text if it would overflow (it never should: the core crate
/// worked out every figure with checked arithmetic).
fn sum_cell(amounts: impl IntoIterator<Item = Money>) -> Cell {
    Money::checked_sum(amounts).map_or_else(|_| Cell::text("too large to add up"), Cell::Money)
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "P06".
fn short(p: Period) -> String {
    format!("P{:02}", p.number())
}

/// "end of P06, 30 September 2024".
fn end_of(p: Period) -> String {
    format!("end of {}, {}", short(p), long_date(p.last_day()))
}

fn long_date(d: Date) -> String {
    d.strftime("%-d %B %Y").to_string()
}
