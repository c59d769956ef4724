//! The JSON API under `/api/v1`, for machine clients with bearer tokens (a signed-in browser
//! session may also read, so pages can offer downloads). The same roles and tenancy as the
//! pages; errors come back as JSON with the status code.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use concordat_core::access::Permission;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{ApiClient, Principal};
use crate::error::WebError;
use crate::pages::{
    FundQuery, StatementQuery, fund_of, fund_view, statement_bytes, visible_agreement,
    visible_agreement_at,
};
use crate::routes::{Access, Route, RouteDoc};

const JSON_ONLY: &[&str] = &["application/json"];

pub(crate) static ROUTES: &[Route] = &[
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/openapi.json",
            summary: "This document",
            access: Access::Public,
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(openapi),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements",
            summary: "The agreements the token may see",
            access: Access::SignedIn,
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(agreements),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}",
            summary: "An agreement: its current version in full, and its version history",
            access: Access::Partnership(Permission::Read),
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(agreement),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/funds",
            summary: "An agreement's funds and contributions",
            access: Access::Partnership(Permission::Read),
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(funds),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/funds/{fund}/monitoring",
            summary: "A fund's monitoring for a period: budget, actual, commitments, forecast, variance, RAG, each partner's risk-share exposure",
            access: Access::Partnership(Permission::Read),
            query: &[
                (
                    "period",
                    "The period, e.g. 2024/25-P06 (default: the last closed one)",
                    false,
                ),
                ("by", "service, partner, locality or fund", false),
                ("method", "run-rate, profile or commitments", false),
                ("format", "json (the default) or xlsx", false),
            ],
            body: None,
            responds: &[
                "application/json",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ],
        },
        handler: || get(monitoring),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/imports",
            summary: "The ledger files imported, with checksums, rows and control totals",
            access: Access::Partnership(Permission::Read),
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(imports),
    },
    Route {
        doc: RouteDoc {
            method: "POST",
            path: "/api/v1/agreements/{key}/imports",
            summary: "Import a ledger extract (the request body), all or nothing; the same file twice adds nothing",
            access: Access::Partnership(Permission::ImportLedger),
            query: &[
                (
                    "file_name",
                    "The extract's file name, ending .csv or .xlsx",
                    true,
                ),
                (
                    "mapping",
                    "A mapping that comes with Concordat: concordat-ledger (the default: columns already in the agreement's ids) or gen-ledger (the benchmark ledger, onto Halton and St Helens)",
                    false,
                ),
            ],
            body: Some("application/octet-stream"),
            responds: JSON_ONLY,
        },
        handler: || {
            post(import).layer(axum::extract::DefaultBodyLimit::max(
                crate::UPLOAD_LIMIT_BYTES,
            ))
        },
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/funds/{fund}/statements",
            summary: "The quarterly statement or the year-end memorandum account",
            access: Access::Partnership(Permission::Read),
            query: &[
                ("quarter", "A quarter, e.g. 2024/25-Q2", false),
                (
                    "year",
                    "A financial year, e.g. 2024/25, for the memorandum account",
                    false,
                ),
                ("format", "pdf (the default), xlsx or csv", false),
                (
                    "table",
                    "With csv: which table (its name); the first if not given",
                    false,
                ),
            ],
            body: None,
            responds: &[
                "application/pdf",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "text/csv",
            ],
        },
        handler: || get(statements),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/meetings",
            summary: "Meetings: attendance, declarations of interest and agenda",
            access: Access::Partnership(Permission::Read),
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(meetings),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/decisions",
            summary: "The decision log, newest first, with how each decision was checked",
            access: Access::Partnership(Permission::Read),
            query: &[
                ("q", "Words that must all appear in the decision", false),
                ("published", "true: only those published", false),
            ],
            body: None,
            responds: &["application/json", "text/csv"],
        },
        handler: || get(decisions),
    },
    Route {
        doc: RouteDoc {
            method: "POST",
            path: "/api/v1/agreements/{key}/decisions",
            summary: "Check a decision against the terms of reference and the scheme of delegation and record it, with the budget changes it authorises, in one transaction; refused with the reason (and nothing recorded) if it does not stand",
            access: Access::Partnership(Permission::RecordProceedings),
            query: &[],
            body: Some("application/json"),
            responds: JSON_ONLY,
        },
        handler: || post(decision_record),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/disputes",
            summary: "Disputes, each with the steps of the escalation ladder reached and their time limits",
            access: Access::Partnership(Permission::Read),
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(disputes),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/complaints",
            summary: "Complaints and compliments, with acknowledgement and response dates",
            access: Access::Partnership(Permission::Read),
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(complaints),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/risks",
            summary: "The risk register, with each risk's score and rating",
            access: Access::Partnership(Permission::Read),
            query: &[],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(risks),
    },
    Route {
        doc: RouteDoc {
            method: "GET",
            path: "/api/v1/agreements/{key}/calendar",
            summary: "Everything with a date, from the agreement and the records, with what is overdue",
            access: Access::Partnership(Permission::Read),
            query: &[
                (
                    "from",
                    "The first financial year, e.g. 2024/25 (default: this one)",
                    false,
                ),
                ("to", "The last (default: the one after the first)", false),
            ],
            body: None,
            responds: JSON_ONLY,
        },
        handler: || get(calendar),
    },
];

pub(crate) fn routes() -> axum::Router<AppState> {
    crate::routes::build(ROUTES)
}

/// An error as the API gives it: `{"error": "...", "status": 404}`.
pub(crate) struct ApiError(WebError);

impl From<WebError> for ApiError {
    fn from(e: WebError) -> ApiError {
        ApiError(e)
    }
}

impl From<concordat_store::StoreError> for ApiError {
    fn from(e: concordat_store::StoreError) -> ApiError {
        ApiError(e.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let WebError::Internal(e) = &self.0 {
            tracing::error!(error = format!("{e:#}"), "API request failed");
        }
        let status = match self.0 {
            WebError::SignInFirst { .. } => StatusCode::UNAUTHORIZED,
            ref other => other.status(),
        };
        let (title, message) = self.0.words();
        let mut response = (
            status,
            Json(json!({"error": title, "detail": message, "status": status.as_u16()})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

/// A bearer token; or, for reading only, a signed-in browser session.
pub(crate) struct Caller(Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Caller(ApiClient::from_request_parts(parts, state).await?.0));
        }
        if parts.method == Method::GET
            && let Some(p) = crate::auth::session_principal(state, &parts.headers).await?
        {
            return Ok(Caller(p));
        }
        Err(ApiError(WebError::ApiUnauthorised))
    }
}

async fn openapi() -> Json<Value> {
    Json(crate::routes::openapi_document())
}

async fn agreements(State(state): State<AppState>, Caller(p): Caller) -> ApiResult {
    let list: Vec<Value> = state
        .store
        .list_agreements()
        .await?
        .into_iter()
        .filter(|a| p.roles_in(&a.partnership_key).is_ok())
        .map(|a| {
            json!({
                "id": a.partnership_key,
                "title": a.title,
                "status": a.status,
                "version": a.current_version,
                "updated_at": a.updated_at,
                "href": format!("/api/v1/agreements/{}", a.partnership_key),
            })
        })
        .collect();
    Ok(Json(json!({ "agreements": list })).into_response())
}

async fn agreement(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> ApiResult {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let stored = state
        .store
        .get_agreement(&key)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(Json(json!({
        "id": stored.partnership_key,
        "version": stored.current_version,
        "source_sha256": stored.source_sha256,
        "agreement": stored.model_json,
        "versions": stored.versions.iter().map(|v| json!({
            "version": v.version,
            "source_sha256": v.source_sha256,
            "file_name": crate::views::file_name(&v.source_path),
            "loaded_at": v.loaded_at,
            "loaded_by": v.loaded_by,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn funds(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> ApiResult {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    Ok(Json(json!({ "funds": a.funds })).into_response())
}

#[derive(Deserialize, Default)]
struct MonitoringQuery {
    #[serde(flatten)]
    fund: FundQuery,
    #[serde(default)]
    format: Option<String>,
}

async fn monitoring(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path((key, fund_id)): Path<(String, String)>,
    Query(q): Query<MonitoringQuery>,
) -> ApiResult {
    let (head, a) = visible_agreement_at(&state, &p, &key, Permission::Read).await?;
    let fund = fund_of(&a, &fund_id)?;
    let view = fund_view(&state, &a, &q.fund).await?;
    if let Some((message, _)) = view.errors.first() {
        return Err(WebError::BadRequest(message.clone()).into());
    }
    let m =
        crate::cache::monitoring(&state, head, &a, fund, view.period, view.method, view.by).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(&m).into_response()),
        "xlsx" => {
            let report = m.report(&a, fund, &p.display_name, &crate::views::when(&state.now()));
            let bytes = concordat_report::render_xlsx(&report).map_err(WebError::from)?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!(
                            "attachment; filename=\"monitor-{}-{}.xlsx\"",
                            fund.id,
                            concordat_app::file_part(&view.period.to_string())
                        ),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        other => Err(WebError::BadRequest(format!(
            "'{other}' is not a format: choose json or xlsx"
        ))
        .into()),
    }
}

async fn imports(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> ApiResult {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let list: Vec<Value> = state
        .store
        .imports(&key)
        .await?
        .into_iter()
        .map(|i| {
            json!({
                "import_id": i.import_id,
                "file_name": crate::views::file_name(&i.file_name),
                "file_sha256": i.file_sha256,
                "mapping_sha256": i.mapping_sha256,
                "imported_at": i.imported_at,
                "imported_by": i.imported_by,
                "rows": i.rows,
                "control_total": concordat_core::Money::from_pence(i.control_total_pence).to_plain(),
            })
        })
        .collect();
    Ok(Json(json!({ "imports": list })).into_response())
}

#[derive(Deserialize, Default)]
struct ImportQuery {
    #[serde(default)]
    file_name: String,
    #[serde(default)]
    mapping: Option<String>,
}

async fn import(
    State(state): State<AppState>,
    ApiClient(p): ApiClient,
    Path(key): Path<String>,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> ApiResult {
    let a = visible_agreement(&state, &p, &key, Permission::ImportLedger).await?;
    let file_name = q.file_name.trim().to_string();
    if file_name.is_empty() {
        return Err(WebError::BadRequest(
            "Give the extract's file name as ?file_name=NAME.csv".into(),
        )
        .into());
    }
    let mapping_name = q.mapping.as_deref().unwrap_or(crate::manage::MAPPINGS[0].0);
    let Some((_, _, mapping_text)) = crate::manage::MAPPINGS
        .iter()
        .find(|(n, _, _)| *n == mapping_name)
    else {
        return Err(WebError::BadRequest(format!(
            "There is no mapping '{mapping_name}'; use concordat-ledger or gen-ledger"
        ))
        .into());
    };
    let dir = tempfile::tempdir().map_err(|e| WebError::Internal(e.into()))?;
    let ext = std::path::Path::new(&file_name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("csv")
        .to_lowercase();
    let file = dir.path().join(format!("upload.{ext}"));
    let mapping = dir.path().join("mapping.toml");
    std::fs::write(&file, &body).map_err(|e| WebError::Internal(e.into()))?;
    std::fs::write(&mapping, mapping_text).map_err(|e| WebError::Internal(e.into()))?;
    let result = concordat_app::import::import(
        state.store.as_ref(),
        &p.actor(),
        &state.now(),
        concordat_app::import::ImportRequest {
            agreement: &a,
            file: &file,
            mapping: &mapping,
            max_errors: 100,
            progress: None,
            file_label: Some(&file_name),
        },
    )
    .await;
    match result {
        Ok(concordat_app::import::Imported::New {
            outcome, summary, ..
        }) => Ok((
            StatusCode::CREATED,
            Json(json!({
                "imported": true,
                "import_id": outcome.import_id,
                "rows": outcome.rows,
                "control_total": summary.control_total.to_plain(),
                "debits": summary.debit_total.to_plain(),
                "credits": summary.credit_total.to_plain(),
                "sha256": summary.sha256,
            })),
        )
            .into_response()),
        Ok(concordat_app::import::Imported::AlreadyImported {
            import_id,
            rows,
            control_total_pence,
            ..
        }) => Ok(Json(json!({
            "imported": false,
            "already_imported_as": import_id,
            "rows": rows,
            "control_total": concordat_core::Money::from_pence(control_total_pence).to_plain(),
        }))
        .into_response()),
        Err(e) => {
            let body = match e.downcast_ref::<concordat_app::import::BadRows>() {
                Some(bad) => json!({
                    "imported": false,
                    "error": "bad rows; nothing was imported",
                    "bad_rows": bad.bad_rows,
                    "rows": bad.rows.iter().map(|r| json!({"line": r.line, "column": r.column, "value": r.value, "reason": r.reason})).collect::<Vec<_>>(),
                }),
                None => json!({
                    "imported": false,
                    "error": format!("{e:#}")
                        .replace(&file.display().to_string(), &file_name)
                        .replace(&mapping.display().to_string(), "the mapping"),
                }),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
        }
    }
}

async fn statements(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path((key, fund_id)): Path<(String, String)>,
    Query(q): Query<StatementQuery>,
) -> ApiResult {
    Ok(statement_bytes(&state, &p, &key, &fund_id, &q).await?)
}

// ---------------------------------------------------------------------------------------------
// Governance

async fn meetings(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> ApiResult {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let list = concordat_app::governance::meetings(state.store.as_ref(), &key).await?;
    Ok(Json(json!({"agreement": key, "meetings": list})).into_response())
}

#[derive(Deserialize, Default)]
struct DecisionsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    published: Option<bool>,
    #[serde(default)]
    format: Option<String>,
}

async fn decisions(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
    Query(q): Query<DecisionsQuery>,
) -> ApiResult {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let log = concordat_app::governance::decision_log(
        state.store.as_ref(),
        &key,
        &q.q,
        q.published.unwrap_or(false),
    )
    .await?;
    match q.format.as_deref() {
        None | Some("json") => {
            Ok(Json(json!({"agreement": key, "decisions": log})).into_response())
        }
        Some("csv") => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            concordat_app::governance::decisions_csv(&log),
        )
            .into_response()),
        Some(other) => {
            Err(WebError::BadRequest(format!("format '{other}' is not json or csv")).into())
        }
    }
}

/// A decision as posted: the proposal's fields, and the budget changes it makes.
#[derive(Deserialize)]
struct DecisionBody {
    #[serde(flatten)]
    proposal: concordat_core::proceedings::Proposal,
    #[serde(default)]
    budget_changes: Vec<BudgetChangeBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetChangeBody {
    year: concordat_core::FinancialYear,
    service_line: String,
    annual: concordat_core::Money,
    #[serde(default)]
    partner: Option<String>,
    #[serde(default)]
    locality: Option<String>,
    #[serde(default)]
    phasing: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

async fn decision_record(
    State(state): State<AppState>,
    ApiClient(p): ApiClient,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult {
    let a = visible_agreement(&state, &p, &key, Permission::RecordProceedings).await?;
    let posted: DecisionBody = serde_json::from_slice(&body).map_err(|e| {
        WebError::BadRequest(format!(
            "The body is not a decision: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let changes = posted
        .budget_changes
        .into_iter()
        .map(|c| concordat_app::BudgetRequest {
            year: c.year,
            service_line: c.service_line,
            partner: c.partner,
            locality: c.locality,
            annual: c.annual,
            phasing: c.phasing.unwrap_or_else(|| "even".into()),
            client_income: concordat_core::Money::ZERO,
            reason: c.reason.unwrap_or_else(|| posted.proposal.title.clone()),
            authority: None,
            delegated: None,
            new_line: false,
        })
        .collect();
    match concordat_app::governance::record_decision(
        state.store.as_ref(),
        &p.actor(),
        &state.now(),
        &a,
        &posted.proposal,
        changes,
    )
    .await
    {
        Ok(recorded) => Ok((StatusCode::CREATED, Json(json!(recorded))).into_response()),
        Err(e) => {
            let (field, message) = match concordat_app::Refused::of(e)? {
                concordat_app::Refused::Governance(r) => (r.field.to_string(), r.message),
                concordat_app::Refused::Budget(r) => {
                    (format!("budget_changes.{}", r.field), r.message)
                }
            };
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "The decision does not stand", "detail": message, "field": field, "status": 422})),
            )
                .into_response())
        }
    }
}

async fn disputes(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> ApiResult {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let today = state.today();
    let list: Vec<Value> = concordat_app::governance::disputes(state.store.as_ref(), &key)
        .await?
        .into_iter()
        .map(|d| json!({"overdue": d.overdue(today), "dispute": d}))
        .collect();
    Ok(Json(json!({"agreement": key, "disputes": list})).into_response())
}

async fn complaints(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> ApiResult {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let today = state.today();
    let list: Vec<Value> = concordat_app::governance::complaints(state.store.as_ref(), &key)
        .await?
        .into_iter()
        .map(|c| json!({"overdue": c.overdue(today), "next_due": c.next_due().map(|(what, d)| json!({"what": what, "by": d})), "complaint": c}))
        .collect();
    Ok(Json(json!({"agreement": key, "complaints": list})).into_response())
}

async fn risks(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> ApiResult {
    visible_agreement(&state, &p, &key, Permission::Read).await?;
    let today = state.today();
    let list: Vec<Value> = concordat_app::governance::risks(state.store.as_ref(), &key)
        .await?
        .into_iter()
        .map(|r| json!({"score": r.score(), "rating": r.rating(), "review_overdue": r.review_overdue(today), "risk": r}))
        .collect();
    Ok(Json(json!({"agreement": key, "risks": list})).into_response())
}

#[derive(Deserialize, Default)]
struct YearsQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

async fn calendar(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
    Query(q): Query<YearsQuery>,
) -> ApiResult {
    let a = visible_agreement(&state, &p, &key, Permission::Read).await?;
    let today = state.today();
    let parse = |t: &str| {
        t.parse::<concordat_core::FinancialYear>().map_err(|_| {
            ApiError(WebError::BadRequest(format!(
                "'{t}' is not a financial year like 2024/25"
            )))
        })
    };
    let from = match q.from.as_deref() {
        Some(t) => parse(t)?,
        None => concordat_app::governance::calendar_years(today).0,
    };
    let to = match q.to.as_deref() {
        Some(t) => parse(t)?,
        None => from.next(),
    };
    let items: Vec<Value> = concordat_app::governance::calendar(state.store.as_ref(), &a, from, to)
        .await?
        .into_iter()
        .map(|o| json!({"due": o.due, "kind": o.kind, "title": o.title, "basis": o.basis, "fund": o.fund, "open": o.open, "overdue": o.overdue(today)}))
        .collect();
    Ok(Json(json!({"agreement": key, "from": from.to_string(), "to": to.to_string(), "obligations": items})).into_response())
}
