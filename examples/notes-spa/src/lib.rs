//! Notes SPA: the browser app of the story. This crate only serves it: three static files
//! (`static/`, compiled in) and `/config.json`; everything else runs in the browser — a public
//! client (authorization code with PKCE S256, `state` and `iss` checked), a DPoP key pair made
//! with WebCrypto as non-extractable (kept in IndexedDB so it survives the redirect), tokens in
//! memory only, refresh before expiry, and the Notes API called directly with DPoP proofs.
//!
//! Every answer carries a strict Content Security Policy (scripts from this origin only, no
//! inline script, `connect-src` only the authorization server and the API), `X-Frame-Options:
//! DENY` and `Referrer-Policy: no-referrer`. No third-party script.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

const INDEX: &str = include_str!("static/index.html");
const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// What the app needs to know, served as `/config.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SpaConfig {
    /// The authorization server (its discovery document is read from the browser).
    pub issuer: String,
    /// The app's public client id at Tessera.
    pub client_id: String,
    /// Where the Notes API is served (the browser calls it directly).
    pub api: String,
    /// This app's redirect URI (its own `/callback`).
    pub redirect_uri: String,
    pub scope: String,
}

fn origin(url: &str) -> String {
    url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

fn answer(content_type: &'static str, body: String, csp: &HeaderValue) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The app's routes: the page (at `/` and `/callback`), its script and style, its configuration.
pub fn router(config: SpaConfig) -> Router {
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' {} {}; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        origin(&config.issuer),
        origin(&config.api)
    );
    let csp = HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    let json = serde_json::to_string(&config).unwrap_or_default();
    let (c1, c2, c3, c4) = (csp.clone(), csp.clone(), csp.clone(), csp);
    Router::new()
        .route("/app.js", get(move || async move { answer("text/javascript; charset=utf-8", APP_JS.into(), &c1) }))
        .route("/app.css", get(move || async move { answer("text/css; charset=utf-8", APP_CSS.into(), &c2) }))
        .route("/config.json", get(move || async move { answer("application/json", json, &c3) }))
        .fallback(get(move || async move { answer("text/html; charset=utf-8", INDEX.into(), &c4) }))
}

/// Serve the app on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SpaConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config)).with_graceful_shutdown(shutdown).await
}
