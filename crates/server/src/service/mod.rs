//! Services: the grants and pages' logic over the store, with plain typed values in and out.
//!
//! - [`admin`]: registering clients, users and APIs (the CLI's operations).
//! - [`authn`]: authentication of resource owners (passwords, throttling, browser sessions).
//! - [`authorize`]: the authorization endpoint, consent and code issuance (RFC 6749 §4.1.1–4.1.2).
//! - [`token`]: the token endpoint: client authentication, then one module per grant in [`grants`].

pub mod admin;
pub mod authn;
pub mod authorize;
pub mod grants;
pub mod token;

use crate::clock::Clock;
use crate::keys::KeyRing;
use std::sync::Arc;
use tessera_protocol::OAuthError;
use tessera_storage::{Store, StoreError};

/// Server settings the services need.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuer identifier (RFC 8414 §2), without a trailing slash.
    pub issuer: String,
    /// Lifetime of refresh tokens (absolute, per family), seconds.
    pub refresh_token_lifetime: i64,
    /// Lifetime of a browser session, seconds.
    pub session_lifetime: i64,
    /// Failed sign-ins allowed per username in [`Config::login_window`] before throttling.
    pub login_failures_per_user: i64,
    /// Failed sign-ins allowed per client address in the window.
    pub login_failures_per_address: i64,
    pub login_window: i64,
}

impl Config {
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            refresh_token_lifetime: 30 * 24 * 3600,
            session_lifetime: 12 * 3600,
            login_failures_per_user: 5,
            login_failures_per_address: 50,
            login_window: 15 * 60,
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
    pub config: Config,
    /// An Argon2id hash to verify against when the username is unknown, so that sign-in takes
    /// the same time whether or not the user exists.
    dummy_hash: String,
}

impl Tessera {
    pub async fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Config) -> Result<Arc<Self>, StoreError> {
        let keys = KeyRing::load_or_generate(&*store, clock.now()).await?;
        let dummy_hash = authn::hash_password(&crate::secret::random_token()).map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(Arc::new(Self { store, keys, clock, config, dummy_hash }))
    }
    pub fn now(&self) -> i64 {
        self.clock.now()
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
