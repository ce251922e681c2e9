//! The refresh token grant, RFC 6749 §6, with rotation per RFC 9700 §4.14.2.

use crate::error::OAuthError;
use crate::params::Params;
use crate::scope::Scopes;

/// RFC 6749 §6 refresh request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    pub refresh_token: String,
    pub scope: Option<Scopes>,
}

impl RefreshRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let scope = match params.get("scope") {
            Some(s) => Some(Scopes::parse(s)?),
            None => None,
        };
        Ok(Self { refresh_token: params.require("refresh_token")?.to_string(), scope })
    }

    /// RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by the
    /// resource owner, and if omitted is treated as equal to the scope originally granted."
    pub fn effective_scope(&self, granted: &Scopes) -> Result<Scopes, OAuthError> {
        match &self.scope {
            None => Ok(granted.clone()),
            Some(s) if s.is_empty() => Ok(granted.clone()),
            Some(s) if s.is_subset(granted) => Ok(s.clone()),
            Some(s) => Err(OAuthError::invalid_scope(format!("not originally granted: {}", s.difference(granted)))),
        }
    }
}

/// RFC 6749 §6: the token was issued to this client.
pub fn check_client(token_client_id: &str, client_id: &str) -> Result<(), OAuthError> {
    if token_client_id == client_id { Ok(()) } else { Err(OAuthError::invalid_grant("the refresh token was issued to another client")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn req(scope: Option<&str>) -> RefreshRequest {
        RefreshRequest { refresh_token: "r".into(), scope: scope.map(|s| Scopes::parse(s).unwrap()) }
    }

    /// RFC 6749 §6: scope may be narrowed, never widened; omitted means the original grant.
    #[test]
    fn rfc6749_6_scope_narrowing() {
        let granted = Scopes::parse("a b").unwrap();
        assert_eq!(req(None).effective_scope(&granted).unwrap().to_string(), "a b");
        assert_eq!(req(Some("a")).effective_scope(&granted).unwrap().to_string(), "a");
        assert_eq!(req(Some("a c")).effective_scope(&granted).unwrap_err().code, ErrorCode::InvalidScope);
    }

    /// RFC 6749 §6: a refresh token is bound to the client it was issued to.
    #[test]
    fn rfc6749_6_client_binding() {
        assert!(check_client("c1", "c1").is_ok());
        assert_eq!(check_client("c1", "c2").unwrap_err().code, ErrorCode::InvalidGrant);
    }

    #[test]
    fn rfc6749_6_refresh_token_required() {
        let p = Params::parse(b"grant_type=refresh_token").unwrap();
        assert_eq!(RefreshRequest::parse(&p).unwrap_err().code, ErrorCode::InvalidRequest);
    }
}
