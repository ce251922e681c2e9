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

/// RFC 9700 §4.1.3: the requested URI must equal one registered URI, character for character.
pub fn match_registered<'a>(requested: &str, registered: &'a [String]) -> Option<&'a str> {
    registered.iter().find(|r| r.as_str() == requested).map(String::as_str)
}

/// Append response parameters to the query of a redirect URI (RFC 6749 §4.1.2), keeping any
/// query component the registered URI already has. With no parameters the URI is returned
/// exactly as registered (RP-Initiated Logout 1.0 §3: the post-logout redirect is a registered
/// URI; no empty query `?` is added and nothing is normalized).
pub fn with_query(base: &str, params: &[(&str, &str)]) -> Result<String, OAuthError> {
    let mut url = Url::parse(base).map_err(|_| OAuthError::server_error("registered redirect URI is invalid"))?;
    if params.is_empty() {
        return Ok(base.to_string());
    }
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

    /// RFC 6749 §4.1.2: response parameters are added to the query, keeping the existing query.
    #[test]
    fn rfc6749_4_1_2_response_in_query() {
        let u = with_query("https://app.example/cb?x=1", &[("code", "a b"), ("state", "s&t")]).unwrap();
        assert_eq!(u, "https://app.example/cb?x=1&code=a+b&state=s%26t");
    }

    /// No parameters (a post-logout redirect without `state`): the registered URI, exactly.
    #[test]
    fn no_parameters_leave_the_uri_as_registered() {
        for uri in ["https://app.example/loggedout.html", "https://app.example/bye?x=1", "https://APP.example", "com.example.app:/bye"] {
            assert_eq!(with_query(uri, &[]).unwrap(), uri);
        }
        assert!(with_query("not a uri", &[]).is_err());
        assert_eq!(with_query("https://app.example/bye", &[("state", "s")]).unwrap(), "https://app.example/bye?state=s");
    }
}
