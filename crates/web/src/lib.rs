//! Concordat's web application: server-rendered pages in GOV.UK Frontend markup that work
//! without JavaScript, sign-in with sessions in the database, roles per partnership, and the
//! JSON API under `/api/v1` with its OpenAPI document.
//!
//! Every page and endpoint calls the same application functions as the command line
//! (`concordat-app`), and every change goes through the store's one write path.
//!
//! Tenancy: a user sees a partnership only through a role granted in it, and a grant is
//! refused (by the store) for a user whose organisation is not party to the partnership,
//! unless it carries a reason. A partnership the user cannot see answers 404, exactly as one
//! that does not exist; one the user can see but may not change answers 403.

mod api;
mod assets;
mod auth;
mod cache;
mod convert;
mod error;
mod governance;
mod manage;
mod pages;
mod routes;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use concordat_store::Store;

pub use auth::{hash_password, new_api_token, token_hash};
pub use routes::{Access, ROUTES, RouteDoc, openapi_document};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server is reached through a proxy that terminates TLS: cookies are `Secure` and
    /// responses carry `Strict-Transport-Security`.
    pub behind_tls: bool,
    /// How long a session lasts from sign-in.
    pub session_hours: i64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            behind_tls: false,
            session_hours: 8,
        }
    }
}

/// The largest ledger extract accepted: a year of a big council's ledger is hundreds of MB.
pub const UPLOAD_LIMIT_BYTES: usize = 2 << 30;
/// The largest body any other request may send (an agreement file is tens of kilobytes).
pub const FORM_LIMIT_BYTES: usize = 1 << 20;

/// The path of axe-core's script, installed by the build, for the accessibility checks in the
/// browser tests.
pub const AXE_JS: &str = env!("CONCORDAT_AXE_JS");

/// A source of the current time: the real clock, or a test's.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Config,
    pub clock: Clock,
    /// Imports running in the background, by job id.
    pub(crate) jobs: manage::Jobs,
    pub(crate) cache: Arc<cache::Cache>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: Config) -> AppState {
        AppState {
            store,
            config,
            clock: Arc::new(jiff::Timestamp::now),
            jobs: Arc::default(),
            cache: Arc::default(),
        }
    }

    /// Now, as the store keeps times: RFC 3339 UTC with microseconds, so text order is time
    /// order.
    pub(crate) fn now(&self) -> String {
        time_text((self.clock)())
    }

    pub(crate) fn today(&self) -> jiff::civil::Date {
        (self.clock)().to_zoned(jiff::tz::TimeZone::UTC).date()
    }
}

/// A time as the store keeps it.
pub fn time_text(at: jiff::Timestamp) -> String {
    format!(
        "{}.{:06}Z",
        at.strftime("%Y-%m-%dT%H:%M:%S"),
        at.subsec_microsecond()
    )
}

/// The whole application: pages, API, assets, with security headers and request logs.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(pages::routes())
        .merge(governance::routes())
        .merge(api::routes())
        .merge(assets::routes())
        .fallback(error::not_found)
        // Forms are small; the ledger upload routes raise this for themselves.
        .layer(axum::extract::DefaultBodyLimit::max(FORM_LIMIT_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Listens on `bind` until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub async fn serve(state: AppState, bind: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "concordat is serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("concordat stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// Starts structured logging: JSON lines, or readable text on a terminal.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The content security policy: no inline script or style, nothing from elsewhere, no
/// framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if state.config.behind_tls {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn log_request(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(%method, path, route, status, elapsed_ms, "request");
    } else {
        tracing::info!(%method, path, route, status, elapsed_ms, "request");
    }
    response
}

/// Where a socket address is given as text (`127.0.0.1:8080`).
pub fn parse_bind(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse().map_err(|_| {
        anyhow::anyhow!("--bind {text:?} is not an address and port, like 127.0.0.1:8080")
    })
}
