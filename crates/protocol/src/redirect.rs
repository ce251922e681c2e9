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

/// Property-based tests of redirect URI registration (RFC 6749 §3.1.2), exact matching
/// (RFC 9700 §4.1.3) and response parameters (RFC 6749 §4.1.2) on arbitrary input.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// Redirect URIs as clients register them: https on a DNS name, http on loopback, or a
    /// reverse-domain private-use scheme; with or without a port, path and query.
    /// `http://127.0.0.1:8000/cb` → `http://127.0.0.1/cb` (an oracle for the port exception).
    fn without_loopback_port(u: &str) -> Option<String> {
        for h in ["http://127.0.0.1", "http://[::1]"] {
            if let Some(rest) = u.strip_prefix(h) {
                let rest = match rest.strip_prefix(':') {
                    Some(p) => &p[p.find(['/', '?']).unwrap_or(p.len())..],
                    None => rest,
                };
                return Some(format!("{h}{rest}"));
            }
        }
        None
    }

    fn registered_uri() -> impl Strategy<Value = String> {
        let path = "(/[a-zA-Z0-9._~-]{1,8}){0,4}";
        let query = "(\\?[a-z]{1,5}=[a-zA-Z0-9]{0,6}(&[a-z]{1,5}=[a-z0-9]{0,4}){0,2})?";
        prop_oneof![
            proptest::string::string_regex(&format!("https://[a-z][a-z0-9]{{0,10}}(\\.[a-z][a-z0-9]{{0,7}}){{1,2}}(:[1-9][0-9]{{1,4}})?{path}{query}"))
                .unwrap(),
            proptest::string::string_regex(&format!("http://(127\\.0\\.0\\.1|\\[::1\\]|localhost)(:[1-9][0-9]{{1,4}})?{path}{query}")).unwrap(),
            proptest::string::string_regex(&format!("(com|org)\\.[a-z]{{1,8}}\\.[a-z]{{1,8}}:{path}")).unwrap(),
        ]
        .prop_filter("a valid registration", |u| validate_registration(u).is_ok())
    }

    proptest! {
        /// RFC 6749 §3.1.2: any string is judged without a panic; what is accepted is absolute,
        /// has no fragment and no userinfo, and is https, loopback http or a private-use scheme
        /// with a period (RFC 8252 §7.1, §7.3).
        #[test]
        fn rfc6749_3_1_2_arbitrary_registration_is_judged_safely(uri in prop_oneof![
            any::<String>(),
            proptest::string::string_regex("(https?|javascript|data|file|[a-z.]{1,8}):(//)?([a-z0-9@:.\\[\\]]{0,20})(/[a-z%#?=&.]{0,10}){0,3}(#[a-z]{0,3})?").unwrap(),
        ]) {
            if let Ok(url) = validate_registration(&uri) {
                prop_assert!(url.fragment().is_none());
                prop_assert!(url.username().is_empty() && url.password().is_none());
                let scheme = url.scheme();
                let loopback = matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"));
                prop_assert!(scheme == "https" || (scheme == "http" && loopback) || scheme.contains('.'), "{}", uri);
            }
        }

        /// RFC 9700 §2.6: "authorization servers MUST NOT allow redirect URIs that use the
        /// http scheme except for native clients that use Loopback Interface Redirection".
        #[test]
        fn rfc9700_2_6_http_off_loopback_is_refused(uri in "http://[a-z][a-z0-9-]{0,12}(\\.[a-z]{1,6}){1,2}(:[0-9]{2,5})?(/[a-z]{0,6}){0,3}") {
            prop_assume!(!uri.starts_with("http://localhost"));
            prop_assert!(validate_registration(&uri).is_err(), "{}", uri);
        }

        /// RFC 9700 §4.1.3: a registered URI matches itself exactly, among others.
        #[test]
        fn rfc9700_4_1_3_registered_uri_matches_itself(registered in proptest::collection::vec(registered_uri(), 1..5), pick in any::<prop::sample::Index>()) {
            let uri = &registered[pick.index(registered.len())];
            prop_assert_eq!(match_registered(uri, &registered), Some(uri.clone()));
        }

        /// RFC 9700 §4.1.3: any single-character change of a registered URI (replaced, inserted
        /// or removed character, anywhere: scheme, host, port, path or query) does not match —
        /// except a change of the port of a loopback IP URI (RFC 8252 §7.3), which matches only
        /// when the two are equal without their ports and the new port is a valid one.
        #[test]
        fn rfc9700_4_1_3_one_character_changed_does_not_match(uri in registered_uri(), at in any::<prop::sample::Index>(), c in prop_oneof![any::<char>(), proptest::char::range('!', '~')], how in 0..3u8) {
            let chars: Vec<char> = uri.chars().collect();
            let i = at.index(chars.len());
            let mut changed = chars.clone();
            match how {
                0 => changed[i] = c,
                1 => changed.insert(i, c),
                _ => { changed.remove(i); }
            }
            let changed: String = changed.into_iter().collect();
            prop_assume!(changed != uri);
            if match_registered(&changed, std::slice::from_ref(&uri)).is_some() {
                let (a, b) = (without_loopback_port(&changed), without_loopback_port(&uri));
                prop_assert!(a.is_some() && a == b, "{} matched {}", changed, uri);
                // The new port is a valid one (1–65535).
                prop_assert!(Url::parse(&changed).is_ok_and(|u| u.port() != Some(0)), "{}", changed);
            }
        }

        /// RFC 6749 §4.1.2: response parameters (any text) are added to the query of the
        /// registered URI, which keeps its own query, scheme, host and path.
        #[test]
        fn rfc6749_4_1_2_response_parameters_round_trip(uri in registered_uri(), params in proptest::collection::vec(("[a-z_]{1,10}", any::<String>()), 1..4)) {
            let list: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let out = with_query(&uri, &list).unwrap();
            let (base, out) = (Url::parse(&uri).unwrap(), Url::parse(&out).unwrap());
            prop_assert_eq!((base.scheme(), base.host_str(), base.port(), base.path()), (out.scheme(), out.host_str(), out.port(), out.path()));
            let mut want: Vec<(String, String)> = base.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            want.extend(params.iter().cloned());
            let got: Vec<(String, String)> = out.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            prop_assert_eq!(got, want);
            prop_assert!(out.fragment().is_none());
        }
    }
}
