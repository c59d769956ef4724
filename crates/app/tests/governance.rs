//! Decisions as a board secretary and a pool manager make them: checked against the
//! Hertfordshire example's board and scheme of delegation, refused with the reason and nothing
//! written, or recorded together with the budget changes they authorise. On SQLite and
//! PostgreSQL.

use concordat_app::governance::{self, GovernanceRefusal};
use concordat_app::{BudgetRefusal, BudgetRequest};
use concordat_core::agreement::{Agreement, DecisionLevelKind, DecisionType};
use concordat_core::governance::{Choice, Vote};
use concordat_core::proceedings::{
    AgendaItem, Attendee, Capacity, Declaration, Meeting, MeetingStatus, Proposal,
};
use concordat_core::{FinancialYear, Money};
use concordat_store::{Actor, Store};
use concordat_testkit::{TestDb, postgres_db, scratch, sqlite_db};

const AT: &str = "2001-07-10T10:00:00Z";

fn pounds(p: i64) -> Money {
    Money::from_pence(p * 100)
}

fn year() -> FinancialYear {
    FinancialYear::starting(2001).unwrap()
}

async fn hertfordshire(db: &TestDb) -> (Box<dyn Store>, Agreement) {
    let store = concordat_store::open(&db.url).await.unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/agreements/hertfordshire.toml"
    );
    let file = concordat_io::read_agreement_file(std::path::Path::new(path)).unwrap();
    let agreement = file.agreement.clone().unwrap();
    store
        .load_agreement(
            &Actor::new("test"),
            AT,
            concordat_app::agreement_load(&file, &agreement).unwrap(),
        )
        .await
        .unwrap();
    (store, agreement)
}

fn budget(line: &str, annual: Money) -> BudgetRequest {
    BudgetRequest {
        year: year(),
        service_line: line.into(),
        partner: None,
        locality: None,
        annual,
        phasing: "even".into(),
        client_income: Money::ZERO,
        reason: "test".into(),
        authority: None,
        delegated: None,
        new_line: true,
    }
}

fn member(name: &str, partner: &str) -> Attendee {
    Attendee {
        name: name.into(),
        partner: Some(partner.into()),
        capacity: Capacity::Member,
        substitute_for: None,
        roles: Vec::new(),
    }
}

/// The board: four councillors and four PCT members, and a co-optee.
fn board_meeting() -> Meeting {
    let mut attendance: Vec<Attendee> = (1..=4)
        .map(|i| member(&format!("Cllr {i}"), "county-council"))
        .chain((1..=4).map(|i| member(&format!("PCT member {i}"), "pcts")))
        .collect();
    attendance.push(Attendee {
        name: "Carers' representative".into(),
        partner: None,
        capacity: Capacity::CoOpted,
        substitute_for: None,
        roles: Vec::new(),
    });
    Meeting {
        reference: "JCPB-2001-07".into(),
        body: "jcpb".into(),
        date: "2001-07-09".parse().unwrap(),
        status: MeetingStatus::Held,
        location: Some("County Hall".into()),
        attendance,
        declarations: vec![Declaration {
            member: "PCT member 4".into(),
            item: 3,
            interest: "Non-executive director of a provider".into(),
        }],
        agenda: vec![AgendaItem {
            number: 3,
            title: "Virement to reablement".into(),
        }],
    }
}

fn all_for() -> Vec<Vote> {
    (1..=4)
        .map(|i| format!("Cllr {i}"))
        .chain((1..=3).map(|i| format!("PCT member {i}")))
        .map(|member| Vote {
            member,
            choice: Choice::For,
        })
        .collect()
}

fn virement(amount: Money, votes: Vec<Vote>) -> Proposal {
    Proposal {
        reference: "JCPB-2001-07-3".into(),
        title: "Virement from residential care to reablement".into(),
        resolution: "The board agreed the virement.".into(),
        level: DecisionLevelKind::Joint,
        decision_type: DecisionType::Virement,
        meeting: Some("JCPB-2001-07".into()),
        agenda_item: Some(3),
        officer: None,
        partner: None,
        decided_on: None,
        fund: Some("mental-health".into()),
        amount: Some(amount),
        votes,
        published: true,
    }
}

fn refusal(e: anyhow::Error) -> (String, String) {
    match e.downcast::<GovernanceRefusal>() {
        Ok(r) => (r.field.to_string(), r.message),
        Err(e) => match e.downcast::<BudgetRefusal>() {
            Ok(r) => (r.field.to_string(), r.message),
            Err(e) => panic!("not a refusal: {e:#}"),
        },
    }
}

async fn a_board_virement_and_its_budget_changes_are_recorded_together(db: &TestDb) {
    let (store, a) = hertfordshire(db).await;
    let actor = Actor::new("web:secretary");
    let fund = a.funds.iter().find(|f| f.id == "mental-health").unwrap();
    for line in ["Residential care", "Reablement"] {
        concordat_app::set_budget(&*store, &actor, AT, &a, fund, budget(line, pounds(500_000)))
            .await
            .unwrap();
    }
    governance::record_meeting(&*store, &actor, AT, &a, &board_meeting(), true)
        .await
        .unwrap();
    let audit_before = store.audit_log(Some("hertfordshire")).await.unwrap().len();

    // Refused: the PCT member with a declared interest votes.
    let mut votes = all_for();
    votes.push(Vote {
        member: "PCT member 4".into(),
        choice: Choice::For,
    });
    let changes = || {
        vec![
            budget("Residential care", pounds(440_000)),
            budget("Reablement", pounds(560_000)),
        ]
    };
    let e = governance::record_decision(
        &*store,
        &actor,
        AT,
        &a,
        &virement(pounds(60_000), votes),
        changes(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refusal(e),
        (
            "votes".into(),
            "PCT member 4 declared an interest in this item and may not vote on it".into()
        )
    );
    // Refused: the co-optee votes.
    let mut votes = all_for();
    votes.push(Vote {
        member: "Carers' representative".into(),
        choice: Choice::For,
    });
    let e = governance::record_decision(
        &*store,
        &actor,
        AT,
        &a,
        &virement(pounds(60_000), votes),
        changes(),
    )
    .await
    .unwrap_err();
    assert!(
        refusal(e)
            .1
            .contains("co-opted members take part but never vote")
    );
    // Refused: the PCTs' representatives do not agree.
    let mut votes = all_for();
    for v in votes.iter_mut().filter(|v| v.member.starts_with("PCT")) {
        v.choice = Choice::Against;
    }
    let e = governance::record_decision(
        &*store,
        &actor,
        AT,
        &a,
        &virement(pounds(60_000), votes),
        changes(),
    )
    .await
    .unwrap_err();
    assert!(
        refusal(e)
            .1
            .contains("representatives of pcts did not agree")
    );
    // Refused: the budget changes move more than the decision authorises.
    let e = governance::record_decision(
        &*store,
        &actor,
        AT,
        &a,
        &virement(pounds(50_000), all_for()),
        changes(),
    )
    .await
    .unwrap_err();
    let (field, message) = refusal(e);
    assert_eq!(field, "amount", "{message}");
    // Nothing was written by any of them.
    assert_eq!(
        store.audit_log(Some("hertfordshire")).await.unwrap().len(),
        audit_before
    );
    assert!(store.decisions("hertfordshire").await.unwrap().is_empty());

    let recorded = governance::record_decision(
        &*store,
        &actor,
        AT,
        &a,
        &virement(pounds(60_000), all_for()),
        changes(),
    )
    .await
    .unwrap();
    assert_eq!(recorded.revisions, [2, 2]);
    assert!(
        recorded
            .decision
            .basis
            .contains("8 voting members present, quorum 6 with each partner"),
        "{}",
        recorded.decision.basis
    );
    let log = store.audit_log(Some("hertfordshire")).await.unwrap();
    assert_eq!(
        log.len(),
        audit_before + 1,
        "one audit record for the decision and both changes"
    );
    assert_eq!(log.last().unwrap().action, "decision.record");
    let lines = store
        .budgets("hertfordshire", Some("mental-health"), 2001)
        .await
        .unwrap();
    let annual = |l: &str| {
        lines
            .iter()
            .find(|b| b.service_line == l)
            .unwrap()
            .period_amounts_pence
            .iter()
            .sum::<i64>()
    };
    assert_eq!(
        (annual("Residential care"), annual("Reablement")),
        (44_000_000, 56_000_000)
    );
    let history = store
        .budget_history(
            "hertfordshire",
            "mental-health",
            2001,
            "Reablement",
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(history[1].authority.as_deref(), Some("JCPB-2001-07-3"));

    // The log finds it, and its CSV export carries the votes.
    let found = governance::decision_log(&*store, "hertfordshire", "reablement virement", false)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        governance::decision_log(&*store, "hertfordshire", "nothing-like-this", false)
            .await
            .unwrap()
            .is_empty()
    );
    let csv = governance::decisions_csv(&found);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("JCPB-2001-07-3,2001-07-09,joint,virement,"),
        "{csv}"
    );
    assert!(csv.contains(",60000.00,7,0,0,"), "{csv}");
    // Once it has decisions, the meeting's attendance cannot be rewritten.
    let e = governance::record_meeting(&*store, &actor, AT, &a, &board_meeting(), false)
        .await
        .unwrap_err();
    assert_eq!(refusal(e).0, "attendance");
}

async fn the_pool_manager_revises_within_the_limit_and_not_above(db: &TestDb) {
    let (store, a) = hertfordshire(db).await;
    let pm = Actor::new("web:pool-manager");
    let fund = a.funds.iter().find(|f| f.id == "mental-health").unwrap();
    concordat_app::set_budget(
        &*store,
        &pm,
        AT,
        &a,
        fund,
        budget("Home care", pounds(1_000_000)),
    )
    .await
    .unwrap();
    // A revision with no authority is refused.
    let e = concordat_app::set_budget(
        &*store,
        &pm,
        AT,
        &a,
        fund,
        budget("Home care", pounds(1_010_000)),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refusal(e).0, "authority");
    // Under delegated authority: £50,000 is within the limit...
    let mut within = budget("Home care", pounds(1_050_000));
    within.delegated = Some("pool_manager".into());
    let set = concordat_app::set_budget(&*store, &pm, AT, &a, fund, within)
        .await
        .unwrap();
    assert_eq!(set.revision, 2);
    let log = store.decisions("hertfordshire").await.unwrap();
    assert_eq!(log.len(), 1, "the officer's decision is in the log");
    assert_eq!(
        (log[0].decision.level.as_str(), log[0].decision.amount_pence),
        ("delegated", Some(5_000_000))
    );
    // ...£50,000.01 more is not, and nothing is written.
    let before = store.audit_log(Some("hertfordshire")).await.unwrap().len();
    let mut above = budget("Home care", Money::parse("1100000.01").unwrap());
    above.delegated = Some("pool_manager".into());
    let (field, message) = refusal(
        concordat_app::set_budget(&*store, &pm, "2001-07-10T10:00:01Z", &a, fund, above)
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(field, "authority");
    assert!(message.contains("may decide up to £50,000.00"), "{message}");
    // A role the scheme gives nothing to.
    let mut other = budget("Home care", pounds(1_060_000));
    other.delegated = Some("finance_officer".into());
    let (_, message) = refusal(
        concordat_app::set_budget(&*store, &pm, "2001-07-10T10:00:02Z", &a, fund, other)
            .await
            .err()
            .unwrap(),
    );
    assert!(message.contains("no delegated decisions"), "{message}");
    assert_eq!(
        store.audit_log(Some("hertfordshire")).await.unwrap().len(),
        before
    );
    // The lead director cannot make a budget revision at all, only schemes and contracts.
    let mut contract = virement(pounds(200_000), Vec::new());
    contract.level = DecisionLevelKind::Delegated;
    contract.meeting = None;
    contract.officer = Some("Lead director".into());
    contract.decided_on = Some("2001-07-11".parse().unwrap());
    contract.reference = "LD-1".into();
    let (field, _) = refusal(
        governance::record_decision(&*store, &pm, AT, &a, &contract, Vec::new())
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "officer");
    contract.decision_type = DecisionType::ContractAward;
    governance::record_decision(&*store, &pm, AT, &a, &contract, Vec::new())
        .await
        .unwrap();
    contract.reference = "LD-2".into();
    contract.amount = Some(pounds(250_001));
    let (field, message) = refusal(
        governance::record_decision(&*store, &pm, AT, &a, &contract, Vec::new())
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "amount");
    assert!(message.contains("goes to the board"), "{message}");
}

async fn a_meeting_without_quorum_decides_nothing(db: &TestDb) {
    let (store, a) = hertfordshire(db).await;
    let actor = Actor::new("web:secretary");
    let mut m = board_meeting();
    m.reference = "JCPB-2001-08".into();
    // Six councillors: enough members, but no PCT member, so not quorate.
    m.attendance
        .retain(|x| x.partner.as_deref() != Some("pcts"));
    m.attendance.push(member("Cllr 5", "county-council"));
    m.attendance.push(member("Cllr 6", "county-council"));
    m.declarations.clear();
    governance::record_meeting(&*store, &actor, AT, &a, &m, true)
        .await
        .unwrap();
    let mut p = virement(pounds(1_000), Vec::new());
    p.meeting = Some("JCPB-2001-08".into());
    p.decision_type = DecisionType::Policy;
    p.amount = None;
    let (field, message) = refusal(
        governance::record_decision(&*store, &actor, AT, &a, &p, Vec::new())
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "meeting");
    assert!(
        message.contains("no voting member of pcts is present"),
        "{message}"
    );
    assert!(store.decisions("hertfordshire").await.unwrap().is_empty());
}

async fn the_calendar_and_exit_statement_come_from_the_records(db: &TestDb) {
    let (store, a) = hertfordshire(db).await;
    let actor = Actor::new("web:secretary");
    governance::record_meeting(&*store, &actor, AT, &a, &board_meeting(), true)
        .await
        .unwrap();
    let risk = concordat_core::proceedings::Risk {
        reference: "R1".into(),
        title: "Placements overspend".into(),
        owner: "Pool manager".into(),
        likelihood: 4,
        impact: 4,
        mitigations: "Monthly panel".into(),
        review_on: "2001-06-30".parse().unwrap(),
        closed_on: None,
    };
    governance::put_risk(&*store, &actor, AT, &a, &risk, true)
        .await
        .unwrap();
    let cal = governance::calendar(&*store, &a, year(), year())
        .await
        .unwrap();
    let today: jiff::civil::Date = "2001-07-10".parse().unwrap();
    let review = cal
        .iter()
        .find(|o| o.title.contains("Review risk R1"))
        .unwrap();
    assert!(review.overdue(today));
    assert!(cal.iter().any(|o| {
        o.title
            .contains("Joint Commissioning Partnership Board (JCPB-2001-07)")
    }));
    // The budget timetable for 2002/03 falls in 2001/02.
    assert!(
        cal.iter()
            .any(|o| o.due == "2001-10-01".parse().unwrap() && o.title.contains("2002/03")),
        "{cal:#?}"
    );
    let fund = a.funds.iter().find(|f| f.id == "mental-health").unwrap();
    let exit = governance::exit_statement(&*store, &a, fund, year())
        .await
        .unwrap();
    assert!(
        exit.basis.contains("excluding non-recurrent"),
        "{}",
        exit.basis
    );
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = super::scratch("app", stringify!($case));
                    super::$case(&super::sqlite_db(&dir)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(db) = super::postgres_db("app") {
                        super::$case(&db).await;
                    }
                }
            )*
        }
    };
}

both_backends!(
    a_board_virement_and_its_budget_changes_are_recorded_together,
    the_pool_manager_revises_within_the_limit_and_not_above,
    a_meeting_without_quorum_decides_nothing,
    the_calendar_and_exit_statement_come_from_the_records,
);
