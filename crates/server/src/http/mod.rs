//! The HTTP layer: routes, thin handlers, pages, cookies and the one error mapping.
//!
//! Every response gets anti-framing and no-sniff headers (the header layers in [`router`]); every HTML form
//! carries a CSRF token bound to the browser session; bodies and queries are size-bounded.
//! Only this module knows HTTP types.

mod authorize;
mod cookies;
mod device;
pub mod error;
mod introspect;
mod oidc;
mod pages;
mod token;
mod wellknown;

use crate::service::Tessera;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use std::sync::Arc;

pub type AppState = Arc<Tessera>;

/// Largest request body read by any handler.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest a request may take, body included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The authorization server's routes.
pub fn router(svc: Arc<Tessera>) -> Router {
    let routes = Router::new()
        .route("/", get(pages::home))
        .route("/authorize", get(authorize::authorize).post(authorize::authorize_post).fallback(error::method_not_allowed_page))
        .route("/login", get(authorize::login_page).post(authorize::login_submit).fallback(error::method_not_allowed_page))
        .route("/consent", get(authorize::consent_page).post(authorize::consent_submit).fallback(error::method_not_allowed_page))
        .route("/token", post(token::token).fallback(error::method_not_allowed_json))
        .route("/introspect", post(introspect::introspect).fallback(error::method_not_allowed_json))
        .route("/revoke", post(introspect::revoke).fallback(error::method_not_allowed_json))
        .route("/device_authorization", post(device::device_authorization).fallback(error::method_not_allowed_json))
        .route("/device", get(device::device_page_get).post(device::device_page_post).fallback(error::method_not_allowed_page))
        .route("/.well-known/oauth-authorization-server", get(wellknown::metadata))
        .route("/.well-known/openid-configuration", get(wellknown::metadata))
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo).fallback(error::method_not_allowed_page))
        .route("/logout", get(oidc::logout).post(oidc::logout).fallback(error::method_not_allowed_page))
        .route("/jwks.json", get(wellknown::jwks))
        .route("/static/tessera.css", get(pages::stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(error::not_found)
        .with_state(svc);
    // Anti-framing (RFC 7034 `X-Frame-Options`, CSP `frame-ancestors`), no MIME sniffing,
    // no referrer (codes in URLs must not leak to third parties). A handler may set a
    // stricter or page-specific CSP (the form-post page's script nonce). A request (including
    // a slowly sent body) gets at most REQUEST_TIMEOUT; never a hang. A panic is a 500 page.
    //
    // The layers wrap the router once, outermost first. (`Router::layer` would wrap every
    // route's service instead, and each request would clone the matched route's whole stack of
    // boxed services: 21 boxed clones per request, 14 % of an introspection's instructions.)
    let layers = tower::ServiceBuilder::new()
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
    Router::new().fallback_service(layers.service(routes))
}

/// The Content-Security-Policy of every response that sets none of its own.
const DEFAULT_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";
