//! The stylesheet (compiled from GOV.UK Frontend by the build), GOV.UK Frontend's script,
//! and Concordat's own small files, embedded in the binary.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

const APP_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/app.css"));
const GOVUK_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/govuk-frontend.min.js"));
const INIT_JS: &str = include_str!("../assets/init.js");
const FAVICON: &str = include_str!("../assets/favicon.svg");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/assets/govuk-frontend.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", GOVUK_JS) }),
        )
        .route(
            "/assets/init.js",
            get(|| async { asset("text/javascript; charset=utf-8", INIT_JS) }),
        )
        .route(
            "/assets/favicon.svg",
            get(|| async { asset("image/svg+xml", FAVICON) }),
        )
}
