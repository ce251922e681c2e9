//! The browser side of the code flow: `/authorize` (RFC 6749 §3.1: GET, and POST with a form
//! body), the sign-in page and the consent page. Handlers only translate between HTTP and the
//! service; every POST form is checked against the session's CSRF token ([`PendingForm`]).

use crate::error::{PageError, page, service_page};
use crate::extract::{ClientAddress, Device, PageForm, PageQuery, PendingForm, SessionCookie, session_and_pending};
use crate::pages::{ConsentPage, FormPostPage, LoginPage, MessagePage, render};
use crate::response::{NoStore, see_other};
use crate::{AppState, cookies, i18n};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_protocol::authorize::AuthorizeParams;
use tessera_protocol::metadata::paths;
use tessera_protocol::params::Params;
use tessera_server::secret;
use tessera_server::service::ServiceError;
use tessera_server::service::authn::{ANONYMOUS_SESSION_SECS, SignInError};
use tessera_server::service::authorize::{AuthorizeOutcome, Decision, PendingAuthorization};
use tessera_server::service::mfa::{self, amr};
use tessera_storage::SessionRecord;

/// Set the session cookie, when there is a new one, with `max_age` (the session's lifetime).
pub(crate) fn with_cookie(mut res: Response, svc: &AppState, new_cookie: Option<&str>, max_age: i64) -> Response {
    if let Some(c) = new_cookie.and_then(|c| cookies::set(c, svc.config.secure_cookies(), max_age)) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

pub(crate) fn outcome_response(outcome: AuthorizeOutcome) -> Response {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    match outcome {
        AuthorizeOutcome::ErrorPage(e) => crate::error::oauth_page(&e),
        // RFC 9700 §4.11: 303 so that a POSTed form is not re-sent to the client.
        AuthorizeOutcome::RedirectToClient(url) => see_other(&url),
        AuthorizeOutcome::PostToClient { action, fields } => {
            let nonce = secret::random_id();
            let mut res = NoStore(render(&FormPostPage { action: &action, fields: &fields, nonce: &nonce })).into_response();
            let csp = format!("default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'");
            if let Ok(v) = HeaderValue::from_str(&csp) {
                res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            res
        }
        AuthorizeOutcome::Login(id) => see_other(&format!("{}?request={}", paths::LOGIN, enc(&id))),
        AuthorizeOutcome::Consent(id) => see_other(&format!("{}?request={}", paths::CONSENT, enc(&id))),
        AuthorizeOutcome::DeviceDone { approved } => {
            let (title, message) = if approved {
                (i18n::t("device-connected"), i18n::t("device-connected-message"))
            } else {
                (i18n::t("device-denied"), i18n::t("device-denied-message"))
            };
            NoStore(crate::overrides::render(&MessagePage { title: &title, message: &message })).into_response()
        }
    }
}

async fn run_authorize(svc: AppState, cookie: Option<&str>, params: Params) -> Result<Response, PageError> {
    let session = svc.find_session(cookie).await?;
    // A session /authorize starts is anonymous.
    let (outcome, new_cookie) = svc.authorize(&AuthorizeParams::from(&params), session.as_ref()).await?;
    Ok(with_cookie(outcome_response(outcome), &svc, new_cookie.as_deref(), ANONYMOUS_SESSION_SECS))
}

/// GET /authorize — RFC 6749 §4.1.1.
pub async fn authorize(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie, PageQuery(params): PageQuery) -> Result<Response, PageError> {
    run_authorize(svc, cookie.as_deref(), params).await
}

/// POST /authorize — the same request as a form body (RFC 6749 §3.1 "MAY support POST").
pub async fn authorize_post(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie, PageForm(params): PageForm) -> Result<Response, PageError> {
    run_authorize(svc, cookie.as_deref(), params).await
}

/// "N seconds" or, from a minute on, "N minutes" (rounded up), for "Try again in …", in the
/// page's language.
pub(crate) fn wait_text(secs: i64) -> String {
    match secs {
        ..=59 => i18n::tn("wait-seconds", "n", secs.max(1)),
        _ => i18n::tn("wait-minutes", "n", (secs + 59) / 60),
    }
}

/// What a sign-in form says when the sign-in is refused: the status, the message, and the
/// `Retry-After` seconds when there is a wait (every sign-in form: `/login`, the console's, the
/// account page's).
pub(crate) fn refusal(e: &SignInError) -> (StatusCode, String, Option<i64>) {
    match *e {
        SignInError::InvalidCredentials { retry_after: 0 } => (StatusCode::UNAUTHORIZED, i18n::t("login-incorrect"), None),
        SignInError::InvalidCredentials { retry_after: secs } => (StatusCode::UNAUTHORIZED, i18n::t1("login-incorrect-wait", "wait", &wait_text(secs)), None),
        // RFC 6749 §10.10: refused without checking the password, until the window ends.
        SignInError::Throttled { retry_after: secs } => (StatusCode::TOO_MANY_REQUESTS, i18n::t1("login-throttled", "wait", &wait_text(secs)), Some(secs)),
        SignInError::Disabled => (StatusCode::FORBIDDEN, i18n::t("login-disabled"), None),
        SignInError::Busy => (StatusCode::SERVICE_UNAVAILABLE, i18n::t("login-busy"), Some(1)),
    }
}

/// A 429 or 503 answer's `Retry-After` (RFC 9110 §10.2.3), whole seconds.
pub(crate) fn retry_after(mut res: Response, secs: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

async fn client_name(svc: &AppState, client_id: &str) -> Result<String, ServiceError> {
    // The client cache /authorize and /token use (a rename shows within its bound).
    Ok(svc.cached_client(client_id).await?.map(|c| c.name.clone()).unwrap_or_else(|| client_id.to_string()))
}

async fn login_form(svc: &AppState, status: StatusCode, session: &SessionRecord, p: &PendingAuthorization, username: &str, error: Option<&str>) -> Response {
    let name = match client_name(svc, &p.client_id).await {
        Ok(n) => n,
        Err(e) => return service_page(&e),
    };
    let page = LoginPage {
        client_name: &name,
        csrf: &session.csrf_token,
        request_id: &p.id,
        username,
        error,
        passkeys: svc.passkeys_unavailable().is_none(),
        passkey_request: Some(&p.id),
        passkey_next: None,
        links: crate::pages::SigninLinks::of(svc),
    };
    NoStore((status, crate::overrides::render(&page))).into_response()
}

/// GET /login?request=ID
pub async fn login_page(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie, PageQuery(params): PageQuery) -> Response {
    let (session, pending) = match session_and_pending(&svc, cookie.as_deref(), &params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let (Some(user_id), false) = (&session.user_id, pending.force_login) {
        // Signed in, but the client or the request requires a second factor this session's
        // sign-in did not use: only the second step is asked (step-up).
        if pending.require_mfa && !mfa::session_has_mfa(&session) {
            let user = match svc.active_user(user_id).await {
                Ok(Some(u)) => u,
                Ok(None) => return outcome_response(AuthorizeOutcome::Consent(pending.id)),
                Err(e) => return service_page(&e),
            };
            let first: Vec<String> = session.amr.as_deref().unwrap_or(amr::PWD).split(' ').map(str::to_string).collect();
            let step = mfa::SecondStep { user_id: user.id.clone(), amr: first, request: Some(pending.id.clone()), next: None };
            return match svc.start_second_step(&session, &step).await {
                Ok(()) => see_other(crate::mfa::SECOND_STEP),
                Err(e) => service_page(&e),
            };
        }
        return outcome_response(AuthorizeOutcome::Consent(pending.id));
    }
    // OIDC Core §3.1.2.1 login_hint: prefill the username.
    let hint: String = pending.oidc.as_ref().and_then(|o| o.login_hint.as_deref()).unwrap_or("").chars().take(64).collect();
    login_form(&svc, StatusCode::OK, &session, &pending, &hint, None).await
}

/// POST /login — check the password (Argon2id, throttled), then start a fresh session.
pub async fn login_submit(State(svc): State<AppState>, ClientAddress(address): ClientAddress, Device(device): Device, form: PendingForm) -> Response {
    let PendingForm { session, pending, params } = form;
    let username = params.get("username").unwrap_or("");
    let password = params.get("password").unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return login_form(&svc, StatusCode::BAD_REQUEST, &session, &pending, username, Some(&i18n::t("login-enter-both"))).await;
    }
    let user = match svc.sign_in(username, password, &address).await {
        Ok(Ok(u)) => u,
        Ok(Err(refused)) => {
            let (status, message, wait) = refusal(&refused);
            let res = login_form(&svc, status, &session, &pending, username, Some(&message)).await;
            return match wait {
                Some(secs) => retry_after(res, secs),
                None => res,
            };
        }
        Err(e) => return service_page(&e),
    };
    // A new session id at sign-in (after the second step, when there is one), so a planted
    // cookie cannot ride the user's login; the pending request moves to it in the same
    // transaction.
    crate::mfa::after_password(&svc, &session, &user, Some(&pending), "/account", &[amr::PWD.to_string()], &device).await
}

/// GET /consent?request=ID — the page, or straight back to the client when nothing new is asked.
pub async fn consent_page(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie, PageQuery(params): PageQuery) -> Response {
    let (session, pending) = match session_and_pending(&svc, cookie.as_deref(), &params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match svc.consent_step(&pending, &session).await {
        Ok(Ok(view)) => NoStore(crate::overrides::render(&ConsentPage {
            client_name: &view.client_name,
            username: &view.username,
            csrf: &session.csrf_token,
            request_id: &view.request_id,
            new_scopes: &view.new_scopes.iter().map(|(n, d)| (n.clone(), i18n::scope_description(n, d))).collect::<Vec<_>>(),
            granted: &view.granted,
            device_user_code: view.device_user_code.as_deref(),
        }))
        .into_response(),
        Ok(Err(outcome)) => outcome_response(outcome),
        Err(e) => service_page(&e),
    }
}

/// POST /consent — Allow or Deny.
pub async fn consent_submit(State(svc): State<AppState>, form: PendingForm) -> Result<Response, PageError> {
    let decision = match form.params.get("decision") {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => {
            return Ok(page(StatusCode::BAD_REQUEST, &i18n::t("consent-choose"), &i18n::t("consent-choose-message"), Some("invalid_request")));
        }
    };
    Ok(outcome_response(svc.decide(&form.pending, &form.session, decision).await?))
}
