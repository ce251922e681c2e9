//! The one place where errors become HTTP responses: RFC 6749 §5.2 JSON for the token endpoint,
//! an HTML page for the user (never a redirect to an unvalidated URI), and 503 + `Retry-After`
//! when the store is unavailable.

use crate::pages::{ErrorPage, render};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_protocol::{ErrorCode, OAuthError};
use tessera_server::service::ServiceError;

/// RFC 6749 §5.2 error response. `invalid_client` is 401 with `WWW-Authenticate`.
pub fn oauth_json(err: &OAuthError) -> Response {
    let status = StatusCode::from_u16(err.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut body = json!({ "error": err.code.as_str() });
    if !err.description.is_empty() {
        body["error_description"] = json!(err.description);
    }
    let mut res = (status, axum::Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if err.code == ErrorCode::InvalidClient {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tessera\""));
    }
    if err.code == ErrorCode::TemporarilyUnavailable {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    res
}

/// A service error as token-endpoint JSON; storage details go to the log only.
pub fn service_json(err: &ServiceError) -> Response {
    if let ServiceError::Store(e) = err {
        tracing::error!(error = %e, "storage failure");
    }
    oauth_json(&err.to_oauth())
}

/// An error page for the user.
pub fn page(status: StatusCode, title: &str, message: &str, code: Option<&str>) -> Response {
    let html = render(&ErrorPage { title, message, code });
    let mut res = (status, html).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// An OAuth error shown as a page (RFC 6749 §4.1.2.1: never redirected).
pub fn oauth_page(err: &OAuthError) -> Response {
    let status = StatusCode::from_u16(err.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    page(status, "This request cannot be completed", &err.description, Some(err.code.as_str()))
}

/// A service error as a page.
pub fn service_page(err: &ServiceError) -> Response {
    match err {
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "storage failure");
            let mut res = oauth_page(&err.to_oauth());
            if err.to_oauth().code == ErrorCode::TemporarilyUnavailable {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            res
        }
        ServiceError::OAuth(e) => oauth_page(e),
    }
}

pub async fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, "Not found", "There is nothing at this address.", None)
}

pub async fn method_not_allowed_page() -> Response {
    page(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "This address does not accept that kind of request.", None)
}

pub async fn method_not_allowed_json() -> Response {
    let mut res = oauth_json(&OAuthError::invalid_request("this endpoint accepts POST only"));
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

/// A last line of defence: a panic becomes a 500 with no details, never a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    oauth_json(&OAuthError::server_error("internal error"))
}
