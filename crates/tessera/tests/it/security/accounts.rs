//! Accounts and browser sessions (issue 13, findings 7 and 9): deleting a user or setting a new
//! password ends what the old state allowed (RFC 9700 §4.14.2), and anonymous browser sessions
//! live only as long as the request they were made for (RFC 6819 §4.4.1.11).

use crate::common::*;
use serde_json::Value;
use tessera_server::service::admin::NewClient;

const CB: &str = "http://127.0.0.1:9/cb";
/// The pending request's lifetime (service/authorize.rs PENDING_LIFETIME_SECS).
const PENDING_SECS: i64 = 600;

/// Run the real admin CLI against the server's SQLite file while the server runs, as an
/// operator would; `stdin` feeds `--password-stdin`.
#[cfg(feature = "ci-tier")]
fn cli(s: &TestServer, args: &[&str], stdin: Option<&str>) {
    let args: Vec<&str> = ["--database", s.db_url.as_str()].into_iter().chain(args.iter().copied()).collect();
    let (ok, _, err) = run_tessera(None, &args, stdin);
    assert!(ok, "tessera {args:?} failed: {err}");
}

/// A confidential OpenID Connect client that may refresh.
async fn oidc_client(s: &TestServer) -> (String, String) {
    let c = s
        .client(NewClient { name: "App".into(), redirect_uris: vec![CB.into()], scope: "openid offline_access notes.read".into(), ..Default::default() })
        .await;
    (c.client.client_id, c.client_secret.unwrap())
}

fn code_of(redirect: &str) -> String {
    assert!(redirect.starts_with(CB), "expected a redirect to the client, got {redirect}");
    query(redirect).get("code").cloned().unwrap_or_else(|| panic!("no code in {redirect}"))
}

async fn redeem(s: &TestServer, id: &str, secret: &str, code: &str, verifier: &str) -> (u16, Value) {
    let (st, body, _) =
        token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CB), ("code_verifier", verifier)]).await;
    (st, body)
}

async fn refresh(s: &TestServer, id: &str, secret: &str, rt: &str) -> (u16, Value) {
    let (st, body, _) = token_basic(&s.url, id, secret, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    (st, body)
}

/// The redirect a signed-in browser gets for a new request: a code for the client, or the
/// sign-in page.
async fn authorize_again(s: &TestServer, b: &Browser, id: &str, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let res = b.get(&s.authorize_url(id, CB, scope, "again", Some(&challenge))).await;
    assert_eq!(res.status(), 303);
    (location(&res), verifier)
}

/// Finding 7: `tessera user delete` (the real CLI, on the running server's database) ends the
/// user's browser sessions, refresh tokens and outstanding codes; UserInfo and introspection no
/// longer answer for the user's access tokens. RFC 9700 §4.14.2.
#[cfg(feature = "ci-tier")]
#[tokio::test]
async fn regression_deleted_user_keeps_nothing_rfc9700_4_14_2() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s).await;
    let b = Browser::new(&s.url);
    let (verifier, challenge) = pkce_pair();
    let code = code_of(&b.authorize_and_allow(&s.authorize_url(&id, CB, "openid offline_access notes.read", "s1", Some(&challenge))).await);
    let (st, tokens) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(st, 200, "{tokens}");
    let (rt, at) = (tokens["refresh_token"].as_str().unwrap().to_string(), tokens["access_token"].as_str().unwrap().to_string());
    // A code issued from the live session (consent remembered) before the deletion, not yet
    // redeemed; plain OAuth, so no ID token (which would need the user) is involved.
    let (loc, early_verifier) = authorize_again(&s, &b, &id, "notes.read").await;
    let early_code = code_of(&loc);

    cli(&s, &["user", "delete", USER], None);

    let (loc, _) = authorize_again(&s, &b, &id, "notes.read").await;
    assert!(loc.starts_with("/login?request="), "the deleted user's session must sign in again, got {loc}");
    let (st, body) = refresh(&s, &id, &secret, &rt).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "refresh after deletion: {body}");
    let (st, body) = redeem(&s, &id, &secret, &early_code, &early_verifier).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "a code issued before the deletion: {body}");
    let res = reqwest::Client::new().get(format!("{}/userinfo", s.url)).bearer_auth(&at).send().await.unwrap();
    assert_eq!(res.status(), 401, "UserInfo for a deleted user");
    let res = reqwest::Client::new().post(format!("{}/introspect", s.url)).basic_auth(&id, Some(&secret)).form(&[("token", at.as_str())]).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "active": false }), "a deleted user's access token is inactive");
}

/// Finding 7: `tessera user set-password` revokes the user's refresh tokens and ends every
/// session, so whoever held the old password (or a token it bought) is out. RFC 9700 §4.14.2.
#[cfg(feature = "ci-tier")]
#[tokio::test]
async fn regression_new_password_ends_sessions_and_refresh_tokens_rfc9700_4_14_2() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s).await;
    let b = Browser::new(&s.url);
    let (verifier, challenge) = pkce_pair();
    let code = code_of(&b.authorize_and_allow(&s.authorize_url(&id, CB, "openid offline_access notes.read", "s1", Some(&challenge))).await);
    let (st, tokens) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(st, 200, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();

    let new_password = "a brand new password";
    cli(&s, &["user", "set-password", USER, "--password-stdin"], Some(&format!("{new_password}\n")));

    let (st, body) = refresh(&s, &id, &secret, &rt).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "the old refresh token after a new password: {body}");
    let (loc, _) = authorize_again(&s, &b, &id, "notes.read").await;
    assert!(loc.starts_with("/login?request="), "the old session must sign in again, got {loc}");
    // The new password signs in.
    let res = b.get(&loc).await;
    let html = res.text().await.unwrap();
    let res = b.sign_in(&html, USER, new_password).await;
    assert_eq!(res.status(), 303, "sign-in with the new password");
}

/// Finding 7, the checks behind the clean-up: a session, code, refresh token or device approval
/// that outlives its user (a sign-in racing `user delete` writes them after the deletion's
/// transaction) buys nothing. Issuance sends the browser to sign in (the form, not a redirect
/// loop); redemption, refresh and device polling answer `invalid_grant`. RFC 9700 §4.14.2.
#[tokio::test]
async fn regression_vanished_user_gets_no_code_or_tokens_rfc9700_4_14_2() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s).await;
    let b = Browser::new(&s.url);
    let (verifier, challenge) = pkce_pair();
    let code = code_of(&b.authorize_and_allow(&s.authorize_url(&id, CB, "openid offline_access notes.read", "s1", Some(&challenge))).await);
    let (st, tokens) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(st, 200, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let (loc, early_verifier) = authorize_again(&s, &b, &id, "notes.read").await;
    let early_code = code_of(&loc);
    // A device approved by the signed-in user.
    let device = s
        .client(NewClient {
            name: "CLI".into(),
            scope: "notes.read".into(),
            grant_types: vec![DEVICE_GRANT.into(), "refresh_token".into()],
            public: true,
            ..Default::default()
        })
        .await
        .client
        .client_id;
    let d: Value = reqwest::Client::new()
        .post(format!("{}/device_authorization", s.url))
        .form(&[("client_id", device.as_str()), ("scope", "notes.read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let html = b.get(d["verification_uri_complete"].as_str().unwrap()).await.text().await.unwrap();
    let res = b.post_form("/device", &[("csrf", &hidden(&html, "csrf").unwrap()), ("user_code", d["user_code"].as_str().unwrap())]).await;
    let html = b.get(&location(&res)).await.text().await.unwrap();
    let res =
        b.post_form("/consent", &[("csrf", &hidden(&html, "csrf").unwrap()), ("request", &hidden(&html, "request").unwrap()), ("decision", "allow")]).await;
    assert_eq!(res.status(), 200, "the device is approved");

    // The user row alone goes; everything it gave stays behind.
    let path = s.db_url.strip_prefix("sqlite://").unwrap();
    rusqlite::Connection::open(path).unwrap().execute("DELETE FROM users WHERE username = ?1", [USER]).unwrap();

    let (loc, _) = authorize_again(&s, &b, &id, "notes.read").await;
    assert!(loc.starts_with("/login?request="), "no code for a user who no longer exists, got {loc}");
    let res = b.get(&loc).await;
    assert_eq!(res.status(), 200, "the sign-in form, not a redirect");
    assert!(hidden(&res.text().await.unwrap(), "csrf").is_some());
    // A request that needs the consent page (new scopes) ends at the sign-in form too, not in a
    // loop between /consent and /login.
    let (_, challenge) = pkce_pair();
    let res = b.get(&format!("{}&prompt=consent", s.authorize_url(&id, CB, "openid notes.read offline_access", "s3", Some(&challenge)))).await;
    let mut loc = location(&res);
    let mut form_shown = false;
    for _ in 0..6 {
        let res = b.get(&loc).await;
        if res.status() != 303 {
            assert_eq!(res.status(), 200, "{loc}");
            assert!(loc.starts_with("/login?request="), "ended at {loc}");
            assert!(hidden(&res.text().await.unwrap(), "csrf").is_some(), "the sign-in form");
            form_shown = true;
            break;
        }
        loc = location(&res);
        assert!(!loc.starts_with(CB), "no code for a user who no longer exists: {loc}");
    }
    assert!(form_shown, "a loop between the consent and sign-in pages, still redirecting at {loc}");
    let (st, body) = redeem(&s, &id, &secret, &early_code, &early_verifier).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "code redemption: {body}");
    let (st, body) = refresh(&s, &id, &secret, &rt).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "refresh: {body}");
    s.clock.advance(5);
    let (st, body, _) = token_form(&s.url, &[("grant_type", DEVICE_GRANT), ("device_code", d["device_code"].as_str().unwrap()), ("client_id", &device)]).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "device polling: {body}");
}

/// Set-Cookie's Max-Age.
fn cookie_max_age(res: &reqwest::Response) -> Option<i64> {
    let c = res.headers().get("set-cookie")?.to_str().ok()?;
    c.split(';').find_map(|p| p.trim().strip_prefix("Max-Age=")).and_then(|v| v.parse().ok())
}

fn session_rows(s: &TestServer) -> i64 {
    let path = s.db_url.strip_prefix("sqlite://").unwrap();
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).unwrap()
}

/// Finding 9: each cookieless `GET /authorize` writes a session; anonymous ones expire with the
/// pending request (10 minutes), cookie and row alike, and the clean-up removes them. A signed-in
/// session keeps its 12 hours. RFC 6819 §4.4.1.11 (resource exhaustion).
#[tokio::test]
async fn regression_anonymous_sessions_expire_with_the_request_rfc6819_4_4_1_11() {
    let s = TestServer::start().await;
    let id = s.public_client(CB).await;
    let (_, challenge) = pkce_pair();
    let url = s.authorize_url(&id, CB, "notes.read", "st", Some(&challenge));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut last = None;
    for _ in 0..100 {
        let res = http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(cookie_max_age(&res), Some(PENDING_SECS), "an anonymous session's cookie lives as long as the request");
        let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
        last = Some((cookie, location(&res)));
    }
    assert_eq!(session_rows(&s), 100);
    let (cookie, login) = last.unwrap();

    // A signed-in session, started now.
    let b = Browser::new(&s.url);
    let (_, html) = b.open_login(&url).await;
    let res = b.sign_in(&html, USER, PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(cookie_max_age(&res), Some(12 * 3600), "a signed-in session's cookie keeps its lifetime");
    let html = b.get(&location(&res)).await.text().await.unwrap();
    code_of(&b.decide(&html, "allow").await);

    s.clock.advance(PENDING_SECS + 1);
    let res = http.get(format!("{}{login}", s.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 400, "the anonymous session is gone after 10 minutes");
    s.svc.store.delete_expired(tessera_server::Clock::now(&*s.clock), 10_000).await.unwrap();
    assert_eq!(session_rows(&s), 1, "the clean-up deletes the anonymous sessions; the signed-in one stays");

    // 11 hours on, the signed-in session still answers without signing in (a public client
    // sees the consent page every time, RFC 8252 §8.6, but not the sign-in page).
    s.clock.advance(11 * 3600);
    let (_, challenge) = pkce_pair();
    let res = b.get(&s.authorize_url(&id, CB, "notes.read", "st", Some(&challenge))).await;
    assert_eq!(res.status(), 303);
    let consent = location(&res);
    assert!(consent.starts_with("/consent?request="), "the signed-in session lives on: {consent}");
    let html = b.get(&consent).await.text().await.unwrap();
    code_of(&b.decide(&html, "allow").await);

    // A browser that sends its anonymous session's cookie keeps that one session while it has
    // at least half its life left; after that a new one, so a sign-in started then has time.
    let c = Browser::new(&s.url);
    assert!(c.get(&url).await.headers().get("set-cookie").is_some());
    assert!(c.get(&url).await.headers().get("set-cookie").is_none(), "the session is reused");
    s.clock.advance(PENDING_SECS / 2 + 1);
    let res = c.get(&url).await;
    assert_eq!(cookie_max_age(&res), Some(PENDING_SECS), "a fresh anonymous session");
    let (_, html) = c.open_login(&url).await;
    assert_eq!(c.sign_in(&html, USER, PASSWORD).await.status(), 303, "and the sign-in goes through");
}
