//! The authorization code grant, RFC 6749 §4.1.3–4.1.4.
//!
//! RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization server
//! MUST deny the request and SHOULD revoke (when possible) all tokens previously issued based on
//! that authorization code." The code is consumed atomically first; a replay revokes the grant's
//! refresh-token family and is recorded as a security event.

use crate::secret;
use crate::service::token::Lineage;
use crate::service::{ServiceError, Tessera};
use tessera_protocol::OAuthError;
use tessera_protocol::client::ClientPolicy;
use tessera_protocol::grant::authorization_code::{CodeBinding, CodeRequest};
use tessera_protocol::pkce::CodeChallenge;
use tessera_protocol::scope::Scopes;
use tessera_protocol::token::TokenResponse;
use tessera_storage::Taken;

pub async fn redeem(svc: &Tessera, client: &ClientPolicy, req: &CodeRequest) -> Result<TokenResponse, ServiceError> {
    let now = svc.now();
    if req.code.len() > 128 {
        return Err(OAuthError::invalid_grant("unknown authorization code").into());
    }
    let code = match svc.store.take_code(&secret::hash(&req.code), now).await? {
        Taken::Taken(c) => c,
        Taken::AlreadyUsed(c) => {
            let revoked = svc.store.revoke_family(&c.grant_id, now).await?;
            svc.store
                .create_audit_event("code_replay", &format!("client {} presented a used code; grant {} revoked ({revoked} refresh tokens)", client.client_id, c.grant_id), now)
                .await?;
            tracing::warn!(client_id = %client.client_id, grant = %c.grant_id, "authorization code replayed; grant revoked");
            return Err(OAuthError::invalid_grant("the authorization code was already used").into());
        }
        Taken::NotFound => return Err(OAuthError::invalid_grant("unknown authorization code").into()),
    };
    let binding = CodeBinding {
        client_id: code.client_id.clone(),
        redirect_uri: code.redirect_uri.clone(),
        redirect_uri_given: code.redirect_uri_given,
        code_challenge: code.code_challenge.clone().map(CodeChallenge::from_stored),
        expires_at: code.expires_at,
    };
    req.check(&binding, &client.client_id, now)?;
    let scope = Scopes::parse(&code.scope)?;
    let audience: Vec<String> = serde_json::from_str(&code.audience).unwrap_or_default();
    let lineage = Lineage { family_id: code.grant_id.clone(), auth_time: code.auth_time, family_expires_at: now + svc.config.refresh_token_lifetime, oidc: code.oidc.clone(), with_nonce: true };
    svc.issue_tokens(client, &code.user_id, &scope, &scope, &audience, lineage).await
}
