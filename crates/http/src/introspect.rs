//! `POST /introspect` (RFC 7662 §2) and `POST /revoke` (RFC 7009 §2): the caller is
//! authenticated before the request is read.

use crate::AppState;
use crate::error::JsonError;
use crate::extract::TokenForm;
use crate::response::{JsonText, NoStore};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_protocol::introspect::TokenQuery;

pub async fn introspect(State(svc): State<AppState>, form: TokenForm) -> Result<Response, JsonError> {
    let caller = svc.authenticate_introspection_caller(&form.credentials()?).await?;
    let query = TokenQuery::parse(&form.params)?;
    let body = svc.introspect(&caller, &query).await?;
    Ok(NoStore(JsonText(&body.0)).into_response())
}

pub async fn revoke(State(svc): State<AppState>, form: TokenForm) -> Result<NoStore<StatusCode>, JsonError> {
    let client = svc.authenticate_client(&form.credentials()?).await?;
    let query = TokenQuery::parse(&form.params)?;
    svc.revoke(&client, &query).await?;
    // RFC 7009 §2.2: "The authorization server responds with HTTP status code 200".
    Ok(NoStore(StatusCode::OK))
}
