//! The account page `/account` over real HTTP (issue 15, first part): a user sees the apps
//! they granted and removes one's access (its refresh token then fails, and the next
//! authorization asks for consent again), signs out another session of theirs (never someone
//! else's), changes their password (the current one required; other sessions and refresh
//! tokens end), and sees their security events; every form CSRF-checked.
use crate::common::*;
use tessera_server::service::admin::NewUser;

async fn account_sign_in(b: &Browser, username: &str, password: &str) -> reqwest::Response {
    let html = b.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").expect("csrf");
    b.post_form("/account/signin", &[("csrf", &csrf), ("username", username), ("password", password)]).await
}

async fn page(b: &Browser) -> (String, String) {
    let res = b.get("/account").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    (hidden(&html, "csrf").unwrap(), html)
}

#[tokio::test]
async fn connected_apps_sessions_and_password_on_the_account_page() {
    let s = TestServer::start().await;
    let cb = "https://app.example/cb";
    let (id, secret) = s.confidential_client(cb).await;
    // No session: to the sign-in page.
    let b = Browser::new(&s.url);
    assert_eq!(location(&b.get("/account").await), "/account/signin");
    // alice uses the app (in this browser): a refresh token, and the app on her page.
    let (verifier, challenge) = pkce_pair();
    let back = b.authorize_and_allow(&s.authorize_url(&id, cb, "notes.read", "st", Some(&challenge))).await;
    let code = query(&back).remove("code").unwrap();
    let (_, tokens, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", cb), ("code_verifier", &verifier)]).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (csrf, html) = page(&b).await;
    assert!(html.contains(&format!("data-client=\"{id}\"")) && html.contains("Read your notes"), "{html}");
    assert!(html.contains("Signed in"), "the sign-in is a security event");
    // The consent page says where to change one's mind.
    let consent = include_str!("../../../http/templates/consent.html");
    assert!(consent.contains("href=\"/account\""));

    // A form without the CSRF token changes nothing.
    assert_eq!(b.post_form(&format!("/account/apps/{id}/remove"), &[]).await.status(), 403);
    let (csrf2, _) = page(&b).await;
    assert_eq!(csrf, csrf2);
    // Remove access: the refresh token (rotated above, so the newest one) fails at once; the next
    // authorization shows the consent page again.
    let (_, latest, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    let latest = latest["refresh_token"].as_str().expect("rotated").to_string();
    let res = b.post_form(&format!("/account/apps/{id}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Access removed") && html.contains("id=\"no-apps\""), "{html}");
    let (status, err, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &latest)]).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_grant")), "the app's refresh token is revoked: {err}");
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let (_, challenge) = pkce_pair();
    let res = b.get(&s.authorize_url(&id, cb, "notes.read", "st2", Some(&challenge))).await;
    assert!(location(&res).starts_with("/consent"), "asked again");
    let consent = b.get(&location(&res)).await;
    assert_eq!(consent.status(), 200, "the consent page, not straight back");
    // Removing an app one never granted: not found, nothing else changes.
    assert_eq!(b.post_form("/account/apps/nope/remove", &[("csrf", &csrf)]).await.status(), 404);

    // A second browser of alice's and one of bob's.
    create_user(&*s.svc.store, NewUser { username: "bob".into(), ..Default::default() }, s.svc.now()).await;
    let other = Browser::new(&s.url);
    assert_eq!(account_sign_in(&other, USER, PASSWORD).await.status(), 303);
    let bobs = Browser::new(&s.url);
    assert_eq!(account_sign_in(&bobs, "bob", PASSWORD).await.status(), 303);
    let bob = s.svc.store.find_user_by_username("bob").await.unwrap().unwrap();
    let bob_sid = s.svc.store.list_user_sessions(&bob.id, s.svc.now()).await.unwrap()[0].sid.clone();
    // alice cannot sign bob out.
    assert_eq!(b.post_form(&format!("/account/sessions/{bob_sid}/end"), &[("csrf", &csrf)]).await.status(), 404);
    assert_eq!(bobs.get("/account").await.status(), 200, "bob is still signed in");
    // She signs out her other browser.
    let mine = s.svc.store.list_user_sessions(&alice.id, s.svc.now()).await.unwrap();
    assert_eq!(mine.len(), 2);
    let (_, html) = page(&b).await;
    let other_sid =
        mine.iter().map(|x| x.sid.clone()).find(|sid| html.contains(&format!("/account/sessions/{sid}/end"))).expect("the other session has a sign-out button");
    assert_eq!(b.post_form(&format!("/account/sessions/{other_sid}/end"), &[("csrf", &csrf)]).await.status(), 200);
    assert_eq!(location(&other.get("/account").await), "/account/signin");

    // Password: the current one is required; then other sessions end, this one stays.
    assert_eq!(account_sign_in(&other, USER, PASSWORD).await.status(), 303);
    let new_pw = "a brand new long password";
    let res = b.post_form("/account/password", &[("csrf", &csrf), ("current_password", "wrong"), ("new_password", new_pw), ("confirm_password", new_pw)]).await;
    assert_eq!(res.status(), 400);
    assert!(s.svc.sign_in(USER, PASSWORD, "10.9.9.9").await.unwrap().is_ok(), "unchanged");
    let res =
        b.post_form("/account/password", &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", "short"), ("confirm_password", "short")]).await;
    assert_eq!(res.status(), 400, "the password policy");
    let res =
        b.post_form("/account/password", &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", new_pw), ("confirm_password", new_pw)]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Password changed"));
    assert!(s.svc.sign_in(USER, new_pw, "10.9.9.9").await.unwrap().is_ok());
    assert_eq!(location(&other.get("/account").await), "/account/signin", "the other browser is signed out");
    assert_eq!(b.get("/account").await.status(), 200, "this one stays");
    let (_, html) = page(&b).await;
    assert!(html.contains("Password changed"), "{html}");
    assert!(html.contains("Removed an app&#39;s access") || html.contains("Removed an app's access"), "{html}");
    // Sign out.
    assert_eq!(b.post_form("/account/signout", &[("csrf", &csrf)]).await.status(), 303);
    assert_eq!(location(&b.get("/account").await), "/account/signin");
}

/// `--breached-passwords` and `--password-min-length` (NIST SP 800-63B §5.1.1.2) hold wherever
/// a user chooses a new password here: a listed one is refused with the reason, the old
/// password keeps working, and an unlisted long one is taken.
#[tokio::test]
async fn a_breached_or_short_new_password_is_refused() {
    let list = tessera_server::service::admin::PasswordPolicy::parse_breached("password1234\n");
    let s = TestServer::start_with(|c| {
        c.password_policy = tessera_server::service::admin::PasswordPolicy { min_length: 12, breached: Some(std::sync::Arc::new(list)), ..Default::default() };
    })
    .await;
    let b = Browser::new(&s.url);
    assert_eq!(account_sign_in(&b, USER, PASSWORD).await.status(), 303);
    let (csrf, _) = page(&b).await;
    for (pw, why) in [("password1234", "breaches"), ("elevenchars", "12 to 1024")] {
        let res = b.post_form("/account/password", &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", pw), ("confirm_password", pw)]).await;
        assert_eq!(res.status(), 400, "{pw}");
        assert!(res.text().await.unwrap().contains(why), "{pw}: {why}");
    }
    assert!(s.svc.sign_in(USER, PASSWORD, "10.1.1.1").await.unwrap().is_ok(), "unchanged");
    let pw = "not on any list at all";
    let res = b.post_form("/account/password", &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", pw), ("confirm_password", pw)]).await;
    assert_eq!(res.status(), 200);
    assert!(s.svc.sign_in(USER, pw, "10.1.1.1").await.unwrap().is_ok());
}

/// The row of session `sid` in the account page's sessions table.
fn session_row<'a>(html: &'a str, sid: &str) -> &'a str {
    let start = html.find(&format!("<tr data-sid=\"{sid}\"")).unwrap_or_else(|| panic!("no row for {sid}: {html}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    &html[start..end]
}

/// "Where you are signed in" (issue 15): each session shows the device its sign-in came from,
/// read from the User-Agent ("Chrome on Linux", never the raw string), the client's address
/// (the throttling address: behind a trusted proxy, the forwarded one) and when it was last
/// used, which a request records at most once a minute. A long User-Agent is cut to 512
/// characters before it is stored.
#[tokio::test]
async fn the_sessions_list_shows_device_address_and_last_use() {
    let s = TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let chrome_ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    let chrome = Browser::with_user_agent(&s.url, chrome_ua);
    let html = chrome.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let res = chrome
        .http
        .post(format!("{}/account/signin", s.url))
        .header("X-Forwarded-For", "203.0.113.9")
        .form(&[("csrf", csrf.as_str()), ("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let firefox = Browser::with_user_agent(&s.url, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0");
    assert_eq!(account_sign_in(&firefox, USER, PASSWORD).await.status(), 303);
    let long = Browser::with_user_agent(&s.url, &format!("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) Version/18.1 Safari/605.1.15 {}", "x".repeat(2_000)));
    assert_eq!(account_sign_in(&long, USER, PASSWORD).await.status(), 303);
    let plain = Browser::new(&s.url);
    assert_eq!(account_sign_in(&plain, USER, PASSWORD).await.status(), 303);

    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let sessions = s.svc.store.list_user_sessions(&alice.id, s.svc.now()).await.unwrap();
    let by_ua = |needle: &str| sessions.iter().find(|x| x.user_agent.as_deref().is_some_and(|ua| ua.contains(needle))).unwrap().clone();
    let (c, f, l) = (by_ua("Chrome/"), by_ua("Firefox/"), by_ua("Safari/605"));
    assert_eq!(c.user_agent.as_deref(), Some(chrome_ua), "stored as sent");
    assert_eq!(l.user_agent.as_ref().map(|ua| ua.chars().count()), Some(512), "cut to 512 characters");
    assert_eq!((c.address.as_deref(), f.address.as_deref()), (Some("203.0.113.9"), Some("127.0.0.1")));

    let html = chrome.get("/account").await.text().await.unwrap();
    assert!(!html.contains(chrome_ua), "not the raw string");
    let row = session_row(&html, &c.sid);
    assert!(row.contains("Chrome on Linux") && row.contains("203.0.113.9") && row.contains("this browser"), "{row}");
    let row = session_row(&html, &f.sid);
    assert!(row.contains("Firefox on Windows") && row.contains("127.0.0.1") && row.contains("Sign out"), "{row}");
    assert!(session_row(&html, &l.sid).contains("Safari on macOS"));
    let plain_sid = sessions.iter().find(|x| x.user_agent.is_none()).unwrap().sid.clone();
    assert!(session_row(&html, &plain_sid).contains("Unknown device"), "no User-Agent sent");

    // Last used: a use 30 s after the sign-in is not written; one more than a minute after is.
    let last_used = |sid: String| {
        let (svc, user_id) = (s.svc.clone(), alice.id.clone());
        async move { svc.store.list_user_sessions(&user_id, svc.now()).await.unwrap().into_iter().find(|x| x.sid == sid).unwrap().last_used_at }
    };
    let signed_in_at = c.last_used_at;
    s.clock.advance(30);
    assert_eq!(firefox.get("/account").await.status(), 200);
    assert_eq!(last_used(f.sid.clone()).await, signed_in_at, "less than a minute: not written");
    s.clock.advance(31);
    assert_eq!(firefox.get("/account").await.status(), 200);
    assert_eq!(last_used(f.sid.clone()).await, signed_in_at + 61, "written");
    assert_eq!(last_used(c.sid.clone()).await, signed_in_at, "only the session used");
    let html = chrome.get("/account").await.text().await.unwrap();
    let (chrome_row, firefox_row) = (session_row(&html, &c.sid).to_string(), session_row(&html, &f.sid).to_string());
    let cell = |row: &str| row.split("class=\"last-used\">").nth(1).and_then(|r| r.split('<').next()).unwrap().to_string();
    assert_eq!(cell(&chrome_row), cell(&firefox_row), "this request just used the Chrome session too: {chrome_row} {firefox_row}");
    assert_ne!(cell(&chrome_row), cell(session_row(&html, &l.sid)), "the Safari session was last used at its sign-in");
}
