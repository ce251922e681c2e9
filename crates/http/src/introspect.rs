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

pub async fn revoke(State(svc): State<AppState>, headers: axum::http::HeaderMap, form: TokenForm) -> axum::response::Response {
    use axum::response::IntoResponse;
    use tessera_protocol::cors::{CorsDecision, CorsEndpoint};
    let origin = crate::cors::origin(&headers);
    let mut decision = crate::cors::decision(&svc, CorsEndpoint::Revocation, None, origin).await;
    let answer = async {
        let client = svc.authenticate_client(&form.credentials()?).await?;
        decision = crate::cors::decision(&svc, CorsEndpoint::Revocation, Some(&client.client_id), origin).await;
        if decision == CorsDecision::Refuse {
            return Err(JsonError::from(crate::cors::refused(origin.unwrap_or(""))));
        }
        let query = TokenQuery::parse(&form.params)?;
        svc.revoke(&client, &query).await?;
        // RFC 7009 §2.2: "The authorization server responds with HTTP status code 200".
        Ok::<_, JsonError>(NoStore(StatusCode::OK))
    }
    .await;
    crate::cors::allow(answer.into_response(), &decision)
}
