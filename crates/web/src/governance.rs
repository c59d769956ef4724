//! The governance pages: bodies and the scheme of delegation, meetings (attendance,
//! declarations, agenda, papers), decision entry with its checks explained, the decision log
//! and its public page, disputes, complaints, risks, and notice and exit. Every check and
//! write is the app's; these handlers turn forms into its requests and its refusals into
//! error summaries.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concordat_app::governance::{self, ComplaintAction, DisputeAction, GovernanceRefusal};
use concordat_core::Money;
use concordat_core::access::Permission;
use concordat_core::agreement::{Agreement, Body, DecisionType, VotingMode};
use concordat_core::governance::{Choice, Vote};
use concordat_core::proceedings::{
    AgendaItem, Attendee, Capacity, Declaration, FeedbackKind, Meeting, MeetingStatus, Proposal,
    Risk,
};
use jiff::civil::Date;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Principal, SignedIn};
use crate::error::WebError;
use crate::pages::page;
use crate::pages::{agreement_crumbs, visible_agreement};
use crate::routes::{Access, Route};
use crate::views::{
    Block, Cell, Chrome, Field, FieldKind, Page, Section, cell, field, get_form, link, num,
    post_form, section, table, url_encode,
};

pub(crate) static ROUTES: &[Route] = &[
    page!(
        "GET",
        "/agreements/{key}/governance",
        "Bodies, their terms of reference and the scheme of delegation",
        Access::Partnership(Permission::Read),
        get(governance_page)
    ),
    page!(
        "GET",
        "/agreements/{key}/meetings",
        "Meetings, and the form to record one",
        Access::Partnership(Permission::Read),
        get(meetings_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/meetings",
        "Record a meeting",
        Access::Partnership(Permission::RecordProceedings),
        post(meeting_record)
    ),
    page!(
        "GET",
        "/agreements/{key}/meetings/{meeting}",
        "A meeting: attendance, declarations, agenda, papers, decisions",
        Access::Partnership(Permission::Read),
        get(meeting_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/meetings/{meeting}",
        "Update a meeting's record (before it has decisions)",
        Access::Partnership(Permission::RecordProceedings),
        post(meeting_update)
    ),
    page!(
        "POST",
        "/agreements/{key}/meetings/{meeting}/decisions",
        "Record a decision taken at the meeting",
        Access::Partnership(Permission::RecordProceedings),
        post(meeting_decision)
    ),
    page!(
        "POST",
        "/agreements/{key}/meetings/{meeting}/papers",
        "Add a paper to the meeting",
        Access::Partnership(Permission::RecordProceedings),
        post(paper_upload).layer(axum::extract::DefaultBodyLimit::max(PAPER_LIMIT_BYTES))
    ),
    page!(
        "GET",
        "/agreements/{key}/meetings/{meeting}/papers/{paper}",
        "Download a paper",
        Access::Partnership(Permission::Read),
        get(paper_download)
    ),
    page!(
        "GET",
        "/agreements/{key}/decisions",
        "The decision log, searchable",
        Access::Partnership(Permission::Read),
        get(decisions_page)
    ),
    page!(
        "GET",
        "/agreements/{key}/decisions.csv",
        "The decision log as CSV",
        Access::Partnership(Permission::Read),
        get(decisions_csv)
    ),
    page!(
        "POST",
        "/agreements/{key}/decisions",
        "Record a decision outside a meeting (delegated or reserved)",
        Access::Partnership(Permission::RecordProceedings),
        post(decision_outside_meeting)
    ),
    page!(
        "GET",
        "/public/{key}/decisions",
        "Published decisions, with no sign-in",
        Access::Public,
        get(public_decisions)
    ),
    page!(
        "GET",
        "/agreements/{key}/disputes",
        "Disputes and the escalation ladder",
        Access::Partnership(Permission::Read),
        get(disputes_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/disputes",
        "Raise, escalate or resolve a dispute",
        Access::Partnership(Permission::KeepRegisters),
        post(dispute_change)
    ),
    page!(
        "GET",
        "/agreements/{key}/complaints",
        "Complaints and compliments",
        Access::Partnership(Permission::Read),
        get(complaints_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/complaints",
        "Receive, acknowledge or answer a complaint",
        Access::Partnership(Permission::KeepRegisters),
        post(complaint_change)
    ),
    page!(
        "GET",
        "/agreements/{key}/risks",
        "The risk register",
        Access::Partnership(Permission::Read),
        get(risks_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/risks",
        "Add or update a risk",
        Access::Partnership(Permission::KeepRegisters),
        post(risk_change)
    ),
    page!(
        "GET",
        "/agreements/{key}/notice",
        "Notice, and the exit statement",
        Access::Partnership(Permission::Read),
        get(notice_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/notice",
        "Record notice served by a partner",
        Access::Partnership(Permission::ServeNotice),
        post(notice_serve)
    ),
];

/// Meeting papers: reports and minutes, not ledgers.
pub(crate) const PAPER_LIMIT_BYTES: usize = 50 * 1024 * 1024;

type Errors = Vec<(String, String)>;

fn error_for(errors: &Errors, id: &str) -> Option<String> {
    errors.iter().find(|(_, f)| f == id).map(|(m, _)| m.clone())
}

/// A refusal from the app as an error on its field; anything else is a fault.
fn refusal(e: anyhow::Error) -> Result<(String, String), WebError> {
    match concordat_app::Refused::of(e).map_err(WebError::Internal)? {
        concordat_app::Refused::Governance(r) => Ok((r.message, r.field.to_string())),
        // The form gives budget changes as one field.
        concordat_app::Refused::Budget(r) => Ok((r.message, "budget_changes".to_string())),
    }
}

fn page_for(p: &Principal, a: &Agreement, title: &str) -> Page {
    Page::new(
        Chrome::for_user(title, p).crumbs({
            let mut c = agreement_crumbs(a);
            c.push(link(
                "Governance",
                format!("/agreements/{}/governance", a.id),
            ));
            c
        }),
        title,
    )
    .caption(a.title.clone())
}

fn done(url: String, message: &str) -> Response {
    let sep = if url.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{url}{sep}done={}", url_encode(message))).into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    q: String,
    #[serde(default)]
    year: String,
}

fn parse_date(text: &str, field: &str, errors: &mut Errors) -> Option<Date> {
    match text.trim().parse::<Date>() {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push((
                format!(
                    "Enter the date as YYYY-MM-DD, for example 2024-06-12 (not '{}')",
                    text.trim()
                ),
                field.to_string(),
            ));
            None
        }
    }
}

fn partner_name(a: &Agreement, id: &str) -> String {
    concordat_app::finance::partner_name(a, id).to_string()
}

fn body_name<'a>(a: &'a Agreement, id: &'a str) -> &'a str {
    a.bodies
        .iter()
        .find(|b| b.id == id)
        .map_or(id, |b| b.name.as_str())
}

// ---------------------------------------------------------------------------------------------
// Bodies and the scheme of delegation

fn voting_text(b: &Body) -> String {
    match b.voting.unwrap_or(VotingMode::Consensus) {
        VotingMode::Consensus => "By consensus: no voting member present may be against".into(),
        VotingMode::BlockPerPartner => {
            "One block vote per partner, each by its own members' majority; if the partners disagree there is no decision".into()
        }
        VotingMode::Majority => "By a majority of the voting members present".into(),
    }
}

fn quorum_text(b: &Body) -> String {
    match &b.quorum {
        None => "None set".into(),
        Some(q) => {
            let mut t = format!("{} voting members", q.members);
            if q.each_partner {
                t.push_str(", with at least one of each partner");
            }
            if !q.roles.is_empty() {
                t.push_str(&format!(", including the {}", q.roles.join(" and the ")));
            }
            t.push_str("; co-opted members do not count");
            t
        }
    }
}

/// How a decision at a meeting of this body is checked, in words, for the decision form.
fn checks_explained(a: &Agreement, b: &Body) -> Vec<String> {
    let mut out = vec![
        format!("Quorum: {}.", quorum_text(b)),
        format!("Voting: {}.", voting_text(b)),
        "A joint decision needs each partner's representatives to agree.".into(),
        "Co-opted members and those in attendance take part but never vote.".into(),
        "A member who declared an interest in the item may not vote on it.".into(),
    ];
    if !b.seats.is_empty() {
        out.push(format!(
            "No partner may have more voting members present than its seats ({}).",
            b.seats
                .iter()
                .map(|s| format!("{} {}", partner_name(a, &s.partner), s.voting))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !b.roster.is_empty() {
        out.push("Only members on the body's roster may attend as members, and only their named substitutes in their place.".into());
    }
    out.push(if b.budget_decisions {
        "It has budget powers, so it may take decisions that move money: the amount and the budget changes are checked together.".into()
    } else {
        "It has no budget powers in the agreement, so it cannot take decisions that move money.".into()
    });
    out
}

async fn governance_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let mut page = Page::new(
        Chrome::for_user("Governance", &p).crumbs(agreement_crumbs(&a)),
        "Governance",
    )
    .caption(a.title.clone());
    page = page.section(section("Records", "records").with(Block::Links(vec![
        link("Meetings", format!("/agreements/{key}/meetings")),
        link("Decision log", format!("/agreements/{key}/decisions")),
        link("Disputes", format!("/agreements/{key}/disputes")),
        link(
            "Complaints and compliments",
            format!("/agreements/{key}/complaints"),
        ),
        link("Risk register", format!("/agreements/{key}/risks")),
        link("Notice and exit", format!("/agreements/{key}/notice")),
        link(
            "Obligations calendar",
            format!("/agreements/{key}/calendar"),
        ),
        link(
            "Published decisions (public page)",
            format!("/public/{key}/decisions"),
        ),
    ])));
    let mut bodies = section("Bodies", "bodies");
    if a.bodies.is_empty() {
        bodies.push(Block::Para("The agreement names no bodies.".into()));
    }
    for b in &a.bodies {
        let mut rows = Vec::new();
        if let Some(purpose) = &b.purpose {
            rows.push(("Purpose".to_string(), purpose.clone()));
        }
        if !b.seats.is_empty() {
            rows.push((
                "Voting seats".into(),
                b.seats
                    .iter()
                    .map(|s| format!("{}: {}", partner_name(&a, &s.partner), s.voting))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        if let Some(n) = b.co_opted_non_voting {
            rows.push(("Co-opted members (non-voting)".into(), n.to_string()));
        }
        if !b.members.is_empty() {
            rows.push(("Members".into(), b.members.join("; ")));
        }
        if !b.roster.is_empty() {
            rows.push((
                "Named members".into(),
                b.roster
                    .iter()
                    .map(|r| {
                        let mut t = r.name.clone();
                        if !r.voting {
                            t.push_str(" (co-opted, non-voting)");
                        }
                        if !r.substitutes.is_empty() {
                            t.push_str(&format!(" — substitutes: {}", r.substitutes.join(", ")));
                        }
                        t
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        if b.quorum.is_some() || !b.seats.is_empty() {
            rows.push(("Quorum".into(), quorum_text(b)));
            rows.push(("Voting".into(), voting_text(b)));
        }
        if let Some(c) = &b.chair {
            rows.push(("Chair".into(), c.clone()));
        }
        if let Some(c) = &b.chair_rotation {
            rows.push(("Chair rotates".into(), c.clone()));
        }
        if let Some(m) = &b.meets {
            rows.push(("Meets".into(), m.clone()));
        }
        if !b.reports_to.is_empty() {
            rows.push((
                "Reports to".into(),
                b.reports_to
                    .iter()
                    .map(|r| body_name(&a, r).to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        let reported_by: Vec<&str> = a
            .bodies
            .iter()
            .filter(|o| o.reports_to.iter().any(|r| r == &b.id))
            .map(|o| o.name.as_str())
            .collect();
        if !reported_by.is_empty() {
            rows.push(("Reported to by".into(), reported_by.join("; ")));
        }
        rows.push((
            "Budget powers".into(),
            if b.budget_decisions { "Yes" } else { "No" }.into(),
        ));
        if let Some(t) = &b.terms_of_reference {
            rows.push(("Terms of reference".into(), t.clone()));
        }
        bodies.push(Block::Para(b.name.clone()));
        bodies.push(Block::Summary(rows));
    }
    page = page.section(bodies);
    let mut scheme = section("Decision levels and the scheme of delegation", "delegation");
    if a.decision_levels.is_empty() {
        scheme.push(Block::Para(
            "The agreement sets no decision levels. Budget revisions then need a decision of a body, recorded at one of its meetings.".into(),
        ));
    } else {
        let rows = a
            .decision_levels
            .iter()
            .map(|l| {
                vec![
                    cell(l.level.label()),
                    cell(l.description.clone()),
                    cell(
                        [
                            l.officer.clone(),
                            l.role
                                .as_deref()
                                .and_then(concordat_core::access::Role::parse)
                                .map(|r| format!("(role: {})", r.label())),
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                    ),
                    num(l.limit.map_or(String::new(), |m| m.to_string())),
                    cell(if l.decision_types.is_empty() {
                        "All".to_string()
                    } else {
                        l.decision_types
                            .iter()
                            .map(|t| t.label())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }),
                    cell(if l.illustrative { "Illustrative" } else { "" }),
                ]
            })
            .collect();
        scheme.push(Block::Table(table(
            "Who may decide what",
            vec![
                cell("Level"),
                cell("Decisions"),
                cell("Officer"),
                num("Limit"),
                cell("Kinds"),
                cell("Source"),
            ],
            rows,
        )));
    }
    page = page.section(scheme);
    Ok(page.html()?.into_response())
}

// ---------------------------------------------------------------------------------------------
// Meetings

#[derive(Deserialize, Default, Clone)]
pub(crate) struct MeetingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    attendance: String,
    #[serde(default)]
    declarations: String,
    #[serde(default)]
    agenda: String,
}

/// Lines of `a | b | c`, blank lines skipped, with their line numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, Vec<String>)> + '_ {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.trim();
        (!l.is_empty()).then(|| (i + 1, l.split('|').map(|c| c.trim().to_string()).collect()))
    })
}

fn parse_attendance(text: &str, errors: &mut Errors) -> Vec<Attendee> {
    let mut out = Vec::new();
    for (n, cells) in lines(text) {
        let get = |i: usize| cells.get(i).cloned().unwrap_or_default();
        let capacity_text = get(2).to_lowercase();
        let (capacity, substitute_for) =
            if let Some(rest) = capacity_text.strip_prefix("substitute for") {
                // Keep the name as typed, not lower-cased.
                let typed = get(2);
                let name = typed[typed.len() - rest.len()..].trim().to_string();
                (Some(Capacity::Substitute), Some(name))
            } else {
                let c = match capacity_text.as_str() {
                    "" | "member" => Some(Capacity::Member),
                    "co-opted" | "coopted" | "co opted" => Some(Capacity::CoOpted),
                    "in attendance" | "in-attendance" | "officer" => Some(Capacity::InAttendance),
                    _ => None,
                };
                (c, None)
            };
        let Some(capacity) = capacity else {
            errors.push((
                format!("Attendance, line {n}: '{}' is not a capacity; write member, co-opted, in attendance, or substitute for NAME", get(2)),
                "attendance".into(),
            ));
            continue;
        };
        if get(0).is_empty() {
            errors.push((
                format!("Attendance, line {n}: enter the person's name first"),
                "attendance".into(),
            ));
            continue;
        }
        out.push(Attendee {
            name: get(0),
            partner: Some(get(1)).filter(|p| !p.is_empty()),
            capacity,
            substitute_for,
            roles: get(3)
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }
    out
}

fn parse_declarations(text: &str, errors: &mut Errors) -> Vec<Declaration> {
    let mut out = Vec::new();
    for (n, cells) in lines(text) {
        match (
            cells.first(),
            cells.get(1).and_then(|i| i.parse::<u32>().ok()),
            cells.get(2),
        ) {
            (Some(member), Some(item), Some(interest)) => out.push(Declaration {
                member: member.clone(),
                item,
                interest: interest.clone(),
            }),
            _ => errors.push((
                format!("Declarations, line {n}: write name | agenda item number | the interest"),
                "declarations".into(),
            )),
        }
    }
    out
}

fn parse_agenda(text: &str, errors: &mut Errors) -> Vec<AgendaItem> {
    let mut out = Vec::new();
    for (n, cells) in lines(text) {
        match (cells.first().and_then(|i| i.parse::<u32>().ok()), cells.get(1)) {
            (Some(number), Some(title)) => out.push(AgendaItem {
                number,
                title: title.clone(),
            }),
            _ => errors.push((
                format!("Agenda, line {n}: write the item number | its title, for example 3 | Finance report"),
                "agenda".into(),
            )),
        }
    }
    out
}

fn meeting_from_form(form: &MeetingForm, errors: &mut Errors) -> Option<Meeting> {
    if form.reference.trim().is_empty() {
        errors.push((
            "Enter a reference for the meeting, for example JCPB-2024-06".into(),
            "reference".into(),
        ));
    }
    let date = parse_date(&form.date, "date", errors);
    let status = match form.status.as_str() {
        "scheduled" => MeetingStatus::Scheduled,
        _ => MeetingStatus::Held,
    };
    let attendance = parse_attendance(&form.attendance, errors);
    let declarations = parse_declarations(&form.declarations, errors);
    let agenda = parse_agenda(&form.agenda, errors);
    let date = date?;
    errors.is_empty().then(|| Meeting {
        reference: form.reference.trim().to_string(),
        body: form.body.clone(),
        date,
        status,
        location: Some(form.location.trim().to_string()).filter(|l| !l.is_empty()),
        attendance,
        declarations,
        agenda,
    })
}

fn meeting_fields(
    a: &Agreement,
    form: &MeetingForm,
    errors: &Errors,
    with_reference: bool,
) -> Vec<Field> {
    let mut fields = Vec::new();
    if with_reference {
        fields.push(
            field(
                "body",
                "Body",
                FieldKind::Select(
                    a.bodies
                        .iter()
                        .map(|b| (b.id.clone(), b.name.clone()))
                        .collect(),
                ),
            )
            .value(form.body.clone())
            .error(error_for(errors, "body")),
        );
        fields.push(
            field("reference", "Meeting reference", FieldKind::Text)
                .hint("Unique in this partnership, for example JCPB-2024-06")
                .value(form.reference.clone())
                .error(error_for(errors, "reference")),
        );
    }
    let partners: Vec<&str> = a.partners.iter().map(|p| p.id.as_str()).collect();
    fields.extend([
        field("date", "Date", FieldKind::Date)
            .hint("YYYY-MM-DD")
            .value(form.date.clone())
            .error(error_for(errors, "date")),
        field("status", "Status", FieldKind::Select(vec![
            ("held".into(), "Held: attendance recorded".into()),
            ("scheduled".into(), "Scheduled: not yet held".into()),
        ]))
        .value(if form.status.is_empty() { "held".to_string() } else { form.status.clone() }),
        field("location", "Where", FieldKind::Text).value(form.location.clone()),
        field("attendance", "Attendance", FieldKind::Textarea)
            .hint(&format!(
                "One person a line: name | partner | capacity | offices held. Capacity is member, co-opted, in attendance, or substitute for NAME; partner is one of {} (empty for co-opted members and those in attendance). Offices are for quorum rules that name roles.",
                partners.join(", ")
            ))
            .value(form.attendance.clone())
            .error(error_for(errors, "attendance")),
        field("declarations", "Declarations of interest", FieldKind::Textarea)
            .hint("One a line: name | agenda item number | the interest")
            .value(form.declarations.clone())
            .error(error_for(errors, "declarations")),
        field("agenda", "Agenda", FieldKind::Textarea)
            .hint("One item a line: number | title")
            .value(form.agenda.clone())
            .error(error_for(errors, "agenda")),
    ]);
    fields
}

async fn meetings_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    meetings_view(
        &state,
        &p,
        &a,
        Vec::new(),
        &MeetingForm::default(),
        q.done,
        StatusCode::OK,
    )
    .await
}

async fn meetings_view(
    state: &AppState,
    p: &Principal,
    a: &Agreement,
    errors: Errors,
    form: &MeetingForm,
    done: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let key = &a.id;
    let mut page = page_for(p, a, "Meetings");
    page.errors = errors.clone();
    page.success = done;
    let meetings = governance::meetings(state.store.as_ref(), key).await?;
    let decisions = governance::decisions(state.store.as_ref(), key).await?;
    let mut list = section("Meetings", "meetings");
    if meetings.is_empty() {
        list.push(Block::Para("No meetings are recorded yet.".into()));
    } else {
        let rows = meetings
            .iter()
            .rev()
            .map(|m| {
                let taken = decisions
                    .iter()
                    .filter(|d| d.decision.meeting.as_deref() == Some(&m.reference))
                    .count();
                vec![
                    cell(m.date.to_string()),
                    cell(m.reference.clone()).link(format!(
                        "/agreements/{key}/meetings/{}",
                        url_encode(&m.reference)
                    )),
                    cell(body_name(a, &m.body).to_string()),
                    match m.status {
                        MeetingStatus::Held => cell("held").tag("green"),
                        MeetingStatus::Scheduled => cell("scheduled").tag("blue"),
                    },
                    num(m.attendance.len().to_string()),
                    num(taken.to_string()),
                ]
            })
            .collect();
        list.push(Block::Table(table(
            "Meetings, newest first",
            vec![
                cell("Date"),
                cell("Reference"),
                cell("Body"),
                cell("Status"),
                num("People"),
                num("Decisions"),
            ],
            rows,
        )));
    }
    page = page.section(list);
    if p.may(key, Permission::RecordProceedings) && !a.bodies.is_empty() {
        page = page.section(
            section("Record a meeting", "record").with(Block::Form(post_form(
                format!("/agreements/{key}/meetings"),
                p.csrf_token(),
                "Record the meeting",
                meeting_fields(a, form, &errors, true),
            ))),
        );
    }
    Ok((status, page.html()?).into_response())
}

async fn meeting_record(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    axum::Form(form): axum::Form<MeetingForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::RecordProceedings).await?;
    let mut errors = Vec::new();
    if let Some(m) = meeting_from_form(&form, &mut errors) {
        match governance::record_meeting(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &a,
            &m,
            true,
        )
        .await
        {
            Ok(()) => {
                return Ok(done(
                    format!("/agreements/{key}/meetings/{}", url_encode(&m.reference)),
                    &format!("Meeting {} recorded", m.reference),
                ));
            }
            Err(e) => errors.push(refusal(e)?),
        }
    }
    meetings_view(
        &state,
        &p,
        &a,
        errors,
        &form,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    resolution: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    decision_type: String,
    #[serde(default)]
    agenda_item: String,
    #[serde(default)]
    officer: String,
    #[serde(default)]
    partner: String,
    #[serde(default)]
    decided_on: String,
    #[serde(default)]
    fund: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    votes: String,
    #[serde(default)]
    budget_changes: String,
    #[serde(default)]
    budget_year: String,
    #[serde(default)]
    published: String,
}

fn parse_votes(text: &str, errors: &mut Errors) -> Vec<Vote> {
    let mut out = Vec::new();
    for (n, cells) in lines(text) {
        let choice = match cells.get(1).map(|c| c.to_lowercase()).as_deref() {
            Some("for") => Some(Choice::For),
            Some("against") => Some(Choice::Against),
            Some("abstain") | Some("abstained") => Some(Choice::Abstain),
            _ => None,
        };
        match (cells.first(), choice) {
            (Some(member), Some(choice)) if !member.is_empty() => out.push(Vote {
                member: member.clone(),
                choice,
            }),
            _ => errors.push((
                format!("Votes, line {n}: write name | for, against or abstain"),
                "votes".into(),
            )),
        }
    }
    out
}

/// `service line | new annual budget` lines, as budget requests for the year.
fn parse_budget_changes(
    text: &str,
    year: Option<concordat_core::FinancialYear>,
    reason: &str,
    errors: &mut Errors,
) -> Vec<concordat_app::BudgetRequest> {
    let mut out = Vec::new();
    for (n, cells) in lines(text) {
        let amount = cells.get(1).and_then(|a| a.parse::<Money>().ok());
        match (cells.first(), amount, year) {
            (Some(line), Some(annual), Some(year)) if !line.is_empty() => out.push(concordat_app::BudgetRequest {
                year,
                service_line: line.clone(),
                partner: None,
                locality: None,
                annual,
                phasing: "even".into(),
                client_income: Money::ZERO,
                reason: reason.to_string(),
                authority: None,
                delegated: None,
                new_line: false,
            }),
            (_, _, None) => {
                errors.push(("Enter the financial year of the budget changes, like 2024/25".into(), "budget_year".into()));
                break;
            }
            _ => errors.push((
                format!("Budget changes, line {n}: write service line | new annual budget, for example Reablement | 560,000.00"),
                "budget_changes".into(),
            )),
        }
    }
    out
}

/// The proposal on the form (for a meeting, or outside one), and the budget changes it makes.
fn proposal_from_form(
    a: &Agreement,
    form: &DecisionForm,
    meeting: Option<&Meeting>,
    errors: &mut Errors,
) -> Option<(Proposal, Vec<concordat_app::BudgetRequest>)> {
    let level = concordat_app::governance::parse_level(&form.level);
    if level.is_none() {
        errors.push((
            "Choose the level the decision is taken at".into(),
            "level".into(),
        ));
    }
    let decision_type = DecisionType::parse(&form.decision_type);
    if decision_type.is_none() {
        errors.push((
            "Choose what kind of decision it is".into(),
            "decision_type".into(),
        ));
    }
    let amount = match form.amount.trim() {
        "" => None,
        t => match t.parse::<Money>() {
            Ok(m) => Some(m),
            Err(_) => {
                errors.push((
                    "Enter the amount in pounds, like 60,000.00".into(),
                    "amount".into(),
                ));
                None
            }
        },
    };
    let agenda_item = match form.agenda_item.trim() {
        "" => None,
        t => match t.parse::<u32>() {
            Ok(i) => Some(i),
            Err(_) => {
                errors.push((
                    "Enter the agenda item's number".into(),
                    "agenda_item".into(),
                ));
                None
            }
        },
    };
    let decided_on = if meeting.is_none() {
        parse_date(&form.decided_on, "decided_on", errors)
    } else {
        None
    };
    let votes = parse_votes(&form.votes, errors);
    let budget_year = match form.budget_year.trim() {
        "" => meeting
            .map(|m| m.date)
            .or(decided_on)
            .map(|d| concordat_core::Period::containing(d).year()),
        t => t.parse().ok(),
    };
    let changes =
        parse_budget_changes(&form.budget_changes, budget_year, form.title.trim(), errors);
    if !errors.is_empty() {
        return None;
    }
    let fund = Some(form.fund.trim().to_string())
        .filter(|f| !f.is_empty())
        .or_else(|| {
            // A partnership with one fund: changes to a budget are to that fund's.
            (!changes.is_empty() && a.funds.len() == 1).then(|| a.funds[0].id.clone())
        });
    Some((
        Proposal {
            reference: form.reference.trim().to_string(),
            title: form.title.trim().to_string(),
            resolution: form.resolution.trim().to_string(),
            level: level?,
            decision_type: decision_type?,
            meeting: meeting.map(|m| m.reference.clone()),
            agenda_item,
            officer: Some(form.officer.trim().to_string()).filter(|o| !o.is_empty()),
            partner: Some(form.partner.trim().to_string()).filter(|o| !o.is_empty()),
            decided_on,
            fund,
            amount,
            votes,
            published: form.published == "yes",
        },
        changes,
    ))
}

fn decision_fields(
    a: &Agreement,
    form: &DecisionForm,
    errors: &Errors,
    at_meeting: bool,
) -> Vec<Field> {
    let levels: Vec<(String, String)> = if at_meeting {
        vec![
            (
                "joint".into(),
                "Joint: the partners' representatives together".into(),
            ),
            ("reserved".into(), "Reserved to one partner".into()),
            (
                "delegated".into(),
                "Delegated to an officer (noted at the meeting)".into(),
            ),
        ]
    } else {
        vec![
            ("delegated".into(), "Delegated to an officer".into()),
            (
                "reserved".into(),
                "Reserved to one partner, taken by that partner".into(),
            ),
        ]
    };
    let mut fields = vec![
        field("reference", "Decision reference", FieldKind::Text)
            .hint("Unique in the decision log, for example JCPB-2024-06-4")
            .value(form.reference.clone())
            .error(error_for(errors, "reference")),
        field("title", "What it is about", FieldKind::Text)
            .value(form.title.clone())
            .error(error_for(errors, "title")),
        field(
            "resolution",
            "The decision, as minuted",
            FieldKind::Textarea,
        )
        .value(form.resolution.clone()),
        field("level", "Level", FieldKind::Select(levels))
            .value(form.level.clone())
            .error(error_for(errors, "level")),
        field(
            "decision_type",
            "Kind of decision",
            FieldKind::Select(
                DecisionType::ALL
                    .iter()
                    .map(|t| (t.as_str().to_string(), t.label().to_string()))
                    .collect(),
            ),
        )
        .value(if form.decision_type.is_empty() {
            "policy".to_string()
        } else {
            form.decision_type.clone()
        })
        .error(error_for(errors, "decision_type")),
    ];
    if at_meeting {
        fields.push(
            field("agenda_item", "Agenda item number", FieldKind::Text)
                .value(form.agenda_item.clone())
                .error(error_for(errors, "agenda_item")),
        );
    } else {
        fields.push(
            field("decided_on", "Date of the decision", FieldKind::Date)
                .hint("YYYY-MM-DD")
                .value(form.decided_on.clone())
                .error(error_for(errors, "decided_on")),
        );
    }
    fields.extend([
        field(
            "officer",
            "Officer (for a delegated decision)",
            FieldKind::Text,
        )
        .hint("As the scheme of delegation names them, or a Concordat role such as pool_manager")
        .value(form.officer.clone())
        .error(error_for(errors, "officer")),
        field(
            "partner",
            "Partner (for a reserved decision)",
            FieldKind::Select(
                std::iter::once((String::new(), "None".to_string()))
                    .chain(a.parties().map(|x| (x.id.clone(), x.name.clone())))
                    .collect(),
            ),
        )
        .value(form.partner.clone())
        .error(error_for(errors, "partner")),
        field(
            "fund",
            "Fund (for a decision that moves money)",
            FieldKind::Select(
                std::iter::once((String::new(), "None".to_string()))
                    .chain(a.funds.iter().map(|f| (f.id.clone(), f.name.clone())))
                    .collect(),
            ),
        )
        .value(form.fund.clone())
        .error(error_for(errors, "fund")),
        field("amount", "Amount it authorises, in pounds", FieldKind::Text)
            .hint("Needed for anything but a policy decision; for a virement, the amount moved")
            .value(form.amount.clone())
            .error(error_for(errors, "amount")),
    ]);
    if at_meeting {
        fields.push(
            field("votes", "Votes, where taken", FieldKind::Textarea)
                .hint("One a line: name | for, against or abstain. Leave empty for a decision agreed without a vote: under consensus no one is recorded against.")
                .value(form.votes.clone())
                .error(error_for(errors, "votes")),
        );
    }
    fields.extend([
        field("budget_changes", "Budget changes it makes (budget revision or virement)", FieldKind::Textarea)
            .hint("One line each: service line | new annual budget. Recorded with the decision, in one step, and refused together if any does not fit.")
            .value(form.budget_changes.clone())
            .error(error_for(errors, "budget_changes")),
        field("budget_year", "Financial year of the budget changes", FieldKind::Text)
            .hint("For example 2024/25; the year of the decision if left empty")
            .value(form.budget_year.clone())
            .error(error_for(errors, "budget_year")),
        field("published", "Publish it on the public decisions page?", FieldKind::Select(vec![
            ("yes".into(), "Yes".into()),
            ("no".into(), "No: keep it to the partners".into()),
        ]))
        .value(if form.published.is_empty() { "yes".to_string() } else { form.published.clone() }),
    ]);
    fields
}

fn meeting_form_of(m: &Meeting) -> MeetingForm {
    MeetingForm {
        csrf: String::new(),
        body: m.body.clone(),
        reference: m.reference.clone(),
        date: m.date.to_string(),
        status: match m.status {
            MeetingStatus::Held => "held".into(),
            MeetingStatus::Scheduled => "scheduled".into(),
        },
        location: m.location.clone().unwrap_or_default(),
        attendance: m
            .attendance
            .iter()
            .map(|x| {
                let capacity = match (x.capacity, &x.substitute_for) {
                    (Capacity::Substitute, Some(f)) => format!("substitute for {f}"),
                    (Capacity::Member, _) => "member".into(),
                    (Capacity::CoOpted, _) => "co-opted".into(),
                    (Capacity::InAttendance, _) => "in attendance".into(),
                    (Capacity::Substitute, None) => "substitute for".into(),
                };
                format!(
                    "{} | {} | {capacity} | {}",
                    x.name,
                    x.partner.clone().unwrap_or_default(),
                    x.roles.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        declarations: m
            .declarations
            .iter()
            .map(|d| format!("{} | {} | {}", d.member, d.item, d.interest))
            .collect::<Vec<_>>()
            .join("\n"),
        agenda: m
            .agenda
            .iter()
            .map(|i| format!("{} | {}", i.number, i.title))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

async fn meeting_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, reference)): Path<(String, String)>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let m = governance::meeting(state.store.as_ref(), &key, &reference)
        .await?
        .ok_or(WebError::NotFound)?;
    meeting_view(
        &state,
        &p,
        &a,
        &m,
        MeetingErrors::default(),
        q.done,
        StatusCode::OK,
    )
    .await
}

/// What a meeting page shows after a refused form: which form, its errors, what was typed.
#[derive(Default)]
struct MeetingErrors {
    errors: Errors,
    decision: Option<DecisionForm>,
    update: Option<MeetingForm>,
}

async fn meeting_view(
    state: &AppState,
    p: &Principal,
    a: &Agreement,
    m: &Meeting,
    refused: MeetingErrors,
    done: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let key = &a.id;
    let body = a.bodies.iter().find(|b| b.id == m.body);
    let title = format!(
        "{} — {}",
        body.map_or(m.body.as_str(), |b| b.name.as_str()),
        m.date
    );
    let mut page = page_for(p, a, &title);
    page.errors = refused.errors.clone();
    page.success = done;
    let mut about = vec![
        ("Reference".to_string(), m.reference.clone()),
        ("Date".to_string(), m.date.to_string()),
        (
            "Status".to_string(),
            match m.status {
                MeetingStatus::Held => "Held".into(),
                MeetingStatus::Scheduled => "Scheduled".into(),
            },
        ),
    ];
    if let Some(l) = &m.location {
        about.push(("Where".into(), l.clone()));
    }
    // Whether the meeting as recorded could decide anything, as the core sees it.
    if let Some(b) = body
        && m.status == MeetingStatus::Held
    {
        let check = concordat_core::proceedings::present(b, &m.attendance).and_then(|present| {
            concordat_core::governance::check_quorate(b, &present).map(|()| present)
        });
        about.push((
            "Quorate".into(),
            match check {
                Ok(present) => format!(
                    "Yes: {} voting members present ({})",
                    present.iter().filter(|x| x.voting).count(),
                    quorum_text(b)
                ),
                Err(concordat_core::governance::Refusal::NoQuorum(why)) => format!("No: {why}"),
                Err(other) => format!("Attendance does not fit the terms of reference: {other}"),
            },
        ));
    }
    page = page.section(section("The meeting", "meeting").with(Block::Summary(about)));
    let mut attendance = section("Attendance", "attendance-list");
    if m.attendance.is_empty() {
        attendance.push(Block::Para("No attendance recorded.".into()));
    } else {
        attendance.push(Block::Table(table(
            "Who was there",
            vec![
                cell("Name"),
                cell("Partner"),
                cell("Capacity"),
                cell("Votes"),
            ],
            m.attendance
                .iter()
                .map(|x| {
                    let votes = matches!(x.capacity, Capacity::Member | Capacity::Substitute);
                    vec![
                        cell(x.name.clone()),
                        cell(
                            x.partner
                                .as_deref()
                                .map(|p| partner_name(a, p))
                                .unwrap_or_default(),
                        ),
                        cell(match (&x.capacity, &x.substitute_for) {
                            (Capacity::Substitute, Some(f)) => format!("Substitute for {f}"),
                            (Capacity::InAttendance, _) => "in attendance".to_string(),
                            (c, _) => c.as_str().to_string(),
                        }),
                        if votes {
                            cell("votes").tag("green")
                        } else {
                            cell("does not vote").tag("grey")
                        },
                    ]
                })
                .collect(),
        )));
    }
    if !m.declarations.is_empty() {
        attendance.push(Block::Table(table(
            "Declarations of interest",
            vec![cell("Member"), num("Item"), cell("Interest")],
            m.declarations
                .iter()
                .map(|d| {
                    vec![
                        cell(d.member.clone()),
                        num(d.item.to_string()),
                        cell(d.interest.clone()),
                    ]
                })
                .collect(),
        )));
    }
    page = page.section(attendance);
    let mut agenda = section("Agenda and papers", "agenda-list");
    if !m.agenda.is_empty() {
        agenda.push(Block::Table(table(
            "Agenda",
            vec![num("Item"), cell("Title")],
            m.agenda
                .iter()
                .map(|i| vec![num(i.number.to_string()), cell(i.title.clone())])
                .collect(),
        )));
    }
    let papers = governance::papers(state.store.as_ref(), key, &m.reference).await?;
    if papers.is_empty() {
        agenda.push(Block::Para("No papers added.".into()));
    } else {
        agenda.push(Block::Table(table(
            "Papers",
            vec![cell("Title"), cell("File"), num("Size"), cell("Added")],
            papers
                .iter()
                .map(|x| {
                    vec![
                        cell(x.title.clone()).link(format!(
                            "/agreements/{key}/meetings/{}/papers/{}",
                            url_encode(&m.reference),
                            x.paper_id
                        )),
                        cell(x.file_name.clone()),
                        num(format!("{} KB", (x.size_bytes + 1023) / 1024)),
                        cell(format!(
                            "{} by {}",
                            crate::views::when(&x.added_at),
                            x.added_by
                        )),
                    ]
                })
                .collect(),
        )));
    }
    if p.may(key, Permission::RecordProceedings) {
        agenda.push(Block::Form(post_form(
            format!(
                "/agreements/{key}/meetings/{}/papers",
                url_encode(&m.reference)
            ),
            p.csrf_token(),
            "Add the paper",
            // Ids of their own: the decision form on the same page has a title too.
            vec![
                field("title", "Paper title", FieldKind::Text)
                    .error(error_for(&refused.errors, "paper-title"))
                    .with_id("paper-title"),
                field("paper", "File", FieldKind::File)
                    .hint("A report, minutes or appendix, up to 50 MB")
                    .error(error_for(&refused.errors, "paper-paper"))
                    .with_id("paper-paper"),
            ],
        )));
    }
    page = page.section(agenda);
    let decisions: Vec<_> = governance::decision_log(state.store.as_ref(), key, "", false)
        .await?
        .into_iter()
        .filter(|d| d.decision.proposal.meeting.as_deref() == Some(&m.reference))
        .collect();
    let mut taken = section("Decisions taken", "decisions");
    if decisions.is_empty() {
        taken.push(Block::Para(
            "No decisions are recorded for this meeting.".into(),
        ));
    } else {
        taken.push(Block::Table(decision_table(a, &decisions, false)));
    }
    page = page.section(taken);
    if p.may(key, Permission::RecordProceedings) {
        if let Some(b) = body {
            let mut s = section("Record a decision", "decide");
            s.push(Block::Inset(format!(
                "Before it is recorded the decision is checked against the terms of reference of {}. {} If a check fails, the reason is shown and nothing is recorded.",
                b.name,
                checks_explained(a, b).join(" ")
            )));
            let form = refused.decision.clone().unwrap_or_else(|| DecisionForm {
                level: "joint".into(),
                ..DecisionForm::default()
            });
            s.push(Block::Form(post_form(
                format!(
                    "/agreements/{key}/meetings/{}/decisions",
                    url_encode(&m.reference)
                ),
                p.csrf_token(),
                "Check and record the decision",
                decision_fields(a, &form, &refused.errors, true),
            )));
            page = page.section(s);
        }
        if decisions.is_empty() {
            let form = refused.update.clone().unwrap_or_else(|| meeting_form_of(m));
            page = page.section(
                section("Update the meeting record", "update").with(Block::Form(post_form(
                    format!("/agreements/{key}/meetings/{}", url_encode(&m.reference)),
                    p.csrf_token(),
                    "Save the meeting record",
                    meeting_fields(a, &form, &refused.errors, false),
                ))),
            );
        }
    }
    Ok((status, page.html()?).into_response())
}

async fn meeting_update(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, reference)): Path<(String, String)>,
    axum::Form(mut form): axum::Form<MeetingForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::RecordProceedings).await?;
    let m = governance::meeting(state.store.as_ref(), &key, &reference)
        .await?
        .ok_or(WebError::NotFound)?;
    form.reference = m.reference.clone();
    form.body = m.body.clone();
    let mut errors = Vec::new();
    if let Some(updated) = meeting_from_form(&form, &mut errors) {
        match governance::record_meeting(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &a,
            &updated,
            false,
        )
        .await
        {
            Ok(()) => {
                return Ok(done(
                    format!("/agreements/{key}/meetings/{}", url_encode(&m.reference)),
                    "The meeting record is saved",
                ));
            }
            Err(e) => errors.push(refusal(e)?),
        }
    }
    meeting_view(
        &state,
        &p,
        &a,
        &m,
        MeetingErrors {
            errors,
            decision: None,
            update: Some(form),
        },
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

async fn meeting_decision(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, reference)): Path<(String, String)>,
    axum::Form(form): axum::Form<DecisionForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::RecordProceedings).await?;
    let m = governance::meeting(state.store.as_ref(), &key, &reference)
        .await?
        .ok_or(WebError::NotFound)?;
    let mut errors = Vec::new();
    if let Some((proposal, changes)) = proposal_from_form(&a, &form, Some(&m), &mut errors) {
        match governance::record_decision(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &a,
            &proposal,
            changes,
        )
        .await
        {
            Ok(recorded) => {
                return Ok(done(
                    format!("/agreements/{key}/meetings/{}", url_encode(&m.reference)),
                    &format!(
                        "Decision {} recorded: {}",
                        proposal.reference, recorded.decision.basis
                    ),
                ));
            }
            Err(e) => errors.push(refusal(e)?),
        }
    }
    meeting_view(
        &state,
        &p,
        &a,
        &m,
        MeetingErrors {
            errors,
            decision: Some(form),
            update: None,
        },
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

async fn paper_upload(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, reference)): Path<(String, String)>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::RecordProceedings).await?;
    let m = governance::meeting(state.store.as_ref(), &key, &reference)
        .await?
        .ok_or(WebError::NotFound)?;
    let mut csrf = String::new();
    let mut title = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(part) = multipart
        .next_field()
        .await
        .map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?
    {
        match part.name().unwrap_or("") {
            "csrf" => csrf = part.text().await.unwrap_or_default(),
            "title" => title = part.text().await.unwrap_or_default(),
            "paper" => {
                p.check_csrf(&csrf)?;
                let name = crate::views::file_name(part.file_name().unwrap_or("paper"));
                let bytes = part
                    .bytes()
                    .await
                    .map_err(|e| WebError::BadRequest(format!("The upload stopped: {e}")))?;
                file = Some((name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    p.check_csrf(&csrf)?;
    let (file_name, content) = file.unwrap_or_default();
    let result = if file_name.is_empty() {
        Err(GovernanceRefusal {
            field: "paper",
            message: "Choose the file to add".into(),
        }
        .into())
    } else {
        governance::add_paper(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &key,
            governance::NewPaper {
                meeting: &m.reference,
                title: &title,
                file_name: &file_name,
                content,
            },
        )
        .await
    };
    match result {
        Ok(_) => Ok(done(
            format!("/agreements/{key}/meetings/{}", url_encode(&m.reference)),
            &format!("Paper '{}' added", title.trim()),
        )),
        Err(e) => {
            let (message, field) = refusal(e)?;
            let errors = vec![(message, format!("paper-{field}"))];
            meeting_view(
                &state,
                &p,
                &a,
                &m,
                MeetingErrors {
                    errors,
                    decision: None,
                    update: None,
                },
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn paper_download(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, reference, paper)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let id: i64 = paper.parse().map_err(|_| WebError::NotFound)?;
    let (info, content) = state
        .store
        .paper(&key, &reference, id)
        .await?
        .ok_or(WebError::NotFound)?;
    // Always a download: a paper is whatever someone uploaded, never a page of this site.
    let disposition = format!(
        "attachment; filename=\"{}\"",
        info.file_name.replace(
            |c: char| c == '"' || c == '\\' || c.is_control() || !c.is_ascii(),
            "_"
        )
    );
    Ok((
        [
            (header::CONTENT_TYPE, info.media_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        content,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// The decision log

fn decision_table(
    a: &Agreement,
    log: &[governance::LoggedDecision],
    public: bool,
) -> crate::views::Table {
    let rows = log
        .iter()
        .map(|l| {
            let d = &l.decision;
            let p = &d.proposal;
            let by = match (&d.body, &p.officer, &p.partner) {
                (Some(b), _, _) => body_name(a, b).to_string(),
                (None, Some(o), _) => o.clone(),
                (None, None, Some(x)) => partner_name(a, x),
                _ => String::new(),
            };
            let mut row = vec![
                cell(d.decided_on.to_string()),
                match (&p.meeting, public) {
                    (Some(m), false) => cell(p.reference.clone()).link(format!(
                        "/agreements/{}/meetings/{}",
                        a.id,
                        url_encode(m)
                    )),
                    _ => cell(p.reference.clone()),
                },
                cell(p.level.label()),
                cell(p.decision_type.label()),
                cell(format!(
                    "{}{}",
                    p.title,
                    if p.resolution.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", p.resolution)
                    }
                )),
                cell(by),
                num(p.amount.map_or(String::new(), |m| m.to_string())),
                cell(d.basis.clone()),
            ];
            if !public {
                row.push(if l.published {
                    cell("published").tag("green")
                } else {
                    cell("partners only").tag("grey")
                });
            }
            row
        })
        .collect();
    let mut head = vec![
        cell("Date"),
        cell("Reference"),
        cell("Level"),
        cell("Kind"),
        cell("Decision"),
        cell("By"),
        num("Amount"),
        cell("How it was checked"),
    ];
    if !public {
        head.push(cell("Shown"));
    }
    table("Decisions, newest first", head, rows)
}

async fn decisions_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    decisions_view(
        &state,
        &p,
        &a,
        &q.q,
        Vec::new(),
        &DecisionForm::default(),
        q.done,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn decisions_view(
    state: &AppState,
    p: &Principal,
    a: &Agreement,
    query: &str,
    errors: Errors,
    form: &DecisionForm,
    done: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let key = &a.id;
    let mut page = page_for(p, a, "Decision log");
    page.errors = errors.clone();
    page.success = done;
    page = page.section(section("Search", "search").with(Block::Form(get_form(
        format!("/agreements/{key}/decisions"),
        "Search",
        vec![field("q", "Words in the decision", FieldKind::Text)
            .hint("Reference, title, words of the decision, body, officer, fund or kind")
            .value(query.to_string())],
    ))));
    let log = governance::decision_log(state.store.as_ref(), key, query, false).await?;
    let mut list = section("Decisions", "log");
    list.push(Block::Links(vec![
        link(
            "Download the log as CSV",
            format!("/agreements/{key}/decisions.csv?q={}", url_encode(query)),
        ),
        link(
            "The public page of published decisions",
            format!("/public/{key}/decisions"),
        ),
    ]));
    if log.is_empty() {
        list.push(Block::Para(if query.trim().is_empty() {
            "No decisions are recorded yet.".into()
        } else {
            format!("No decision matches '{}'.", query.trim())
        }));
    } else {
        list.push(Block::Table(decision_table(a, &log, false)));
    }
    page = page.section(list);
    if p.may(key, Permission::RecordProceedings) {
        let mut s = section("Record a decision outside a meeting", "record");
        s.push(Block::Inset(
            "An officer's decision under the scheme of delegation is checked against the levels that name the officer (or their Concordat role), the kinds of decision they cover, and their limits; a reserved decision is one partner's own. A decision of a body is recorded from its meeting's page.".into(),
        ));
        let form = if form.level.is_empty() {
            DecisionForm {
                level: "delegated".into(),
                ..form.clone()
            }
        } else {
            form.clone()
        };
        s.push(Block::Form(post_form(
            format!("/agreements/{key}/decisions"),
            p.csrf_token(),
            "Check and record the decision",
            decision_fields(a, &form, &errors, false),
        )));
        page = page.section(s);
    }
    Ok((status, page.html()?).into_response())
}

async fn decision_outside_meeting(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    axum::Form(form): axum::Form<DecisionForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::RecordProceedings).await?;
    let mut errors = Vec::new();
    if let Some((proposal, changes)) = proposal_from_form(&a, &form, None, &mut errors) {
        match governance::record_decision(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &a,
            &proposal,
            changes,
        )
        .await
        {
            Ok(recorded) => {
                return Ok(done(
                    format!("/agreements/{key}/decisions"),
                    &format!(
                        "Decision {} recorded: {}",
                        proposal.reference, recorded.decision.basis
                    ),
                ));
            }
            Err(e) => errors.push(refusal(e)?),
        }
    }
    decisions_view(
        &state,
        &p,
        &a,
        "",
        errors,
        &form,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

async fn decisions_csv(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let log = governance::decision_log(state.store.as_ref(), &key, &q.q, false).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{key}-decisions.csv\""),
            ),
        ],
        governance::decisions_csv(&log),
    )
        .into_response())
}

async fn public_decisions(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let a = crate::cache::agreement(&state, &key)
        .await?
        .ok_or(WebError::NotFound)?
        .1;
    let log = governance::decision_log(state.store.as_ref(), &key, &q.q, true).await?;
    let title = "Published decisions";
    let mut page = Page::new(Chrome::anonymous(title), title).caption(a.title.clone());
    page = page.section(section("Search", "search").with(Block::Form(get_form(
        format!("/public/{key}/decisions"),
        "Search",
        vec![field("q", "Words in the decision", FieldKind::Text).value(q.q.clone())],
    ))));
    let mut list = section("Decisions", "log");
    list.push(Block::Para(
        "The decisions the partners have chosen to publish, with how each was taken. Decisions they keep to themselves are not shown.".into(),
    ));
    if log.is_empty() {
        list.push(Block::Para("No decisions are published.".into()));
    } else {
        list.push(Block::Table(decision_table(&a, &log, true)));
    }
    page = page.section(list);
    Ok(page.html()?.into_response())
}

// ---------------------------------------------------------------------------------------------
// Disputes, complaints, risks

#[derive(Deserialize, Default, Clone)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    on: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    partner: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    likelihood: String,
    #[serde(default)]
    impact: String,
    #[serde(default)]
    review_on: String,
    #[serde(default)]
    close: String,
}

fn overdue_cell(overdue: bool, open: bool) -> Cell {
    match (open, overdue) {
        (false, _) => cell("closed").tag("grey"),
        (true, true) => cell("overdue").tag("red"),
        (true, false) => cell("open").tag("blue"),
    }
}

fn partner_choices(a: &Agreement) -> Vec<(String, String)> {
    a.parties()
        .map(|x| (x.id.clone(), x.name.clone()))
        .collect()
}

/// One action form of a register page, its field ids prefixed so several forms can share a
/// page.
fn action_form(
    key: &str,
    register: &str,
    csrf: &str,
    action: &str,
    submit: &str,
    fields: Vec<Field>,
) -> Block {
    let mut all = vec![field("action", "", FieldKind::Hidden).value(action)];
    all.extend(fields.into_iter().map(|mut f| {
        f.id = format!("{action}-{}", f.name);
        f
    }));
    Block::Form(post_form(
        format!("/agreements/{key}/{register}"),
        csrf,
        submit,
        all,
    ))
}

/// An error summary entry pointing at the field of the form that was sent: the app names
/// what is wrong (`subject`, `raised_by`, `date`), the form has one text, partner and date.
fn on_field(action: &str, (message, field): (String, String)) -> (String, String) {
    let on_form = match field.as_str() {
        "subject" | "outcome" | "summary" | "title" => "text",
        "raised_by" | "handled_by" => "partner",
        "date" | "dispute" | "complaint" => "on",
        other => other,
    };
    (message, format!("{action}-{on_form}"))
}

async fn disputes_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    disputes_view(&state, &p, &a, Vec::new(), q.done, StatusCode::OK).await
}

async fn disputes_view(
    state: &AppState,
    p: &Principal,
    a: &Agreement,
    errors: Errors,
    done: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let key = &a.id;
    let today = state.today();
    let mut page = page_for(p, a, "Disputes");
    page.errors = errors.clone();
    page.success = done;
    let mut ladder = section("The escalation ladder", "ladder");
    match &a.disputes {
        Some(t) if !t.steps.is_empty() => {
            if let Some(text) = &t.text {
                ladder.push(Block::Para(text.clone()));
            }
            ladder.push(Block::Table(table(
                "Steps, in order",
                vec![num("Step"), cell("What happens"), num("Time limit")],
                t.steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        vec![
                            num((i + 1).to_string()),
                            cell(format!("{}{}", s.name, if s.illustrative { " (illustrative time limit)" } else { "" })),
                            num(s.days.map_or("none".to_string(), |d| format!("{d} days"))),
                        ]
                    })
                    .collect(),
            )));
        }
        _ => ladder.push(Block::Para("The agreement sets no escalation ladder, so disputes cannot be recorded against one: add [[disputes.steps]] to the agreement file.".into())),
    }
    page = page.section(ladder);
    let disputes = governance::disputes(state.store.as_ref(), key).await?;
    let mut list = section("Disputes", "disputes");
    if disputes.is_empty() {
        list.push(Block::Para("No disputes are recorded.".into()));
    } else {
        list.push(Block::Table(table(
            "Disputes",
            vec![
                cell("Reference"),
                cell("Subject"),
                cell("Raised"),
                cell("Current step"),
                cell("Due"),
                cell("Status"),
            ],
            disputes
                .iter()
                .map(|d| {
                    let step = d.current();
                    vec![
                        cell(d.reference.clone()),
                        cell(d.subject.clone()),
                        cell(format!(
                            "{} by {}",
                            d.raised_on,
                            partner_name(a, &d.raised_by)
                        )),
                        cell(format!("{} (from {})", step.name, step.started_on)),
                        cell(
                            step.due_on
                                .map_or("no time limit".to_string(), |d| d.to_string()),
                        ),
                        match &d.resolved_on {
                            Some(on) => cell(format!(
                                "resolved {on}: {}",
                                d.outcome.clone().unwrap_or_default()
                            ))
                            .tag("grey"),
                            None => overdue_cell(d.overdue(today), true),
                        },
                    ]
                })
                .collect(),
        )));
    }
    page = page.section(list);
    if p.may(key, Permission::KeepRegisters) {
        let e = |action: &str, f: &str| error_for(&errors, &format!("{action}-{f}"));
        let today_text = today.to_string();
        let open: Vec<(String, String)> = disputes
            .iter()
            .filter(|d| d.resolved_on.is_none())
            .map(|d| {
                (
                    d.reference.clone(),
                    format!("{}: {}", d.reference, d.subject),
                )
            })
            .collect();
        let mut s = section("Raise a dispute", "raise");
        s.push(action_form(
            key,
            "disputes",
            p.csrf_token(),
            "raise",
            "Raise the dispute",
            vec![
                field("reference", "Reference", FieldKind::Text).error(e("raise", "reference")),
                field("text", "What it is about", FieldKind::Textarea).error(e("raise", "text")),
                field(
                    "partner",
                    "Raised by",
                    FieldKind::Select(partner_choices(a)),
                )
                .error(e("raise", "partner")),
                field("on", "Raised on", FieldKind::Date)
                    .value(today_text.clone())
                    .error(e("raise", "on")),
            ],
        ));
        page = page.section(s);
        if !open.is_empty() {
            let mut s = section("Escalate or resolve a dispute", "move");
            s.push(action_form(
                key,
                "disputes",
                p.csrf_token(),
                "escalate",
                "Escalate to the next step",
                vec![
                    field("reference", "Dispute", FieldKind::Select(open.clone()))
                        .error(e("escalate", "reference")),
                    field("on", "On", FieldKind::Date)
                        .value(today_text.clone())
                        .error(e("escalate", "on")),
                ],
            ));
            s.push(action_form(
                key,
                "disputes",
                p.csrf_token(),
                "resolve",
                "Record the resolution",
                vec![
                    field("reference", "Dispute", FieldKind::Select(open))
                        .error(e("resolve", "reference")),
                    field("text", "How it was resolved", FieldKind::Textarea)
                        .error(e("resolve", "text")),
                    field("on", "On", FieldKind::Date)
                        .value(today_text)
                        .error(e("resolve", "on")),
                ],
            ));
            page = page.section(s);
        }
    }
    Ok((status, page.html()?).into_response())
}

async fn dispute_change(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    axum::Form(form): axum::Form<RegisterForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::KeepRegisters).await?;
    let action = if form.action.is_empty() {
        "raise"
    } else {
        form.action.as_str()
    };
    let mut errors = Vec::new();
    if let Some(on) = parse_date(&form.on, "date", &mut errors) {
        let act = match action {
            "escalate" => DisputeAction::Escalate {
                reference: &form.reference,
            },
            "resolve" => DisputeAction::Resolve {
                reference: &form.reference,
                outcome: &form.text,
            },
            _ => DisputeAction::Raise {
                reference: &form.reference,
                subject: &form.text,
                raised_by: &form.partner,
            },
        };
        match governance::dispute_action(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &a,
            on,
            act,
        )
        .await
        {
            Ok(d) => {
                return Ok(done(
                    format!("/agreements/{key}/disputes"),
                    &format!("Dispute {}: now at '{}'", d.reference, d.current().name),
                ));
            }
            Err(e) => errors.push(refusal(e)?),
        }
    }
    let errors = errors.into_iter().map(|e| on_field(action, e)).collect();
    disputes_view(
        &state,
        &p,
        &a,
        errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

async fn complaints_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    complaints_view(&state, &p, &a, Vec::new(), q.done, StatusCode::OK).await
}

async fn complaints_view(
    state: &AppState,
    p: &Principal,
    a: &Agreement,
    errors: Errors,
    done: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let key = &a.id;
    let today = state.today();
    let mut page = page_for(p, a, "Complaints and compliments");
    page.errors = errors.clone();
    page.success = done;
    let terms = a.complaints.as_ref();
    let ack = terms.and_then(|t| t.acknowledge_days);
    let respond = terms.and_then(|t| t.respond_days);
    page = page.section(
        section("The protocol", "protocol").with(Block::Summary(vec![
            (
                "Protocol".into(),
                terms.map_or(
                    "The agreement names no complaints protocol".to_string(),
                    |t| t.protocol.clone(),
                ),
            ),
            (
                "Acknowledge within".into(),
                match ack {
                    Some(d) => format!("{d} days"),
                    None => format!(
                        "{} days (Concordat's default: the agreement does not say)",
                        concordat_core::proceedings::ACKNOWLEDGE_DAYS
                    ),
                },
            ),
            (
                "Respond within".into(),
                match respond {
                    Some(d) => format!("{d} days"),
                    None => format!(
                        "{} days (Concordat's default: the agreement does not say)",
                        concordat_core::proceedings::RESPOND_DAYS
                    ),
                },
            ),
        ])),
    );
    let list_items = governance::complaints(state.store.as_ref(), key).await?;
    let mut list = section("Received", "received");
    list.push(Block::Warning(
        "Record what a complaint is about, not who made it: every partner can read this register."
            .into(),
    ));
    if list_items.is_empty() {
        list.push(Block::Para(
            "No complaints or compliments are recorded.".into(),
        ));
    } else {
        list.push(Block::Table(table(
            "Complaints and compliments",
            vec![
                cell("Reference"),
                cell("Kind"),
                cell("Received"),
                cell("About"),
                cell("Handled by"),
                cell("Next"),
                cell("Status"),
            ],
            list_items
                .iter()
                .map(|c| {
                    vec![
                        cell(c.reference.clone()),
                        cell(match c.kind {
                            FeedbackKind::Complaint => "complaint",
                            FeedbackKind::Compliment => "compliment",
                        }),
                        cell(c.received_on.to_string()),
                        cell(c.summary.clone()),
                        cell(partner_name(a, &c.handled_by)),
                        cell(
                            c.next_due()
                                .map_or(c.outcome.clone().unwrap_or_default(), |(what, d)| {
                                    format!("{what} by {d}")
                                }),
                        ),
                        overdue_cell(c.overdue(today), c.next_due().is_some()),
                    ]
                })
                .collect(),
        )));
    }
    page = page.section(list);
    if p.may(key, Permission::KeepRegisters) {
        let e = |action: &str, f: &str| error_for(&errors, &format!("{action}-{f}"));
        let today_text = today.to_string();
        let open: Vec<(String, String)> = list_items
            .iter()
            .filter(|c| c.next_due().is_some())
            .map(|c| {
                (
                    c.reference.clone(),
                    format!("{}: {}", c.reference, c.summary),
                )
            })
            .collect();
        let mut s = section("Record a complaint or compliment", "receive");
        s.push(action_form(
            key,
            "complaints",
            p.csrf_token(),
            "receive",
            "Record it",
            vec![
                field("reference", "Reference", FieldKind::Text).error(e("receive", "reference")),
                field(
                    "kind",
                    "Kind",
                    FieldKind::Select(vec![
                        ("complaint".into(), "Complaint".into()),
                        ("compliment".into(), "Compliment".into()),
                    ]),
                ),
                field("text", "What it is about", FieldKind::Textarea)
                    .hint("No names or personal details")
                    .error(e("receive", "text")),
                field(
                    "partner",
                    "Handled by",
                    FieldKind::Select(partner_choices(a)),
                )
                .error(e("receive", "partner")),
                field("on", "Received on", FieldKind::Date)
                    .value(today_text.clone())
                    .error(e("receive", "on")),
            ],
        ));
        page = page.section(s);
        if !open.is_empty() {
            let mut s = section("Acknowledge or answer", "answer");
            s.push(action_form(
                key,
                "complaints",
                p.csrf_token(),
                "acknowledge",
                "Record the acknowledgement",
                vec![
                    field("reference", "Complaint", FieldKind::Select(open.clone()))
                        .error(e("acknowledge", "reference")),
                    field("on", "On", FieldKind::Date)
                        .value(today_text.clone())
                        .error(e("acknowledge", "on")),
                ],
            ));
            s.push(action_form(
                key,
                "complaints",
                p.csrf_token(),
                "respond",
                "Record the response",
                vec![
                    field("reference", "Complaint", FieldKind::Select(open))
                        .error(e("respond", "reference")),
                    field("text", "The response or outcome", FieldKind::Textarea)
                        .error(e("respond", "text")),
                    field("on", "On", FieldKind::Date)
                        .value(today_text)
                        .error(e("respond", "on")),
                ],
            ));
            page = page.section(s);
        }
    }
    Ok((status, page.html()?).into_response())
}

async fn complaint_change(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    axum::Form(form): axum::Form<RegisterForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::KeepRegisters).await?;
    let action = if form.action.is_empty() {
        "receive"
    } else {
        form.action.as_str()
    };
    let mut errors = Vec::new();
    if let Some(on) = parse_date(&form.on, "date", &mut errors) {
        let act = match action {
            "acknowledge" => ComplaintAction::Acknowledge {
                reference: &form.reference,
            },
            "respond" => ComplaintAction::Respond {
                reference: &form.reference,
                outcome: &form.text,
            },
            _ => ComplaintAction::Receive {
                reference: &form.reference,
                kind: if form.kind == "compliment" {
                    FeedbackKind::Compliment
                } else {
                    FeedbackKind::Complaint
                },
                summary: &form.text,
                handled_by: &form.partner,
            },
        };
        match governance::complaint_action(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &a,
            on,
            act,
        )
        .await
        {
            Ok(c) => {
                return Ok(done(
                    format!("/agreements/{key}/complaints"),
                    &format!("{} recorded", c.reference),
                ));
            }
            Err(e) => errors.push(refusal(e)?),
        }
    }
    let errors = errors.into_iter().map(|e| on_field(action, e)).collect();
    complaints_view(
        &state,
        &p,
        &a,
        errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

async fn risks_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    risks_view(&state, &p, &a, Vec::new(), q.done, StatusCode::OK).await
}

async fn risks_view(
    state: &AppState,
    p: &Principal,
    a: &Agreement,
    errors: Errors,
    done: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let key = &a.id;
    let today = state.today();
    let mut page = page_for(p, a, "Risk register");
    page.errors = errors.clone();
    page.success = done;
    let mut risks = governance::risks(state.store.as_ref(), key).await?;
    // The highest scores first, as a register is read.
    risks.sort_by(|x, y| {
        (
            x.closed_on.is_some(),
            std::cmp::Reverse(x.score()),
            &x.reference,
        )
            .cmp(&(
                y.closed_on.is_some(),
                std::cmp::Reverse(y.score()),
                &y.reference,
            ))
    });
    let mut list = section("Risks", "risks");
    list.push(Block::Para("Each risk is scored likelihood (1 rare to 5 almost certain) times impact (1 negligible to 5 severe): 15 and over is high, 8 to 14 medium, below 8 low.".into()));
    if risks.is_empty() {
        list.push(Block::Para("No risks are recorded.".into()));
    } else {
        list.push(Block::Table(table(
            "The register, highest first",
            vec![
                cell("Reference"),
                cell("Risk"),
                cell("Owner"),
                num("Likelihood"),
                num("Impact"),
                num("Score"),
                cell("Rating"),
                cell("Mitigations"),
                cell("Review by"),
                cell("Status"),
            ],
            risks
                .iter()
                .map(|r| {
                    let rating = r.rating();
                    vec![
                        cell(r.reference.clone()),
                        cell(r.title.clone()),
                        cell(r.owner.clone()),
                        num(r.likelihood.to_string()),
                        num(r.impact.to_string()),
                        num(r.score().to_string()),
                        cell(rating.label()).tag(match rating {
                            concordat_core::proceedings::RiskRating::High => "red",
                            concordat_core::proceedings::RiskRating::Medium => "yellow",
                            concordat_core::proceedings::RiskRating::Low => "green",
                        }),
                        cell(r.mitigations.clone()),
                        cell(r.review_on.to_string()),
                        match r.closed_on {
                            Some(on) => cell(format!("closed {on}")).tag("grey"),
                            None => overdue_cell(r.review_overdue(today), true),
                        },
                    ]
                })
                .collect(),
        )));
    }
    page = page.section(list);
    if p.may(key, Permission::KeepRegisters) {
        let e = |action: &str, f: &str| error_for(&errors, &format!("{action}-{f}"));
        let scores: Vec<(String, String)> =
            (1..=5).map(|i| (i.to_string(), i.to_string())).collect();
        let mut s = section("Add a risk", "add");
        s.push(action_form(
            key,
            "risks",
            p.csrf_token(),
            "add",
            "Add the risk",
            vec![
                field("reference", "Reference", FieldKind::Text).error(e("add", "reference")),
                field("text", "The risk", FieldKind::Textarea).error(e("add", "text")),
                field("owner", "Owner", FieldKind::Text).error(e("add", "owner")),
                field(
                    "likelihood",
                    "Likelihood",
                    FieldKind::Select(scores.clone()),
                )
                .value("3")
                .error(e("add", "likelihood")),
                field("impact", "Impact", FieldKind::Select(scores.clone()))
                    .value("3")
                    .error(e("add", "impact")),
                field("kind", "Mitigations", FieldKind::Textarea),
                field("review_on", "Review by", FieldKind::Date)
                    .hint("YYYY-MM-DD")
                    .error(e("add", "review_on")),
            ],
        ));
        page = page.section(s);
        let open: Vec<(String, String)> = risks
            .iter()
            .filter(|r| r.closed_on.is_none())
            .map(|r| (r.reference.clone(), format!("{}: {}", r.reference, r.title)))
            .collect();
        if !open.is_empty() {
            let mut s = section("Review a risk", "review");
            s.push(action_form(
                key,
                "risks",
                p.csrf_token(),
                "update",
                "Save the review",
                vec![
                    field("reference", "Risk", FieldKind::Select(open))
                        .error(e("update", "reference")),
                    field(
                        "likelihood",
                        "Likelihood now",
                        FieldKind::Select(scores.clone()),
                    )
                    .value("3"),
                    field("impact", "Impact now", FieldKind::Select(scores)).value("3"),
                    field("kind", "Mitigations now", FieldKind::Textarea)
                        .hint("Left empty, the mitigations stay as they are"),
                    field("review_on", "Next review by", FieldKind::Date)
                        .hint("YYYY-MM-DD")
                        .error(e("update", "review_on")),
                    field(
                        "close",
                        "Close the risk?",
                        FieldKind::Select(vec![
                            ("no".into(), "No".into()),
                            ("yes".into(), "Yes: it no longer applies".into()),
                        ]),
                    ),
                ],
            ));
            page = page.section(s);
        }
    }
    Ok((status, page.html()?).into_response())
}

async fn risk_change(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    axum::Form(form): axum::Form<RegisterForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::KeepRegisters).await?;
    let action = if form.action == "update" {
        "update"
    } else {
        "add"
    };
    let mut errors = Vec::new();
    let score = |text: &str, f: &str, errors: &mut Errors| match text.trim().parse::<u8>() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push((format!("Choose the {f} from 1 to 5"), f.to_string()));
            None
        }
    };
    let likelihood = score(&form.likelihood, "likelihood", &mut errors);
    let impact = score(&form.impact, "impact", &mut errors);
    let review_on = parse_date(&form.review_on, "review_on", &mut errors);
    if let (Some(likelihood), Some(impact), Some(review_on)) = (likelihood, impact, review_on) {
        let result = if action == "update" {
            match governance::risks(state.store.as_ref(), &key)
                .await?
                .into_iter()
                .find(|r| r.reference == form.reference)
            {
                None => Err(GovernanceRefusal {
                    field: "reference",
                    message: format!("There is no risk {}", form.reference),
                }
                .into()),
                Some(mut r) => {
                    r.likelihood = likelihood;
                    r.impact = impact;
                    r.review_on = review_on;
                    if !form.kind.trim().is_empty() {
                        r.mitigations = form.kind.trim().to_string();
                    }
                    if form.close == "yes" {
                        r.closed_on = Some(state.today());
                    }
                    governance::put_risk(
                        state.store.as_ref(),
                        &p.actor(),
                        &state.now(),
                        &a,
                        &r,
                        false,
                    )
                    .await
                    .map(|()| r)
                }
            }
        } else {
            let r = Risk {
                reference: form.reference.trim().to_string(),
                title: form.text.trim().to_string(),
                owner: form.owner.trim().to_string(),
                likelihood,
                impact,
                mitigations: form.kind.trim().to_string(),
                review_on,
                closed_on: None,
            };
            governance::put_risk(state.store.as_ref(), &p.actor(), &state.now(), &a, &r, true)
                .await
                .map(|()| r)
        };
        match result {
            Ok(r) => {
                return Ok(done(
                    format!("/agreements/{key}/risks"),
                    &format!(
                        "Risk {} saved: {} ({})",
                        r.reference,
                        r.rating().label(),
                        r.score()
                    ),
                ));
            }
            Err(e) => errors.push(refusal(e)?),
        }
    }
    let errors = errors.into_iter().map(|e| on_field(action, e)).collect();
    risks_view(
        &state,
        &p,
        &a,
        errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Notice and exit

#[derive(Deserialize, Default)]
pub(crate) struct NoticeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    served_by: String,
    #[serde(default)]
    served_on: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

async fn notice_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    notice_view(&state, &p, &a, Vec::new(), q.done, &q.year, StatusCode::OK).await
}

async fn notice_view(
    state: &AppState,
    p: &Principal,
    a: &Agreement,
    errors: Errors,
    done: Option<String>,
    year: &str,
    status: StatusCode,
) -> Result<Response, WebError> {
    let key = &a.id;
    let mut page = page_for(p, a, "Notice and exit");
    page.errors = errors.clone();
    page.success = done;
    let mut terms = section("Notice terms", "terms");
    match &a.notice {
        Some(n) => terms.push(Block::Summary(vec![
            (
                "Notice".into(),
                format!("At least {} months in writing", n.months),
            ),
            (
                "Expiring".into(),
                match n.expiring {
                    concordat_core::agreement::NoticeExpiry::AnyDay => {
                        "On any day once the period has run".into()
                    }
                    concordat_core::agreement::NoticeExpiry::EndOfFinancialYear => {
                        "Only at the end of a financial year (31 March)".into()
                    }
                },
            ),
            (
                "Another date".into(),
                if n.or_date_agreed_by_all {
                    "The partners may agree another date together".into()
                } else {
                    "Not provided for".into()
                },
            ),
        ])),
        None => terms.push(Block::Para(
            "The agreement has no notice terms, so notice cannot be served under it here.".into(),
        )),
    }
    page = page.section(terms);
    let served = governance::notice(state.store.as_ref(), key).await?;
    let mut s = section("Notice served", "served");
    match &served {
        Some(n) => {
            s.push(Block::Warning(format!(
                "The agreement is in notice: {} served notice on {}; it ends on {}.",
                partner_name(a, &n.served_by),
                n.served_on,
                n.ends_on
            )));
            s.push(Block::Summary(vec![
                (
                    "Reason given".into(),
                    if n.reason.is_empty() {
                        "None".into()
                    } else {
                        n.reason.clone()
                    },
                ),
                ("How the end date follows".into(), n.reasoning.join(" ")),
            ]));
        }
        None => s.push(Block::Para("No notice has been served.".into())),
    }
    page = page.section(s);
    if served.is_none() && a.notice.is_some() && p.may(key, Permission::ServeNotice) {
        let e = |f: &str| error_for(&errors, f);
        let mut s = section("Record notice served", "serve");
        s.push(Block::Warning(
            "This puts the whole agreement in notice. Type serve notice to confirm.".into(),
        ));
        let mut form = post_form(
            format!("/agreements/{key}/notice"),
            p.csrf_token(),
            "Record the notice",
            vec![
                field(
                    "served_by",
                    "Served by",
                    FieldKind::Select(partner_choices(a)),
                )
                .error(e("served_by")),
                field("served_on", "Served on", FieldKind::Date)
                    .hint("YYYY-MM-DD")
                    .value(state.today().to_string())
                    .error(e("served_on")),
                field("reason", "Reason given", FieldKind::Textarea),
                field("confirm", "Type serve notice to confirm", FieldKind::Text)
                    .error(e("confirm")),
            ],
        );
        form.warning = true;
        s.push(Block::Form(form));
        page = page.section(s);
    }
    // The exit statement: each pooled fund's year settled under the exit rules.
    let pooled: Vec<_> = a
        .funds
        .iter()
        .filter(|f| {
            f.kind == concordat_core::agreement::FundKind::Pooled && !f.contributions.is_empty()
        })
        .collect();
    let mut exit = section("Exit statement", "exit");
    if let Some(text) = a.exit.as_ref().and_then(|e| e.text.clone()) {
        exit.push(Block::Para(text));
    }
    if pooled.is_empty() {
        exit.push(Block::Para("The agreement has no pooled fund with contributions, so there are no pooled balances to distribute on exit.".into()));
    } else {
        let default_year = served
            .as_ref()
            .map(|n| concordat_core::FinancialYear::containing(n.ends_on))
            .unwrap_or_else(|| {
                pooled[0]
                    .contributions
                    .iter()
                    .map(|c| c.year)
                    .max()
                    .expect("contributions")
            });
        let year = year
            .parse::<concordat_core::FinancialYear>()
            .unwrap_or(default_year);
        exit.push(Block::Form(get_form(
            format!("/agreements/{key}/notice"),
            "Show",
            vec![
                field("year", "The final financial year", FieldKind::Text).value(year.to_string()),
            ],
        )));
        for fund in pooled {
            let statement = governance::exit_statement(state.store.as_ref(), a, fund, year).await;
            match statement {
                Ok(st) => {
                    exit.push(Block::Para(format!("{}, {year}. {}", fund.name, st.basis)));
                    let s = &st.settlement;
                    exit.push(Block::Summary(vec![
                        ("Contributions due".into(), s.contributions_due.to_string()),
                        ("Spend".into(), s.spend.to_string()),
                        (
                            "Variance (positive is an overspend)".into(),
                            s.variance.to_string(),
                        ),
                        (
                            "Left in the pool after settling".into(),
                            s.pool_balance_after.to_string(),
                        ),
                    ]));
                    exit.push(Block::Table(table(
                        &format!("{}: what each partner pays in or gets back", fund.name),
                        vec![
                            cell("Partner"),
                            num("Contribution due"),
                            num("Received"),
                            num("Share of the variance"),
                            num("Balance"),
                            cell("Position"),
                        ],
                        s.lines
                            .iter()
                            .map(|l| {
                                vec![
                                    cell(format!(
                                        "{}{}",
                                        partner_name(a, &l.partner),
                                        if l.is_host { " (host)" } else { "" }
                                    )),
                                    num(l.contribution_due.to_string()),
                                    num(l.contribution_received.to_string()),
                                    num(l.risk_share.to_string()),
                                    num(l.balance.to_string()),
                                    cell(match l.position {
                                        concordat_core::statement::Position::OwesHost => {
                                            "owes the host"
                                        }
                                        concordat_core::statement::Position::OwedByHost => {
                                            "is owed by the host"
                                        }
                                        concordat_core::statement::Position::Settled => "settled",
                                    }),
                                ]
                            })
                            .collect(),
                    )));
                }
                Err(e) => exit.push(Block::Para(format!(
                    "{}: no exit statement for {year}: {e}",
                    fund.name
                ))),
            }
        }
    }
    page = page.section(exit);
    Ok((status, page.html()?).into_response())
}

async fn notice_serve(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    axum::Form(form): axum::Form<NoticeForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    let a = visible_agreement(&state, &p, &key, Permission::ServeNotice).await?;
    let mut errors = Vec::new();
    if form.confirm.trim().to_lowercase() != "serve notice" {
        errors.push((
            "Type serve notice to confirm".to_string(),
            "confirm".to_string(),
        ));
    }
    let on = parse_date(&form.served_on, "served_on", &mut errors);
    if let (true, Some(on)) = (errors.is_empty(), on) {
        match governance::serve_notice(
            state.store.as_ref(),
            &p.actor(),
            &state.now(),
            &a,
            &form.served_by,
            on,
            &form.reason,
        )
        .await
        {
            Ok(n) => {
                return Ok(done(
                    format!("/agreements/{key}/notice"),
                    &format!("Notice recorded: the agreement ends on {}", n.ends_on),
                ));
            }
            Err(e) => errors.push(refusal(e)?),
        }
    }
    notice_view(
        &state,
        &p,
        &a,
        errors,
        None,
        "",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// The section listing governance for the agreement page.
pub(crate) fn agreement_links(key: &str) -> Section {
    section("Governance", "governance-links").with(Block::Links(vec![
        link(
            "Bodies and the scheme of delegation",
            format!("/agreements/{key}/governance"),
        ),
        link("Meetings", format!("/agreements/{key}/meetings")),
        link("Decision log", format!("/agreements/{key}/decisions")),
        link("Disputes", format!("/agreements/{key}/disputes")),
        link(
            "Complaints and compliments",
            format!("/agreements/{key}/complaints"),
        ),
        link("Risk register", format!("/agreements/{key}/risks")),
        link("Notice and exit", format!("/agreements/{key}/notice")),
    ]))
}

pub(crate) fn routes() -> axum::Router<AppState> {
    crate::routes::build(ROUTES)
}
