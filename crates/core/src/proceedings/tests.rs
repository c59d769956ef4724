use super::*;
use crate::agreement::{
    ComplaintsTerms, DecisionLevel, DisputeStep, NoticeExpiry, NoticeTerms, PartialDate, Partner,
    PartnerKind, Quorum, RosterMember, Seats, VotingMode,
};
use crate::governance::Choice;

fn date(y: i16, m: i8, d: i8) -> Date {
    Date::new(y, m, d).unwrap()
}

fn pounds(p: i64) -> Money {
    Money::from_pence(p * 100)
}

fn partner(id: &str) -> Partner {
    Partner {
        id: id.into(),
        name: id.to_uppercase(),
        kind: PartnerKind::CountyCouncil,
        party: true,
        code: None,
        role: None,
        successor_of: None,
        people: Vec::new(),
    }
}

/// A board of two seats a side and a co-optee on its roster, block votes, quorum of three
/// with each side; a pool manager who may revise budgets up to £50,000.
fn agreement() -> Agreement {
    let mut a = crate::notice::tests::serde_json_like();
    a.partners = vec![partner("council"), partner("nhs")];
    let seat = |p: &str| Seats {
        partner: p.into(),
        voting: 2,
        drawn_from: None,
    };
    let on_roster = |name: &str, p: Option<&str>, voting: bool, subs: &[&str]| RosterMember {
        name: name.into(),
        partner: p.map(Into::into),
        voting,
        roles: Vec::new(),
        substitutes: subs.iter().map(|s| (*s).into()).collect(),
    };
    a.bodies = vec![Body {
        id: "board".into(),
        name: "Joint Board".into(),
        purpose: None,
        seats: vec![seat("council"), seat("nhs")],
        co_opted_non_voting: Some(1),
        equal_numbers: true,
        chair: None,
        meets: None,
        reports_to: Vec::new(),
        terms_of_reference: None,
        budget_decisions: true,
        members: Vec::new(),
        established: None,
        quorum: Some(Quorum {
            members: 3,
            each_partner: true,
            roles: Vec::new(),
        }),
        voting: Some(VotingMode::BlockPerPartner),
        chair_rotation: None,
        roster: vec![
            on_roster("Cllr A", Some("council"), true, &["Cllr S"]),
            on_roster("Cllr B", Some("council"), true, &[]),
            on_roster("Dr C", Some("nhs"), true, &[]),
            on_roster("Dr D", Some("nhs"), true, &[]),
            on_roster("Ms Co-opted", None, false, &[]),
        ],
    }];
    a.decision_levels = vec![DecisionLevel {
        level: DecisionLevelKind::Delegated,
        description: "Budget revisions within a fund".into(),
        officer: Some("Pool manager".into()),
        role: Some("pool_manager".into()),
        limit: Some(pounds(50_000)),
        decision_types: vec![DecisionType::BudgetRevision, DecisionType::Virement],
        illustrative: true,
    }];
    a.disputes = Some(DisputeTerms {
        steps: vec![
            DisputeStep {
                name: "Officers".into(),
                days: Some(14),
                illustrative: true,
            },
            DisputeStep {
                name: "Chief executives".into(),
                days: Some(28),
                illustrative: true,
            },
            DisputeStep {
                name: "Mediation".into(),
                days: None,
                illustrative: true,
            },
        ],
        text: None,
    });
    a.complaints = Some(ComplaintsTerms {
        protocol: "Joint protocol".into(),
        handled_by: None,
        acknowledge_days: Some(2),
        respond_days: None,
    });
    a.start_date = Some(PartialDate::parse("2024-04-01").unwrap());
    a.notice = Some(NoticeTerms {
        months: 6,
        expiring: NoticeExpiry::EndOfFinancialYear,
        or_date_agreed_by_all: false,
        text: None,
        illustrative: true,
    });
    a
}

fn attendee(name: &str, capacity: Capacity) -> Attendee {
    Attendee {
        name: name.into(),
        partner: None,
        capacity,
        substitute_for: None,
        roles: Vec::new(),
    }
}

fn meeting(attendance: Vec<Attendee>) -> Meeting {
    Meeting {
        reference: "JB-2024-06".into(),
        body: "board".into(),
        date: date(2024, 6, 12),
        status: MeetingStatus::Held,
        location: None,
        attendance,
        declarations: Vec::new(),
        agenda: vec![AgendaItem {
            number: 4,
            title: "Budget revision".into(),
        }],
    }
}

fn full_meeting() -> Meeting {
    meeting(vec![
        attendee("Cllr A", Capacity::Member),
        attendee("Cllr B", Capacity::Member),
        attendee("Dr C", Capacity::Member),
        attendee("Dr D", Capacity::Member),
        attendee("Ms Co-opted", Capacity::CoOpted),
    ])
}

fn proposal(level: DecisionLevelKind) -> Proposal {
    Proposal {
        reference: "D1".into(),
        title: "Move £60,000 to reablement".into(),
        resolution: "Agreed".into(),
        level,
        decision_type: DecisionType::Virement,
        meeting: Some("JB-2024-06".into()),
        agenda_item: Some(4),
        officer: None,
        partner: None,
        decided_on: None,
        fund: None,
        amount: Some(pounds(60_000)),
        votes: Vec::new(),
        published: true,
    }
}

/// The board votes in blocks, so its decisions record votes: everyone named here for.
fn all_for(members: &[&str]) -> Vec<Vote> {
    members.iter().map(|m| vote(m, Choice::For)).collect()
}

fn vote(member: &str, choice: Choice) -> Vote {
    Vote {
        member: member.into(),
        choice,
    }
}

#[test]
fn a_joint_decision_at_a_quorate_meeting_stands_with_its_basis() {
    let a = agreement();
    let mut p = proposal(DecisionLevelKind::Joint);
    p.votes = vec![
        vote("Cllr A", Choice::For),
        vote("Cllr B", Choice::For),
        vote("Dr C", Choice::For),
        vote("Dr D", Choice::Abstain),
    ];
    let d = decide(&a, &p, Some(&full_meeting())).unwrap();
    assert_eq!(d.decided_on, date(2024, 6, 12));
    assert_eq!(d.body.as_deref(), Some("board"));
    assert_eq!(d.tally.as_ref().unwrap().for_votes, 3);
    assert!(
        d.basis
            .contains("4 voting members present, quorum 3 with each partner"),
        "{}",
        d.basis
    );
}

#[test]
fn a_co_optee_entered_as_a_member_still_has_no_vote() {
    let a = agreement();
    let mut m = full_meeting();
    m.attendance[4].capacity = Capacity::Member;
    let mut p = proposal(DecisionLevelKind::Joint);
    p.votes = vec![vote("Ms Co-opted", Choice::For)];
    assert_eq!(
        decide(&a, &p, Some(&m)).unwrap_err(),
        Refusal::NonVotingMemberVoted {
            member: "Ms Co-opted".into()
        }
    );
}

#[test]
fn no_quorum_without_each_partner() {
    let a = agreement();
    let m = meeting(vec![
        attendee("Cllr A", Capacity::Member),
        attendee("Cllr B", Capacity::Member),
        attendee("Ms Co-opted", Capacity::CoOpted),
    ]);
    let refused = decide(&a, &proposal(DecisionLevelKind::Joint), Some(&m)).unwrap_err();
    assert!(matches!(refused, Refusal::NoQuorum(_)), "{refused}");
    assert_eq!(refused.field(), "meeting");
}

#[test]
fn substitutes_must_be_named_and_stand_in_for_someone_absent() {
    let a = agreement();
    let mut sub = attendee("Cllr S", Capacity::Substitute);
    sub.substitute_for = Some("Cllr A".into());
    // Cllr S is Cllr A's named substitute: with Cllr A absent they count for the council.
    let m = meeting(vec![
        sub.clone(),
        attendee("Cllr B", Capacity::Member),
        attendee("Dr C", Capacity::Member),
    ]);
    let present = present(&a.bodies[0], &m.attendance).unwrap();
    assert_eq!(present[0].partner.as_deref(), Some("council"));
    let mut p = proposal(DecisionLevelKind::Joint);
    p.votes = all_for(&["Cllr S", "Cllr B", "Dr C"]);
    assert!(decide(&a, &p, Some(&m)).is_ok());
    // Not with Cllr A there too.
    let both = meeting(vec![sub.clone(), attendee("Cllr A", Capacity::Member)]);
    assert!(matches!(
        decide(&a, &proposal(DecisionLevelKind::Joint), Some(&both)).unwrap_err(),
        Refusal::SubstituteAndMemberBothPresent { .. }
    ));
    // And not for someone who has not named them.
    let mut wrong = sub;
    wrong.substitute_for = Some("Cllr B".into());
    let m = meeting(vec![wrong, attendee("Cllr A", Capacity::Member)]);
    assert_eq!(
        decide(&a, &proposal(DecisionLevelKind::Joint), Some(&m)).unwrap_err(),
        Refusal::NotANamedSubstitute {
            member: "Cllr S".into(),
            for_member: "Cllr B".into()
        }
    );
}

#[test]
fn people_off_the_roster_are_refused() {
    let a = agreement();
    let mut m = full_meeting();
    m.attendance.push(attendee("Mr Stranger", Capacity::Member));
    assert_eq!(
        decide(&a, &proposal(DecisionLevelKind::Joint), Some(&m)).unwrap_err(),
        Refusal::NotOnRoster {
            member: "Mr Stranger".into(),
            body: "Joint Board".into()
        }
    );
}

#[test]
fn a_partner_cannot_have_more_voting_members_than_seats() {
    let mut a = agreement();
    a.bodies[0].roster.clear();
    let member_of = |name: &str, p: &str| Attendee {
        partner: Some(p.into()),
        ..attendee(name, Capacity::Member)
    };
    let m = meeting(vec![
        member_of("a", "council"),
        member_of("b", "council"),
        member_of("c", "council"),
        member_of("d", "nhs"),
    ]);
    assert_eq!(
        decide(&a, &proposal(DecisionLevelKind::Joint), Some(&m)).unwrap_err(),
        Refusal::MoreThanSeats {
            body: "Joint Board".into(),
            partner: "council".into(),
            seats: 2,
            present: 3
        }
    );
}

#[test]
fn an_interest_declared_on_the_item_bars_the_vote() {
    let a = agreement();
    let mut m = full_meeting();
    m.declarations.push(Declaration {
        member: "Dr D".into(),
        item: 4,
        interest: "Director of a provider bidding".into(),
    });
    let mut p = proposal(DecisionLevelKind::Joint);
    p.votes = vec![vote("Dr D", Choice::For)];
    assert_eq!(
        decide(&a, &p, Some(&m)).unwrap_err(),
        Refusal::InterestedMemberVoted {
            member: "Dr D".into()
        }
    );
    // An interest in another item does not.
    p.agenda_item = Some(5);
    p.votes = all_for(&["Cllr A", "Dr D"]);
    assert!(decide(&a, &p, Some(&m)).is_ok());
}

#[test]
fn one_partners_representatives_not_agreeing_means_no_joint_decision() {
    let a = agreement();
    let mut p = proposal(DecisionLevelKind::Joint);
    p.votes = vec![
        vote("Cllr A", Choice::For),
        vote("Cllr B", Choice::For),
        vote("Dr C", Choice::Against),
        vote("Dr D", Choice::Against),
    ];
    assert_eq!(
        decide(&a, &p, Some(&full_meeting())).unwrap_err(),
        Refusal::PartnerDidNotAgree {
            partner: "nhs".into(),
            for_votes: 0,
            against: 2
        }
    );
}

#[test]
fn an_officer_decides_within_the_limit_and_not_above_it() {
    let a = agreement();
    let mut p = proposal(DecisionLevelKind::Delegated);
    p.meeting = None;
    p.officer = Some("pool_manager".into());
    p.decided_on = Some(date(2024, 7, 1));
    p.amount = Some(pounds(50_000));
    let d = decide(&a, &p, None).unwrap();
    assert!(d.basis.contains("up to £50,000.00"), "{}", d.basis);
    p.amount = Some(pounds(60_000));
    let refused = decide(&a, &p, None).unwrap_err();
    assert!(matches!(refused, Refusal::AboveLimit { .. }), "{refused}");
    assert_eq!(refused.field(), "amount");
    p.amount = Some(pounds(1));
    p.decision_type = DecisionType::ContractAward;
    assert!(matches!(
        decide(&a, &p, None).unwrap_err(),
        Refusal::TypeNotDelegated { .. }
    ));
}

#[test]
fn money_decisions_need_an_amount_and_a_body_with_budget_powers() {
    let mut a = agreement();
    let mut p = proposal(DecisionLevelKind::Joint);
    p.amount = None;
    assert!(matches!(
        decide(&a, &p, Some(&full_meeting())).unwrap_err(),
        Refusal::AmountMissing { .. }
    ));
    a.bodies[0].budget_decisions = false;
    assert!(matches!(
        decide(
            &a,
            &proposal(DecisionLevelKind::Joint),
            Some(&full_meeting())
        )
        .unwrap_err(),
        Refusal::NoBudgetPowers { .. }
    ));
    // A policy decision needs neither.
    let mut policy = proposal(DecisionLevelKind::Joint);
    policy.decision_type = DecisionType::Policy;
    policy.amount = None;
    policy.votes = all_for(&["Cllr A", "Dr C"]);
    assert!(decide(&a, &policy, Some(&full_meeting())).is_ok());
}

#[test]
fn joint_decisions_need_a_held_meeting_and_reserved_ones_a_partner() {
    let a = agreement();
    let mut p = proposal(DecisionLevelKind::Joint);
    assert_eq!(decide(&a, &p, None).unwrap_err(), Refusal::NeedsMeeting);
    let mut scheduled = full_meeting();
    scheduled.status = MeetingStatus::Scheduled;
    assert!(matches!(
        decide(&a, &p, Some(&scheduled)).unwrap_err(),
        Refusal::MeetingNotHeld { .. }
    ));
    p.level = DecisionLevelKind::Reserved;
    p.meeting = None;
    p.decided_on = Some(date(2024, 7, 1));
    assert_eq!(decide(&a, &p, None).unwrap_err(), Refusal::NeedsPartner);
    p.partner = Some("council".into());
    assert!(
        decide(&a, &p, None)
            .unwrap()
            .basis
            .contains("Reserved to COUNCIL")
    );
    // A reserved decision is not for the joint board.
    assert!(matches!(
        decide(&a, &p, Some(&full_meeting())).unwrap_err(),
        Refusal::ReservedToOnePartner { .. }
    ));
}

#[test]
fn meetings_are_checked_as_entered() {
    let a = agreement();
    let mut m = full_meeting();
    m.declarations.push(Declaration {
        member: "Nobody".into(),
        item: 4,
        interest: "x".into(),
    });
    assert_eq!(check_meeting(&a, &m).unwrap_err().field, "declarations");
    let mut m = full_meeting();
    m.body = "cabinet".into();
    let e = check_meeting(&a, &m).unwrap_err();
    assert_eq!(e.field, "body");
    assert!(e.message.contains("its bodies: board"), "{e}");
    // A scheduled meeting has no attendance to check yet.
    let mut m = meeting(Vec::new());
    m.status = MeetingStatus::Scheduled;
    assert!(check_meeting(&a, &m).is_ok());
}

#[test]
fn a_dispute_climbs_the_ladder_with_its_time_limits() {
    let a = agreement();
    let mut d = Dispute::raise(
        &a,
        "DSP-1",
        "Share of the overspend",
        "nhs",
        date(2024, 5, 1),
    )
    .unwrap();
    assert_eq!(d.current().due_on, Some(date(2024, 5, 15)));
    assert!(!d.overdue(date(2024, 5, 15)));
    assert!(d.overdue(date(2024, 5, 16)));
    d.escalate(&a, date(2024, 5, 20)).unwrap();
    assert_eq!(d.current().name, "Chief executives");
    assert_eq!(d.current().due_on, Some(date(2024, 6, 17)));
    d.escalate(&a, date(2024, 6, 20)).unwrap();
    assert_eq!(d.current().due_on, None);
    assert!(
        d.escalate(&a, date(2024, 7, 1))
            .unwrap_err()
            .message
            .contains("last step")
    );
    d.resolve(date(2024, 8, 1), "Mediated: shared 50:50")
        .unwrap();
    assert!(!d.overdue(date(2025, 1, 1)));
    assert!(Dispute::raise(&a, "DSP-2", "x", "someone", date(2024, 5, 1)).is_err());
}

#[test]
fn complaints_get_due_dates_and_compliments_do_not() {
    let a = agreement();
    let mut c = Complaint::receive(
        &a,
        "C-1",
        FeedbackKind::Complaint,
        date(2024, 9, 2),
        "Delay in a care assessment",
        "council",
    )
    .unwrap();
    assert_eq!(c.acknowledge_by, Some(date(2024, 9, 4)));
    assert_eq!(c.respond_by, Some(date(2024, 9, 22)));
    assert_eq!(c.next_due(), Some(("acknowledge", date(2024, 9, 4))));
    assert!(c.overdue(date(2024, 9, 5)));
    c.acknowledge(date(2024, 9, 3)).unwrap();
    assert_eq!(c.next_due(), Some(("respond", date(2024, 9, 22))));
    c.respond(date(2024, 9, 20), "Assessment done; apology given")
        .unwrap();
    assert_eq!(c.next_due(), None);
    let k = Complaint::receive(
        &a,
        "K-1",
        FeedbackKind::Compliment,
        date(2024, 9, 2),
        "Thanks to the reablement team",
        "nhs",
    )
    .unwrap();
    assert_eq!((k.acknowledge_by, k.respond_by), (None, None));
}

#[test]
fn risks_score_likelihood_times_impact() {
    let mut r = Risk {
        reference: "R1".into(),
        title: "Demand for placements exceeds the budget".into(),
        owner: "Pool manager".into(),
        likelihood: 4,
        impact: 4,
        mitigations: "Monthly review of packages".into(),
        review_on: date(2024, 10, 1),
        closed_on: None,
    };
    assert_eq!((r.score(), r.rating()), (16, RiskRating::High));
    r.impact = 2;
    assert_eq!(r.rating(), RiskRating::Medium);
    r.likelihood = 1;
    assert_eq!(r.rating(), RiskRating::Low);
    assert!(r.review_overdue(date(2024, 10, 2)));
    r.impact = 6;
    assert_eq!(r.check().unwrap_err().field, "impact");
}

#[test]
fn notice_served_ends_at_the_first_year_end_after_six_months() {
    let a = agreement();
    let n = serve_notice(&a, "nhs", date(2024, 11, 15), "Moving to a new model").unwrap();
    assert_eq!(n.ends_on, date(2026, 3, 31));
    assert!(serve_notice(&a, "nobody", date(2024, 11, 15), "").is_err());
}
