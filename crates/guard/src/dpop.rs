//! DPoP-bound access tokens at the resource server (RFC 9449 §7): a token whose `cnf.jkt` binds
//! it to a key is accepted only with `Authorization: DPoP` and exactly one `DPoP` header holding
//! a valid proof for this request — method, URL (as the client saw it: the configured public
//! base URL and the request's path), `ath` of the token, `iat` within the window, the token's
//! key — whose `jti` this process has not seen within the window. A bound token presented as
//! `Bearer`, and an unbound one presented with the DPoP scheme, are refused.
//!
//! The replay cache is per process and bounded: entries expire with the window; when it is full
//! of unexpired entries a new proof is refused (fail closed) rather than an entry forgotten.

use crate::Guard;
use crate::error::GuardError;
use crate::token::Principal;
use axum::http::{HeaderMap, Method, Uri, header};
use std::collections::HashMap;
use std::sync::Mutex;

/// Proofs seen, by a 128-bit digest of key thumbprint and `jti`, with when they may be forgotten
/// (about 28 bytes an entry: the default 1,000,000 entries stay under 30 MB, enough for 16,000
/// DPoP requests a second with the default 60 s window).
#[derive(Debug)]
pub(crate) struct ReplayCache {
    seen: Mutex<Seen>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<u128, i64>,
    /// When expired entries were last dropped (at most once a second, so that a full cache
    /// does not scan itself on every request).
    purged_at: i64,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { seen: Mutex::new(Seen::default()), capacity }
    }

    /// True the first time `id` is seen before `until`; false for a replay; refused when full of
    /// unexpired entries (fail closed: nothing live is forgotten).
    fn first_use(&self, id: &str, until: i64, now: i64) -> Result<bool, GuardError> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
        let key = digest.as_ref().get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()).map(u128::from_le_bytes).unwrap_or_default();
        let mut seen = self.seen.lock().map_err(|_| GuardError::InvalidDpopProof("internal error".into()))?;
        if let Some(&t) = seen.until.get(&key) {
            if t > now {
                return Ok(false);
            }
        }
        if seen.until.len() >= self.capacity && seen.purged_at != now {
            seen.purged_at = now;
            seen.until.retain(|_, t| *t > now);
        }
        if seen.until.len() >= self.capacity {
            return Err(GuardError::InvalidDpopProof("too many DPoP proofs at once; retry shortly".into()));
        }
        seen.until.insert(key, until);
        Ok(true)
    }
}

/// The URL the client addressed: the public base URL and the request's path, or, without a
/// base, the `Host` header with `http` on loopback hosts and `https` elsewhere.
fn request_url(guard: &Guard, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let path = uri.path();
    if let Some(base) = &guard.inner.config.public_base_url {
        return Some(format!("{}{path}", base.trim_end_matches('/')));
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let scheme = if matches!(name, "127.0.0.1" | "localhost" | "[::1]") { "http" } else { "https" };
    Some(format!("{scheme}://{host}{path}"))
}

impl Guard {
    /// Read the request's credentials (RFC 6750 §2.1 Bearer, RFC 9449 §7.1 DPoP) and validate
    /// them: the token, and for a DPoP-bound token the request's proof.
    pub async fn authenticate_request(&self, method: &Method, headers: &HeaderMap, uri: &Uri) -> Result<Principal, GuardError> {
        let r = self.authenticate_request_inner(method, headers, uri).await;
        if let Err(e) = &r {
            self.inner.stats.count(e);
        }
        r
    }

    async fn authenticate_request_inner(&self, method: &Method, headers: &HeaderMap, uri: &Uri) -> Result<Principal, GuardError> {
        let config = &self.inner.config;
        let (token, dpop) = crate::bearer::credentials(headers, uri)?;
        let principal = crate::token::verify(self, token).await?;
        match (&principal.dpop_jkt, dpop) {
            (None, false) if config.require_dpop => Err(GuardError::DpopRequired),
            (None, false) => Ok(principal),
            (Some(_), false) => Err(GuardError::InvalidDpopToken("this access token is bound to a DPoP key: present it with the DPoP scheme and a proof")),
            (None, true) => Err(GuardError::InvalidDpopToken("this access token is not DPoP-bound: present it as Bearer")),
            (Some(jkt), true) => {
                let mut proofs = headers.get_all("dpop").iter();
                let (Some(proof), None) = (proofs.next(), proofs.next()) else {
                    return Err(GuardError::InvalidDpopProof("exactly one DPoP header is required".into()));
                };
                let proof = proof.to_str().map_err(|_| GuardError::InvalidDpopProof("the DPoP header is not text".into()))?;
                let url = request_url(self, headers, uri).ok_or_else(|| GuardError::InvalidDpopProof("the request has no Host".into()))?;
                let now = config.clock.now();
                let expect = tessera_dpop::Expect {
                    method: method.as_str(),
                    url: &url,
                    now,
                    max_age_secs: config.dpop_max_age_secs,
                    max_skew_secs: config.leeway_secs.max(0),
                    access_token: Some(token),
                    algs: tessera_dpop::SUPPORTED_ALGS,
                };
                let p = tessera_dpop::verify(proof, &expect).map_err(|e| GuardError::InvalidDpopProof(e.to_string()))?;
                if p.jkt != *jkt {
                    return Err(GuardError::InvalidDpopProof("the DPoP proof is not made with the key the token is bound to".into()));
                }
                if !self.inner.dpop_replay.first_use(&format!("{} {}", p.jkt, p.jti), p.iat + config.dpop_max_age_secs + 1, now)? {
                    return Err(GuardError::InvalidDpopProof("the DPoP proof was already used (jti)".into()));
                }
                Ok(principal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_cache_refuses_replays_and_fails_closed_when_full_of_live_entries() {
        let c = ReplayCache::new(2);
        assert_eq!(c.first_use("a", 100, 10), Ok(true));
        assert_eq!(c.first_use("a", 100, 50), Ok(false), "a replay within the window");
        assert_eq!(c.first_use("b", 100, 10), Ok(true));
        assert!(c.first_use("c", 100, 10).is_err(), "full of live entries: refused, nothing forgotten");
        assert_eq!(c.first_use("a", 100, 50), Ok(false), "a is still remembered");
        assert_eq!(c.first_use("c", 300, 100), Ok(true), "expired entries make room");
    }
}
