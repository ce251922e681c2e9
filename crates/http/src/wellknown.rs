//! Discovery: RFC 8414 metadata and the JWKS (RFC 7517 §5) at its `jwks_uri`.

use crate::AppState;
use crate::error::JsonError;
use crate::response::NoStore;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The document is built from the cached scope catalog (≤ `CACHE_TTL` stale, like every
/// instance's copy) and serialized once per catalog. Readable from any origin (a browser app's
/// discovery, OpenID Connect Discovery §4): it is public and carries no credentials.
pub async fn metadata(State(svc): State<AppState>) -> Result<Response, JsonError> {
    let body = svc.metadata_json().await?;
    let mut res = ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    Ok(res)
}

/// `GET /health/ready`: 200 `ready` when the store answers; 503 with `Retry-After` while it does
/// not (a load balancer takes the instance out of rotation until the database is back).
pub async fn ready(State(svc): State<AppState>) -> Response {
    if svc.is_draining() {
        let mut res = (StatusCode::SERVICE_UNAVAILABLE, NoStore("not ready: shutting down")).into_response();
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return res;
    }
    match svc.ready().await {
        Ok(()) => NoStore("ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the store does not answer");
            let mut res = (StatusCode::SERVICE_UNAVAILABLE, NoStore("not ready: the database does not answer")).into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            res
        }
    }
}

pub async fn jwks(State(svc): State<AppState>) -> Response {
    let keys = svc.keys.current();
    let mut res = keys.jwks_json.clone().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    // Public keys, readable from any origin (a browser app checks ID token signatures).
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}
