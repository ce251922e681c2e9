//! Two-step sign-in with TOTP (issue 15, RFC 6238) over real HTTP: enrolment on the account
//! page (QR code, `otpauth://` URI and base32 secret, confirmed by a code computed from the
//! secret shown), the second step after the password, a replayed code refused (the same time
//! step, even from 20 browsers at once), recovery codes that work once, guesses throttled,
//! `--require-mfa` on a client (a user without a factor sets one up during the sign-in; a
//! password-only session steps up), `prompt=login` asking both steps again, and an
//! administrator's reset.
use crate::common::*;
use tessera_server::service::admin::{Acting, NewClient, NewUser};

const CB: &str = "https://app.example/cb";
const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// A confidential OpenID Connect client; `require_mfa`: users need a second factor for it.
async fn oidc_client(s: &TestServer, require_mfa: bool) -> (String, String) {
    let c = s
        .client(NewClient { name: "Notes".into(), redirect_uris: vec![CB.into()], scope: "openid notes.read".into(), require_mfa, ..Default::default() })
        .await;
    (c.client.client_id, c.client_secret.unwrap())
}

async fn account_sign_in(b: &Browser, username: &str) -> reqwest::Response {
    let html = b.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").expect("csrf");
    b.post_form("/account/signin", &[("csrf", &csrf), ("username", username), ("password", PASSWORD)]).await
}

/// The ID token's claims from a code (the openidconnect crate verifies these elsewhere; here
/// the values matter).
async fn id_claims(s: &TestServer, id: &str, secret: &str, back: &str, verifier: &str) -> serde_json::Value {
    let code = query(back).remove("code").unwrap_or_else(|| panic!("a code: {back}"));
    let (status, tokens, _) =
        token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB), ("code_verifier", verifier)]).await;
    assert_eq!(status, 200, "{tokens}");
    let payload = tokens["id_token"].as_str().expect("an ID token").split('.').nth(1).unwrap().to_string();
    use base64::Engine;
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Authorize in `b` with `extra` parameters and sign in with the password: where the sign-in
/// sends the browser.
async fn password_step(s: &TestServer, b: &Browser, id: &str, extra: &str, user: &str) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let url = format!("{}{extra}", s.authorize_url(id, CB, "openid notes.read", "st", Some(&challenge)));
    let (_, html) = b.open_login(&url).await;
    let res = b.sign_in(&html, user, PASSWORD).await;
    assert_eq!(res.status(), 303);
    (location(&res), verifier)
}

/// Through consent to the client: the redirect back.
async fn through_consent(b: &Browser, consent: &str) -> String {
    assert!(consent.starts_with("/consent"), "{consent}");
    let res = b.get(consent).await;
    if res.status() == 303 {
        return location(&res);
    }
    let html = res.text().await.unwrap();
    b.decide(&html, "allow").await
}

#[tokio::test]
async fn totp_enrolment_second_step_replay_and_recovery_codes() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s, false).await;
    let b = Browser::new(&s.url);
    assert_eq!(account_sign_in(&b, USER).await.status(), 303);
    let now = s.svc.now();
    // A wrong first code does not turn it on; the same setup can be tried again.
    let html = b.get("/account/two-step/new").await.text().await.unwrap();
    let (csrf, setup) = (hidden(&html, "csrf").unwrap(), hidden(&html, "setup").unwrap());
    let shown = element_text(&html, "totp-secret").unwrap();
    let wrong = format!("{:06}", (totp_code(&shown, now).parse::<u32>().unwrap() + 1) % 1_000_000);
    let res = b.post_form("/account/two-step", &[("csrf", &csrf), ("setup", &setup), ("code", &wrong)]).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("not right"));
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    assert!(s.svc.store.list_factors(&alice.id).await.unwrap().is_empty(), "not turned on by a wrong code");
    // Without the CSRF token: refused.
    assert_eq!(b.post_form("/account/two-step", &[("setup", &setup), ("code", &totp_code(&shown, now))]).await.status(), 403);

    let (totp_secret, codes) = b.enrol_totp(now).await;
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    let factors = s.svc.store.list_factors(&alice.id).await.unwrap();
    assert_eq!(factors.len(), 1);
    let raw = totp_secret.replace(' ', "");
    assert!(!String::from_utf8_lossy(&factors[0].secret).contains(&raw), "the seed is stored sealed, not as shown");
    let account = b.get("/account").await.text().await.unwrap();
    assert!(account.contains("Phone") && account.contains("10 recovery codes left"), "{account}");

    // Sign-in now takes two steps: the password leads to the second step, not to consent.
    let c = Browser::new(&s.url);
    let (next, verifier) = password_step(&s, &c, &id, "", USER).await;
    assert_eq!(next, "/login/two-step");
    // The code the enrolment used is spent (its time step), as is any wrong one.
    let res = c.second_step(&totp_code(&totp_secret, now)).await;
    assert_eq!(res.status(), 401, "the enrolment's code, replayed");
    assert!(res.text().await.unwrap().contains("used already"));
    s.clock.advance(30);
    let code = totp_code(&totp_secret, s.svc.now());
    let res = c.second_step(&code).await;
    assert_eq!(res.status(), 303);
    let back = through_consent(&c, &location(&res)).await;
    let claims = id_claims(&s, &id, &secret, &back, &verifier).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], MFA);
    assert!(s.svc.store.list_user_sessions(&alice.id, s.svc.now()).await.unwrap().iter().any(|x| x.amr.as_deref() == Some("pwd otp mfa")));

    // The same code from 20 other browsers at once, all past their password: none gets in
    // (its step was used), and a fresh step lets exactly one of 20 racers in.
    let mut racers = Vec::new();
    for _ in 0..20 {
        let r = Browser::new(&s.url);
        let (next, _) = password_step(&s, &r, &id, "", USER).await;
        assert_eq!(next, "/login/two-step");
        racers.push(r);
    }
    for r in &racers[..3] {
        assert_eq!(r.second_step(&code).await.status(), 401, "a replayed code");
    }
    s.clock.advance(30);
    let fresh = totp_code(&totp_secret, s.svc.now());
    let mut set = tokio::task::JoinSet::new();
    for r in &racers[3..] {
        let html = r.get("/login/two-step").await.text().await.unwrap();
        let (http, url, csrf, code) = (r.http.clone(), format!("{}/login/two-step", s.url), hidden(&html, "csrf").unwrap(), fresh.clone());
        set.spawn(async move { http.post(url).form(&[("csrf", csrf.as_str()), ("code", code.as_str())]).send().await.unwrap().status().as_u16() });
    }
    let statuses: Vec<u16> = set.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 303).count(), 1, "one time step, one sign-in: {statuses:?}");

    // The racers' refused tries count as wrong codes: their back-off ends first.
    s.clock.advance(16 * 60);
    // A recovery code works once, typed with or without its dash, in any case.
    let d = Browser::new(&s.url);
    assert_eq!(password_step(&s, &d, &id, "", USER).await.0, "/login/two-step");
    let res = d.second_step(&codes[0].to_uppercase()).await;
    assert_eq!(res.status(), 303, "a recovery code instead of the app's");
    let e = Browser::new(&s.url);
    assert_eq!(password_step(&s, &e, &id, "", USER).await.0, "/login/two-step");
    assert_eq!(e.second_step(&codes[0]).await.status(), 401, "a used recovery code");
    assert_eq!(e.second_step(&codes[1].replace('-', "")).await.status(), 303);
    assert!(b.get("/account").await.text().await.unwrap().contains("8 recovery codes left"));

    // Without a password first there is no second step to answer.
    let f = Browser::new(&s.url);
    let _ = f.get("/account/signin").await;
    assert_eq!(f.get("/login/two-step").await.status(), 400);
}

#[tokio::test]
async fn wrong_codes_are_throttled_and_sessions_stay_anonymous_until_the_second_step() {
    let s = TestServer::start().await;
    let (id, _) = oidc_client(&s, false).await;
    let b = Browser::new(&s.url);
    assert_eq!(account_sign_in(&b, USER).await.status(), 303);
    let (totp_secret, _) = b.enrol_totp(s.svc.now()).await;
    let c = Browser::new(&s.url);
    assert_eq!(password_step(&s, &c, &id, "", USER).await.0, "/login/two-step");
    // Between the steps the browser is not signed in: the account page asks for a sign-in.
    assert_eq!(location(&c.get("/account").await), "/account/signin");
    let mut throttled = false;
    for i in 0..12 {
        let res = c.second_step(&format!("{:06}", 100_000 + i)).await;
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            throttled = true;
            break;
        }
        assert_eq!(res.status(), 401);
    }
    assert!(throttled, "wrong codes are throttled as passwords are");
    // While throttled even a right code (the next step's, unused) is refused unchecked.
    assert_eq!(c.second_step(&totp_code(&totp_secret, s.svc.now() + 30)).await.status(), 429);
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let q = tessera_storage::AuditQuery { user_id: Some(alice.id.clone()), kind: Some("second_factor_failed".into()), limit: 50, ..Default::default() };
    assert!(s.svc.store.find_audit_events(&q).await.unwrap().len() >= 4, "failures are security events");
}

#[tokio::test]
async fn a_client_that_requires_mfa_gets_a_second_factor_every_time() {
    let s = TestServer::start().await;
    let (strict_id, strict_secret) = oidc_client(&s, true).await;
    let (lax_id, lax_secret) = oidc_client(&s, false).await;
    create_user(&*s.svc.store, NewUser { username: "bob".into(), ..Default::default() }, s.svc.now()).await;

    // bob has no second factor: the password leads to setting one up, whose first code is the
    // second step; the recovery codes are shown before going on.
    let b = Browser::new(&s.url);
    let (next, verifier) = password_step(&s, &b, &strict_id, "", "bob").await;
    assert_eq!(next, "/login/two-step");
    let html = b.get(&next).await.text().await.unwrap();
    assert!(html.contains("id=\"setup-required\""), "{html}");
    let shown = element_text(&html, "totp-secret").unwrap();
    let form = [("csrf", hidden(&html, "csrf").unwrap()), ("setup", hidden(&html, "setup").unwrap()), ("code", totp_code(&shown, s.svc.now()))];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = b.post_form("/login/two-step/setup", &form).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert_eq!(recovery_codes(&html).len(), 10);
    let cont = element_href(&html, "continue").expect("a continue link");
    let back = through_consent(&b, &cont).await;
    let claims = id_claims(&s, &strict_id, &strict_secret, &back, &verifier).await;
    assert_eq!((claims["amr"].clone(), claims["acr"].clone()), (serde_json::json!(["pwd", "otp", "mfa"]), serde_json::json!(MFA)));

    // carol signs in to the lax client with her password only; the strict client then asks
    // her for a second step (step-up), not for her password again.
    create_user(&*s.svc.store, NewUser { username: "carol".into(), ..Default::default() }, s.svc.now()).await;
    let c = Browser::new(&s.url);
    let (next, verifier) = password_step(&s, &c, &lax_id, "", "carol").await;
    let back = through_consent(&c, &next).await;
    let claims = id_claims(&s, &lax_id, &lax_secret, &back, &verifier).await;
    assert_eq!((claims["amr"].clone(), claims["acr"].clone()), (serde_json::json!(["pwd"]), serde_json::json!("1")));
    let (_, challenge) = pkce_pair();
    let res = c.get(&s.authorize_url(&strict_id, CB, "openid notes.read", "st", Some(&challenge))).await;
    let login = location(&res);
    assert!(login.starts_with("/login?request="), "a password session is not enough: {login}");
    let res = c.get(&login).await;
    assert_eq!(location(&res), "/login/two-step", "only the missing step is asked");
    // Posting the consent form directly cannot skip it.
    let request = query(&format!("http://x{login}")).remove("request").unwrap();
    let account = c.get("/account").await.text().await.unwrap();
    let csrf = hidden(&account, "csrf").unwrap();
    let res = c.post_form("/consent", &[("csrf", &csrf), ("request", &request), ("decision", "allow")]).await;
    assert!(location(&res).starts_with("/login"), "no code without the second factor: {}", location(&res));

    // acr_values asking for the multi-factor policy does the same for any client, and
    // discovery advertises the value.
    let d = Browser::new(&s.url);
    let (next, _) = password_step(&s, &d, &lax_id, "", "carol").await;
    let _ = through_consent(&d, &next).await;
    let (_, challenge) = pkce_pair();
    let url = format!("{}&acr_values={}", s.authorize_url(&lax_id, CB, "openid notes.read", "st", Some(&challenge)), urlencode(MFA));
    let login = location(&d.get(&url).await);
    assert!(login.starts_with("/login?request="), "{login}");
    assert_eq!(location(&d.get(&login).await), "/login/two-step");
    let meta: serde_json::Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.url)).await.unwrap().json().await.unwrap();
    assert!(meta["acr_values_supported"].as_array().unwrap().iter().any(|v| v == MFA), "{meta}");
}

#[tokio::test]
async fn prompt_login_asks_both_steps_and_an_admin_reset_removes_the_factors() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s, false).await;
    let b = Browser::new(&s.url);
    assert_eq!(account_sign_in(&b, USER).await.status(), 303, "no factor yet: one step");
    let (totp_secret, _) = b.enrol_totp(s.svc.now()).await;
    // Signed in to the account page with two steps now.
    let c = Browser::new(&s.url);
    assert_eq!(location(&account_sign_in(&c, USER).await), "/login/two-step");
    s.clock.advance(30);
    let res = c.second_step(&totp_code(&totp_secret, s.svc.now())).await;
    assert_eq!(location(&res), "/account");
    assert_eq!(c.get("/account").await.status(), 200);
    // prompt=login in that session: the password and the code again.
    let (_, challenge) = pkce_pair();
    let res = c.get(&format!("{}&prompt=login", s.authorize_url(&id, CB, "openid notes.read", "st", Some(&challenge)))).await;
    let login = location(&res);
    let html = c.get(&login).await.text().await.unwrap();
    assert!(html.contains("id=\"password\""), "the password is asked again");
    let res = c.sign_in(&html, USER, PASSWORD).await;
    assert_eq!(location(&res), "/login/two-step", "and then the code");

    // An administrator resets alice's factors (a lost phone): one step again.
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let act = Acting { store: &*s.svc.store, actor: "cli:test", now: s.svc.now() };
    assert_eq!(act.reset_mfa(USER).await.unwrap(), 1);
    assert_eq!(s.svc.store.count_recovery_codes(&alice.id).await.unwrap(), 0);
    let d = Browser::new(&s.url);
    let (next, verifier) = password_step(&s, &d, &id, "", USER).await;
    assert!(next.starts_with("/consent"), "{next}");
    let back = through_consent(&d, &next).await;
    assert_eq!(id_claims(&s, &id, &secret, &back, &verifier).await["amr"], serde_json::json!(["pwd"]));
    // Requiring a second factor of her ends her sessions; the next sign-in sets one up.
    act.set_require_mfa(USER, true).await.unwrap();
    assert_eq!(location(&d.get("/account").await), "/account/signin", "her password-only sessions ended");
    let e = Browser::new(&s.url);
    assert_eq!(password_step(&s, &e, &id, "", USER).await.0, "/login/two-step");
    assert!(e.get("/login/two-step").await.text().await.unwrap().contains("id=\"setup-required\""));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The `href` of the element with this `id`.
fn element_href(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..start].rfind('<')?;
    let tag = &html[tag_start..html[start..].find('>')? + start];
    let h = tag.find("href=\"")? + 6;
    Some(tag[h..].split('"').next()?.replace("&amp;", "&").replace("&#x3d;", "="))
}

/// Passkeys need an issuer whose host is a domain (WebAuthn refuses IP addresses): on
/// `http://127.0.0.1:…` the pages say why and show no button; on `http://localhost:…` the
/// button is there. Garbage, replayed and foreign ceremony answers get a JSON error, never a
/// 500.
#[tokio::test]
async fn passkeys_need_a_domain_and_refuse_bad_answers() {
    let ip = TestServer::start().await;
    let b = Browser::new(&ip.url);
    assert_eq!(account_sign_in(&b, USER).await.status(), 303);
    let html = b.get("/account").await.text().await.unwrap();
    assert!(html.contains("id=\"passkeys-unavailable\"") && html.contains("IP address") && !html.contains("id=\"add-passkey\""), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let res = b.post_form("/account/passkeys/options", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 400);
    assert!(res.json::<serde_json::Value>().await.unwrap()["error"].as_str().unwrap().contains("domain name"));
    let (id, _) = oidc_client(&ip, false).await;
    let (_, challenge) = pkce_pair();
    let (_, login) = Browser::new(&ip.url).open_login(&ip.authorize_url(&id, CB, "openid", "st", Some(&challenge))).await;
    assert!(!login.contains("passkey-sign-in"));

    let s = TestServer::start_on_localhost().await;
    let (id, _) = oidc_client(&s, false).await;
    let (_, challenge) = pkce_pair();
    let c = Browser::new(&s.url);
    let (_, login) = c.open_login(&s.authorize_url(&id, CB, "openid", "st", Some(&challenge))).await;
    assert!(login.contains("id=\"passkey-sign-in\"") && login.contains("/static/passkeys.js"), "{login}");
    let script = c.get("/static/passkeys.js").await;
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    let csrf = hidden(&login, "csrf").unwrap();
    // Without the CSRF token: refused.
    assert_eq!(c.post_form("/login/passkey/options", &[]).await.status(), 403);
    let start: serde_json::Value = c.post_form("/login/passkey/options", &[("csrf", &csrf)]).await.json().await.unwrap();
    let token = start["token"].as_str().unwrap().to_string();
    assert_eq!(start["options"]["publicKey"]["rpId"], "localhost");
    assert!(start["options"]["publicKey"]["challenge"].as_str().is_some_and(|c| c.len() >= 43));
    // Over the 4 KiB a form value may have: refused before anything reads it.
    let res = c.post_form("/login/passkey", &[("csrf", &csrf), ("token", &token), ("credential", &"x".repeat(10_000))]).await;
    assert_eq!(res.status(), 400);
    for garbage in ["", "{", "{\"id\":\"x\",\"rawId\":\"eA\",\"type\":\"public-key\",\"response\":{}}", "[1,2,3]"] {
        let t =
            c.post_form("/login/passkey/options", &[("csrf", &csrf)]).await.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
        let res = c.post_form("/login/passkey", &[("csrf", &csrf), ("token", &t), ("credential", garbage)]).await;
        assert_eq!(res.status(), 401, "{garbage:.40}");
        assert!(res.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    }
    // A ceremony answers once, and only in its own browser session.
    let other = Browser::new(&s.url);
    let (_, other_login) = other.open_login(&s.authorize_url(&id, CB, "openid", "st", Some(&challenge))).await;
    let other_csrf = hidden(&other_login, "csrf").unwrap();
    assert_eq!(other.post_form("/login/passkey", &[("csrf", &other_csrf), ("token", &token), ("credential", "{}")]).await.status(), 400, "another session");
    assert_eq!(c.post_form("/login/passkey", &[("csrf", &csrf), ("token", &token), ("credential", "{}")]).await.status(), 400, "taken by the other try");
    assert_eq!(c.post_form("/login/passkey", &[("csrf", &csrf), ("token", "nope"), ("credential", "{}")]).await.status(), 400);
    // No second step waiting: the second-step ceremony does not start.
    assert_eq!(c.post_form("/login/two-step/passkey/options", &[("csrf", &csrf)]).await.status(), 400);
}

/// A second factor is removed from the account page with the current password (a session left
/// open is not enough), only the user's own, and the last one takes the recovery codes along.
#[tokio::test]
async fn removing_a_factor_needs_the_password_and_is_the_users_own() {
    let s = TestServer::start().await;
    let b = Browser::new(&s.url);
    assert_eq!(account_sign_in(&b, USER).await.status(), 303);
    b.enrol_totp(s.svc.now()).await;
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let id = s.svc.store.list_factors(&alice.id).await.unwrap()[0].id.clone();
    let csrf = hidden(&b.get("/account").await.text().await.unwrap(), "csrf").unwrap();
    let remove = format!("/account/two-step/{id}/remove");
    assert_eq!(b.post_form(&remove, &[("current_password", PASSWORD)]).await.status(), 403, "CSRF");
    let res = b.post_form(&remove, &[("csrf", &csrf), ("current_password", "not it")]).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("current password is not right"));
    assert_eq!(s.svc.store.list_factors(&alice.id).await.unwrap().len(), 1, "still there");
    // bob cannot remove alice's factor, even with his own password.
    create_user(&*s.svc.store, NewUser { username: "bob".into(), ..Default::default() }, s.svc.now()).await;
    let bobs = Browser::new(&s.url);
    assert_eq!(account_sign_in(&bobs, "bob").await.status(), 303);
    let bob_csrf = hidden(&bobs.get("/account").await.text().await.unwrap(), "csrf").unwrap();
    let res = bobs.post_form(&remove, &[("csrf", &bob_csrf), ("current_password", PASSWORD)]).await;
    assert!(res.text().await.unwrap().contains("No such second factor of yours"));
    assert_eq!(s.svc.store.list_factors(&alice.id).await.unwrap().len(), 1);
    let res = b.post_form(&remove, &[("csrf", &csrf), ("current_password", PASSWORD)]).await;
    assert!(res.text().await.unwrap().contains("Second factor removed"));
    assert!(s.svc.store.list_factors(&alice.id).await.unwrap().is_empty());
    assert_eq!(s.svc.store.count_recovery_codes(&alice.id).await.unwrap(), 0, "the last one takes the recovery codes along");
    // One step again at the next sign-in.
    let c = Browser::new(&s.url);
    assert_eq!(location(&account_sign_in(&c, USER).await), "/account");
}
