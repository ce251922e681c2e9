//! Notes Client: the example third-party web app of Tessera's demo (the "Outlook" of the seed's
//! story). It asks a user to connect their Notes account, then shows, creates, edits and
//! deletes their notes through the Notes API — without ever seeing their password.
//!
//! - RFC 6749 §4.1 authorization code flow as a confidential client (`client_secret_basic`),
//!   with PKCE S256 (RFC 7636), `state` bound to the browser session, and the RFC 9207 `iss`
//!   response parameter checked.
//! - Tokens stay server-side in the app's session (the browser holds only a random session
//!   id); access tokens are refreshed before they expire and once more on a 401
//!   `invalid_token`, rotating refresh tokens as the server requires (RFC 9700 §4.14.2).
//! - Every form carries a CSRF token; every page is unframeable; no JavaScript.
//!
//! Layout: [`session`] (the in-memory session store), [`oauth`] (discovery, authorization
//! request, token requests), [`api`] (calls to the Notes API with refresh-and-retry),
//! [`pages`] (handlers and askama templates), and [`router`]/[`serve`] here.
#![forbid(unsafe_code)]

pub mod api;
pub mod oauth;
pub mod pages;
pub mod session;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Time, injected (Unix seconds).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

/// The permissions the app can ask for: (scope, what the checkbox says, the verb used in a
/// refusal message).
pub const PERMISSIONS: [(&str, &str, &str); 3] = [
    ("notes.read", "Read your notes", "read"),
    ("notes.write", "Create and edit your notes", "create or edit"),
    ("notes.delete", "Delete your notes", "delete"),
];

/// How the app reaches the authorization server and the API.
#[derive(Clone)]
pub struct ClientConfig {
    /// The authorization server's issuer identifier (RFC 8414 §2).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// This app's registered redirect URI, e.g. `http://127.0.0.1:8082/callback`.
    pub redirect_uri: String,
    /// The Notes API's base URL, e.g. `http://127.0.0.1:8081`.
    pub api_base: String,
    /// RFC 8707 resource indicator sent in the authorization request, if any.
    pub resource: Option<String>,
    /// Access tokens are refreshed this many seconds before they expire.
    pub refresh_skew_secs: i64,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(issuer: &str, client_id: &str, client_secret: &str, redirect_uri: &str, api_base: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            redirect_uri: redirect_uri.to_string(),
            api_base: api_base.trim_end_matches('/').to_string(),
            resource: None,
            refresh_skew_secs: 30,
            clock: Arc::new(SystemClock),
        }
    }
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    pub fn with_resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }
}

/// What the app did, for tests and curiosity.
#[derive(Debug, Default)]
pub struct Stats {
    pub code_exchanges: AtomicU64,
    /// Refreshes because the token was about to expire (by `expires_in` and the clock).
    pub proactive_refreshes: AtomicU64,
    /// Refreshes because the API answered 401 `invalid_token`.
    pub reactive_refreshes: AtomicU64,
    pub api_calls: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub code_exchanges: u64,
    pub proactive_refreshes: u64,
    pub reactive_refreshes: u64,
    pub api_calls: u64,
}

/// The app: configuration, discovered endpoints, sessions.
pub struct NotesClient {
    pub config: ClientConfig,
    pub endpoints: oauth::Endpoints,
    pub sessions: session::Sessions,
    pub(crate) http: reqwest::Client,
    pub(crate) stats: Stats,
}

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("authorization server discovery: {0}")]
    Discovery(String),
}

impl NotesClient {
    /// Discover the authorization server's endpoints (RFC 8414) and build the app.
    pub async fn new(config: ClientConfig) -> Result<Arc<Self>, StartError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).redirect(reqwest::redirect::Policy::none()).build()?;
        let endpoints = oauth::discover(&http, &config.issuer).await.map_err(StartError::Discovery)?;
        Ok(Arc::new(Self { config, endpoints, sessions: session::Sessions::default(), http, stats: Stats::default() }))
    }

    pub fn now(&self) -> i64 {
        self.config.clock.now()
    }

    pub fn stats(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            code_exchanges: g(&self.stats.code_exchanges),
            proactive_refreshes: g(&self.stats.proactive_refreshes),
            reactive_refreshes: g(&self.stats.reactive_refreshes),
            api_calls: g(&self.stats.api_calls),
        }
    }

    /// The CSP `form-action` must allow the authorization server: the connect form's POST is
    /// answered with a redirect there.
    fn csp(&self) -> String {
        let origin = url::Url::parse(&self.config.issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        format!("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'")
    }
}

/// The app's routes.
pub fn router(app: Arc<NotesClient>) -> Router {
    let csp = HeaderValue::from_str(&app.csp()).unwrap_or(HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    Router::new()
        .route("/", get(pages::home))
        .route("/connect", post(pages::connect))
        .route("/callback", get(pages::callback))
        .route("/disconnect", post(pages::disconnect))
        .route("/notes", post(pages::create))
        .route("/notes/{id}/edit", get(pages::edit_page).post(pages::edit))
        .route("/notes/{id}/delete", post(pages::delete))
        .route("/static/app.css", get(pages::stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(move |req, next: axum::middleware::Next| {
            let csp = csp.clone();
            async move {
                let mut res: Response = next.run(req).await;
                let h = res.headers_mut();
                h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                h.insert(header::CONTENT_SECURITY_POLICY, csp);
                h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
                if !h.contains_key(header::CACHE_CONTROL) {
                    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
                res
            }
        }))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .with_state(app)
}

/// Serve the app on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<NotesClient>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await
}
