//! The authorization code grant, RFC 6749 §4.1.3–4.1.4.
//!
//! RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization server
//! MUST deny the request and SHOULD revoke (when possible) all tokens previously issued based on
//! that authorization code." The code is consumed atomically, in the same transaction that
//! stores the grant's first refresh token and after every read the tokens need (so a database
//! lost mid-request leaves the code usable for the client's retry); a replay by the client the
//! code was issued to revokes the grant's refresh-token family and is recorded as a security
//! event (another client's is only refused). A code whose user was deleted meanwhile is refused.

use crate::secret;
use crate::service::token::Lineage;
use crate::service::{ServiceError, Tessera};
use tessera_protocol::OAuthError;
use tessera_protocol::client::ClientPolicy;
use tessera_protocol::grant::authorization_code::{CodeBinding, CodeDecision, CodeRequest, decide};
use tessera_protocol::pkce::CodeChallenge;
use tessera_protocol::token::TokenResponse;
use tessera_storage::{CodeRecord, Taken};

pub async fn redeem(svc: &Tessera, client: &ClientPolicy, req: &CodeRequest, sender: Option<&str>) -> Result<TokenResponse, ServiceError> {
    let now = svc.now();
    if req.code.len() > 128 {
        return Err(OAuthError::invalid_grant("unknown authorization code").into());
    }
    let hash = secret::hash(&req.code);
    let Some(code) = svc.store.find_code(&hash).await? else {
        return Err(OAuthError::invalid_grant("unknown authorization code").into());
    };
    let binding = CodeBinding {
        client_id: code.client_id.clone(),
        redirect_uri: code.redirect_uri.clone(),
        redirect_uri_given: code.redirect_uri_given,
        code_challenge: code.code_challenge.clone().map(CodeChallenge::from_stored),
        expires_at: code.expires_at,
    };
    // What the presentation means is the protocol core's decision; the store carries it out.
    match decide(req, &binding, code.used_at.is_some(), &client.client_id, now) {
        CodeDecision::Redeem => {}
        CodeDecision::Replay => return Err(replayed(svc, client, &code, now).await?),
        CodeDecision::Refuse { error, consume, replay_if_used } => {
            if consume {
                if let Taken::AlreadyUsed(c) = svc.store.take_code(&hash, now).await? {
                    if replay_if_used {
                        return Err(replayed(svc, client, &c, now).await?);
                    }
                }
            }
            return Err(error.into());
        }
    }
    // RFC 9449 §10.1: a code requested with `dpop_jkt` is redeemed only with a proof of that key
    // (refused without consuming it: the client's retry with the right proof works).
    tessera_protocol::dpop::check_binding(code.dpop_jkt.as_deref(), sender, "authorization code")?;
    // RFC 9700 §4.14.2: a user deleted since the code was issued gets no tokens.
    if svc.active_user(&code.user_id).await?.is_none() {
        return Err(OAuthError::invalid_grant("the user no longer exists").into());
    }
    let lineage = Lineage {
        family_id: code.grant_id.clone(),
        auth_time: code.auth_time,
        family_expires_at: now + svc.config.refresh_token_lifetime,
        oidc: code.oidc.clone(),
        with_nonce: true,
        sender,
    };
    let issued = svc.prepare_tokens(client, &code.user_id, &code.scope, &code.scope, &code.audience, lineage).await?;
    match svc.store.take_code_issuing(&hash, now, issued.refresh_record()).await? {
        Taken::Taken(_) => Ok(issued.response()),
        Taken::AlreadyUsed(c) => Err(replayed(svc, client, &c, now).await?),
        Taken::NotFound => Err(OAuthError::invalid_grant("unknown authorization code").into()),
    }
}

/// RFC 6749 §4.1.2: a used code presented again by its own client is denied, and the tokens
/// issued from it are revoked.
async fn replayed(svc: &Tessera, client: &ClientPolicy, c: &CodeRecord, now: i64) -> Result<ServiceError, ServiceError> {
    let revoked = svc.store.revoke_family(&c.grant_id, now).await?;
    svc.audit(
        "code_replay",
        Some(&c.user_id),
        Some(&client.client_id),
        &format!("client {} presented a used code; grant {} revoked ({revoked} refresh tokens)", client.client_id, c.grant_id),
    )
    .await?;
    tracing::warn!(client_id = %client.client_id, grant = %c.grant_id, "authorization code replayed; grant revoked");
    Ok(OAuthError::invalid_grant("the authorization code was already used").into())
}
