//! The account page in headless Chromium (issue 15): after allowing an app, the user follows
//! the consent page's promise — the account page lists the app with what it may do, and
//! "Remove access" ends it: the app's refresh token fails and the next authorization asks again.
use crate::common::chromium::*;
use crate::common::*;

use thirtyfour::prelude::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_user_removes_an_apps_access_from_the_account_page() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, secret) = s.confidential_client(&cb).await;
    let (s, cb, id, secret) = (&s, cb, id, secret);
    with_browser(|driver| async move {
        let (verifier, challenge) = pkce_pair();
        open_login(&driver, s, &s.authorize_url(&id, &cb, "notes.read", "acct-st", Some(&challenge))).await;
        sign_in(&driver, USER, PASSWORD).await;
        consent_scopes(&driver, s).await;
        // The consent page says where to change one's mind.
        assert_eq!(driver.find(By::Id("account-link")).await?.attr("href").await?.as_deref(), Some("/account"));
        driver.find(By::Id("allow")).await?.click().await?;
        let q = callback_query(&driver, &cb).await;
        let (status, tokens, _) = token_basic(
            &s.url,
            &id,
            &secret,
            &[("grant_type", "authorization_code"), ("code", &q["code"]), ("redirect_uri", &cb), ("code_verifier", &verifier)],
        )
        .await;
        assert_eq!(status, 200, "{tokens}");
        let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

        // The account page (same session: no second sign-in) lists the app.
        driver.goto(&format!("{}/account", s.url)).await?;
        let row = wait_for(&driver, By::Css(format!("tr[data-client='{id}']"))).await;
        let text = row.text().await?;
        assert!(text.contains("Notes Client") && text.contains("Read your notes"), "{text}");
        row.find(By::Tag("button")).await?.click().await?;
        assert!(wait_for(&driver, By::Id("notice")).await.text().await?.contains("Access removed"));
        driver.find(By::Id("no-apps")).await?;
        let (status, err, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
        assert_eq!((status, err["error"].as_str()), (400, Some("invalid_grant")), "{err}");
        // The next authorization asks again.
        let (_, challenge) = pkce_pair();
        driver.goto(&s.authorize_url(&id, &cb, "notes.read", "acct-st2", Some(&challenge))).await?;
        consent_scopes(&driver, s).await;
        driver.screenshot(std::path::Path::new("/tmp/tessera-account.png")).await?;
        Ok(())
    })
    .await;
}
