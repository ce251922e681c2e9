//! Redirection URIs: registration rules (RFC 6749 §3.1.2, RFC 8252 §7) and exact matching at
//! the authorization endpoint (RFC 9700 §4.1.3: "exact string matching"; OAuth 2.1 §2.3.1).

use crate::error::OAuthError;
use url::Url;

/// RFC 6749 §3.1.2: "The redirection endpoint URI MUST be an absolute URI ... MUST NOT include a
/// fragment component." Tessera also refuses plain `http` except for loopback hosts
/// (RFC 8252 §7.3) and `localhost` (common in development), and refuses userinfo.
pub fn validate_registration(uri: &str) -> Result<Url, String> {
    let url = Url::parse(uri).map_err(|e| format!("redirect URI {uri:?} is not an absolute URI: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not contain a fragment (RFC 6749 section 3.1.2)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("redirect URI {uri:?} must not contain user information"));
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"));
            if !loopback {
                return Err(format!("redirect URI {uri:?} uses http on a non-loopback host; use https"));
            }
        }
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => {
            return Err(format!("redirect URI {uri:?} uses a forbidden scheme"));
        }
        // Private-use schemes for native apps (RFC 8252 §7.1) must contain a period.
        s if s.contains('.') => {}
        _ => return Err(format!("redirect URI {uri:?}: custom schemes must be reverse domain names (RFC 8252 section 7.1)")),
    }
    Ok(url)
}

/// RFC 9700 §4.1.3: the requested URI must equal one registered URI, character for character,
/// with one exception, RFC 8252 §7.3: "The authorization server MUST allow any port to be
/// specified at the time of the request for loopback IP redirect URIs, to accommodate clients
/// that obtain an available ephemeral port from the operating system at the time of the
/// request." (RFC 9700 §2.1 keeps the same exception.) Only `http` URIs on the loopback IP
/// literals `127.0.0.1` and `[::1]` get it, and only the port may differ: scheme, host, path and
/// query still match exactly. Returns the URI to redirect to (the requested one).
pub fn match_registered(requested: &str, registered: &[String]) -> Option<String> {
    registered.iter().find(|r| r.as_str() == requested || loopback_port_match(requested, r)).map(|_| requested.to_string())
}

/// `requested` equals `registered` but for the port, and both are loopback IP `http` URIs.
fn loopback_port_match(requested: &str, registered: &str) -> bool {
    match (split_loopback(requested), split_loopback(registered)) {
        (Some((host_a, _, rest_a)), Some((host_b, _, rest_b))) => host_a == host_b && rest_a == rest_b,
        _ => false,
    }
}

/// `http://127.0.0.1:8000/cb` → (`http://127.0.0.1`, `8000`, `/cb`); `None` unless the URI is
/// `http` on a loopback IP literal with an empty or valid decimal port.
fn split_loopback(uri: &str) -> Option<(&str, &str, &str)> {
    let host_end = ["http://127.0.0.1", "http://[::1]"].iter().find(|h| uri.starts_with(**h))?.len();
    let (host, after) = uri.split_at(host_end);
    let (port, rest) = match after.strip_prefix(':') {
        Some(p) => {
            let end = p.find(['/', '?']).unwrap_or(p.len());
            let (port, rest) = p.split_at(end);
            if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u32>().ok().is_none_or(|n| n == 0 || n > 65535) {
                return None;
            }
            (port, rest)
        }
        None => ("", after),
    };
    // The host must end here: `http://127.0.0.1.evil.example/` is not loopback.
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    Some((host, port, rest))
}

/// Append response parameters to the query of a redirect URI (RFC 6749 §4.1.2), keeping any
/// query component the registered URI already has.
pub fn with_query(base: &str, params: &[(&str, &str)]) -> Result<String, OAuthError> {
    let mut url = Url::parse(base).map_err(|_| OAuthError::server_error("registered redirect URI is invalid"))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// RFC 6749 §3.1.2: absolute, no fragment.
    #[test]
    fn rfc6749_3_1_2_registration_rules() {
        assert!(validate_registration("https://app.example/cb").is_ok());
        assert!(validate_registration("http://127.0.0.1:9000/cb").is_ok());
        assert!(validate_registration("http://localhost/cb").is_ok());
        assert!(validate_registration("com.example.app:/cb").is_ok());
        assert!(validate_registration("/relative").is_err());
        assert!(validate_registration("https://app.example/cb#frag").is_err());
        assert!(validate_registration("http://app.example/cb").is_err());
        assert!(validate_registration("javascript:alert(1)").is_err());
        assert!(validate_registration("https://user:pw@app.example/cb").is_err());
        assert!(validate_registration("myapp:/cb").is_err());
    }

    /// RFC 9700 §4.1.3: exact string matching; no prefix, case, port or trailing-slash leniency.
    #[test]
    fn rfc9700_4_1_3_exact_match() {
        let reg = vec!["https://app.example/cb".to_string(), "http://127.0.0.1:9000/cb?x=1".to_string()];
        assert!(match_registered("https://app.example/cb", &reg).is_some());
        assert!(match_registered("http://127.0.0.1:9000/cb?x=1", &reg).is_some());
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "https://app.example/cb/../cb",
            "https://app.example/cbx",
            "https://app.example.evil/cb",
            "http://127.0.0.1:9000/cb",
        ] {
            assert!(match_registered(bad, &reg).is_none(), "{bad}");
        }
    }

    /// RFC 8252 §7.3 (and RFC 9700 §2.1): a loopback IP redirect URI matches with any port, and
    /// only the port may differ; `localhost` and other hosts keep exact matching.
    #[test]
    fn regression_loopback_redirect_port_may_vary_rfc8252_7_3() {
        let reg = vec!["http://127.0.0.1/cb".to_string(), "http://[::1]:8080/cb?x=1".to_string(), "http://localhost:3000/cb".to_string()];
        for ok in ["http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", "http://[::1]:8080/cb?x=1", "http://[::1]:1/cb?x=1", "http://[::1]/cb?x=1"] {
            assert_eq!(match_registered(ok, &reg).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:51234/cb/",
            "http://127.0.0.1:51234/cbx",
            "http://127.0.0.1:51234/cb?x=1",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:+80/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://127.0.0.1@evil.example/cb",
            "https://127.0.0.1:51234/cb",
            "http://[::1]:8080/cb",
            "http://127.0.0.1:8080/cb?x=1",
            "http://localhost:3001/cb",
        ] {
            assert!(match_registered(bad, &reg).is_none(), "{bad}");
        }
    }

    /// RFC 6749 §4.1.2: response parameters are added to the query, keeping the existing query.
    #[test]
    fn rfc6749_4_1_2_response_in_query() {
        let u = with_query("https://app.example/cb?x=1", &[("code", "a b"), ("state", "s&t")]).unwrap();
        assert_eq!(u, "https://app.example/cb?x=1&code=a+b&state=s%26t");
    }
}
