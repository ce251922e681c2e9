//! The client credentials grant, RFC 6749 §4.4: a confidential client asks for a token for
//! itself, with no resource owner. RFC 6749 §4.4: "The client credentials grant type MUST only be
//! used by confidential clients." No refresh token is issued (§4.4.3).

use crate::client::ClientPolicy;
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::scope::Scopes;

/// RFC 6749 §4.4.2 access token request, with the RFC 8707 `resource` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    pub scope: Option<Scopes>,
    pub resource: Option<String>,
}

impl ClientCredentialsRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let scope = match params.get("scope") {
            Some(s) => Some(Scopes::parse(s)?),
            None => None,
        };
        Ok(Self { scope, resource: params.get("resource").map(str::to_string) })
    }

    /// The scopes to grant: those requested, which must be within the client's registration
    /// (RFC 6749 §3.3, `invalid_scope` otherwise), or — when none are requested — every
    /// registered scope (the "pre-defined default value" §3.3 allows).
    pub fn granted_scope(&self, client: &ClientPolicy) -> Result<Scopes, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "public clients may not use client_credentials"));
        }
        match &self.scope {
            Some(s) if !s.is_empty() => {
                if s.is_subset(&client.scopes) {
                    Ok(s.clone())
                } else {
                    Err(OAuthError::invalid_scope(format!("this client may not request: {}", s.difference(&client.scopes))))
                }
            }
            _ if client.scopes.is_empty() => Err(OAuthError::invalid_scope("this client has no registered scope to grant")),
            _ => Ok(client.scopes.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{AuthMethod, GrantType};

    fn client(public: bool) -> ClientPolicy {
        ClientPolicy {
            client_id: "svc".into(),
            name: "Service".into(),
            redirect_uris: vec![],
            scopes: Scopes::parse("a b").unwrap(),
            grant_types: vec![GrantType::ClientCredentials],
            auth_method: if public { AuthMethod::None } else { AuthMethod::ClientSecretBasic },
            require_dpop: false,
            origins: vec![],
        }
    }
    fn req(scope: Option<&str>) -> ClientCredentialsRequest {
        ClientCredentialsRequest { scope: scope.map(|s| Scopes::parse(s).unwrap()), resource: None }
    }

    /// RFC 6749 §4.4: confidential clients only.
    #[test]
    fn rfc6749_4_4_confidential_only() {
        assert_eq!(req(None).granted_scope(&client(true)).unwrap_err().code, ErrorCode::UnauthorizedClient);
    }

    /// RFC 6749 §3.3 / §5.2: a scope beyond the registration is invalid_scope; none means all.
    #[test]
    fn rfc6749_4_4_2_scope_rules() {
        assert_eq!(req(Some("a")).granted_scope(&client(false)).unwrap().to_string(), "a");
        assert_eq!(req(None).granted_scope(&client(false)).unwrap().to_string(), "a b");
        assert_eq!(req(Some("a c")).granted_scope(&client(false)).unwrap_err().code, ErrorCode::InvalidScope);
        let mut none = client(false);
        none.scopes = Scopes::default();
        assert_eq!(req(None).granted_scope(&none).unwrap_err().code, ErrorCode::InvalidScope, "no scope at all is not a grant");
    }
}
