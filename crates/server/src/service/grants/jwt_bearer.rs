//! The JWT bearer grant at the token endpoint, RFC 7523 §2.1: an assertion signed with one of
//! the client's registered keys, for a user who consented to the client, buys one access token.
//! The rules are `tessera_protocol::grant::jwt_bearer`'s; this module fetches what they need,
//! then consumes the assertion's `jti` (its one-time value, §3 item 7) last.

use crate::secret;
use crate::service::token::Extra;
use crate::service::{ServiceError, Tessera};
use tessera_protocol::client::ClientPolicy;
use tessera_protocol::grant::jwt_bearer::{Expect, JwtBearerRequest, check_claims, granted_scope};
use tessera_protocol::metadata::paths;
use tessera_protocol::token::TokenResponse;
use tessera_protocol::{ErrorCode, OAuthError};

pub async fn grant(svc: &Tessera, client: &ClientPolicy, req: &JwtBearerRequest, sender: Option<&str>) -> Result<TokenResponse, ServiceError> {
    let now = svc.now();
    if client.is_public() {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "public clients may not use the JWT bearer grant").into());
    }
    let Some(record) = svc.cached_client(&client.client_id).await? else {
        return Err(OAuthError::invalid_grant("unknown client").into());
    };
    let Some(jwks) = record.jwks.as_ref() else {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client has no registered keys to sign assertions with").into());
    };
    // §3 item 9: signed by the client's key (never `none`, never a MAC).
    let claims =
        tessera_dpop::jws::verify_with_jwks(&req.assertion, jwks, tessera_dpop::SUPPORTED_ALGS).map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
    let token_endpoint = format!("{}{}", svc.config.issuer, paths::TOKEN);
    let assertion = check_claims(&claims, &Expect { client_id: &client.client_id, audiences: [&svc.config.issuer, &token_endpoint], now })?;
    // §3 item 2: the subject is a user of this server who granted the client access.
    if svc.active_user(&assertion.subject).await?.is_none() {
        return Err(OAuthError::invalid_grant("the assertion's sub is not a user of this server").into());
    }
    let consented = svc.store.find_consent(&assertion.subject, &client.client_id).await?.unwrap_or_default();
    let scope = granted_scope(req.scope.as_ref(), &consented, &client.scopes)?;
    let catalog = svc.cached_catalog().await?;
    let audience = catalog.audience_for(&scope, req.resource.as_deref())?;
    let roles = svc.user_roles(&assertion.subject, &audience).await?;
    let access_token =
        svc.sign_access_token(&client.client_id, &assertion.subject, &scope, &audience, svc.random.id(), Extra { sender, roles, ..Default::default() })?;
    // The consume comes last, after every read: a failure above leaves the assertion usable.
    let id = secret::hash(&format!("jwt-bearer\0{}\0{}", client.client_id, assertion.jti));
    if !svc.store.take_assertion(&id, assertion.expires_at, now).await? {
        svc.audit(
            "assertion_replay",
            Some(&assertion.subject),
            Some(&client.client_id),
            &format!("client {} presented an assertion (jti) already used", client.client_id),
        )
        .await?;
        return Err(OAuthError::invalid_grant("the assertion was already used").into());
    }
    Ok(TokenResponse::access_only(access_token, &scope, sender))
}
