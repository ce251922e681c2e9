//! The device verification page (RFC 8628 §3.3) in a real browser: headless Chromium driven over
//! WebDriver (chromedriver, started by the test) against a real Tessera. The user opens the
//! verification URI (or the complete one, code prefilled), continues, signs in, sees the device
//! notice with the code on the consent page, and allows or denies; the device's poll then gets
//! tokens or access_denied. These tests need `chromium` and `chromedriver` on PATH and fail
//! (never skip) without. The browser helpers are those of `browser.rs`.
use crate::common::chromium::*;
use crate::common::*;

use std::path::Path;
use std::time::Instant;
use thirtyfour::prelude::*;

/// A public device client; returns its id and a fresh device authorization (RFC 8628 §3.2).
async fn device_request(s: &TestServer) -> (String, serde_json::Value) {
    let id = s.device_client().await;
    let res = reqwest::Client::new()
        .post(format!("{}/device_authorization", s.url))
        .form(&[("client_id", id.as_str()), ("scope", "notes.read notes.write")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    (id, res.json().await.unwrap())
}

/// The device's poll (RFC 8628 §3.4).
async fn poll(s: &TestServer, client_id: &str, device_code: &str) -> (u16, serde_json::Value) {
    let (status, body, _) = token_form(&s.url, &[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", client_id)]).await;
    (status, body)
}

/// Wait for the verification page's code field.
async fn code_field(driver: &WebDriver) -> WebElement {
    wait_for(driver, By::Id("user_code")).await
}

/// After the code: the sign-in page (the client's name shown), then sign in.
async fn sign_in_for_device(driver: &WebDriver, s: &TestServer) {
    wait_for_url(driver, "the sign-in page", |u| u.as_str().starts_with(&format!("{}/login", s.url))).await;
    assert_eq!(wait_for(driver, By::Id("client-name")).await.text().await.unwrap(), "Notes CLI");
    sign_in(driver, USER, PASSWORD).await;
}

/// The consent page of a device request: returns the code in the device notice.
async fn device_consent(driver: &WebDriver, s: &TestServer) -> String {
    wait_for_url(driver, "the consent page", |u| u.as_str().starts_with(&format!("{}/consent", s.url))).await;
    let notice = wait_for(driver, By::Id("device-notice")).await;
    assert!(notice.is_displayed().await.unwrap(), "the device notice is visible");
    let mut scopes = Vec::new();
    for li in driver.find_all(By::Css("ul#scopes li[data-scope]")).await.unwrap() {
        scopes.push(li.attr("data-scope").await.unwrap().unwrap());
    }
    assert_eq!(scopes, ["notes.read", "notes.write"]);
    driver.find(By::Id("device-code")).await.unwrap().text().await.unwrap()
}

/// The final page's `h1#title`.
async fn final_title(driver: &WebDriver) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(h1) = driver.find(By::Id("title")).await {
            return h1.text().await.unwrap();
        }
        if Instant::now() > deadline {
            panic!("no h1#title at {}; page:\n{}", driver.current_url().await.unwrap(), driver.source().await.unwrap_or_default());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// RFC 8628 §3.3.1 `verification_uri_complete`: the page opens with the code prefilled (the user
/// still confirms), Continue, sign in, the consent page shows the device notice with the same
/// code, Allow, "Device connected"; the device's next poll gets tokens for the Notes API.
#[tokio::test(flavor = "multi_thread")]
async fn browser_device_verification_uri_complete_and_allow() {
    let s = TestServer::start().await;
    let (id, d) = device_request(&s).await;
    let user_code = d["user_code"].as_str().unwrap().to_string();
    let complete = d["verification_uri_complete"].as_str().unwrap().to_string();
    let (status, body) = poll(&s, &id, d["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));
    let s = &s;
    let code = user_code.clone();
    with_browser(|driver| async move {
        driver.goto(&complete).await?;
        let field = code_field(&driver).await;
        assert_eq!(field.value().await?.as_deref(), Some(code.as_str()), "prefilled from verification_uri_complete");
        driver.find(By::Id("continue")).await?.click().await?;
        sign_in_for_device(&driver, s).await;
        assert_eq!(device_consent(&driver, s).await, code, "the consent page shows the device's code");
        driver.screenshot(Path::new("/tmp/tessera-device-consent.png")).await?;
        driver.find(By::Id("allow")).await?.click().await?;
        assert_eq!(final_title(&driver).await, "Device connected");
        Ok(())
    })
    .await;
    s.clock.advance(5);
    let (status, t) = poll(s, &id, d["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["scope"], "notes.read notes.write");
    let claims = verify_access_token(&s.url, t["access_token"].as_str().unwrap(), API).await;
    assert_eq!(claims["client_id"], id);
}

/// RFC 8628 §6.1 by hand: a wrong code shows an error on the page; the right code typed in lower
/// case without the dash works (case-insensitive, punctuation ignored).
#[tokio::test(flavor = "multi_thread")]
async fn browser_device_code_typed_by_hand_lowercase_without_dash() {
    let s = TestServer::start().await;
    let (id, d) = device_request(&s).await;
    let user_code = d["user_code"].as_str().unwrap().to_string();
    let verification_uri = d["verification_uri"].as_str().unwrap().to_string();
    let s = &s;
    let code = user_code.clone();
    with_browser(|driver| async move {
        driver.goto(&verification_uri).await?;
        let field = code_field(&driver).await;
        assert_eq!(field.value().await?.as_deref(), Some(""), "empty without ?user_code");
        field.send_keys("bcdf-ghjk").await?;
        driver.find(By::Id("continue")).await?.click().await?;
        let error = wait_for(&driver, By::Id("error")).await;
        assert_eq!(error.text().await?, "That code is not valid or has expired. Check the code on your device.");
        let field = code_field(&driver).await;
        field.clear().await?;
        let typed = code.replace('-', "").to_lowercase();
        field.send_keys(&typed).await?;
        driver.find(By::Id("continue")).await?.click().await?;
        sign_in_for_device(&driver, s).await;
        assert_eq!(device_consent(&driver, s).await, code, "shown in its display form");
        driver.find(By::Id("allow")).await?.click().await?;
        assert_eq!(final_title(&driver).await, "Device connected");
        Ok(())
    })
    .await;
    let (status, t) = poll(s, &id, d["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{t}");
}

/// RFC 8628 §3.5 access_denied from the page: Deny shows "Request denied" and the device's poll
/// answers access_denied.
#[tokio::test(flavor = "multi_thread")]
async fn browser_device_deny() {
    let s = TestServer::start().await;
    let (id, d) = device_request(&s).await;
    let complete = d["verification_uri_complete"].as_str().unwrap().to_string();
    let s = &s;
    with_browser(|driver| async move {
        driver.goto(&complete).await?;
        code_field(&driver).await;
        driver.find(By::Id("continue")).await?.click().await?;
        sign_in_for_device(&driver, s).await;
        device_consent(&driver, s).await;
        driver.find(By::Id("deny")).await?.click().await?;
        assert_eq!(final_title(&driver).await, "Request denied");
        Ok(())
    })
    .await;
    let (status, body) = poll(s, &id, d["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")));
}
