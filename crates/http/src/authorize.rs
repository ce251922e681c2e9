//! The browser side of the code flow: `/authorize` (RFC 6749 §3.1: GET, and POST with a form
//! body), the sign-in page and the consent page. Handlers only translate between HTTP and the
//! service; every POST form is checked against the session's CSRF token.

use crate::error::{oauth_page, page, service_page};
use crate::pages::{ConsentPage, FormPostPage, LoginPage, MessagePage, render};
use crate::token::read_form;
use crate::{AppState, cookies};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use tessera_protocol::params::Params;
use tessera_server::secret;
use tessera_server::service::ServiceError;
use tessera_server::service::authn::{ANONYMOUS_SESSION_SECS, Session, SignInError};
use tessera_server::service::authorize::{AuthorizeOutcome, Decision, PendingAuthorization};
use tessera_storage::SessionRecord;

pub(super) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => page(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", "The redirect could not be built.", None),
    }
}

/// Set the session cookie, when there is a new one, with `max_age` (the session's lifetime).
pub(super) fn with_cookie(mut res: Response, svc: &AppState, new_cookie: Option<&str>, max_age: i64) -> Response {
    if let Some(c) = new_cookie.and_then(|c| cookies::set(c, svc.config.secure_cookies(), max_age)) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

pub(super) fn outcome_response(outcome: AuthorizeOutcome) -> Response {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    match outcome {
        AuthorizeOutcome::ErrorPage(e) => oauth_page(&e),
        // RFC 9700 §4.11: 303 so that a POSTed form is not re-sent to the client.
        AuthorizeOutcome::RedirectToClient(url) => see_other(&url),
        AuthorizeOutcome::PostToClient { action, fields } => {
            let nonce = secret::random_id();
            let mut res = render(&FormPostPage { action: &action, fields: &fields, nonce: &nonce }).into_response();
            let csp = format!("default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'");
            if let Ok(v) = HeaderValue::from_str(&csp) {
                res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        AuthorizeOutcome::Login(id) => see_other(&format!("/login?request={}", enc(&id))),
        AuthorizeOutcome::Consent(id) => see_other(&format!("/consent?request={}", enc(&id))),
        AuthorizeOutcome::DeviceDone { approved } => {
            let (title, message) = if approved {
                ("Device connected", "You can close this page and return to your device.")
            } else {
                ("Request denied", "The device was not given access. You can close this page.")
            };
            let mut res = render(&MessagePage { title, message }).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
    }
}

fn expired() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "The request was not found or has expired, or cookies are blocked for this site.",
        Some("invalid_request"),
    )
}

pub(super) fn query_params(headers_uri: &axum::http::Uri) -> Result<Params, Response> {
    Params::parse(headers_uri.query().unwrap_or("").as_bytes()).map_err(|e| oauth_page(&e))
}

async fn run_authorize(svc: AppState, headers: &HeaderMap, params: Params) -> Response {
    let cookie = cookies::read(headers, svc.config.secure_cookies());
    let session = match svc.find_session(cookie.as_deref()).await {
        Ok(s) => s,
        Err(e) => return service_page(&e),
    };
    match svc.authorize(&params, session.as_ref()).await {
        // A session /authorize starts is anonymous.
        Ok((outcome, new_cookie)) => with_cookie(outcome_response(outcome), &svc, new_cookie.as_deref(), ANONYMOUS_SESSION_SECS),
        Err(e) => service_page(&e),
    }
}

/// GET /authorize — RFC 6749 §4.1.1.
pub async fn authorize(State(svc): State<AppState>, req: Request) -> Response {
    let params = match query_params(req.uri()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    run_authorize(svc, req.headers(), params).await
}

/// POST /authorize — the same request as a form body (RFC 6749 §3.1 "MAY support POST").
pub async fn authorize_post(State(svc): State<AppState>, req: Request) -> Response {
    match read_form(req).await {
        Ok((headers, params)) => run_authorize(svc, &headers, params).await,
        Err(e) => oauth_page(&e),
    }
}

/// The client's throttling bucket (issue 13, finding 6): the TCP peer's address or, when the
/// peer is one of `--trusted-proxies`, the right-most address of `X-Forwarded-For` (or, without
/// one, of RFC 7239 `Forwarded`) that is not itself a trusted proxy; IPv6 by /64
/// ([`tessera_server::net::bucket`]). A header that cannot be read leaves the peer.
pub(super) fn client_address(svc: &AppState, req: &Request) -> String {
    let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) else { return "unknown".into() };
    let trusted = &svc.config.trusted_proxies;
    if trusted.is_empty() {
        return tessera_server::net::bucket(peer);
    }
    // Repeated fields are one comma-separated list (RFC 9110 §5.3).
    let chain = |name: header::HeaderName, parse: fn(&str) -> Vec<Option<std::net::IpAddr>>| -> Option<Vec<Option<std::net::IpAddr>>> {
        let mut hops = Vec::new();
        let mut any = false;
        for v in req.headers().get_all(name) {
            any = true;
            match v.to_str() {
                Ok(s) => hops.extend(parse(s)),
                Err(_) => hops.push(None),
            }
        }
        any.then_some(hops)
    };
    let hops = chain(header::HeaderName::from_static("x-forwarded-for"), tessera_server::net::x_forwarded_for)
        .or_else(|| chain(header::FORWARDED, tessera_server::net::forwarded_for))
        .unwrap_or_default();
    tessera_server::net::bucket(tessera_server::net::client_ip(peer, &hops, trusted))
}

/// "N seconds" or, from a minute on, "N minutes" (rounded up), for "Try again in …".
pub(super) fn wait_text(secs: i64) -> String {
    match secs {
        ..=1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        _ => match (secs + 59) / 60 {
            1 => "1 minute".into(),
            m => format!("{m} minutes"),
        },
    }
}

/// A 429 or 503 answer's `Retry-After` (RFC 9110 §10.2.3), whole seconds.
pub(super) fn retry_after(mut res: Response, secs: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// The session named by the cookie and the pending request it owns.
async fn session_and_pending(svc: &AppState, headers: &HeaderMap, params: &Params) -> Result<(SessionRecord, PendingAuthorization), Response> {
    let cookie = cookies::read(headers, svc.config.secure_cookies());
    let session = match svc.find_session(cookie.as_deref()).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(expired()),
        Err(e) => return Err(service_page(&e)),
    };
    let Some(id) = params.get("request") else { return Err(expired()) };
    match svc.find_pending(id, &session).await {
        Ok(Some(p)) => Ok((session, p)),
        Ok(None) => Err(expired()),
        Err(e) => Err(service_page(&e)),
    }
}

pub(super) fn csrf_ok(session: &SessionRecord, params: &Params) -> bool {
    params.get("csrf").is_some_and(|t| secret::matches_plain(t, &session.csrf_token))
}

pub(super) fn csrf_failed() -> Response {
    page(StatusCode::FORBIDDEN, "The form has expired", "Reload the page and try again.", Some("invalid_request"))
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
    let html = render(&LoginPage { client_name: &name, csrf: &session.csrf_token, request_id: &p.id, username, error });
    let mut res = (status, html).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// GET /login?request=ID
pub async fn login_page(State(svc): State<AppState>, req: Request) -> Response {
    let params = match query_params(req.uri()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (session, pending) = match session_and_pending(&svc, req.headers(), &params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if session.user_id.is_some() && !pending.force_login {
        return outcome_response(AuthorizeOutcome::Consent(pending.id));
    }
    // OIDC Core §3.1.2.1 login_hint: prefill the username.
    let hint: String = pending.oidc.as_ref().and_then(|o| o.login_hint.as_deref()).unwrap_or("").chars().take(64).collect();
    login_form(&svc, StatusCode::OK, &session, &pending, &hint, None).await
}

/// POST /login — check the password (Argon2id, throttled), then start a fresh session.
pub async fn login_submit(State(svc): State<AppState>, req: Request) -> Response {
    let address = client_address(&svc, &req);
    let (headers, params) = match read_form(req).await {
        Ok(x) => x,
        Err(e) => return oauth_page(&e),
    };
    let (session, pending) = match session_and_pending(&svc, &headers, &params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&session, &params) {
        return csrf_failed();
    }
    let username = params.get("username").unwrap_or("");
    let password = params.get("password").unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return login_form(&svc, StatusCode::BAD_REQUEST, &session, &pending, username, Some("Enter your username and password.")).await;
    }
    let user = match svc.sign_in(username, password, &address).await {
        Ok(Ok(u)) => u,
        Ok(Err(SignInError::InvalidCredentials { retry_after })) => {
            let message = match retry_after {
                0 => "Incorrect username or password.".to_string(),
                secs => format!("Incorrect username or password. Try again in {}.", wait_text(secs)),
            };
            return login_form(&svc, StatusCode::UNAUTHORIZED, &session, &pending, username, Some(&message)).await;
        }
        // RFC 6749 §10.10: refused without checking the password, until the window ends.
        Ok(Err(SignInError::Throttled { retry_after: secs })) => {
            let message = format!("Too many failed sign-in attempts. Try again in {}.", wait_text(secs));
            return retry_after(login_form(&svc, StatusCode::TOO_MANY_REQUESTS, &session, &pending, username, Some(&message)).await, secs);
        }
        Ok(Err(SignInError::Busy)) => {
            let message = "The server is busy. Try again in a moment.";
            return retry_after(login_form(&svc, StatusCode::SERVICE_UNAVAILABLE, &session, &pending, username, Some(message)).await, 1);
        }
        Err(e) => return service_page(&e),
    };
    // A new session id at sign-in, so a planted cookie cannot ride the user's login; the
    // pending request moves to it in the same transaction.
    let pending = PendingAuthorization { force_login: false, signed_in_here: true, ..pending };
    let fresh: Session = match svc.signed_in_session(&user, &session, &pending).await {
        Ok(s) => s,
        Err(e) => return service_page(&e),
    };
    with_cookie(outcome_response(AuthorizeOutcome::Consent(pending.id.clone())), &svc, fresh.new_cookie.as_deref(), fresh.max_age())
}

/// GET /consent?request=ID — the page, or straight back to the client when nothing new is asked.
pub async fn consent_page(State(svc): State<AppState>, req: Request) -> Response {
    let params = match query_params(req.uri()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (session, pending) = match session_and_pending(&svc, req.headers(), &params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match svc.consent_step(&pending, &session).await {
        Ok(Ok(view)) => {
            let html = render(&ConsentPage {
                client_name: &view.client_name,
                username: &view.username,
                csrf: &session.csrf_token,
                request_id: &view.request_id,
                new_scopes: &view.new_scopes,
                granted: &view.granted,
                device_user_code: view.device_user_code.as_deref(),
            });
            let mut res = html.into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Ok(Err(outcome)) => outcome_response(outcome),
        Err(e) => service_page(&e),
    }
}

/// POST /consent — Allow or Deny.
pub async fn consent_submit(State(svc): State<AppState>, req: Request) -> Response {
    let (headers, params) = match read_form(req).await {
        Ok(x) => x,
        Err(e) => return oauth_page(&e),
    };
    let (session, pending) = match session_and_pending(&svc, &headers, &params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&session, &params) {
        return csrf_failed();
    }
    let decision = match params.get("decision") {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => return page(StatusCode::BAD_REQUEST, "Choose Allow or Deny", "The form did not say whether you allow the request.", Some("invalid_request")),
    };
    match svc.decide(&pending, &session, decision).await {
        Ok(outcome) => outcome_response(outcome),
        Err(e) => service_page(&e),
    }
}
