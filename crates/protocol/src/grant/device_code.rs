//! The device authorization grant, RFC 8628: user codes (§6.1), the device authorization
//! request (§3.1) and the device access token request (§3.4), and the polling rules (§3.5).

use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::scope::Scopes;

/// RFC 8628 §6.1: a user code alphabet without vowels (no words) and without look-alike
/// characters ("BCDFGHJKLMNPQRSTVWXZ", base-20), 8 characters: 20^8 ≈ 2^34.6 values.
pub const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const USER_CODE_LEN: usize = 8;
/// Lifetime of a device code, seconds (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_LIFETIME_SECS: i64 = 600;
/// Default polling interval (RFC 8628 §3.2: "If no value is provided, clients MUST use 5").
pub const DEFAULT_INTERVAL_SECS: i64 = 5;
/// RFC 8628 §3.5 slow_down: "the interval MUST be increased by 5 seconds".
pub const SLOW_DOWN_STEP_SECS: i64 = 5;

/// A user code from random bytes (each byte picks a letter; 256 = 12·20 + 16, so bytes ≥ 240
/// must be redrawn by the caller for a uniform choice: [`user_code_from`] returns None then).
pub fn user_code_from(bytes: &[u8; USER_CODE_LEN]) -> Option<String> {
    let mut s = String::with_capacity(USER_CODE_LEN);
    for &b in bytes {
        if b >= 240 {
            return None;
        }
        s.push(char::from(USER_CODE_ALPHABET[(b % 20) as usize]));
    }
    Some(s)
}

/// Display form, `XXXX-XXXX` (RFC 8628 §6.1 suggests separators for readability).
pub fn display_user_code(normalized: &str) -> String {
    if normalized.len() == USER_CODE_LEN && normalized.is_ascii() { format!("{}-{}", &normalized[..4], &normalized[4..]) } else { normalized.to_string() }
}

/// RFC 8628 §6.1: "the authorization server should be case insensitive when comparing the user
/// code, and ... ignore ... punctuation." Upper-cases, drops dashes and spaces; None when the
/// result cannot be a user code.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let s: String = input.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    (s.len() == USER_CODE_LEN && s.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(s)
}

/// RFC 8628 §3.4 device access token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRequest {
    pub device_code: String,
}

impl DeviceCodeRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        Ok(Self { device_code: params.require("device_code")?.to_string() })
    }
}

/// RFC 8628 §3.1 device authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorizationRequest {
    pub scope: Scopes,
    /// RFC 8707 §2: the API the token is for.
    pub resource: Option<String>,
}

impl DeviceAuthorizationRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let scope = Scopes::parse(params.get("scope").unwrap_or(""))?;
        if scope.is_empty() {
            return Err(OAuthError::invalid_scope("missing parameter scope"));
        }
        Ok(Self { scope, resource: params.get("resource").map(str::to_string) })
    }
}

/// Where a device authorization stands, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    Consumed,
}

/// RFC 8628 §3.5: the answer to a poll, or `Ok(())` when tokens may be issued.
/// `last_polled_at` is the previous poll; polling faster than `interval` is `slow_down`.
pub fn check_poll(status: DeviceStatus, expires_at: i64, last_polled_at: Option<i64>, interval: i64, now: i64) -> Result<(), OAuthError> {
    if now >= expires_at {
        return Err(OAuthError::new(ErrorCode::ExpiredToken, "the device code has expired"));
    }
    match status {
        DeviceStatus::Denied => return Err(OAuthError::new(ErrorCode::AccessDenied, "the user denied the request")),
        DeviceStatus::Consumed => return Err(OAuthError::invalid_grant("the device code was already used")),
        _ => {}
    }
    if let Some(last) = last_polled_at {
        if now - last < interval {
            return Err(OAuthError::new(ErrorCode::SlowDown, "polling too fast"));
        }
    }
    match status {
        DeviceStatus::Pending => Err(OAuthError::new(ErrorCode::AuthorizationPending, "the user has not answered yet")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8628 §6.1: case-insensitive, dash optional, only the alphabet.
    #[test]
    fn rfc8628_6_1_user_code_normalization() {
        assert_eq!(normalize_user_code("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code("BCDFGHJK").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code(" bcdf ghjk ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("ABCD-EFGH"), None, "vowels are not in the alphabet");
        assert_eq!(normalize_user_code("BCDF-GHJ0"), None, "digits are look-alikes");
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }

    /// RFC 8628 §6.1: found by `proptests::rfc8628_6_1_arbitrary_input_never_panics`: eight
    /// bytes that are not eight ASCII characters panicked (a slice inside a character).
    #[test]
    fn regression_display_user_code_non_ascii_rfc8628_6_1() {
        assert_eq!(display_user_code("☃☃aa"), "☃☃aa");
    }

    /// RFC 8628 §6.1: no vowels and no look-alikes (0/O, 1/I/L) in the alphabet.
    #[test]
    fn rfc8628_6_1_alphabet() {
        for c in b"AEIOU01" {
            assert!(!USER_CODE_ALPHABET.contains(c));
        }
        assert_eq!(user_code_from(&[0, 1, 2, 3, 4, 5, 6, 19]).as_deref(), Some("BCDFGHJZ"));
        assert_eq!(user_code_from(&[240, 1, 2, 3, 4, 5, 6, 7]), None);
    }

    /// RFC 8628 §3.5: the polling answers.
    #[test]
    fn rfc8628_3_5_poll_answers() {
        let code = |r: Result<(), OAuthError>| r.map_err(|e| e.code);
        assert_eq!(code(check_poll(DeviceStatus::Pending, 100, None, 5, 10)), Err(ErrorCode::AuthorizationPending));
        assert_eq!(code(check_poll(DeviceStatus::Pending, 100, Some(8), 5, 10)), Err(ErrorCode::SlowDown));
        assert_eq!(code(check_poll(DeviceStatus::Pending, 100, Some(5), 5, 10)), Err(ErrorCode::AuthorizationPending));
        assert_eq!(code(check_poll(DeviceStatus::Denied, 100, None, 5, 10)), Err(ErrorCode::AccessDenied));
        assert_eq!(code(check_poll(DeviceStatus::Approved, 100, None, 5, 100)), Err(ErrorCode::ExpiredToken));
        assert_eq!(code(check_poll(DeviceStatus::Consumed, 100, None, 5, 10)), Err(ErrorCode::InvalidGrant));
        assert_eq!(code(check_poll(DeviceStatus::Approved, 100, Some(9), 5, 10)), Err(ErrorCode::SlowDown), "slow_down applies to every poll");
        assert_eq!(code(check_poll(DeviceStatus::Approved, 100, None, 5, 10)), Ok(()));
    }

    /// RFC 8628 §3.4: device_code is required.
    #[test]
    fn rfc8628_3_4_device_code_required() {
        let p = Params::parse(b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code").unwrap();
        assert_eq!(DeviceCodeRequest::parse(&p).unwrap_err().code, ErrorCode::InvalidRequest);
    }
}

/// Property-based tests of RFC 8628 §6.1 user codes on arbitrary input.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// RFC 8628 §6.1: a generated user code, shown as `XXXX-XXXX` and typed back in any
        /// case with dashes and spaces, is the same code.
        #[test]
        fn rfc8628_6_1_user_code_round_trips(bytes in proptest::array::uniform8(0u8..240), lower in any::<bool>(), spaces in "[ -]{0,3}") {
            let code = user_code_from(&bytes).unwrap();
            let shown = display_user_code(&code);
            let typed = if lower { shown.to_lowercase() } else { shown };
            prop_assert_eq!(normalize_user_code(&format!("{spaces}{typed}{spaces}")), Some(code));
        }

        /// RFC 8628 §6.1: any typed text is normalized, and any text displayed, without a panic;
        /// what normalizes is 8 characters of the alphabet.
        #[test]
        fn rfc8628_6_1_arbitrary_input_never_panics(s in prop_oneof![any::<String>(), "[a-zé ☃-]{0,12}"]) {
            if let Some(n) = normalize_user_code(&s) {
                prop_assert!(n.len() == USER_CODE_LEN && n.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            }
            let _ = display_user_code(&s);
        }
    }
}
