//! Authentication of resource owners: Argon2id password hashes, throttled sign-in, and browser
//! sessions. Kept apart from authorization: this module says *who* the user is, never what a
//! client may do.

use super::{ServiceError, Tessera};
use crate::secret;
use argon2::{Argon2, PasswordHasher};
use tessera_storage::{SessionRecord, UserRecord};

/// Argon2id with the crate's defaults (m = 19 MiB, t = 2, p = 1: OWASP's recommendation).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt: [u8; 16] = rand::random();
    Argon2::default().hash_password_with_salt(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Check `password` against a PHC-format Argon2 hash (constant-time comparison of the outputs).
/// The 19 MiB of Argon2 memory is allocated once per thread and reused: a fresh allocation per
/// verification left freed blocks scattered over malloc arenas (≈ 170 MB after a burst of
/// sign-ins, against ≈ 40 MB now for two hashing threads).
pub fn verify_password(password: &str, hash: &str) -> bool {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let Ok(parsed) = argon2::PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else { return false };
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else { return false };
    let n = params.block_count();
    let hashed = BLOCKS.with(|b| {
        let Ok(mut blocks) = b.try_borrow_mut() else { return false };
        if blocks.len() < n {
            blocks.resize(n, argon2::Block::default());
        }
        Argon2::new(algorithm, version, params).hash_password_into_with_memory(password.as_bytes(), salt, out, &mut blocks[..n]).is_ok()
    });
    hashed && bool::from(subtle::ConstantTimeEq::ct_eq(&*out, expected.as_bytes()))
}

/// Argon2id runs on its own threads, one per core, started on first use. It is deliberately
/// slow and holds 19 MiB for its whole run: more at once than cores add only memory, and on
/// tokio's many blocking threads each freed block stayed in that thread's malloc arena
/// (hundreds of MB after a burst of sign-ins). On a fixed set of threads the memory held is
/// bounded by their number.
fn hashing_threads() -> Option<&'static std::sync::mpsc::Sender<HashJob>> {
    static POOL: std::sync::OnceLock<Option<std::sync::mpsc::Sender<HashJob>>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || loop {
                let job = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
            if spawned.is_err() {
                return None;
            }
        }
        Some(tx)
    })
    .as_ref()
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Run `f` (password hashing) on the hashing threads; `None` if they are gone.
pub async fn on_hashing_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    hashing_threads()?.send(Box::new(move || drop(tx.send(f())))).ok()?;
    rx.await.ok()
}

/// Why a sign-in failed. Messages never reveal whether the username exists.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInError {
    InvalidCredentials,
    Throttled,
}

/// How long an anonymous session lives: as long as the pending request it carries
/// (RFC 6819 §4.4.1.11: a cookieless request must not leave a 12-hour row behind). Sign-in
/// replaces it with a session of the full lifetime ([`Tessera::signed_in_session`]).
pub const ANONYMOUS_SESSION_SECS: i64 = super::authorize::PENDING_LIFETIME_SECS;

/// A browser session and the cookie value that names it (set only when new).
pub struct Session {
    pub record: SessionRecord,
    pub new_cookie: Option<String>,
}

impl Session {
    /// The cookie's `Max-Age`: the session's lifetime.
    pub fn max_age(&self) -> i64 {
        self.record.expires_at - self.record.created_at
    }
}

impl Tessera {
    /// Check a username and password. `address` is the client's address, for throttling.
    pub async fn sign_in(&self, username: &str, password: &str, address: &str) -> Result<Result<UserRecord, SignInError>, ServiceError> {
        let now = self.now();
        let since = now - self.config.login_window;
        let user_key = format!("user:{}", username.to_lowercase());
        let addr_key = format!("addr:{address}");
        let user_failures = self.store.count_login_failures(&user_key, since).await?;
        if user_failures >= self.config.login_failures_per_user || self.store.count_login_failures(&addr_key, since).await? >= self.config.login_failures_per_address {
            return Ok(Err(SignInError::Throttled));
        }
        let user = self.store.find_user_by_username(username).await?;
        let hash = match &user {
            Some(u) => u.password_hash.clone(),
            None => self.dummy_hash().await?,
        };
        let pw = password.to_string();
        // Off the async workers, on the hashing threads.
        let ok = on_hashing_thread(move || verify_password(&pw, &hash)).await.unwrap_or(false);
        match user {
            Some(u) if ok => {
                // Nothing to clear when no failure was counted (saves a write per sign-in; a
                // failure recorded meanwhile by a concurrent attempt stays and still counts).
                if user_failures > 0 {
                    self.store.clear_login_failures(&user_key).await?;
                }
                Ok(Ok(u))
            }
            _ => {
                self.store.record_login_failure(&user_key, now).await?;
                self.store.record_login_failure(&addr_key, now).await?;
                Ok(Err(SignInError::InvalidCredentials))
            }
        }
    }

    /// The hash an unknown username is checked against.
    async fn dummy_hash(&self) -> Result<String, ServiceError> {
        let made = self
            .dummy_hash
            .get_or_try_init(|| async {
                let made = on_hashing_thread(|| hash_password(&secret::random_token())).await;
                made.unwrap_or_else(|| Err("no hashing threads".into())).map_err(tessera_protocol::OAuthError::server_error)
            })
            .await?;
        Ok(made.clone())
    }

    /// The session named by the cookie, if it is live.
    pub async fn find_session(&self, cookie: Option<&str>) -> Result<Option<SessionRecord>, ServiceError> {
        match cookie {
            Some(c) if !c.is_empty() && c.len() <= 128 => Ok(self.store.find_session(&secret::hash(c), self.now()).await?),
            _ => Ok(None),
        }
    }

    /// Start a new session (at sign-in the old one is replaced, against session fixation).
    pub async fn create_session(&self, user: Option<&UserRecord>) -> Result<Session, ServiceError> {
        let session = self.new_session(user);
        self.store.create_session(&session.record).await?;
        Ok(session)
    }

    /// After a sign-in: a new session for `user` replaces `old` (a new id, so a cookie planted
    /// before the sign-in does not ride it), and `pending` moves to it, in one transaction.
    pub async fn signed_in_session(&self, user: &UserRecord, old: &SessionRecord, pending: &super::authorize::PendingAuthorization) -> Result<Session, ServiceError> {
        let session = self.new_session(Some(user));
        let moved = self.pending_record(pending, &session.record)?;
        self.store.replace_session(&old.id_hash, &session.record, &moved).await?;
        Ok(session)
    }

    fn new_session(&self, user: Option<&UserRecord>) -> Session {
        let now = self.now();
        let cookie = secret::random_token();
        let record = SessionRecord {
            id_hash: secret::hash(&cookie),
            sid: secret::random_id(),
            user_id: user.map(|u| u.id.clone()),
            amr: user.map(|_| "pwd".to_string()),
            csrf_token: secret::random_token(),
            auth_time: user.map(|_| now),
            created_at: now,
            expires_at: now + if user.is_some() { self.config.session_lifetime } else { ANONYMOUS_SESSION_SECS },
        };
        Session { record, new_cookie: Some(cookie) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Passwords are stored as Argon2id PHC strings and verify only with the right password.
    #[test]
    fn argon2id_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        // Hashes made elsewhere (argon2's own verifier agrees), other parameters, and the
        // memory reused across calls with different sizes.
        use argon2::PasswordVerifier;
        let small = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::new(8, 1, 1, None).unwrap());
        let h2 = small.hash_password_with_salt(b"pw", b"saltsaltsaltsalt").unwrap().to_string();
        assert!(Argon2::default().verify_password(b"pw", h2.as_str()).is_ok());
        assert!(verify_password("pw", &h2));
        assert!(!verify_password("pw2", &h2));
        assert!(verify_password("correct horse", &h));
        let argon2i = Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, argon2::Params::new(8, 1, 1, None).unwrap());
        let h3 = argon2i.hash_password_with_salt(b"pw", b"saltsaltsaltsalt").unwrap().to_string();
        assert!(h3.starts_with("$argon2i$") && verify_password("pw", &h3));
    }
}
