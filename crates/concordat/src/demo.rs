//! `concordat demo`: a fresh embedded database with the example agreements loaded, a year of
//! ledger for their funds, and their bodies' meetings and decisions.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use concordat_core::access::Role;
use concordat_io::parse_agreement;
use concordat_store::Actor;

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

pub async fn run(database_file: &Path, serve_on: Option<&str>) -> Result<ExitCode> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = database_file.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot replace {}", database_file.display()));
            }
        }
    }
    let url = format!("sqlite:{}", database_file.display());
    let store = concordat_store::open(&url).await?;
    let actor = Actor {
        name: "demo".to_string(),
    };
    let today = crate::today();
    outln!(
        "Concordat demo: {} example agreements into {}\n",
        EXAMPLES.len(),
        database_file.display()
    );
    for (name, text) in EXAMPLES {
        let file = parse_agreement(&format!("examples/agreements/{name}"), text.to_string());
        let Some(agreement) = file.agreement.clone().filter(|_| file.is_valid()) else {
            for f in file.errors() {
                eprintln!("{}", f.render(&file.name));
            }
            bail!("the embedded example {name} is not valid");
        };
        let load = concordat_app::agreement_load(&file, &agreement)?;
        let outcome = store
            .load_agreement(&actor, &jiff::Timestamp::now().to_string(), load)
            .await?;
        outln!("{}", crate::describe_outcome(&agreement.id, &outcome));
        outln!("{}", crate::summary::render(&agreement, today));
    }
    let ledgers = database_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("concordat-demo-ledgers");
    demo_ledgers(store.as_ref(), &actor, &ledgers).await?;
    demo_aligned(store.as_ref(), &actor, &ledgers).await?;
    crate::demo_governance::run(store.as_ref(), &actor).await?;
    let report = store.verify_audit().await?;
    outln!(
        "Audit chain: {} records, {}.",
        report.records_checked,
        if report.first_mismatch.is_none() {
            "intact"
        } else {
            "BROKEN"
        }
    );
    let sign_ins = demo_accounts(store.as_ref(), &actor).await?;
    outln!("\nTry:");
    outln!("  concordat agreement list --database {url}");
    outln!(
        "  concordat monitor --agreement hertfordshire --fund mental-health --period 2001/02-P06 --database {url}"
    );
    outln!(
        "  concordat statement --agreement hertfordshire --fund mental-health --quarter 2001/02-Q2 --format pdf --database {url}"
    );
    outln!(
        "  concordat settle --agreement hertfordshire --fund mental-health --year 2001/02 --database {url}"
    );
    outln!(
        "  concordat monitor --agreement halton-st-helens --period 2008/09-P09 --by partner --database {url}"
    );
    outln!("  concordat decision list --agreement hertfordshire --database {url}");
    outln!(
        "  concordat meeting show --agreement hertfordshire --meeting JCPB-2001-10 --database {url}"
    );
    outln!("  concordat calendar --agreement halton-st-helens --from 2008/09 --database {url}");
    let Some(bind) = serve_on else {
        return Ok(ExitCode::SUCCESS);
    };
    let address = concordat_web::parse_bind(bind)?;
    outln!(
        "\nThe web application is at http://{address}/ (Ctrl-C stops it). Demo sign-ins, each with the password {DEMO_PASSWORD}:"
    );
    for (username, what) in &sign_ins {
        outln!("  {username:<14} {what}");
    }
    crate::accounts_cmd::serve(store, bind, false, false).await
}

/// The demo accounts' password (it meets the password rules).
const DEMO_PASSWORD: &str = "partnership-demo";

/// The demo's users: one for each role, all of Hertfordshire County Council, and one of an
/// organisation party to nothing, to show that it sees nothing.
const DEMO_USERS: [(&str, &str, Role); 7] = [
    ("viewer", "Val Viewer", Role::Viewer),
    ("finance", "Fran Finance", Role::FinanceOfficer),
    ("pool-manager", "Pat Pool-Manager", Role::PoolManager),
    ("secretary", "Sam Secretary", Role::BoardSecretary),
    ("member", "Mo Member", Role::BoardMember),
    ("admin", "Ada Admin", Role::Administrator),
    ("auditor", "Aud Auditor", Role::Auditor),
];

/// An organisation key from a partner's name: "Hertfordshire County Council" →
/// `hertfordshire-county-council`.
fn org_key(name: &str) -> String {
    let mut key = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_lowercase());
        } else if !key.ends_with('-') && !key.is_empty() {
            key.push('-');
        }
    }
    key.trim_end_matches('-').to_string()
}

/// Organisations for every party of the example agreements, and the demo users with their
/// roles. Returns each sign-in with what it can do.
async fn demo_accounts(
    store: &dyn concordat_store::Store,
    actor: &Actor,
) -> Result<Vec<(String, String)>> {
    use concordat_store::AccountChange;
    let at = jiff::Timestamp::now().to_string();
    let mut orgs = std::collections::BTreeSet::new();
    let mut home_org = None;
    for summary in store.list_agreements().await? {
        let agreement =
            concordat_app::finance::stored_agreement(store, &summary.partnership_key).await?;
        for partner in agreement.parties() {
            let key = org_key(&partner.name);
            if orgs.insert(key.clone()) {
                store
                    .change_accounts(
                        actor,
                        &at,
                        AccountChange::AddOrganisation(concordat_store::OrganisationRow {
                            org_key: key.clone(),
                            name: partner.name.clone(),
                        }),
                    )
                    .await?;
            }
            store
                .change_accounts(
                    actor,
                    &at,
                    AccountChange::LinkParty {
                        org_key: key.clone(),
                        partnership_key: agreement.id.clone(),
                        partner_id: partner.id.clone(),
                    },
                )
                .await?;
            if agreement.id == "hertfordshire" && home_org.is_none() {
                home_org = Some(key);
            }
        }
    }
    let home = home_org.context("the Hertfordshire example has no parties")?;
    let outsider_org = "elsewhere-district-council";
    store
        .change_accounts(
            actor,
            &at,
            AccountChange::AddOrganisation(concordat_store::OrganisationRow {
                org_key: outsider_org.into(),
                name: "Elsewhere District Council".into(),
            }),
        )
        .await?;
    let agreements = store.list_agreements().await?;
    let home_parties: std::collections::BTreeSet<String> = store
        .parties(&home)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let mut sign_ins = Vec::new();
    for (username, name, role) in DEMO_USERS {
        crate::accounts_cmd::add_user(store, actor, &at, username, name, &home, DEMO_PASSWORD)
            .await?;
        for a in &agreements {
            let party = home_parties.contains(&a.partnership_key);
            store
                .change_accounts(
                    actor,
                    &at,
                    AccountChange::Grant(concordat_store::GrantRow {
                        partnership_key: a.partnership_key.clone(),
                        username: username.into(),
                        role: role.as_str().into(),
                        granted_at: String::new(),
                        granted_by: String::new(),
                        outside_reason: (!party).then(|| {
                            "demonstration account: sees every example partnership".to_string()
                        }),
                    }),
                )
                .await?;
        }
        sign_ins.push((
            username.to_string(),
            format!("{} in every example partnership", role.label()),
        ));
    }
    crate::accounts_cmd::add_user(
        store,
        actor,
        &at,
        "outsider",
        "Oli Outsider",
        outsider_org,
        DEMO_PASSWORD,
    )
    .await?;
    sign_ins.push((
        "outsider".into(),
        "of Elsewhere District Council, party to none: sees nothing".into(),
    ));
    Ok(sign_ins)
}

/// The identity mapping for the generator's files: they already use the agreement's ids. Its
/// `[columns]` table comes last, so a `locality` column can be added by appending a line.
const DEMO_MAPPING: &str = include_str!("../../../examples/mappings/concordat-ledger.toml");

/// Postings generated for each fund's year.
const DEMO_POSTINGS: u64 = 12_000;

/// Service lines the demo budgets and spends on.
const DEMO_SERVICES: usize = 8;

/// Each demo fund's spend against its contributions, in basis points: some over, some under,
/// so monitoring, the risk share and the settlement all have something to show.
const DEMO_SPEND_BASIS_POINTS: [i64; 4] = [10_250, 9_850, 10_080, 9_700];

/// A generated year of ledger for every example fund with contributions: budgets set from the
/// contributions (shared across service lines in proportion to the spend), the ledger imported
/// through the same path as `concordat import`, and the first half-year closed.
async fn demo_ledgers(
    store: &dyn concordat_store::Store,
    actor: &Actor,
    folder: &Path,
) -> Result<()> {
    use concordat_core::budget::BudgetLine;
    use concordat_ledger::generate::{GEN_LEDGER_SERVICES, LedgerSpec, generate};
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let mapping = folder.join("mapping.toml");
    std::fs::write(&mapping, DEMO_MAPPING)
        .with_context(|| format!("cannot write {}", mapping.display()))?;
    let services: Vec<String> = GEN_LEDGER_SERVICES[..DEMO_SERVICES]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut n = 0usize;
    outln!("Generated ledgers (in {}):", folder.display());
    for agreement in store.list_agreements().await? {
        let agreement =
            concordat_app::finance::stored_agreement(store, &agreement.partnership_key).await?;
        let mut closed_years = Vec::new();
        for fund in &agreement.funds {
            let Some(year) = fund.contributions.first().map(|c| c.year) else {
                continue;
            };
            let mut partners: Vec<(String, i64)> = Vec::new();
            for c in fund.contributions.iter().filter(|c| c.year == year) {
                match partners.iter_mut().find(|(p, _)| *p == c.partner) {
                    Some((_, a)) => *a += c.amount.pence(),
                    None => partners.push((c.partner.clone(), c.amount.pence())),
                }
            }
            let contributions: i64 = partners.iter().map(|p| p.1).sum();
            if contributions <= 0 {
                continue;
            }
            let weights: Vec<(String, u32)> = partners
                .iter()
                .map(|(p, a)| {
                    (
                        p.clone(),
                        u32::try_from((a / 100_000).max(1)).unwrap_or(u32::MAX),
                    )
                })
                .collect();
            let mut spec = LedgerSpec {
                year,
                funds: vec![(fund.id.clone(), 1)],
                services: services.clone(),
                partners: weights,
                localities: Vec::new(),
                postings: DEMO_POSTINGS,
                seed: 20_240_401 + n as u64,
                reference_prefix: format!("{}-{}-", agreement.id, fund.id),
                median_pence: 45_000,
            };
            // The amounts scale with the median: one dry run finds the median that makes the
            // year's spend land where the demo wants it.
            let dry = generate(&spec, std::io::sink())?;
            let target = i128::from(contributions)
                * i128::from(DEMO_SPEND_BASIS_POINTS[n % DEMO_SPEND_BASIS_POINTS.len()])
                / 10_000;
            let dry_total = i128::from(dry.total.pence()).max(1);
            spec.median_pence = i64::try_from(i128::from(spec.median_pence) * target / dry_total)
                .context("demo median")?;
            let file = folder.join(format!("{}-{}.csv", agreement.id, fund.id));
            let made = generate(
                &spec,
                std::io::BufWriter::new(
                    std::fs::File::create(&file)
                        .with_context(|| format!("cannot write {}", file.display()))?,
                ),
            )?;
            // Budgets: the contributions, shared across the service lines by their spend.
            let line_spend: Vec<i64> = services
                .iter()
                .map(|s| {
                    made.by_fund_service
                        .get(&(fund.id.clone(), s.clone()))
                        .map_or(0, |m| m.pence().max(0))
                })
                .collect();
            let budgets = concordat_core::allocate(
                concordat_core::Money::from_pence(contributions),
                &line_spend,
            )?;
            for (service, annual) in services.iter().zip(budgets) {
                let line = BudgetLine::even(&fund.id, year, service, None, None, annual);
                store
                    .set_budget(
                        actor,
                        &jiff::Timestamp::now().to_string(),
                        concordat_store::BudgetRow {
                            partnership_key: agreement.id.clone(),
                            fund: fund.id.clone(),
                            year_start: i64::from(year.start_year()),
                            service_line: service.clone(),
                            partner: None,
                            locality: None,
                            period_amounts_pence: line
                                .gross_by_period()?
                                .iter()
                                .map(|m| m.pence())
                                .collect(),
                            client_income_pence: 0,
                            reason:
                                "demo: the year's contributions shared across the service lines"
                                    .into(),
                            authority: None,
                        },
                    )
                    .await?;
            }
            if let Some(outcome) =
                import_demo_file(store, actor, &agreement, &file, &mapping).await?
            {
                outln!(
                    "  {} {} {year}: {} postings, {} spent against {} contributed",
                    agreement.id,
                    fund.id,
                    concordat_app::import::grouped(outcome.rows),
                    concordat_core::Money::from_pence(outcome.control_total_pence),
                    concordat_core::Money::from_pence(contributions)
                );
            }
            if !closed_years.contains(&year) {
                closed_years.push(year);
            }
            n += 1;
        }
        // The first half-year is closed, as a pool manager would have done by the autumn.
        for year in closed_years {
            for period in 1..=6 {
                store
                    .close_period(
                        actor,
                        &jiff::Timestamp::now().to_string(),
                        &agreement.id,
                        i64::from(year.start_year()),
                        period,
                    )
                    .await?;
            }
        }
    }
    if n == 0 {
        outln!("  (no example fund has contributions to generate a ledger for)");
    }
    outln!();
    Ok(())
}

/// The Halton and St Helens lead-commissioning partners' own budget lines for the demo:
/// (partner, service line, annual budget in pounds, localities its spend is in). The document
/// gives no figures (its section 8 was left out), so these are illustrative.
pub(crate) const ALIGNED_LINES: [(&str, &str, i64, &[&str]); 7] = [
    ("halton", "Older people", 14_200_000, &["halton"]),
    ("halton", "Learning disability", 9_600_000, &["halton"]),
    ("st-helens", "Older people", 18_900_000, &["st-helens"]),
    (
        "st-helens",
        "Learning disability",
        11_300_000,
        &["st-helens"],
    ),
    (
        "st-helens",
        "Alcohol and substance misuse",
        2_400_000,
        &["st-helens"],
    ),
    ("pct", "Mental health", 21_500_000, &["halton", "st-helens"]),
    (
        "pct",
        "Alcohol and substance misuse",
        3_100_000,
        &["halton", "st-helens"],
    ),
];

/// Two journals a pool manager would want flagged: St Helens money spent in Halton (against
/// the ring-fence) and Halton money paying for the PCT's mental health line (a cross-subsidy).
const ALIGNED_JOURNALS: &str = "date,fund,service,partner,locality,subjective,supplier,reference,amount
2008-11-14,aligned-budgets,Older people,st-helens,halton,5101,Widnes Homecare Ltd,HSH-J-0001,18450.00
2008-12-05,aligned-budgets,Mental health,halton,halton,5201,Mersey Support CIC,HSH-J-0002,7200.00
";

/// Halton and St Helens, 2008/09: each partner's own ledger extract, imported one file per
/// partner as their finance teams would send them, against each partner's own budget lines,
/// so monitoring by partner, the cross-subsidy check and the ring-fences have figures.
async fn demo_aligned(
    store: &dyn concordat_store::Store,
    actor: &Actor,
    folder: &Path,
) -> Result<()> {
    use concordat_core::budget::BudgetLine;
    use concordat_core::{FinancialYear, Money};
    use concordat_ledger::generate::{LedgerSpec, generate};
    let key = "halton-st-helens";
    let fund = "aligned-budgets";
    let Ok(agreement) = concordat_app::finance::stored_agreement(store, key).await else {
        return Ok(());
    };
    let year = FinancialYear::starting(2008).expect("2008/09");
    let mapping = folder.join("mapping-with-locality.toml");
    std::fs::write(&mapping, format!("{DEMO_MAPPING}locality = \"locality\"\n"))
        .with_context(|| format!("cannot write {}", mapping.display()))?;
    let at = || jiff::Timestamp::now().to_string();
    outln!(
        "Aligned budgets ({}, 2008/09, illustrative figures):",
        agreement.title
    );
    for (n, partner) in ["halton", "st-helens", "pct"].into_iter().enumerate() {
        let lines: Vec<_> = ALIGNED_LINES.iter().filter(|l| l.0 == partner).collect();
        let mut localities: Vec<String> = Vec::new();
        for l in &lines {
            for loc in l.3 {
                if !localities.iter().any(|x| x == loc) {
                    localities.push(loc.to_string());
                }
            }
        }
        let budget_pence: i64 = lines.iter().map(|l| l.2 * 100).sum();
        let mut spec = LedgerSpec {
            year,
            funds: vec![(fund.to_string(), 1)],
            services: lines.iter().map(|l| l.1.to_string()).collect(),
            partners: vec![(partner.to_string(), 1)],
            localities,
            postings: DEMO_POSTINGS / 2,
            seed: 20_080_401 + n as u64,
            reference_prefix: format!("HSH-{partner}-"),
            median_pence: 45_000,
        };
        let dry = generate(&spec, std::io::sink())?;
        let target = i128::from(budget_pence) * i128::from(DEMO_SPEND_BASIS_POINTS[n]) / 10_000;
        spec.median_pence = i64::try_from(
            i128::from(spec.median_pence) * target / i128::from(dry.total.pence().max(1)),
        )
        .context("demo median")?;
        let file = folder.join(format!("{key}-{partner}.csv"));
        generate(
            &spec,
            std::io::BufWriter::new(
                std::fs::File::create(&file)
                    .with_context(|| format!("cannot write {}", file.display()))?,
            ),
        )?;
        for l in &lines {
            let line = BudgetLine::even(
                fund,
                year,
                l.1,
                Some(partner),
                None,
                Money::from_pence(l.2 * 100),
            );
            store
                .set_budget(
                    actor,
                    &at(),
                    concordat_store::BudgetRow {
                        partnership_key: key.into(),
                        fund: fund.into(),
                        year_start: i64::from(year.start_year()),
                        service_line: l.1.into(),
                        partner: Some(partner.into()),
                        locality: None,
                        period_amounts_pence: line
                            .gross_by_period()?
                            .iter()
                            .map(|m| m.pence())
                            .collect(),
                        client_income_pence: 0,
                        reason: "demo: illustrative budget (the agreement gives no figures)".into(),
                        authority: None,
                    },
                )
                .await?;
        }
        print_imported(
            &file,
            import_demo_file(store, actor, &agreement, &file, &mapping).await?,
        );
    }
    let journals = folder.join(format!("{key}-journals.csv"));
    std::fs::write(&journals, ALIGNED_JOURNALS)
        .with_context(|| format!("cannot write {}", journals.display()))?;
    print_imported(
        &journals,
        import_demo_file(store, actor, &agreement, &journals, &mapping).await?,
    );
    outln!();
    Ok(())
}

/// Imports a generated file through the same path as `concordat import`; what was imported,
/// or `None` if the file was already there.
async fn import_demo_file(
    store: &dyn concordat_store::Store,
    actor: &Actor,
    agreement: &concordat_core::Agreement,
    file: &Path,
    mapping: &Path,
) -> Result<Option<concordat_store::ImportOutcome>> {
    let imported = concordat_app::import::import(
        store,
        actor,
        &jiff::Timestamp::now().to_string(),
        concordat_app::import::ImportRequest {
            agreement,
            file,
            mapping,
            max_errors: 10,
            progress: None,
            file_label: None,
        },
    )
    .await?;
    Ok(match imported {
        concordat_app::import::Imported::New { outcome, .. } => Some(outcome),
        concordat_app::import::Imported::AlreadyImported { .. } => None,
    })
}

fn print_imported(file: &Path, outcome: Option<concordat_store::ImportOutcome>) {
    if let Some(outcome) = outcome {
        outln!(
            "  {}: {} postings, {}",
            file.file_name().unwrap_or_default().to_string_lossy(),
            concordat_app::import::grouped(outcome.rows),
            concordat_core::Money::from_pence(outcome.control_total_pence)
        );
    }
}
