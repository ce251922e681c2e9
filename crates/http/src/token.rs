//! POST /token (RFC 6749 §3.2): form body only, then the service. Every answer carries
//! `Cache-Control: no-store` (RFC 6749 §5.1).

use crate::error::{oauth_json, service_json};
use crate::{AppState, MAX_BODY_BYTES};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tessera_protocol::OAuthError;
use tessera_protocol::params::Params;

/// Read a form body: `application/x-www-form-urlencoded`, bounded size.
pub async fn read_form(req: Request) -> Result<(axum::http::HeaderMap, Params), OAuthError> {
    let (parts, body) = req.into_parts();
    let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| OAuthError::invalid_request("the request body is too large"))?;
    Ok((parts.headers, Params::parse(&bytes)?))
}

/// The `Authorization` header as text, if present.
pub fn authorization_header(headers: &axum::http::HeaderMap) -> Result<Option<&str>, OAuthError> {
    match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s)),
        Some(Err(_)) => Err(OAuthError::invalid_client("malformed Authorization header")),
    }
}

/// A JSON body with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store_json<T: serde::Serialize>(body: &T) -> Response {
    no_store(axum::Json(body).into_response())
}

/// [`no_store_json`] for a body already serialized.
pub fn no_store_json_text(body: &[u8]) -> Response {
    no_store(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], axum::body::Bytes::copy_from_slice(body)).into_response())
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

pub async fn token(State(svc): State<AppState>, req: Request) -> Response {
    let (headers, params) = match read_form(req).await {
        Ok(x) => x,
        Err(e) => return oauth_json(&e),
    };
    let authorization = match authorization_header(&headers) {
        Ok(a) => a,
        Err(e) => return oauth_json(&e),
    };
    match svc.token(authorization, &params).await {
        Ok(body) => no_store_json(&body),
        Err(e) => service_json(&e),
    }
}
