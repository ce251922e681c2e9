//! The app's sessions, in memory: the browser holds only a random id in an HttpOnly cookie;
//! CSRF token, pending authorization request (state, PKCE verifier) and tokens stay here.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const COOKIE: &str = "notes_client_session";
/// Sessions idle longer than this are forgotten.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// A pending authorization request older than this is refused at the callback.
pub const PENDING_MAX_AGE: Duration = Duration::from_secs(600);
/// At most this many sessions are kept (the oldest idle ones go first).
pub const MAX_SESSIONS: usize = 10_000;

/// 256 random bits, base64url.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// An authorization request sent and not yet answered (RFC 6749 §4.1.1, RFC 7636 §4.1).
#[derive(Debug, Clone)]
pub struct Pending {
    pub state: String,
    pub verifier: String,
    pub scope: String,
    pub created: Instant,
}

/// The tokens of a connected account. Never sent to the browser.
#[derive(Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// By the app's clock: issue time + `expires_in`.
    pub expires_at: i64,
    /// The scope granted (RFC 6749 §5.1).
    pub scope: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("expires_at", &self.expires_at).field("scope", &self.scope).finish_non_exhaustive()
    }
}

/// A one-time message for the next page.
#[derive(Debug, Clone)]
pub struct Flash {
    pub error: bool,
    pub text: String,
}

#[derive(Debug)]
pub struct SessionData {
    pub csrf: String,
    pub pending: Option<Pending>,
    pub tokens: Option<Tokens>,
    pub flash: Option<Flash>,
    last_seen: Instant,
}

#[derive(Debug)]
pub struct Session {
    data: Mutex<SessionData>,
    /// Serializes token use per session: rotating refresh tokens must not be spent twice.
    pub token_lock: tokio::sync::Mutex<()>,
}

impl Session {
    fn new() -> Self {
        Self {
            data: Mutex::new(SessionData { csrf: random_token(), pending: None, tokens: None, flash: None, last_seen: Instant::now() }),
            token_lock: tokio::sync::Mutex::new(()),
        }
    }
    pub fn data(&self) -> MutexGuard<'_, SessionData> {
        match self.data.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
    pub fn tokens(&self) -> Option<Tokens> {
        self.data().tokens.clone()
    }
    pub fn set_flash(&self, error: bool, text: impl Into<String>) {
        self.data().flash = Some(Flash { error, text: text.into() });
    }
    /// RFC 6749 §10.12 / OWASP: compare the form's CSRF token in constant time.
    pub fn check_csrf(&self, presented: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        let d = self.data();
        presented.is_some_and(|p| p.len() == d.csrf.len() && bool::from(p.as_bytes().ct_eq(d.csrf.as_bytes())))
    }
}

#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

/// The value of cookie `name`, if the request has exactly one.
fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        for pair in v.to_str().ok()?.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(val.to_string());
                }
            }
        }
    }
    found
}

impl Sessions {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The request's session, if it has a live one.
    pub fn find(&self, headers: &HeaderMap) -> Option<Arc<Session>> {
        let id = read_cookie(headers, COOKIE)?;
        let s = self.map().get(&id).cloned()?;
        {
            let mut d = s.data();
            if d.last_seen.elapsed() > IDLE {
                return None;
            }
            d.last_seen = Instant::now();
        }
        Some(s)
    }

    /// The request's session, or a new one and the `Set-Cookie` value that names it.
    pub fn find_or_create(&self, headers: &HeaderMap, secure: bool) -> (Arc<Session>, Option<String>) {
        if let Some(s) = self.find(headers) {
            return (s, None);
        }
        let id = random_token();
        let s = Arc::new(Session::new());
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.data().last_seen.elapsed() <= IDLE);
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.data().last_seen).map(|(k, _)| k.clone()) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(id.clone(), s.clone());
        let secure = if secure { "; Secure" } else { "" };
        (s, Some(format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}")))
    }

    /// Give the request's session a new id and CSRF token (when it gains tokens: a session id
    /// planted before the connection is worth nothing after it). Returns the new `Set-Cookie`.
    pub fn rotate(&self, headers: &HeaderMap, secure: bool) -> Option<String> {
        let old = read_cookie(headers, COOKIE)?;
        let mut map = self.map();
        let s = map.remove(&old)?;
        s.data().csrf = random_token();
        let id = random_token();
        map.insert(id.clone(), s);
        let secure = if secure { "; Secure" } else { "" };
        Some(format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}"))
    }

    /// Every session (test hook: inspect or age the stored tokens).
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map().values().cloned().collect()
    }
}
