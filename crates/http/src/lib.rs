//! Tessera's HTTP layer: routes, thin handlers, extractors, pages, cookies, the one error
//! mapping, and the accept loop ([`serve`]).
//!
//! Every response, error responses included, gets anti-framing and no-sniff headers (and HSTS
//! with an https issuer: the header layers in [`router`], outermost); every HTML form
//! carries a CSRF token bound to the browser session; bodies and queries are size-bounded.
//! Only this crate knows HTTP types: `tessera-server`'s services take and return plain values
//! (it does not depend on axum, tower or hyper).
#![forbid(unsafe_code)]

pub mod account;
pub mod admin_api;
mod authorize;
mod console;
mod cookies;
mod cors;
mod device;
mod email;
pub mod error;
pub mod extract;
pub mod i18n;
mod introspect;
mod mfa;
pub mod observe;
mod oidc;
pub mod overrides;
mod pages;
mod passkey;
pub mod response;
pub mod serve;
mod token;
pub mod user_agent;
mod wellknown;

pub use serve::{ServeLimits, serve};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use response::NoStore;
use std::sync::Arc;
use tessera_protocol::metadata::paths;
use tessera_server::service::Tessera;
use tower_http::set_header::SetResponseHeaderLayer;

pub type AppState = Arc<Tessera>;

/// Liveness for orchestrators: 200 while the process serves HTTP (`/healthz` is the same, kept).
pub const HEALTH_LIVE: &str = "/health/live";
/// Readiness: 200 when the store answers, 503 with `Retry-After` while it does not.
pub const HEALTH_READY: &str = "/health/ready";

/// Largest request body read by any handler.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest a request may take, body included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Prometheus metrics (`GET`), on the main listener unless `--metrics-listen` gives them one of
/// their own ([`metrics_router`]).
pub const METRICS: &str = "/metrics";

/// The authorization server's routes, requests bounded by [`REQUEST_TIMEOUT`], `/metrics`
/// among them.
pub fn router(svc: Arc<Tessera>) -> Router {
    router_with(svc, REQUEST_TIMEOUT, true)
}

/// [`router`] with another bound on each request (tests shorten it).
pub fn router_with_timeout(svc: Arc<Tessera>, request_timeout: std::time::Duration) -> Router {
    router_with(svc, request_timeout, true)
}

/// `/metrics` alone (and the health checks), for a listener of its own (`--metrics-listen`).
pub fn metrics_router(svc: Arc<Tessera>) -> Router {
    Router::new()
        .route(METRICS, get(observe::metrics))
        .route(HEALTH_LIVE, get(|| async { NoStore("live") }))
        .route(HEALTH_READY, get(wellknown::ready))
        .fallback(error::not_found)
        .with_state(svc)
}

/// [`router`], with `/metrics` served here or not (`with_metrics`).
pub fn router_with(svc: Arc<Tessera>, request_timeout: std::time::Duration, with_metrics: bool) -> Router {
    let https_issuer = svc.config.issuer.starts_with("https://");
    let routes = Router::new()
        .route("/", get(pages::home))
        .route(paths::AUTHORIZE, get(authorize::authorize).post(authorize::authorize_post).fallback(error::method_not_allowed_page))
        .route(paths::LOGIN, get(authorize::login_page).post(authorize::login_submit).fallback(error::method_not_allowed_page))
        .route(paths::CONSENT, get(authorize::consent_page).post(authorize::consent_submit).fallback(error::method_not_allowed_page))
        .route(paths::TOKEN, post(token::token).options(cors::preflight_post).fallback(error::method_not_allowed_json))
        .route(paths::INTROSPECT, post(introspect::introspect).fallback(error::method_not_allowed_json))
        .route(paths::REVOKE, post(introspect::revoke).options(cors::preflight_post).fallback(error::method_not_allowed_json))
        .route(paths::DEVICE_AUTHORIZATION, post(device::device_authorization).fallback(error::method_not_allowed_json))
        .route(paths::DEVICE, get(device::device_page_get).post(device::device_page_post).fallback(error::method_not_allowed_page))
        .route(paths::OAUTH_AUTHORIZATION_SERVER, get(wellknown::metadata))
        .route(paths::OPENID_CONFIGURATION, get(wellknown::metadata))
        .route(paths::USERINFO, get(oidc::userinfo).post(oidc::userinfo).options(cors::preflight_userinfo).fallback(error::method_not_allowed_page))
        .route(paths::LOGOUT, get(oidc::logout_get).post(oidc::logout_post).fallback(error::method_not_allowed_page))
        .route(paths::JWKS, get(wellknown::jwks))
        .route("/static/tessera.css", get(pages::stylesheet))
        .route("/static/passkeys.js", get(pages::passkeys_script))
        .route("/static/brand.css", get(pages::brand_stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .route(HEALTH_LIVE, get(|| async { NoStore("live") }))
        .route(HEALTH_READY, get(wellknown::ready))
        .nest(admin_api::BASE, admin_api::routes())
        .merge(console::routes())
        .merge(account::routes())
        .merge(mfa::routes())
        .merge(passkey::routes())
        .merge(email::routes());
    let routes = if with_metrics { routes.route(METRICS, get(observe::metrics)) } else { routes };
    let routes = routes.fallback(error::not_found).with_state(svc.clone());
    with_layers(routes, request_timeout, https_issuer, Some(svc))
}

/// Wraps `routes` in the layers every response goes through, outermost first:
///
/// 0. [`observe::observe`] (when `observed`): the request id, the request's span and log line,
///    its latency in the metrics;
/// 1. the response headers: anti-framing (RFC 7034 `X-Frame-Options`, CSP `frame-ancestors`),
///    no MIME sniffing, no referrer (codes in URLs must not leak to third parties), and with an
///    https issuer `Strict-Transport-Security` (RFC 6797 §6.1; TLS is terminated in front of
///    Tessera, so an https issuer is what says the client's transport is secure; §7.2: never
///    over plain http). A handler may set a stricter or page-specific CSP (the form-post page's
///    script nonce). Outermost, so the 500 and 408 the next two layers make carry them too;
/// 2. catch-panic: a panic is a 500 (a last resort: request paths do not panic);
/// 3. the timeout: a request (including a slowly sent body) gets at most `request_timeout`,
///    then 408; never a hang.
///
/// The layers wrap the router once. (`Router::layer` would wrap every route's service instead,
/// and each request would clone the matched route's whole stack of boxed services: 21 boxed
/// clones per request, 14 % of an introspection's instructions.)
fn with_layers(routes: Router, request_timeout: std::time::Duration, hsts: bool, observed: Option<Arc<Tessera>>) -> Router {
    let csp = content_security_policy(observed.as_ref().and_then(|s| s.config.branding.logo_url.as_deref()));
    let pages = observed.clone().map(|svc| {
        let overrides = svc.config.branding.template_dir.as_deref().and_then(|dir| match overrides::load(dir) {
            Ok(o) => Some(Arc::new(o)),
            // The binary checks the folder before it serves ([`overrides::load`]).
            Err(e) => {
                tracing::error!(error = %e, "template overrides not loaded");
                None
            }
        });
        axum::middleware::from_fn_with_state(i18n::PageState { svc, overrides }, i18n::layer)
    });
    let layers = tower::ServiceBuilder::new()
        .option_layer(observed.map(observe::ObserveLayer))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, csp))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .option_layer(hsts.then(|| SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS))))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, request_timeout))
        // Innermost: each request's language and branding, for its pages (`i18n`).
        .option_layer(pages);
    Router::new().fallback_service(layers.service(routes))
}

/// RFC 6797 §6.1.1 `max-age`: one year (§11.2: a long-lived value protects between visits). No
/// `includeSubDomains`: the issuer's host does not speak for every host under it.
const HSTS: &str = "max-age=31536000";

/// [`DEFAULT_CSP`], with the origin of a branded logo on another host allowed as an image.
fn content_security_policy(logo: Option<&str>) -> HeaderValue {
    let origin = logo.and_then(|l| url::Url::parse(l).ok()).filter(|u| u.scheme() == "https").map(|u| u.origin().ascii_serialization());
    match origin {
        Some(o) => {
            HeaderValue::from_str(&DEFAULT_CSP.replace("img-src 'self'", &format!("img-src 'self' {o}"))).unwrap_or(HeaderValue::from_static(DEFAULT_CSP))
        }
        None => HeaderValue::from_static(DEFAULT_CSP),
    }
}

/// The Content-Security-Policy of every response that sets none of its own.
/// `script-src 'self'`: the one script Tessera serves (`static/passkeys.js`, WebAuthn needs it);
/// no inline script anywhere. `connect-src 'self'`: its calls back to this server.
const DEFAULT_CSP: &str =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    /// Finding 17 (issue 13): the catch-panic layer's 500 carries the anti-framing headers
    /// (RFC 7034 §2; CSP `frame-ancestors`), and HSTS with an https issuer (RFC 6797 §7.1).
    /// No request path panics, so the route here is the only way to make one; the layers are
    /// the ones [`router`] uses.
    #[tokio::test]
    async fn regression_panic_500_has_anti_framing_headers_rfc7034_2() {
        for hsts in [false, true] {
            let routes = Router::new().route("/boom", get(boom));
            let res = with_layers(routes, REQUEST_TIMEOUT, hsts, None)
                .oneshot(axum::http::Request::get("/boom").body(axum::body::Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            let h = res.headers();
            assert_eq!(h.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
            assert!(h.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap().contains("frame-ancestors 'none'"));
            assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
            assert_eq!(h.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
            assert_eq!(h.get(header::STRICT_TRANSPORT_SECURITY).map(|v| v.to_str().unwrap()), hsts.then_some(HSTS));
        }
    }
}
