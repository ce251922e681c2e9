//! Random secrets and their stored form. Codes, refresh tokens, session ids and client secrets
//! are 256-bit random values; only their SHA-256 (hex) is stored, and comparisons of secrets are
//! constant-time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Where the service's random values come from, injected like the clock ([`crate::Clock`]):
/// [`OsRandom`] in production; tests may script the bytes to reach paths chance rarely takes
/// (a colliding user code).
pub trait Random: Send + Sync + 'static {
    /// Fill `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// A fresh 256-bit random value, base64url.
    fn token(&self) -> String {
        let mut b = [0u8; 32];
        self.fill(&mut b);
        URL_SAFE_NO_PAD.encode(b)
    }

    /// A fresh 128-bit random identifier, base64url (22 characters).
    fn id(&self) -> String {
        let mut b = [0u8; 16];
        self.fill(&mut b);
        URL_SAFE_NO_PAD.encode(b)
    }
}

/// The operating system's generator (through `rand`'s thread-local CSPRNG, seeded from it).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::fill(buf);
    }
}

/// A fresh 256-bit random value, base64url.
pub fn random_token() -> String {
    OsRandom.token()
}

/// A fresh 128-bit random identifier, base64url (22 characters).
pub fn random_id() -> String {
    OsRandom.id()
}

/// A fresh identifier of 22 letters and digits (~131 bits): safe as a command-line argument
/// (never starts with `-`) and in URLs without escaping. Used for client and user ids.
pub fn random_alnum_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let bytes: [u8; 22] = rand::random();
    // 256 is not a multiple of 62: reject-free mapping with a slight bias is fine for identifiers
    // (they are not secrets), but keep it uniform anyway by drawing again where needed.
    bytes
        .iter()
        .map(|&b| {
            let mut v = b;
            while v >= 248 {
                v = rand::random();
            }
            char::from(ALPHABET[(v % 62) as usize])
        })
        .collect()
}

/// SHA-256, hex: the stored form of a secret.
pub fn hash(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d {
        s.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        s.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    s
}

/// Constant-time check of a presented secret against its stored hash.
pub fn matches(presented: &str, stored_hash: &str) -> bool {
    bool::from(hash(presented).as_bytes().ct_eq(stored_hash.as_bytes()))
}

/// Constant-time equality of two non-secret-length strings (e.g. CSRF tokens, stored hashes).
pub fn matches_plain(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_match() {
        let s = random_token();
        assert_eq!(s.len(), 43);
        let h = hash(&s);
        assert_eq!(h.len(), 64);
        assert!(matches(&s, &h));
        assert!(!matches("other", &h));
        assert_ne!(random_token(), random_token());
        let id = random_alnum_id();
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
