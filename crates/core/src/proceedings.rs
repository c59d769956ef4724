//! What the partnership's bodies and officers do, as records: meetings (attendance,
//! declarations of interest, agenda), decisions and their votes, disputes on the agreement's
//! escalation ladder, complaints and compliments under the joint protocol, the risk register,
//! and notice served. Each record is built here from what a person entered and the agreement,
//! and checked; the store keeps the record as it is built.

use std::collections::BTreeMap;

use jiff::Span;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::Money;
use crate::agreement::{Agreement, Body, DecisionLevelKind, DecisionType, DisputeTerms};
use crate::governance::{
    BodyDecision, Present, Refusal, Tally, Vote, check_body_decision, check_officer_decision,
};
use crate::obligations::{Obligation, ObligationKind};

// ---------------------------------------------------------------------------------------------
// Meetings

/// In what capacity someone attends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capacity {
    /// A voting member, in their own seat.
    Member,
    /// Standing in for a voting member, with their vote.
    Substitute,
    /// A co-opted member: takes part, never votes.
    CoOpted,
    /// An officer or guest: neither a member nor counted.
    InAttendance,
}

impl Capacity {
    pub const ALL: [Capacity; 4] = [
        Capacity::Member,
        Capacity::Substitute,
        Capacity::CoOpted,
        Capacity::InAttendance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capacity::Member => "member",
            Capacity::Substitute => "substitute",
            Capacity::CoOpted => "co-opted",
            Capacity::InAttendance => "in-attendance",
        }
    }

    pub fn parse(text: &str) -> Option<Capacity> {
        Capacity::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    pub name: String,
    /// The partner whose seat they fill; none for co-opted members and guests.
    #[serde(default)]
    pub partner: Option<String>,
    pub capacity: Capacity,
    /// For a substitute: the member they stand in for.
    #[serde(default)]
    pub substitute_for: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    pub member: String,
    /// The agenda item the interest is in.
    pub item: u32,
    pub interest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaItem {
    pub number: u32,
    pub title: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeetingStatus {
    Scheduled,
    Held,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    pub reference: String,
    /// The body's id in the agreement.
    pub body: String,
    pub date: Date,
    pub status: MeetingStatus,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub attendance: Vec<Attendee>,
    #[serde(default)]
    pub declarations: Vec<Declaration>,
    #[serde(default)]
    pub agenda: Vec<AgendaItem>,
}

/// Why a record cannot be made as entered (other than a decision being refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RecordError {
    /// The field at fault, as the forms and the API name it.
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> RecordError {
    RecordError {
        field,
        message: message.into(),
    }
}

fn required(field: &'static str, what: &str, value: &str) -> Result<(), RecordError> {
    if value.trim().is_empty() {
        Err(bad(field, format!("enter {what}")))
    } else {
        Ok(())
    }
}

/// Checks a meeting as entered against its body: the body exists, everyone's capacity is one
/// the body allows, declarations are of people present on items on the agenda.
pub fn check_meeting(agreement: &Agreement, meeting: &Meeting) -> Result<(), RecordError> {
    required(
        "reference",
        "a reference for the meeting",
        &meeting.reference,
    )?;
    let body = body(agreement, &meeting.body).map_err(|e| bad("body", e.to_string()))?;
    let mut numbers = std::collections::BTreeSet::new();
    for item in &meeting.agenda {
        required("agenda", "a title for each agenda item", &item.title)?;
        if !numbers.insert(item.number) {
            return Err(bad(
                "agenda",
                format!("agenda item {} is listed twice", item.number),
            ));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for a in &meeting.attendance {
        required("attendance", "the name of each person present", &a.name)?;
        if !names.insert(a.name.as_str()) {
            return Err(bad("attendance", format!("{} is listed twice", a.name)));
        }
    }
    if meeting.status == MeetingStatus::Held {
        present(body, &meeting.attendance).map_err(|e| bad("attendance", e.to_string()))?;
    }
    for d in &meeting.declarations {
        if !names.contains(d.member.as_str()) {
            return Err(bad(
                "declarations",
                format!(
                    "{} declared an interest but is not recorded as present",
                    d.member
                ),
            ));
        }
        if !numbers.contains(&d.item) {
            return Err(bad(
                "declarations",
                format!(
                    "{}'s declaration is on item {}, which is not on the agenda",
                    d.member, d.item
                ),
            ));
        }
        required("declarations", "what the interest is", &d.interest)?;
    }
    Ok(())
}

/// The body with this id, or a refusal naming the ones there are.
pub fn body<'a>(agreement: &'a Agreement, id: &str) -> Result<&'a Body, Refusal> {
    agreement
        .bodies
        .iter()
        .find(|b| b.id == id)
        .ok_or_else(|| Refusal::UnknownBody {
            body: id.to_string(),
            known: agreement
                .bodies
                .iter()
                .map(|b| b.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Who counts at a meeting of `body`, from its attendance: voting members and substitutes
/// with their partner, co-optees and those in attendance as non-voting. Where the body has a
/// roster, members and co-optees must be on it in that capacity and substitutes must be
/// named by the member they stand in for; either way no partner may have more voting members
/// present than it has seats.
pub fn present(body: &Body, attendance: &[Attendee]) -> Result<Vec<Present>, Refusal> {
    let roster = |name: &str| body.roster.iter().find(|r| r.name == name);
    let seat_of = |partner: &str| body.seats.iter().find(|s| s.partner == partner);
    let names: std::collections::BTreeSet<&str> =
        attendance.iter().map(|a| a.name.as_str()).collect();
    let mut out = Vec::new();
    for a in attendance {
        let (partner, voting) = match a.capacity {
            Capacity::InAttendance => (None, false),
            Capacity::Member | Capacity::CoOpted if !body.roster.is_empty() => {
                let r = roster(&a.name).ok_or_else(|| Refusal::NotOnRoster {
                    member: a.name.clone(),
                    body: body.name.clone(),
                })?;
                // The roster, not the entry, says whether they vote: a co-optee entered as a
                // member still has no vote.
                (
                    r.partner.clone(),
                    r.voting && a.capacity == Capacity::Member,
                )
            }
            Capacity::Member => (a.partner.clone(), true),
            Capacity::CoOpted => (None, false),
            Capacity::Substitute => {
                let for_member = a.substitute_for.clone().unwrap_or_default();
                if names.contains(for_member.as_str()) {
                    return Err(Refusal::SubstituteAndMemberBothPresent {
                        member: a.name.clone(),
                        for_member,
                    });
                }
                if body.roster.is_empty() {
                    if for_member.is_empty() {
                        return Err(Refusal::NotANamedSubstitute {
                            member: a.name.clone(),
                            for_member: "no one".into(),
                        });
                    }
                    (a.partner.clone(), true)
                } else {
                    let r = roster(&for_member)
                        .filter(|r| r.substitutes.iter().any(|s| s == &a.name))
                        .ok_or_else(|| Refusal::NotANamedSubstitute {
                            member: a.name.clone(),
                            for_member: for_member.clone(),
                        })?;
                    (r.partner.clone(), r.voting)
                }
            }
        };
        if voting {
            let Some(p) = partner.as_deref() else {
                return Err(Refusal::NoSeatForPartner {
                    partner: "(no partner given)".into(),
                    body: body.name.clone(),
                });
            };
            if !body.seats.is_empty() && seat_of(p).is_none() {
                return Err(Refusal::NoSeatForPartner {
                    partner: p.to_string(),
                    body: body.name.clone(),
                });
            }
        }
        out.push(Present {
            member: a.name.clone(),
            partner: if voting { partner } else { None },
            voting,
            roles: a.roles.clone(),
        });
    }
    let mut per_partner: BTreeMap<&str, u32> = BTreeMap::new();
    for p in out.iter().filter(|p| p.voting) {
        if let Some(partner) = p.partner.as_deref() {
            *per_partner.entry(partner).or_default() += 1;
        }
    }
    for (partner, count) in per_partner {
        if let Some(seats) = seat_of(partner)
            && count > seats.voting
        {
            return Err(Refusal::MoreThanSeats {
                body: body.name.clone(),
                partner: partner.to_string(),
                seats: seats.voting,
                present: count,
            });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Decisions

/// A decision as proposed: what a person enters before it is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub reference: String,
    pub title: String,
    /// The words of the decision, as minuted.
    pub resolution: String,
    pub level: DecisionLevelKind,
    pub decision_type: DecisionType,
    /// For a decision taken at a meeting.
    #[serde(default)]
    pub meeting: Option<String>,
    #[serde(default)]
    pub agenda_item: Option<u32>,
    /// For a delegated decision: the officer's title or Concordat role.
    #[serde(default)]
    pub officer: Option<String>,
    /// For a reserved decision taken outside a meeting here: the partner taking it.
    #[serde(default)]
    pub partner: Option<String>,
    /// For a decision outside a meeting: when it was taken.
    #[serde(default)]
    pub decided_on: Option<Date>,
    #[serde(default)]
    pub fund: Option<String>,
    /// What it authorises, for a decision that moves money.
    #[serde(default)]
    pub amount: Option<Money>,
    #[serde(default)]
    pub votes: Vec<Vote>,
    /// Shown on the public decisions page.
    #[serde(default)]
    pub published: bool,
}

/// A decision that stands, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    #[serde(flatten)]
    pub proposal: Proposal,
    pub decided_on: Date,
    /// The body that took it, for a decision at a meeting.
    pub body: Option<String>,
    pub tally: Option<Tally>,
    /// How it was checked, in words, for the decision log.
    pub basis: String,
}

/// Checks a proposal against the agreement (its bodies' terms of reference and its scheme of
/// delegation) and, for a decision at a meeting, against that meeting; `Ok` with the decision
/// as it is to be recorded, or the reason it does not stand.
pub fn decide(
    agreement: &Agreement,
    proposal: &Proposal,
    meeting: Option<&Meeting>,
) -> Result<Decision, Refusal> {
    let p = proposal;
    let kind = p.decision_type;
    if kind.moves_money() && p.amount.is_none() {
        return Err(Refusal::AmountMissing {
            decision_type: kind.label().to_lowercase(),
        });
    }
    if p.amount.is_some_and(|a| a.is_negative()) {
        return Err(Refusal::NegativeAmount);
    }
    if let Some(fund) = &p.fund
        && !agreement.funds.iter().any(|f| &f.id == fund)
    {
        return Err(Refusal::UnknownFund { fund: fund.clone() });
    }
    let amount = p.amount.unwrap_or(Money::ZERO);
    match (p.level, meeting) {
        (DecisionLevelKind::Delegated, _) => {
            let officer = p
                .officer
                .as_deref()
                .filter(|o| !o.trim().is_empty())
                .ok_or(Refusal::NeedsOfficer)?;
            check_officer_decision(&agreement.decision_levels, officer, kind, amount)?;
            let decided_on = meeting
                .map(|m| m.date)
                .or(p.decided_on)
                .ok_or(Refusal::NeedsDate)?;
            let limit = agreement
                .decision_levels
                .iter()
                .filter(|l| {
                    l.officer.as_deref() == Some(officer) || l.role.as_deref() == Some(officer)
                })
                .filter_map(|l| l.limit)
                .max();
            Ok(Decision {
                proposal: p.clone(),
                decided_on,
                body: None,
                tally: None,
                basis: match limit {
                    Some(limit) => format!(
                        "Delegated: {officer} may decide up to {limit} under the scheme of delegation"
                    ),
                    None => format!("Delegated: {officer} under the scheme of delegation"),
                },
            })
        }
        (DecisionLevelKind::Reserved, None) => {
            let partner = p
                .partner
                .as_deref()
                .filter(|x| !x.trim().is_empty())
                .ok_or(Refusal::NeedsPartner)?;
            let Some(named) = agreement.partners.iter().find(|x| x.id == partner) else {
                return Err(Refusal::UnknownPartner {
                    partner: partner.to_string(),
                });
            };
            let decided_on = p.decided_on.ok_or(Refusal::NeedsDate)?;
            Ok(Decision {
                proposal: p.clone(),
                decided_on,
                body: None,
                tally: None,
                basis: format!("Reserved to {}, which took it alone", named.name),
            })
        }
        (DecisionLevelKind::Joint, None) => Err(Refusal::NeedsMeeting),
        (level, Some(m)) => {
            if m.status != MeetingStatus::Held {
                return Err(Refusal::MeetingNotHeld {
                    meeting: m.reference.clone(),
                });
            }
            let body = body(agreement, &m.body)?;
            if kind.moves_money() && !body.budget_decisions {
                return Err(Refusal::NoBudgetPowers {
                    body: body.name.clone(),
                });
            }
            let present = present(body, &m.attendance)?;
            let interests: Vec<String> = m
                .declarations
                .iter()
                .filter(|d| p.agenda_item.is_none_or(|i| i == d.item))
                .map(|d| d.member.clone())
                .collect();
            let tally = check_body_decision(&BodyDecision {
                body,
                level,
                present: &present,
                declared_interests: &interests,
                votes: &p.votes,
            })?;
            let voting = present.iter().filter(|x| x.voting).count();
            let mut basis = format!(
                "{} on {}: {voting} voting member{} present",
                body.name,
                m.date,
                if voting == 1 { "" } else { "s" }
            );
            if let Some(q) = &body.quorum {
                basis.push_str(&format!(", quorum {}", q.members));
                if q.each_partner {
                    basis.push_str(" with each partner");
                }
            }
            if !p.votes.is_empty() {
                basis.push_str(&format!(
                    "; {} for, {} against, {} abstaining",
                    tally.for_votes, tally.against, tally.abstain
                ));
                for (partner, (f, a, _)) in &tally.by_partner {
                    basis.push_str(&format!("; {partner} {f}–{a}"));
                }
            } else {
                basis.push_str("; agreed without a vote, no voting member against");
            }
            Ok(Decision {
                proposal: p.clone(),
                decided_on: m.date,
                body: Some(body.id.clone()),
                tally: Some(tally),
                basis,
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Disputes

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeStage {
    pub name: String,
    pub started_on: Date,
    /// When this step's time limit runs out, where the agreement gives one.
    pub due_on: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub reference: String,
    pub subject: String,
    /// The partner who raised it.
    pub raised_by: String,
    pub raised_on: Date,
    /// The steps reached, the current one last.
    pub stages: Vec<DisputeStage>,
    #[serde(default)]
    pub resolved_on: Option<Date>,
    #[serde(default)]
    pub outcome: Option<String>,
}

fn days_after(date: Date, days: u32) -> Option<Date> {
    date.checked_add(Span::new().days(i64::from(days))).ok()
}

fn stage(terms: &DisputeTerms, index: usize, on: Date) -> Option<DisputeStage> {
    terms.steps.get(index).map(|s| DisputeStage {
        name: s.name.clone(),
        started_on: on,
        due_on: s.days.and_then(|d| days_after(on, d)),
    })
}

impl Dispute {
    /// A dispute raised by `raised_by` on `raised_on`, at the first step of the ladder.
    pub fn raise(
        agreement: &Agreement,
        reference: &str,
        subject: &str,
        raised_by: &str,
        raised_on: Date,
    ) -> Result<Dispute, RecordError> {
        required("reference", "a reference for the dispute", reference)?;
        required("subject", "what the dispute is about", subject)?;
        check_partner(agreement, "raised_by", raised_by)?;
        let terms = dispute_terms(agreement)?;
        Ok(Dispute {
            reference: reference.to_string(),
            subject: subject.to_string(),
            raised_by: raised_by.to_string(),
            raised_on,
            stages: vec![stage(terms, 0, raised_on).expect("the ladder has a first step")],
            resolved_on: None,
            outcome: None,
        })
    }

    /// Moves the dispute to the next step of the ladder on `on`.
    pub fn escalate(&mut self, agreement: &Agreement, on: Date) -> Result<(), RecordError> {
        let terms = dispute_terms(agreement)?;
        if self.resolved_on.is_some() {
            return Err(bad("dispute", format!("{} is resolved", self.reference)));
        }
        let current = self.stages.last().expect("a dispute has a step");
        if on < current.started_on {
            return Err(bad(
                "date",
                format!(
                    "{on} is before the current step began ({})",
                    current.started_on
                ),
            ));
        }
        let next = stage(terms, self.stages.len(), on).ok_or_else(|| {
            bad(
                "dispute",
                format!(
                    "{} is at the last step of the agreement's ladder ({}); it can only be resolved",
                    self.reference, current.name
                ),
            )
        })?;
        self.stages.push(next);
        Ok(())
    }

    pub fn resolve(&mut self, on: Date, outcome: &str) -> Result<(), RecordError> {
        required("outcome", "how the dispute was resolved", outcome)?;
        if self.resolved_on.is_some() {
            return Err(bad(
                "dispute",
                format!("{} is resolved already", self.reference),
            ));
        }
        self.resolved_on = Some(on);
        self.outcome = Some(outcome.to_string());
        Ok(())
    }

    pub fn current(&self) -> &DisputeStage {
        self.stages.last().expect("a dispute has a step")
    }

    /// Open, and past the current step's time limit.
    pub fn overdue(&self, today: Date) -> bool {
        self.resolved_on.is_none() && self.current().due_on.is_some_and(|d| d < today)
    }
}

fn dispute_terms(agreement: &Agreement) -> Result<&DisputeTerms, RecordError> {
    agreement
        .disputes
        .as_ref()
        .filter(|t| !t.steps.is_empty())
        .ok_or_else(|| {
            bad(
                "dispute",
                "the agreement has no escalation ladder: add [[disputes.steps]] to its file",
            )
        })
}

fn check_partner(agreement: &Agreement, field: &'static str, id: &str) -> Result<(), RecordError> {
    if agreement.partners.iter().any(|p| p.id == id) {
        Ok(())
    } else {
        let known: Vec<&str> = agreement.partners.iter().map(|p| p.id.as_str()).collect();
        Err(bad(
            field,
            format!(
                "'{id}' is not a partner; the partners are {}",
                known.join(", ")
            ),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Complaints and compliments

/// Days to acknowledge and to respond where the agreement's protocol does not say.
pub const ACKNOWLEDGE_DAYS: u32 = 3;
pub const RESPOND_DAYS: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedbackKind {
    Complaint,
    Compliment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    pub reference: String,
    pub kind: FeedbackKind,
    pub received_on: Date,
    /// What it is about, without personal details: the record is seen by every partner.
    pub summary: String,
    /// The partner that handles it under the protocol.
    pub handled_by: String,
    pub acknowledge_by: Option<Date>,
    pub respond_by: Option<Date>,
    #[serde(default)]
    pub acknowledged_on: Option<Date>,
    #[serde(default)]
    pub responded_on: Option<Date>,
    #[serde(default)]
    pub outcome: Option<String>,
}

impl Complaint {
    /// A complaint or compliment received: a complaint gets acknowledgement and response dates
    /// from the protocol's days (or Concordat's defaults); a compliment is only noted.
    pub fn receive(
        agreement: &Agreement,
        reference: &str,
        kind: FeedbackKind,
        received_on: Date,
        summary: &str,
        handled_by: &str,
    ) -> Result<Complaint, RecordError> {
        required("reference", "a reference", reference)?;
        required("summary", "what it is about", summary)?;
        check_partner(agreement, "handled_by", handled_by)?;
        let terms = agreement.complaints.as_ref();
        let (ack, respond) = match kind {
            FeedbackKind::Compliment => (None, None),
            FeedbackKind::Complaint => (
                days_after(
                    received_on,
                    terms
                        .and_then(|t| t.acknowledge_days)
                        .unwrap_or(ACKNOWLEDGE_DAYS),
                ),
                days_after(
                    received_on,
                    terms.and_then(|t| t.respond_days).unwrap_or(RESPOND_DAYS),
                ),
            ),
        };
        Ok(Complaint {
            reference: reference.to_string(),
            kind,
            received_on,
            summary: summary.to_string(),
            handled_by: handled_by.to_string(),
            acknowledge_by: ack,
            respond_by: respond,
            acknowledged_on: None,
            responded_on: None,
            outcome: None,
        })
    }

    pub fn acknowledge(&mut self, on: Date) -> Result<(), RecordError> {
        if self.kind == FeedbackKind::Compliment {
            return Err(bad("complaint", "a compliment needs no acknowledgement"));
        }
        if on < self.received_on {
            return Err(bad("date", format!("{on} is before it was received")));
        }
        self.acknowledged_on = Some(on);
        Ok(())
    }

    pub fn respond(&mut self, on: Date, outcome: &str) -> Result<(), RecordError> {
        required("outcome", "the response or outcome", outcome)?;
        if on < self.received_on {
            return Err(bad("date", format!("{on} is before it was received")));
        }
        if self.kind == FeedbackKind::Complaint && self.acknowledged_on.is_none() {
            self.acknowledged_on = Some(on);
        }
        self.responded_on = Some(on);
        self.outcome = Some(outcome.to_string());
        Ok(())
    }

    /// The next date it is waiting on, if it is still open.
    pub fn next_due(&self) -> Option<(&'static str, Date)> {
        if self.responded_on.is_some() {
            return None;
        }
        match (self.acknowledged_on, self.acknowledge_by, self.respond_by) {
            (None, Some(a), _) => Some(("acknowledge", a)),
            (_, _, Some(r)) => Some(("respond", r)),
            _ => None,
        }
    }

    pub fn overdue(&self, today: Date) -> bool {
        self.next_due().is_some_and(|(_, d)| d < today)
    }
}

// ---------------------------------------------------------------------------------------------
// Risks

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    pub reference: String,
    pub title: String,
    pub owner: String,
    /// 1 (rare) to 5 (almost certain).
    pub likelihood: u8,
    /// 1 (negligible) to 5 (severe).
    pub impact: u8,
    #[serde(default)]
    pub mitigations: String,
    pub review_on: Date,
    #[serde(default)]
    pub closed_on: Option<Date>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskRating {
    Low,
    Medium,
    High,
}

impl RiskRating {
    pub fn label(self) -> &'static str {
        match self {
            RiskRating::Low => "Low",
            RiskRating::Medium => "Medium",
            RiskRating::High => "High",
        }
    }
}

impl Risk {
    pub fn check(&self) -> Result<(), RecordError> {
        required("reference", "a reference for the risk", &self.reference)?;
        required("title", "what the risk is", &self.title)?;
        required("owner", "who owns the risk", &self.owner)?;
        for (field, value) in [("likelihood", self.likelihood), ("impact", self.impact)] {
            if !(1..=5).contains(&value) {
                return Err(bad(field, format!("{field} is scored 1 to 5, not {value}")));
            }
        }
        Ok(())
    }

    /// Likelihood × impact, 1 to 25.
    pub fn score(&self) -> u8 {
        self.likelihood * self.impact
    }

    /// 15 and over is high, 8 to 14 medium, below 8 low: the bands of a common 5×5 matrix.
    pub fn rating(&self) -> RiskRating {
        match self.score() {
            15.. => RiskRating::High,
            8..=14 => RiskRating::Medium,
            _ => RiskRating::Low,
        }
    }

    pub fn review_overdue(&self, today: Date) -> bool {
        self.closed_on.is_none() && self.review_on < today
    }
}

// ---------------------------------------------------------------------------------------------
// Notice

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeServed {
    /// The partner who served it.
    pub served_by: String,
    pub served_on: Date,
    /// The agreement's last day in force, under its notice terms.
    pub ends_on: Date,
    #[serde(default)]
    pub reason: String,
    /// How the end date follows from the notice terms.
    pub reasoning: Vec<String>,
}

/// Notice served by `served_by` on `served_on`: its end date from the agreement's notice terms.
pub fn serve_notice(
    agreement: &Agreement,
    served_by: &str,
    served_on: Date,
    reason: &str,
) -> Result<NoticeServed, RecordError> {
    check_partner(agreement, "served_by", served_by)?;
    let outcome = crate::notice::earliest_end(agreement, served_on)
        .map_err(|e| bad("served_on", e.to_string()))?;
    Ok(NoticeServed {
        served_by: served_by.to_string(),
        served_on,
        ends_on: outcome.earliest_end,
        reason: reason.to_string(),
        reasoning: outcome.reasoning,
    })
}

// ---------------------------------------------------------------------------------------------
// Their dates, for the obligations calendar

/// What the records promise with a date: meetings, each open dispute's current step, each
/// open complaint's next date, each open risk's review, and the end of notice served.
pub fn obligations(
    bodies: &[Body],
    meetings: &[Meeting],
    disputes: &[Dispute],
    complaints: &[Complaint],
    risks: &[Risk],
    notice: Option<&NoticeServed>,
) -> Vec<Obligation> {
    let mut out = Vec::new();
    for m in meetings {
        let name = bodies
            .iter()
            .find(|b| b.id == m.body)
            .map_or(m.body.as_str(), |b| b.name.as_str());
        out.push(Obligation {
            due: m.date,
            kind: ObligationKind::Meeting,
            title: format!("{name} ({})", m.reference),
            basis: match m.status {
                MeetingStatus::Scheduled => "scheduled".into(),
                MeetingStatus::Held => "held".into(),
            },
            fund: None,
            open: false,
        });
    }
    for d in disputes.iter().filter(|d| d.resolved_on.is_none()) {
        let step = d.current();
        if let Some(due) = step.due_on {
            out.push(Obligation {
                due,
                kind: ObligationKind::DisputeStep,
                title: format!("Dispute {}: {} — time limit", d.reference, step.name),
                basis: format!(
                    "the agreement's escalation ladder; step began {}",
                    step.started_on
                ),
                fund: None,
                open: true,
            });
        }
    }
    for c in complaints {
        if let Some((what, due)) = c.next_due() {
            out.push(Obligation {
                due,
                kind: if what == "acknowledge" {
                    ObligationKind::ComplaintAcknowledgement
                } else {
                    ObligationKind::ComplaintResponse
                },
                title: format!("Complaint {}: {what} ({})", c.reference, c.handled_by),
                basis: format!("the joint complaints protocol; received {}", c.received_on),
                fund: None,
                open: true,
            });
        }
    }
    for r in risks.iter().filter(|r| r.closed_on.is_none()) {
        out.push(Obligation {
            due: r.review_on,
            kind: ObligationKind::RiskReview,
            title: format!("Review risk {}: {}", r.reference, r.title),
            basis: format!("the risk register; owner {}", r.owner),
            fund: None,
            open: true,
        });
    }
    if let Some(n) = notice {
        out.push(Obligation {
            due: n.ends_on,
            kind: ObligationKind::NoticeEnds,
            title: format!(
                "The agreement ends: notice served by {} on {}",
                n.served_by, n.served_on
            ),
            basis: n.reasoning.join(" "),
            fund: None,
            open: false,
        });
    }
    out
}

#[cfg(test)]
mod tests;
