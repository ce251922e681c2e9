//! The token lifecycle over real HTTP against a real SQLite store: the client credentials grant
//! (RFC 6749 §4.4, RFC 8707), refresh rotation with reuse detection, lifetimes and the grace
//! window (RFC 6749 §6, RFC 9700 §4.14), revocation (RFC 7009), introspection (RFC 7662), the
//! device authorization grant (RFC 8628) and the metadata that advertises them (RFC 8414). One
//! test per rule, each named after the RFC section it checks; expiry by moving the clock.
use crate::common::*;
use serde_json::{Value, json};
use tessera_server::service::admin::{self, NewClient};

const CB: &str = "http://127.0.0.1:9/callback";
/// A second resource server, for audience selection (RFC 8707).
const CALENDAR: &str = "https://calendar.example";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn introspect(s: &TestServer, caller: (&str, &str), token: &str) -> Value {
    let (status, body, headers) = post(&s.url, "/introspect", Some(caller), &[("token", token)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store", "RFC 7662 §2.2 responses are not cached");
    body
}

async fn revoke(s: &TestServer, caller: (&str, &str), token: &str) -> u16 {
    let (status, body, headers) = post(&s.url, "/revoke", Some(caller), &[("token", token)]).await;
    assert_eq!(headers["cache-control"], "no-store", "{body}");
    status
}

fn inactive() -> Value {
    json!({ "active": false })
}

fn error_of(status: u16, body: &Value) -> (u16, &str) {
    (status, body["error"].as_str().unwrap_or("<none>"))
}

/// A confidential client registered for client_credentials only.
async fn service_client(s: &TestServer, scope: &str) -> (String, String) {
    let c = s.client(NewClient { name: "Batch Job".into(), scope: scope.into(), grant_types: vec!["client_credentials".into()], ..Default::default() }).await;
    (c.client.client_id, c.client_secret.unwrap())
}

/// An API identifier as an HTTP Basic user name: RFC 6749 §2.3.1 form-urlencodes it (the raw
/// identifier's ':' would end the user name, RFC 7617 §2).
fn basic_user(identifier: &str) -> String {
    form_urlencoded::byte_serialize(identifier.as_bytes()).collect()
}

/// A second API, Calendar, with calendar.read.
async fn add_calendar_api(s: &TestServer) {
    let now = tessera_server::Clock::now(&*s.clock);
    admin::create_api(&*s.svc.store, CALENDAR, "Calendar", vec![admin::parse_api_scope("calendar.read=Read your calendar").unwrap()], now).await.unwrap();
}

/// Tokens for a confidential client through the authorization code flow (RFC 6749 §4.1).
async fn code_flow_tokens(s: &TestServer, id: &str, secret: &str, scope: &str) -> Value {
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(id, CB, scope, "st", None)).await;
    let (status, body, _) =
        token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn refresh(s: &TestServer, id: &str, secret: &str, rt: &str) -> (u16, Value) {
    let (status, body, headers) = token_basic(&s.url, id, secret, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(headers["cache-control"], "no-store");
    (status, body)
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// RFC 8628 §3.1: a public client asks for a device code.
async fn start_device(s: &TestServer, client_id: &str, scope: &str) -> Value {
    let (status, body, headers) = post(&s.url, "/device_authorization", None, &[("client_id", client_id), ("scope", scope)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store", "RFC 8628 §3.2 carries secrets");
    body
}

/// RFC 8628 §3.4: one poll of the token endpoint by a public client.
async fn poll(s: &TestServer, client_id: &str, device_code: &str) -> (u16, Value) {
    let (status, body, headers) = token_form(&s.url, &[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", client_id)]).await;
    assert_eq!(headers["cache-control"], "no-store");
    (status, body)
}

/// Open the verification page (optionally with `?user_code=`), returning its HTML.
async fn device_page(b: &Browser, prefill: Option<&str>) -> String {
    let url = match prefill {
        Some(c) => format!("/device?user_code={c}"),
        None => "/device".to_string(),
    };
    let res = b.get(&url).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.text().await.unwrap()
}

/// Type `typed` into the verification page's form (found in `html`) and submit it.
async fn enter_code(b: &Browser, html: &str, typed: &str) -> reqwest::Response {
    let csrf = hidden(html, "csrf").expect("csrf field on /device");
    b.post_form("/device", &[("csrf", &csrf), ("user_code", typed)]).await
}

/// From the redirect after a correct code: sign in if asked, and return the consent page HTML.
async fn reach_consent(b: &Browser, after_code: reqwest::Response) -> String {
    assert_eq!(after_code.status(), 303, "a valid code leads on to sign-in or consent");
    let mut next = location(&after_code);
    if next.starts_with("/login") {
        let html = b.get(&next).await.text().await.unwrap();
        let res = b.sign_in(&html, USER, PASSWORD).await;
        assert_eq!(res.status(), 303, "sign-in");
        next = location(&res);
    }
    assert!(next.starts_with("/consent"), "{next}");
    let res = b.get(&next).await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// Answer the consent page; returns the final message page's title.
async fn decide_device(b: &Browser, consent_html: &str, decision: &str) -> String {
    let csrf = hidden(consent_html, "csrf").unwrap();
    let request = hidden(consent_html, "request").unwrap();
    let res = b.post_form("/consent", &[("csrf", &csrf), ("request", &request), ("decision", decision)]).await;
    assert_eq!(res.status(), 200, "a device answer ends on a message page, not a redirect");
    assert!(res.headers().get("location").is_none());
    let html = res.text().await.unwrap();
    title_of(&html)
}

/// The text of `<h1 id="title">`.
fn title_of(html: &str) -> String {
    let start = html.find("<h1 id=\"title\">").expect("h1#title") + "<h1 id=\"title\">".len();
    html[start..start + html[start..].find("</h1>").unwrap()].to_string()
}

/// The whole user side of RFC 8628 §3.3 in a fresh browser: type the code, sign in, consent.
async fn approve(s: &TestServer, user_code: &str, decision: &str) -> String {
    let b = Browser::new(&s.url);
    let html = device_page(&b, None).await;
    let consent = reach_consent(&b, enter_code(&b, &html, user_code).await).await;
    decide_device(&b, &consent, decision).await
}

// ---------------------------------------------------------------------------------------------
// Client credentials, RFC 6749 §4.4
// ---------------------------------------------------------------------------------------------

/// RFC 6749 §4.4.2–4.4.3: a confidential client gets a token for itself: Bearer, no-store, the
/// requested scope, no refresh token ("A refresh token SHOULD NOT be included"); the JWT
/// (RFC 9068) names the client as `sub` and the API of the scopes as `aud`.
#[tokio::test]
async fn rfc6749_4_4_3_client_credentials_token_without_refresh_token() {
    let s = TestServer::start().await;
    let (id, secret) = service_client(&s, "notes.read notes.write").await;
    let (status, body, headers) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials"), ("scope", "notes.read")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes.read");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3: no refresh token: {body}");
    let claims = verify_access_token(&s.url, str_of(&body, "access_token"), API).await;
    assert_eq!(claims["sub"], id, "RFC 9068 §2.2: sub is the client when no user is involved");
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["scope"], "notes.read");
    // client_secret_post works the same for a client registered with it.
    let c = s
        .client(NewClient {
            name: "Post Job".into(),
            scope: "notes.read".into(),
            grant_types: vec!["client_credentials".into()],
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..Default::default()
        })
        .await;
    let (pid, psecret) = (c.client.client_id, c.client_secret.unwrap());
    let (status, body, _) = token_form(&s.url, &[("grant_type", "client_credentials"), ("client_id", &pid), ("client_secret", &psecret)]).await;
    assert_eq!(status, 200, "{body}");
}

/// RFC 6749 §3.3: an omitted scope is the client's registered scopes (the "pre-defined default").
#[tokio::test]
async fn rfc6749_3_3_client_credentials_default_scope_is_the_registration() {
    let s = TestServer::start().await;
    let (id, secret) = service_client(&s, "notes.read notes.write").await;
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes.read notes.write");
    let claims = verify_access_token(&s.url, str_of(&body, "access_token"), API).await;
    assert_eq!(claims["scope"], "notes.read notes.write");
}

/// RFC 6749 §4.4.2 / §5.2: a scope beyond the client's registration, or unknown, is
/// `invalid_scope`.
#[tokio::test]
async fn rfc6749_4_4_2_client_credentials_scope_must_be_registered() {
    let s = TestServer::start().await;
    let (id, secret) = service_client(&s, "notes.read").await;
    for scope in ["notes.write", "notes.read notes.delete", "admin", "notes.read admin"] {
        let (status, body, headers) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials"), ("scope", scope)]).await;
        assert_eq!(error_of(status, &body), (400, "invalid_scope"), "{scope}: {body}");
        assert_eq!(headers["cache-control"], "no-store");
    }
}

/// RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
/// clients." A public client, even one registered with the grant, is `unauthorized_client`; a
/// confidential client not registered for it likewise (§5.2).
#[tokio::test]
async fn rfc6749_4_4_client_credentials_confidential_clients_only() {
    let s = TestServer::start().await;
    let public = s
        .client(NewClient {
            name: "Public".into(),
            scope: "notes.read".into(),
            grant_types: vec!["client_credentials".into()],
            public: true,
            ..Default::default()
        })
        .await;
    let (status, body, _) = token_form(&s.url, &[("grant_type", "client_credentials"), ("client_id", &public.client.client_id)]).await;
    assert_eq!(error_of(status, &body), (400, "unauthorized_client"), "{body}");
    let (id, secret) = s.confidential_client(CB).await;
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(error_of(status, &body), (400, "unauthorized_client"), "not registered for client_credentials: {body}");
}

/// RFC 6749 §4.4.2 with §3.2.1: the client must authenticate: a wrong secret or none at all is
/// 401 `invalid_client` with `WWW-Authenticate`.
#[tokio::test]
async fn rfc6749_4_4_2_client_credentials_requires_client_authentication() {
    let s = TestServer::start().await;
    let (id, _) = service_client(&s, "notes.read").await;
    let (status, body, headers) = token_basic(&s.url, &id, "not-the-secret", &[("grant_type", "client_credentials")]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"));
    assert!(headers.contains_key("www-authenticate"));
    let (status, body, _) = token_form(&s.url, &[("grant_type", "client_credentials"), ("client_id", &id)]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"), "{body}");
    let (status, body, _) = token_form(&s.url, &[("grant_type", "client_credentials")]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"), "{body}");
}

/// RFC 8707 §2: the audience follows from the scopes' one API, or is chosen with `resource`, which
/// must name the API of every requested scope (`invalid_target` otherwise, and for scopes of
/// several APIs: one audience per token).
#[tokio::test]
async fn rfc8707_2_client_credentials_audience_from_resource_or_scopes() {
    let s = TestServer::start().await;
    add_calendar_api(&s).await;
    let (id, secret) = service_client(&s, "notes.read calendar.read").await;
    let cc = |form: Vec<(&'static str, &'static str)>| {
        let (id, secret, url) = (id.clone(), secret.clone(), s.url.clone());
        async move {
            let mut f = vec![("grant_type", "client_credentials")];
            f.extend(form);
            token_basic(&url, &id, &secret, &f).await
        }
    };
    // From the scopes: one API.
    let (status, body, _) = cc(vec![("scope", "calendar.read")]).await;
    assert_eq!(status, 200, "{body}");
    let claims = verify_access_token(&s.url, str_of(&body, "access_token"), CALENDAR).await;
    assert_eq!(claims["aud"], CALENDAR);
    // From the scopes: two APIs is refused (one audience per token, RFC 9700 §2.3).
    let (status, body, _) = cc(vec![("scope", "notes.read calendar.read")]).await;
    assert_eq!(error_of(status, &body), (400, "invalid_target"), "{body}");
    // Chosen with resource.
    let (status, body, _) = cc(vec![("scope", "notes.read"), ("resource", API)]).await;
    assert_eq!(status, 200, "{body}");
    let claims = verify_access_token(&s.url, str_of(&body, "access_token"), API).await;
    assert_eq!(claims["aud"], API);
    // A resource that does not define the scopes, or that does not exist.
    for (scope, resource) in [("notes.read", CALENDAR), ("notes.read calendar.read", API), ("notes.read", "https://unknown.example")] {
        let (status, body, _) = cc(vec![("scope", scope), ("resource", resource)]).await;
        assert_eq!(error_of(status, &body), (400, "invalid_target"), "{scope} @ {resource}: {body}");
    }
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens, RFC 6749 §6 and RFC 9700 §4.14
// ---------------------------------------------------------------------------------------------

/// RFC 6749 §6 error paths: a missing parameter is `invalid_request`; an unknown token is
/// `invalid_grant`; a widened scope is `invalid_scope`; a wrong secret is `invalid_client` —
/// and none of these costs the client its token. Another client presenting it gets
/// `invalid_grant`, and the token, having leaked, is revoked with its family.
#[tokio::test]
async fn rfc6749_6_refresh_error_paths() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let (other, other_secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let rt = str_of(&t0, "refresh_token");
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token")]).await;
    assert_eq!(error_of(status, &body), (400, "invalid_request"));
    let (status, body) = refresh(&s, &id, &secret, "").await;
    assert_eq!(error_of(status, &body), (400, "invalid_request"), "an empty refresh_token is a missing one: {body}");
    let (status, body) = refresh(&s, &id, &secret, "no-such-refresh-token").await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"));
    let (status, body) = refresh(&s, &id, &secret, &"x".repeat(4000)).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "an oversized token is just unknown");
    let (status, body, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", rt), ("scope", "notes.read notes.write")]).await;
    assert_eq!(error_of(status, &body), (400, "invalid_scope"), "RFC 6749 §6: never widened");
    let (status, body, _) = token_basic(&s.url, &id, "wrong", &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"));
    let (status, t1) = refresh(&s, &id, &secret, rt).await;
    assert_eq!(status, 200, "the failed requests did not spend the token: {t1}");
    let rt1 = str_of(&t1, "refresh_token");
    let (status, body, _) = token_basic(&s.url, &other, &other_secret, &[("grant_type", "refresh_token"), ("refresh_token", rt1)]).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "bound to its client");
    let (status, body) = refresh(&s, &id, &secret, rt1).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "a leaked token is revoked: {body}");
    assert!(s.svc.store.list_audit_events("refresh_reuse").await.unwrap().is_empty(), "none of this was reuse of a rotated token");
}

/// RFC 9700 §4.14.2: each use returns a new refresh token; the old one is dead; presenting it
/// again revokes the family — including the access tokens (their `jti` names the family), which
/// introspection then reports inactive — and is recorded as a security event.
#[tokio::test]
async fn rfc9700_4_14_2_reuse_revokes_family_including_access_tokens() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read notes.write").await;
    let rt0 = str_of(&t0, "refresh_token").to_string();
    let (status, t1) = refresh(&s, &id, &secret, &rt0).await;
    assert_eq!(status, 200, "{t1}");
    let rt1 = str_of(&t1, "refresh_token").to_string();
    assert_ne!(rt1, rt0);
    let at1 = str_of(&t1, "access_token").to_string();
    let claims = verify_access_token(&s.url, &at1, API).await;
    let jti = claims["jti"].as_str().unwrap();
    assert!(jti.contains('.'), "a grant's access token jti is FAMILY.RANDOM: {jti}");
    assert_eq!(introspect(&s, (&id, &secret), &at1).await["active"], true);
    assert_eq!(introspect(&s, (&id, &secret), &rt1).await["active"], true);
    assert_eq!(introspect(&s, (&id, &secret), &rt0).await, inactive(), "a rotated token is inactive");
    // Reuse.
    let (status, body) = refresh(&s, &id, &secret, &rt0).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"));
    let events = s.svc.store.list_audit_events("refresh_reuse").await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let (status, body) = refresh(&s, &id, &secret, &rt1).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "the live token of the family is revoked");
    for token in [&at1, str_of(&t0, "access_token"), &rt1] {
        assert_eq!(introspect(&s, (&id, &secret), token).await, inactive(), "the family's tokens are inactive");
    }
}

/// RFC 9700 §4.14.2 under concurrency: 50 parallel redemptions of one refresh token — exactly
/// one wins (rotation is one atomic step in the store); the others are reuse, so the family is
/// revoked, the winner's new refresh token included, and the reuse is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc9700_4_14_2_concurrent_redemptions_exactly_one_wins() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let rt = str_of(&t0, "refresh_token").to_string();
    let http = reqwest::Client::new();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (http, url, id, secret, rt, start) = (http.clone(), s.url.clone(), id.clone(), secret.clone(), rt.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let res = http
                    .post(format!("{url}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => winners.push(body),
            _ => assert_eq!(error_of(status, &body), (400, "invalid_grant"), "{body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins: {winners:?}");
    let won = &winners[0];
    let (status, body) = refresh(&s, &id, &secret, str_of(won, "refresh_token")).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "the winner's new refresh token died with the family");
    assert_eq!(introspect(&s, (&id, &secret), str_of(won, "access_token")).await, inactive());
    assert!(!s.svc.store.list_audit_events("refresh_reuse").await.unwrap().is_empty(), "the reuse is recorded");
}

/// RFC 9700 §4.14.2: the grace window is off by default: an immediate retry with the token just
/// used is reuse.
#[tokio::test]
async fn rfc9700_4_14_2_no_grace_by_default() {
    let s = TestServer::start().await;
    assert_eq!(s.svc.config.refresh_token_grace, 0);
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let rt0 = str_of(&t0, "refresh_token");
    assert_eq!(refresh(&s, &id, &secret, rt0).await.0, 200);
    let (status, body) = refresh(&s, &id, &secret, rt0).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"));
    assert_eq!(s.svc.store.list_audit_events("refresh_reuse").await.unwrap().len(), 1);
}

/// RFC 9700 §4.14.2 with a grace window (here 5 s): a client that lost the response may retry
/// with the token it just used and succeed without tripping reuse detection; after the window
/// the same retry is reuse and revokes the family.
#[tokio::test]
async fn rfc9700_4_14_2_grace_window_for_lost_responses() {
    let s = TestServer::start_with(|c| c.refresh_token_grace = 5).await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let rt0 = str_of(&t0, "refresh_token").to_string();
    let (status, lost) = refresh(&s, &id, &secret, &rt0).await;
    assert_eq!(status, 200, "{lost}");
    // The response was "lost"; the client retries 3 s later with rt0.
    s.clock.advance(3);
    let (status, retry) = refresh(&s, &id, &secret, &rt0).await;
    assert_eq!(status, 200, "a retry within the grace window succeeds: {retry}");
    let rt1 = str_of(&retry, "refresh_token").to_string();
    assert_ne!(rt1, rt0);
    assert!(s.svc.store.list_audit_events("refresh_reuse").await.unwrap().is_empty(), "no reuse event within grace");
    // The retry's token works (rotation continues).
    let (status, t2) = refresh(&s, &id, &secret, &rt1).await;
    assert_eq!(status, 200, "{t2}");
    let rt2 = str_of(&t2, "refresh_token").to_string();
    // Past the window (first use of rt0 was 3 + 3 = 6 s ago): reuse; the family goes.
    s.clock.advance(3);
    let (status, body) = refresh(&s, &id, &secret, &rt0).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "outside the grace window: {body}");
    assert_eq!(s.svc.store.list_audit_events("refresh_reuse").await.unwrap().len(), 1);
    let (status, body) = refresh(&s, &id, &secret, &rt2).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "the family is revoked");
}

/// RFC 9700 §4.14.2 ("refresh tokens ... expire if not used for a certain time"): the idle
/// lifetime; each rotation starts a new idle period. An idle-expired token is not reuse.
#[tokio::test]
async fn rfc9700_4_14_2_refresh_idle_lifetime() {
    let s = TestServer::start_with(|c| c.refresh_token_idle_lifetime = 100).await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    s.clock.advance(99);
    let (status, t1) = refresh(&s, &id, &secret, str_of(&t0, "refresh_token")).await;
    assert_eq!(status, 200, "used within its idle lifetime: {t1}");
    s.clock.advance(99);
    let (status, t2) = refresh(&s, &id, &secret, str_of(&t1, "refresh_token")).await;
    assert_eq!(status, 200, "rotation restarted the idle period: {t2}");
    let rt2 = str_of(&t2, "refresh_token");
    s.clock.advance(101);
    assert_eq!(introspect(&s, (&id, &secret), rt2).await, inactive(), "idle-expired");
    let (status, body) = refresh(&s, &id, &secret, rt2).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"));
    assert!(s.svc.store.list_audit_events("refresh_reuse").await.unwrap().is_empty(), "expiry is not reuse");
}

/// RFC 9700 §4.14.2: an absolute lifetime bounds the whole family; rotation never extends it.
#[tokio::test]
async fn rfc9700_4_14_2_refresh_absolute_lifetime() {
    let s = TestServer::start_with(|c| {
        c.refresh_token_lifetime = 1000;
        c.refresh_token_idle_lifetime = 600;
    })
    .await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let start = tessera_server::Clock::now(&*s.clock);
    s.clock.advance(500);
    let (status, t1) = refresh(&s, &id, &secret, str_of(&t0, "refresh_token")).await;
    assert_eq!(status, 200, "{t1}");
    let rt1 = str_of(&t1, "refresh_token");
    let info = introspect(&s, (&id, &secret), rt1).await;
    assert_eq!(info["active"], true);
    assert!(info["exp"].as_i64().unwrap() <= start + 1000, "the idle period is cut at the family's end: {info}");
    s.clock.advance(499);
    let (status, t2) = refresh(&s, &id, &secret, rt1).await;
    assert_eq!(status, 200, "{t2}");
    s.clock.advance(1);
    let (status, body) = refresh(&s, &id, &secret, str_of(&t2, "refresh_token")).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "the family reached its absolute lifetime");
}

// ---------------------------------------------------------------------------------------------
// Revocation, RFC 7009
// ---------------------------------------------------------------------------------------------

/// RFC 7009 §2.1–2.2: revoking an access token (by `jti`) answers 200 with no-store, and
/// introspection (RFC 7662) then reports it inactive; other tokens of the grant live on.
#[tokio::test]
async fn rfc7009_2_1_revoked_access_token_is_inactive_at_introspection() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let at = str_of(&t0, "access_token");
    assert_eq!(introspect(&s, (&id, &secret), at).await["active"], true);
    assert_eq!(revoke(&s, (&id, &secret), at).await, 200);
    assert_eq!(introspect(&s, (&id, &secret), at).await, inactive());
    // The refresh token is untouched and its next access token is live.
    let (status, t1) = refresh(&s, &id, &secret, str_of(&t0, "refresh_token")).await;
    assert_eq!(status, 200, "{t1}");
    assert_eq!(introspect(&s, (&id, &secret), str_of(&t1, "access_token")).await["active"], true);
    // With a hint too, and a client_secret_post client revoking with the body.
    let c = s
        .client(NewClient {
            name: "Post".into(),
            redirect_uris: vec![CB.into()],
            scope: "notes.read".into(),
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..Default::default()
        })
        .await;
    let (pid, psecret) = (c.client.client_id, c.client_secret.unwrap());
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&pid, CB, "notes.read", "st", None)).await;
    let (_, t, _) = token_form(
        &s.url,
        &[("grant_type", "authorization_code"), ("client_id", &pid), ("client_secret", &psecret), ("code", &query(&back)["code"]), ("redirect_uri", CB)],
    )
    .await;
    let (status, _, _) = post(
        &s.url,
        "/revoke",
        None,
        &[("token", str_of(&t, "access_token")), ("token_type_hint", "access_token"), ("client_id", &pid), ("client_secret", &psecret)],
    )
    .await;
    assert_eq!(status, 200);
    let (status, info, _) = post(&s.url, "/introspect", None, &[("token", str_of(&t, "access_token")), ("client_id", &pid), ("client_secret", &psecret)]).await;
    assert_eq!((status, info), (200, inactive()));
}

/// RFC 7662 §2.2: a token whose payload was changed but which carries the signature of a token
/// already introspected (and cached) is not ours: `active: false`, never the cached answer.
#[tokio::test]
async fn rfc7662_2_2_a_forged_payload_with_a_known_signature_is_inactive() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let at = str_of(&t0, "access_token");
    assert_eq!(introspect(&s, (&id, &secret), at).await["active"], true, "the signature is now cached");
    let parts: Vec<&str> = at.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = "notes.read notes.write".into();
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    assert_eq!(introspect(&s, (&id, &secret), &forged).await, inactive());
    assert_eq!(introspect(&s, (&id, &secret), at).await["scope"], "notes.read", "the real token is still known as it was");
}

/// RFC 7009 §2.1: "If the token passed to the request is a refresh token and the authorization
/// server supports the revocation of access tokens, then the authorization server SHOULD also
/// invalidate all access tokens based on the same authorization grant." The whole family goes.
#[tokio::test]
async fn rfc7009_2_1_revoking_a_refresh_token_revokes_its_family() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let (_, t1) = refresh(&s, &id, &secret, str_of(&t0, "refresh_token")).await;
    let rt1 = str_of(&t1, "refresh_token");
    assert_eq!(revoke(&s, (&id, &secret), rt1).await, 200);
    let (status, body) = refresh(&s, &id, &secret, rt1).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"));
    for token in [rt1, str_of(&t1, "access_token"), str_of(&t0, "access_token")] {
        assert_eq!(introspect(&s, (&id, &secret), token).await, inactive());
    }
    assert!(s.svc.store.list_audit_events("refresh_reuse").await.unwrap().is_empty(), "a revocation is not reuse");
}

/// RFC 7009 §2.2: "invalid tokens do not cause an error response": unknown, garbage and
/// already-revoked tokens answer 200. A missing `token` is `invalid_request` (§2.1 REQUIRED).
#[tokio::test]
async fn rfc7009_2_2_unknown_and_already_revoked_tokens_answer_200() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    for token in ["garbage", "eyJhbGciOiJub25lIn0.e30.", &"z".repeat(4000)] {
        assert_eq!(revoke(&s, (&id, &secret), token).await, 200, "{}", &token[..token.len().min(20)]);
    }
    let rt = str_of(&t0, "refresh_token");
    let at = str_of(&t0, "access_token");
    for _ in 0..2 {
        assert_eq!(revoke(&s, (&id, &secret), rt).await, 200);
        assert_eq!(revoke(&s, (&id, &secret), at).await, 200);
    }
    // An expired access token too.
    s.clock.advance(3600);
    assert_eq!(revoke(&s, (&id, &secret), at).await, 200);
    let (status, body, headers) = post(&s.url, "/revoke", Some((&id, &secret)), &[("token_type_hint", "access_token")]).await;
    assert_eq!(error_of(status, &body), (400, "invalid_request"));
    assert_eq!(headers["cache-control"], "no-store");
}

/// RFC 7009 §2.1: "The client also includes its authentication credentials"; a wrong secret or
/// none is 401 `invalid_client`, and the token survives.
#[tokio::test]
async fn rfc7009_2_1_revocation_requires_client_authentication() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let rt = str_of(&t0, "refresh_token");
    let (status, body, headers) = post(&s.url, "/revoke", Some((&id, "wrong")), &[("token", rt)]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"));
    assert!(headers.contains_key("www-authenticate"));
    let (status, body, _) = post(&s.url, "/revoke", None, &[("token", rt)]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"));
    let (status, body, _) = post(&s.url, "/revoke", None, &[("token", rt), ("client_id", &id)]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"), "a confidential client must use its secret");
    assert_eq!(refresh(&s, &id, &secret, rt).await.0, 200, "the token was not revoked");
}

/// RFC 7009 §2.1: the server "verifies whether the token was issued to the client making the
/// revocation request. If this validation fails, the request is refused". Another client's
/// token: 400 `unauthorized_client`, and it keeps working.
#[tokio::test]
async fn rfc7009_2_1_a_client_revokes_only_its_own_tokens() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let (other, other_secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    for token in [str_of(&t0, "refresh_token"), str_of(&t0, "access_token")] {
        let (status, body, _) = post(&s.url, "/revoke", Some((&other, &other_secret)), &[("token", token)]).await;
        assert_eq!(error_of(status, &body), (400, "unauthorized_client"), "{body}");
    }
    assert_eq!(introspect(&s, (&id, &secret), str_of(&t0, "access_token")).await["active"], true);
    assert_eq!(refresh(&s, &id, &secret, str_of(&t0, "refresh_token")).await.0, 200);
}

/// RFC 7009 §2.1 for public clients (RFC 8414 advertises `none` for revocation): a public
/// client revokes its own refresh token with its client_id.
#[tokio::test]
async fn rfc7009_2_1_public_client_revokes_its_refresh_token() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let d = start_device(&s, &id, "notes.read").await;
    approve(&s, str_of(&d, "user_code"), "allow").await;
    let (status, t) = poll(&s, &id, str_of(&d, "device_code")).await;
    assert_eq!(status, 200, "{t}");
    let rt = str_of(&t, "refresh_token");
    let (status, _, headers) = post(&s.url, "/revoke", None, &[("token", rt), ("client_id", &id)]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    let (status, body, _) = token_form(&s.url, &[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", &id)]).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"));
}

// ---------------------------------------------------------------------------------------------
// Introspection, RFC 7662
// ---------------------------------------------------------------------------------------------

/// RFC 7662 §2.2: a live access token is `active: true` with the standard claims; a live refresh
/// token too. The answer is never cached (no-store).
#[tokio::test]
async fn rfc7662_2_2_active_tokens_with_standard_claims() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read notes.write").await;
    let at = str_of(&t0, "access_token");
    let claims = verify_access_token(&s.url, at, API).await;
    let info = introspect(&s, (&id, &secret), at).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "notes.read notes.write");
    assert_eq!(info["client_id"], id);
    assert_eq!(info["token_type"], "Bearer");
    for k in ["sub", "aud", "iss", "exp", "iat", "jti"] {
        assert_eq!(info[k], claims[k], "{k} as in the JWT");
    }
    // The hint orders the search; a wrong hint still finds the token (RFC 7662 §2.1).
    let (_, info, _) = post(&s.url, "/introspect", Some((&id, &secret)), &[("token", at), ("token_type_hint", "refresh_token")]).await;
    assert_eq!(info["active"], true);
    let rt = str_of(&t0, "refresh_token");
    let (_, info, headers) = post(&s.url, "/introspect", Some((&id, &secret)), &[("token", rt), ("token_type_hint", "refresh_token")]).await;
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], id);
    assert_eq!(info["scope"], "notes.read notes.write");
    assert_eq!(info["sub"], claims["sub"]);
    assert!(info["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    // client_secret_post callers.
    let (status, info, _) = post(&s.url, "/introspect", None, &[("token", at), ("client_id", &id), ("client_secret", &secret)]).await;
    assert_eq!(status, 401, "the client is registered for client_secret_basic: {info}");
}

/// RFC 7662 §2.2: "If the introspection call is properly authorized but the token is not active,
/// does not exist on this server, or the protected resource is not allowed to introspect this
/// particular token, then the authorization server MUST return ... {"active": false}" — and
/// nothing else: expired, revoked, another client's, another server's and garbage tokens.
#[tokio::test]
async fn rfc7662_2_2_inactive_tokens_reveal_nothing() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let (other, other_secret) = s.confidential_client(CB).await;
    let mine = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let theirs = code_flow_tokens(&s, &other, &other_secret, "notes.read").await;
    // Foreign: another client's access and refresh tokens.
    assert_eq!(introspect(&s, (&id, &secret), str_of(&theirs, "access_token")).await, inactive());
    assert_eq!(introspect(&s, (&id, &secret), str_of(&theirs, "refresh_token")).await, inactive());
    // Garbage, a JWT with alg none, a JWT signed by another server's key, oversized.
    let other_server = TestServer::start().await;
    let (oid, osecret) = service_client(&other_server, "notes.read").await;
    let (_, foreign, _) = token_basic(&other_server.url, &oid, &osecret, &[("grant_type", "client_credentials")]).await;
    let none_jwt = "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.";
    for token in ["garbage", none_jwt, str_of(&foreign, "access_token"), &"a".repeat(4000)] {
        assert_eq!(introspect(&s, (&id, &secret), token).await, inactive(), "{}", &token[..token.len().min(20)]);
    }
    // Revoked.
    let at = str_of(&mine, "access_token");
    assert_eq!(revoke(&s, (&id, &secret), at).await, 200);
    assert_eq!(introspect(&s, (&id, &secret), at).await, inactive());
    // Expired (access tokens live 600 s).
    let (_, fresh) = refresh(&s, &id, &secret, str_of(&mine, "refresh_token")).await;
    let at = str_of(&fresh, "access_token");
    assert_eq!(introspect(&s, (&id, &secret), at).await["active"], true);
    s.clock.advance(601);
    assert_eq!(introspect(&s, (&id, &secret), at).await, inactive());
}

/// RFC 7662 §2.1: "the endpoint MUST also require some form of authorization": no credentials,
/// a wrong secret and a public client are 401 `invalid_client`; a missing token is
/// `invalid_request`.
#[tokio::test]
async fn rfc7662_2_1_callers_must_authenticate() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let public = s.public_client(CB).await;
    let t0 = code_flow_tokens(&s, &id, &secret, "notes.read").await;
    let at = str_of(&t0, "access_token");
    let api = basic_user(API);
    for (basic, form) in [
        (None, vec![("token", at)]),
        (Some((id.as_str(), "wrong")), vec![("token", at)]),
        (None, vec![("token", at), ("client_id", public.as_str())]),
        (Some((api.as_str(), "no-secret-set")), vec![("token", at)]),
    ] {
        let (status, body, headers) = post(&s.url, "/introspect", basic, &form).await;
        assert_eq!(error_of(status, &body), (401, "invalid_client"), "{basic:?} {form:?}: {body}");
        assert!(body.get("active").is_none());
        assert_eq!(headers["cache-control"], "no-store");
    }
    let (status, body, _) = post(&s.url, "/introspect", Some((&id, &secret)), &[]).await;
    assert_eq!(error_of(status, &body), (400, "invalid_request"));
}

/// RFC 7662 §2.1 for resource servers: an API with a secret authenticates with its identifier as
/// the Basic user name and sees the access tokens meant for it (its audience) — from any client
/// — and nothing else.
#[tokio::test]
async fn rfc7662_2_1_api_introspects_tokens_for_its_audience() {
    let s = TestServer::start().await;
    add_calendar_api(&s).await;
    let api_secret = "notes-api-introspection-secret";
    assert!(s.svc.store.update_api_secret(API, &tessera_server::secret::hash(api_secret)).await.unwrap());
    let (id, secret) = service_client(&s, "notes.read calendar.read").await;
    let (_, notes, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials"), ("scope", "notes.read")]).await;
    let (_, calendar, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials"), ("scope", "calendar.read")]).await;
    let api = basic_user(API);
    let info = introspect(&s, (&api, api_secret), str_of(&notes, "access_token")).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["aud"], API);
    assert_eq!(info["client_id"], id);
    assert_eq!(info["scope"], "notes.read");
    assert_eq!(introspect(&s, (&api, api_secret), str_of(&calendar, "access_token")).await, inactive(), "another API's token");
    let (user_client, user_secret) = s.confidential_client(CB).await;
    let t = code_flow_tokens(&s, &user_client, &user_secret, "notes.read").await;
    assert_eq!(introspect(&s, (&api, api_secret), str_of(&t, "access_token")).await["active"], true, "any client's token for this API");
    assert_eq!(introspect(&s, (&api, api_secret), str_of(&t, "refresh_token")).await, inactive(), "refresh tokens are the client's business");
    let (status, body, _) = post(&s.url, "/introspect", Some((&api, "wrong")), &[("token", str_of(&notes, "access_token"))]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"));
    let (status, body, _) = post(&s.url, "/introspect", Some((&basic_user(CALENDAR), "")), &[("token", str_of(&calendar, "access_token"))]).await;
    assert_eq!(error_of(status, &body), (401, "invalid_client"), "an API without a secret cannot introspect");
}

// ---------------------------------------------------------------------------------------------
// Device authorization grant, RFC 8628
// ---------------------------------------------------------------------------------------------

/// RFC 8628 §3.2 response, with §6.1 user codes: 8 characters from an alphabet without vowels
/// or look-alikes, shown as XXXX-XXXX; `verification_uri_complete` carries it.
#[tokio::test]
async fn rfc8628_3_2_device_authorization_response() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let d = start_device(&s, &id, "notes.read").await;
    assert!(str_of(&d, "device_code").len() >= 32, "a high-entropy device code");
    let user_code = str_of(&d, "user_code");
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code.chars().filter(|c| *c != '-').all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)), "{user_code}");
    assert_eq!(d["verification_uri"], format!("{}/device", s.url));
    let complete = str_of(&d, "verification_uri_complete");
    assert_eq!(query(complete)["user_code"], user_code);
    assert!(complete.starts_with(&format!("{}/device?", s.url)));
    assert_eq!(d["expires_in"], 600);
    assert_eq!(d["interval"], 5);
    // Each request gets its own codes.
    let d2 = start_device(&s, &id, "notes.read").await;
    assert_ne!(d2["device_code"], d["device_code"]);
    assert_ne!(d2["user_code"], d["user_code"]);
}

/// RFC 8628 §3.1–3.2 errors (RFC 6749 §5.2): a client not registered for the grant is
/// `unauthorized_client`; a missing, unknown or unregistered scope is `invalid_scope`; an
/// unknown client or a confidential one without its secret is `invalid_client`.
#[tokio::test]
async fn rfc8628_3_1_device_authorization_errors() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let web = s.public_client(CB).await;
    let confidential =
        s.client(NewClient { name: "TV".into(), scope: "notes.read".into(), grant_types: vec![DEVICE_GRANT.into()], ..Default::default() }).await;
    let (cid, csecret) = (confidential.client.client_id, confidential.client_secret.unwrap());
    /// (Basic credentials, form, expected status, expected error).
    type Case<'a> = (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (None, vec![("client_id", &web), ("scope", "notes.read")], 400, "unauthorized_client"),
        (None, vec![("client_id", &id)], 400, "invalid_scope"),
        (None, vec![("client_id", &id), ("scope", "admin")], 400, "invalid_scope"),
        (None, vec![("client_id", &id), ("scope", "notes.delete")], 400, "invalid_scope"),
        (None, vec![("client_id", "no-such-client"), ("scope", "notes.read")], 401, "invalid_client"),
        (None, vec![("scope", "notes.read")], 401, "invalid_client"),
        (None, vec![("client_id", &cid), ("scope", "notes.read")], 401, "invalid_client"),
        (Some((&cid, "wrong")), vec![("scope", "notes.read")], 401, "invalid_client"),
        (None, vec![("client_id", &id), ("scope", "notes.read"), ("resource", "https://calendar.example")], 400, "invalid_target"),
    ];
    for (basic, form, status, error) in cases {
        let (got, body, headers) = post(&s.url, "/device_authorization", basic, &form).await;
        assert_eq!(error_of(got, &body), (status, error), "{form:?}: {body}");
        assert_eq!(headers["cache-control"], "no-store");
    }
    // The confidential client with its secret.
    let (status, body, _) = post(&s.url, "/device_authorization", Some((&cid, &csecret)), &[("scope", "notes.read")]).await;
    assert_eq!(status, 200, "{body}");
}

/// RFC 8628 §3.3–3.5 end to end: the device polls (authorization_pending); the user opens
/// `verification_uri_complete` (code prefilled), continues, signs in, sees the code on the
/// consent page and allows; the page says "Device connected"; the next poll gets tokens
/// (a JWT for the Notes API and a refresh token) exactly once.
#[tokio::test]
async fn rfc8628_3_3_user_approves_and_device_gets_tokens() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let d = start_device(&s, &id, "notes.read notes.write").await;
    let (device_code, user_code) = (str_of(&d, "device_code"), str_of(&d, "user_code"));
    let (status, body) = poll(&s, &id, device_code).await;
    assert_eq!(error_of(status, &body), (400, "authorization_pending"));

    let b = Browser::new(&s.url);
    let res = b.get(str_of(&d, "verification_uri_complete")).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{user_code}\"")), "the code is prefilled, not auto-approved");
    let after = enter_code(&b, &html, user_code).await;
    assert!(location(&after).starts_with("/login?request="), "{}", location(&after));
    let consent = reach_consent(&b, after).await;
    assert!(consent.contains("id=\"device-notice\""), "RFC 8628 §5.4: the user is told a device asks");
    assert!(consent.contains(&format!("<strong id=\"device-code\">{user_code}</strong>")), "the code is shown for comparison");
    assert!(consent.contains("Notes CLI"));
    assert!(consent.contains("Read your notes") && consent.contains("Create and edit your notes"));
    assert_eq!(decide_device(&b, &consent, "allow").await, "Device connected");

    s.clock.advance(5);
    let (status, t) = poll(&s, &id, device_code).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "notes.read notes.write");
    let claims = verify_access_token(&s.url, str_of(&t, "access_token"), API).await;
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    assert_eq!(claims["sub"], alice.id);
    assert_eq!(claims["client_id"], id);
    // Once only.
    s.clock.advance(5);
    let (status, body) = poll(&s, &id, device_code).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "{body}");
    // The refresh token works for the public client.
    let (status, body, _) = token_form(&s.url, &[("grant_type", "refresh_token"), ("refresh_token", str_of(&t, "refresh_token")), ("client_id", &id)]).await;
    assert_eq!(status, 200, "{body}");
}

/// RFC 8628 §3.5: "slow_down ... the interval MUST be increased by 5 seconds for this and all
/// subsequent requests." Polling sooner than the interval since the last poll is slow_down.
#[tokio::test]
async fn rfc8628_3_5_slow_down_increases_the_interval() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let d = start_device(&s, &id, "notes.read").await;
    let dc = str_of(&d, "device_code");
    let (status, body) = poll(&s, &id, dc).await;
    assert_eq!(error_of(status, &body), (400, "authorization_pending"));
    s.clock.advance(2);
    let (status, body) = poll(&s, &id, dc).await;
    assert_eq!(error_of(status, &body), (400, "slow_down"), "2 s < 5 s");
    // The interval is now 10 s: 5 s is too soon (and raises it to 15 s); 15 s is fine.
    s.clock.advance(5);
    let (status, body) = poll(&s, &id, dc).await;
    assert_eq!(error_of(status, &body), (400, "slow_down"), "5 s < 10 s after one slow_down");
    s.clock.advance(14);
    let (status, body) = poll(&s, &id, dc).await;
    assert_eq!(error_of(status, &body), (400, "slow_down"), "14 s < 15 s after two");
    s.clock.advance(20);
    let (status, body) = poll(&s, &id, dc).await;
    assert_eq!(error_of(status, &body), (400, "authorization_pending"), "{body}");
    // Approval does not bypass the interval (now 20 s).
    assert_eq!(approve(&s, str_of(&d, "user_code"), "allow").await, "Device connected");
    s.clock.advance(19);
    let (status, body) = poll(&s, &id, dc).await;
    assert_eq!(error_of(status, &body), (400, "slow_down"));
    s.clock.advance(25);
    let (status, body) = poll(&s, &id, dc).await;
    assert_eq!(status, 200, "{body}");
}

/// RFC 8628 §3.5 access_denied: the user denied; the page says so and the device is told.
#[tokio::test]
async fn rfc8628_3_5_access_denied() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let d = start_device(&s, &id, "notes.read").await;
    assert_eq!(approve(&s, str_of(&d, "user_code"), "deny").await, "Request denied");
    let (status, body) = poll(&s, &id, str_of(&d, "device_code")).await;
    assert_eq!(error_of(status, &body), (400, "access_denied"));
    s.clock.advance(5);
    let (status, body) = poll(&s, &id, str_of(&d, "device_code")).await;
    assert_eq!(error_of(status, &body), (400, "access_denied"), "denied stays denied");
}

/// RFC 8628 §3.5 expired_token: device codes live 600 s; after that the device is told, and the
/// verification page no longer accepts the user code.
#[tokio::test]
async fn rfc8628_3_5_expired_token() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let d = start_device(&s, &id, "notes.read").await;
    s.clock.advance(599);
    let (status, body) = poll(&s, &id, str_of(&d, "device_code")).await;
    assert_eq!(error_of(status, &body), (400, "authorization_pending"));
    s.clock.advance(1);
    let (status, body) = poll(&s, &id, str_of(&d, "device_code")).await;
    assert_eq!(error_of(status, &body), (400, "expired_token"), "{body}");
    let b = Browser::new(&s.url);
    let html = device_page(&b, None).await;
    let res = enter_code(&b, &html, str_of(&d, "user_code")).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("not valid or has expired"));
    // Approved but not collected in time: expired too.
    let d = start_device(&s, &id, "notes.read").await;
    approve(&s, str_of(&d, "user_code"), "allow").await;
    s.clock.advance(600);
    let (status, body) = poll(&s, &id, str_of(&d, "device_code")).await;
    assert_eq!(error_of(status, &body), (400, "expired_token"));
}

/// RFC 8628 §3.4: the device code is bound to its client; unknown codes are invalid_grant; a
/// missing one is invalid_request. None of this spends the real device's code.
#[tokio::test]
async fn rfc8628_3_4_device_code_bound_to_client() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let other = s.device_client().await;
    let d = start_device(&s, &id, "notes.read").await;
    approve(&s, str_of(&d, "user_code"), "allow").await;
    let (status, body) = poll(&s, &other, str_of(&d, "device_code")).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"), "another client's device code");
    let (status, body) = poll(&s, &id, "no-such-device-code").await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"));
    let (status, body) = poll(&s, &id, &"d".repeat(4000)).await;
    assert_eq!(error_of(status, &body), (400, "invalid_grant"));
    let (status, body, _) = token_form(&s.url, &[("grant_type", DEVICE_GRANT), ("client_id", &id)]).await;
    assert_eq!(error_of(status, &body), (400, "invalid_request"));
    // A client not registered for the grant.
    let web = s.public_client(CB).await;
    let (status, body) = poll(&s, &web, str_of(&d, "device_code")).await;
    assert_eq!(error_of(status, &body), (400, "unauthorized_client"));
    let (status, body) = poll(&s, &id, str_of(&d, "device_code")).await;
    assert_eq!(status, 200, "{body}");
}

/// RFC 8628 §6.1: "the authorization server should be case insensitive when comparing the user
/// code, and ... ignore ... punctuation": a code typed in lower case without the dash works.
#[tokio::test]
async fn rfc8628_6_1_user_code_case_insensitive_dash_optional() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let variants: [fn(&str) -> String; 3] = [|c| c.replace('-', "").to_lowercase(), |c| format!(" {} ", c.to_lowercase()), |c| c.replace('-', " ")];
    for typed in variants {
        let d = start_device(&s, &id, "notes.read").await;
        let typed = typed(str_of(&d, "user_code"));
        assert_eq!(approve(&s, &typed, "allow").await, "Device connected", "{typed:?}");
        let (status, body) = poll(&s, &id, str_of(&d, "device_code")).await;
        assert_eq!(status, 200, "{typed:?}: {body}");
    }
}

/// RFC 8628 §3.3 and §5.4: a user code is single-use; a signed-in user goes straight to consent,
/// which a device request always asks for (remembered consent does not apply); the verification
/// form is CSRF-protected.
#[tokio::test]
async fn rfc8628_3_3_signed_in_user_single_use_code_and_csrf() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let b = Browser::new(&s.url);
    let d = start_device(&s, &id, "notes.read").await;
    let html = device_page(&b, None).await;
    let consent = reach_consent(&b, enter_code(&b, &html, str_of(&d, "user_code")).await).await;
    assert_eq!(decide_device(&b, &consent, "allow").await, "Device connected");
    // The same code again: no longer valid.
    let html = device_page(&b, None).await;
    let res = enter_code(&b, &html, str_of(&d, "user_code")).await;
    assert_eq!(res.status(), 400, "a user code is answered once");
    // A second device: the signed-in browser skips sign-in but is asked again.
    let d2 = start_device(&s, &id, "notes.read").await;
    let html = device_page(&b, None).await;
    let res = enter_code(&b, &html, str_of(&d2, "user_code")).await;
    assert!(location(&res).starts_with("/consent"), "already signed in: {}", location(&res));
    let consent = reach_consent(&b, res).await;
    assert!(consent.contains(&format!("id=\"device-code\">{}<", str_of(&d2, "user_code"))));
    assert_eq!(decide_device(&b, &consent, "allow").await, "Device connected");
    // CSRF: a forged or missing token is refused, and no browser session means no form.
    let d3 = start_device(&s, &id, "notes.read").await;
    let res = b.post_form("/device", &[("csrf", "forged"), ("user_code", str_of(&d3, "user_code"))]).await;
    assert_eq!(res.status(), 403);
    let res = b.post_form("/device", &[("user_code", str_of(&d3, "user_code"))]).await;
    assert_eq!(res.status(), 403);
    let res = Browser::new(&s.url).post_form("/device", &[("csrf", "x"), ("user_code", str_of(&d3, "user_code"))]).await;
    assert_eq!(res.status(), 403);
    // The page cannot be framed.
    let res = b.get("/device").await;
    assert_eq!(res.headers()["x-frame-options"], "DENY");
}

/// RFC 8628 §5.1: brute-forcing user codes is throttled: after 10 wrong codes from one address
/// in 15 minutes, every code — even a right one — is refused with 429 until the window passes.
#[tokio::test]
async fn rfc8628_5_1_user_code_guessing_is_throttled() {
    let s = TestServer::start().await;
    let id = s.device_client().await;
    let d = start_device(&s, &id, "notes.read").await;
    let b = Browser::new(&s.url);
    let html = device_page(&b, None).await;
    for guess in ["BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "FFFF-FFFF", "GGGG-GGGG", "HHHH-HHHH", "JJJJ-JJJJ", "KKKK-KKKK", "LLLL-LLLL", "not a code"] {
        let res = enter_code(&b, &html, guess).await;
        assert_eq!(res.status(), 400, "{guess}");
    }
    let res = enter_code(&b, &html, str_of(&d, "user_code")).await;
    assert_eq!(res.status(), 429, "the 11th attempt is throttled, right or wrong");
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("Too many wrong codes"));
    // Another browser from the same address is throttled too (the key is the address).
    let other = Browser::new(&s.url);
    let html2 = device_page(&other, None).await;
    assert_eq!(enter_code(&other, &html2, str_of(&d, "user_code")).await.status(), 429);
    // After the window, a fresh code goes through.
    s.clock.advance(15 * 60 + 1);
    let d = start_device(&s, &id, "notes.read").await;
    assert_eq!(approve(&s, str_of(&d, "user_code"), "allow").await, "Device connected");
}

// ---------------------------------------------------------------------------------------------
// Metadata, RFC 8414
// ---------------------------------------------------------------------------------------------

/// RFC 8414 §2: the metadata advertises exactly the lifecycle endpoints, grant types and
/// authentication methods served — and each advertised method is accepted where advertised.
#[tokio::test]
async fn rfc8414_2_metadata_advertises_lifecycle_endpoints() {
    let s = TestServer::start().await;
    let m: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.url)).await.unwrap().json().await.unwrap();
    assert_eq!(m["revocation_endpoint"], format!("{}/revoke", s.url));
    assert_eq!(m["introspection_endpoint"], format!("{}/introspect", s.url));
    assert_eq!(m["device_authorization_endpoint"], format!("{}/device_authorization", s.url));
    assert_eq!(
        m["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials", DEVICE_GRANT, "urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );
    assert_eq!(m["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post", "none"]));
    assert_eq!(m["revocation_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post", "none"]));
    assert_eq!(m["introspection_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post"]));
    for absent in ["registration_endpoint", "pushed_authorization_request_endpoint", "revocation_endpoint_auth_signing_alg_values_supported"] {
        assert!(m.get(absent).is_none(), "{absent} is not served");
    }
    // client_secret_post at introspection, as advertised.
    let c = s
        .client(NewClient {
            name: "Post".into(),
            scope: "notes.read".into(),
            grant_types: vec!["client_credentials".into()],
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..Default::default()
        })
        .await;
    let (pid, psecret) = (c.client.client_id, c.client_secret.unwrap());
    let (_, t, _) = token_form(&s.url, &[("grant_type", "client_credentials"), ("client_id", &pid), ("client_secret", &psecret)]).await;
    let (status, info, _) = post(&s.url, "/introspect", None, &[("token", str_of(&t, "access_token")), ("client_id", &pid), ("client_secret", &psecret)]).await;
    assert_eq!((status, &info["active"]), (200, &json!(true)), "{info}");
    // The endpoints take POST only.
    for path in ["/revoke", "/introspect", "/device_authorization"] {
        let res = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
        assert_eq!(res.status(), 405, "{path}");
    }
}

/// RFC 6749 §2.3: a Basic header that authenticated before (and is remembered) still goes
/// through the per-request rules: a second method in the body, or a body client_id naming
/// another client, is refused; a wrong secret never rides on a remembered one; a rotated
/// secret stops working within the client cache's bound.
#[tokio::test]
async fn rfc6749_2_3_remembered_basic_credentials_keep_every_rule() {
    let s = TestServer::start().await;
    let (id, secret) = service_client(&s, "notes.read").await;
    let cc = [("grant_type", "client_credentials"), ("scope", "notes.read")];
    for _ in 0..3 {
        assert_eq!(token_basic(&s.url, &id, &secret, &cc).await.0, 200);
    }
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials"), ("client_secret", &secret)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "two methods");
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials"), ("client_id", "someone-else")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "body client_id differs");
    let (status, body, _) = token_basic(&s.url, &id, &format!("{secret}x"), &cc).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "a wrong secret");
    tessera_server::service::admin::rotate_client_secret(&*s.svc.store, &id).await.unwrap();
    // The cache bound passes on the service's clock, moved instead of slept through.
    s.clock.advance(tessera_server::service::CACHE_TTL.as_secs() as i64);
    assert_eq!(token_basic(&s.url, &id, &secret, &cc).await.0, 401, "the old secret does not outlive the cache bound");
}
