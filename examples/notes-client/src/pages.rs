//! The app's pages and form handlers (askama templates, no JavaScript). Every POST checks the
//! session's CSRF token and answers with a redirect (post/redirect/get) and a one-time message.

use crate::api::{self, ApiError, Note};
use crate::oauth;
use crate::session::{Flash, PENDING_MAX_AGE, Session};
use crate::{NotesClient, PERMISSIONS};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

type App = State<Arc<NotesClient>>;

#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage {
    csrf: String,
    flash: Option<Flash>,
    permissions: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "notes.html")]
struct NotesPage {
    csrf: String,
    flash: Option<Flash>,
    notes: Vec<Note>,
    notes_error: Option<String>,
    granted: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "edit.html")]
struct EditPage {
    csrf: String,
    note: Note,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    title: String,
    text: String,
}

fn render(t: &impl Template, status: StatusCode, cookie: Option<String>) -> Response {
    match t.render() {
        Ok(html) => with_cookie((status, Html(html)).into_response(), cookie),
        Err(e) => {
            tracing::error!(error = %e, "notes-client: template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn with_cookie(mut res: Response, cookie: Option<String>) -> Response {
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

fn see_other(to: &str, cookie: Option<String>) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    with_cookie(res, cookie)
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(&MessagePage { title: title.into(), text: text.into() }, status, None)
}

fn secure(app: &NotesClient) -> bool {
    app.config.redirect_uri.starts_with("https://")
}

/// An `application/x-www-form-urlencoded` body, repeated names kept.
fn form(body: &Bytes) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        m.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    m
}

fn field<'a>(f: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    match f.get(name).map(Vec::as_slice) {
        Some([v]) => Some(v.as_str()),
        _ => None,
    }
}

/// The session of a form post whose CSRF token matches, or the redirect that says it did not.
fn posted(app: &NotesClient, headers: &HeaderMap, f: &HashMap<String, Vec<String>>) -> Result<Arc<Session>, Response> {
    let (s, cookie) = app.sessions.find_or_create(headers, secure(app));
    if cookie.is_some() || !s.check_csrf(field(f, "csrf")) {
        s.set_flash(true, "That form had expired, so nothing was done. Please try again.");
        return Err(see_other("/", cookie));
    }
    Ok(s)
}

fn scope_label(scope: &str) -> String {
    PERMISSIONS.iter().find(|p| p.0 == scope).map(|p| p.1.to_string()).unwrap_or_else(|| scope.to_string())
}

/// `GET /`: connect, or the user's notes.
pub async fn home(State(app): App, headers: HeaderMap) -> Response {
    let (s, cookie) = app.sessions.find_or_create(&headers, secure(&app));
    let flash = s.data().flash.take();
    let csrf = s.data().csrf.clone();
    let Some(tokens) = s.tokens() else {
        let permissions = PERMISSIONS.iter().map(|p| (p.0, p.1)).collect();
        return render(&ConnectPage { csrf, flash, permissions }, StatusCode::OK, cookie);
    };
    let (notes, notes_error) = match api::list_notes(&app, &s).await {
        Ok(n) => (n, None),
        Err(ApiError::ConnectionEnded) => {
            s.set_flash(true, ApiError::ConnectionEnded.message());
            return see_other("/", cookie);
        }
        Err(e) => (Vec::new(), Some(e.message())),
    };
    // The scope may have changed with a refresh: read it again.
    let scope = s.tokens().map(|t| t.scope).unwrap_or(tokens.scope);
    let granted_scopes: Vec<&str> = scope.split(' ').filter(|x| !x.is_empty()).collect();
    // In the app's own order (read, write, delete), then anything else the server granted.
    let known = PERMISSIONS.iter().map(|p| p.0).filter(|p| granted_scopes.contains(p));
    let other = granted_scopes.iter().copied().filter(|x| !PERMISSIONS.iter().any(|p| p.0 == *x));
    let granted = known.chain(other).map(|x| (x.to_string(), scope_label(x))).collect();
    render(&NotesPage { csrf, flash, notes, notes_error, granted }, StatusCode::OK, cookie)
}

/// `POST /connect`: start the authorization code flow for the chosen permissions.
pub async fn connect(State(app): App, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let s = match posted(&app, &headers, &f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let chosen: Vec<&str> = PERMISSIONS.iter().map(|p| p.0).filter(|p| f.get("scope").is_some_and(|v| v.iter().any(|x| x == p))).collect();
    if chosen.is_empty() {
        s.set_flash(true, "Choose at least one permission to ask for.");
        return see_other("/", None);
    }
    let pending = oauth::new_pending(&chosen.join(" "));
    let url = oauth::authorization_url(&app, &pending);
    s.data().pending = Some(pending);
    see_other(&url, None)
}

/// `GET /callback`: RFC 6749 §4.1.2 — check `state` (§10.12) and `iss` (RFC 9207 §2.4), then
/// redeem the code.
pub async fn callback(State(app): App, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(s) = app.sessions.find(&headers) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Connection failed",
            "This browser did not start a connection (no session). Go back to the app and press Connect again.",
        );
    };
    // Single use: whatever happens next, this pending request is spent.
    let Some(pending) = s.data().pending.take() else {
        return message(
            StatusCode::BAD_REQUEST,
            "Connection failed",
            "There is no connection in progress in this browser. Go back to the app and press Connect again.",
        );
    };
    let state_ok = q.get("state").is_some_and(|st| {
        use subtle::ConstantTimeEq;
        st.len() == pending.state.len() && bool::from(st.as_bytes().ct_eq(pending.state.as_bytes()))
    });
    if !state_ok {
        return message(
            StatusCode::BAD_REQUEST,
            "Connection failed",
            "This answer does not belong to the connection this browser started (state mismatch). Nothing was connected.",
        );
    }
    // RFC 9207 §2.4: "Clients MUST … compare the value of the iss parameter with the issuer
    // identifier"; when the server advertises the parameter, its absence is an error too.
    match q.get("iss") {
        Some(iss) if *iss == app.config.issuer => {}
        None if !app.endpoints.iss_parameter_supported => {}
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                "Connection failed",
                "This answer came from an unexpected authorization server (iss mismatch). Nothing was connected.",
            );
        }
    }
    if pending.created.elapsed() > PENDING_MAX_AGE {
        return message(StatusCode::BAD_REQUEST, "Connection failed", "The connection took too long. Go back to the app and press Connect again.");
    }
    if let Some(err) = q.get("error") {
        let text = if err == "access_denied" {
            "You did not allow Notes Client to reach your notes.".to_string()
        } else {
            format!("The authorization server refused the connection ({err}).")
        };
        s.set_flash(true, text);
        return see_other("/", None);
    }
    let Some(code) = q.get("code") else {
        return message(StatusCode::BAD_REQUEST, "Connection failed", "The answer carries no authorization code.");
    };
    match oauth::exchange_code(&app, code, &pending).await {
        Ok(tokens) => {
            s.data().tokens = Some(tokens);
            s.set_flash(false, "Your Notes account is connected.");
            see_other("/", app.sessions.rotate(&headers, secure(&app)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "notes-client: code exchange failed");
            message(
                StatusCode::BAD_GATEWAY,
                "Connection failed",
                "The authorization server did not accept the authorization code. Go back to the app and press Connect again.",
            )
        }
    }
}

/// `POST /disconnect`: forget the tokens.
pub async fn disconnect(State(app): App, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let s = match posted(&app, &headers, &f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    s.data().tokens = None;
    s.set_flash(false, "Disconnected. This app no longer holds any access to your notes.");
    see_other("/", None)
}

fn outcome(s: &Session, r: Result<String, ApiError>) -> Response {
    match r {
        Ok(done) => s.set_flash(false, done),
        Err(e) => s.set_flash(true, e.message()),
    }
    see_other("/", None)
}

/// `POST /notes`: create.
pub async fn create(State(app): App, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let s = match posted(&app, &headers, &f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (title, text) = (field(&f, "title").unwrap_or(""), field(&f, "body").unwrap_or(""));
    let r = api::create_note(&app, &s, title, text).await.map(|n| format!("Created “{}”.", n.title));
    outcome(&s, r)
}

/// `GET /notes/{id}/edit`: the edit form.
pub async fn edit_page(State(app): App, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    let Some(s) = app.sessions.find(&headers) else {
        return see_other("/", None);
    };
    match api::get_note(&app, &s, id).await {
        Ok(note) => {
            let csrf = s.data().csrf.clone();
            render(&EditPage { csrf, note }, StatusCode::OK, None)
        }
        Err(e) => outcome(&s, Err(e)),
    }
}

/// `POST /notes/{id}/edit`: save.
pub async fn edit(State(app): App, headers: HeaderMap, Path(id): Path<i64>, body: Bytes) -> Response {
    let f = form(&body);
    let s = match posted(&app, &headers, &f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (title, text) = (field(&f, "title").unwrap_or(""), field(&f, "body").unwrap_or(""));
    let r = api::update_note(&app, &s, id, title, text).await.map(|n| format!("Saved “{}”.", n.title));
    outcome(&s, r)
}

/// `POST /notes/{id}/delete`.
pub async fn delete(State(app): App, headers: HeaderMap, Path(id): Path<i64>, body: Bytes) -> Response {
    let f = form(&body);
    let s = match posted(&app, &headers, &f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let r = api::delete_note(&app, &s, id).await.map(|()| "Note deleted.".to_string());
    outcome(&s, r)
}

pub async fn stylesheet() -> Response {
    let mut res = ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../static/app.css")).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

pub async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found", "There is no such page in Notes Client.")
}
