//! The SQL both backends run, once: column lists (in the order [`crate::row`] reads them), the
//! statements they share (`$N` parameters, PostgreSQL's form; [`crate::sqlite!`] rewrites one
//! to SQLite's `?N` at compile time), the argument encoders ([`Arg`], one per record), the
//! retention windows of the clean-up and the one-time values' consumes ([`OneTime`]).
//!
//! What is not here differs per database and stays in its backend: locking (SQLite's immediate
//! transactions, PostgreSQL's row and advisory locks), the throttle statements, the sign-in's
//! one-statement session change on PostgreSQL, and the clean-up's row addressing.

use crate::records::*;
use crate::row::{self, Mapper};
use crate::{Result, StoreError};

/// One statement argument, as both drivers bind it.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    /// An encoded column (JSON, a scope list).
    Owned(String),
    OptOwned(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Bytes(&'a [u8]),
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(e.to_string()))
}

fn oidc(o: &Option<OidcContext>) -> Result<Arg<'static>> {
    Ok(Arg::OptOwned(o.as_ref().map(to_json).transpose()?))
}

/// `$N` placeholders rewritten to SQLite's `?N` (same length); used by [`crate::sqlite!`].
#[doc(hidden)]
pub const fn to_sqlite<const N: usize>(sql: &str) -> [u8; N] {
    let b = sql.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if b[i] == b'$' && i + 1 < N && b[i + 1].is_ascii_digit() { b'?' } else { b[i] };
        i += 1;
    }
    out
}

/// A shared statement in SQLite's placeholder form (`$1` → `?1`), computed at compile time:
/// `sqlite!(sql::FIND_CLIENT)` is a `&'static str` constant.
#[macro_export]
macro_rules! sqlite {
    ($sql:expr) => {{
        const SQL: &str = $sql;
        const BYTES: [u8; SQL.len()] = $crate::sql::to_sqlite::<{ SQL.len() }>(SQL);
        const OUT: &str = match ::core::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("a statement is not UTF-8"),
        };
        OUT
    }};
}

// --- Column lists, in the order the row mappers read them. ---

macro_rules! client_columns {
    () => {
        "client_id, name, secret_hash, redirect_uris, scope, grant_types, token_endpoint_auth_method, created_at, post_logout_redirect_uris, \
         backchannel_logout_uri, id_token_signed_response_alg, subject_type, allowed_origins, require_dpop, jwks, require_mfa"
    };
}
macro_rules! user_columns {
    () => {
        "id, username, email, name, password_hash, created_at, profile, updated_at, disabled_at, is_admin, require_mfa, email_verified"
    };
}
macro_rules! api_columns {
    () => {
        "identifier, name, scopes, created_at, secret_hash, roles"
    };
}
macro_rules! key_columns {
    () => {
        "kid, alg, private_der, created_at, use_after"
    };
}
macro_rules! session_columns {
    () => {
        "id_hash, sid, user_id, amr, csrf_token, auth_time, created_at, expires_at, user_agent, address, last_used_at"
    };
}
macro_rules! pending_columns {
    () => {
        "id, session_hash, data, expires_at"
    };
}
macro_rules! code_columns {
    () => {
        "code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_given, code_challenge, scope, audience, auth_time, expires_at, used_at, oidc, dpop_jkt"
    };
}
macro_rules! refresh_columns {
    () => {
        "token_hash, family_id, client_id, user_id, scope, audience, auth_time, created_at, expires_at, used_at, revoked_at, family_expires_at, oidc, dpop_jkt"
    };
}
macro_rules! device_columns {
    () => {
        "device_code_hash, user_code, client_id, scope, audience, expires_at, \"interval\", last_polled_at, status, user_id, auth_time, oidc"
    };
}

pub const CLIENT_COLUMNS: &str = client_columns!();
pub const USER_COLUMNS: &str = user_columns!();
pub const API_COLUMNS: &str = api_columns!();
pub const KEY_COLUMNS: &str = key_columns!();
pub const SESSION_COLUMNS: &str = session_columns!();
pub const PENDING_COLUMNS: &str = pending_columns!();
pub const CODE_COLUMNS: &str = code_columns!();
pub const REFRESH_COLUMNS: &str = refresh_columns!();
pub const DEVICE_COLUMNS: &str = device_columns!();

// --- Encoders: a record's columns in the order of its column list. ---

/// [`UPDATE_CLIENT`]'s arguments: [`client_args`] without the secret and the creation time.
pub fn client_update_args(c: &ClientRecord) -> Result<[Arg<'_>; 14]> {
    let [id, name, _secret, redirects, scope, grants, method, _created, logout, bcl, alg, subject, origins, dpop, jwks, mfa] = client_args(c)?;
    Ok([id, name, redirects, scope, grants, method, logout, bcl, alg, subject, origins, dpop, jwks, mfa])
}

pub fn client_args(c: &ClientRecord) -> Result<[Arg<'_>; 16]> {
    Ok([
        Arg::Text(&c.client_id),
        Arg::Text(&c.name),
        Arg::OptText(c.secret_hash.as_deref()),
        Arg::Owned(to_json(&c.redirect_uris)?),
        Arg::Owned(c.scope.to_string()),
        Arg::Owned(to_json(&c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>())?),
        Arg::Text(c.token_endpoint_auth_method.as_str()),
        Arg::Int(c.created_at),
        Arg::Owned(to_json(&c.post_logout_redirect_uris)?),
        Arg::OptText(c.backchannel_logout_uri.as_deref()),
        Arg::OptText(c.id_token_signed_response_alg.as_deref()),
        Arg::Text(&c.subject_type),
        Arg::Owned(to_json(&c.allowed_origins)?),
        Arg::Bool(c.require_dpop),
        Arg::OptOwned(c.jwks.as_ref().map(to_json).transpose()?),
        Arg::Bool(c.require_mfa),
    ])
}

pub fn user_args(u: &UserRecord) -> Result<[Arg<'_>; 12]> {
    Ok([
        Arg::Text(&u.id),
        Arg::Text(&u.username),
        Arg::OptText(u.email.as_deref()),
        Arg::OptText(u.name.as_deref()),
        Arg::Text(&u.password_hash),
        Arg::Int(u.created_at),
        Arg::Owned(to_json(&u.profile)?),
        Arg::Int(u.updated_at),
        Arg::OptInt(u.disabled_at),
        Arg::Bool(u.is_admin),
        Arg::Bool(u.require_mfa),
        Arg::Bool(u.email_verified),
    ])
}

/// [`INSERT_FACTOR`]'s arguments.
pub fn factor_args(f: &FactorRecord) -> [Arg<'_>; 9] {
    [
        Arg::Text(&f.id),
        Arg::Text(&f.user_id),
        Arg::Text(f.kind.as_str()),
        Arg::Text(&f.name),
        Arg::Bytes(&f.secret),
        Arg::OptText(f.credential_id.as_deref()),
        Arg::OptInt(f.last_step),
        Arg::Int(f.created_at),
        Arg::OptInt(f.last_used_at),
    ]
}

/// [`INSERT_USER_TOKEN`]'s arguments.
pub fn user_token_args(t: &UserTokenRecord) -> [Arg<'_>; 6] {
    [Arg::Text(&t.token_hash), Arg::Text(&t.purpose), Arg::Text(&t.user_id), Arg::Text(&t.data), Arg::Int(t.created_at), Arg::Int(t.expires_at)]
}

/// [`UPDATE_USER`]'s arguments.
pub fn user_update_args(u: &UserRecord) -> Result<[Arg<'_>; 5]> {
    Ok([Arg::OptText(u.email.as_deref()), Arg::OptText(u.name.as_deref()), Arg::Owned(to_json(&u.profile)?), Arg::Int(u.updated_at), Arg::Text(&u.id)])
}

pub fn api_args(a: &ApiRecord) -> Result<[Arg<'_>; 6]> {
    Ok([
        Arg::Text(&a.identifier),
        Arg::Text(&a.name),
        Arg::Owned(to_json(&a.scopes)?),
        Arg::Int(a.created_at),
        Arg::OptText(a.secret_hash.as_deref()),
        Arg::Owned(to_json(&a.roles)?),
    ])
}

pub fn group_args(g: &GroupRecord) -> [Arg<'_>; 3] {
    [Arg::Text(&g.name), Arg::Text(&g.description), Arg::Int(g.created_at)]
}

/// [`INSERT_ROLE_ASSIGNMENT`] / [`DELETE_ROLE_ASSIGNMENT`]'s arguments.
pub fn role_assignment_args(r: &RoleAssignment) -> [Arg<'_>; 4] {
    let (kind, assignee) = r.assignee.parts();
    [Arg::Text(&r.api), Arg::Text(&r.role), Arg::Text(kind), Arg::Text(assignee)]
}

pub fn key_args(k: &KeyRecord) -> [Arg<'_>; 5] {
    [Arg::Text(&k.kid), Arg::Text(&k.alg), Arg::Bytes(&k.private_der), Arg::Int(k.created_at), Arg::Int(k.use_after)]
}

/// The conditional key insert for `unless` ([`INSERT_KEY_UNLESS_SIGNING`] or
/// [`INSERT_KEY_UNLESS_CREATED`]; `sqlite`: in SQLite's form) and its arguments.
pub fn key_unless(k: &KeyRecord, unless: ExistingKey, sqlite: bool) -> (&'static str, [Arg<'_>; 6]) {
    let (sql, at) = match (unless, sqlite) {
        (ExistingKey::SignsAt(t), false) => (INSERT_KEY_UNLESS_SIGNING, t),
        (ExistingKey::SignsAt(t), true) => (crate::sqlite!(INSERT_KEY_UNLESS_SIGNING), t),
        (ExistingKey::CreatedSince(t), false) => (INSERT_KEY_UNLESS_CREATED, t),
        (ExistingKey::CreatedSince(t), true) => (crate::sqlite!(INSERT_KEY_UNLESS_CREATED), t),
    };
    let [a, b, c, d, e] = key_args(k);
    (sql, [a, b, c, d, e, Arg::Int(at)])
}

pub fn session_args(s: &SessionRecord) -> [Arg<'_>; 11] {
    [
        Arg::Text(&s.id_hash),
        Arg::Text(&s.sid),
        Arg::OptText(s.user_id.as_deref()),
        Arg::OptText(s.amr.as_deref()),
        Arg::Text(&s.csrf_token),
        Arg::OptInt(s.auth_time),
        Arg::Int(s.created_at),
        Arg::Int(s.expires_at),
        Arg::OptText(s.user_agent.as_deref()),
        Arg::OptText(s.address.as_deref()),
        Arg::Int(s.last_used_at),
    ]
}

pub fn pending_args(p: &PendingRequestRecord) -> [Arg<'_>; 4] {
    [Arg::Text(&p.id), Arg::Text(&p.session_hash), Arg::Text(&p.data), Arg::Int(p.expires_at)]
}

pub fn code_args(c: &CodeRecord) -> Result<[Arg<'_>; 14]> {
    Ok([
        Arg::Text(&c.code_hash),
        Arg::Text(&c.grant_id),
        Arg::Text(&c.client_id),
        Arg::Text(&c.user_id),
        Arg::Text(&c.redirect_uri),
        Arg::Bool(c.redirect_uri_given),
        Arg::OptText(c.code_challenge.as_deref()),
        Arg::Owned(c.scope.to_string()),
        Arg::Owned(to_json(&c.audience)?),
        Arg::Int(c.auth_time),
        Arg::Int(c.expires_at),
        Arg::OptInt(c.used_at),
        oidc(&c.oidc)?,
        Arg::OptText(c.dpop_jkt.as_deref()),
    ])
}

pub fn refresh_args(t: &RefreshTokenRecord) -> Result<[Arg<'_>; 14]> {
    Ok([
        Arg::Text(&t.token_hash),
        Arg::Text(&t.family_id),
        Arg::Text(&t.client_id),
        Arg::Text(&t.user_id),
        Arg::Owned(t.scope.to_string()),
        Arg::Owned(to_json(&t.audience)?),
        Arg::Int(t.auth_time),
        Arg::Int(t.created_at),
        Arg::Int(t.expires_at),
        Arg::OptInt(t.used_at),
        Arg::OptInt(t.revoked_at),
        Arg::Int(t.family_expires_at),
        oidc(&t.oidc)?,
        Arg::OptText(t.dpop_jkt.as_deref()),
    ])
}

pub fn device_args(d: &DeviceCodeRecord) -> Result<[Arg<'_>; 12]> {
    Ok([
        Arg::Text(&d.device_code_hash),
        Arg::Text(&d.user_code),
        Arg::Text(&d.client_id),
        Arg::Owned(d.scope.to_string()),
        Arg::Owned(to_json(&d.audience)?),
        Arg::Int(d.expires_at),
        Arg::Int(d.interval),
        Arg::OptInt(d.last_polled_at),
        Arg::Text(d.status.as_str()),
        Arg::OptText(d.user_id.as_deref()),
        Arg::OptInt(d.auth_time),
        oidc(&d.oidc)?,
    ])
}

/// [`DECIDE_DEVICE_CODE`]'s arguments.
pub fn device_decision_args<'a>(
    user_code: &'a str,
    approve: bool,
    user_id: &'a str,
    auth_time: i64,
    ctx: Option<&OidcContext>,
    now: i64,
) -> Result<[Arg<'a>; 6]> {
    let status = if approve { DeviceCodeStatus::Approved } else { DeviceCodeStatus::Denied };
    Ok([Arg::Text(status.as_str()), Arg::Text(user_id), Arg::Int(auth_time), Arg::OptOwned(ctx.map(to_json).transpose()?), Arg::Text(user_code), Arg::Int(now)])
}

// --- Statements. ---

pub const INSERT_CLIENT: &str =
    concat!("INSERT INTO clients (", client_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)");
/// A client's registration changed: [`client_update_args`] (the secret and the creation time
/// stay).
pub const UPDATE_CLIENT: &str = "UPDATE clients SET name = $2, redirect_uris = $3, scope = $4, grant_types = $5, token_endpoint_auth_method = $6, \
     post_logout_redirect_uris = $7, backchannel_logout_uri = $8, id_token_signed_response_alg = $9, subject_type = $10, allowed_origins = $11, \
     require_dpop = $12, jwks = $13, require_mfa = $14 WHERE client_id = $1";
pub const FIND_CLIENT: &str = concat!("SELECT ", client_columns!(), " FROM clients WHERE client_id = $1");
pub const LIST_CLIENTS: &str = concat!("SELECT ", client_columns!(), " FROM clients ORDER BY created_at, client_id");
/// The readiness check: any answer means the database is there.
pub const PING: &str = "SELECT 1";

pub const UPDATE_CLIENT_SECRET: &str = "UPDATE clients SET secret_hash = $1 WHERE client_id = $2";
pub const DELETE_CLIENT: &str = "DELETE FROM clients WHERE client_id = $1";

pub const INSERT_USER: &str = concat!("INSERT INTO users (", user_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
/// `$1` id, `$2` whether every sign-in needs a second factor; returns the id.
pub const UPDATE_USER_REQUIRE_MFA: &str = "UPDATE users SET require_mfa = $2 WHERE id = $1 RETURNING id";
/// `$1` id, `$2` the email address a verification link was sent to: verified only while it is
/// still the user's address; returns the id.
pub const UPDATE_USER_EMAIL_VERIFIED: &str = "UPDATE users SET email_verified = TRUE WHERE id = $1 AND email = $2 RETURNING id";
/// `$1` id, `$2` Argon2 hash: a rehash at sign-in (new parameters), the password unchanged, so
/// nothing else ends; only while the hash is still `$3`.
pub const UPDATE_PASSWORD_HASH: &str = "UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3";
/// `$1` id, `$2` whether an administrator; returns the id.
pub const UPDATE_USER_ADMIN: &str = "UPDATE users SET is_admin = $2 WHERE id = $1 RETURNING id";
/// `$1` id, `$2` when disabled (NULL: enabled again); returns the id.
pub const UPDATE_USER_DISABLED: &str = "UPDATE users SET disabled_at = $2 WHERE id = $1 RETURNING id";
pub const FIND_USER_BY_USERNAME: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE username = $1");
pub const FIND_USER: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
/// `$1` an email address; ASCII case folded on both sides (SQLite's `lower`).
pub const FIND_USERS_BY_EMAIL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE lower(email) = lower($1) ORDER BY created_at, id LIMIT 10");
pub const LIST_USERS: &str = concat!("SELECT ", user_columns!(), " FROM users ORDER BY username");
/// A changed email address is no longer verified.
pub const UPDATE_USER: &str = "UPDATE users SET email_verified = (email_verified AND email IS NOT DISTINCT FROM $1), email = $1, name = $2, profile = $3, \
     updated_at = $4 WHERE id = $5";

// Ending a user's access (RFC 9700 §4.14.2). Each backend runs these in one transaction, the
// first statement on the user's row.
/// `$1` hash, `$2` username; returns the user's id.
pub const UPDATE_PASSWORD: &str = "UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id";
/// `$1` username; returns the user's id.
pub const DELETE_USER: &str = "DELETE FROM users WHERE username = $1 RETURNING id";
/// End every session of user `$1` but `$2` (an id hash, or NULL), with the sessions' pending
/// requests and client lists.
pub const END_SESSIONS: [&str; 3] = [
    "DELETE FROM pending_requests WHERE session_hash IN (SELECT id_hash FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2)",
    "DELETE FROM session_clients WHERE sid IN (SELECT sid FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2 AND sid <> '')",
    "DELETE FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2",
];
/// A new password: user `$1`'s refresh tokens revoked at `$2`.
pub const REVOKE_USER_REFRESH_TOKENS: &str = "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
/// A new password: user `$1`'s unredeemed codes and approved device codes go.
pub const PASSWORD_DELETES: [&str; 2] =
    ["DELETE FROM codes WHERE user_id = $1 AND used_at IS NULL", "DELETE FROM device_codes WHERE user_id = $1 AND status = 'approved'"];
/// A deletion: everything else of user `$1`.
pub const DELETE_USER_ROWS: [&str; 9] = [
    "DELETE FROM user_factors WHERE user_id = $1",
    "DELETE FROM recovery_codes WHERE user_id = $1",
    "DELETE FROM user_tokens WHERE user_id = $1",
    "DELETE FROM refresh_tokens WHERE user_id = $1",
    "DELETE FROM codes WHERE user_id = $1",
    "DELETE FROM device_codes WHERE user_id = $1",
    "DELETE FROM consents WHERE user_id = $1",
    "DELETE FROM group_members WHERE user_id = $1",
    "DELETE FROM role_assignments WHERE kind = 'user' AND assignee = $1",
];

pub const INSERT_API: &str = concat!("INSERT INTO apis (", api_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6)");
pub const LIST_APIS: &str = concat!("SELECT ", api_columns!(), " FROM apis ORDER BY created_at, identifier");
pub const UPDATE_API_SECRET: &str = "UPDATE apis SET secret_hash = $1 WHERE identifier = $2";
pub const DELETE_API: &str = "DELETE FROM apis WHERE identifier = $1";
/// With an API (`$1`) go the roles granted of it: an API made again later starts with none.
pub const DELETE_API_ROWS: [&str; 1] = ["DELETE FROM role_assignments WHERE api = $1"];

pub const INSERT_GROUP: &str = "INSERT INTO groups (name, description, created_at) VALUES ($1, $2, $3)";
pub const FIND_GROUP: &str = "SELECT name, description, created_at FROM groups WHERE name = $1";
pub const LIST_GROUPS: &str = "SELECT name, description, created_at FROM groups ORDER BY name";
pub const DELETE_GROUP: &str = "DELETE FROM groups WHERE name = $1";
/// With a group (`$1`) go its memberships and the roles granted to it: a group made again later
/// starts empty.
pub const DELETE_GROUP_ROWS: [&str; 2] =
    ["DELETE FROM group_members WHERE group_name = $1", "DELETE FROM role_assignments WHERE kind = 'group' AND assignee = $1"];
/// `$1` group, `$2` user id: a row only when both exist (checked in the statement, so a
/// membership never outlives a group or user deleted meanwhile) and it is new.
pub const INSERT_GROUP_MEMBER: &str = "INSERT INTO group_members (group_name, user_id) SELECT $1, $2 \
     WHERE EXISTS (SELECT 1 FROM groups WHERE name = $1) AND EXISTS (SELECT 1 FROM users WHERE id = $2) \
     ON CONFLICT (group_name, user_id) DO NOTHING";
pub const DELETE_GROUP_MEMBER: &str = "DELETE FROM group_members WHERE group_name = $1 AND user_id = $2";
pub const LIST_GROUP_MEMBERS: &str = "SELECT user_id FROM group_members WHERE group_name = $1 ORDER BY user_id";
pub const LIST_USER_GROUPS: &str = "SELECT group_name FROM group_members WHERE user_id = $1 ORDER BY group_name";
/// [`role_assignment_args`]: a row only when the assignee exists and the grant is new.
pub const INSERT_ROLE_ASSIGNMENT: &str = "INSERT INTO role_assignments (api, role, kind, assignee) SELECT $1, $2, $3, $4 \
     WHERE EXISTS (SELECT 1 FROM apis WHERE identifier = $1) \
     AND (($3 = 'user' AND EXISTS (SELECT 1 FROM users WHERE id = $4)) OR ($3 = 'group' AND EXISTS (SELECT 1 FROM groups WHERE name = $4))) \
     ON CONFLICT (api, role, kind, assignee) DO NOTHING";
pub const DELETE_ROLE_ASSIGNMENT: &str = "DELETE FROM role_assignments WHERE api = $1 AND role = $2 AND kind = $3 AND assignee = $4";
pub const LIST_ROLE_ASSIGNMENTS: &str = "SELECT api, role, kind, assignee FROM role_assignments WHERE api = $1 ORDER BY role, kind, assignee";
/// The roles of API `$1` user `$2` holds, directly or through a group.
pub const FIND_USER_ROLES: &str = "SELECT DISTINCT role FROM role_assignments WHERE api = $1 \
     AND ((kind = 'user' AND assignee = $2) OR (kind = 'group' AND assignee IN (SELECT group_name FROM group_members WHERE user_id = $2))) ORDER BY role";

pub const INSERT_KEY: &str = concat!("INSERT INTO signing_keys (", key_columns!(), ") VALUES ($1, $2, $3, $4, $5)");
/// The key, unless one of its algorithm signs at `$6`. Run under the backend's lock.
pub const INSERT_KEY_UNLESS_SIGNING: &str = concat!(
    "INSERT INTO signing_keys (",
    key_columns!(),
    ") SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND use_after <= $6)"
);
/// The key, unless one of its algorithm was created at or after `$6`. Run under the backend's lock.
pub const INSERT_KEY_UNLESS_CREATED: &str = concat!(
    "INSERT INTO signing_keys (",
    key_columns!(),
    ") SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND created_at >= $6)"
);
pub const LIST_KEYS: &str = concat!("SELECT ", key_columns!(), " FROM signing_keys ORDER BY created_at, kid");
pub const DELETE_KEY: &str = "DELETE FROM signing_keys WHERE kid = $1";
/// `$1` new, `$2` kid, `$3` expected: compare and swap.
pub const UPDATE_KEY_DER: &str = "UPDATE signing_keys SET private_der = $1 WHERE kid = $2 AND private_der = $3";

pub const INSERT_SESSION: &str = concat!("INSERT INTO sessions (", session_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
pub const FIND_SESSION: &str = concat!("SELECT ", session_columns!(), " FROM sessions WHERE id_hash = $1 AND expires_at > $2");
pub const FIND_SESSION_BY_SID: &str = concat!("SELECT ", session_columns!(), " FROM sessions WHERE sid = $1 AND expires_at > $2");
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";
/// A session's last use at `$2`, unless it was recorded less than a minute before.
pub const TOUCH_SESSION: &str = "UPDATE sessions SET last_used_at = $2 WHERE id_hash = $1 AND last_used_at < $2 - 60";
pub const UPSERT_SESSION_CLIENT: &str =
    "INSERT INTO session_clients (sid, client_id, at) VALUES ($1, $2, $3) ON CONFLICT (sid, client_id) DO UPDATE SET at = excluded.at";
pub const LIST_SESSION_CLIENTS: &str = "SELECT client_id FROM session_clients WHERE sid = $1 ORDER BY at, client_id";
pub const INSERT_PENDING: &str = concat!("INSERT INTO pending_requests (", pending_columns!(), ") VALUES ($1, $2, $3, $4)");
/// A pending request stored, or updated in place (sign-in moves it to the new session).
pub const UPSERT_PENDING: &str = concat!(
    "INSERT INTO pending_requests (",
    pending_columns!(),
    ") VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET session_hash = excluded.session_hash, data = excluded.data, expires_at = excluded.expires_at"
);
pub const FIND_PENDING: &str = concat!("SELECT ", pending_columns!(), " FROM pending_requests WHERE id = $1 AND expires_at > $2");
pub const DELETE_PENDING: &str = "DELETE FROM pending_requests WHERE id = $1";

pub const FIND_CONSENT: &str = "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2";
pub const LIST_CONSENTS: &str = "SELECT client_id, scope, updated_at FROM consents WHERE user_id = $1 ORDER BY updated_at DESC, client_id";
/// A consent removed (`$1` user, `$2` client): first its codes not yet redeemed, then the row.
pub const DELETE_CONSENT: [&str; 2] =
    ["DELETE FROM codes WHERE user_id = $1 AND client_id = $2 AND used_at IS NULL", "DELETE FROM consents WHERE user_id = $1 AND client_id = $2"];
pub const LIST_GRANT_FAMILIES: &str = "SELECT family_id FROM refresh_tokens WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL \
     UNION SELECT grant_id FROM codes WHERE user_id = $1 AND client_id = $2";
pub const LIST_USER_SESSIONS: &str = concat!("SELECT ", session_columns!(), " FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC");
pub const UPSERT_CONSENT: &str = "INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at";

pub const INSERT_CODE: &str = concat!("INSERT INTO codes (", code_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)");
pub const FIND_CODE: &str = concat!("SELECT ", code_columns!(), " FROM codes WHERE code_hash = $1");
/// The atomic consume of an authorization code: `$1` now, `$2` hash.
pub const TAKE_CODE: &str = concat!("UPDATE codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL RETURNING ", code_columns!());

/// Store a refresh token. One created in a family that was revoked meanwhile (a replay racing
/// the redemption that issues it) is born revoked.
pub const INSERT_REFRESH: &str = concat!(
    "INSERT INTO refresh_tokens (",
    refresh_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, (SELECT f.revoked_at FROM revoked_families f WHERE f.family_id = $2)), $12, $13, $14)"
);
pub const FIND_REFRESH: &str = concat!("SELECT ", refresh_columns!(), " FROM refresh_tokens WHERE token_hash = $1");
/// The atomic consume of a refresh token (`$1` now, `$2` hash, `$3` grace seconds): unused (or
/// used within the grace window), not revoked, not expired, and its family not revoked.
pub const TAKE_REFRESH: &str = concat!(
    "UPDATE refresh_tokens SET used_at = COALESCE(used_at, $1) WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1 AND family_expires_at > $1 \
     AND (used_at IS NULL OR ($3 > 0 AND used_at >= $1 - $3)) \
     AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = refresh_tokens.family_id) RETURNING ",
    refresh_columns!()
);
/// Revoking a family (`$1` now, `$2` family), in one transaction: the live tokens (counted),
/// then the used ones, then the family's record.
pub const REVOKE_FAMILY_LIVE: &str = "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL AND used_at IS NULL";
pub const REVOKE_FAMILY_REST: &str = "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL";
/// `$1` family, `$2` now, `$3` kept until ([`REVOKED_FAMILY_KEPT_SECS`] after now).
pub const INSERT_REVOKED_FAMILY: &str =
    "INSERT INTO revoked_families (family_id, revoked_at, expires_at) VALUES ($1, $2, $3) ON CONFLICT (family_id) DO NOTHING";
/// A revoked family is remembered a day: longer than any access token of the family lives.
pub const REVOKED_FAMILY_KEPT_SECS: i64 = 86_400;

pub const INSERT_REVOKED_TOKEN: &str = "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
pub const IS_REVOKED: &str =
    "SELECT (EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1) OR EXISTS (SELECT 1 FROM revoked_families WHERE family_id = $2)) AS revoked";

/// A JWT seen, by an id that names what it is (`$1` id, `$2` until, `$3` now): one row changed
/// the first time (or once an earlier entry expired), none for a replay. DPoP proofs (RFC 9449
/// §11.1) and JWT bearer assertions (RFC 7523 §3 item 7) share it.
pub const INSERT_SEEN_JWT: &str = "INSERT INTO dpop_proofs (id, expires_at) VALUES ($1, $2) \
     ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE dpop_proofs.expires_at <= $3";
pub const INSERT_DPOP_NONCE: &str = "INSERT INTO dpop_nonces (nonce_hash, expires_at) VALUES ($1, $2) ON CONFLICT (nonce_hash) DO NOTHING";
pub const FIND_DPOP_NONCE: &str = "SELECT EXISTS (SELECT 1 FROM dpop_nonces WHERE nonce_hash = $1 AND expires_at > $2) AS valid";

pub const INSERT_DEVICE_CODE: &str = concat!("INSERT INTO device_codes (", device_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
pub const FIND_DEVICE_CODE: &str = concat!("SELECT ", device_columns!(), " FROM device_codes WHERE device_code_hash = $1");
pub const FIND_DEVICE_CODE_BY_USER_CODE: &str = concat!("SELECT ", device_columns!(), " FROM device_codes WHERE user_code = $1 AND expires_at > $2");
/// A decision on a pending, unexpired authorization ([`device_decision_args`]).
pub const DECIDE_DEVICE_CODE: &str = "UPDATE device_codes SET status = $1, user_id = $2, auth_time = $3, oidc = COALESCE($4, oidc) \
     WHERE user_code = $5 AND status = 'pending' AND expires_at > $6";
/// `$1` now, `$2` interval, `$3` hash.
pub const UPDATE_DEVICE_POLL: &str = "UPDATE device_codes SET last_polled_at = $1, \"interval\" = $2 WHERE device_code_hash = $3";
/// The atomic consume of an approved, unexpired device code: `$1` hash, `$2` now.
pub const TAKE_DEVICE_CODE: &str = concat!(
    "UPDATE device_codes SET status = 'consumed' WHERE device_code_hash = $1 AND status = 'approved' AND expires_at > $2 RETURNING ",
    device_columns!()
);

pub const INSERT_AUDIT_EVENT: &str = "INSERT INTO audit_events (kind, detail, at) VALUES ($1, $2, $3)";
pub const LIST_AUDIT_EVENTS: &str = "SELECT detail FROM audit_events WHERE kind = $1 ORDER BY id";
pub const RECORD_AUDIT_EVENT: &str = "INSERT INTO audit_events (kind, detail, at, actor, user_id, client_id) VALUES ($1, $2, $3, $4, $5, $6)";
/// [`audit_query_args`]; newest first.
pub const FIND_AUDIT_EVENTS: &str = "SELECT id, kind, at, actor, user_id, client_id, detail FROM audit_events \
     WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2) AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR user_id = $4) \
     AND ($5 IS NULL OR client_id = $5) AND ($6 IS NULL OR id < $6) ORDER BY id DESC LIMIT $7";
/// The retention: at most `$2` events older than `$1`, oldest first.
pub const DELETE_AUDIT_EVENTS_BEFORE: &str = "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)";

pub fn audit_args<'a>(e: &NewAuditEvent<'a>, now: i64) -> [Arg<'a>; 6] {
    [Arg::Text(e.kind), Arg::Text(e.detail), Arg::Int(now), Arg::Text(e.actor), Arg::Text(e.user_id.unwrap_or("")), Arg::Text(e.client_id.unwrap_or(""))]
}

pub fn audit_query_args(q: &AuditQuery) -> [Arg<'_>; 7] {
    [
        Arg::OptInt(q.since),
        Arg::OptInt(q.until),
        Arg::OptText(q.kind.as_deref()),
        Arg::OptText(q.user_id.as_deref()),
        Arg::OptText(q.client_id.as_deref()),
        Arg::OptInt(q.before_id),
        Arg::Int(q.limit.clamp(1, 1000)),
    ]
}

/// A one-time value's consume: the statement that takes it (returning its row), the statement
/// that finds it when the take did not (to tell used from unknown), and how each row reads.
#[derive(Debug)]
pub struct OneTime<T> {
    pub take: &'static str,
    pub find: &'static str,
    /// The taken row as it was before the take.
    pub taken: Mapper<T>,
    pub found: Mapper<T>,
}

pub const CODE: OneTime<CodeRecord> = OneTime { take: TAKE_CODE, find: FIND_CODE, taken: row::code_before_take, found: row::code_from_row };
pub const REFRESH: OneTime<RefreshTokenRecord> = OneTime { take: TAKE_REFRESH, find: FIND_REFRESH, taken: row::refresh_from_row, found: row::refresh_from_row };
pub const DEVICE_CODE: OneTime<DeviceCodeRecord> =
    OneTime { take: TAKE_DEVICE_CODE, find: FIND_DEVICE_CODE, taken: row::device_before_take, found: row::device_from_row };

/// [`CODE`], [`REFRESH`] and [`DEVICE_CODE`] in SQLite's placeholder form.
pub mod sqlite {
    use super::*;
    pub const CODE: OneTime<CodeRecord> = OneTime { take: crate::sqlite!(TAKE_CODE), find: crate::sqlite!(FIND_CODE), ..super::CODE };
    pub const REFRESH: OneTime<RefreshTokenRecord> = OneTime { take: crate::sqlite!(TAKE_REFRESH), find: crate::sqlite!(FIND_REFRESH), ..super::REFRESH };
    pub const DEVICE_CODE: OneTime<DeviceCodeRecord> =
        OneTime { take: crate::sqlite!(TAKE_DEVICE_CODE), find: crate::sqlite!(FIND_DEVICE_CODE), ..super::DEVICE_CODE };
}

/// What the clean-up deletes: rows of `table` whose `column` is more than `keep_secs` before
/// now, addressed by `key` (the primary key; SQLite uses its rowid).
#[derive(Debug, Clone, Copy)]
pub struct Expiry {
    pub table: &'static str,
    pub key: &'static str,
    pub column: &'static str,
    pub keep_secs: i64,
}

/// The retention windows ([`crate::MaintenanceStore::delete_expired`]).
pub const EXPIRED: [Expiry; 13] = [
    // Used or expired codes are kept an hour, for replay detection.
    Expiry { table: "codes", key: "code_hash", column: "expires_at", keep_secs: 3600 },
    Expiry { table: "sessions", key: "id_hash", column: "expires_at", keep_secs: 0 },
    Expiry { table: "pending_requests", key: "id", column: "expires_at", keep_secs: 0 },
    Expiry { table: "device_codes", key: "device_code_hash", column: "expires_at", keep_secs: 3600 },
    Expiry { table: "refresh_tokens", key: "token_hash", column: "family_expires_at", keep_secs: 0 },
    Expiry { table: "revoked_tokens", key: "jti", column: "expires_at", keep_secs: 0 },
    Expiry { table: "revoked_families", key: "family_id", column: "expires_at", keep_secs: 0 },
    Expiry { table: "login_failures", key: "id", column: "at", keep_secs: 86_400 },
    // A day after its last failure a throttle key has started over under any rule whose delay
    // and reset_after add up to less (the server's: 15 + 15 minutes at most).
    Expiry { table: "throttles", key: "key", column: "last_at", keep_secs: 86_400 },
    Expiry { table: "dpop_proofs", key: "id", column: "expires_at", keep_secs: 0 },
    Expiry { table: "dpop_nonces", key: "nonce_hash", column: "expires_at", keep_secs: 0 },
    Expiry { table: "user_tokens", key: "token_hash", column: "expires_at", keep_secs: 0 },
    Expiry { table: "session_clients", key: "sid, client_id", column: "at", keep_secs: 2_592_000 },
];

/// One bounded clean-up statement (`$1` now, `$2` batch; `?1`, `?2` for SQLite), rows
/// addressed by `key`. Built once, when a backend starts.
pub fn expiry_statement(e: &Expiry, key: &str, sqlite: bool) -> String {
    let (now, batch) = if sqlite { ("?1", "?2") } else { ("$1", "$2") };
    let cutoff = if e.keep_secs == 0 { now.to_string() } else { format!("{now} - {}", e.keep_secs) };
    format!("DELETE FROM {t} WHERE ({key}) IN (SELECT {key} FROM {t} WHERE {c} < {cutoff} LIMIT {batch})", t = e.table, c = e.column)
}

// --- Second factors, recovery codes and users' one-time tokens (issue 15). ---

macro_rules! factor_columns {
    () => {
        "id, user_id, kind, name, secret, credential_id, last_step, created_at, last_used_at"
    };
}
pub const FACTOR_COLUMNS: &str = factor_columns!();
pub const INSERT_FACTOR: &str = concat!("INSERT INTO user_factors (", factor_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
pub const LIST_FACTORS: &str = concat!("SELECT ", factor_columns!(), " FROM user_factors WHERE user_id = $1 ORDER BY created_at, id");
pub const FIND_FACTOR_BY_CREDENTIAL: &str = concat!("SELECT ", factor_columns!(), " FROM user_factors WHERE credential_id = $1");
pub const DELETE_FACTOR: &str = "DELETE FROM user_factors WHERE user_id = $1 AND id = $2";
/// RFC 6238 §5.2: time step `$2` of factor `$1` accepted at `$3`, only if no later or equal
/// step was: of concurrent presentations of one code exactly one gets its row back.
pub const UPDATE_FACTOR_STEP: &str =
    "UPDATE user_factors SET last_step = $2, last_used_at = $3 WHERE id = $1 AND (last_step IS NULL OR last_step < $2) RETURNING id";
/// A passkey's credential after a sign-in (its signature counter), only if it is still `$4`
/// (compare and swap: a cloned authenticator racing the real one loses).
pub const UPDATE_FACTOR_SECRET: &str = "UPDATE user_factors SET secret = $2, last_used_at = $3 WHERE id = $1 AND secret = $4 RETURNING id";
pub const DELETE_FACTORS: [&str; 2] = ["DELETE FROM user_factors WHERE user_id = $1", "DELETE FROM recovery_codes WHERE user_id = $1"];
pub const DELETE_RECOVERY_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = $1";
pub const INSERT_RECOVERY_CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)";
/// A recovery code's one use: of concurrent takes exactly one gets its row back.
pub const TAKE_RECOVERY_CODE: &str = "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING user_id";
pub const COUNT_RECOVERY_CODES: &str = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";

macro_rules! user_token_columns {
    () => {
        "token_hash, purpose, user_id, data, created_at, expires_at"
    };
}
pub const USER_TOKEN_COLUMNS: &str = user_token_columns!();
pub const INSERT_USER_TOKEN: &str = concat!("INSERT INTO user_tokens (", user_token_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6)");
pub const FIND_USER_TOKEN: &str = concat!("SELECT ", user_token_columns!(), " FROM user_tokens WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3");
/// A token's one use: deleted and returned only while unexpired; of concurrent takes exactly
/// one gets it.
pub const TAKE_USER_TOKEN: &str =
    concat!("DELETE FROM user_tokens WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3 RETURNING ", user_token_columns!());
pub const DELETE_USER_TOKENS: &str = "DELETE FROM user_tokens WHERE user_id = $1 AND purpose = $2";

// --- Configuration as code (`tessera apply`, issue 16). ---

/// `$1` API identifier: its name, scopes and roles.
pub const UPDATE_API: &str = "UPDATE apis SET name = $2, scopes = $3, roles = $4 WHERE identifier = $1";
pub const UPDATE_GROUP: &str = "UPDATE groups SET description = $2 WHERE name = $1";
pub const INSERT_APPLIED: &str = "INSERT INTO applied_objects (kind, key) VALUES ($1, $2) ON CONFLICT (kind, key) DO NOTHING";
pub const DELETE_APPLIED: &str = "DELETE FROM applied_objects WHERE kind = $1 AND key = $2";
pub const LIST_APPLIED: &str = "SELECT kind, key FROM applied_objects ORDER BY kind, key";

/// The statements, in order, that carry out one change of an apply (both backends run them in
/// the one transaction of [`crate::ConfigStore::apply_config`]).
pub fn config_statements(c: &ConfigChange) -> Result<Vec<(&'static str, Vec<Arg<'_>>)>> {
    fn text(s: &str) -> Arg<'_> {
        Arg::Text(s)
    }
    Ok(match c {
        ConfigChange::CreateApi(a) => vec![(INSERT_API, api_args(a)?.to_vec())],
        ConfigChange::UpdateApi(a) => {
            vec![(UPDATE_API, vec![text(&a.identifier), text(&a.name), Arg::Owned(to_json(&a.scopes)?), Arg::Owned(to_json(&a.roles)?)])]
        }
        ConfigChange::DeleteApi(id) => DELETE_API_ROWS.iter().chain([&DELETE_API]).map(|s| (*s, vec![text(id)])).collect(),
        ConfigChange::CreateClient(k) => vec![(INSERT_CLIENT, client_args(k)?.to_vec())],
        ConfigChange::UpdateClient(k) => vec![(UPDATE_CLIENT, client_update_args(k)?.to_vec())],
        ConfigChange::UpdateClientSecret { client_id, secret_hash } => vec![(UPDATE_CLIENT_SECRET, vec![text(secret_hash), text(client_id)])],
        ConfigChange::DeleteClient(id) => vec![(DELETE_CLIENT, vec![text(id)])],
        ConfigChange::CreateGroup(g) => vec![(INSERT_GROUP, group_args(g).to_vec())],
        ConfigChange::UpdateGroup(g) => vec![(UPDATE_GROUP, vec![text(&g.name), text(&g.description)])],
        ConfigChange::DeleteGroup(name) => DELETE_GROUP_ROWS.iter().chain([&DELETE_GROUP]).map(|s| (*s, vec![text(name)])).collect(),
        ConfigChange::AddMember { group, user_id } => vec![(INSERT_GROUP_MEMBER, vec![text(group), text(user_id)])],
        ConfigChange::RemoveMember { group, user_id } => vec![(DELETE_GROUP_MEMBER, vec![text(group), text(user_id)])],
        ConfigChange::GrantRole(r) => vec![(INSERT_ROLE_ASSIGNMENT, role_assignment_args(r).to_vec())],
        ConfigChange::RevokeRole(r) => vec![(DELETE_ROLE_ASSIGNMENT, role_assignment_args(r).to_vec())],
        ConfigChange::CreateUser(u) => vec![(INSERT_USER, user_args(u)?.to_vec())],
        ConfigChange::UpdateUser(u) => vec![(UPDATE_USER, user_update_args(u)?.to_vec())],
        ConfigChange::SetAdmin { user_id, is_admin } => vec![(UPDATE_USER_ADMIN_QUIET, vec![text(user_id), Arg::Bool(*is_admin)])],
        ConfigChange::MarkApplied { kind, key } => vec![(INSERT_APPLIED, vec![text(kind), text(key)])],
        ConfigChange::UnmarkApplied { kind, key } => vec![(DELETE_APPLIED, vec![text(kind), text(key)])],
        ConfigChange::Audit { kind, actor, detail, at } => {
            let e = NewAuditEvent { kind, actor, user_id: None, client_id: None, detail };
            vec![(RECORD_AUDIT_EVENT, audit_args(&e, *at).to_vec())]
        }
    })
}

/// [`UPDATE_USER_ADMIN`] without `RETURNING` (run as a plain statement in a batch).
pub const UPDATE_USER_ADMIN_QUIET: &str = "UPDATE users SET is_admin = $2 WHERE id = $1";

/// A shared statement in SQLite's placeholder form, made at run time (`$N` → `?N`), for the
/// statements [`config_statements`] picks per change.
pub fn to_sqlite_text(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    for (i, ch) in sql.char_indices() {
        if ch == '$' && b.get(i + 1).is_some_and(u8::is_ascii_digit) { out.push('?') } else { out.push(ch) }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_for_sqlite_at_compile_time() {
        const FIND: &str = crate::sqlite!(FIND_CLIENT);
        assert!(FIND.ends_with("FROM clients WHERE client_id = ?1"), "{FIND}");
        assert_eq!(crate::sqlite!("a = $1 AND b = $12 AND c = '$' AND d = $x"), "a = ?1 AND b = ?12 AND c = '$' AND d = $x");
        assert_eq!(sqlite::REFRESH.take.len(), TAKE_REFRESH.len());
        assert!(!sqlite::REFRESH.take.contains('$') && !sqlite::CODE.find.contains('$') && !sqlite::DEVICE_CODE.take.contains('$'));
    }

    fn sample_factor() -> FactorRecord {
        FactorRecord {
            id: "f".into(),
            user_id: "u".into(),
            kind: FactorKind::Totp,
            name: "n".into(),
            secret: vec![],
            credential_id: None,
            last_step: None,
            created_at: 0,
            last_used_at: None,
        }
    }

    /// How many arguments an encoder makes.
    fn arity<T, const N: usize>(_: fn(&T) -> Result<[Arg<'_>; N]>) -> usize {
        N
    }

    #[test]
    fn column_lists_match_the_encoders() {
        let count = |cols: &str| cols.split(',').count();
        assert_eq!(count(CLIENT_COLUMNS), arity(client_args));
        assert_eq!(count(API_COLUMNS), arity(api_args));
        assert_eq!(count(CLIENT_COLUMNS), 16);
        assert_eq!(count(FACTOR_COLUMNS), factor_args(&sample_factor()).len());
        assert_eq!(count(USER_TOKEN_COLUMNS), 6);
        assert_eq!(count(KEY_COLUMNS), 5);
        assert_eq!(count(SESSION_COLUMNS), 11);
        let session = SessionRecord {
            id_hash: "h".into(),
            sid: "s".into(),
            user_id: None,
            amr: None,
            csrf_token: "c".into(),
            auth_time: None,
            created_at: 0,
            expires_at: 0,
            user_agent: None,
            address: None,
            last_used_at: 0,
        };
        assert_eq!(count(SESSION_COLUMNS), session_args(&session).len());
        assert_eq!(INSERT_SESSION.matches('$').count(), session_args(&session).len());
        assert_eq!(count(PENDING_COLUMNS), 4);
        assert_eq!(count(USER_COLUMNS), arity(user_args));
        assert_eq!(count(API_COLUMNS), 6);
        assert_eq!(count(CODE_COLUMNS), 14);
        assert_eq!(count(REFRESH_COLUMNS), 14);
        assert_eq!(count(DEVICE_COLUMNS), 12);
    }

    #[test]
    fn expiry_statements() {
        assert_eq!(
            expiry_statement(&EXPIRED[0], "rowid", true),
            "DELETE FROM codes WHERE (rowid) IN (SELECT rowid FROM codes WHERE expires_at < ?1 - 3600 LIMIT ?2)"
        );
        let last = &EXPIRED[EXPIRED.len() - 1];
        assert_eq!(
            expiry_statement(last, last.key, false),
            "DELETE FROM session_clients WHERE (sid, client_id) IN (SELECT sid, client_id FROM session_clients WHERE at < $1 - 2592000 LIMIT $2)"
        );
    }
}
