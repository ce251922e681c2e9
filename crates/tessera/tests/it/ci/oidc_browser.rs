//! OpenID Connect in a real browser (headless Chromium over WebDriver, chromedriver started by
//! the test) against a real Tessera and a real client application: `prompt=login` and
//! `prompt=consent` (OIDC Core §3.1.2.1), and RP-Initiated Logout 1.0 with Back-Channel Logout
//! 1.0 delivery. These tests need `chromium` and `chromedriver` on PATH and fail (never skip)
//! without.
use crate::common::chromium::*;
use crate::common::*;

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tessera_server::service::admin::NewClient;
use thirtyfour::prelude::*;

/// What the OpenID Connect clients here may ask for.
const CLIENT_SCOPE: &str = "openid profile email offline_access notes.read";
/// What the authorization requests here ask for.
const REQUEST_SCOPE: &str = "openid profile email";
/// The back-channel logout event (Back-Channel Logout 1.0 §2.4).
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One POST the client's back-channel logout endpoint received: its Content-Type and form.
#[derive(Debug, Clone)]
struct BackchannelPost {
    content_type: String,
    form: HashMap<String, String>,
}

/// The relying party: its redirect URI (200 "callback received"), its post-logout page, and its
/// back-channel logout endpoint, which records every POST it receives.
struct ClientApp {
    callback: String,
    signed_out: String,
    backchannel: String,
    posts: Arc<Mutex<Vec<BackchannelPost>>>,
}

async fn client_app() -> ClientApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let posts: Arc<Mutex<Vec<BackchannelPost>>> = Arc::default();
    let recorder = posts.clone();
    let app = axum::Router::new()
        .route("/callback", axum::routing::get(|| async { "callback received" }))
        .route("/signed-out", axum::routing::get(|| async { "signed out of the client" }))
        .route(
            "/backchannel",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let recorder = recorder.clone();
                async move {
                    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let form = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                    recorder.lock().unwrap().push(BackchannelPost { content_type, form });
                    // §2.8: success is 200, not cacheable.
                    ([(axum::http::header::CACHE_CONTROL, "no-store")], "")
                }
            }),
        );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    ClientApp { callback: format!("{base}/callback"), signed_out: format!("{base}/signed-out"), backchannel: format!("{base}/backchannel"), posts }
}

/// A confidential OpenID Connect client of `app`, with its post-logout redirect URI and
/// back-channel logout URI registered. Returns (client_id, client_secret).
async fn register(s: &TestServer, app: &ClientApp) -> (String, String) {
    let c = s
        .client(NewClient {
            name: "Notes Client".into(),
            redirect_uris: vec![app.callback.clone()],
            scope: CLIENT_SCOPE.into(),
            post_logout_redirect_uris: vec![app.signed_out.clone()],
            backchannel_logout_uri: Some(app.backchannel.clone()),
            // The test's relying party listens on 127.0.0.1.
            allow_private_logout_uris: true,
            ..Default::default()
        })
        .await;
    (c.client.client_id, c.client_secret.expect("a confidential client"))
}

/// An OpenID Connect authorization request (code, PKCE S256, a nonce) plus `extra` parameters.
fn oidc_url(s: &TestServer, client_id: &str, cb: &str, state: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&s.authorize_url(client_id, cb, REQUEST_SCOPE, state, Some(challenge))).unwrap();
    url.query_pairs_mut().append_pair("nonce", &format!("n-{state}"));
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

/// Verify a JWT signed RS256 by the server (Tessera's default for ID and logout tokens) against
/// the JWKS found through discovery: signature, `iss`, `aud`, `exp`, `iat`, `sub`. Returns the
/// `typ` header and the claims.
async fn verify_rs256(issuer: &str, token: &str, audience: &str) -> (Option<String>, Value) {
    let http = reqwest::Client::new();
    let meta: Value = http.get(format!("{issuer}/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = http.get(meta["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "RS256 unless the client registered another alg");
    let jwk = jwks.find(header.kid.as_deref().expect("a kid")).expect("the kid is in the JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data =
        jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap_or_else(|e| panic!("the JWT does not verify: {e}"));
    (header.typ, data.claims)
}

/// Swap a code for tokens (client_secret_basic, PKCE) and return the verified ID token claims.
async fn id_token_claims(s: &TestServer, id: &str, secret: &str, code: &str, cb: &str, verifier: &str) -> Value {
    let (status, body, _) =
        token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", cb), ("code_verifier", verifier)]).await;
    assert_eq!(status, 200, "{body}");
    let (typ, claims) = verify_rs256(&s.url, body["id_token"].as_str().expect("an ID token"), id).await;
    assert_eq!(typ.as_deref(), Some("JWT"));
    claims
}

/// Sign in and allow in the browser for a fresh authorization request; returns the verified ID
/// token claims of the code it produced.
async fn first_sign_in(driver: &WebDriver, s: &TestServer, app: &ClientApp, id: &str, secret: &str) -> Value {
    let (verifier, challenge) = pkce_pair();
    open_login(driver, s, &oidc_url(s, id, &app.callback, "st-first", &challenge, &[])).await;
    sign_in(driver, USER, PASSWORD).await;
    let scopes: Vec<String> = consent_scopes(driver, s).await.into_iter().map(|(scope, _)| scope).collect();
    assert_eq!(scopes, ["email", "openid", "profile"], "the first request asks for every scope");
    driver.find(By::Id("allow")).await.unwrap().click().await.unwrap();
    let q = callback_query(driver, &app.callback).await;
    assert_eq!(q["state"], "st-first");
    id_token_claims(s, id, secret, &q["code"], &app.callback, &verifier).await
}

/// OIDC Core §3.1.2.1 `prompt=login`: "The Authorization Server SHOULD prompt the End-User for
/// reauthentication." A signed-in user who consented before goes straight back to the client
/// without `prompt`, and sees the sign-in page again with `prompt=login`; signing in there
/// moves `auth_time`.
#[tokio::test(flavor = "multi_thread")]
async fn browser_prompt_login_asks_to_sign_in_again() {
    let s = TestServer::start().await;
    let app = client_app().await;
    let (id, secret) = register(&s, &app).await;
    let (s, app, id, secret) = (&s, &app, id.as_str(), secret.as_str());
    with_browser(|driver| async move {
        let first = first_sign_in(&driver, s, app, id, secret).await;

        // Without prompt: signed in and consented, so no page at all.
        let (verifier, challenge) = pkce_pair();
        driver.goto(&oidc_url(s, id, &app.callback, "st-again", &challenge, &[])).await?;
        let q = callback_query(&driver, &app.callback).await;
        assert_eq!(q["state"], "st-again");
        let again = id_token_claims(s, id, secret, &q["code"], &app.callback, &verifier).await;
        assert_eq!(again["auth_time"], first["auth_time"], "no re-authentication without prompt");
        assert_eq!(again["sid"], first["sid"], "the same browser session");

        // prompt=login: the sign-in page again, although the browser is signed in.
        s.clock.advance(120);
        let (verifier, challenge) = pkce_pair();
        open_login(&driver, s, &oidc_url(s, id, &app.callback, "st-login", &challenge, &[("prompt", "login")])).await;
        assert!(driver.find(By::Id("password")).await.is_ok(), "the sign-in form");
        sign_in(&driver, USER, PASSWORD).await;
        // Consent is remembered: after signing in, straight back to the client.
        let q = callback_query(&driver, &app.callback).await;
        assert_eq!(q["state"], "st-login");
        let relogged = id_token_claims(s, id, secret, &q["code"], &app.callback, &verifier).await;
        assert!(
            relogged["auth_time"].as_i64().unwrap() >= first["auth_time"].as_i64().unwrap() + 120,
            "prompt=login re-authenticated: auth_time {} then {}",
            first["auth_time"],
            relogged["auth_time"]
        );
        assert_eq!(relogged["nonce"], "n-st-login");
        Ok(())
    })
    .await;
}

/// OIDC Core §3.1.2.1 `prompt=consent`: "The Authorization Server SHOULD prompt the End-User
/// for consent before returning information to the Client." A client consented to before is
/// not asked again without `prompt`, and is asked again (every requested scope) with
/// `prompt=consent`.
#[tokio::test(flavor = "multi_thread")]
async fn browser_prompt_consent_asks_again() {
    let s = TestServer::start().await;
    let app = client_app().await;
    let (id, secret) = register(&s, &app).await;
    let (s, app, id, secret) = (&s, &app, id.as_str(), secret.as_str());
    with_browser(|driver| async move {
        first_sign_in(&driver, s, app, id, secret).await;

        // Without prompt: no consent page.
        let (_, challenge) = pkce_pair();
        driver.goto(&oidc_url(s, id, &app.callback, "st-again", &challenge, &[])).await?;
        let q = callback_query(&driver, &app.callback).await;
        assert_eq!(q["state"], "st-again");
        assert!(q.contains_key("code"), "{q:?}");

        // prompt=consent: the consent page again, asking for every requested scope.
        let (verifier, challenge) = pkce_pair();
        driver.goto(&oidc_url(s, id, &app.callback, "st-consent", &challenge, &[("prompt", "consent")])).await?;
        let scopes = consent_scopes(&driver, s).await;
        let names: Vec<&str> = scopes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["email", "openid", "profile"], "every requested scope again: {scopes:?}");
        assert_eq!(driver.find(By::Id("client-name")).await?.text().await?, "Notes Client");
        assert!(driver.find(By::Id("password")).await.is_err(), "no sign-in form: only consent was asked for");
        driver.find(By::Id("allow")).await?.click().await?;
        let q = callback_query(&driver, &app.callback).await;
        assert_eq!(q["state"], "st-consent");
        let claims = id_token_claims(s, id, secret, &q["code"], &app.callback, &verifier).await;
        assert_eq!(claims["nonce"], "n-st-consent");
        Ok(())
    })
    .await;
}

/// RP-Initiated Logout 1.0 with Back-Channel Logout 1.0: after signing in and getting a code,
/// /logout with the client's registered post_logout_redirect_uri shows a confirmation page;
/// #sign-out ends the session, the client's back-channel endpoint receives a logout token
/// (verified against the JWKS: iss, aud, sid of the session, the event, no nonce), the browser
/// lands on the post-logout URI with the state, and the next authorization request asks the
/// user to sign in again. An unregistered post_logout_redirect_uri is refused first.
#[tokio::test(flavor = "multi_thread")]
async fn browser_rp_initiated_logout_with_backchannel() {
    let s = TestServer::start_with(|c| c.allow_private_logout_uris = true).await;
    let app = client_app().await;
    let (id, secret) = register(&s, &app).await;
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().expect("alice").id;
    let (s, app, id, secret, alice) = (&s, &app, id.as_str(), secret.as_str(), alice.as_str());
    let logout_url = |post_logout: &str| {
        let mut u = url::Url::parse(&format!("{}/logout", s.url)).unwrap();
        u.query_pairs_mut().append_pair("client_id", id).append_pair("post_logout_redirect_uri", post_logout).append_pair("state", "xyz");
        u.to_string()
    };
    with_browser(|driver| async move {
        let id_claims = first_sign_in(&driver, s, app, id, secret).await;
        let sid = id_claims["sid"].as_str().expect("sid in the ID token").to_string();

        // §3: an unregistered post_logout_redirect_uri is an error page here, not a redirect,
        // and signs nobody out.
        driver.goto(&logout_url("http://127.0.0.1:9/elsewhere")).await?;
        let url = driver.current_url().await?;
        assert!(url.as_str().starts_with(&format!("{}/logout", s.url)), "no redirect: {url}");
        assert!(driver.find(By::Id("sign-out")).await.is_err(), "no confirmation for an invalid request");

        // The confirmation page, then #sign-out.
        driver.goto(&logout_url(&app.signed_out)).await?;
        let button = wait_for(&driver, By::Id("sign-out")).await;
        assert!(app.posts.lock().unwrap().is_empty(), "opening the logout page alone signs nobody out");
        button.click().await?;
        let landed = wait_for_url(&driver, "the post-logout page", |u| u.as_str().starts_with(&app.signed_out)).await;
        let q: HashMap<String, String> = landed.query_pairs().into_owned().collect();
        assert_eq!(q.get("state").map(String::as_str), Some("xyz"), "{landed}");
        assert_eq!(wait_for(&driver, By::Tag("body")).await.text().await?.trim(), "signed out of the client");

        // Back-Channel Logout §2.5: the logout token was POSTed to the client (before the
        // redirect; polled briefly to not depend on that).
        let deadline = Instant::now() + WAIT;
        let posts = loop {
            let posts = app.posts.lock().unwrap().clone();
            if !posts.is_empty() || Instant::now() > deadline {
                break posts;
            }
            tokio::time::sleep(POLL).await;
        };
        assert_eq!(posts.len(), 1, "one delivery for the one client: {posts:?}");
        let post = &posts[0];
        assert!(post.content_type.starts_with("application/x-www-form-urlencoded"), "{}", post.content_type);
        let token = post.form.get("logout_token").expect("a logout_token form field");
        let (typ, claims) = verify_rs256(&s.url, token, id).await;
        assert_eq!(typ.as_deref(), Some("logout+jwt"), "§2.4 explicit typing");
        assert_eq!(claims["iss"], s.url);
        assert_eq!(claims["aud"], id);
        assert_eq!(claims["sid"], sid.as_str(), "the sid of the ID token (§2.4)");
        assert_eq!(claims["sub"], alice);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()), "jti: {claims}");
        assert!(claims["events"][BACKCHANNEL_EVENT].is_object(), "the back-channel logout event: {claims}");
        assert!(claims.get("nonce").is_none(), "§2.4: a logout token must not contain a nonce: {claims}");

        // The session is gone: a new authorization request asks to sign in again.
        let (_, challenge) = pkce_pair();
        open_login(&driver, s, &oidc_url(s, id, &app.callback, "st-after", &challenge, &[])).await;
        assert!(driver.find(By::Id("password")).await.is_ok());
        Ok(())
    })
    .await;
}
