//! The rules an agreement must meet, from the law (SI 2000/617) and from practice. Each finding
//! names the key it is about (`funds[0].host`), so the file reader can point at the line.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::agreement::*;
use crate::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The rules, each with a stable code (see `docs/agreement-format.md`, "Validation rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Rule {
    /// The file cannot be read as an agreement (syntax, a wrong type, a missing key).
    Format,
    /// A key the format does not know.
    UnknownKey,
    /// Needs at least one NHS body and one local authority among the parties.
    Parties,
    /// A pooled fund needs a host that is a party.
    PoolHost,
    /// A pooled fund needs a named pool manager.
    PoolManager,
    /// A pooled fund must say how overspends and underspends are shared.
    RiskShareMissing,
    /// Fixed shares must add to 100%, and name parties.
    FixedShares,
    /// A reference to a partner, fund, care group or body that the file does not define.
    UnknownReference,
    /// An amount that makes no sense here (negative contribution, zero transfer).
    Amount,
    /// Dates out of order, or a term that cannot be worked out.
    Dates,
    /// An NHS function that may not be delegated (SI 2000/617 reg 5; SI 2000/618).
    ExcludedFunction,
    /// A written term required by SI 2000/617 is missing.
    WrittenTerm,
    /// An agreement in force must be signed by every party.
    Signatures,
    /// The same id used twice.
    DuplicateId,
    /// A funding transfer that is not between two different bodies, or has a wrong basis.
    Transfer,
    /// A pooled fund with no contributions agreed for any year.
    Contributions,
    /// The id is not a usable key.
    Identifier,
    /// A body's quorum or voting cannot work with its seats.
    Governance,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::Format => "A000",
            Rule::UnknownKey => "A001",
            Rule::Parties => "A002",
            Rule::PoolHost => "A003",
            Rule::PoolManager => "A004",
            Rule::RiskShareMissing => "A005",
            Rule::FixedShares => "A006",
            Rule::UnknownReference => "A007",
            Rule::Amount => "A008",
            Rule::Dates => "A009",
            Rule::ExcludedFunction => "A010",
            Rule::WrittenTerm => "A011",
            Rule::Signatures => "A012",
            Rule::DuplicateId => "A013",
            Rule::Transfer => "A014",
            Rule::Contributions => "A015",
            Rule::Identifier => "A016",
            Rule::Governance => "A017",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// The key the finding is about, e.g. `funds[1].risk_share`.
    pub path: String,
    /// What is wrong and what to change.
    pub message: String,
}

impl Finding {
    pub fn code(&self) -> &'static str {
        self.rule.code()
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn error(&mut self, rule: Rule, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding {
            rule,
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        });
    }

    fn warning(&mut self, rule: Rule, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding {
            rule,
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        });
    }

    /// Missing written terms are warnings on a draft and errors once the agreement is in force
    /// or signed.
    fn term(&mut self, status: Status, path: impl Into<String>, message: impl Into<String>) {
        if status >= Status::Signed {
            self.error(Rule::WrittenTerm, path, message);
        } else {
            self.warning(Rule::WrittenTerm, path, message);
        }
    }
}

/// NHS functions that cannot be delegated under the partnership regulations: words that
/// identify them in a function's description.
const EXCLUDED_FUNCTIONS: &[(&str, &str)] = &[
    ("surgery", "surgery"),
    ("surgical", "surgery"),
    ("radiotherapy", "radiotherapy"),
    ("termination of pregnanc", "termination of pregnancy"),
    ("abortion", "termination of pregnancy"),
    ("endoscop", "endoscopy"),
    ("class 4 laser", "class 4 laser treatment"),
    ("class iv laser", "class 4 laser treatment"),
    ("invasive", "invasive treatment"),
    ("emergency ambulance", "emergency ambulance services"),
];

/// Which excluded NHS function a description names, if any.
pub fn excluded_function(description: &str) -> Option<&'static str> {
    let d = description.to_lowercase();
    EXCLUDED_FUNCTIONS
        .iter()
        .find(|(needle, _)| {
            d.contains(needle)
                && !d.contains(&format!("non-{needle}"))
                && !d.contains(&format!("non {needle}"))
        })
        .map(|(_, name)| *name)
}

fn is_identifier(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// Checks an agreement against every rule and returns the findings, errors and warnings,
/// in the order of the file's sections.
pub fn validate(a: &Agreement) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    let status = a.status;

    if !is_identifier(&a.id) {
        f.error(
            Rule::Identifier,
            "id",
            format!(
                "id '{}' must be lower-case letters, digits and hyphens, e.g. 'halton-st-helens'",
                a.id
            ),
        );
    }

    // Ids are unique within their kind, and partner ids are what everything else refers to.
    let partner_ids = unique_ids(&mut f, "partners", a.partners.iter().map(|p| p.id.as_str()));
    let fund_ids = unique_ids(&mut f, "funds", a.funds.iter().map(|x| x.id.as_str()));
    let care_group_ids = unique_ids(
        &mut f,
        "care_groups",
        a.care_groups.iter().map(|x| x.id.as_str()),
    );
    let body_ids = unique_ids(&mut f, "bodies", a.bodies.iter().map(|x| x.id.as_str()));
    unique_ids(
        &mut f,
        "transfers",
        a.transfers.iter().map(|x| x.id.as_str()),
    );
    unique_ids(&mut f, "posts", a.posts.iter().map(|x| x.id.as_str()));
    unique_ids(
        &mut f,
        "commissioning_areas",
        a.commissioning_areas.iter().map(|x| x.id.as_str()),
    );
    unique_ids(
        &mut f,
        "localities",
        a.localities.iter().map(|x| x.id.as_str()),
    );
    let party_ids: BTreeSet<&str> = a.parties().map(|p| p.id.as_str()).collect();

    for (i, p) in a.partners.iter().enumerate() {
        if !is_identifier(&p.id) {
            f.error(
                Rule::Identifier,
                format!("partners[{i}].id"),
                format!(
                    "partner id '{}' must be lower-case letters, digits and hyphens",
                    p.id
                ),
            );
        }
    }

    // s75 arrangements are between NHS bodies and local authorities: both must be parties.
    let has_nhs = a.parties().any(|p| p.kind.is_nhs_body());
    let has_la = a.parties().any(|p| p.kind.is_local_authority());
    if !has_nhs || !has_la {
        let missing = match (has_nhs, has_la) {
            (false, false) => "an NHS body and a local authority",
            (false, true) => "an NHS body",
            _ => "a local authority",
        };
        f.error(
            Rule::Parties,
            "partners",
            format!("the parties include no {missing}: a partnership arrangement needs at least one of each among the partners with party = true"),
        );
    }

    let partner_ref = |f: &mut Findings,
                       path: String,
                       id: &str,
                       what: &str,
                       must_be_party: bool| {
        if !partner_ids.contains(id) {
            f.error(Rule::UnknownReference, path, format!("{what} '{id}' is not a partner in this file: use the id of one of [[partners]] ({})", list(&partner_ids)));
        } else if must_be_party && !party_ids.contains(id) {
            f.error(
                Rule::UnknownReference,
                path,
                format!(
                    "{what} '{id}' is not a party to the agreement (party = false): name a party"
                ),
            );
        }
    };

    // Dates and term.
    if let (Some(start), Some(end)) = (a.start_date, a.end_date)
        && end.latest() <= start.earliest()
    {
        f.error(
            Rule::Dates,
            "end_date",
            format!(
                "end_date {end} is not after start_date {start}: the end must come after the start"
            ),
        );
    }
    if a.term_years.is_some() && a.end_date.is_some() {
        f.warning(Rule::Dates, "term_years", "both term_years and end_date are given: the end date is used; remove one so they cannot disagree");
    }
    if a.term_years == Some(0) {
        f.error(
            Rule::Dates,
            "term_years",
            "term_years is 0: give the term in whole years, or an end_date",
        );
    }
    if status.is_in_force() && a.start_date.and_then(PartialDate::exact).is_none() {
        f.error(
            Rule::Dates,
            "start_date",
            format!(
                "the agreement is {} but has no full start_date (YYYY-MM-DD)",
                status.label()
            ),
        );
    }
    if let (Some(agreed), Some(start)) = (a.agreement_date, a.start_date)
        && agreed.earliest() > start.latest()
    {
        f.warning(
            Rule::Dates,
            "agreement_date",
            format!("the agreement_date {agreed} is after the start_date {start}: check both"),
        );
    }

    for (i, g) in a.care_groups.iter().enumerate() {
        if let (Some(lo), Some(hi)) = (g.min_age, g.max_age)
            && hi < lo
        {
            f.error(
                Rule::Dates,
                format!("care_groups[{i}].max_age"),
                format!("max_age {hi} is below min_age {lo}"),
            );
        }
    }

    for (i, l) in a.localities.iter().enumerate() {
        for (j, p) in l.partners.iter().enumerate() {
            partner_ref(
                &mut f,
                format!("localities[{i}].partners[{j}]"),
                p,
                "locality partner",
                false,
            );
        }
    }

    for (i, area) in a.commissioning_areas.iter().enumerate() {
        for (j, lead) in area.lead.iter().enumerate() {
            let path = if area.lead.0.len() == 1 {
                format!("commissioning_areas[{i}].lead")
            } else {
                format!("commissioning_areas[{i}].lead[{j}]")
            };
            partner_ref(&mut f, path, lead, "lead", true);
        }
        for (j, p) in area.associates.iter().enumerate() {
            partner_ref(
                &mut f,
                format!("commissioning_areas[{i}].associates[{j}]"),
                p,
                "associate commissioner",
                false,
            );
        }
        for (j, g) in area.care_groups.iter().enumerate() {
            if !care_group_ids.contains(g.as_str()) {
                f.error(
                    Rule::UnknownReference,
                    format!("commissioning_areas[{i}].care_groups[{j}]"),
                    format!(
                        "care group '{g}' is not defined in [[care_groups]] ({})",
                        list(&care_group_ids)
                    ),
                );
            }
        }
    }

    // Excluded NHS functions cannot be delegated, whoever receives them.
    for (i, func) in a.delegated_functions.iter().enumerate() {
        partner_ref(
            &mut f,
            format!("delegated_functions[{i}].from"),
            &func.from,
            "delegating partner",
            true,
        );
        partner_ref(
            &mut f,
            format!("delegated_functions[{i}].to"),
            &func.to,
            "receiving partner",
            true,
        );
        if func.kind == FunctionKind::Nhs
            && let Some(name) = excluded_function(&func.description)
        {
            f.error(Rule::ExcludedFunction, format!("delegated_functions[{i}].description"), format!("'{}' is {name}, an NHS function that cannot be delegated under a partnership arrangement: remove it from the agreement", func.description));
        }
    }
    for (i, func) in a.terms.nhs_functions.iter().enumerate() {
        if let Some(name) = excluded_function(func) {
            f.error(Rule::ExcludedFunction, format!("terms.nhs_functions[{i}]"), format!("'{func}' is {name}, an NHS function that cannot be part of a partnership arrangement: remove it"));
        }
    }

    for (i, fund) in a.funds.iter().enumerate() {
        let path = format!("funds[{i}]");
        for (j, g) in fund.care_groups.iter().enumerate() {
            if !care_group_ids.contains(g.as_str()) {
                f.error(
                    Rule::UnknownReference,
                    format!("{path}.care_groups[{j}]"),
                    format!(
                        "care group '{g}' is not defined in [[care_groups]] ({})",
                        list(&care_group_ids)
                    ),
                );
            }
        }
        if let Some(host) = &fund.host {
            if fund.kind == FundKind::Pooled
                && partner_ids.contains(host.as_str())
                && !party_ids.contains(host.as_str())
            {
                f.error(Rule::PoolHost, format!("{path}.host"), format!("the host '{host}' is not a party to the agreement: a pooled fund is hosted by one of the partners (reg 7(4))"));
            } else {
                partner_ref(&mut f, format!("{path}.host"), host, "host", false);
            }
        }
        if fund.kind == FundKind::Pooled {
            if fund.host.is_none() {
                f.error(Rule::PoolHost, &path, format!("pooled fund '{}' has no host: add host = \"<partner id>\" naming the party that accounts for the pool (reg 7(4))", fund.id));
            }
            match &fund.pool_manager {
                None => f.error(Rule::PoolManager, &path, format!("pooled fund '{}' has no pool manager: add [funds.pool_manager] with the officer's title (reg 7(4))", fund.id)),
                Some(pm) if pm.title.trim().is_empty() => f.error(Rule::PoolManager, format!("{path}.pool_manager.title"), "the pool manager's title is empty"),
                Some(_) => {}
            }
            match &fund.risk_share {
                None => f.error(Rule::RiskShareMissing, &path, format!("pooled fund '{}' does not say how overspends and underspends are shared: add [funds.risk_share] with overspend and underspend rules", fund.id)),
                Some(rs) => {
                    if rs.overspend.is_none() {
                        f.error(Rule::RiskShareMissing, format!("{path}.risk_share"), "the risk share does not say who meets an overspend: add overspend = { rule = \"…\" }");
                    }
                    if rs.underspend.is_none() {
                        f.error(Rule::RiskShareMissing, format!("{path}.risk_share"), "the risk share does not say what happens to an underspend: add underspend = { rule = \"…\" }");
                    }
                }
            }
            if fund.contributions.is_empty() {
                f.warning(Rule::Contributions, &path, format!("pooled fund '{}' has no contributions: agree each partner's contribution per financial year in [[funds.contributions]]", fund.id));
            }
        }
        if let Some(rs) = &fund.risk_share {
            if let Some(r) = &rs.overspend {
                check_rule(
                    &mut f,
                    &format!("{path}.risk_share.overspend"),
                    r,
                    &partner_ids,
                    &party_ids,
                );
            }
            if let Some(r) = &rs.underspend {
                check_rule(
                    &mut f,
                    &format!("{path}.risk_share.underspend"),
                    r,
                    &partner_ids,
                    &party_ids,
                );
            }
        }
        let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for (j, c) in fund.contributions.iter().enumerate() {
            let cpath = format!("{path}.contributions[{j}]");
            partner_ref(
                &mut f,
                format!("{cpath}.partner"),
                &c.partner,
                "contributing partner",
                true,
            );
            if c.amount.is_negative() {
                f.error(Rule::Amount, format!("{cpath}.amount"), format!("contribution of {} is negative: a reduction is agreed as a variation, not a negative contribution", c.amount));
            }
            let key = (
                c.partner.clone(),
                c.year.to_string(),
                format!("{:?}", c.kind),
            );
            if let Some(first) = seen.insert(key, j) {
                f.error(Rule::DuplicateId, format!("{cpath}.partner"), format!("{} already has a {:?} contribution for {} (contributions[{first}]): one line per partner, kind and year", c.partner, c.kind, c.year));
            }
        }
    }

    for (i, b) in a.other_budgets.iter().enumerate() {
        for (j, p) in b.held_by.iter().enumerate() {
            partner_ref(
                &mut f,
                format!("other_budgets[{i}].held_by[{j}]"),
                p,
                "holder",
                false,
            );
        }
        if b.amount.is_negative() {
            f.error(
                Rule::Amount,
                format!("other_budgets[{i}].amount"),
                format!("budget of {} is negative", b.amount),
            );
        }
    }

    for (i, t) in a.transfers.iter().enumerate() {
        let path = format!("transfers[{i}]");
        partner_ref(
            &mut f,
            format!("{path}.from"),
            &t.from,
            "paying body",
            false,
        );
        partner_ref(&mut f, format!("{path}.to"), &t.to, "receiving body", false);
        if let Some(via) = &t.via {
            partner_ref(
                &mut f,
                format!("{path}.via"),
                via,
                "passporting body",
                false,
            );
            if via == &t.from || via == &t.to {
                f.error(Rule::Transfer, format!("{path}.via"), format!("the transfer is passported via '{via}', which is already its payer or payee: name the third body, or remove via"));
            }
        }
        if t.from == t.to {
            f.error(
                Rule::Transfer,
                format!("{path}.to"),
                format!("transfer '{}' pays '{}' to itself", t.id, t.to),
            );
        }
        if t.amount <= Money::ZERO {
            f.error(
                Rule::Amount,
                format!("{path}.amount"),
                format!(
                    "transfer '{}' of {} must be a positive amount",
                    t.id, t.amount
                ),
            );
        }
        let (from, to) = (a.partner(&t.from), a.partner(&t.to));
        if let (Some(from), Some(to)) = (from, to) {
            let ok = match t.basis {
                TransferBasis::S256 => from.kind.is_nhs_body() && to.kind.is_local_authority(),
                TransferBasis::S76 => from.kind.is_local_authority() && to.kind.is_nhs_body(),
                TransferBasis::S75 => true,
            };
            if !ok {
                let rule = match t.basis {
                    TransferBasis::S256 => {
                        "s256 is a payment from an NHS body to a local authority"
                    }
                    _ => "s76 is a payment from a local authority to an NHS body",
                };
                f.error(
                    Rule::Transfer,
                    format!("{path}.basis"),
                    format!(
                        "{rule}, but this one is from {} ({}) to {} ({})",
                        from.id,
                        from.kind.label(),
                        to.id,
                        to.kind.label()
                    ),
                );
            }
        }
    }

    for (i, post) in a.posts.iter().enumerate() {
        let path = format!("posts[{i}]");
        partner_ref(
            &mut f,
            format!("{path}.employer"),
            &post.employer,
            "employer",
            false,
        );
        match (&post.funded_by, &post.funded_externally_by) {
            (Some(src), _) => {
                if !partner_ids.contains(src.as_str()) && !fund_ids.contains(src.as_str()) {
                    f.error(Rule::UnknownReference, format!("{path}.funded_by"), format!("funded_by '{src}' is neither a partner nor a fund in this file: use a partner id (its base budget) or a fund id, or funded_externally_by for a source outside the agreement"));
                }
            }
            (None, None) => f.warning(
                Rule::UnknownReference,
                &path,
                format!(
                    "post '{}' does not say who funds it: add funded_by",
                    post.title
                ),
            ),
            (None, Some(_)) => {}
        }
        if let Some(p) = &post.accountable_partner {
            partner_ref(
                &mut f,
                format!("{path}.accountable_partner"),
                p,
                "accountable partner",
                false,
            );
        }
    }

    for (i, u) in a.joint_units.iter().enumerate() {
        if let Some(h) = &u.host {
            partner_ref(&mut f, format!("joint_units[{i}].host"), h, "host", true);
        }
    }

    for (i, b) in a.bodies.iter().enumerate() {
        for (j, s) in b.seats.iter().enumerate() {
            partner_ref(
                &mut f,
                format!("bodies[{i}].seats[{j}].partner"),
                &s.partner,
                "seat holder",
                false,
            );
        }
        for (j, r) in b.reports_to.iter().enumerate() {
            if !body_ids.contains(r.as_str()) && !partner_ids.contains(r.as_str()) {
                f.error(
                    Rule::UnknownReference,
                    format!("bodies[{i}].reports_to[{j}]"),
                    format!("'{r}' is neither a body nor a partner in this file"),
                );
            }
        }
        check_quorum_and_voting(&mut f, i, b);
        check_roster(&mut f, i, b);
        if b.equal_numbers {
            let counts: BTreeSet<u32> = b.seats.iter().map(|s| s.voting).collect();
            if counts.len() > 1 {
                f.error(
                    Rule::Parties,
                    format!("bodies[{i}].seats"),
                    format!(
                        "{} must have equal numbers of voting seats per side, but the seats are {}",
                        b.name,
                        b.seats
                            .iter()
                            .map(|s| format!("{} {}", s.partner, s.voting))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }

    for (i, l) in a.decision_levels.iter().enumerate() {
        if let Some(role) = &l.role
            && crate::access::Role::parse(role).is_none()
        {
            f.error(
                Rule::Governance,
                format!("decision_levels[{i}].role"),
                format!(
                    "'{role}' is not a Concordat role; the roles are {}",
                    crate::access::Role::ALL
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if l.level != crate::agreement::DecisionLevelKind::Delegated
            && (l.role.is_some() || l.limit.is_some())
        {
            f.error(
                Rule::Governance,
                format!("decision_levels[{i}]"),
                "only a delegated level has an officer's role or limit: remove role and limit, or make the level delegated",
            );
        }
    }
    for (i, t) in a.budget_timetable.iter().enumerate() {
        let ok = i8::try_from(t.month)
            .ok()
            .zip(i8::try_from(t.day).ok())
            .is_some_and(|(m, d)| jiff::civil::Date::new(2023, m, d).is_ok());
        if !ok {
            f.error(
                Rule::Governance,
                format!("budget_timetable[{i}]"),
                format!(
                    "day {} of month {} is not a date in every year",
                    t.day, t.month
                ),
            );
        }
    }

    check_written_terms(&mut f, a);

    // Signatures: who signed for which party, and none missing once in force.
    for (i, ap) in a.approvals.iter().enumerate() {
        if let Some(p) = &ap.partner {
            partner_ref(
                &mut f,
                format!("approvals[{i}].partner"),
                p,
                "approving partner",
                true,
            );
        }
    }
    for (i, s) in a.signatures.iter().enumerate() {
        partner_ref(
            &mut f,
            format!("signatures[{i}].partner"),
            &s.partner,
            "signing partner",
            true,
        );
    }
    if status >= Status::Signed {
        for p in a.parties() {
            let signed = a
                .signatures
                .iter()
                .any(|s| s.partner == p.id && s.date.is_some());
            if !signed {
                f.error(Rule::Signatures, "status", format!("the agreement is marked {} but {} has not signed: add a [[signatures]] entry with its date for '{}', or set status = \"approved\"", status.label(), p.name, p.id));
            }
        }
    }

    f.0
}

fn check_rule(
    f: &mut Findings,
    path: &str,
    rule: &RiskRule,
    partners: &BTreeSet<&str>,
    parties: &BTreeSet<&str>,
) {
    match rule {
        RiskRule::FixedShares { shares } => {
            let total: i64 = shares.values().map(|p| p.basis_points()).sum();
            if total != 10_000 {
                let whole = crate::percent::Percent::from_basis_points(total);
                f.error(Rule::FixedShares, format!("{path}.shares"), format!("the fixed shares add up to {whole}, not 100%: correct them so they total exactly 100"));
            }
            for p in shares.keys() {
                if !parties.contains(p.as_str()) {
                    f.error(
                        Rule::FixedShares,
                        format!("{path}.shares.{p}"),
                        format!(
                            "'{p}' has a share but is not a party to the agreement ({})",
                            list(parties)
                        ),
                    );
                }
            }
        }
        RiskRule::ProRata { caps, .. } => {
            for (p, cap) in caps {
                if !partners.contains(p.as_str()) {
                    f.error(
                        Rule::UnknownReference,
                        format!("{path}.caps.{p}"),
                        format!("'{p}' has a cap but is not a partner in this file"),
                    );
                }
                if cap.is_negative() {
                    f.error(
                        Rule::Amount,
                        format!("{path}.caps.{p}"),
                        "a cap cannot be negative",
                    );
                }
            }
        }
        RiskRule::RiskPool { amount } if amount.is_negative() => {
            f.error(
                Rule::Amount,
                format!("{path}.amount"),
                "a risk pool cannot be negative",
            );
        }
        RiskRule::Waterfall { steps } => {
            if steps.is_empty() {
                f.error(
                    Rule::RiskShareMissing,
                    format!("{path}.steps"),
                    "a waterfall needs at least one step",
                );
            }
            for (k, s) in steps.iter().enumerate() {
                check_rule(f, &format!("{path}.steps[{k}]"), s, partners, parties);
            }
        }
        _ => {}
    }
}

/// SI 2000/617: reg 7(3) for pooled funds; reg 9 where a council exercises NHS functions.
fn check_written_terms(f: &mut Findings, a: &Agreement) {
    let pooled = a.funds.iter().any(|x| x.kind == FundKind::Pooled)
        || a.has_flexibility(Flexibility::PooledFund);
    let council_exercises_nhs = a.delegated_functions.iter().any(|d| {
        d.kind == FunctionKind::Nhs
            && a.partner(&d.to)
                .is_some_and(|p| p.kind.is_local_authority())
    }) || ((a.has_flexibility(Flexibility::LeadCommissioning)
        || a.has_flexibility(Flexibility::IntegratedProvision))
        && a.commissioning_areas.iter().any(|c| {
            c.lead
                .iter()
                .any(|l| a.partner(l).is_some_and(|p| p.kind.is_local_authority()))
        }));
    if !pooled && !council_exercises_nhs {
        return;
    }
    // The same lettered term, cited under each regulation that requires it.
    let reg = |letter: char| match (pooled, council_exercises_nhs) {
        (true, true) => format!("reg 7(3)({letter}) and reg 9({letter})"),
        (true, false) => format!("reg 7(3)({letter})"),
        _ => format!("reg 9({letter})"),
    };
    let s = a.status;
    let t = &a.terms;
    if t.aims.is_empty() && t.outcomes.is_empty() {
        f.term(s, "terms", format!("SI 2000/617 {}: the agreed aims and outcomes are not written: add terms.aims and terms.outcomes", reg('a')));
    }
    let has_money = a.funds.iter().any(|x| !x.contributions.is_empty()) || !a.transfers.is_empty();
    if !has_money {
        f.term(s, "funds", format!("SI 2000/617 {}: no contributions or payments are set out: add [[funds.contributions]] (or [[transfers]]) per year", reg('b')));
    }
    if t.contribution_variation.is_none() {
        f.term(s, "terms", format!("SI 2000/617 {}: how contributions may be varied is not written: add terms.contribution_variation", reg('b')));
    }
    if t.nhs_functions.is_empty()
        && t.health_related_functions.is_empty()
        && a.delegated_functions.is_empty()
    {
        f.term(s, "terms", format!("SI 2000/617 {}: the NHS and health-related functions covered are not listed: add terms.nhs_functions and terms.health_related_functions", reg('c')));
    }
    if a.care_groups.is_empty() && t.services.is_empty() {
        f.term(s, "care_groups", format!("SI 2000/617 {}: the persons and kinds of services covered are not given: add [[care_groups]] or terms.services", reg('d')));
    }
    if t.resources_in_kind.is_none() && a.posts.is_empty() {
        f.term(s, "terms", format!("SI 2000/617 {}: the staff, goods, services or accommodation each partner provides are not written: add terms.resources_in_kind or [[posts]]", reg('e')));
    }
    if a.term_years.is_none() && a.end_date.is_none() {
        f.term(
            s,
            "term_years",
            format!(
                "SI 2000/617 {}: the duration is not given: add term_years or end_date",
                reg('f')
            ),
        );
    }
    if a.review.is_none() {
        f.term(
            s,
            "review",
            format!(
                "SI 2000/617 {}: there is no provision for review: add [review]",
                reg('f')
            ),
        );
    }
    if a.notice.is_none() {
        f.term(
            s,
            "notice",
            format!(
                "SI 2000/617 {}: there is no provision for termination: add [notice]",
                reg('f')
            ),
        );
    }
    if pooled && t.fund_management.is_none() {
        f.term(s, "terms", "SI 2000/617 reg 7(3)(g): how the pooled fund is managed and monitored is not written: add terms.fund_management");
    }
    if council_exercises_nhs && t.monitoring.is_none() {
        f.term(s, "terms", "SI 2000/617 reg 9: the arrangements for monitoring the council's exercise of NHS functions (quarterly and annual reports to the NHS bodies) are not written: add terms.monitoring");
    }
}

fn unique_ids<'a>(
    f: &mut Findings,
    section: &str,
    ids: impl Iterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.enumerate() {
        if !seen.insert(id) {
            f.error(
                Rule::DuplicateId,
                format!("{section}[{i}].id"),
                format!("the id '{id}' is used twice in [[{section}]]: ids must be unique"),
            );
        }
    }
    seen
}

fn list(ids: &BTreeSet<&str>) -> String {
    if ids.is_empty() {
        "none defined".to_string()
    } else {
        ids.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// A roster that fits the seats: voting members hold a partner's seat, no partner has more
/// named voting members than seats, and co-opted members never vote.
fn check_roster(f: &mut Findings, i: usize, b: &crate::agreement::Body) {
    let mut per_partner: BTreeMap<&str, u32> = BTreeMap::new();
    let mut co_opted = 0u32;
    let mut names = BTreeSet::new();
    for (j, r) in b.roster.iter().enumerate() {
        let path = format!("bodies[{i}].roster[{j}]");
        if !names.insert(r.name.as_str()) {
            f.error(
                Rule::DuplicateId,
                &path,
                format!("{} is on {}'s roster twice", r.name, b.name),
            );
        }
        match (&r.partner, r.voting) {
            (Some(p), true) => {
                if !b.seats.iter().any(|s| &s.partner == p) {
                    f.error(Rule::Governance, format!("{path}.partner"), format!("{} holds a seat of '{p}', which has no seats on {}", r.name, b.name));
                }
                *per_partner.entry(p.as_str()).or_default() += 1;
            }
            (None, true) => f.error(Rule::Governance, format!("{path}.partner"), format!("{} is a voting member of {} but holds no partner's seat: name the partner, or set voting = false for a co-opted member", r.name, b.name)),
            (_, false) => co_opted += 1,
        }
    }
    for s in &b.seats {
        let named = per_partner.get(s.partner.as_str()).copied().unwrap_or(0);
        if named > s.voting {
            f.error(
                Rule::Governance,
                format!("bodies[{i}].roster"),
                format!(
                    "{} names {named} voting members for {}, which has {} seats",
                    b.name, s.partner, s.voting
                ),
            );
        }
    }
    if let Some(limit) = b.co_opted_non_voting
        && co_opted > limit
    {
        f.error(
            Rule::Governance,
            format!("bodies[{i}].roster"),
            format!(
                "{} names {co_opted} co-opted members; its terms allow {limit}",
                b.name
            ),
        );
    }
}

/// A quorum the seats can meet, and a voting mode the seats can use. Co-opted members never
/// count towards either.
fn check_quorum_and_voting(f: &mut Findings, i: usize, b: &crate::agreement::Body) {
    use crate::agreement::VotingMode;
    let voting_seats: u32 = b.seats.iter().map(|s| s.voting).sum();
    if let Some(q) = &b.quorum {
        let path = format!("bodies[{i}].quorum");
        if q.members == 0 {
            f.error(
                Rule::Governance,
                format!("{path}.members"),
                format!("{}'s quorum is 0: a body with no quorum can decide with no one present; say how many must be present", b.name),
            );
        }
        if !b.seats.is_empty() && q.members > voting_seats {
            f.error(
                Rule::Governance,
                format!("{path}.members"),
                format!(
                    "{}'s quorum of {} can never be met: it has {voting_seats} voting seats (co-opted members do not count)",
                    b.name, q.members
                ),
            );
        }
        if q.each_partner && b.seats.is_empty() {
            f.error(
                Rule::Governance,
                format!("{path}.each_partner"),
                format!("{}'s quorum needs a member of each partner, but the body has no seats per partner: add [[bodies.seats]]", b.name),
            );
        }
        if q.each_partner && b.seats.iter().any(|s| s.voting == 0) {
            f.error(
                Rule::Governance,
                format!("{path}.each_partner"),
                format!("{}'s quorum needs a voting member of each partner, but a partner has no voting seats", b.name),
            );
        }
    }
    if b.voting == Some(VotingMode::BlockPerPartner) && b.seats.len() < 2 {
        f.error(
            Rule::Governance,
            format!("bodies[{i}].voting"),
            format!(
                "{} votes in one block per partner, so it needs seats for at least two partners",
                b.name
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_excluded_functions() {
        assert_eq!(excluded_function("Day-case surgery"), Some("surgery"));
        assert_eq!(
            excluded_function("Emergency ambulance services"),
            Some("emergency ambulance services")
        );
        assert_eq!(
            excluded_function("Termination of pregnancies"),
            Some("termination of pregnancy")
        );
        assert_eq!(excluded_function("Community mental health services"), None);
        assert_eq!(excluded_function("Non-invasive monitoring at home"), None);
    }
}
