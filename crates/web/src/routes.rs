//! The route table: every page and API endpoint, with what it needs. The router is built
//! from these tables, and the OpenAPI document is generated from the API's, so a route that
//! is not documented cannot exist. The access test walks the same tables.

use axum::routing::MethodRouter;
use concordat_core::access::Permission;
use serde_json::{Map, Value, json};

use crate::AppState;

/// Who may reach a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in, health, assets, the OpenAPI document).
    Public,
    /// Any signed-in user (or any valid token); what is listed depends on their grants.
    SignedIn,
    /// A role in the partnership named in the path that allows this.
    Partnership(Permission),
}

/// One route, as documented.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// Query parameters: (name, description, required).
    pub query: &'static [(&'static str, &'static str, bool)],
    /// The request body's media type, if it takes one.
    pub body: Option<&'static str>,
    /// The media types it answers with when it succeeds.
    pub responds: &'static [&'static str],
}

pub(crate) struct Route {
    pub doc: RouteDoc,
    pub handler: fn() -> MethodRouter<AppState>,
}

/// Every route: the pages, then the API.
pub static ROUTES: std::sync::LazyLock<Vec<RouteDoc>> = std::sync::LazyLock::new(|| {
    crate::pages::ROUTES
        .iter()
        .chain(crate::governance::ROUTES.iter())
        .chain(crate::api::ROUTES.iter())
        .map(|r| r.doc)
        .collect()
});

pub(crate) fn build(routes: &[Route]) -> axum::Router<AppState> {
    let mut by_path: Vec<(&str, MethodRouter<AppState>)> = Vec::new();
    for r in routes {
        if let Some((_, m)) = by_path.iter_mut().find(|(p, _)| *p == r.doc.path) {
            let merged = std::mem::take(m).merge((r.handler)());
            *m = merged;
        } else {
            by_path.push((r.doc.path, (r.handler)()));
        }
    }
    by_path
        .into_iter()
        .fold(axum::Router::new(), |router, (path, m)| {
            router.route(path, m)
        })
}

fn permission_text(access: Access) -> String {
    match access {
        Access::Public => "No sign-in needed.".into(),
        Access::SignedIn => "Any valid token; lists only the partnerships the token is for.".into(),
        Access::Partnership(p) => format!(
            "A token for the partnership in the path, with a role that allows `{}`. A token for another partnership gets 404.",
            serde_json::to_value(p)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ),
    }
}

/// The OpenAPI 3.1 document for `/api/v1`, generated from the API's route table.
pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for r in crate::api::ROUTES.iter().map(|r| r.doc) {
        let mut parameters: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(r.query.iter().map(|(name, description, required)| {
            json!({"name": name, "in": "query", "required": required, "description": description, "schema": {"type": "string"}})
        }));
        let mut content = Map::new();
        for media in r.responds {
            content.insert((*media).to_string(), json!({}));
        }
        let mut operation = json!({
            "summary": r.summary,
            "description": permission_text(r.access),
            "operationId": operation_id(r.method, r.path),
            "parameters": parameters,
            "responses": {
                (if r.method == "POST" { "201" } else { "200" }): {"description": if r.method == "POST" { "Created" } else { "OK" }, "content": content},
                "400": {"description": "A parameter is not one the route takes (the detail says which)"},
                "401": {"description": "No valid bearer token"},
                "403": {"description": "The token's role does not allow this"},
                "404": {"description": "Not found, or not visible to this token"}
            }
        });
        if r.access == Access::Public {
            operation["security"] = json!([]);
        }
        if r.method == "POST" && r.path.ends_with("/imports") {
            // An import that cannot be made: bad rows (each listed) or a refusal.
            operation["responses"]["200"] =
                json!({"description": "The same file was imported before; nothing was added"});
            operation["responses"]["422"] = json!({"description": "Nothing was imported: the bad rows, or why the file was refused"});
        } else if r.method == "POST" {
            operation["responses"]["422"] = json!({"description": "Refused, and nothing recorded: `detail` says why and `field` which field"});
        }
        if let Some(media) = r.body {
            let schema = if media == "application/json" {
                json!({"type": "object"})
            } else {
                json!({"type": "string", "format": "binary"})
            };
            operation["requestBody"] = json!({
                "required": true,
                "content": { media: {"schema": schema} }
            });
        }
        paths
            .entry(r.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("an object")
            .insert(r.method.to_lowercase(), operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Concordat API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Section 75 partnerships: agreements, funds, monitoring, imports and statements. Amounts are decimal pounds with two decimals, as strings; periods are written 2024/25-P06."
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_lowercase();
    for part in path.trim_start_matches("/api/v1/").split('/') {
        let part = part.trim_start_matches('{').trim_end_matches('}');
        id.push('_');
        id.push_str(&part.replace(['-', '.'], "_"));
    }
    id
}
