//! Passwords over real HTTP (issue 15): a hash made with other Argon2id parameters than the
//! server's is made again with the server's at the next successful sign-in (a wrong password
//! changes nothing, no session ends), and `--password-min-length-single-factor` (NIST SP
//! 800-63B-4 §3.1.1.2: 15 characters when the password is the only factor) on the account page.
use crate::common::*;
use tessera_server::service::admin::{NewUser, PasswordPolicy};
use tessera_server::service::authn::{Argon2Params, verify_password};

async fn account_sign_in(b: &Browser, username: &str, password: &str) -> reqwest::Response {
    let html = b.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").expect("csrf");
    b.post_form("/account/signin", &[("csrf", &csrf), ("username", username), ("password", password)]).await
}

async fn hash_of(s: &TestServer, username: &str) -> String {
    s.svc.store.find_user_by_username(username).await.unwrap().unwrap().password_hash
}

/// The server hashes with m = 24 MiB; walt signed in while his hash was the server's (nothing
/// to do), then his hash is one an older server made with its weaker defaults (m = 19 MiB).
/// A wrong password leaves it; the right one at /login upgrades it to the server's parameters,
/// the new hash verifies the same password, and his sessions (the one from before, the new
/// one) stay. The next sign-in has nothing to upgrade.
#[tokio::test]
async fn a_sign_in_upgrades_a_hash_made_with_weaker_parameters() {
    let stronger = Argon2Params::new(24_576, 2, 1).unwrap();
    let s = TestServer::start_with(|c| c.argon2 = stronger).await;
    let current = stronger.hash(PASSWORD).unwrap();
    let walt = tessera_server::service::admin::create_user_with_hash(
        &*s.svc.store,
        NewUser { username: "walt".into(), ..Default::default() },
        current.clone(),
        s.svc.now(),
    )
    .await
    .unwrap();
    let before = Browser::new(&s.url);
    assert_eq!(account_sign_in(&before, "walt", PASSWORD).await.status(), 303);
    s.svc.settle_rehashes().await;
    assert_eq!(hash_of(&s, "walt").await, current, "made with the server's parameters: not hashed again");

    // As an older server with the default parameters made it (the fixtures' hash of PASSWORD).
    let weak = seeds().password_hash.clone();
    assert!(weak.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{weak}");
    assert!(s.svc.store.update_user_password_hash(&walt.id, &current, &weak).await.unwrap());

    let client = s.confidential_client("https://app.example/cb").await.0;
    let url = s.authorize_url(&client, "https://app.example/cb", "notes.read", "st", Some(&pkce_pair().1));
    let b = Browser::new(&s.url);
    let (_, html) = b.open_login(&url).await;
    assert_eq!(b.sign_in(&html, "walt", "not the password").await.status(), 401);
    s.svc.settle_rehashes().await;
    assert_eq!(hash_of(&s, "walt").await, weak, "a wrong password rehashes nothing");

    let (_, html) = b.open_login(&url).await;
    let res = b.sign_in(&html, "walt", PASSWORD).await;
    assert_eq!(res.status(), 303, "signed in");
    assert!(location(&res).starts_with("/consent"));
    s.svc.settle_rehashes().await;
    let upgraded = hash_of(&s, "walt").await;
    assert!(upgraded.starts_with("$argon2id$v=19$m=24576,t=2,p=1$"), "{upgraded}");
    assert!(stronger.made(&upgraded) && upgraded != current, "a new salt");
    assert!(verify_password(PASSWORD, &upgraded) && !verify_password("not the password", &upgraded));
    assert_eq!(before.get("/account").await.status(), 200, "the session from before stays");
    assert_eq!(b.get("/account").await.status(), 200, "and the new one");
    assert_eq!(s.svc.store.list_user_sessions(&walt.id, s.svc.now()).await.unwrap().len(), 2);

    // Signed in with the upgraded hash: nothing more to do.
    assert!(s.svc.sign_in("walt", PASSWORD, "10.2.2.2").await.unwrap().is_ok());
    s.svc.settle_rehashes().await;
    assert_eq!(hash_of(&s, "walt").await, upgraded);
}

/// The rehash is a compare-and-swap on the hash the sign-in checked: a password changed while
/// it ran wins (the rehash of the old one is dropped).
#[tokio::test]
async fn a_password_changed_during_a_rehash_wins() {
    let s = TestServer::start_with(|c| c.argon2 = Argon2Params::new(24_576, 2, 1).unwrap()).await;
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    assert!(s.svc.sign_in(USER, PASSWORD, "10.3.3.3").await.unwrap().is_ok());
    let newer = s.svc.config.argon2.hash("a password set meanwhile").unwrap();
    s.svc.store.update_user_password(USER, &newer, None, s.svc.now()).await.unwrap();
    s.svc.settle_rehashes().await;
    let stored = hash_of(&s, USER).await;
    // Either the rehash ran first (and the change replaced it) or it found the hash changed.
    assert_eq!(stored, newer);
    assert_ne!(alice.password_hash, stored);
}

/// `--password-min-length-single-factor 15`: on the account page a password that would be the
/// account's only factor needs 15 characters (the page says so, and the refusal names the way
/// out); with an authenticator app set up, the general minimum (8) holds.
#[tokio::test]
async fn the_account_page_asks_15_characters_of_a_password_alone() {
    let s = TestServer::start_with(|c| c.password_policy = PasswordPolicy { min_length_single_factor: Some(15), ..Default::default() }).await;
    let b = Browser::new(&s.url);
    assert_eq!(account_sign_in(&b, USER, PASSWORD).await.status(), 303);
    let html = b.get("/account").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    assert!(html.contains("at least 15 characters, or 8 with two-step sign-in"), "{html}");
    let change = |pw: &'static str, current: &'static str| {
        let csrf = csrf.clone();
        let b = &b;
        async move { b.post_form("/account/password", &[("csrf", &csrf), ("current_password", current), ("new_password", pw), ("confirm_password", pw)]).await }
    };
    let res = change("fourteen chars", PASSWORD).await;
    assert_eq!(res.status(), 400);
    let text = res.text().await.unwrap();
    assert!(text.contains("at least 15 characters, or set up two-step sign-in first"), "{text}");
    assert!(s.svc.sign_in(USER, PASSWORD, "10.4.4.4").await.unwrap().is_ok(), "unchanged");

    // An authenticator app (enrolled as the two-step tests do): eight characters are enough.
    let html = b.get("/account/two-step/new").await.text().await.unwrap();
    let setup = hidden(&html, "setup").unwrap();
    let code = totp_code(&element_text(&html, "totp-secret").unwrap(), s.svc.now());
    let res = b.post_form("/account/two-step", &[("csrf", &csrf), ("setup", &setup), ("code", &code), ("name", "Phone")]).await;
    assert_eq!(res.status(), 200);
    let html = b.get("/account").await.text().await.unwrap();
    assert!(html.contains("at least 8 characters") && !html.contains("at least 15"), "{html}");
    let res = change("eight ch", PASSWORD).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert!(s.svc.sign_in(USER, "eight ch", "10.4.4.4").await.unwrap().is_ok());
}
