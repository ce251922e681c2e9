//! `POST /token` (RFC 6749 §3.2): the client is authenticated (§2.3) before the grant is read,
//! then the request's DPoP proof, if any, is verified (RFC 9449 §5), then the service. Every
//! answer carries `Cache-Control: no-store` (RFC 6749 §5.1) and, with server nonces on, a fresh
//! `DPoP-Nonce` (RFC 9449 §8).

use crate::error::JsonError;
use crate::extract::TokenForm;
use crate::response::NoStore;
use crate::{AppState, cors};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use tessera_protocol::cors::{CorsDecision, CorsEndpoint};
use tessera_protocol::grant;
use tessera_protocol::metadata::paths;
use tessera_server::service::dpop::PresentedProof;

/// The request header of RFC 9449 §4.1 and the response header of §8.1.
pub const DPOP: &str = "dpop";
pub const DPOP_NONCE: &str = "dpop-nonce";

pub async fn token(State(svc): State<AppState>, headers: HeaderMap, form: TokenForm) -> Response {
    let origin = cors::origin(&headers);
    let mut decision = cors::decision(&svc, CorsEndpoint::Token, None, origin).await;
    let answer = async {
        let client = svc.authenticate_client(&form.credentials()?).await?;
        // CORS: an origin the client did not register is refused before the grant runs (nothing
        // is consumed).
        decision = cors::decision(&svc, CorsEndpoint::Token, Some(&client.client_id), origin).await;
        if decision == CorsDecision::Refuse {
            return Err(JsonError::from(cors::refused(origin.unwrap_or(""))));
        }
        let req = grant::parse(&form.params)?;
        let proofs = dpop_headers(&headers)?;
        // Most token requests carry no proof: no URL is built for them.
        let sender = match proofs.is_empty() {
            true => None,
            false => {
                let url = format!("{}{}", svc.config.issuer, paths::TOKEN);
                svc.verify_dpop(&PresentedProof { headers: &proofs, method: "POST", url: &url, access_token: None }).await?
            }
        };
        Ok::<_, JsonError>(NoStore(Json(svc.token(&client, req, sender.as_deref()).await?)))
    }
    .await;
    let outcome = match &answer {
        Ok(_) => None,
        Err(JsonError(e)) => Some(e.to_oauth().code.as_str()),
    };
    svc.metrics.token_outcome(form.params.get("grant_type").unwrap_or(""), outcome);
    cors::allow(with_nonce(&svc, answer.into_response()).await, &decision)
}

/// Every `DPoP` header of a request, as text (a value that is not text is a malformed proof).
pub fn dpop_headers(headers: &HeaderMap) -> Result<Vec<&str>, JsonError> {
    headers
        .get_all(DPOP)
        .iter()
        .map(|v| v.to_str().map_err(|_| JsonError::from(tessera_protocol::dpop::invalid_proof("the DPoP header is not text"))))
        .collect()
}

/// RFC 9449 §8.1: with server nonces on, every answer names the nonce to use next.
pub async fn with_nonce(svc: &AppState, mut response: Response) -> Response {
    match svc.dpop_nonce().await {
        Ok(Some(nonce)) => {
            if let Ok(v) = HeaderValue::from_str(&nonce) {
                response.headers_mut().insert(DPOP_NONCE, v);
            }
            response
        }
        Ok(None) => response,
        Err(e) => JsonError(e).into_response(),
    }
}
