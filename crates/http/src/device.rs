//! RFC 8628 over HTTP: `POST /device_authorization` for devices, and the verification page
//! `/device` where the user types the code (§3.3), with `?user_code=` prefilled for
//! `verification_uri_complete` (the user still confirms: no automatic approval).

use crate::AppState;
use crate::authorize::{outcome_response, retry_after, wait_text, with_cookie};
use crate::error::{JsonError, PageError, service_page};
use crate::extract::{ClientAddress, CsrfForm, PageQuery, SessionCookie, TokenForm};
use crate::pages::DevicePage;
use crate::response::NoStore;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_protocol::grant::device_code::DeviceAuthorizationRequest;
use tessera_server::service::authn::ANONYMOUS_SESSION_SECS;
use tessera_server::service::device::{DeviceAuthorizationResponse, UserCodeError};

/// POST /device_authorization — RFC 8628 §3.1.
pub async fn device_authorization(State(svc): State<AppState>, form: TokenForm) -> Result<NoStore<Json<DeviceAuthorizationResponse>>, JsonError> {
    let client = svc.authenticate_client(&form.credentials()?).await?;
    Ok(NoStore(Json(svc.device_authorization(&client, DeviceAuthorizationRequest::parse(&form.params)).await?)))
}

fn device_page(status: StatusCode, csrf: &str, user_code: &str, error: Option<&str>) -> Response {
    NoStore((status, crate::overrides::render(&DevicePage { csrf, user_code, error }))).into_response()
}

/// GET /device — the form (a session is started so the form can carry a CSRF token).
pub async fn device_page_get(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie, PageQuery(params): PageQuery) -> Result<Response, PageError> {
    let (session, new_cookie) = match svc.find_session(cookie.as_deref()).await? {
        Some(s) => (s, None),
        None => {
            let s = svc.create_session(None).await?;
            (s.record, s.new_cookie)
        }
    };
    let typed: String = params.get("user_code").unwrap_or("").chars().take(16).collect();
    Ok(with_cookie(device_page(StatusCode::OK, &session.csrf_token, &typed, None), &svc, new_cookie.as_deref(), ANONYMOUS_SESSION_SECS))
}

/// POST /device — check the code (throttled), then sign-in and consent.
pub async fn device_page_post(State(svc): State<AppState>, ClientAddress(address): ClientAddress, form: CsrfForm) -> Response {
    let CsrfForm { session, params } = form;
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
