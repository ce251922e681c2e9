//! The seed's story over real HTTP: Tessera, the Notes API (tessera-guard) and the Notes Client
//! (authorization code + PKCE, confidential), with a scripted browser. Token expiry is real:
//! the API's guard reads Tessera's clock, which the tests move.
use crate::common::stack::*;
use crate::common::*;
use serde_json::{Value, json};

const ALL: [&str; 3] = ["notes.read", "notes.write", "notes.delete"];

/// An access token for alice with `scope`, straight from the code flow (no Notes Client).
async fn token_for(st: &Stack, scope: &str) -> String {
    let cb = format!("{}/callback", st.client_url);
    let (id, secret) = st.s.confidential_client(&cb).await;
    let (verifier, challenge) = pkce_pair();
    let url = st.s.authorize_url(&id, &cb, scope, "st", Some(&challenge));
    let back = Browser::new(&st.s.url).authorize_and_allow(&url).await;
    let code = query(&back)["code"].clone();
    let (status, body, _) =
        token_basic(&st.s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &cb), ("code_verifier", &verifier)])
            .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn api(st: &Stack, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", st.api_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let www = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    (status, www, res.json().await.unwrap_or(Value::Null))
}

/// The Notes API with real Tessera tokens: each route's scope (RFC 6750 §3.1), owner isolation.
#[tokio::test]
async fn notes_api_enforces_each_routes_scope() {
    let st = Stack::start().await;
    use reqwest::Method;
    let read = token_for(&st, "notes.read").await;
    let (s, _, body) = api(&st, Method::GET, "/notes", Some(&read), None).await;
    assert_eq!(s, 200);
    assert_eq!(body["notes"].as_array().unwrap().len(), 2);
    let id = body["notes"][0]["id"].as_i64().unwrap();
    assert_eq!(api(&st, Method::GET, &format!("/notes/{id}"), Some(&read), None).await.2["title"], "Groceries");
    for (method, path, scope) in [
        (Method::POST, "/notes".to_string(), "notes.write"),
        (Method::PUT, format!("/notes/{id}"), "notes.write"),
        (Method::DELETE, format!("/notes/{id}"), "notes.delete"),
    ] {
        let (s, www, body) = api(&st, method.clone(), &path, Some(&read), Some(json!({"title": "x"}))).await;
        assert_eq!(s, 403, "{method} {path}");
        assert!(www.unwrap().contains(&format!("scope=\"{scope}\"")));
        assert_eq!(body["error"], "insufficient_scope");
    }
    let all = token_for(&st, "notes.read notes.write notes.delete").await;
    let (s, _, created) = api(&st, Method::POST, "/notes", Some(&all), Some(json!({"title": "New", "body": "b"}))).await;
    assert_eq!(s, 201);
    let new_id = created["id"].as_i64().unwrap();
    let (s, _, updated) = api(&st, Method::PUT, &format!("/notes/{new_id}"), Some(&all), Some(json!({"title": "Renamed", "body": "c"}))).await;
    assert_eq!((s, updated["title"].as_str()), (200, Some("Renamed")));
    assert_eq!(api(&st, Method::POST, "/notes", Some(&all), Some(json!({"title": ""}))).await.0, 400);
    assert_eq!(api(&st, Method::DELETE, &format!("/notes/{new_id}"), Some(&all), None).await.0, 204);
    assert_eq!(api(&st, Method::GET, &format!("/notes/{new_id}"), Some(&all), None).await.0, 404);
    // Another user's notes do not exist for alice.
    let bobs = st.notes.create("someone-else", "Bob's", "", 3).await.unwrap();
    assert_eq!(api(&st, Method::GET, &format!("/notes/{}", bobs.id), Some(&all), None).await.0, 404);
    assert_eq!(api(&st, Method::DELETE, &format!("/notes/{}", bobs.id), Some(&all), None).await.0, 404);
    // No token, a malformed header, an expired token.
    let (s, www, _) = api(&st, Method::GET, "/notes", None, None).await;
    assert_eq!((s, www.as_deref()), (401, Some("Bearer")));
    let res = reqwest::Client::new().get(format!("{}/notes", st.api_url)).header("authorization", "Bearer a b").send().await.unwrap();
    assert_eq!(res.status(), 400);
    st.advance_server_clock(601 + 30);
    let (s, www, _) = api(&st, Method::GET, "/notes", Some(&all), None).await;
    assert_eq!(s, 401);
    assert!(www.unwrap().contains("error=\"invalid_token\""));
}

/// Connect (code + PKCE + state + iss), see the notes, create, edit, delete — all through the
/// Notes Client's pages.
#[tokio::test]
async fn client_connects_and_manages_notes() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    let home = v.page("/").await.1;
    assert!(home.contains("Connect your Notes account"));
    let authorize = v.start_connect(&ALL).await;
    let q = query(&authorize);
    assert_eq!(q["scope"], "notes.read notes.write notes.delete");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 43 && q["code_challenge"].len() == 43);
    let callback = Browser::new(&st.s.url).authorize_and_allow(&authorize).await;
    let html = v.page(&callback).await.1;
    assert_eq!(flash(&html).as_deref(), Some("Your Notes account is connected."));
    assert_eq!(note_titles(&html), ["Groceries", "Ideas"]);
    assert!(!html.contains(&st.client_access_tokens()[0]), "tokens never reach the browser");

    let csrf = hidden(&html, "csrf").unwrap();
    let html = v.submit("/notes", &[("csrf", &csrf), ("title", "Call mum"), ("body", "Sunday")]).await;
    assert_eq!(flash(&html).as_deref(), Some("Created “Call mum”."));
    assert_eq!(note_titles(&html), ["Groceries", "Ideas", "Call mum"]);
    let id = st.notes.list(&st.alice_id).await.unwrap()[2].id;
    let edit = v.page(&format!("/notes/{id}/edit")).await.1;
    assert!(edit.contains("value=\"Call mum\""));
    let html = v.submit(&format!("/notes/{id}/edit"), &[("csrf", &csrf), ("title", "Call mum <3"), ("body", "Sunday 5pm")]).await;
    assert_eq!(note_titles(&html), ["Groceries", "Ideas", "Call mum &#60;3"], "escaped");
    let html = v.submit(&format!("/notes/{id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(flash(&html).as_deref(), Some("Note deleted."));
    assert_eq!(st.notes.count(&st.alice_id).await.unwrap(), 2);
    let html = v.submit("/disconnect", &[("csrf", &csrf)]).await;
    assert!(html.contains("Connect your Notes account"));
    assert!(st.client_access_tokens().is_empty());
}

/// Only `notes.read` granted: the delete button's request is refused by the API and the app
/// says so in words; the note is still there.
#[tokio::test]
async fn read_only_grant_delete_is_refused_readably() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    let html = v.connect(&st, &["notes.read"]).await;
    assert_eq!(note_titles(&html), ["Groceries", "Ideas"]);
    assert!(html.contains("data-scope=\"notes.read\"") && !html.contains("data-scope=\"notes.delete\""));
    let csrf = hidden(&html, "csrf").unwrap();
    let id = st.notes.list(&st.alice_id).await.unwrap()[0].id;
    let refused_before = st.guard.stats().insufficient_scope;
    let html = v.submit(&format!("/notes/{id}/delete"), &[("csrf", &csrf)]).await;
    let msg = flash(&html).unwrap();
    assert!(msg.starts_with("This app was not given permission to delete your notes."), "{msg}");
    assert_eq!(st.guard.stats().insufficient_scope, refused_before + 1, "the API itself refused");
    assert_eq!(st.notes.count(&st.alice_id).await.unwrap(), 2);
    let html = v.submit("/notes", &[("csrf", &csrf), ("title", "x")]).await;
    assert!(flash(&html).unwrap().starts_with("This app was not given permission to create or edit your notes."));
}

/// RFC 6749 §10.12 and RFC 9207: a callback whose state or iss does not match is refused
/// before any code is redeemed.
#[tokio::test]
async fn callback_checks_state_and_iss() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    let authorize = v.start_connect(&ALL).await;
    let callback = Browser::new(&st.s.url).authorize_and_allow(&authorize).await;
    let q = query(&callback);
    let bad_state = format!("/callback?code={}&state=forged&iss={}", q["code"], url_enc(&st.s.url));
    let (s, html) = v.page(&bad_state).await;
    assert_eq!(s, 400);
    assert!(html.contains("state mismatch"), "{html}");
    // The pending request is spent: even the genuine callback is refused now.
    let (s, _) = v.page(&callback).await;
    assert_eq!(s, 400);

    let authorize = v.start_connect(&ALL).await;
    let callback = Browser::new(&st.s.url).authorize_and_allow(&authorize).await;
    let q = query(&callback);
    let wrong_iss = format!("/callback?code={}&state={}&iss={}", q["code"], q["state"], url_enc("https://evil.example"));
    let (s, html) = v.page(&wrong_iss).await;
    assert_eq!(s, 400);
    assert!(html.contains("iss mismatch"), "{html}");
    let no_iss = format!("/callback?code={}&state={}", q["code"], q["state"]);
    assert_eq!(v.page(&no_iss).await.0, 400);
    // Another browser (no session) cannot use the callback either.
    assert_eq!(Visitor::new(&st).page(&callback).await.0, 400);
    assert_eq!(st.client.stats().code_exchanges, 0, "no code was redeemed");
}

fn url_enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Forms without the session's CSRF token do nothing; pages cannot be framed.
#[tokio::test]
async fn client_forms_need_csrf_and_pages_are_unframeable() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    v.connect(&st, &ALL).await;
    let calls = st.client.stats().api_calls;
    let id = st.notes.list(&st.alice_id).await.unwrap()[0].id;
    for csrf in ["", "wrong"] {
        let html = v.submit(&format!("/notes/{id}/delete"), &[("csrf", csrf)]).await;
        assert!(flash(&html).unwrap().contains("form had expired"));
    }
    let res = v.post("/connect", &[("scope", "notes.read")]).await;
    assert_eq!(location(&res), "/");
    assert_eq!(st.notes.count(&st.alice_id).await.unwrap(), 2);
    assert_eq!(st.client.stats().api_calls, calls + 2, "only the two home pages called the API");
    let res = v.get("/").await;
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
}

/// The client knows its token expired (expires_in, its clock): it refreshes before calling, so
/// the API never sees the expired token; the rotated refresh token replaces the old one.
#[tokio::test]
async fn expired_token_is_refreshed_before_the_call() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    v.connect(&st, &ALL).await;
    let before = st.client_access_tokens();
    let old_refresh = st.client.sessions.all().iter().find_map(|s| s.tokens()).unwrap().refresh_token;
    st.advance_server_clock(700);
    st.client_clock.advance(700);
    let html = v.page("/").await.1;
    assert_eq!(note_titles(&html), ["Groceries", "Ideas"]);
    let stats = st.client.stats();
    assert_eq!((stats.proactive_refreshes, stats.reactive_refreshes), (1, 0));
    assert_eq!(st.guard.stats().expired, 0, "the API was never called with the expired token");
    let after = st.client_access_tokens();
    assert_ne!(before, after);
    let new_refresh = st.client.sessions.all().iter().find_map(|s| s.tokens()).unwrap().refresh_token;
    assert_ne!(old_refresh, new_refresh, "refresh token rotated and stored");
    // The old access token really is expired for the API; the new one is accepted.
    assert_eq!(api(&st, reqwest::Method::GET, "/notes", Some(&before[0]), None).await.0, 401);
    assert_eq!(api(&st, reqwest::Method::GET, "/notes", Some(&after[0]), None).await.0, 200);
}

/// The client's clock disagrees (it thinks the token is fresh): the API rejects the expired
/// token with 401 invalid_token, and the client refreshes once and retries, transparently.
#[tokio::test]
async fn token_rejected_as_expired_is_refreshed_and_retried() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    v.connect(&st, &ALL).await;
    st.advance_server_clock(700);
    let html = v.page("/").await.1;
    assert_eq!(note_titles(&html), ["Groceries", "Ideas"]);
    assert_eq!(st.guard.stats().expired, 1, "the API rejected the expired token");
    let stats = st.client.stats();
    assert_eq!((stats.proactive_refreshes, stats.reactive_refreshes), (0, 1));
    // Later calls use the new token: no further rejection.
    v.page("/").await;
    assert_eq!(st.guard.stats().expired, 1);
}

/// When the refresh token is no longer accepted, the app says the connection ended and offers
/// to connect again.
#[tokio::test]
async fn refused_refresh_asks_to_connect_again() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    v.connect(&st, &ALL).await;
    let days = 400 * 24 * 3600;
    st.advance_server_clock(days);
    st.client_clock.advance(days);
    let html = v.page("/").await.1;
    assert!(flash(&html).unwrap().starts_with("Your Notes connection has ended"), "{html}");
    assert!(html.contains("Connect your Notes account"));
    assert!(st.client_access_tokens().is_empty());
}

/// The session id changes when the session gains tokens: an id known before connecting (e.g.
/// planted in the browser) does not see the notes.
#[tokio::test]
async fn session_id_is_replaced_on_connect() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    let planted = v.get("/").await.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    v.connect(&st, &ALL).await;
    let res = reqwest::Client::new().get(&st.client_url).header("cookie", &planted).send().await.unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("Connect your Notes account") && note_titles(&html).is_empty(), "the old id is worthless");
    assert_eq!(note_titles(&v.page("/").await.1), ["Groceries", "Ideas"], "the browser itself stays connected");
}

/// A key rotated at Tessera is picked up by the API without a restart: the first token signed
/// by the new key makes the guard refetch the JWKS once, and it is accepted.
#[tokio::test]
async fn keys_rotated_at_tessera_are_picked_up_without_restart() {
    let st = Stack::start().await;
    let v = Visitor::new(&st);
    v.connect(&st, &ALL).await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    let old_kid = kid(&st.client_access_tokens()[0]);
    let fetches = st.guard.stats().key_fetches;
    // A later key (its use_after strictly after the first key's) becomes the signer.
    st.advance_server_clock(5);
    let now = tessera_server::Clock::now(&*st.s.clock);
    tessera_server::keys::rotate(&*st.s.svc.store, st.s.svc.keys.kek(), tessera_jose::Alg::ES256, now, 0).await.unwrap();
    st.s.svc.keys.reload(&*st.s.svc.store).await.unwrap();
    // The client's token expires; its refresh brings a token signed by the new key.
    st.advance_server_clock(700);
    st.client_clock.advance(700);
    let html = v.page("/").await.1;
    assert_eq!(note_titles(&html), ["Groceries", "Ideas"], "{html}");
    let new_kid = kid(&st.client_access_tokens()[0]);
    assert_ne!(old_kid, new_kid, "the new token is signed by the rotated key");
    assert_eq!(st.guard.stats().key_fetches, fetches + 1, "one refetch, then cached");
    v.page("/").await;
    assert_eq!(st.guard.stats().key_fetches, fetches + 1);
}
