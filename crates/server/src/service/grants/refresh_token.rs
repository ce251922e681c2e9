//! The refresh token grant, RFC 6749 §6, with rotation and reuse detection (RFC 9700 §4.14.2):
//! every use consumes the token atomically and returns a new one in the same family; presenting
//! a consumed token revokes the whole family and is recorded as a security event.
//!
//! Everything the new tokens need is read before the presented token is consumed; consuming it
//! and storing its successor is one transaction ([`tessera_storage::RefreshTokenStore::rotate_refresh_token`]),
//! so a database lost mid-request leaves the client's token usable for its retry.

use crate::secret;
use crate::service::token::Lineage;
use crate::service::{ServiceError, Tessera};
use tessera_protocol::OAuthError;
use tessera_protocol::client::ClientPolicy;
use tessera_protocol::grant::refresh_token::{NotTaken, RefreshDecision, RefreshRequest, StoredRefresh, decide, not_taken};
use tessera_protocol::token::TokenResponse;
use tessera_storage::{RefreshTokenRecord, Taken};

pub async fn refresh(svc: &Tessera, client: &ClientPolicy, req: &RefreshRequest, sender: Option<&str>) -> Result<TokenResponse, ServiceError> {
    let now = svc.now();
    if req.refresh_token.len() > 128 {
        return Err(OAuthError::invalid_grant("unknown refresh token").into());
    }
    let hash = secret::hash(&req.refresh_token);
    let grace = svc.config.refresh_token_grace;
    let Some(t) = svc.store.find_refresh_token(&hash).await? else {
        return Err(OAuthError::invalid_grant("unknown refresh token").into());
    };
    let stored = StoredRefresh { client_id: &t.client_id, granted: &t.scope, live: t.used_at.is_none() && t.revoked_at.is_none() };
    // What the presentation means is the protocol core's decision; the store carries it out.
    match decide(req, &stored, &client.client_id) {
        RefreshDecision::Refuse(e) => Err(e.into()),
        RefreshDecision::SettleThenRefuse(e) => match svc.store.take_refresh_token(&hash, now, grace).await? {
            Taken::Taken(_) => Err(e.into()),
            not_taken => Err(refused(svc, client, not_taken, now).await?),
        },
        RefreshDecision::EndLeakedFamily(e) => match svc.store.take_refresh_token(&hash, now, grace).await? {
            Taken::Taken(token) => {
                svc.store.revoke_family(&token.family_id, now).await?;
                Err(e.into())
            }
            not_taken => Err(refused(svc, client, not_taken, now).await?),
        },
        RefreshDecision::Rotate { scope } => {
            // RFC 9449 §5: a bound refresh token is used only with a proof of its key.
            tessera_protocol::dpop::check_binding(t.dpop_jkt.as_deref(), sender, "refresh token")?;
            if svc.active_user(&t.user_id).await?.is_none() {
                return Err(OAuthError::invalid_grant("the user no longer exists").into());
            }
            let lineage = Lineage {
                family_id: t.family_id.clone(),
                auth_time: t.auth_time,
                family_expires_at: t.family_expires_at,
                oidc: t.oidc.clone(),
                with_nonce: false,
                sender,
            };
            let issued = svc.prepare_tokens(client, &t.user_id, &scope, &t.scope, &t.audience, lineage).await?;
            match svc.store.rotate_refresh_token(&hash, now, grace, issued.refresh_record()).await? {
                Taken::Taken(_) => Ok(issued.response()),
                not_taken => Err(refused(svc, client, not_taken, now).await?),
            }
        }
    }
}

/// The answer for a token that was not taken. RFC 9700 §4.14.2: presenting a rotated (used)
/// token revokes its whole family, recorded as a security event.
async fn refused(svc: &Tessera, client: &ClientPolicy, outcome: Taken<RefreshTokenRecord>, now: i64) -> Result<ServiceError, ServiceError> {
    let (found, family) = match &outcome {
        Taken::AlreadyUsed(t) => (NotTaken::Spent { rotated: t.used_at.is_some(), revoked: t.revoked_at.is_some() }, Some(&t.family_id)),
        Taken::NotFound | Taken::Taken(_) => (NotTaken::Unknown, None),
    };
    let (error, revoke_family) = not_taken(found);
    if let (true, Some(family)) = (revoke_family, family) {
        svc.store.revoke_family(family, now).await?;
        svc.metrics.refresh_reuse();
        let user = match &outcome {
            Taken::AlreadyUsed(t) => Some(t.user_id.as_str()),
            _ => None,
        };
        svc.audit(
            "refresh_reuse",
            user,
            Some(&client.client_id),
            &format!("client {} reused a rotated refresh token; family {family} revoked", client.client_id),
        )
        .await?;
        tracing::warn!(client_id = %client.client_id, family = %family, "refresh token reuse; family revoked");
    }
    Ok(error.into())
}
