//! The pages: sign-in and out, the agreement register, an agreement, and its funds. Forms
//! that change things are in `manage`.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use concordat_app::finance;
use concordat_core::access::Permission;
use concordat_core::agreement::{Agreement, FundKind};
use concordat_core::monitor::{Dimension, ForecastMethod};
use concordat_core::{FinancialYear, Period, Quarter};
use serde::Deserialize;

use crate::auth::{self, Principal, SESSION_COOKIE, SIGN_IN_COOKIE, SignInOutcome, SignedIn};
use crate::error::WebError;
use crate::routes::{Access, Route};
use crate::views::{
    Block, Chrome, FieldKind, Link, Page, Section, cell, field, get_form, link, num, post_form,
    section, table, untitled,
};
use crate::{AppState, convert};

pub(crate) const HTML: &[&str] = &["text/html"];

/// A route of a page: HTML out, no query or body documented.
macro_rules! page {
    ($method:literal, $path:literal, $summary:literal, $access:expr, $handler:expr) => {
        $crate::routes::Route {
            doc: $crate::routes::RouteDoc {
                method: $method,
                path: $path,
                summary: $summary,
                access: $access,
                query: &[],
                body: None,
                responds: $crate::pages::HTML,
            },
            handler: || $handler,
        }
    };
}

pub(crate) use page;

pub(crate) static ROUTES: &[Route] = &[
    page!(
        "GET",
        "/",
        "Home: the register, or sign in",
        Access::Public,
        get(home)
    ),
    page!(
        "GET",
        "/health",
        "Health check",
        Access::Public,
        get(health)
    ),
    page!(
        "GET",
        "/sign-in",
        "Sign-in form",
        Access::Public,
        get(sign_in_form)
    ),
    page!("POST", "/sign-in", "Sign in", Access::Public, post(sign_in)),
    page!(
        "POST",
        "/sign-out",
        "Sign out",
        Access::SignedIn,
        post(sign_out)
    ),
    page!(
        "GET",
        "/agreements",
        "Agreement register",
        Access::SignedIn,
        get(register)
    ),
    page!(
        "GET",
        "/agreements/{key}",
        "An agreement",
        Access::Partnership(Permission::Read),
        get(agreement_page)
    ),
    page!(
        "GET",
        "/agreements/{key}/funds/{fund}",
        "A fund's monitoring",
        Access::Partnership(Permission::Read),
        get(fund_page)
    ),
    page!(
        "GET",
        "/agreements/{key}/funds/{fund}/chart.svg",
        "A fund's charts as SVG",
        Access::Partnership(Permission::Read),
        get(fund_chart)
    ),
    page!(
        "GET",
        "/agreements/{key}/funds/{fund}/postings",
        "Postings behind a figure",
        Access::Partnership(Permission::Read),
        get(postings_page)
    ),
    page!(
        "GET",
        "/agreements/{key}/funds/{fund}/statements",
        "A statement, on screen",
        Access::Partnership(Permission::Read),
        get(statement_page)
    ),
    page!(
        "GET",
        "/agreements/{key}/funds/{fund}/statements/download",
        "A statement as PDF, Excel or CSV",
        Access::Partnership(Permission::Read),
        get(statement_download)
    ),
    page!(
        "GET",
        "/agreements/{key}/imports",
        "Ledger imports and the upload form",
        Access::Partnership(Permission::Read),
        get(crate::manage::imports_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/imports",
        "Upload a ledger extract",
        Access::Partnership(Permission::ImportLedger),
        post(crate::manage::import_upload).layer(axum::extract::DefaultBodyLimit::max(
            crate::UPLOAD_LIMIT_BYTES
        ))
    ),
    page!(
        "GET",
        "/agreements/{key}/imports/jobs/{job}",
        "An import's progress and result",
        Access::Partnership(Permission::Read),
        get(crate::manage::import_job)
    ),
    page!(
        "GET",
        "/agreements/{key}/funds/{fund}/budgets",
        "Budgets and revisions",
        Access::Partnership(Permission::Read),
        get(crate::manage::budgets_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/funds/{fund}/budgets",
        "Set or revise a budget line",
        Access::Partnership(Permission::ManageBudgets),
        post(crate::manage::budget_set)
    ),
    page!(
        "GET",
        "/agreements/{key}/periods",
        "Periods and their close",
        Access::Partnership(Permission::Read),
        get(crate::manage::periods_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/periods",
        "Close a period",
        Access::Partnership(Permission::ClosePeriod),
        post(crate::manage::period_close)
    ),
    page!(
        "GET",
        "/agreements/{key}/audit",
        "The audit log",
        Access::Partnership(Permission::ReadAudit),
        get(crate::manage::audit_page)
    ),
    page!(
        "GET",
        "/agreements/{key}/calendar",
        "What the agreement promises with a date",
        Access::Partnership(Permission::Read),
        get(calendar_page)
    ),
    page!(
        "GET",
        "/agreements/{key}/calendar.ics",
        "The same, as an iCalendar file",
        Access::Partnership(Permission::Read),
        get(calendar_ics)
    ),
    page!(
        "POST",
        "/agreements/{key}/versions",
        "Upload a new version of the agreement file",
        Access::Partnership(Permission::ChangeAgreement),
        post(crate::manage::version_upload)
    ),
    page!(
        "POST",
        "/agreements/{key}/versions/accept",
        "Accept an uploaded version",
        Access::Partnership(Permission::ChangeAgreement),
        post(crate::manage::version_accept)
    ),
    page!(
        "GET",
        "/agreements/{key}/tokens",
        "API tokens",
        Access::Partnership(Permission::ManageTokens),
        get(crate::manage::tokens_page)
    ),
    page!(
        "POST",
        "/agreements/{key}/tokens",
        "Create or revoke an API token",
        Access::Partnership(Permission::ManageTokens),
        post(crate::manage::token_change)
    ),
];

pub(crate) fn routes() -> axum::Router<AppState> {
    crate::routes::build(ROUTES)
}

async fn home(user: Option<SignedIn>) -> Redirect {
    match user {
        Some(_) => Redirect::to("/agreements"),
        None => Redirect::to("/sign-in"),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    // One small read: the accounts chain's head.
    match state
        .store
        .audit_head_seq(concordat_store::ACCOUNTS_CHAIN)
        .await
    {
        Ok(_) => Json(serde_json::json!({"status": "ok", "database": state.store.backend()}))
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"status": "unavailable", "database": state.store.backend()}),
                ),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
}

/// Only a path on this site: never another host (`//evil`, `https://…`).
fn safe_next(next: &str) -> String {
    // Browsers drop tabs and line breaks from a URL and read `\` as `/`, so `/<tab>/host`
    // would become `//host`: refuse control characters and backslashes outright.
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if local {
        next.to_string()
    } else {
        "/agreements".into()
    }
}

fn sign_in_page(
    state: &AppState,
    next: &str,
    errors: Vec<(String, String)>,
    username: &str,
    banner: Option<String>,
) -> Result<Response, WebError> {
    let token = auth::new_token();
    let mut page = Page::new(Chrome::anonymous("Sign in"), "Sign in to Concordat");
    page.errors = errors.clone();
    page.success = banner;
    let error_for = |id: &str| {
        errors
            .iter()
            .find(|(_, target)| target == id)
            .map(|(m, _)| m.clone())
    };
    let form = post_form(
        "/sign-in".into(),
        &token,
        "Sign in",
        vec![
            field("username", "User name", FieldKind::Text)
                .value(username)
                .error(error_for("username")),
            field("password", "Password", FieldKind::Password).error(error_for("password")),
            field("next", "", FieldKind::Hidden).value(safe_next(next)),
        ],
    );
    page = page.section(untitled("sign-in").with(Block::Form(form)));
    let html = page.html()?;
    Ok((
        [(
            header::SET_COOKIE,
            auth::set_cookie(state, SIGN_IN_COOKIE, &token, 3600),
        )],
        html,
    )
        .into_response())
}

async fn sign_in_form(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> Result<Response, WebError> {
    let banner = q.signed_out.map(|_| "You have signed out".to_string());
    sign_in_page(&state, &q.next, Vec::new(), "", banner)
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, WebError> {
    let expected = auth::cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if expected.is_empty() || !auth::same_secret(expected, &form.csrf) {
        return Err(WebError::BadCsrf);
    }
    let mut errors = Vec::new();
    if form.username.trim().is_empty() {
        errors.push(("Enter your user name".to_string(), "username".to_string()));
    }
    if form.password.is_empty() {
        errors.push(("Enter your password".to_string(), "password".to_string()));
    }
    if !errors.is_empty() {
        return sign_in_page(&state, &form.next, errors, &form.username, None)
            .map(|r| (StatusCode::BAD_REQUEST, r).into_response());
    }
    match auth::sign_in(&state, &form.username, &form.password).await? {
        SignInOutcome::SignedIn { session_token } => {
            let max_age = state.config.session_hours * 3600;
            Ok((
                axum::response::AppendHeaders([
                    (
                        header::SET_COOKIE,
                        auth::set_cookie(&state, SESSION_COOKIE, &session_token, max_age),
                    ),
                    (
                        header::SET_COOKIE,
                        auth::set_cookie(&state, SIGN_IN_COOKIE, "", 0),
                    ),
                ]),
                Redirect::to(&safe_next(&form.next)),
            )
                .into_response())
        }
        SignInOutcome::WrongDetails => sign_in_page(
            &state,
            &form.next,
            vec![(
                "The user name or password is not right".into(),
                "username".into(),
            )],
            &form.username,
            None,
        )
        .map(|r| (StatusCode::UNAUTHORIZED, r).into_response()),
        SignInOutcome::Throttled { minutes } => sign_in_page(
            &state,
            &form.next,
            vec![(
                format!(
                    "There have been too many failed attempts to sign in as this user. Wait {minutes} minute{} and try again",
                    if minutes == 1 { "" } else { "s" }
                ),
                "username".into(),
            )],
            &form.username,
            None,
        )
        .map(|r| (StatusCode::TOO_MANY_REQUESTS, r).into_response()),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    p.check_csrf(&form.csrf)?;
    if let auth::Via::Session(s) = &p.via {
        state
            .store
            .change_accounts(
                &p.actor(),
                &state.now(),
                concordat_store::AccountChange::EndSession {
                    token_hash: s.token_hash.clone(),
                },
            )
            .await?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            auth::set_cookie(&state, SESSION_COOKIE, "", 0),
        )],
        Redirect::to("/sign-in?signed_out=1"),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Agreements

/// The agreement `key` if the principal may see it; 404 otherwise, whether or not it exists.
pub(crate) async fn visible_agreement(
    state: &AppState,
    p: &Principal,
    key: &str,
    permission: Permission,
) -> Result<std::sync::Arc<Agreement>, WebError> {
    Ok(visible_agreement_at(state, p, key, permission).await?.1)
}

/// The same, with the partnership's audit head it was read at (for the monitoring cache).
pub(crate) async fn visible_agreement_at(
    state: &AppState,
    p: &Principal,
    key: &str,
    permission: Permission,
) -> Result<(i64, std::sync::Arc<Agreement>), WebError> {
    p.require(key, permission)?;
    crate::cache::agreement(state, key)
        .await?
        .ok_or(WebError::NotFound)
}

/// The agreement's fund `id`; a fund it does not have is not found.
pub(crate) fn fund_of<'a>(
    a: &'a Agreement,
    id: &str,
) -> Result<&'a concordat_core::agreement::Fund, WebError> {
    a.fund(id).ok_or(WebError::NotFound)
}

fn partner_name(a: &Agreement, id: &str) -> String {
    finance::partner_name(a, id).to_string()
}

/// The next thing the agreement promises, from `today` (see [`concordat_core::obligations`]);
/// nothing for an agreement already ended, or not in force and with no funds.
fn next_obligation(a: &Agreement, today: jiff::civil::Date) -> String {
    use concordat_core::agreement::Status;
    let end = a.fixed_end();
    if a.status == Status::Ended || end.is_some_and(|e| e < today) {
        return match end {
            Some(e) => format!("none: the agreement ended on {e}"),
            None => "none: the agreement has ended".into(),
        };
    }
    // Funds run (and are reported on) as soon as the partners operate them, even where the
    // agreement is still being approved; an agreement with no funds has nothing due yet.
    if !a.status.is_in_force() && a.funds.is_empty() {
        return format!("none yet: the agreement is {}", a.status.label());
    }
    // The dates themselves are the core's, as on the calendar page.
    let year = FinancialYear::containing(today);
    let coming: Vec<_> = concordat_core::obligations::obligations(a, year, year.next())
        .into_iter()
        .filter(|o| o.due >= today)
        .collect();
    match coming.first() {
        None => "none recorded".into(),
        Some(first) => {
            let same_day = coming.iter().filter(|o| o.due == first.due).count();
            let more = match same_day {
                1 => String::new(),
                n => format!(" (and {} more that day)", n - 1),
            };
            format!("{}: {}{more}", first.due, first.title)
        }
    }
}

fn term_text(a: &Agreement) -> String {
    let start = a.start_date.map(|d| format!("from {d}"));
    let end = match (a.end_date, a.term_years) {
        (Some(end), _) => format!("to {end}"),
        (None, Some(y)) => format!("for {y} year{}", if y == 1 { "" } else { "s" }),
        (None, None) => "with no fixed end".into(),
    };
    match start {
        Some(s) => format!("{s} {end}"),
        None => end,
    }
}

fn status_colour(a: &Agreement) -> &'static str {
    use concordat_core::agreement::Status;
    match a.status {
        Status::Active => "green",
        Status::InNotice => "orange",
        Status::Ended => "grey",
        Status::Draft => "blue",
        Status::Approved | Status::Signed => "turquoise",
    }
}

async fn register(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
) -> Result<Response, WebError> {
    let today = state.today();
    let mut rows = Vec::new();
    for summary in state.store.list_agreements().await? {
        if p.roles_in(&summary.partnership_key).is_err() {
            continue;
        }
        let Some(stored) = state.store.get_agreement(&summary.partnership_key).await? else {
            continue;
        };
        let Ok(a) = serde_json::from_value::<Agreement>(stored.model_json) else {
            continue;
        };
        let parties: Vec<String> = a.parties().map(|x| x.name.clone()).collect();
        let flex: Vec<&str> = a.flexibilities.iter().map(|f| f.label()).collect();
        rows.push(vec![
            cell(a.title.clone()).link(format!("/agreements/{}", a.id)),
            cell(a.status.label()).tag(status_colour(&a)),
            cell(parties.join("; ")),
            cell(if flex.is_empty() {
                "none".into()
            } else {
                flex.join("; ")
            }),
            cell(term_text(&a)),
            cell(next_obligation(&a, today)),
        ]);
    }
    let mut page = Page::new(Chrome::for_user("Partnerships", &p), "Partnerships");
    if rows.is_empty() {
        page = page.section(untitled("none").with(Block::Para(
            "You have no role in any partnership yet. Ask a partnership's administrator to grant you one.".into(),
        )));
    } else {
        page = page.section(untitled("register").with(Block::Table(table(
            "The partnerships you can see",
            vec![
                cell("Agreement"),
                cell("Status"),
                cell("Parties"),
                cell("Flexibilities"),
                cell("Term"),
                cell("Next obligation"),
            ],
            rows,
        ))));
    }
    Ok(page.html()?.into_response())
}

#[derive(Deserialize, Default)]
struct AgreementQuery {
    served: Option<String>,
}

pub(crate) fn agreement_crumbs(a: &Agreement) -> Vec<Link> {
    vec![
        link("Partnerships", "/agreements"),
        link(
            a.short_title.clone().unwrap_or_else(|| a.title.clone()),
            format!("/agreements/{}", a.id),
        ),
    ]
}

async fn agreement_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<AgreementQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let stored = state
        .store
        .get_agreement(&key)
        .await?
        .ok_or(WebError::NotFound)?;
    let roles: Vec<&str> = p.roles_in(&key)?.iter().map(|r| r.label()).collect();
    let mut page = Page::new(
        Chrome::for_user(&a.title, &p).crumbs(vec![link("Partnerships", "/agreements")]),
        a.title.clone(),
    )
    .caption(format!(
        "Agreement {} · version {}",
        a.id, stored.current_version
    ));
    page.lead = a.summary.clone();

    let basis: Vec<&str> = a.legal_basis.iter().map(|b| b.label()).collect();
    let flex: Vec<&str> = a.flexibilities.iter().map(|f| f.label()).collect();
    let mut about = vec![
        ("Status".to_string(), a.status.label().to_string()),
        ("Legal basis".into(), basis.join("; ")),
        ("Term".into(), term_text(&a)),
        (
            "Flexibilities".into(),
            if flex.is_empty() {
                "none".into()
            } else {
                flex.join("; ")
            },
        ),
        ("Next obligation".into(), next_obligation(&a, state.today())),
        ("Your roles".into(), roles.join(", ")),
    ];
    if let Some(note) = &a.illustrative_note {
        about.push(("Illustrative figures".into(), note.clone()));
    }
    page = page.section(section("About this agreement", "about").with(Block::Summary(about)));

    // Where to go from here.
    let mut links = Vec::new();
    for f in &a.funds {
        links.push(link(
            format!("{} (monitoring)", f.name),
            format!("/agreements/{key}/funds/{}", f.id),
        ));
    }
    links.push(link("Ledger imports", format!("/agreements/{key}/imports")));
    links.push(link(
        "Obligations calendar",
        format!("/agreements/{key}/calendar"),
    ));
    links.push(link(
        "Periods and period close",
        format!("/agreements/{key}/periods"),
    ));
    if p.may(&key, Permission::ReadAudit) {
        links.push(link("Audit log", format!("/agreements/{key}/audit")));
    }
    if p.may(&key, Permission::ManageTokens) {
        links.push(link("API tokens", format!("/agreements/{key}/tokens")));
    }
    page = page.section(section("Funds and work", "work").with(Block::Links(links)));
    page = page.section(crate::governance::agreement_links(&key));

    // Parties and officers.
    let mut rows = Vec::new();
    for partner in &a.partners {
        let officers: Vec<String> = partner
            .people
            .iter()
            .map(|person| match &person.name {
                Some(n) => format!("{n}, {}", person.title),
                None => person.title.clone(),
            })
            .collect();
        rows.push(vec![
            cell(partner.name.clone()),
            cell(if partner.party {
                partner.kind.label().to_string()
            } else {
                format!(
                    "{} (not a party)",
                    partner.role.as_deref().unwrap_or(partner.kind.label())
                )
            }),
            cell(if officers.is_empty() {
                "none named".into()
            } else {
                officers.join("; ")
            }),
        ]);
    }
    page = page.section(
        section("Parties and officers", "parties").with(Block::Table(table(
            "Partners",
            vec![cell("Partner"), cell("Kind"), cell("Officers")],
            rows,
        ))),
    );

    if !a.care_groups.is_empty() || !a.commissioning_areas.is_empty() {
        let mut sec = section("Care groups and commissioning", "care-groups");
        if !a.care_groups.is_empty() {
            sec.push(Block::Table(table(
                "Care groups",
                vec![cell("Care group"), cell("Ages"), cell("Note")],
                a.care_groups
                    .iter()
                    .map(|g| {
                        let ages = match (g.min_age, g.max_age) {
                            (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
                            (Some(lo), None) => format!("{lo} and over"),
                            (None, Some(hi)) => format!("up to {hi}"),
                            (None, None) => g.age_note.clone().unwrap_or_else(|| "all ages".into()),
                        };
                        vec![
                            cell(g.name.clone()),
                            cell(ages),
                            cell(g.note.clone().unwrap_or_default()),
                        ]
                    })
                    .collect(),
            )));
        }
        if !a.commissioning_areas.is_empty() {
            sec.push(Block::Table(table(
                "Commissioning areas and their leads",
                vec![cell("Area"), cell("Lead"), cell("Associates")],
                a.commissioning_areas
                    .iter()
                    .map(|c| {
                        let leads: Vec<String> =
                            c.lead.iter().map(|l| partner_name(&a, l)).collect();
                        let assoc: Vec<String> =
                            c.associates.iter().map(|l| partner_name(&a, l)).collect();
                        vec![
                            cell(c.name.clone()),
                            cell(leads.join(", ")),
                            cell(assoc.join(", ")),
                        ]
                    })
                    .collect(),
            )));
        }
        page = page.section(sec);
    }

    // Funds and contributions.
    if !a.funds.is_empty() {
        let mut rows = Vec::new();
        for f in &a.funds {
            for c in &f.contributions {
                rows.push(vec![
                    cell(f.name.clone()).link(format!("/agreements/{key}/funds/{}", f.id)),
                    cell(match f.kind {
                        FundKind::Pooled => "pooled",
                        FundKind::Aligned => "aligned",
                    }),
                    cell(
                        f.host
                            .as_deref()
                            .map(|h| partner_name(&a, h))
                            .unwrap_or_else(|| "no host".into()),
                    ),
                    cell(partner_name(&a, &c.partner)),
                    cell(c.year.to_string()),
                    num(c.amount.to_string()),
                ]);
            }
            if f.contributions.is_empty() {
                rows.push(vec![
                    cell(f.name.clone()).link(format!("/agreements/{key}/funds/{}", f.id)),
                    cell(match f.kind {
                        FundKind::Pooled => "pooled",
                        FundKind::Aligned => "aligned",
                    }),
                    cell(
                        f.host
                            .as_deref()
                            .map(|h| partner_name(&a, h))
                            .unwrap_or_else(|| "no host".into()),
                    ),
                    cell("no contributions set"),
                    cell(""),
                    num(""),
                ]);
            }
        }
        page = page.section(section("Funds", "funds").with(Block::Table(table(
            "Funds and contributions",
            vec![
                cell("Fund"),
                cell("Kind"),
                cell("Host"),
                cell("Contributing partner"),
                cell("Year"),
                num("Contribution"),
            ],
            rows,
        ))));
    }

    if !a.transfers.is_empty() {
        page = page.section(
            section("Funding transfers", "transfers").with(Block::Table(table(
                "Transfers between partners",
                vec![
                    cell("Transfer"),
                    cell("From"),
                    cell("To"),
                    cell("Basis"),
                    cell("Year"),
                    num("Amount"),
                ],
                a.transfers
                    .iter()
                    .map(|t| {
                        vec![
                            cell(t.id.clone()),
                            cell(partner_name(&a, &t.from)),
                            cell(partner_name(&a, &t.to)),
                            cell(t.basis.label()),
                            cell(t.year.map(|y| y.to_string()).unwrap_or_default()),
                            num(t.amount.to_string()),
                        ]
                    })
                    .collect(),
            ))),
        );
    }

    if !a.posts.is_empty() {
        page = page.section(
            section("Posts", "posts").with(Block::Table(table(
                "Posts under the agreement",
                vec![cell("Post"), cell("Employed by"), cell("Note")],
                a.posts
                    .iter()
                    .map(|post| {
                        vec![
                            cell(post.title.clone()),
                            cell(partner_name(&a, &post.employer)),
                            cell(post.note.clone().unwrap_or_default()),
                        ]
                    })
                    .collect(),
            ))),
        );
    }

    if !a.schedules.is_empty() {
        page = page.section(
            section("Schedules", "schedules").with(Block::Table(table(
                "Schedules to the agreement",
                vec![cell("Schedule"), cell("Title")],
                a.schedules
                    .iter()
                    .map(|s| vec![cell(s.number.clone()), cell(s.title.clone())])
                    .collect(),
            ))),
        );
    }

    if !a.bodies.is_empty() || !a.decision_levels.is_empty() {
        page = page.section(governance_section(&a));
    }
    page = page.section(written_terms(&a));

    // Notice calculator.
    let mut notice = section("Notice", "notice");
    let served_error;
    match q.served.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(text) => match text.trim().parse::<jiff::civil::Date>() {
            Ok(date) => {
                served_error = None;
                match concordat_core::notice::earliest_end(&a, date) {
                    Ok(outcome) => {
                        notice.push(Block::Inset(format!(
                            "If notice is served on {date}, the earliest the agreement can end is {}.",
                            outcome.earliest_end
                        )));
                        for line in outcome.reasoning {
                            notice.push(Block::Para(line));
                        }
                    }
                    Err(e) => notice.push(Block::Inset(e.to_string())),
                }
            }
            Err(_) => {
                served_error =
                    Some("Enter the date notice is served as a date, like 2025-09-30".to_string());
            }
        },
        None => served_error = None,
    }
    if let Some(e) = &served_error {
        page.errors.push((e.clone(), "served".into()));
    }
    notice.push(Block::Form(get_form(
        format!("/agreements/{key}#notice"),
        "Work out the end date",
        vec![
            field("served", "Date notice is served", FieldKind::Date)
                .hint("For example, 2025-09-30")
                .value(q.served.clone().unwrap_or_default())
                .error(served_error),
        ],
    )));
    page = page.section(notice);

    // Validation findings.
    let findings = concordat_core::validate(&a);
    let mut checks = section("Validation findings", "findings");
    if findings.is_empty() {
        checks.push(Block::Para("The agreement passes every check.".into()));
    } else {
        checks.push(Block::Table(table(
            "What the checks found",
            vec![
                cell("Severity"),
                cell("Rule"),
                cell("Where"),
                cell("Finding"),
            ],
            findings
                .iter()
                .map(|f| {
                    vec![
                        cell(f.severity.label()).tag(
                            if f.severity == concordat_core::Severity::Error {
                                "red"
                            } else {
                                "yellow"
                            },
                        ),
                        cell(f.rule.code()),
                        cell(f.path.clone()),
                        cell(f.message.clone()),
                    ]
                })
                .collect(),
        )));
    }
    page = page.section(checks);

    // Version history and upload.
    let mut versions = section("Version history", "versions").with(Block::Table(table(
        "Versions of the agreement file",
        vec![
            num("Version"),
            cell("Loaded"),
            cell("By"),
            cell("File"),
            cell("SHA-256"),
            cell("Authorised by"),
        ],
        stored
            .versions
            .iter()
            .rev()
            .map(|v| {
                vec![
                    num(v.version.to_string()),
                    cell(crate::views::when(&v.loaded_at)),
                    cell(v.loaded_by.clone()),
                    cell(crate::views::file_name(&v.source_path)),
                    cell(v.source_sha256[..12.min(v.source_sha256.len())].to_string()),
                    cell(v.authority.clone().unwrap_or_default()),
                ]
            })
            .collect(),
    )));
    if p.may(&key, Permission::ChangeAgreement) {
        versions.push(Block::Form(post_form(
            format!("/agreements/{key}/versions"),
            p.csrf_token(),
            "Upload and compare",
            vec![
                field(
                    "file",
                    "New version of the agreement file (TOML)",
                    FieldKind::File,
                )
                .hint("You will see what changes before it is accepted"),
            ],
        )));
    }
    page = page.section(versions);
    Ok(page.html()?.into_response())
}

/// Boards and groups with their seats, quorum and voting, and the levels decisions are
/// taken at.
fn governance_section(a: &Agreement) -> Section {
    let mut sec = section("Boards, groups and decisions", "governance");
    if !a.bodies.is_empty() {
        let rows = a
            .bodies
            .iter()
            .map(|b| {
                let seats: Vec<String> = b
                    .seats
                    .iter()
                    .map(|s| format!("{} {}", partner_name(a, &s.partner), s.voting))
                    .collect();
                let mut membership = if seats.is_empty() {
                    b.members.join("; ")
                } else {
                    format!("{} voting", seats.join(", "))
                };
                if let Some(n) = b.co_opted_non_voting {
                    membership.push_str(&format!("; up to {n} co-opted, not voting"));
                }
                let quorum = b.quorum.as_ref().map_or_else(
                    || "not set".to_string(),
                    |q| {
                        let mut text = format!("{} voting members", q.members);
                        if q.each_partner {
                            text.push_str(", at least one of each partner");
                        }
                        if !q.roles.is_empty() {
                            text.push_str(&format!(", including {}", q.roles.join(", ")));
                        }
                        text
                    },
                );
                let reports: Vec<String> = b
                    .reports_to
                    .iter()
                    .map(|r| {
                        a.bodies
                            .iter()
                            .find(|x| &x.id == r)
                            .map_or_else(|| partner_name(a, r), |x| x.name.clone())
                    })
                    .collect();
                vec![
                    cell(b.name.clone()),
                    cell(if membership.is_empty() {
                        "not stated".into()
                    } else {
                        membership
                    }),
                    cell(quorum),
                    cell(b.voting.map_or("consensus (not stated)", |v| v.label())),
                    cell(b.meets.clone().unwrap_or_default()),
                    cell(reports.join(", ")),
                ]
            })
            .collect();
        sec.push(Block::Table(table(
            "Boards and groups",
            vec![
                cell("Body"),
                cell("Members"),
                cell("Quorum"),
                cell("Decides by"),
                cell("Meets"),
                cell("Reports to"),
            ],
            rows,
        )));
    }
    if !a.decision_levels.is_empty() {
        sec.push(Block::Table(table(
            "Levels of decision",
            vec![cell("Level"), cell("What"), cell("Officer"), num("Limit")],
            a.decision_levels
                .iter()
                .map(|l| {
                    vec![
                        cell(l.level.label()),
                        cell(l.description.clone()),
                        cell(l.officer.clone().unwrap_or_default()),
                        num(l.limit.map(|m| m.to_string()).unwrap_or_default()),
                    ]
                })
                .collect(),
        )));
    }
    sec
}

/// The written terms SI 2000/617 regulation 7 asks an agreement to set out, and whether this
/// one does.
fn written_terms(a: &Agreement) -> Section {
    let t = &a.terms;
    let yes_no = |b: bool| if b { "set out" } else { "missing" };
    let funds = !a.funds.is_empty();
    let hosts = a.funds.iter().all(|f| f.host.is_some());
    let rows: Vec<(String, bool)> = vec![
        (
            "Aims and outcomes of the arrangements".into(),
            !t.aims.is_empty() || !t.outcomes.is_empty(),
        ),
        (
            "Contributions of each partner, and how they may vary".into(),
            !funds
                || (a.funds.iter().all(|f| !f.contributions.is_empty())
                    && t.contribution_variation.is_some()),
        ),
        (
            "The NHS functions and health-related functions included".into(),
            !t.nhs_functions.is_empty()
                || !t.health_related_functions.is_empty()
                || !a.delegated_functions.is_empty(),
        ),
        (
            "Who the services are for, and which".into(),
            !t.services.is_empty() || !a.care_groups.is_empty(),
        ),
        (
            "Staff, goods, services or accommodation provided".into(),
            t.resources_in_kind.is_some() || !a.posts.is_empty(),
        ),
        (
            "Duration, and arrangements for review and variation".into(),
            a.term_years.is_some() || a.end_date.is_some() || a.review.is_some(),
        ),
        (
            "Arrangements for termination".into(),
            a.notice.is_some() || a.exit.is_some(),
        ),
        (
            "A host partner for each pooled fund".into(),
            !funds || hosts,
        ),
        (
            "How the pooled fund is managed and monitored".into(),
            !funds || t.fund_management.is_some() || t.monitoring.is_some(),
        ),
        ("Consultation carried out".into(), t.consultation.is_some()),
    ];
    section("Written terms (SI 2000/617, regulation 7)", "written-terms").with(Block::Table(table(
        "What the agreement sets out",
        vec![cell("Term"), cell("In this agreement")],
        rows.into_iter()
            .map(|(what, ok)| {
                vec![
                    cell(what),
                    cell(yes_no(ok)).tag(if ok { "green" } else { "red" }),
                ]
            })
            .collect(),
    )))
}

// ---------------------------------------------------------------------------------------------
// Funds

#[derive(Deserialize, Default, Clone)]
pub(crate) struct FundQuery {
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
}

/// The period to show when none is asked for: the last closed one, else P06 of the first
/// year with contributions (or of this year).
pub(crate) async fn default_period(state: &AppState, a: &Agreement) -> Result<Period, WebError> {
    let closed = state.store.closed_periods(&a.id).await?;
    if let Some((year, number)) = closed.iter().max()
        && let Some(p) = i16::try_from(*year)
            .ok()
            .and_then(FinancialYear::starting)
            .and_then(|y| y.period(u8::try_from(*number).unwrap_or(0)))
    {
        return Ok(p);
    }
    let year = a
        .funds
        .iter()
        .flat_map(|f| f.contributions.iter().map(|c| c.year))
        .min()
        .unwrap_or_else(|| FinancialYear::containing(state.today()));
    Ok(year.period(6).expect("P06 exists"))
}

pub(crate) struct FundView {
    pub period: Period,
    pub by: Dimension,
    pub method: ForecastMethod,
    pub errors: Vec<(String, String)>,
}

pub(crate) async fn fund_view(
    state: &AppState,
    a: &Agreement,
    q: &FundQuery,
) -> Result<FundView, WebError> {
    let mut errors = Vec::new();
    let period = match q.period.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => match text.parse::<Period>() {
            Ok(p) => p,
            Err(_) => {
                errors.push((
                    format!("Enter the period like 2024/25-P06 ('{text}' is not a period)"),
                    "period".into(),
                ));
                default_period(state, a).await?
            }
        },
        None => default_period(state, a).await?,
    };
    let by = match q.by.as_deref().filter(|b| !b.is_empty()) {
        None => Dimension::ServiceLine,
        Some(b) => b.parse().unwrap_or_else(|_| {
            errors.push((
                format!("Choose how to group: service, partner, locality or fund ('{b}' is none of them)"),
                "by".into(),
            ));
            Dimension::ServiceLine
        }),
    };
    let method = match method_of(q.method.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            errors.push((e.words().1, "method".into()));
            ForecastMethod::RunRate
        }
    };
    Ok(FundView {
        period,
        by,
        method,
        errors,
    })
}

async fn fund_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, fund_id)): Path<(String, String)>,
    Query(q): Query<FundQuery>,
) -> Result<Response, WebError> {
    let (head, a) = visible_agreement_at(&state, &p, &key, Permission::Read).await?;
    let fund = fund_of(&a, &fund_id)?;
    let view = fund_view(&state, &a, &q).await?;
    let m =
        crate::cache::monitoring(&state, head, &a, fund, view.period, view.method, view.by).await?;
    let query = format!(
        "period={}&by={}&method={}",
        crate::views::url_encode(&view.period.to_string()),
        view.by.as_str(),
        view.method.as_str()
    );

    let mut page = Page::new(
        Chrome::for_user(&format!("{} – {}", fund.name, view.period), &p)
            .crumbs(agreement_crumbs(&a)),
        fund.name.clone(),
    )
    .caption(format!(
        "{} · monitoring to the end of {}",
        a.title, view.period
    ));
    page.errors = view.errors.clone();
    let period_error = view
        .errors
        .iter()
        .find(|(_, t)| t == "period")
        .map(|(m, _)| m.clone());
    let choose = get_form(
        format!("/agreements/{key}/funds/{fund_id}"),
        "Show",
        vec![
            field("period", "Period", FieldKind::Date)
                .hint("For example, 2024/25-P06")
                .value(view.period.to_string())
                .error(period_error),
            field(
                "by",
                "Group by",
                FieldKind::Select(vec![
                    ("service".into(), "Service line".into()),
                    ("partner".into(), "Partner of origin".into()),
                    ("locality".into(), "Locality".into()),
                    ("fund".into(), "The fund as a whole".into()),
                ]),
            )
            .value(view.by.as_str()),
            field(
                "method",
                "Forecast method",
                FieldKind::Select(vec![
                    ("run-rate".into(), "Run rate from actuals".into()),
                    ("profile".into(), "Budget profile".into()),
                    ("commitments".into(), "Commitments".into()),
                ]),
            )
            .value(view.method.as_str()),
        ],
    );
    page = page.section(section("Choose what to see", "choose").with(Block::Form(choose)));
    if m.empty {
        page = page.section(untitled("empty").with(Block::Warning(format!(
            "This fund has no budget and no postings for {}: every figure is zero.",
            view.period.year()
        ))));
    }

    // Everything below the form is the same for every reader of this fund's figures: it is
    // rendered once per change of the partnership, and kept.
    let fragment_key = format!("{key}/{fund_id}?{query}");
    let html = match crate::cache::fragment(&state, head, &fragment_key) {
        Some(html) => html,
        None => {
            let mut rest = Page::new(Chrome::anonymous(""), "");
            let report = m.report(&a, fund, &p.display_name, &crate::views::when(&state.now()));
            // The chart of budget, actual and forecast across the year, then the report's sections.
            let chart = concordat_report::statements::budget_actual_forecast_chart(&m.chart);
            rest = rest.section(
                section("Budget, actual and forecast", "chart")
                    .with(Block::Image {
                        src: format!(
                            "/agreements/{key}/funds/{fund_id}/chart.svg?{query}&chart=trend"
                        ),
                        alt: format!(
                            "{} (the figures are in the table that follows)",
                            chart.title
                        ),
                    })
                    .with(Block::Table(convert::chart_table(&chart))),
            );
            let chart_src = |name: &str| {
                format!(
                    "/agreements/{key}/funds/{fund_id}/chart.svg?{query}&chart={}",
                    crate::views::url_encode(name)
                )
            };
            let mut sections = convert::report_sections(&report, &chart_src);
            // Drill-down: each service line's actual to date links to its postings. The monitoring
            // table is the one whose rows are the monitoring's rows and then the total.
            if view.by == Dimension::ServiceLine {
                let monitoring_table = sections
                    .iter_mut()
                    .flat_map(|s| s.blocks.iter_mut())
                    .find_map(|b| match b {
                        Block::Table(t)
                            if t.rows.len() == m.monitoring.rows.len() + 1
                                && t.head.first().is_some_and(|h| {
                                    h.text.eq_ignore_ascii_case("service line")
                                }) =>
                        {
                            Some(t)
                        }
                        _ => None,
                    });
                if let Some(t) = monitoring_table {
                    let actual_col = t
                        .head
                        .iter()
                        .position(|h| h.text.to_lowercase().starts_with("actual"));
                    for (row, line) in t.rows.iter_mut().zip(&m.monitoring.rows) {
                        if let Some(c) = actual_col.and_then(|c| row.get_mut(c)) {
                            c.href = Some(format!(
                                "/agreements/{key}/funds/{fund_id}/postings?line={}&to={}",
                                crate::views::url_encode(&line.key),
                                crate::views::url_encode(&view.period.to_string())
                            ));
                        }
                    }
                }
            }
            for s in sections.into_iter().skip(1) {
                rest = rest.section(s);
            }

            // Transfers due this year, from the agreement's schedules.
            let year = view.period.year();
            let dues: Vec<_> = a
                .transfers
                .iter()
                .filter(|t| t.year == Some(year))
                .collect();
            if !dues.is_empty() {
                rest = rest.section(
                    section("Transfers due", "transfers-due").with(Block::Table(table(
                        &format!("Funding transfers for {year}"),
                        vec![
                            cell("Transfer"),
                            cell("From"),
                            cell("To"),
                            cell("Basis"),
                            num("Amount"),
                        ],
                        dues.iter()
                            .map(|t| {
                                vec![
                                    cell(t.id.clone()),
                                    cell(partner_name(&a, &t.from)),
                                    cell(partner_name(&a, &t.to)),
                                    cell(t.basis.label()),
                                    num(t.amount.to_string()),
                                ]
                            })
                            .collect(),
                    ))),
                );
            }

            let q = view.period.quarter();
            rest = rest.section(
            section("Statements and budgets", "more").with(Block::Links(vec![
                link(
                    format!("Quarterly statement for {q}"),
                    format!(
                        "/agreements/{key}/funds/{fund_id}/statements?quarter={}&method={}",
                        crate::views::url_encode(&q.to_string()),
                        view.method.as_str()
                    ),
                ),
                link(
                    format!("Memorandum account for {year}"),
                    format!(
                        "/agreements/{key}/funds/{fund_id}/statements?year={}",
                        crate::views::url_encode(&year.to_string())
                    ),
                ),
                link(
                    format!("Budgets for {year}"),
                    format!(
                        "/agreements/{key}/funds/{fund_id}/budgets?year={}",
                        crate::views::url_encode(&year.to_string())
                    ),
                ),
                link(
                    "Download this monitoring as Excel",
                    format!("/api/v1/agreements/{key}/funds/{fund_id}/monitoring?{query}&format=xlsx"),
                ),
            ])),
        );

            let html = crate::views::render_sections(rest.sections)?;
            crate::cache::remember_fragment(&state, head, fragment_key, html)
        }
    };
    page.fragment = Some(html);
    Ok(page.html()?.into_response())
}

#[derive(Deserialize, Default)]
struct ChartQuery {
    #[serde(flatten)]
    fund: FundQuery,
    #[serde(default)]
    chart: String,
    #[serde(default)]
    quarter: Option<String>,
    #[serde(default)]
    year: Option<String>,
}

async fn fund_chart(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, fund_id)): Path<(String, String)>,
    Query(q): Query<ChartQuery>,
) -> Result<Response, WebError> {
    let (head, a) = visible_agreement_at(&state, &p, &key, Permission::Read).await?;
    let fund = fund_of(&a, &fund_id)?;
    let charts: Vec<concordat_report::Chart> = if q.quarter.is_some() || q.year.is_some() {
        let (_, _, s) = statement_for(
            &state,
            &p,
            &a,
            fund,
            q.quarter.as_deref(),
            q.year.as_deref(),
            q.fund.method.as_deref(),
        )
        .await?;
        report_charts(&s.report)
    } else {
        let view = fund_view(&state, &a, &q.fund).await?;
        let m = crate::cache::monitoring(&state, head, &a, fund, view.period, view.method, view.by)
            .await?;
        let mut charts = vec![concordat_report::statements::budget_actual_forecast_chart(
            &m.chart,
        )];
        charts.extend(report_charts(&m.report(
            &a,
            fund,
            &p.display_name,
            &crate::views::when(&state.now()),
        )));
        if q.chart == "trend" {
            charts.truncate(1);
        }
        charts
    };
    let chart = charts
        .iter()
        .find(|c| c.name == q.chart)
        .or_else(|| charts.first())
        .ok_or(WebError::NotFound)?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        concordat_report::render_svg(chart),
    )
        .into_response())
}

fn report_charts(report: &concordat_report::Report) -> Vec<concordat_report::Chart> {
    report
        .sections
        .iter()
        .flat_map(|s| s.blocks.iter())
        .filter_map(|b| match b {
            concordat_report::Block::Chart(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct PostingsQuery {
    #[serde(default)]
    line: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    page: Option<u32>,
}

const POSTINGS_PER_PAGE: i64 = 100;
/// The last page of postings offered: 10 million postings at 100 a page.
const MAX_POSTINGS_PAGE: u32 = 100_000;

async fn postings_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, fund_id)): Path<(String, String)>,
    Query(q): Query<PostingsQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let fund = fund_of(&a, &fund_id)?;
    let to: Period = match q.to.as_deref() {
        Some(t) => t
            .parse()
            .map_err(|_| WebError::BadRequest(format!("'{t}' is not a period like 2024/25-P06")))?,
        None => default_period(&state, &a).await?,
    };
    // A page beyond any ledger's would only make the store walk every batch.
    let page_no = q.page.unwrap_or(1).clamp(1, MAX_POSTINGS_PAGE);
    let filter = concordat_store::PostingFilter {
        fund: Some(fund.id.clone()),
        year_start: i64::from(to.year().start_year()),
        period_from: Some(1),
        period_to: Some(i64::from(to.number())),
        service_line: q.line.clone().filter(|l| !l.is_empty()),
        partner: None,
        locality: None,
    };
    let mut postings = state
        .store
        .postings(
            &key,
            &filter,
            POSTINGS_PER_PAGE + 1,
            i64::from(page_no - 1) * POSTINGS_PER_PAGE,
        )
        .await?;
    let more = postings.len() as i64 > POSTINGS_PER_PAGE;
    postings.truncate(POSTINGS_PER_PAGE as usize);
    let heading = match &q.line {
        Some(l) => format!("Postings to {l}"),
        None => "Postings".into(),
    };
    let mut crumbs = agreement_crumbs(&a);
    crumbs.push(link(
        fund.name.clone(),
        format!(
            "/agreements/{key}/funds/{fund_id}?period={}",
            crate::views::url_encode(&to.to_string())
        ),
    ));
    let mut page = Page::new(Chrome::for_user(&heading, &p).crumbs(crumbs), heading)
        .caption(format!("{} · P01 to {}", fund.name, to));
    let rows = postings
        .iter()
        .map(|s| {
            let r = &s.posting;
            vec![
                cell(r.date.clone()),
                cell(finance::period_of(r.year_start, r.period).map_or_else(
                    |_| format!("{}-P{:02}", r.year_start, r.period),
                    |p| p.to_string(),
                )),
                cell(r.reference.clone()),
                cell(r.supplier.clone().unwrap_or_default()),
                cell(r.subjective.clone().unwrap_or_default()),
                cell(
                    r.partner
                        .clone()
                        .map(|x| partner_name(&a, &x))
                        .unwrap_or_default(),
                ),
                num(concordat_core::Money::from_pence(r.amount_pence).to_string()),
            ]
        })
        .collect::<Vec<_>>();
    let mut sec = untitled("postings");
    if rows.is_empty() {
        sec.push(Block::Para("There are no postings here.".into()));
    } else {
        sec.push(Block::Table(table(
            &format!("Page {page_no}"),
            vec![
                cell("Date"),
                cell("Period"),
                cell("Reference"),
                cell("Supplier"),
                cell("Subjective"),
                cell("Partner"),
                num("Amount"),
            ],
            rows,
        )));
    }
    let base = format!(
        "/agreements/{key}/funds/{fund_id}/postings?line={}&to={}",
        crate::views::url_encode(q.line.as_deref().unwrap_or("")),
        crate::views::url_encode(&to.to_string())
    );
    let mut nav = Vec::new();
    if page_no > 1 {
        nav.push(link(
            "Previous page",
            format!("{base}&page={}", page_no - 1),
        ));
    }
    if more {
        nav.push(link("Next page", format!("{base}&page={}", page_no + 1)));
    }
    if !nav.is_empty() {
        sec.push(Block::Links(nav));
    }
    page = page.section(sec);
    Ok(page.html()?.into_response())
}

// ---------------------------------------------------------------------------------------------
// Obligations calendar

#[derive(Deserialize, Default)]
struct CalendarQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// The years asked for; by default the year of the fund page's default period and the next.
async fn calendar_years(
    state: &AppState,
    a: &Agreement,
    q: &CalendarQuery,
) -> Result<(FinancialYear, FinancialYear), WebError> {
    let parse = |t: &str| {
        t.parse::<FinancialYear>().map_err(|_| {
            WebError::BadRequest(format!("'{t}' is not a financial year like 2024/25"))
        })
    };
    let from = match q.from.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => parse(t)?,
        None => default_period(state, a).await?.year(),
    };
    let to = match q.to.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => parse(t)?,
        None => from.next(),
    };
    if to < from {
        return Err(WebError::BadRequest(
            "The last year is before the first".into(),
        ));
    }
    Ok((from, to))
}

async fn calendar_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<CalendarQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let (from, to) = calendar_years(&state, &a, &q).await?;
    let items = concordat_app::governance::calendar(state.store.as_ref(), &a, from, to).await?;
    let today = state.today();
    let next = items.iter().find(|o| o.due >= today).map(|o| o.due);
    let overdue = items.iter().filter(|o| o.overdue(today)).count();
    let rows = items
        .iter()
        .map(|o| {
            let when = if o.overdue(today) {
                cell("overdue").tag("red")
            } else if o.due < today {
                cell("past").tag("grey")
            } else if Some(o.due) == next {
                cell("next").tag("blue")
            } else {
                cell("to come").tag("green")
            };
            vec![
                cell(o.due.to_string()),
                when,
                cell(o.kind.label()),
                cell(o.title.clone()),
                cell(o.basis.clone()),
            ]
        })
        .collect::<Vec<_>>();
    let title = format!("Obligations, {from} to {to}");
    let mut page = Page::new(
        Chrome::for_user(&title, &p).crumbs(agreement_crumbs(&a)),
        title,
    )
    .caption(a.title.clone());
    let query = format!(
        "from={}&to={}",
        crate::views::url_encode(&from.to_string()),
        crate::views::url_encode(&to.to_string())
    );
    page = page.section(
        section("Choose the years", "years").with(Block::Form(get_form(
            format!("/agreements/{key}/calendar"),
            "Show",
            vec![
                field("from", "From the financial year", FieldKind::Date).value(from.to_string()),
                field("to", "To the financial year", FieldKind::Date).value(to.to_string()),
            ],
        ))),
    );
    let mut list = section("Dates", "dates");
    if overdue > 0 {
        list.push(Block::Warning(format!(
            "{overdue} item{} overdue: still waited on after the date it was due.",
            if overdue == 1 { " is" } else { "s are" }
        )));
    }
    if rows.is_empty() {
        list.push(Block::Para(
            "The agreement sets no dated obligations in these years.".into(),
        ));
    } else {
        list.push(Block::Table(table(
            "Statements and returns, the budget timetable, reviews, meetings, dispute and complaint deadlines, risk reviews and the end of the term",
            vec![cell("Due"), cell("When"), cell("Kind"), cell("What"), cell("Why")],
            rows,
        )));
    }
    list.push(Block::Links(vec![link(
        "Download as iCalendar (.ics), to add to your own calendar",
        format!("/agreements/{key}/calendar.ics?{query}"),
    )]));
    page = page.section(list);
    Ok(page.html()?.into_response())
}

async fn calendar_ics(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<CalendarQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let (from, to) = calendar_years(&state, &a, &q).await?;
    let items = concordat_app::governance::calendar(state.store.as_ref(), &a, from, to).await?;
    let stamp = (state.clock)().strftime("%Y%m%dT%H%M%SZ").to_string();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{key}-obligations.ics\""),
            ),
        ],
        concordat_report::render_ics(&a.id, &a.title, &items, &stamp),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Statements

pub(crate) fn statement_kind(
    quarter: Option<&str>,
    year: Option<&str>,
) -> Result<concordat_app::StatementKind, WebError> {
    match (
        quarter.filter(|s| !s.is_empty()),
        year.filter(|s| !s.is_empty()),
    ) {
        (Some(q), _) => q
            .parse::<Quarter>()
            .map(concordat_app::StatementKind::Quarter)
            .map_err(|_| WebError::BadRequest(format!("'{q}' is not a quarter like 2024/25-Q2"))),
        (None, Some(y)) => y
            .parse::<FinancialYear>()
            .map(concordat_app::StatementKind::Year)
            .map_err(|_| {
                WebError::BadRequest(format!("'{y}' is not a financial year like 2024/25"))
            }),
        (None, None) => Err(WebError::BadRequest(
            "Say which statement: a quarter like 2024/25-Q2 or a year like 2024/25".into(),
        )),
    }
}

/// What the statement's note on contributions says, in the page's words.
const RECEIVED_AS_DUE_ON_THE_WEB: &str = "No payments of contributions to this fund are recorded for the year, so contributions are taken as received when they fall due.";

#[derive(Deserialize, Default)]
pub(crate) struct StatementQuery {
    #[serde(default)]
    pub quarter: Option<String>,
    #[serde(default)]
    pub year: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
    /// The forecast method of a quarterly statement (run-rate unless said).
    #[serde(default)]
    pub method: Option<String>,
}

/// The forecast method a request asks for; run rate when it says none.
pub(crate) fn method_of(text: Option<&str>) -> Result<ForecastMethod, WebError> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(ForecastMethod::RunRate),
        Some(t) => t.parse().map_err(WebError::BadRequest),
    }
}

async fn statement_page(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, fund_id)): Path<(String, String)>,
    Query(q): Query<StatementQuery>,
) -> Result<Response, WebError> {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let fund = fund_of(&a, &fund_id)?;
    let (kind, method, s) = statement_for(
        &state,
        &p,
        &a,
        fund,
        q.quarter.as_deref(),
        q.year.as_deref(),
        q.method.as_deref(),
    )
    .await?;
    let which = match kind {
        concordat_app::StatementKind::Quarter(q) => format!(
            "quarter={}&method={}",
            crate::views::url_encode(&q.to_string()),
            method.as_str()
        ),
        concordat_app::StatementKind::Year(y) => {
            format!("year={}", crate::views::url_encode(&y.to_string()))
        }
    };
    let mut crumbs = agreement_crumbs(&a);
    crumbs.push(link(
        fund.name.clone(),
        format!("/agreements/{key}/funds/{fund_id}"),
    ));
    let mut page = Page::new(
        Chrome::for_user(&s.report.title, &p).crumbs(crumbs),
        s.report.title.clone(),
    );
    page.caption = s.report.subtitle.clone();
    let base = format!("/agreements/{key}/funds/{fund_id}/statements/download?{which}");
    let mut downloads = vec![
        link("Download as PDF", format!("{base}&format=pdf")),
        link("Download as Excel (XLSX)", format!("{base}&format=xlsx")),
    ];
    for t in s
        .report
        .sections
        .iter()
        .flat_map(|s| s.blocks.iter())
        .filter_map(|b| match b {
            concordat_report::Block::Table(t) => Some(t),
            _ => None,
        })
    {
        downloads.push(link(
            format!("Download ‘{}’ as CSV", t.caption),
            format!(
                "{base}&format=csv&table={}",
                crate::views::url_encode(&t.name)
            ),
        ));
    }
    page = page.section(section("Download", "download").with(Block::Links(downloads)));
    if s.received_as_due {
        page = page
            .section(untitled("received").with(Block::Inset(RECEIVED_AS_DUE_ON_THE_WEB.into())));
    }
    let chart_src = |name: &str| {
        format!(
            "/agreements/{key}/funds/{fund_id}/chart.svg?{which}&chart={}",
            crate::views::url_encode(name)
        )
    };
    for sec in convert::report_sections(&s.report, &chart_src) {
        page = page.section(sec);
    }
    Ok(page.html()?.into_response())
}

/// The statement a request asks for: a quarter or a year, and a forecast method.
async fn statement_for(
    state: &AppState,
    p: &Principal,
    a: &Agreement,
    fund: &concordat_core::agreement::Fund,
    quarter: Option<&str>,
    year: Option<&str>,
    method: Option<&str>,
) -> Result<
    (
        concordat_app::StatementKind,
        ForecastMethod,
        concordat_app::Statement,
    ),
    WebError,
> {
    let kind = statement_kind(quarter, year)?;
    let method = method_of(method)?;
    let s = concordat_app::statement(
        state.store.as_ref(),
        a,
        fund,
        kind,
        method,
        &p.display_name,
        &crate::views::when(&state.now()),
    )
    .await?;
    Ok((kind, method, s))
}

pub(crate) async fn statement_bytes(
    state: &AppState,
    p: &Principal,
    key: &str,
    fund_id: &str,
    q: &StatementQuery,
) -> Result<Response, WebError> {
    let a = visible_agreement(state, p, key, Permission::Read).await?;
    let fund = fund_of(&a, fund_id)?;
    let (_, _, s) = statement_for(
        state,
        p,
        &a,
        fund,
        q.quarter.as_deref(),
        q.year.as_deref(),
        q.method.as_deref(),
    )
    .await?;
    let (bytes, media, name) = match q.format.as_deref().unwrap_or("pdf") {
        "pdf" => (
            concordat_pdf::render_pdf(&s.report)?,
            "application/pdf",
            format!("{}.pdf", s.file_stem),
        ),
        "xlsx" => (
            concordat_report::render_xlsx(&s.report)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            format!("{}.xlsx", s.file_stem),
        ),
        "csv" => {
            let files = concordat_report::render_csv(&s.report)?;
            let wanted = q.table.as_deref();
            let (file, bytes) = files
                .into_iter()
                .find(|(f, _)| wanted.is_none_or(|w| f.trim_end_matches(".csv") == w))
                .ok_or(WebError::NotFound)?;
            (
                bytes,
                "text/csv; charset=utf-8",
                format!("{}-{}", s.file_stem, file),
            )
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "'{other}' is not a format: choose pdf, xlsx or csv"
            )));
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, media.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn statement_download(
    State(state): State<AppState>,
    SignedIn(p): SignedIn,
    Path((key, fund_id)): Path<(String, String)>,
    Query(q): Query<StatementQuery>,
) -> Result<Response, WebError> {
    statement_bytes(&state, &p, &key, &fund_id, &q).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> Agreement {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/agreements")
            .join(name);
        let text = std::fs::read_to_string(path).expect("the example");
        concordat_io::parse_agreement(name, text)
            .agreement
            .expect("a valid example")
    }

    #[test]
    fn next_obligation_follows_the_term_and_the_quarters() {
        let date = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        // Trafford's term ended on 2016-03-31.
        let trafford = example("trafford.toml");
        assert_eq!(
            next_obligation(&trafford, date("2026-12-01")),
            "none: the agreement ended on 2016-03-31"
        );
        // Hertfordshire's pools report quarterly: on 1 December the Q2 statement (to 30
        // September) was due by 31 October, so the next is Q3's, due 31 January.
        let herts = example("hertfordshire.toml");
        assert_eq!(
            next_obligation(&herts, date("2026-12-01")),
            "2027-01-31: Quarterly statement, Child and adolescent mental health pooled budget, 2026/27-Q3 (and 3 more that day)"
        );
        assert_eq!(
            next_obligation(&herts, date("2026-10-15")),
            "2026-10-31: Quarterly statement, Child and adolescent mental health pooled budget, 2026/27-Q2 (and 3 more that day)"
        );
    }

    #[test]
    fn a_return_address_is_a_path_on_this_site() {
        assert_eq!(safe_next("/agreements/x?y=1"), "/agreements/x?y=1");
        for bad in [
            "//evil.example/x",
            "https://evil.example/",
            "/\\evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "",
        ] {
            assert_eq!(safe_next(bad), "/agreements", "{bad}");
        }
    }
}
