//! Token revocation (RFC 7009) and introspection (RFC 7662) requests.

use crate::error::OAuthError;
use crate::params::Params;

/// RFC 7009 §2.1 / RFC 7662 §2.1: `token` and an optional `token_type_hint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenQuery {
    pub token: String,
    pub hint: Option<TokenTypeHint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenQuery {
    /// RFC 7009 §2.1: "token REQUIRED"; an unknown hint is ignored (RFC 7009 §2.1: the server
    /// "MAY ignore this parameter", and extends its search to all supported types).
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let hint = match params.get("token_type_hint") {
            Some("access_token") => Some(TokenTypeHint::AccessToken),
            Some("refresh_token") => Some(TokenTypeHint::RefreshToken),
            _ => None,
        };
        Ok(Self { token: params.require("token")?.to_string(), hint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7009 §2.1: token is required; hints are optional.
    #[test]
    fn rfc7009_2_1_parameters() {
        let p = |s: &str| TokenQuery::parse(&Params::parse(s.as_bytes()).unwrap());
        assert_eq!(p("token_type_hint=access_token").unwrap_err().code, crate::ErrorCode::InvalidRequest);
        assert_eq!(p("token=x&token_type_hint=refresh_token").unwrap().hint, Some(TokenTypeHint::RefreshToken));
        assert_eq!(p("token=x&token_type_hint=weird").unwrap().hint, None);
    }
}
