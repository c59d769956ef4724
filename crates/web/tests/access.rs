//! Who may see and do what, walked through the real router: every page and API route, with
//! every role, with no one signed in, with a user of an organisation party to nothing, and
//! with an administrator of another partnership. Also: a forged form post, a cookie reused
//! after sign-out, throttled sign-in, security headers, and the OpenAPI document against the
//! route table. Each case runs on SQLite and on PostgreSQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use concordat_core::access::{Permission, Role};
use concordat_store::{
    AccountChange, Actor, ApiTokenRow, GrantRow, NewUser, OrganisationRow, Store,
};
use concordat_web::{Access, AppState, Config, ROUTES};
use http_body_util::BodyExt;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

struct App {
    router: axum::Router,
    store: Arc<dyn Store>,
}

impl App {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).to_string(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut r = Request::builder().method(Method::GET).uri(path);
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        self.send(r.body(Body::empty()).unwrap()).await
    }

    async fn post_form(&self, path: &str, cookie: Option<&str>, form: &str) -> Reply {
        let mut r = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        self.send(r.body(Body::from(form.to_string())).unwrap())
            .await
    }

    async fn post_multipart(
        &self,
        path: &str,
        cookie: &str,
        fields: &[(&str, Option<&str>, &str)],
    ) -> Reply {
        let boundary = "concordat-test-boundary";
        let mut body = String::new();
        for (name, file_name, value) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
            ));
            if let Some(f) = file_name {
                body.push_str(&format!("; filename=\"{f}\"\r\nContent-Type: text/csv"));
            }
            body.push_str(&format!("\r\n\r\n{value}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let r = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::COOKIE, cookie)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        self.send(r).await
    }

    async fn api_json(&self, path: &str, token: &str, body: &serde_json::Value) -> Reply {
        let r = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json");
        self.send(r.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn api(&self, method: Method, path: &str, token: Option<&str>) -> Reply {
        let mut r = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(r.body(Body::empty()).unwrap()).await
    }
}

fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

fn csrf_in(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    body[at..at + 64].to_string()
}

/// A signed-in browser: its session cookie and the session's CSRF token.
#[derive(Clone)]
struct Browser {
    cookie: String,
    csrf: String,
}

async fn sign_in(app: &App, username: &str, password: &str) -> Result<Browser, Reply> {
    let form = app.get("/sign-in", None).await;
    let pre = set_cookie(&form, "concordat_sign_in").expect("a sign-in cookie");
    let token = csrf_in(&form.body);
    let reply = app
        .post_form(
            "/sign-in",
            Some(&pre),
            &format!(
                "csrf={token}&username={username}&password={}&next=/agreements",
                password.replace(' ', "+")
            ),
        )
        .await;
    if reply.status != StatusCode::SEE_OTHER {
        return Err(reply);
    }
    let cookie = set_cookie(&reply, "concordat_session").expect("a session cookie");
    let register = app.get("/agreements", Some(&cookie)).await;
    assert_eq!(register.status, StatusCode::OK, "{}", register.body);
    Ok(Browser {
        csrf: csrf_in(&register.body),
        cookie,
    })
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/agreements")
            .join(name),
    )
    .expect("an example agreement")
}

async fn load(store: &dyn Store, name: &str) {
    let file = concordat_io::parse_agreement(name, example(name));
    let agreement = file.agreement.clone().expect("a valid example");
    let load = concordat_app::agreement_load(&file, &agreement).expect("a load");
    store
        .load_agreement(&Actor::new("test"), "2026-01-01T00:00:00.000000Z", load)
        .await
        .expect("loaded");
}

async fn account(store: &dyn Store, change: AccountChange) {
    store
        .change_accounts(&Actor::new("test"), "2026-01-01T00:00:00.000000Z", change)
        .await
        .expect("the account change");
}

/// Two partnerships, organisations for their parties and one party to nothing, a user per
/// role in Hertfordshire, an outsider, and Trafford's administrator; a token per role.
async fn app(url: &str) -> (App, BTreeMap<String, String>) {
    app_with(url, Config::default()).await
}

/// A held meeting of Hertfordshire's board with one paper, so the meeting routes can be
/// walked: `MEETING`, paper 1.
async fn board_meeting(store: &dyn Store) {
    let file = concordat_io::parse_agreement("hertfordshire.toml", example("hertfordshire.toml"));
    let agreement = file.agreement.expect("a valid example");
    let meeting: concordat_core::proceedings::Meeting = serde_json::from_value(serde_json::json!({
        "reference": MEETING,
        "body": "jcpb",
        "date": "2001-07-09",
        "status": "held",
        "attendance": [
            {"name": "Cllr A", "partner": "county-council", "capacity": "member"},
            {"name": "PCT member B", "partner": "pcts", "capacity": "member"}
        ],
        "agenda": [{"number": 1, "title": "Budget monitoring"}]
    }))
    .expect("a meeting");
    let actor = Actor::new("test");
    let at = "2026-01-01T00:00:00.000000Z";
    concordat_app::governance::record_meeting(store, &actor, at, &agreement, &meeting, true)
        .await
        .expect("the meeting");
    concordat_app::governance::add_paper(
        store,
        &actor,
        at,
        "hertfordshire",
        concordat_app::governance::NewPaper {
            meeting: MEETING,
            title: "Finance report",
            file_name: "finance.txt",
            content: b"Month 3 position".to_vec(),
        },
    )
    .await
    .expect("the paper");
}

const MEETING: &str = "JCPB-2001-07";

async fn app_with(url: &str, config: Config) -> (App, BTreeMap<String, String>) {
    let store: Arc<dyn Store> = Arc::from(concordat_store::open(url).await.expect("a store"));
    load(store.as_ref(), "hertfordshire.toml").await;
    board_meeting(store.as_ref()).await;
    load(store.as_ref(), "trafford.toml").await;
    for (key, name) in [
        ("herts-cc", "Hertfordshire County Council"),
        ("trafford-council", "Trafford Council"),
        ("elsewhere", "Elsewhere District Council"),
    ] {
        account(
            store.as_ref(),
            AccountChange::AddOrganisation(OrganisationRow {
                org_key: key.into(),
                name: name.into(),
            }),
        )
        .await;
    }
    account(
        store.as_ref(),
        AccountChange::LinkParty {
            org_key: "herts-cc".into(),
            partnership_key: "hertfordshire".into(),
            partner_id: "county-council".into(),
        },
    )
    .await;
    account(
        store.as_ref(),
        AccountChange::LinkParty {
            org_key: "trafford-council".into(),
            partnership_key: "trafford".into(),
            partner_id: "council".into(),
        },
    )
    .await;
    let hash = concordat_web::hash_password(PASSWORD).unwrap();
    let mut users: Vec<(String, &str)> = Role::ALL
        .iter()
        .map(|r| (r.as_str().replace('_', "-"), "herts-cc"))
        .collect();
    users.push(("outsider".into(), "elsewhere"));
    users.push(("trafford-admin".into(), "trafford-council"));
    for (username, org) in &users {
        account(
            store.as_ref(),
            AccountChange::AddUser(NewUser {
                username: username.clone(),
                display_name: username.clone(),
                org_key: (*org).into(),
                password_hash: hash.clone(),
            }),
        )
        .await;
    }
    for role in Role::ALL {
        account(
            store.as_ref(),
            AccountChange::Grant(GrantRow {
                partnership_key: "hertfordshire".into(),
                username: role.as_str().replace('_', "-"),
                role: role.as_str().into(),
                granted_at: String::new(),
                granted_by: String::new(),
                outside_reason: None,
            }),
        )
        .await;
    }
    account(
        store.as_ref(),
        AccountChange::Grant(GrantRow {
            partnership_key: "trafford".into(),
            username: "trafford-admin".into(),
            role: "administrator".into(),
            granted_at: String::new(),
            granted_by: String::new(),
            outside_reason: None,
        }),
    )
    .await;
    let mut tokens = BTreeMap::new();
    for (key, role) in Role::ALL
        .iter()
        .map(|r| ("hertfordshire", *r))
        .chain([("trafford", Role::Administrator)])
    {
        let secret = format!("secret-{key}-{}", role.as_str());
        account(
            store.as_ref(),
            AccountChange::CreateToken(ApiTokenRow {
                partnership_key: key.into(),
                token_id: format!("tok-{key}-{}", role.as_str().replace('_', "-")),
                token_hash: concordat_web::token_hash(&secret),
                name: "test".into(),
                role: role.as_str().into(),
                created_at: String::new(),
                created_by: String::new(),
                revoked_at: None,
            }),
        )
        .await;
        tokens.insert(format!("{key}:{}", role.as_str()), secret);
    }
    let state = AppState::new(store.clone(), config);
    (
        App {
            router: concordat_web::router(state),
            store,
        },
        tokens,
    )
}

fn concrete(path: &str, job: &str) -> String {
    path.replace("{key}", "hertfordshire")
        .replace("{fund}", "mental-health")
        .replace("{job}", job)
        .replace("{meeting}", MEETING)
        .replace("{paper}", "1")
}

/// What a route must answer: `Ok` statuses for someone allowed; the refusal otherwise.
fn allowed(status: StatusCode) -> bool {
    !matches!(
        status,
        StatusCode::FORBIDDEN
            | StatusCode::NOT_FOUND
            | StatusCode::UNAUTHORIZED
            | StatusCode::SEE_OTHER
    ) && !status.is_server_error()
}

async fn page_request(app: &App, method: &str, path: &str, who: Option<&Browser>) -> Reply {
    let cookie = who.map(|b| b.cookie.as_str());
    let csrf = who.map_or("", |b| b.csrf.as_str());
    match method {
        "GET" => app.get(path, cookie).await,
        _ if path.ends_with("/imports")
            || path.ends_with("/versions")
            || path.ends_with("/papers") =>
        {
            match cookie {
                Some(c) => app.post_multipart(path, c, &[("csrf", None, csrf)]).await,
                None => app.post_form(path, None, "").await,
            }
        }
        _ => app.post_form(path, cookie, &format!("csrf={csrf}")).await,
    }
}

async fn route_matrix(url: &str) {
    let (app, tokens) = app(url).await;
    let mut browsers: BTreeMap<String, Browser> = BTreeMap::new();
    for role in Role::ALL {
        let name = role.as_str().replace('_', "-");
        browsers.insert(
            name.clone(),
            sign_in(&app, &name, PASSWORD)
                .await
                .unwrap_or_else(|r| panic!("{name} signs in: {}", r.status)),
        );
    }
    let outsider = sign_in(&app, "outsider", PASSWORD)
        .await
        .ok()
        .expect("the outsider signs in");
    let other_admin = sign_in(&app, "trafford-admin", PASSWORD)
        .await
        .ok()
        .expect("Trafford's administrator signs in");

    // A real import job, so its page can be walked too.
    let pm = browsers["pool-manager"].clone();
    let csv = "date,fund,service,partner,subjective,supplier,reference,amount\n2001-11-15,mental-health,Home care,county-council,5000,Acme,T-1,100.00\n";
    let started = app
        .post_multipart(
            "/agreements/hertfordshire/imports",
            &pm.cookie,
            &[
                ("csrf", None, &pm.csrf),
                ("file", Some("t.csv"), csv),
                ("mapping", None, "gen-ledger"),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let location = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let job = location.rsplit('/').next().unwrap().to_string();
    let result = app.get(&location, Some(&pm.cookie)).await;
    assert!(result.body.contains("is imported"), "{}", result.body);

    let mut checked = 0;
    for route in ROUTES.iter() {
        let path = concrete(route.path, &job);
        let api = route.path.starts_with("/api/");
        // The sign-out route ends the session it is given: walk it last, separately.
        if route.path == "/sign-out" {
            continue;
        }
        match route.access {
            Access::Public => {
                let r = if api {
                    app.api(Method::GET, &path, None).await
                } else {
                    page_request(&app, route.method, &path, None).await
                };
                assert!(
                    !r.status.is_server_error() && r.status != StatusCode::NOT_FOUND,
                    "{} {path} anonymous: {}",
                    route.method,
                    r.status
                );
            }
            Access::SignedIn | Access::Partnership(_) => {
                // No one signed in: the sign-in page, or 401 from the API.
                let r = if api {
                    app.api(route.method.parse().unwrap(), &path, None).await
                } else {
                    page_request(&app, route.method, &path, None).await
                };
                let want = if api {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::SEE_OTHER
                };
                assert_eq!(r.status, want, "{} {path} anonymous", route.method);
                if !api {
                    assert!(
                        r.headers[header::LOCATION]
                            .to_str()
                            .unwrap()
                            .starts_with("/sign-in"),
                        "{path}"
                    );
                }
            }
        }
        let Access::Partnership(permission) = route.access else {
            if route.access == Access::SignedIn {
                for (name, b) in &browsers {
                    let r = if api {
                        app.get(&path, Some(&b.cookie)).await
                    } else {
                        page_request(&app, route.method, &path, Some(b)).await
                    };
                    assert!(
                        allowed(r.status),
                        "{} {path} as {name}: {}",
                        route.method,
                        r.status
                    );
                }
                if api {
                    // A token lists only its own partnership.
                    let r = app
                        .api(Method::GET, &path, Some(&tokens["trafford:administrator"]))
                        .await;
                    assert!(
                        r.body.contains("\"trafford\"") && !r.body.contains("\"hertfordshire\""),
                        "{}",
                        r.body
                    );
                } else {
                    let r = app.get(&path, Some(&outsider.cookie)).await;
                    assert!(
                        !r.body.contains("/agreements/hertfordshire")
                            && !r.body.contains("/agreements/trafford"),
                        "the outsider's register lists nothing"
                    );
                }
            }
            continue;
        };
        for role in Role::ALL {
            let name = role.as_str().replace('_', "-");
            let expect_ok = role.allows(permission);
            let r = if api {
                let token = &tokens[&format!("hertfordshire:{}", role.as_str())];
                app.api(route.method.parse().unwrap(), &path, Some(token))
                    .await
            } else {
                page_request(&app, route.method, &path, Some(&browsers[&name])).await
            };
            if expect_ok {
                assert!(
                    allowed(r.status),
                    "{} {path} as {name} should be allowed: {} {}",
                    route.method,
                    r.status,
                    &r.body[..r.body.len().min(400)]
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{} {path} as {name} should be refused",
                    route.method
                );
            }
            checked += 1;
        }
        // Users and tokens of other organisations and partnerships see nothing: 404, the same
        // as a partnership that does not exist.
        for (who, b) in [
            ("outsider", &outsider),
            ("Trafford's administrator", &other_admin),
        ] {
            let r = match (api, route.method) {
                (true, "GET") => app.get(&path, Some(&b.cookie)).await,
                (true, _) => app.post_form(&path, Some(&b.cookie), "").await,
                (false, method) => page_request(&app, method, &path, Some(b)).await,
            };
            if api && route.method == "POST" {
                // The API takes writes from tokens only.
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} as {who}");
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::NOT_FOUND,
                    "{} {path} as {who}",
                    route.method
                );
            }
        }
        if api {
            let r = app
                .api(
                    route.method.parse().unwrap(),
                    &path,
                    Some(&tokens["trafford:administrator"]),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{} {path} with Trafford's token",
                route.method
            );
        }
        checked += 1;
    }
    assert!(checked > 100, "walked {checked} route and role pairs");

    // A partnership that is not visible answers exactly as one that does not exist.
    let hidden = app
        .get("/agreements/hertfordshire", Some(&outsider.cookie))
        .await;
    let missing = app
        .get("/agreements/no-such-partnership", Some(&outsider.cookie))
        .await;
    assert_eq!(
        (hidden.status, hidden.body.clone()),
        (missing.status, missing.body),
        "the 404 pages leak nothing"
    );
    assert!(!hidden.body.contains("Hertfordshire"), "{}", hidden.body);

    // Every page carries the security headers.
    for name in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(hidden.headers.contains_key(name), "{name} is set");
    }
    assert!(
        hidden.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(
        !hidden.headers.contains_key("strict-transport-security"),
        "no HSTS without TLS"
    );
    let _ = app.store.organisations().await.unwrap();
}

async fn csrf_and_sessions(url: &str) {
    let (app, _) = app(url).await;
    let pm = sign_in(&app, "pool-manager", PASSWORD).await.ok().unwrap();
    let closed_before = app.store.closed_periods("hertfordshire").await.unwrap();

    // A forged form: the right cookie (the browser sends it) but not the session's token.
    let forged = app
        .post_form(
            "/agreements/hertfordshire/periods",
            Some(&pm.cookie),
            "csrf=0000&period=2001/02-P01&confirm=CLOSE",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged.body.contains("This form has expired"),
        "{}",
        forged.body
    );
    let no_token = app
        .post_form(
            "/agreements/hertfordshire/periods",
            Some(&pm.cookie),
            "period=2001/02-P01&confirm=CLOSE",
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.store.closed_periods("hertfordshire").await.unwrap(),
        closed_before,
        "nothing was closed"
    );

    // With the session's token, the same form works.
    let real = app
        .post_form(
            "/agreements/hertfordshire/periods",
            Some(&pm.cookie),
            &format!("csrf={}&period=2001/02-P01&confirm=CLOSE", pm.csrf),
        )
        .await;
    // Post, redirect, get: reloading the page shown does not close anything again.
    assert_eq!(real.status, StatusCode::SEE_OTHER, "{}", real.body);
    let shown = app
        .get(
            real.headers[header::LOCATION].to_str().unwrap(),
            Some(&pm.cookie),
        )
        .await;
    assert!(
        shown.body.contains("2001/02-P01 is closed"),
        "{}",
        shown.body
    );
    assert!(
        app.store
            .closed_periods("hertfordshire")
            .await
            .unwrap()
            .contains(&(2001, 1))
    );

    // Another session's token does not pass for this one.
    let other = sign_in(&app, "finance-officer", PASSWORD)
        .await
        .ok()
        .unwrap();
    let crossed = app
        .post_form(
            "/agreements/hertfordshire/periods",
            Some(&pm.cookie),
            &format!("csrf={}&period=2001/02-P02&confirm=CLOSE", other.csrf),
        )
        .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);

    // A sign-in form posted without its cookie is refused too.
    let login_form = app.get("/sign-in", None).await;
    let token = csrf_in(&login_form.body);
    let cross_site = app
        .post_form(
            "/sign-in",
            None,
            &format!("csrf={token}&username=pool-manager&password=x"),
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);

    // Sign out, then try the stolen cookie: the session is over in the database.
    let out = app
        .post_form("/sign-out", Some(&pm.cookie), &format!("csrf={}", pm.csrf))
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        set_cookie(&out, "concordat_session").is_some_and(|c| c == "concordat_session="),
        "the cookie is cleared"
    );
    let stolen = app.get("/agreements/hertfordshire", Some(&pm.cookie)).await;
    assert_eq!(
        stolen.status,
        StatusCode::SEE_OTHER,
        "a page sends the stolen cookie to sign in"
    );
    let stolen_api = app
        .get("/api/v1/agreements/hertfordshire", Some(&pm.cookie))
        .await;
    assert_eq!(stolen_api.status, StatusCode::UNAUTHORIZED);
    let stolen_post = app
        .post_form(
            "/agreements/hertfordshire/periods",
            Some(&pm.cookie),
            &format!("csrf={}&period=2001/02-P03&confirm=CLOSE", pm.csrf),
        )
        .await;
    assert_eq!(stolen_post.status, StatusCode::SEE_OTHER);
    assert!(
        !app.store
            .closed_periods("hertfordshire")
            .await
            .unwrap()
            .contains(&(2001, 3))
    );

    // Cookies: HttpOnly and SameSite, never readable by script.
    let login_form = app.get("/sign-in", None).await;
    let raw = login_form.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        raw.contains("HttpOnly") && raw.contains("SameSite=Lax"),
        "{raw}"
    );

    // A revoked token stops working.
    let secret = "secret-hertfordshire-viewer";
    assert_eq!(
        app.api(
            Method::GET,
            "/api/v1/agreements/hertfordshire",
            Some(secret)
        )
        .await
        .status,
        StatusCode::OK
    );
    app.store
        .change_accounts(
            &Actor::new("test"),
            "2026-01-02T00:00:00.000000Z",
            AccountChange::RevokeToken {
                partnership_key: "hertfordshire".into(),
                token_id: "tok-hertfordshire-viewer".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        app.api(
            Method::GET,
            "/api/v1/agreements/hertfordshire",
            Some(secret)
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn throttling(url: &str) {
    let (app, _) = app(url).await;
    for attempt in 1..=5 {
        let r = sign_in(&app, "viewer", "not the password")
            .await
            .err()
            .expect("a wrong password fails");
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert!(r.body.contains("The user name or password is not right"));
    }
    // The sixth attempt is refused even with the right password.
    let r = sign_in(&app, "viewer", PASSWORD)
        .await
        .err()
        .expect("throttled");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("too many failed attempts"), "{}", r.body);
    // Other accounts are not affected.
    assert!(sign_in(&app, "auditor", PASSWORD).await.is_ok());
    // Failures are in the audit log.
    let log = app
        .store
        .audit_log(Some(concordat_store::ACCOUNTS_CHAIN))
        .await
        .unwrap();
    assert_eq!(
        log.iter().filter(|r| r.action == "sign_in.failed").count(),
        5
    );
    let unknown = sign_in(&app, "nobody", PASSWORD)
        .await
        .err()
        .expect("no such user");
    assert_eq!(
        unknown.status,
        StatusCode::UNAUTHORIZED,
        "an unknown user is told the same as a wrong password"
    );
    // A name that does not exist is throttled the same way, so throttling does not tell
    // which names exist.
    for _ in 0..4 {
        let _ = sign_in(&app, "nobody", "not the password").await;
    }
    let r = sign_in(&app, "nobody", PASSWORD)
        .await
        .err()
        .expect("throttled");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let log = app
        .store
        .audit_log(Some(concordat_store::ACCOUNTS_CHAIN))
        .await
        .unwrap();
    assert!(
        log.iter()
            .filter(|r| r.action == "sign_in.failed")
            .all(|r| r.actor == "web:sign-in"),
        "a failed sign-in is not recorded as the act of the user whose name was typed"
    );
}

async fn grants_outside(url: &str) {
    let (app, _) = app(url).await;
    let grant = |reason: Option<&str>| {
        AccountChange::Grant(GrantRow {
            partnership_key: "hertfordshire".into(),
            username: "outsider".into(),
            role: "auditor".into(),
            granted_at: String::new(),
            granted_by: String::new(),
            outside_reason: reason.map(str::to_string),
        })
    };
    let refused = app
        .store
        .change_accounts(
            &Actor::new("test"),
            "2026-01-03T00:00:00.000000Z",
            grant(None),
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not party to hertfordshire"),
        "{refused}"
    );
    let outsider = sign_in(&app, "outsider", PASSWORD).await.ok().unwrap();
    assert_eq!(
        app.get("/agreements/hertfordshire", Some(&outsider.cookie))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // With a reason (an external auditor, say), the grant is made and recorded.
    app.store
        .change_accounts(
            &Actor::new("test"),
            "2026-01-03T00:00:00.000000Z",
            grant(Some("external auditor for 2024/25")),
        )
        .await
        .unwrap();
    let page = app
        .get("/agreements/hertfordshire", Some(&outsider.cookie))
        .await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the grant takes effect at once"
    );
    let log = app.store.audit_log(Some("hertfordshire")).await.unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.action, "role.grant");
    assert!(
        last.after_json
            .as_deref()
            .unwrap()
            .contains("external auditor"),
        "{last:?}"
    );
    // The auditor reads the audit log but cannot close a period.
    assert_eq!(
        app.get("/agreements/hertfordshire/audit", Some(&outsider.cookie))
            .await
            .status,
        StatusCode::OK
    );
    let close = app
        .post_form(
            "/agreements/hertfordshire/periods",
            Some(&outsider.cookie),
            &format!("csrf={}&period=2001/02-P01&confirm=CLOSE", outsider.csrf),
        )
        .await;
    assert_eq!(close.status, StatusCode::FORBIDDEN);
}

async fn versions(url: &str) {
    let (app, _) = app(url).await;
    let secretary = sign_in(&app, "board-secretary", PASSWORD)
        .await
        .ok()
        .unwrap();
    // The agreement page shows the board's terms: seats, co-optees, quorum, voting.
    let page = app
        .get("/agreements/hertfordshire", Some(&secretary.cookie))
        .await;
    assert!(page.body.contains("Joint Commissioning Partnership Board"));
    assert!(
        page.body
            .contains("6 voting members, at least one of each partner")
    );
    assert!(page.body.contains("up to 8 co-opted, not voting"));
    assert!(page.body.contains("one block vote per partner"));
    // The obligations calendar, on the page and as iCalendar.
    let calendar = app
        .get(
            "/agreements/hertfordshire/calendar?from=2001/02&to=2001/02",
            Some(&secretary.cookie),
        )
        .await;
    assert!(
        calendar
            .body
            .contains("Quarterly statement, Mental health pooled budget, 2001/02-Q2"),
        "{}",
        calendar.body
    );
    let ics = app
        .get(
            "/agreements/hertfordshire/calendar.ics?from=2001/02&to=2001/02",
            Some(&secretary.cookie),
        )
        .await;
    assert_eq!(
        ics.headers[header::CONTENT_TYPE],
        "text/calendar; charset=utf-8"
    );
    assert!(
        ics.body.starts_with("BEGIN:VCALENDAR\r\n")
            // 20 statements and returns, the two budget-timetable steps for 2002/03 that
            // fall in 2001/02, and the board's meeting.
            && ics.body.matches("BEGIN:VEVENT").count() == 23,
        "{}",
        ics.body
    );
    let original = example("hertfordshire.toml");
    let changed = original.replacen(
        "title = \"Proposals for Partnership with the NHS in Hertfordshire\"",
        "title = \"Partnership with the NHS in Hertfordshire\"",
        1,
    );
    assert_ne!(changed, original);
    let preview = app
        .post_multipart(
            "/agreements/hertfordshire/versions",
            &secretary.cookie,
            &[
                ("csrf", None, &secretary.csrf),
                ("file", Some("hertfordshire.toml"), &changed),
            ],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(
        preview
            .body
            .contains("- title = &quot;Proposals for Partnership")
            || preview
                .body
                .contains("- title = &#34;Proposals for Partnership"),
        "the diff shows the old line"
    );
    assert!(preview.body.contains("Accept as the new version"));
    assert_eq!(
        app.store
            .get_agreement("hertfordshire")
            .await
            .unwrap()
            .unwrap()
            .current_version,
        1,
        "nothing is loaded before it is accepted"
    );
    let based_on = app
        .store
        .get_agreement("hertfordshire")
        .await
        .unwrap()
        .unwrap()
        .source_sha256;
    let form = format!(
        "csrf={}&source={}&file_name=hertfordshire.toml&based_on={based_on}",
        secretary.csrf,
        form_encode(&changed)
    );
    let accepted = app
        .post_form(
            "/agreements/hertfordshire/versions/accept",
            Some(&secretary.cookie),
            &form,
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    let stored = app
        .store
        .get_agreement("hertfordshire")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.current_version, 2);
    assert_eq!(stored.title, "Partnership with the NHS in Hertfordshire");
    // Accepting the same form again is refused: the agreement has moved on since.
    let again = app
        .post_form(
            "/agreements/hertfordshire/versions/accept",
            Some(&secretary.cookie),
            &form,
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    // A file with an error is shown with the error and cannot be accepted.
    let broken = changed.replacen(
        "id = \"hertfordshire\"",
        "id = \"hertfordshire\"\nterm_years = \"ten\"",
        1,
    );
    let refused = app
        .post_multipart(
            "/agreements/hertfordshire/versions",
            &secretary.cookie,
            &[
                ("csrf", None, &secretary.csrf),
                ("file", Some("hertfordshire.toml"), &broken),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("govuk-error-summary")
            && !refused.body.contains("Accept as the new version"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.store
            .get_agreement("hertfordshire")
            .await
            .unwrap()
            .unwrap()
            .current_version,
        2
    );

    // A version that varies a contribution needs the contribution-variation decision behind
    // it: refused without one, refused with one too small, accepted with one that covers it.
    let varied = changed.replacen("amount = \"£12,500,000\"", "amount = \"£12,600,000\"", 1);
    assert_ne!(varied, changed);
    let preview = app
        .post_multipart(
            "/agreements/hertfordshire/versions",
            &secretary.cookie,
            &[
                ("csrf", None, &secretary.csrf),
                ("file", Some("hertfordshire.toml"), &varied),
            ],
        )
        .await;
    assert!(
        preview.body.contains("Contributions this version varies"),
        "{}",
        preview.body
    );
    let based_on = app
        .store
        .get_agreement("hertfordshire")
        .await
        .unwrap()
        .unwrap()
        .source_sha256;
    let accept = |authority: &str| {
        format!(
            "csrf={}&source={}&file_name=hertfordshire.toml&based_on={based_on}&authority={authority}",
            secretary.csrf,
            form_encode(&varied)
        )
    };
    let refused = app
        .post_form(
            "/agreements/hertfordshire/versions/accept",
            Some(&secretary.cookie),
            &accept(""),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("This version varies contributions"),
        "{}",
        refused.body
    );
    let file = concordat_io::parse_agreement("hertfordshire.toml", changed.clone());
    let agreement = file.agreement.unwrap();
    for (reference, pounds) in [("CC-2001-1", "50000.00"), ("CC-2001-2", "100000.00")] {
        let proposal: concordat_core::proceedings::Proposal =
            serde_json::from_value(serde_json::json!({
                "reference": reference,
                "title": "Mental health contribution increase",
                "resolution": "Cabinet agreed",
                "level": "reserved",
                "decision_type": "contribution-variation",
                "partner": "county-council",
                "decided_on": "2001-06-01",
                "fund": "mental-health",
                "amount": pounds,
            }))
            .unwrap();
        concordat_app::governance::record_decision(
            app.store.as_ref(),
            &Actor::new("test"),
            "2026-01-01T00:00:00.000000Z",
            &agreement,
            &proposal,
            Vec::new(),
        )
        .await
        .unwrap();
    }
    let too_small = app
        .post_form(
            "/agreements/hertfordshire/versions/accept",
            Some(&secretary.cookie),
            &accept("CC-2001-1"),
        )
        .await;
    assert_eq!(too_small.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        too_small
            .body
            .contains("authorises variations of up to £50,000.00"),
        "{}",
        too_small.body
    );
    let accepted = app
        .post_form(
            "/agreements/hertfordshire/versions/accept",
            Some(&secretary.cookie),
            &accept("CC-2001-2"),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    let stored = app
        .store
        .get_agreement("hertfordshire")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.current_version,
            stored.versions.last().unwrap().authority.as_deref()
        ),
        (3, Some("CC-2001-2"))
    );
}

fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn api_import(url: &str) {
    let (app, tokens) = app(url).await;
    let csv = "date,fund,service,partner,subjective,supplier,reference,amount\n2001-11-15,mental-health,Home care,county-council,5110,Acme,API-1,250.00\n2001-11-16,mental-health,Telecare,county-council,5701,Acme,API-2,(50.00)\n";
    let post = |token: &str, body: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/agreements/hertfordshire/imports?file_name=api.csv&mapping=concordat-ledger")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let viewer = app.send(post(&tokens["hertfordshire:viewer"], csv)).await;
    assert_eq!(
        viewer.status,
        StatusCode::FORBIDDEN,
        "a viewer's token cannot import"
    );
    let bad = app
        .send(post(
            &tokens["hertfordshire:finance_officer"],
            &csv.replace("250.00", "2.5.0"),
        ))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(body["bad_rows"], 1);
    assert_eq!(body["rows"][0]["line"], 2);
    assert_eq!(body["rows"][0]["column"], "amount");
    assert!(
        app.store.imports("hertfordshire").await.unwrap().is_empty(),
        "nothing was imported"
    );
    let good = app
        .send(post(&tokens["hertfordshire:finance_officer"], csv))
        .await;
    assert_eq!(good.status, StatusCode::CREATED, "{}", good.body);
    let body: serde_json::Value = serde_json::from_str(&good.body).unwrap();
    assert_eq!(
        (body["rows"].clone(), body["control_total"].clone()),
        (serde_json::json!(2), serde_json::json!("200.00"))
    );
    let again = app
        .send(post(&tokens["hertfordshire:finance_officer"], csv))
        .await;
    let body: serde_json::Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(body["imported"], false, "the same file twice adds nothing");
    let list = app
        .api(
            Method::GET,
            "/api/v1/agreements/hertfordshire/imports",
            Some(&tokens["hertfordshire:auditor"]),
        )
        .await;
    assert!(
        list.body.contains("\"file_name\":\"api.csv\"")
            && list.body.contains("\"control_total\":\"200.00\""),
        "{}",
        list.body
    );
    let audit = app.store.audit_log(Some("hertfordshire")).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.actor == "api:tok-hertfordshire-finance-officer"),
        "the token is the actor in the audit log"
    );
    // The monitoring API sees the new postings at once.
    let m = app
        .api(
            Method::GET,
            "/api/v1/agreements/hertfordshire/funds/mental-health/monitoring?period=2001/02-P08",
            Some(&tokens["hertfordshire:viewer"]),
        )
        .await;
    let m: serde_json::Value = serde_json::from_str(&m.body).unwrap();
    assert_eq!(m["monitoring"]["totals"]["actual_to_date"], "200.00", "{m}");
}

async fn behind_tls(url: &str) {
    let config = Config {
        behind_tls: true,
        ..Config::default()
    };
    let (app, _) = app_with(url, config).await;
    let page = app.get("/sign-in", None).await;
    assert!(
        page.headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    assert!(
        page.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
}

async fn caches_and_other_partnerships(url: &str) {
    let (app, tokens) = app(url).await;
    let monitoring =
        "/api/v1/agreements/hertfordshire/funds/mental-health/monitoring?period=2001/02-P08";
    let viewer = &tokens["hertfordshire:viewer"];
    let actual = |body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["monitoring"]["totals"]["actual_to_date"].clone()
    };
    // Read (and so cache) the figures, change the ledger, read again: the change shows.
    let before = app.api(Method::GET, monitoring, Some(viewer)).await;
    assert_eq!(actual(&before.body), "0.00");
    let pm = sign_in(&app, "pool-manager", PASSWORD).await.ok().unwrap();
    let csv = "date,fund,service,partner,subjective,supplier,reference,amount\n2001-11-15,mental-health,Home care,county-council,5110,Acme,C-1,99.99\n";
    let started = app
        .post_multipart(
            "/agreements/hertfordshire/imports",
            &pm.cookie,
            &[
                ("csrf", None, &pm.csrf),
                ("file", Some("c.csv"), csv),
                ("mapping", None, "concordat-ledger"),
            ],
        )
        .await;
    let job = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        app.get(&job, Some(&pm.cookie))
            .await
            .body
            .contains("is imported")
    );
    let after = app.api(Method::GET, monitoring, Some(viewer)).await;
    assert_eq!(
        actual(&after.body),
        "99.99",
        "the cached figures were replaced"
    );
    // A budget set through the page moves the figures too, and a reload does not set it twice.
    let set = app
        .post_form(
            "/agreements/hertfordshire/funds/mental-health/budgets",
            Some(&pm.cookie),
            &format!("csrf={}&year=2001/02&service_line=Home+care&annual=1200.00&phasing=even&client_income=0&reason=test&new_line=no", pm.csrf),
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    let v: serde_json::Value =
        serde_json::from_str(&app.api(Method::GET, monitoring, Some(viewer)).await.body).unwrap();
    assert_eq!(v["monitoring"]["totals"]["annual_budget"], "1200.00", "{v}");
    // Another partnership's user cannot see this partnership's import job, even by its id.
    let other = sign_in(&app, "trafford-admin", PASSWORD)
        .await
        .ok()
        .unwrap();
    assert_eq!(
        app.get(&job, Some(&other.cookie)).await.status,
        StatusCode::NOT_FOUND
    );
    let elsewhere = job.replace("/agreements/hertfordshire/", "/agreements/trafford/");
    assert_eq!(
        app.get(&elsewhere, Some(&other.cookie)).await.status,
        StatusCode::NOT_FOUND,
        "a job id from another partnership is not found"
    );
    // An administrator cannot make a token with a role they do not hold.
    let admin = sign_in(&app, "administrator", PASSWORD).await.ok().unwrap();
    let refused = app
        .post_form(
            "/agreements/hertfordshire/tokens",
            Some(&admin.cookie),
            &format!(
                "csrf={}&action=create&name=x&role=finance_officer",
                admin.csrf
            ),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let made = app
        .post_form(
            "/agreements/hertfordshire/tokens",
            Some(&admin.cookie),
            &format!("csrf={}&action=create&name=x&role=viewer", admin.csrf),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK);
    assert!(made.body.contains("cct_"), "the new token is shown once");
    // A partner cannot be moved to another organisation while users hold roles through it.
    let moved = app
        .store
        .change_accounts(
            &Actor::new("test"),
            "2026-01-04T00:00:00.000000Z",
            AccountChange::LinkParty {
                org_key: "elsewhere".into(),
                partnership_key: "hertfordshire".into(),
                partner_id: "county-council".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(moved.to_string().contains("revoke them"), "{moved}");
}

#[test]
fn openapi_documents_every_api_route() {
    let doc = concordat_web::openapi_document();
    let paths = doc["paths"].as_object().unwrap();
    let api: Vec<_> = ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .collect();
    assert!(api.len() >= 8);
    for r in &api {
        let op = &paths[r.path][r.method.to_lowercase()];
        assert!(op.is_object(), "{} {} is documented", r.method, r.path);
        assert_eq!(op["summary"], r.summary);
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        api.len(),
        "nothing is documented that is not routed"
    );
    assert_eq!(doc["openapi"], "3.1.0");
}

macro_rules! both_backends {
    ($($name:ident => $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = concordat_testkit::scratch("web", stringify!($name));
                    let db = concordat_testkit::sqlite_db(&dir);
                    super::$case(&db.url).await;
                    let _ = std::fs::remove_dir_all(&dir);
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = concordat_testkit::postgres_db("web") else { return };
                    super::$case(&db.url).await;
                }
            )*
        }
    };
}

both_backends! {
    every_route_answers_every_role_and_no_one_else => route_matrix,
    forged_forms_and_stolen_cookies_are_refused => csrf_and_sessions,
    failed_sign_ins_are_throttled => throttling,
    grants_outside_the_organisation_need_a_reason => grants_outside,
    agreement_versions_are_compared_before_they_are_accepted => versions,
    the_api_imports_all_or_nothing => api_import,
    behind_tls_cookies_are_secure_and_hsts_is_sent => behind_tls,
    changes_show_at_once_and_other_partnerships_stay_out => caches_and_other_partnerships,
    decisions_are_checked_recorded_and_published => governance_pages,
}

#[test]
fn every_permission_is_held_by_some_role() {
    for p in [
        Permission::Read,
        Permission::ReadAudit,
        Permission::ImportLedger,
        Permission::ManageBudgets,
        Permission::ClosePeriod,
        Permission::ChangeAgreement,
        Permission::ManageTokens,
        Permission::RecordProceedings,
        Permission::KeepRegisters,
        Permission::ServeNotice,
    ] {
        assert!(Role::ALL.iter().any(|r| r.allows(p)), "{p:?}");
    }
}

/// A form body from its fields, each value encoded.
fn form_of(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A board secretary records a meeting and its decisions through the pages: a refused one
/// shows the reason and records nothing; one that stands is recorded with the budget change
/// it authorises, appears in the log and its CSV, and on the public page if published. The
/// API takes the same decisions from a token.
async fn governance_pages(url: &str) {
    let (app, tokens) = app(url).await;
    let secretary = sign_in(&app, "board-secretary", PASSWORD)
        .await
        .ok()
        .unwrap();
    let pm = sign_in(&app, "pool-manager", PASSWORD).await.ok().unwrap();
    let key = "hertfordshire";
    // The meeting made in the setup has two members: not quorate, and the page says so.
    let page = app
        .get(
            &format!("/agreements/{key}/meetings/{MEETING}"),
            Some(&secretary.cookie),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("the quorum is 6"), "{}", page.body);
    // A quorate meeting: four a side and a co-optee.
    let attendance = (1..=4)
        .map(|i| format!("Cllr {i} | county-council | member"))
        .chain((1..=4).map(|i| format!("PCT member {i} | pcts | member")))
        .chain(std::iter::once(
            "Carers' representative | | co-opted".to_string(),
        ))
        .collect::<Vec<_>>()
        .join("\n");
    let record = app
        .post_form(
            &format!("/agreements/{key}/meetings"),
            Some(&secretary.cookie),
            &form_of(&[
                ("csrf", secretary.csrf.as_str()),
                ("body", "jcpb"),
                ("reference", "JCPB-2001-09"),
                ("date", "2001-09-10"),
                ("status", "held"),
                ("attendance", attendance.as_str()),
                ("declarations", "PCT member 4 | 2 | Director of a provider"),
                ("agenda", "1 | Minutes\n2 | Budget revision: home care"),
            ]),
        )
        .await;
    assert_eq!(record.status, StatusCode::SEE_OTHER, "{}", record.body);
    // A bad attendance line names the line and changes nothing.
    let bad = app
        .post_form(
            &format!("/agreements/{key}/meetings"),
            Some(&secretary.cookie),
            &form_of(&[
                ("csrf", secretary.csrf.as_str()),
                ("body", "jcpb"),
                ("reference", "X"),
                ("date", "2001-09-11"),
                ("attendance", "Someone | pcts | chairperson"),
            ]),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("Attendance, line 1: &#39;chairperson&#39; is not a capacity")
            || bad
                .body
                .contains("Attendance, line 1: 'chairperson' is not a capacity"),
        "{}",
        bad.body
    );
    assert_eq!(
        app.store
            .proceedings(key, concordat_store::ProceedingKind::Meeting)
            .await
            .unwrap()
            .len(),
        2
    );

    // The pool manager sets the line's first budget, which needs no decision.
    let set = app
        .post_form(
            &format!("/agreements/{key}/funds/mental-health/budgets"),
            Some(&pm.cookie),
            &form_of(&[
                ("csrf", pm.csrf.as_str()),
                ("year", "2001/02"),
                ("service_line", "Home care"),
                ("annual", "1200.00"),
                ("phasing", "even"),
                ("reason", "agreed"),
                ("new_line", "yes"),
            ]),
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    // A revision with no authority is refused on the authority field.
    let revise = |annual: &'static str, authority: &'static str, delegated: &'static str| {
        let pm = pm.clone();
        let app = &app;
        async move {
            app.post_form(
                "/agreements/hertfordshire/funds/mental-health/budgets",
                Some(&pm.cookie),
                &form_of(&[
                    ("csrf", pm.csrf.as_str()),
                    ("year", "2001/02"),
                    ("service_line", "Home care"),
                    ("annual", annual),
                    ("phasing", "even"),
                    ("reason", "more packages"),
                    ("authority", authority),
                    ("delegated", delegated),
                ]),
            )
            .await
        }
    };
    let refused = revise("1300.00", "", "").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("href=\"#authority\""),
        "the error summary links to the field"
    );
    // Under the pool manager's delegated authority (up to £50,000) it stands.
    assert!(revise("1300.00", "", "pool_manager").await.status == StatusCode::SEE_OTHER);

    let votes_all_for = (1..=4)
        .map(|i| format!("Cllr {i} | for"))
        .chain((1..=3).map(|i| format!("PCT member {i} | for")))
        .collect::<Vec<_>>()
        .join("\n");
    let decide = |reference: &'static str,
                  votes: String,
                  amount: &'static str,
                  changes: &'static str,
                  published: &'static str| {
        let s = secretary.clone();
        let app = &app;
        async move {
            app.post_form(
                "/agreements/hertfordshire/meetings/JCPB-2001-09/decisions",
                Some(&s.cookie),
                &form_of(&[
                    ("csrf", s.csrf.as_str()),
                    ("reference", reference),
                    ("title", "Home care budget increase"),
                    ("resolution", "Agreed"),
                    ("level", "joint"),
                    (
                        "decision_type",
                        if amount.is_empty() {
                            "policy"
                        } else {
                            "budget-revision"
                        },
                    ),
                    ("agenda_item", "2"),
                    ("fund", "mental-health"),
                    ("amount", amount),
                    ("votes", votes.as_str()),
                    ("budget_changes", changes),
                    ("published", published),
                ]),
            )
            .await
        }
    };
    // Refused: the PCT member who declared an interest votes.
    let refused = decide(
        "JCPB-2001-09-2",
        format!("{votes_all_for}\nPCT member 4 | for"),
        "500.00",
        "Home care | 1800.00",
        "yes",
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("PCT member 4 declared an interest in this item and may not vote on it"),
        "{}",
        refused.body
    );
    // Refused: the co-optee votes.
    let refused = decide(
        "JCPB-2001-09-2",
        format!("{votes_all_for}\nCarers' representative | for"),
        "500.00",
        "Home care | 1800.00",
        "yes",
    )
    .await;
    assert!(
        refused
            .body
            .contains("co-opted members take part but never vote"),
        "{}",
        refused.body
    );
    // Refused: the change is more than the decision authorises.
    let refused = decide(
        "JCPB-2001-09-2",
        votes_all_for.clone(),
        "400.00",
        "Home care | 1800.00",
        "yes",
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("authorises budget changes of up to 40000 pence"),
        "{}",
        refused.body
    );
    let decided_before = app.store.decisions(key).await.unwrap().len();
    assert_eq!(
        decided_before, 1,
        "only the pool manager's delegated decision"
    );
    // It stands: recorded with its budget change.
    let ok = decide(
        "JCPB-2001-09-2",
        votes_all_for.clone(),
        "500.00",
        "Home care | 1800.00",
        "yes",
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let lines = app
        .store
        .budgets(key, Some("mental-health"), 2001)
        .await
        .unwrap();
    let home = lines
        .iter()
        .find(|l| l.service_line == "Home care")
        .unwrap();
    assert_eq!(
        (home.revision, home.period_amounts_pence.iter().sum::<i64>()),
        (3, 180_000)
    );
    // A decision kept to the partners.
    assert_eq!(
        decide("JCPB-2001-09-3", votes_all_for.clone(), "", "", "no")
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    let log = app
        .get(
            &format!("/agreements/{key}/decisions?q=budget+revision"),
            Some(&secretary.cookie),
        )
        .await;
    assert!(
        log.body.contains("JCPB-2001-09-2")
            && log
                .body
                .contains("8 voting members present, quorum 6 with each partner")
            && !log.body.contains("JCPB-2001-09-3"),
        "{}",
        log.body
    );
    let csv = app
        .get(
            &format!("/agreements/{key}/decisions.csv"),
            Some(&secretary.cookie),
        )
        .await;
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(
        csv.body
            .contains("JCPB-2001-09-2,2001-09-10,joint,budget-revision,"),
        "{}",
        csv.body
    );
    // The public page needs no sign-in and shows only what is published.
    let public = app.get(&format!("/public/{key}/decisions"), None).await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(
        public.body.contains("JCPB-2001-09-2") && !public.body.contains("JCPB-2001-09-3"),
        "{}",
        public.body
    );
    assert!(
        !public.body.contains("DEL-"),
        "the pool manager's decision is not published"
    );
    assert_eq!(
        app.get("/public/no-such-partnership/decisions", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // The API: a refusal names the field; a viewer's token may not record.
    let proposal = serde_json::json!({
        "reference": "JCPB-2001-09-4",
        "title": "Reablement pilot",
        "resolution": "Agreed",
        "level": "joint",
        "decision_type": "policy",
        "meeting": "JCPB-2001-09",
        "votes": [{"member": "Carers' representative", "choice": "for"}],
    });
    let path = format!("/api/v1/agreements/{key}/decisions");
    let r = app
        .api_json(&path, &tokens["hertfordshire:board_secretary"], &proposal)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["field"], "votes", "{v}");
    let r = app
        .api_json(&path, &tokens["hertfordshire:viewer"], &proposal)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut fine = proposal.clone();
    fine["votes"] =
        serde_json::json!(
            (1..=4)
                .map(|i| serde_json::json!({"member": format!("Cllr {i}"), "choice": "for"}))
                .chain((1..=3).map(
                    |i| serde_json::json!({"member": format!("PCT member {i}"), "choice": "for"})
                ))
                .collect::<Vec<_>>()
        );
    let r = app
        .api_json(&path, &tokens["hertfordshire:board_secretary"], &fine)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let listed = app
        .api(Method::GET, &path, Some(&tokens["hertfordshire:viewer"]))
        .await;
    assert!(listed.body.contains("JCPB-2001-09-4"), "{}", listed.body);
}
