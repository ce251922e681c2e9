//! RFC 8628 over HTTP: `POST /device_authorization` for devices, and the verification page
//! `/device` where the user types the code (§3.3), with `?user_code=` prefilled for
//! `verification_uri_complete` (the user still confirms: no automatic approval).

use crate::authorize::{client_address, csrf_failed, csrf_ok, outcome_response, query_params, retry_after, wait_text, with_cookie};
use crate::error::{oauth_json, oauth_page, service_json, service_page};
use crate::pages::{DevicePage, render};
use crate::token::{authorization_header, no_store_json, read_form};
use crate::{AppState, cookies};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_server::service::device::UserCodeError;

/// POST /device_authorization — RFC 8628 §3.1.
pub async fn device_authorization(State(svc): State<AppState>, req: Request) -> Response {
    let (headers, params) = match read_form(req).await {
        Ok(x) => x,
        Err(e) => return oauth_json(&e),
    };
    let authorization = match authorization_header(&headers) {
        Ok(a) => a,
        Err(e) => return oauth_json(&e),
    };
    match svc.device_authorization(authorization, &params).await {
        Ok(body) => no_store_json(&body),
        Err(e) => service_json(&e),
    }
}

fn device_page(status: StatusCode, csrf: &str, user_code: &str, error: Option<&str>) -> Response {
    let mut res = (status, render(&DevicePage { csrf, user_code, error })).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// GET /device — the form (a session is started so the form can carry a CSRF token).
pub async fn device_page_get(State(svc): State<AppState>, req: Request) -> Response {
    let params = match query_params(req.uri()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let cookie = cookies::read(req.headers(), svc.config.secure_cookies());
    let (session, new_cookie) = match svc.find_session(cookie.as_deref()).await {
        Ok(Some(s)) => (s, None),
        Ok(None) => match svc.create_session(None).await {
            Ok(s) => (s.record, s.new_cookie),
            Err(e) => return service_page(&e),
        },
        Err(e) => return service_page(&e),
    };
    let typed: String = params.get("user_code").unwrap_or("").chars().take(16).collect();
    with_cookie(
        device_page(StatusCode::OK, &session.csrf_token, &typed, None),
        &svc,
        new_cookie.as_deref(),
        tessera_server::service::authn::ANONYMOUS_SESSION_SECS,
    )
}

/// POST /device — check the code (throttled), then sign-in and consent.
pub async fn device_page_post(State(svc): State<AppState>, req: Request) -> Response {
    let address = client_address(&svc, &req);
    let (headers, params) = match read_form(req).await {
        Ok(x) => x,
        Err(e) => return oauth_page(&e),
    };
    let cookie = cookies::read(&headers, svc.config.secure_cookies());
    let session = match svc.find_session(cookie.as_deref()).await {
        Ok(Some(s)) => s,
        Ok(None) => return csrf_failed(),
        Err(e) => return service_page(&e),
    };
    if !csrf_ok(&session, &params) {
        return csrf_failed();
    }
    let typed = params.get("user_code").unwrap_or("");
    match svc.enter_user_code(typed, &session, &address).await {
        Ok(Ok(outcome)) => outcome_response(outcome),
        Ok(Err(UserCodeError::Invalid)) => {
            device_page(StatusCode::BAD_REQUEST, &session.csrf_token, typed, Some("That code is not valid or has expired. Check the code on your device."))
        }
        Ok(Err(UserCodeError::Throttled { retry_after: secs })) => {
            let message = format!("Too many wrong codes. Try again in {}.", wait_text(secs));
            retry_after(device_page(StatusCode::TOO_MANY_REQUESTS, &session.csrf_token, typed, Some(&message)), secs)
        }
        Err(e) => service_page(&e),
    }
}
