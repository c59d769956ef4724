//! The demo's governance: meetings of the seed partnerships' bodies, decisions at each of the
//! three levels (one with the budget changes it authorises, one a pool manager's delegated
//! revision), papers, a dispute, a complaint and a compliment, and a risk register — all
//! through the same application functions as the command line and the web, so every record
//! is checked as a user's would be.
//!
//! Everyone named here is illustrative ("Councillor A. Example"): the source documents name
//! the bodies and their seats, not who sat in them.

use anyhow::{Context, Result, bail};
use concordat_app::governance::{self, ComplaintAction, DisputeAction, NewPaper};
use concordat_app::{BudgetRequest, finance};
use concordat_core::agreement::{Agreement, DecisionLevelKind, DecisionType};
use concordat_core::governance::{Choice, Vote};
use concordat_core::proceedings::{
    AgendaItem, Attendee, Capacity, Declaration, FeedbackKind, Meeting, MeetingStatus, Proposal,
    Risk,
};
use concordat_core::{FinancialYear, Money};
use concordat_store::{Actor, Store};
use jiff::civil::{Date, date};

fn at() -> String {
    jiff::Timestamp::now().to_string()
}

fn pounds(p: i64) -> Money {
    Money::from_pence(p * 100)
}

fn attendee(name: &str, partner: Option<&str>, capacity: Capacity) -> Attendee {
    Attendee {
        name: name.into(),
        partner: partner.map(str::to_string),
        capacity,
        substitute_for: None,
        roles: Vec::new(),
    }
}

fn member(name: &str, partner: &str) -> Attendee {
    attendee(name, Some(partner), Capacity::Member)
}

fn agenda(items: &[&str]) -> Vec<AgendaItem> {
    items
        .iter()
        .zip(1..)
        .map(|(title, number)| AgendaItem {
            number,
            title: title.to_string(),
        })
        .collect()
}

/// A proposal with nothing but what every decision has; the callers fill in the rest.
fn proposal(reference: &str, title: &str, resolution: &str, level: DecisionLevelKind) -> Proposal {
    Proposal {
        reference: reference.into(),
        title: title.into(),
        resolution: resolution.into(),
        level,
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

fn votes_for(members: &[String]) -> Vec<Vote> {
    members
        .iter()
        .map(|m| Vote {
            member: m.clone(),
            choice: Choice::For,
        })
        .collect()
}

/// Governance for the three seed partnerships whose agreements set out their bodies, and a
/// line for each saying what was recorded.
pub(crate) async fn run(store: &dyn Store, actor: &Actor) -> Result<()> {
    outln!("Governance (illustrative names; the documents name bodies, not their members):");
    for (key, record) in [
        ("hertfordshire", Partnership::Hertfordshire),
        ("trafford", Partnership::Trafford),
        ("halton-st-helens", Partnership::HaltonStHelens),
    ] {
        let Ok(agreement) = finance::stored_agreement(store, key).await else {
            continue;
        };
        match record {
            Partnership::Hertfordshire => hertfordshire(store, actor, &agreement).await,
            Partnership::Trafford => trafford(store, actor, &agreement).await,
            Partnership::HaltonStHelens => halton_st_helens(store, actor, &agreement).await,
        }
        .with_context(|| format!("the demo's governance for {key}"))?;
        outln!("  {}", summary(store, key).await?);
    }
    outln!();
    Ok(())
}

#[derive(Clone, Copy)]
enum Partnership {
    Hertfordshire,
    Trafford,
    HaltonStHelens,
}

/// "hertfordshire: 2 meetings (1 held, 1 scheduled), 3 decisions", from what the store holds.
async fn summary(store: &dyn Store, key: &str) -> Result<String> {
    let meetings = governance::meetings(store, key).await?;
    let held = meetings
        .iter()
        .filter(|m| m.status == MeetingStatus::Held)
        .count();
    let decisions = governance::decisions(store, key).await?.len();
    let mut line = format!(
        "{key}: {} meeting{} ({held} held, {} scheduled), {decisions} decision{}",
        meetings.len(),
        crate::plural(meetings.len()),
        meetings.len() - held,
        crate::plural(decisions)
    );
    let disputes = governance::disputes(store, key).await?.len();
    let complaints = governance::complaints(store, key).await?.len();
    let risks = governance::risks(store, key).await?.len();
    if disputes + complaints + risks > 0 {
        line.push_str(&format!(
            ", {disputes} dispute{}, {complaints} complaint{} or compliment{}, {risks} risk{}",
            crate::plural(disputes),
            crate::plural(complaints),
            crate::plural(complaints),
            crate::plural(risks)
        ));
    }
    Ok(line)
}

/// A budget line's current annual amount and its twelve period amounts, in pence.
async fn budget_line(
    store: &dyn Store,
    key: &str,
    fund: &str,
    year: FinancialYear,
    service_line: &str,
) -> Result<Vec<i64>> {
    store
        .budgets(key, Some(fund), i64::from(year.start_year()))
        .await?
        .into_iter()
        .find(|b| b.service_line == service_line && b.partner.is_none() && b.locality.is_none())
        .map(|b| b.period_amounts_pence)
        .with_context(|| format!("the demo budget has no line '{service_line}' in {fund} {year}"))
}

/// A revision of a line by `change_pence` from `from_period` on, the earlier periods as they
/// were (they are closed): the line's new annual amount and its phasing as `budget set` takes
/// it, twelve amounts separated by `;`.
fn revised_from(periods: &[i64], change_pence: i64, from_period: usize) -> Result<(Money, String)> {
    let remaining = periods.len() - (from_period - 1);
    let share =
        concordat_core::allocate(Money::from_pence(change_pence.abs()), &vec![1; remaining])?;
    let mut amounts = periods.to_vec();
    for (amount, part) in amounts[from_period - 1..].iter_mut().zip(share) {
        *amount += part.pence() * change_pence.signum();
    }
    if amounts.iter().any(|a| *a < 0) {
        bail!("the demo revision would leave a period negative");
    }
    let phasing: Vec<String> = amounts
        .iter()
        .map(|p| Money::from_pence(*p).to_plain())
        .collect();
    Ok((Money::from_pence(amounts.iter().sum()), phasing.join(";")))
}

/// Hertfordshire's Joint Commissioning Partnership Board, 8:8, deciding by a block vote of
/// each side: a held meeting in October 2001 with a virement in the mental health pool and a
/// carers' policy, the next meeting scheduled, and a revision under the pool manager's
/// delegated authority.
async fn hertfordshire(store: &dyn Store, actor: &Actor, agreement: &Agreement) -> Result<()> {
    let key = agreement.id.as_str();
    let councillors: Vec<String> = ('A'..='H')
        .map(|c| format!("Councillor {c}. Example"))
        .collect();
    let pct_members: Vec<String> = ('A'..='H')
        .map(|c| format!("PCT board member {c}. Sample"))
        .collect();
    let interested = pct_members[3].clone();
    let mut attendance: Vec<Attendee> = councillors
        .iter()
        .map(|n| member(n, "county-council"))
        .chain(pct_members.iter().map(|n| member(n, "pcts")))
        .collect();
    attendance.push(attendee(
        "Carers' representative C. Example",
        None,
        Capacity::CoOpted,
    ));
    attendance.push(attendee(
        "Service users' representative S. Example",
        None,
        Capacity::CoOpted,
    ));
    attendance.push(attendee(
        "Pool manager P. Example",
        None,
        Capacity::InAttendance,
    ));
    let meeting = Meeting {
        reference: "JCPB-2001-10".into(),
        body: "jcpb".into(),
        date: date(2001, 10, 16),
        status: MeetingStatus::Held,
        location: Some("County Hall, Hertford".into()),
        attendance,
        declarations: vec![Declaration {
            member: interested.clone(),
            item: 4,
            interest: "Trustee of a local carers' charity that may bid for the services".into(),
        }],
        agenda: agenda(&[
            "Apologies and declarations of interest",
            "Minutes of the meeting of 17 July 2001",
            "Mental health pooled budget: virement from residential placements to reablement",
            "A carers' strategy for the pooled services",
            "Date of the next meeting",
        ]),
    };
    governance::record_meeting(store, actor, &at(), agreement, &meeting, true).await?;
    governance::record_meeting(
        store,
        actor,
        &at(),
        agreement,
        &Meeting {
            reference: "JCPB-2002-01".into(),
            body: "jcpb".into(),
            date: date(2002, 1, 15),
            status: MeetingStatus::Scheduled,
            location: Some("County Hall, Hertford".into()),
            attendance: Vec::new(),
            declarations: Vec::new(),
            agenda: agenda(&[
                "Apologies and declarations of interest",
                "Budget monitoring to P09",
                "Budgets for 2002/03",
            ]),
        },
        true,
    )
    .await?;

    // The virement: money moves between two of the demo's mental health lines from P07, the
    // first open period after the meeting, so the closed half-year keeps its budget.
    let fund = finance::fund(agreement, "mental-health")?;
    let year = fund
        .contributions
        .first()
        .map(|c| c.year)
        .context("the mental health pool has no contributions")?;
    let virement = pounds(60_000);
    let (from_line, to_line) = ("Residential placements", "Reablement");
    let from = budget_line(store, key, &fund.id, year, from_line).await?;
    let to = budget_line(store, key, &fund.id, year, to_line).await?;
    if from.iter().sum::<i64>() < virement.pence() * 2 {
        bail!("the demo's {from_line} budget is too small for the virement");
    }
    let mut changes = Vec::new();
    for (line, periods, change) in [
        (from_line, &from, -virement.pence()),
        (to_line, &to, virement.pence()),
    ] {
        let (annual, phasing) = revised_from(periods, change, 7)?;
        changes.push(BudgetRequest {
            year,
            service_line: line.into(),
            partner: None,
            locality: None,
            annual,
            phasing,
            client_income: Money::ZERO,
            reason: format!(
                "Virement of {virement} from {from_line} to {to_line} from P07 (JCPB-2001-10, item 3)"
            ),
            authority: None,
            delegated: None,
            new_line: false,
        });
    }
    let mut p = proposal(
        "JCPB-2001-10-03",
        "Virement from residential placements to reablement, mental health pool",
        &format!(
            "The Board agreed a virement of {virement} within the mental health pooled budget for {year}, from {from_line} to {to_line}, from P07, to expand reablement as an alternative to residential care."
        ),
        DecisionLevelKind::Joint,
    );
    p.decision_type = DecisionType::Virement;
    p.meeting = Some(meeting.reference.clone());
    p.agenda_item = Some(3);
    p.fund = Some(fund.id.clone());
    p.amount = Some(virement);
    p.votes = votes_for(&[councillors.clone(), pct_members.clone()].concat());
    p.published = true;
    governance::record_decision(store, actor, &at(), agreement, &p, changes).await?;

    // The member with an interest in item 4 does not vote on it.
    let mut p = proposal(
        "JCPB-2001-10-04",
        "A carers' strategy for the pooled services",
        "The Board adopted the carers' strategy as its policy for commissioning from all four pools, and asked for a report on carers' breaks in January 2002.",
        DecisionLevelKind::Joint,
    );
    p.meeting = Some(meeting.reference.clone());
    p.agenda_item = Some(4);
    let voters: Vec<String> = councillors
        .iter()
        .chain(pct_members.iter().filter(|m| **m != interested))
        .cloned()
        .collect();
    p.votes = votes_for(&voters);
    p.published = true;
    governance::record_decision(store, actor, &at(), agreement, &p, Vec::new()).await?;

    // Within the pool manager's £50,000: equipment £20,000 lower from P07, as its contract
    // price fell. The app records the officer's decision with the revision.
    let line = "Equipment";
    let periods = budget_line(store, key, &fund.id, year, line).await?;
    let (annual, phasing) = revised_from(&periods, -pounds(20_000).pence(), 7)?;
    concordat_app::set_budget(
        store,
        actor,
        &at(),
        agreement,
        fund,
        BudgetRequest {
            year,
            service_line: line.into(),
            partner: None,
            locality: None,
            annual,
            phasing,
            client_income: Money::ZERO,
            reason: "Community equipment contract re-priced from P07: £20,000 less".into(),
            authority: None,
            delegated: Some("pool_manager".into()),
            new_line: false,
        },
    )
    .await?;
    Ok(())
}

/// Trafford's Joint Commissioning Executive Group, three a side deciding by consensus; a
/// decision the council keeps to itself; and one under the Corporate Director's delegation.
async fn trafford(store: &dyn Store, actor: &Actor, agreement: &Agreement) -> Result<()> {
    let mut attendance = vec![
        member("Councillor J. Example", "council"),
        member("Director K. Example", "council"),
        member("Head of Service L. Example", "council"),
        member("CCG clinical lead M. Sample", "ccg"),
        member("CCG director N. Sample", "ccg"),
        member("CCG commissioning manager O. Sample", "ccg"),
    ];
    attendance.push(attendee(
        "Partnership manager Q. Example",
        None,
        Capacity::InAttendance,
    ));
    let meeting = Meeting {
        reference: "JCEG-2014-06".into(),
        body: "jceg".into(),
        date: date(2014, 6, 12),
        status: MeetingStatus::Held,
        location: Some("Trafford Town Hall".into()),
        attendance,
        declarations: Vec::new(),
        agenda: agenda(&[
            "Apologies and declarations of interest",
            "Joint commissioning intentions for children, young people and families, 2014/15",
            "Schedules: annual review",
        ]),
    };
    governance::record_meeting(store, actor, &at(), agreement, &meeting, true).await?;

    // Consensus: no votes recorded, no member present against.
    let mut p = proposal(
        "JCEG-2014-06-02",
        "Joint commissioning intentions for children, young people and families, 2014/15",
        "The Group agreed the joint commissioning intentions for 2014/15 and asked each partner to reflect them in its own plans.",
        DecisionLevelKind::Joint,
    );
    p.meeting = Some(meeting.reference.clone());
    p.agenda_item = Some(2);
    p.published = true;
    governance::record_decision(store, actor, &at(), agreement, &p, Vec::new()).await?;

    let mut p = proposal(
        "TC-EXEC-2014-07",
        "Thresholds for children's social care safeguarding",
        "The council, through its Executive, set the thresholds for statutory children's social care assessments; the function stays the council's under the agreement.",
        DecisionLevelKind::Reserved,
    );
    p.partner = Some("council".into());
    p.decided_on = Some(date(2014, 7, 21));
    p.published = true;
    governance::record_decision(store, actor, &at(), agreement, &p, Vec::new()).await?;

    let officer = agreement
        .decision_levels
        .iter()
        .find(|l| l.level == DecisionLevelKind::Delegated)
        .and_then(|l| l.officer.clone())
        .context("Trafford's scheme of delegation names no officer")?;
    let mut p = proposal(
        "CD-CFW-2014-09",
        "Operating procedures for the integrated service's duty desk",
        "The Corporate Director approved the duty desk's operating procedures for the integrated service, from 1 September 2014.",
        DecisionLevelKind::Delegated,
    );
    p.officer = Some(officer);
    p.decided_on = Some(date(2014, 8, 28));
    governance::record_decision(store, actor, &at(), agreement, &p, Vec::new()).await?;
    Ok(())
}

/// The commissioning team's report on older people's budgets, as it would table it: each
/// partner's older people lines from the demo's aligned budgets.
fn older_people_report() -> String {
    let mut csv = String::from("partner,service_line,annual_budget\n");
    for (partner, line, pounds_annual, _) in crate::demo::ALIGNED_LINES {
        if line == "Older people" {
            csv.push_str(&format!(
                "{partner},{line},{}\n",
                Money::from_pence(pounds_annual * 100).to_plain()
            ));
        }
    }
    csv
}

/// Halton and St Helens: the commissioning team meets and reports to the Older People
/// Partnership Boards, which take a policy decision on its report; a dispute over a
/// ring-fence, a complaint and a compliment, and two risks.
async fn halton_st_helens(store: &dyn Store, actor: &Actor, agreement: &Agreement) -> Result<()> {
    let team = Meeting {
        reference: "HSH-TM-2008-11".into(),
        body: "team-meeting".into(),
        date: date(2008, 11, 6),
        status: MeetingStatus::Held,
        location: Some("Commissioning unit".into()),
        attendance: vec![
            member("Assistant Director A. Example", "halton"),
            member("Assistant Director B. Example", "st-helens"),
            member("Operational Director C. Sample", "pct"),
            attendee(
                "Commissioning officer D. Example",
                None,
                Capacity::InAttendance,
            ),
        ],
        declarations: Vec::new(),
        agenda: agenda(&[
            "Older people: budgets and spend to P07",
            "Report to the Older People Partnership Boards",
        ]),
    };
    governance::record_meeting(store, actor, &at(), agreement, &team, true).await?;
    let boards = Meeting {
        reference: "HSH-OPB-2008-11".into(),
        body: "older-people-boards".into(),
        date: date(2008, 11, 27),
        status: MeetingStatus::Held,
        location: Some("St Helens Town Hall".into()),
        attendance: vec![
            member("Councillor E. Example", "halton"),
            member("Councillor F. Example", "st-helens"),
            member("PCT director G. Sample", "pct"),
            attendee(
                "St Helens Senior Voice representative",
                None,
                Capacity::CoOpted,
            ),
            attendee("Halton Open representative", None, Capacity::CoOpted),
        ],
        declarations: Vec::new(),
        agenda: agenda(&[
            "Commissioning team report: older people's budgets, 2008/09",
            "Commissioning strategy for older people, including older people with mental health problems",
        ]),
    };
    governance::record_meeting(store, actor, &at(), agreement, &boards, true).await?;
    governance::add_paper(
        store,
        actor,
        &at(),
        &agreement.id,
        NewPaper {
            meeting: &boards.reference,
            title: "Commissioning team report: older people's budgets, 2008/09",
            file_name: "older-people-budgets-2008-09.csv",
            content: older_people_report().into_bytes(),
        },
    )
    .await?;
    let mut p = proposal(
        "HSH-OPB-2008-11-02",
        "Commissioning strategy for older people",
        "The Boards endorsed the commissioning strategy for older people, including older people with mental health problems, for each partner to adopt.",
        DecisionLevelKind::Joint,
    );
    p.meeting = Some(boards.reference.clone());
    p.agenda_item = Some(2);
    p.published = true;
    governance::record_decision(store, actor, &at(), agreement, &p, Vec::new()).await?;

    // The journal the ring-fence check flags (St Helens money spent in Halton) becomes a
    // dispute, at the first step of the ladder with its 20 days.
    governance::dispute_action(
        store,
        actor,
        &at(),
        agreement,
        date(2008, 11, 20),
        DisputeAction::Raise {
            reference: "HSH-D-2008-01",
            subject: "Older people home care of £18,450.00 in Halton charged to St Helens' budget (journal HSH-J-0001)",
            raised_by: "st-helens",
        },
    )
    .await?;
    let received: Date = date(2008, 12, 3);
    governance::complaint_action(
        store,
        actor,
        &at(),
        agreement,
        received,
        ComplaintAction::Receive {
            reference: "HSH-C-2008-014",
            kind: FeedbackKind::Complaint,
            summary: "Delay in starting a home care package after discharge from hospital",
            handled_by: "halton",
        },
    )
    .await?;
    governance::complaint_action(
        store,
        actor,
        &at(),
        agreement,
        date(2008, 12, 5),
        ComplaintAction::Acknowledge {
            reference: "HSH-C-2008-014",
        },
    )
    .await?;
    governance::complaint_action(
        store,
        actor,
        &at(),
        agreement,
        date(2008, 12, 8),
        ComplaintAction::Receive {
            reference: "HSH-C-2008-015",
            kind: FeedbackKind::Compliment,
            summary: "Thanks to the intermediate care team for support at home after a fall",
            handled_by: "st-helens",
        },
    )
    .await?;
    for risk in [
        Risk {
            reference: "HSH-R-01".into(),
            title: "Older people's placements overspend in St Helens".into(),
            owner: "Director of Adult Social Care and Health, St Helens Council".into(),
            likelihood: 4,
            impact: 4,
            mitigations: "Monthly placements panel; spend against budget reported to the Boards"
                .into(),
            review_on: date(2008, 12, 31),
            closed_on: None,
        },
        Risk {
            reference: "HSH-R-02".into(),
            title: "Miscoded journals move one partner's money to another's services".into(),
            owner: "Partnership Commissioning Team".into(),
            likelihood: 3,
            impact: 3,
            mitigations: "Ring-fence and cross-subsidy checks on every import".into(),
            review_on: date(2009, 3, 31),
            closed_on: None,
        },
    ] {
        governance::put_risk(store, actor, &at(), agreement, &risk, true).await?;
    }
    Ok(())
}
