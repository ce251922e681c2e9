//! Discovery: RFC 8414 metadata and the JWKS (RFC 7517 §5) at its `jwks_uri`.

use crate::AppState;
use crate::error::JsonError;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document is built from the cached scope catalog (≤ `CACHE_TTL` stale, like every
/// instance's copy) and serialized once per catalog.
pub async fn metadata(State(svc): State<AppState>) -> Result<Response, JsonError> {
    let body = svc.metadata_json().await?;
    let mut res = ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    Ok(res)
}

pub async fn jwks(State(svc): State<AppState>) -> Response {
    let keys = svc.keys.current();
    let mut res = keys.jwks_json.clone().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}
