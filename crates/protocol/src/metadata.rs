//! Authorization server metadata, RFC 8414 §2, advertising exactly what Tessera supports.

use crate::client::GrantType;
use serde_json::{Value, json};

/// RFC 8414 §2 metadata document for `issuer`.
pub fn authorization_server(issuer: &str, scopes_supported: &[String]) -> Value {
    let grants: Vec<&str> = GrantType::SUPPORTED.iter().map(|g| g.as_str()).collect();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "scopes_supported": scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
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
        assert_eq!(m["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert!(m.get("registration_endpoint").is_none());
        assert!(m.get("revocation_endpoint").is_none());
    }
}
