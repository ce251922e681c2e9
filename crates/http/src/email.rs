//! The pages account mail opens (issue 15): "Forgot your password?" (`/password/forgot`), a
//! reset link's page (`/password/reset`), a verification link (`/email/verify`), an
//! invitation's page (`/invite`), self-registration (`/register`, `/register/confirm`: 404
//! unless `--self-registration`), and the account page's email forms (`/account/email`,
//! `/account/email/verify`). Handlers only translate: the decisions (tokens, throttles, what is
//! mailed) are [`tessera_server::service::email`]'s. Every form carries the session's CSRF token
//! (a link's page starts an anonymous session for it); an expired, used or garbled link is a
//! 400 page, never a 500.

use crate::account::{MyForm, notice, problem};
use crate::authorize::{retry_after, wait_text, with_cookie};
use crate::console::html;
use crate::error::service_page;
use crate::extract::{ClientAddress, CsrfForm, PageQuery, SessionCookie};
use crate::{AppState, i18n};
use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use tessera_server::service::authn::ANONYMOUS_SESSION_SECS;
use tessera_server::service::email::{Link, LinkRefused, MailRequest, RegisterRefused, Registration, paths};
use tessera_storage::SessionRecord;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::FORGOT, get(forgot_page).post(forgot_submit))
        .route(paths::RESET, get(|st, c, q| set_password_page(st, c, q, Link::Reset)).post(|st, a, f| set_password_submit(st, a, f, Link::Reset)))
        .route(paths::INVITE, get(|st, c, q| set_password_page(st, c, q, Link::Invite)).post(|st, a, f| set_password_submit(st, a, f, Link::Invite)))
        .route(paths::VERIFY_EMAIL, get(verify_email))
        .route(paths::REGISTER, get(register_page).post(register_submit))
        .route(paths::REGISTER_CONFIRM, get(register_confirm))
        .route("/account/email", post(change_email))
        .route("/account/email/verify", post(send_verification))
}

#[derive(Template)]
#[template(path = "link_message.html")]
struct MessageView<'a> {
    title: &'a str,
    message: &'a str,
    problem: bool,
    /// (href, label)
    link: Option<(&'a str, &'a str)>,
}

fn message(status: StatusCode, title: &str, message: &str, link: Option<(&str, &str)>) -> Response {
    html(status, &MessageView { title, message, problem: !status.is_success(), link })
}

/// The page of a link that no longer works (expired, used, garbled): 400.
fn link_invalid(link: Link) -> Response {
    let (msg, next, label) = match link {
        Link::Reset => (i18n::t("link-reset-invalid"), paths::FORGOT, i18n::t("link-ask-new")),
        Link::Invite => (i18n::t("link-invite-invalid"), paths::SIGN_IN, i18n::t("login-sign-in")),
        Link::VerifyEmail => (i18n::t("link-verify-invalid"), paths::ACCOUNT, i18n::t("login-account-link")),
        Link::Register => (i18n::t("link-register-invalid"), paths::REGISTER, i18n::t("link-register-again")),
    };
    message(StatusCode::BAD_REQUEST, &i18n::t("link-does-not-work"), &msg, Some((next, &label)))
}

/// Render a page in the browser's session: an anonymous one is started when there is none (its
/// CSRF token goes into the page's form).
async fn in_session(svc: &AppState, cookie: Option<&str>, page: impl FnOnce(&SessionRecord) -> Response) -> Response {
    match svc.find_session(cookie).await {
        Ok(Some(s)) => page(&s),
        Ok(None) => match svc.create_session(None).await {
            Ok(s) => with_cookie(page(&s.record), svc, s.new_cookie.as_deref(), ANONYMOUS_SESSION_SECS),
            Err(e) => service_page(&e),
        },
        Err(e) => service_page(&e),
    }
}

// --- Forgot your password? ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotView<'a> {
    csrf: &'a str,
    who: &'a str,
    error: Option<&'a str>,
}

/// GET /password/forgot (404 when the server sends no mail).
async fn forgot_page(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie) -> Response {
    if !svc.mail_enabled() {
        return crate::error::not_found().await;
    }
    in_session(&svc, cookie.as_deref(), |s| html(StatusCode::OK, &ForgotView { csrf: &s.csrf_token, who: "", error: None })).await
}

/// The form of a page that is only there when `on` (the mail pages): 404 before anything is
/// read otherwise, then the CSRF-checked form.
async fn form_if(svc: &AppState, on: bool, req: Request) -> Result<CsrfForm, Response> {
    if !on {
        return Err(crate::error::not_found().await);
    }
    CsrfForm::from_request(req, svc).await
}

/// POST /password/forgot: always the same answer, whoever was named (only too many requests
/// from this address are said, 429).
async fn forgot_submit(State(svc): State<AppState>, ClientAddress(address): ClientAddress, req: Request) -> Response {
    let form = match form_if(&svc, svc.mail_enabled(), req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let who = form.params.get("who").unwrap_or("");
    match svc.request_password_reset(who, &address).await {
        Ok(MailRequest::Accepted) => {
            message(StatusCode::OK, &i18n::t("mail-check"), &i18n::t("forgot-sent"), Some((paths::SIGN_IN, &i18n::t("back-to-sign-in"))))
        }
        Ok(MailRequest::Throttled { retry_after: secs }) => {
            let msg = i18n::t1("too-many-requests", "wait", &wait_text(secs));
            retry_after(html(StatusCode::TOO_MANY_REQUESTS, &ForgotView { csrf: &form.session.csrf_token, who, error: Some(&msg) }), secs)
        }
        Err(e) => service_page(&e),
    }
}

// --- A reset link, an invitation ---------------------------------------------------------------

#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPasswordView<'a> {
    title: &'a str,
    lead: &'a str,
    button: &'a str,
    action: &'a str,
    csrf: &'a str,
    token: &'a str,
    username: &'a str,
    min_length: usize,
    error: Option<&'a str>,
}

fn set_password_form(svc: &AppState, status: StatusCode, link: Link, csrf: &str, token: &str, username: &str, error: Option<&str>) -> Response {
    let (title, lead, button, action) = match link {
        Link::Invite => (i18n::t("invite-welcome"), i18n::t("invite-lead"), i18n::t("invite-button"), paths::INVITE),
        _ => (i18n::t("reset-title"), i18n::t("reset-lead"), i18n::t("reset-button"), paths::RESET),
    };
    let min_length = svc.config.password_policy.min_length;
    html(status, &SetPasswordView { title: &title, lead: &lead, button: &button, action, csrf, token, username, min_length, error })
}

/// GET /password/reset?token=… and /invite?token=…: the form, while the link is valid.
async fn set_password_page(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie, PageQuery(q): PageQuery, link: Link) -> Response {
    let token = q.get("token").unwrap_or("");
    let user = match svc.find_link_user(link, token).await {
        Ok(Some(u)) => u,
        Ok(None) => return link_invalid(link),
        Err(e) => return service_page(&e),
    };
    in_session(&svc, cookie.as_deref(), |s| set_password_form(&svc, StatusCode::OK, link, &s.csrf_token, token, &user.username, None)).await
}

/// POST /password/reset and /invite: the new password twice; the link is used once, every
/// session and refresh token of the user ends, and the user signs in with it.
async fn set_password_submit(State(svc): State<AppState>, ClientAddress(address): ClientAddress, form: CsrfForm, link: Link) -> Response {
    let CsrfForm { session, params } = form;
    let token = params.get("token").unwrap_or("");
    let new = params.get("new_password").unwrap_or("");
    let again = |status: StatusCode, error: &str| {
        let username = params.get("username").unwrap_or("");
        set_password_form(&svc, status, link, &session.csrf_token, token, username, Some(error))
    };
    if params.get("confirm_password").unwrap_or("") != new {
        return again(StatusCode::BAD_REQUEST, &i18n::t("passwords-differ"));
    }
    match svc.set_password_by_link(link, token, new, &address).await {
        Ok(Ok(user)) => {
            let (title, msg) = match link {
                Link::Invite => (i18n::t("account-ready"), i18n::t1("invite-done", "user", &user.username)),
                _ => (i18n::t("password-changed"), i18n::t1("reset-done", "user", &user.username)),
            };
            message(StatusCode::OK, &title, &msg, Some((paths::SIGN_IN, &i18n::t("login-sign-in"))))
        }
        Ok(Err(LinkRefused::Password(m))) => again(StatusCode::BAD_REQUEST, &m),
        Ok(Err(LinkRefused::Busy)) => retry_after(again(StatusCode::SERVICE_UNAVAILABLE, &i18n::t("login-busy")), 1),
        Ok(Err(_)) => link_invalid(link),
        Err(e) => service_page(&e),
    }
}

// --- Verification ------------------------------------------------------------------------------

/// GET /email/verify?token=…: the address the link went to is verified, if it is still the
/// account's.
async fn verify_email(State(svc): State<AppState>, PageQuery(q): PageQuery) -> Response {
    match svc.verify_email(q.get("token").unwrap_or("")).await {
        Ok(Ok((_, email))) => message(
            StatusCode::OK,
            &i18n::t("email-confirmed"),
            &format!("{email} is the confirmed address of your account now."),
            Some((paths::ACCOUNT, &i18n::t("login-account-link"))),
        ),
        Ok(Err(LinkRefused::Stale)) => message(
            StatusCode::BAD_REQUEST,
            &i18n::t("link-old-address"),
            &i18n::t("link-old-address-message"),
            Some((paths::ACCOUNT, &i18n::t("login-account-link"))),
        ),
        Ok(Err(_)) => link_invalid(Link::VerifyEmail),
        Err(e) => service_page(&e),
    }
}

/// POST /account/email/verify: a verification link to the account's address.
async fn send_verification(State(svc): State<AppState>, f: MyForm) -> Response {
    let (me, _) = f.into_parts();
    match svc.send_verification(&me.user).await {
        Ok(Ok(email)) => notice(&svc, &me, &i18n::t1("verify-sent", "email", &email)).await,
        Ok(Err(why)) => problem(&svc, &me, &why).await,
        Err(e) => service_page(&e),
    }
}

/// POST /account/email: a new address (the current password checked as a sign-in is); saved
/// unverified, a link mailed to it.
async fn change_email(State(svc): State<AppState>, ClientAddress(address): ClientAddress, f: MyForm) -> Response {
    let (me, params) = f.into_parts();
    match svc.sign_in(&me.user.username, params.get("current_password").unwrap_or(""), &address).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return problem(&svc, &me, &i18n::t("current-password-wrong")).await,
        Err(e) => return service_page(&e),
    }
    match svc.change_email(&me.user, params.get("email").unwrap_or("")).await {
        Ok(Ok(msg)) => {
            // The page shows the account as it is now.
            let me = match svc.active_user(&me.user.id).await {
                Ok(Some(user)) => crate::account::Me { user, session: me.session },
                Ok(None) => return problem(&svc, &me, &i18n::t("account-not-found")).await,
                Err(e) => return service_page(&e),
            };
            notice(&svc, &me, &msg).await
        }
        Ok(Err(why)) => problem(&svc, &me, &why).await,
        Err(e) => service_page(&e),
    }
}

// --- Self-registration -------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterView<'a> {
    csrf: &'a str,
    email: &'a str,
    username: &'a str,
    name: &'a str,
    min_length: usize,
    error: Option<&'a str>,
}

/// GET /register (404 unless `--self-registration`).
async fn register_page(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie) -> Response {
    if !svc.config.self_registration {
        return crate::error::not_found().await;
    }
    let min_length = svc.config.password_policy.min_length;
    in_session(&svc, cookie.as_deref(), |s| {
        html(StatusCode::OK, &RegisterView { csrf: &s.csrf_token, email: "", username: "", name: "", min_length, error: None })
    })
    .await
}

/// POST /register: the same answer whether or not the username or the address has an account
/// (the address is told by mail).
async fn register_submit(State(svc): State<AppState>, ClientAddress(address): ClientAddress, req: Request) -> Response {
    let form = match form_if(&svc, svc.config.self_registration, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let p = &form.params;
    let (email, username, name) = (p.get("email").unwrap_or(""), p.get("username").unwrap_or(""), p.get("name").unwrap_or(""));
    let password = p.get("password").unwrap_or("");
    let again = |status: StatusCode, error: &str| {
        let view =
            RegisterView { csrf: &form.session.csrf_token, email, username, name, min_length: svc.config.password_policy.min_length, error: Some(error) };
        html(status, &view)
    };
    if p.get("confirm_password").unwrap_or("") != password {
        return again(StatusCode::BAD_REQUEST, &i18n::t("passwords-differ"));
    }
    let r = Registration { email: email.into(), username: username.into(), name: Some(name.into()), password: password.into() };
    match svc.register(r, &address).await {
        Ok(Ok(to)) => message(StatusCode::OK, &i18n::t("mail-check"), &i18n::t1("register-sent", "email", &to), None),
        Ok(Err(RegisterRefused::Invalid(m))) => again(StatusCode::BAD_REQUEST, &m),
        Ok(Err(RegisterRefused::Throttled { retry_after: secs })) => {
            retry_after(again(StatusCode::TOO_MANY_REQUESTS, &i18n::t1("too-many-requests", "wait", &wait_text(secs))), secs)
        }
        Ok(Err(RegisterRefused::Busy)) => retry_after(again(StatusCode::SERVICE_UNAVAILABLE, &i18n::t("login-busy")), 1),
        Err(e) => service_page(&e),
    }
}

/// GET /register/confirm?token=…: the account is made, enabled and its address verified.
async fn register_confirm(State(svc): State<AppState>, PageQuery(q): PageQuery) -> Response {
    if !svc.config.self_registration {
        return crate::error::not_found().await;
    }
    match svc.confirm_registration(q.get("token").unwrap_or("")).await {
        Ok(Ok(user)) => message(
            StatusCode::OK,
            &i18n::t("account-ready"),
            &i18n::t1("register-done", "user", &user.username),
            Some((paths::SIGN_IN, &i18n::t("login-sign-in"))),
        ),
        Ok(Err(LinkRefused::Taken(m))) => {
            message(StatusCode::CONFLICT, &i18n::t("register-not-made"), &m, Some((paths::REGISTER, &i18n::t("link-register-again"))))
        }
        Ok(Err(_)) => link_invalid(Link::Register),
        Err(e) => service_page(&e),
    }
}
