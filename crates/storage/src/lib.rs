//! Tessera's storage contract: the records it keeps and the one [`Store`] trait every backend
//! implements, plus [`conformance`], the test suite every backend must pass.
//!
//! Contracts worth knowing (the suite checks each):
//! - `take_*` is an atomic consume: of any number of concurrent calls for one key, exactly one
//!   returns [`Taken::Taken`]; the others see [`Taken::AlreadyUsed`] with the record.
//! - Secrets (refresh tokens, codes, session ids, client secrets) are stored only as hashes;
//!   the store never sees them in the clear.
//! - Times are Unix seconds, passed in by the caller; the store reads no clock.
#![forbid(unsafe_code)]

pub mod conformance;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A registered client (RFC 6749 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the secret, hex; `None` for public clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Space-separated scope tokens the client may request.
    pub scope: String,
    /// Registered grant type names (RFC 7591 §2).
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub created_at: i64,
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
}

/// A resource server ("API"): its identifier is the access token audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRecord {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<ApiScope>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiScope {
    pub name: String,
    pub description: String,
}

/// A signing key in PKCS#8 DER form.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_der: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord").field("kid", &self.kid).field("alg", &self.alg).field("private_der", &"<redacted>").finish()
    }
}

/// A browser session. Anonymous until `user_id` is set at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie value, hex.
    pub id_hash: String,
    pub user_id: Option<String>,
    pub csrf_token: String,
    pub auth_time: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An authorization request waiting for the user to sign in or consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequestRecord {
    pub id: String,
    pub session_hash: String,
    /// The validated request, serialized by the service layer.
    pub data: String,
    pub expires_at: i64,
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
    pub scope: String,
    /// JSON array of audiences.
    pub audience: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A refresh token (RFC 6749 §1.5), stored by hash; `family_id` ties rotations together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub audience: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Outcome of an atomic consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken<T> {
    /// This call consumed it.
    Taken(T),
    /// It exists but was consumed (or revoked) before.
    AlreadyUsed(T),
    NotFound,
}

/// The storage contract. Verbs: `find_`, `create_`, `update_`, `delete_`, `take_` (atomic consume).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Clients.
    async fn create_client(&self, c: &ClientRecord) -> Result<()>;
    async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>>;
    async fn list_clients(&self) -> Result<Vec<ClientRecord>>;
    async fn update_client_secret(&self, client_id: &str, secret_hash: &str) -> Result<bool>;
    async fn delete_client(&self, client_id: &str) -> Result<bool>;

    // Users.
    async fn create_user(&self, u: &UserRecord) -> Result<()>;
    async fn find_user_by_username(&self, username: &str) -> Result<Option<UserRecord>>;
    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>>;
    async fn list_users(&self) -> Result<Vec<UserRecord>>;
    async fn update_user_password(&self, username: &str, password_hash: &str) -> Result<bool>;
    async fn delete_user(&self, username: &str) -> Result<bool>;

    // Resource servers.
    async fn create_api(&self, a: &ApiRecord) -> Result<()>;
    async fn list_apis(&self) -> Result<Vec<ApiRecord>>;
    async fn delete_api(&self, identifier: &str) -> Result<bool>;

    // Signing keys, oldest first.
    async fn create_signing_key(&self, k: &KeyRecord) -> Result<()>;
    async fn list_signing_keys(&self) -> Result<Vec<KeyRecord>>;

    // Browser sessions and pending authorization requests.
    async fn create_session(&self, s: &SessionRecord) -> Result<()>;
    async fn find_session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    async fn create_pending_request(&self, r: &PendingRequestRecord) -> Result<()>;
    async fn find_pending_request(&self, id: &str, now: i64) -> Result<Option<PendingRequestRecord>>;
    async fn delete_pending_request(&self, id: &str) -> Result<()>;

    // Consent: the scopes a user has granted a client, space-separated.
    async fn find_consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>>;
    async fn update_consent(&self, user_id: &str, client_id: &str, scope: &str, now: i64) -> Result<()>;

    // Authorization codes.
    async fn create_code(&self, c: &CodeRecord) -> Result<()>;
    async fn take_code(&self, code_hash: &str, now: i64) -> Result<Taken<CodeRecord>>;

    // Refresh tokens.
    async fn create_refresh_token(&self, r: &RefreshTokenRecord) -> Result<()>;
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>>;
    /// Atomically mark the token used, unless it is used, revoked or expired.
    async fn take_refresh_token(&self, token_hash: &str, now: i64) -> Result<Taken<RefreshTokenRecord>>;
    /// Revoke every refresh token of the family (grant). Returns how many were live.
    async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64>;

    // Sign-in throttling: failures per key (a username or a client address) in a window.
    async fn record_login_failure(&self, key: &str, now: i64) -> Result<()>;
    async fn count_login_failures(&self, key: &str, since: i64) -> Result<i64>;
    async fn clear_login_failures(&self, key: &str) -> Result<()>;

    /// Security-relevant events (e.g. code replay), for operators.
    async fn create_audit_event(&self, kind: &str, detail: &str, now: i64) -> Result<()>;
    async fn list_audit_events(&self, kind: &str) -> Result<Vec<String>>;
}
