//! `POST /token` (RFC 6749 §3.2): the client is authenticated (§2.3) before the grant is read,
//! then the service. Every answer carries `Cache-Control: no-store` (RFC 6749 §5.1).

use crate::AppState;
use crate::error::JsonError;
use crate::extract::TokenForm;
use crate::response::NoStore;
use axum::Json;
use axum::extract::State;
use tessera_protocol::grant;
use tessera_protocol::token::TokenResponse;

pub async fn token(State(svc): State<AppState>, form: TokenForm) -> Result<NoStore<Json<TokenResponse>>, JsonError> {
    let client = svc.authenticate_client(&form.credentials()?).await?;
    let req = grant::parse(&form.params)?;
    Ok(NoStore(Json(svc.token(&client, req, None).await?)))
}
