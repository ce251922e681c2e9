//! Services: the grants and pages' logic over the store, with plain typed values in and out.
//!
//! - [`admin`]: registering clients, users and APIs (the CLI's operations).
//! - [`authn`]: authentication of resource owners (passwords, throttling, browser sessions).
//! - [`authorize`]: the authorization endpoint, consent and code issuance (RFC 6749 §4.1.1–4.1.2).
//! - [`token`]: the token endpoint: client authentication, then one module per grant in [`grants`].
//! - [`email`]: account mail — password reset, email verification, invitations,
//!   self-registration and notices.

pub mod admin;
pub mod admin_api;
pub mod authn;
pub mod authorize;
pub mod backchannel;
pub mod config;
pub mod device;
pub mod dpop;
pub mod email;
pub mod grants;
pub mod introspect;
pub mod mfa;
pub mod oidc;
pub mod passkey;
pub mod token;

use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::keys::KeyRing;
use std::sync::Arc;
use std::time::Duration;
use tessera_protocol::OAuthError;
use tessera_protocol::catalog::ScopeCatalog;
use tessera_protocol::client::ClientPolicy;
use tessera_storage::ClientRecord;
use tessera_storage::{Store, StoreError, ThrottleRule};

/// Server settings the services need.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuer identifier (RFC 8414 §2), without a trailing slash.
    pub issuer: String,
    /// Absolute lifetime of a refresh-token family, seconds: rotation never extends it.
    pub refresh_token_lifetime: i64,
    /// Idle lifetime: a refresh token unused this long expires, seconds.
    pub refresh_token_idle_lifetime: i64,
    /// Seconds during which a just-rotated refresh token may be presented again without
    /// tripping reuse detection (0 = off, the default).
    pub refresh_token_grace: i64,
    /// Lifetime of a browser session, seconds.
    pub session_lifetime: i64,
    /// Sign-in throttling per username, known or not (RFC 6749 §10.10, NIST SP 800-63B
    /// §5.2.2): 3 failures free, then a window of 1, 2, 4 … seconds after each, at most 15
    /// minutes; forgotten after 15 quiet minutes or a successful sign-in.
    pub sign_in_user_throttle: ThrottleRule,
    /// Sign-in throttling per client address (IPv6 by /64): a short delay (at most a minute)
    /// after a burst of failures, never a lockout of everyone behind one address.
    pub sign_in_address_throttle: ThrottleRule,
    /// RFC 8628 §5.1: wrong user codes per client address.
    pub user_code_address_throttle: ThrottleRule,
    /// Proxies (load balancers) whose `X-Forwarded-For` / `Forwarded` headers name the client
    /// for throttling (`--trusted-proxies`); empty: the TCP peer is the client.
    pub trusted_proxies: Vec<crate::net::Cidr>,
    // Keys at rest and back-channel logout targets (issue 13, findings 4 and 11).
    /// The key-encryption keys that seal signing keys in the store (`tessera_jose::kek`). `None`:
    /// a random KEK of this process, shared by its instances (tests, embedding): keys it seals
    /// cannot be opened after a restart. `tessera serve` always sets the one its settings name.
    pub key_encryption: Option<Arc<tessera_jose::kek::KeyEncryption>>,
    /// Allow back-channel logout URIs in private, loopback, link-local and other non-public
    /// address ranges (development, tests); refused at delivery otherwise.
    pub allow_private_logout_uris: bool,
    /// RFC 9449 §8: DPoP proofs at the token endpoint and UserInfo must carry a nonce this
    /// server issued (`DPoP-Nonce`): proofs cannot be made ahead of time. Off by default.
    pub dpop_nonces: bool,
    /// The rules a new password must meet (NIST SP 800-63B §5.1.1.2), wherever it is set: the
    /// admin API, the console, the account page.
    pub password_policy: admin::PasswordPolicy,
    /// The Argon2id parameters new password hashes are made with (and older hashes upgraded to
    /// at sign-in).
    pub argon2: authn::Argon2Params,
    /// How the pages people see look (product name, logo, accent colour, extra CSS).
    pub branding: Branding,
    // Account mail (issue 15).
    /// Where mail goes (`--smtp-url`, `--email-from`); `None`: no mail is sent, and what needs it
    /// (password reset, verification links, self-registration) is off.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
    /// Anyone may create an account at `/register`, enabled once its address is confirmed by a
    /// mailed link (`--self-registration`; needs a mailer). Off by default.
    pub self_registration: bool,
    /// Requests that mail someone (password reset, registration) per client address: 10 at once,
    /// then a growing delay up to 10 minutes; answered "try again in …".
    pub mail_address_throttle: ThrottleRule,
    /// Mails sent on request to one account or one address (reset and verification links,
    /// registration links): 3 at once, then 1, 2, 4 … seconds up to an hour between two,
    /// forgotten after a quiet hour — nobody can flood a mailbox through the forms.
    pub mail_recipient_throttle: ThrottleRule,
}

/// The branding of the sign-in, consent and account pages (`--brand-name`, `--brand-logo-url`,
/// `--brand-accent`, `--brand-css`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    /// The product name in titles, headings and mails ("Tessera").
    pub product_name: String,
    /// An image shown above every page's content (https, or a path on this server).
    pub logo_url: Option<String>,
    /// The accent colour of buttons and links, `#rrggbb`.
    pub accent: Option<String>,
    /// CSS appended to the built-in stylesheet (the contents of `--brand-css FILE`).
    pub css: Option<String>,
    /// A folder of page templates that replace the built-in ones (`--template-dir`).
    pub template_dir: Option<std::path::PathBuf>,
}

impl Default for Branding {
    fn default() -> Self {
        Self { product_name: "Tessera".into(), logo_url: None, accent: None, css: None, template_dir: None }
    }
}

impl Config {
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            refresh_token_lifetime: 90 * 24 * 3600,
            refresh_token_idle_lifetime: 30 * 24 * 3600,
            refresh_token_grace: 0,
            session_lifetime: 12 * 3600,
            sign_in_user_throttle: ThrottleRule { burst: 4, max_delay: 15 * 60, reset_after: 15 * 60 },
            sign_in_address_throttle: ThrottleRule { burst: 50, max_delay: 60, reset_after: 15 * 60 },
            user_code_address_throttle: ThrottleRule { burst: 10, max_delay: 60, reset_after: 15 * 60 },
            trusted_proxies: Vec::new(),
            key_encryption: None,
            allow_private_logout_uris: false,
            dpop_nonces: false,
            password_policy: admin::PasswordPolicy::default(),
            argon2: authn::Argon2Params::default(),
            branding: Branding::default(),
            mailer: None,
            self_registration: false,
            mail_address_throttle: ThrottleRule { burst: 10, max_delay: 10 * 60, reset_after: 60 * 60 },
            mail_recipient_throttle: ThrottleRule { burst: 3, max_delay: 60 * 60, reset_after: 60 * 60 },
        }
    }
    /// Cookies get `Secure` when the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// The service: store, keys, clock and settings.
pub struct Tessera {
    pub store: Arc<dyn Store>,
    pub keys: KeyRing,
    pub clock: Arc<dyn Clock>,
    /// Every code, token, session id and user code the services make comes from here.
    pub random: Arc<dyn crate::secret::Random>,
    pub config: Config,
    /// The key-encryption key that seals signing keys and second-factor secrets.
    kek: Arc<tessera_jose::kek::KeyEncryption>,
    /// The WebAuthn Relying Party of the issuer, or why there is none ([`passkey`]).
    webauthn: Result<webauthn_rs::Webauthn, String>,
    /// [`Config::branding`], shared by every page.
    branding: Arc<Branding>,
    /// An Argon2id hash to verify against when the username is unknown, so that sign-in takes
    /// the same time whether or not the user exists. Made on first use, on the hashing threads
    /// (not at start-up: one Argon2id hash is most of a start's time).
    dummy_hash: tokio::sync::OnceCell<String>,
    /// Password rehashes under way ([`authn`]: a sign-in that verified a hash made with other
    /// parameters).
    rehashes: std::sync::Mutex<tokio::task::JoinSet<()>>,
    /// Client records by id, with the rules' view of each, for the hot paths (≤ [`CACHE_TTL`]
    /// stale).
    clients: TtlCache<String, (Arc<ClientRecord>, Arc<ClientPolicy>)>,
    /// Basic `Authorization` headers that authenticated a client, with its policy (≤
    /// [`CACHE_TTL`] stale; successes only).
    authenticated_headers: TtlCache<String, Arc<ClientPolicy>>,
    /// The scope catalog (≤ [`CACHE_TTL`] stale).
    catalog: TtlCache<(), Arc<ScopeCatalog>>,
    /// Access tokens whose signature this instance verified, by their signature segment: the
    /// signing key's `kid` and the claims (see `introspect.rs`).
    verified_tokens: TtlCache<Box<str>, Arc<introspect::VerifiedToken>>,
    /// The metadata document, serialized for the catalog it was built from.
    metadata_doc: std::sync::Mutex<Option<(Arc<ScopeCatalog>, String)>>,
    /// Ids of users found to exist (≤ [`CACHE_TTL`] stale; found ones only), for introspection.
    live_users: TtlCache<String, ()>,
    /// Every origin some client may call from (CORS preflights carry no client), ≤
    /// [`CACHE_TTL`] stale.
    origins: TtlCache<(), Arc<std::collections::HashSet<String>>>,
    /// The DPoP nonces this instance issued ([`dpop`]).
    dpop_nonces: std::sync::Mutex<dpop::Nonces>,
    /// This instance's counters and histograms (`/metrics`).
    pub metrics: crate::metrics::Metrics,
    /// Shutting down: readiness answers 503 so that load balancers move traffic away, while
    /// requests are still served ([`Tessera::start_draining`]).
    draining: std::sync::atomic::AtomicBool,
}

/// The random key-encryption key of this process, for a [`Config`] without one.
static PROCESS_KEK: std::sync::OnceLock<Arc<tessera_jose::kek::KeyEncryption>> = std::sync::OnceLock::new();

fn process_kek() -> Result<Arc<tessera_jose::kek::KeyEncryption>, StoreError> {
    if let Some(k) = PROCESS_KEK.get() {
        return Ok(k.clone());
    }
    let text = tessera_jose::kek::Kek::generate_base64().map_err(|e| StoreError::Other(e.to_string()))?;
    let kek = tessera_jose::kek::Kek::from_base64(&text).map_err(|e| StoreError::Other(e.to_string()))?;
    let _ = PROCESS_KEK.set(Arc::new(tessera_jose::kek::KeyEncryption::new(kek, vec![])));
    PROCESS_KEK.get().cloned().ok_or_else(|| StoreError::Other("no key-encryption key".into()))
}

/// How stale a cached client or scope catalog may be: changes made through the CLI or another
/// instance are seen within this bound.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

impl Tessera {
    pub async fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Config) -> Result<Arc<Self>, StoreError> {
        Self::with_random(store, clock, Arc::new(crate::secret::OsRandom), config).await
    }

    /// [`Tessera::new`] with the random source injected (tests script it).
    pub async fn with_random(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn crate::secret::Random>,
        config: Config,
    ) -> Result<Arc<Self>, StoreError> {
        let kek = match &config.key_encryption {
            Some(k) => k.clone(),
            None => process_kek()?,
        };
        let keys = KeyRing::load_or_generate(&*store, kek.clone(), clock.now()).await?;
        Ok(Arc::new(Self {
            store,
            keys,
            clock: clock.clone(),
            random,
            webauthn: passkey::relying_party(&config.issuer, &config.branding.product_name),
            branding: Arc::new(config.branding.clone()),
            config,
            kek,
            dummy_hash: tokio::sync::OnceCell::new(),
            rehashes: std::sync::Mutex::new(tokio::task::JoinSet::new()),
            clients: TtlCache::new(CACHE_TTL, 10_000, clock.clone()),
            authenticated_headers: TtlCache::new(CACHE_TTL, 10_000, clock.clone()),
            catalog: TtlCache::new(CACHE_TTL, 1, clock.clone()),
            verified_tokens: TtlCache::new(Duration::from_secs(tessera_protocol::token::ACCESS_TOKEN_LIFETIME_SECS as u64), 10_000, clock.clone()),
            metadata_doc: std::sync::Mutex::new(None),
            live_users: TtlCache::new(CACHE_TTL, 10_000, clock.clone()),
            dpop_nonces: std::sync::Mutex::new(dpop::Nonces::default()),
            origins: TtlCache::new(CACHE_TTL, 1, clock.clone()),
            metrics: crate::metrics::Metrics::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// A client by id, from the cache when fresh.
    pub async fn cached_client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, ServiceError> {
        Ok(self.cached_client_and_policy(client_id).await?.map(|(c, _)| c))
    }

    /// A client by id and the rules' view of it ([`authorize::client_policy`], built once per
    /// cache fill rather than per request), from the cache when fresh.
    pub async fn cached_client_and_policy(&self, client_id: &str) -> Result<Option<(Arc<ClientRecord>, Arc<ClientPolicy>)>, ServiceError> {
        if let Some(c) = self.clients.get(client_id) {
            return Ok(Some(c));
        }
        let Some(c) = self.store.find_client(client_id).await? else { return Ok(None) };
        let policy = Arc::new(authorize::client_policy(&c));
        let entry = (Arc::new(c), policy);
        self.clients.insert(client_id.to_string(), entry.clone());
        Ok(Some(entry))
    }

    /// The scope catalog, from the cache when fresh.
    pub async fn cached_catalog(&self) -> Result<Arc<ScopeCatalog>, ServiceError> {
        if let Some(c) = self.catalog.get(&()) {
            return Ok(c);
        }
        let c = Arc::new(self.scope_catalog().await?);
        self.catalog.insert((), c.clone());
        Ok(c)
    }
    /// CORS (Fetch standard): whether a browser on `origin` may call the token, revocation or
    /// UserInfo endpoint — for `client_id`'s registered origins, or, when the client is not
    /// known (a preflight, a request whose client authentication failed), for any client's.
    pub async fn cors_allows(&self, client_id: Option<&str>, origin: &str) -> Result<bool, ServiceError> {
        if let Some(id) = client_id {
            return Ok(self.cached_client_and_policy(id).await?.is_some_and(|(_, p)| p.origins.iter().any(|o| o == origin)));
        }
        if let Some(all) = self.origins.get(&()) {
            return Ok(all.contains(origin));
        }
        let all: std::collections::HashSet<String> =
            self.store.list_clients().await?.iter().flat_map(|c| tessera_protocol::cors::effective_origins(&c.redirect_uris, &c.allowed_origins)).collect();
        let allowed = all.contains(origin);
        self.origins.insert((), Arc::new(all));
        Ok(allowed)
    }

    /// How the pages look.
    pub fn branding(&self) -> Arc<Branding> {
        self.branding.clone()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The Prometheus exposition of this instance's signals, with the store's pool and the
    /// signing keys' age read now.
    pub fn render_metrics(&self) -> String {
        let now = self.now();
        let keys = self.keys.current();
        let key_ages = tessera_jose::Alg::ALL
            .iter()
            .filter_map(|alg| {
                let use_after = keys.all.iter().filter(|(k, u)| k.alg() == *alg && *u <= now).map(|(_, u)| *u).max()?;
                Some((alg.as_str().to_string(), now - use_after))
            })
            .collect();
        self.metrics.render(&crate::metrics::Gauges { pool: self.store.pool_stats(), key_ages })
    }

    /// Record an audit event the server itself observed (actor empty), concerning `user` and
    /// `client`.
    pub async fn audit(&self, kind: &str, user: Option<&str>, client: Option<&str>, detail: &str) -> Result<(), ServiceError> {
        let e = tessera_storage::NewAuditEvent { kind, actor: "", user_id: user, client_id: client, detail };
        Ok(self.store.record_audit_event(&e, self.now()).await?)
    }

    /// The user `id`, unless deleted or disabled: whom tokens may still be issued for or
    /// answered about.
    pub async fn active_user(&self, id: &str) -> Result<Option<tessera_storage::UserRecord>, ServiceError> {
        Ok(self.store.find_user(id).await?.filter(|u| u.disabled_at.is_none()))
    }

    /// Whether the user `id` exists and is enabled, from the cache when it was found within [`CACHE_TTL`]: a
    /// user deleted through the CLI is seen within that bound, without a read per call.
    pub async fn user_exists_cached(&self, id: &str) -> Result<bool, ServiceError> {
        if self.live_users.get(id).is_some() {
            return Ok(true);
        }
        let exists = self.active_user(id).await?.is_some();
        if exists {
            self.live_users.insert(id.to_string(), ());
        }
        Ok(exists)
    }

    /// RFC 8414 metadata as JSON text, rebuilt only when the cached catalog changes.
    /// Readiness (`/health/ready`): the store answers now. Liveness needs no service: a process
    /// that answers HTTP is alive.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }

    /// The shutdown has begun: [`Tessera::is_draining`] from now on (readiness fails, answers
    /// ask clients to close their connections), while requests are still served.
    pub fn start_draining(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn metadata_json(&self) -> Result<String, ServiceError> {
        let catalog = self.cached_catalog().await?;
        if let Ok(g) = self.metadata_doc.lock() {
            if let Some((_, doc)) = g.as_ref().filter(|(c, _)| Arc::ptr_eq(c, &catalog)) {
                return Ok(doc.clone());
            }
        }
        let mut doc = tessera_protocol::metadata::authorization_server(&self.config.issuer, &catalog.names());
        // RFC 9449 §5.1: the algorithms accepted in DPoP proofs.
        doc["dpop_signing_alg_values_supported"] = serde_json::json!(tessera_dpop::SUPPORTED_ALGS);
        let text = serde_json::to_string(&doc).map_err(|e| OAuthError::server_error(e.to_string()))?;
        if let Ok(mut g) = self.metadata_doc.lock() {
            *g = Some((catalog, text.clone()));
        }
        Ok(text)
    }
}

/// A service failure: an OAuth error for the client, or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// The OAuth error the client sees. Storage details stay in the log.
    pub fn to_oauth(&self) -> OAuthError {
        match self {
            Self::OAuth(e) => e.clone(),
            Self::Store(StoreError::Unavailable(_)) => {
                OAuthError::new(tessera_protocol::ErrorCode::TemporarilyUnavailable, "the service is temporarily unavailable")
            }
            Self::Store(_) => OAuthError::server_error("internal error"),
        }
    }
}
