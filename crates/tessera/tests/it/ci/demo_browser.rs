//! The seed's story in a real browser: headless Chromium (chromedriver started by the test)
//! through the Notes Client, Tessera and the Notes API. Needs `chromium` and `chromedriver` on
//! PATH and fails (never skips) without.
use crate::common::chromium::*;
use crate::common::stack::*;
use crate::common::{PASSWORD, USER};
use std::path::Path;
use thirtyfour::prelude::*;

/// Open the Notes Client, leave only `scopes` ticked, press Connect, sign in at Tessera; returns
/// the scopes listed on the consent page as (data-scope, text).
async fn connect_until_consent(driver: &WebDriver, st: &Stack, scopes: &[&str]) -> Vec<(String, String)> {
    driver.goto(&st.client_url).await.unwrap();
    for id in ["notes.read", "notes.write", "notes.delete"] {
        let cb = wait_for(driver, By::Id(format!("perm-{id}"))).await;
        if cb.is_selected().await.unwrap() != scopes.contains(&id) {
            cb.click().await.unwrap();
        }
    }
    driver.find(By::Id("connect")).await.unwrap().click().await.unwrap();
    wait_for_url(driver, "Tessera's sign-in page", |u| u.as_str().starts_with(&format!("{}/login", st.s.url))).await;
    wait_for(driver, By::Id("username")).await.send_keys(USER).await.unwrap();
    driver.find(By::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    driver.find(By::Id("sign-in")).await.unwrap().click().await.unwrap();
    wait_for_url(driver, "Tessera's consent page", |u| u.as_str().starts_with(&format!("{}/consent", st.s.url))).await;
    wait_for(driver, By::Id("allow")).await;
    let mut listed = Vec::new();
    for li in driver.find_all(By::Css("ul#scopes li[data-scope]")).await.unwrap() {
        listed.push((li.attr("data-scope").await.unwrap().unwrap(), li.text().await.unwrap()));
    }
    listed
}

/// Press Allow and wait for the Notes Client to show the notes; returns their titles.
async fn allow_and_see_notes(driver: &WebDriver, st: &Stack) -> Vec<String> {
    driver.find(By::Id("allow")).await.unwrap().click().await.unwrap();
    wait_for_url(driver, "the Notes Client", |u| u.as_str().starts_with(&st.client_url) && u.path() == "/").await;
    wait_for(driver, By::Id("notes")).await;
    titles(driver).await
}

async fn titles(driver: &WebDriver) -> Vec<String> {
    let mut out = Vec::new();
    for t in driver.find_all(By::Css("#notes .note-title")).await.unwrap() {
        out.push(t.text().await.unwrap());
    }
    out
}

/// Connect, sign in, the consent page lists the three notes scopes with their descriptions,
/// allow, the notes appear; then a note is created through the app.
#[tokio::test(flavor = "multi_thread")]
async fn demo_browser_connect_consent_and_notes() {
    let st = Stack::start().await;
    let st = &st;
    with_browser(|driver| async move {
        let mut listed = connect_until_consent(&driver, st, &["notes.read", "notes.write", "notes.delete"]).await;
        listed.sort();
        assert_eq!(
            listed,
            [("notes.delete", "Delete your notes"), ("notes.read", "Read your notes"), ("notes.write", "Create and edit your notes")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(driver.find(By::Id("client-name")).await?.text().await?, "Notes Client");
        driver.screenshot(Path::new("/tmp/tessera-demo-consent.png")).await?;
        assert_eq!(allow_and_see_notes(&driver, st).await, ["Groceries", "Ideas"]);
        assert_eq!(driver.find(By::Id("flash")).await?.text().await?, "Your Notes account is connected.");
        driver.find(By::Id("new-title")).await?.send_keys("Buy stamps").await?;
        driver.find(By::Id("new-body")).await?.send_keys("for the postcards").await?;
        driver.find(By::Id("create")).await?.click().await?;
        wait_for(&driver, By::XPath("//*[@id='flash'][contains(., 'Created')]")).await;
        assert_eq!(titles(&driver).await, ["Groceries", "Ideas", "Buy stamps"]);
        driver.screenshot(Path::new("/tmp/tessera-demo-notes.png")).await?;
        Ok(())
    })
    .await;
}

/// Granting only read, then pressing Delete: the API refuses and the app says so in words.
#[tokio::test(flavor = "multi_thread")]
async fn demo_browser_read_only_then_delete_is_refused() {
    let st = Stack::start().await;
    let st = &st;
    with_browser(|driver| async move {
        let listed = connect_until_consent(&driver, st, &["notes.read"]).await;
        assert_eq!(listed, [("notes.read".to_string(), "Read your notes".to_string())]);
        assert_eq!(allow_and_see_notes(&driver, st).await, ["Groceries", "Ideas"]);
        driver.find(By::Css("#notes .note .delete")).await?.click().await?;
        let flash = wait_for(&driver, By::XPath("//*[@id='flash'][@data-kind='error']")).await;
        let text = flash.text().await?;
        assert!(text.starts_with("This app was not given permission to delete your notes."), "{text}");
        assert_eq!(titles(&driver).await, ["Groceries", "Ideas"], "nothing was deleted");
        assert_eq!(st.guard.stats().insufficient_scope, 1, "the Notes API refused the call");
        driver.screenshot(Path::new("/tmp/tessera-demo-refused.png")).await?;
        Ok(())
    })
    .await;
}

/// An expired access token is refreshed transparently: first when the API rejects it (the
/// client's clock thought it fresh), then before the call (the client knows it expired).
#[tokio::test(flavor = "multi_thread")]
async fn demo_browser_expired_token_is_refreshed_transparently() {
    let st = Stack::start().await;
    let st = &st;
    with_browser(|driver| async move {
        connect_until_consent(&driver, st, &["notes.read", "notes.write", "notes.delete"]).await;
        assert_eq!(allow_and_see_notes(&driver, st).await, ["Groceries", "Ideas"]);
        let first = st.client_access_tokens();

        st.advance_server_clock(700);
        driver.goto(&st.client_url).await?;
        wait_for(&driver, By::Id("notes")).await;
        assert_eq!(titles(&driver).await, ["Groceries", "Ideas"]);
        assert!(driver.find(By::Id("flash")).await.is_err(), "no message: the refresh is invisible");
        assert_eq!(st.guard.stats().expired, 1, "the API rejected the expired token");
        assert_eq!(st.client.stats().reactive_refreshes, 1);
        let second = st.client_access_tokens();
        assert_ne!(first, second);

        st.advance_server_clock(700);
        st.client_clock.advance(1400);
        driver.goto(&st.client_url).await?;
        wait_for(&driver, By::Id("notes")).await;
        assert_eq!(titles(&driver).await, ["Groceries", "Ideas"]);
        assert_eq!(st.client.stats().proactive_refreshes, 1);
        assert_eq!(st.guard.stats().expired, 1, "this time the API never saw the expired token");
        assert_ne!(second, st.client_access_tokens());
        Ok(())
    })
    .await;
}
