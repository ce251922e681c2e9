//! The storage contracts, one trait per capability, and [`Store`], the umbrella every backend
//! gets by implementing them all. Verbs: `find_`, `create_`, `update_`, `delete_`, `take_`
//! (atomic consume). Each grant that consumes a one-time value owns its consume, in its own
//! trait ([`CodeStore::take_code_issuing`], [`RefreshTokenStore::rotate_refresh_token`],
//! [`DeviceCodeStore::take_device_code_issuing`]), as fosite gives each handler its storage.

use crate::records::*;
use crate::{Result, Taken, ThrottleAttempt, ThrottleRule};
use async_trait::async_trait;
use tessera_protocol::scope::Scopes;

/// Registered clients (RFC 6749 §2).
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn create_client(&self, c: &ClientRecord) -> Result<()>;
    async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>>;
    async fn list_clients(&self) -> Result<Vec<ClientRecord>>;
    async fn update_client_secret(&self, client_id: &str, secret_hash: &str) -> Result<bool>;
    /// Replace a client's registration (everything but its id, secret and creation time);
    /// false when there is no such client.
    async fn update_client(&self, c: &ClientRecord) -> Result<bool>;
    async fn delete_client(&self, client_id: &str) -> Result<bool>;
}

/// Resource owners, and ending their access.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, u: &UserRecord) -> Result<()>;
    async fn find_user_by_username(&self, username: &str) -> Result<Option<UserRecord>>;
    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>>;
    /// The users whose email is `email` (ASCII letters in any case), oldest first, at most 10:
    /// whom a password-reset link goes to when the form names an address.
    async fn find_users_by_email(&self, email: &str) -> Result<Vec<UserRecord>>;
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
    /// Disable the user (`disabled`, at `now`) or enable them again. Disabling ends every
    /// session, revokes the user's refresh tokens and deletes their unredeemed codes and approved
    /// device codes, in the same transaction (as a new password does). False when no such user.
    async fn update_user_disabled(&self, user_id: &str, disabled: bool, now: i64) -> Result<bool>;
    /// Make the user an administrator, or not. False when no such user.
    async fn update_user_admin(&self, user_id: &str, is_admin: bool) -> Result<bool>;
    /// Require a second factor at every sign-in of the user, or not. False when no such user.
    async fn update_user_require_mfa(&self, user_id: &str, require: bool) -> Result<bool>;
    /// Mark the user's email verified, only while it is still `email` (the address the link
    /// went to). False otherwise.
    async fn update_user_email_verified(&self, user_id: &str, email: &str) -> Result<bool>;
    /// Replace the user's password hash by `new` (the same password under new Argon2
    /// parameters) only while it is still `old`; nothing else changes. False otherwise.
    async fn update_user_password_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool>;
}

/// Second factors (TOTP apps, passkeys) and recovery codes (issue 15). A user's deletion takes
/// them along.
#[async_trait]
pub trait FactorStore: Send + Sync {
    /// `Conflict` when the id or the credential id is taken.
    async fn create_factor(&self, f: &FactorRecord) -> Result<()>;
    /// A user's factors, oldest first.
    async fn list_factors(&self, user_id: &str) -> Result<Vec<FactorRecord>>;
    /// The passkey with this WebAuthn credential id, whoever's it is.
    async fn find_factor_by_credential(&self, credential_id: &str) -> Result<Option<FactorRecord>>;
    /// Remove one of the user's factors (never another user's). False when it is not theirs.
    async fn delete_factor(&self, user_id: &str, id: &str) -> Result<bool>;
    /// RFC 6238 §5.2: accept time step `step` of a TOTP factor, only if it is later than the
    /// last one accepted — of concurrent calls with one step exactly one gets true.
    async fn update_factor_step(&self, id: &str, step: i64, now: i64) -> Result<bool>;
    /// Replace a factor's stored secret (a passkey's counter moved) only while it is still
    /// `expected` (compare and swap).
    async fn update_factor_secret(&self, id: &str, expected: &[u8], new: &[u8], now: i64) -> Result<bool>;
    /// Every factor and recovery code of the user, in one transaction (`tessera user
    /// reset-mfa`); how many factors went.
    async fn delete_factors(&self, user_id: &str) -> Result<u64>;
    /// Replace the user's recovery codes (their SHA-256 hashes) in one transaction.
    async fn replace_recovery_codes(&self, user_id: &str, code_hashes: &[String], now: i64) -> Result<()>;
    /// Use a recovery code: true once, for exactly one of concurrent calls.
    async fn take_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool>;
    /// How many of the user's recovery codes are unused.
    async fn count_recovery_codes(&self, user_id: &str) -> Result<i64>;
}

/// One-time values handed to users (reset, invitation and verification links) and ceremony
/// state between two pages (passkey challenges, a sign-in's second step), by hash.
#[async_trait]
pub trait UserTokenStore: Send + Sync {
    async fn create_user_token(&self, t: &UserTokenRecord) -> Result<()>;
    /// The unexpired token for `purpose`, left in place.
    async fn find_user_token(&self, token_hash: &str, purpose: &str, now: i64) -> Result<Option<UserTokenRecord>>;
    /// Consume the unexpired token for `purpose`: of concurrent calls exactly one gets it.
    async fn take_user_token(&self, token_hash: &str, purpose: &str, now: i64) -> Result<Option<UserTokenRecord>>;
    /// Every token of the user for `purpose` (a new reset link voids the older ones).
    async fn delete_user_tokens(&self, user_id: &str, purpose: &str) -> Result<u64>;
}

/// Resource servers and their scopes (the scope catalog).
#[async_trait]
pub trait ApiStore: Send + Sync {
    async fn create_api(&self, a: &ApiRecord) -> Result<()>;
    async fn list_apis(&self) -> Result<Vec<ApiRecord>>;
    async fn update_api_secret(&self, identifier: &str, secret_hash: &str) -> Result<bool>;
    async fn delete_api(&self, identifier: &str) -> Result<bool>;
}

/// Signing keys, oldest first.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_signing_key(&self, k: &KeyRecord) -> Result<()>;
    /// Store `k` unless a key of its algorithm is `unless`; `true` when stored. One decision for
    /// every process on the database: instances starting (or rotating) together create one key
    /// per algorithm, not one each.
    async fn create_signing_key_unless(&self, k: &KeyRecord, unless: ExistingKey) -> Result<bool>;
    async fn list_signing_keys(&self) -> Result<Vec<KeyRecord>>;
    async fn delete_signing_key(&self, kid: &str) -> Result<bool>;
    /// Signing keys at rest (issue 13, finding 4): replace the stored private key of `kid` with
    /// `new`, only if it is still `expected` (compare and swap); `true` when replaced. Instances
    /// sealing (or re-sealing under a new key-encryption key) the same key at once: one replaces
    /// it, the others see `false`.
    async fn update_signing_key_der(&self, kid: &str, expected: &[u8], new: &[u8]) -> Result<bool>;
}

/// Browser sessions, the clients that received tokens in them, and pending authorization
/// requests.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// A user's live browser sessions, newest first.
    async fn list_user_sessions(&self, user_id: &str, now: i64) -> Result<Vec<SessionRecord>>;
    /// End every session of the user, with their pending requests and client lists, in one
    /// transaction.
    async fn delete_user_sessions(&self, user_id: &str) -> Result<()>;
    async fn create_session(&self, s: &SessionRecord) -> Result<()>;
    async fn find_session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    async fn find_session_by_sid(&self, sid: &str, now: i64) -> Result<Option<SessionRecord>>;
    /// The session was used at `now`: its `last_used_at` becomes `now` unless it was set less
    /// than a minute before (one cheap statement, so a session in use is written at most once a
    /// minute, whichever instance serves it). `true` when it changed.
    async fn update_session_last_used(&self, id_hash: &str, now: i64) -> Result<bool>;
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
}

/// Consent: the scopes a user has granted a client.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn find_consent(&self, user_id: &str, client_id: &str) -> Result<Option<Scopes>>;
    /// Replace the scopes granted.
    async fn update_consent(&self, user_id: &str, client_id: &str, scope: &Scopes, now: i64) -> Result<()>;
    /// Every client the user granted, newest first.
    async fn list_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>>;
    /// Remove a consent and, in the same transaction, the user's codes for that client not yet
    /// redeemed; the grants' families ([`ConsentStore::list_grant_families`]) are the caller's
    /// to revoke. False when there was no consent.
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> Result<bool>;
    /// The grants (families) of the user with the client: of live refresh tokens and of codes.
    async fn list_grant_families(&self, user_id: &str, client_id: &str) -> Result<Vec<String>>;
}

/// Authorization codes (RFC 6749 §4.1.2) and their redemption (§4.1.3).
///
/// Contract: of any number of concurrent takes of one code exactly one returns
/// [`Taken::Taken`] (the record as it was before); the others see [`Taken::AlreadyUsed`].
#[async_trait]
pub trait CodeStore: Send + Sync {
    async fn create_code(&self, c: &CodeRecord) -> Result<()>;
    async fn find_code(&self, code_hash: &str) -> Result<Option<CodeRecord>>;
    /// Atomically mark the code used (a failed redemption uses it up too).
    async fn take_code(&self, code_hash: &str, now: i64) -> Result<Taken<CodeRecord>>;
    /// Redeem (RFC 6749 §4.1.3): take the code exactly as [`CodeStore::take_code`] does and, only
    /// if this call takes it, store `next` (the grant's first refresh token) — in one transaction.
    async fn take_code_issuing(&self, code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<CodeRecord>>;
}

/// Refresh tokens (RFC 6749 §1.5, §6), their rotation and their families.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    async fn create_refresh_token(&self, r: &RefreshTokenRecord) -> Result<()>;
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>>;
    /// Atomically mark the token used, unless it is used, revoked or expired. With
    /// `grace_secs > 0`, a token used less than `grace_secs` ago may be taken again. The record
    /// returned carries the time of its first use.
    async fn take_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64) -> Result<Taken<RefreshTokenRecord>>;
    /// Rotate (RFC 6749 §6): take `token_hash` exactly as [`RefreshTokenStore::take_refresh_token`]
    /// does and, only if this call takes it, store `next` — in one transaction. A failure (the
    /// database going away) leaves either the old token untaken or the new one stored: never a
    /// consumed token without its successor, which would turn the client's retry into a "reuse".
    async fn rotate_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<RefreshTokenRecord>>;
    /// Revoke every refresh token of the family (grant) and record the family as revoked (its
    /// access tokens then fail introspection). Returns how many refresh tokens were live.
    async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64>;
}

/// Access token revocation (RFC 7009 §2), by `jti`, kept until the token would expire.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    async fn create_revoked_token(&self, jti: &str, expires_at: i64) -> Result<()>;
    /// True when the token `jti` or its family was revoked.
    async fn is_revoked(&self, jti: &str, family_id: Option<&str>) -> Result<bool>;
}

/// Device authorization (RFC 8628).
#[async_trait]
pub trait DeviceCodeStore: Send + Sync {
    async fn create_device_code(&self, d: &DeviceCodeRecord) -> Result<()>;
    async fn find_device_code(&self, device_code_hash: &str) -> Result<Option<DeviceCodeRecord>>;
    async fn find_device_code_by_user_code(&self, user_code: &str, now: i64) -> Result<Option<DeviceCodeRecord>>;
    /// Approve or deny a pending, unexpired authorization (`oidc`, when given, replaces the
    /// stored context); false when it is no longer pending.
    async fn decide_device_code(&self, user_code: &str, approve: bool, user_id: &str, auth_time: i64, oidc: Option<&OidcContext>, now: i64) -> Result<bool>;
    /// Record a poll at `now` and the (possibly raised) interval.
    async fn update_device_poll(&self, device_code_hash: &str, now: i64, interval: i64) -> Result<()>;
    /// Atomically consume an approved device code (RFC 8628 §3.5: tokens once).
    async fn take_device_code(&self, device_code_hash: &str, now: i64) -> Result<Taken<DeviceCodeRecord>>;
    /// [`DeviceCodeStore::take_device_code`] and, only if this call takes it, store `next` — in
    /// one transaction.
    async fn take_device_code_issuing(&self, device_code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<DeviceCodeRecord>>;
}

/// Throttling of guesses (sign-in passwords, user codes): issue 13, findings 1 and 6.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Take the right to verify one guess under every key of `keys` at once (a username, a
    /// client address), or be refused — atomically, for every process on the database: of any
    /// number of concurrent calls, only as many are allowed as the rules admit (see
    /// [`ThrottleRule::decide`]), so checking a guess can never outrun its counting. An allowed
    /// attempt is counted as a failure on every key *before* the guess is checked; a success
    /// then gives it back ([`ThrottleStore::update_throttle_success`]). Refused: nothing is counted.
    async fn take_throttle_attempt(&self, keys: &[(String, ThrottleRule)], now: i64) -> Result<ThrottleAttempt>;
    /// After a guess that proved right: every key of `reset` starts over (no failures), and
    /// each key of `refund` gives back the one attempt [`ThrottleStore::take_throttle_attempt`]
    /// counted. One transaction.
    async fn update_throttle_success(&self, reset: &[String], refund: &[String]) -> Result<()>;
}

/// DPoP (RFC 9449): the proofs seen (§11.1) and the server's nonces (§8), shared by every
/// process on the database.
#[async_trait]
pub trait DpopStore: Send + Sync {
    /// Record the proof `id` (a hash of its key's thumbprint and its `jti`) until `expires_at`
    /// (when its `iat` leaves the accepted window): true the first time, false for a replay —
    /// atomically, of any number of concurrent calls with one `id` exactly one gets true. An
    /// entry past its `expires_at` (`now`) counts as absent.
    async fn create_dpop_proof(&self, id: &str, expires_at: i64, now: i64) -> Result<bool>;
    /// Remember a nonce this server issued, by hash, until `expires_at`.
    async fn create_dpop_nonce(&self, nonce_hash: &str, expires_at: i64) -> Result<()>;
    /// Whether a nonce (by hash) was issued by any process and is still valid at `now`.
    async fn find_dpop_nonce(&self, nonce_hash: &str, now: i64) -> Result<bool>;
}

/// Groups of users. Deleting a group takes its memberships and the roles granted to it along,
/// in one transaction.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// `Conflict` when the name is taken.
    async fn create_group(&self, g: &GroupRecord) -> Result<()>;
    async fn find_group(&self, name: &str) -> Result<Option<GroupRecord>>;
    async fn list_groups(&self) -> Result<Vec<GroupRecord>>;
    async fn delete_group(&self, name: &str) -> Result<bool>;
    /// True when the user became a member: false when they already were, or the group or the
    /// user does not exist (at the moment of the insert).
    async fn create_group_member(&self, group: &str, user_id: &str) -> Result<bool>;
    async fn delete_group_member(&self, group: &str, user_id: &str) -> Result<bool>;
    /// The ids of a group's members, sorted.
    async fn list_group_members(&self, group: &str) -> Result<Vec<String>>;
    /// The names of a user's groups, sorted.
    async fn list_user_groups(&self, user_id: &str) -> Result<Vec<String>>;
}

/// Roles APIs declare, granted to users and groups. Deleting an API, a user or a group takes
/// their grants along.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// True when new: false when it already existed, or the API or the assignee does not exist.
    async fn create_role_assignment(&self, r: &RoleAssignment) -> Result<bool>;
    async fn delete_role_assignment(&self, r: &RoleAssignment) -> Result<bool>;
    async fn list_role_assignments(&self, api: &str) -> Result<Vec<RoleAssignment>>;
    /// The roles of `api` the user holds, directly or through a group, sorted.
    async fn find_user_roles(&self, user_id: &str, api: &str) -> Result<Vec<String>>;
}

/// The JWT bearer grant (RFC 7523 §2.1): its one-time value is the assertion's `jti`.
#[async_trait]
pub trait AssertionStore: Send + Sync {
    /// Consume the assertion `id` (a hash of its client and its `jti`), remembered until
    /// `expires_at` (its `exp`): true the first time, false for a replay — of any number of
    /// concurrent calls with one `id` exactly one gets true. An entry past its `expires_at`
    /// (`now`) counts as absent.
    async fn take_assertion(&self, id: &str, expires_at: i64, now: i64) -> Result<bool>;
}

/// Security-relevant events (e.g. code replay), for operators.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// An event of the server itself, concerning no particular user or client.
    async fn create_audit_event(&self, kind: &str, detail: &str, now: i64) -> Result<()>;
    /// The details of every event of `kind`, oldest first.
    async fn list_audit_events(&self, kind: &str) -> Result<Vec<String>>;
    /// An event with who did it and whom it concerns.
    async fn record_audit_event(&self, e: &NewAuditEvent<'_>, now: i64) -> Result<()>;
    /// Events matching `q`, newest first, at most `q.limit`; the next page starts below the
    /// last one's id (`q.before_id`).
    async fn find_audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>>;
    /// Delete at most `limit` events older than `at` (the retention); how many went.
    async fn delete_audit_events_before(&self, at: i64, limit: i64) -> Result<u64>;
}

/// Configuration as code (`tessera apply`, issue 16).
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// Every change, in order ([`crate::sql::config_statements`]), in one transaction: all of
    /// them or, on any failure, none.
    async fn apply_config(&self, changes: &[ConfigChange]) -> Result<()>;
    /// The objects earlier applies created, as `(kind, key)`: what `--prune` may delete.
    async fn list_applied(&self) -> Result<Vec<(String, String)>>;
}

/// Housekeeping.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Delete expired rows (the windows of [`crate::sql::EXPIRED`]: codes, sessions, pending
    /// requests, device codes, refresh tokens past their family's end, revocations of expired
    /// tokens, old sign-in failures and throttle keys, old session client lists), at most
    /// `batch` per table. Returns how many rows went.
    async fn delete_expired(&self, now: i64, batch: i64) -> Result<u64>;

    /// Whether the database answers now: one trivial statement ([`crate::sql::PING`]);
    /// [`crate::StoreError::Unavailable`] when it does not, within the backend's bound on
    /// waiting for a connection (what `/health/ready` reports).
    async fn ping(&self) -> Result<()>;

    /// The connection pool's (open, idle, maximum), for a backend that has one.
    fn pool_stats(&self) -> Option<(u32, u32, u32)> {
        None
    }
}

/// [`Store`] and its blanket implementation, over one list of the capabilities.
macro_rules! umbrella {
    ($($capability:ident),+) => {
        /// The whole storage contract: every capability. Implemented for every type that
        /// implements them all, so a backend implements the narrow traits and call sites hold one
        /// `Arc<dyn Store>` (methods of the narrow traits are callable on it without importing
        /// them; on a concrete backend type, import [`crate::prelude`]).
        pub trait Store: $($capability +)+ 'static {}

        impl<T: $($capability +)+ 'static> Store for T {}
    };
}

umbrella!(
    ClientStore,
    ConfigStore,
    UserStore,
    FactorStore,
    UserTokenStore,
    ApiStore,
    KeyStore,
    SessionStore,
    ConsentStore,
    CodeStore,
    RefreshTokenStore,
    RevocationStore,
    DeviceCodeStore,
    ThrottleStore,
    DpopStore,
    AssertionStore,
    GroupStore,
    RoleStore,
    AuditStore,
    MaintenanceStore
);
