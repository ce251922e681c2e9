//! The admin console at `/admin` over real HTTP (issue 16): who gets in (a signed-in
//! administrator, checked on every request), CSRF on every form, bad input answered on the
//! page with nothing changed, and every change in the audit log under the administrator.
//! The browser journey (Chromium) is `ci::console_browser`.
use crate::common::*;
use tessera_server::service::admin::{self, NewUser};
use tessera_storage::AuditQuery;

/// Sign in at the console's own sign-in page; returns the response of the form post.
async fn console_sign_in(b: &Browser, username: &str, password: &str) -> reqwest::Response {
    let res = b.get("/admin/signin").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let csrf = hidden(&html, "csrf").expect("a CSRF token on the sign-in form");
    b.post_form("/admin/signin", &[("csrf", &csrf), ("username", username), ("password", password)]).await
}

/// A console page's CSRF token (the sign-out form in its header carries it).
async fn csrf_of(b: &Browser, path: &str) -> String {
    let res = b.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    hidden(&res.text().await.unwrap(), "csrf").expect("csrf")
}

async fn events(s: &TestServer, kind: &str) -> Vec<tessera_storage::AuditEvent> {
    s.svc.store.find_audit_events(&AuditQuery { kind: Some(kind.into()), limit: 50, ..Default::default() }).await.unwrap()
}

#[tokio::test]
async fn only_a_signed_in_administrator_gets_in() {
    let s = TestServer::start().await;
    let b = Browser::new(&s.url);
    // No session: every page sends to the sign-in page, and no form is taken.
    for path in ["/admin", "/admin/clients", "/admin/users", "/admin/audit", "/admin/keys"] {
        let res = b.get(path).await;
        assert_eq!((res.status().as_u16(), location(&res)), (303, "/admin/signin".to_string()), "{path}");
    }
    let res = b.post_form("/admin/clients", &[("name", "X"), ("csrf", "guess")]).await;
    assert_eq!(res.status(), 303, "no session: to the sign-in page");
    // A wrong password is refused on the page, and is a failed sign-in in the audit log.
    let res = console_sign_in(&b, USER, "wrong password").await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("Incorrect username or password."));
    assert!(!events(&s, "sign_in_failed").await.is_empty());
    // alice is not an administrator: signed in, but the console is not hers.
    let before = b.get("/admin/signin").await;
    let anonymous_cookie = before.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
    let res = console_sign_in(&b, USER, PASSWORD).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/admin".to_string()));
    let new_cookie = res.headers().get("set-cookie").expect("a new session at sign-in").to_str().unwrap().to_string();
    assert_ne!(Some(&new_cookie), anonymous_cookie.as_ref(), "a new session id at sign-in (no fixation)");
    let res = b.get("/admin").await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("not an administrator"));
    let res = b.get("/admin/users").await;
    assert_eq!(res.status(), 403);
    // `tessera user update --admin`: in, on the next request.
    admin::set_admin(&*s.svc.store, USER, true).await.unwrap();
    let res = b.get("/admin").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-frame-options"], "DENY", "anti-framing");
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"signed-in-as\">alice<") && html.contains("<title>Overview — Tessera admin</title>"), "{html}");
    // And out again when the role goes.
    admin::set_admin(&*s.svc.store, USER, false).await.unwrap();
    assert_eq!(b.get("/admin/clients").await.status(), 403);
    // A disabled administrator: signed out (disabling ends sessions) and cannot sign in.
    admin::set_admin(&*s.svc.store, USER, true).await.unwrap();
    assert_eq!(b.get("/admin/clients").await.status(), 200);
    admin::set_disabled(&*s.svc.store, USER, true, s.svc.now()).await.unwrap();
    assert_eq!(location(&b.get("/admin/clients").await), "/admin/signin");
    assert_eq!(console_sign_in(&b, USER, PASSWORD).await.status(), 403, "disabled");
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token_and_bad_input_changes_nothing() {
    let s = TestServer::start().await;
    admin::set_admin(&*s.svc.store, USER, true).await.unwrap();
    let b = Browser::new(&s.url);
    assert_eq!(console_sign_in(&b, USER, PASSWORD).await.status(), 303);
    let csrf = csrf_of(&b, "/admin/clients").await;
    let clients_before = s.svc.store.list_clients().await.unwrap().len();
    // Without the token, with another session's token, with a wrong one: 403, nothing made.
    let other = Browser::new(&s.url);
    let res = other.get("/admin/signin").await;
    let other_csrf = hidden(&res.text().await.unwrap(), "csrf").unwrap();
    for token in [None, Some(other_csrf.as_str()), Some("x")] {
        let mut form = vec![("name", "Sneaky"), ("grant_client_credentials", "on")];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let res = b.post_form("/admin/clients", &form).await;
        assert_eq!(res.status(), 403, "{token:?}");
    }
    assert_eq!(s.svc.store.list_clients().await.unwrap().len(), clients_before);
    // A redirect URI that is not allowed: the form again with the reason, nothing registered.
    let res = b
        .post_form("/admin/clients", &[("csrf", &csrf), ("name", "Bad"), ("redirect_uris", "https://app.example/cb#frag"), ("grant_authorization_code", "on")])
        .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"error\"") && html.contains("--redirect-uri"), "{html}");
    assert_eq!(s.svc.store.list_clients().await.unwrap().len(), clients_before);
    // A repeated field is an error page, never a 500.
    let res = b
        .http
        .post(format!("{}/admin/clients", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&name=a&name=b"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // A good one: registered, its secret on the page once, recorded as alice's.
    let res = b
        .post_form(
            "/admin/clients",
            &[
                ("csrf", &csrf),
                ("name", "Console App"),
                ("redirect_uris", "https://app.example/cb"),
                ("scope", "openid notes.read"),
                ("grant_authorization_code", "on"),
                ("grant_refresh_token", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    let secret = html.split("id=\"client-secret\">").nth(1).and_then(|r| r.split('<').next()).expect("the secret, shown once").to_string();
    let id = html.split("id=\"client-id\">").nth(1).and_then(|r| r.split('<').next()).unwrap().to_string();
    let c = s.svc.store.find_client(&id).await.unwrap().unwrap();
    assert_eq!(c.secret_hash.as_deref(), Some(tessera_server::secret::hash(&secret).as_str()));
    let page = b.get(&format!("/admin/clients/{id}")).await.text().await.unwrap();
    assert!(!page.contains(&secret), "the secret is not shown again");
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let created = events(&s, "admin.client_created").await;
    assert_eq!((created[0].actor.as_str(), created[0].client_id.as_deref()), (alice.id.as_str(), Some(id.as_str())));
    // Editing the redirect URIs, then delete with confirmation (a GET changes nothing).
    let res = b
        .post_form(
            &format!("/admin/clients/{id}"),
            &[("csrf", &csrf), ("name", "Console App"), ("redirect_uris", "https://app.example/cb\nhttps://app.example/cb2"), ("scope", "openid")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(s.svc.store.find_client(&id).await.unwrap().unwrap().redirect_uris, ["https://app.example/cb", "https://app.example/cb2"]);
    assert_eq!(b.get(&format!("/admin/clients/{id}/delete")).await.status(), 200);
    assert!(s.svc.store.find_client(&id).await.unwrap().is_some(), "the confirmation page deletes nothing");
    let res = b.post_form(&format!("/admin/clients/{id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert!(s.svc.store.find_client(&id).await.unwrap().is_none());
    assert_eq!(events(&s, "admin.client_deleted").await[0].actor, alice.id);
    // An administrator cannot disable or delete themselves here.
    let res = b.post_form(&format!("/admin/users/{}/disable", alice.id), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 400);
    assert!(s.svc.active_user(&alice.id).await.unwrap().is_some());
    // Sign-out is a CSRF-checked form too.
    assert_eq!(b.post_form("/admin/signout", &[("csrf", "x")]).await.status(), 403);
    assert_eq!(b.post_form("/admin/signout", &[("csrf", &csrf)]).await.status(), 303);
    assert_eq!(location(&b.get("/admin").await), "/admin/signin");
}

#[tokio::test]
async fn users_groups_apis_and_the_audit_page() {
    let s = TestServer::start().await;
    let alice = admin::set_admin(&*s.svc.store, USER, true).await.unwrap();
    let b = Browser::new(&s.url);
    assert_eq!(console_sign_in(&b, USER, PASSWORD).await.status(), 303);
    let csrf = csrf_of(&b, "/admin/users").await;
    // Create a user; a short password is refused on the page.
    let res = b.post_form("/admin/users", &[("csrf", &csrf), ("username", "bob"), ("password", "short")]).await;
    assert_eq!(res.status(), 400);
    assert!(s.svc.store.find_user_by_username("bob").await.unwrap().is_none());
    let res = b.post_form("/admin/users", &[("csrf", &csrf), ("username", "bob"), ("email", "bob@example.com"), ("password", "bob's long password")]).await;
    assert_eq!(res.status(), 303);
    let bob = s.svc.store.find_user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(location(&res), format!("/admin/users/{}", bob.id));
    assert!(s.svc.sign_in("bob", "bob's long password", "127.0.0.1").await.unwrap().is_ok());
    // Search finds him by email.
    let html = b.get("/admin/users?q=BOB%40EXAMPLE").await.text().await.unwrap();
    assert!(html.contains(&format!("/admin/users/{}", bob.id)) && !html.contains(&format!("/admin/users/{}\"", alice.id)), "{html}");
    // Disable: his sessions end; the page says so; enable again.
    let res = b.post_form(&format!("/admin/users/{}/disable", bob.id), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("disabled-tag"));
    assert!(s.svc.active_user(&bob.id).await.unwrap().is_none());
    assert_eq!(b.post_form(&format!("/admin/users/{}/enable", bob.id), &[("csrf", &csrf)]).await.status(), 200);
    assert!(s.svc.active_user(&bob.id).await.unwrap().is_some());
    // Groups: create, add a member (an unknown one is refused on the page), and roles.
    assert_eq!(b.post_form("/admin/groups", &[("csrf", &csrf), ("name", "editors")]).await.status(), 303);
    assert_eq!(b.post_form("/admin/groups", &[("csrf", &csrf), ("name", "editors")]).await.status(), 400, "taken");
    assert_eq!(b.post_form("/admin/groups/editors/members", &[("csrf", &csrf), ("username", "nobody")]).await.status(), 400);
    assert_eq!(b.post_form("/admin/groups/editors/members", &[("csrf", &csrf), ("username", "bob")]).await.status(), 200);
    assert_eq!(admin::group_members(&*s.svc.store, "editors").await.unwrap(), ["bob"]);
    let res = b
        .post_form(
            "/admin/apis",
            &[("csrf", &csrf), ("identifier", "https://wiki.example"), ("name", "Wiki"), ("scopes", "wiki.read=Read the wiki"), ("roles", "editor=Can edit")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let api_page = location(&res);
    assert_eq!(api_page, "/admin/apis/https%3A%2F%2Fwiki.example");
    let res = b.post_form(&format!("{api_page}/grant"), &[("csrf", &csrf), ("role", "editor"), ("kind", "group"), ("holder", "editors")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(s.svc.store.find_user_roles(&bob.id, "https://wiki.example").await.unwrap(), ["editor"]);
    let res = b.post_form(&format!("{api_page}/grant"), &[("csrf", &csrf), ("role", "owner"), ("kind", "user"), ("holder", "bob")]).await;
    assert_eq!(res.status(), 400, "an undeclared role");
    // Keys: a rotation publishes one new key per algorithm.
    let keys_before = s.svc.store.list_signing_keys().await.unwrap().len();
    assert_eq!(b.post_form("/admin/keys", &[("csrf", &csrf)]).await.status(), 200);
    assert_eq!(s.svc.store.list_signing_keys().await.unwrap().len(), keys_before + tessera_jose::Alg::ALL.len());
    // The audit page: the changes, by alice (her name), filterable by user.
    let html = b.get("/admin/audit?user=bob").await.text().await.unwrap();
    for kind in ["admin.user_created", "admin.user_disabled", "admin.user_enabled", "admin.group_member_added", "sign_in"] {
        assert!(html.contains(&format!("data-type=\"{kind}\"")), "{kind} in {html}");
    }
    assert!(!html.contains("data-type=\"admin.keys_rotated\""), "filtered by user");
    assert!(html.contains("<td class=\"actor\">alice</td>"));
    let all = b.get("/admin/audit").await.text().await.unwrap();
    assert!(all.contains("data-type=\"admin.keys_rotated\"") && all.contains("data-type=\"admin.role_granted\""));
    // Nothing reflected unescaped from the query.
    let html = b.get("/admin/audit?type=%3Cscript%3E").await.text().await.unwrap();
    assert!(!html.contains("<script>"), "escaped");
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"), "shown, escaped");
    // A user with a session and an app: remove access, end sessions; delete with confirmation.
    let _ = create_user(&*s.svc.store, NewUser { username: "carol".into(), ..Default::default() }, s.svc.now()).await;
    let carol = s.svc.store.find_user_by_username("carol").await.unwrap().unwrap();
    assert_eq!(b.post_form(&format!("/admin/users/{}/sessions/end", carol.id), &[("csrf", &csrf)]).await.status(), 200);
    assert_eq!(b.post_form(&format!("/admin/users/{}/apps/nope/remove", carol.id), &[("csrf", &csrf)]).await.status(), 404);
    assert_eq!(b.post_form(&format!("/admin/users/{}/delete", carol.id), &[("csrf", &csrf)]).await.status(), 303);
    assert!(s.svc.store.find_user(&carol.id).await.unwrap().is_none());
}

/// Issue 15: on a user's page an administrator sees their second factors, requires one (the
/// user's sessions end) and resets them; each change audited under the administrator.
#[tokio::test]
async fn second_factors_on_a_users_page() {
    let s = TestServer::start().await;
    let admin_user = admin::set_admin(&*s.svc.store, USER, true).await.unwrap();
    create_user(&*s.svc.store, NewUser { username: "bob".into(), ..Default::default() }, s.svc.now()).await;
    let bob = s.svc.store.find_user_by_username("bob").await.unwrap().unwrap();
    let bobs = Browser::new(&s.url);
    let html = bobs.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    bobs.post_form("/account/signin", &[("csrf", &csrf), ("username", "bob"), ("password", PASSWORD)]).await;
    bobs.enrol_totp(s.svc.now()).await;

    let b = Browser::new(&s.url);
    assert_eq!(console_sign_in(&b, USER, PASSWORD).await.status(), 303);
    let page = format!("/admin/users/{}", bob.id);
    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains("id=\"factors\"") && html.contains("Phone"), "{html}");
    let csrf = csrf_of(&b, &page).await;
    assert_eq!(b.post_form(&format!("{page}/mfa/reset"), &[]).await.status(), 403, "CSRF");
    let res = b.post_form(&format!("{page}/mfa"), &[("csrf", &csrf), ("require", "on")]).await;
    assert_eq!(res.status(), 200);
    assert!(s.svc.store.find_user(&bob.id).await.unwrap().unwrap().require_mfa);
    assert_eq!(location(&bobs.get("/account").await), "/account/signin", "bob's sessions ended");
    let res = b.post_form(&format!("{page}/mfa/reset"), &[("csrf", &csrf)]).await;
    assert!(res.text().await.unwrap().contains("Removed 1 second factor"));
    assert!(s.svc.store.list_factors(&bob.id).await.unwrap().is_empty());
    let reset = events(&s, "admin.mfa_reset").await;
    assert_eq!((reset.len(), reset[0].actor.as_str()), (1, admin_user.id.as_str()));
    assert_eq!(events(&s, "admin.mfa_required").await.len(), 1);
}
