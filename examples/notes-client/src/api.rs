//! Calls to the Notes API on behalf of a session: the access token is refreshed when it is
//! about to expire (by `expires_in` and the app's clock) and, once, when the API answers 401
//! `invalid_token` (RFC 6750 §3.1) — then the call is retried. Refusals become sentences a
//! person can read.

use crate::oauth::{self, TokenError};
use crate::session::{Session, Tokens};
use crate::{NotesClient, PERMISSIONS};
use reqwest::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// A note as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Note {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    NotConnected,
    /// The grant is gone (refresh refused): the user must connect again.
    ConnectionEnded,
    /// RFC 6750 §3.1 `insufficient_scope`: the scope the API needed.
    Forbidden {
        scope: String,
    },
    NotFound,
    /// The API refused the request itself (400); its description.
    Rejected(String),
    Unavailable(String),
}

impl ApiError {
    /// What the user reads.
    pub fn message(&self) -> String {
        match self {
            Self::NotConnected => "Connect your Notes account first.".into(),
            Self::ConnectionEnded => "Your Notes connection has ended (it expired or was revoked). Connect again to continue.".into(),
            Self::Forbidden { scope } => {
                let verb = PERMISSIONS.iter().find(|p| p.0 == scope).map(|p| p.2).unwrap_or("do that with");
                format!("This app was not given permission to {verb} your notes. To allow it, disconnect and connect again with that permission ({scope}).")
            }
            Self::NotFound => "That note does not exist any more.".into(),
            Self::Rejected(d) => format!("The Notes API did not accept that: {d}"),
            Self::Unavailable(_) => "The Notes API cannot be reached right now. Try again in a moment.".into(),
        }
    }
}

/// An attribute of a `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3).
pub fn challenge_param(value: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = value.find(&key)? + key.len();
    let end = value[start..].find('"')? + start;
    Some(value[start..end].to_string())
}

enum Why {
    Proactive,
    Reactive,
}

/// Refresh the session's tokens and store the rotated refresh token. Token lock held.
async fn refresh(app: &NotesClient, session: &Session, current: &Tokens, why: Why) -> Result<Tokens, ApiError> {
    let counter = match why {
        Why::Proactive => &app.stats.proactive_refreshes,
        Why::Reactive => &app.stats.reactive_refreshes,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    match oauth::refresh(app, current).await {
        Ok(t) => {
            session.data().tokens = Some(t.clone());
            Ok(t)
        }
        Err(TokenError::Rejected(code)) => {
            tracing::info!(%code, "notes-client: refresh refused; the connection has ended");
            session.data().tokens = None;
            Err(ApiError::ConnectionEnded)
        }
        Err(TokenError::Unavailable(e)) => Err(ApiError::Unavailable(e)),
    }
}

async fn send(app: &NotesClient, token: &str, method: &Method, path: &str, body: Option<&serde_json::Value>) -> Result<reqwest::Response, ApiError> {
    app.stats.api_calls.fetch_add(1, Ordering::Relaxed);
    let mut req = app.http.request(method.clone(), format!("{}{path}", app.config.api_base)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.map_err(|e| ApiError::Unavailable(e.to_string()))
}

fn is_invalid_token(res: &reqwest::Response) -> bool {
    res.status() == StatusCode::UNAUTHORIZED
        && res
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| challenge_param(v, "error"))
            .is_some_and(|e| e == "invalid_token")
}

/// One API call for `session`, refreshing as needed. Returns the JSON body (`Null` if none).
pub async fn call(app: &NotesClient, session: &Session, method: Method, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value, ApiError> {
    let _one_at_a_time = session.token_lock.lock().await;
    let mut tokens = session.tokens().ok_or(ApiError::NotConnected)?;
    if tokens.expires_at - app.config.refresh_skew_secs <= app.now() {
        tokens = refresh(app, session, &tokens, Why::Proactive).await?;
    }
    let mut res = send(app, &tokens.access_token, &method, path, body.as_ref()).await?;
    if is_invalid_token(&res) {
        // The API does not accept the token (expired by its clock, keys rotated, revoked):
        // refresh once and retry.
        tokens = refresh(app, session, &tokens, Why::Reactive).await?;
        res = send(app, &tokens.access_token, &method, path, body.as_ref()).await?;
    }
    let status = res.status();
    let www = res.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = res.bytes().await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let json: serde_json::Value = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null) };
    match status {
        s if s.is_success() => Ok(json),
        StatusCode::FORBIDDEN => {
            let scope = www.as_deref().and_then(|w| challenge_param(w, "scope")).or_else(|| json["scope"].as_str().map(str::to_string)).unwrap_or_default();
            Err(ApiError::Forbidden { scope })
        }
        StatusCode::NOT_FOUND => Err(ApiError::NotFound),
        StatusCode::UNAUTHORIZED => Err(ApiError::ConnectionEnded),
        StatusCode::BAD_REQUEST => Err(ApiError::Rejected(json["error_description"].as_str().unwrap_or("bad request").to_string())),
        s => Err(ApiError::Unavailable(format!("status {s}"))),
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Unavailable(format!("unexpected answer: {e}")))
}

pub async fn list_notes(app: &NotesClient, s: &Session) -> Result<Vec<Note>, ApiError> {
    #[derive(Deserialize)]
    struct List {
        notes: Vec<Note>,
    }
    parse::<List>(call(app, s, Method::GET, "/notes", None).await?).map(|l| l.notes)
}

pub async fn get_note(app: &NotesClient, s: &Session, id: i64) -> Result<Note, ApiError> {
    parse(call(app, s, Method::GET, &format!("/notes/{id}"), None).await?)
}

pub async fn create_note(app: &NotesClient, s: &Session, title: &str, body: &str) -> Result<Note, ApiError> {
    parse(call(app, s, Method::POST, "/notes", Some(serde_json::json!({"title": title, "body": body}))).await?)
}

pub async fn update_note(app: &NotesClient, s: &Session, id: i64, title: &str, body: &str) -> Result<Note, ApiError> {
    parse(call(app, s, Method::PUT, &format!("/notes/{id}"), Some(serde_json::json!({"title": title, "body": body}))).await?)
}

pub async fn delete_note(app: &NotesClient, s: &Session, id: i64) -> Result<(), ApiError> {
    call(app, s, Method::DELETE, &format!("/notes/{id}"), None).await.map(|_| ())
}
