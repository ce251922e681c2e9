//! Two-step sign-in (issue 15): the second step after a password (`/login/two-step`), setting
//! up an authenticator app there when a second factor is required and the user has none, and
//! the account page's second factors (`/account/two-step…`, recovery codes). Server-rendered,
//! no JavaScript; every form CSRF-checked. The decisions (codes, throttles, replay) are the
//! service's ([`tessera_server::service::mfa`]).

use crate::account::{Me, MyForm};
use crate::authorize::{outcome_response, retry_after, wait_text, with_cookie};
use crate::console::{html, utc};
use crate::error::service_page;
use crate::extract::{ClientAddress, CsrfForm, Device, SessionCookie};
use crate::response::see_other;
use crate::{AppState, i18n};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use tessera_server::service::authn::SignInDevice;
use tessera_server::service::authorize::{AuthorizeOutcome, PendingAuthorization};
use tessera_server::service::mfa::{self, CodeRefused, SecondStep, TotpEnrolment, amr};
use tessera_storage::{FactorKind, SessionRecord, UserRecord};

pub const SECOND_STEP: &str = "/login/two-step";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECOND_STEP, get(second_step_page).post(second_step_submit))
        .route("/login/two-step/setup", post(second_step_setup))
        .route("/account/two-step/new", get(new_app_page))
        .route("/account/two-step", post(add_app))
        .route("/account/two-step/{id}/remove", post(remove_factor))
        .route("/account/recovery-codes", post(new_recovery_codes))
}

/// The password checked for `user` in `session`: either the sign-in is done (a new session
/// from `device`, on to `pending`'s consent or to `next`), or it waits for its second step (the
/// user has a factor, or one is required of them or by the client).
pub(crate) async fn after_password(
    svc: &AppState,
    session: &SessionRecord,
    user: &UserRecord,
    pending: Option<&PendingAuthorization>,
    next: &str,
    first: &[String],
    device: &SignInDevice,
) -> Response {
    let required_by_client = pending.is_some_and(|p| p.require_mfa);
    match svc.needs_second_step(user, required_by_client).await {
        Ok(true) => {
            let step = SecondStep { user_id: user.id.clone(), amr: first.to_vec(), request: pending.map(|p| p.id.clone()), next: Some(next.to_string()) };
            match svc.start_second_step(session, &step).await {
                Ok(()) => see_other(SECOND_STEP),
                Err(e) => service_page(&e),
            }
        }
        Ok(false) => finish_sign_in(svc, session, user, pending, next, first, device).await,
        Err(e) => service_page(&e),
    }
}

/// A new session for `user` signed in with `amr` from `device`; the browser goes on to
/// `pending`'s consent (the request moves to the new session) or to `next`.
pub(crate) async fn finish_sign_in(
    svc: &AppState,
    session: &SessionRecord,
    user: &UserRecord,
    pending: Option<&PendingAuthorization>,
    next: &str,
    amr: &[String],
    device: &SignInDevice,
) -> Response {
    match pending {
        Some(p) => {
            let p = PendingAuthorization { force_login: false, signed_in_here: true, ..p.clone() };
            match svc.signed_in_session(user, session, &p, amr, device).await {
                Ok(fresh) => with_cookie(outcome_response(AuthorizeOutcome::Consent(p.id.clone())), svc, fresh.new_cookie.as_deref(), fresh.max_age()),
                Err(e) => service_page(&e),
            }
        }
        None => match svc.signed_in_session_alone(user, session, amr, device).await {
            Ok(fresh) => with_cookie(see_other(next), svc, fresh.new_cookie.as_deref(), fresh.max_age()),
            Err(e) => service_page(&e),
        },
    }
}

#[derive(Template)]
#[template(path = "two_step.html")]
struct SecondStepView<'a> {
    csrf: &'a str,
    /// The user has an authenticator app (else: set one up now).
    has_totp: bool,
    /// The user has a passkey (its button, when this server offers passkeys).
    has_passkey: bool,
    setup: Option<SetupView>,
    error: Option<&'a str>,
}

/// An authenticator app being set up: the QR code (inline SVG), the URI and the secret.
struct SetupView {
    token: String,
    qr_svg: String,
    uri: String,
    secret: String,
}

fn setup_view(e: &TotpEnrolment) -> SetupView {
    let qr_svg = qrcode::QrCode::new(e.uri.as_bytes())
        .map(|q| q.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build())
        .unwrap_or_default();
    // The secret in groups of four, as authenticator apps accept it typed.
    let secret = e.secret_base32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ");
    SetupView { token: e.token.clone(), qr_svg, uri: e.uri.clone(), secret }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesView<'a> {
    codes: &'a [String],
    next: &'a str,
}

/// The second step's page: a code from the user's app (or a recovery code), or — when a
/// second factor is required and they have none — setting up an app now.
async fn second_step_page(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie) -> Response {
    let session = match svc.find_session(cookie.as_deref()).await {
        Ok(Some(s)) => s,
        Ok(None) => return expired(),
        Err(e) => return service_page(&e),
    };
    show_second_step(&svc, &session, StatusCode::OK, None, None).await
}

async fn show_second_step(svc: &AppState, session: &SessionRecord, status: StatusCode, error: Option<&str>, setup: Option<TotpEnrolment>) -> Response {
    let (step, user) = match svc.second_step(session).await {
        Ok(Some(x)) => x,
        Ok(None) => return expired(),
        Err(e) => return service_page(&e),
    };
    if let Some(id) = &step.request {
        if let Ok(Some(p)) = svc.find_pending(id, session).await {
            i18n::prefer(p.oidc.as_ref().and_then(|o| o.ui_locales.as_deref()));
        }
    }
    let (has_totp, has_passkey) = match svc.factors(&user.id).await {
        Ok(f) => (f.iter().any(|f| f.kind == FactorKind::Totp), f.iter().any(|f| f.kind == FactorKind::Passkey) && svc.passkeys_unavailable().is_none()),
        Err(e) => return service_page(&e),
    };
    let setup = match (has_totp || has_passkey, setup) {
        (true, _) => None,
        (false, Some(s)) => Some(setup_view(&s)),
        (false, None) => match svc.begin_totp(&user).await {
            Ok(s) => Some(setup_view(&s)),
            Err(e) => return service_page(&e),
        },
    };
    html(status, &SecondStepView { csrf: &session.csrf_token, has_totp, has_passkey, setup, error })
}

fn expired() -> Response {
    crate::error::page(StatusCode::BAD_REQUEST, &i18n::t("two-step-expired"), &i18n::t("two-step-expired-message"), Some("invalid_request"))
}

/// Where a finished second step goes: the pending request's consent, or `next`.
async fn pending_of(svc: &AppState, session: &SessionRecord, step: &SecondStep) -> Result<Option<PendingAuthorization>, Response> {
    match &step.request {
        Some(id) => match svc.find_pending(id, session).await {
            Ok(Some(p)) => Ok(Some(p)),
            Ok(None) => Err(expired()),
            Err(e) => Err(service_page(&e)),
        },
        None => Ok(None),
    }
}

/// POST /login/two-step: the code; on success the sign-in is done (with `otp` and `mfa`).
async fn second_step_submit(State(svc): State<AppState>, ClientAddress(address): ClientAddress, Device(device): Device, form: CsrfForm) -> Response {
    let CsrfForm { session, params } = form;
    let (_, user) = match svc.second_step(&session).await {
        Ok(Some(x)) => x,
        Ok(None) => return expired(),
        Err(e) => return service_page(&e),
    };
    let code = params.get("code").unwrap_or("");
    if code.trim().is_empty() {
        return show_second_step(&svc, &session, StatusCode::BAD_REQUEST, Some(&i18n::t("two-step-enter-app-code")), None).await;
    }
    let method = match svc.check_code(&user, code, &address).await {
        Ok(Ok(m)) => m,
        Ok(Err(CodeRefused::Wrong { retry_after: 0 })) => {
            return show_second_step(&svc, &session, StatusCode::UNAUTHORIZED, Some(&i18n::t("two-step-wrong")), None).await;
        }
        Ok(Err(CodeRefused::Wrong { retry_after: secs })) => {
            let msg = i18n::t1("two-step-wrong-wait", "wait", &wait_text(secs));
            return show_second_step(&svc, &session, StatusCode::UNAUTHORIZED, Some(&msg), None).await;
        }
        Ok(Err(CodeRefused::Throttled { retry_after: secs })) => {
            let msg = i18n::t1("two-step-throttled", "wait", &wait_text(secs));
            return retry_after(show_second_step(&svc, &session, StatusCode::TOO_MANY_REQUESTS, Some(&msg), None).await, secs);
        }
        Err(e) => return service_page(&e),
    };
    complete(&svc, &session, &user, method, None, &device).await
}

/// The second factor proved: the waiting sign-in is taken (once) and finished (the session
/// from `device`, the browser that finished it); with new recovery codes to show, a page shows
/// them first.
pub(crate) async fn complete(
    svc: &AppState,
    session: &SessionRecord,
    user: &UserRecord,
    method: &str,
    codes: Option<Vec<String>>,
    device: &SignInDevice,
) -> Response {
    let step = match svc.finish_second_step(session).await {
        Ok(Some(s)) if s.user_id == user.id => s,
        Ok(_) => return expired(),
        Err(e) => return service_page(&e),
    };
    let pending = match pending_of(svc, session, &step).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let amr = mfa::with_second_factor(&step.amr, method);
    let next = step.next.as_deref().unwrap_or("/account");
    let done = finish_sign_in(svc, session, user, pending.as_ref(), next, &amr, device).await;
    match codes {
        None => done,
        Some(codes) => {
            // Shown once, before going on: the redirect's target becomes the page's link.
            let target = done.headers().get(axum::http::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or(next).to_string();
            let mut page = html(StatusCode::OK, &RecoveryCodesView { codes: &codes, next: &target });
            for c in done.headers().get_all(axum::http::header::SET_COOKIE) {
                page.headers_mut().append(axum::http::header::SET_COOKIE, c.clone());
            }
            page
        }
    }
}

/// POST /login/two-step/setup: a second factor is required and the user has none: the app
/// set up now is confirmed by its first code, which is also the sign-in's second step.
async fn second_step_setup(State(svc): State<AppState>, ClientAddress(address): ClientAddress, Device(device): Device, form: CsrfForm) -> Response {
    let CsrfForm { session, params } = form;
    let (_, user) = match svc.second_step(&session).await {
        Ok(Some(x)) => x,
        Ok(None) => return expired(),
        Err(e) => return service_page(&e),
    };
    let token = params.get("setup").unwrap_or("");
    match svc.confirm_totp(&user, token, params.get("code").unwrap_or(""), params.get("name").unwrap_or(""), &address).await {
        Ok(Ok(codes)) => complete(&svc, &session, &user, amr::OTP, codes, &device).await,
        Ok(Err(msg)) => {
            let again = svc.find_totp_enrolment(&user, token).await.ok().flatten();
            show_second_step(&svc, &session, StatusCode::BAD_REQUEST, Some(&msg), again).await
        }
        Err(e) => service_page(&e),
    }
}

// --- The account page's second factors ---------------------------------------------------------

#[derive(Template)]
#[template(path = "account_two_step.html")]
struct NewAppView<'a> {
    csrf: &'a str,
    setup: SetupView,
    error: Option<&'a str>,
}

/// GET /account/two-step/new: a new secret, shown to be scanned or typed.
async fn new_app_page(State(svc): State<AppState>, me: Me) -> Response {
    match svc.begin_totp(&me.user).await {
        Ok(e) => html(StatusCode::OK, &NewAppView { csrf: &me.session.csrf_token, setup: setup_view(&e), error: None }),
        Err(e) => service_page(&e),
    }
}

/// POST /account/two-step: the first code confirms the app; new recovery codes are shown once.
async fn add_app(State(svc): State<AppState>, ClientAddress(address): ClientAddress, f: MyForm) -> Response {
    let (me, params) = f.into_parts();
    let token = params.get("setup").unwrap_or("");
    match svc.confirm_totp(&me.user, token, params.get("code").unwrap_or(""), params.get("name").unwrap_or(""), &address).await {
        Ok(Ok(Some(codes))) => html(StatusCode::OK, &RecoveryCodesView { codes: &codes, next: crate::account::ACCOUNT }),
        Ok(Ok(None)) => crate::account::notice(&svc, &me, "Authenticator app added.").await,
        Ok(Err(msg)) => match svc.find_totp_enrolment(&me.user, token).await {
            Ok(Some(e)) => html(StatusCode::BAD_REQUEST, &NewAppView { csrf: &me.session.csrf_token, setup: setup_view(&e), error: Some(&msg) }),
            Ok(None) => crate::account::problem(&svc, &me, &msg).await,
            Err(e) => service_page(&e),
        },
        Err(e) => service_page(&e),
    }
}

/// POST /account/two-step/{id}/remove: one of the user's own factors (another's: not found),
/// with the current password.
async fn remove_factor(State(svc): State<AppState>, ClientAddress(address): ClientAddress, Path(id): Path<String>, f: MyForm) -> Response {
    let (me, params) = f.into_parts();
    // The current password first (checked as a sign-in is: throttled, audited): a session
    // left open is not enough to take a second factor away.
    match svc.sign_in(&me.user.username, params.get("current_password").unwrap_or(""), &address).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return crate::account::problem(&svc, &me, &i18n::t("current-password-wrong")).await,
        Err(e) => return service_page(&e),
    }
    match svc.remove_factor(&me.user, &id).await {
        Ok(true) => crate::account::notice(&svc, &me, "Second factor removed.").await,
        Ok(false) => crate::account::problem(&svc, &me, "No such second factor of yours.").await,
        Err(e) => service_page(&e),
    }
}

/// POST /account/recovery-codes: ten new codes (the old ones stop working), shown once.
async fn new_recovery_codes(State(svc): State<AppState>, f: MyForm) -> Response {
    let (me, _) = f.into_parts();
    match svc.factors(&me.user.id).await {
        Ok(f) if f.is_empty() => return crate::account::problem(&svc, &me, "Set up a second factor first.").await,
        Ok(_) => {}
        Err(e) => return service_page(&e),
    }
    match svc.new_recovery_codes(&me.user.id).await {
        Ok(codes) => html(StatusCode::OK, &RecoveryCodesView { codes: &codes, next: crate::account::ACCOUNT }),
        Err(e) => service_page(&e),
    }
}

/// The account page's list of factors: id, name, kind, added, last used.
pub(crate) fn factor_rows(factors: &[tessera_storage::FactorRecord]) -> Vec<(String, String, &'static str, String, String)> {
    factors
        .iter()
        .map(|f| {
            let kind = match f.kind {
                FactorKind::Totp => "Authenticator app",
                FactorKind::Passkey => "Passkey",
            };
            (f.id.clone(), f.name.clone(), kind, utc(f.created_at), f.last_used_at.map(utc).unwrap_or_else(|| "never".into()))
        })
        .collect()
}
