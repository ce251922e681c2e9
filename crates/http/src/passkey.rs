//! Passkeys over HTTP (issue 15): the JSON endpoints `static/passkeys.js` calls for the three
//! ceremonies — registering one on the account page, signing in with one instead of a
//! password, and using one as the second step. Each is a pair: `…/options` starts the ceremony
//! (the challenge kept by the service, bound to the session) and the other finishes it. Every
//! request is a CSRF-checked form post; answers are JSON (`{"redirect": …}` or `{"error": …}`).

use crate::AppState;
use crate::account::MyForm;
use crate::extract::{ClientAddress, CsrfForm, Device};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tessera_server::service::ServiceError;
use tessera_server::service::passkey::PasskeyRefused;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/passkeys/options", post(registration_options))
        .route("/account/passkeys", post(register))
        .route("/login/passkey/options", post(sign_in_options))
        .route("/login/passkey", post(sign_in))
        .route("/login/two-step/passkey/options", post(second_step_options))
        .route("/login/two-step/passkey", post(second_step))
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    crate::response::NoStore((status, axum::Json(body))).into_response()
}

fn refused(r: PasskeyRefused) -> Response {
    let status = if r == PasskeyRefused::Expired { StatusCode::BAD_REQUEST } else { StatusCode::UNAUTHORIZED };
    answer(status, json!({ "error": r.message() }))
}

fn failed(e: &ServiceError) -> Response {
    match e {
        ServiceError::OAuth(o) if o.code == tessera_protocol::ErrorCode::InvalidRequest => answer(StatusCode::BAD_REQUEST, json!({ "error": o.description })),
        _ => {
            tracing::warn!(error = %e, "passkey request failed");
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": "The server could not complete this. Try again." }))
        }
    }
}

/// A page answer (a redirect with its cookies) as JSON for the script: `{"redirect": …}`, the
/// cookies kept.
fn as_json(res: Response) -> Response {
    let Some(to) = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return answer(StatusCode::BAD_REQUEST, json!({ "error": "This sign-in has expired. Start again." }));
    };
    let mut out = answer(StatusCode::OK, json!({ "redirect": to }));
    for c in res.headers().get_all(header::SET_COOKIE) {
        out.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    out
}

fn options(started: Result<(String, serde_json::Value), ServiceError>) -> Response {
    match started {
        Ok((token, options)) => answer(StatusCode::OK, json!({ "token": token, "options": options })),
        Err(e) => failed(&e),
    }
}

/// POST /account/passkeys/options
async fn registration_options(State(svc): State<AppState>, f: MyForm) -> Response {
    let (me, _) = f.into_parts();
    options(svc.begin_passkey_registration(&me.user, &me.session).await)
}

/// POST /account/passkeys: `token`, `name`, `credential` (the authenticator's answer, JSON).
async fn register(State(svc): State<AppState>, f: MyForm) -> Response {
    let (me, p) = f.into_parts();
    let (token, name, credential) = (p.get("token").unwrap_or(""), p.get("name").unwrap_or(""), p.get("credential").unwrap_or(""));
    match svc.finish_passkey_registration(&me.user, &me.session, token, name, credential).await {
        Ok(Ok(_)) => answer(StatusCode::OK, json!({ "redirect": "/account?added=passkey#two-step" })),
        Ok(Err(r)) => refused(r),
        Err(e) => failed(&e),
    }
}

/// POST /login/passkey/options: a passwordless sign-in starts.
async fn sign_in_options(State(svc): State<AppState>, f: CsrfForm) -> Response {
    options(svc.begin_passkey_sign_in(&f.session).await)
}

/// Where a sign-in without an authorization request goes: the account page or the console.
fn next_of(p: &tessera_protocol::params::Params) -> &'static str {
    match p.get("next") {
        Some("/admin") => "/admin",
        _ => crate::account::ACCOUNT,
    }
}

/// POST /login/passkey: `token`, `credential`, and `request` (the pending authorization) or
/// `next`. A passkey with user verification is two factors: signed in with `hwk` and `mfa`.
async fn sign_in(State(svc): State<AppState>, ClientAddress(address): ClientAddress, Device(device): Device, f: CsrfForm) -> Response {
    let CsrfForm { session, params } = f;
    let pending = match params.get("request") {
        Some(id) => match svc.find_pending(id, &session).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => return refused(PasskeyRefused::Expired),
            Err(e) => return failed(&e),
        },
        None => None,
    };
    let (token, credential) = (params.get("token").unwrap_or(""), params.get("credential").unwrap_or(""));
    match svc.finish_passkey_sign_in(&session, token, credential, &address).await {
        Ok(Ok((user, amr))) => as_json(crate::mfa::finish_sign_in(&svc, &session, &user, pending.as_ref(), next_of(&params), &amr, &device).await),
        Ok(Err(r)) => refused(r),
        Err(e) => failed(&e),
    }
}

/// POST /login/two-step/passkey/options: the second step with one of the user's passkeys.
async fn second_step_options(State(svc): State<AppState>, f: CsrfForm) -> Response {
    let user = match svc.second_step(&f.session).await {
        Ok(Some((_, u))) => u,
        Ok(None) => return refused(PasskeyRefused::Expired),
        Err(e) => return failed(&e),
    };
    match svc.begin_passkey_second_step(&user, &f.session).await {
        Ok(Some(started)) => options(Ok(started)),
        Ok(None) => answer(StatusCode::BAD_REQUEST, json!({ "error": "You have no passkey. Use your authenticator app's code." })),
        Err(e) => failed(&e),
    }
}

/// POST /login/two-step/passkey: `token`, `credential`; the sign-in finishes with `hwk`.
async fn second_step(State(svc): State<AppState>, Device(device): Device, f: CsrfForm) -> Response {
    let CsrfForm { session, params } = f;
    let user = match svc.second_step(&session).await {
        Ok(Some((_, u))) => u,
        Ok(None) => return refused(PasskeyRefused::Expired),
        Err(e) => return failed(&e),
    };
    let (token, credential) = (params.get("token").unwrap_or(""), params.get("credential").unwrap_or(""));
    match svc.finish_passkey_second_step(&user, &session, token, credential).await {
        Ok(Ok(method)) => as_json(crate::mfa::complete(&svc, &session, &user, method, None, &device).await),
        Ok(Err(r)) => refused(r),
        Err(e) => failed(&e),
    }
}
