//! Administration: registering clients (RFC 7591 §2 metadata names), resource owners and
//! resource servers ("APIs"). The CLI calls these directly on the store; the running server sees
//! every change on its next request.

use crate::secret;
use crate::service::authn::Argon2Params;
use tessera_protocol::client::{AuthMethod, GrantType};
use tessera_protocol::redirect::validate_registration;
use tessera_protocol::scope::{Scopes, is_scope_token};
use tessera_storage::{ApiRecord, ApiRole, ApiScope, Assignee, ClientRecord, GroupRecord, RoleAssignment, Store, StoreError, UserRecord};

/// An administration failure, with a message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The name or identifier is taken; `field` names it (for the admin API's errors).
    #[error("{message}")]
    Conflict { field: &'static str, message: String },
    /// Nothing was changed: the hashing threads are at capacity; try again shortly.
    #[error("the server is busy; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(s: impl Into<String>) -> AdminError {
    AdminError::Invalid(s.into())
}

/// What `tessera client create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scope: String,
    pub grant_types: Vec<String>,
    pub public: bool,
    pub token_endpoint_auth_method: Option<String>,
    /// OpenID Connect RP-Initiated Logout 1.0 §3.1.
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect Back-Channel Logout 1.0 §2.2.
    pub backchannel_logout_uri: Option<String>,
    /// RS256 (default), ES256 or EdDSA.
    pub id_token_signed_response_alg: Option<String>,
    /// Accept a `backchannel_logout_uri` in private, loopback or link-local ranges (the setting
    /// `--allow-private-logout-uris`; development and tests).
    pub allow_private_logout_uris: bool,
    /// Browser origins beyond the redirect URIs' (`--allowed-origin`, repeatable).
    pub allowed_origins: Vec<String>,
    /// Every token request must carry a DPoP proof (`--require-dpop`, RFC 9449).
    pub require_dpop: bool,
    /// Users must sign in with a second factor for this client (`--require-mfa`).
    pub require_mfa: bool,
    /// The client's public keys (`--jwks FILE`: a JWK Set or one JWK, RFC 7517), which sign its
    /// JWT bearer assertions (RFC 7523 §2.1).
    pub jwks: Option<String>,
    /// A chosen client id (`tessera apply` declares them); `None`: a random one.
    pub client_id: Option<String>,
}

/// A registered client and, for confidential clients, its secret in the clear: shown once.
#[derive(Debug)]
pub struct CreatedClient {
    pub client: ClientRecord,
    pub client_secret: Option<String>,
}

pub async fn create_client(store: &dyn Store, req: NewClient, now: i64) -> Result<CreatedClient, AdminError> {
    let created = new_client_record(req, now)?;
    match store.create_client(&created.client).await {
        Err(StoreError::Conflict(_)) => {
            Err(AdminError::Conflict { field: "client_id", message: format!("client {} already exists", created.client.client_id) })
        }
        other => other.map(|_| created).map_err(Into::into),
    }
}

/// The client [`create_client`] registers, checked, not yet stored (with its secret, if any).
pub fn new_client_record(req: NewClient, now: i64) -> Result<CreatedClient, AdminError> {
    if let Some(id) = &req.client_id {
        if !(1..=64).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(invalid("client_id must be 1 to 64 letters, digits and . _ -"));
        }
    }
    let name = req.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(invalid("--name must be 1 to 200 characters"));
    }
    let scopes = Scopes::parse(&req.scope).map_err(|e| invalid(format!("--scope: {}", e.description)))?;
    let grant_names = if req.grant_types.is_empty() { vec!["authorization_code".to_string(), "refresh_token".to_string()] } else { req.grant_types.clone() };
    let mut grants = Vec::new();
    for g in &grant_names {
        let gt: GrantType = g.parse().map_err(|e: String| invalid(format!("--grant-type: {e}")))?;
        if !GrantType::SUPPORTED.contains(&gt) {
            return Err(invalid(format!("--grant-type: {gt} is not supported by this server")));
        }
        if !grants.contains(&gt) {
            grants.push(gt);
        }
    }
    let method = match (&req.token_endpoint_auth_method, req.public) {
        (None, true) => AuthMethod::None,
        (None, false) => AuthMethod::ClientSecretBasic,
        (Some(m), public) => {
            let m: AuthMethod = m.parse().map_err(|e: String| invalid(format!("--token-auth-method: {e}")))?;
            if public && m != AuthMethod::None {
                return Err(invalid("--public clients authenticate with --token-auth-method none"));
            }
            m
        }
    };
    let uses_redirect = grants.contains(&GrantType::AuthorizationCode);
    if uses_redirect && req.redirect_uris.is_empty() {
        return Err(invalid("--redirect-uri is required for the authorization_code grant"));
    }
    for u in &req.redirect_uris {
        validate_registration(u).map_err(|e| invalid(format!("--redirect-uri: {e}")))?;
    }
    for u in &req.post_logout_redirect_uris {
        validate_registration(u).map_err(|e| invalid(format!("--post-logout-redirect-uri: {e}")))?;
    }
    if let Some(u) = &req.backchannel_logout_uri {
        // Back-Channel Logout 1.0 §2.2: an absolute URI without a fragment; https off loopback.
        let url = validate_registration(u).map_err(|e| invalid(format!("--backchannel-logout-uri: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(invalid("--backchannel-logout-uri must be an http(s) URI"));
        }
        // The server POSTs to this URI: not into its own network (issue 13, finding 11).
        super::backchannel::check_uri(&url, req.allow_private_logout_uris).map_err(|e| invalid(format!("--backchannel-logout-uri: {e}")))?;
    }
    if let Some(a) = &req.id_token_signed_response_alg {
        if !matches!(a.as_str(), "RS256" | "ES256" | "EdDSA") {
            return Err(invalid("--id-token-signed-response-alg must be RS256, ES256 or EdDSA"));
        }
    }
    let allowed_origins = allowed_origins(&req.allowed_origins)?;
    let jwks = req.jwks.as_deref().map(client_jwks).transpose()?;
    if grants.contains(&GrantType::JwtBearer) {
        if method == AuthMethod::None {
            return Err(invalid("--public clients may not use the jwt-bearer grant (the client authenticates as well as signing)"));
        }
        if jwks.is_none() {
            return Err(invalid("--jwks is required for the jwt-bearer grant (the keys that sign the client's assertions)"));
        }
    }
    let client_secret = (method != AuthMethod::None).then(secret::random_token);
    let client = ClientRecord {
        client_id: req.client_id.clone().unwrap_or_else(secret::random_alnum_id),
        name: name.to_string(),
        secret_hash: client_secret.as_deref().map(secret::hash),
        redirect_uris: req.redirect_uris.clone(),
        scope: scopes,
        grant_types: grants,
        token_endpoint_auth_method: method,
        created_at: now,
        post_logout_redirect_uris: req.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: req.backchannel_logout_uri.clone(),
        id_token_signed_response_alg: req.id_token_signed_response_alg.clone(),
        subject_type: "public".into(),
        allowed_origins,
        require_dpop: req.require_dpop,
        jwks,
        require_mfa: req.require_mfa,
    };
    Ok(CreatedClient { client, client_secret })
}

/// What `tessera client update` changes; `None`: unchanged. A list given replaces the list.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub scope: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub require_dpop: Option<bool>,
    pub require_mfa: Option<bool>,
    /// `Some(Some(text))`: new keys (`--jwks FILE`); `Some(None)`: none (`--clear-jwks`).
    pub jwks: Option<Option<String>>,
}

/// Change a client's registration, validated as at creation; returns the new record.
pub async fn update_client(store: &dyn Store, client_id: &str, changes: ClientChanges) -> Result<ClientRecord, AdminError> {
    let mut c = store.find_client(client_id).await?.ok_or_else(|| AdminError::NotFound(format!("no client {client_id}")))?;
    if let Some(name) = changes.name {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(invalid("--name must be 1 to 200 characters"));
        }
        c.name = name.to_string();
    }
    if let Some(uris) = changes.redirect_uris {
        if c.grant_types.contains(&GrantType::AuthorizationCode) && uris.is_empty() {
            return Err(invalid("--redirect-uri is required for the authorization_code grant"));
        }
        for u in &uris {
            validate_registration(u).map_err(|e| invalid(format!("--redirect-uri: {e}")))?;
        }
        c.redirect_uris = uris;
    }
    if let Some(scope) = changes.scope {
        c.scope = Scopes::parse(&scope).map_err(|e| invalid(format!("--scope: {}", e.description)))?;
    }
    if let Some(origins) = changes.allowed_origins {
        c.allowed_origins = allowed_origins(&origins)?;
    }
    if let Some(required) = changes.require_dpop {
        c.require_dpop = required;
    }
    if let Some(required) = changes.require_mfa {
        c.require_mfa = required;
    }
    if let Some(jwks) = changes.jwks {
        c.jwks = jwks.as_deref().map(client_jwks).transpose()?;
        if c.jwks.is_none() && c.grant_types.contains(&GrantType::JwtBearer) {
            return Err(invalid("--clear-jwks: the client uses the jwt-bearer grant, which needs its keys"));
        }
    }
    if !store.update_client(&c).await? {
        return Err(AdminError::NotFound(format!("no client {client_id}")));
    }
    Ok(c)
}

/// `--allowed-origin` values, each an exact origin (`tessera_protocol::cors::validate_origin`).
fn allowed_origins(values: &[String]) -> Result<Vec<String>, AdminError> {
    let mut out = Vec::new();
    for v in values {
        let o = tessera_protocol::cors::validate_origin(v).map_err(|e| AdminError::Invalid(format!("--allowed-origin: {e}")))?;
        if !out.contains(&o) {
            out.push(o);
        }
    }
    Ok(out)
}

/// Most keys one client may register, and the largest JWK Set text accepted.
const MAX_CLIENT_KEYS: usize = 10;
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// `--jwks`: a JWK Set (RFC 7517 §5) or a single JWK, of public keys Tessera can verify with
/// (EC P-256/P-384, Ed25519, RSA of at least 2048 bits), stored as a JWK Set.
pub fn client_jwks(text: &str) -> Result<serde_json::Value, AdminError> {
    use serde_json::Value;
    if text.len() > MAX_JWKS_BYTES {
        return Err(invalid("--jwks: the key file is larger than 64 KiB"));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| invalid(format!("--jwks: not JSON: {e}")))?;
    let keys = match v {
        Value::Object(mut o) if o.contains_key("keys") => match o.remove("keys") {
            Some(Value::Array(keys)) => keys,
            _ => return Err(invalid("--jwks: \"keys\" must be an array")),
        },
        single @ Value::Object(_) => vec![single],
        _ => return Err(invalid("--jwks: expected a JWK Set ({\"keys\": [...]}) or a JWK")),
    };
    if keys.is_empty() || keys.len() > MAX_CLIENT_KEYS {
        return Err(invalid(format!("--jwks: 1 to {MAX_CLIENT_KEYS} keys")));
    }
    for (i, k) in keys.iter().enumerate() {
        let n = i + 1;
        // RFC 7638: the key's required members; private and symmetric members are refused.
        tessera_dpop::thumbprint(k).map_err(|e| invalid(format!("--jwks: key {n}: {e}")))?;
        let member = |m: &str| k.get(m).and_then(Value::as_str);
        match (member("kty"), member("crv")) {
            (Some("EC"), Some("P-256" | "P-384")) | (Some("OKP"), Some("Ed25519")) => {}
            (Some("RSA"), _) => {
                let bits = member("n").map(|n| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, n).map_or(0, |b| b.len() * 8));
                if bits.unwrap_or(0) < 2048 {
                    return Err(invalid(format!("--jwks: key {n}: RSA keys must have at least 2048 bits")));
                }
            }
            _ => return Err(invalid(format!("--jwks: key {n}: only EC P-256/P-384, Ed25519 and RSA keys are accepted"))),
        }
        if let Some(alg) = member("alg") {
            if !tessera_dpop::SUPPORTED_ALGS.contains(&alg) {
                return Err(invalid(format!("--jwks: key {n}: alg {alg} is not accepted (ES256, ES384, EdDSA, RS256, PS256)")));
            }
        }
        if member("use").is_some_and(|u| u != "sig") {
            return Err(invalid(format!("--jwks: key {n}: \"use\" must be \"sig\"")));
        }
    }
    Ok(serde_json::json!({ "keys": keys }))
}

/// Replace a confidential client's secret; returns the new secret (shown once).
pub async fn rotate_client_secret(store: &dyn Store, client_id: &str) -> Result<String, AdminError> {
    let client = store.find_client(client_id).await?.ok_or_else(|| AdminError::NotFound(format!("no client {client_id}")))?;
    if client.secret_hash.is_none() {
        return Err(invalid(format!("client {client_id} is public and has no secret")));
    }
    let s = secret::random_token();
    store.update_client_secret(client_id, &secret::hash(&s)).await?;
    Ok(s)
}

/// What `tessera user create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Further standard claims (OpenID Connect Core §5.1).
    pub profile: serde_json::Map<String, serde_json::Value>,
}

/// Standard claims settable from the CLI (OIDC Core §5.1); `address` members are grouped.
pub const PROFILE_CLAIMS: &[&str] = &[
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
];
pub const ADDRESS_CLAIMS: &[&str] = &["formatted", "street_address", "locality", "region", "postal_code", "country"];

/// Check profile values: known names, booleans where OIDC says boolean.
fn check_profile(profile: &serde_json::Map<String, serde_json::Value>) -> Result<(), AdminError> {
    for (k, v) in profile {
        match k.as_str() {
            "email_verified" | "phone_number_verified" if !v.is_boolean() => return Err(invalid(format!("{k} must be true or false"))),
            "address" if !v.is_object() => return Err(invalid("address must be an object")),
            "address" => {}
            k if PROFILE_CLAIMS.contains(&k) => {}
            other => return Err(invalid(format!("unknown profile claim {other}"))),
        }
    }
    Ok(())
}

/// Change a user's email, name and profile claims (`tessera user update`): given values
/// replace, `Value::Null` removes.
pub async fn update_user(
    store: &dyn Store,
    username: &str,
    email: Option<String>,
    name: Option<String>,
    changes: serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Result<UserRecord, AdminError> {
    let mut user = store.find_user_by_username(username).await?.ok_or_else(|| AdminError::NotFound(format!("no user {username}")))?;
    if let Some(e) = email {
        if !e.contains('@') || e.len() > 254 {
            return Err(invalid("--email is not an email address"));
        }
        user.email = Some(e);
    }
    if let Some(n) = name {
        user.name = Some(n);
    }
    for (k, v) in changes {
        if v.is_null() {
            user.profile.remove(&k);
        } else if k == "address" {
            let mut merged = user.profile.get("address").and_then(|a| a.as_object().cloned()).unwrap_or_default();
            if let Some(obj) = v.as_object() {
                for (ak, av) in obj {
                    merged.insert(ak.clone(), av.clone());
                }
            }
            user.profile.insert(k, serde_json::Value::Object(merged));
        } else {
            user.profile.insert(k, v);
        }
    }
    check_profile(&user.profile)?;
    user.updated_at = now;
    store.update_user(&user).await?;
    Ok(user)
}

/// The default rules: at least 8 characters (NIST SP 800-63B §5.1.1.2), at most 1024.
pub fn check_password(password: &str) -> Result<(), AdminError> {
    PasswordPolicy::default().check(password, Factors::PasswordOnly)
}

/// What a new password must be (NIST SP 800-63B §5.1.1.2): long enough, not longer than 1024
/// characters, and not in a list of passwords known from breaches. No composition rules.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// At least this many characters (8 to 64; default 8).
    pub min_length: usize,
    /// At least this many when the password is the account's only factor
    /// (`--password-min-length-single-factor`; NIST SP 800-63B-4 §3.1.1.2: "at least 15
    /// characters" for a single-factor password, 8 with a second factor); `None`: off.
    pub min_length_single_factor: Option<usize>,
    /// SHA-1 digests of breached passwords (`--breached-passwords FILE`).
    pub breached: Option<std::sync::Arc<std::collections::HashSet<[u8; 20]>>>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8, min_length_single_factor: None, breached: None }
    }
}

/// Whether a new password is to be its account's only factor (the user has no second factor:
/// no rows in `list_factors`, or is being created) or the first of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factors {
    PasswordOnly,
    WithSecondFactor,
}

impl Factors {
    /// The user's factors as the store has them.
    pub async fn of(store: &dyn Store, user_id: &str) -> Result<Self, StoreError> {
        Ok(if store.list_factors(user_id).await?.is_empty() { Self::PasswordOnly } else { Self::WithSecondFactor })
    }
}

impl PasswordPolicy {
    /// The fewest characters a new password for an account with `factors` may have.
    pub fn min_length_for(&self, factors: Factors) -> usize {
        match (factors, self.min_length_single_factor) {
            (Factors::PasswordOnly, Some(n)) => n.max(self.min_length),
            _ => self.min_length,
        }
    }

    /// Refuse a password the rules do not admit for an account with `factors`, with the reason
    /// for the person choosing it.
    pub fn check(&self, password: &str, factors: Factors) -> Result<(), AdminError> {
        let n = password.chars().count();
        if n < self.min_length || n > 1024 {
            return Err(invalid(format!("the password must be {} to 1024 characters", self.min_length)));
        }
        let single = self.min_length_for(Factors::PasswordOnly);
        if factors == Factors::PasswordOnly && n < single {
            return Err(invalid(format!(
                "a password that is the account's only factor must be at least {single} characters, or set up two-step sign-in first"
            )));
        }
        if let Some(list) = &self.breached {
            if list.contains(&sha1_of(password)) {
                return Err(invalid("the password appears in a list of passwords exposed in data breaches; choose another"));
            }
        }
        Ok(())
    }

    /// Read a breached-password list: one entry per line, either a SHA-1 digest in hex (40
    /// characters, any case, optionally followed by `:COUNT` as in the Pwned Passwords
    /// downloads) or a password in the clear; blank lines and `#` comments are skipped.
    pub fn parse_breached(text: &str) -> std::collections::HashSet<[u8; 20]> {
        let mut set = std::collections::HashSet::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let head = line.split(':').next().unwrap_or("");
            let digest = (head.len() == 40).then(|| hex_digest(head)).flatten();
            set.insert(digest.unwrap_or_else(|| sha1_of(line)));
        }
        set
    }
}

fn sha1_of(s: &str) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(s.as_bytes()).into()
}

fn hex_digest(h: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    for (i, chunk) in h.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// A page of users by username (the admin API's and the console's list): those after `after`
/// whose username, email or name contains `search` (any case), at most `limit`, and the
/// username to continue after when there are more.
pub async fn find_users(store: &dyn Store, search: Option<&str>, after: Option<&str>, limit: usize) -> Result<(Vec<UserRecord>, Option<String>), AdminError> {
    let needle = search.map(str::to_lowercase).filter(|n| !n.is_empty());
    let mut all = store.list_users().await?;
    all.sort_by(|a, b| a.username.cmp(&b.username));
    let matching = all.into_iter().filter(|u| after.is_none_or(|a| u.username.as_str() > a)).filter(|u| match &needle {
        None => true,
        Some(n) => [Some(&u.username), u.email.as_ref(), u.name.as_ref()].into_iter().flatten().any(|v| v.to_lowercase().contains(n.as_str())),
    });
    let mut users: Vec<UserRecord> = matching.take(limit + 1).collect();
    let next_after = if users.len() > limit {
        users.truncate(limit);
        users.last().map(|u| u.username.clone())
    } else {
        None
    };
    Ok((users, next_after))
}

/// A new password for an account with `factors`, checked by the policy
/// ([`PasswordPolicy::check`]) and hashed with Argon2id under `argon2` on the hashing threads
/// (never on an async worker): what the admin API, the console, the account page, the CLI and
/// `apply` store ([`crate::Tessera::new_password_hash`] in the server).
pub async fn hash_new_password(policy: &PasswordPolicy, argon2: &Argon2Params, password: String, factors: Factors) -> Result<String, AdminError> {
    policy.check(&password, factors)?;
    let argon2 = *argon2;
    match crate::service::authn::on_hashing_thread(move || argon2.hash(&password)).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => Err(invalid(e)),
        Err(_) => Err(AdminError::Busy),
    }
}

/// The checks of a new user's username and email (`tessera user create`).
fn check_new_user(req: &NewUser) -> Result<(), AdminError> {
    let username = req.username.trim();
    if username.is_empty() || username.chars().count() > 64 || username.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("--username must be 1 to 64 characters without spaces"));
    }
    if let Some(e) = &req.email {
        if !e.contains('@') || e.len() > 254 {
            return Err(invalid("--email is not an email address"));
        }
    }
    Ok(())
}

/// A user with `password` (the default rules) hashed under `argon2` (`tessera demo`; tests).
pub async fn create_user(store: &dyn Store, req: NewUser, password: &str, argon2: &Argon2Params, now: i64) -> Result<UserRecord, AdminError> {
    check_new_user(&req)?;
    check_password(password)?;
    check_profile(&req.profile)?;
    let hash = argon2.hash(password).map_err(invalid)?;
    create_user_with_hash(store, req, hash, now).await
}

/// [`create_user`] with the password already hashed: `password_hash` is a PHC string that
/// [`Argon2Params::hash`] made. Seeds users sharing one password without an Argon2 run each (the
/// integration-test fixtures hash their password once per process).
pub async fn create_user_with_hash(store: &dyn Store, req: NewUser, password_hash: String, now: i64) -> Result<UserRecord, AdminError> {
    let user = new_user_record(req, password_hash, now)?;
    let username = user.username.clone();
    match store.create_user(&user).await {
        Err(StoreError::Conflict(_)) => Err(invalid(format!("user {username} already exists"))),
        other => other.map(|_| user).map_err(Into::into),
    }
}

/// The user [`create_user_with_hash`] creates, checked, not yet stored.
pub fn new_user_record(req: NewUser, password_hash: String, now: i64) -> Result<UserRecord, AdminError> {
    check_new_user(&req)?;
    check_profile(&req.profile)?;
    if argon2::PasswordHash::new(&password_hash).is_err() {
        return Err(invalid("the password hash is not a PHC string"));
    }
    let username = req.username.trim();
    let user = UserRecord {
        id: secret::random_alnum_id(),
        username: username.to_string(),
        email: req.email,
        name: req.name,
        password_hash,
        created_at: now,
        profile: req.profile,
        updated_at: now,
        disabled_at: None,
        is_admin: false,
        require_mfa: false,
        email_verified: false,
    };
    Ok(user)
}

/// `tessera user set-password`. A new password ends what the old one gave (RFC 9700 §4.14.2):
/// in the same transaction the user's refresh tokens are revoked, their unredeemed codes and
/// approved device codes dropped, and every session of theirs ends (the CLI has no session of
/// its own to keep). Access tokens already issued run to their expiry (10 minutes).
pub async fn set_password(store: &dyn Store, username: &str, password: &str, argon2: &Argon2Params, now: i64) -> Result<(), AdminError> {
    check_password(password)?;
    let hash = argon2.hash(password).map_err(invalid)?;
    set_password_hash(store, username, &hash, now).await
}

/// [`set_password`] with the Argon2id hash made by the caller (the server hashes off its async
/// workers).
pub async fn set_password_hash(store: &dyn Store, username: &str, hash: &str, now: i64) -> Result<(), AdminError> {
    if store.update_user_password(username, hash, None, now).await? { Ok(()) } else { Err(AdminError::NotFound(format!("no user {username}"))) }
}

/// `tessera user delete`: the user and, in the same transaction, their sessions, refresh tokens,
/// codes, device codes and consents (RFC 9700 §4.14.2). No revocation is written (the running
/// SQLite server keeps those in memory): the server refuses the user's codes and refresh tokens
/// at redemption and reports their access tokens inactive at introspection and UserInfo.
pub async fn delete_user(store: &dyn Store, username: &str) -> Result<(), AdminError> {
    if store.delete_user(username).await? { Ok(()) } else { Err(AdminError::NotFound(format!("no user {username}"))) }
}

/// Parse `--scope "name=Description"`.
pub fn parse_api_scope(s: &str) -> Result<ApiScope, AdminError> {
    let (name, description) = s.split_once('=').ok_or_else(|| invalid(format!("--scope {s:?}: expected NAME=Description")))?;
    let (name, description) = (name.trim(), description.trim());
    if !is_scope_token(name) {
        return Err(invalid(format!("--scope {s:?}: {name:?} is not a valid scope name (RFC 6749 section 3.3)")));
    }
    if description.is_empty() || description.len() > 300 {
        return Err(invalid(format!("--scope {s:?}: the description must be 1 to 300 characters")));
    }
    Ok(ApiScope { name: name.into(), description: description.into() })
}

/// Register a resource server. RFC 8707 §2: its identifier "MUST be an absolute URI" and
/// "MUST NOT include a fragment component". Scope names are unique across all APIs, so a scope
/// alone names its audience.
pub async fn create_api(store: &dyn Store, identifier: &str, name: &str, scopes: Vec<ApiScope>, now: i64) -> Result<ApiRecord, AdminError> {
    create_api_with_roles(store, identifier, name, scopes, vec![], now).await
}

/// `--role NAME=Description`: a role an API declares (its name as its tokens carry it).
pub fn parse_api_role(s: &str) -> Result<ApiRole, AdminError> {
    let (name, description) = s.split_once('=').ok_or_else(|| invalid(format!("--role {s:?}: expected NAME=Description")))?;
    let (name, description) = (name.trim(), description.trim());
    if !is_name(name) {
        return Err(invalid(format!("--role {s:?}: a role name is 1 to 64 letters, digits and . _ : -")));
    }
    if description.is_empty() || description.len() > 300 {
        return Err(invalid(format!("--role {s:?}: the description must be 1 to 300 characters")));
    }
    Ok(ApiRole { name: name.into(), description: description.into() })
}

/// A group's or a role's name: 1 to 64 of ASCII letters, digits and `. _ : -` (what a token's
/// `groups` or `roles` claim carries and an app compares).
pub fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
}

/// Register a resource server that declares `roles`; see [`create_api`].
pub async fn create_api_with_roles(
    store: &dyn Store,
    identifier: &str,
    name: &str,
    scopes: Vec<ApiScope>,
    roles: Vec<ApiRole>,
    now: i64,
) -> Result<ApiRecord, AdminError> {
    for r in &roles {
        if roles.iter().filter(|x| x.name == r.name).count() > 1 {
            return Err(invalid(format!("role {} is given twice", r.name)));
        }
    }
    let url = url::Url::parse(identifier).map_err(|_| invalid(format!("--identifier {identifier:?} must be an absolute URI")))?;
    if url.fragment().is_some() {
        return Err(invalid("--identifier must not contain a fragment"));
    }
    if name.trim().is_empty() {
        return Err(invalid("--name must not be empty"));
    }
    if scopes.is_empty() {
        return Err(invalid("at least one --scope is required"));
    }
    let existing = store.list_apis().await?;
    let taken = || AdminError::Conflict { field: "identifier", message: format!("API {identifier} already exists") };
    if existing.iter().any(|a| a.identifier == identifier) {
        return Err(taken());
    }
    for s in &scopes {
        if let Some(a) = existing.iter().find(|a| a.scopes.iter().any(|x| x.name == s.name)) {
            return Err(invalid(format!("scope {} is already defined by API {}", s.name, a.identifier)));
        }
        if scopes.iter().filter(|x| x.name == s.name).count() > 1 {
            return Err(invalid(format!("scope {} is given twice", s.name)));
        }
    }
    let api = ApiRecord { identifier: identifier.to_string(), name: name.trim().to_string(), scopes, created_at: now, secret_hash: None, roles };
    match store.create_api(&api).await {
        Err(StoreError::Conflict(_)) => Err(taken()),
        other => other.map(|_| api).map_err(Into::into),
    }
}

/// Create a group (`tessera group create`).
pub async fn create_group(store: &dyn Store, name: &str, description: Option<&str>, now: i64) -> Result<GroupRecord, AdminError> {
    let name = name.trim();
    if !is_name(name) {
        return Err(invalid("a group name is 1 to 64 letters, digits and . _ : -"));
    }
    let description = description.unwrap_or("").trim();
    if description.len() > 300 {
        return Err(invalid("--description must be at most 300 characters"));
    }
    let g = GroupRecord { name: name.to_string(), description: description.to_string(), created_at: now };
    match store.create_group(&g).await {
        Err(StoreError::Conflict(_)) => Err(AdminError::Conflict { field: "name", message: format!("group {name} already exists") }),
        other => other.map(|_| g).map_err(Into::into),
    }
}

/// Delete a group, its memberships and the roles granted to it.
pub async fn delete_group(store: &dyn Store, name: &str) -> Result<(), AdminError> {
    if store.delete_group(name).await? { Ok(()) } else { Err(AdminError::NotFound(format!("no group {name}"))) }
}

async fn user_named(store: &dyn Store, username: &str) -> Result<UserRecord, AdminError> {
    store.find_user_by_username(username).await?.ok_or_else(|| AdminError::NotFound(format!("no user {username}")))
}

async fn group_named(store: &dyn Store, name: &str) -> Result<GroupRecord, AdminError> {
    store.find_group(name).await?.ok_or_else(|| AdminError::NotFound(format!("no group {name}")))
}

/// Add a user to a group; false when they already were a member.
pub async fn add_group_member(store: &dyn Store, group: &str, username: &str) -> Result<bool, AdminError> {
    let g = group_named(store, group).await?;
    let u = user_named(store, username).await?;
    if store.create_group_member(&g.name, &u.id).await? {
        return Ok(true);
    }
    // Not added: already a member, or the group or the user went meanwhile.
    if store.list_user_groups(&u.id).await?.contains(&g.name) {
        Ok(false)
    } else {
        Err(AdminError::NotFound(format!("no group {group} or no user {username}")))
    }
}

/// Remove a user from a group; false when they were not a member.
pub async fn remove_group_member(store: &dyn Store, group: &str, username: &str) -> Result<bool, AdminError> {
    let g = group_named(store, group).await?;
    let u = user_named(store, username).await?;
    Ok(store.delete_group_member(&g.name, &u.id).await?)
}

/// A group's members, by username.
pub async fn group_members(store: &dyn Store, group: &str) -> Result<Vec<String>, AdminError> {
    let g = group_named(store, group).await?;
    let mut names = Vec::new();
    for id in store.list_group_members(&g.name).await? {
        if let Some(u) = store.find_user(&id).await? {
            names.push(u.username);
        }
    }
    names.sort();
    Ok(names)
}

/// Who a role is granted to: `--user USERNAME` or `--group NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleHolder {
    User(String),
    Group(String),
}

/// The stored grant of `role` of `api` to `holder`, checked: the API declares the role and
/// the holder exists.
async fn role_assignment(store: &dyn Store, api: &str, role: &str, holder: &RoleHolder) -> Result<RoleAssignment, AdminError> {
    let a = store.list_apis().await?.into_iter().find(|a| a.identifier == api).ok_or_else(|| AdminError::NotFound(format!("no API {api}")))?;
    if !a.roles.iter().any(|r| r.name == role) {
        let declared = a.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(invalid(format!("API {api} declares no role {role} (it declares: {})", if declared.is_empty() { "none" } else { &declared })));
    }
    let assignee = match holder {
        RoleHolder::User(username) => Assignee::User(user_named(store, username).await?.id),
        RoleHolder::Group(name) => Assignee::Group(group_named(store, name).await?.name),
    };
    Ok(RoleAssignment { api: a.identifier, role: role.to_string(), assignee })
}

/// Grant a role of an API to a user or a group; false when it already was. Tokens issued
/// from now on carry it (refreshed ones included).
pub async fn grant_role(store: &dyn Store, api: &str, role: &str, holder: &RoleHolder) -> Result<bool, AdminError> {
    let r = role_assignment(store, api, role, holder).await?;
    Ok(store.create_role_assignment(&r).await?)
}

/// Take a role back; false when it was not granted.
pub async fn revoke_role(store: &dyn Store, api: &str, role: &str, holder: &RoleHolder) -> Result<bool, AdminError> {
    let r = role_assignment(store, api, role, holder).await?;
    Ok(store.delete_role_assignment(&r).await?)
}

/// Record an administrative change (`admin.…`) made by `actor` (`cli:NAME` for the CLI) in the
/// audit log.
pub async fn record_change(
    store: &dyn Store,
    actor: &str,
    kind: &str,
    user_id: Option<&str>,
    client_id: Option<&str>,
    detail: &str,
    now: i64,
) -> Result<(), AdminError> {
    let e = tessera_storage::NewAuditEvent { kind, actor, user_id, client_id, detail };
    Ok(store.record_audit_event(&e, now).await?)
}

/// Remove a user's access for a client ("Remove access"): every grant of theirs with it is
/// revoked (refresh tokens, and the access tokens of those grants at introspection and
/// UserInfo), then the consent goes with the codes not yet redeemed; the next authorization
/// asks for consent again. Runs in the server process (revocations are the server's to write).
/// Returns how many grants were revoked; `NotFound` when the user had not granted the client.
pub async fn remove_access(store: &dyn Store, user_id: &str, client_id: &str, now: i64) -> Result<usize, AdminError> {
    if store.find_consent(user_id, client_id).await?.is_none() {
        return Err(AdminError::NotFound(format!("user {user_id} has not granted client {client_id}")));
    }
    // Revoked first: a retry after a failure finds the consent still there.
    let families = store.list_grant_families(user_id, client_id).await?;
    for f in &families {
        store.revoke_family(f, now).await?;
    }
    store.delete_consent(user_id, client_id).await?;
    Ok(families.len())
}

/// Disable a user (`tessera user update --disable`, the admin API): they cannot sign in, and
/// their sessions, refresh tokens and unredeemed codes end now; their access tokens are
/// inactive at introspection and UserInfo. `false` enables them again.
pub async fn set_disabled(store: &dyn Store, username: &str, disabled: bool, now: i64) -> Result<UserRecord, AdminError> {
    let u = user_named(store, username).await?;
    if !store.update_user_disabled(&u.id, disabled, now).await? {
        return Err(AdminError::NotFound(format!("no user {username}")));
    }
    store.find_user(&u.id).await?.ok_or_else(|| AdminError::NotFound(format!("no user {username}")))
}

/// Make a user an administrator (`tessera user update --admin`), or not (`--no-admin`): their
/// tokens for the admin API then act with their authority.
pub async fn set_admin(store: &dyn Store, username: &str, is_admin: bool) -> Result<UserRecord, AdminError> {
    let u = user_named(store, username).await?;
    store.update_user_admin(&u.id, is_admin).await?;
    store.find_user(&u.id).await?.ok_or_else(|| AdminError::NotFound(format!("no user {username}")))
}

/// Require a second factor at every sign-in of the user (`tessera user update --require-mfa`;
/// their sessions end, so the next sign-in asks it), or not (`--no-require-mfa`).
pub async fn set_require_mfa(store: &dyn Store, username: &str, require: bool) -> Result<UserRecord, AdminError> {
    let u = user_named(store, username).await?;
    store.update_user_require_mfa(&u.id, require).await?;
    if require {
        // Sessions signed in with a password alone end: the next sign-in asks the second step.
        store.delete_user_sessions(&u.id).await?;
    }
    store.find_user(&u.id).await?.ok_or_else(|| AdminError::NotFound(format!("no user {username}")))
}

/// `tessera user reset-mfa`: every second factor and recovery code of the user goes (a lost
/// phone); they sign in with their password and enrol again. How many factors went.
pub async fn reset_mfa(store: &dyn Store, username: &str) -> Result<(UserRecord, u64), AdminError> {
    let u = user_named(store, username).await?;
    let n = store.delete_factors(&u.id).await?;
    Ok((u, n))
}

/// An administrator's changes, each recorded in the audit log with who made it (`actor`): the
/// one place the CLI (`cli:LOGIN`), the admin API (`client:ID`, or an administrator's user
/// id), the console (the signed-in administrator's user id) and `tessera apply` change things.
/// Reads need no record and stay on the store and the functions above.
pub struct Acting<'a> {
    pub store: &'a dyn Store,
    pub actor: &'a str,
    pub now: i64,
}

/// What the audit log keeps of a client's registration (never a secret).
pub fn client_summary(c: &ClientRecord) -> serde_json::Value {
    serde_json::json!({
        "name": c.name,
        "redirect_uris": c.redirect_uris,
        "scope": c.scope.to_string(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "allowed_origins": c.allowed_origins,
        "require_dpop": c.require_dpop,
        "require_mfa": c.require_mfa,
    })
}

fn api_summary(a: &ApiRecord) -> serde_json::Value {
    serde_json::json!({ "identifier": a.identifier, "name": a.name, "scopes": a.scopes, "roles": a.roles })
}

/// `user NAME` or `group NAME`.
impl std::fmt::Display for RoleHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoleHolder::User(u) => write!(f, "user {u}"),
            RoleHolder::Group(g) => write!(f, "group {g}"),
        }
    }
}

impl Acting<'_> {
    async fn record(&self, kind: &str, user_id: Option<&str>, client_id: Option<&str>, detail: serde_json::Value) -> Result<(), AdminError> {
        record_change(self.store, self.actor, kind, user_id, client_id, &detail.to_string(), self.now).await
    }

    async fn user_id(&self, username: &str) -> Result<Option<String>, AdminError> {
        Ok(self.store.find_user_by_username(username).await?.map(|u| u.id))
    }

    /// [`create_client`], recorded (`admin.client_created`).
    pub async fn create_client(&self, req: NewClient) -> Result<CreatedClient, AdminError> {
        let created = create_client(self.store, req, self.now).await?;
        self.record("admin.client_created", None, Some(&created.client.client_id), serde_json::json!({ "name": created.client.name })).await?;
        Ok(created)
    }

    /// [`update_client`], recorded with the new registration (`admin.client_updated`).
    pub async fn update_client(&self, client_id: &str, changes: ClientChanges) -> Result<ClientRecord, AdminError> {
        let c = update_client(self.store, client_id, changes).await?;
        self.record("admin.client_updated", None, Some(client_id), client_summary(&c)).await?;
        Ok(c)
    }

    /// Delete a client (`admin.client_deleted`).
    pub async fn delete_client(&self, client_id: &str) -> Result<(), AdminError> {
        if !self.store.delete_client(client_id).await? {
            return Err(AdminError::NotFound(format!("no client {client_id}")));
        }
        self.record("admin.client_deleted", None, Some(client_id), serde_json::json!({})).await
    }

    /// [`rotate_client_secret`], recorded (`admin.client_secret_rotated`); the new secret.
    pub async fn rotate_client_secret(&self, client_id: &str) -> Result<String, AdminError> {
        let s = rotate_client_secret(self.store, client_id).await?;
        self.record("admin.client_secret_rotated", None, Some(client_id), serde_json::json!({})).await?;
        Ok(s)
    }

    /// [`create_user_with_hash`], recorded (`admin.user_created`).
    pub async fn create_user(&self, req: NewUser, password_hash: String) -> Result<UserRecord, AdminError> {
        let u = create_user_with_hash(self.store, req, password_hash, self.now).await?;
        self.record("admin.user_created", Some(&u.id), None, serde_json::json!({ "username": u.username })).await?;
        Ok(u)
    }

    /// [`update_user`], recorded (`admin.user_updated`).
    pub async fn update_user(
        &self,
        username: &str,
        email: Option<String>,
        name: Option<String>,
        profile: serde_json::Map<String, serde_json::Value>,
    ) -> Result<UserRecord, AdminError> {
        let u = update_user(self.store, username, email, name, profile, self.now).await?;
        self.record("admin.user_updated", Some(&u.id), None, serde_json::json!({ "username": u.username })).await?;
        Ok(u)
    }

    /// [`set_password_hash`], recorded (`admin.password_set`).
    pub async fn set_password_hash(&self, username: &str, hash: &str) -> Result<(), AdminError> {
        set_password_hash(self.store, username, hash, self.now).await?;
        let id = self.user_id(username).await?;
        self.record("admin.password_set", id.as_deref(), None, serde_json::json!({ "username": username })).await
    }

    /// [`set_disabled`], recorded (`admin.user_disabled`, `admin.user_enabled`).
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<UserRecord, AdminError> {
        let u = set_disabled(self.store, username, disabled, self.now).await?;
        let kind = if disabled { "admin.user_disabled" } else { "admin.user_enabled" };
        self.record(kind, Some(&u.id), None, serde_json::json!({ "username": u.username })).await?;
        Ok(u)
    }

    /// [`set_admin`], recorded (`admin.admin_granted`, `admin.admin_revoked`).
    pub async fn set_admin(&self, username: &str, is_admin: bool) -> Result<UserRecord, AdminError> {
        let u = set_admin(self.store, username, is_admin).await?;
        let kind = if is_admin { "admin.admin_granted" } else { "admin.admin_revoked" };
        self.record(kind, Some(&u.id), None, serde_json::json!({ "username": u.username })).await?;
        Ok(u)
    }

    /// [`set_require_mfa`], recorded (`admin.mfa_required`, `admin.mfa_not_required`).
    pub async fn set_require_mfa(&self, username: &str, require: bool) -> Result<UserRecord, AdminError> {
        let u = set_require_mfa(self.store, username, require).await?;
        let kind = if require { "admin.mfa_required" } else { "admin.mfa_not_required" };
        self.record(kind, Some(&u.id), None, serde_json::json!({ "username": u.username })).await?;
        Ok(u)
    }

    /// [`reset_mfa`], recorded (`admin.mfa_reset`).
    pub async fn reset_mfa(&self, username: &str) -> Result<u64, AdminError> {
        let (u, n) = reset_mfa(self.store, username).await?;
        self.record("admin.mfa_reset", Some(&u.id), None, serde_json::json!({ "username": u.username, "factors": n })).await?;
        Ok(n)
    }

    /// [`delete_user`], recorded (`admin.user_deleted`).
    pub async fn delete_user(&self, username: &str) -> Result<(), AdminError> {
        let id = self.user_id(username).await?;
        delete_user(self.store, username).await?;
        self.record("admin.user_deleted", id.as_deref(), None, serde_json::json!({ "username": username })).await
    }

    /// [`remove_access`], recorded (`consent_removed`); how many grants were revoked.
    pub async fn remove_access(&self, user_id: &str, client_id: &str) -> Result<usize, AdminError> {
        let n = remove_access(self.store, user_id, client_id, self.now).await?;
        self.record("consent_removed", Some(user_id), Some(client_id), serde_json::json!({ "grants_revoked": n })).await?;
        Ok(n)
    }

    /// Sign a user out everywhere: every browser session ends (`admin.sessions_ended`).
    pub async fn end_sessions(&self, user_id: &str) -> Result<(), AdminError> {
        if self.store.find_user(user_id).await?.is_none() {
            return Err(AdminError::NotFound(format!("no user {user_id}")));
        }
        self.store.delete_user_sessions(user_id).await?;
        self.record("admin.sessions_ended", Some(user_id), None, serde_json::json!({})).await
    }

    /// [`create_api_with_roles`], recorded (`admin.api_created`).
    pub async fn create_api(&self, identifier: &str, name: &str, scopes: Vec<ApiScope>, roles: Vec<ApiRole>) -> Result<ApiRecord, AdminError> {
        let a = create_api_with_roles(self.store, identifier, name, scopes, roles, self.now).await?;
        self.record("admin.api_created", None, None, api_summary(&a)).await?;
        Ok(a)
    }

    /// Delete an API and the roles granted of it (`admin.api_deleted`).
    pub async fn delete_api(&self, identifier: &str) -> Result<(), AdminError> {
        if !self.store.delete_api(identifier).await? {
            return Err(AdminError::NotFound(format!("no API {identifier}")));
        }
        self.record("admin.api_deleted", None, None, serde_json::json!({ "identifier": identifier })).await
    }

    /// [`grant_role`], recorded when new (`admin.role_granted`).
    pub async fn grant_role(&self, api: &str, role: &str, holder: &RoleHolder) -> Result<bool, AdminError> {
        let new = grant_role(self.store, api, role, holder).await?;
        if new {
            self.record("admin.role_granted", None, None, serde_json::json!({ "api": api, "role": role, "to": holder.to_string() })).await?;
        }
        Ok(new)
    }

    /// [`revoke_role`], recorded when it was granted (`admin.role_revoked`).
    pub async fn revoke_role(&self, api: &str, role: &str, holder: &RoleHolder) -> Result<bool, AdminError> {
        let was = revoke_role(self.store, api, role, holder).await?;
        if was {
            self.record("admin.role_revoked", None, None, serde_json::json!({ "api": api, "role": role, "from": holder.to_string() })).await?;
        }
        Ok(was)
    }

    /// [`create_group`], recorded (`admin.group_created`).
    pub async fn create_group(&self, name: &str, description: Option<&str>) -> Result<GroupRecord, AdminError> {
        let g = create_group(self.store, name, description, self.now).await?;
        self.record("admin.group_created", None, None, serde_json::json!({ "group": g.name })).await?;
        Ok(g)
    }

    /// [`delete_group`], recorded (`admin.group_deleted`).
    pub async fn delete_group(&self, name: &str) -> Result<(), AdminError> {
        delete_group(self.store, name).await?;
        self.record("admin.group_deleted", None, None, serde_json::json!({ "group": name })).await
    }

    /// [`add_group_member`], recorded when new (`admin.group_member_added`).
    pub async fn add_group_member(&self, group: &str, username: &str) -> Result<bool, AdminError> {
        let new = add_group_member(self.store, group, username).await?;
        if new {
            let id = self.user_id(username).await?;
            self.record("admin.group_member_added", id.as_deref(), None, serde_json::json!({ "group": group, "username": username })).await?;
        }
        Ok(new)
    }

    /// [`remove_group_member`], recorded when they were a member (`admin.group_member_removed`).
    pub async fn remove_group_member(&self, group: &str, username: &str) -> Result<bool, AdminError> {
        let was = remove_group_member(self.store, group, username).await?;
        if was {
            let id = self.user_id(username).await?;
            self.record("admin.group_member_removed", id.as_deref(), None, serde_json::json!({ "group": group, "username": username })).await?;
        }
        Ok(was)
    }

    /// Start a new signing key for each of `algs`, published now and signing after
    /// `publish_delay` seconds (`admin.keys_rotated`); the new keys' `(kid, alg)`.
    pub async fn rotate_keys(
        &self,
        kek: &tessera_jose::kek::KeyEncryption,
        algs: &[tessera_jose::Alg],
        publish_delay: i64,
    ) -> Result<Vec<(String, tessera_jose::Alg)>, AdminError> {
        let mut created = Vec::new();
        for &alg in algs {
            let kid = crate::keys::rotate(self.store, kek, alg, self.now, publish_delay).await?;
            created.push((kid, alg));
        }
        let detail: Vec<_> = created.iter().map(|(kid, alg)| serde_json::json!({ "kid": kid, "alg": alg.as_str() })).collect();
        self.record("admin.keys_rotated", None, None, serde_json::json!({ "keys": detail, "use_after": self.now + publish_delay })).await?;
        Ok(created)
    }
}

#[cfg(test)]
mod password_policy_tests {
    use super::*;

    /// NIST SP 800-63B §5.1.1.2: a minimum length, no composition rules, and the breached list
    /// in its three line forms (SHA-1 hex in either case, Pwned Passwords' `HASH:COUNT`, the
    /// password itself); comments and blank lines skipped.
    #[test]
    fn the_policy_refuses_short_and_breached_passwords() {
        // SHA-1("password1") = E38AD214943DAAD1D64C102FAEC29DE4AFE9DA3D
        let list = "# breached\n\ne38ad214943daad1d64c102faec29de4afe9da3d\n7C4A8D09CA3762AF61E59520943DC26494F8941B:24230577\ncorrect horse\n";
        let p = PasswordPolicy { min_length: 8, breached: Some(std::sync::Arc::new(PasswordPolicy::parse_breached(list))), ..Default::default() };
        assert!(p.check("password1", Factors::PasswordOnly).unwrap_err().to_string().contains("breaches"));
        assert!(p.check("correct horse", Factors::PasswordOnly).unwrap_err().to_string().contains("breaches"), "a plain entry");
        // SHA-1("123456") is the second line: too short anyway; the list alone refuses a long one.
        let long = PasswordPolicy { min_length: 6, ..p.clone() };
        assert!(long.check("123456", Factors::PasswordOnly).unwrap_err().to_string().contains("breaches"), "HASH:COUNT");
        assert!(p.check("short", Factors::PasswordOnly).unwrap_err().to_string().contains("8 to 1024"));
        assert!(p.check("all lower case and no digits is fine", Factors::PasswordOnly).is_ok(), "no composition rules");
        let fifteen = PasswordPolicy { min_length: 15, ..Default::default() };
        assert!(fifteen.check("fourteen chars", Factors::PasswordOnly).is_err() && fifteen.check("fifteen chars!!", Factors::PasswordOnly).is_ok());
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    /// NIST SP 800-63B-4 §3.1.1.2: 15 characters when the password is the only factor, the
    /// general minimum with a second factor; the message names the way out.
    #[test]
    fn a_single_factor_password_needs_the_longer_minimum() {
        let p = PasswordPolicy { min_length_single_factor: Some(15), ..Default::default() };
        let e = p.check("fourteen chars", Factors::PasswordOnly).unwrap_err().to_string();
        assert!(e.contains("at least 15 characters") && e.contains("set up two-step sign-in first"), "{e}");
        assert!(p.check("fifteen chars!!", Factors::PasswordOnly).is_ok());
        assert!(p.check("eight ch", Factors::WithSecondFactor).is_ok(), "a second factor: the general minimum");
        assert!(p.check("seven c", Factors::WithSecondFactor).unwrap_err().to_string().contains("8 to 1024"));
        assert_eq!((p.min_length_for(Factors::PasswordOnly), p.min_length_for(Factors::WithSecondFactor)), (15, 8));
        assert!(PasswordPolicy::default().check("eight ch", Factors::PasswordOnly).is_ok(), "off by default");
    }
}
