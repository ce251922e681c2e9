//! CORS (the Fetch standard's CORS protocol) at the endpoints a browser app calls: the token,
//! revocation and UserInfo endpoints answer an allowed origin of the client concerned with
//! `Access-Control-Allow-Origin` equal to it (never `*`, never an unregistered origin
//! reflected); a request from an origin the client did not register is refused with no CORS
//! headers. Preflights carry no client credentials: they are answered for an origin some client
//! registered. The decision is `tessera_protocol::cors::decide`; the origins are the service's.

use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_protocol::cors::{CorsDecision, CorsEndpoint, decide, parse_origin};
use tessera_protocol::{ErrorCode, OAuthError};

/// The request's `Origin`, when it has exactly one that is text.
pub fn origin(headers: &HeaderMap) -> Option<&str> {
    let mut all = headers.get_all(header::ORIGIN).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return Some("");
    }
    Some(first.to_str().unwrap_or(""))
}

/// The decision for `origin` at `endpoint`, for `client_id` (or any client when unknown).
pub async fn decision(svc: &AppState, endpoint: CorsEndpoint, client_id: Option<&str>, origin: Option<&str>) -> CorsDecision {
    let allowed = match origin.and_then(parse_origin) {
        Some(o) => svc.cors_allows(client_id, &o).await.unwrap_or(false),
        None => false,
    };
    decide(endpoint, origin, |_| allowed)
}

/// The refusal of a request from an origin the client did not register (no CORS headers).
pub fn refused(origin: &str) -> OAuthError {
    let shown: String = origin.chars().take(100).collect();
    OAuthError::new(ErrorCode::InvalidRequest, format!("the origin {shown} is not registered for this client (tessera client update --allowed-origin)"))
}

/// Add the CORS headers of an actual response for an allowed origin.
pub fn allow(mut response: Response, decision: &CorsDecision) -> Response {
    if let CorsDecision::Allow(o) = decision {
        if let Ok(v) = HeaderValue::from_str(o) {
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("DPoP-Nonce, WWW-Authenticate"));
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}

async fn preflight(svc: &AppState, headers: &HeaderMap, endpoint: CorsEndpoint, methods: &'static str) -> Response {
    match decision(svc, endpoint, None, origin(headers)).await {
        d @ CorsDecision::Allow(_) => {
            let mut r = allow(StatusCode::NO_CONTENT.into_response(), &d);
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type, DPoP"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            r
        }
        // No CORS headers: the browser refuses the actual request.
        _ => (StatusCode::FORBIDDEN, "this origin is not registered for any client\n").into_response(),
    }
}

/// `OPTIONS` at the token and revocation endpoints.
pub async fn preflight_post(State(svc): State<AppState>, headers: HeaderMap) -> Response {
    preflight(&svc, &headers, CorsEndpoint::Token, "POST").await
}

/// `OPTIONS` at UserInfo.
pub async fn preflight_userinfo(State(svc): State<AppState>, headers: HeaderMap) -> Response {
    preflight(&svc, &headers, CorsEndpoint::Userinfo, "GET, POST").await
}
