//! Interop: the independent `oauth2` crate (v5) runs the authorization code flow with PKCE
//! (RFC 6749 §4.1, RFC 7636) and the refresh grant (RFC 6749 §6) against a running Tessera,
//! over a small reqwest 0.13 adapter (oauth2 is built without its own HTTP client).
use crate::common::oauth_http::{AdapterError, Reqwest013};
use crate::common::*;
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge, RedirectUrl, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};

const CB: &str = "http://127.0.0.1:9/callback";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// An oauth2 client for this server: authorization and token endpoints, the redirect URI, and
/// (for a confidential client) the secret with HTTP Basic (oauth2's default `AuthType`).
fn oauth2_client(s: &TestServer, client_id: &str, secret: Option<&str>) -> Client {
    let c = BasicClient::new(ClientId::new(client_id.to_string()))
        .set_auth_uri(AuthUrl::new(format!("{}/authorize", s.url)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/token", s.url)).unwrap())
        .set_redirect_uri(RedirectUrl::new(CB.to_string()).unwrap());
    match secret {
        Some(secret) => c.set_client_secret(ClientSecret::new(secret.to_string())),
        None => c.set_auth_type(AuthType::RequestBody),
    }
}

/// Run the front channel as oauth2 builds it: authorize URL with S256 challenge and a random
/// state, sign in and consent in the scripted browser, check `state` and RFC 9207 `iss` on the
/// way back. Returns the code and the PKCE verifier.
async fn authorize(s: &TestServer, client: &Client, browser: &Browser, scopes: &[&str]) -> (AuthorizationCode, oauth2::PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) =
        client.authorize_url(CsrfToken::new_random).add_scopes(scopes.iter().map(|s| Scope::new((*s).to_string()))).set_pkce_challenge(challenge).url();
    let back = browser.authorize_and_allow(url.as_str()).await;
    assert!(back.starts_with(CB), "{back}");
    let q = query(&back);
    assert_eq!(&q["state"], csrf.secret(), "state round-trips (RFC 6749 §4.1.2)");
    assert_eq!(q["iss"], s.url, "RFC 9207 iss");
    assert!(!q.contains_key("error"), "{back}");
    (AuthorizationCode::new(q["code"].clone()), verifier)
}

fn scopes_of(t: &impl TokenResponse) -> Vec<String> {
    t.scopes().expect("scope in the token response").iter().map(|s| s.to_string()).collect()
}

/// The server error code of a failed oauth2 request (panics on transport/parse failures).
fn server_error<T>(r: Result<T, RequestTokenError<AdapterError, oauth2::basic::BasicErrorResponse>>) -> BasicErrorResponseType {
    match r {
        Ok(_) => panic!("the request should have failed"),
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        Err(e) => panic!("expected a server error response, got {e:?}"),
    }
}

/// A confidential client (client_secret_basic, oauth2's form-urlencoded Basic credentials) with
/// PKCE: code → tokens (Bearer, scopes, refresh token, a JWT that verifies against the JWKS),
/// then the refresh grant rotates the refresh token.
#[tokio::test]
async fn oauth2_crate_confidential_client_code_flow_with_pkce_and_refresh() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let client = oauth2_client(&s, &id, Some(&secret));
    let http = Reqwest013::new();
    let (code, verifier) = authorize(&s, &client, &Browser::new(&s.url), &["notes.read", "notes.write"]).await;

    let tokens = client.exchange_code(code).set_pkce_verifier(verifier).request_async(&http).await.expect("code exchange");
    assert_eq!(*tokens.token_type(), BasicTokenType::Bearer);
    assert_eq!(scopes_of(&tokens), ["notes.read", "notes.write"]);
    assert!(tokens.expires_in().is_some_and(|d| d.as_secs() > 0));
    let rt0 = tokens.refresh_token().expect("a refresh token").secret().clone();
    let claims = verify_access_token(&s.url, tokens.access_token().secret(), API).await;
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["scope"], "notes.read notes.write");

    let refreshed = client.exchange_refresh_token(tokens.refresh_token().unwrap()).request_async(&http).await.expect("refresh");
    assert_eq!(*refreshed.token_type(), BasicTokenType::Bearer);
    assert_eq!(scopes_of(&refreshed), ["notes.read", "notes.write"]);
    let rt1 = refreshed.refresh_token().expect("a rotated refresh token").secret().clone();
    assert_ne!(rt1, rt0, "RFC 9700 §4.14.2 rotation");
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    verify_access_token(&s.url, refreshed.access_token().secret(), API).await;

    // Narrowing on refresh through oauth2's add_scope.
    let narrowed = client
        .exchange_refresh_token(refreshed.refresh_token().unwrap())
        .add_scope(Scope::new("notes.read".into()))
        .request_async(&http)
        .await
        .expect("narrowing refresh");
    assert_eq!(scopes_of(&narrowed), ["notes.read"]);
}

/// A public client (no secret; client_id in the body, AuthType::RequestBody) with PKCE.
#[tokio::test]
async fn oauth2_crate_public_client_code_flow_with_pkce() {
    let s = TestServer::start().await;
    let id = s.public_client(CB).await;
    let client = oauth2_client(&s, &id, None);
    let http = Reqwest013::new();
    let (code, verifier) = authorize(&s, &client, &Browser::new(&s.url), &["notes.read"]).await;

    let tokens = client.exchange_code(code).set_pkce_verifier(verifier).request_async(&http).await.expect("code exchange");
    assert_eq!(*tokens.token_type(), BasicTokenType::Bearer);
    assert_eq!(scopes_of(&tokens), ["notes.read"]);
    let claims = verify_access_token(&s.url, tokens.access_token().secret(), API).await;
    assert_eq!(claims["client_id"], id);

    // Public clients are registered with the refresh_token grant; the refresh carries only client_id.
    let rt = tokens.refresh_token().expect("a refresh token");
    let refreshed = client.exchange_refresh_token(rt).request_async(&http).await.expect("public client refresh");
    assert_ne!(refreshed.refresh_token().expect("a rotated refresh token").secret(), rt.secret(), "rotation");
}

/// Error responses (RFC 6749 §5.2) parse into oauth2's typed errors: a replayed code is
/// `invalid_grant`, a wrong secret is `invalid_client`.
#[tokio::test]
async fn oauth2_crate_sees_typed_error_responses() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let client = oauth2_client(&s, &id, Some(&secret));
    let http = Reqwest013::new();

    let (code, verifier) = authorize(&s, &client, &Browser::new(&s.url), &["notes.read"]).await;
    let verifier_again = oauth2::PkceCodeVerifier::new(verifier.secret().clone());
    client.exchange_code(code.clone()).set_pkce_verifier(verifier).request_async(&http).await.expect("first exchange");
    let replay = client.exchange_code(code).set_pkce_verifier(verifier_again).request_async(&http).await;
    assert_eq!(server_error(replay), BasicErrorResponseType::InvalidGrant);

    // Wrong secret, on a fresh and otherwise valid code.
    let wrong = oauth2_client(&s, &id, Some("not-the-secret"));
    let (code, verifier) = authorize(&s, &wrong, &Browser::new(&s.url), &["notes.read"]).await;
    let bad = wrong.exchange_code(code).set_pkce_verifier(verifier).request_async(&http).await;
    assert_eq!(server_error(bad), BasicErrorResponseType::InvalidClient);
}
