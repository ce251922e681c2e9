//! The authorization code flow in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, started by the test), against a real Tessera and a real client callback
//! server. These tests need `chromium` and `chromedriver` on PATH and fail (never skip) without.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::future::Future;
use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;

/// Upper bound for one whole test body (browser start excluded).
const TEST_LIMIT: Duration = Duration::from_secs(90);
/// Upper bound for one wait (a page to load, an element to appear, a URL to change).
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
];

/// `command -v NAME`: the first executable NAME on PATH. Panics with a clear message if none.
fn require_on_path(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return candidate;
            }
        }
    }
    panic!(
        "browser tests need `{name}` on PATH, and it was not found (PATH={}). \
         On Debian: apt-get install chromium chromium-driver",
        path.to_string_lossy()
    );
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A chromedriver child process, killed (with anything it left behind) when dropped.
struct Chromedriver {
    child: Child,
    url: String,
    log: PathBuf,
    /// Holds the chromedriver log and Chromium's profile directory.
    dir: tempfile::TempDir,
}

impl Chromedriver {
    async fn start() -> Self {
        // Fail early and clearly if either is missing.
        require_on_path("chromium");
        let chromedriver = require_on_path("chromedriver");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("chromedriver.log");
        let port = free_port();
        let mut cmd = Command::new(&chromedriver);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(std::fs::File::options().append(true).open(&log).unwrap()));
        // Its own process group, so Drop can also end any Chromium it started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("could not start {}: {e}", chromedriver.display()));
        let mut me = Self { child, url: format!("http://127.0.0.1:{port}"), log, dir };
        me.wait_ready().await;
        me
    }

    /// Poll GET /status until chromedriver says it is ready (bounded).
    async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited early ({status}); log:\n{}", self.log_text());
            }
            if let Ok(res) = http.get(format!("{}/status", self.url)).send().await {
                if res.json::<serde_json::Value>().await.is_ok_and(|body| body["value"]["ready"] == true) {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("chromedriver did not answer on {} within {WAIT:?}; log:\n{}", self.url, self.log_text());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A new headless Chromium session with a fresh profile.
    async fn session(&self) -> WebDriver {
        let chromium = require_on_path("chromium");
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(chromium.to_str().unwrap()).unwrap();
        for arg in CHROME_ARGS {
            caps.add_arg(arg).unwrap();
        }
        let profile = tempfile::tempdir_in(self.dir.path()).unwrap().keep();
        caps.add_arg(&format!("--user-data-dir={}", profile.display())).unwrap();
        let driver = WebDriver::builder(&self.url, caps)
            .request_timeout(Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("could not start a Chromium session: {e}; chromedriver log:\n{}", self.log_text()));
        driver.set_page_load_timeout(WAIT).await.unwrap();
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Best effort: anything still in chromedriver's process group (a Chromium whose session
        // was not closed because the test panicked before quitting).
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
    }
}

/// A stand-in for the client application: 200 "callback received" at /callback.
async fn callback_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/callback", axum::routing::get(|| async { "callback received" }));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    url
}

/// Run `body` against a fresh browser, bounded by TEST_LIMIT; the browser session is always
/// closed and chromedriver always killed, also when `body` panics.
async fn with_browser<F, Fut>(body: F)
where
    F: FnOnce(WebDriver) -> Fut,
    Fut: Future<Output = WebDriverResult<()>>,
{
    let chromedriver = Chromedriver::start().await;
    let driver = chromedriver.session().await;
    let result = driver
        .run_and_quit(|d| async move {
            match tokio::time::timeout(TEST_LIMIT, body(d)).await {
                Ok(r) => r,
                Err(_) => panic!("browser test did not finish within {TEST_LIMIT:?}"),
            }
        })
        .await;
    if let Err(e) = result {
        panic!("browser test failed: {e:?}");
    }
    drop(chromedriver);
}

/// Wait (bounded) until the browser's URL satisfies `pred`; returns it.
async fn wait_for_url(driver: &WebDriver, what: &str, pred: impl Fn(&url::Url) -> bool) -> url::Url {
    let deadline = Instant::now() + WAIT;
    loop {
        let current = driver.current_url().await.unwrap();
        if pred(&current) {
            return current;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; still at {current}; page:\n{}", driver.source().await.unwrap_or_default());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Wait (bounded) for an element to be present.
async fn wait_for(driver: &WebDriver, by: By) -> WebElement {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(el) = driver.find(by.clone()).await {
            return el;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {by:?} at {}; page:\n{}", driver.current_url().await.unwrap(), driver.source().await.unwrap_or_default());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Open `authorize_url` and expect the sign-in page.
async fn open_login(driver: &WebDriver, s: &TestServer, authorize_url: &str) {
    driver.goto(authorize_url).await.unwrap();
    wait_for_url(driver, "the sign-in page", |u| u.as_str().starts_with(&format!("{}/login", s.url))).await;
    assert_eq!(wait_for(driver, By::Id("client-name")).await.text().await.unwrap(), "Notes Client");
}

/// Fill in and submit the sign-in form.
async fn sign_in(driver: &WebDriver, username: &str, password: &str) {
    let user = wait_for(driver, By::Id("username")).await;
    user.clear().await.unwrap();
    user.send_keys(username).await.unwrap();
    let pass = driver.find(By::Id("password")).await.unwrap();
    pass.clear().await.unwrap();
    pass.send_keys(password).await.unwrap();
    driver.find(By::Id("sign-in")).await.unwrap().click().await.unwrap();
}

/// Expect the consent page; returns the requested scopes as (data-scope, text).
async fn consent_scopes(driver: &WebDriver, s: &TestServer) -> Vec<(String, String)> {
    wait_for_url(driver, "the consent page", |u| u.as_str().starts_with(&format!("{}/consent", s.url))).await;
    wait_for(driver, By::Id("allow")).await;
    let mut scopes = Vec::new();
    for li in driver.find_all(By::Css("ul#scopes li[data-scope]")).await.unwrap() {
        scopes.push((li.attr("data-scope").await.unwrap().unwrap(), li.text().await.unwrap()));
    }
    scopes
}

/// Wait for the browser to land on the client's callback page; returns its query.
async fn callback_query(driver: &WebDriver, cb: &str) -> std::collections::HashMap<String, String> {
    let url = wait_for_url(driver, "the client callback", |u| u.as_str().starts_with(cb)).await;
    let body = wait_for(driver, By::Tag("body")).await.text().await.unwrap();
    assert_eq!(body.trim(), "callback received", "the browser shows the client's page");
    url.query_pairs().into_owned().collect()
}

/// RFC 6749 §4.1 in a browser: sign in, see the consent page (client name and the requested
/// scope descriptions), Allow, land on the client with code, state and iss (RFC 9207); the code
/// (with PKCE) buys an access token that verifies against the JWKS.
#[tokio::test(flavor = "multi_thread")]
async fn browser_sign_in_and_allow() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, secret) = s.confidential_client(&cb).await;
    let (verifier, challenge) = pkce_pair();
    let state = "browser-st-1";
    let authorize = s.authorize_url(&id, &cb, "notes.read notes.write", state, Some(&challenge));
    let (s, cb2) = (&s, cb.clone());
    with_browser(|driver| async move {
        open_login(&driver, s, &authorize).await;
        sign_in(&driver, USER, PASSWORD).await;
        let scopes = consent_scopes(&driver, s).await;
        assert_eq!(
            scopes,
            vec![("notes.read".to_string(), "Read your notes".to_string()), ("notes.write".to_string(), "Create and edit your notes".to_string())]
        );
        assert_eq!(driver.find(By::Id("client-name")).await?.text().await?, "Notes Client");
        let page = driver.find(By::Tag("body")).await?.text().await?;
        assert!(!page.contains("Delete your notes"), "unrequested scopes are not shown: {page}");
        driver.screenshot(Path::new("/tmp/tessera-consent.png")).await?;
        driver.find(By::Id("allow")).await?.click().await?;
        let q = callback_query(&driver, &cb2).await;
        assert_eq!(q["state"], state);
        assert_eq!(q["iss"], s.url, "RFC 9207 iss");
        let code = q.get("code").expect("a code on the callback");
        let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &cb2), ("code_verifier", &verifier)]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["scope"], "notes.read notes.write");
        let claims = verify_access_token(&s.url, body["access_token"].as_str().unwrap(), API).await;
        assert_eq!(claims["scope"], "notes.read notes.write");
        assert_eq!(claims["client_id"], id);
        Ok(())
    })
    .await;
}

/// RFC 6749 §4.1.2.1 in a browser: Deny sends the user back with access_denied and the state,
/// and no code.
#[tokio::test(flavor = "multi_thread")]
async fn browser_deny() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, _) = s.confidential_client(&cb).await;
    let (_, challenge) = pkce_pair();
    let authorize = s.authorize_url(&id, &cb, "notes.read", "browser-st-2", Some(&challenge));
    let (s, cb2) = (&s, cb.clone());
    with_browser(|driver| async move {
        open_login(&driver, s, &authorize).await;
        sign_in(&driver, USER, PASSWORD).await;
        let scopes = consent_scopes(&driver, s).await;
        assert_eq!(scopes, vec![("notes.read".to_string(), "Read your notes".to_string())]);
        driver.find(By::Id("deny")).await?.click().await?;
        let q = callback_query(&driver, &cb2).await;
        assert_eq!(q["error"], "access_denied");
        assert_eq!(q["state"], "browser-st-2");
        assert_eq!(q["iss"], s.url);
        assert!(!q.contains_key("code"), "no code after a denial: {q:?}");
        Ok(())
    })
    .await;
}

/// A wrong password shows the sign-in page again with an error; the right one then proceeds to
/// the consent page.
#[tokio::test(flavor = "multi_thread")]
async fn browser_wrong_password_then_right() {
    let s = TestServer::start().await;
    let cb = callback_server().await;
    let (id, _) = s.confidential_client(&cb).await;
    let (_, challenge) = pkce_pair();
    let authorize = s.authorize_url(&id, &cb, "notes.read", "browser-st-3", Some(&challenge));
    let s = &s;
    with_browser(|driver| async move {
        open_login(&driver, s, &authorize).await;
        sign_in(&driver, USER, "not the password").await;
        let error = wait_for(&driver, By::Id("error")).await;
        assert_eq!(error.text().await?, "Incorrect username or password.");
        let url = driver.current_url().await?;
        assert_eq!(url.path(), "/login", "still on the sign-in page: {url}");
        assert_eq!(driver.find(By::Id("username")).await?.value().await?.as_deref(), Some(USER), "the username is kept");
        sign_in(&driver, USER, PASSWORD).await;
        let scopes = consent_scopes(&driver, s).await;
        assert_eq!(scopes, vec![("notes.read".to_string(), "Read your notes".to_string())]);
        Ok(())
    })
    .await;
}
