//! Whether a decision stands: checked against the body's terms of reference (quorum, who may
//! vote, declared interests, how it votes) and the level the decision is taken at, and an
//! officer's decision against the scheme of delegation. A decision that breaks a rule is
//! refused with the reason, and nothing is to be recorded as decided.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::Money;
use crate::agreement::{Body, DecisionLevel, DecisionLevelKind, DecisionType, VotingMode};

/// Someone at the meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    pub member: String,
    /// The partner whose seat they fill (none for a co-opted member).
    pub partner: Option<String>,
    /// A voting member (or a named substitute for one); `false` for a co-opted member.
    pub voting: bool,
    /// Offices they hold, for quorum rules that name roles.
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    For,
    Against,
    Abstain,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub member: String,
    pub choice: Choice,
}

/// A decision put to a body.
#[derive(Debug, Clone, Copy)]
pub struct BodyDecision<'a> {
    pub body: &'a Body,
    pub level: DecisionLevelKind,
    pub present: &'a [Present],
    /// Members who declared an interest in this item.
    pub declared_interests: &'a [String],
    /// The votes, where taken or recorded. Under consensus, members present and not recorded
    /// as against are taken as agreeing.
    pub votes: &'a [Vote],
}

/// Votes counted, overall and per partner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub for_votes: u32,
    pub against: u32,
    pub abstain: u32,
    pub by_partner: BTreeMap<String, (u32, u32, u32)>,
}

/// Why a decision does not stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Refusal {
    #[error("the meeting is not quorate: {0}")]
    NoQuorum(String),
    #[error("{member} voted but is not recorded as present")]
    VoterNotPresent { member: String },
    #[error("{member} is not a voting member (co-opted members take part but never vote)")]
    NonVotingMemberVoted { member: String },
    #[error("{member} declared an interest in this item and may not vote on it")]
    InterestedMemberVoted { member: String },
    #[error("{member} voted more than once")]
    VotedTwice { member: String },
    #[error(
        "the representatives of {partner} did not agree ({for_votes} for, {against} against), so there is no joint decision"
    )]
    PartnerDidNotAgree {
        partner: String,
        for_votes: u32,
        against: u32,
    },
    #[error("{against} voting member(s) present disagreed, and the body decides by consensus")]
    NoConsensus { against: u32 },
    #[error("not carried: {for_votes} for, {against} against")]
    NotCarried { for_votes: u32, against: u32 },
    #[error(
        "a decision reserved to one partner cannot be taken by {body}, where more than one partner sits; it is for that partner alone"
    )]
    ReservedToOnePartner { body: String },
    #[error("{officer} may decide up to {limit}; {amount} is above that, so it goes to the board")]
    AboveLimit {
        officer: String,
        limit: Money,
        amount: Money,
    },
    #[error("the scheme of delegation gives {officer} no delegated decisions")]
    NotDelegated { officer: String },
    #[error("the scheme of delegation does not let {officer} make a {decision_type}")]
    TypeNotDelegated {
        officer: String,
        decision_type: String,
    },
    #[error(
        "{partner} has {seats} voting seat(s) on {body}, but {present} of its voting members are recorded as present"
    )]
    MoreThanSeats {
        body: String,
        partner: String,
        seats: u32,
        present: u32,
    },
    #[error("{member} is not on the roster of {body}")]
    NotOnRoster { member: String, body: String },
    #[error("{member} is recorded as a substitute for {for_member}, who has not named them")]
    NotANamedSubstitute { member: String, for_member: String },
    #[error(
        "{member} and the member they stand in for, {for_member}, are both recorded as present"
    )]
    SubstituteAndMemberBothPresent { member: String, for_member: String },
    #[error("{partner} is not a partner with seats on {body}")]
    NoSeatForPartner { partner: String, body: String },
    #[error(
        "{body} has no budget powers in the agreement, so it cannot take a decision that moves money"
    )]
    NoBudgetPowers { body: String },
    #[error("a {decision_type} moves money, so it must say how much")]
    AmountMissing { decision_type: String },
    #[error("an amount authorised cannot be negative")]
    NegativeAmount,
    #[error("there is no body '{body}' in the agreement (its bodies: {known})")]
    UnknownBody { body: String, known: String },
    #[error("there is no fund '{fund}' in the agreement")]
    UnknownFund { fund: String },
    #[error("a delegated decision must name the officer (or role) taking it")]
    NeedsOfficer,
    #[error("a decision taken outside a meeting must say when it was taken")]
    NeedsDate,
    #[error("a reserved decision taken outside a meeting must name the partner taking it")]
    NeedsPartner,
    #[error("'{partner}' is not a partner to the agreement")]
    UnknownPartner { partner: String },
    #[error("a joint decision is taken at a meeting of a joint body: choose the meeting")]
    NeedsMeeting,
    #[error(
        "meeting {meeting} is only scheduled: record its attendance (mark it held) before its decisions"
    )]
    MeetingNotHeld { meeting: String },
}

impl Refusal {
    /// The form field a refusal is about, so a face can point at it.
    pub fn field(&self) -> &'static str {
        match self {
            Refusal::NoQuorum(_)
            | Refusal::MoreThanSeats { .. }
            | Refusal::NotOnRoster { .. }
            | Refusal::NotANamedSubstitute { .. }
            | Refusal::SubstituteAndMemberBothPresent { .. }
            | Refusal::NoSeatForPartner { .. }
            | Refusal::MeetingNotHeld { .. }
            | Refusal::NeedsMeeting
            | Refusal::UnknownBody { .. }
            | Refusal::NoBudgetPowers { .. }
            | Refusal::ReservedToOnePartner { .. } => "meeting",
            Refusal::VoterNotPresent { .. }
            | Refusal::NonVotingMemberVoted { .. }
            | Refusal::InterestedMemberVoted { .. }
            | Refusal::VotedTwice { .. }
            | Refusal::PartnerDidNotAgree { .. }
            | Refusal::NoConsensus { .. }
            | Refusal::NotCarried { .. } => "votes",
            Refusal::AboveLimit { .. }
            | Refusal::AmountMissing { .. }
            | Refusal::NegativeAmount => "amount",
            Refusal::NotDelegated { .. }
            | Refusal::TypeNotDelegated { .. }
            | Refusal::NeedsOfficer => "officer",
            Refusal::UnknownFund { .. } => "fund",
            Refusal::NeedsDate => "decided_on",
            Refusal::NeedsPartner | Refusal::UnknownPartner { .. } => "partner",
        }
    }
}

/// Checks a decision put to a body; `Ok` with the tally if it stands.
pub fn check_body_decision(d: &BodyDecision<'_>) -> Result<Tally, Refusal> {
    let body = d.body;
    let seat_partners: BTreeSet<&str> = body.seats.iter().map(|s| s.partner.as_str()).collect();
    if d.level == DecisionLevelKind::Reserved && seat_partners.len() > 1 {
        return Err(Refusal::ReservedToOnePartner {
            body: body.name.clone(),
        });
    }
    check_quorum(d, &seat_partners)?;

    let present: BTreeMap<&str, &Present> =
        d.present.iter().map(|p| (p.member.as_str(), p)).collect();
    let interested: BTreeSet<&str> = d.declared_interests.iter().map(String::as_str).collect();
    let mut seen = BTreeSet::new();
    let mut tally = Tally::default();
    for v in d.votes {
        let Some(p) = present.get(v.member.as_str()) else {
            return Err(Refusal::VoterNotPresent {
                member: v.member.clone(),
            });
        };
        if !p.voting {
            return Err(Refusal::NonVotingMemberVoted {
                member: v.member.clone(),
            });
        }
        if interested.contains(v.member.as_str()) {
            return Err(Refusal::InterestedMemberVoted {
                member: v.member.clone(),
            });
        }
        if !seen.insert(v.member.as_str()) {
            return Err(Refusal::VotedTwice {
                member: v.member.clone(),
            });
        }
        let slot = match v.choice {
            Choice::For => &mut tally.for_votes,
            Choice::Against => &mut tally.against,
            Choice::Abstain => &mut tally.abstain,
        };
        *slot += 1;
        if let Some(partner) = &p.partner {
            let entry = tally.by_partner.entry(partner.clone()).or_default();
            match v.choice {
                Choice::For => entry.0 += 1,
                Choice::Against => entry.1 += 1,
                Choice::Abstain => entry.2 += 1,
            }
        }
    }

    let mode = body.voting.unwrap_or(VotingMode::Consensus);
    // A joint decision needs each partner's representatives to agree, whatever the mode.
    let per_partner = d.level == DecisionLevelKind::Joint || mode == VotingMode::BlockPerPartner;
    if per_partner {
        for partner in &seat_partners {
            let (for_votes, against, _) =
                tally.by_partner.get(*partner).copied().unwrap_or_default();
            let agrees = match mode {
                VotingMode::Consensus => against == 0,
                _ => for_votes > against,
            };
            if !agrees {
                return Err(Refusal::PartnerDidNotAgree {
                    partner: (*partner).to_string(),
                    for_votes,
                    against,
                });
            }
        }
    }
    match mode {
        VotingMode::Consensus if tally.against > 0 => Err(Refusal::NoConsensus {
            against: tally.against,
        }),
        VotingMode::Majority if tally.for_votes <= tally.against => Err(Refusal::NotCarried {
            for_votes: tally.for_votes,
            against: tally.against,
        }),
        _ => Ok(tally),
    }
}

/// Whether those present make the body quorate, before anything is put to it.
pub fn check_quorate(body: &Body, present: &[Present]) -> Result<(), Refusal> {
    let seat_partners: BTreeSet<&str> = body.seats.iter().map(|s| s.partner.as_str()).collect();
    check_quorum(
        &BodyDecision {
            body,
            level: DecisionLevelKind::Joint,
            present,
            declared_interests: &[],
            votes: &[],
        },
        &seat_partners,
    )
}

fn check_quorum(d: &BodyDecision<'_>, seat_partners: &BTreeSet<&str>) -> Result<(), Refusal> {
    let Some(q) = &d.body.quorum else {
        return Ok(());
    };
    // Co-opted members never count towards the quorum.
    let voting: Vec<&Present> = d.present.iter().filter(|p| p.voting).collect();
    let count = u32::try_from(voting.len()).unwrap_or(u32::MAX);
    if count < q.members {
        return Err(Refusal::NoQuorum(format!(
            "{count} voting member{} present; the quorum is {}",
            if count == 1 { "" } else { "s" },
            q.members
        )));
    }
    if q.each_partner {
        for partner in seat_partners {
            if !voting
                .iter()
                .any(|p| p.partner.as_deref() == Some(*partner))
            {
                return Err(Refusal::NoQuorum(format!(
                    "no voting member of {partner} is present, and the quorum needs one of each partner"
                )));
            }
        }
    }
    for role in &q.roles {
        if !d.present.iter().any(|p| p.roles.iter().any(|r| r == role)) {
            return Err(Refusal::NoQuorum(format!(
                "the quorum needs the {role}, who is not present"
            )));
        }
    }
    Ok(())
}

/// Checks an officer's decision of `amount` (of the kind `decision_type`) against the scheme
/// of delegation: the delegated levels naming that officer, by title or by Concordat role,
/// that cover the kind, and their limits.
pub fn check_officer_decision(
    levels: &[DecisionLevel],
    officer: &str,
    decision_type: DecisionType,
    amount: Money,
) -> Result<(), Refusal> {
    let delegated: Vec<&DecisionLevel> = levels
        .iter()
        .filter(|l| l.level == DecisionLevelKind::Delegated)
        .filter(|l| l.officer.as_deref() == Some(officer) || l.role.as_deref() == Some(officer))
        .collect();
    if delegated.is_empty() {
        return Err(Refusal::NotDelegated {
            officer: officer.to_string(),
        });
    }
    let covering: Vec<&DecisionLevel> = delegated
        .into_iter()
        .filter(|l| l.decision_types.is_empty() || l.decision_types.contains(&decision_type))
        .collect();
    if covering.is_empty() {
        return Err(Refusal::TypeNotDelegated {
            officer: officer.to_string(),
            decision_type: decision_type.label().to_lowercase(),
        });
    }
    // Where several levels name the officer, the highest limit applies; one with no limit
    // is unlimited.
    if covering.iter().any(|l| l.limit.is_none()) {
        return Ok(());
    }
    let limit = covering
        .iter()
        .filter_map(|l| l.limit)
        .max()
        .expect("every level has a limit here");
    if amount > limit {
        return Err(Refusal::AboveLimit {
            officer: officer.to_string(),
            limit,
            amount,
        });
    }
    Ok(())
}

/// The delegated levels a user holding `role` may act under, for the faces to offer.
pub fn levels_for_role<'a>(levels: &'a [DecisionLevel], role: &str) -> Vec<&'a DecisionLevel> {
    levels
        .iter()
        .filter(|l| l.level == DecisionLevelKind::Delegated && l.role.as_deref() == Some(role))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{Quorum, Seats};

    /// Hertfordshire's board: 8 councillors and 8 PCT members, co-optees who never vote.
    fn board(voting: VotingMode) -> Body {
        Body {
            id: "jcpb".into(),
            name: "Joint Commissioning Partnership Board".into(),
            purpose: None,
            seats: vec![
                Seats {
                    partner: "county-council".into(),
                    voting: 8,
                    drawn_from: None,
                },
                Seats {
                    partner: "pcts".into(),
                    voting: 8,
                    drawn_from: None,
                },
            ],
            co_opted_non_voting: Some(8),
            equal_numbers: true,
            chair: None,
            meets: None,
            reports_to: Vec::new(),
            terms_of_reference: None,
            budget_decisions: true,
            members: Vec::new(),
            established: None,
            quorum: Some(Quorum {
                members: 6,
                each_partner: true,
                roles: Vec::new(),
            }),
            voting: Some(voting),
            chair_rotation: None,
            roster: Vec::new(),
        }
    }

    fn member(name: &str, partner: &str) -> Present {
        Present {
            member: name.into(),
            partner: Some(partner.into()),
            voting: true,
            roles: Vec::new(),
        }
    }

    fn co_optee(name: &str) -> Present {
        Present {
            member: name.into(),
            partner: None,
            voting: false,
            roles: Vec::new(),
        }
    }

    /// Three of each partner, and two co-optees.
    fn meeting() -> Vec<Present> {
        let mut p: Vec<Present> = (1..=3)
            .map(|i| member(&format!("cllr{i}"), "county-council"))
            .chain((1..=3).map(|i| member(&format!("pct{i}"), "pcts")))
            .collect();
        p.push(co_optee("co1"));
        p.push(co_optee("co2"));
        p
    }

    fn votes(pairs: &[(&str, Choice)]) -> Vec<Vote> {
        pairs
            .iter()
            .map(|(m, c)| Vote {
                member: (*m).into(),
                choice: *c,
            })
            .collect()
    }

    fn decide(
        body: &Body,
        present: &[Present],
        interests: &[String],
        v: &[Vote],
    ) -> Result<Tally, Refusal> {
        check_body_decision(&BodyDecision {
            body,
            level: DecisionLevelKind::Joint,
            present,
            declared_interests: interests,
            votes: v,
        })
    }

    use Choice::{Abstain, Against, For};

    #[test]
    fn a_quorate_joint_decision_both_partners_agree_stands() {
        let b = board(VotingMode::BlockPerPartner);
        let v = votes(&[
            ("cllr1", For),
            ("cllr2", For),
            ("cllr3", Against),
            ("pct1", For),
            ("pct2", Abstain),
            ("pct3", For),
        ]);
        let t = decide(&b, &meeting(), &[], &v).unwrap();
        assert_eq!((t.for_votes, t.against, t.abstain), (4, 1, 1));
        assert_eq!(t.by_partner["pcts"], (2, 0, 1));
    }

    #[test]
    fn co_optees_never_count_towards_the_quorum() {
        let b = board(VotingMode::Consensus);
        // Five voting members and two co-optees: seven people, but the quorum is six voting.
        let present: Vec<Present> = meeting()
            .into_iter()
            .filter(|p| p.member != "pct3")
            .collect();
        let refused = decide(&b, &present, &[], &[]).unwrap_err();
        assert_eq!(
            refused,
            Refusal::NoQuorum("5 voting members present; the quorum is 6".into())
        );
    }

    #[test]
    fn the_quorum_can_need_each_partner_and_named_roles() {
        let mut b = board(VotingMode::Consensus);
        let present: Vec<Present> = (1..=6)
            .map(|i| member(&format!("cllr{i}"), "county-council"))
            .collect();
        let refused = decide(&b, &present, &[], &[]).unwrap_err();
        assert!(
            refused.to_string().contains("no voting member of pcts"),
            "{refused}"
        );
        b.quorum.as_mut().unwrap().roles = vec!["Director of Public Health".into()];
        let refused = decide(&b, &meeting(), &[], &[]).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("needs the Director of Public Health"),
            "{refused}"
        );
        let mut with_dph = meeting();
        with_dph[3].roles.push("Director of Public Health".into());
        assert!(decide(&b, &with_dph, &[], &[]).is_ok());
    }

    #[test]
    fn a_co_optees_vote_is_refused() {
        let b = board(VotingMode::Majority);
        let refused = decide(&b, &meeting(), &[], &votes(&[("co1", For)])).unwrap_err();
        assert_eq!(
            refused,
            Refusal::NonVotingMemberVoted {
                member: "co1".into()
            }
        );
    }

    #[test]
    fn a_member_with_a_declared_interest_may_not_vote() {
        let b = board(VotingMode::Majority);
        let refused =
            decide(&b, &meeting(), &["pct2".into()], &votes(&[("pct2", For)])).unwrap_err();
        assert_eq!(
            refused,
            Refusal::InterestedMemberVoted {
                member: "pct2".into()
            }
        );
    }

    #[test]
    fn one_partner_not_agreeing_means_no_joint_decision() {
        // Majority overall (4 for, 2 against), but the PCTs' representatives are against.
        let b = board(VotingMode::Majority);
        let v = votes(&[
            ("cllr1", For),
            ("cllr2", For),
            ("cllr3", For),
            ("pct1", For),
            ("pct2", Against),
            ("pct3", Against),
        ]);
        let refused = decide(&b, &meeting(), &[], &v).unwrap_err();
        assert_eq!(
            refused,
            Refusal::PartnerDidNotAgree {
                partner: "pcts".into(),
                for_votes: 1,
                against: 2
            }
        );
        // Under consensus one voice against is enough to stop it.
        let b = board(VotingMode::Consensus);
        let refused = decide(&b, &meeting(), &[], &votes(&[("cllr2", Against)])).unwrap_err();
        assert!(
            matches!(refused, Refusal::PartnerDidNotAgree { .. }),
            "{refused}"
        );
    }

    #[test]
    fn votes_from_absent_members_or_twice_are_refused() {
        let b = board(VotingMode::Majority);
        assert_eq!(
            decide(&b, &meeting(), &[], &votes(&[("nobody", For)])).unwrap_err(),
            Refusal::VoterNotPresent {
                member: "nobody".into()
            }
        );
        assert_eq!(
            decide(
                &b,
                &meeting(),
                &[],
                &votes(&[("cllr1", For), ("cllr1", For)])
            )
            .unwrap_err(),
            Refusal::VotedTwice {
                member: "cllr1".into()
            }
        );
    }

    #[test]
    fn a_reserved_decision_is_not_for_a_joint_board() {
        let b = board(VotingMode::Majority);
        let refused = check_body_decision(&BodyDecision {
            body: &b,
            level: DecisionLevelKind::Reserved,
            present: &meeting(),
            declared_interests: &[],
            votes: &[],
        })
        .unwrap_err();
        assert!(matches!(refused, Refusal::ReservedToOnePartner { .. }));
    }

    #[test]
    fn an_officer_above_their_limit_is_refused() {
        let pounds = |p: i64| Money::from_pence(p * 100);
        let levels = vec![
            DecisionLevel {
                level: DecisionLevelKind::Delegated,
                description: "Care packages".into(),
                officer: Some("Pool manager".into()),
                role: Some("pool_manager".into()),
                limit: Some(pounds(50_000)),
                decision_types: vec![DecisionType::BudgetRevision, DecisionType::Virement],
                illustrative: false,
            },
            DecisionLevel {
                level: DecisionLevelKind::Delegated,
                description: "Contracts".into(),
                officer: Some("Lead director".into()),
                role: None,
                limit: Some(pounds(250_000)),
                decision_types: Vec::new(),
                illustrative: false,
            },
        ];
        let revision = DecisionType::BudgetRevision;
        assert_eq!(
            check_officer_decision(&levels, "Pool manager", revision, pounds(50_000)),
            Ok(())
        );
        // The role names the same level as the title.
        assert_eq!(
            check_officer_decision(&levels, "pool_manager", revision, pounds(50_000)),
            Ok(())
        );
        assert_eq!(
            check_officer_decision(
                &levels,
                "Pool manager",
                DecisionType::ContractAward,
                pounds(1)
            ),
            Err(Refusal::TypeNotDelegated {
                officer: "Pool manager".into(),
                decision_type: "contract award".into()
            })
        );
        assert_eq!(
            check_officer_decision(&levels, "Pool manager", revision, pounds(50_001)),
            Err(Refusal::AboveLimit {
                officer: "Pool manager".into(),
                limit: pounds(50_000),
                amount: pounds(50_001)
            })
        );
        assert_eq!(
            check_officer_decision(
                &levels,
                "Lead director",
                DecisionType::ContractAward,
                pounds(200_000)
            ),
            Ok(())
        );
        assert!(matches!(
            check_officer_decision(&levels, "Clerk", revision, pounds(1)),
            Err(Refusal::NotDelegated { .. })
        ));
    }
}
