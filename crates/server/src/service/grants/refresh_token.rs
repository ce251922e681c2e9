//! The refresh token grant, RFC 6749 §6, with rotation and reuse detection (RFC 9700 §4.14.2):
//! every use consumes the token atomically and returns a new one in the same family; presenting
//! a consumed token revokes the whole family and is recorded as a security event.

use crate::secret;
use crate::service::token::Lineage;
use crate::service::{ServiceError, Tessera};
use tessera_protocol::OAuthError;
use tessera_protocol::client::ClientPolicy;
use tessera_protocol::grant::refresh_token::{RefreshRequest, check_client};
use tessera_protocol::scope::Scopes;
use tessera_protocol::token::TokenResponse;
use tessera_storage::Taken;

pub async fn refresh(svc: &Tessera, client: &ClientPolicy, req: &RefreshRequest) -> Result<TokenResponse, ServiceError> {
    let now = svc.now();
    if req.refresh_token.len() > 128 {
        return Err(OAuthError::invalid_grant("unknown refresh token").into());
    }
    let hash = secret::hash(&req.refresh_token);
    // Requests that would fail anyway (another client's token, a widened scope) are refused
    // before the token is consumed, so a client's mistake does not cost it its grant.
    if let Some(t) = svc.store.find_refresh_token(&hash).await? {
        if t.used_at.is_none() && t.revoked_at.is_none() {
            if t.client_id == client.client_id {
                req.effective_scope(&Scopes::parse(&t.scope)?)?;
            }
        }
    }
    let token = match svc.store.take_refresh_token(&hash, now, svc.config.refresh_token_grace).await? {
        Taken::Taken(t) => t,
        Taken::AlreadyUsed(t) => {
            if t.used_at.is_some() && t.revoked_at.is_none() {
                svc.store.revoke_family(&t.family_id, now).await?;
                svc.store.create_audit_event("refresh_reuse", &format!("client {} reused a rotated refresh token; family {} revoked", client.client_id, t.family_id), now).await?;
                tracing::warn!(client_id = %client.client_id, family = %t.family_id, "refresh token reuse; family revoked");
            }
            return Err(OAuthError::invalid_grant("the refresh token is no longer valid").into());
        }
        Taken::NotFound => return Err(OAuthError::invalid_grant("unknown refresh token").into()),
    };
    if let Err(e) = check_client(&token.client_id, &client.client_id) {
        // A token that reached another client has leaked: end its family.
        svc.store.revoke_family(&token.family_id, now).await?;
        return Err(e.into());
    }
    if svc.store.find_user(&token.user_id).await?.is_none() {
        return Err(OAuthError::invalid_grant("the user no longer exists").into());
    }
    let granted = Scopes::parse(&token.scope)?;
    let scope = req.effective_scope(&granted)?;
    let audience: Vec<String> = serde_json::from_str(&token.audience).unwrap_or_default();
    let lineage = Lineage { family_id: token.family_id.clone(), auth_time: token.auth_time, family_expires_at: token.family_expires_at, oidc: token.oidc.clone(), with_nonce: false };
    svc.issue_tokens(client, &token.user_id, &scope, &granted, &audience, lineage).await
}
