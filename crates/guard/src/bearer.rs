//! Reading the access token from a request: RFC 6750 §2.1 (`Authorization: Bearer`) only.
//!
//! RFC 6750 §2.3 (URI query parameter) is refused outright — "Because of the security
//! weaknesses associated with the URI method … it SHOULD NOT be used" — and §2.2 (form body) is
//! never read, so a token sent there is simply absent.

use crate::error::GuardError;
use axum::http::{HeaderMap, Uri, header};

/// Longest token accepted (a Tessera access token is well under 1 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The token of `Authorization: Bearer <token>`.
///
/// RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token`, where
/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`; the scheme is
/// case-insensitive (RFC 7235 §2.1).
pub fn extract<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<&'a str, GuardError> {
    if uri.query().is_some_and(has_access_token_param) {
        return Err(GuardError::InvalidRequest("send the access token in the Authorization header, not in the URI"));
    }
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(GuardError::Missing);
    };
    if values.next().is_some() {
        return Err(GuardError::InvalidRequest("more than one Authorization header"));
    }
    let value = value.to_str().map_err(|_| GuardError::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, rest) = match value.split_once(' ') {
        Some((s, r)) => (s, r),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (e.g. Basic): no bearer credentials at all (RFC 6750 §3.1: no error code).
        return Err(GuardError::Missing);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(GuardError::InvalidRequest("the Bearer credentials are empty"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(GuardError::InvalidRequest("the access token is too long"));
    }
    if !is_b64token(token) {
        return Err(GuardError::InvalidRequest("the Bearer credentials are not a b64token"));
    }
    Ok(token)
}

fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

fn has_access_token_param(query: &str) -> bool {
    query.split('&').any(|pair| pair.split('=').next() == Some("access_token"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn check(values: &[&[u8]], uri: &str) -> Result<String, GuardError> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        extract(&h, &uri.parse().unwrap()).map(str::to_string)
    }

    /// RFC 6750 §2.1 accepted forms and every refusal, through one helper.
    #[test]
    fn rfc6750_2_1_header_forms() {
        assert_eq!(check(&[b"Bearer abc.def.ghi"], "/").unwrap(), "abc.def.ghi");
        assert_eq!(check(&[b"bearer abc.def-_~+/=="], "/").unwrap(), "abc.def-_~+/==");
        assert_eq!(check(&[b"BEARER  abc"], "/").unwrap(), "abc");
        assert!(matches!(check(&[], "/"), Err(GuardError::Missing)));
        assert!(matches!(check(&[b"Basic dXNlcjpwYXNz"], "/"), Err(GuardError::Missing)));
        for bad in [&b"Bearer"[..], b"Bearer ", b"Bearer a b", b"Bearer a,b", b"Bearer \"a\"", b"Bearer =", b"Bearer a=b", b"Bearer \xff"] {
            assert!(matches!(check(&[bad], "/"), Err(GuardError::InvalidRequest(_))), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(check(&[b"Bearer a", b"Bearer b"], "/"), Err(GuardError::InvalidRequest(_))));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert!(matches!(check(&[long.as_bytes()], "/"), Err(GuardError::InvalidRequest(_))));
    }

    /// RFC 6750 §2.3: the URI query parameter is refused, even alongside a valid header.
    #[test]
    fn rfc6750_2_3_query_parameter_refused() {
        assert!(matches!(check(&[], "/notes?access_token=abc"), Err(GuardError::InvalidRequest(_))));
        assert!(matches!(check(&[b"Bearer abc"], "/notes?x=1&access_token=abc"), Err(GuardError::InvalidRequest(_))));
        assert_eq!(check(&[b"Bearer abc"], "/notes?not_access_token=1").unwrap(), "abc");
    }
}
