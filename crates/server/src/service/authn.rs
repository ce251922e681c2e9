//! Authentication of resource owners: Argon2id password hashes, throttled sign-in, and browser
//! sessions. Kept apart from authorization: this module says *who* the user is, never what a
//! client may do.

use super::{ServiceError, Tessera};
use crate::secret;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tessera_storage::{SessionRecord, UserRecord};

/// Argon2id with the crate's defaults (m = 19 MiB, t = 2, p = 1: OWASP's recommendation).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt: [u8; 16] = rand::random();
    Argon2::default().hash_password_with_salt(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// Concurrent Argon2id verifications: the number of cores.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)))
}

/// Why a sign-in failed. Messages never reveal whether the username exists.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInError {
    InvalidCredentials,
    Throttled,
}

/// A browser session and the cookie value that names it (set only when new).
pub struct Session {
    pub record: SessionRecord,
    pub new_cookie: Option<String>,
}

impl Tessera {
    /// Check a username and password. `address` is the client's address, for throttling.
    pub async fn sign_in(&self, username: &str, password: &str, address: &str) -> Result<Result<UserRecord, SignInError>, ServiceError> {
        let now = self.now();
        let since = now - self.config.login_window;
        let user_key = format!("user:{}", username.to_lowercase());
        let addr_key = format!("addr:{address}");
        if self.store.count_login_failures(&user_key, since).await? >= self.config.login_failures_per_user
            || self.store.count_login_failures(&addr_key, since).await? >= self.config.login_failures_per_address
        {
            return Ok(Err(SignInError::Throttled));
        }
        let user = self.store.find_user_by_username(username).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| self.dummy_hash.clone());
        let pw = password.to_string();
        // Argon2id is deliberately slow: keep it off the async workers, and run at most one per
        // core (each holds 19 MiB and a core for its whole run; more at once add only memory).
        let permit = hashing_slots().acquire().await;
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash)).await.unwrap_or(false);
        drop(permit);
        match user {
            Some(u) if ok => {
                self.store.clear_login_failures(&user_key).await?;
                Ok(Ok(u))
            }
            _ => {
                self.store.record_login_failure(&user_key, now).await?;
                self.store.record_login_failure(&addr_key, now).await?;
                Ok(Err(SignInError::InvalidCredentials))
            }
        }
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
            expires_at: now + self.config.session_lifetime,
        };
        self.store.create_session(&record).await?;
        Ok(Session { record, new_cookie: Some(cookie) })
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
    }
}
