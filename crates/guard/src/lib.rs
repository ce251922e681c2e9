//! tessera-guard: put an OAuth 2.0 resource server in front of any axum/tower service.
//!
//! It accepts a JWT access token (RFC 9068) sent as a bearer token in the `Authorization`
//! header (RFC 6750 §2.1), validates it against the issuer's published keys, and hands the
//! handler the verified [`Principal`] (subject, client and scopes).
//!
//! ```no_run
//! use axum::{Router, routing::get, handler::Handler};
//! use tessera_guard::{Guard, GuardConfig, Principal, RequireScope};
//!
//! async fn list(p: Principal) -> String { format!("notes of {}", p.subject) }
//! async fn create(p: Principal) -> String { format!("created for {}", p.subject) }
//!
//! # fn app() -> Result<Router, tessera_guard::ConfigError> {
//! let guard = Guard::new(GuardConfig::new("https://auth.example", "https://notes.example"))?;
//! let app = Router::new()
//!     .route("/notes", get(list.layer(RequireScope("notes.read"))).post(create.layer(RequireScope("notes.write"))))
//!     .layer(guard.layer());
//! # Ok(app) }
//! ```
//!
//! Layout:
//! - [`bearer`]: reading the token from the request (RFC 6750 §2.1 only; §2.2 and §2.3 refused).
//! - [`token`]: the validation rules of RFC 9068 §4 on a parsed JWS (RFC 7515), given keys and
//!   the time: algorithm allow-list, `typ`, signature, `iss`, `aud`, `exp`/`nbf`.
//! - [`keys`]: the issuer's JWKS (RFC 7517) found through its metadata (RFC 8414 §3), cached,
//!   refetched on an unknown `kid` at most once per interval, refreshed in the background.
//! - [`error`]: [`GuardError`] and its RFC 6750 §3 response (`WWW-Authenticate: Bearer …`).
//! - [`metadata`]: OAuth 2.0 Protected Resource Metadata (RFC 9728): the document, its
//!   well-known location, and `resource_metadata` in the 401 challenge.
//! - [`layer`]: the tower layers ([`GuardLayer`], [`RequireScope`], [`RequireRole`]) and the [`Principal`]
//!   extractor.
//!
//! **Invariants:** no network call on a request whose key is cached; symmetric (HMAC) and `none`
//! algorithms are never accepted, whatever the configuration; the guard depends on nothing of
//! Tessera's server side and works with any RFC 9068 issuer.
#![forbid(unsafe_code)]

pub mod bearer;
pub mod dpop;
pub mod error;
pub mod keys;
pub mod layer;
pub mod metadata;
pub mod token;

pub use error::GuardError;
pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;
pub use layer::{GuardLayer, RequireDpop, RequireRole, RequireScope};
pub use metadata::ResourceMetadata;
pub use token::Principal;

use axum::http::{HeaderMap, Uri};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Time, injected (Unix seconds), so that expiry can be tested without sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

/// How the guard validates tokens and finds keys.
#[derive(Clone)]
pub struct GuardConfig {
    /// The issuer identifier (RFC 8414 §2), compared exactly with `iss` (RFC 9068 §4).
    pub issuer: String,
    /// This API's identifier (RFC 8707 resource indicator); `aud` must contain it.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
    pub leeway_secs: i64,
    /// Accepted JWS algorithms. HMAC and `none` are removed by [`Guard::new`] if listed.
    pub algorithms: Vec<Algorithm>,
    /// The JWKS URL; found through the issuer's metadata when `None`.
    pub jwks_uri: Option<String>,
    /// At most one key fetch per this interval (a flood of unknown `kid`s cannot hammer the
    /// issuer).
    pub min_refetch_interval: Duration,
    /// Cached keys older than this are refreshed in the background (revoked keys disappear),
    /// never on the request path.
    pub max_key_age: Duration,
    /// Timeout of one metadata or JWKS request.
    pub http_timeout: Duration,
    /// How many verified tokens to remember (0: none). A token seen again is not
    /// signature-checked again while the key set is unchanged; its time claims are checked on
    /// every request, and it is forgotten when it expires or the keys change.
    pub verified_cache_capacity: usize,
    pub clock: Arc<dyn Clock>,
    /// Accept `http://` issuer and JWKS URLs on hosts that are not loopback (default `false`):
    /// see [`GuardConfig::allow_insecure_http`].
    pub allow_insecure_http: bool,
    /// RFC 9728 Protected Resource Metadata, when set: [`Guard::metadata_router`] serves it and
    /// every 401 names it (`resource_metadata`). Needs an http(s) URL as the audience.
    pub resource_metadata: Option<metadata::ResourceMetadata>,
    /// The URL clients address this API at (`https://api.example[/prefix]`), for the `htu` of
    /// DPoP proofs (RFC 9449 §4.3) behind a proxy; `None`: the `Host` header, `http` only on
    /// loopback hosts.
    pub public_base_url: Option<String>,
    /// Every request needs a DPoP-bound token (RFC 9449 §7); `false`: bearer tokens too.
    pub require_dpop: bool,
    /// How far in the past a DPoP proof's `iat` may be; proofs are remembered as long.
    pub dpop_max_age_secs: i64,
    /// How many DPoP proofs are remembered at once (replay detection; default 1,000,000, about
    /// 28 bytes each: 16,000 DPoP requests a second with the 60 s window). When it is full of
    /// unexpired ones, new proofs are refused until some expire.
    pub dpop_replay_capacity: usize,
}

impl std::fmt::Debug for GuardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("algorithms", &self.algorithms)
            .field("jwks_uri", &self.jwks_uri)
            .field("min_refetch_interval", &self.min_refetch_interval)
            .field("max_key_age", &self.max_key_age)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("resource_metadata", &self.resource_metadata)
            .field("public_base_url", &self.public_base_url)
            .field("require_dpop", &self.require_dpop)
            .finish_non_exhaustive()
    }
}

impl GuardConfig {
    /// Defaults: 30 s leeway; ES256, ES384, EdDSA, RS256, PS256; refetch at most every 10 s;
    /// background refresh after 5 minutes; 10,000 verified tokens remembered; the system clock.
    pub fn new(issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            leeway_secs: 30,
            algorithms: vec![Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256],
            jwks_uri: None,
            min_refetch_interval: Duration::from_secs(10),
            max_key_age: Duration::from_secs(300),
            http_timeout: Duration::from_secs(5),
            verified_cache_capacity: 10_000,
            clock: Arc::new(SystemClock),
            allow_insecure_http: false,
            resource_metadata: None,
            public_base_url: None,
            require_dpop: false,
            dpop_max_age_secs: 60,
            dpop_replay_capacity: 1_000_000,
        }
    }
    /// Publish RFC 9728 metadata for this API (see [`GuardConfig::resource_metadata`]).
    pub fn with_resource_metadata(mut self, m: metadata::ResourceMetadata) -> Self {
        self.resource_metadata = Some(m);
        self
    }
    /// The URL clients address this API at, for DPoP proofs' `htu` ([`GuardConfig::public_base_url`]).
    pub fn with_public_base_url(mut self, url: &str) -> Self {
        self.public_base_url = Some(url.trim_end_matches('/').to_string());
        self
    }
    /// Require DPoP-bound tokens on every route ([`GuardConfig::require_dpop`]); per route:
    /// [`RequireDpop`].
    pub fn require_dpop(mut self, required: bool) -> Self {
        self.require_dpop = required;
        self
    }
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    pub fn with_leeway_secs(mut self, secs: i64) -> Self {
        self.leeway_secs = secs;
        self
    }
    pub fn with_algorithms(mut self, algs: &[Algorithm]) -> Self {
        self.algorithms = algs.to_vec();
        self
    }
    pub fn with_jwks_uri(mut self, uri: &str) -> Self {
        self.jwks_uri = Some(uri.to_string());
        self
    }
    pub fn with_min_refetch_interval(mut self, d: Duration) -> Self {
        self.min_refetch_interval = d;
        self
    }
    pub fn with_verified_cache_capacity(mut self, n: usize) -> Self {
        self.verified_cache_capacity = n;
        self
    }
    pub fn with_max_key_age(mut self, d: Duration) -> Self {
        self.max_key_age = d;
        self
    }
    /// RFC 8414 §2: an issuer "uses the https scheme". Without TLS anyone on the network path
    /// can serve the issuer's metadata and keys and so mint tokens this guard accepts; plain
    /// `http://` is therefore refused by [`Guard::new`] (and for a `jwks_uri` the metadata names)
    /// except on loopback hosts (127.0.0.0/8, `::1`, `localhost`: development on one machine).
    /// `allow_insecure_http(true)` accepts it on any host, for a network the operator trusts.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }
}

/// A configuration the guard cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("issuer {0:?} is not an absolute http(s) URL without query or fragment (RFC 8414 §2)")]
    Issuer(String),
    #[error(
        "issuer {0:?} uses plain http on a host that is not loopback: the keys would be fetched without TLS (RFC 8414 §2 requires https); use https, or GuardConfig::allow_insecure_http(true) on a network you trust"
    )]
    InsecureIssuer(String),
    #[error(
        "jwks_uri {0:?} uses plain http on a host that is not loopback: the keys would be fetched without TLS; use https, or GuardConfig::allow_insecure_http(true) on a network you trust"
    )]
    InsecureJwksUri(String),
    #[error("audience must not be empty")]
    Audience,
    #[error("resource metadata (RFC 9728) needs the audience to be an http(s) URL without query or fragment, not {0:?}")]
    ResourceIdentifier(String),
    #[error("no asymmetric algorithm left in the allow-list")]
    Algorithms,
    #[error("the HTTP client could not be built: {0}")]
    Http(String),
}

/// Counters of what the guard did, for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    /// No token at all (401 without an error code).
    pub missing: AtomicU64,
    /// Malformed request (400 invalid_request).
    pub invalid_request: AtomicU64,
    /// Bad tokens (401 invalid_token), expired ones included.
    pub invalid_token: AtomicU64,
    /// Of `invalid_token`, the expired ones.
    pub expired: AtomicU64,
    pub insufficient_scope: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub accepted: u64,
    pub missing: u64,
    pub invalid_request: u64,
    pub invalid_token: u64,
    pub expired: u64,
    pub insufficient_scope: u64,
    /// Metadata + JWKS fetches attempted.
    pub key_fetches: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            accepted: g(&self.accepted),
            missing: g(&self.missing),
            invalid_request: g(&self.invalid_request),
            invalid_token: g(&self.invalid_token),
            expired: g(&self.expired),
            insufficient_scope: g(&self.insufficient_scope),
            key_fetches: 0,
        }
    }
    pub(crate) fn count(&self, e: &GuardError) {
        let c = match e {
            GuardError::Missing => &self.missing,
            GuardError::InvalidRequest(_) => &self.invalid_request,
            GuardError::InvalidToken(reason) => {
                if *reason == error::Reason::Expired {
                    self.expired.fetch_add(1, Ordering::Relaxed);
                }
                &self.invalid_token
            }
            GuardError::InsufficientScope(_) | GuardError::MissingRole(_) => &self.insufficient_scope,
            GuardError::InvalidDpopProof(_) | GuardError::InvalidDpopToken(_) | GuardError::DpopRequired => &self.invalid_token,
            GuardError::KeysUnavailable | GuardError::NotInstalled => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) struct Inner {
    pub(crate) config: GuardConfig,
    pub(crate) keys: keys::KeyCache,
    pub(crate) verified: token::VerifiedCache,
    pub(crate) stats: Stats,
    /// RFC 9728 §3.1, when metadata is on: the path the document is served at and its URL,
    /// which 401 challenges name (§5.1).
    pub(crate) metadata_location: Option<(String, String)>,
    /// DPoP proofs this process has seen ([`dpop`]).
    pub(crate) dpop_replay: dpop::ReplayCache,
}

/// The resource server's token validator; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Guard {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard for `config`. No network call yet: keys are fetched on the first request (or by
    /// [`Guard::refresh`], e.g. at startup).
    pub fn new(mut config: GuardConfig) -> Result<Self, ConfigError> {
        let issuer = url::Url::parse(&config.issuer).map_err(|_| ConfigError::Issuer(config.issuer.clone()))?;
        if !matches!(issuer.scheme(), "http" | "https") || issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::Issuer(config.issuer.clone()));
        }
        if !keys::secure_enough(&issuer, config.allow_insecure_http) {
            return Err(ConfigError::InsecureIssuer(config.issuer.clone()));
        }
        if let Some(j) = &config.jwks_uri {
            if !url::Url::parse(j).is_ok_and(|u| keys::secure_enough(&u, config.allow_insecure_http)) {
                return Err(ConfigError::InsecureJwksUri(j.clone()));
            }
        }
        if config.audience.is_empty() {
            return Err(ConfigError::Audience);
        }
        let metadata_location = match &config.resource_metadata {
            Some(_) => Some(metadata::location(&config.audience).ok_or_else(|| ConfigError::ResourceIdentifier(config.audience.clone()))?),
            None => None,
        };
        config.algorithms.retain(|a| token::is_asymmetric(*a));
        if config.algorithms.is_empty() {
            return Err(ConfigError::Algorithms);
        }
        let keys = keys::KeyCache::new(&config).map_err(|e| ConfigError::Http(e.to_string()))?;
        let verified = token::VerifiedCache::new(config.verified_cache_capacity);
        let dpop_replay = dpop::ReplayCache::new(config.dpop_replay_capacity);
        Ok(Self { inner: Arc::new(Inner { config, keys, verified, stats: Stats::default(), metadata_location, dpop_replay }) })
    }

    pub fn config(&self) -> &GuardConfig {
        &self.inner.config
    }

    /// Fetch the issuer's keys now (metadata, then JWKS), replacing the cache on success
    /// (e.g. at startup, so the first request does not wait for them).
    pub async fn refresh(&self) -> Result<(), keys::FetchError> {
        self.inner.keys.fetch().await
    }

    /// Install a key set directly (static keys; tests and benchmarks). Keys that are not
    /// usable public signature keys are skipped.
    pub fn set_keys(&self, set: &JwkSet) {
        self.inner.keys.install(set);
    }

    /// Validate a compact JWT access token (RFC 9068 §4). Awaits the network only when the
    /// token's `kid` is not cached.
    pub async fn verify(&self, token: &str) -> Result<Principal, GuardError> {
        let r = token::verify(self, token).await;
        match &r {
            Ok(_) => {
                self.inner.stats.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.inner.stats.count(e),
        }
        r
    }

    /// Read the bearer token of a request (RFC 6750 §2.1) and validate it.
    /// A DPoP-bound token is refused here (it needs the request's method for its proof:
    /// [`Guard::authenticate_request`]).
    pub async fn authenticate(&self, headers: &HeaderMap, uri: &Uri) -> Result<Principal, GuardError> {
        match bearer::extract(headers, uri) {
            Ok(t) => match self.verify(t).await? {
                p if p.dpop_jkt.is_some() => {
                    Err(GuardError::InvalidDpopToken("this access token is bound to a DPoP key: present it with the DPoP scheme and a proof"))
                }
                p => Ok(p),
            },
            Err(e) => {
                self.inner.stats.count(&e);
                Err(e)
            }
        }
    }

    /// A layer that validates every request's token and puts the [`Principal`] in the
    /// request's extensions (for [`RequireScope`] and the [`Principal`] extractor).
    pub fn layer(&self) -> GuardLayer {
        GuardLayer::new(self.clone(), Vec::new())
    }

    /// Like [`Guard::layer`], and also requires `scope` (RFC 6750 §3.1 `insufficient_scope`).
    pub fn require(&self, scope: &str) -> GuardLayer {
        GuardLayer::new(self.clone(), vec![scope.to_string()])
    }

    /// What the guard has done so far.
    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot { key_fetches: self.inner.keys.fetches(), ..self.inner.stats.snapshot() }
    }

    pub(crate) fn count_scope_refusal(&self) {
        self.inner.stats.insufficient_scope.fetch_add(1, Ordering::Relaxed);
    }
}
