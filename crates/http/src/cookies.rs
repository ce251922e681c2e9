//! The browser session cookie: HttpOnly, SameSite=Lax, and Secure with the `__Host-` prefix
//! when the issuer is https.

use axum::http::{HeaderMap, HeaderValue, header};

pub fn name(secure: bool) -> &'static str {
    if secure { "__Host-tessera_session" } else { "tessera_session" }
}

/// The session cookie's value, if the request has exactly one.
pub fn read(headers: &HeaderMap, secure: bool) -> Option<String> {
    let want = name(secure);
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k == want {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(val.to_string());
                }
            }
        }
    }
    found
}

pub fn set(value: &str, secure: bool, max_age: i64) -> Option<HeaderValue> {
    let mut c = format!("{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}", name(secure));
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes() {
        let c = set("abc", true, 60).unwrap();
        assert_eq!(c.to_str().unwrap(), "__Host-tessera_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure");
        let c = set("abc", false, 60).unwrap();
        assert!(!c.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn read_single_cookie_only() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; tessera_session=xyz"));
        assert_eq!(read(&h, false).as_deref(), Some("xyz"));
        h.insert(header::COOKIE, HeaderValue::from_static("tessera_session=x; tessera_session=y"));
        assert_eq!(read(&h, false), None, "ambiguous cookies are ignored");
    }
}

/// Property-based tests of the Cookie header parser (RFC 6265 §5.4) on arbitrary headers.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// RFC 6265 §5.4: any Cookie headers are read without a panic; a session cookie set by
        /// [`set`] is read back among any other cookies, and a second one makes it ambiguous.
        #[test]
        fn rfc6265_5_4_session_cookie_round_trips(value in "[A-Za-z0-9_-]{1,64}", secure in any::<bool>(), others in proptest::collection::vec("[a-z]{1,8}=[A-Za-z0-9]{0,8}", 0..4), junk in any::<Vec<u8>>(), twice in any::<bool>()) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&junk) {
                h.append(header::COOKIE, v);
                let _ = read(&h, secure);
                h.clear();
            }
            let set_cookie = set(&value, secure, 60).unwrap();
            let pair = set_cookie.to_str().unwrap().split(';').next().unwrap().to_string();
            let mut all = others.clone();
            all.push(pair.clone());
            if twice {
                all.insert(0, pair);
            }
            h.append(header::COOKIE, HeaderValue::from_str(&all.join("; ")).unwrap());
            prop_assert_eq!(read(&h, secure), (!twice).then_some(value));
        }
    }
}
