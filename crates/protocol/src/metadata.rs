//! Authorization server metadata, RFC 8414 §2, advertising exactly what Tessera supports.

use crate::client::GrantType;
use serde_json::{Value, json};

/// Every endpoint's path under the issuer: the HTTP router serves these, and the metadata
/// document advertises them, so the two cannot drift apart.
pub mod paths {
    /// RFC 6749 §3.1.
    pub const AUTHORIZE: &str = "/authorize";
    /// RFC 6749 §3.2.
    pub const TOKEN: &str = "/token";
    /// RFC 8414 §2 `jwks_uri` (RFC 7517 §5).
    pub const JWKS: &str = "/jwks.json";
    /// RFC 7009 §2.
    pub const REVOKE: &str = "/revoke";
    /// RFC 7662 §2.
    pub const INTROSPECT: &str = "/introspect";
    /// RFC 8628 §3.1.
    pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
    /// RFC 8628 §3.2 `verification_uri`: where the user types the code.
    pub const DEVICE: &str = "/device";
    /// OpenID Connect Core §5.3.
    pub const USERINFO: &str = "/userinfo";
    /// OpenID Connect RP-Initiated Logout 1.0 §2 `end_session_endpoint`.
    pub const LOGOUT: &str = "/logout";
    /// The sign-in page (not advertised).
    pub const LOGIN: &str = "/login";
    /// The consent page (not advertised).
    pub const CONSENT: &str = "/consent";
    /// RFC 8414 §3.
    pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
    /// OpenID Connect Discovery 1.0 §4.
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
}

/// RFC 8414 §2 metadata document for `issuer`, which is also the OpenID Connect Discovery 1.0
/// document (served at both well-known paths, so the two can never disagree).
pub fn authorization_server(issuer: &str, scopes_supported: &[String]) -> Value {
    let grants: Vec<&str> = GrantType::SUPPORTED.iter().map(|g| g.as_str()).collect();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{}", paths::AUTHORIZE),
        "token_endpoint": format!("{issuer}{}", paths::TOKEN),
        "jwks_uri": format!("{issuer}{}", paths::JWKS),
        "scopes_supported": scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint": format!("{issuer}{}", paths::REVOKE),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": format!("{issuer}{}", paths::INTROSPECT),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "device_authorization_endpoint": format!("{issuer}{}", paths::DEVICE_AUTHORIZATION),
        // OpenID Connect Discovery 1.0 §3 (the same document serves both).
        "userinfo_endpoint": format!("{issuer}{}", paths::USERINFO),
        "end_session_endpoint": format!("{issuer}{}", paths::LOGOUT),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "claims_supported": crate::oidc::claims_supported(),
        "claims_parameter_supported": true,
        "acr_values_supported": crate::oidc::ACR_VALUES_SUPPORTED,
        "ui_locales_supported": crate::oidc::UI_LOCALES_SUPPORTED,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8414 §2: required members, and nothing advertised that is not served.
    #[test]
    fn rfc8414_2_members() {
        let m = authorization_server("https://as.example", &["notes.read".into()]);
        assert_eq!(m["issuer"], "https://as.example");
        assert_eq!(m["response_types_supported"], json!(["code"]));
        assert_eq!(
            m["grant_types_supported"],
            json!([
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:jwt-bearer"
            ])
        );
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["revocation_endpoint"], "https://as.example/revoke");
        assert_eq!(m["introspection_endpoint"], "https://as.example/introspect");
        assert_eq!(m["device_authorization_endpoint"], "https://as.example/device_authorization");
        assert!(m.get("registration_endpoint").is_none(), "no dynamic registration");
        assert!(m.get("pushed_authorization_request_endpoint").is_none());
    }
}
