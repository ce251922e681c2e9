//! Proof Key for Code Exchange, RFC 7636. Tessera accepts only `S256` (RFC 9700 §2.1.1:
//! "`plain` ... SHOULD NOT" be used; OAuth 2.1 §4.1.1 requires S256 support).

use crate::error::OAuthError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A validated `code_challenge` with method S256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// RFC 7636 §4.3: parse `code_challenge` and `code_challenge_method` from the authorization
    /// request. "If no code_challenge_method is present ... defaults to plain", which Tessera
    /// refuses, so the method must be given as `S256`.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, OAuthError> {
        match method {
            Some("S256") => {}
            Some("plain") | None => {
                return Err(OAuthError::invalid_request("code_challenge_method must be S256; plain is not supported"));
            }
            Some(_) => return Err(OAuthError::invalid_request("unsupported code_challenge_method; use S256")),
        }
        // An S256 challenge is BASE64URL(SHA256(verifier)) without padding: exactly 43 characters.
        if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).map(|d| d.len()) != Ok(32) {
            return Err(OAuthError::invalid_request("code_challenge is not a base64url SHA-256 value"));
        }
        Ok(Self(challenge.to_string()))
    }

    /// Reconstruct from storage (already validated when stored).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge`,
    /// compared in constant time.
    pub fn verify(&self, verifier: &str) -> Result<(), OAuthError> {
        if !is_valid_verifier(verifier) {
            return Err(OAuthError::invalid_grant("code_verifier is malformed"));
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if bool::from(computed.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"))
        }
    }
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
pub fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    // RFC 7636 Appendix B example.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// RFC 7636 Appendix B: the worked example verifies.
    #[test]
    fn rfc7636_appendix_b_example() {
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert!(c.verify(VERIFIER).is_ok());
    }

    /// RFC 7636 §4.6: a different verifier fails with invalid_grant.
    #[test]
    fn rfc7636_4_6_mismatch_is_invalid_grant() {
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx";
        assert_eq!(c.verify(other).unwrap_err().code, crate::ErrorCode::InvalidGrant);
    }

    /// RFC 7636 §4.1: verifier length 43..=128 and unreserved characters only.
    #[test]
    fn rfc7636_4_1_verifier_syntax() {
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"a".repeat(128)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(43))));
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert!(c.verify("short").is_err());
    }

    /// RFC 7636 §4.3 with RFC 9700 §2.1.1: `plain` (explicit or by default) is refused.
    #[test]
    fn rfc7636_4_3_plain_refused() {
        assert!(CodeChallenge::parse(CHALLENGE, Some("plain")).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, None).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, Some("s256")).is_err());
    }

    /// RFC 7636 §4.2: an S256 challenge is 43 base64url characters.
    #[test]
    fn rfc7636_4_2_challenge_syntax() {
        assert!(CodeChallenge::parse("abc", Some("S256")).is_err());
        assert!(CodeChallenge::parse(&"*".repeat(43), Some("S256")).is_err());
    }
}
