//! The one place where errors become HTTP responses: RFC 6749 §5.2 JSON for the token endpoint
//! and its siblings ([`JsonError`]), an HTML page for the user ([`PageError`]; never a redirect
//! to an unvalidated URI), and 503 + `Retry-After` when the store is unavailable. Storage
//! details go to the log only.

use crate::pages::ErrorPage;
use crate::response::NoStore;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_protocol::{ErrorCode, OAuthError};
use tessera_server::service::ServiceError;

/// An error answered as RFC 6749 §5.2 JSON (token, introspection, revocation, device
/// authorization, metadata).
#[derive(Debug)]
pub struct JsonError(pub ServiceError);

impl From<OAuthError> for JsonError {
    fn from(e: OAuthError) -> Self {
        Self(ServiceError::OAuth(e))
    }
}

impl From<ServiceError> for JsonError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        service_json(&self.0)
    }
}

/// An error shown to the user as a page.
#[derive(Debug)]
pub struct PageError(pub ServiceError);

impl From<OAuthError> for PageError {
    fn from(e: OAuthError) -> Self {
        Self(ServiceError::OAuth(e))
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        service_page(&self.0)
    }
}

/// RFC 6749 §5.2 error response. `invalid_client` is 401 with `WWW-Authenticate`.
pub fn oauth_json(err: &OAuthError) -> Response {
    let status = StatusCode::from_u16(err.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut body = json!({ "error": err.code.as_str() });
    if !err.description.is_empty() {
        body["error_description"] = json!(err.description);
    }
    let mut res = NoStore((status, axum::Json(body))).into_response();
    let h = res.headers_mut();
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
    match err {
        ServiceError::OAuth(e) => oauth_json(e),
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "storage failure");
            let mut res = oauth_json(&err.to_oauth());
            res.extensions_mut().insert(crate::observe::StoreFailed);
            res
        }
    }
}

/// An error page for the user.
pub fn page(status: StatusCode, title: &str, message: &str, code: Option<&str>) -> Response {
    NoStore((status, crate::overrides::render(&ErrorPage { title, message, code }))).into_response()
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
            res.extensions_mut().insert(crate::observe::StoreFailed);
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
