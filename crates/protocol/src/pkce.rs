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

/// Property-based tests of RFC 7636 verifiers and challenges on arbitrary input.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const UNRESERVED: &str = "[A-Za-z0-9._~-]";

    fn s256(verifier: &str) -> CodeChallenge {
        CodeChallenge::parse(&URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())), Some("S256")).unwrap()
    }

    proptest! {
        /// RFC 7636 §4.1, §4.2, §4.6: every verifier of 43–128 unreserved characters is valid
        /// and verifies against its own S256 challenge.
        #[test]
        fn rfc7636_4_1_valid_verifier_verifies(v in proptest::string::string_regex(&format!("{UNRESERVED}{{43,128}}")).unwrap()) {
            prop_assert!(is_valid_verifier(&v));
            prop_assert!(s256(&v).verify(&v).is_ok());
        }

        /// RFC 7636 §4.1: a verifier of the right characters but the wrong length is refused
        /// (invalid_grant), even against the challenge made from it.
        #[test]
        fn rfc7636_4_1_wrong_length_is_refused(v in prop_oneof![
            proptest::string::string_regex(&format!("{UNRESERVED}{{0,42}}")).unwrap(),
            proptest::string::string_regex(&format!("{UNRESERVED}{{129,300}}")).unwrap(),
        ]) {
            prop_assert!(!is_valid_verifier(&v));
            prop_assert_eq!(s256(&v).verify(&v).unwrap_err().code, crate::ErrorCode::InvalidGrant);
        }

        /// RFC 7636 §4.1: one character outside the unreserved set, anywhere, makes the verifier
        /// invalid, even against the challenge made from it.
        #[test]
        fn rfc7636_4_1_character_outside_the_alphabet_is_refused(
            v in proptest::string::string_regex(&format!("{UNRESERVED}{{43,127}}")).unwrap(),
            bad in any::<char>().prop_filter("not unreserved", |c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))),
            at in any::<prop::sample::Index>(),
        ) {
            let mut v = v;
            v.insert(at.index(v.len() + 1), bad);
            prop_assert!(!is_valid_verifier(&v));
            prop_assert_eq!(s256(&v).verify(&v).unwrap_err().code, crate::ErrorCode::InvalidGrant);
        }

        /// RFC 7636 §4.6: a valid verifier other than the one the challenge was made from does
        /// not verify (one character changed).
        #[test]
        fn rfc7636_4_6_other_verifier_does_not_verify(
            v in proptest::string::string_regex(&format!("{UNRESERVED}{{43,128}}")).unwrap(),
            at in any::<prop::sample::Index>(),
            c in proptest::string::string_regex(UNRESERVED).unwrap(),
        ) {
            let i = at.index(v.len());
            prop_assume!(v[i..i + 1] != c);
            let mut other = v.clone();
            other.replace_range(i..i + 1, &c);
            prop_assert_eq!(s256(&v).verify(&other).unwrap_err().code, crate::ErrorCode::InvalidGrant);
        }

        /// RFC 7636 §4.3/§4.6: arbitrary challenges, methods and verifiers never panic; an
        /// accepted challenge is 43 base64url characters of a SHA-256 value.
        #[test]
        fn rfc7636_4_3_arbitrary_challenge_never_panics(challenge in any::<String>(), method in proptest::option::of(any::<String>()), verifier in any::<String>()) {
            if let Ok(c) = CodeChallenge::parse(&challenge, method.as_deref()) {
                prop_assert_eq!(method.as_deref(), Some("S256"));
                prop_assert_eq!(URL_SAFE_NO_PAD.decode(c.as_str()).map(|d| d.len()), Ok(32));
                let _ = c.verify(&verifier);
            }
            let _ = CodeChallenge::parse(&challenge, Some("S256"));
        }

        /// RFC 7636 §4.2: any 43 base64url characters that decode to 32 bytes are an S256
        /// challenge; `plain` (or no method) is refused whatever the challenge (RFC 9700 §2.1.1).
        #[test]
        fn rfc7636_4_3_plain_is_refused(challenge in proptest::string::string_regex("[A-Za-z0-9_-]{43}").unwrap()) {
            prop_assert!(CodeChallenge::parse(&challenge, Some("plain")).is_err());
            prop_assert!(CodeChallenge::parse(&challenge, None).is_err());
            let decodes = URL_SAFE_NO_PAD.decode(&challenge).is_ok();
            prop_assert_eq!(CodeChallenge::parse(&challenge, Some("S256")).is_ok(), decodes);
        }
    }
}
