//! The admin REST API under `/admin/v1/` (issue 16): clients, users, groups, APIs with their
//! roles, signing keys and audit events. Routes and the
//! OpenAPI 3.1 document at `/admin/v1/openapi.json` come from one place (`utoipa-axum`'s
//! `OpenApiRouter`: a route cannot go undocumented). Callers present one of Tessera's own
//! access tokens for the built-in admin API (`Tessera::admin_caller`): `tessera.read` reads,
//! `tessera.admin` writes. Updates are conditional: `PATCH` and `DELETE` need the `ETag` of the
//! representation they change in `If-Match` (412 when it changed meanwhile, 428 without one),
//! so two operators do not overwrite each other. Errors are one JSON shape, [`ApiError`].
//! The handlers call the service layer the CLI calls (`tessera_server::service::admin`), and
//! every change is recorded in the audit log with the calling client as its actor.

use crate::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_server::service::ServiceError;
use tessera_server::service::admin::{self, AdminError, ClientChanges, NewClient};
use tessera_server::service::admin_api::AdminCaller;
use tessera_storage::ClientRecord;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the API is mounted.
pub const BASE: &str = "/admin/v1";

/// Every error of the admin API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// `unauthorized`, `forbidden`, `not_found`, `invalid`, `conflict`, `precondition_failed`,
    /// `precondition_required`, `unavailable`.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The request member at fault, for `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

fn api_error(status: StatusCode, error: &str, message: impl Into<String>, field: Option<String>) -> Response {
    let mut res = (status, Json(ApiError { error: error.into(), message: message.into(), field })).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    }
    res
}

/// A refusal or failure, answered as [`ApiError`].
pub struct Failure(Response);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(message) => {
                // The service names the CLI flag at fault (`--redirect-uri: …`): the member here.
                let field = if message.starts_with("the password") {
                    Some("password".to_string())
                } else {
                    message.split([':', ' ']).next().and_then(|flag| field_of_flag(flag.trim()))
                };
                Failure(api_error(StatusCode::BAD_REQUEST, "invalid", message, field))
            }
            AdminError::NotFound(message) => Failure(api_error(StatusCode::NOT_FOUND, "not_found", message, None)),
            AdminError::Conflict { field, message } => Failure(api_error(StatusCode::CONFLICT, "conflict", message, Some(field.into()))),
            AdminError::Busy => {
                let mut res = api_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string(), None);
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                Failure(res)
            }
            AdminError::Store(e) => Failure::from(e),
        }
    }
}

impl From<tessera_storage::StoreError> for Failure {
    fn from(e: tessera_storage::StoreError) -> Self {
        Failure::from(ServiceError::Store(e))
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                let mut res = api_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database is unavailable; try again", None);
                res.extensions_mut().insert(crate::observe::StoreFailed);
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                Failure(res)
            }
            ServiceError::OAuth(o) if o.code == tessera_protocol::ErrorCode::AccessDenied => {
                Failure(api_error(StatusCode::FORBIDDEN, "forbidden", o.description, None))
            }
            ServiceError::OAuth(o) => Failure(api_error(StatusCode::UNAUTHORIZED, "unauthorized", o.description, None)),
        }
    }
}

fn field_of_flag(flag: &str) -> Option<String> {
    let f = match flag {
        "--name" => "name",
        "--redirect-uri" => "redirect_uris",
        "--scope" => "scope",
        "--grant-type" => "grant_types",
        "--allowed-origin" => "allowed_origins",
        "--token-auth-method" => "token_endpoint_auth_method",
        "--jwks" => "jwks",
        "--username" => "username",
        "--email" => "email",
        "--public clients authenticate with --token-auth-method none" | "--public" => "public",
        _ => return None,
    };
    Some(f.to_string())
}

/// The caller, checked: its bearer token for the admin API.
pub struct Caller(pub AdminCaller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, svc: &AppState) -> Result<Self, Failure> {
        let token = match tessera_guard::bearer::authorization(&parts.headers) {
            Ok(tessera_guard::bearer::Presented::Token(t)) => Some(t),
            Ok(tessera_guard::bearer::Presented::Dpop(_)) => {
                return Err(Failure(api_error(StatusCode::UNAUTHORIZED, "unauthorized", "the admin API takes bearer tokens", None)));
            }
            Ok(_) => None,
            Err(e) => return Err(Failure(api_error(StatusCode::BAD_REQUEST, "invalid", e.to_string(), Some("Authorization".into())))),
        };
        Ok(Caller(svc.admin_caller(token).await?))
    }
}

impl Caller {
    fn writer(&self) -> Result<&AdminCaller, Failure> {
        if self.0.can_write {
            Ok(&self.0)
        } else {
            Err(Failure(api_error(StatusCode::FORBIDDEN, "forbidden", "this needs tessera.admin (the token has tessera.read)", None)))
        }
    }
}

/// A client as the API shows it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// Space-separated scopes the client may request.
    pub scope: String,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub public: bool,
    pub allowed_origins: Vec<String>,
    pub require_dpop: bool,
    /// Users must sign in with a second factor for this client.
    pub require_mfa: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<&ClientRecord> for Client {
    fn from(c: &ClientRecord) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            scope: c.scope.to_string(),
            grant_types: c.grant_types.iter().map(|g| g.as_str().to_string()).collect(),
            token_endpoint_auth_method: c.token_endpoint_auth_method.as_str().to_string(),
            public: c.secret_hash.is_none(),
            allowed_origins: c.allowed_origins.clone(),
            require_dpop: c.require_dpop,
            require_mfa: c.require_mfa,
            created_at: c.created_at,
        }
    }
}

/// The `ETag` of a representation (a client, a user): changes whenever anything shown changes.
fn etag(shown: &impl Serialize) -> String {
    let text = serde_json::to_string(shown).unwrap_or_default();
    format!("\"{}\"", &tessera_server::secret::hash(&text)[..32])
}

/// `body` with the `ETag` of `shown` (the representation it contains).
fn with_etag(status: StatusCode, shown: &impl Serialize, body: impl Serialize) -> Response {
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(shown)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// RFC 9110 §13.1.1: the request's `If-Match` must name the current `ETag` of `current` (or be
/// `*`).
fn check_if_match(headers: &HeaderMap, current: &impl Serialize) -> Result<(), Failure> {
    let wanted = etag(current);
    let Some(given) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Err(Failure(api_error(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "send If-Match with the ETag of what you read (RFC 9110 §13.1.1)",
            None,
        )));
    };
    if given.trim() == "*" || given.split(',').any(|t| t.trim() == wanted.as_str()) {
        Ok(())
    } else {
        Err(Failure(api_error(StatusCode::PRECONDITION_FAILED, "precondition_failed", "it changed since it was read: read it again", None)))
    }
}

async fn find(svc: &AppState, id: &str) -> Result<ClientRecord, Failure> {
    svc.store.find_client(id).await?.ok_or_else(|| Failure::from(AdminError::NotFound(format!("no client {id}"))))
}

/// The caller's changes, recorded in the audit log as theirs (the service layer the CLI and
/// the console use).
fn acting<'a>(svc: &'a AppState, actor: &'a str) -> admin::Acting<'a> {
    admin::Acting { store: &*svc.store, actor, now: svc.now() }
}

/// Every registered client.
#[utoipa::path(get, path = "/clients", tag = "clients", security(("bearer" = ["tessera.read"])),
    responses((status = 200, body = Vec<Client>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn list_clients(State(svc): State<AppState>, _caller: Caller) -> Result<Response, Failure> {
    let list = svc.store.list_clients().await?;
    Ok(Json(list.iter().map(Client::from).collect::<Vec<_>>()).into_response())
}

/// A client to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub scope: String,
    /// Registered names (RFC 7591 §2); default `authorization_code` and `refresh_token`.
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub require_dpop: bool,
    #[serde(default)]
    pub require_mfa: bool,
}

/// A client just registered, with its secret (shown this once; confidential clients only).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: Client,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Register a client.
#[utoipa::path(post, path = "/clients", tag = "clients", security(("bearer" = ["tessera.admin"])), request_body = NewClientRequest,
    responses((status = 201, body = CreatedClient), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn create_client(
    State(svc): State<AppState>,
    caller: Caller,
    body: Result<Json<NewClientRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let Json(req) = body.map_err(bad_json)?;
    let new = NewClient {
        name: req.name,
        redirect_uris: req.redirect_uris,
        scope: req.scope,
        grant_types: req.grant_types,
        public: req.public,
        allowed_origins: req.allowed_origins,
        require_dpop: req.require_dpop,
        require_mfa: req.require_mfa,
        allow_private_logout_uris: svc.config.allow_private_logout_uris,
        ..Default::default()
    };
    let created = acting(&svc, &who.actor()).create_client(new).await?;
    let client = Client::from(&created.client);
    let mut res = with_etag(StatusCode::CREATED, &client, CreatedClient { client: Client::from(&created.client), client_secret: created.client_secret });
    if let Ok(v) = HeaderValue::from_str(&format!("{BASE}/clients/{}", created.client.client_id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// One client, with its `ETag`.
#[utoipa::path(get, path = "/clients/{client_id}", tag = "clients", security(("bearer" = ["tessera.read"])),
    params(("client_id" = String, Path)),
    responses((status = 200, body = Client, headers(("ETag" = String))), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
async fn get_client(State(svc): State<AppState>, _caller: Caller, Path(client_id): Path<String>) -> Result<Response, Failure> {
    let c = Client::from(&find(&svc, &client_id).await?);
    Ok(with_etag(StatusCode::OK, &c, &c))
}

/// What a `PATCH` changes; members left out stay as they are, a list given replaces the list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub scope: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub require_dpop: Option<bool>,
    pub require_mfa: Option<bool>,
}

/// Change a client (conditional: `If-Match`).
#[utoipa::path(patch, path = "/clients/{client_id}", tag = "clients", security(("bearer" = ["tessera.admin"])),
    params(("client_id" = String, Path), ("If-Match" = String, Header)), request_body = ClientPatch,
    responses((status = 200, body = Client, headers(("ETag" = String))), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 412, body = ApiError), (status = 428, body = ApiError)))]
async fn patch_client(
    State(svc): State<AppState>,
    caller: Caller,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ClientPatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let Json(patch) = body.map_err(bad_json)?;
    check_if_match(&headers, &Client::from(&find(&svc, &client_id).await?))?;
    let changes = ClientChanges {
        name: patch.name,
        redirect_uris: patch.redirect_uris,
        scope: patch.scope,
        allowed_origins: patch.allowed_origins,
        require_dpop: patch.require_dpop,
        require_mfa: patch.require_mfa,
        jwks: None,
    };
    let updated = Client::from(&acting(&svc, &who.actor()).update_client(&client_id, changes).await?);
    Ok(with_etag(StatusCode::OK, &updated, &updated))
}

/// Delete a client (conditional when `If-Match` is sent).
#[utoipa::path(delete, path = "/clients/{client_id}", tag = "clients", security(("bearer" = ["tessera.admin"])),
    params(("client_id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 412, body = ApiError)))]
async fn delete_client(State(svc): State<AppState>, caller: Caller, Path(client_id): Path<String>, headers: HeaderMap) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let current = Client::from(&find(&svc, &client_id).await?);
    if headers.contains_key(header::IF_MATCH) {
        check_if_match(&headers, &current)?;
    }
    acting(&svc, &who.actor()).delete_client(&client_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A new secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub client_id: String,
    /// Shown this once; the old secret no longer works.
    pub client_secret: String,
}

/// Replace a confidential client's secret.
#[utoipa::path(post, path = "/clients/{client_id}/secret", tag = "clients", security(("bearer" = ["tessera.admin"])),
    params(("client_id" = String, Path)),
    responses((status = 200, body = RotatedSecret), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn rotate_secret(State(svc): State<AppState>, caller: Caller, Path(client_id): Path<String>) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let secret = acting(&svc, &who.actor()).rotate_client_secret(&client_id).await?;
    let mut res = Json(RotatedSecret { client_id, client_secret: secret }).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Further standard claims (OpenID Connect Core §5.1).
    #[schema(value_type = Object)]
    pub profile: serde_json::Map<String, serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Disabled by an administrator: no sign-in, no tokens.
    pub disabled: bool,
    /// Every sign-in needs a second factor.
    pub require_mfa: bool,
    /// The email address was verified through a link sent to it.
    pub email_verified: bool,
}

impl From<&tessera_storage::UserRecord> for User {
    fn from(u: &tessera_storage::UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            profile: u.profile.clone(),
            created_at: u.created_at,
            updated_at: u.updated_at,
            disabled: u.disabled_at.is_some(),
            require_mfa: u.require_mfa,
            email_verified: u.email_verified,
        }
    }
}

async fn find_user(svc: &AppState, id: &str) -> Result<tessera_storage::UserRecord, Failure> {
    svc.store.find_user(id).await?.ok_or_else(|| Failure::from(AdminError::NotFound(format!("no user {id}"))))
}

/// The password policy for `user_id`'s factors (`None`: a new user), then Argon2id on the
/// hashing threads (not an async worker).
async fn hashed(svc: &AppState, user_id: Option<&str>, password: String) -> Result<String, Failure> {
    Ok(svc.new_password_hash(user_id, password).await?)
}

/// Which users to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Users whose username, email or name contains this (any case).
    pub search: Option<String>,
    /// Users after this username (the previous page's `next_after`).
    pub after: Option<String>,
    /// Users per page, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// A page of users, by username.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<User>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Users, by username, with search and paging.
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = ["tessera.read"])), params(UserQuery),
    responses((status = 200, body = UserPage), (status = 400, body = ApiError), (status = 401, body = ApiError)))]
async fn list_users(
    State(svc): State<AppState>,
    _caller: Caller,
    q: Result<axum::extract::Query<UserQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let axum::extract::Query(q) = q.map_err(bad_query)?;
    let limit = usize::try_from(page_limit(q.limit, 500)?).unwrap_or(100);
    let (found, next_after) = admin::find_users(&*svc.store, q.search.as_deref(), q.after.as_deref(), limit).await?;
    Ok(Json(UserPage { users: found.iter().map(User::from).collect(), next_after }).into_response())
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub profile: serde_json::Map<String, serde_json::Value>,
}

/// Create a user.
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = ["tessera.admin"])), request_body = NewUserRequest,
    responses((status = 201, body = User), (status = 400, body = ApiError), (status = 403, body = ApiError)))]
async fn create_user(
    State(svc): State<AppState>,
    caller: Caller,
    body: Result<Json<NewUserRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let Json(req) = body.map_err(bad_json)?;
    let new = admin::NewUser { username: req.username, email: req.email, name: req.name, profile: req.profile };
    let hash = hashed(&svc, None, req.password).await?;
    let created = acting(&svc, &who.actor()).create_user(new, hash).await?;
    let u = User::from(&created);
    let mut res = with_etag(StatusCode::CREATED, &u, &u);
    if let Ok(v) = HeaderValue::from_str(&format!("{BASE}/users/{}", u.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// One user, with its `ETag`.
#[utoipa::path(get, path = "/users/{user_id}", tag = "users", security(("bearer" = ["tessera.read"])), params(("user_id" = String, Path)),
    responses((status = 200, body = User, headers(("ETag" = String))), (status = 404, body = ApiError)))]
async fn get_user(State(svc): State<AppState>, _caller: Caller, Path(user_id): Path<String>) -> Result<Response, Failure> {
    let u = User::from(&find_user(&svc, &user_id).await?);
    Ok(with_etag(StatusCode::OK, &u, &u))
}

/// What a user `PATCH` changes; a profile member set to `null` is removed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub profile: serde_json::Map<String, serde_json::Value>,
    /// A new password: every session of the user ends and their refresh tokens are revoked.
    pub password: Option<String>,
    /// Disable (sign-in refused; sessions, refresh tokens and codes end now) or enable.
    pub disabled: Option<bool>,
    /// Require a second factor at every sign-in (the user's sessions end), or not.
    pub require_mfa: Option<bool>,
}

/// Change a user (conditional: `If-Match`).
#[utoipa::path(patch, path = "/users/{user_id}", tag = "users", security(("bearer" = ["tessera.admin"])),
    params(("user_id" = String, Path), ("If-Match" = String, Header)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 412, body = ApiError), (status = 428, body = ApiError)))]
async fn patch_user(
    State(svc): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<UserPatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let Json(patch) = body.map_err(bad_json)?;
    let current = find_user(&svc, &user_id).await?;
    check_if_match(&headers, &User::from(&current))?;
    // A refused password changes nothing: it is checked (and hashed) first.
    let hash = match patch.password {
        Some(pw) => Some(hashed(&svc, Some(&current.id), pw).await?),
        None => None,
    };
    let actor = who.actor();
    let act = acting(&svc, &actor);
    let mut updated = act.update_user(&current.username, patch.email, patch.name, patch.profile).await?;
    if let Some(hash) = hash {
        act.set_password_hash(&current.username, &hash).await?;
        updated = find_user(&svc, &user_id).await?;
    }
    if let Some(disabled) = patch.disabled {
        updated = act.set_disabled(&current.username, disabled).await?;
    }
    if let Some(require) = patch.require_mfa {
        updated = act.set_require_mfa(&current.username, require).await?;
    }
    let u = User::from(&updated);
    Ok(with_etag(StatusCode::OK, &u, &u))
}

/// Delete a user: their sessions, grants, consents, memberships and roles go with them.
#[utoipa::path(delete, path = "/users/{user_id}", tag = "users", security(("bearer" = ["tessera.admin"])), params(("user_id" = String, Path)),
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 412, body = ApiError)))]
async fn delete_user(State(svc): State<AppState>, caller: Caller, Path(user_id): Path<String>, headers: HeaderMap) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let current = find_user(&svc, &user_id).await?;
    if headers.contains_key(header::IF_MATCH) {
        check_if_match(&headers, &User::from(&current))?;
    }
    acting(&svc, &who.actor()).delete_user(&current.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A client the user granted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Consent {
    pub client_id: String,
    pub client_name: Option<String>,
    /// Space-separated scopes granted.
    pub scope: String,
    /// When the scopes last changed (Unix seconds).
    pub updated_at: i64,
}

/// The clients the user granted, newest first.
#[utoipa::path(get, path = "/users/{user_id}/consents", tag = "users", security(("bearer" = ["tessera.read"])), params(("user_id" = String, Path)),
    responses((status = 200, body = Vec<Consent>), (status = 404, body = ApiError)))]
async fn list_consents(State(svc): State<AppState>, _caller: Caller, Path(user_id): Path<String>) -> Result<Response, Failure> {
    find_user(&svc, &user_id).await?;
    let mut out = Vec::new();
    for c in svc.store.list_consents(&user_id).await? {
        let client_name = svc.store.find_client(&c.client_id).await?.map(|r| r.name);
        out.push(Consent { client_id: c.client_id, client_name, scope: c.scope.to_string(), updated_at: c.updated_at });
    }
    Ok(Json(out).into_response())
}

/// Remove the user's access for a client: its grants revoked (refresh and access tokens), the
/// consent deleted; the next authorization asks again.
#[utoipa::path(delete, path = "/users/{user_id}/consents/{client_id}", tag = "users", security(("bearer" = ["tessera.admin"])),
    params(("user_id" = String, Path), ("client_id" = String, Path)), responses((status = 204), (status = 404, body = ApiError)))]
async fn remove_consent(State(svc): State<AppState>, caller: Caller, Path((user_id, client_id)): Path<(String, String)>) -> Result<Response, Failure> {
    let who = caller.writer()?;
    acting(&svc, &who.actor()).remove_access(&user_id, &client_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A browser session (never its id).
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub created_at: i64,
    pub expires_at: i64,
    pub auth_time: Option<i64>,
    /// How the user authenticated (RFC 8176 values, space-separated).
    pub amr: Option<String>,
}

/// The user's live browser sessions, newest first.
#[utoipa::path(get, path = "/users/{user_id}/sessions", tag = "users", security(("bearer" = ["tessera.read"])), params(("user_id" = String, Path)),
    responses((status = 200, body = Vec<Session>), (status = 404, body = ApiError)))]
async fn list_sessions(State(svc): State<AppState>, _caller: Caller, Path(user_id): Path<String>) -> Result<Response, Failure> {
    find_user(&svc, &user_id).await?;
    let list = svc.store.list_user_sessions(&user_id, svc.now()).await?;
    Ok(Json(list.into_iter().map(|s| Session { created_at: s.created_at, expires_at: s.expires_at, auth_time: s.auth_time, amr: s.amr }).collect::<Vec<_>>())
        .into_response())
}

/// One of a user's second factors (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Factor {
    pub id: String,
    /// `totp` (an authenticator app) or `passkey`.
    pub kind: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The user's second factors, oldest first.
#[utoipa::path(get, path = "/users/{user_id}/factors", tag = "users", security(("bearer" = ["tessera.read"])), params(("user_id" = String, Path)),
    responses((status = 200, body = Vec<Factor>), (status = 404, body = ApiError)))]
async fn list_factors(State(svc): State<AppState>, _caller: Caller, Path(user_id): Path<String>) -> Result<Response, Failure> {
    find_user(&svc, &user_id).await?;
    let list = svc.store.list_factors(&user_id).await?;
    let shown: Vec<Factor> = list
        .into_iter()
        .map(|f| Factor { id: f.id, kind: f.kind.as_str().into(), name: f.name, created_at: f.created_at, last_used_at: f.last_used_at })
        .collect();
    Ok(Json(shown).into_response())
}

/// Reset the user's second factors (a lost phone): every factor and recovery code goes; they
/// sign in with their password and set up a new one (`tessera user reset-mfa`).
#[utoipa::path(delete, path = "/users/{user_id}/factors", tag = "users", security(("bearer" = ["tessera.admin"])), params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ApiError)))]
async fn reset_factors(State(svc): State<AppState>, caller: Caller, Path(user_id): Path<String>) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let current = find_user(&svc, &user_id).await?;
    acting(&svc, &who.actor()).reset_mfa(&current.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sign the user out everywhere: every browser session ends.
#[utoipa::path(delete, path = "/users/{user_id}/sessions", tag = "users", security(("bearer" = ["tessera.admin"])), params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ApiError)))]
async fn end_sessions(State(svc): State<AppState>, caller: Caller, Path(user_id): Path<String>) -> Result<Response, Failure> {
    let who = caller.writer()?;
    acting(&svc, &who.actor()).end_sessions(&user_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Which audit events to list (all filters optional).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// At or after (Unix seconds).
    pub since: Option<i64>,
    /// Before (Unix seconds).
    pub until: Option<i64>,
    /// Events of this kind.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// Only events with an id below this one (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Events per page, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// `client:ID`, `cli:LOGIN`, a user's id, or empty for the server itself.
    pub actor: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A page of audit events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// Audit events, newest first, filtered by time, type, user and client.
#[utoipa::path(get, path = "/audit-events", tag = "audit", security(("bearer" = ["tessera.read"])), params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ApiError), (status = 401, body = ApiError)))]
async fn list_audit_events(
    State(svc): State<AppState>,
    _caller: Caller,
    q: Result<axum::extract::Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let axum::extract::Query(q) = q.map_err(bad_query)?;
    let limit = page_limit(q.limit, 1000)?;
    let query =
        tessera_storage::AuditQuery { since: q.since, until: q.until, kind: q.kind, user_id: q.user_id, client_id: q.client_id, before_id: q.before, limit };
    let found = svc.store.find_audit_events(&query).await?;
    let next_before = if found.len() as i64 == limit { found.last().map(|e| e.id) } else { None };
    let events = found
        .into_iter()
        .map(|e| AuditEvent {
            id: e.id,
            at: e.at,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
            kind: e.kind,
            actor: e.actor,
            user_id: e.user_id,
            client_id: e.client_id,
        })
        .collect();
    Ok(Json(AuditPage { events, next_before }).into_response())
}

fn bad_json(e: axum::extract::rejection::JsonRejection) -> Failure {
    Failure(api_error(StatusCode::BAD_REQUEST, "invalid", e.body_text(), None))
}

fn bad_query(e: axum::extract::rejection::QueryRejection) -> Failure {
    Failure(api_error(StatusCode::BAD_REQUEST, "invalid", e.body_text(), None))
}

/// A page size: `limit` (default 100) within 1 to `max`.
fn page_limit(limit: Option<i64>, max: i64) -> Result<i64, Failure> {
    let limit = limit.unwrap_or(100);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(Failure(api_error(StatusCode::BAD_REQUEST, "invalid", format!("limit must be 1 to {max}"), Some("limit".into()))))
    }
}

/// A group and its members (by username).
#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
}

/// Every group.
#[utoipa::path(get, path = "/groups", tag = "groups", security(("bearer" = ["tessera.read"])), responses((status = 200, body = Vec<Group>)))]
async fn list_groups(State(svc): State<AppState>, _caller: Caller) -> Result<Response, Failure> {
    let list = svc.store.list_groups().await?;
    Ok(Json(list.into_iter().map(|g| Group { name: g.name, description: g.description, created_at: g.created_at, members: None }).collect::<Vec<_>>())
        .into_response())
}

/// A group to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
}

/// Create a group (409 when the name is taken).
#[utoipa::path(post, path = "/groups", tag = "groups", security(("bearer" = ["tessera.admin"])), request_body = NewGroup,
    responses((status = 201, body = Group), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn create_group(
    State(svc): State<AppState>,
    caller: Caller,
    body: Result<Json<NewGroup>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let Json(req) = body.map_err(bad_json)?;
    let g = acting(&svc, &who.actor()).create_group(&req.name, req.description.as_deref()).await.map_err(|e| match e {
        AdminError::Invalid(m) => Failure(api_error(StatusCode::BAD_REQUEST, "invalid", m, Some("name".into()))),
        other => Failure::from(other),
    })?;
    Ok((StatusCode::CREATED, Json(Group { name: g.name, description: g.description, created_at: g.created_at, members: Some(vec![]) })).into_response())
}

/// A group with its members.
#[utoipa::path(get, path = "/groups/{name}", tag = "groups", security(("bearer" = ["tessera.read"])), params(("name" = String, Path)),
    responses((status = 200, body = Group), (status = 404, body = ApiError)))]
async fn get_group(State(svc): State<AppState>, _caller: Caller, Path(name): Path<String>) -> Result<Response, Failure> {
    let g = svc.store.find_group(&name).await?.ok_or_else(|| Failure::from(AdminError::NotFound(format!("no group {name}"))))?;
    let members = admin::group_members(&*svc.store, &name).await?;
    Ok(Json(Group { name: g.name, description: g.description, created_at: g.created_at, members: Some(members) }).into_response())
}

/// Delete a group, its memberships and the roles granted to it.
#[utoipa::path(delete, path = "/groups/{name}", tag = "groups", security(("bearer" = ["tessera.admin"])), params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ApiError)))]
async fn delete_group(State(svc): State<AppState>, caller: Caller, Path(name): Path<String>) -> Result<Response, Failure> {
    let who = caller.writer()?;
    acting(&svc, &who.actor()).delete_group(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Add a user to a group (idempotent: 204 either way).
#[utoipa::path(put, path = "/groups/{name}/members/{username}", tag = "groups", security(("bearer" = ["tessera.admin"])),
    params(("name" = String, Path), ("username" = String, Path)), responses((status = 204), (status = 404, body = ApiError)))]
async fn add_member(State(svc): State<AppState>, caller: Caller, Path((name, username)): Path<(String, String)>) -> Result<Response, Failure> {
    let who = caller.writer()?;
    acting(&svc, &who.actor()).add_group_member(&name, &username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Remove a user from a group (204 either way).
#[utoipa::path(delete, path = "/groups/{name}/members/{username}", tag = "groups", security(("bearer" = ["tessera.admin"])),
    params(("name" = String, Path), ("username" = String, Path)), responses((status = 204), (status = 404, body = ApiError)))]
async fn remove_member(State(svc): State<AppState>, caller: Caller, Path((name, username)): Path<(String, String)>) -> Result<Response, Failure> {
    let who = caller.writer()?;
    acting(&svc, &who.actor()).remove_group_member(&name, &username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An API (resource server): its scopes and roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct Api {
    /// The RFC 8707 resource identifier: the access tokens' audience.
    pub identifier: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub scopes: Vec<tessera_storage::ApiScope>,
    #[schema(value_type = Object)]
    pub roles: Vec<tessera_storage::ApiRole>,
    pub created_at: i64,
}

impl From<tessera_storage::ApiRecord> for Api {
    fn from(a: tessera_storage::ApiRecord) -> Self {
        Self { identifier: a.identifier, name: a.name, scopes: a.scopes, roles: a.roles, created_at: a.created_at }
    }
}

/// Every API.
#[utoipa::path(get, path = "/apis", tag = "apis", security(("bearer" = ["tessera.read"])), responses((status = 200, body = Vec<Api>)))]
async fn list_apis(State(svc): State<AppState>, _caller: Caller) -> Result<Response, Failure> {
    Ok(Json(svc.store.list_apis().await?.into_iter().map(Api::from).collect::<Vec<_>>()).into_response())
}

/// A name and what it means, for a scope or a role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Described {
    pub name: String,
    pub description: String,
}

/// An API to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApi {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<Described>,
    #[serde(default)]
    pub roles: Vec<Described>,
}

/// Register an API (409 when the identifier is taken).
#[utoipa::path(post, path = "/apis", tag = "apis", security(("bearer" = ["tessera.admin"])), request_body = NewApi,
    responses((status = 201, body = Api), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn create_api(
    State(svc): State<AppState>,
    caller: Caller,
    body: Result<Json<NewApi>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let Json(req) = body.map_err(bad_json)?;
    let scopes = req.scopes.iter().map(|d| admin::parse_api_scope(&format!("{}={}", d.name, d.description))).collect::<Result<Vec<_>, _>>()?;
    let roles = req.roles.iter().map(|d| admin::parse_api_role(&format!("{}={}", d.name, d.description))).collect::<Result<Vec<_>, _>>()?;
    let a = Api::from(acting(&svc, &who.actor()).create_api(&req.identifier, &req.name, scopes, roles).await?);
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

/// Delete an API and the roles granted of it (`identifier` percent-encoded in the path).
#[utoipa::path(delete, path = "/apis/{identifier}", tag = "apis", security(("bearer" = ["tessera.admin"])), params(("identifier" = String, Path)),
    responses((status = 204), (status = 404, body = ApiError)))]
async fn delete_api(State(svc): State<AppState>, caller: Caller, Path(identifier): Path<String>) -> Result<Response, Failure> {
    let who = caller.writer()?;
    acting(&svc, &who.actor()).delete_api(&identifier).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn holder(kind: &str, who: String) -> Result<admin::RoleHolder, Failure> {
    match kind {
        "users" => Ok(admin::RoleHolder::User(who)),
        "groups" => Ok(admin::RoleHolder::Group(who)),
        _ => Err(Failure(api_error(StatusCode::NOT_FOUND, "not_found", "roles are granted to users or groups", None))),
    }
}

/// Grant a role of an API to a user (`users/USERNAME`) or a group (`groups/NAME`); idempotent.
#[utoipa::path(put, path = "/apis/{identifier}/roles/{role}/{kind}/{holder}", tag = "apis", security(("bearer" = ["tessera.admin"])),
    params(("identifier" = String, Path), ("role" = String, Path), ("kind" = String, Path, description = "users or groups"), ("holder" = String, Path)),
    responses((status = 204), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn grant_role(
    State(svc): State<AppState>,
    caller: Caller,
    Path((identifier, role, kind, who_)): Path<(String, String, String, String)>,
) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let h = holder(&kind, who_)?;
    acting(&svc, &who.actor()).grant_role(&identifier, &role, &h).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Take a role back (204 either way).
#[utoipa::path(delete, path = "/apis/{identifier}/roles/{role}/{kind}/{holder}", tag = "apis", security(("bearer" = ["tessera.admin"])),
    params(("identifier" = String, Path), ("role" = String, Path), ("kind" = String, Path), ("holder" = String, Path)),
    responses((status = 204), (status = 404, body = ApiError)))]
async fn revoke_role(
    State(svc): State<AppState>,
    caller: Caller,
    Path((identifier, role, kind, who_)): Path<(String, String, String, String)>,
) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let h = holder(&kind, who_)?;
    acting(&svc, &who.actor()).revoke_role(&identifier, &role, &h).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A signing key (public facts only).
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    pub created_at: i64,
    /// When it signs (or signed) from.
    pub use_after: i64,
}

/// The signing keys, published or signing.
#[utoipa::path(get, path = "/keys", tag = "keys", security(("bearer" = ["tessera.read"])), responses((status = 200, body = Vec<SigningKey>)))]
async fn list_keys(State(svc): State<AppState>, _caller: Caller) -> Result<Response, Failure> {
    let keys = svc.store.list_signing_keys().await?;
    Ok(Json(keys.into_iter().map(|k| SigningKey { kid: k.kid, alg: k.alg, created_at: k.created_at, use_after: k.use_after }).collect::<Vec<_>>())
        .into_response())
}

/// Start a new key per algorithm: published now, signing in an hour (the JWKS caches of
/// resource servers see it first); the old keys are retired once their tokens expired.
#[utoipa::path(post, path = "/keys/rotate", tag = "keys", security(("bearer" = ["tessera.admin"])), responses((status = 200, body = Vec<SigningKey>)))]
async fn rotate_keys(State(svc): State<AppState>, caller: Caller) -> Result<Response, Failure> {
    let who = caller.writer()?;
    let now = svc.now();
    let rotated = acting(&svc, &who.actor()).rotate_keys(svc.keys.kek(), &tessera_jose::Alg::ALL, 3_600).await?;
    svc.keys.reload(&*svc.store).await?;
    let created: Vec<SigningKey> =
        rotated.into_iter().map(|(kid, alg)| SigningKey { kid, alg: alg.as_str().into(), created_at: now, use_after: now + 3_600 }).collect();
    Ok(Json(created).into_response())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera admin API", description = "Manage Tessera. Call with an access token for the audience urn:tessera:admin: tessera.read reads, tessera.admin writes."),
    servers((url = "/admin/v1")),
    components(schemas(ApiError)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()));
    }
}

/// The API's routes (to nest at [`BASE`]) and its OpenAPI document.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_clients, create_client))
        .routes(routes!(get_client, patch_client, delete_client))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, patch_user, delete_user))
        .routes(routes!(list_consents))
        .routes(routes!(remove_consent))
        .routes(routes!(list_sessions, end_sessions))
        .routes(routes!(list_factors, reset_factors))
        .routes(routes!(list_audit_events))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, delete_group))
        .routes(routes!(add_member, remove_member))
        .routes(routes!(list_apis, create_api))
        .routes(routes!(delete_api))
        .routes(routes!(grant_role, revoke_role))
        .routes(routes!(list_keys))
        .routes(routes!(rotate_keys))
        .split_for_parts()
}

/// The routes with `GET /openapi.json` beside them; unknown paths are a JSON 404.
pub fn routes() -> axum::Router<AppState> {
    let (routes, doc) = router();
    let doc = serde_json::to_string(&doc).unwrap_or_default();
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], doc) }
            }),
        )
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "not_found", "no such admin API resource", None) })
}
