//! Account mail over real SMTP (issue 15): Tessera's mailer talks to the test crate's SMTP sink
//! (`common::smtp`), and the tests follow the links in the mails received, as a person would —
//! password reset (single use, 30 minutes, every session ends, one answer for every name,
//! throttled), email verification (`email_verified` in UserInfo and the ID token),
//! self-registration (nothing usable before the address is confirmed) and notices (a new second
//! factor, an app's first access). Every mail has a text/plain and a text/html part, and its
//! links start with the issuer.
use crate::common::smtp::{Mail, SmtpSink};
use crate::common::*;
use serde_json::Value;
use tessera_server::Config;
use tessera_server::service::admin::{self, NewClient, NewUser};

const ALICE: &str = "alice@example.com";
const CB: &str = "http://127.0.0.1:9/callback";

async fn mail_server_with(f: impl FnOnce(&mut Config)) -> (TestServer, SmtpSink) {
    let sink = SmtpSink::start().await;
    let mailer = sink.mailer();
    let s = TestServer::start_with(|c| {
        c.mailer = Some(mailer);
        f(c)
    })
    .await;
    (s, sink)
}

async fn mail_server() -> (TestServer, SmtpSink) {
    mail_server_with(|_| {}).await
}

/// Both parts, a clear subject, the server's sender, and links that start with the issuer.
fn assert_well_formed(s: &TestServer, m: &Mail) {
    assert!(m.content_type.starts_with("multipart/alternative"), "{}", m.content_type);
    assert!(m.text.is_some() && m.html.is_some(), "text/plain and text/html: {}", m.raw);
    assert!(m.from.contains("id@tessera.test"), "{}", m.from);
    assert!(m.raw.contains("Message-ID: <") && m.raw.contains("@tessera.test>"), "{}", m.raw);
    assert!(!m.subject.is_empty());
    let html = m.html.as_deref().unwrap();
    assert!(html.contains("<p>") && html.contains(&format!("href=\"{}/", s.url)), "{html}");
    for word in m.text().split_whitespace().filter(|w| w.starts_with("http")) {
        assert!(word.starts_with(&s.url), "a link not under the issuer: {word}");
    }
}

async fn account_sign_in(b: &Browser, username: &str, password: &str) -> reqwest::Response {
    let html = b.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").expect("csrf");
    b.post_form("/account/signin", &[("csrf", &csrf), ("username", username), ("password", password)]).await
}

/// "Forgot your password?" for `who`: (status, page).
async fn forgot(b: &Browser, who: &str) -> (u16, String) {
    let res = b.get("/password/forgot").await;
    assert_eq!(res.status(), 200);
    let csrf = hidden(&res.text().await.unwrap(), "csrf").unwrap();
    let res = b.post_form("/password/forgot", &[("csrf", &csrf), ("who", who)]).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Open a reset or invitation link and submit `password` twice: (status, page).
async fn set_password(b: &Browser, link: &str, password: &str, confirm: &str) -> (u16, String) {
    let res = b.get(link).await;
    if res.status() != 200 {
        return (res.status().as_u16(), res.text().await.unwrap());
    }
    let html = res.text().await.unwrap();
    let (csrf, token) = (hidden(&html, "csrf").unwrap(), hidden(&html, "token").unwrap());
    let action = if link.contains("/invite") { "/invite" } else { "/password/reset" };
    let res = b.post_form(action, &[("csrf", &csrf), ("token", &token), ("new_password", password), ("confirm_password", confirm)]).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

fn message_of(html: &str) -> String {
    element_text(html, "message").unwrap_or_default()
}

/// The whole reset flow: the link on both sign-in pages, the same answer for a known name, a
/// known address (any case) and an unknown name (which gets no mail), a new link voiding the
/// older, the policy, the link working once, and every session and refresh token ending.
#[tokio::test]
async fn password_reset_by_mail_end_to_end() {
    let (s, sink) = mail_server().await;
    let (id, secret) = s.confidential_client(CB).await;
    // alice's browser with a session and an app's refresh token.
    let b = Browser::new(&s.url);
    let (verifier, challenge) = pkce_pair();
    let (_, login) = b.open_login(&s.authorize_url(&id, CB, "notes.read", "st", Some(&challenge))).await;
    assert!(login.contains("href=\"/password/forgot\""), "the sign-in page offers a reset: {login}");
    assert!(!login.contains("href=\"/register\""), "no registration by default");
    let back = b.authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "st", Some(&challenge))).await;
    let (_, tokens, _) = token_basic(
        &s.url,
        &id,
        &secret,
        &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB), ("code_verifier", &verifier)],
    )
    .await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(b.get("/account").await.status(), 200);
    let signin = Browser::new(&s.url).get("/account/signin").await.text().await.unwrap();
    assert!(signin.contains("href=\"/password/forgot\""), "the account sign-in offers a reset too");

    let c = Browser::new(&s.url);
    let (status, by_address) = forgot(&c, "ALICE@Example.com").await;
    assert_eq!(status, 200);
    assert!(message_of(&by_address).starts_with("If an account exists"), "{by_address}");
    let first = sink.nth(ALICE, "Reset your password", 1).await;
    assert_well_formed(&s, &first);
    let first_link = first.link(&format!("{}/password/reset?token=", s.url));
    let (status, by_name) = forgot(&c, USER).await;
    assert_eq!((status, &by_name), (200, &by_address), "the same answer");
    let second = sink.nth(ALICE, "Reset your password", 2).await;
    let link = second.link(&format!("{}/password/reset?token=", s.url));
    assert_ne!(link, first_link);
    assert!(second.text().contains("30 minutes"), "{}", second.text());
    let (status, unknown) = forgot(&c, "nobody-at-all").await;
    assert_eq!((status, &unknown), (200, &by_address), "the same answer for a name nobody has");
    let (status, unknown) = forgot(&c, "nobody@example.com").await;
    assert_eq!((status, &unknown), (200, &by_address), "and for an address nobody has");
    sink.settled_count(ALICE, "Reset your password", 2).await;
    assert_eq!(sink.mails().iter().filter(|m| m.envelope_to.iter().any(|t| t.contains("nobody"))).count(), 0, "no mail for nobody");

    // The older link is void; the newer one opens the form.
    let (status, page) = set_password(&c, &first_link, "whatever long password", "whatever long password").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("This link does not work"), "{page}");
    let res = c.get(&link).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"for-username\">alice<"), "the form names the account");
    // A mismatch and a short password change nothing and leave the link working.
    let new_pw = "a new password from the mail";
    assert_eq!(set_password(&c, &link, new_pw, "something else").await.0, 400);
    let (status, page) = set_password(&c, &link, "short", "short").await;
    assert_eq!(status, 400);
    assert!(page.contains("8 to 1024"), "the policy's reason: {page}");
    assert!(s.svc.sign_in(USER, PASSWORD, "10.1.1.1").await.unwrap().is_ok(), "unchanged so far");
    // Now it works, once.
    let (status, page) = set_password(&c, &link, new_pw, new_pw).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password changed") && page.contains("href=\"/account/signin\""), "{page}");
    let (status, page) = set_password(&c, &link, "yet another long password", "yet another long password").await;
    assert_eq!(status, 400, "a used link: {page}");
    // Every session and refresh token of alice's ended.
    assert_eq!(location(&b.get("/account").await), "/account/signin", "the other session ended");
    let (status, err, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_grant")), "{err}");
    assert_eq!(account_sign_in(&Browser::new(&s.url), USER, PASSWORD).await.status(), 401, "the old password is gone");
    assert_eq!(account_sign_in(&Browser::new(&s.url), USER, new_pw).await.status(), 303, "the new one signs in");
    // Garbled links are readable 400 pages, never 500.
    for bad in ["/password/reset", "/password/reset?token=", "/password/reset?token=%00%ff", "/password/reset?token=a&token=b", "/invite?token=nope"] {
        let res = c.get(bad).await;
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.text().await.unwrap().contains("<h1"), "{bad}: a page");
    }
    let csrf = hidden(&c.get("/password/forgot").await.text().await.unwrap(), "csrf").unwrap();
    let long = "x".repeat(500);
    let res = c.post_form("/password/reset", &[("csrf", &csrf), ("token", &long), ("new_password", new_pw), ("confirm_password", new_pw)]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(c.post_form("/password/reset", &[("token", "x")]).await.status(), 403, "CSRF-checked");
    // The audit log and the account page say what happened.
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let q = tessera_storage::AuditQuery { user_id: Some(alice.id.clone()), limit: 100, ..Default::default() };
    let kinds: Vec<String> = s.svc.store.find_audit_events(&q).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"password_reset".to_string()) && kinds.contains(&"password_reset_requested".to_string()), "{kinds:?}");
    let d = Browser::new(&s.url);
    account_sign_in(&d, USER, new_pw).await;
    let html = d.get("/account").await.text().await.unwrap();
    assert!(html.contains("Password changed with a reset link"), "{html}");
}

/// A reset link lives 30 minutes (the manual clock moves, nothing sleeps).
#[tokio::test]
async fn a_reset_link_expires_after_30_minutes() {
    let (s, sink) = mail_server().await;
    let c = Browser::new(&s.url);
    forgot(&c, USER).await;
    let link = sink.nth(ALICE, "Reset your password", 1).await.link(&format!("{}/password/reset?token=", s.url));
    s.clock.advance(29 * 60);
    assert_eq!(c.get(&link).await.status(), 200, "still valid after 29 minutes");
    s.clock.advance(60 + 1);
    let res = c.get(&link).await;
    assert_eq!(res.status(), 400, "expired after 30");
    assert!(res.text().await.unwrap().contains("expired"));
    let (status, _) = set_password(&c, &link, "a long enough password", "a long enough password").await;
    assert_eq!(status, 400);
    assert!(s.svc.sign_in(USER, PASSWORD, "10.1.1.1").await.unwrap().is_ok(), "the password is unchanged");
    // A username that looks like an address is a username too (an invited user's is one).
    let user = NewUser { username: "gil@old.example".into(), email: Some("gil@new.example".into()), ..Default::default() };
    create_user(&*s.svc.store, user, s.svc.now()).await;
    forgot(&c, "gil@old.example").await;
    sink.nth("gil@new.example", "Reset your password", 1).await;
}

/// The form cannot flood a mailbox: three links at once per account, then a growing wait
/// (further requests get the same answer and no mail); per client address ten requests, then
/// 429 with `Retry-After`. Disabled accounts and accounts without an address get nothing.
#[tokio::test]
async fn reset_requests_are_throttled_and_disabled_users_get_no_link() {
    let (s, sink) = mail_server().await;
    let c = Browser::new(&s.url);
    let answer = forgot(&c, USER).await;
    forgot(&c, USER).await;
    forgot(&c, ALICE).await;
    sink.nth(ALICE, "Reset your password", 3).await;
    assert_eq!(forgot(&c, USER).await, answer, "the fourth at once: the same answer");
    sink.settled_count(ALICE, "Reset your password", 3).await;
    s.clock.advance(2);
    forgot(&c, USER).await;
    sink.nth(ALICE, "Reset your password", 4).await;

    let now = s.svc.now();
    create_user(&*s.svc.store, NewUser { username: "carol".into(), email: Some("carol@example.com".into()), ..Default::default() }, now).await;
    create_user(&*s.svc.store, NewUser { username: "bob".into(), ..Default::default() }, now).await;
    admin::set_disabled(&*s.svc.store, "carol", true, now).await.unwrap();
    assert_eq!(forgot(&c, "carol").await, answer, "disabled: the same answer");
    assert_eq!(forgot(&c, "bob").await, answer, "no address: the same answer");
    sink.settled_count("carol@example.com", "", 0).await;
    // Seven requests so far from this address; three more are allowed, then it waits.
    for who in ["x1", "x2", "x3"] {
        assert_eq!(forgot(&c, who).await.0, 200);
    }
    let res = c.get("/password/forgot").await;
    let csrf = hidden(&res.text().await.unwrap(), "csrf").unwrap();
    let res = c.post_form("/password/forgot", &[("csrf", &csrf), ("who", USER)]).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("Too many requests"));
    let carol = s.svc.store.find_user_by_username("carol").await.unwrap().unwrap();
    let q = tessera_storage::AuditQuery { user_id: Some(carol.id), limit: 100, ..Default::default() };
    let events = s.svc.store.find_audit_events(&q).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "password_reset_requested" && e.detail.contains("disabled")), "{events:?}");
}

/// Twenty submissions of one reset link at once: exactly one sets its password, the others are
/// told the link was used, and only the winner's password signs in.
#[tokio::test]
async fn twenty_concurrent_uses_of_one_reset_link_exactly_one_wins() {
    let (s, sink) = mail_server().await;
    forgot(&Browser::new(&s.url), USER).await;
    let link = sink.nth(ALICE, "Reset your password", 1).await.link(&format!("{}/password/reset?token=", s.url));
    // Twenty browsers with the form open.
    let mut forms = Vec::new();
    for i in 0..20 {
        let b = Browser::new(&s.url);
        let html = b.get(&link).await.text().await.unwrap();
        forms.push((b, hidden(&html, "csrf").unwrap(), hidden(&html, "token").unwrap(), format!("racing new password number {i}")));
    }
    let racers: Vec<_> = forms
        .into_iter()
        .map(|(b, csrf, token, pw)| {
            tokio::spawn(async move {
                let res = b.post_form("/password/reset", &[("csrf", &csrf), ("token", &token), ("new_password", &pw), ("confirm_password", &pw)]).await;
                (res.status().as_u16(), pw)
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in racers {
        results.push(r.await.unwrap());
    }
    let winners: Vec<&String> = results.iter().filter(|(st, _)| *st == 200).map(|(_, pw)| pw).collect();
    assert_eq!(winners.len(), 1, "exactly one: {:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    // The others are told the link was used (400), or — when other tests filled the hashing
    // queue meanwhile — to try again (503: nothing hashed, nothing taken).
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert!(statuses.iter().all(|st| [200, 400, 503].contains(st)), "the others are refused: {statuses:?}");
    assert!(statuses.iter().filter(|st| **st == 400).count() >= 10, "most lose the race to the link's use: {statuses:?}");
    for (_, pw) in &results {
        let ok = s.svc.sign_in(USER, pw, "10.2.2.2").await.unwrap().is_ok();
        assert_eq!(ok, pw == winners[0], "{pw}");
    }
}

/// OIDC client for the verification test.
async fn oidc_client(s: &TestServer) -> (String, String) {
    let c =
        s.client(NewClient { name: "Sign-in App".into(), redirect_uris: vec![CB.into()], scope: "openid email profile".into(), ..Default::default() }).await;
    (c.client.client_id, c.client_secret.unwrap())
}

/// A code flow for `openid email` in browser `b`, the email claims asked in the ID token too
/// (OpenID Connect Core §5.5): (access token, ID token claims, unverified here).
async fn tokens(s: &TestServer, b: &Browser, id: &str, secret: &str) -> (String, Value) {
    let claims = form_urlencoded::byte_serialize(br#"{"id_token":{"email":null,"email_verified":null}}"#).collect::<String>();
    let url = format!("{}&claims={claims}", s.authorize_url(id, CB, "openid email", "st", None));
    let back = b.journey_as(&url, USER).await;
    let (status, body, _) =
        token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    assert_eq!(status, 200, "{body}");
    let payload = body["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (body["access_token"].as_str().unwrap().to_string(), claims)
}

async fn userinfo(s: &TestServer, at: &str) -> Value {
    reqwest::Client::new().get(format!("{}/userinfo", s.url)).bearer_auth(at).send().await.unwrap().json().await.unwrap()
}

/// Email verification: `email_verified` is false until the mailed link is opened, then true in
/// UserInfo and the next ID token; a new address on the account page is unverified again (the
/// old address is told), its own link verifies it; a link for an address the account no longer
/// has verifies nothing.
#[tokio::test]
async fn email_verification_sets_email_verified_in_userinfo_and_id_token() {
    let (s, sink) = mail_server().await;
    let (id, secret) = oidc_client(&s).await;
    let b = Browser::new(&s.url);
    let (at, claims) = tokens(&s, &b, &id, &secret).await;
    assert_eq!((claims["email"].as_str(), &claims["email_verified"]), (Some(ALICE), &Value::Bool(false)), "{claims}");
    assert_eq!(userinfo(&s, &at).await["email_verified"], false);

    let html = b.get("/account").await.text().await.unwrap();
    assert!(html.contains("id=\"email-unverified\"") && html.contains("id=\"send-verification\""), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    assert_eq!(b.post_form("/account/email/verify", &[]).await.status(), 403, "CSRF-checked");
    let res = b.post_form("/account/email/verify", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("We sent a link to alice@example.com"));
    let mail = sink.nth(ALICE, "Confirm your email address", 1).await;
    assert_well_formed(&s, &mail);
    let link = mail.link(&format!("{}/email/verify?token=", s.url));
    let res = Browser::new(&s.url).get(&link).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("alice@example.com is the confirmed address"));
    assert_eq!(userinfo(&s, &at).await["email_verified"], true, "UserInfo says so at once");
    let (_, claims) = tokens(&s, &b, &id, &secret).await;
    assert_eq!(claims["email_verified"], true, "and the next ID token");
    assert_eq!(Browser::new(&s.url).get(&link).await.status(), 400, "a verification link works once");
    let html = b.get("/account").await.text().await.unwrap();
    assert!(html.contains("id=\"email-verified\"") && !html.contains("id=\"send-verification\""), "{html}");

    // A new address: the current password is needed; then unverified, a notice to the old
    // address, a link to the new one.
    let new = "alice.new@example.com";
    let res = b.post_form("/account/email", &[("csrf", &csrf), ("email", new), ("current_password", "wrong")]).await;
    assert_eq!(res.status(), 400);
    let res = b.post_form("/account/email", &[("csrf", &csrf), ("email", "not an address"), ("current_password", PASSWORD)]).await;
    assert_eq!(res.status(), 400);
    let res = b.post_form("/account/email", &[("csrf", &csrf), ("email", new), ("current_password", PASSWORD)]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Your email address is now alice.new@example.com") && html.contains("id=\"email-unverified\""), "{html}");
    let info = userinfo(&s, &at).await;
    assert_eq!((info["email"].as_str(), &info["email_verified"]), (Some(new), &Value::Bool(false)), "{info}");
    let notice = sink.nth(ALICE, "email address of your account", 1).await;
    assert!(notice.text().contains(new), "{}", notice.text());
    let link = sink.nth(new, "Confirm your email address", 1).await.link(&format!("{}/email/verify?token=", s.url));
    // An administrator changes the address before the link is opened: it verifies nothing.
    admin::update_user(&*s.svc.store, USER, Some("third@example.com".into()), None, Default::default(), s.svc.now()).await.unwrap();
    let res = Browser::new(&s.url).get(&link).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("old address"));
    assert_eq!(userinfo(&s, &at).await["email_verified"], false);
    // Back on the account page: a link to the third address, opened, verifies it.
    let res = b.post_form("/account/email/verify", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let link = sink.nth("third@example.com", "Confirm your email address", 1).await.link(&format!("{}/email/verify?token=", s.url));
    assert_eq!(Browser::new(&s.url).get(&link).await.status(), 200);
    let info = userinfo(&s, &at).await;
    assert_eq!((info["email"].as_str(), &info["email_verified"]), (Some("third@example.com"), &Value::Bool(true)), "{info}");
}

/// Notices: a new TOTP factor, and an app's first access (not a later, wider one), mail the user.
#[tokio::test]
async fn a_new_second_factor_and_an_apps_first_access_mail_a_notice() {
    let (s, sink) = mail_server().await;
    let (id, _) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    b.authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "st", None)).await;
    let granted = sink.nth(ALICE, "can now use your account", 1).await;
    assert_well_formed(&s, &granted);
    assert!(granted.subject.starts_with("Notes Client can now use your account"), "{}", granted.subject);
    assert!(granted.text().contains("notes.read") && granted.text().contains(&format!("{}/account", s.url)), "{}", granted.text());
    // More scopes for the same app: no second notice.
    b.journey_as(&s.authorize_url(&id, CB, "notes.read notes.write", "st", None), USER).await;
    sink.settled_count(ALICE, "can now use your account", 1).await;

    b.enrol_totp(s.svc.now()).await;
    let added = sink.nth(ALICE, "A second factor was added", 1).await;
    assert_well_formed(&s, &added);
    assert!(added.text().contains("An authenticator app named \u{201c}Phone\u{201d}"), "{}", added.text());
}

/// Self-registration: the link on the sign-in pages; the form's answer is the same for a new
/// and a taken username or address (those are told by mail); nothing signs in until the
/// mailed link is opened; then the account works, its address verified; the link works once.
#[tokio::test]
async fn self_registration_needs_the_mailed_link_before_first_use() {
    let (s, sink) = mail_server_with(|c| c.self_registration = true).await;
    let b = Browser::new(&s.url);
    let (id, _) = s.confidential_client(CB).await;
    let (_, login) = b.open_login(&s.authorize_url(&id, CB, "notes.read", "st", None)).await;
    assert!(login.contains("href=\"/register\""), "{login}");
    assert!(b.get("/account/signin").await.text().await.unwrap().contains("href=\"/register\""));
    let register = |email: &'static str, username: &'static str, password: &'static str| {
        let b = Browser::new(&s.url);
        async move {
            let html = b.get("/register").await.text().await.unwrap();
            let csrf = hidden(&html, "csrf").unwrap();
            let form =
                [("csrf", csrf.as_str()), ("email", email), ("username", username), ("name", "Dana"), ("password", password), ("confirm_password", password)];
            let res = b.post_form("/register", &form).await;
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let pw = "dana's long password";
    let (status, page) = register("dana@example.com", "dana", "short").await;
    assert_eq!(status, 400, "the password policy: {page}");
    let (status, fresh) = register("dana@example.com", "dana", pw).await;
    assert_eq!(status, 200, "{fresh}");
    assert!(fresh.contains("Check your mail"));
    assert!(s.svc.store.find_user_by_username("dana").await.unwrap().is_none(), "nothing made yet: the username is not taken");
    assert_eq!(account_sign_in(&Browser::new(&s.url), "dana", pw).await.status(), 401, "no sign-in before the link");
    let mail = sink.nth("dana@example.com", "Finish creating your account", 1).await;
    assert_well_formed(&s, &mail);
    let link = mail.link(&format!("{}/register/confirm?token=", s.url));
    // The same answer when the username is taken, and when the address has an account.
    let (status, taken_name) = register("eve@example.com", USER, pw).await;
    assert_eq!((status, taken_name.replace("eve@example.com", "X")), (200, fresh.replace("dana@example.com", "X")));
    let (status, taken_address) = register(ALICE, "alice2", pw).await;
    assert_eq!((status, taken_address.replace(ALICE, "X")), (200, fresh.replace("dana@example.com", "X")));
    assert!(sink.nth("eve@example.com", "Choose another username", 1).await.text().contains(&format!("{}/register", s.url)));
    assert!(sink.nth(ALICE, "You already have an account", 1).await.text().contains(&format!("{}/password/forgot", s.url)));
    assert!(s.svc.store.find_user_by_username("alice2").await.unwrap().is_none());

    let res = Browser::new(&s.url).get(&link).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Your account is ready"));
    assert_eq!(Browser::new(&s.url).get(&link).await.status(), 400, "the link works once");
    let dana = s.svc.store.find_user_by_username("dana").await.unwrap().expect("made now");
    assert!(dana.email_verified && dana.disabled_at.is_none(), "{dana:?}");
    assert_eq!((dana.email.as_deref(), dana.name.as_deref()), (Some("dana@example.com"), Some("Dana")));
    assert_eq!(account_sign_in(&Browser::new(&s.url), "dana", pw).await.status(), 303, "signs in now");
}

/// Without `--self-registration` its pages are 404 and the sign-in pages do not offer it;
/// without a mailer the reset form is 404 and not offered either.
#[tokio::test]
async fn registration_is_404_when_off_and_reset_needs_a_mailer() {
    let (s, _sink) = mail_server().await;
    let b = Browser::new(&s.url);
    assert_eq!(b.get("/register").await.status(), 404);
    assert_eq!(b.get("/register/confirm?token=abc").await.status(), 404);
    assert_eq!(b.post_form("/register", &[("email", "x@example.com")]).await.status(), 404);
    assert!(!b.get("/account/signin").await.text().await.unwrap().contains("/register"));
    let plain = TestServer::start().await;
    let b = Browser::new(&plain.url);
    assert_eq!(b.get("/password/forgot").await.status(), 404);
    assert_eq!(b.get("/register").await.status(), 404);
    assert!(!b.get("/account/signin").await.text().await.unwrap().contains("/password/forgot"));
    let on_without_mail = TestServer::start_with(|c| c.self_registration = true).await;
    let b = Browser::new(&on_without_mail.url);
    assert!(!b.get("/account/signin").await.text().await.unwrap().contains("/register"), "registration is not offered without mail");
}

/// An SMTP server that cannot be reached: the reset answer is the same, and the failure is in
/// the log and the audit log (`mail_failed`).
#[tokio::test]
async fn a_failed_send_keeps_the_answer_and_is_audited() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mailer = std::sync::Arc::new(tessera_server::mail::Mailer::new(&format!("smtp://{closed}"), "id@tessera.test").unwrap());
    let s = TestServer::start_with(|c| c.mailer = Some(mailer)).await;
    let (status, page) = forgot(&Browser::new(&s.url), USER).await;
    assert_eq!(status, 200);
    assert!(message_of(&page).starts_with("If an account exists"));
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let q = tessera_storage::AuditQuery { user_id: Some(alice.id), kind: Some("mail_failed".into()), limit: 10, ..Default::default() };
    for _ in 0..100 {
        if let Some(e) = s.svc.store.find_audit_events(&q).await.unwrap().first() {
            assert!(e.detail.contains("\"mail\":\"reset\""), "{}", e.detail);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no mail_failed event");
}
