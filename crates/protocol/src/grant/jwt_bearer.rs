//! The JWT bearer grant, RFC 7523 §2.1: a client exchanges a JWT it signed (with a key it
//! registered) for an access token for a user who has already granted it access — a service
//! acting for a user without holding a refresh token, as Google's service accounts do.
//!
//! Tessera's trust model: the client is the assertion's issuer (`iss` is its `client_id`) and
//! authenticates at the token endpoint as usual (RFC 7523 §3.1 allows it); `sub` is the user's
//! identifier; the scopes are bounded by the consent that user gave the client (nothing is
//! released that the user never consented to); each assertion's `jti` is accepted once
//! (§3 item 7), until its `exp`. No refresh token is issued: the client signs a new assertion.

use crate::error::OAuthError;
use crate::params::Params;
use crate::scope::Scopes;
use serde_json::{Map, Value};

/// Longest an assertion may live (`exp` minus `iat`, or minus now): its `jti` is stored that
/// long. An hour, as Google allows.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// RFC 7523 §3 items 4 and 5: "some small leeway, usually no more than a few minutes, to
/// account for clock skew".
pub const CLOCK_SKEW_SECS: i64 = 60;
/// A `jti` or `sub` longer than this is refused.
pub const MAX_ID_LEN: usize = 256;

/// RFC 7523 §2.1 access token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtBearerRequest {
    /// "The value of the assertion parameter MUST contain a single JWT."
    pub assertion: String,
    pub scope: Option<Scopes>,
    /// RFC 8707 resource indicator.
    pub resource: Option<String>,
}

impl JwtBearerRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let scope = match params.get("scope") {
            Some(s) => Some(Scopes::parse(s)?),
            None => None,
        };
        Ok(Self { assertion: params.require("assertion")?.to_string(), scope, resource: params.get("resource").map(str::to_string) })
    }
}

/// What the assertion must be addressed to and by (RFC 7523 §3 items 1 and 3).
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The authenticated client: the assertion's `iss`.
    pub client_id: &'a str,
    /// The issuer identifier and the token endpoint URL: either is an acceptable `aud`.
    pub audiences: [&'a str; 2],
    pub now: i64,
}

/// An assertion whose claims passed every rule: whom it is for and what to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// The user the token is for (§3 item 2).
    pub subject: String,
    /// The one-time value (§3 item 7).
    pub jti: String,
    /// Until when the `jti` must be remembered.
    pub expires_at: i64,
}

/// RFC 7523 §3: the claims' rules, once the signature verified (item 9). Every failure is
/// `invalid_grant` (§3.1).
pub fn check_claims(claims: &Map<String, Value>, expect: &Expect<'_>) -> Result<Assertion, OAuthError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    let bad = |d: &str| Err(OAuthError::invalid_grant(d.to_string()));
    // Item 1: iss — here, the client itself.
    match text("iss") {
        Some(iss) if iss == expect.client_id => {}
        Some(_) => return bad("the assertion's iss is not the authenticated client"),
        None => return bad("the assertion lacks iss"),
    }
    // Item 2: sub.
    let Some(subject) = text("sub").filter(|s| s.len() <= MAX_ID_LEN) else { return bad("the assertion lacks sub") };
    // Item 3: aud identifies this authorization server, as a string or in an array.
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => expect.audiences.contains(&a.as_str()),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|a| expect.audiences.contains(&a)),
        _ => false,
    };
    if !aud_ok {
        return bad("the assertion's aud does not name this authorization server");
    }
    // Item 4: exp, not passed (with leeway).
    let Some(exp) = time("exp") else { return bad("the assertion lacks exp") };
    if exp + CLOCK_SKEW_SECS <= expect.now {
        return bad("the assertion has expired");
    }
    // Item 5: nbf.
    if time("nbf").is_some_and(|nbf| nbf > expect.now + CLOCK_SKEW_SECS) {
        return bad("the assertion is not valid yet (nbf)");
    }
    // Item 6: iat — not in the future, and a bounded lifetime (the jti is stored that long).
    let iat = time("iat");
    if iat.is_some_and(|iat| iat > expect.now + CLOCK_SKEW_SECS) {
        return bad("the assertion's iat is in the future");
    }
    if exp - iat.unwrap_or(expect.now).min(expect.now) > MAX_ASSERTION_LIFETIME_SECS {
        return bad("the assertion lives longer than an hour");
    }
    // Item 7: jti — required here, for single use.
    let Some(jti) = text("jti") else { return bad("the assertion lacks jti (each assertion is single use)") };
    if jti.len() > MAX_ID_LEN {
        return bad("the assertion's jti is too long");
    }
    Ok(Assertion { subject: subject.to_string(), jti: jti.to_string(), expires_at: exp + CLOCK_SKEW_SECS })
}

/// The scopes to grant: those requested, within what the client may request (RFC 6749 §3.3)
/// and what the user consented to; when none are requested, everything the user consented to
/// that the client may still request. A user who never consented is `invalid_grant`.
pub fn granted_scope(requested: Option<&Scopes>, consented: &Scopes, registered: &Scopes) -> Result<Scopes, OAuthError> {
    let allowed = Scopes::from_iter(consented.iter().filter(|s| registered.contains(s)));
    if allowed.is_empty() {
        return Err(OAuthError::invalid_grant("the user has not granted this client access"));
    }
    match requested {
        Some(s) if !s.is_empty() => {
            if !s.is_subset(registered) {
                Err(OAuthError::invalid_scope(format!("this client may not request: {}", s.difference(registered))))
            } else if !s.is_subset(&allowed) {
                Err(OAuthError::invalid_scope(format!("the user has not granted: {}", s.difference(&allowed))))
            } else {
                Ok(s.clone())
            }
        }
        _ => Ok(allowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const EXPECT: Expect<'static> = Expect { client_id: "svc", audiences: ["https://as.example", "https://as.example/token"], now: NOW };

    fn claims() -> Value {
        json!({"iss": "svc", "sub": "user-1", "aud": "https://as.example/token", "exp": NOW + 300, "iat": NOW, "jti": "a-1"})
    }

    /// One row per rule: the claims changed, and the error description expected (or the
    /// assertion).
    fn check(change: impl FnOnce(&mut Map<String, Value>), expected: Result<(&str, &str), &str>) {
        let mut c = claims().as_object().unwrap().clone();
        change(&mut c);
        let got = check_claims(&c, &EXPECT).map(|a| (a.subject, a.jti)).map_err(|e| {
            assert_eq!(e.code, ErrorCode::InvalidGrant, "RFC 7523 §3.1: invalid_grant");
            e.description
        });
        match expected {
            Ok((sub, jti)) => assert_eq!(got, Ok((sub.to_string(), jti.to_string()))),
            Err(part) => assert!(got.as_ref().is_err_and(|d| d.contains(part)), "expected an error with {part:?}, got {got:?}"),
        }
    }

    #[test]
    fn rfc7523_3_a_valid_assertion() {
        check(|_| {}, Ok(("user-1", "a-1")));
        check(|c| drop(c.insert("aud".into(), json!(["https://other.example", "https://as.example"]))), Ok(("user-1", "a-1")));
        check(|c| drop(c.remove("iat")), Ok(("user-1", "a-1")));
        let a = check_claims(claims().as_object().unwrap(), &EXPECT).unwrap();
        assert_eq!(a.expires_at, NOW + 300 + CLOCK_SKEW_SECS, "the jti is remembered past exp's leeway");
    }

    #[test]
    fn rfc7523_3_1_iss_is_the_authenticated_client() {
        check(|c| drop(c.remove("iss")), Err("lacks iss"));
        check(|c| drop(c.insert("iss".into(), json!("other-client"))), Err("not the authenticated client"));
        check(|c| drop(c.insert("iss".into(), json!(7))), Err("lacks iss"));
    }

    #[test]
    fn rfc7523_3_2_sub_is_required() {
        check(|c| drop(c.remove("sub")), Err("lacks sub"));
        check(|c| drop(c.insert("sub".into(), json!(""))), Err("lacks sub"));
        check(|c| drop(c.insert("sub".into(), json!("x".repeat(300)))), Err("lacks sub"));
    }

    #[test]
    fn rfc7523_3_3_aud_names_this_server() {
        check(|c| drop(c.remove("aud")), Err("aud"));
        check(|c| drop(c.insert("aud".into(), json!("https://as.example/other"))), Err("aud"));
        check(|c| drop(c.insert("aud".into(), json!(["https://evil.example"]))), Err("aud"));
        check(|c| drop(c.insert("aud".into(), json!({"x": "https://as.example"}))), Err("aud"));
        check(|c| drop(c.insert("aud".into(), json!("https://as.example"))), Ok(("user-1", "a-1")));
    }

    #[test]
    fn rfc7523_3_4_exp_is_required_and_not_passed() {
        check(|c| drop(c.remove("exp")), Err("lacks exp"));
        check(|c| drop(c.insert("exp".into(), json!("soon"))), Err("lacks exp"));
        check(|c| drop(c.insert("exp".into(), json!(NOW - CLOCK_SKEW_SECS))), Err("expired"));
        check(|c| drop(c.insert("exp".into(), json!(NOW - CLOCK_SKEW_SECS + 1))), Ok(("user-1", "a-1")));
    }

    #[test]
    fn rfc7523_3_5_nbf_and_6_iat() {
        check(|c| drop(c.insert("nbf".into(), json!(NOW + CLOCK_SKEW_SECS + 1))), Err("nbf"));
        check(|c| drop(c.insert("nbf".into(), json!(NOW + CLOCK_SKEW_SECS))), Ok(("user-1", "a-1")));
        check(|c| drop(c.insert("iat".into(), json!(NOW + CLOCK_SKEW_SECS + 1))), Err("iat is in the future"));
        // A lifetime over an hour would keep its jti too long.
        check(|c| drop(c.insert("exp".into(), json!(NOW + MAX_ASSERTION_LIFETIME_SECS + 1))), Err("longer than an hour"));
        check(
            |c| {
                c.insert("iat".into(), json!(NOW - 3000));
                c.insert("exp".into(), json!(NOW + 700));
            },
            Err("longer than an hour"),
        );
        check(|c| drop(c.insert("exp".into(), json!(NOW + MAX_ASSERTION_LIFETIME_SECS))), Ok(("user-1", "a-1")));
    }

    #[test]
    fn rfc7523_3_7_jti_is_required_here() {
        check(|c| drop(c.remove("jti")), Err("lacks jti"));
        check(|c| drop(c.insert("jti".into(), json!("j".repeat(257)))), Err("too long"));
    }

    /// RFC 6749 §3.3 and the consent: nothing beyond what the user granted this client.
    #[test]
    fn scopes_are_bounded_by_the_users_consent() {
        let s = |v: &str| Scopes::parse(v).unwrap();
        let (consented, registered) = (s("notes.read notes.write"), s("notes.read notes.write notes.admin"));
        assert_eq!(granted_scope(None, &consented, &registered).unwrap(), consented);
        assert_eq!(granted_scope(Some(&s("notes.read")), &consented, &registered).unwrap(), s("notes.read"));
        assert_eq!(granted_scope(Some(&s("notes.admin")), &consented, &registered).unwrap_err().code, ErrorCode::InvalidScope);
        assert_eq!(granted_scope(Some(&s("mail.read")), &consented, &registered).unwrap_err().code, ErrorCode::InvalidScope);
        assert_eq!(granted_scope(None, &s(""), &registered).unwrap_err().code, ErrorCode::InvalidGrant);
        // A scope the client may no longer request is not granted, even if once consented.
        assert_eq!(granted_scope(None, &consented, &s("notes.read")).unwrap(), s("notes.read"));
        assert_eq!(granted_scope(None, &s("notes.admin"), &s("notes.read")).unwrap_err().code, ErrorCode::InvalidGrant);
    }
}
