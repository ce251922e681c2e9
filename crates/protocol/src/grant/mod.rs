//! The token endpoint's grants, one module each (RFC 6749 §4, §6). [`parse`] turns the form into
//! a typed [`TokenRequest`]; each grant module holds the rules of its own section.
//!
//! Adding a grant is its module here and one line in the `grants!` list below, which makes its
//! [`GrantType`] (variant, RFC 7591 §2 name, parsing, [`GrantType::SUPPORTED`] and so the
//! metadata's `grant_types_supported`), its [`TokenRequest`] variant and its arm in [`parse`].

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod jwt_bearer;
pub mod refresh_token;

use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use std::fmt;
use std::str::FromStr;

/// The one list of grants: `Variant => "registered name", module::Request`.
macro_rules! grants {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $module:ident::$request:ident;)+) => {
        /// Grant types by their registered names (RFC 7591 §2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum GrantType {
            $($(#[$doc])* $variant,)+
        }

        impl GrantType {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
            /// Grant types this build of Tessera serves at the token endpoint.
            pub const SUPPORTED: &'static [GrantType] = &[$(GrantType::$variant,)+];
        }

        impl FromStr for GrantType {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    other => Err(format!("unknown grant type {other:?}")),
                }
            }
        }

        /// A token request, typed by grant.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum TokenRequest {
            $($variant($module::$request),)+
        }

        impl TokenRequest {
            pub fn grant_type(&self) -> GrantType {
                match self {
                    $(Self::$variant(_) => GrantType::$variant,)+
                }
            }
        }

        /// RFC 6749 §4.1.3 / §6: dispatch on `grant_type`.
        /// §5.2 `unsupported_grant_type`: "The authorization grant type is not supported by the
        /// authorization server." The password and implicit grants are absent by design (OAuth 2.1).
        pub fn parse(params: &Params) -> Result<TokenRequest, OAuthError> {
            match params.require("grant_type")? {
                $($name => Ok(TokenRequest::$variant($module::$request::parse(params)?)),)+
                _ => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "this grant_type is not supported")),
            }
        }
    };
}

grants! {
    /// RFC 6749 §4.1.
    AuthorizationCode => "authorization_code", authorization_code::CodeRequest;
    /// RFC 6749 §6.
    RefreshToken => "refresh_token", refresh_token::RefreshRequest;
    /// RFC 6749 §4.4.
    ClientCredentials => "client_credentials", client_credentials::ClientCredentialsRequest;
    /// RFC 8628 §3.4.
    DeviceCode => "urn:ietf:params:oauth:grant-type:device_code", device_code::DeviceCodeRequest;
    /// RFC 7523 §2.1.
    JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer", jwt_bearer::JwtBearerRequest;
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str) -> Result<GrantType, ErrorCode> {
        parse(&Params::parse(body.as_bytes()).unwrap()).map(|r| r.grant_type()).map_err(|e| e.code)
    }

    /// RFC 6749 §5.2: missing grant_type is invalid_request; unknown is unsupported_grant_type.
    #[test]
    fn rfc6749_5_2_grant_type_dispatch() {
        for g in GrantType::SUPPORTED {
            assert_eq!(g.as_str().parse::<GrantType>(), Ok(*g), "{g} round-trips");
        }
        assert!("password".parse::<GrantType>().is_err());
        assert_eq!(check("code=a"), Err(ErrorCode::InvalidRequest));
        assert_eq!(check("grant_type=password&username=a&password=b"), Err(ErrorCode::UnsupportedGrantType));
        assert_eq!(check("grant_type=implicit"), Err(ErrorCode::UnsupportedGrantType));
        assert_eq!(check("grant_type=authorization_code&code=x"), Ok(GrantType::AuthorizationCode));
        assert_eq!(check("grant_type=refresh_token&refresh_token=x"), Ok(GrantType::RefreshToken));
        assert_eq!(check("grant_type=client_credentials"), Ok(GrantType::ClientCredentials));
        assert_eq!(check("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=x"), Ok(GrantType::DeviceCode));
        assert_eq!(check("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x"), Ok(GrantType::JwtBearer));
        assert_eq!(check("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"), Err(ErrorCode::InvalidRequest));
    }
}
