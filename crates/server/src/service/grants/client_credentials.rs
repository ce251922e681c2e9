//! The client credentials grant, RFC 6749 §4.4: a token for the client itself.
//!
//! The hottest path in most deployments: the client and the scope catalog come from the
//! time-bounded caches, the token is a signed JWT, and nothing is written to the store.

use crate::service::token::Extra;
use crate::service::{ServiceError, Tessera};
use tessera_protocol::OAuthError;
use tessera_protocol::client::ClientPolicy;
use tessera_protocol::grant::client_credentials::ClientCredentialsRequest;
use tessera_protocol::token::TokenResponse;

pub async fn grant(svc: &Tessera, client: &ClientPolicy, req: &ClientCredentialsRequest, sender: Option<&str>) -> Result<TokenResponse, ServiceError> {
    let scope = req.granted_scope(client)?;
    let catalog = svc.cached_catalog().await?;
    if let Some(unknown) = scope.iter().find(|s| !catalog.contains(s)) {
        return Err(OAuthError::invalid_scope(format!("unknown scope {unknown}")).into());
    }
    // RFC 8707 §2.2: the audience is the named resource, or follows from the scopes' API.
    let audience = catalog.audience_for(&scope, req.resource.as_deref())?;
    let access_token =
        svc.sign_access_token(&client.client_id, &client.client_id, &scope, &audience, svc.random.id(), Extra { sender, ..Default::default() })?;
    // RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included."
    Ok(TokenResponse::access_only(access_token, &scope, sender))
}
