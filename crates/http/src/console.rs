//! The admin console at `/admin` (issue 16): server-rendered pages, no JavaScript, for what the
//! admin REST API covers — clients, users (their sessions and apps), APIs with scopes and roles,
//! groups, signing keys and the audit log.
//!
//! Who may use it: a signed-in user who is an administrator (`tessera user update --admin`),
//! checked on every request ([`Admin`]: an enabled, existing administrator of a live session).
//! Sign-in is Tessera's own (`/admin/signin`: the password check, its throttling and its audit
//! events are the authorization flow's), and the session is the browser's Tessera session (a
//! new id at sign-in). Every form carries the session's CSRF token ([`AdminForm`]); every page
//! gets the anti-framing headers of all responses and `Cache-Control: no-store`. Every change
//! goes through `admin::Acting` (the service layer the CLI and the API use) with the
//! administrator's user id as its actor, so the audit log records who made it.

use crate::error::service_page;
use crate::extract::{ClientAddress, check_csrf, read_form};
use crate::pages::render;
use crate::response::{NoStore, see_other};
use crate::{AppState, cookies};
use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use tessera_protocol::params::Params;
use tessera_server::service::admin::{self, Acting, AdminError, ClientChanges, NewClient, NewUser, RoleHolder};
use tessera_server::service::authn::ANONYMOUS_SESSION_SECS;
use tessera_storage::{SessionRecord, UserRecord};

/// The console's home.
pub const HOME: &str = "/admin";
const SIGNIN: &str = "/admin/signin";

/// The console's routes (full paths; the admin API is nested beside them at `/admin/v1`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/signin", get(|st, c| signin_page(st, c, Place::Account)).post(|st, a, d, f| signin_submit(st, a, d, f, Place::Account)))
        .route(HOME, get(home))
        .route(SIGNIN, get(|st, c| signin_page(st, c, Place::Console)).post(|st, a, d, f| signin_submit(st, a, d, f, Place::Console)))
        .route("/admin/signout", post(signout))
        .route("/admin/clients", get(clients).post(create_client))
        .route("/admin/clients/{id}", get(client).post(update_client))
        .route("/admin/clients/{id}/secret", post(rotate_secret))
        .route("/admin/clients/{id}/delete", get(confirm_delete_client).post(delete_client))
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{id}", get(user).post(update_user))
        .route("/admin/users/{id}/disable", post(disable_user))
        .route("/admin/users/{id}/enable", post(enable_user))
        .route("/admin/users/{id}/password", post(set_password))
        .route("/admin/users/{id}/sessions/end", post(end_sessions))
        .route("/admin/users/{id}/mfa", post(require_mfa))
        .route("/admin/users/{id}/mfa/reset", post(reset_mfa))
        .route("/admin/users/{id}/apps/{client}/remove", post(remove_app))
        .route("/admin/users/{id}/delete", get(confirm_delete_user).post(delete_user))
        .route("/admin/apis", get(apis).post(create_api))
        .route("/admin/apis/{identifier}", get(api))
        .route("/admin/apis/{identifier}/grant", post(grant_role))
        .route("/admin/apis/{identifier}/revoke", post(revoke_role))
        .route("/admin/apis/{identifier}/delete", get(confirm_delete_api).post(delete_api))
        .route("/admin/groups", get(groups).post(create_group))
        .route("/admin/groups/{name}", get(group))
        .route("/admin/groups/{name}/members", post(add_member))
        .route("/admin/groups/{name}/members/remove", post(remove_member))
        .route("/admin/groups/{name}/delete", get(confirm_delete_group).post(delete_group))
        .route("/admin/keys", get(keys).post(rotate_keys))
        .route("/admin/audit", get(audit))
}

// ---------------------------------------------------------------------------------------------
// Who is asking.

/// A request from a signed-in administrator: the session's user exists, is enabled and is an
/// administrator now (a revoked role or a disabled account takes effect on the next request).
pub struct Admin {
    pub user: UserRecord,
    pub session: SessionRecord,
}

impl Admin {
    fn acting<'a>(&'a self, svc: &'a AppState) -> Acting<'a> {
        Acting { store: &*svc.store, actor: &self.user.id, now: svc.now() }
    }

    fn nav(&self) -> Nav {
        Nav { username: self.user.username.clone(), csrf: self.session.csrf_token.clone() }
    }
}

/// The signed-in user of the request's session (existing and enabled), or the answer that sends
/// the browser to `place`'s sign-in page.
pub(crate) async fn signed_in(svc: &AppState, parts: &Parts, place: Place) -> Result<(UserRecord, SessionRecord), Response> {
    let cookie = cookies::read(&parts.headers, svc.config.secure_cookies());
    let session = match svc.find_session(cookie.as_deref()).await {
        Ok(s) => s,
        Err(e) => return Err(service_page(&e)),
    };
    let Some((session, user_id)) = session.and_then(|s| s.user_id.clone().map(|u| (s, u))) else { return Err(see_other(place.signin())) };
    match svc.active_user(&user_id).await {
        Ok(Some(user)) => Ok((user, session)),
        Ok(None) => Err(see_other(place.signin())),
        Err(e) => Err(service_page(&e)),
    }
}

async fn admin_of(svc: &AppState, parts: &Parts) -> Result<Admin, Response> {
    let (user, session) = signed_in(svc, parts, Place::Console).await?;
    if user.is_admin { Ok(Admin { user, session }) } else { Err(not_an_administrator(&user, &session)) }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &AppState) -> Result<Self, Response> {
        admin_of(svc, parts).await
    }
}

/// A form an administrator posted from a console page, its CSRF token checked.
pub struct AdminForm {
    pub admin: Admin,
    pub params: Params,
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(req: Request, svc: &AppState) -> Result<Self, Response> {
        let (parts, params) = read_form(req).await.map_err(|e| crate::error::oauth_page(&e))?;
        let admin = admin_of(svc, &parts).await?;
        check_csrf(&admin.session, &params)?;
        Ok(Self { admin, params })
    }
}

impl AdminForm {
    fn text(&self, name: &str) -> String {
        self.params.get(name).unwrap_or("").trim().to_string()
    }

    fn opt(&self, name: &str) -> Option<String> {
        Some(self.text(name)).filter(|s| !s.is_empty())
    }

    fn checked(&self, name: &str) -> bool {
        self.params.get(name).is_some()
    }

    /// A textarea's non-empty lines.
    fn lines(&self, name: &str) -> Vec<String> {
        self.params.get(name).unwrap_or("").lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Pages.

/// What every console page shows around its content: who is signed in, and the sign-out form.
pub struct Nav {
    pub username: String,
    pub csrf: String,
}

pub(crate) fn html(status: StatusCode, t: &impl Template) -> Response {
    NoStore((status, render(t))).into_response()
}

fn ok(t: &impl Template) -> Response {
    html(StatusCode::OK, t)
}

/// A refusal from the service layer, shown on a console page.
fn failed(nav: Nav, e: &AdminError) -> Response {
    let status = match e {
        AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::Conflict { .. } => StatusCode::CONFLICT,
        AdminError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        AdminError::Store(e) => {
            tracing::error!(error = %e, "storage failure");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let message = match e {
        AdminError::Store(_) => "The database is unavailable. Try again in a moment.".to_string(),
        other => other.to_string(),
    };
    html(status, &MessageView { nav, title: "That did not work".into(), message, back: HOME.into() })
}

fn store_failed(nav: Nav, e: impl Into<AdminError>) -> Response {
    failed(nav, &e.into())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the `time` crate's calendar, as `tessera audit`
/// uses it); out of range: the seconds as they are.
pub(crate) fn utc(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()),
        Err(_) => ts.to_string(),
    }
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessageView {
    nav: Nav,
    title: String,
    message: String,
    back: String,
}

fn not_an_administrator(user: &UserRecord, session: &SessionRecord) -> Response {
    let nav = Nav { username: user.username.clone(), csrf: session.csrf_token.clone() };
    let message = "This account is not an administrator. An administrator can make it one (tessera user update --admin).".to_string();
    html(StatusCode::FORBIDDEN, &MessageView { nav, title: "Not an administrator".into(), message, back: "/".into() })
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmView {
    nav: Nav,
    title: String,
    message: String,
    action: String,
    back: String,
}

fn confirm(a: &Admin, title: String, message: String, action: String, back: String) -> Response {
    ok(&ConfirmView { nav: a.nav(), title, message, action, back })
}

// --- Sign-in ---------------------------------------------------------------------------------

/// Where a sign-in on Tessera's own pages leads: the admin console or the account page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Console,
    Account,
}

impl Place {
    fn home(self) -> &'static str {
        match self {
            Place::Console => HOME,
            Place::Account => "/account",
        }
    }
    pub(crate) fn signin(self) -> &'static str {
        match self {
            Place::Console => SIGNIN,
            Place::Account => "/account/signin",
        }
    }
}

#[derive(Template)]
#[template(path = "console_signin.html")]
struct SigninView<'a> {
    links: crate::pages::SigninLinks,
    console: bool,
    action: &'a str,
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    passkeys: bool,
    passkey_request: Option<&'a str>,
    passkey_next: Option<&'a str>,
}

/// GET /admin/signin: the form, in the browser's session (an anonymous one is started).
pub(crate) async fn signin_page(State(svc): State<AppState>, crate::extract::SessionCookie(cookie): crate::extract::SessionCookie, place: Place) -> Response {
    let passkeys = svc.passkeys_unavailable().is_none();
    let view = |csrf| SigninView {
        links: crate::pages::SigninLinks::of(&svc),
        console: place == Place::Console,
        action: place.signin(),
        csrf,
        username: "",
        error: None,
        passkeys,
        passkey_request: None,
        passkey_next: Some(place.home()),
    };
    match svc.find_session(cookie.as_deref()).await {
        Ok(Some(s)) if s.user_id.is_some() => see_other(place.home()),
        Ok(Some(s)) => ok(&view(&s.csrf_token)),
        Ok(None) => match svc.create_session(None).await {
            Ok(s) => {
                let res = ok(&view(&s.record.csrf_token));
                crate::authorize::with_cookie(res, &svc, s.new_cookie.as_deref(), ANONYMOUS_SESSION_SECS)
            }
            Err(e) => service_page(&e),
        },
        Err(e) => service_page(&e),
    }
}

/// POST /admin/signin: the password check of every sign-in (throttled, audited), then a new
/// session. A user who is not an administrator is signed in but shown that the console is not
/// theirs.
pub(crate) async fn signin_submit(
    State(svc): State<AppState>,
    ClientAddress(address): ClientAddress,
    crate::extract::Device(device): crate::extract::Device,
    form: crate::extract::CsrfForm,
    place: Place,
) -> Response {
    let crate::extract::CsrfForm { session, params } = form;
    let username = params.get("username").unwrap_or("");
    let password = params.get("password").unwrap_or("");
    let again = |status: StatusCode, error: &str| {
        let view = SigninView {
            links: crate::pages::SigninLinks::of(&svc),
            console: place == Place::Console,
            action: place.signin(),
            csrf: &session.csrf_token,
            username,
            error: Some(error),
            passkeys: svc.passkeys_unavailable().is_none(),
            passkey_request: None,
            passkey_next: Some(place.home()),
        };
        html(status, &view)
    };
    if username.is_empty() || password.is_empty() {
        return again(StatusCode::BAD_REQUEST, "Enter your username and password.");
    }
    let user = match svc.sign_in(username, password, &address).await {
        Ok(Ok(u)) => u,
        Ok(Err(refused)) => {
            let (status, message, wait) = crate::authorize::refusal(&refused);
            let res = again(status, &message);
            return match wait {
                Some(secs) => crate::authorize::retry_after(res, secs),
                None => res,
            };
        }
        Err(e) => return service_page(&e),
    };
    let pwd = [tessera_server::service::mfa::amr::PWD.to_string()];
    crate::mfa::after_password(&svc, &session, &user, None, place.home(), &pwd, &device).await
}

/// POST /admin/signout: the session ends (CSRF-checked, so no other site can sign one out).
async fn signout(State(svc): State<AppState>, form: crate::extract::CsrfForm) -> Response {
    if let Err(e) = svc.store.delete_session(&form.session.id_hash).await {
        return service_page(&e.into());
    }
    see_other(SIGNIN)
}

// --- Home ------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomeView {
    nav: Nav,
    clients: usize,
    users: usize,
    apis: usize,
    groups: usize,
}

async fn home(State(svc): State<AppState>, a: Admin) -> Response {
    let counts = async {
        Ok::<_, tessera_storage::StoreError>((
            svc.store.list_clients().await?.len(),
            svc.store.list_users().await?.len(),
            svc.store.list_apis().await?.len(),
            svc.store.list_groups().await?.len(),
        ))
    };
    match counts.await {
        Ok((clients, users, apis, groups)) => ok(&HomeView { nav: a.nav(), clients, users, apis, groups }),
        Err(e) => store_failed(a.nav(), e),
    }
}

// --- Clients ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ClientsView {
    nav: Nav,
    clients: Vec<(String, String, String)>,
    error: Option<String>,
}

async fn clients_page(svc: &AppState, a: &Admin, status: StatusCode, error: Option<String>) -> Response {
    match svc.store.list_clients().await {
        Ok(list) => {
            let clients = list.into_iter().map(|c| (c.client_id, c.name, c.token_endpoint_auth_method.as_str().to_string())).collect();
            html(status, &ClientsView { nav: a.nav(), clients, error })
        }
        Err(e) => store_failed(a.nav(), e),
    }
}

async fn clients(State(svc): State<AppState>, a: Admin) -> Response {
    clients_page(&svc, &a, StatusCode::OK, None).await
}

/// The grant types a console form offers, by their checkbox names.
const GRANT_BOXES: [(&str, &str); 5] = [
    ("grant_authorization_code", "authorization_code"),
    ("grant_refresh_token", "refresh_token"),
    ("grant_client_credentials", "client_credentials"),
    ("grant_device_code", "urn:ietf:params:oauth:grant-type:device_code"),
    ("grant_jwt_bearer", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
];

#[derive(Template)]
#[template(path = "admin/client.html")]
struct ClientView {
    nav: Nav,
    c: ClientShown,
    /// Shown once: just created or rotated.
    secret: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

struct ClientShown {
    client_id: String,
    name: String,
    public: bool,
    redirect_uris: String,
    scope: String,
    grant_types: String,
    allowed_origins: String,
    require_dpop: bool,
    require_mfa: bool,
    created_at: String,
}

impl From<&tessera_storage::ClientRecord> for ClientShown {
    fn from(c: &tessera_storage::ClientRecord) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            public: c.secret_hash.is_none(),
            redirect_uris: c.redirect_uris.join("\n"),
            scope: c.scope.to_string(),
            grant_types: c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" "),
            allowed_origins: c.allowed_origins.join("\n"),
            require_dpop: c.require_dpop,
            require_mfa: c.require_mfa,
            created_at: utc(c.created_at),
        }
    }
}

async fn client_page(
    svc: &AppState,
    a: &Admin,
    id: &str,
    status: StatusCode,
    secret: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    match svc.store.find_client(id).await {
        Ok(Some(c)) => html(status, &ClientView { nav: a.nav(), c: ClientShown::from(&c), secret, notice, error }),
        Ok(None) => failed(a.nav(), &AdminError::NotFound(format!("no client {id}"))),
        Err(e) => store_failed(a.nav(), e),
    }
}

async fn client(State(svc): State<AppState>, a: Admin, Path(id): Path<String>) -> Response {
    client_page(&svc, &a, &id, StatusCode::OK, None, None, None).await
}

/// POST /admin/clients: register; the page shows the secret this once.
async fn create_client(State(svc): State<AppState>, f: AdminForm) -> Response {
    let grant_types: Vec<String> = GRANT_BOXES.iter().filter(|(b, _)| f.checked(b)).map(|(_, g)| g.to_string()).collect();
    let new = NewClient {
        name: f.text("name"),
        redirect_uris: f.lines("redirect_uris"),
        scope: f.text("scope"),
        grant_types,
        public: f.checked("public"),
        allowed_origins: f.lines("allowed_origins"),
        require_dpop: f.checked("require_dpop"),
        require_mfa: f.checked("require_mfa"),
        allow_private_logout_uris: svc.config.allow_private_logout_uris,
        ..Default::default()
    };
    match f.admin.acting(&svc).create_client(new).await {
        Ok(created) => {
            let notice = Some("Client registered.".to_string());
            html(
                StatusCode::CREATED,
                &ClientView { nav: f.admin.nav(), c: ClientShown::from(&created.client), secret: created.client_secret, notice, error: None },
            )
        }
        Err(AdminError::Invalid(m)) => clients_page(&svc, &f.admin, StatusCode::BAD_REQUEST, Some(m)).await,
        Err(e) => failed(f.admin.nav(), &e),
    }
}

/// POST /admin/clients/{id}: change the name, redirect URIs, scope, origins, DPoP.
async fn update_client(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let changes = ClientChanges {
        name: Some(f.text("name")),
        redirect_uris: Some(f.lines("redirect_uris")),
        scope: Some(f.text("scope")),
        allowed_origins: Some(f.lines("allowed_origins")),
        require_dpop: Some(f.checked("require_dpop")),
        require_mfa: Some(f.checked("require_mfa")),
        jwks: None,
    };
    match f.admin.acting(&svc).update_client(&id, changes).await {
        Ok(_) => client_page(&svc, &f.admin, &id, StatusCode::OK, None, Some("Saved.".into()), None).await,
        Err(AdminError::Invalid(m)) => client_page(&svc, &f.admin, &id, StatusCode::BAD_REQUEST, None, None, Some(m)).await,
        Err(e) => failed(f.admin.nav(), &e),
    }
}

async fn rotate_secret(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    match f.admin.acting(&svc).rotate_client_secret(&id).await {
        Ok(s) => client_page(&svc, &f.admin, &id, StatusCode::OK, Some(s), Some("New secret made: the old one no longer works.".into()), None).await,
        Err(e) => failed(f.admin.nav(), &e),
    }
}

async fn confirm_delete_client(State(svc): State<AppState>, a: Admin, Path(id): Path<String>) -> Response {
    match svc.store.find_client(&id).await {
        Ok(Some(c)) => confirm(
            &a,
            format!("Delete client {}?", c.name),
            format!("Client {} ({}) can no longer sign users in or get tokens. This cannot be undone.", c.name, c.client_id),
            format!("/admin/clients/{}/delete", enc(&id)),
            format!("/admin/clients/{}", enc(&id)),
        ),
        Ok(None) => failed(a.nav(), &AdminError::NotFound(format!("no client {id}"))),
        Err(e) => store_failed(a.nav(), e),
    }
}

async fn delete_client(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    match f.admin.acting(&svc).delete_client(&id).await {
        Ok(()) => see_other("/admin/clients"),
        Err(e) => failed(f.admin.nav(), &e),
    }
}

// --- Users -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersView {
    nav: Nav,
    q: String,
    /// id, username, email, name, disabled, admin
    users: Vec<(String, String, String, String, bool, bool)>,
    next: Option<String>,
    error: Option<String>,
}

const USERS_PER_PAGE: usize = 50;

async fn users_page(svc: &AppState, a: &Admin, q: &str, after: Option<&str>, status: StatusCode, error: Option<String>) -> Response {
    let (found, next_after) = match admin::find_users(&*svc.store, Some(q), after, USERS_PER_PAGE).await {
        Ok(page) => page,
        Err(e) => return failed(a.nav(), &e),
    };
    let users =
        found.into_iter().map(|u| (u.id, u.username, u.email.unwrap_or_default(), u.name.unwrap_or_default(), u.disabled_at.is_some(), u.is_admin)).collect();
    let next = next_after.map(|after| format!("/admin/users?q={}&after={}", enc(q), enc(&after)));
    html(status, &UsersView { nav: a.nav(), q: q.to_string(), users, next, error })
}

async fn users(State(svc): State<AppState>, a: Admin, crate::extract::PageQuery(p): crate::extract::PageQuery) -> Response {
    users_page(&svc, &a, p.get("q").unwrap_or("").trim(), p.get("after"), StatusCode::OK, None).await
}

async fn create_user(State(svc): State<AppState>, f: AdminForm) -> Response {
    let new = NewUser { username: f.text("username"), email: f.opt("email"), name: f.opt("name"), profile: Default::default() };
    let created = match svc.new_password_hash(None, f.params.get("password").unwrap_or("").to_string()).await {
        Ok(hash) => f.admin.acting(&svc).create_user(new, hash).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(u) => see_other(&format!("/admin/users/{}", enc(&u.id))),
        Err(AdminError::Invalid(m)) => users_page(&svc, &f.admin, "", None, StatusCode::BAD_REQUEST, Some(m)).await,
        Err(e) => failed(f.admin.nav(), &e),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserView {
    nav: Nav,
    u: UserShown,
    /// client id, client name, scope, when
    apps: Vec<(String, String, String, String)>,
    /// device ("Chrome on Linux"), address, signed in, last used, expires, amr
    sessions: Vec<(String, String, String, String, String, String)>,
    groups: Vec<String>,
    is_self: bool,
    notice: Option<String>,
    error: Option<String>,
}

struct UserShown {
    id: String,
    username: String,
    email: String,
    name: String,
    disabled: bool,
    is_admin: bool,
    require_mfa: bool,
    /// name and kind of each second factor
    factors: Vec<(String, &'static str)>,
    created_at: String,
}

async fn user_page(svc: &AppState, a: &Admin, id: &str, status: StatusCode, notice: Option<String>, error: Option<String>) -> Response {
    let loaded = async {
        let Some(u) = svc.store.find_user(id).await? else { return Ok(None) };
        let mut apps = Vec::new();
        for c in svc.store.list_consents(id).await? {
            let name = svc.store.find_client(&c.client_id).await?.map(|r| r.name).unwrap_or_else(|| c.client_id.clone());
            apps.push((c.client_id, name, c.scope.to_string(), utc(c.updated_at)));
        }
        let sessions = svc
            .store
            .list_user_sessions(id, svc.now())
            .await?
            .into_iter()
            .map(|s| {
                (
                    crate::user_agent::summary(s.user_agent.as_deref()),
                    s.address.unwrap_or_else(|| "unknown".into()),
                    utc(s.auth_time.unwrap_or(s.created_at)),
                    utc(s.last_used_at),
                    utc(s.expires_at),
                    s.amr.unwrap_or_default(),
                )
            })
            .collect();
        let groups = svc.store.list_user_groups(id).await?;
        let factors = svc.store.list_factors(id).await?;
        Ok::<_, tessera_storage::StoreError>(Some((u, apps, sessions, groups, factors)))
    };
    match loaded.await {
        Ok(Some((u, apps, sessions, groups, factors))) => {
            let shown = UserShown {
                id: u.id.clone(),
                username: u.username.clone(),
                email: u.email.clone().unwrap_or_default(),
                name: u.name.clone().unwrap_or_default(),
                disabled: u.disabled_at.is_some(),
                is_admin: u.is_admin,
                require_mfa: u.require_mfa,
                factors: crate::mfa::factor_rows(&factors).into_iter().map(|(_, name, kind, _, _)| (name, kind)).collect(),
                created_at: utc(u.created_at),
            };
            html(status, &UserView { nav: a.nav(), is_self: u.id == a.user.id, u: shown, apps, sessions, groups, notice, error })
        }
        Ok(None) => failed(a.nav(), &AdminError::NotFound(format!("no user {id}"))),
        Err(e) => store_failed(a.nav(), e),
    }
}

async fn user(State(svc): State<AppState>, a: Admin, Path(id): Path<String>) -> Response {
    user_page(&svc, &a, &id, StatusCode::OK, None, None).await
}

async fn username_of(svc: &AppState, a: &Admin, id: &str) -> Result<String, Response> {
    match svc.store.find_user(id).await {
        Ok(Some(u)) => Ok(u.username),
        Ok(None) => Err(failed(a.nav(), &AdminError::NotFound(format!("no user {id}")))),
        Err(e) => Err(store_failed(a.nav(), e)),
    }
}

/// The outcome of a change on a user's page: the page again, with what happened.
async fn after_user_change(svc: &AppState, a: &Admin, id: &str, done: Result<String, AdminError>) -> Response {
    match done {
        Ok(notice) => user_page(svc, a, id, StatusCode::OK, Some(notice), None).await,
        Err(AdminError::Invalid(m)) => user_page(svc, a, id, StatusCode::BAD_REQUEST, None, Some(m)).await,
        Err(e) => failed(a.nav(), &e),
    }
}

async fn update_user(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let username = match username_of(&svc, &f.admin, &id).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let done = f.admin.acting(&svc).update_user(&username, f.opt("email"), f.opt("name"), Default::default()).await.map(|_| "Saved.".to_string());
    after_user_change(&svc, &f.admin, &id, done).await
}

/// An administrator does not lock themselves out from here.
fn not_self(a: &Admin, id: &str, what: &str) -> Result<(), AdminError> {
    if a.user.id == id { Err(AdminError::Invalid(format!("You cannot {what} your own account here."))) } else { Ok(()) }
}

async fn disable_user(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let username = match username_of(&svc, &f.admin, &id).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let done = match not_self(&f.admin, &id, "disable") {
        Ok(()) => f
            .admin
            .acting(&svc)
            .set_disabled(&username, true)
            .await
            .map(|_| format!("{username} is disabled: signed out everywhere, apps' refresh tokens revoked.")),
        Err(e) => Err(e),
    };
    after_user_change(&svc, &f.admin, &id, done).await
}

async fn enable_user(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let username = match username_of(&svc, &f.admin, &id).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let done = f.admin.acting(&svc).set_disabled(&username, false).await.map(|_| format!("{username} is enabled again."));
    after_user_change(&svc, &f.admin, &id, done).await
}

async fn set_password(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let username = match username_of(&svc, &f.admin, &id).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let done = match svc.new_password_hash(Some(&id), f.params.get("password").unwrap_or("").to_string()).await {
        Ok(hash) => f.admin.acting(&svc).set_password_hash(&username, &hash).await.map(|()| "Password set: every session of theirs ended.".to_string()),
        Err(e) => Err(e),
    };
    after_user_change(&svc, &f.admin, &id, done).await
}

async fn end_sessions(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let done = f.admin.acting(&svc).end_sessions(&id).await.map(|()| "Signed out everywhere.".to_string());
    after_user_change(&svc, &f.admin, &id, done).await
}

/// POST /admin/users/{id}/mfa: require a second factor at every sign-in (`require=on`; the
/// user's sessions end), or not.
async fn require_mfa(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let username = match username_of(&svc, &f.admin, &id).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let require = f.checked("require");
    let done = f.admin.acting(&svc).set_require_mfa(&username, require).await.map(|_| {
        if require { "Two-step sign-in is required: their sessions ended.".to_string() } else { "Two-step sign-in is no longer required.".to_string() }
    });
    after_user_change(&svc, &f.admin, &id, done).await
}

/// POST /admin/users/{id}/mfa/reset: every second factor and recovery code of the user goes.
async fn reset_mfa(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let username = match username_of(&svc, &f.admin, &id).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let done = f.admin.acting(&svc).reset_mfa(&username).await.map(|n| format!("Removed {n} second factor(s) and the recovery codes."));
    after_user_change(&svc, &f.admin, &id, done).await
}

async fn remove_app(State(svc): State<AppState>, Path((id, client)): Path<(String, String)>, f: AdminForm) -> Response {
    let done = f.admin.acting(&svc).remove_access(&id, &client).await.map(|_| format!("Access removed for {client}: its tokens are revoked."));
    after_user_change(&svc, &f.admin, &id, done).await
}

async fn confirm_delete_user(State(svc): State<AppState>, a: Admin, Path(id): Path<String>) -> Response {
    let username = match username_of(&svc, &a, &id).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Err(e) = not_self(&a, &id, "delete") {
        return user_page(&svc, &a, &id, StatusCode::BAD_REQUEST, None, Some(e.to_string())).await;
    }
    confirm(
        &a,
        format!("Delete user {username}?"),
        format!("{username}'s sessions, apps, group memberships and roles go with the account. This cannot be undone."),
        format!("/admin/users/{}/delete", enc(&id)),
        format!("/admin/users/{}", enc(&id)),
    )
}

async fn delete_user(State(svc): State<AppState>, Path(id): Path<String>, f: AdminForm) -> Response {
    let username = match username_of(&svc, &f.admin, &id).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Err(e) = not_self(&f.admin, &id, "delete") {
        return failed(f.admin.nav(), &e);
    }
    match f.admin.acting(&svc).delete_user(&username).await {
        Ok(()) => see_other("/admin/users"),
        Err(e) => failed(f.admin.nav(), &e),
    }
}

// --- APIs ------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/apis.html")]
struct ApisView {
    nav: Nav,
    /// identifier, its path segment, name, scope names
    apis: Vec<(String, String, String, String)>,
    error: Option<String>,
}

async fn apis_page(svc: &AppState, a: &Admin, status: StatusCode, error: Option<String>) -> Response {
    match svc.store.list_apis().await {
        Ok(list) => {
            let apis = list
                .into_iter()
                .map(|x| {
                    let scopes = x.scopes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ");
                    let seg = enc(&x.identifier);
                    (x.identifier, seg, x.name, scopes)
                })
                .collect();
            html(status, &ApisView { nav: a.nav(), apis, error })
        }
        Err(e) => store_failed(a.nav(), e),
    }
}

async fn apis(State(svc): State<AppState>, a: Admin) -> Response {
    apis_page(&svc, &a, StatusCode::OK, None).await
}

async fn create_api(State(svc): State<AppState>, f: AdminForm) -> Response {
    let parsed = (|| {
        let scopes = f.lines("scopes").iter().map(|l| admin::parse_api_scope(l)).collect::<Result<Vec<_>, _>>()?;
        let roles = f.lines("roles").iter().map(|l| admin::parse_api_role(l)).collect::<Result<Vec<_>, _>>()?;
        Ok::<_, AdminError>((scopes, roles))
    })();
    let created = match parsed {
        Ok((scopes, roles)) => f.admin.acting(&svc).create_api(&f.text("identifier"), &f.text("name"), scopes, roles).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(x) => see_other(&format!("/admin/apis/{}", enc(&x.identifier))),
        Err(AdminError::Invalid(m) | AdminError::Conflict { message: m, .. }) => apis_page(&svc, &f.admin, StatusCode::BAD_REQUEST, Some(m)).await,
        Err(e) => failed(f.admin.nav(), &e),
    }
}

#[derive(Template)]
#[template(path = "admin/api.html")]
struct ApiView {
    nav: Nav,
    identifier: String,
    seg: String,
    name: String,
    scopes: Vec<(String, String)>,
    roles: Vec<(String, String)>,
    /// role, kind (user / group), holder name
    grants: Vec<(String, String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

async fn api_page(svc: &AppState, a: &Admin, identifier: &str, status: StatusCode, notice: Option<String>, error: Option<String>) -> Response {
    let loaded = async {
        let Some(x) = svc.store.list_apis().await?.into_iter().find(|x| x.identifier == identifier) else { return Ok(None) };
        let mut grants = Vec::new();
        for g in svc.store.list_role_assignments(identifier).await? {
            match g.assignee {
                tessera_storage::Assignee::User(id) => {
                    let name = svc.store.find_user(&id).await?.map(|u| u.username).unwrap_or(id);
                    grants.push((g.role, "user".to_string(), name));
                }
                tessera_storage::Assignee::Group(name) => grants.push((g.role, "group".to_string(), name)),
            }
        }
        Ok::<_, tessera_storage::StoreError>(Some((x, grants)))
    };
    match loaded.await {
        Ok(Some((x, grants))) => html(
            status,
            &ApiView {
                nav: a.nav(),
                seg: enc(&x.identifier),
                identifier: x.identifier,
                name: x.name,
                scopes: x.scopes.into_iter().map(|s| (s.name, s.description)).collect(),
                roles: x.roles.into_iter().map(|r| (r.name, r.description)).collect(),
                grants,
                notice,
                error,
            },
        ),
        Ok(None) => failed(a.nav(), &AdminError::NotFound(format!("no API {identifier}"))),
        Err(e) => store_failed(a.nav(), e),
    }
}

async fn api(State(svc): State<AppState>, a: Admin, Path(identifier): Path<String>) -> Response {
    api_page(&svc, &a, &identifier, StatusCode::OK, None, None).await
}

fn role_holder(f: &AdminForm) -> Result<RoleHolder, AdminError> {
    let name = f.text("holder");
    if name.is_empty() {
        return Err(AdminError::Invalid("Name the user or group.".into()));
    }
    match f.params.get("kind") {
        Some("user") => Ok(RoleHolder::User(name)),
        Some("group") => Ok(RoleHolder::Group(name)),
        _ => Err(AdminError::Invalid("Choose a user or a group.".into())),
    }
}

async fn after_api_change(svc: &AppState, a: &Admin, identifier: &str, done: Result<String, AdminError>) -> Response {
    match done {
        Ok(notice) => api_page(svc, a, identifier, StatusCode::OK, Some(notice), None).await,
        Err(AdminError::Invalid(m)) => api_page(svc, a, identifier, StatusCode::BAD_REQUEST, None, Some(m)).await,
        Err(e) => failed(a.nav(), &e),
    }
}

async fn grant_role(State(svc): State<AppState>, Path(identifier): Path<String>, f: AdminForm) -> Response {
    let role = f.text("role");
    let done = match role_holder(&f) {
        Ok(h) => f
            .admin
            .acting(&svc)
            .grant_role(&identifier, &role, &h)
            .await
            .map(|new| if new { format!("Granted {role} to {h}.") } else { format!("{h} already holds {role}.") }),
        Err(e) => Err(e),
    };
    after_api_change(&svc, &f.admin, &identifier, done).await
}

async fn revoke_role(State(svc): State<AppState>, Path(identifier): Path<String>, f: AdminForm) -> Response {
    let role = f.text("role");
    let done = match role_holder(&f) {
        Ok(h) => f
            .admin
            .acting(&svc)
            .revoke_role(&identifier, &role, &h)
            .await
            .map(|was| if was { format!("Took {role} back from {h}.") } else { format!("{h} did not hold {role}.") }),
        Err(e) => Err(e),
    };
    after_api_change(&svc, &f.admin, &identifier, done).await
}

async fn confirm_delete_api(a: Admin, Path(identifier): Path<String>) -> Response {
    confirm(
        &a,
        format!("Delete API {identifier}?"),
        "Its scopes can no longer be requested, and the roles granted of it go with it. This cannot be undone.".into(),
        format!("/admin/apis/{}/delete", enc(&identifier)),
        format!("/admin/apis/{}", enc(&identifier)),
    )
}

async fn delete_api(State(svc): State<AppState>, Path(identifier): Path<String>, f: AdminForm) -> Response {
    match f.admin.acting(&svc).delete_api(&identifier).await {
        Ok(()) => see_other("/admin/apis"),
        Err(e) => failed(f.admin.nav(), &e),
    }
}

// --- Groups ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsView {
    nav: Nav,
    groups: Vec<(String, String)>,
    error: Option<String>,
}

async fn groups_page(svc: &AppState, a: &Admin, status: StatusCode, error: Option<String>) -> Response {
    match svc.store.list_groups().await {
        Ok(list) => html(status, &GroupsView { nav: a.nav(), groups: list.into_iter().map(|g| (g.name, g.description)).collect(), error }),
        Err(e) => store_failed(a.nav(), e),
    }
}

async fn groups(State(svc): State<AppState>, a: Admin) -> Response {
    groups_page(&svc, &a, StatusCode::OK, None).await
}

async fn create_group(State(svc): State<AppState>, f: AdminForm) -> Response {
    match f.admin.acting(&svc).create_group(&f.text("name"), f.opt("description").as_deref()).await {
        Ok(g) => see_other(&format!("/admin/groups/{}", enc(&g.name))),
        Err(AdminError::Invalid(m) | AdminError::Conflict { message: m, .. }) => groups_page(&svc, &f.admin, StatusCode::BAD_REQUEST, Some(m)).await,
        Err(e) => failed(f.admin.nav(), &e),
    }
}

#[derive(Template)]
#[template(path = "admin/group.html")]
struct GroupView {
    nav: Nav,
    name: String,
    description: String,
    members: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn group_page(svc: &AppState, a: &Admin, name: &str, status: StatusCode, notice: Option<String>, error: Option<String>) -> Response {
    let g = match svc.store.find_group(name).await {
        Ok(Some(g)) => g,
        Ok(None) => return failed(a.nav(), &AdminError::NotFound(format!("no group {name}"))),
        Err(e) => return store_failed(a.nav(), e),
    };
    match admin::group_members(&*svc.store, name).await {
        Ok(members) => html(status, &GroupView { nav: a.nav(), name: g.name, description: g.description, members, notice, error }),
        Err(e) => failed(a.nav(), &e),
    }
}

async fn group(State(svc): State<AppState>, a: Admin, Path(name): Path<String>) -> Response {
    group_page(&svc, &a, &name, StatusCode::OK, None, None).await
}

async fn after_group_change(svc: &AppState, a: &Admin, name: &str, done: Result<String, AdminError>) -> Response {
    match done {
        Ok(notice) => group_page(svc, a, name, StatusCode::OK, Some(notice), None).await,
        Err(e @ (AdminError::Invalid(_) | AdminError::NotFound(_))) => group_page(svc, a, name, StatusCode::BAD_REQUEST, None, Some(e.to_string())).await,
        Err(e) => failed(a.nav(), &e),
    }
}

async fn add_member(State(svc): State<AppState>, Path(name): Path<String>, f: AdminForm) -> Response {
    let username = f.text("username");
    let done = f
        .admin
        .acting(&svc)
        .add_group_member(&name, &username)
        .await
        .map(|new| if new { format!("Added {username}.") } else { format!("{username} already is a member.") });
    after_group_change(&svc, &f.admin, &name, done).await
}

async fn remove_member(State(svc): State<AppState>, Path(name): Path<String>, f: AdminForm) -> Response {
    let username = f.text("username");
    let done = f
        .admin
        .acting(&svc)
        .remove_group_member(&name, &username)
        .await
        .map(|was| if was { format!("Removed {username}.") } else { format!("{username} was not a member.") });
    after_group_change(&svc, &f.admin, &name, done).await
}

async fn confirm_delete_group(a: Admin, Path(name): Path<String>) -> Response {
    confirm(
        &a,
        format!("Delete group {name}?"),
        "Its memberships and the roles granted to it go with it. This cannot be undone.".into(),
        format!("/admin/groups/{}/delete", enc(&name)),
        format!("/admin/groups/{}", enc(&name)),
    )
}

async fn delete_group(State(svc): State<AppState>, Path(name): Path<String>, f: AdminForm) -> Response {
    match f.admin.acting(&svc).delete_group(&name).await {
        Ok(()) => see_other("/admin/groups"),
        Err(e) => failed(f.admin.nav(), &e),
    }
}

// --- Keys ------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysView {
    nav: Nav,
    /// kid, alg, created, signs from
    keys: Vec<(String, String, String, String)>,
    notice: Option<String>,
}

async fn keys_page(svc: &AppState, a: &Admin, notice: Option<String>) -> Response {
    match svc.store.list_signing_keys().await {
        Ok(list) => {
            let keys = list.into_iter().map(|k| (k.kid, k.alg, utc(k.created_at), utc(k.use_after))).collect();
            ok(&KeysView { nav: a.nav(), keys, notice })
        }
        Err(e) => store_failed(a.nav(), e),
    }
}

async fn keys(State(svc): State<AppState>, a: Admin) -> Response {
    keys_page(&svc, &a, None).await
}

/// POST /admin/keys: a new key per algorithm, published now, signing in an hour (as the API's
/// rotation).
async fn rotate_keys(State(svc): State<AppState>, f: AdminForm) -> Response {
    let rotated = f.admin.acting(&svc).rotate_keys(svc.keys.kek(), &tessera_jose::Alg::ALL, 3_600).await;
    match rotated {
        Ok(made) => {
            if let Err(e) = svc.keys.reload(&*svc.store).await {
                return store_failed(f.admin.nav(), e);
            }
            keys_page(&svc, &f.admin, Some(format!("{} new keys published; they sign from an hour from now.", made.len()))).await
        }
        Err(e) => failed(f.admin.nav(), &e),
    }
}

// --- Audit -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditView {
    nav: Nav,
    kind: String,
    user: String,
    client: String,
    /// when, type, actor, user, client, detail
    events: Vec<(String, String, String, String, String, String)>,
    next: Option<String>,
}

const EVENTS_PER_PAGE: i64 = 100;

async fn audit(State(svc): State<AppState>, a: Admin, crate::extract::PageQuery(p): crate::extract::PageQuery) -> Response {
    let kind = p.get("type").unwrap_or("").trim().to_string();
    let user = p.get("user").unwrap_or("").trim().to_string();
    let client = p.get("client").unwrap_or("").trim().to_string();
    let before = p.get("before").and_then(|b| b.parse::<i64>().ok());
    // A username or a user id.
    let user_id = if user.is_empty() {
        None
    } else {
        match svc.store.find_user_by_username(&user).await {
            Ok(Some(u)) => Some(u.id),
            Ok(None) => Some(user.clone()),
            Err(e) => return store_failed(a.nav(), e),
        }
    };
    let query = tessera_storage::AuditQuery {
        since: None,
        until: None,
        kind: Some(kind.clone()).filter(|k| !k.is_empty()),
        user_id,
        client_id: Some(client.clone()).filter(|c| !c.is_empty()),
        before_id: before,
        limit: EVENTS_PER_PAGE,
    };
    let found = match svc.store.find_audit_events(&query).await {
        Ok(f) => f,
        Err(e) => return store_failed(a.nav(), e),
    };
    // Actors and users by name where they are users.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut ids: Vec<&String> = Vec::new();
    for e in &found {
        ids.push(&e.actor);
        ids.extend(e.user_id.as_ref());
    }
    for id in ids {
        if id.is_empty() || id.contains(':') || names.contains_key(id) {
            continue;
        }
        match svc.store.find_user(id).await {
            Ok(Some(u)) => names.insert(id.clone(), u.username),
            Ok(None) => names.insert(id.clone(), id.clone()),
            Err(e) => return store_failed(a.nav(), e),
        };
    }
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let next = (found.len() as i64 == EVENTS_PER_PAGE)
        .then(|| found.last().map(|e| format!("/admin/audit?type={}&user={}&client={}&before={}", enc(&kind), enc(&user), enc(&client), e.id)))
        .flatten();
    let events = found
        .iter()
        .map(|e| {
            let actor = if e.actor.is_empty() { "Tessera".to_string() } else { name(&e.actor) };
            (utc(e.at), e.kind.clone(), actor, e.user_id.as_deref().map(name).unwrap_or_default(), e.client_id.clone().unwrap_or_default(), e.detail.clone())
        })
        .collect();
    ok(&AuditView { nav: a.nav(), kind, user, client, events, next })
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_formats_unix_seconds_as_civil_time() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_212_800 + 3_661), "2026-12-02 13:01:01 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }
}
