//! The OAuth side: discovery (RFC 8414), the authorization request (RFC 6749 §4.1.1 + PKCE,
//! RFC 7636 §4), and the token requests (RFC 6749 §4.1.3 and §6) with `client_secret_basic`
//! (RFC 6749 §2.3.1).

use crate::NotesClient;
use crate::session::{Pending, Tokens};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The authorization server's endpoints, from its metadata.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// RFC 9207 §3: the server sends `iss` in authorization responses.
    pub iss_parameter_supported: bool,
}

/// RFC 8414 §3: fetch the metadata; §3.3: its `issuer` must be the issuer asked for.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, String> {
    #[derive(Deserialize)]
    struct Meta {
        issuer: String,
        authorization_endpoint: String,
        token_endpoint: String,
        #[serde(default)]
        authorization_response_iss_parameter_supported: bool,
    }
    let u = url::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?}: {e}"))?;
    let mut meta_url = u.clone();
    meta_url.set_path(&format!("/.well-known/oauth-authorization-server{}", u.path().trim_end_matches('/')));
    let res = http.get(meta_url.as_str()).send().await.map_err(|e| format!("{meta_url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("{meta_url}: status {}", res.status()));
    }
    let m: Meta = res.json().await.map_err(|e| format!("{meta_url}: {e}"))?;
    if m.issuer != issuer {
        return Err(format!("{meta_url} names issuer {:?}, expected {issuer:?}", m.issuer));
    }
    Ok(Endpoints {
        authorization_endpoint: m.authorization_endpoint,
        token_endpoint: m.token_endpoint,
        iss_parameter_supported: m.authorization_response_iss_parameter_supported,
    })
}

/// A new pending request for `scope`: fresh `state` and PKCE verifier (RFC 7636 §4.1: 43+
/// characters of high entropy).
pub fn new_pending(scope: &str) -> Pending {
    Pending { state: crate::session::random_token(), verifier: crate::session::random_token(), scope: scope.to_string(), created: std::time::Instant::now() }
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 6749 §4.1.1 with RFC 7636 §4.3.
pub fn authorization_url(app: &NotesClient, p: &Pending) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", &app.config.client_id)
        .append_pair("redirect_uri", &app.config.redirect_uri)
        .append_pair("scope", &p.scope)
        .append_pair("state", &p.state)
        .append_pair("code_challenge", &challenge(&p.verifier))
        .append_pair("code_challenge_method", "S256");
    if let Some(r) = &app.config.resource {
        q.append_pair("resource", r);
    }
    let sep = if app.endpoints.authorization_endpoint.contains('?') { '&' } else { '?' };
    format!("{}{sep}{}", app.endpoints.authorization_endpoint, q.finish())
}

/// A failed token request.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The server refused (RFC 6749 §5.2 error code): the grant is gone.
    #[error("the authorization server refused: {0}")]
    Rejected(String),
    /// The server could not be reached or answered nonsense.
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

/// RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding.
fn basic(app: &NotesClient) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(&app.config.client_id), enc(&app.config.client_secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

async fn token_request(app: &NotesClient, form: &[(&str, &str)], requested_scope: &str) -> Result<Tokens, TokenError> {
    let now = app.now();
    let res = app
        .http
        .post(&app.endpoints.token_endpoint)
        .header(reqwest::header::AUTHORIZATION, basic(app))
        .form(form)
        .send()
        .await
        .map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let status = res.status();
    let body = res.bytes().await.map_err(|e| TokenError::Unavailable(e.to_string()))?;
    if status.is_client_error() {
        let code = serde_json::from_slice::<ErrorResponse>(&body).map(|e| e.error).unwrap_or_else(|_| status.to_string());
        return Err(TokenError::Rejected(code));
    }
    if !status.is_success() {
        return Err(TokenError::Unavailable(format!("status {status}")));
    }
    let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| TokenError::Unavailable(format!("token response: {e}")))?;
    if !t.token_type.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Unavailable(format!("unexpected token_type {}", t.token_type)));
    }
    Ok(Tokens {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        // RFC 6749 §5.1: expires_in is RECOMMENDED; without it assume a short life.
        expires_at: now + t.expires_in.unwrap_or(300),
        // RFC 6749 §5.1: scope may be omitted when it equals the requested scope.
        scope: t.scope.unwrap_or_else(|| requested_scope.to_string()),
    })
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.5.
pub async fn exchange_code(app: &NotesClient, code: &str, p: &Pending) -> Result<Tokens, TokenError> {
    app.stats.code_exchanges.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let form =
        [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", app.config.redirect_uri.as_str()), ("code_verifier", p.verifier.as_str())];
    token_request(app, &form, &p.scope).await
}

/// RFC 6749 §6. The caller stores the new refresh token in place of the old one (rotation).
pub async fn refresh(app: &NotesClient, current: &Tokens) -> Result<Tokens, TokenError> {
    let Some(rt) = current.refresh_token.as_deref() else {
        return Err(TokenError::Rejected("no refresh token".into()));
    };
    let mut t = token_request(app, &[("grant_type", "refresh_token"), ("refresh_token", rt)], &current.scope).await?;
    // RFC 6749 §6: "The authorization server MAY issue a new refresh token"; keep the old one
    // only if it did not.
    if t.refresh_token.is_none() {
        t.refresh_token = current.refresh_token.clone();
    }
    Ok(t)
}
