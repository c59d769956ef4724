//! `concordat dispute`, `complaint`, `risk` and `exit`: the partnership's registers, each
//! entry built and checked by the core (the dispute ladder's time limits, the complaints
//! protocol's days, the risk matrix, the notice terms) and kept through the store.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Subcommand, ValueEnum};
use concordat_app::finance;
use concordat_app::governance::{self, ComplaintAction, DisputeAction};
use concordat_core::FinancialYear;
use concordat_core::agreement::Agreement;
use concordat_core::proceedings::{Complaint, Dispute, FeedbackKind, Risk};
use jiff::civil::Date;

use crate::governance_cmd::refusal_error;
use crate::{DatabaseArgs, actor, now, open, today};

/// The partnership and the day an action is taken.
#[derive(clap::Args)]
pub(crate) struct On {
    /// The agreement's id, e.g. `halton-st-helens`.
    #[arg(long)]
    agreement: String,
    /// The day it happened (YYYY-MM-DD); today by default.
    #[arg(long)]
    on: Option<Date>,
}

/// The partnership and the day a list judges what is overdue by.
#[derive(clap::Args)]
pub(crate) struct AsAt {
    #[arg(long)]
    agreement: String,
    /// The day to judge what is overdue by (YYYY-MM-DD); today by default.
    #[arg(long)]
    as_at: Option<Date>,
}

#[derive(Subcommand)]
pub(crate) enum DisputeCommand {
    /// Raise a dispute: it starts at the first step of the agreement's escalation ladder,
    /// with that step's time limit.
    Raise {
        #[command(flatten)]
        on: On,
        /// The dispute's reference; unique in the partnership.
        #[arg(long)]
        reference: String,
        /// What it is about.
        #[arg(long)]
        subject: String,
        /// The partner raising it (its id in the agreement).
        #[arg(long)]
        raised_by: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Move a dispute to the next step of the ladder.
    Escalate {
        #[command(flatten)]
        on: On,
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Record how a dispute was resolved.
    Resolve {
        #[command(flatten)]
        on: On,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        outcome: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The disputes, with each open one's current step and time limit.
    List {
        #[command(flatten)]
        as_at: AsAt,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Feedback {
    Complaint,
    Compliment,
}

#[derive(Subcommand)]
pub(crate) enum ComplaintCommand {
    /// Record a complaint or compliment received under the joint protocol; a complaint gets
    /// its acknowledgement and response dates from the protocol's days.
    Receive {
        #[command(flatten)]
        on: On,
        #[arg(long)]
        reference: String,
        #[arg(long, value_enum, default_value = "complaint")]
        kind: Feedback,
        /// What it is about, without personal details: every partner sees the record.
        #[arg(long)]
        summary: String,
        /// The partner that handles it under the protocol.
        #[arg(long)]
        handled_by: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Record that a complaint was acknowledged.
    Acknowledge {
        #[command(flatten)]
        on: On,
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Record the response to a complaint (or the reply to a compliment), closing it.
    Respond {
        #[command(flatten)]
        on: On,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        outcome: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Complaints and compliments, with what each open one waits on.
    List {
        #[command(flatten)]
        as_at: AsAt,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum RiskCommand {
    /// Add a risk to the register, scored 1–5 for likelihood and for impact.
    Add {
        #[arg(long)]
        agreement: String,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        title: String,
        /// Who owns the risk.
        #[arg(long)]
        owner: String,
        /// 1 (rare) to 5 (almost certain).
        #[arg(long)]
        likelihood: u8,
        /// 1 (negligible) to 5 (severe).
        #[arg(long)]
        impact: u8,
        #[arg(long, default_value = "")]
        mitigations: String,
        /// When it is next to be reviewed (YYYY-MM-DD).
        #[arg(long)]
        review_on: Date,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Re-score a risk, change its mitigations, set its next review, or close it.
    Update {
        #[command(flatten)]
        on: On,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        likelihood: Option<u8>,
        #[arg(long)]
        impact: Option<u8>,
        #[arg(long)]
        mitigations: Option<String>,
        #[arg(long)]
        review_on: Option<Date>,
        /// Close the risk on the day given by --on.
        #[arg(long)]
        close: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The risk register, highest score first.
    List {
        #[command(flatten)]
        as_at: AsAt,
        /// Closed risks too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ExitFormat {
    Table,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum ExitCommand {
    /// Serve notice to end the agreement: the end date under its notice terms, with the
    /// reasoning. The agreement can be given notice once.
    Notice {
        #[command(flatten)]
        on: On,
        /// The partner serving notice.
        #[arg(long)]
        by: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The final statement of a pooled fund on exit: its last year settled under the
    /// agreement's exit terms (or the fund's risk share, where it has none).
    Statement {
        #[arg(long)]
        agreement: String,
        /// The fund's id; may be left out when the agreement has one fund.
        #[arg(long)]
        fund: Option<String>,
        /// The last financial year, e.g. 2001/02.
        #[arg(long)]
        year: FinancialYear,
        #[arg(long, value_enum, default_value = "table")]
        format: ExitFormat,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// An app field as the flag that sets it.
fn flag(field: &str) -> String {
    match field {
        "date" | "served_on" => "--on".into(),
        "served_by" => "--by".into(),
        // Faults in the record as it stands ("D1 is resolved") are about the one referred to.
        "dispute" | "complaint" => "--reference".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

fn overdue_mark(overdue: bool) -> &'static str {
    if overdue { "  [overdue]" } else { "" }
}

pub(crate) async fn dispute_cmd(command: DisputeCommand) -> Result<ExitCode> {
    let (on, db, action) = match &command {
        DisputeCommand::List { as_at, db } => {
            let store = open(db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &as_at.agreement).await?;
            let disputes = governance::disputes(store.as_ref(), &agreement.id).await?;
            out!(
                "{}",
                dispute_table(&agreement, &disputes, as_at.as_at.unwrap_or_else(today))
            );
            return Ok(ExitCode::SUCCESS);
        }
        DisputeCommand::Raise {
            on,
            reference,
            subject,
            raised_by,
            db,
        } => (
            on,
            db,
            DisputeAction::Raise {
                reference,
                subject,
                raised_by,
            },
        ),
        DisputeCommand::Escalate { on, reference, db } => {
            (on, db, DisputeAction::Escalate { reference })
        }
        DisputeCommand::Resolve {
            on,
            reference,
            outcome,
            db,
        } => (on, db, DisputeAction::Resolve { reference, outcome }),
    };
    let store = open(db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &on.agreement).await?;
    let day = on.on.unwrap_or_else(today);
    let d = governance::dispute_action(store.as_ref(), &actor(db), &now(), &agreement, day, action)
        .await
        .map_err(|e| refusal_error(e, flag))?;
    let step = d.current();
    let verb = match &command {
        DisputeCommand::Raise { .. } => "raised",
        DisputeCommand::Escalate { .. } => "escalated",
        _ => "resolved",
    };
    outln!("Dispute {} {verb} on {day}.", d.reference);
    match (&d.resolved_on, &d.outcome) {
        (Some(when), outcome) => outln!(
            "  Resolved {when}: {}",
            outcome.as_deref().unwrap_or_default()
        ),
        _ => outln!(
            "  Step {} of {}: {}{}",
            d.stages.len(),
            ladder_len(&agreement),
            step.name,
            step.due_on
                .map(|due| format!(", to be settled by {due}"))
                .unwrap_or_else(|| ", with no time limit".into())
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn ladder_len(agreement: &Agreement) -> usize {
    agreement.disputes.as_ref().map_or(0, |t| t.steps.len())
}

fn dispute_table(agreement: &Agreement, disputes: &[Dispute], as_at: Date) -> String {
    let mut out = String::new();
    if disputes.is_empty() {
        let _ = writeln!(out, "No disputes are recorded for {}.", agreement.id);
        return out;
    }
    for d in disputes {
        let step = d.current();
        let state = match d.resolved_on {
            Some(when) => format!("resolved {when}"),
            None => format!(
                "open, step {} of {}: {}{}",
                d.stages.len(),
                ladder_len(agreement),
                step.name,
                step.due_on
                    .map(|due| format!(", due {due}"))
                    .unwrap_or_default()
            ),
        };
        let _ = writeln!(
            out,
            "{}  raised {} by {}  {state}{}",
            d.reference,
            d.raised_on,
            finance::partner_name(agreement, &d.raised_by),
            overdue_mark(d.overdue(as_at))
        );
        let _ = writeln!(out, "    {}", d.subject);
        if let Some(outcome) = &d.outcome {
            let _ = writeln!(out, "    outcome: {outcome}");
        }
    }
    out
}

pub(crate) async fn complaint_cmd(command: ComplaintCommand) -> Result<ExitCode> {
    let (on, db, action) = match &command {
        ComplaintCommand::List { as_at, db } => {
            let store = open(db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &as_at.agreement).await?;
            let list = governance::complaints(store.as_ref(), &agreement.id).await?;
            out!(
                "{}",
                complaint_table(&agreement, &list, as_at.as_at.unwrap_or_else(today))
            );
            return Ok(ExitCode::SUCCESS);
        }
        ComplaintCommand::Receive {
            on,
            reference,
            kind,
            summary,
            handled_by,
            db,
        } => (
            on,
            db,
            ComplaintAction::Receive {
                reference,
                kind: match kind {
                    Feedback::Complaint => FeedbackKind::Complaint,
                    Feedback::Compliment => FeedbackKind::Compliment,
                },
                summary,
                handled_by,
            },
        ),
        ComplaintCommand::Acknowledge { on, reference, db } => {
            (on, db, ComplaintAction::Acknowledge { reference })
        }
        ComplaintCommand::Respond {
            on,
            reference,
            outcome,
            db,
        } => (on, db, ComplaintAction::Respond { reference, outcome }),
    };
    let store = open(db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &on.agreement).await?;
    let day = on.on.unwrap_or_else(today);
    let c =
        governance::complaint_action(store.as_ref(), &actor(db), &now(), &agreement, day, action)
            .await
            .map_err(|e| refusal_error(e, flag))?;
    let verb = match &command {
        ComplaintCommand::Receive { .. } => "received",
        ComplaintCommand::Acknowledge { .. } => "acknowledged",
        _ => "responded to",
    };
    outln!("{} {} {verb} on {day}.", kind_text(c.kind), c.reference);
    match c.next_due() {
        Some((what, due)) => outln!(
            "  Next: {what} by {due} ({}).",
            finance::partner_name(&agreement, &c.handled_by)
        ),
        None => outln!("  Nothing more is due on it."),
    }
    Ok(ExitCode::SUCCESS)
}

fn kind_text(kind: FeedbackKind) -> &'static str {
    match kind {
        FeedbackKind::Complaint => "Complaint",
        FeedbackKind::Compliment => "Compliment",
    }
}

fn complaint_table(agreement: &Agreement, list: &[Complaint], as_at: Date) -> String {
    let mut out = String::new();
    if list.is_empty() {
        let _ = writeln!(
            out,
            "No complaints or compliments are recorded for {}.",
            agreement.id
        );
        return out;
    }
    for c in list {
        let state = match (c.responded_on, c.next_due()) {
            (Some(when), _) => format!("closed {when}"),
            (None, Some((what, due))) => format!("open: {what} by {due}"),
            (None, None) => "noted".to_string(),
        };
        let _ = writeln!(
            out,
            "{}  {}  received {}  handled by {}  {state}{}",
            c.reference,
            kind_text(c.kind).to_lowercase(),
            c.received_on,
            finance::partner_name(agreement, &c.handled_by),
            overdue_mark(c.overdue(as_at))
        );
        let _ = writeln!(out, "    {}", c.summary);
        if let Some(outcome) = &c.outcome {
            let _ = writeln!(out, "    outcome: {outcome}");
        }
    }
    out
}

pub(crate) async fn risk_cmd(command: RiskCommand) -> Result<ExitCode> {
    match command {
        RiskCommand::Add {
            agreement,
            reference,
            title,
            owner,
            likelihood,
            impact,
            mitigations,
            review_on,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            let risk = Risk {
                reference: reference.trim().to_string(),
                title: title.trim().to_string(),
                owner: owner.trim().to_string(),
                likelihood,
                impact,
                mitigations: mitigations.trim().to_string(),
                review_on,
                closed_on: None,
            };
            governance::put_risk(store.as_ref(), &actor(&db), &now(), &agreement, &risk, true)
                .await
                .map_err(|e| refusal_error(e, flag))?;
            outln!("Risk {} added: {}", risk.reference, risk_summary(&risk));
        }
        RiskCommand::Update {
            on,
            reference,
            likelihood,
            impact,
            mitigations,
            review_on,
            close,
            db,
        } => {
            if likelihood.is_none()
                && impact.is_none()
                && mitigations.is_none()
                && review_on.is_none()
                && !close
            {
                bail!(
                    "say what changes: --likelihood, --impact, --mitigations, --review-on or --close"
                );
            }
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &on.agreement).await?;
            let Some(mut risk) = governance::risks(store.as_ref(), &agreement.id)
                .await?
                .into_iter()
                .find(|r| r.reference == reference)
            else {
                bail!(
                    "--reference: there is no risk {reference} in the register of {}. Nothing was recorded.",
                    agreement.id
                );
            };
            if let Some(closed) = risk.closed_on {
                bail!(
                    "--reference: risk {reference} was closed on {closed}; add a new risk if it has come back. Nothing was recorded."
                );
            }
            let day = on.on.unwrap_or_else(today);
            if let Some(l) = likelihood {
                risk.likelihood = l;
            }
            if let Some(i) = impact {
                risk.impact = i;
            }
            if let Some(m) = mitigations {
                risk.mitigations = m.trim().to_string();
            }
            if let Some(r) = review_on {
                risk.review_on = r;
            }
            if close {
                risk.closed_on = Some(day);
            }
            governance::put_risk(
                store.as_ref(),
                &actor(&db),
                &now(),
                &agreement,
                &risk,
                false,
            )
            .await
            .map_err(|e| refusal_error(e, flag))?;
            outln!("Risk {} updated: {}", risk.reference, risk_summary(&risk));
        }
        RiskCommand::List { as_at, all, db } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &as_at.agreement).await?;
            let mut risks = governance::risks(store.as_ref(), &agreement.id).await?;
            risks.retain(|r| all || r.closed_on.is_none());
            risks.sort_by(|a, b| {
                (b.score(), a.review_on, &a.reference).cmp(&(a.score(), b.review_on, &b.reference))
            });
            out!(
                "{}",
                risk_table(&agreement, &risks, as_at.as_at.unwrap_or_else(today))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn risk_summary(r: &Risk) -> String {
    let state = match r.closed_on {
        Some(when) => format!("closed {when}"),
        None => format!("next review {}", r.review_on),
    };
    format!(
        "{} — likelihood {} × impact {} = {} ({}), {state}",
        r.title,
        r.likelihood,
        r.impact,
        r.score(),
        r.rating().label().to_lowercase()
    )
}

fn risk_table(agreement: &Agreement, risks: &[Risk], as_at: Date) -> String {
    let mut out = String::new();
    if risks.is_empty() {
        let _ = writeln!(out, "The risk register of {} is empty.", agreement.id);
        return out;
    }
    let width = risks
        .iter()
        .map(|r| r.reference.chars().count())
        .max()
        .unwrap_or(9)
        .max(9);
    let _ = writeln!(
        out,
        "{:<width$} {:>2} {:>2} {:>5} {:<6} {:<10} {:<8}  title (owner)",
        "reference", "L", "I", "score", "rating", "review", "status"
    );
    for r in risks {
        let _ = writeln!(
            out,
            "{:<width$} {:>2} {:>2} {:>5} {:<6} {:<10} {:<8}  {} ({}){}",
            r.reference,
            r.likelihood,
            r.impact,
            r.score(),
            r.rating().label(),
            r.review_on.to_string(),
            if r.closed_on.is_some() {
                "closed"
            } else {
                "open"
            },
            r.title,
            r.owner,
            overdue_mark(r.review_overdue(as_at))
        );
    }
    out
}

pub(crate) async fn exit_cmd(command: ExitCommand) -> Result<ExitCode> {
    match command {
        ExitCommand::Notice { on, by, reason, db } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &on.agreement).await?;
            let day = on.on.unwrap_or_else(today);
            let n = governance::serve_notice(
                store.as_ref(),
                &actor(&db),
                &now(),
                &agreement,
                &by,
                day,
                &reason,
            )
            .await
            .map_err(|e| refusal_error(e, flag))?;
            // The end date first, as `concordat notice` prints it, so a script can read it.
            outln!("{}", n.ends_on);
            outln!(
                "Notice served by {} on {}: {} ends on {}.",
                finance::partner_name(&agreement, &n.served_by),
                n.served_on,
                agreement.title,
                n.ends_on
            );
            for line in &n.reasoning {
                outln!("{line}");
            }
        }
        ExitCommand::Statement {
            agreement,
            fund,
            year,
            format,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            let fund = finance::fund_or_only(&agreement, fund.as_deref())?;
            if !fund.contributions.iter().any(|c| c.year == year) {
                bail!(
                    "--year: the agreement sets no contributions to fund '{}' for {year}: there is nothing to settle",
                    fund.id
                );
            }
            let closed = store.closed_periods(&agreement.id).await?;
            if !closed.contains(&(i64::from(year.start_year()), 12)) {
                eprintln!(
                    "note: {year}-P12 is not closed, so this statement is provisional: postings can still be added"
                );
            }
            let exit = governance::exit_statement(store.as_ref(), &agreement, fund, year).await?;
            match format {
                ExitFormat::Json => outln!("{}", serde_json::to_string_pretty(&exit)?),
                ExitFormat::Table => {
                    let notice = governance::notice(store.as_ref(), &agreement.id).await?;
                    outln!("Final statement on exit: {} {}", exit.fund, exit.year);
                    match notice {
                        Some(n) => outln!(
                            "Notice served by {} on {}; the agreement ends on {}.",
                            finance::partner_name(&agreement, &n.served_by),
                            n.served_on,
                            n.ends_on
                        ),
                        None => outln!("No notice is recorded as served."),
                    }
                    outln!("Basis: {}\n", exit.basis);
                    out!(
                        "{}",
                        crate::money_cmds::settle_table(&agreement, &exit.settlement)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
