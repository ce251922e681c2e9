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
    /// OpenID Connect RP-Initiated Logout 1.0 §3.1.
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect Back-Channel Logout 1.0 §2.2.
    pub backchannel_logout_uri: Option<String>,
    /// OpenID Connect Dynamic Client Registration §2: the ID token's signing algorithm.
    pub id_token_signed_response_alg: Option<String>,
    /// OpenID Connect Core §8: "public" or "pairwise".
    pub subject_type: String,
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

/// A key that makes a conditional key creation ([`Store::create_signing_key_unless`])
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
    /// OpenID Connect request context (nonce, sid, claims, acr), serialized by the service.
    pub oidc: Option<String>,
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
    /// Idle expiry of this token.
    pub expires_at: i64,
    /// Absolute end of the family (no rotation extends it).
    pub family_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub oidc: Option<String>,
}

/// A device authorization (RFC 8628 §3.2): the device code stored by hash, the user code in
/// its normalized form (upper case, no dash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    pub device_code_hash: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub audience: String,
    pub expires_at: i64,
    /// Minimum polling interval in seconds (raised by `slow_down`).
    pub interval: i64,
    pub last_polled_at: Option<i64>,
    /// pending | approved | denied | consumed
    pub status: String,
    pub user_id: Option<String>,
    pub auth_time: Option<i64>,
    pub oidc: Option<String>,
}

// --- Throttling of guesses: issue 13, findings 1 and 6 (RFC 6749 §10.10, NIST SP 800-63B
// §5.2.2, RFC 8628 §5.1). ---

/// How one throttle key admits guesses: `burst` attempts back to back, then a delay after each
/// failure that doubles (1 s, 2 s, 4 s …) up to `max_delay`; after `reset_after` seconds without
/// a failure past the delay, the key starts over. Refused attempts are not counted, so hammering
/// a refused key does not lengthen its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Attempts allowed back to back before the first delay (at least 1).
    pub burst: i64,
    /// The longest delay, seconds.
    pub max_delay: i64,
    /// Quiet seconds (after the delay ended) after which the failures are forgotten.
    pub reset_after: i64,
}

/// A key's stored state: consecutive failures (allowed attempts not given back) and the time of
/// the last one counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottleState {
    pub failures: i64,
    pub last_at: i64,
}

/// The rule's answer for one key at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Allowed; the state to store (this attempt counted).
    Allow(ThrottleState),
    /// Refused until this many more seconds have passed (≥ 1).
    Refuse(i64),
}

impl ThrottleRule {
    /// The delay that follows `failures` consecutive failures: none within the burst, then
    /// 1, 2, 4 … seconds, capped at `max_delay`.
    pub fn delay(&self, failures: i64) -> i64 {
        let over = failures - self.burst.max(1);
        if over < 0 {
            return 0;
        }
        let doubled = if over >= 62 { i64::MAX } else { 1i64 << over };
        doubled.min(self.max_delay.max(0))
    }

    /// Whether an attempt under this rule is allowed at `now`, given the key's stored state.
    pub fn decide(&self, state: ThrottleState, now: i64) -> ThrottleDecision {
        let until = state.last_at.saturating_add(self.delay(state.failures));
        if now < until {
            return ThrottleDecision::Refuse(until - now);
        }
        let failures = if now >= until.saturating_add(self.reset_after) { 0 } else { state.failures };
        ThrottleDecision::Allow(ThrottleState { failures: failures + 1, last_at: now })
    }
}

/// Outcome of [`Store::take_throttle_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleAttempt {
    /// Go ahead and check the guess. `delay_if_wrong`: the seconds the keys are closed for if it
    /// proves wrong (0 within the burst).
    Allowed { delay_if_wrong: i64 },
    /// Not now: `key` (the first refusing key, in the order given) opens in `retry_after`
    /// seconds, the longest wait over the refusing keys.
    Refused { key: String, retry_after: i64 },
}

/// Decide an attempt over several keys from their states (in the order of `keys`): allowed only
/// if every key allows it. Both backends run this inside their transaction, so they agree.
pub fn decide_throttles(keys: &[(String, ThrottleRule)], states: &[ThrottleState], now: i64) -> (ThrottleAttempt, Vec<ThrottleState>) {
    let mut next = Vec::with_capacity(keys.len());
    let mut refused: Option<(String, i64)> = None;
    let mut delay_if_wrong = 0;
    for ((key, rule), state) in keys.iter().zip(states) {
        match rule.decide(*state, now) {
            ThrottleDecision::Allow(s) => {
                delay_if_wrong = delay_if_wrong.max(rule.delay(s.failures));
                next.push(s);
            }
            ThrottleDecision::Refuse(secs) => match &mut refused {
                Some((_, longest)) => *longest = (*longest).max(secs),
                None => refused = Some((key.clone(), secs)),
            },
        }
    }
    match refused {
        Some((key, retry_after)) => (ThrottleAttempt::Refused { key, retry_after }, Vec::new()),
        None => (ThrottleAttempt::Allowed { delay_if_wrong }, next),
    }
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
    /// Replace email, name, profile and updated_at of the user with this id.
    async fn update_user(&self, u: &UserRecord) -> Result<bool>;

    // Ending a user's access (RFC 9700 §4.14.2: what a new password or a deletion takes away).
    // Each is one transaction. Neither writes revocations (`revoke_family`,
    // `create_revoked_token`): admin commands call them on a running SQLite server's database,
    // whose server keeps revocations in memory. Access tokens already issued live to their
    // (short) expiry; the server refuses a deleted user's tokens at introspection.
    /// Set `username`'s password hash and end what the old password gave: every refresh token of
    /// the user is revoked (`revoked_at = now`), their unredeemed codes and approved device codes
    /// are deleted, and every session of theirs except `keep_session` (an id hash: the session
    /// the change is made from, if any) ends with its pending requests. False when there is no
    /// such user (nothing changes).
    async fn update_user_password(&self, username: &str, password_hash: &str, keep_session: Option<&str>, now: i64) -> Result<bool>;
    /// Delete the user and everything that lets them in: their sessions (with their pending
    /// requests and client lists), refresh tokens, codes, device codes and consents. False when
    /// there is no such user. Of concurrent calls for one user exactly one returns true.
    async fn delete_user(&self, username: &str) -> Result<bool>;

    // Resource servers.
    async fn create_api(&self, a: &ApiRecord) -> Result<()>;
    async fn list_apis(&self) -> Result<Vec<ApiRecord>>;
    async fn update_api_secret(&self, identifier: &str, secret_hash: &str) -> Result<bool>;
    async fn delete_api(&self, identifier: &str) -> Result<bool>;

    // Signing keys, oldest first.
    async fn create_signing_key(&self, k: &KeyRecord) -> Result<()>;
    /// Store `k` unless a key of its algorithm is `unless`; `true` when stored. One decision for
    /// every process on the database: instances starting (or rotating) together create one key
    /// per algorithm, not one each.
    async fn create_signing_key_unless(&self, k: &KeyRecord, unless: ExistingKey) -> Result<bool>;
    async fn list_signing_keys(&self) -> Result<Vec<KeyRecord>>;
    async fn delete_signing_key(&self, kid: &str) -> Result<bool>;

    // Signing keys at rest (issue 13, finding 4): sealing and re-sealing stored keys.
    /// Replace the stored private key of `kid` with `new`, only if it is still `expected`
    /// (compare and swap); `true` when replaced. Instances sealing (or re-sealing under a new
    /// key-encryption key) the same key at once: one replaces it, the others see `false`.
    async fn update_signing_key_der(&self, kid: &str, expected: &[u8], new: &[u8]) -> Result<bool>;

    // Browser sessions and pending authorization requests.
    async fn create_session(&self, s: &SessionRecord) -> Result<()>;
    async fn find_session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    async fn find_session_by_sid(&self, sid: &str, now: i64) -> Result<Option<SessionRecord>>;
    /// Remember that `client_id` received tokens in session `sid` (for logout).
    async fn add_session_client(&self, sid: &str, client_id: &str, now: i64) -> Result<()>;
    async fn list_session_clients(&self, sid: &str) -> Result<Vec<String>>;
    async fn create_pending_request(&self, r: &PendingRequestRecord) -> Result<()>;
    async fn find_pending_request(&self, id: &str, now: i64) -> Result<Option<PendingRequestRecord>>;
    async fn delete_pending_request(&self, id: &str) -> Result<()>;
    /// Sign-in's change of session, in one transaction: `new` is created, the session
    /// `old_id_hash` deleted, and `pending` stored in place of the pending request with its id
    /// (now bound to the new session). A new session id at sign-in stops session fixation.
    async fn replace_session(&self, old_id_hash: &str, new: &SessionRecord, pending: &PendingRequestRecord) -> Result<()>;

    // Consent: the scopes a user has granted a client, space-separated.
    async fn find_consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>>;
    async fn update_consent(&self, user_id: &str, client_id: &str, scope: &str, now: i64) -> Result<()>;

    // Authorization codes.
    async fn create_code(&self, c: &CodeRecord) -> Result<()>;
    async fn find_code(&self, code_hash: &str) -> Result<Option<CodeRecord>>;
    async fn take_code(&self, code_hash: &str, now: i64) -> Result<Taken<CodeRecord>>;
    /// Redeem (RFC 6749 §4.1.3): take the code exactly as [`Store::take_code`] does and, only if
    /// this call takes it, store `next` (the grant's first refresh token) — in one transaction.
    async fn take_code_issuing(&self, code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<CodeRecord>>;

    // Refresh tokens.
    async fn create_refresh_token(&self, r: &RefreshTokenRecord) -> Result<()>;
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>>;
    /// Atomically mark the token used, unless it is used, revoked or expired. With
    /// `grace_secs > 0`, a token used less than `grace_secs` ago may be taken again. The record
    /// returned carries the time of its first use.
    async fn take_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64) -> Result<Taken<RefreshTokenRecord>>;
    /// Rotate (RFC 6749 §6): take `token_hash` exactly as [`Store::take_refresh_token`] does and,
    /// only if this call takes it, store `next` — in one transaction. A failure (the database
    /// going away) leaves either the old token untaken or the new one stored: never a consumed
    /// token without its successor, which would turn the client's retry into a "reuse".
    async fn rotate_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<RefreshTokenRecord>>;
    /// Revoke every refresh token of the family (grant) and record the family as revoked (its
    /// access tokens then fail introspection). Returns how many refresh tokens were live.
    async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64>;

    // Access token revocation (RFC 7009 §2), by `jti`, kept until the token would expire.
    async fn create_revoked_token(&self, jti: &str, expires_at: i64) -> Result<()>;
    /// True when the token `jti` or its family was revoked.
    async fn is_revoked(&self, jti: &str, family_id: Option<&str>) -> Result<bool>;

    // Device authorization (RFC 8628).
    async fn create_device_code(&self, d: &DeviceCodeRecord) -> Result<()>;
    async fn find_device_code(&self, device_code_hash: &str) -> Result<Option<DeviceCodeRecord>>;
    async fn find_device_code_by_user_code(&self, user_code: &str, now: i64) -> Result<Option<DeviceCodeRecord>>;
    /// Approve or deny a pending, unexpired authorization; false when it is no longer pending.
    async fn decide_device_code(&self, user_code: &str, approve: bool, user_id: &str, auth_time: i64, oidc: Option<&str>, now: i64) -> Result<bool>;
    /// Record a poll at `now` and the (possibly raised) interval.
    async fn update_device_poll(&self, device_code_hash: &str, now: i64, interval: i64) -> Result<()>;
    /// Atomically consume an approved device code.
    async fn take_device_code(&self, device_code_hash: &str, now: i64) -> Result<Taken<DeviceCodeRecord>>;
    /// [`Store::take_device_code`] and, only if this call takes it, store `next` — in one
    /// transaction.
    async fn take_device_code_issuing(&self, device_code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<DeviceCodeRecord>>;

    /// Delete expired rows (codes, sessions, pending requests, device codes, refresh tokens past
    /// their family's end, revocations of expired tokens, old sign-in failures), at most
    /// `batch` per table. Returns how many rows went.
    async fn delete_expired(&self, now: i64, batch: i64) -> Result<u64>;

    // --- Throttling of guesses (sign-in passwords, user codes): issue 13, findings 1 and 6. ---
    /// Take the right to verify one guess under every key of `keys` at once (a username, a
    /// client address), or be refused — atomically, for every process on the database: of any
    /// number of concurrent calls, only as many are allowed as the rules admit (see
    /// [`ThrottleRule::decide`]), so checking a guess can never outrun its counting. An allowed
    /// attempt is counted as a failure on every key *before* the guess is checked; a success
    /// then gives it back ([`Store::update_throttle_success`]). Refused: nothing is counted.
    async fn take_throttle_attempt(&self, keys: &[(String, ThrottleRule)], now: i64) -> Result<ThrottleAttempt>;
    /// After a guess that proved right: every key of `reset` starts over (no failures), and
    /// each key of `refund` gives back the one attempt [`Store::take_throttle_attempt`] counted.
    /// One transaction.
    async fn update_throttle_success(&self, reset: &[String], refund: &[String]) -> Result<()>;

    /// Security-relevant events (e.g. code replay), for operators.
    async fn create_audit_event(&self, kind: &str, detail: &str, now: i64) -> Result<()>;
    async fn list_audit_events(&self, kind: &str) -> Result<Vec<String>>;
}
