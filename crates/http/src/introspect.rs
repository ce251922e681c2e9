//! `POST /introspect` (RFC 7662 §2) and `POST /revoke` (RFC 7009 §2).

use crate::AppState;
use crate::error::{oauth_json, service_json};
use crate::token::{authorization_header, no_store_json_text, read_form};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub async fn introspect(State(svc): State<AppState>, req: Request) -> Response {
    let (headers, params) = match read_form(req).await {
        Ok(x) => x,
        Err(e) => return oauth_json(&e),
    };
    let authorization = match authorization_header(&headers) {
        Ok(a) => a,
        Err(e) => return oauth_json(&e),
    };
    let caller = match svc.authenticate_introspection_caller(authorization, &params).await {
        Ok(c) => c,
        Err(e) => return service_json(&e),
    };
    match svc.introspect(&caller, &params).await {
        Ok(body) => no_store_json_text(body.0.as_bytes()),
        Err(e) => service_json(&e),
    }
}

pub async fn revoke(State(svc): State<AppState>, req: Request) -> Response {
    let (headers, params) = match read_form(req).await {
        Ok(x) => x,
        Err(e) => return oauth_json(&e),
    };
    let authorization = match authorization_header(&headers) {
        Ok(a) => a,
        Err(e) => return oauth_json(&e),
    };
    match svc.revoke(authorization, &params).await {
        // RFC 7009 §2.2: "The authorization server responds with HTTP status code 200".
        Ok(()) => {
            let mut res = StatusCode::OK.into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => service_json(&e),
    }
}
