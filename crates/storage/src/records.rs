//! The records the store keeps, typed: scopes are [`Scopes`], audiences lists, a device code's
//! status an enum and the OpenID Connect context a struct. Backends never see their encodings;
//! [`crate::row`] decodes and [`crate::sql`] encodes them, once, for every backend.

use serde::{Deserialize, Serialize};
use tessera_protocol::client::{AuthMethod, GrantType};
use tessera_protocol::scope::Scopes;

/// A registered client (RFC 6749 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the secret, hex; `None` for public clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    /// The scopes the client may request.
    pub scope: Scopes,
    /// Registered grant types (RFC 7591 §2).
    pub grant_types: Vec<GrantType>,
    /// RFC 7591 §2 `token_endpoint_auth_method`.
    pub token_endpoint_auth_method: AuthMethod,
    pub created_at: i64,
    /// OpenID Connect RP-Initiated Logout 1.0 §3.1.
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect Back-Channel Logout 1.0 §2.2.
    pub backchannel_logout_uri: Option<String>,
    /// OpenID Connect Dynamic Client Registration §2: the ID token's signing algorithm.
    pub id_token_signed_response_alg: Option<String>,
    /// OpenID Connect Core §8: "public" or "pairwise".
    pub subject_type: String,
    /// Origins (Fetch standard, `scheme://host[:port]`) a browser app of this client may call
    /// the token, revocation and UserInfo endpoints from, beyond its redirect URIs' origins.
    pub allowed_origins: Vec<String>,
    /// Every token request must carry a DPoP proof (RFC 9449): no bearer tokens.
    pub require_dpop: bool,
    /// The client's public keys, a JWK Set (RFC 7517 §5), which sign its JWT bearer assertions
    /// (RFC 7523 §2.1); `None` when it has none.
    pub jwks: Option<serde_json::Value>,
    /// Users must sign in with a second factor (RFC 8176 `mfa`) before this client gets a code.
    pub require_mfa: bool,
}

/// A resource owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: i64,
    /// Further standard claims (OpenID Connect Core §5.1), e.g. given_name, phone_number, address.
    pub profile: serde_json::Map<String, serde_json::Value>,
    pub updated_at: i64,
    /// When an administrator disabled the account; `None`: enabled.
    pub disabled_at: Option<i64>,
    /// An administrator: their tokens for the admin API act with their authority.
    pub is_admin: bool,
    /// Every sign-in of this user needs a second factor (`tessera user update --require-mfa`).
    pub require_mfa: bool,
    /// The user proved they receive mail at `email` (a verification link): OpenID Connect
    /// `email_verified`. Cleared whenever the email changes.
    pub email_verified: bool,
}

/// A resource server ("API"): its identifier is the access token audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRecord {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<ApiScope>,
    pub created_at: i64,
    /// SHA-256 of the API's own secret, for token introspection (RFC 7662 §2.1); optional.
    pub secret_hash: Option<String>,
    /// The roles the API declares; its access tokens carry those granted to the user.
    pub roles: Vec<ApiRole>,
}

/// A role an API declares (`tessera api create … --role editor=Can edit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRole {
    pub name: String,
    pub description: String,
}

/// A user's consent to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub client_id: String,
    pub scope: Scopes,
    /// When the scopes last changed (Unix seconds).
    pub updated_at: i64,
}

/// An audit event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub kind: String,
    /// Unix seconds.
    pub at: i64,
    /// Who did it: a user id, `cli:NAME` for the admin CLI, empty for the server itself.
    pub actor: String,
    /// The user it concerns, if any.
    pub user_id: Option<String>,
    /// The client it concerns, if any.
    pub client_id: Option<String>,
    pub detail: String,
}

/// An audit event to record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewAuditEvent<'a> {
    pub kind: &'a str,
    pub actor: &'a str,
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub detail: &'a str,
}

/// Which audit events to find; `None`: any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// At or after (Unix seconds).
    pub since: Option<i64>,
    /// Before (Unix seconds).
    pub until: Option<i64>,
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// Paging: only events with a smaller id.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// A group of users (`tessera group create`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

/// Who holds a role: a user (by id) or every member of a group (by name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Assignee {
    User(String),
    Group(String),
}

impl Assignee {
    /// The stored kind and value.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::User(id) => ("user", id),
            Self::Group(name) => ("group", name),
        }
    }
}

/// A role of an API granted to an assignee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub api: String,
    pub role: String,
    pub assignee: Assignee,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiScope {
    pub name: String,
    pub description: String,
}

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    /// The private key sealed under the key-encryption key (`tessera_jose::kek`); in a database
    /// from before encryption at rest, plain PKCS#8 DER until the next start seals it.
    pub private_der: Vec<u8>,
    pub created_at: i64,
    /// The key is published from `created_at` and may sign from `use_after` on, so that
    /// verifiers have fetched it before they see it (key rotation).
    pub use_after: i64,
}

/// A key that makes a conditional key creation ([`crate::KeyStore::create_signing_key_unless`])
/// unnecessary: one of the same algorithm that …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingKey {
    /// … may sign at this time (`use_after` ≤ it): first start.
    SignsAt(i64),
    /// … was created at or after this time: a scheduled rotation already done.
    CreatedSince(i64),
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_der", &"<redacted>")
            .field("use_after", &self.use_after)
            .finish()
    }
}

/// A browser session. Anonymous until `user_id` is set at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie value, hex.
    pub id_hash: String,
    /// Public session identifier (OpenID Connect `sid`), not a secret.
    pub sid: String,
    pub user_id: Option<String>,
    /// Authentication methods (RFC 8176), space-separated, e.g. "pwd".
    pub amr: Option<String>,
    pub csrf_token: String,
    pub auth_time: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The browser's `User-Agent` at sign-in (at most [`USER_AGENT_MAX_CHARS`] characters),
    /// for the user's list of their sessions; `None` for anonymous sessions and older rows.
    pub user_agent: Option<String>,
    /// The client's address at sign-in (its throttling bucket, behind trusted proxies).
    pub address: Option<String>,
    /// When the session was last used, at most a minute stale
    /// ([`crate::SessionStore::update_session_last_used`]); its creation until then.
    pub last_used_at: i64,
}

/// The longest `User-Agent` a session keeps (longer ones are cut by the service).
pub const USER_AGENT_MAX_CHARS: usize = 512;

/// An authorization request waiting for the user to sign in or consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequestRecord {
    pub id: String,
    pub session_hash: String,
    /// The validated request, serialized by the service layer (opaque to the store).
    pub data: String,
    pub expires_at: i64,
}

/// What an OpenID Connect request carries from the authorization to the token endpoint (stored
/// with the code, the refresh token and the device code; OIDC Core §3.1.3.6, §2).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OidcContext {
    pub nonce: Option<String>,
    pub sid: Option<String>,
    pub amr: Vec<String>,
    pub claims_id_token: Vec<String>,
    pub claims_userinfo: Vec<String>,
    /// OIDC Core §2 `acr`: the password was entered during the request, or a session answered it.
    #[serde(default)]
    pub acr: Option<String>,
}

/// An authorization code (RFC 6749 §4.1.2), stored by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub code_hash: String,
    /// The grant this code starts; refresh tokens issued from it share it as their family.
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: Option<String>,
    pub scope: Scopes,
    /// The token audiences (RFC 8707).
    pub audience: Vec<String>,
    pub auth_time: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// OpenID Connect request context (nonce, sid, claims, acr).
    pub oidc: Option<OidcContext>,
    /// RFC 9449 §10: the `dpop_jkt` of the authorization request; the code is redeemed only with
    /// a proof made with that key.
    pub dpop_jkt: Option<String>,
}

/// A refresh token (RFC 6749 §1.5), stored by hash; `family_id` ties rotations together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: Scopes,
    pub audience: Vec<String>,
    pub auth_time: i64,
    pub created_at: i64,
    /// Idle expiry of this token.
    pub expires_at: i64,
    /// Absolute end of the family (no rotation extends it).
    pub family_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub oidc: Option<OidcContext>,
    /// RFC 9449 §5: a public client's refresh token is bound to the DPoP key it was issued to
    /// (RFC 7638 thumbprint); it is used only with a proof made with that key.
    pub dpop_jkt: Option<String>,
}

/// Where a device authorization stands (RFC 8628 §3.4–3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCodeStatus {
    /// Waiting for the user.
    Pending,
    /// The user approved; the next poll gets the tokens.
    Approved,
    /// The user denied (`access_denied`).
    Denied,
    /// A poll got the tokens.
    Consumed,
}

impl DeviceCodeStatus {
    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
        }
    }

    /// The stored form read back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Consumed].into_iter().find(|v| v.as_str() == s)
    }
}

/// A device authorization (RFC 8628 §3.2): the device code stored by hash, the user code in
/// its normalized form (upper case, no dash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    pub device_code_hash: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: Scopes,
    pub audience: Vec<String>,
    pub expires_at: i64,
    /// Minimum polling interval in seconds (raised by `slow_down`).
    pub interval: i64,
    pub last_polled_at: Option<i64>,
    pub status: DeviceCodeStatus,
    pub user_id: Option<String>,
    pub auth_time: Option<i64>,
    pub oidc: Option<OidcContext>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_code_status_round_trips() {
        for s in [DeviceCodeStatus::Pending, DeviceCodeStatus::Approved, DeviceCodeStatus::Denied, DeviceCodeStatus::Consumed] {
            assert_eq!(DeviceCodeStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeviceCodeStatus::parse("Approved"), None);
    }

    #[test]
    fn oidc_context_reads_rows_from_before_acr() {
        let ctx: OidcContext = serde_json::from_str(r#"{"nonce":"n","sid":null,"amr":["pwd"],"claims_id_token":[],"claims_userinfo":[]}"#).unwrap();
        assert_eq!((ctx.nonce.as_deref(), ctx.acr), (Some("n"), None));
    }
}

/// One change of a `tessera apply` (configuration as code, issue 16); a plan's changes are
/// applied together in one transaction ([`crate::ConfigStore::apply_config`]): all or none.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigChange {
    CreateApi(ApiRecord),
    /// Name, scopes and roles (the identifier is the key; its role grants stay).
    UpdateApi(ApiRecord),
    /// The API and the roles granted of it.
    DeleteApi(String),
    CreateClient(ClientRecord),
    /// The registration (not the secret).
    UpdateClient(ClientRecord),
    UpdateClientSecret {
        client_id: String,
        secret_hash: String,
    },
    DeleteClient(String),
    CreateGroup(GroupRecord),
    /// The description.
    UpdateGroup(GroupRecord),
    /// The group, its memberships and the roles granted to it.
    DeleteGroup(String),
    AddMember {
        group: String,
        user_id: String,
    },
    RemoveMember {
        group: String,
        user_id: String,
    },
    GrantRole(RoleAssignment),
    RevokeRole(RoleAssignment),
    CreateUser(UserRecord),
    /// Email, name, profile.
    UpdateUser(UserRecord),
    SetAdmin {
        user_id: String,
        is_admin: bool,
    },
    /// Remember that an apply created this object (`kind` `api`, `client`, `group`, `user`),
    /// so that `--prune` may delete it later; an object made otherwise is never pruned.
    MarkApplied {
        kind: String,
        key: String,
    },
    UnmarkApplied {
        kind: String,
        key: String,
    },
    /// The apply itself, in the audit log with its actor.
    Audit {
        kind: String,
        actor: String,
        detail: String,
        at: i64,
    },
}

/// What kind of second factor a [`FactorRecord`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactorKind {
    /// A TOTP authenticator app (RFC 6238).
    Totp,
    /// A WebAuthn credential (a passkey: discoverable, user-verifying).
    Passkey,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
        }
    }
}

impl std::str::FromStr for FactorKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "totp" => Ok(Self::Totp),
            "passkey" => Ok(Self::Passkey),
            other => Err(format!("unknown factor kind {other:?}")),
        }
    }
}

/// A user's authenticator: a TOTP app or a passkey.
#[derive(Clone, PartialEq, Eq)]
pub struct FactorRecord {
    pub id: String,
    pub user_id: String,
    pub kind: FactorKind,
    /// The name the user gave it ("Phone", "YubiKey").
    pub name: String,
    /// TOTP: the seed, sealed under the key-encryption key; passkey: the credential (its public
    /// key and signature counter, serialized by the service).
    pub secret: Vec<u8>,
    /// Passkeys: the WebAuthn credential id (base64url), unique across users.
    pub credential_id: Option<String>,
    /// TOTP: the last time step accepted (RFC 6238 §5.2: a code is accepted once).
    pub last_step: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for FactorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactorRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("credential_id", &self.credential_id)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// A one-time value mailed or handed to a user, or a ceremony's state kept between two pages:
/// a password reset or invitation link, an email verification link, a passkey challenge, a
/// sign-in waiting for its second step. Stored by the SHA-256 of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTokenRecord {
    pub token_hash: String,
    /// What it is for ("reset", "invite", "verify_email", …): a token is taken only for its purpose.
    pub purpose: String,
    pub user_id: String,
    /// What the purpose needs (JSON, opaque to the store).
    pub data: String,
    pub created_at: i64,
    pub expires_at: i64,
}
