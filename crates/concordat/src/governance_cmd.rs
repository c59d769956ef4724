//! `concordat meeting` and `concordat decision`: what a board secretary records of a meeting
//! and the decisions taken there or by an officer, from a file they keep alongside the
//! minutes. Every check is the app's and the core's; a refusal names the field and writes
//! nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Subcommand, ValueEnum};
use concordat_app::governance::{self, LoggedDecision, NewPaper};
use concordat_app::{BudgetRefusal, BudgetRequest, finance};
use concordat_core::agreement::{Agreement, DecisionLevelKind, DecisionType};
use concordat_core::proceedings::{Meeting, MeetingStatus, Proposal};
use concordat_core::{FinancialYear, Money};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{DatabaseArgs, actor, now, open};

#[derive(Subcommand)]
pub(crate) enum MeetingCommand {
    /// Record a meeting from a TOML or JSON file holding one meeting: reference, body, date,
    /// status (scheduled or held), location, attendance, declarations and agenda. It is
    /// checked against the body's seats and capacities first.
    Record {
        #[arg(long)]
        agreement: String,
        /// The meeting file (`.json` is read as JSON, anything else as TOML).
        #[arg(long)]
        file: PathBuf,
        /// Replace the meeting already recorded under this reference (e.g. a scheduled
        /// meeting now held); refused once decisions are recorded against it.
        #[arg(long)]
        update: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The meetings recorded for a partnership, by date.
    List {
        #[arg(long)]
        agreement: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// One meeting: attendance, declarations of interest, agenda, papers and the decisions
    /// taken there.
    Show {
        #[arg(long)]
        agreement: String,
        /// The meeting's reference.
        #[arg(long)]
        meeting: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Add a paper (a report, minutes, an appendix) to a meeting; the file is stored.
    Paper {
        #[arg(long)]
        agreement: String,
        #[arg(long)]
        meeting: String,
        /// The paper's title, as the agenda gives it.
        #[arg(long)]
        title: String,
        /// The file to store.
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ListFormat {
    Table,
    Csv,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum DecisionCommand {
    /// Record a decision from a TOML or JSON file holding the proposal (reference, title,
    /// resolution, level, decision_type, meeting or officer or partner, votes, ...) and any
    /// `[[budget_changes]]` it authorises. Checked against the meeting, the body's terms and
    /// the scheme of delegation; the decision and its budget changes are recorded together
    /// or not at all.
    Record {
        #[arg(long)]
        agreement: String,
        /// The decision file (`.json` is read as JSON, anything else as TOML).
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The decision log, newest first.
    List {
        #[arg(long)]
        agreement: String,
        /// Only decisions whose reference, title, words, type, level, body, fund or officer
        /// contain all these words.
        #[arg(long, default_value = "")]
        search: String,
        /// Only decisions marked for publication.
        #[arg(long)]
        published: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// A budget change in a decision file, in the words of `concordat budget set`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetChangeEntry {
    service_line: String,
    /// The line's new gross annual budget.
    annual: Money,
    #[serde(default = "even")]
    phasing: String,
    #[serde(default)]
    client_income: Option<Money>,
    #[serde(default)]
    partner: Option<String>,
    #[serde(default)]
    locality: Option<String>,
    /// For the budget line's history; the decision's reference and title if left out.
    #[serde(default)]
    reason: Option<String>,
    year: FinancialYear,
    /// The service line is new, though its name is close to an existing one's (as
    /// `budget set --new-line`).
    #[serde(default)]
    new_line: bool,
}

fn even() -> String {
    "even".to_string()
}

/// A governance or budget refusal as an error that names where the fault is (`name` turns
/// the app's field into a flag or a key of the file) and says nothing was written; any other
/// error unchanged.
pub(crate) fn refusal_error(e: anyhow::Error, name: impl Fn(&str) -> String) -> anyhow::Error {
    let (field, message) = match concordat_app::Refused::of(e) {
        Ok(concordat_app::Refused::Governance(r)) => (r.field.to_string(), r.message),
        Ok(concordat_app::Refused::Budget(r)) => (r.field.to_string(), r.message),
        Err(e) => return e,
    };
    let message = message.trim_end_matches('.');
    anyhow!("{}: {message}. Nothing was recorded.", name(&field))
}

/// How a field is named to someone who wrote `file`.
fn in_file(file: &Path) -> impl Fn(&str) -> String + '_ {
    move |field| format!("{}: {field}", file.display())
}

/// The top-level keys a record has, from a sample of it serialised: what a file may contain.
fn keys_of<T: serde::Serialize>(sample: &T) -> Vec<String> {
    match serde_json::to_value(sample) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A TOML value as JSON, so TOML and JSON files are read one way. TOML's own dates become
/// the text of the date (`date = 2001-10-16` reads as `"2001-10-16"`).
fn toml_to_json(value: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            J::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// A file's top-level table: `.json` files as JSON, anything else as TOML.
fn read_table(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let value = if is_json {
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?
    } else {
        toml_to_json(toml::Value::Table(
            toml::from_str(&text)
                .with_context(|| format!("{} is not valid TOML", path.display()))?,
        ))
    };
    match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => bail!(
            "{} must hold one record, as a table of keys",
            path.display()
        ),
    }
}

/// Refuses a key the record does not have (a misspelt key would otherwise be ignored).
fn only_known_keys(
    path: &Path,
    map: &serde_json::Map<String, serde_json::Value>,
    known: &[String],
) -> Result<()> {
    if let Some(key) = map.keys().find(|k| !known.contains(k)) {
        bail!(
            "{}: {key}: not a key of this record; the keys are {}. Nothing was recorded.",
            path.display(),
            known.join(", ")
        );
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(
    path: &Path,
    what: &str,
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<T> {
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
        anyhow!(
            "{}: {e} (reading it as {what}). Nothing was recorded.",
            path.display()
        )
    })
}

fn sample_meeting() -> Meeting {
    Meeting {
        reference: String::new(),
        body: String::new(),
        date: jiff::civil::date(2000, 1, 1),
        status: MeetingStatus::Scheduled,
        location: None,
        attendance: Vec::new(),
        declarations: Vec::new(),
        agenda: Vec::new(),
    }
}

fn sample_proposal() -> Proposal {
    Proposal {
        reference: String::new(),
        title: String::new(),
        resolution: String::new(),
        level: DecisionLevelKind::Joint,
        decision_type: DecisionType::Policy,
        meeting: None,
        agenda_item: None,
        officer: None,
        partner: None,
        decided_on: None,
        fund: None,
        amount: None,
        votes: Vec::new(),
        published: false,
    }
}

/// Reads a meeting file.
fn read_meeting(path: &Path) -> Result<Meeting> {
    let map = read_table(path)?;
    only_known_keys(path, &map, &keys_of(&sample_meeting()))?;
    decode(path, "a meeting", map)
}

/// Reads a decision file: the proposal and the budget changes it authorises.
fn read_decision(path: &Path) -> Result<(Proposal, Vec<BudgetChangeEntry>)> {
    let mut map = read_table(path)?;
    let changes = map.remove("budget_changes");
    let mut known = keys_of(&sample_proposal());
    known.push("budget_changes".into());
    only_known_keys(path, &map, &known)?;
    let proposal: Proposal = decode(path, "a decision", map)?;
    let changes = match changes {
        None => Vec::new(),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            anyhow!(
                "{}: budget_changes: {e} (each change has service_line, annual, year, and optionally phasing, partner, locality, client_income, reason, new_line). Nothing was recorded.",
                path.display()
            )
        })?,
    };
    Ok((proposal, changes))
}

fn status_text(s: MeetingStatus) -> &'static str {
    match s {
        MeetingStatus::Scheduled => "scheduled",
        MeetingStatus::Held => "held",
    }
}

fn body_name<'a>(agreement: &'a Agreement, id: &'a str) -> &'a str {
    agreement
        .bodies
        .iter()
        .find(|b| b.id == id)
        .map_or(id, |b| b.name.as_str())
}

pub(crate) async fn meeting_cmd(command: MeetingCommand) -> Result<ExitCode> {
    match command {
        MeetingCommand::Record {
            agreement,
            file,
            update,
            db,
        } => {
            let meeting = read_meeting(&file)?;
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            let exists = governance::meeting(store.as_ref(), &agreement.id, &meeting.reference)
                .await?
                .is_some();
            if update && !exists {
                bail!(
                    "{}: reference: there is no meeting {} recorded to update; leave out --update to record it. Nothing was recorded.",
                    file.display(),
                    meeting.reference
                );
            }
            if !update && exists {
                bail!(
                    "{}: reference: meeting {} is already recorded; give --update to replace its record. Nothing was recorded.",
                    file.display(),
                    meeting.reference
                );
            }
            governance::record_meeting(
                store.as_ref(),
                &actor(&db),
                &now(),
                &agreement,
                &meeting,
                !update,
            )
            .await
            .map_err(|e| refusal_error(e, in_file(&file)))?;
            outln!(
                "{} meeting {} of the {} on {}: {} ({} present, {} declaration{}, {} agenda item{})",
                if update { "Updated" } else { "Recorded" },
                meeting.reference,
                body_name(&agreement, &meeting.body),
                meeting.date,
                status_text(meeting.status),
                meeting.attendance.len(),
                meeting.declarations.len(),
                crate::plural(meeting.declarations.len()),
                meeting.agenda.len(),
                crate::plural(meeting.agenda.len()),
            );
        }
        MeetingCommand::List { agreement, db } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            let mut meetings = governance::meetings(store.as_ref(), &agreement.id).await?;
            if meetings.is_empty() {
                outln!(
                    "No meetings are recorded for {}. Record one with `concordat meeting record --agreement {} --file FILE`.",
                    agreement.id,
                    agreement.id
                );
                return Ok(ExitCode::SUCCESS);
            }
            meetings.sort_by(|a, b| (a.date, &a.reference).cmp(&(b.date, &b.reference)));
            let log = governance::decision_log(store.as_ref(), &agreement.id, "", false).await?;
            let width = meetings
                .iter()
                .map(|m| m.reference.chars().count())
                .max()
                .unwrap_or(9)
                .max(9);
            outln!(
                "{:<width$} {:<10} {:<9} {:>7} {:>9}  body",
                "reference",
                "date",
                "status",
                "present",
                "decisions"
            );
            for m in &meetings {
                let decided = log
                    .iter()
                    .filter(|l| l.decision.proposal.meeting.as_deref() == Some(&m.reference))
                    .count();
                outln!(
                    "{:<width$} {:<10} {:<9} {:>7} {:>9}  {}",
                    m.reference,
                    m.date.to_string(),
                    status_text(m.status),
                    m.attendance.len(),
                    decided,
                    body_name(&agreement, &m.body)
                );
            }
        }
        MeetingCommand::Show {
            agreement,
            meeting,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            let Some(m) = governance::meeting(store.as_ref(), &agreement.id, &meeting).await?
            else {
                bail!(
                    "--meeting: there is no meeting {meeting} recorded for {} (see `concordat meeting list --agreement {}`)",
                    agreement.id,
                    agreement.id
                );
            };
            let papers = governance::papers(store.as_ref(), &agreement.id, &m.reference).await?;
            let decisions: Vec<LoggedDecision> =
                governance::decision_log(store.as_ref(), &agreement.id, "", false)
                    .await?
                    .into_iter()
                    .filter(|l| l.decision.proposal.meeting.as_deref() == Some(&m.reference))
                    .rev()
                    .collect();
            out!("{}", meeting_text(&agreement, &m, &papers, &decisions));
        }
        MeetingCommand::Paper {
            agreement,
            meeting,
            title,
            file,
            db,
        } => {
            let content =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "paper".into());
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            if governance::meeting(store.as_ref(), &agreement.id, &meeting)
                .await?
                .is_none()
            {
                bail!(
                    "--meeting: there is no meeting {meeting} recorded for {}. Nothing was recorded.",
                    agreement.id
                );
            }
            let size = content.len();
            let id = governance::add_paper(
                store.as_ref(),
                &actor(&db),
                &now(),
                &agreement.id,
                NewPaper {
                    meeting: &meeting,
                    title: &title,
                    file_name: &file_name,
                    content,
                },
            )
            .await
            .map_err(|e| {
                refusal_error(e, |f| match f {
                    "paper" => "FILE".to_string(),
                    other => format!("--{other}"),
                })
            })?;
            outln!(
                "Paper {id} added to meeting {meeting}: {} ({file_name}, {size} bytes)",
                title.trim()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn meeting_text(
    agreement: &Agreement,
    m: &Meeting,
    papers: &[concordat_store::PaperInfo],
    decisions: &[LoggedDecision],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} — {} ({})",
        m.reference,
        body_name(agreement, &m.body),
        m.date,
        status_text(m.status)
    );
    if let Some(place) = &m.location {
        let _ = writeln!(out, "at {place}");
    }
    let _ = writeln!(out, "\nPresent ({}):", m.attendance.len());
    if m.attendance.is_empty() {
        let _ = writeln!(out, "  (no attendance recorded)");
    }
    for a in &m.attendance {
        let mut line = format!("  {} — {}", a.name, a.capacity.as_str());
        if let Some(p) = &a.partner {
            let _ = write!(line, ", {}", finance::partner_name(agreement, p));
        }
        if let Some(f) = &a.substitute_for {
            let _ = write!(line, ", for {f}");
        }
        if !a.roles.is_empty() {
            let _ = write!(line, " ({})", a.roles.join(", "));
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\nDeclarations of interest:");
    if m.declarations.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for d in &m.declarations {
        let _ = writeln!(out, "  {}, item {}: {}", d.member, d.item, d.interest);
    }
    let _ = writeln!(out, "\nAgenda:");
    if m.agenda.is_empty() {
        let _ = writeln!(out, "  (none recorded)");
    }
    for item in &m.agenda {
        let _ = writeln!(out, "  {:>2}. {}", item.number, item.title);
    }
    let _ = writeln!(out, "\nPapers:");
    if papers.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for p in papers {
        let _ = writeln!(
            out,
            "  {}. {} ({}, {} bytes, sha256 {}) added {} by {}",
            p.paper_id,
            p.title,
            p.file_name,
            p.size_bytes,
            &p.sha256[..12.min(p.sha256.len())],
            p.added_at,
            p.added_by
        );
    }
    let _ = writeln!(out, "\nDecisions:");
    if decisions.is_empty() {
        let _ = writeln!(out, "  none recorded");
    }
    for l in decisions {
        let d = &l.decision;
        let p = &d.proposal;
        let _ = writeln!(
            out,
            "  {}{}: {} ({}, {}{})",
            p.reference,
            p.agenda_item
                .map(|i| format!(" (item {i})"))
                .unwrap_or_default(),
            p.title,
            governance::level_str(p.level),
            p.decision_type.as_str(),
            p.amount.map(|a| format!(", {a}")).unwrap_or_default()
        );
        let _ = writeln!(out, "      {}", d.basis);
    }
    out
}

pub(crate) async fn decision_cmd(command: DecisionCommand) -> Result<ExitCode> {
    match command {
        DecisionCommand::Record {
            agreement,
            file,
            db,
        } => {
            let (proposal, entries) = read_decision(&file)?;
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            let default_reason =
                format!("{}: {}", proposal.reference.trim(), proposal.title.trim());
            let described: Vec<String> = entries
                .iter()
                .map(|c| {
                    format!(
                        "{} {}{}{}: {}",
                        c.year,
                        c.service_line.trim(),
                        c.partner
                            .as_deref()
                            .map(|p| format!(" ({p})"))
                            .unwrap_or_default(),
                        c.locality
                            .as_deref()
                            .map(|l| format!(" [{l}]"))
                            .unwrap_or_default(),
                        c.annual
                    )
                })
                .collect();
            let changes: Vec<BudgetRequest> = entries
                .into_iter()
                .map(|c| BudgetRequest {
                    year: c.year,
                    service_line: c.service_line,
                    partner: c.partner,
                    locality: c.locality,
                    annual: c.annual,
                    phasing: c.phasing,
                    client_income: c.client_income.unwrap_or(Money::ZERO),
                    reason: c.reason.unwrap_or_else(|| default_reason.clone()),
                    // The decision being recorded is the authority; the app sets it.
                    authority: None,
                    delegated: None,
                    new_line: c.new_line,
                })
                .collect();
            let recorded = governance::record_decision(
                store.as_ref(),
                &actor(&db),
                &now(),
                &agreement,
                &proposal,
                changes,
            )
            .await
            .map_err(|e| {
                let name = in_file(&file);
                // A budget change's own fault is in `[[budget_changes]]`.
                match e.downcast::<BudgetRefusal>() {
                    Ok(r) => anyhow!(
                        "{}: budget_changes: {}: {}. Nothing was recorded.",
                        file.display(),
                        r.field,
                        // The app's words are a form's; in a file, a new line is said so by
                        // its key.
                        r.message
                            .replace("say so", "set new_line = true in the change")
                            .trim_end_matches('.')
                    ),
                    Err(e) => refusal_error(e, name),
                }
            })?;
            let d = &recorded.decision;
            let p = &d.proposal;
            outln!(
                "Recorded decision {} of {}: {} ({}, {}{})",
                p.reference,
                d.decided_on,
                p.title,
                governance::level_str(p.level),
                p.decision_type.as_str(),
                p.amount.map(|a| format!(", {a}")).unwrap_or_default()
            );
            outln!("  {}", d.basis);
            let fund = p.fund.as_deref().unwrap_or("");
            for (what, revision) in described.iter().zip(&recorded.revisions) {
                outln!("  budget {fund} {what}: revision {revision}");
            }
            if p.published {
                outln!("  published on the decisions page");
            }
        }
        DecisionCommand::List {
            agreement,
            search,
            published,
            format,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            let log =
                governance::decision_log(store.as_ref(), &agreement.id, &search, published).await?;
            match format {
                ListFormat::Csv => out!("{}", governance::decisions_csv(&log)),
                // Through a JSON value: a decision flattens its proposal, whose own
                // `decided_on` (for decisions outside a meeting) the decision's replaces, so
                // each key is written once.
                ListFormat::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::to_value(&log)?)?
                ),
                ListFormat::Table => out!("{}", decision_table(&agreement.id, &log, &search)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn decision_table(key: &str, log: &[LoggedDecision], search: &str) -> String {
    let mut out = String::new();
    if log.is_empty() {
        if search.trim().is_empty() {
            let _ = writeln!(out, "No decisions are recorded for {key}.");
        } else {
            let _ = writeln!(out, "No decision of {key} matches '{}'.", search.trim());
        }
        return out;
    }
    let width = log
        .iter()
        .map(|l| l.decision.proposal.reference.chars().count())
        .max()
        .unwrap_or(9)
        .max(9);
    let _ = writeln!(
        out,
        "{:<width$} {:<10} {:<9} {:<22} {:>16} {:<9}  title",
        "reference", "decided", "level", "type", "amount", "published"
    );
    for l in log {
        let d = &l.decision;
        let p = &d.proposal;
        let _ = writeln!(
            out,
            "{:<width$} {:<10} {:<9} {:<22} {:>16} {:<9}  {}",
            p.reference,
            d.decided_on.to_string(),
            governance::level_str(p.level),
            p.decision_type.as_str(),
            p.amount.map(|a| a.to_string()).unwrap_or_default(),
            if l.published { "yes" } else { "no" },
            p.title
        );
    }
    out
}
