//! The device authorization grant at the token endpoint, RFC 8628 §3.4–3.5: the device polls
//! until the user has approved (tokens, once), denied, or the code expired; polling faster than
//! the interval is answered `slow_down` and raises the interval by 5 seconds.

use crate::secret;
use crate::service::token::Lineage;
use crate::service::{ServiceError, Tessera};
use tessera_protocol::client::ClientPolicy;
use tessera_protocol::grant::device_code::{DeviceCodeRequest, DeviceStatus, SLOW_DOWN_STEP_SECS, check_poll};
use tessera_protocol::token::TokenResponse;
use tessera_protocol::{ErrorCode, OAuthError};
use tessera_storage::{DeviceCodeStatus, Taken};

/// The protocol's view of a stored status.
pub fn status_of(s: DeviceCodeStatus) -> DeviceStatus {
    match s {
        DeviceCodeStatus::Pending => DeviceStatus::Pending,
        DeviceCodeStatus::Approved => DeviceStatus::Approved,
        DeviceCodeStatus::Denied => DeviceStatus::Denied,
        DeviceCodeStatus::Consumed => DeviceStatus::Consumed,
    }
}

pub async fn poll(svc: &Tessera, client: &ClientPolicy, req: &DeviceCodeRequest, sender: Option<&str>) -> Result<TokenResponse, ServiceError> {
    let now = svc.now();
    if req.device_code.len() > 128 {
        return Err(OAuthError::invalid_grant("unknown device code").into());
    }
    let hash = secret::hash(&req.device_code);
    let Some(d) = svc.store.find_device_code(&hash).await? else {
        return Err(OAuthError::invalid_grant("unknown device code").into());
    };
    if d.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the device code was issued to another client").into());
    }
    if let Err(e) = check_poll(status_of(d.status), d.expires_at, d.last_polled_at, d.interval, now) {
        match e.code {
            ErrorCode::SlowDown => svc.store.update_device_poll(&hash, now, d.interval + SLOW_DOWN_STEP_SECS).await?,
            ErrorCode::AuthorizationPending => svc.store.update_device_poll(&hash, now, d.interval).await?,
            _ => {}
        }
        return Err(e.into());
    }
    // The device code is consumed in the same transaction that stores the grant's first refresh
    // token, after every read the tokens need: a database lost mid-request leaves it usable.
    let Some(user_id) = d.user_id.clone() else {
        return Err(OAuthError::invalid_grant("the device code has no user").into());
    };
    // RFC 9700 §4.14.2: a user deleted since approving gets no tokens.
    if svc.active_user(&user_id).await?.is_none() {
        return Err(OAuthError::invalid_grant("the user no longer exists").into());
    }
    let lineage = Lineage {
        family_id: svc.random.id(),
        auth_time: d.auth_time.unwrap_or(now),
        family_expires_at: now + svc.config.refresh_token_lifetime,
        oidc: d.oidc.clone(),
        with_nonce: false,
        sender,
    };
    let issued = svc.prepare_tokens(client, &user_id, &d.scope, &d.scope, &d.audience, lineage).await?;
    match svc.store.take_device_code_issuing(&hash, now, issued.refresh_record()).await? {
        Taken::Taken(_) => Ok(issued.response()),
        Taken::AlreadyUsed(_) | Taken::NotFound => Err(OAuthError::invalid_grant("the device code was already used").into()),
    }
}
