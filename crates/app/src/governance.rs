//! Governance, as the faces ask for it: meetings and their papers, decisions checked against
//! the terms of reference and the scheme of delegation (with the budget changes they
//! authorise), the decision log, disputes, complaints, risks, notice and exit, and the
//! obligations calendar. Every check is the core's; every write goes through the store.

use anyhow::{Context, Result, anyhow};
use concordat_core::Money;
use concordat_core::agreement::{Agreement, DecisionLevelKind, DecisionType, Fund, RiskShare};
use concordat_core::governance::Refusal;
use concordat_core::obligations::{self, Obligation};
use concordat_core::proceedings::{
    self, Complaint, Decision, Dispute, Meeting, MeetingStatus, NoticeServed, Proposal,
    RecordError, Risk,
};
use concordat_core::statement::{self, MemorandumInput, Settlement};
use concordat_core::{FinancialYear, Period};
use concordat_store::{
    Actor, DecisionRow, PaperInfo, PaperRow, ProceedingKind, ProceedingRow, Store, StoredDecision,
};
use jiff::civil::Date;
use serde::Serialize;

use crate::finance;

/// Why a governance record or decision was refused, naming the field at fault.
#[derive(Debug)]
pub struct GovernanceRefusal {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for GovernanceRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GovernanceRefusal {}

impl From<Refusal> for GovernanceRefusal {
    fn from(r: Refusal) -> GovernanceRefusal {
        GovernanceRefusal {
            field: r.field(),
            message: capitalise(&r.to_string()),
        }
    }
}

impl From<RecordError> for GovernanceRefusal {
    fn from(e: RecordError) -> GovernanceRefusal {
        GovernanceRefusal {
            field: e.field,
            message: capitalise(&e.message),
        }
    }
}

pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn refused(field: &'static str, message: impl Into<String>) -> anyhow::Error {
    GovernanceRefusal {
        field,
        message: message.into(),
    }
    .into()
}

/// The day part of an RFC 3339 time, for records dated "today".
pub fn day_of(at: &str) -> Result<Date> {
    at.get(..10)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| anyhow!("{at:?} does not start with a date"))
}

fn decode<T: serde::de::DeserializeOwned>(
    kind: &str,
    reference: &str,
    v: &serde_json::Value,
) -> Result<T> {
    serde_json::from_value(v.clone())
        .with_context(|| format!("the stored {kind} {reference} cannot be read"))
}

// ---------------------------------------------------------------------------------------------
// Meetings

pub async fn meetings(store: &dyn Store, key: &str) -> Result<Vec<Meeting>> {
    store
        .proceedings(key, ProceedingKind::Meeting)
        .await?
        .iter()
        .map(|p| decode("meeting", &p.reference, &p.record))
        .collect()
}

pub async fn meeting(store: &dyn Store, key: &str, reference: &str) -> Result<Option<Meeting>> {
    Ok(meetings(store, key)
        .await?
        .into_iter()
        .find(|m| m.reference == reference))
}

/// Records a meeting (`new`) or replaces its record, once the core has checked it against
/// its body.
pub async fn record_meeting(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    agreement: &Agreement,
    meeting: &Meeting,
    new: bool,
) -> Result<()> {
    proceedings::check_meeting(agreement, meeting).map_err(GovernanceRefusal::from)?;
    if !new {
        let decided: Vec<String> = decisions(store, &agreement.id)
            .await?
            .into_iter()
            .filter(|d| d.decision.meeting.as_deref() == Some(&meeting.reference))
            .map(|d| d.decision.reference)
            .collect();
        if !decided.is_empty() {
            return Err(refused(
                "attendance",
                format!(
                    "Meeting {} has decisions recorded ({}); its attendance and declarations are what they were checked against, so they cannot change",
                    meeting.reference,
                    decided.join(", ")
                ),
            ));
        }
    }
    let body = proceedings::body(agreement, &meeting.body).map_err(GovernanceRefusal::from)?;
    store
        .put_proceeding(
            actor,
            at,
            ProceedingRow {
                partnership_key: agreement.id.clone(),
                kind: ProceedingKind::Meeting,
                reference: meeting.reference.clone(),
                status: match meeting.status {
                    MeetingStatus::Scheduled => "scheduled".into(),
                    MeetingStatus::Held => "held".into(),
                },
                title: body.name.clone(),
                dated: meeting.date.to_string(),
                record: serde_json::to_value(meeting)?,
                new,
            },
        )
        .await
        .map_err(|e| store_refusal("reference", e))
}

/// A store refusal (bad input, a reference taken) as a refusal on `field`; anything else
/// stays an error.
fn store_refusal(field: &'static str, e: concordat_store::StoreError) -> anyhow::Error {
    match e {
        concordat_store::StoreError::Invalid(message) => refused(field, capitalise(&message)),
        other => other.into(),
    }
}

/// A paper to add to a meeting.
pub struct NewPaper<'a> {
    pub meeting: &'a str,
    pub title: &'a str,
    pub file_name: &'a str,
    pub content: Vec<u8>,
}

pub async fn add_paper(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    key: &str,
    paper: NewPaper<'_>,
) -> Result<i64> {
    let NewPaper {
        meeting,
        title,
        file_name,
        content,
    } = paper;
    if title.trim().is_empty() {
        return Err(refused("title", "Enter the paper's title"));
    }
    if content.is_empty() {
        return Err(refused("paper", "Choose a file: the one given is empty"));
    }
    let media_type = media_type_of(file_name);
    store
        .add_paper(
            actor,
            at,
            PaperRow {
                partnership_key: key.to_string(),
                meeting: meeting.to_string(),
                title: title.trim().to_string(),
                file_name: file_name.to_string(),
                media_type: media_type.to_string(),
                content,
            },
        )
        .await
        .map_err(|e| store_refusal("paper", e))
}

/// The media type a paper is served with, from its extension; anything unknown is served as
/// a download.
pub fn media_type_of(file_name: &str) -> &'static str {
    let lower = file_name.to_ascii_lowercase();
    let ext = lower.rsplit('.').next().unwrap_or("");
    match ext {
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "csv" => "text/csv",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

pub async fn papers(store: &dyn Store, key: &str, meeting: &str) -> Result<Vec<PaperInfo>> {
    Ok(store.papers(key, meeting).await?)
}

// ---------------------------------------------------------------------------------------------
// Decisions

/// A budget change a decision authorises, in the words of the budget form.
pub type BudgetChange = crate::BudgetRequest;

/// What recording a decision did.
#[derive(Debug, Serialize)]
pub struct Recorded {
    pub decision: Decision,
    /// The budget revisions it set, in the order given.
    pub revisions: Vec<i64>,
}

/// Checks a proposal against the agreement and its meeting and, if it stands, records it
/// with the budget changes it authorises in one transaction. A refusal is a
/// [`GovernanceRefusal`] (or, for a budget change, a [`crate::BudgetRefusal`]); nothing is
/// written then.
pub async fn record_decision(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    agreement: &Agreement,
    proposal: &Proposal,
    changes: Vec<BudgetChange>,
) -> Result<Recorded> {
    let meeting = match &proposal.meeting {
        Some(m) => Some(meeting(store, &agreement.id, m).await?.ok_or_else(|| {
            refused(
                "meeting",
                format!("There is no meeting {m} recorded for this partnership"),
            )
        })?),
        None => None,
    };
    if proposal.reference.trim().is_empty() {
        return Err(refused("reference", "Enter a reference for the decision"));
    }
    if proposal.title.trim().is_empty() {
        return Err(refused("title", "Enter what the decision is about"));
    }
    let decision = proceedings::decide(agreement, proposal, meeting.as_ref())
        .map_err(GovernanceRefusal::from)?;
    let mut rows = Vec::new();
    if !changes.is_empty() {
        if !matches!(
            proposal.decision_type,
            DecisionType::BudgetRevision | DecisionType::Virement
        ) {
            return Err(refused(
                "decision_type",
                "Only a budget revision or a virement changes budget lines",
            ));
        }
        let fund_id = proposal
            .fund
            .as_deref()
            .ok_or_else(|| refused("fund", "Say which fund's budget the decision changes"))?;
        let fund = finance::fund(agreement, fund_id)?;
        for change in changes {
            rows.push(crate::budget_row(store, agreement, fund, change).await?.0);
        }
    }
    let row = decision_row(agreement, &decision)?;
    let revisions = store
        .record_decision(actor, at, row, rows)
        .await
        .map_err(|e| store_refusal("amount", e))?;
    Ok(Recorded {
        decision,
        revisions,
    })
}

pub(crate) fn decision_row(agreement: &Agreement, d: &Decision) -> Result<DecisionRow> {
    let p = &d.proposal;
    Ok(DecisionRow {
        partnership_key: agreement.id.clone(),
        reference: p.reference.trim().to_string(),
        decided_on: d.decided_on.to_string(),
        level: level_str(p.level).to_string(),
        decision_type: p.decision_type.as_str().to_string(),
        title: p.title.trim().to_string(),
        body: d.body.clone(),
        meeting: p.meeting.clone(),
        fund: p.fund.clone(),
        amount_pence: p.amount.map(Money::pence),
        published: p.published,
        record: serde_json::to_value(d)?,
    })
}

pub fn level_str(level: DecisionLevelKind) -> &'static str {
    match level {
        DecisionLevelKind::Reserved => "reserved",
        DecisionLevelKind::Joint => "joint",
        DecisionLevelKind::Delegated => "delegated",
    }
}

pub fn parse_level(text: &str) -> Option<DecisionLevelKind> {
    match text {
        "reserved" => Some(DecisionLevelKind::Reserved),
        "joint" => Some(DecisionLevelKind::Joint),
        "delegated" => Some(DecisionLevelKind::Delegated),
        _ => None,
    }
}

pub async fn decisions(store: &dyn Store, key: &str) -> Result<Vec<StoredDecision>> {
    Ok(store.decisions(key).await?)
}

/// One line of the decision log: the decision and what is left of what it authorised.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedDecision {
    pub decision: Decision,
    pub published: bool,
    pub used_increase: Money,
    pub used_decrease: Money,
    pub recorded_at: String,
    pub recorded_by: String,
}

/// The decision log, newest first, filtered by `query` (words that must all appear in its
/// reference, title, words, type, level, body or fund, in any case) and, if
/// `published_only`, to those published.
pub async fn decision_log(
    store: &dyn Store,
    key: &str,
    query: &str,
    published_only: bool,
) -> Result<Vec<LoggedDecision>> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let mut out = Vec::new();
    for d in decisions(store, key).await? {
        if published_only && !d.decision.published {
            continue;
        }
        let decision: Decision = decode("decision", &d.decision.reference, &d.decision.record)?;
        let p = &decision.proposal;
        let haystack = [
            p.reference.as_str(),
            p.title.as_str(),
            p.resolution.as_str(),
            p.decision_type.label(),
            p.level.label(),
            decision.body.as_deref().unwrap_or(""),
            p.fund.as_deref().unwrap_or(""),
            p.officer.as_deref().unwrap_or(""),
            decision.basis.as_str(),
        ]
        .join(" ")
        .to_lowercase();
        if words.iter().all(|w| haystack.contains(w)) {
            out.push(LoggedDecision {
                published: d.decision.published,
                used_increase: Money::from_pence(d.used_increase_pence),
                used_decrease: Money::from_pence(d.used_decrease_pence),
                recorded_at: d.recorded_at,
                recorded_by: d.recorded_by,
                decision,
            });
        }
    }
    out.reverse();
    Ok(out)
}

/// The decision log as CSV, one decision a row.
pub fn decisions_csv(log: &[LoggedDecision]) -> String {
    let mut out = String::from(
        "reference,decided_on,level,type,title,resolution,body,meeting,item,officer,partner,fund,amount,for,against,abstain,basis,published,recorded_by\n",
    );
    for l in log {
        let d = &l.decision;
        let p = &d.proposal;
        let tally = d.tally.as_ref();
        let cells = [
            p.reference.clone(),
            d.decided_on.to_string(),
            level_str(p.level).to_string(),
            p.decision_type.as_str().to_string(),
            p.title.clone(),
            p.resolution.clone(),
            d.body.clone().unwrap_or_default(),
            p.meeting.clone().unwrap_or_default(),
            p.agenda_item.map(|i| i.to_string()).unwrap_or_default(),
            p.officer.clone().unwrap_or_default(),
            p.partner.clone().unwrap_or_default(),
            p.fund.clone().unwrap_or_default(),
            p.amount.map(|a| a.to_plain()).unwrap_or_default(),
            tally.map(|t| t.for_votes.to_string()).unwrap_or_default(),
            tally.map(|t| t.against.to_string()).unwrap_or_default(),
            tally.map(|t| t.abstain.to_string()).unwrap_or_default(),
            d.basis.clone(),
            if l.published { "yes" } else { "no" }.to_string(),
            l.recorded_by.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn csv_cell(text: &str) -> String {
    // A leading =, +, - or @ would be a formula in a spreadsheet; quote it as text.
    let guarded = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

// ---------------------------------------------------------------------------------------------
// Disputes, complaints, risks

pub async fn disputes(store: &dyn Store, key: &str) -> Result<Vec<Dispute>> {
    records(store, key, ProceedingKind::Dispute).await
}

pub async fn complaints(store: &dyn Store, key: &str) -> Result<Vec<Complaint>> {
    records(store, key, ProceedingKind::Complaint).await
}

pub async fn risks(store: &dyn Store, key: &str) -> Result<Vec<Risk>> {
    records(store, key, ProceedingKind::Risk).await
}

pub async fn notice(store: &dyn Store, key: &str) -> Result<Option<NoticeServed>> {
    Ok(records(store, key, ProceedingKind::Notice).await?.pop())
}

async fn records<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    key: &str,
    kind: ProceedingKind,
) -> Result<Vec<T>> {
    store
        .proceedings(key, kind)
        .await?
        .iter()
        .map(|p| decode(kind.as_str(), &p.reference, &p.record))
        .collect()
}

/// A record as filed: its kind, reference, and what lists sort and show it by.
struct Filed<'a, T> {
    kind: ProceedingKind,
    reference: &'a str,
    status: &'a str,
    title: &'a str,
    dated: Date,
    record: &'a T,
    new: bool,
}

async fn put<T: Serialize>(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    key: &str,
    filed: Filed<'_, T>,
) -> Result<()> {
    let Filed {
        kind,
        reference,
        status,
        title,
        dated,
        record,
        new,
    } = filed;
    store
        .put_proceeding(
            actor,
            at,
            ProceedingRow {
                partnership_key: key.to_string(),
                kind,
                reference: reference.to_string(),
                status: status.to_string(),
                title: title.to_string(),
                dated: dated.to_string(),
                record: serde_json::to_value(record)?,
                new,
            },
        )
        .await
        .map_err(|e| store_refusal("reference", e))
}

fn dispute_status(d: &Dispute) -> &'static str {
    if d.resolved_on.is_some() {
        "resolved"
    } else {
        "open"
    }
}

/// What can be done to a dispute.
pub enum DisputeAction<'a> {
    Raise {
        reference: &'a str,
        subject: &'a str,
        raised_by: &'a str,
    },
    Escalate {
        reference: &'a str,
    },
    Resolve {
        reference: &'a str,
        outcome: &'a str,
    },
}

pub async fn dispute_action(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    agreement: &Agreement,
    on: Date,
    action: DisputeAction<'_>,
) -> Result<Dispute> {
    let (dispute, new) = match action {
        DisputeAction::Raise {
            reference,
            subject,
            raised_by,
        } => (
            Dispute::raise(agreement, reference.trim(), subject.trim(), raised_by, on)
                .map_err(GovernanceRefusal::from)?,
            true,
        ),
        DisputeAction::Escalate { reference } => {
            let mut d = find(disputes(store, &agreement.id).await?, reference, |d| {
                &d.reference
            })?;
            d.escalate(agreement, on).map_err(GovernanceRefusal::from)?;
            (d, false)
        }
        DisputeAction::Resolve { reference, outcome } => {
            let mut d = find(disputes(store, &agreement.id).await?, reference, |d| {
                &d.reference
            })?;
            d.resolve(on, outcome.trim())
                .map_err(GovernanceRefusal::from)?;
            (d, false)
        }
    };
    put(
        store,
        actor,
        at,
        &agreement.id,
        Filed {
            kind: ProceedingKind::Dispute,
            reference: &dispute.reference,
            status: dispute_status(&dispute),
            title: &dispute.subject,
            dated: dispute.raised_on,
            record: &dispute,
            new,
        },
    )
    .await?;
    Ok(dispute)
}

fn find<T>(list: Vec<T>, reference: &str, key: impl Fn(&T) -> &String) -> Result<T> {
    list.into_iter()
        .find(|x| key(x) == reference)
        .ok_or_else(|| refused("reference", format!("There is no {reference} recorded")))
}

pub enum ComplaintAction<'a> {
    Receive {
        reference: &'a str,
        kind: proceedings::FeedbackKind,
        summary: &'a str,
        handled_by: &'a str,
    },
    Acknowledge {
        reference: &'a str,
    },
    Respond {
        reference: &'a str,
        outcome: &'a str,
    },
}

pub async fn complaint_action(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    agreement: &Agreement,
    on: Date,
    action: ComplaintAction<'_>,
) -> Result<Complaint> {
    let (c, new) = match action {
        ComplaintAction::Receive {
            reference,
            kind,
            summary,
            handled_by,
        } => (
            Complaint::receive(
                agreement,
                reference.trim(),
                kind,
                on,
                summary.trim(),
                handled_by,
            )
            .map_err(GovernanceRefusal::from)?,
            true,
        ),
        ComplaintAction::Acknowledge { reference } => {
            let mut c = find(complaints(store, &agreement.id).await?, reference, |c| {
                &c.reference
            })?;
            c.acknowledge(on).map_err(GovernanceRefusal::from)?;
            (c, false)
        }
        ComplaintAction::Respond { reference, outcome } => {
            let mut c = find(complaints(store, &agreement.id).await?, reference, |c| {
                &c.reference
            })?;
            c.respond(on, outcome.trim())
                .map_err(GovernanceRefusal::from)?;
            (c, false)
        }
    };
    let status = if c.responded_on.is_some() {
        "closed"
    } else {
        "open"
    };
    put(
        store,
        actor,
        at,
        &agreement.id,
        Filed {
            kind: ProceedingKind::Complaint,
            reference: &c.reference,
            status,
            title: &c.summary,
            dated: c.received_on,
            record: &c,
            new,
        },
    )
    .await?;
    Ok(c)
}

/// Adds a risk to the register (`new`) or replaces its entry (re-scored, reviewed, closed).
pub async fn put_risk(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    agreement: &Agreement,
    risk: &Risk,
    new: bool,
) -> Result<()> {
    risk.check().map_err(GovernanceRefusal::from)?;
    let status = if risk.closed_on.is_some() {
        "closed"
    } else {
        "open"
    };
    put(
        store,
        actor,
        at,
        &agreement.id,
        Filed {
            kind: ProceedingKind::Risk,
            reference: &risk.reference,
            status,
            title: &risk.title,
            dated: risk.review_on,
            record: risk,
            new,
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Notice and exit

/// Records notice served by `served_by` on `served_on`: the end date from the notice terms,
/// and the agreement in notice. Refused if notice is already served.
pub async fn serve_notice(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    agreement: &Agreement,
    served_by: &str,
    served_on: Date,
    reason: &str,
) -> Result<NoticeServed> {
    if let Some(n) = notice(store, &agreement.id).await? {
        return Err(refused(
            "served_by",
            format!(
                "Notice is already served (by {} on {}; the agreement ends on {})",
                n.served_by, n.served_on, n.ends_on
            ),
        ));
    }
    let n = proceedings::serve_notice(agreement, served_by, served_on, reason.trim())
        .map_err(GovernanceRefusal::from)?;
    put(
        store,
        actor,
        at,
        &agreement.id,
        Filed {
            kind: ProceedingKind::Notice,
            reference: "notice",
            status: "served",
            title: "Notice served",
            dated: n.served_on,
            record: &n,
            new: true,
        },
    )
    .await?;
    Ok(n)
}

/// The final statement of one pooled fund on exit: its last year settled under the
/// agreement's exit rules (or, where it has none, the fund's own risk share, said in
/// `basis`).
#[derive(Debug, Serialize)]
pub struct ExitStatement {
    pub fund: String,
    pub year: FinancialYear,
    pub basis: String,
    pub settlement: Settlement,
}

pub async fn exit_statement(
    store: &dyn Store,
    agreement: &Agreement,
    fund: &Fund,
    year: FinancialYear,
) -> Result<ExitStatement> {
    let mut exit_fund = fund.clone();
    let basis = match &agreement.exit {
        Some(exit) if exit.overspend.is_some() || exit.underspend.is_some() => {
            exit_fund.risk_share = Some(RiskShare {
                overspend: exit.overspend.clone(),
                underspend: exit.underspend.clone(),
                note: exit.text.clone(),
                illustrative: false,
            });
            let part = |r: &Option<concordat_core::agreement::RiskRule>| {
                r.as_ref().map_or("as the fund's risk share".to_string(), |r| r.describe())
            };
            format!(
                "The agreement's exit terms: an overspend {}; an underspend {}.",
                part(&exit.overspend),
                part(&exit.underspend)
            )
        }
        _ => "The agreement has no exit terms for the pooled balances, so the fund's own risk share applies.".to_string(),
    };
    let as_at = year.period(12).expect("a year has a P12");
    let data = finance::fund_year(store, &agreement.id, &exit_fund, year, as_at).await?;
    let received =
        finance::contributions_received(store, &agreement.id, &exit_fund, year, None).await?;
    let other =
        finance::other_pools_year_end_underspend(store, agreement, &exit_fund, year).await?;
    let settlement = statement::memorandum(&MemorandumInput {
        fund: &exit_fund,
        year,
        totals: &data.totals,
        other_income: Vec::new(),
        received,
        other_pools_underspend: other,
    })?
    .settlement;
    Ok(ExitStatement {
        fund: fund.id.clone(),
        year,
        basis,
        settlement,
    })
}

// ---------------------------------------------------------------------------------------------
// Contribution variations

/// A contribution that a new version of the agreement changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContributionChange {
    pub fund: String,
    pub partner: String,
    pub year: FinancialYear,
    pub before: Money,
    pub after: Money,
}

/// The contributions (by fund, partner and year, one-off and recurrent added together) that
/// differ between two versions.
pub fn contribution_changes(old: &Agreement, new: &Agreement) -> Vec<ContributionChange> {
    use std::collections::BTreeMap;
    let totals = |a: &Agreement| {
        let mut t: BTreeMap<(String, String, FinancialYear), i64> = BTreeMap::new();
        for f in &a.funds {
            for c in &f.contributions {
                *t.entry((f.id.clone(), c.partner.clone(), c.year))
                    .or_default() += c.amount.pence();
            }
        }
        t
    };
    let (before, after) = (totals(old), totals(new));
    let mut keys: Vec<_> = before.keys().chain(after.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let b = before.get(&k).copied().unwrap_or(0);
            let a = after.get(&k).copied().unwrap_or(0);
            (a != b).then(|| ContributionChange {
                fund: k.0,
                partner: k.1,
                year: k.2,
                before: Money::from_pence(b),
                after: Money::from_pence(a),
            })
        })
        .collect()
}

/// Loads a new version of an agreement file. If it changes contributions, it needs the
/// contribution-variation decision that authorised them (`authority`, a reference in the
/// decision log), whose amount covers the changes and whose fund, if it names one, is theirs;
/// it is refused otherwise, on the field `authority`, and nothing is written.
pub async fn load_version(
    store: &dyn Store,
    actor: &Actor,
    at: &str,
    file: &concordat_io::AgreementFile,
    agreement: &Agreement,
    authority: Option<String>,
) -> Result<concordat_store::LoadOutcome> {
    let authority = authority
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    if let Some(stored) = store.get_agreement(&agreement.id).await? {
        let old: Agreement = serde_json::from_value(stored.model_json)
            .context("the stored agreement cannot be read")?;
        let changes = contribution_changes(&old, agreement);
        if !changes.is_empty() {
            let listed: Vec<String> = changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}: {} to {}",
                        c.fund, c.partner, c.year, c.before, c.after
                    )
                })
                .collect();
            let Some(reference) = &authority else {
                return Err(refused(
                    "authority",
                    format!(
                        "This version varies contributions ({}); give the reference of the contribution-variation decision that authorised it",
                        listed.join("; ")
                    ),
                ));
            };
            let decision = decisions(store, &agreement.id)
                .await?
                .into_iter()
                .find(|d| &d.decision.reference == reference)
                .ok_or_else(|| {
                    refused(
                        "authority",
                        format!("There is no decision {reference} in the decision log"),
                    )
                })?;
            if decision.decision.decision_type != DecisionType::ContributionVariation.as_str() {
                return Err(refused(
                    "authority",
                    format!(
                        "Decision {reference} is a {}, not a contribution variation",
                        decision.decision.decision_type
                    ),
                ));
            }
            if let Some(fund) = &decision.decision.fund
                && let Some(other) = changes.iter().find(|c| &c.fund != fund)
            {
                return Err(refused(
                    "authority",
                    format!(
                        "Decision {reference} is about fund {fund}, but the version also varies {}",
                        other.fund
                    ),
                ));
            }
            let total: i64 = changes
                .iter()
                .map(|c| (c.after.pence() - c.before.pence()).abs())
                .sum();
            let authorised = decision.decision.amount_pence.unwrap_or(0);
            if total > authorised {
                return Err(refused(
                    "authority",
                    format!(
                        "Decision {reference} authorises variations of up to {}; this version varies contributions by {} in all ({})",
                        Money::from_pence(authorised),
                        Money::from_pence(total),
                        listed.join("; ")
                    ),
                ));
            }
        }
    }
    let mut load = crate::agreement_load(file, agreement)?;
    load.authority = authority;
    store
        .load_agreement(actor, at, load)
        .await
        .map_err(|e| store_refusal("authority", e))
}

// ---------------------------------------------------------------------------------------------
// The calendar

/// Everything with a date, from the agreement and from the records, for the financial years
/// `from` to `to`, by date.
pub async fn calendar(
    store: &dyn Store,
    agreement: &Agreement,
    from: FinancialYear,
    to: FinancialYear,
) -> Result<Vec<Obligation>> {
    let key = &agreement.id;
    let mut out = obligations::obligations(agreement, from, to);
    let first = from.first_day();
    let last = to.last_day();
    let from_records = proceedings::obligations(
        &agreement.bodies,
        &meetings(store, key).await?,
        &disputes(store, key).await?,
        &complaints(store, key).await?,
        &risks(store, key).await?,
        notice(store, key).await?.as_ref(),
    );
    // Open items stay on the calendar however long ago they fell due: that is what overdue
    // means.
    out.extend(
        from_records
            .into_iter()
            .filter(|o| (o.due >= first || o.open) && o.due <= last),
    );
    out.sort_by(|x, y| (x.due, x.kind, &x.title).cmp(&(y.due, y.kind, &y.title)));
    Ok(out)
}

/// The years a calendar shows by default: the one containing `today` and the next.
pub fn calendar_years(today: Date) -> (FinancialYear, FinancialYear) {
    let this = Period::containing(today).year();
    (this, this.next())
}
