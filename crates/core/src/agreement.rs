//! The agreement as data: what a Section 75 (or Section 31) partnership agreement says, in the
//! shape of the agreement file (`docs/agreement-format.md`). Every key of the file maps to a
//! field here; unknown keys are refused so a typo never silently drops a term.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::calendar::FinancialYear;
use crate::money::Money;
use crate::percent::Percent;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// Format version of the file; currently 1.
    pub format: u32,
    /// Stable key of the partnership, e.g. `halton-st-helens`. Lower case, digits and hyphens.
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub short_title: Option<String>,
    pub legal_basis: OneOrMany<LegalBasis>,
    pub status: Status,
    /// Draft number where the document is a numbered draft ("9th draft").
    #[serde(default)]
    pub draft_number: Option<u32>,
    #[serde(default)]
    pub document_date: Option<PartialDate>,
    #[serde(default)]
    pub agreement_date: Option<PartialDate>,
    #[serde(default)]
    pub start_date: Option<PartialDate>,
    #[serde(default)]
    pub term_years: Option<u32>,
    #[serde(default)]
    pub end_date: Option<PartialDate>,
    #[serde(default)]
    pub flexibilities: Vec<Flexibility>,
    #[serde(default)]
    pub predecessor: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    /// Facts in this file that are illustrative rather than taken from the source document.
    #[serde(default)]
    pub illustrative_note: Option<String>,
    #[serde(default)]
    pub partners: Vec<Partner>,
    #[serde(default)]
    pub terms: WrittenTerms,
    #[serde(default)]
    pub care_groups: Vec<CareGroup>,
    #[serde(default)]
    pub localities: Vec<Locality>,
    #[serde(default)]
    pub commissioning_areas: Vec<CommissioningArea>,
    #[serde(default)]
    pub delegated_functions: Vec<DelegatedFunction>,
    #[serde(default)]
    pub funds: Vec<Fund>,
    #[serde(default)]
    pub other_budgets: Vec<OtherBudget>,
    #[serde(default)]
    pub transfers: Vec<Transfer>,
    #[serde(default)]
    pub posts: Vec<Post>,
    #[serde(default)]
    pub joint_units: Vec<JointUnit>,
    #[serde(default)]
    pub bodies: Vec<Body>,
    #[serde(default)]
    pub decision_levels: Vec<DecisionLevel>,
    #[serde(default)]
    pub parts: Vec<Part>,
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    #[serde(default)]
    pub annual_agreement_elements: Vec<String>,
    /// When next year's budget is to be prepared and agreed.
    #[serde(default)]
    pub budget_timetable: Vec<TimetableStep>,
    #[serde(default)]
    pub notice: Option<NoticeTerms>,
    #[serde(default)]
    pub review: Option<ReviewTerms>,
    #[serde(default)]
    pub disputes: Option<DisputeTerms>,
    #[serde(default)]
    pub complaints: Option<ComplaintsTerms>,
    #[serde(default)]
    pub liability: Option<String>,
    #[serde(default)]
    pub information_sharing: Option<String>,
    #[serde(default)]
    pub exit: Option<ExitTerms>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub signatures: Vec<Signature>,
}

/// A value that may be written once or as a list (`lead = "pct"` or `lead = ["a", "b"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> OneOrMany<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: the toml reader's untagged buffering loses
        // the value, and this way a wrong value keeps its own error message.
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                use serde::de::IntoDeserializer;
                T::deserialize(v.to_string().into_deserializer()).map(|x| OneOrMany(vec![x]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

impl<T: Serialize> Serialize for OneOrMany<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegalBasis {
    /// National Health Service Act 2006, section 75.
    #[serde(rename = "s75-nhs-act-2006")]
    S75NhsAct2006,
    /// Health Act 1999, section 31 (the predecessor of s75).
    #[serde(rename = "s31-health-act-1999")]
    S31HealthAct1999,
    /// NHS Act 2006 s256: NHS payments to a council.
    #[serde(rename = "s256-nhs-act-2006")]
    S256NhsAct2006,
    /// NHS Act 2006 s76: council payments to the NHS.
    #[serde(rename = "s76-nhs-act-2006")]
    S76NhsAct2006,
}

impl LegalBasis {
    pub fn label(self) -> &'static str {
        match self {
            LegalBasis::S75NhsAct2006 => "section 75, NHS Act 2006",
            LegalBasis::S31HealthAct1999 => "section 31, Health Act 1999",
            LegalBasis::S256NhsAct2006 => "section 256, NHS Act 2006",
            LegalBasis::S76NhsAct2006 => "section 76, NHS Act 2006",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Draft,
    Approved,
    Signed,
    Active,
    InNotice,
    Ended,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Approved => "approved",
            Status::Signed => "signed",
            Status::Active => "active",
            Status::InNotice => "in notice",
            Status::Ended => "ended",
        }
    }

    /// Whether the agreement is in force (or was): then its terms must be complete.
    pub fn is_in_force(self) -> bool {
        matches!(self, Status::Active | Status::InNotice | Status::Ended)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flexibility {
    LeadCommissioning,
    IntegratedProvision,
    PooledFund,
}

impl Flexibility {
    pub fn label(self) -> &'static str {
        match self {
            Flexibility::LeadCommissioning => "lead commissioning",
            Flexibility::IntegratedProvision => "integrated provision",
            Flexibility::PooledFund => "pooled fund",
        }
    }
}

/// A date a document may give only in part: `2008` (the document says "XX 2008"),
/// `2008-03`, or a full `2008-03-14`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartialDate {
    pub year: i16,
    pub month: Option<i8>,
    pub day: Option<i8>,
}

impl PartialDate {
    pub fn full(date: Date) -> PartialDate {
        PartialDate {
            year: date.year(),
            month: Some(date.month()),
            day: Some(date.day()),
        }
    }

    /// The date, if the document gives all of it.
    pub fn exact(self) -> Option<Date> {
        Date::new(self.year, self.month?, self.day?).ok()
    }

    /// The earliest day this could be, for ordering checks.
    pub fn earliest(self) -> Date {
        Date::new(self.year, self.month.unwrap_or(1), self.day.unwrap_or(1))
            .expect("checked when parsed")
    }

    /// The latest day this could be.
    pub fn latest(self) -> Date {
        let month_start =
            Date::new(self.year, self.month.unwrap_or(12), 1).expect("checked when parsed");
        match self.day {
            Some(d) => Date::new(self.year, month_start.month(), d).expect("checked when parsed"),
            None => month_start.last_of_month(),
        }
    }

    pub fn parse(text: &str) -> Result<PartialDate, String> {
        let bad = || {
            format!(
                "'{text}' is not a date: write YYYY-MM-DD, or YYYY-MM or YYYY where the document gives only part of it"
            )
        };
        let parts: Vec<&str> = text.split('-').collect();
        let widths_ok = match parts.len() {
            1 => parts[0].len() == 4,
            2 => parts[0].len() == 4 && parts[1].len() == 2,
            3 => parts[0].len() == 4 && parts[1].len() == 2 && parts[2].len() == 2,
            _ => false,
        };
        if !widths_ok || !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(bad());
        }
        let year: i16 = parts[0].parse().map_err(|_| bad())?;
        let month: Option<i8> = parts
            .get(1)
            .map(|m| m.parse())
            .transpose()
            .map_err(|_| bad())?;
        let day: Option<i8> = parts
            .get(2)
            .map(|d| d.parse())
            .transpose()
            .map_err(|_| bad())?;
        if !(1000..=9998).contains(&year) {
            return Err(bad());
        }
        if let Some(m) = month
            && !(1..=12).contains(&m)
        {
            return Err(format!("'{text}' is not a date: there is no month {m}"));
        }
        if let (Some(m), Some(d)) = (month, day)
            && Date::new(year, m, d).is_err()
        {
            return Err(format!("'{text}' is not a date: that day does not exist"));
        }
        Ok(PartialDate { year, month, day })
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // TOML has a native date type; accept it as well as a string.
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PartialDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a date as YYYY-MM-DD (or YYYY-MM, or YYYY where the document gives only part)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PartialDate, E> {
                PartialDate::parse(v).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PartialDate, A::Error> {
                // The toml crate hands native dates over as a one-entry map holding the text.
                let mut text: Option<String> = None;
                while let Some((_, v)) = map.next_entry::<String, String>()? {
                    text = Some(v);
                }
                let text = text.ok_or_else(|| serde::de::Error::custom("empty date"))?;
                PartialDate::parse(&text).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for PartialDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartnerKind {
    CountyCouncil,
    DistrictCouncil,
    UnitaryCouncil,
    MetropolitanBoroughCouncil,
    LondonBoroughCouncil,
    CityOfLondon,
    HealthAuthority,
    PrimaryCareTrust,
    ClinicalCommissioningGroup,
    IntegratedCareBoard,
    NhsTrust,
    FoundationTrust,
    NhsEngland,
    /// A body that is neither (a voluntary organisation, a district that receives a grant).
    Other,
}

impl PartnerKind {
    pub fn is_local_authority(self) -> bool {
        matches!(
            self,
            PartnerKind::CountyCouncil
                | PartnerKind::DistrictCouncil
                | PartnerKind::UnitaryCouncil
                | PartnerKind::MetropolitanBoroughCouncil
                | PartnerKind::LondonBoroughCouncil
                | PartnerKind::CityOfLondon
        )
    }

    pub fn is_nhs_body(self) -> bool {
        matches!(
            self,
            PartnerKind::HealthAuthority
                | PartnerKind::PrimaryCareTrust
                | PartnerKind::ClinicalCommissioningGroup
                | PartnerKind::IntegratedCareBoard
                | PartnerKind::NhsTrust
                | PartnerKind::FoundationTrust
                | PartnerKind::NhsEngland
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            PartnerKind::CountyCouncil => "county council",
            PartnerKind::DistrictCouncil => "district council",
            PartnerKind::UnitaryCouncil => "unitary council",
            PartnerKind::MetropolitanBoroughCouncil => "metropolitan borough council",
            PartnerKind::LondonBoroughCouncil => "London borough council",
            PartnerKind::CityOfLondon => "Common Council of the City of London",
            PartnerKind::HealthAuthority => "health authority",
            PartnerKind::PrimaryCareTrust => "primary care trust",
            PartnerKind::ClinicalCommissioningGroup => "clinical commissioning group",
            PartnerKind::IntegratedCareBoard => "integrated care board",
            PartnerKind::NhsTrust => "NHS trust",
            PartnerKind::FoundationTrust => "NHS foundation trust",
            PartnerKind::NhsEngland => "NHS England",
            PartnerKind::Other => "other body",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partner {
    pub id: String,
    pub name: String,
    pub kind: PartnerKind,
    /// A party to the agreement (signs it), or another body it names: an associate
    /// commissioner, a body a transfer is passported through.
    #[serde(default = "yes")]
    pub party: bool,
    /// ONS/GSS code for a council, ODS code for an NHS body.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub successor_of: Option<String>,
    #[serde(default)]
    pub people: Vec<Person>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    #[serde(default)]
    pub name: Option<String>,
    pub title: String,
    /// What the person is to the agreement: `statutory-partner`, `responsible-officer`,
    /// `contact`, `lead-director`, `author`, `pool-manager`, `executive-member`…
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub illustrative: bool,
}

/// The written terms SI 2000/617 requires: reg 7(3) for a pooled fund, reg 9 where a council
/// exercises NHS functions. Duration, review and termination come from `term_years`/`end_date`,
/// `[notice]` and `[review]`; persons and services also from `care_groups`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrittenTerms {
    /// (a) the agreed aims and outcomes.
    #[serde(default)]
    pub aims: Vec<String>,
    #[serde(default)]
    pub outcomes: Vec<String>,
    /// (b) how contributions (or, under reg 9, the NHS payments) may be varied.
    #[serde(default)]
    pub contribution_variation: Option<String>,
    /// (c) the NHS functions covered.
    #[serde(default)]
    pub nhs_functions: Vec<String>,
    /// (c) the council's health-related functions covered.
    #[serde(default)]
    pub health_related_functions: Vec<String>,
    /// (d) the persons and kinds of services covered (besides `care_groups`).
    #[serde(default)]
    pub services: Vec<String>,
    /// (e) staff, goods, services or accommodation each partner provides.
    #[serde(default)]
    pub resources_in_kind: Option<String>,
    /// (g) how the pooled fund is managed and monitored.
    #[serde(default)]
    pub fund_management: Option<String>,
    /// reg 9(g): how the council's exercise of NHS functions is monitored, with its quarterly
    /// and annual reports to the NHS bodies.
    #[serde(default)]
    pub monitoring: Option<String>,
    #[serde(default)]
    pub consultation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CareGroup {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub min_age: Option<u8>,
    #[serde(default)]
    pub max_age: Option<u8>,
    /// What the document says about age where a bound cannot say it ("covering some 55+").
    #[serde(default)]
    pub age_note: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locality {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub partners: Vec<String>,
    /// Money invested in this locality is spent in it.
    #[serde(default)]
    pub ring_fenced: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommissioningArea {
    pub id: String,
    pub name: String,
    pub lead: OneOrMany<String>,
    #[serde(default)]
    pub associates: Vec<String>,
    #[serde(default)]
    pub care_groups: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegatedFunction {
    pub description: String,
    /// `nhs` or `health-related`.
    pub kind: FunctionKind,
    /// The partner whose function it is.
    pub from: String,
    /// The partner that exercises it under the agreement.
    pub to: String,
    #[serde(default)]
    pub statutory_reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FunctionKind {
    Nhs,
    HealthRelated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FundKind {
    /// One fund, hosted by one partner, run by a pool manager (reg 7).
    Pooled,
    /// Each partner's budget stays its own, managed side by side (not a pooled fund under
    /// the Regulations).
    Aligned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fund {
    pub id: String,
    pub name: String,
    pub kind: FundKind,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub pool_manager: Option<Person>,
    #[serde(default)]
    pub care_groups: Vec<String>,
    /// Budgets are shown net of client income.
    #[serde(default)]
    pub net_of_client_income: bool,
    #[serde(default)]
    pub risk_share: Option<RiskShare>,
    /// When monitoring rates a variance amber or red; Concordat's default where absent.
    #[serde(default)]
    pub monitoring: Option<MonitoringThresholds>,
    #[serde(default)]
    pub contributions: Vec<Contribution>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub illustrative: bool,
}

/// `[funds.monitoring]`: the variance (forecast outturn less annual budget) at which a line
/// turns amber or red. A line is rated on whichever test it fails first: percent of its annual
/// budget, or an amount. Any threshold left out falls back to Concordat's default (see
/// `monitor::Thresholds`), not a rule of the Regulations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringThresholds {
    /// An overspend above this percent of the annual budget is amber.
    #[serde(default)]
    pub amber_percent: Option<Percent>,
    /// An overspend above this percent of the annual budget is red.
    #[serde(default)]
    pub red_percent: Option<Percent>,
    /// An overspend above this amount is amber, whatever its percent.
    #[serde(default)]
    pub amber_amount: Option<Money>,
    /// An overspend above this amount is red, whatever its percent.
    #[serde(default)]
    pub red_amount: Option<Money>,
    /// An underspend above this percent of the annual budget is amber (slippage).
    #[serde(default)]
    pub underspend_amber_percent: Option<Percent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    pub partner: String,
    pub year: FinancialYear,
    pub amount: Money,
    #[serde(default)]
    pub kind: ContributionKind,
    #[serde(default)]
    pub conditions: Option<String>,
    /// How it is paid: `annual`, `quarterly` (four equal instalments), `monthly`.
    #[serde(default)]
    pub instalments: Option<Instalments>,
    /// A one-off payment: left out where a rule excludes non-recurrent contributions.
    #[serde(default = "yes")]
    pub recurrent: bool,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub illustrative: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContributionKind {
    #[default]
    Cash,
    /// A grant with conditions (e.g. a partnership grant).
    Grant,
    MinorCapital,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Instalments {
    Annual,
    Quarterly,
    Monthly,
}

/// How an overspend and an underspend of a fund are shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskShare {
    #[serde(default)]
    pub overspend: Option<RiskRule>,
    #[serde(default)]
    pub underspend: Option<RiskRule>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub illustrative: bool,
}

/// The patterns of risk-share clause found in real agreements (DOMAIN.md §2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RiskRule {
    /// In proportion to the partners' contributions for the year, optionally capped per
    /// partner (pennies past a cap go to the partners below theirs).
    ProRata {
        #[serde(default)]
        caps: BTreeMap<String, Money>,
        /// Leave non-recurrent contributions out of the proportions (exit clauses).
        #[serde(default)]
        exclude_non_recurrent: bool,
    },
    /// Fixed percentages per partner, adding to 100.
    FixedShares { shares: BTreeMap<String, Percent> },
    /// Each partner bears the variance on its own functions or budget lines.
    EachBearsOwn,
    /// The host (or lead commissioner) bears an overspend or keeps an underspend.
    Host,
    /// Offset against underspends in the partnership's other pools first.
    OffsetOtherPools,
    /// Met from a contingency/risk pool of this size first.
    RiskPool { amount: Money },
    /// An underspend stays in the pool for next year.
    CarryForward,
    /// An underspend is kept in the pool as contingency.
    Contingency,
    /// An underspend goes back to the partners pro rata to contributions.
    ReturnProRata,
    /// Steps applied in order; whatever one leaves falls to the next.
    Waterfall { steps: Vec<RiskRule> },
}

impl RiskRule {
    pub fn describe(&self) -> String {
        match self {
            RiskRule::ProRata {
                caps,
                exclude_non_recurrent,
            } => {
                let mut s = "pro rata to contributions".to_string();
                if *exclude_non_recurrent {
                    s.push_str(" (excluding non-recurrent payments)");
                }
                if !caps.is_empty() {
                    s.push_str(", capped");
                }
                s
            }
            RiskRule::FixedShares { shares } => {
                let parts: Vec<String> = shares.iter().map(|(p, pc)| format!("{p} {pc}")).collect();
                format!("fixed shares ({})", parts.join(", "))
            }
            RiskRule::EachBearsOwn => "each partner bears its own".into(),
            RiskRule::Host => "the host bears or retains it".into(),
            RiskRule::OffsetOtherPools => "offset against other pools".into(),
            RiskRule::RiskPool { amount } => format!("a risk pool of {amount}"),
            RiskRule::CarryForward => "carried forward in the pool".into(),
            RiskRule::Contingency => "kept in the pool as contingency".into(),
            RiskRule::ReturnProRata => "returned pro rata to contributions".into(),
            RiskRule::Waterfall { steps } => {
                let parts: Vec<String> = steps.iter().map(RiskRule::describe).collect();
                format!("in turn: {}", parts.join("; then "))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherBudget {
    pub id: String,
    pub name: String,
    pub amount: Money,
    #[serde(default)]
    pub held_by: Vec<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub year: Option<FinancialYear>,
    #[serde(default)]
    pub illustrative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub id: String,
    pub from: String,
    pub to: String,
    pub basis: TransferBasis,
    pub amount: Money,
    #[serde(default)]
    pub year: Option<FinancialYear>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub conditions: Option<String>,
    /// A body the money is passported through on its way (a partner id, party or not).
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub instalments: Option<Instalments>,
    /// Roughly: the document gives the figure as "about" or "approximately".
    #[serde(default)]
    pub approximate: bool,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub illustrative: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferBasis {
    S75,
    S256,
    S76,
}

impl TransferBasis {
    pub fn label(self) -> &'static str {
        match self {
            TransferBasis::S75 => "s75",
            TransferBasis::S256 => "s256",
            TransferBasis::S76 => "s76",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Post {
    pub id: String,
    pub title: String,
    /// The partner that employs the post holder.
    pub employer: String,
    /// A partner id (its base budget) or a fund id (the pooled fund pays).
    #[serde(default)]
    pub funded_by: Option<String>,
    /// A funding source outside the agreement (e.g. a national grant).
    #[serde(default)]
    pub funded_externally_by: Option<String>,
    /// Who the post holder is accountable to day to day.
    #[serde(default)]
    pub accountable_to: Option<String>,
    #[serde(default)]
    pub accountable_partner: Option<String>,
    #[serde(default)]
    pub commissioning_area: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub illustrative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointUnit {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub lead: Option<String>,
    #[serde(default)]
    pub established: Option<PartialDate>,
}

/// A board or group (fuller terms of reference come with governance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub seats: Vec<Seats>,
    /// Co-opted members: they take part but never vote.
    #[serde(default)]
    pub co_opted_non_voting: Option<u32>,
    #[serde(default)]
    pub equal_numbers: bool,
    #[serde(default)]
    pub chair: Option<String>,
    #[serde(default)]
    pub meets: Option<String>,
    #[serde(default)]
    pub reports_to: Vec<String>,
    #[serde(default)]
    pub terms_of_reference: Option<String>,
    #[serde(default)]
    pub budget_decisions: bool,
    /// Members named by office where the document lists them without seat counts.
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub established: Option<PartialDate>,
    /// How many must be present for it to decide anything, and who among them.
    #[serde(default)]
    pub quorum: Option<Quorum>,
    /// How it decides when it has to.
    #[serde(default)]
    pub voting: Option<VotingMode>,
    /// How the chair passes between the partners, where it does (e.g. "annually, alternating
    /// between the council and the NHS partner").
    #[serde(default)]
    pub chair_rotation: Option<String>,
    /// The members by name, where the partners have named them: meetings of a body with a
    /// roster can only record these people, in the capacity the roster gives them.
    #[serde(default)]
    pub roster: Vec<RosterMember>,
}

/// A named member of a body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterMember {
    pub name: String,
    /// The partner whose seat they hold; none for a co-opted member.
    #[serde(default)]
    pub partner: Option<String>,
    /// `false` for a co-opted member, who takes part but never votes.
    #[serde(default = "yes")]
    pub voting: bool,
    /// Offices they hold, for quorum rules that name roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The people named to stand in for them.
    #[serde(default)]
    pub substitutes: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A body's quorum. Only voting members count: co-opted members never do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quorum {
    /// Voting members present, at least.
    pub members: u32,
    /// At least one voting member of each partner with seats.
    #[serde(default)]
    pub each_partner: bool,
    /// Roles that must be among those present, e.g. "Director of Public Health".
    #[serde(default)]
    pub roles: Vec<String>,
}

/// How a body decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VotingMode {
    /// No voting member present votes against.
    Consensus,
    /// One block vote per partner, each decided by its own members' majority; the partners
    /// disagreeing means no decision.
    BlockPerPartner,
    /// More votes for than against among the voting members present.
    Majority,
}

impl VotingMode {
    pub fn label(self) -> &'static str {
        match self {
            VotingMode::Consensus => "consensus",
            VotingMode::BlockPerPartner => "one block vote per partner",
            VotingMode::Majority => "majority of voting members present",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seats {
    pub partner: String,
    pub voting: u32,
    #[serde(default)]
    pub drawn_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionLevel {
    pub level: DecisionLevelKind,
    pub description: String,
    /// For a delegated level: the officer it is delegated to.
    #[serde(default)]
    pub officer: Option<String>,
    /// For a delegated level: the Concordat role that holds it (e.g. `pool-manager`), so a
    /// user with that role can decide within the limit.
    #[serde(default)]
    pub role: Option<String>,
    /// Up to how much the officer may decide; none means no limit.
    #[serde(default)]
    pub limit: Option<Money>,
    /// The kinds of decision the level covers; empty means every kind.
    #[serde(default)]
    pub decision_types: Vec<DecisionType>,
    #[serde(default)]
    pub illustrative: bool,
}

/// What a decision is about, for the scheme of delegation and the money it may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionType {
    /// A change to a budget line's amount.
    BudgetRevision,
    /// Moving budget between service lines.
    Virement,
    /// Changing a partner's contribution to a fund.
    ContributionVariation,
    /// Approving a scheme to be paid for from a pooled fund.
    SchemeApproval,
    /// Awarding a contract paid for from a pooled fund.
    ContractAward,
    /// Anything else: policy, strategy, terms of reference, a recommendation.
    Policy,
}

impl DecisionType {
    pub const ALL: [DecisionType; 6] = [
        DecisionType::BudgetRevision,
        DecisionType::Virement,
        DecisionType::ContributionVariation,
        DecisionType::SchemeApproval,
        DecisionType::ContractAward,
        DecisionType::Policy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionType::BudgetRevision => "budget-revision",
            DecisionType::Virement => "virement",
            DecisionType::ContributionVariation => "contribution-variation",
            DecisionType::SchemeApproval => "scheme-approval",
            DecisionType::ContractAward => "contract-award",
            DecisionType::Policy => "policy",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DecisionType::BudgetRevision => "Budget revision",
            DecisionType::Virement => "Virement between service lines",
            DecisionType::ContributionVariation => "Contribution variation",
            DecisionType::SchemeApproval => "Scheme approval",
            DecisionType::ContractAward => "Contract award",
            DecisionType::Policy => "Policy or other decision",
        }
    }

    pub fn parse(text: &str) -> Option<DecisionType> {
        DecisionType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Whether a decision of this kind moves money, and so names an amount.
    pub fn moves_money(self) -> bool {
        self != DecisionType::Policy
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionLevelKind {
    /// Reserved to one partner (statutory, or by choice).
    Reserved,
    /// Joint: the partners' representatives together, by consensus of each partner.
    Joint,
    /// Delegated to an officer within the scheme of delegation.
    Delegated,
}

impl DecisionLevelKind {
    pub fn label(self) -> &'static str {
        match self {
            DecisionLevelKind::Reserved => "reserved to one partner",
            DecisionLevelKind::Joint => "joint, by consensus of the partners",
            DecisionLevelKind::Delegated => "delegated to an officer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub number: u32,
    pub title: String,
    #[serde(default)]
    pub scope: Option<String>,
    /// Renewed each year while the framework stays.
    #[serde(default)]
    pub annual: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub number: String,
    pub title: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub annual_review: bool,
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeTerms {
    /// Minimum written notice in months.
    pub months: u32,
    /// When notice may expire.
    #[serde(default)]
    pub expiring: NoticeExpiry,
    /// The partners may together agree another date.
    #[serde(default)]
    pub or_date_agreed_by_all: bool,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub illustrative: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeExpiry {
    /// On any day once the notice period has run.
    #[default]
    AnyDay,
    /// Only at the end of a financial year (31 March).
    EndOfFinancialYear,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewTerms {
    #[serde(default)]
    pub every_months: Option<u32>,
    #[serde(default)]
    pub first_due: Option<PartialDate>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub illustrative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeTerms {
    #[serde(default)]
    pub steps: Vec<DisputeStep>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeStep {
    pub name: String,
    #[serde(default)]
    pub days: Option<u32>,
    #[serde(default)]
    pub illustrative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintsTerms {
    pub protocol: String,
    #[serde(default)]
    pub handled_by: Option<String>,
    /// Days from receipt to acknowledge a complaint; Concordat assumes 3 where not given.
    #[serde(default)]
    pub acknowledge_days: Option<u32>,
    /// Days from receipt to respond in full; Concordat assumes 20 where not given.
    #[serde(default)]
    pub respond_days: Option<u32>,
}

/// One step of the budget-setting timetable for a financial year: a day and month, falling in
/// the twelve months before the year starts (April to December in the calendar year before,
/// January to March in the year it starts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimetableStep {
    pub what: String,
    pub month: u8,
    pub day: u8,
    #[serde(default)]
    pub illustrative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitTerms {
    #[serde(default)]
    pub overspend: Option<RiskRule>,
    #[serde(default)]
    pub underspend: Option<RiskRule>,
    #[serde(default)]
    pub text: Option<String>,
}

/// A decision to approve the agreement (or proposals for it) by a partner or one of its
/// bodies, as distinct from signing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approving body, e.g. "Cabinet" or "CCG Governing Body".
    pub by: String,
    /// The partner the body belongs to.
    #[serde(default)]
    pub partner: Option<String>,
    #[serde(default)]
    pub date: Option<PartialDate>,
    /// What was approved.
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub partner: String,
    /// Absent where the document leaves the signatory's name blank.
    #[serde(default)]
    pub name: Option<String>,
    pub title: String,
    /// Absent while the signature block is blank.
    #[serde(default)]
    pub date: Option<PartialDate>,
}

impl Agreement {
    pub fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id == id)
    }

    pub fn parties(&self) -> impl Iterator<Item = &Partner> {
        self.partners.iter().filter(|p| p.party)
    }

    pub fn fund(&self, id: &str) -> Option<&Fund> {
        self.funds.iter().find(|f| f.id == id)
    }

    /// The last day of the agreement if its term fixes one: the end date, or the start
    /// date plus the term in years (less a day).
    pub fn fixed_end(&self) -> Option<Date> {
        if let Some(end) = self.end_date {
            return end.exact();
        }
        let start = self.start_date?.exact()?;
        let years = self.term_years?;
        start
            .checked_add(jiff::Span::new().years(i64::from(years)))
            .ok()?
            .checked_sub(jiff::Span::new().days(1))
            .ok()
    }

    pub fn has_flexibility(&self, f: Flexibility) -> bool {
        self.flexibilities.contains(&f)
    }
}

/// One financial year's contributions to a fund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearContributions<'a> {
    pub total: Money,
    pub by_partner: Vec<(&'a str, Money)>,
}

impl Fund {
    /// Each financial year's total of contributions, with each partner's part.
    pub fn contributions_by_year(
        &self,
    ) -> Result<BTreeMap<FinancialYear, YearContributions<'_>>, crate::money::MoneyError> {
        let mut years: BTreeMap<FinancialYear, YearContributions<'_>> = BTreeMap::new();
        for c in &self.contributions {
            let entry = years.entry(c.year).or_insert(YearContributions {
                total: Money::ZERO,
                by_partner: Vec::new(),
            });
            entry.total = entry.total.checked_add(c.amount)?;
            entry.by_partner.push((c.partner.as_str(), c.amount));
        }
        Ok(years)
    }
}
