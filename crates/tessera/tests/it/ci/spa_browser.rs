//! The browser app of the story (issue 17) in headless Chromium: `examples/notes-spa`, a public
//! client that runs entirely in the page, against a real Tessera and the Notes API (CORS for the
//! app's origin, tessera-guard accepting DPoP). Sign in, consent, the notes appear, a note is
//! added; the network log shows DPoP proofs and no bearer token; a token taken from the network
//! log and replayed without the key is refused by the API; after a reload the app signs in again
//! without a password and gets new tokens; no token is ever in the page's storage.

use crate::common::chromium::*;
use crate::common::{API, PASSWORD, TestServer, USER};
use serde_json::Value;
use std::collections::HashSet;
use tessera_guard::{Guard, GuardConfig};
use tessera_server::service::admin::NewClient;
use thirtyfour::prelude::*;

struct SpaStack {
    s: TestServer,
    api_url: String,
    spa_url: String,
}

async fn start() -> SpaStack {
    start_asking("notes.read notes.write notes.delete").await
}

/// The stack with the app asking for `scope`.
async fn start_asking(scope: &str) -> SpaStack {
    let s = TestServer::start().await;
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spa_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", api_listener.local_addr().unwrap());
    let spa_url = format!("http://{}", spa_listener.local_addr().unwrap());
    // The proofs' iat comes from the browser's clock: the API reads the real one.
    let guard = Guard::new(GuardConfig::new(&s.url, API)).unwrap();
    let notes = notes_api::Db::open(&format!("sqlite://{}/notes.db", s.dir.path().display())).await.unwrap();
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap().id;
    notes.create(&alice, "Groceries", "eggs, flour, lemons", 1).await.unwrap();
    notes.create(&alice, "Ideas", "a notes app that never sees passwords", 2).await.unwrap();
    let origins = vec![spa_url.clone()];
    tokio::spawn(async move { notes_api::serve_for_browsers(api_listener, guard, notes, origins, std::future::pending()).await.unwrap() });
    let redirect_uri = format!("{spa_url}/callback");
    let c = s
        .client(NewClient {
            name: "Notes SPA".into(),
            redirect_uris: vec![redirect_uri.clone()],
            scope: "notes.read notes.write notes.delete".into(),
            public: true,
            require_dpop: true,
            ..Default::default()
        })
        .await;
    let config = notes_spa::SpaConfig { issuer: s.url.clone(), client_id: c.client.client_id, api: api_url.clone(), redirect_uri, scope: scope.into() };
    tokio::spawn(async move { notes_spa::serve(spa_listener, config, std::future::pending()).await.unwrap() });
    SpaStack { s, api_url, spa_url }
}

/// The note titles the app shows (read in one script: the list is re-rendered as a whole).
async fn titles(driver: &WebDriver) -> Vec<String> {
    let r = driver.execute("return [...document.querySelectorAll('#list li strong')].map((e) => e.textContent)", vec![]).await.unwrap();
    serde_json::from_value(r.json().clone()).unwrap_or_default()
}

/// Wait until the app shows `n` notes.
async fn wait_for_notes(driver: &WebDriver, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let t = titles(driver).await;
        if t.len() == n {
            return t;
        }
        if std::time::Instant::now() > deadline {
            let err = driver.find(By::Id("error")).await.unwrap().text().await.unwrap_or_default();
            panic!("expected {n} notes, have {t:?}; error shown: {err:?}; page:\n{}", driver.source().await.unwrap_or_default());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Press the app's sign-in button and Allow on Tessera's consent page (signing in first when
/// `password` says so).
async fn sign_in_through_the_app(driver: &WebDriver, st: &SpaStack, password: bool) {
    wait_for(driver, By::Css("#sign-in:not([hidden])")).await.click().await.unwrap();
    if password {
        wait_for_url(driver, "Tessera's sign-in page", |u| u.as_str().starts_with(&format!("{}/login", st.s.url))).await;
        wait_for(driver, By::Id("username")).await.send_keys(USER).await.unwrap();
        driver.find(By::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
        driver.find(By::Id("sign-in")).await.unwrap().click().await.unwrap();
    }
    let at = wait_for_url(driver, "Tessera's consent page", |u| u.as_str().starts_with(&format!("{}/consent", st.s.url)) || u.path() == "/login").await;
    assert!(at.path() != "/login", "a session at Tessera answers without a password: {at}");
    wait_for(driver, By::Id("allow")).await.click().await.unwrap();
    wait_for_url(driver, "the app", |u| u.as_str().starts_with(&st.spa_url)).await;
}

/// The requests the page sent (preflights aside): (url, headers), from DevTools'
/// Network.requestWillBeSent events.
async fn requests(driver: &WebDriver) -> Vec<(String, serde_json::Map<String, Value>)> {
    let mut out = Vec::new();
    let mut entries = driver.handle().get_log("performance").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    entries.extend(driver.handle().get_log("performance").await.unwrap());
    for entry in entries {
        let Ok(v) = serde_json::from_str::<Value>(&entry.message) else { continue };
        let m = &v["message"];
        // CORS preflights (OPTIONS) carry no credentials by design: the requests themselves.
        if m["method"] == "Network.requestWillBeSent" && m["params"]["request"]["method"] != "OPTIONS" {
            let r = &m["params"]["request"];
            let headers = r["headers"].as_object().cloned().unwrap_or_default();
            out.push((r["url"].as_str().unwrap_or_default().to_string(), headers));
        }
    }
    out
}

fn header<'a>(h: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn notes_spa_signs_in_with_pkce_and_dpop_and_calls_the_api_from_the_page() {
    let st = start().await;
    let st = &st;
    with_browser_logging(true, |driver| async move {
        driver.goto(&st.spa_url).await.unwrap();
        sign_in_through_the_app(&driver, st, true).await;
        let mut seen = wait_for_notes(&driver, 2).await;
        seen.sort();
        assert_eq!(seen, ["Groceries", "Ideas"]);
        driver.find(By::Id("title")).await.unwrap().send_keys("Written in the browser").await.unwrap();
        driver.find(By::Css("#new-note button[type=submit]")).await.unwrap().click().await.unwrap();
        assert!(wait_for_notes(&driver, 3).await.contains(&"Written in the browser".to_string()));
        let storage = driver.execute("return JSON.stringify([localStorage.length, sessionStorage.length, document.cookie])", vec![]).await.unwrap();
        assert_eq!(storage.json().as_str(), Some("[0,0,\"\"]"), "tokens in memory only");

        // The network: DPoP proofs on token and API requests, never a bearer token.
        let sent = requests(&driver).await;
        let token_requests: Vec<_> = sent.iter().filter(|(u, _)| u.starts_with(&format!("{}/token", st.s.url))).collect();
        let api_requests: Vec<_> = sent.iter().filter(|(u, h)| u.starts_with(&st.api_url) && header(h, "Authorization").is_some()).collect();
        assert!(!token_requests.is_empty() && !api_requests.is_empty(), "{sent:?}");
        assert!(token_requests.iter().all(|(_, h)| header(h, "DPoP").is_some()), "{token_requests:?}");
        for (url, h) in &api_requests {
            let auth = header(h, "Authorization").unwrap();
            assert!(auth.starts_with("DPoP ") && header(h, "DPoP").is_some(), "{url}: {h:?}");
        }
        assert!(
            !sent.iter().any(|(_, h)| header(h, "Authorization").is_some_and(|a| a.to_ascii_lowercase().starts_with("bearer"))),
            "no bearer token on the wire"
        );

        // A token taken from the network, replayed without the key: refused.
        let stolen = header(&api_requests[0].1, "Authorization").unwrap().trim_start_matches("DPoP ").to_string();
        let http = reqwest::Client::new();
        for auth in [format!("Bearer {stolen}"), format!("DPoP {stolen}")] {
            let res = http.get(format!("{}/notes", st.api_url)).header("Authorization", &auth).send().await.unwrap();
            assert_eq!(res.status(), 401, "{auth:.12}");
        }
        let replayed = http
            .get(format!("{}/notes", st.api_url))
            .header("Authorization", format!("DPoP {stolen}"))
            .header("DPoP", header(&api_requests[0].1, "DPoP").unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(replayed.status(), 401, "the page's own proof, replayed");

        // A reload forgets the tokens; signing in again needs no password, and gets new ones.
        driver.refresh().await.unwrap();
        sign_in_through_the_app(&driver, st, false).await;
        wait_for_notes(&driver, 3).await;
        let again = requests(&driver).await;
        let new_tokens: HashSet<String> = again
            .iter()
            .filter(|(u, _)| u.starts_with(&st.api_url))
            .filter_map(|(_, h)| header(h, "Authorization").map(|a| a.trim_start_matches("DPoP ").to_string()))
            .collect();
        assert!(!new_tokens.is_empty() && !new_tokens.contains(&stolen), "new tokens after the reload");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn notes_spa_answers_with_a_strict_policy_and_its_configuration() {
    let st = start().await;
    for path in ["/", "/callback?code=x", "/app.js", "/app.css", "/config.json"] {
        let res = reqwest::get(format!("{}{path}", st.spa_url)).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let csp = res.headers().get("content-security-policy").unwrap().to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"), "{path}: {csp}");
        assert!(csp.contains(&st.s.url) && csp.contains(&st.api_url), "connect-src names the server and the API: {csp}");
        assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
    }
    let config: Value = reqwest::get(format!("{}/config.json", st.spa_url)).await.unwrap().json().await.unwrap();
    assert_eq!((config["issuer"].as_str(), config["api"].as_str()), (Some(st.s.url.as_str()), Some(st.api_url.as_str())));
    let html = reqwest::get(&st.spa_url).await.unwrap().text().await.unwrap();
    assert!(!html.contains("<script>") && html.contains("src=\"/app.js\""), "no inline script");
}

/// A permission the user did not grant: the API's 403 `insufficient_scope` becomes a sentence.
#[tokio::test(flavor = "multi_thread")]
async fn notes_spa_says_which_permission_was_not_granted() {
    let st = start_asking("notes.read notes.write").await;
    let st = &st;
    with_browser(|driver| async move {
        driver.goto(&st.spa_url).await.unwrap();
        sign_in_through_the_app(&driver, st, true).await;
        wait_for_notes(&driver, 2).await;
        driver.find(By::Css("#list li button.delete")).await.unwrap().click().await.unwrap();
        let shown = wait_for(&driver, By::Css("#error:not([hidden])")).await.text().await.unwrap();
        assert_eq!(shown, "You did not allow Notes to delete notes.");
        assert_eq!(wait_for_notes(&driver, 2).await.len(), 2, "nothing was deleted");
        Ok(())
    })
    .await;
}
