//! The OAuth error codes (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1) and the one error type the
//! protocol core returns. Mapping to HTTP status and body happens in one place, in the HTTP layer,
//! using [`ErrorCode::status`].

use std::fmt;

/// Every error code Tessera can send to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// RFC 6749 §5.2: the request is missing a required parameter, includes an unsupported
    /// parameter value, repeats a parameter, or is otherwise malformed.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the grant is invalid, expired, revoked, does not match the redirect URI
    /// used in the authorization request, or was issued to another client.
    InvalidGrant,
    /// RFC 6749 §4.1.2.1 / §5.2: the client is not authorized to use this grant / response type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported by the authorization server.
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1: the response type is not supported.
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1 / §5.2: the requested scope is invalid, unknown, or malformed.
    InvalidScope,
    /// RFC 6749 §4.1.2.1: the resource owner or authorization server denied the request.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: an unexpected condition prevented the server from fulfilling the request.
    ServerError,
    /// RFC 6749 §4.1.2.1: the server is temporarily unable to handle the request.
    TemporarilyUnavailable,
    /// RFC 6750 §3.1: the access token is expired, revoked, malformed, or invalid.
    InvalidToken,
    /// RFC 6750 §3.1: the request requires higher privileges than the access token provides.
    InsufficientScope,
    /// RFC 8707 §2: the requested resource is invalid or unknown.
    InvalidTarget,
    /// RFC 8628 §3.5: the user has not yet completed the authorization.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; the interval is raised by 5 seconds.
    SlowDown,
    /// RFC 8628 §3.5: the device code has expired.
    ExpiredToken,
    /// RFC 7009 §2.2.1: the server does not revoke this type of token.
    UnsupportedTokenType,
    /// OIDC Core §3.1.2.6: `prompt=none` and the user must sign in.
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` and the user must consent.
    ConsentRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` and some interaction is needed.
    InteractionRequired,
    /// OIDC Core §3.1.2.6: the `request` parameter is not supported.
    RequestNotSupported,
    /// OIDC Core §3.1.2.6: the `request_uri` parameter is not supported.
    RequestUriNotSupported,
    /// RFC 9449 §5, §7.1: the DPoP proof is missing or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8, §9: the server requires a nonce in the DPoP proof (given in `DPoP-Nonce`).
    UseDpopNonce,
}

impl ErrorCode {
    /// The registered error code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// HTTP status for a JSON error response (RFC 6749 §5.2, RFC 6750 §3.1).
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error: a code plus a description safe to show to the client
/// (`error_description`, RFC 6749 §5.2: printable ASCII without `"` and `\`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let description: String = description.into().chars().filter(|c| matches!(*c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')).collect();
        Self { code, description }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerError, d)
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6749 §5.2: error_description MUST NOT include characters outside %x20-21 / %x23-5B / %x5D-7E.
    #[test]
    fn rfc6749_5_2_description_is_restricted_ascii() {
        let e = OAuthError::invalid_request("bad \"quote\" \\ and é\n");
        assert_eq!(e.description, "bad quote  and ");
    }

    /// RFC 6749 §5.2: invalid_client answers 401; RFC 6750 §3.1: insufficient_scope answers 403.
    #[test]
    fn statuses() {
        assert_eq!(ErrorCode::InvalidClient.status(), 401);
        assert_eq!(ErrorCode::InvalidGrant.status(), 400);
        assert_eq!(ErrorCode::InsufficientScope.status(), 403);
        assert_eq!(ErrorCode::TemporarilyUnavailable.status(), 503);
    }
}
