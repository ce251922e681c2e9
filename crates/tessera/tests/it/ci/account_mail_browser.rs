//! The account flows of issue 15 in headless Chromium: signing out another session from the
//! account page; a password change ending the other session; "Forgot your password?" through a
//! real SMTP conversation (the link read from the received mail); an invitation's link; and
//! self-registration confirmed by its mailed link before first use.
use crate::common::chromium::*;
use crate::common::smtp::SmtpSink;
use crate::common::*;
use tessera_server::service::admin::{Acting, NewUser};
use thirtyfour::prelude::*;

async fn account_sign_in(driver: &WebDriver, s: &TestServer, username: &str, password: &str) {
    driver.goto(&format!("{}/account/signin", s.url)).await.unwrap();
    sign_in(driver, username, password).await;
    wait_for(driver, By::Id("signed-in-as")).await;
}

/// A second browser (scripted) signed in to the account page.
async fn other_browser(s: &TestServer, password: &str) -> Browser {
    let b = Browser::new(&s.url);
    let html = b.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    assert_eq!(b.post_form("/account/signin", &[("csrf", &csrf), ("username", USER), ("password", password)]).await.status(), 303);
    assert_eq!(b.get("/account").await.status(), 200);
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_sign_out_and_a_password_change_end_the_other_session() {
    let s = TestServer::start().await;
    let s = &s;
    with_browser(|driver| async move {
        account_sign_in(&driver, s, USER, PASSWORD).await;
        let other = other_browser(s, PASSWORD).await;
        // The other session is listed; signing it out from here ends it.
        driver.refresh().await?;
        let rows = driver.find_all(By::Css("#sessions tbody tr")).await?;
        assert_eq!(rows.len(), 2);
        let mut ended = false;
        for row in rows {
            if let Ok(button) = row.find(By::Tag("button")).await {
                button.click().await?;
                ended = true;
                break;
            }
        }
        assert!(ended, "the other session has a sign-out button");
        assert!(wait_for(&driver, By::Id("notice")).await.text().await?.contains("signed out"));
        assert_eq!(location(&other.get("/account").await), "/account/signin", "the other browser is signed out");

        // A new password ends the other session, and this one stays.
        let other = other_browser(s, PASSWORD).await;
        let new = "a brand new long password";
        driver.find(By::Id("current_password")).await?.send_keys(PASSWORD).await?;
        driver.find(By::Id("new_password")).await?.send_keys(new).await?;
        driver.find(By::Id("confirm_password")).await?.send_keys(new).await?;
        driver.find(By::Id("change-password-button")).await?.click().await?;
        assert!(wait_for(&driver, By::Id("notice")).await.text().await?.contains("Password changed"));
        assert_eq!(location(&other.get("/account").await), "/account/signin", "the other session ended");
        driver.find(By::Id("signed-in-as")).await?;
        other_browser(s, new).await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_invitation_and_registration_by_mail() {
    let sink = SmtpSink::start().await;
    let mailer = sink.mailer();
    let s = TestServer::start_with(|c| {
        c.mailer = Some(mailer.clone());
        c.self_registration = true;
    })
    .await;
    let (s, sink) = (&s, &sink);
    with_browser(|driver| async move {
        // Forgot your password? → the mail → the link → a new password → sign in with it.
        driver.goto(&format!("{}/account/signin", s.url)).await?;
        wait_for(&driver, By::Id("forgot-password")).await.click().await?;
        wait_for(&driver, By::Id("who")).await.send_keys(USER).await?;
        driver.find(By::Id("send-link")).await?.click().await?;
        assert!(wait_for(&driver, By::Id("message")).await.text().await?.starts_with("If an account exists"));
        let link = sink.nth("alice@example.com", "Reset your password", 1).await.link(&format!("{}/password/reset?token=", s.url));
        driver.goto(&link).await?;
        let new = "my reset long password";
        wait_for(&driver, By::Id("new_password")).await.send_keys(new).await?;
        driver.find(By::Id("confirm_password")).await?.send_keys(new).await?;
        driver.find(By::Id("set-password-button")).await?.click().await?;
        assert!(wait_for(&driver, By::Id("message")).await.text().await?.contains("every session of the account has ended"));
        driver.goto(&link).await?;
        assert!(wait_for(&driver, By::Id("message")).await.text().await?.contains("expired or was used already"), "the link works once");
        account_sign_in(&driver, s, USER, new).await;
        driver.find(By::Id("sign-out")).await?.click().await?;

        // An invitation: the link sets the first password, and the address is verified.
        let act = Acting { store: &*s.svc.store, actor: "cli:test", now: s.svc.now() };
        let random = tessera_server::secret::OsRandom;
        act.invite(&mailer, &s.url, &random, NewUser { username: "erin".into(), email: Some("erin@example.com".into()), ..Default::default() }).await.unwrap();
        let link = sink.nth("erin@example.com", "You are invited", 1).await.link(&format!("{}/invite?token=", s.url));
        driver.goto(&link).await?;
        let erin_pw = "erin's long password";
        wait_for(&driver, By::Id("new_password")).await.send_keys(erin_pw).await?;
        driver.find(By::Id("confirm_password")).await?.send_keys(erin_pw).await?;
        driver.find(By::Id("set-password-button")).await?.click().await?;
        assert!(wait_for(&driver, By::Id("message")).await.text().await?.contains("Sign in as erin"));
        account_sign_in(&driver, s, "erin", erin_pw).await;
        assert!(driver.find(By::Id("email-verified")).await.is_ok(), "the invitation proved the mailbox");
        driver.find(By::Id("sign-out")).await?.click().await?;

        // Self-registration: nothing usable before the mailed link.
        wait_for(&driver, By::Id("create-account")).await.click().await?;
        let pw = "frank's long password";
        wait_for(&driver, By::Id("email")).await.send_keys("frank@example.com").await?;
        driver.find(By::Id("username")).await?.send_keys("frank").await?;
        driver.find(By::Id("password")).await?.send_keys(pw).await?;
        driver.find(By::Id("confirm_password")).await?.send_keys(pw).await?;
        driver.find(By::Id("register-button")).await?.click().await?;
        assert!(wait_for(&driver, By::Id("message")).await.text().await?.contains("frank@example.com"));
        assert!(s.svc.store.find_user_by_username("frank").await.unwrap().is_none(), "not before the link");
        let link = sink.nth("frank@example.com", "Finish creating your account", 1).await.link(&format!("{}/register/confirm?token=", s.url));
        driver.goto(&link).await?;
        assert!(wait_for(&driver, By::Id("title")).await.text().await?.contains("Your account is ready"));
        account_sign_in(&driver, s, "frank", pw).await;
        driver.screenshot(std::path::Path::new("/tmp/tessera-registered.png")).await?;
        Ok(())
    })
    .await;
}
