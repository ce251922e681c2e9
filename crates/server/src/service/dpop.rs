//! DPoP proofs at Tessera's endpoints (RFC 9449): a proof is verified against the request
//! (`tessera-dpop`: §4.3's checks), then its `jti` is recorded in the store, so a proof is
//! accepted once on every instance (§11.1), and, with server nonces on
//! ([`super::Config::dpop_nonces`]), its `nonce` must be one this server issued (§8).
//!
//! Nonces: each instance makes a random nonce every [`NONCE_ROTATE_SECS`], keeps it and the
//! one before in memory, and stores its hash until it expires, so a nonce issued by one
//! instance is accepted by every other (a nonce never seen here is looked up once).

use super::{ServiceError, Tessera};
use crate::secret;
use tessera_protocol::dpop::invalid_proof;
use tessera_protocol::{ErrorCode, OAuthError};

/// How far in the past a proof's `iat` may be (RFC 9449 §4.3 check 11; §11.1: the replay
/// record is kept as long).
pub const PROOF_MAX_AGE_SECS: i64 = 300;
/// How far in the future a proof's `iat` may be (clients' clocks).
pub const PROOF_MAX_SKEW_SECS: i64 = 60;
/// A new server nonce this often; a nonce is accepted for two periods.
pub const NONCE_ROTATE_SECS: i64 = 300;

/// The DPoP headers of a request and what they must match.
#[derive(Debug, Clone, Copy)]
pub struct PresentedProof<'a> {
    /// Every `DPoP` header value of the request (§4.3 check 1: exactly one is allowed).
    pub headers: &'a [&'a str],
    pub method: &'a str,
    /// The endpoint's URL (the issuer's, not the request's `Host`).
    pub url: &'a str,
    /// The access token the request presents, for `ath` (UserInfo).
    pub access_token: Option<&'a str>,
}

/// The nonces this instance issued: the current one, when it was made, and the one before.
#[derive(Debug, Default)]
pub(crate) struct Nonces {
    current: Option<(String, i64)>,
    previous: Option<String>,
}

impl Tessera {
    /// RFC 9449 §4.3, §8, §11.1: the key (thumbprint) of the request's proof, or `None` when the
    /// request has no DPoP header. Refusals are `invalid_dpop_proof`, or `use_dpop_nonce` when
    /// the server's nonce is missing or stale (the answer then carries [`Tessera::dpop_nonce`]).
    pub async fn verify_dpop(&self, p: &PresentedProof<'_>) -> Result<Option<String>, ServiceError> {
        let proof = match p.headers {
            [] => return Ok(None),
            [one] => *one,
            _ => return Err(invalid_proof("a request carries one DPoP header at most").into()),
        };
        let now = self.now();
        let expect = tessera_dpop::Expect {
            method: p.method,
            url: p.url,
            now,
            max_age_secs: PROOF_MAX_AGE_SECS,
            max_skew_secs: PROOF_MAX_SKEW_SECS,
            access_token: p.access_token,
            algs: tessera_dpop::SUPPORTED_ALGS,
        };
        let proof = tessera_dpop::verify(proof, &expect).map_err(|e| invalid_proof(e.to_string()))?;
        if self.config.dpop_nonces {
            let fresh = match proof.nonce.as_deref() {
                Some(n) => self.nonce_is_valid(n, now).await?,
                None => false,
            };
            if !fresh {
                return Err(OAuthError::new(ErrorCode::UseDpopNonce, "the DPoP proof must carry the nonce in the DPoP-Nonce header").into());
            }
        }
        // §11.1: a proof is used once. Recorded until its iat leaves the window.
        let id = secret::hash(&format!("{} {}", proof.jkt, proof.jti));
        if !self.store.create_dpop_proof(&id, proof.iat + PROOF_MAX_AGE_SECS + 1, now).await? {
            return Err(invalid_proof("the DPoP proof was already used (jti)").into());
        }
        Ok(Some(proof.jkt))
    }

    /// The nonce to send in `DPoP-Nonce` (§8.1), when server nonces are on.
    pub async fn dpop_nonce(&self) -> Result<Option<String>, ServiceError> {
        if !self.config.dpop_nonces {
            return Ok(None);
        }
        let now = self.now();
        if let Ok(n) = self.dpop_nonces.lock() {
            if let Some((value, made)) = &n.current {
                if now < made + NONCE_ROTATE_SECS && now >= *made {
                    return Ok(Some(value.clone()));
                }
            }
        }
        let value = self.random.token();
        self.store.create_dpop_nonce(&secret::hash(&value), now + 2 * NONCE_ROTATE_SECS).await?;
        if let Ok(mut n) = self.dpop_nonces.lock() {
            let previous = n.current.take().map(|(v, _)| v);
            *n = Nonces { current: Some((value.clone(), now)), previous };
        }
        Ok(Some(value))
    }

    async fn nonce_is_valid(&self, nonce: &str, now: i64) -> Result<bool, ServiceError> {
        if let Ok(n) = self.dpop_nonces.lock() {
            // The one before is still in the store's window (two periods) when the current is
            // at most one period old.
            let known = n.current.iter().map(|(v, _)| v).chain(n.previous.iter()).any(|v| secret::matches_plain(nonce, v));
            if known && n.current.as_ref().is_some_and(|(_, made)| now < made + NONCE_ROTATE_SECS) {
                return Ok(true);
            }
        }
        if nonce.len() > 128 {
            return Ok(false);
        }
        Ok(self.store.find_dpop_nonce(&secret::hash(nonce), now).await?)
    }
}
