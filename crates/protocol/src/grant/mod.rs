//! The token endpoint's grants, one module each (RFC 6749 §4, §6). [`parse`] turns the form into
//! a typed [`TokenRequest`]; each grant module holds the rules of its own section.
//! Adding a grant is one module plus one arm in [`parse`].

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;

use crate::client::GrantType;
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;

/// A token request, typed by grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    AuthorizationCode(authorization_code::CodeRequest),
    RefreshToken(refresh_token::RefreshRequest),
    ClientCredentials(client_credentials::ClientCredentialsRequest),
    DeviceCode(device_code::DeviceCodeRequest),
}

impl TokenRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
            Self::DeviceCode(_) => GrantType::DeviceCode,
        }
    }
}

/// RFC 6749 §4.1.3 / §6: dispatch on `grant_type`.
/// §5.2 `unsupported_grant_type`: "The authorization grant type is not supported by the
/// authorization server." The password and implicit grants are absent by design (OAuth 2.1).
pub fn parse(params: &Params) -> Result<TokenRequest, OAuthError> {
    match params.require("grant_type")? {
        "authorization_code" => Ok(TokenRequest::AuthorizationCode(authorization_code::CodeRequest::parse(params)?)),
        "refresh_token" => Ok(TokenRequest::RefreshToken(refresh_token::RefreshRequest::parse(params)?)),
        "client_credentials" => Ok(TokenRequest::ClientCredentials(client_credentials::ClientCredentialsRequest::parse(params)?)),
        "urn:ietf:params:oauth:grant-type:device_code" => Ok(TokenRequest::DeviceCode(device_code::DeviceCodeRequest::parse(params)?)),
        _ => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "this grant_type is not supported")),
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
        assert_eq!(check("code=a"), Err(ErrorCode::InvalidRequest));
        assert_eq!(check("grant_type=password&username=a&password=b"), Err(ErrorCode::UnsupportedGrantType));
        assert_eq!(check("grant_type=implicit"), Err(ErrorCode::UnsupportedGrantType));
        assert_eq!(check("grant_type=authorization_code&code=x"), Ok(GrantType::AuthorizationCode));
        assert_eq!(check("grant_type=refresh_token&refresh_token=x"), Ok(GrantType::RefreshToken));
        assert_eq!(check("grant_type=client_credentials"), Ok(GrantType::ClientCredentials));
        assert_eq!(check("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=x"), Ok(GrantType::DeviceCode));
    }
}
