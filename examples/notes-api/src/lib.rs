//! Notes API: the example resource server of Tessera's demo (the "Gmail" of the seed's story).
//!
//! Each user's notes, as JSON over HTTP. Authorization is entirely tessera-guard's: the token's
//! `sub` owns the notes, and each route names its scope (RFC 6750 §3.1 `insufficient_scope`
//! otherwise):
//!
//! | route | scope |
//! |---|---|
//! | `GET /notes`, `GET /notes/{id}` | `notes.read` |
//! | `POST /notes`, `PUT /notes/{id}` | `notes.write` |
//! | `DELETE /notes/{id}` | `notes.delete` |
//!
//! Layout: [`db`] (SQLite through sqlx; SQL lives only there), [`router`] (routes and
//! handlers), [`serve`] (listen).
#![forbid(unsafe_code)]

pub mod db;

use axum::extract::{Path, State, rejection::JsonRejection};
use axum::handler::Handler;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
pub use db::{Db, Note};
use serde::Deserialize;
use serde_json::json;
use tessera_guard::{Guard, Principal, RequireScope};

/// The scopes this API defines, with the descriptions the consent page shows.
pub const SCOPES: [(&str, &str); 3] = [("notes.read", "Read your notes"), ("notes.write", "Create and edit your notes"), ("notes.delete", "Delete your notes")];

/// Longest title and body accepted, in characters.
pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 10_000;

/// An API error as JSON `{error, error_description}`; details stay in the log.
#[derive(Debug)]
pub enum ApiError {
    NotFound,
    Invalid(String),
    Internal(db::DbError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, desc) = match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", "no such note".to_string()),
            Self::Invalid(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            Self::Internal(e) => {
                tracing::error!(error = %e, "notes-api: storage failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error".to_string())
            }
        };
        (status, Json(json!({"error": code, "error_description": desc}))).into_response()
    }
}

impl From<db::DbError> for ApiError {
    fn from(e: db::DbError) -> Self {
        Self::Internal(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self::Invalid(e.body_text())
    }
}

/// What `POST /notes` and `PUT /notes/{id}` take.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub title: String,
    #[serde(default)]
    pub body: String,
}

impl NoteInput {
    fn check(self) -> Result<(String, String), ApiError> {
        let title = self.title.trim().to_string();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(ApiError::Invalid(format!("title must be 1 to {MAX_TITLE} characters")));
        }
        if self.body.chars().count() > MAX_BODY {
            return Err(ApiError::Invalid(format!("body must be at most {MAX_BODY} characters")));
        }
        Ok((title, self.body))
    }
}

async fn list(State(db): State<Db>, p: Principal) -> Result<Response, ApiError> {
    let notes = db.list(&p.subject).await?;
    Ok(Json(json!({ "notes": notes })).into_response())
}

async fn read(State(db): State<Db>, p: Principal, Path(id): Path<i64>) -> Result<Json<Note>, ApiError> {
    db.find(&p.subject, id).await?.map(Json).ok_or(ApiError::NotFound)
}

async fn create(State(db): State<Db>, p: Principal, input: Result<Json<NoteInput>, JsonRejection>) -> Result<Response, ApiError> {
    let (title, body) = input?.0.check()?;
    let note = db.create(&p.subject, &title, &body, now()).await?;
    let mut res = (StatusCode::CREATED, Json(&note)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/notes/{}", note.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

async fn update(State(db): State<Db>, p: Principal, Path(id): Path<i64>, input: Result<Json<NoteInput>, JsonRejection>) -> Result<Json<Note>, ApiError> {
    let (title, body) = input?.0.check()?;
    db.update(&p.subject, id, &title, &body, now()).await?.map(Json).ok_or(ApiError::NotFound)
}

async fn delete(State(db): State<Db>, p: Principal, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    if db.delete(&p.subject, id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::NotFound) }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The API's routes: every `/notes` route behind `guard`, each with its scope.
pub fn router(guard: Guard, db: Db) -> Router {
    let notes = Router::new()
        .route("/notes", get(list.layer(RequireScope("notes.read"))).post(create.layer(RequireScope("notes.write"))))
        .route(
            "/notes/{id}",
            get(read.layer(RequireScope("notes.read"))).put(update.layer(RequireScope("notes.write"))).delete(delete.layer(RequireScope("notes.delete"))),
        )
        .layer(guard.layer());
    let audience = guard.config().audience.clone();
    let issuer = guard.config().issuer.clone();
    Router::new()
        .route(
            "/",
            get(move || async move {
                Json(json!({"name": "Notes API", "resource": audience, "authorization_servers": [issuer], "scopes_supported": SCOPES.map(|s| s.0)}))
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .merge(notes)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, std::time::Duration::from_secs(30)))
        .with_state(db)
}

/// [`router`] answering CORS (Fetch standard) for browser apps on `origins` (a single-page app
/// calling the API directly): `GET`, `POST`, `PUT`, `DELETE` with `Authorization`,
/// `Content-Type` and `DPoP`, exposing `WWW-Authenticate` and `DPoP-Nonce` (so the app can read
/// a refusal); never credentials, never another origin.
pub fn router_for_browsers(guard: Guard, db: Db, origins: &[String]) -> Router {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST, axum::http::Method::PUT, axum::http::Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, axum::http::HeaderName::from_static("dpop")])
        .expose_headers([header::WWW_AUTHENTICATE, axum::http::HeaderName::from_static("dpop-nonce")])
        .max_age(std::time::Duration::from_secs(600));
    router(guard, db).layer(cors)
}

/// Serve [`router_for_browsers`] on `listener` until `shutdown` completes.
pub async fn serve_for_browsers(
    listener: tokio::net::TcpListener,
    guard: Guard,
    db: Db,
    origins: Vec<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router_for_browsers(guard, db, &origins)).with_graceful_shutdown(shutdown).await
}

/// Serve the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    guard: Guard,
    db: Db,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(guard, db)).with_graceful_shutdown(shutdown).await
}
