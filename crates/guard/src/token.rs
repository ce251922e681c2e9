//! Validating a JWT access token: RFC 9068 §4 on a compact JWS (RFC 7515 §7.1).
//!
//! Order: shape and header first (cheap, and no key fetch for junk), then the key and the
//! signature, and only then the claims of a token whose signature holds. A token already
//! verified under the current key set skips straight to the time checks ([`VerifiedCache`]).

use crate::Guard;
use crate::error::{GuardError, Reason};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::RwLock;

/// Largest decoded header or claims set parsed.
const MAX_PART_BYTES: usize = 4 * 1024;

/// Who is calling: the verified claims of the access token, handed to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub`: the resource owner (or the client itself for client-credential tokens).
    pub subject: String,
    /// `client_id` (RFC 9068 §2.2): the application acting for the subject.
    pub client_id: String,
    /// `scope` (RFC 9068 §2.2.3), split on spaces.
    pub scopes: Vec<String>,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// `jti`, if present.
    pub token_id: Option<String>,
    /// RFC 9449 §6.1 `cnf.jkt`: the key a DPoP-bound token is bound to (the request proved
    /// possession of it); `None` for a bearer token.
    pub dpop_jkt: Option<String>,
    /// `roles`: the roles of this API the user holds (Tessera's claim; the string members of a
    /// JSON array, empty when absent).
    pub roles: Vec<String>,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// `Err` (403, `insufficient_scope`) naming `role` unless the user holds it.
    pub fn require_role(&self, role: &str) -> Result<(), GuardError> {
        if self.has_role(role) { Ok(()) } else { Err(GuardError::MissingRole(role.to_string())) }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// RFC 6750 §3.1: `Err(insufficient_scope)` naming `scope` unless the token grants it.
    pub fn require_scope(&self, scope: &str) -> Result<(), GuardError> {
        if self.has_scope(scope) { Ok(()) } else { Err(GuardError::InsufficientScope(scope.to_string())) }
    }
}

/// JOSE header members the guard looks at (RFC 7515 §4.1).
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// RFC 9068 §2.2 claims. `iss`, `exp`, `aud`, `sub`, `client_id` and `iat` are REQUIRED there;
/// `iat` is tolerated when absent.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: serde_json::Number,
    #[serde(default)]
    nbf: Option<serde_json::Number>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
    #[serde(default)]
    jti: Option<String>,
    client_id: String,
    #[serde(default)]
    scope: Option<String>,
    /// RFC 9449 §6.1: the key a DPoP-bound token is bound to.
    #[serde(default)]
    cnf: Option<Confirmation>,
    /// An array of strings; anything else carries no role.
    #[serde(default)]
    roles: serde_json::Value,
}

#[derive(Deserialize)]
struct Confirmation {
    #[serde(default)]
    jkt: Option<String>,
}

/// HMAC (a shared secret) and `none` are never accepted by a resource server holding only
/// public keys: an HMAC "signature" made with the public key would otherwise verify.
pub fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// RFC 7519 NumericDate: seconds, possibly with a fraction (truncated).
fn seconds(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f as i64))
}

fn decode_part(part: &str) -> Result<Vec<u8>, GuardError> {
    if part.len() > MAX_PART_BYTES * 4 / 3 + 4 {
        return Err(GuardError::InvalidToken(Reason::Malformed));
    }
    URL_SAFE_NO_PAD.decode(part).map_err(|_| GuardError::InvalidToken(Reason::Malformed))
}

/// Verified tokens by SHA-256, so a token used for many requests (the normal case: one access
/// token for its whole lifetime) pays for its signature once. Entries are valid only for the
/// key set that verified them; time claims are checked again on every use.
pub(crate) struct VerifiedCache {
    capacity: usize,
    map: RwLock<HashMap<[u8; 32], Verified>>,
}

#[derive(Clone)]
struct Verified {
    principal: Principal,
    nbf: Option<i64>,
    iat: Option<i64>,
    key_set: u64,
}

impl VerifiedCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, map: RwLock::new(HashMap::new()) }
    }

    fn get(&self, digest: &[u8; 32], key_set: u64) -> Option<Verified> {
        let map = self.map.read().ok()?;
        map.get(digest).filter(|v| v.key_set == key_set).cloned()
    }

    fn insert(&self, digest: [u8; 32], v: Verified, now: i64, leeway: i64) {
        let Ok(mut map) = self.map.write() else { return };
        if map.len() >= self.capacity {
            let key_set = v.key_set;
            map.retain(|_, e| e.key_set == key_set && now < e.principal.expires_at.saturating_add(leeway));
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(digest, v);
    }
}

/// RFC 7519 §4.1.4–4.1.6 with leeway: `exp`, `nbf`, and `iat` not in the future.
fn check_times(now: i64, leeway: i64, exp: i64, nbf: Option<i64>, iat: Option<i64>) -> Result<(), GuardError> {
    // §4.1.4: "MUST NOT be accepted for processing" on or after exp.
    if now >= exp.saturating_add(leeway) {
        return Err(GuardError::InvalidToken(Reason::Expired));
    }
    // §4.1.5: "MUST NOT be accepted for processing" before nbf.
    if nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) || iat.is_some_and(|iat| now.saturating_add(leeway) < iat) {
        return Err(GuardError::InvalidToken(Reason::NotYetValid));
    }
    Ok(())
}

pub(crate) async fn verify(guard: &Guard, token: &str) -> Result<Principal, GuardError> {
    let config = &guard.inner.config;
    let now = config.clock.now();
    let leeway = config.leeway_secs.max(0);
    let cache = &guard.inner.verified;
    let digest: Option<[u8; 32]> =
        if cache.capacity > 0 { aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref().try_into().ok() } else { None };
    if let Some(d) = &digest {
        if let Some(v) = cache.get(d, guard.inner.keys.set_id()) {
            check_times(now, leeway, v.principal.expires_at, v.nbf, v.iat)?;
            return Ok(v.principal);
        }
    }

    let mut parts = token.split('.');
    let (Some(h64), Some(c64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(GuardError::InvalidToken(Reason::Malformed));
    };
    let header: Header = serde_json::from_slice(&decode_part(h64)?).map_err(|_| GuardError::InvalidToken(Reason::Malformed))?;

    // RFC 8725 §3.1: the algorithm comes from an allow-list, never from the token alone;
    // "none" does not parse as an Algorithm, HMAC is removed from every allow-list.
    let alg: Algorithm = header.alg.parse().map_err(|_| GuardError::InvalidToken(Reason::Algorithm))?;
    if !is_asymmetric(alg) || !config.algorithms.contains(&alg) {
        return Err(GuardError::InvalidToken(Reason::Algorithm));
    }
    // RFC 9068 §4: "verify that the typ header value is at+jwt or application/at+jwt and reject
    // tokens carrying any other value" (media types compare case-insensitively, RFC 7515 §4.1.9).
    match header.typ.as_deref() {
        Some(t) if t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt") => {}
        _ => return Err(GuardError::InvalidToken(Reason::Type)),
    }
    // RFC 7515 §4.1.11: a recipient that does not understand a critical extension MUST reject.
    if header.crit.is_some() {
        return Err(GuardError::InvalidToken(Reason::Critical));
    }

    let (key, key_set) = guard.inner.keys.find(header.kid.as_deref(), alg).await?;
    if !key.algorithms.contains(&alg) {
        return Err(GuardError::InvalidToken(Reason::Algorithm));
    }
    let message_len = h64.len() + 1 + c64.len();
    let message = &token.as_bytes()[..message_len];
    match jsonwebtoken::crypto::verify(s64, message, &key.decoding, alg) {
        Ok(true) => {}
        _ => return Err(GuardError::InvalidToken(Reason::Signature)),
    }

    let claims: Claims = serde_json::from_slice(&decode_part(c64)?).map_err(|_| GuardError::InvalidToken(Reason::Claims))?;
    // RFC 9068 §4: "The issuer identifier … MUST exactly match the value of the iss claim."
    if claims.iss != config.issuer {
        return Err(GuardError::InvalidToken(Reason::Issuer));
    }
    // RFC 9068 §4: "MUST validate that the aud claim contains a resource indicator value
    // corresponding to an identifier the resource server expects for itself."
    let aud_ok = match &claims.aud {
        Audience::One(a) => *a == config.audience,
        Audience::Many(v) => v.contains(&config.audience),
    };
    if !aud_ok {
        return Err(GuardError::InvalidToken(Reason::Audience));
    }
    let time = |n: &Option<serde_json::Number>| -> Result<Option<i64>, GuardError> {
        n.as_ref().map(|n| seconds(n).ok_or(GuardError::InvalidToken(Reason::Claims))).transpose()
    };
    let exp = seconds(&claims.exp).ok_or(GuardError::InvalidToken(Reason::Claims))?;
    let (nbf, iat) = (time(&claims.nbf)?, time(&claims.iat)?);
    check_times(now, leeway, exp, nbf, iat)?;
    if claims.sub.is_empty() || claims.client_id.is_empty() {
        return Err(GuardError::InvalidToken(Reason::Claims));
    }
    let scopes = claims.scope.as_deref().unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let dpop_jkt = claims.cnf.and_then(|c| c.jkt);
    let roles = match claims.roles {
        serde_json::Value::Array(list) => list.into_iter().filter_map(|r| if let serde_json::Value::String(s) = r { Some(s) } else { None }).collect(),
        _ => Vec::new(),
    };
    let principal = Principal { subject: claims.sub, client_id: claims.client_id, scopes, expires_at: exp, token_id: claims.jti, dpop_jkt, roles };
    if let Some(d) = digest {
        cache.insert(d, Verified { principal: principal.clone(), nbf, iat, key_set }, now, leeway);
    }
    Ok(principal)
}
