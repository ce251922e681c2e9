//! Registered clients as the rules see them, and client authentication at the token endpoint
//! (RFC 6749 §2.3.1; OAuth 2.0 Dynamic Client Registration, RFC 7591 §2, for the method names).

use crate::error::OAuthError;
use crate::params::Params;
use crate::scope::Scopes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;
use std::str::FromStr;

/// Grant types by their registered names (RFC 7591 §2): generated from the one list of grants
/// in [`crate::grant`].
pub use crate::grant::GrantType;

/// Token endpoint authentication methods (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

impl FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "client_secret_basic" => Self::ClientSecretBasic,
            "client_secret_post" => Self::ClientSecretPost,
            "none" => Self::None,
            other => return Err(format!("unknown token endpoint auth method {other:?}")),
        })
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the protocol rules need to know about a registered client.
#[derive(Debug, Clone)]
pub struct ClientPolicy {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Scopes,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    /// Every token request must carry a DPoP proof (RFC 9449): no bearer tokens for this client.
    pub require_dpop: bool,
    /// The browser origins this client may call the token, revocation and UserInfo endpoints
    /// from ([`crate::cors::effective_origins`]).
    pub origins: Vec<String>,
}

impl ClientPolicy {
    /// RFC 6749 §2.1: a public client cannot keep a secret.
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }
    pub fn may_use(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }
}

/// RFC 6749 §2.3.1: the client authentication a request presents (a token, introspection,
/// revocation or device authorization request), parsed at the HTTP boundary and checked by the
/// service. It borrows from the request: nothing is copied to read it.
///
/// A Basic header is split and its scheme checked here; its base64 payload is decoded by
/// [`BasicCredentials::decode`] when the service needs it (a header that authenticated before
/// is recognised by its text alone, without decoding or hashing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresentedCredentials<'a> {
    /// `client_secret_basic`: HTTP Basic (RFC 7617).
    Basic(BasicCredentials<'a>),
    /// `client_secret_post`: `client_id` and `client_secret` in the body (§2.3.1 "MAY").
    Post { client_id: &'a str, secret: &'a str },
    /// `none`: `client_id` alone, a public client (§3.2.1).
    None { client_id: &'a str },
}

/// An `Authorization: Basic` header as presented: its text (what a remembered header is found
/// by), its credentials (the token68 after the scheme), and what the body says beside it
/// (§2.3: "MUST NOT use more than one authentication method in each request").
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BasicCredentials<'a> {
    header: &'a str,
    token68: &'a str,
    body_client_id: Option<&'a str>,
    body_has_secret: bool,
}

impl fmt::Debug for BasicCredentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicCredentials(<redacted>)")
    }
}

/// Presented credentials decoded: who the client says it is, with which method and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCredentials {
    pub client_id: String,
    pub secret: Option<Secret>,
    pub method: AuthMethod,
}

/// A client secret as presented; its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<'a> PresentedCredentials<'a> {
    /// RFC 6749 §2.3: find out how the client authenticates. `authorization` is the
    /// `Authorization` header's text, if any.
    ///
    /// RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each
    /// request." (checked with the decoded Basic id: [`BasicCredentials::decode`]).
    pub fn parse(authorization: Option<&'a str>, params: &'a Params) -> Result<Self, OAuthError> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        if let Some(header) = authorization {
            let (scheme, rest) = header.trim().split_once(' ').ok_or_else(malformed_basic)?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client("unsupported authorization scheme; use Basic"));
            }
            return Ok(Self::Basic(BasicCredentials { header, token68: rest.trim(), body_client_id: body_id, body_has_secret: body_secret.is_some() }));
        }
        let Some(client_id) = body_id else {
            return Err(OAuthError::invalid_client("client authentication is required"));
        };
        match body_secret {
            Some(secret) => Ok(Self::Post { client_id, secret }),
            None => Ok(Self::None { client_id }),
        }
    }

    /// The id, method and secret presented (a Basic header decoded, §2.3.1).
    pub fn decode(&self) -> Result<DecodedCredentials, OAuthError> {
        match *self {
            Self::Basic(b) => b.decode(),
            Self::Post { client_id, secret } => {
                Ok(DecodedCredentials { client_id: client_id.to_string(), secret: Some(Secret(secret.to_string())), method: AuthMethod::ClientSecretPost })
            }
            Self::None { client_id } => Ok(DecodedCredentials { client_id: client_id.to_string(), secret: None, method: AuthMethod::None }),
        }
    }
}

impl<'a> BasicCredentials<'a> {
    /// The header's whole text, as it was presented.
    pub fn header(&self) -> &'a str {
        self.header
    }

    /// RFC 6749 §2.3.1: "the client identifier is encoded using the
    /// application/x-www-form-urlencoded encoding algorithm ... and the encoded value is used as
    /// the username; the client password is encoded using the same algorithm and used as the
    /// password." Then §2.3's body rules ([`BasicCredentials::check_body`]).
    pub fn decode(&self) -> Result<DecodedCredentials, OAuthError> {
        let (id, secret) = decode_basic(self.token68)?;
        self.check_body(&id)?;
        Ok(DecodedCredentials { client_id: id, secret: Some(Secret(secret)), method: AuthMethod::ClientSecretBasic })
    }

    /// RFC 6749 §2.3: with HTTP Basic, the body carries no second method (`client_secret`) and a
    /// body `client_id`, if any, names the same client.
    pub fn check_body(&self, basic_client_id: &str) -> Result<(), OAuthError> {
        if self.body_has_secret {
            return Err(OAuthError::invalid_request("use one client authentication method, not two"));
        }
        if self.body_client_id.is_some_and(|b| b != basic_client_id) {
            return Err(OAuthError::invalid_request("client_id in the body differs from the authenticated client"));
        }
        Ok(())
    }
}

fn malformed_basic() -> OAuthError {
    OAuthError::invalid_client("malformed Basic authorization header")
}

/// The id and secret of a Basic header's credentials (its token68).
fn decode_basic(token68: &str) -> Result<(String, String), OAuthError> {
    let bad = malformed_basic;
    let decoded = STANDARD.decode(token68).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let id = form_decode(id).ok_or_else(bad)?;
    let secret = form_decode(secret).ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok((id, secret))
}

/// Parse and decode at once (what the tests check).
#[cfg(test)]
fn presented_credentials(authorization: Option<&str>, params: &Params) -> Result<DecodedCredentials, OAuthError> {
    PresentedCredentials::parse(authorization, params)?.decode()
}

/// Decode one application/x-www-form-urlencoded component (`+` is a space, `%XX` a byte),
/// the whole of it: a raw `&` or `=` is part of the value, not a field separator, so that
/// `secret&anything` is not read as `secret`. None when the bytes are not UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let plus_as_space: Vec<u8> = s.bytes().map(|b| if b == b'+' { b' ' } else { b }).collect();
    percent_encoding::percent_decode(&plus_as_space).decode_utf8().ok().map(|v| v.into_owned()).filter(|v| !v.contains('\u{fffd}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Params {
        Params::parse(s.as_bytes()).unwrap()
    }
    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    /// RFC 6749 §2.3.1: Basic with form-urlencoded id and secret.
    #[test]
    fn rfc6749_2_3_1_basic_is_form_decoded() {
        let c = presented_credentials(Some(&basic("my%20client", "p%3Ass")), &params("grant_type=x")).unwrap();
        assert_eq!(c.client_id, "my client");
        assert_eq!(c.secret, Some(Secret("p:ss".into())));
        assert_eq!(c.method, AuthMethod::ClientSecretBasic);
    }

    /// RFC 6749 §2.3.1: client_secret_post in the body.
    #[test]
    fn rfc6749_2_3_1_post_credentials() {
        let c = presented_credentials(None, &params("client_id=a&client_secret=b")).unwrap();
        assert_eq!(c.method, AuthMethod::ClientSecretPost);
    }

    /// RFC 6749 §2.3: "MUST NOT use more than one authentication method".
    #[test]
    fn rfc6749_2_3_two_methods_refused() {
        let e = presented_credentials(Some(&basic("a", "b")), &params("client_secret=b")).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
        let e = presented_credentials(Some(&basic("a", "b")), &params("client_id=other")).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
    }

    /// RFC 6749 §3.2.1: a public client identifies itself with client_id alone.
    #[test]
    fn rfc6749_3_2_1_public_client_id_only() {
        let c = presented_credentials(None, &params("client_id=a")).unwrap();
        assert_eq!(c.method, AuthMethod::None);
        let e = presented_credentials(None, &params("grant_type=x")).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidClient);
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for h in ["Basic", "Basic !!!", "Bearer abc", &format!("Basic {}", STANDARD.encode("nocolon")), &format!("Basic {}", STANDARD.encode(":x"))] {
            assert_eq!(presented_credentials(Some(h), &params("")).unwrap_err().code, crate::ErrorCode::InvalidClient, "{h}");
        }
    }

    /// RFC 6749 §2.3.1: the Basic password is the whole form-urlencoded secret; found by
    /// `proptests::rfc6749_2_3_1_secret_is_not_truncated_at_ampersand`: `hunter2&x` was read
    /// as `hunter2` (and `my-app&x` as the client `my-app`).
    #[test]
    fn regression_basic_credentials_cut_at_ampersand_rfc6749_2_3_1() {
        let c = presented_credentials(Some(&basic("my-app", "hunter2&x")), &params("")).unwrap();
        assert_eq!(c.secret, Some(Secret("hunter2&x".into())));
        let c = presented_credentials(Some(&basic("my-app&x", "hunter2")), &params("")).unwrap();
        assert_eq!(c.client_id, "my-app&x");
        assert_eq!(presented_credentials(Some(&basic("a", "%FF")), &params("")).unwrap_err().code, crate::ErrorCode::InvalidClient, "not UTF-8");
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "Secret(<redacted>)");
    }

    /// RFC 7591 §2: grant types by registered name, round-trip.
    #[test]
    fn rfc7591_2_grant_type_names() {
        for g in ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"] {
            assert_eq!(g.parse::<GrantType>().unwrap().as_str(), g);
        }
        assert!("password".parse::<GrantType>().is_err());
        assert!("implicit".parse::<GrantType>().is_err());
    }
}

/// Property-based tests of RFC 6749 §2.3.1 client credentials on arbitrary input.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6749 §2.3.1 / Appendix B: form-urlencode id and secret, join with `:`, base64.
    fn basic(scheme: &str, id: &str, secret: &str) -> String {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("{scheme} {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
    }

    /// Identifiers and secrets: any Unicode but U+FFFD (refused as a decoding artefact).
    fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(any::<char>().prop_filter("no U+FFFD", |c| *c != '\u{fffd}'), min..max).prop_map(|v| v.into_iter().collect::<String>()),
            proptest::string::string_regex(&format!("[a-zA-Z0-9:%+&= ._~é-]{{{min},{max}}}")).unwrap(),
        ]
    }

    proptest! {
        /// RFC 6749 §2.3.1: any Authorization header value is parsed without a panic.
        #[test]
        fn rfc6749_2_3_1_arbitrary_header_never_panics(header in any::<String>()) {
            let _ = presented_credentials(Some(&header), &Params::default());
        }

        /// RFC 6749 §2.3.1: any base64 payload (arbitrary bytes, invalid UTF-8 included) after
        /// `Basic ` is parsed without a panic, and what is accepted has a non-empty id.
        #[test]
        fn rfc6749_2_3_1_arbitrary_basic_payload_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(c) = presented_credentials(Some(&format!("Basic {}", STANDARD.encode(&payload))), &Params::default()) {
                prop_assert!(!c.client_id.is_empty());
            }
        }

        /// RFC 6749 §2.3.1: an id and secret encoded as the section says parse back to the same
        /// id and secret, whatever characters they hold (`:`, `%`, `+`, `&`, `=`, Unicode),
        /// and the scheme name is case-insensitive (RFC 7235 §2.1).
        #[test]
        fn rfc6749_2_3_1_basic_round_trips(id in text(1, 40), secret in text(0, 60), upper in any::<bool>()) {
            let scheme = if upper { "BASIC" } else { "Basic" };
            let c = presented_credentials(Some(&basic(scheme, &id, &secret)), &Params::default()).unwrap();
            prop_assert_eq!(c.client_id, id);
            prop_assert_eq!(c.secret, Some(Secret(secret)));
            prop_assert_eq!(c.method, AuthMethod::ClientSecretBasic);
        }

        /// RFC 6749 §2.3.1: the password is the whole form-urlencoded secret. A raw `&` never
        /// appears in an encoded value, and what follows one is part of the value, not a second
        /// form field to drop: `secret&anything` must not authenticate as `secret`.
        #[test]
        fn rfc6749_2_3_1_secret_is_not_truncated_at_ampersand(id in text(1, 20), secret in text(0, 30), tail in "[a-z=&]{0,10}") {
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let header = format!("Basic {}", STANDARD.encode(format!("{}:{}&{tail}", enc(&id), enc(&secret))));
            if let Ok(c) = presented_credentials(Some(&header), &Params::default()) {
                prop_assert_ne!(c.secret, Some(Secret(secret.clone())));
            }
            let header = format!("Basic {}", STANDARD.encode(format!("{}&{tail}:{}", enc(&id), enc(&secret))));
            if let Ok(c) = presented_credentials(Some(&header), &Params::default()) {
                prop_assert_ne!(c.client_id, id);
            }
        }

        /// RFC 6749 §2.3: Basic beside a body `client_secret` is two methods, refused; a body
        /// `client_id` naming another client is refused.
        #[test]
        fn rfc6749_2_3_one_method_only(id in text(1, 20), secret in text(0, 20), other in text(1, 20)) {
            let body = |s: &str| Params::parse(s.as_bytes()).unwrap();
            let header = basic("Basic", &id, &secret);
            let two = form_urlencoded::Serializer::new(String::new()).append_pair("client_secret", &format!("x{secret}")).finish();
            prop_assert_eq!(presented_credentials(Some(&header), &body(&two)).unwrap_err().code, crate::ErrorCode::InvalidRequest);
            let named = form_urlencoded::Serializer::new(String::new()).append_pair("client_id", &other).finish();
            let r = presented_credentials(Some(&header), &body(&named));
            prop_assert_eq!(r.is_ok(), other == id);
        }
    }
}
