//! The issuer's signing keys: discovered through its metadata (RFC 8414 §3), fetched as a JWK
//! Set (RFC 7517 §5), cached.
//!
//! - A cached `kid` costs no network call.
//! - An unknown `kid` (the issuer rotated its key) triggers one refetch, at most once per
//!   [`crate::GuardConfig::min_refetch_interval`] whatever the number of requests; concurrent
//!   requests wait for the same fetch (single flight). Loads (the first one, background
//!   refreshes) have their own limiter with the same interval, so a failing issuer is not
//!   retried on every request either.
//! - Keys older than [`crate::GuardConfig::max_key_age`] are refreshed in the background
//!   (revoked keys disappear) while requests keep using the cached set.
//! - Only public signature keys are kept: `oct` (symmetric) keys, keys with `use` other than
//!   `sig`, and curves or algorithms the guard does not accept are skipped.

use crate::GuardConfig;
use crate::error::{GuardError, Reason};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Largest metadata or JWKS document read.
const MAX_DOC_BYTES: usize = 256 * 1024;

/// A public key ready to verify, and the algorithms it may verify.
pub struct VerifyKey {
    pub(crate) decoding: DecodingKey,
    pub(crate) algorithms: Vec<Algorithm>,
}

#[derive(Default)]
struct KeySet {
    /// Which installation this is (verification results are cached per key set).
    id: u64,
    by_kid: HashMap<String, Arc<VerifyKey>>,
    all: Vec<Arc<VerifyKey>>,
    loaded_at: Option<Instant>,
}

impl KeySet {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            // No kid: only unambiguous when exactly one key can verify this algorithm.
            None => {
                let mut it = self.all.iter().filter(|k| k.algorithms.contains(&alg));
                match (it.next(), it.next()) {
                    (Some(k), None) => Some(k.clone()),
                    _ => None,
                }
            }
        }
    }
}

/// Why keys could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("fetching {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} is not a valid {what}: {reason}")]
    Document { url: String, what: &'static str, reason: String },
    #[error("the metadata's issuer {found:?} is not the configured issuer {expected:?} (RFC 8414 §3.3)")]
    IssuerMismatch { expected: String, found: String },
    #[error(
        "the metadata names the JWK Set {url:?}, plain http on a host that is not loopback (RFC 8414 §2); refused unless GuardConfig::allow_insecure_http(true)"
    )]
    Insecure { url: String },
    #[error("keys were fetched less than the minimum refetch interval ago")]
    RateLimited,
}

struct Shared {
    current: RwLock<Arc<KeySet>>,
    fetch_lock: tokio::sync::Mutex<()>,
    /// Completed fetches (success or failure): a request that waited for another's fetch
    /// does not fetch again.
    generation: AtomicU64,
    /// Last load attempt (first load, background refresh, explicit refresh).
    last_load: Mutex<Option<Instant>>,
    /// Last refetch caused by an unknown `kid`.
    last_refetch: Mutex<Option<Instant>>,
    refreshing: AtomicBool,
    fetches: AtomicU64,
    installs: AtomicU64,
    discovered_jwks_uri: Mutex<Option<String>>,
    http: reqwest::Client,
    issuer: String,
    jwks_uri: Option<String>,
    allow_insecure_http: bool,
    min_interval: Duration,
    max_age: Duration,
}

/// The key cache; clones share it.
#[derive(Clone)]
pub struct KeyCache(Arc<Shared>);

impl KeyCache {
    pub(crate) fn new(config: &GuardConfig) -> Result<Self, reqwest::Error> {
        let http =
            reqwest::Client::builder().timeout(config.http_timeout).connect_timeout(config.http_timeout).redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self(Arc::new(Shared {
            current: RwLock::new(Arc::new(KeySet::default())),
            fetch_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            last_load: Mutex::new(None),
            last_refetch: Mutex::new(None),
            refreshing: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
            installs: AtomicU64::new(0),
            discovered_jwks_uri: Mutex::new(None),
            http,
            issuer: config.issuer.clone(),
            jwks_uri: config.jwks_uri.clone(),
            allow_insecure_http: config.allow_insecure_http,
            min_interval: config.min_refetch_interval,
            max_age: config.max_key_age,
        })))
    }

    /// Metadata and JWKS fetches attempted so far.
    pub fn fetches(&self) -> u64 {
        self.0.fetches.load(Ordering::Relaxed)
    }

    /// The id of the key set in use (it changes whenever keys are installed); starts a
    /// background refresh if the set is stale.
    pub(crate) fn set_id(&self) -> u64 {
        let set = self.current();
        if set.loaded_at.is_some_and(|t| t.elapsed() >= self.0.max_age) {
            self.refresh_in_background();
        }
        set.id
    }

    fn current(&self) -> Arc<KeySet> {
        match self.0.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The key for a token's `kid` and `alg`.
    /// The key for a token's `kid` and `alg`, and the id of the set it came from.
    pub(crate) async fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<(Arc<VerifyKey>, u64), GuardError> {
        let set = self.current();
        if let Some(k) = set.lookup(kid, alg) {
            if set.loaded_at.is_some_and(|t| t.elapsed() >= self.0.max_age) {
                self.refresh_in_background();
            }
            return Ok((k, set.id));
        }
        // Nothing loaded yet: a first load. Loaded but the kid is unknown: the issuer may have
        // rotated its key, refetch. Both rate-limited; another request's fetch that finished
        // meanwhile counts too, so look again whatever the outcome.
        let limiter = if set.loaded_at.is_none() { &self.0.last_load } else { &self.0.last_refetch };
        if let Err(e) = self.fetch_limited(limiter).await {
            if !matches!(e, FetchError::RateLimited) {
                tracing::warn!(error = %e, "tessera-guard: fetching the issuer's keys failed");
            }
        }
        let set = self.current();
        if let Some(k) = set.lookup(kid, alg) {
            return Ok((k, set.id));
        }
        if set.loaded_at.is_none() {
            return Err(GuardError::KeysUnavailable);
        }
        Err(GuardError::InvalidToken(Reason::UnknownKey))
    }

    /// Fetch unless `limiter` saw an attempt less than the minimum interval ago. Single
    /// flight: a caller that waited while another fetched does not fetch again.
    async fn fetch_limited(&self, limiter: &Mutex<Option<Instant>>) -> Result<(), FetchError> {
        let seen = self.0.generation.load(Ordering::Acquire);
        let _single_flight = self.0.fetch_lock.lock().await;
        if self.0.generation.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        {
            let mut last = limiter.lock().map_err(|_| FetchError::RateLimited)?;
            if last.is_some_and(|t| t.elapsed() < self.0.min_interval) {
                return Err(FetchError::RateLimited);
            }
            *last = Some(Instant::now());
        }
        self.fetch_unlocked().await
    }

    /// Fetch now (an explicit refresh), whatever the rate limit.
    pub(crate) async fn fetch(&self) -> Result<(), FetchError> {
        let _single_flight = self.0.fetch_lock.lock().await;
        if let Ok(mut last) = self.0.last_load.lock() {
            *last = Some(Instant::now());
        }
        self.fetch_unlocked().await
    }

    fn refresh_in_background(&self) {
        if self.0.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.0.refreshing.store(false, Ordering::Release);
            return;
        };
        let me = self.clone();
        handle.spawn(async move {
            if let Err(e) = me.fetch_limited(&me.0.last_load).await {
                if !matches!(e, FetchError::RateLimited) {
                    tracing::warn!(error = %e, "tessera-guard: background key refresh failed; keeping the cached keys");
                }
            }
            me.0.refreshing.store(false, Ordering::Release);
        });
    }

    async fn fetch_unlocked(&self) -> Result<(), FetchError> {
        self.0.fetches.fetch_add(1, Ordering::Relaxed);
        let r = self.fetch_inner().await;
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        r
    }

    async fn fetch_inner(&self) -> Result<(), FetchError> {
        let jwks_uri = match &self.0.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let cached = self.0.discovered_jwks_uri.lock().ok().and_then(|g| g.clone());
                match cached {
                    Some(u) => u,
                    None => {
                        let u = self.discover().await?;
                        if let Ok(mut g) = self.0.discovered_jwks_uri.lock() {
                            *g = Some(u.clone());
                        }
                        u
                    }
                }
            }
        };
        let body = self.get(&jwks_uri).await?;
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(&body).map_err(|e| FetchError::Document { url: jwks_uri.clone(), what: "JWK Set", reason: e.to_string() })?;
        self.install_values(&doc.keys);
        Ok(())
    }

    /// RFC 8414 §3: the metadata URL inserts `/.well-known/oauth-authorization-server` between
    /// the issuer's host and its path; §3.3: its `issuer` MUST be identical to the issuer.
    async fn discover(&self) -> Result<String, FetchError> {
        let issuer = &self.0.issuer;
        let bad = |reason: &str| FetchError::Http { url: issuer.clone(), reason: reason.to_string() };
        let u = url::Url::parse(issuer).map_err(|_| bad("not a URL"))?;
        let path = u.path().trim_end_matches('/');
        let mut meta = u.clone();
        meta.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        let meta = meta.to_string();
        let body = self.get(&meta).await?;
        #[derive(Deserialize)]
        struct Metadata {
            issuer: String,
            jwks_uri: String,
        }
        let m: Metadata =
            serde_json::from_slice(&body).map_err(|e| FetchError::Document { url: meta.clone(), what: "RFC 8414 metadata document", reason: e.to_string() })?;
        if m.issuer != *issuer {
            return Err(FetchError::IssuerMismatch { expected: issuer.clone(), found: m.issuer });
        }
        if !url::Url::parse(&m.jwks_uri).is_ok_and(|u| secure_enough(&u, self.0.allow_insecure_http)) {
            return Err(FetchError::Insecure { url: m.jwks_uri });
        }
        Ok(m.jwks_uri)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let err = |reason: String| FetchError::Http { url: url.to_string(), reason };
        let mut res = self.0.http.get(url).header("accept", "application/json").send().await.map_err(|e| err(e.to_string()))?;
        if !res.status().is_success() {
            return Err(err(format!("status {}", res.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| err(e.to_string()))? {
            if body.len() + chunk.len() > MAX_DOC_BYTES {
                return Err(err(format!("larger than {MAX_DOC_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Replace the cache with the usable keys of `set`.
    pub(crate) fn install(&self, set: &JwkSet) {
        let values: Vec<serde_json::Value> = set.keys.iter().filter_map(|k| serde_json::to_value(k).ok()).collect();
        self.install_values(&values);
    }

    fn install_values(&self, keys: &[serde_json::Value]) {
        let id = self.0.installs.fetch_add(1, Ordering::AcqRel) + 1;
        let mut set = KeySet { id, loaded_at: Some(Instant::now()), ..Default::default() };
        for v in keys {
            if let Some((kid, key)) = usable(v) {
                let key = Arc::new(key);
                if let Some(kid) = kid {
                    set.by_kid.insert(kid, key.clone());
                }
                set.all.push(key);
            }
        }
        if let Ok(mut g) = self.0.current.write() {
            *g = Arc::new(set);
        }
    }
}

/// A JWK as a verification key, or `None` if it is not a usable public signature key.
fn usable(v: &serde_json::Value) -> Option<(Option<String>, VerifyKey)> {
    // RFC 7517 §4.2: "sig" (signature) or absent.
    if v.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    // RFC 7517 §4.3: if key_ops is present it must allow "verify".
    if let Some(ops) = v.get("key_ops") {
        if !ops.as_array().is_some_and(|a| a.iter().any(|o| o == "verify")) {
            return None;
        }
    }
    let jwk: Jwk = serde_json::from_value(v.clone()).ok()?;
    let mut algorithms = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        AlgorithmParameters::RSA(_) => {
            vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512]
        }
        // Symmetric keys are never verification keys for a resource server.
        _ => return None,
    };
    // RFC 7517 §4.4: a key that names its algorithm is used with that algorithm only.
    if let Some(alg) = v.get("alg") {
        let alg: Algorithm = alg.as_str()?.parse().ok()?;
        if !algorithms.contains(&alg) {
            return None;
        }
        algorithms = vec![alg];
    }
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    let kid = v.get("kid").and_then(|k| k.as_str()).map(str::to_string);
    Some((kid, VerifyKey { decoding, algorithms }))
}

/// RFC 8414 §2: https, or plain http only on a loopback host (127.0.0.0/8, `::1`, `localhost`)
/// unless `allow_insecure_http`. Other schemes are never used to fetch keys.
pub(crate) fn secure_enough(url: &url::Url, allow_insecure_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => {
            allow_insecure_http
                || match url.host() {
                    Some(url::Host::Ipv4(a)) => a.is_loopback(),
                    Some(url::Host::Ipv6(a)) => a.is_loopback(),
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    None => false,
                }
        }
        _ => false,
    }
}
