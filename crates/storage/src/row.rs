//! Row mapping, once for every backend: a backend exposes its result rows through [`Row`]
//! (columns by index, in the order of the column lists in [`crate::sql`]), and the functions
//! here turn a row into a record, decoding the JSON, scope and status columns.

use crate::records::*;
use crate::{Result, StoreError};
use tessera_protocol::scope::Scopes;

/// One result row, read by column index. Each backend implements it over its driver's row.
pub trait Row {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn boolean(&self, i: usize) -> Result<bool>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>>;
}

/// Implement [`Row`] for a backend's row wrapper, every method by one generic getter:
/// `impl_row!(MyRow<'_>, |r, i| r.0.get(i).map_err(err));` (the column type is the method's).
#[macro_export]
macro_rules! impl_row {
    ($ty:ty, |$r:ident, $i:ident| $get:expr) => {
        impl $crate::row::Row for $ty {
            fn text(&self, $i: usize) -> $crate::Result<String> {
                let $r = self;
                $get
            }
            fn opt_text(&self, $i: usize) -> $crate::Result<Option<String>> {
                let $r = self;
                $get
            }
            fn int(&self, $i: usize) -> $crate::Result<i64> {
                let $r = self;
                $get
            }
            fn opt_int(&self, $i: usize) -> $crate::Result<Option<i64>> {
                let $r = self;
                $get
            }
            fn boolean(&self, $i: usize) -> $crate::Result<bool> {
                let $r = self;
                $get
            }
            fn bytes(&self, $i: usize) -> $crate::Result<Vec<u8>> {
                let $r = self;
                $get
            }
        }
    };
}

/// A row mapper, as the backends' query helpers take it.
pub type Mapper<T> = fn(&dyn Row) -> Result<T>;

fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("corrupt {column} column: {e}"))
}

fn json<T: serde::de::DeserializeOwned>(r: &dyn Row, i: usize, column: &str) -> Result<T> {
    serde_json::from_str(&r.text(i)?).map_err(|e| corrupt(column, e))
}

fn scopes(r: &dyn Row, i: usize) -> Result<Scopes> {
    Scopes::parse(&r.text(i)?).map_err(|e| corrupt("scope", e.description))
}

/// A column of parsed values (`FromStr`), e.g. a JSON array of grant type names.
fn parsed<T: std::str::FromStr>(r: &dyn Row, i: usize, column: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    r.text(i)?.parse().map_err(|e| corrupt(column, e))
}

fn parsed_list<T: std::str::FromStr>(r: &dyn Row, i: usize, column: &str) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    let names: Vec<String> = json(r, i, column)?;
    names.iter().map(|n| n.parse().map_err(|e| corrupt(column, e))).collect()
}

fn oidc(r: &dyn Row, i: usize) -> Result<Option<OidcContext>> {
    r.opt_text(i)?.map(|s| serde_json::from_str(&s).map_err(|e| corrupt("oidc", e))).transpose()
}

fn device_status(r: &dyn Row, i: usize) -> Result<DeviceCodeStatus> {
    let s = r.text(i)?;
    DeviceCodeStatus::parse(&s).ok_or_else(|| corrupt("status", format!("unknown status {s:?}")))
}

/// A single text column.
pub fn text_from_row(r: &dyn Row) -> Result<String> {
    r.text(0)
}

/// Two text columns.
pub fn text_pair_from_row(r: &dyn Row) -> Result<(String, String)> {
    Ok((r.text(0)?, r.text(1)?))
}

/// A single integer column.
pub fn int_from_row(r: &dyn Row) -> Result<i64> {
    r.int(0)
}

/// A single boolean column.
pub fn bool_from_row(r: &dyn Row) -> Result<bool> {
    r.boolean(0)
}

/// A single scope column.
pub fn scopes_from_row(r: &dyn Row) -> Result<Scopes> {
    scopes(r, 0)
}

/// [`crate::sql::CLIENT_COLUMNS`].
pub fn client_from_row(r: &dyn Row) -> Result<ClientRecord> {
    Ok(ClientRecord {
        client_id: r.text(0)?,
        name: r.text(1)?,
        secret_hash: r.opt_text(2)?,
        redirect_uris: json(r, 3, "redirect_uris")?,
        scope: scopes(r, 4)?,
        grant_types: parsed_list(r, 5, "grant_types")?,
        token_endpoint_auth_method: parsed(r, 6, "token_endpoint_auth_method")?,
        created_at: r.int(7)?,
        post_logout_redirect_uris: json(r, 8, "post_logout_redirect_uris")?,
        backchannel_logout_uri: r.opt_text(9)?,
        id_token_signed_response_alg: r.opt_text(10)?,
        subject_type: r.text(11)?,
        allowed_origins: json(r, 12, "allowed_origins")?,
        require_dpop: r.boolean(13)?,
        jwks: r.opt_text(14)?.map(|t| serde_json::from_str(&t).map_err(|e| corrupt("jwks", e))).transpose()?,
        require_mfa: r.boolean(15)?,
    })
}

/// [`crate::sql::USER_COLUMNS`].
pub fn user_from_row(r: &dyn Row) -> Result<UserRecord> {
    Ok(UserRecord {
        id: r.text(0)?,
        username: r.text(1)?,
        email: r.opt_text(2)?,
        name: r.opt_text(3)?,
        password_hash: r.text(4)?,
        created_at: r.int(5)?,
        profile: json(r, 6, "profile")?,
        updated_at: r.int(7)?,
        disabled_at: r.opt_int(8)?,
        is_admin: r.boolean(9)?,
        require_mfa: r.boolean(10)?,
        email_verified: r.boolean(11)?,
    })
}

/// [`crate::sql::API_COLUMNS`].
pub fn api_from_row(r: &dyn Row) -> Result<ApiRecord> {
    Ok(ApiRecord {
        identifier: r.text(0)?,
        name: r.text(1)?,
        scopes: json(r, 2, "scopes")?,
        created_at: r.int(3)?,
        secret_hash: r.opt_text(4)?,
        roles: json(r, 5, "roles")?,
    })
}

/// [`crate::sql::LIST_CONSENTS`]'s columns.
pub fn consent_from_row(r: &dyn Row) -> Result<ConsentRecord> {
    Ok(ConsentRecord { client_id: r.text(0)?, scope: scopes(r, 1)?, updated_at: r.int(2)? })
}

/// [`crate::sql::FIND_AUDIT_EVENTS`]'s columns.
pub fn audit_from_row(r: &dyn Row) -> Result<AuditEvent> {
    let opt = |s: String| if s.is_empty() { None } else { Some(s) };
    Ok(AuditEvent {
        id: r.int(0)?,
        kind: r.text(1)?,
        at: r.int(2)?,
        actor: r.text(3)?,
        user_id: opt(r.text(4)?),
        client_id: opt(r.text(5)?),
        detail: r.text(6)?,
    })
}

/// `name, description, created_at` of `groups`.
pub fn group_from_row(r: &dyn Row) -> Result<GroupRecord> {
    Ok(GroupRecord { name: r.text(0)?, description: r.text(1)?, created_at: r.int(2)? })
}

/// `api, role, kind, assignee` of `role_assignments`.
pub fn role_assignment_from_row(r: &dyn Row) -> Result<RoleAssignment> {
    let assignee = match r.text(2)?.as_str() {
        "user" => Assignee::User(r.text(3)?),
        "group" => Assignee::Group(r.text(3)?),
        other => return Err(corrupt("kind", other)),
    };
    Ok(RoleAssignment { api: r.text(0)?, role: r.text(1)?, assignee })
}

/// [`crate::sql::KEY_COLUMNS`].
pub fn key_from_row(r: &dyn Row) -> Result<KeyRecord> {
    Ok(KeyRecord { kid: r.text(0)?, alg: r.text(1)?, private_der: r.bytes(2)?, created_at: r.int(3)?, use_after: r.int(4)? })
}

/// [`crate::sql::SESSION_COLUMNS`].
pub fn session_from_row(r: &dyn Row) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: r.text(0)?,
        sid: r.text(1)?,
        user_id: r.opt_text(2)?,
        amr: r.opt_text(3)?,
        csrf_token: r.text(4)?,
        auth_time: r.opt_int(5)?,
        created_at: r.int(6)?,
        expires_at: r.int(7)?,
        user_agent: r.opt_text(8)?,
        address: r.opt_text(9)?,
        last_used_at: r.int(10)?,
    })
}

/// [`crate::sql::PENDING_COLUMNS`].
pub fn pending_from_row(r: &dyn Row) -> Result<PendingRequestRecord> {
    Ok(PendingRequestRecord { id: r.text(0)?, session_hash: r.text(1)?, data: r.text(2)?, expires_at: r.int(3)? })
}

/// [`crate::sql::CODE_COLUMNS`].
pub fn code_from_row(r: &dyn Row) -> Result<CodeRecord> {
    Ok(CodeRecord {
        code_hash: r.text(0)?,
        grant_id: r.text(1)?,
        client_id: r.text(2)?,
        user_id: r.text(3)?,
        redirect_uri: r.text(4)?,
        redirect_uri_given: r.boolean(5)?,
        code_challenge: r.opt_text(6)?,
        scope: scopes(r, 7)?,
        audience: json(r, 8, "audience")?,
        auth_time: r.int(9)?,
        expires_at: r.int(10)?,
        used_at: r.opt_int(11)?,
        oidc: oidc(r, 12)?,
        dpop_jkt: r.opt_text(13)?,
    })
}

/// A code as it was before the take that returned this row marked it used.
pub fn code_before_take(r: &dyn Row) -> Result<CodeRecord> {
    Ok(CodeRecord { used_at: None, ..code_from_row(r)? })
}

/// [`crate::sql::REFRESH_COLUMNS`].
pub fn refresh_from_row(r: &dyn Row) -> Result<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: r.text(0)?,
        family_id: r.text(1)?,
        client_id: r.text(2)?,
        user_id: r.text(3)?,
        scope: scopes(r, 4)?,
        audience: json(r, 5, "audience")?,
        auth_time: r.int(6)?,
        created_at: r.int(7)?,
        expires_at: r.int(8)?,
        used_at: r.opt_int(9)?,
        revoked_at: r.opt_int(10)?,
        family_expires_at: r.int(11)?,
        oidc: oidc(r, 12)?,
        dpop_jkt: r.opt_text(13)?,
    })
}

/// [`crate::sql::DEVICE_COLUMNS`].
pub fn device_from_row(r: &dyn Row) -> Result<DeviceCodeRecord> {
    Ok(DeviceCodeRecord {
        device_code_hash: r.text(0)?,
        user_code: r.text(1)?,
        client_id: r.text(2)?,
        scope: scopes(r, 3)?,
        audience: json(r, 4, "audience")?,
        expires_at: r.int(5)?,
        interval: r.int(6)?,
        last_polled_at: r.opt_int(7)?,
        status: device_status(r, 8)?,
        user_id: r.opt_text(9)?,
        auth_time: r.opt_int(10)?,
        oidc: oidc(r, 11)?,
    })
}

/// A device code as it was before the take that returned this row marked it consumed.
pub fn device_before_take(r: &dyn Row) -> Result<DeviceCodeRecord> {
    Ok(DeviceCodeRecord { status: DeviceCodeStatus::Approved, ..device_from_row(r)? })
}

/// A throttle key's stored state: `failures, last_at`.
pub fn throttle_from_row(r: &dyn Row) -> Result<crate::ThrottleState> {
    Ok(crate::ThrottleState { failures: r.int(0)?, last_at: r.int(1)? })
}

/// [`crate::sql::FACTOR_COLUMNS`].
pub fn factor_from_row(r: &dyn Row) -> Result<FactorRecord> {
    Ok(FactorRecord {
        id: r.text(0)?,
        user_id: r.text(1)?,
        kind: parsed(r, 2, "kind")?,
        name: r.text(3)?,
        secret: r.bytes(4)?,
        credential_id: r.opt_text(5)?,
        last_step: r.opt_int(6)?,
        created_at: r.int(7)?,
        last_used_at: r.opt_int(8)?,
    })
}

/// [`crate::sql::USER_TOKEN_COLUMNS`].
pub fn user_token_from_row(r: &dyn Row) -> Result<UserTokenRecord> {
    Ok(UserTokenRecord { token_hash: r.text(0)?, purpose: r.text(1)?, user_id: r.text(2)?, data: r.text(3)?, created_at: r.int(4)?, expires_at: r.int(5)? })
}
