//! The account page at `/account` (issue 15, first part): what a signed-in user sees of their
//! own account — profile, password change, the apps they granted (with **Remove access**),
//! their browser sessions (with sign-out) and their security events. Server-rendered, no
//! JavaScript; sign-in at `/account/signin` (the same password check, throttle and audit as
//! every sign-in); every form CSRF-checked; every change made as the user (`admin::Acting`
//! with the user's id as actor, so the audit log says they did it).

use crate::console::{Place, html, signed_in, utc};
use crate::extract::{check_csrf, read_form};
use crate::response::see_other;
use crate::{AppState, i18n};
use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use tessera_protocol::params::Params;
use tessera_server::service::admin::{self, Acting, AdminError};
use tessera_storage::{SessionRecord, UserRecord};

/// The page.
pub const ACCOUNT: &str = "/account";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(ACCOUNT, get(page))
        .route("/account/password", post(change_password))
        .route("/account/apps/{client}/remove", post(remove_app))
        .route("/account/sessions/{sid}/end", post(end_session))
        .route("/account/signout", post(sign_out))
}

/// A request in a signed-in user's session.
pub struct Me {
    pub(crate) user: UserRecord,
    pub(crate) session: SessionRecord,
}

impl FromRequestParts<AppState> for Me {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &AppState) -> Result<Self, Response> {
        let (user, session) = signed_in(svc, parts, Place::Account).await?;
        Ok(Me { user, session })
    }
}

/// A form from the account page, its CSRF token checked.
pub struct MyForm {
    me: Me,
    params: Params,
}

impl MyForm {
    pub(crate) fn into_parts(self) -> (Me, Params) {
        (self.me, self.params)
    }
}

/// The account page with a notice (a change done).
pub(crate) async fn notice(svc: &AppState, me: &Me, msg: &str) -> Response {
    render(svc, me, StatusCode::OK, Some(msg.to_string()), None).await
}

/// The account page with a problem (a change refused).
pub(crate) async fn problem(svc: &AppState, me: &Me, msg: &str) -> Response {
    render(svc, me, StatusCode::BAD_REQUEST, None, Some(msg.to_string())).await
}

impl FromRequest<AppState> for MyForm {
    type Rejection = Response;

    async fn from_request(req: Request, svc: &AppState) -> Result<Self, Response> {
        let (parts, params) = read_form(req).await.map_err(|e| crate::error::oauth_page(&e))?;
        let (user, session) = signed_in(svc, &parts, Place::Account).await?;
        check_csrf(&session, &params)?;
        Ok(Self { me: Me { user, session }, params })
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountView {
    csrf: String,
    username: String,
    name: String,
    email: String,
    email_verified: bool,
    /// The server sends mail (a verification link can be asked for).
    mail: bool,
    /// claim, value
    profile: Vec<(String, String)>,
    /// client id, app name, what it may do (descriptions), when
    apps: Vec<(String, String, Vec<String>, String)>,
    sessions: Vec<SessionRow>,
    /// when, what
    events: Vec<(String, String)>,
    /// id, name, kind, added, last used
    factors: Vec<(String, String, &'static str, String, String)>,
    recovery_codes_left: i64,
    require_mfa: bool,
    /// Why this server cannot offer passkeys, when it cannot.
    passkeys_unavailable: Option<String>,
    /// What a new password must be (the policy for this account's factors).
    password_hint: String,
    notice: Option<String>,
    error: Option<String>,
}

/// One of the user's sessions as the page lists it.
struct SessionRow {
    sid: String,
    /// "Chrome on Linux" ([`crate::user_agent::summary`]).
    device: String,
    /// The client's address at sign-in.
    address: String,
    signed_in: String,
    last_used: String,
    /// How (RFC 8176 `amr` values).
    methods: String,
    /// The session of this request.
    this: bool,
}

/// What an audit event means to the user it is about.
fn describe(kind: &str, detail: &str) -> Option<String> {
    let d: serde_json::Value = serde_json::from_str(detail).unwrap_or_default();
    let text = |key: &str| i18n::t(key);
    // "… from ADDRESS" where the event knows the address.
    let from = |key: &str| match d["address"].as_str() {
        Some(a) => i18n::t2("event-from", ("what", &i18n::t(key)), ("address", a)),
        None => i18n::t(key),
    };
    let name = d["name"].as_str().unwrap_or("?");
    Some(match kind {
        "sign_in" => from("event-sign-in"),
        "sign_in_failed" => from("event-sign-in-failed"),
        "sign_in_refused" => from("event-sign-in-refused"),
        "consent_granted" => text("event-consent-granted"),
        "consent_removed" => text("event-consent-removed"),
        "admin.password_set" => text("event-admin-password-set"),
        "admin.user_disabled" => text("event-admin-user-disabled"),
        "admin.user_enabled" => text("event-admin-user-enabled"),
        "refresh_reuse" => text("event-refresh-reuse"),
        "admin.sessions_ended" => text("event-admin-sessions-ended"),
        "second_factor" => from("event-second-factor"),
        "second_factor_failed" => from("event-second-factor-failed"),
        "second_factor_throttled" => from("event-second-factor-throttled"),
        "recovery_codes_created" => text("event-recovery-codes-created"),
        "admin.mfa_reset" => text("event-admin-mfa-reset"),
        "password_reset_requested" => from("event-password-reset-requested"),
        "password_reset" => from("event-password-reset"),
        "invitation_accepted" => from("event-invitation-accepted"),
        "email_verification_sent" => text("event-email-verification-sent"),
        "user_registered" => text("event-user-registered"),
        "admin.user_invited" => text("event-admin-user-invited"),
        "mail_failed" => text("event-mail-failed"),
        "mfa_added" => i18n::t1("event-mfa-added", "name", name),
        "mfa_removed" => i18n::t1("event-mfa-removed", "name", name),
        "email_verified" => i18n::t1("event-email-verified", "email", d["email"].as_str().unwrap_or("")),
        "email_changed" => i18n::t1("event-email-changed", "email", d["to"].as_str().unwrap_or("")),
        _ => return None,
    })
}

async fn render(svc: &AppState, me: &Me, status: StatusCode, notice: Option<String>, error: Option<String>) -> Response {
    let loaded = async {
        let catalog = svc.cached_catalog().await.map_err(|e| match e {
            tessera_server::service::ServiceError::Store(e) => e,
            other => tessera_storage::StoreError::Other(other.to_string()),
        })?;
        let mut apps = Vec::new();
        for c in svc.store.list_consents(&me.user.id).await? {
            let name = svc.store.find_client(&c.client_id).await?.map(|r| r.name).unwrap_or_else(|| c.client_id.clone());
            let can: Vec<String> =
                c.scope.iter().map(|s| catalog.description(s).map(|d| i18n::scope_description(s, d)).unwrap_or_else(|| s.to_string())).collect();
            apps.push((c.client_id, name, can, utc(c.updated_at)));
        }
        let sessions = svc
            .store
            .list_user_sessions(&me.user.id, svc.now())
            .await?
            .into_iter()
            .map(|s| SessionRow {
                this: s.id_hash == me.session.id_hash,
                device: crate::user_agent::summary(s.user_agent.as_deref()),
                address: s.address.unwrap_or_else(|| "unknown".into()),
                signed_in: utc(s.auth_time.unwrap_or(s.created_at)),
                last_used: utc(s.last_used_at),
                methods: s.amr.unwrap_or_default(),
                sid: s.sid,
            })
            .collect();
        let q = tessera_storage::AuditQuery { user_id: Some(me.user.id.clone()), limit: 50, ..Default::default() };
        let events = svc.store.find_audit_events(&q).await?.into_iter().filter_map(|e| describe(&e.kind, &e.detail).map(|d| (utc(e.at), d))).collect();
        let factors = svc.store.list_factors(&me.user.id).await?;
        let left = svc.store.count_recovery_codes(&me.user.id).await?;
        Ok::<_, tessera_storage::StoreError>((apps, sessions, events, factors, left))
    };
    match loaded.await {
        Ok((apps, sessions, events, factors, recovery_codes_left)) => {
            let policy = &svc.config.password_policy;
            let general = policy.min_length_for(admin::Factors::WithSecondFactor);
            let password_hint = match policy.min_length_for(admin::Factors::PasswordOnly) {
                alone if factors.is_empty() && alone > general => format!("at least {alone} characters, or {general} with two-step sign-in"),
                _ => format!("at least {general} characters"),
            };
            let factors = crate::mfa::factor_rows(&factors);
            let u = &me.user;
            let profile = u.profile.iter().map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))).collect();
            html(
                status,
                &AccountView {
                    csrf: me.session.csrf_token.clone(),
                    username: u.username.clone(),
                    name: u.name.clone().unwrap_or_default(),
                    email: u.email.clone().unwrap_or_default(),
                    email_verified: u.email_verified,
                    mail: svc.mail_enabled(),
                    profile,
                    apps,
                    sessions,
                    events,
                    factors,
                    recovery_codes_left,
                    require_mfa: u.require_mfa,
                    passkeys_unavailable: svc.passkeys_unavailable().map(str::to_string),
                    password_hint,
                    notice,
                    error,
                },
            )
        }
        Err(e) => crate::error::service_page(&e.into()),
    }
}

async fn page(State(svc): State<AppState>, me: Me) -> Response {
    render(&svc, &me, StatusCode::OK, None, None).await
}

fn acting<'a>(svc: &'a AppState, me: &'a Me) -> Acting<'a> {
    Acting { store: &*svc.store, actor: &me.user.id, now: svc.now() }
}

async fn after(svc: &AppState, me: &Me, done: Result<String, AdminError>) -> Response {
    match done {
        Ok(notice) => render(svc, me, StatusCode::OK, Some(notice), None).await,
        Err(AdminError::Invalid(m)) => render(svc, me, StatusCode::BAD_REQUEST, None, Some(m)).await,
        Err(AdminError::NotFound(m)) => render(svc, me, StatusCode::NOT_FOUND, None, Some(m)).await,
        Err(e) => render(svc, me, StatusCode::SERVICE_UNAVAILABLE, None, Some(e.to_string())).await,
    }
}

/// POST /account/password: the current password (checked as a sign-in is: throttled and
/// audited), then the new one; every other session ends and the user's refresh tokens are
/// revoked (RFC 9700 §4.14.2), this session stays.
async fn change_password(State(svc): State<AppState>, crate::extract::ClientAddress(address): crate::extract::ClientAddress, f: MyForm) -> Response {
    let current = f.params.get("current_password").unwrap_or("");
    let new = f.params.get("new_password").unwrap_or("").to_string();
    if f.params.get("confirm_password").unwrap_or("") != new {
        return after(&svc, &f.me, Err(AdminError::Invalid("The new passwords do not match.".into()))).await;
    }
    match svc.sign_in(&f.me.user.username, current, &address).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return after(&svc, &f.me, Err(AdminError::Invalid("The current password is not right.".into()))).await,
        Err(e) => return crate::error::service_page(&e),
    }
    let hash = match svc.new_password_hash(Some(&f.me.user.id), new).await {
        Ok(h) => h,
        Err(e) => return after(&svc, &f.me, Err(e)).await,
    };
    let done = match svc.store.update_user_password(&f.me.user.username, &hash, Some(&f.me.session.id_hash), svc.now()).await {
        Ok(true) => {
            let detail = serde_json::json!({ "username": f.me.user.username, "by": "the user" }).to_string();
            admin::record_change(&*svc.store, &f.me.user.id, "admin.password_set", Some(&f.me.user.id), None, &detail, svc.now())
                .await
                .map(|()| "Password changed. You were signed out everywhere else, and apps must ask you again.".to_string())
        }
        Ok(false) => Err(AdminError::NotFound("no such user".into())),
        Err(e) => Err(e.into()),
    };
    after(&svc, &f.me, done).await
}

/// POST /account/apps/{client}/remove: the consent goes and the app's tokens for the user
/// are revoked; the next authorization asks again.
async fn remove_app(State(svc): State<AppState>, Path(client): Path<String>, f: MyForm) -> Response {
    let done = acting(&svc, &f.me).remove_access(&f.me.user.id, &client).await.map(|_| "Access removed: the app's tokens no longer work.".to_string());
    after(&svc, &f.me, done).await
}

/// POST /account/sessions/{sid}/end: one of the user's own sessions (another user's is "not
/// found", never ended).
async fn end_session(State(svc): State<AppState>, Path(sid): Path<String>, f: MyForm) -> Response {
    let found = match svc.store.find_session_by_sid(&sid, svc.now()).await {
        Ok(s) => s.filter(|s| s.user_id.as_deref() == Some(f.me.user.id.as_str())),
        Err(e) => return crate::error::service_page(&e.into()),
    };
    let Some(s) = found else { return after(&svc, &f.me, Err(AdminError::NotFound("No such session of yours.".into()))).await };
    if let Err(e) = svc.store.delete_session(&s.id_hash).await {
        return crate::error::service_page(&e.into());
    }
    if s.id_hash == f.me.session.id_hash {
        return see_other(Place::Account.signin());
    }
    after(&svc, &f.me, Ok("That session is signed out.".into())).await
}

async fn sign_out(State(svc): State<AppState>, f: MyForm) -> Response {
    if let Err(e) = svc.store.delete_session(&f.me.session.id_hash).await {
        return crate::error::service_page(&e.into());
    }
    see_other(Place::Account.signin())
}
