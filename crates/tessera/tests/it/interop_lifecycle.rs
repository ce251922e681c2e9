//! Interop for the token lifecycle: the independent `oauth2` crate (v5) runs the client
//! credentials grant (RFC 6749 §4.4), refresh rotation (RFC 6749 §6, RFC 9700 §4.14.2),
//! revocation (RFC 7009), introspection (RFC 7662) and the device flow (RFC 8628) against a
//! running Tessera, over a small reqwest 0.13 adapter (oauth2 is built without its own HTTP
//! client).
//!
//! oauth2 refuses a revocation URL that is not https (RFC 7009 §2: "Clients MUST verify that the
//! URL is an HTTPS URL"); the test server speaks plain HTTP on loopback, so the revocation URL is
//! given as `https://127.0.0.1:PORT/revoke` and the adapter — the transport, not what is tested —
//! sends requests for `https://127.0.0.1` over plain HTTP.
use crate::common::oauth_http::{AdapterError, Reqwest013};
use crate::common::*;
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl, DeviceCodeErrorResponse,
    DeviceCodeErrorResponseType, EndpointSet, IntrospectionUrl, PkceCodeChallenge, RedirectUrl, RefreshToken, RequestTokenError, RevocationErrorResponseType,
    RevocationUrl, Scope, StandardDeviceAuthorizationResponse, StandardRevocableToken, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_server::service::admin::NewClient;
use tokio::sync::Notify;

const CB: &str = "http://127.0.0.1:9/callback";

/// A client with every endpoint this server advertises.
type Client = BasicClient<EndpointSet, EndpointSet, EndpointSet, EndpointSet, EndpointSet>;

/// An oauth2 client for this server, its endpoints taken from the RFC 8414 metadata (the
/// revocation URL with an https scheme, see the module doc). With a secret: HTTP Basic (oauth2's
/// default); without: `client_id` in the body.
async fn oauth2_client(s: &TestServer, client_id: &str, secret: Option<&str>) -> Client {
    let m: serde_json::Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.url)).await.unwrap().json().await.unwrap();
    let at = |k: &str| m[k].as_str().unwrap_or_else(|| panic!("{k} in the metadata")).to_string();
    let c = BasicClient::new(ClientId::new(client_id.to_string()))
        .set_auth_uri(AuthUrl::new(at("authorization_endpoint")).unwrap())
        .set_token_uri(TokenUrl::new(at("token_endpoint")).unwrap())
        .set_device_authorization_url(DeviceAuthorizationUrl::new(at("device_authorization_endpoint")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(at("introspection_endpoint")).unwrap())
        .set_revocation_url(RevocationUrl::new(at("revocation_endpoint").replacen("http://", "https://", 1)).unwrap())
        .set_redirect_uri(RedirectUrl::new(CB.to_string()).unwrap());
    match secret {
        Some(secret) => c.set_client_secret(ClientSecret::new(secret.to_string())),
        None => c.set_auth_type(AuthType::RequestBody),
    }
}

fn scopes_of(t: &impl TokenResponse) -> Vec<String> {
    t.scopes().expect("scope in the token response").iter().map(|s| s.to_string()).collect()
}

/// The server error of a failed oauth2 request (panics on transport/parse failures).
fn server_error<T, TE: oauth2::ErrorResponse + 'static>(r: Result<T, RequestTokenError<AdapterError, TE>>) -> TE {
    match r {
        Ok(_) => panic!("the request should have failed"),
        Err(RequestTokenError::ServerResponse(e)) => e,
        Err(e) => panic!("expected a server error response, got {e:?}"),
    }
}

/// Tokens through the code flow, as oauth2 builds it (S256 challenge, random state).
async fn code_flow(s: &TestServer, client: &Client, http: &Reqwest013, scopes: &[&str]) -> oauth2::basic::BasicTokenResponse {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) =
        client.authorize_url(CsrfToken::new_random).add_scopes(scopes.iter().map(|s| Scope::new((*s).to_string()))).set_pkce_challenge(challenge).url();
    let back = Browser::new(&s.url).authorize_and_allow(url.as_str()).await;
    let q = query(&back);
    assert_eq!(&q["state"], csrf.secret());
    client.exchange_code(AuthorizationCode::new(q["code"].clone())).set_pkce_verifier(verifier).request_async(http).await.expect("code exchange")
}

async fn confidential(s: &TestServer, grant_types: &[&str], scope: &str) -> (String, String) {
    let uses_code = grant_types.is_empty() || grant_types.contains(&"authorization_code");
    let c = s
        .client(NewClient {
            name: "Notes Client".into(),
            redirect_uris: if uses_code { vec![CB.into()] } else { vec![] },
            scope: scope.into(),
            grant_types: grant_types.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        })
        .await;
    (c.client.client_id, c.client_secret.unwrap())
}

/// RFC 6749 §4.4 through oauth2's `exchange_client_credentials`: a Bearer token with the
/// requested scope and no refresh token; RFC 8707 `resource` as an extra parameter; a scope
/// beyond the registration is `invalid_scope`, a wrong secret `invalid_client`.
#[tokio::test]
async fn oauth2_crate_client_credentials() {
    let s = TestServer::start().await;
    let (id, secret) = confidential(&s, &["client_credentials"], "notes.read").await;
    let client = oauth2_client(&s, &id, Some(&secret)).await;
    let http = Reqwest013::new();
    let t = client.exchange_client_credentials().add_scope(Scope::new("notes.read".into())).request_async(&http).await.expect("client_credentials");
    assert_eq!(*t.token_type(), BasicTokenType::Bearer);
    assert_eq!(scopes_of(&t), ["notes.read"]);
    assert!(t.refresh_token().is_none(), "RFC 6749 §4.4.3");
    assert!(t.expires_in().is_some_and(|d| d.as_secs() > 0));
    let claims = verify_access_token(&s.url, t.access_token().secret(), API).await;
    assert_eq!(claims["sub"], id);
    let t = client.exchange_client_credentials().add_extra_param("resource", API).request_async(&http).await.expect("with resource");
    assert_eq!(verify_access_token(&s.url, t.access_token().secret(), API).await["aud"], API);

    let bad = client.exchange_client_credentials().add_scope(Scope::new("notes.write".into())).request_async(&http).await;
    assert_eq!(*server_error(bad).error(), BasicErrorResponseType::InvalidScope);
    let wrong = oauth2_client(&s, &id, Some("not-the-secret")).await;
    let bad = wrong.exchange_client_credentials().request_async(&http).await;
    assert_eq!(*server_error(bad).error(), BasicErrorResponseType::InvalidClient);
}

/// RFC 6749 §6 / RFC 9700 §4.14.2 through `exchange_refresh_token`: each refresh rotates; the
/// rotated token presented again is `invalid_grant` and takes the live one with it.
#[tokio::test]
async fn oauth2_crate_refresh_rotation_and_reuse_detection() {
    let s = TestServer::start().await;
    let (id, secret) = confidential(&s, &[], "notes.read notes.write").await;
    let client = oauth2_client(&s, &id, Some(&secret)).await;
    let http = Reqwest013::new();
    let t0 = code_flow(&s, &client, &http, &["notes.read", "notes.write"]).await;
    let rt0 = t0.refresh_token().expect("a refresh token").clone();
    let t1 = client.exchange_refresh_token(&rt0).request_async(&http).await.expect("refresh");
    let rt1 = t1.refresh_token().expect("a rotated refresh token").clone();
    assert_ne!(rt1.secret(), rt0.secret());
    assert_eq!(scopes_of(&t1), ["notes.read", "notes.write"]);
    let narrowed = client.exchange_refresh_token(&rt1).add_scope(Scope::new("notes.read".into())).request_async(&http).await.expect("narrowing");
    assert_eq!(scopes_of(&narrowed), ["notes.read"]);
    let rt2 = narrowed.refresh_token().unwrap().clone();
    let widened = client.exchange_refresh_token(&rt2).add_scope(Scope::new("notes.delete".into())).request_async(&http).await;
    assert_eq!(*server_error(widened).error(), BasicErrorResponseType::InvalidScope);
    // Reuse of rt0.
    let reuse = client.exchange_refresh_token(&rt0).request_async(&http).await;
    assert_eq!(*server_error(reuse).error(), BasicErrorResponseType::InvalidGrant);
    let live = client.exchange_refresh_token(&rt2).request_async(&http).await;
    assert_eq!(*server_error(live).error(), BasicErrorResponseType::InvalidGrant, "the family is revoked");
    assert_eq!(s.svc.store.list_audit_events("refresh_reuse").await.unwrap().len(), 1);
}

/// RFC 7662 through oauth2's `introspect`: a live access token is active with the standard
/// claims; a garbage token is `active: false` with nothing else. An API introspects with its
/// identifier as client id (oauth2 form-urlencodes it for HTTP Basic, RFC 6749 §2.3.1).
#[tokio::test]
async fn oauth2_crate_introspection() {
    let s = TestServer::start().await;
    let api_secret = "notes-api-secret";
    s.svc.store.update_api_secret(API, &tessera_server::secret::hash(api_secret)).await.unwrap();
    let (id, secret) = confidential(&s, &[], "notes.read notes.write").await;
    let client = oauth2_client(&s, &id, Some(&secret)).await;
    let http = Reqwest013::new();
    let t = code_flow(&s, &client, &http, &["notes.read"]).await;
    let claims = verify_access_token(&s.url, t.access_token().secret(), API).await;

    let info = client.introspect(t.access_token()).request_async(&http).await.expect("introspection");
    assert!(info.active());
    assert_eq!(info.scopes().unwrap().iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["notes.read"]);
    assert_eq!(info.client_id().unwrap().as_str(), id);
    assert_eq!(info.token_type(), Some(&BasicTokenType::Bearer));
    assert_eq!(info.sub(), claims["sub"].as_str());
    assert_eq!(info.iss(), Some(s.url.as_str()));
    assert_eq!(info.aud(), Some(&vec![API.to_string()]));
    assert_eq!(info.jti(), claims["jti"].as_str());
    assert_eq!(info.exp().unwrap().timestamp(), claims["exp"].as_i64().unwrap());
    assert_eq!(info.iat().unwrap().timestamp(), claims["iat"].as_i64().unwrap());

    let refresh = client
        .introspect(&AccessToken::new(t.refresh_token().unwrap().secret().clone()))
        .set_token_type_hint("refresh_token")
        .request_async(&http)
        .await
        .unwrap();
    assert!(refresh.active(), "a live refresh token");

    let garbage = client.introspect(&AccessToken::new("garbage".into())).request_async(&http).await.expect("introspection");
    assert!(!garbage.active());
    assert!(garbage.scopes().is_none() && garbage.client_id().is_none() && garbage.sub().is_none() && garbage.exp().is_none());

    let api = oauth2_client(&s, API, Some(api_secret)).await;
    let info = api.introspect(t.access_token()).request_async(&http).await.expect("API introspection");
    assert!(info.active(), "the Notes API sees a token meant for it");
    let wrong = oauth2_client(&s, API, Some("wrong")).await;
    let e = server_error(wrong.introspect(t.access_token()).request_async(&http).await);
    assert_eq!(*e.error(), BasicErrorResponseType::InvalidClient);
}

/// RFC 7009 through oauth2's `revoke_token` (which sends `token_type_hint`): refresh and access
/// tokens are revoked and then inactive; unknown tokens are fine; another client's token is
/// refused with `unauthorized_client`.
#[tokio::test]
async fn oauth2_crate_revocation() {
    let s = TestServer::start().await;
    let (id, secret) = confidential(&s, &[], "notes.read").await;
    let client = oauth2_client(&s, &id, Some(&secret)).await;
    let http = Reqwest013::new();
    let t = code_flow(&s, &client, &http, &["notes.read"]).await;

    // Another client's attempt is refused and changes nothing.
    let (other, other_secret) = confidential(&s, &[], "notes.read").await;
    let other = oauth2_client(&s, &other, Some(&other_secret)).await;
    let e = server_error(other.revoke_token(StandardRevocableToken::AccessToken(t.access_token().clone())).unwrap().request_async(&http).await);
    assert_eq!(*e.error(), RevocationErrorResponseType::Basic(BasicErrorResponseType::UnauthorizedClient));
    assert!(client.introspect(t.access_token()).request_async(&http).await.unwrap().active());

    client.revoke_token(StandardRevocableToken::AccessToken(t.access_token().clone())).unwrap().request_async(&http).await.expect("revoke the access token");
    assert!(!client.introspect(t.access_token()).request_async(&http).await.unwrap().active(), "revoked by jti");

    let rt = t.refresh_token().unwrap().clone();
    let refreshed = client.exchange_refresh_token(&rt).request_async(&http).await.expect("the refresh token still works");
    let rt1 = refreshed.refresh_token().unwrap().clone();
    client.revoke_token(StandardRevocableToken::RefreshToken(rt1.clone())).unwrap().request_async(&http).await.expect("revoke the refresh token");
    assert!(!client.introspect(refreshed.access_token()).request_async(&http).await.unwrap().active(), "the family's access tokens go too");
    let dead = client.exchange_refresh_token(&rt1).request_async(&http).await;
    assert_eq!(*server_error(dead).error(), BasicErrorResponseType::InvalidGrant);

    // RFC 7009 §2.2: unknown and already-revoked tokens are not errors.
    client.revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new("unknown".into()))).unwrap().request_async(&http).await.expect("unknown token");
    client.revoke_token(StandardRevocableToken::RefreshToken(rt1)).unwrap().request_async(&http).await.expect("already revoked");
}

/// The user's side of RFC 8628 §3.3 in a scripted browser: type the code, sign in, consent.
async fn answer_device(s: &TestServer, user_code: &str, decision: &str) {
    let b = Browser::new(&s.url);
    let html = b.get("/device").await.text().await.unwrap();
    let res = b.post_form("/device", &[("csrf", &hidden(&html, "csrf").unwrap()), ("user_code", user_code)]).await;
    assert_eq!(res.status(), 303, "the code is accepted");
    let html = b.get(&location(&res)).await.text().await.unwrap();
    let res = b.sign_in(&html, USER, PASSWORD).await;
    assert_eq!(res.status(), 303, "sign-in");
    let html = b.get(&location(&res)).await.text().await.unwrap();
    assert!(html.contains(&format!("id=\"device-code\">{user_code}<")), "the consent page shows the device's code");
    let res =
        b.post_form("/consent", &[("csrf", &hidden(&html, "csrf").unwrap()), ("request", &hidden(&html, "request").unwrap()), ("decision", decision)]).await;
    assert_eq!(res.status(), 200);
}

/// A public device client (device grant and refresh), and an oauth2 client for it.
async fn device_client(s: &TestServer) -> (String, Client) {
    let id = s.device_client().await;
    let client = oauth2_client(s, &id, None).await;
    (id, client)
}

/// oauth2's sleep between polls, for a server on a manual clock: it records the requested
/// interval, moves the server's clock by `advance(interval)` instead of sleeping, and on the
/// poll numbered `wait_before` waits until the test says the user has answered.
#[derive(Clone)]
struct Sleeper {
    clock: Arc<tessera_server::ManualClock>,
    slept: Arc<Mutex<Vec<Duration>>>,
    polled: Arc<Notify>,
    answered: Arc<Notify>,
    advance: fn(Duration) -> i64,
    wait_before: usize,
}

impl Sleeper {
    fn new(s: &TestServer, advance: fn(Duration) -> i64, wait_before: usize) -> Self {
        Self { clock: s.clock.clone(), slept: Arc::default(), polled: Arc::default(), answered: Arc::default(), advance, wait_before }
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + use<> {
        let me = self.clone();
        async move {
            let n = {
                let mut slept = me.slept.lock().unwrap();
                slept.push(d);
                slept.len()
            };
            me.clock.advance((me.advance)(d));
            if n == me.wait_before {
                me.polled.notify_one();
                tokio::time::timeout(Duration::from_secs(30), me.answered.notified()).await.expect("the user answered within 30 s");
            }
        }
    }

    fn slept(&self) -> Vec<Duration> {
        self.slept.lock().unwrap().clone()
    }
}

async fn start(client: &Client, http: &Reqwest013, scopes: &[&str]) -> StandardDeviceAuthorizationResponse {
    client.exchange_device_code().add_scopes(scopes.iter().map(|s| Scope::new((*s).to_string()))).request_async(http).await.expect("device authorization")
}

/// RFC 8628 §3.1–3.5 through `exchange_device_code` and `exchange_device_access_token`: the
/// device authorization response parses; oauth2 polls once (authorization_pending), then — while
/// it waits its 5 s interval — the user approves in the browser, and the next poll returns tokens.
#[tokio::test]
async fn oauth2_crate_device_flow_approved() {
    let s = TestServer::start().await;
    let (id, client) = device_client(&s).await;
    let http = Reqwest013::new();
    let details = start(&client, &http, &["notes.read", "notes.write"]).await;
    assert_eq!(details.verification_uri().as_str(), format!("{}/device", s.url));
    let complete = details.verification_uri_complete().expect("verification_uri_complete").secret().clone();
    assert_eq!(query(&complete)["user_code"], *details.user_code().secret());
    assert_eq!(details.interval(), Duration::from_secs(5));
    assert_eq!(details.expires_in(), Duration::from_secs(600));

    let sleeper = Sleeper::new(&s, |d| d.as_secs() as i64, 1);
    let poll = {
        let sleeper = sleeper.clone();
        client.exchange_device_access_token(&details).request_async(&http, move |d| sleeper.sleep(d), Some(Duration::from_secs(60)))
    };
    let user = async {
        sleeper.polled.notified().await;
        answer_device(&s, details.user_code().secret(), "allow").await;
        sleeper.answered.notify_one();
    };
    let (tokens, ()) = tokio::join!(poll, user);
    let tokens = tokens.expect("device access token");
    assert_eq!(sleeper.slept(), [Duration::from_secs(5)], "one authorization_pending, one 5 s interval");
    assert_eq!(*tokens.token_type(), BasicTokenType::Bearer);
    assert_eq!(scopes_of(&tokens), ["notes.read", "notes.write"]);
    let claims = verify_access_token(&s.url, tokens.access_token().secret(), API).await;
    assert_eq!(claims["client_id"], id);
    let refreshed = client.exchange_refresh_token(tokens.refresh_token().expect("a refresh token")).request_async(&http).await.expect("public client refresh");
    assert!(refreshed.refresh_token().is_some());
}

/// RFC 8628 §3.5 slow_down as oauth2 sees it: when a poll comes sooner than the server's
/// interval (here: the clock moves 1 s while oauth2 waits 5 s), the answer is slow_down and
/// oauth2 raises its interval to 10 s; then the flow completes.
#[tokio::test]
async fn oauth2_crate_device_flow_slow_down() {
    let s = TestServer::start().await;
    let (_, client) = device_client(&s).await;
    let http = Reqwest013::new();
    let details = start(&client, &http, &["notes.read"]).await;
    // The first wait moves the server's clock only 1 s; later ones the full interval.
    let sleeper = Sleeper::new(&s, |d| if d == Duration::from_secs(5) { 1 } else { d.as_secs() as i64 }, 2);
    let poll = {
        let sleeper = sleeper.clone();
        client.exchange_device_access_token(&details).request_async(&http, move |d| sleeper.sleep(d), Some(Duration::from_secs(60)))
    };
    let user = async {
        sleeper.polled.notified().await;
        answer_device(&s, details.user_code().secret(), "allow").await;
        sleeper.answered.notify_one();
    };
    let (tokens, ()) = tokio::join!(poll, user);
    tokens.expect("device access token after slow_down");
    assert_eq!(sleeper.slept(), [Duration::from_secs(5), Duration::from_secs(10)], "pending, then slow_down (+5 s)");
}

/// RFC 8628 §3.5 access_denied and expired_token reach oauth2 as its typed errors.
#[tokio::test]
async fn oauth2_crate_device_flow_denied_and_expired() {
    let s = TestServer::start().await;
    let (_, client) = device_client(&s).await;
    let http = Reqwest013::new();

    let details = start(&client, &http, &["notes.read"]).await;
    let sleeper = Sleeper::new(&s, |d| d.as_secs() as i64, 1);
    let poll = {
        let sleeper = sleeper.clone();
        client.exchange_device_access_token(&details).request_async(&http, move |d| sleeper.sleep(d), Some(Duration::from_secs(60)))
    };
    let user = async {
        sleeper.polled.notified().await;
        answer_device(&s, details.user_code().secret(), "deny").await;
        sleeper.answered.notify_one();
    };
    let (denied, ()) = tokio::join!(poll, user);
    let e: DeviceCodeErrorResponse = server_error(denied);
    assert_eq!(*e.error(), DeviceCodeErrorResponseType::AccessDenied);

    // Nobody answers; the server's clock passes the code's 600 s while oauth2 waits.
    let details = start(&client, &http, &["notes.read"]).await;
    let sleeper = Sleeper::new(&s, |_| 600, 0);
    let expired = client.exchange_device_access_token(&details).request_async(&http, move |d| sleeper.sleep(d), Some(Duration::from_secs(60))).await;
    let e: DeviceCodeErrorResponse = server_error(expired);
    assert_eq!(*e.error(), DeviceCodeErrorResponseType::ExpiredToken);
}
