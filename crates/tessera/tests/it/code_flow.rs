//! The authorization code flow over real HTTP against a real SQLite store, one test per rule,
//! each naming the RFC section it checks.
use crate::common::*;
use tessera_server::service::admin::NewClient;

const CB: &str = "http://127.0.0.1:9/callback";

/// RFC 6749 §4.1 end to end: sign in, consent, code with state and iss (RFC 9207), token with
/// PKCE, a JWT access token (RFC 9068) that verifies against the JWKS, and a refresh token.
#[tokio::test]
async fn rfc6749_4_1_full_flow_confidential_client() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let (verifier, challenge) = pkce_pair();
    let b = Browser::new(&s.url);
    let back = b.authorize_and_allow(&s.authorize_url(&id, CB, "notes.read notes.write", "st-1", Some(&challenge))).await;
    assert!(back.starts_with(CB), "{back}");
    let q = query(&back);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], s.url, "RFC 9207 iss");
    let (status, body, headers) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &q["code"]), ("redirect_uri", CB), ("code_verifier", &verifier)])
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes.read notes.write");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body["refresh_token"].is_string());
    let claims = verify_access_token(&s.url, body["access_token"].as_str().unwrap(), API).await;
    for c in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"] {
        assert!(claims.get(c).is_some(), "RFC 9068 §2.2 claim {c} missing: {claims}");
    }
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["scope"], "notes.read notes.write");
    let user = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    assert_eq!(claims["sub"], user.id);
}

/// RFC 7636 with a public client (token_endpoint_auth_method none).
#[tokio::test]
async fn rfc7636_public_client_with_pkce() {
    let s = TestServer::start().await;
    let id = s.public_client(CB).await;
    let (verifier, challenge) = pkce_pair();
    let b = Browser::new(&s.url);
    let back = b.authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "x", Some(&challenge))).await;
    let code = query(&back)["code"].clone();
    // Wrong verifier: invalid_grant, and the code is burnt.
    let (wrong, _) = pkce_pair();
    let (status, body, _) =
        token_form(&s.url, &[("grant_type", "authorization_code"), ("client_id", &id), ("code", &code), ("redirect_uri", CB), ("code_verifier", &wrong)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body, _) =
        token_form(&s.url, &[("grant_type", "authorization_code"), ("client_id", &id), ("code", &code), ("redirect_uri", CB), ("code_verifier", &verifier)])
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "a code that failed PKCE is not usable again");
    // A fresh code with the right verifier works (a public client sees the consent page again:
    // remembered consent alone does not answer it, RFC 8252 §8.6).
    let (verifier, challenge) = pkce_pair();
    let res = b.get(&s.authorize_url(&id, CB, "notes.read", "y", Some(&challenge))).await;
    assert_eq!(res.status(), 303);
    let consent = location(&res);
    assert!(consent.starts_with("/consent?request="), "{consent}");
    let html = b.get(&consent).await.text().await.unwrap();
    let code = query(&b.decide(&html, "allow").await)["code"].clone();
    let (status, body, _) =
        token_form(&s.url, &[("grant_type", "authorization_code"), ("client_id", &id), ("code", &code), ("redirect_uri", CB), ("code_verifier", &verifier)])
            .await;
    assert_eq!(status, 200, "{body}");
}

/// RFC 7636 §4.4.1 / OAuth 2.1: a public client without PKCE gets an error redirect.
#[tokio::test]
async fn rfc7636_4_4_1_public_client_requires_pkce() {
    let s = TestServer::start().await;
    let id = s.public_client(CB).await;
    let res = Browser::new(&s.url).get(&s.authorize_url(&id, CB, "notes.read", "st", None)).await;
    assert_eq!(res.status(), 303);
    let q = query(&location(&res));
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st");
    assert_eq!(q["iss"], s.url);
}

/// RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization server
/// MUST deny the request and SHOULD revoke ... all tokens previously issued based on that
/// authorization code."
#[tokio::test]
async fn rfc6749_4_1_2_code_replay_is_refused_and_revokes_tokens() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let (verifier, challenge) = pkce_pair();
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "s", Some(&challenge))).await;
    let code = query(&back)["code"].clone();
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", CB), ("code_verifier", verifier.as_str())];
    let (status, first, _) = token_basic(&s.url, &id, &secret, &form).await;
    assert_eq!(status, 200);
    let (status, body, _) = token_basic(&s.url, &id, &secret, &form).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // The refresh token from the first redemption no longer works.
    let rt = first["refresh_token"].as_str().unwrap();
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(s.svc.store.list_audit_events("code_replay").await.unwrap().len(), 1, "the replay is recorded");
}

/// RFC 6749 §4.1.2: codes are short-lived (60 s), tested by moving the clock, not sleeping.
#[tokio::test]
async fn rfc6749_4_1_2_code_expires_after_60_seconds() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let (verifier, challenge) = pkce_pair();
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "s", Some(&challenge))).await;
    s.clock.advance(61);
    let (status, body, _) = token_basic(
        &s.url,
        &id,
        &secret,
        &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB), ("code_verifier", &verifier)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

/// RFC 6749 §4.1.2.1: the user denies → access_denied with state and iss.
#[tokio::test]
async fn rfc6749_4_1_2_1_deny_sends_access_denied() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    let (_, html) = b.open_login(&s.authorize_url(&id, CB, "notes.read", "st-9", None)).await;
    let res = b.sign_in(&html, USER, PASSWORD).await;
    let html = b.get(&location(&res)).await.text().await.unwrap();
    let back = b.decide(&html, "deny").await;
    let q = query(&back);
    assert!(back.starts_with(CB));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-9");
    assert_eq!(q["iss"], s.url);
    assert!(!q.contains_key("code"));
}

/// Consent is remembered per user and client; a request for more scopes asks only for the new
/// ones (incremental authorization).
#[tokio::test]
async fn consent_is_remembered_and_incremental() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    b.authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    // Same scope again: straight back with a code, no page.
    let res = b.get(&s.authorize_url(&id, CB, "notes.read", "2", None)).await;
    assert_eq!(res.status(), 303);
    assert!(query(&location(&res)).contains_key("code"));
    // More scopes: the consent page lists only the new one.
    let res = b.get(&s.authorize_url(&id, CB, "notes.read notes.write", "3", None)).await;
    let consent = location(&res);
    assert!(consent.starts_with("/consent"), "{consent}");
    let html = b.get(&consent).await.text().await.unwrap();
    assert!(html.contains("Create and edit your notes"));
    assert!(html.contains("data-scope=\"notes.write\""));
    assert!(!html.contains("data-scope=\"notes.read\""), "already-granted scopes are not asked again");
    assert!(html.contains("Read your notes"), "already-granted scopes are listed as such");
    // Another client is asked afresh.
    let (other, _) = s.confidential_client(CB).await;
    let res = b.get(&s.authorize_url(&other, CB, "notes.read", "4", None)).await;
    assert!(location(&res).starts_with("/consent"));
}

/// The consent page names the client and describes every requested scope; it cannot be framed.
#[tokio::test]
async fn consent_page_names_client_and_scopes() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    let (_, html) = b.open_login(&s.authorize_url(&id, CB, "notes.read notes.delete", "1", None)).await;
    assert!(html.contains("Notes Client"));
    let res = b.sign_in(&html, USER, PASSWORD).await;
    let res = b.get(&location(&res)).await;
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let html = res.text().await.unwrap();
    assert!(html.contains("Notes Client"));
    assert!(html.contains("Read your notes"));
    assert!(html.contains("Delete your notes"));
    assert!(!html.contains("Create and edit your notes"), "only what was asked for");
}

/// Wrong password: the same message for unknown users and wrong passwords; throttled after 5.
#[tokio::test]
async fn sign_in_failures_do_not_reveal_users_and_are_throttled() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    let (_, html) = b.open_login(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    let wrong_pw = b.sign_in(&html, USER, "not the password").await;
    assert_eq!(wrong_pw.status(), 401);
    let wrong_pw = wrong_pw.text().await.unwrap();
    let no_user = b.sign_in(&html, "mallory", "whatever123").await;
    assert_eq!(no_user.status(), 401);
    let no_user = no_user.text().await.unwrap();
    assert!(wrong_pw.contains("Incorrect username or password."));
    assert!(no_user.contains("Incorrect username or password."));
    for _ in 0..4 {
        b.sign_in(&html, USER, "still wrong").await;
    }
    // Now even the right password is refused for a while.
    let res = b.sign_in(&html, USER, PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("Too many failed sign-in attempts"));
    // After the window passes, the right password works (with a new request: the old one expired).
    s.clock.advance(16 * 60);
    let (_, html) = b.open_login(&s.authorize_url(&id, CB, "notes.read", "2", None)).await;
    let res = b.sign_in(&html, USER, PASSWORD).await;
    assert_eq!(res.status(), 303);
}

/// Every HTML form is CSRF-protected: a forged POST without the session's token is refused.
#[tokio::test]
async fn forms_require_the_csrf_token() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    let (_, html) = b.open_login(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    let request = hidden(&html, "request").unwrap();
    let res = b.post_form("/login", &[("csrf", "forged"), ("request", &request), ("username", USER), ("password", PASSWORD)]).await;
    assert_eq!(res.status(), 403);
    let res = b.post_form("/login", &[("request", &request), ("username", USER), ("password", PASSWORD)]).await;
    assert_eq!(res.status(), 403);
    // Another browser (no session) cannot use this request id at all.
    let other = Browser::new(&s.url);
    let res = other.post_form("/login", &[("csrf", &hidden(&html, "csrf").unwrap()), ("request", &request), ("username", USER), ("password", PASSWORD)]).await;
    assert_eq!(res.status(), 400);
    // Sign in properly; the consent form's token is a new one (session rotated at sign-in).
    let res = b.sign_in(&html, USER, PASSWORD).await;
    let consent_html = b.get(&location(&res)).await.text().await.unwrap();
    assert_ne!(hidden(&consent_html, "csrf"), hidden(&html, "csrf"), "sign-in starts a new session");
    let res = b.post_form("/consent", &[("csrf", &hidden(&html, "csrf").unwrap()), ("request", &request), ("decision", "allow")]).await;
    assert_eq!(res.status(), 403, "the pre-sign-in token is dead");
}

/// Session fixation (OWASP Session Management: renew the session id at sign-in): an attacker who plants their own pre-sign-in
/// session cookie in the victim's browser gains nothing when the victim signs in — the sign-in
/// starts a new session, the planted cookie names none, and the request the victim was
/// signing in for follows the new session only.
#[tokio::test]
async fn a_planted_session_cookie_does_not_ride_the_sign_in() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let with = |req: reqwest::RequestBuilder, cookie: &str| req.header("cookie", cookie.to_string());
    // The attacker's own anonymous session, planted in the victim's browser.
    let res = raw.get(s.authorize_url(&id, CB, "notes.read", "1", None)).send().await.unwrap();
    let planted = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let login = location(&res);
    // The victim signs in with it.
    let html = with(raw.get(format!("{}{login}", s.url)), &planted).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("request", hidden(&html, "request").unwrap()),
        ("username", USER.to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let res = with(raw.post(format!("{}/login", s.url)), &planted).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let fresh = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert_ne!(fresh, planted, "a new session id at sign-in");
    let consent = location(&res);
    assert!(consent.starts_with("/consent?request="), "{consent}");
    // The victim's new session carries on to the consent page for the same request.
    let page = with(raw.get(format!("{}{consent}", s.url)), &fresh).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("notes.read"));
    // The attacker's cookie is signed in to nothing: asked to sign in, and the request is gone.
    let res = with(raw.get(s.authorize_url(&id, CB, "notes.read", "2", None)), &planted).send().await.unwrap();
    assert!(location(&res).starts_with("/login?request="), "the planted cookie is not signed in");
    let res = with(raw.get(format!("{}{consent}", s.url)), &planted).send().await.unwrap();
    assert_ne!(res.status(), 200, "the victim's pending request does not answer to the planted cookie");
}

/// The session cookie is HttpOnly and SameSite=Lax (Secure needs an https issuer).
#[tokio::test]
async fn session_cookie_attributes() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let res = Browser::new(&s.url).get(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
}

/// RFC 6749 §2.3.1 client authentication: Basic, post, wrong secret, wrong method.
#[tokio::test]
async fn rfc6749_2_3_1_client_authentication() {
    let s = TestServer::start().await;
    let post = s
        .client(NewClient {
            name: "Post".into(),
            redirect_uris: vec![CB.into()],
            scope: "notes.read".into(),
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..Default::default()
        })
        .await;
    let (pid, psecret) = (post.client.client_id.clone(), post.client_secret.clone().unwrap());
    let b = Browser::new(&s.url);
    let back = b.authorize_and_allow(&s.authorize_url(&pid, CB, "notes.read", "1", None)).await;
    let code = query(&back)["code"].clone();
    // Basic for a client_secret_post client: refused.
    let (status, body, headers) = token_basic(&s.url, &pid, &psecret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB)]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    // Wrong secret in the body.
    let (status, body, _) =
        token_form(&s.url, &[("grant_type", "authorization_code"), ("client_id", &pid), ("client_secret", "nope"), ("code", &code), ("redirect_uri", CB)])
            .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    // Right.
    let (status, body, _) =
        token_form(&s.url, &[("grant_type", "authorization_code"), ("client_id", &pid), ("client_secret", &psecret), ("code", &code), ("redirect_uri", CB)])
            .await;
    assert_eq!(status, 200, "{body}");
    // A confidential client may not skip authentication.
    let (status, body, _) = token_form(&s.url, &[("grant_type", "authorization_code"), ("client_id", &pid), ("code", "x")]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    // Unknown client with Basic.
    let (status, body, headers) = token_basic(&s.url, "ghost", "x", &[("grant_type", "authorization_code"), ("code", "x")]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    assert!(headers.contains_key("www-authenticate"));
}

/// RFC 6749 §4.1.3: a code is bound to its client and redirect URI.
#[tokio::test]
async fn rfc6749_4_1_3_code_bound_to_client_and_redirect_uri() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let (other, other_secret) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    let back = b.authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    let (status, body, _) =
        token_basic(&s.url, &other, &other_secret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let res = b.get(&s.authorize_url(&id, CB, "notes.read", "2", None)).await;
    let code = query(&location(&res))["code"].clone();
    let (status, body, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:9/other")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let res = b.get(&s.authorize_url(&id, CB, "notes.read", "3", None)).await;
    let code = query(&location(&res))["code"].clone();
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "redirect_uri is required when it was in the request");
}

/// RFC 6749 §6 with RFC 9700 §4.14.2: refresh rotates; the old token is dead; reuse revokes the
/// family; scope can be narrowed, never widened.
#[tokio::test]
async fn rfc6749_6_refresh_rotation_and_reuse_detection() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&id, CB, "notes.read notes.write", "1", None)).await;
    let (_, t0, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    let rt0 = t0["refresh_token"].as_str().unwrap().to_string();
    // Narrow.
    let (status, t1, headers) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt0), ("scope", "notes.read")]).await;
    assert_eq!(status, 200, "{t1}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(t1["scope"], "notes.read");
    let rt1 = t1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt0, "rotation");
    let claims = verify_access_token(&s.url, t1["access_token"].as_str().unwrap(), API).await;
    assert_eq!(claims["scope"], "notes.read");
    // The rotated token keeps the original grant: it can get both scopes back.
    let (status, t2, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!(status, 200);
    assert_eq!(t2["scope"], "notes.read notes.write");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_string();
    // Widening is refused.
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt2), ("scope", "notes.delete")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    // The refused request did not spend rt2.
    let (status, t3, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt2)]).await;
    assert_eq!(status, 200, "{t3}");
    let rt3 = t3["refresh_token"].as_str().unwrap().to_string();
    // Reusing the old rt0 is reuse: the whole family dies, including the live rt3.
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt0)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(s.svc.store.list_audit_events("refresh_reuse").await.unwrap().len(), 1);
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt3)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "the family is revoked");
}

/// A refresh token cannot be used by another client.
#[tokio::test]
async fn rfc6749_6_refresh_token_bound_to_client() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let (other, other_secret) = s.confidential_client(CB).await;
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    let (_, t0, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    let rt = t0["refresh_token"].as_str().unwrap();
    let (status, body, _) = token_basic(&s.url, &other, &other_secret, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

/// A client registered without refresh_token gets no refresh token and may not use the grant.
#[tokio::test]
async fn refresh_token_only_for_clients_that_may_use_it() {
    let s = TestServer::start().await;
    let c = s
        .client(NewClient {
            name: "No refresh".into(),
            redirect_uris: vec![CB.into()],
            scope: "notes.read".into(),
            grant_types: vec!["authorization_code".into()],
            ..Default::default()
        })
        .await;
    let (id, secret) = (c.client.client_id, c.client_secret.unwrap());
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    let (status, body, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none());
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
}

/// RFC 6749 §4.1.2.1: errors about the client or redirect URI are shown, never redirected.
#[tokio::test]
async fn rfc6749_4_1_2_1_bad_redirect_uri_is_never_followed() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    for url in [
        s.authorize_url(&id, "https://evil.example/cb", "notes.read", "1", None),
        s.authorize_url(&id, &format!("{CB}/"), "notes.read", "1", None),
        s.authorize_url("no-such-client", CB, "notes.read", "1", None),
        format!("{}/authorize?response_type=code&redirect_uri={CB}", s.url),
    ] {
        let res = b.get(&url).await;
        assert_eq!(res.status(), 400, "{url}");
        assert!(res.headers().get("location").is_none());
        assert!(res.text().await.unwrap().contains("invalid_request"));
    }
    // Errors after the redirect URI is validated go back to the client.
    let res = b.get(&s.authorize_url(&id, CB, "admin", "st", None)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(query(&location(&res))["error"], "invalid_scope");
    let res = b.get(&s.authorize_url(&id, CB, "notes.read", "st", None).replace("response_type=code", "response_type=token")).await;
    assert_eq!(query(&location(&res))["error"], "unsupported_response_type");
}

/// RFC 8414 §3: the metadata document advertises exactly what is served; JWKS has no private parts.
#[tokio::test]
async fn rfc8414_metadata_and_jwks() {
    let s = TestServer::start().await;
    let http = reqwest::Client::new();
    let m: serde_json::Value = http.get(format!("{}/.well-known/oauth-authorization-server", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(m["issuer"], s.url);
    assert_eq!(m["token_endpoint"], format!("{}/token", s.url));
    assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ])
    );
    for endpoint in ["revocation_endpoint", "introspection_endpoint", "device_authorization_endpoint"] {
        let url = m[endpoint].as_str().unwrap();
        let res = http.post(url).form(&[("x", "y")]).send().await.unwrap();
        assert_ne!(res.status(), 404, "{endpoint} is served");
    }
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!([
            "address",
            "email",
            "groups",
            "notes.delete",
            "notes.read",
            "notes.write",
            "offline_access",
            "openid",
            "phone",
            "profile",
            "tessera.admin",
            "tessera.read"
        ])
    );
    let jwks: serde_json::Value = http.get(m["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, vec!["ES256", "EdDSA", "RS256"], "one published key per signing algorithm");
    let es = keys.iter().find(|k| k["alg"] == "ES256").unwrap();
    assert_eq!((es["kty"].as_str(), es["crv"].as_str()), (Some("EC"), Some("P-256")));
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "no private key material ({private})");
        }
    }
}

/// A client registered through the store while the server runs is usable at once; a deleted one
/// is refused within the cache bound.
#[tokio::test]
async fn clients_added_while_running_are_seen() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let res = Browser::new(&s.url).get(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    assert_eq!(res.status(), 303);
    s.svc.store.delete_client(&id).await.unwrap();
    // Client records are cached for at most CACHE_TTL (the service's clock, moved here instead
    // of slept through): once the bound has passed the deleted client is refused.
    s.clock.advance(tessera_server::service::CACHE_TTL.as_secs() as i64);
    let res = Browser::new(&s.url).get(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    assert_eq!(res.status(), 400, "a deleted client is refused once the cache bound has passed");
}
