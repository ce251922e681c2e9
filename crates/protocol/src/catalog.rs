//! The scope catalog (RFC 6749 §3.3: the scopes this server defines) and the audience of an
//! access token chosen from it (RFC 8707 §2, RFC 9700 §2.3).
//!
//! Every scope belongs to the API that defines it, or to OpenID Connect (no API). The service
//! builds one catalog from the store's APIs; these rules decide with it.

use crate::error::{ErrorCode, OAuthError};
use crate::scope::Scopes;
use std::collections::HashMap;

/// Every scope this server knows: name → (API identifier, description shown on consent), and
/// each API's introspection secret hash.
#[derive(Debug, Clone, Default)]
pub struct ScopeCatalog {
    scopes: HashMap<String, (String, String)>,
    api_secrets: HashMap<String, Option<String>>,
    /// The APIs that declare roles.
    with_roles: std::collections::HashSet<String>,
}

impl ScopeCatalog {
    /// The catalog with OpenID Connect's own scopes (OIDC Core §5.4), which belong to no API.
    pub fn with_oidc_scopes() -> Self {
        let scopes = crate::oidc::OIDC_SCOPES.iter().map(|(n, d)| (n.to_string(), (String::new(), d.to_string()))).collect();
        Self { scopes, api_secrets: HashMap::new(), with_roles: Default::default() }
    }

    /// Add an API (its RFC 8707 resource identifier), its introspection secret hash and the
    /// scopes it defines as (name, description). A scope an API defines replaces a scope of
    /// the same name defined before.
    pub fn add_api(&mut self, identifier: &str, secret_hash: Option<String>, scopes: impl IntoIterator<Item = (String, String)>) {
        for (name, description) in scopes {
            self.scopes.insert(name, (identifier.to_string(), description));
        }
        self.api_secrets.insert(identifier.to_string(), secret_hash);
    }

    /// Note that the API `identifier` declares roles (its tokens may carry `roles`).
    pub fn add_roles(&mut self, identifier: &str) {
        self.with_roles.insert(identifier.to_string());
    }
    pub fn declares_roles(&self, identifier: &str) -> bool {
        self.with_roles.contains(identifier)
    }

    pub fn contains(&self, s: &str) -> bool {
        self.scopes.contains_key(s)
    }
    pub fn description(&self, s: &str) -> Option<&str> {
        self.scopes.get(s).map(|(_, d)| d.as_str())
    }
    /// The API defining `s`; `None` for unknown scopes and OpenID Connect's own.
    pub fn api_of(&self, s: &str) -> Option<&str> {
        self.scopes.get(s).map(|(a, _)| a.as_str()).filter(|a| !a.is_empty())
    }
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scopes.keys().cloned().collect();
        v.sort();
        v
    }
    /// The API's secret hash: `None` when no such API, `Some(None)` when it has no secret.
    pub fn api_secret(&self, identifier: &str) -> Option<Option<&str>> {
        self.api_secrets.get(identifier).map(|s| s.as_deref())
    }

    /// The token audience: the one API that defines the requested scopes, which the RFC 8707
    /// `resource` parameter may name (it must then define every requested scope).
    ///
    /// One audience per access token (RFC 9700 §2.3: "access tokens SHOULD be
    /// audience-restricted to a specific resource server, or, if that is not feasible, to a
    /// small set of resource servers"; RFC 8707 §2): a token for two APIs could be replayed by
    /// either at the other, so scopes of several APIs in one request are refused with
    /// `invalid_target`, asking the client to request each API's scopes (and `resource`)
    /// separately.
    pub fn audience_for(&self, scopes: &Scopes, resource: Option<&str>) -> Result<Vec<String>, OAuthError> {
        let mut apis: Vec<String> = Vec::new();
        for s in scopes.iter() {
            if let Some(a) = self.api_of(s) {
                if !apis.iter().any(|x| x == a) {
                    apis.push(a.to_string());
                }
            }
        }
        if apis.len() > 1 {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!(
                    "the requested scopes belong to several APIs ({}); request one API's scopes at a time, naming it with the resource parameter",
                    apis.join(", ")
                ),
            ));
        }
        match resource {
            None => Ok(apis),
            Some(r) if apis.len() == 1 && apis[0] == r => Ok(apis),
            // RFC 8707 §2: invalid_target when the resource is unknown or does not fit the scopes.
            Some(_) => Err(OAuthError::new(ErrorCode::InvalidTarget, "resource does not name the API of the requested scopes")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> ScopeCatalog {
        let mut c = ScopeCatalog::with_oidc_scopes();
        c.add_api(
            "https://notes.example",
            Some("h".into()),
            [("notes.read".to_string(), "Read your notes".to_string()), ("notes.write".into(), "Edit".into())],
        );
        c.add_api("https://mail.example", None, [("mail.read".to_string(), "Read your mail".to_string())]);
        c
    }

    /// (scopes, resource) → the audience or the error code: the one helper every row goes through.
    fn check(scopes: &str, resource: Option<&str>, expected: Result<&[&str], ErrorCode>) {
        let got = catalog().audience_for(&Scopes::parse(scopes).unwrap(), resource).map_err(|e| e.code);
        let expected = expected.map(|a| a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "scopes={scopes:?} resource={resource:?}");
    }

    /// RFC 8707 §2 and RFC 9700 §2.3: one API per token, the resource must be that API.
    #[test]
    fn rfc8707_2_audience_selection() {
        check("notes.read notes.write", None, Ok(&["https://notes.example"]));
        check("openid notes.read", Some("https://notes.example"), Ok(&["https://notes.example"]));
        // OpenID Connect's scopes belong to no API: no audience beyond the client's.
        check("openid profile", None, Ok(&[]));
        check("notes.read mail.read", None, Err(ErrorCode::InvalidTarget));
        check("notes.read mail.read", Some("https://notes.example"), Err(ErrorCode::InvalidTarget));
        check("notes.read", Some("https://mail.example"), Err(ErrorCode::InvalidTarget));
        check("notes.read", Some("https://unknown.example"), Err(ErrorCode::InvalidTarget));
        check("openid", Some("https://notes.example"), Err(ErrorCode::InvalidTarget));
        // Unknown scopes are refused elsewhere (RFC 6749 §3.3); here they name no API.
        check("unknown", None, Ok(&[]));
    }

    #[test]
    fn catalog_lookups() {
        let c = catalog();
        assert!(c.contains("openid") && c.contains("mail.read") && !c.contains("x"));
        assert_eq!(c.api_of("openid"), None);
        assert_eq!(c.api_of("notes.read"), Some("https://notes.example"));
        assert_eq!(c.description("mail.read"), Some("Read your mail"));
        assert_eq!(c.api_secret("https://notes.example"), Some(Some("h")));
        assert_eq!(c.api_secret("https://mail.example"), Some(None));
        assert_eq!(c.api_secret("https://x.example"), None);
        assert_eq!(c.names().len(), crate::oidc::OIDC_SCOPES.len() + 3, "the OpenID scopes (groups among them) and three of the APIs");
    }
}
