//! The admin console in headless Chromium (issue 16): an administrator signs in, registers a
//! client and completes the code flow with it, disables a user (whose refresh token then
//! fails), and the audit page shows both changes under the administrator's name.
use crate::common::chromium::*;
use crate::common::*;

use tessera_server::service::admin::{self, NewUser};
use thirtyfour::prelude::*;

#[tokio::test(flavor = "multi_thread")]
async fn administrator_registers_a_client_uses_it_and_disables_a_user() {
    let s = TestServer::start().await;
    admin::set_admin(&*s.svc.store, USER, true).await.unwrap();
    create_user(&*s.svc.store, NewUser { username: "bob".into(), ..Default::default() }, s.svc.now()).await;
    let cb = callback_server().await;
    let (s, cb) = (&s, cb);
    with_browser(|driver| async move {
        // /admin sends to the console's sign-in page.
        driver.goto(&format!("{}/admin", s.url)).await?;
        wait_for_url(&driver, "the console sign-in", |u| u.path() == "/admin/signin").await;
        sign_in(&driver, USER, PASSWORD).await;
        wait_for_url(&driver, "the console", |u| u.path() == "/admin").await;
        assert_eq!(wait_for(&driver, By::Id("signed-in-as")).await.text().await?, USER);

        // Register a client; its secret is on the page this once.
        driver.find(By::LinkText("Clients")).await?.click().await?;
        wait_for(&driver, By::Id("new-client")).await;
        driver.find(By::Id("name")).await?.send_keys("Console Notes").await?;
        driver.find(By::Id("redirect_uris")).await?.send_keys(&cb).await?;
        let scope = driver.find(By::Id("scope")).await?;
        scope.clear().await?;
        scope.send_keys("notes.read").await?;
        driver.find(By::Id("create-client")).await?.click().await?;
        let client_id = wait_for(&driver, By::Id("client-id")).await.text().await?;
        let secret = driver.find(By::Id("client-secret")).await?.text().await?;
        assert_eq!(driver.find(By::Id("notice")).await?.text().await?, "Client registered.");

        // The code flow with it, in the same browser (alice's session: straight to consent).
        let (verifier, challenge) = pkce_pair();
        driver.goto(&s.authorize_url(&client_id, &cb, "notes.read", "console-st", Some(&challenge))).await?;
        let scopes = consent_scopes(&driver, s).await;
        assert_eq!(scopes, vec![("notes.read".to_string(), "Read your notes".to_string())]);
        assert_eq!(driver.find(By::Id("client-name")).await?.text().await?, "Console Notes");
        driver.find(By::Id("allow")).await?.click().await?;
        let q = callback_query(&driver, &cb).await;
        let (status, body, _) = token_basic(
            &s.url,
            &client_id,
            &secret,
            &[("grant_type", "authorization_code"), ("code", &q["code"]), ("redirect_uri", &cb), ("code_verifier", &verifier)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let claims = verify_access_token(&s.url, body["access_token"].as_str().unwrap(), API).await;
        assert_eq!(claims["client_id"], client_id.as_str());

        // bob uses the app too (his own browser): he holds a refresh token.
        let (bob_verifier, bob_challenge) = pkce_pair();
        let back = Browser::new(&s.url).journey_as(&s.authorize_url(&client_id, &cb, "notes.read", "bob-st", Some(&bob_challenge)), "bob").await;
        let code = query(&back).remove("code").unwrap();
        let (status, bob_tokens, _) = token_basic(
            &s.url,
            &client_id,
            &secret,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &cb), ("code_verifier", &bob_verifier)],
        )
        .await;
        assert_eq!(status, 200, "{bob_tokens}");
        let bob_refresh = bob_tokens["refresh_token"].as_str().unwrap().to_string();

        // The administrator finds bob and disables him.
        driver.goto(&format!("{}/admin/users", s.url)).await?;
        wait_for(&driver, By::Id("search")).await.send_keys("bob").await?;
        driver.find(By::Id("search-button")).await?.click().await?;
        wait_for(&driver, By::LinkText("bob")).await.click().await?;
        wait_for(&driver, By::Id("disable-user")).await.click().await?;
        wait_for(&driver, By::Id("disabled-tag")).await;
        let (status, err, _) = token_basic(&s.url, &client_id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &bob_refresh)]).await;
        assert_eq!((status, err["error"].as_str()), (400, Some("invalid_grant")), "bob's refresh token fails: {err}");

        // The audit page shows both changes, by alice.
        driver.find(By::LinkText("Audit log")).await?.click().await?;
        wait_for(&driver, By::Id("events")).await;
        for kind in ["admin.client_created", "admin.user_disabled"] {
            let row = driver.find(By::Css(format!("tr[data-type='{kind}']"))).await?;
            assert_eq!(row.find(By::ClassName("actor")).await?.text().await?, USER, "{kind} by alice");
        }
        driver.screenshot(std::path::Path::new("/tmp/tessera-console-audit.png")).await?;
        Ok(())
    })
    .await;
}
