//! Review findings 2, 3, 8, 10, 12, 13, 17 (stored data) and 18 (loopback ports): what an
//! authorization request may release, for whom, and to which audience.

use crate::common::*;
use serde_json::{Value, json};
use tessera_server::service::admin::{self, NewClient, NewUser};

const CB: &str = "http://127.0.0.1:9/callback";
const CALENDAR: &str = "https://calendar.example";

fn url_with(s: &TestServer, id: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut u = s.authorize_url(id, CB, scope, "st", None);
    for (k, v) in extra {
        u.push('&');
        u.push_str(&form_urlencoded::Serializer::new(String::new()).append_pair(k, v).finish());
    }
    u
}

/// A confidential client allowed `scope`.
async fn client_with(s: &TestServer, scope: &str) -> (String, String) {
    let c = s.client(NewClient { name: "Sign-in App".into(), redirect_uris: vec![CB.into()], scope: scope.into(), ..Default::default() }).await;
    (c.client.client_id, c.client_secret.unwrap())
}

/// Alice gets a phone number and a postal address, so that there is something to leak.
async fn give_alice_a_profile(s: &TestServer) {
    let mut changes = serde_json::Map::new();
    changes.insert("phone_number".into(), json!("+64 21 000 000"));
    changes.insert("address".into(), json!({"street_address": "1 Queen St", "country": "NZ"}));
    admin::update_user(&*s.svc.store, USER, None, None, changes, tessera_server::Clock::now(&*s.clock)).await.unwrap();
}

async fn redeem(s: &TestServer, id: &str, secret: &str, back: &str) -> Value {
    let q = query(back);
    let code = q.get("code").unwrap_or_else(|| panic!("no code in {back}"));
    let (status, body, _) = token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CB)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The claims of a JWT we issued (signature checked by the tests that need it elsewhere; here
/// only what it says matters).
fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn userinfo(s: &TestServer, access_token: &str) -> Value {
    let res = reqwest::Client::new().get(format!("{}/userinfo", s.url)).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

const LEAKY_CLAIMS: &str =
    r#"{"userinfo":{"email":null,"phone_number":null,"address":null},"id_token":{"email":null,"phone_number":{"essential":true},"address":null}}"#;

/// Finding 2 (OIDC Core §3.1.2.4, §5.4, §5.5): a client granted only `openid` that asks for
/// email, phone and address with the `claims` parameter gets none of them — not in the ID
/// token, not at UserInfo, and not later without a page (remembered consent + prompt=none).
#[tokio::test]
async fn regression_claims_parameter_releases_only_consented_claims_oidc_5_5() {
    let s = TestServer::start().await;
    give_alice_a_profile(&s).await;
    let (id, secret) = client_with(&s, "openid").await;
    let b = Browser::new(&s.url);
    let tokens = redeem(&s, &id, &secret, &b.journey_as(&url_with(&s, &id, "openid", &[("claims", LEAKY_CLAIMS)]), USER).await).await;
    let leaked = ["email", "phone_number", "address"];
    let id_token = claims_of(tokens["id_token"].as_str().unwrap());
    let info = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    for c in leaked {
        assert!(id_token.get(c).is_none(), "{c} in the ID token: {id_token}");
        assert!(info.get(c).is_none(), "{c} at UserInfo: {info}");
    }
    // Remembered consent, no page at all.
    let res = b.get(&url_with(&s, &id, "openid", &[("claims", LEAKY_CLAIMS), ("prompt", "none")])).await;
    assert_eq!(res.status(), 303);
    let tokens = redeem(&s, &id, &secret, &location(&res)).await;
    let id_token = claims_of(tokens["id_token"].as_str().unwrap());
    let info = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    for c in leaked {
        assert!(id_token.get(c).is_none() && info.get(c).is_none(), "{c} released under prompt=none: {id_token} {info}");
    }
    // What the scopes do cover is still released, and the request still chooses the ID token.
    let (id2, secret2) = client_with(&s, "openid email").await;
    let tokens = redeem(&s, &id2, &secret2, &b.journey_as(&url_with(&s, &id2, "openid email", &[("claims", LEAKY_CLAIMS)]), USER).await).await;
    let id_token = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["email"], "alice@example.com", "{id_token}");
    assert!(id_token.get("phone_number").is_none() && id_token.get("address").is_none(), "{id_token}");
    let info = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info["email"], "alice@example.com");
    assert!(info.get("phone_number").is_none(), "{info}");
}

/// The sign-in page of a request that the signed-in browser must re-authenticate for, and the
/// consent form posted straight away with that page's CSRF token: no code may come back.
async fn consent_without_password(b: &Browser, url: &str) -> reqwest::Response {
    let res = b.get(url).await;
    assert_eq!(res.status(), 303, "authorize redirects");
    let login = location(&res);
    assert!(login.starts_with("/login?request="), "re-authentication asked for: {login}");
    let html = b.get(&login).await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let request = hidden(&html, "request").unwrap();
    b.post_form("/consent", &[("csrf", &csrf), ("request", &request), ("decision", "allow")]).await
}

fn assert_no_code(res: &reqwest::Response, what: &str) {
    let loc = res.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(!loc.starts_with(CB), "{what}: a direct POST /consent went back to the client: {loc}");
    assert!(loc.starts_with("/login?request="), "{what}: expected the sign-in page again, got {} {loc}", res.status());
}

/// Finding 3 (OIDC Core §3.1.2.1 MUSTs): with a live session, a request needing a fresh sign-in
/// (`prompt=login`, `max_age=0`, `acr_values=1`, an `id_token_hint` for another user) cannot be
/// answered by posting the consent form directly with the sign-in page's CSRF token.
#[tokio::test]
async fn regression_consent_post_cannot_skip_reauthentication_oidc_3_1_2_1() {
    let s = TestServer::start().await;
    let (id, secret) = client_with(&s, "openid").await;
    let now = tessera_server::Clock::now(&*s.clock);
    create_user(&*s.svc.store, NewUser { username: "bob".into(), ..Default::default() }, now).await;
    let bob = Browser::new(&s.url);
    let bob_id_token =
        redeem(&s, &id, &secret, &bob.journey_as(&url_with(&s, &id, "openid", &[]), "bob").await).await["id_token"].as_str().unwrap().to_string();

    let alice = Browser::new(&s.url);
    alice.journey_as(&url_with(&s, &id, "openid", &[]), USER).await;
    s.clock.advance(5);
    for (k, v) in [("prompt", "login"), ("max_age", "0"), ("acr_values", "1"), ("id_token_hint", bob_id_token.as_str())] {
        let res = consent_without_password(&alice, &url_with(&s, &id, "openid", &[(k, v)])).await;
        assert_no_code(&res, k);
    }
    // The honest path still works: sign in, then a code (for alice).
    let back = alice.journey_as(&url_with(&s, &id, "openid", &[("prompt", "login")]), USER).await;
    assert!(query(&back).contains_key("code"), "{back}");
}

/// Finding 8 (OIDC Core §3.1.2.2, §5.5.1 MUST NOT): a `claims` request for `sub` with a value
/// naming another user gets no code for the signed-in one, with prompt=none (login_required)
/// and after an interactive sign-in as someone else.
#[tokio::test]
async fn regression_sub_claim_value_is_enforced_oidc_3_1_2_2() {
    let s = TestServer::start().await;
    let (id, secret) = client_with(&s, "openid").await;
    let now = tessera_server::Clock::now(&*s.clock);
    let bob = create_user(&*s.svc.store, NewUser { username: "bob".into(), ..Default::default() }, now).await;
    let alice = Browser::new(&s.url);
    let alice_sub =
        claims_of(redeem(&s, &id, &secret, &alice.journey_as(&url_with(&s, &id, "openid", &[]), USER).await).await["id_token"].as_str().unwrap())["sub"]
            .as_str()
            .unwrap()
            .to_string();
    let for_bob = json!({"id_token": {"sub": {"value": bob.id}}}).to_string();
    let res = alice.get(&url_with(&s, &id, "openid", &[("claims", &for_bob), ("prompt", "none")])).await;
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert!(back.starts_with(CB), "{back}");
    assert_eq!(query(&back).get("error").map(String::as_str), Some("login_required"), "{back}");
    assert!(!query(&back).contains_key("code"));
    // Interactive: alice signs in again, as herself: the request named bob, so no code.
    let back = alice.journey_as(&url_with(&s, &id, "openid", &[("claims", &for_bob)]), USER).await;
    assert_eq!(query(&back).get("error").map(String::as_str), Some("login_required"), "{back}");
    // Her own sub is fine.
    let for_alice = json!({"id_token": {"sub": {"value": alice_sub}}}).to_string();
    let res = alice.get(&url_with(&s, &id, "openid", &[("claims", &for_alice), ("prompt", "none")])).await;
    assert!(query(&location(&res)).contains_key("code"), "{}", location(&res));
}

/// Finding 10 (OIDC Core §3.1.2.1 "ID Token previously issued"): an access token (or anything
/// else Tessera signed that is not an ID token) is refused as `id_token_hint`, at /authorize
/// and at /logout.
#[tokio::test]
async fn regression_id_token_hint_accepts_only_id_tokens_oidc_3_1_2_1() {
    let s = TestServer::start().await;
    let (id, secret) = client_with(&s, "openid").await;
    let b = Browser::new(&s.url);
    let tokens = redeem(&s, &id, &secret, &b.journey_as(&url_with(&s, &id, "openid", &[]), USER).await).await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let res = b.get(&url_with(&s, &id, "openid", &[("id_token_hint", access_token), ("prompt", "none")])).await;
    let back = location(&res);
    assert_eq!(query(&back).get("error").map(String::as_str), Some("invalid_request"), "an access token as id_token_hint: {back}");
    let res = b.get(&format!("{}/logout?id_token_hint={access_token}", s.url)).await;
    assert_eq!(res.status(), 400, "an access token as id_token_hint at /logout");
    // The ID token itself is accepted.
    let res = b.get(&url_with(&s, &id, "openid", &[("id_token_hint", tokens["id_token"].as_str().unwrap()), ("prompt", "none")])).await;
    assert!(query(&location(&res)).contains_key("code"), "{}", location(&res));
}

/// Finding 12 (RFC 9700 §2.3, RFC 8707): scopes of two APIs in one authorization request give
/// no token that either API could replay at the other: `invalid_target`; one API's scopes give
/// a token with that one audience.
#[tokio::test]
async fn regression_one_audience_per_access_token_rfc9700_2_3() {
    let s = TestServer::start().await;
    let now = tessera_server::Clock::now(&*s.clock);
    admin::create_api(&*s.svc.store, CALENDAR, "Calendar", vec![admin::parse_api_scope("calendar.read=Read your calendar").unwrap()], now).await.unwrap();
    let (id, secret) = client_with(&s, "notes.read calendar.read").await;
    let b = Browser::new(&s.url);
    let res = b.get(&url_with(&s, &id, "notes.read calendar.read", &[])).await;
    let back = location(&res);
    assert!(back.starts_with(CB), "{back}");
    assert_eq!(query(&back).get("error").map(String::as_str), Some("invalid_target"), "{back}");
    let tokens = redeem(&s, &id, &secret, &b.journey_as(&url_with(&s, &id, "calendar.read", &[]), USER).await).await;
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["aud"], CALENDAR);
}

/// Finding 13 (RFC 8252 §8.6, RFC 6749 §10.2): remembered consent does not answer a public
/// client silently: the consent page comes back, and prompt=none gets consent_required.
#[tokio::test]
async fn regression_public_client_consent_is_asked_every_time_rfc8252_8_6() {
    let s = TestServer::start().await;
    let id = s
        .client(NewClient { name: "Notes SPA".into(), redirect_uris: vec![CB.into()], scope: "openid notes.read".into(), public: true, ..Default::default() })
        .await
        .client
        .client_id;
    let (_, challenge) = pkce_pair();
    let url = s.authorize_url(&id, CB, "openid notes.read", "st", Some(&challenge));
    let b = Browser::new(&s.url);
    assert!(query(&b.authorize_and_allow(&url).await).contains_key("code"));
    // Again, signed in, everything granted before: the consent page, not a code.
    let res = b.get(&url).await;
    assert_eq!(res.status(), 303);
    let consent = location(&res);
    assert!(consent.starts_with("/consent?request="), "remembered consent answered a public client: {consent}");
    let page = b.get(&consent).await;
    assert_eq!(page.status(), 200, "the consent page is shown");
    let res = b.get(&format!("{url}&prompt=none")).await;
    let back = location(&res);
    assert!(back.starts_with(CB), "{back}");
    assert_eq!(query(&back).get("error").map(String::as_str), Some("consent_required"), "{back}");
}

/// Finding 18 (RFC 8252 §7.3 MUST): a native app's loopback redirect URI may come with any
/// port; the code is bound to the URI with that port.
#[tokio::test]
async fn regression_loopback_redirect_port_may_vary_rfc8252_7_3() {
    let s = TestServer::start().await;
    let id = s.public_client("http://127.0.0.1/callback").await;
    let (verifier, challenge) = pkce_pair();
    let requested = "http://127.0.0.1:53682/callback";
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&id, requested, "notes.read", "st", Some(&challenge))).await;
    assert!(back.starts_with(requested), "{back}");
    let code = query(&back)["code"].clone();
    // Another port at the token endpoint is not the URI the code was issued for.
    let (status, body, _) = token_form(
        &s.url,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:53683/callback"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // A different path is still refused at /authorize.
    let res = Browser::new(&s.url).get(&s.authorize_url(&id, "http://127.0.0.1:53682/other", "notes.read", "st", Some(&challenge))).await;
    assert_eq!(res.status(), 400, "unregistered path: an error page");
}

/// The redemption with the right port works (its own test: a code redeemed with a wrong
/// redirect_uri is used up, RFC 6749 §4.1.2).
#[tokio::test]
async fn regression_loopback_redirect_port_redeems_with_that_port_rfc8252_7_3() {
    let s = TestServer::start().await;
    let id = s.public_client("http://[::1]/callback").await;
    let (verifier, challenge) = pkce_pair();
    let requested = "http://[::1]:40123/callback";
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&id, requested, "notes.read", "st", Some(&challenge))).await;
    let code = query(&back)["code"].clone();
    let (status, body, _) = token_form(
        &s.url,
        &[("grant_type", "authorization_code"), ("client_id", &id), ("code", &code), ("redirect_uri", requested), ("code_verifier", &verifier)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Finding 17 (stored data): a damaged audience in a stored refresh token is a server error,
/// never an access token for the wrong (empty) audience.
#[tokio::test]
async fn regression_corrupt_stored_audience_is_an_error_not_a_token() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "st", None)).await;
    let tokens = redeem(&s, &id, &secret, &back).await;
    let path = s.db_url.trim_start_matches("sqlite://").to_string();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let changed = conn.execute("UPDATE refresh_tokens SET audience = 'not json'", []).unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let (status, body, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
    assert!(body.get("access_token").is_none(), "a token from a damaged row: {body}");
    assert_eq!((status, body["error"].as_str()), (500, Some("server_error")), "{body}");
}
