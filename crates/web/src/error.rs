//! What a request can come to besides its page: not found, forbidden, sign in first, a form
//! that failed its CSRF check, or a fault. The pages say no more than the user may know: a
//! partnership the user cannot see is "not found", exactly as one that does not exist.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::views::ErrorPage;

#[derive(Debug)]
pub(crate) enum WebError {
    NotFound,
    Forbidden,
    SignInFirst {
        next: String,
    },
    BadCsrf,
    ApiUnauthorised,
    /// A request the page cannot act on, with the reason in the user's words.
    BadRequest(String),
    Internal(anyhow::Error),
}

impl From<concordat_store::StoreError> for WebError {
    fn from(e: concordat_store::StoreError) -> WebError {
        WebError::Internal(e.into())
    }
}

impl From<concordat_report::ReportError> for WebError {
    fn from(e: concordat_report::ReportError) -> WebError {
        WebError::Internal(e.into())
    }
}

impl From<concordat_pdf::PdfError> for WebError {
    fn from(e: concordat_pdf::PdfError) -> WebError {
        WebError::Internal(e.into())
    }
}

impl From<anyhow::Error> for WebError {
    fn from(e: anyhow::Error) -> WebError {
        WebError::Internal(e)
    }
}

impl WebError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Forbidden | WebError::BadCsrf => StatusCode::FORBIDDEN,
            WebError::SignInFirst { .. } => StatusCode::SEE_OTHER,
            WebError::ApiUnauthorised => StatusCode::UNAUTHORIZED,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The heading and the sentence shown for it.
    pub(crate) fn words(&self) -> (&'static str, String) {
        match self {
            WebError::NotFound => (
                "Page not found",
                "If you typed the web address, check it is correct. If you followed a link, the page may have moved, or you may not have access to it.".into(),
            ),
            WebError::Forbidden => (
                "You do not have permission to do this",
                "Your role in this partnership does not allow it. Ask the partnership's administrator if you need it.".into(),
            ),
            WebError::BadCsrf => (
                "This form has expired",
                "The form was not sent from this session, or the session has ended. Go back, reload the page and try again.".into(),
            ),
            WebError::ApiUnauthorised => (
                "Sign in required",
                "This needs a valid bearer token.".into(),
            ),
            WebError::BadRequest(reason) => ("There is a problem", reason.clone()),
            WebError::SignInFirst { .. } => ("Sign in", "Sign in to continue.".into()),
            WebError::Internal(_) => (
                "Sorry, there is a problem with the service",
                "Try again later. If you were making a change, check whether it was made before you make it again.".into(),
            ),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::SignInFirst { next } = &self {
            let target = format!("/sign-in?next={}", crate::views::url_encode(next));
            return Redirect::to(&target).into_response();
        }
        if let WebError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let status = self.status();
        let (title, message) = self.words();
        let page = ErrorPage {
            chrome: crate::views::Chrome::anonymous(title),
            title,
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, [(header::CONTENT_TYPE, "text/plain")], title).into_response(),
        }
    }
}

pub(crate) async fn not_found() -> WebError {
    WebError::NotFound
}
