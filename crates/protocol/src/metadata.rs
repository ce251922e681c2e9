//! Authorization server metadata, RFC 8414 §2, advertising exactly what Tessera supports.

use crate::client::GrantType;
use serde_json::{Value, json};

/// RFC 8414 §2 metadata document for `issuer`, which is also the OpenID Connect Discovery 1.0
/// document (served at both well-known paths, so the two can never disagree).
pub fn authorization_server(issuer: &str, scopes_supported: &[String]) -> Value {
    let grants: Vec<&str> = GrantType::SUPPORTED.iter().map(|g| g.as_str()).collect();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "scopes_supported": scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": format!("{issuer}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "device_authorization_endpoint": format!("{issuer}/device_authorization"),
        // OpenID Connect Discovery 1.0 §3 (the same document serves both).
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "claims_supported": crate::oidc::claims_supported(),
        "claims_parameter_supported": true,
        "acr_values_supported": crate::oidc::ACR_VALUES_SUPPORTED,
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
            json!(["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"])
        );
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["revocation_endpoint"], "https://as.example/revoke");
        assert_eq!(m["introspection_endpoint"], "https://as.example/introspect");
        assert_eq!(m["device_authorization_endpoint"], "https://as.example/device_authorization");
        assert!(m.get("registration_endpoint").is_none(), "no dynamic registration");
        assert!(m.get("pushed_authorization_request_endpoint").is_none());
    }
}
