//! CORS (the Fetch standard's CORS protocol, <https://fetch.spec.whatwg.org/#http-cors-protocol>)
//! for browser apps: what an origin is, which origins a client may register, the origins a
//! client is allowed from, and the one decision an endpoint takes on a request's `Origin`.
//!
//! Pure: the caller says whether an origin is allowed (for the client concerned, or for any
//! registered client at a preflight, which carries no client credentials).

use url::Url;

/// An origin as the Fetch standard serialises it (`scheme://host[:port]`, lowercase scheme and
/// host, the scheme's default port omitted), or `None` when `value` is not exactly that
/// serialisation: a path, query, fragment, userinfo, trailing slash, `null` or an opaque origin
/// are not origins a client can register or present.
pub fn parse_origin(value: &str) -> Option<String> {
    if value == "null" || value.is_empty() {
        return None;
    }
    let url = Url::parse(value).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let serialised = url.origin().ascii_serialization();
    (serialised == value).then_some(serialised)
}

/// Validate an `--allowed-origin` value at registration: an exact origin serialisation, `https`,
/// or `http` only on a loopback host or `localhost` (the redirect-URI rule, RFC 8252 §7.3).
pub fn validate_origin(value: &str) -> Result<String, String> {
    let origin = parse_origin(value).ok_or_else(|| {
        format!("allowed origin {value:?} is not an origin: write scheme://host[:port] in lowercase, without path, query, fragment or user information, the default port omitted (e.g. https://app.example)")
    })?;
    let loopback = Url::parse(&origin).is_ok_and(|u| matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")));
    if origin.starts_with("http://") && !loopback {
        return Err(format!("allowed origin {value:?} uses http on a non-loopback host; use https"));
    }
    Ok(origin)
}

/// The origin of an absolute `http`/`https` URI (a redirect URI), serialised; `None` for other
/// schemes (a native app's private-use scheme has no web origin).
pub fn origin_of_uri(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

/// A client's effective allowed origins: the origins of its redirect URIs ∪ the extra origins
/// registered, sorted and without repeats.
pub fn effective_origins(redirect_uris: &[String], allowed_origins: &[String]) -> Vec<String> {
    let mut all: Vec<String> = redirect_uris.iter().filter_map(|u| origin_of_uri(u)).chain(allowed_origins.iter().cloned()).collect();
    all.sort();
    all.dedup();
    all
}

/// Which CORS behaviour an endpoint has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorsEndpoint {
    /// The token endpoint (RFC 6749 §3.2): per-client CORS.
    Token,
    /// The revocation endpoint (RFC 7009): per-client CORS.
    Revocation,
    /// UserInfo (OpenID Connect Core §5.3): per-client CORS (the access token's client).
    Userinfo,
    /// Discovery and the JWKS: public documents, readable from any origin.
    Public,
    /// Introspection (a resource server's back channel) and the HTML pages: never CORS.
    None,
}

/// What an endpoint answers to a request's `Origin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsDecision {
    /// No CORS headers, and the request goes on (no `Origin`, or an endpoint without CORS).
    NoCors,
    /// `Access-Control-Allow-Origin: <origin>` (never `*` for a client's endpoint).
    Allow(String),
    /// `Access-Control-Allow-Origin: *` (no credentials).
    Public,
    /// An origin the client did not register: no CORS headers, and the request is refused.
    Refuse,
}

/// The one CORS decision: `origin` is the request's `Origin` header, if any; `allowed` says
/// whether an origin is allowed (for the client concerned, or any client at a preflight).
/// An `Origin` that is not a valid origin serialisation (including `null`) is never allowed.
pub fn decide(endpoint: CorsEndpoint, origin: Option<&str>, allowed: impl Fn(&str) -> bool) -> CorsDecision {
    match (endpoint, origin) {
        (CorsEndpoint::None, _) | (_, None) => CorsDecision::NoCors,
        (CorsEndpoint::Public, Some(_)) => CorsDecision::Public,
        (CorsEndpoint::Token | CorsEndpoint::Revocation | CorsEndpoint::Userinfo, Some(o)) => match parse_origin(o) {
            Some(o) if allowed(&o) => CorsDecision::Allow(o),
            _ => CorsDecision::Refuse,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "https://app.example";

    fn check(endpoint: CorsEndpoint, origin: Option<&str>, expected: CorsDecision) {
        let allowed = |o: &str| o == APP || o == "http://localhost:3000";
        assert_eq!(decide(endpoint, origin, allowed), expected, "{endpoint:?} {origin:?}");
    }

    #[test]
    fn decisions() {
        use CorsDecision as D;
        use CorsEndpoint as E;
        for e in [E::Token, E::Revocation, E::Userinfo] {
            check(e, Some(APP), D::Allow(APP.into()));
            check(e, Some("http://localhost:3000"), D::Allow("http://localhost:3000".into()));
            check(e, Some("https://evil.example"), D::Refuse);
            check(e, Some("https://app.example.evil.example"), D::Refuse);
            check(e, Some("null"), D::Refuse);
            check(e, Some("https://app.example/"), D::Refuse);
            check(e, Some("HTTPS://APP.EXAMPLE"), D::Refuse);
            check(e, None, D::NoCors);
        }
        check(E::Public, Some("https://evil.example"), D::Public);
        check(E::Public, None, D::NoCors);
        check(E::None, Some(APP), D::NoCors);
        check(E::None, Some("https://evil.example"), D::NoCors);
    }

    fn check_origin(value: &str, expected: Result<&str, &str>) {
        let got = validate_origin(value);
        match expected {
            Ok(o) => assert_eq!(got.as_deref(), Ok(o), "{value}"),
            Err(fragment) => assert!(got.as_ref().is_err_and(|e| e.contains(fragment)), "{value}: {got:?}"),
        }
    }

    #[test]
    fn registration() {
        check_origin("https://app.example", Ok("https://app.example"));
        check_origin("https://app.example:8443", Ok("https://app.example:8443"));
        check_origin("http://localhost:3000", Ok("http://localhost:3000"));
        check_origin("http://127.0.0.1:8080", Ok("http://127.0.0.1:8080"));
        check_origin("http://[::1]:8080", Ok("http://[::1]:8080"));
        check_origin("http://app.example", Err("non-loopback"));
        check_origin("https://app.example:443", Err("not an origin"));
        check_origin("https://app.example/", Err("not an origin"));
        check_origin("https://app.example/path", Err("not an origin"));
        check_origin("https://app.example?q", Err("not an origin"));
        check_origin("https://app.example#f", Err("not an origin"));
        check_origin("https://u:p@app.example", Err("not an origin"));
        check_origin("https://App.Example", Err("not an origin"));
        check_origin("null", Err("not an origin"));
        check_origin("*", Err("not an origin"));
        check_origin("com.example.app://cb", Err("not an origin"));
    }

    #[test]
    fn effective_set() {
        let redirects =
            vec!["https://app.example/cb".to_string(), "https://app.example/other".into(), "com.example.app:/cb".into(), "http://127.0.0.1:9000/cb".into()];
        let extra = vec!["https://admin.example".to_string()];
        assert_eq!(effective_origins(&redirects, &extra), vec!["http://127.0.0.1:9000", "https://admin.example", "https://app.example"]);
        assert!(effective_origins(&[], &[]).is_empty());
    }
}
