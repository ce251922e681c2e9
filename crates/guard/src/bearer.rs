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
/// case-insensitive (RFC 7235 §2.1). Another scheme is no bearer credentials at all (RFC 6750
/// §3.1: no error code).
pub fn extract<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<&'a str, GuardError> {
    if uri.query().is_some_and(has_access_token_param) {
        return Err(GuardError::InvalidRequest("send the access token in the Authorization header, not in the URI"));
    }
    match authorization(headers)? {
        Presented::Token(t) => Ok(t),
        // DPoP-bound tokens need proof verification, which this guard does not do yet: no
        // bearer credentials.
        Presented::Absent | Presented::OtherScheme | Presented::Dpop(_) => Err(GuardError::Missing),
    }
}

/// The access token of a request and whether it came with the DPoP scheme (RFC 9449 §7.1);
/// the URI query placement is refused as in [`extract`].
pub fn credentials<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<(&'a str, bool), GuardError> {
    if uri.query().is_some_and(has_access_token_param) {
        return Err(GuardError::InvalidRequest("send the access token in the Authorization header, not in the URI"));
    }
    match authorization(headers)? {
        Presented::Token(t) => Ok((t, false)),
        Presented::Dpop(t) => Ok((t, true)),
        Presented::Absent | Presented::OtherScheme => Err(GuardError::Missing),
    }
}

/// What a request's `Authorization` header presents, read per RFC 6750 §2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No `Authorization` header.
    Absent,
    /// One header with another scheme (e.g. `Basic`): no bearer credentials.
    OtherScheme,
    /// `Bearer` and a b64token of at most [`MAX_TOKEN_LEN`] bytes.
    Token(&'a str),
    /// `DPoP` (RFC 9449 §7.1) and a token of the same syntax: a token bound to a key, to be
    /// presented with a proof in the `DPoP` header.
    Dpop(&'a str),
}

/// RFC 6750 §2.1, the one parser of bearer credentials (tessera-guard's resource servers and
/// Tessera's own UserInfo endpoint): the scheme in any case, one or more spaces (`1*SP`), then a
/// b64token. More than one `Authorization` header, a header that is not ASCII, and `Bearer`
/// with empty, over-long or non-b64token credentials are `invalid_request` (§3.1).
pub fn authorization(headers: &HeaderMap) -> Result<Presented<'_>, GuardError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Presented::Absent);
    };
    if values.next().is_some() {
        return Err(GuardError::InvalidRequest("more than one Authorization header"));
    }
    let value = value.to_str().map_err(|_| GuardError::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, rest) = match value.split_once(' ') {
        Some((s, r)) => (s, r),
        None => (value, ""),
    };
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !scheme.eq_ignore_ascii_case("bearer") && !dpop {
        return Ok(Presented::OtherScheme);
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
    Ok(if dpop { Presented::Dpop(token) } else { Presented::Token(token) })
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

    /// RFC 6750 §2.1 as [`authorization`] reads it (the behaviour Tessera's UserInfo endpoint
    /// now shares; its own parser accepted one space only and any characters but a space, and
    /// read the first of several headers): the scheme in any case, `1*SP`, the b64token
    /// charset, one header only; another scheme is told apart from no header.
    #[test]
    fn rfc6750_2_1_one_parser_for_every_caller() {
        let read = |values: &[&[u8]]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
            }
            authorization(&h).map(|p| format!("{p:?}")).map_err(|e| e.to_string())
        };
        assert_eq!(read(&[]), Ok("Absent".into()));
        assert_eq!(read(&[b"Basic dXNlcjpwYXNz"]), Ok("OtherScheme".into()));
        assert_eq!(read(&[b"bEaReR abc"]), Ok("Token(\"abc\")".into()), "RFC 7235 §2.1: the scheme is case-insensitive");
        assert_eq!(read(&[b"Bearer   abc"]), Ok("Token(\"abc\")".into()), "RFC 6750 §2.1: 1*SP");
        assert_eq!(read(&[b"Bearer a-._~+/b=="]), Ok("Token(\"a-._~+/b==\")".into()), "the whole b64token charset");
        for bad in [&b"Bearer a\tb"[..], b"Bearer a\t", b"Bearer a b", b"Bearer a;b", b"Bearer =a", b"Bearer", b"Bearer "] {
            assert!(read(&[bad]).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(read(&[b"Bearer a", b"Bearer b"]).is_err(), "one Authorization header only");
    }

    /// RFC 6750 §2.3: the URI query parameter is refused, even alongside a valid header.
    #[test]
    fn rfc6750_2_3_query_parameter_refused() {
        assert!(matches!(check(&[], "/notes?access_token=abc"), Err(GuardError::InvalidRequest(_))));
        assert!(matches!(check(&[b"Bearer abc"], "/notes?x=1&access_token=abc"), Err(GuardError::InvalidRequest(_))));
        assert_eq!(check(&[b"Bearer abc"], "/notes?not_access_token=1").unwrap(), "abc");
    }
}

/// Property-based tests of RFC 6750 §2.1 / §2.3 on arbitrary headers and URIs.
#[cfg(test)]
mod proptests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    /// RFC 6750 §2.1 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
    const B64TOKEN: &str = "[A-Za-z0-9._~+/-]{1,300}={0,2}";

    fn headers(values: &[Vec<u8>]) -> Option<HeaderMap> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).ok()?);
        }
        Some(h)
    }

    proptest! {
        /// RFC 6750 §2.1: any Authorization values and any query never panic; what is accepted
        /// is one b64token, at most MAX_TOKEN_LEN long, taken from the end of the one header.
        #[test]
        fn rfc6750_2_1_arbitrary_request_never_panics(
            values in proptest::collection::vec(prop_oneof![any::<Vec<u8>>(), "(?i:bearer)? {0,3}[ -~]{0,60}".prop_map(String::into_bytes)], 0..3),
            query in "([a-z_]{0,14}(=[ -~]{0,10})?&?){0,3}",
        ) {
            let Some(h) = headers(&values) else { return Ok(()) };
            let Ok(uri) = format!("/notes?{query}").parse::<Uri>() else { return Ok(()) };
            if let Ok(t) = extract(&h, &uri) {
                prop_assert_eq!(values.len(), 1);
                prop_assert!(is_b64token(t) && t.len() <= MAX_TOKEN_LEN);
                prop_assert!(values[0].ends_with(t.as_bytes()));
            }
        }

        /// RFC 6750 §2.1 with RFC 7235 §2.1: `Bearer` in any case, one or more spaces, then any
        /// b64token: the token is read back exactly.
        #[test]
        fn rfc6750_2_1_b64token_round_trips(token in B64TOKEN, scheme in "(?i:bearer)", spaces in " {1,3}") {
            let h = headers(&[format!("{scheme}{spaces}{token}").into_bytes()]).unwrap();
            prop_assert_eq!(extract(&h, &"/notes".parse().unwrap()).unwrap(), token.as_str());
        }

        /// RFC 6750 §2.1: one character outside b64token inside the credentials is
        /// invalid_request, never a token.
        #[test]
        fn rfc6750_2_1_non_b64token_is_refused(token in "[A-Za-z0-9._~+/-]{1,60}", bad in "[ -~]".prop_filter("not b64token", |c| !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/= ".contains(&b))), at in any::<prop::sample::Index>()) {
            let mut t = token;
            t.insert_str(at.index(t.len() + 1), &bad);
            let h = headers(&[format!("Bearer {t}").into_bytes()]).unwrap();
            prop_assert!(matches!(extract(&h, &"/notes".parse().unwrap()), Err(GuardError::InvalidRequest(_))));
        }

        /// RFC 6750 §2.3 (with RFC 9700 §4.3.2): an `access_token` query parameter anywhere in the
        /// query is refused, with or without a header.
        #[test]
        fn rfc6750_2_3_query_token_is_refused(before in "([a-z]{1,6}=[a-z0-9]{0,6}&){0,3}", after in "(&[a-z]{1,6}=[a-z0-9]{0,6}){0,3}", token in "[A-Za-z0-9._-]{0,40}", with_header in any::<bool>()) {
            let values = if with_header { vec![b"Bearer abc".to_vec()] } else { vec![] };
            let uri: Uri = format!("/notes?{before}access_token={token}{after}").parse().unwrap();
            prop_assert!(matches!(extract(&headers(&values).unwrap(), &uri), Err(GuardError::InvalidRequest(_))));
        }
    }
}
