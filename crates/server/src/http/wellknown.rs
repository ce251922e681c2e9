//! Discovery: RFC 8414 metadata and the JWKS (RFC 7517 §5) at its `jwks_uri`.

use super::AppState;
use super::error::service_json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub async fn metadata(State(svc): State<AppState>) -> Response {
    let catalog = match svc.scope_catalog().await {
        Ok(c) => c,
        Err(e) => return service_json(&e),
    };
    let doc = tessera_protocol::metadata::authorization_server(&svc.config.issuer, &catalog.names());
    let mut res = axum::Json(doc).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    res
}

pub async fn jwks(State(svc): State<AppState>) -> Response {
    let keys = svc.keys.current();
    let mut res = keys.jwks_json.clone().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}
