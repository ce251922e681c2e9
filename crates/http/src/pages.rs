//! HTML pages (askama, compiled and auto-escaped). No JavaScript: every page works without it.

use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// Render a template; a rendering failure becomes a plain message, never a panic.
pub fn render<T: Template>(t: &T) -> Html<String> {
    match t.render() {
        Ok(s) => Html(s),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            Html("<!doctype html><title>Error</title><p>Internal error.</p>".to_string())
        }
    }
}

#[derive(Template, serde::Serialize)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub code: Option<&'a str>,
}

#[derive(Template, serde::Serialize)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub client_name: &'a str,
    pub csrf: &'a str,
    pub request_id: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// This server offers passkeys (its issuer's host is a domain name).
    pub passkeys: bool,
    pub passkey_request: Option<&'a str>,
    pub passkey_next: Option<&'a str>,
    pub links: SigninLinks,
}

/// The links under a sign-in form: "Forgot your password?" when the server sends mail,
/// "Create an account" when self-registration is on.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SigninLinks {
    pub forgot: bool,
    pub register: bool,
}

impl SigninLinks {
    pub fn of(svc: &tessera_server::Tessera) -> Self {
        Self { forgot: svc.mail_enabled(), register: svc.config.self_registration && svc.mail_enabled() }
    }
}

#[derive(Template, serde::Serialize)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client_name: &'a str,
    pub username: &'a str,
    pub csrf: &'a str,
    pub request_id: &'a str,
    pub new_scopes: &'a [(String, String)],
    pub granted: &'a [String],
    pub device_user_code: Option<&'a str>,
}

/// OAuth 2.0 Form Post Response Mode §2: an auto-submitting form (a button without JavaScript).
#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub action: &'a str,
    pub fields: &'a [(String, String)],
    pub nonce: &'a str,
}

#[derive(Template, serde::Serialize)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub csrf: &'a str,
    pub user_code: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template, serde::Serialize)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub csrf: &'a str,
    pub client_id: &'a str,
    pub id_token_hint: &'a str,
    pub post_logout_redirect_uri: &'a str,
    pub state: &'a str,
}

#[derive(Template, serde::Serialize)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    issuer: &'a str,
}

pub async fn home(State(svc): State<AppState>) -> Response {
    render(&HomePage { issuer: &svc.config.issuer }).into_response()
}

/// The one script Tessera serves: the WebAuthn ceremonies of the passkey buttons.
pub async fn passkeys_script() -> Response {
    let mut res = include_str!("../static/passkeys.js").into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

/// The branding's stylesheet, after the built-in one: the accent colour and the operator's CSS.
pub async fn brand_stylesheet(axum::extract::State(svc): axum::extract::State<crate::AppState>) -> Response {
    let b = svc.branding();
    let mut css = String::new();
    if let Some(a) = &b.accent {
        css.push_str(&format!(":root {{ --accent: {a}; }}\n"));
    }
    if b.logo_url.is_some() {
        css.push_str(".logo { display: block; max-height: 3rem; max-width: 60%; margin: 0 0 1rem; }\n");
    }
    if let Some(extra) = &b.css {
        css.push_str(extra);
    }
    let mut res = css.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

pub async fn stylesheet() -> Response {
    let mut res = include_str!("../static/tessera.css").into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

impl crate::overrides::Overridable for ErrorPage<'_> {
    const FILE: &'static str = "error.html";
}

impl crate::overrides::Overridable for LoginPage<'_> {
    const FILE: &'static str = "login.html";
}

impl crate::overrides::Overridable for ConsentPage<'_> {
    const FILE: &'static str = "consent.html";
}

impl crate::overrides::Overridable for DevicePage<'_> {
    const FILE: &'static str = "device.html";
}

impl crate::overrides::Overridable for LogoutPage<'_> {
    const FILE: &'static str = "logout.html";
}

impl crate::overrides::Overridable for MessagePage<'_> {
    const FILE: &'static str = "message.html";
}
