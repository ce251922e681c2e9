//! The authorization code flow in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, started by the test), against a real Tessera and a real client callback
//! server. These tests need `chromium` and `chromedriver` on PATH and fail (never skip) without.
use crate::common::chromium::*;
use crate::common::*;

use std::path::Path;
use thirtyfour::prelude::*;

/// RFC 6749 §4.1 in a browser: sign in, see the consent page (client name and the requested
/// scope descriptions), Allow, land on the client with code, state and iss (RFC 9207); the code
/// (with PKCE) buys an access token that verifies against the JWKS.
#[tokio::test(flavor = "multi_thread")]
async fn browser_sign_in_and_allow() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, secret) = s.confidential_client(&cb).await;
    let (verifier, challenge) = pkce_pair();
    let state = "browser-st-1";
    let authorize = s.authorize_url(&id, &cb, "notes.read notes.write", state, Some(&challenge));
    let (s, cb2) = (&s, cb.clone());
    with_browser(|driver| async move {
        open_login(&driver, s, &authorize).await;
        sign_in(&driver, USER, PASSWORD).await;
        let scopes = consent_scopes(&driver, s).await;
        assert_eq!(
            scopes,
            vec![("notes.read".to_string(), "Read your notes".to_string()), ("notes.write".to_string(), "Create and edit your notes".to_string())]
        );
        assert_eq!(driver.find(By::Id("client-name")).await?.text().await?, "Notes Client");
        let page = driver.find(By::Tag("body")).await?.text().await?;
        assert!(!page.contains("Delete your notes"), "unrequested scopes are not shown: {page}");
        driver.screenshot(Path::new("/tmp/tessera-consent.png")).await?;
        driver.find(By::Id("allow")).await?.click().await?;
        let q = callback_query(&driver, &cb2).await;
        assert_eq!(q["state"], state);
        assert_eq!(q["iss"], s.url, "RFC 9207 iss");
        let code = q.get("code").expect("a code on the callback");
        let (status, body, _) =
            token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &cb2), ("code_verifier", &verifier)])
                .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["scope"], "notes.read notes.write");
        let claims = verify_access_token(&s.url, body["access_token"].as_str().unwrap(), API).await;
        assert_eq!(claims["scope"], "notes.read notes.write");
        assert_eq!(claims["client_id"], id);
        Ok(())
    })
    .await;
}

/// RFC 6749 §4.1.2.1 in a browser: Deny sends the user back with access_denied and the state,
/// and no code.
#[tokio::test(flavor = "multi_thread")]
async fn browser_deny() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, _) = s.confidential_client(&cb).await;
    let (_, challenge) = pkce_pair();
    let authorize = s.authorize_url(&id, &cb, "notes.read", "browser-st-2", Some(&challenge));
    let (s, cb2) = (&s, cb.clone());
    with_browser(|driver| async move {
        open_login(&driver, s, &authorize).await;
        sign_in(&driver, USER, PASSWORD).await;
        let scopes = consent_scopes(&driver, s).await;
        assert_eq!(scopes, vec![("notes.read".to_string(), "Read your notes".to_string())]);
        driver.find(By::Id("deny")).await?.click().await?;
        let q = callback_query(&driver, &cb2).await;
        assert_eq!(q["error"], "access_denied");
        assert_eq!(q["state"], "browser-st-2");
        assert_eq!(q["iss"], s.url);
        assert!(!q.contains_key("code"), "no code after a denial: {q:?}");
        Ok(())
    })
    .await;
}

/// A wrong password shows the sign-in page again with an error; the right one then proceeds to
/// the consent page.
#[tokio::test(flavor = "multi_thread")]
async fn browser_wrong_password_then_right() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, _) = s.confidential_client(&cb).await;
    let (_, challenge) = pkce_pair();
    let authorize = s.authorize_url(&id, &cb, "notes.read", "browser-st-3", Some(&challenge));
    let s = &s;
    with_browser(|driver| async move {
        open_login(&driver, s, &authorize).await;
        sign_in(&driver, USER, "not the password").await;
        let error = wait_for(&driver, By::Id("error")).await;
        assert_eq!(error.text().await?, "Incorrect username or password.");
        let url = driver.current_url().await?;
        assert_eq!(url.path(), "/login", "still on the sign-in page: {url}");
        assert_eq!(driver.find(By::Id("username")).await?.value().await?.as_deref(), Some(USER), "the username is kept");
        sign_in(&driver, USER, PASSWORD).await;
        let scopes = consent_scopes(&driver, s).await;
        assert_eq!(scopes, vec![("notes.read".to_string(), "Read your notes".to_string())]);
        Ok(())
    })
    .await;
}
