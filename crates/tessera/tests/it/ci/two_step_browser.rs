//! Two-step sign-in and passkeys in headless Chromium (issue 15): an authenticator app set up
//! on the account page with a code computed from the secret the page shows, the second step at
//! sign-in, a recovery code that works once; a passkey registered through Chromium's virtual
//! authenticator (DevTools `WebAuthn.enable` / `WebAuthn.addVirtualAuthenticator`), then a
//! sign-in with the passkey alone, and the passkey as the second step a `--require-mfa` client
//! forces. The ID tokens' `amr`/`acr` say what was used.
use crate::common::chromium::*;
use crate::common::*;
use serde_json::json;
use tessera_server::service::admin::NewClient;
use thirtyfour::prelude::*;

const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

async fn oidc_client(s: &TestServer, cb: &str, require_mfa: bool) -> (String, String) {
    let c = s
        .client(NewClient { name: "Notes Client".into(), redirect_uris: vec![cb.into()], scope: "openid notes.read".into(), require_mfa, ..Default::default() })
        .await;
    (c.client.client_id, c.client_secret.unwrap())
}

/// The code of the callback, redeemed: the ID token's claims, its signature verified.
async fn id_token_claims(s: &TestServer, id: &str, secret: &str, cb: &str, code: &str, verifier: &str) -> serde_json::Value {
    let (status, tokens, _) =
        token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", cb), ("code_verifier", verifier)]).await;
    assert_eq!(status, 200, "{tokens}");
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{}/jwks.json", s.url)).await.unwrap().json().await.unwrap();
    let token = tokens["id_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[id]);
    v.set_issuer(&[&s.url]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).unwrap().claims
}

/// A fresh start at Tessera: its cookies (the session) gone.
async fn forget_session(driver: &WebDriver, s: &TestServer) {
    driver.goto(&format!("{}/account/signin", s.url)).await.unwrap();
    driver.delete_all_cookies().await.unwrap();
}

async fn account_sign_in(driver: &WebDriver, s: &TestServer) {
    driver.goto(&format!("{}/account/signin", s.url)).await.unwrap();
    sign_in(driver, USER, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_set_up_on_the_account_page_and_used_at_sign_in() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, secret) = oidc_client(&s, &cb, false).await;
    let (s, cb, id, secret) = (&s, cb, id, secret);
    with_browser(|driver| async move {
        account_sign_in(&driver, s).await;
        wait_for(&driver, By::Id("add-app")).await.click().await?;
        let shown = wait_for(&driver, By::Id("totp-secret")).await.text().await?;
        assert!(driver.find(By::Css("#qr svg")).await.is_ok(), "a QR code on the page");
        driver.find(By::Id("name")).await?.clear().await?;
        driver.find(By::Id("name")).await?.send_keys("My phone").await?;
        driver.find(By::Id("code")).await?.send_keys(totp_code(&shown, s.svc.now())).await?;
        driver.find(By::Id("verify")).await?.click().await?;
        let codes: Vec<String> = {
            let list = wait_for(&driver, By::Id("recovery-codes")).await;
            let mut v = Vec::new();
            for c in list.find_all(By::Tag("code")).await? {
                v.push(c.text().await?);
            }
            v
        };
        assert_eq!(codes.len(), 10);
        driver.find(By::Id("continue")).await?.click().await?;
        assert!(wait_for(&driver, By::Id("factors")).await.text().await?.contains("My phone"));
        driver.find(By::Id("sign-out")).await?.click().await?;

        // The next sign-in asks for a code after the password.
        let (verifier, challenge) = pkce_pair();
        open_login(&driver, s, &s.authorize_url(&id, &cb, "openid notes.read", "st", Some(&challenge))).await;
        sign_in(&driver, USER, PASSWORD).await;
        wait_for_url(&driver, "the second step", |u| u.path() == "/login/two-step").await;
        s.clock.advance(30);
        wait_for(&driver, By::Id("code")).await.send_keys(totp_code(&shown, s.svc.now())).await?;
        driver.find(By::Id("verify")).await?.click().await?;
        consent_scopes(&driver, s).await;
        driver.find(By::Id("allow")).await?.click().await?;
        let q = callback_query(&driver, &cb).await;
        let claims = id_token_claims(s, &id, &secret, &cb, &q["code"], &verifier).await;
        assert_eq!((claims["amr"].clone(), claims["acr"].clone()), (json!(["pwd", "otp", "mfa"]), json!(MFA)));

        // A recovery code signs in once.
        for (round, expect_ok) in [(0, true), (1, false)] {
            forget_session(&driver, s).await;
            let (_, challenge) = pkce_pair();
            open_login(&driver, s, &s.authorize_url(&id, &cb, "openid notes.read", &format!("r{round}"), Some(&challenge))).await;
            sign_in(&driver, USER, PASSWORD).await;
            wait_for(&driver, By::Id("code")).await.send_keys(&codes[0]).await?;
            driver.find(By::Id("verify")).await?.click().await?;
            if expect_ok {
                callback_query(&driver, &cb).await;
            } else {
                assert!(wait_for(&driver, By::Id("error")).await.text().await?.contains("used already"));
            }
        }
        driver.screenshot(std::path::Path::new("/tmp/tessera-two-step.png")).await?;
        Ok(())
    })
    .await;
}

/// Chromium's virtual authenticator: a platform authenticator with resident keys and user
/// verification that always succeeds.
async fn virtual_authenticator(driver: &WebDriver) {
    let dev = driver.cdp();
    dev.send_raw("WebAuthn.enable", json!({ "enableUI": false })).await.unwrap();
    dev.send_raw(
        "WebAuthn.addVirtualAuthenticator",
        json!({ "options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true, "automaticPresenceSimulation": true
        } }),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passkey_signs_in_alone_and_as_the_second_step() {
    let s = TestServer::start_on_localhost().await;
    let cb = callback_server().await;
    let (id, secret) = oidc_client(&s, &cb, false).await;
    let (strict_id, strict_secret) = oidc_client(&s, &cb, true).await;
    let (s, cb, id, secret, strict_id, strict_secret) = (&s, cb, id, secret, strict_id, strict_secret);
    with_browser(|driver| async move {
        virtual_authenticator(&driver).await;
        account_sign_in(&driver, s).await;
        let name = wait_for(&driver, By::Id("passkey-name")).await;
        name.clear().await?;
        name.send_keys("Laptop").await?;
        driver.find(By::Id("add-passkey")).await?.click().await?;
        let factors = wait_for(&driver, By::Id("factors")).await.text().await?;
        assert!(factors.contains("Laptop") && factors.contains("Passkey"), "{factors}");
        let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
        let stored = s.svc.store.list_factors(&alice.id).await.unwrap();
        assert!(stored[0].credential_id.is_some());
        driver.find(By::Id("sign-out")).await?.click().await?;

        // Signing in with the passkey alone: no password.
        let (verifier, challenge) = pkce_pair();
        open_login(&driver, s, &s.authorize_url(&id, &cb, "openid notes.read", "pk", Some(&challenge))).await;
        wait_for(&driver, By::Id("passkey-sign-in")).await.click().await?;
        consent_scopes(&driver, s).await;
        driver.find(By::Id("allow")).await?.click().await?;
        let q = callback_query(&driver, &cb).await;
        let claims = id_token_claims(s, &id, &secret, &cb, &q["code"], &verifier).await;
        assert_eq!(claims["sub"], alice.id.as_str());
        assert_eq!((claims["amr"].clone(), claims["acr"].clone()), (json!(["hwk", "mfa"]), json!(MFA)));
        let after_first = s.svc.store.list_factors(&alice.id).await.unwrap();
        assert!(after_first[0].last_used_at.is_some(), "the use is recorded");

        // A client that requires a second factor: the password, then the passkey.
        forget_session(&driver, s).await;
        let (verifier, challenge) = pkce_pair();
        open_login(&driver, s, &s.authorize_url(&strict_id, &cb, "openid notes.read", "pk2", Some(&challenge))).await;
        sign_in(&driver, USER, PASSWORD).await;
        wait_for_url(&driver, "the second step", |u| u.path() == "/login/two-step").await;
        wait_for(&driver, By::Id("passkey-second-step")).await.click().await?;
        consent_scopes(&driver, s).await;
        driver.find(By::Id("allow")).await?.click().await?;
        let q = callback_query(&driver, &cb).await;
        let claims = id_token_claims(s, &strict_id, &strict_secret, &cb, &q["code"], &verifier).await;
        assert_eq!((claims["amr"].clone(), claims["acr"].clone()), (json!(["pwd", "hwk", "mfa"]), json!(MFA)));
        driver.screenshot(std::path::Path::new("/tmp/tessera-passkey.png")).await?;
        Ok(())
    })
    .await;
}

/// Issue 15: `ui_locales=de` gives German pages in a browser that prefers English.
#[tokio::test(flavor = "multi_thread")]
async fn a_german_sign_in_and_consent_for_ui_locales_de() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, _) = oidc_client(&s, &cb, false).await;
    let (s, cb, id) = (&s, cb, id);
    with_browser(|driver| async move {
        let (_, challenge) = pkce_pair();
        driver.goto(&format!("{}&ui_locales=de", s.authorize_url(&id, &cb, "openid notes.read", "de", Some(&challenge)))).await?;
        wait_for_url(&driver, "the sign-in page", |u| u.path() == "/login").await;
        assert_eq!(driver.find(By::Tag("html")).await?.attr("lang").await?.as_deref(), Some("de"));
        assert_eq!(wait_for(&driver, By::Id("sign-in")).await.text().await?, "Anmelden");
        sign_in(&driver, USER, PASSWORD).await;
        consent_scopes(&driver, s).await;
        assert_eq!(driver.find(By::Id("allow")).await?.text().await?, "Erlauben");
        assert!(driver.find(By::Tag("h1")).await?.text().await?.contains("möchte auf Ihr Konto zugreifen"));
        driver.screenshot(std::path::Path::new("/tmp/tessera-german.png")).await?;
        driver.find(By::Id("allow")).await?.click().await?;
        callback_query(&driver, &cb).await;
        Ok(())
    })
    .await;
}
