//! Headless Chromium over WebDriver for every browser test (`browser`, `device_browser`,
//! `oidc_browser`, `demo_browser`): one chromedriver shared by the tests running at once (its
//! own process group, killed when the last lets it go), a fresh profile per session, bounded
//! waits, and the steps those tests share (the sign-in page, the consent page's scopes, the
//! client's callback). CI tier: tests fail (never skip) without `chromium` and `chromedriver` on
//! PATH.
#![allow(dead_code)]

use super::TestServer;
use std::future::Future;
use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;

/// Upper bound for one whole test body (browser start excluded).
pub const TEST_LIMIT: Duration = Duration::from_secs(120);
/// Upper bound for one wait (a page to load, an element to appear, a URL to change).
pub const WAIT: Duration = Duration::from_secs(20);
pub const POLL: Duration = Duration::from_millis(100);

pub const CHROME_ARGS: &[&str] = &[
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
pub fn require_on_path(name: &str) -> PathBuf {
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
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A chromedriver child process, killed (with anything it left behind) when dropped.
pub struct Chromedriver {
    child: Child,
    url: String,
    log: PathBuf,
    /// Holds the chromedriver log and Chromium's profile directory.
    dir: tempfile::TempDir,
}

impl Chromedriver {
    pub async fn start() -> Self {
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A new headless Chromium session with a fresh profile.
    pub async fn session(&self) -> WebDriver {
        self.session_with(false).await
    }

    /// [`Chromedriver::session`], recording the network when `network_log` (DevTools events in
    /// the `performance` log).
    pub async fn session_with(&self, network_log: bool) -> WebDriver {
        let chromium = require_on_path("chromium");
        let mut caps = DesiredCapabilities::chrome();
        if network_log {
            caps.set_logging_prefs("performance", thirtyfour::LoggingPrefsLogLevel::All).unwrap();
        }
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

/// The chromedriver the browser tests running at the same time share (one WebDriver session,
/// one Chromium with a fresh profile, each): started by the first of them, killed when the last
/// one lets it go (a static would never be dropped, and would leave the process running).
static SHARED: tokio::sync::Mutex<Weak<Chromedriver>> = tokio::sync::Mutex::const_new(Weak::new());

/// The running shared chromedriver, or a new one.
pub async fn chromedriver() -> Arc<Chromedriver> {
    let mut shared = SHARED.lock().await;
    if let Some(running) = shared.upgrade() {
        return running;
    }
    let started = Arc::new(Chromedriver::start().await);
    *shared = Arc::downgrade(&started);
    started
}

/// Run `body` against a fresh browser, bounded by TEST_LIMIT; the browser session is always
/// closed, and chromedriver killed once no test uses it, also when `body` panics.
pub async fn with_browser<F, Fut>(body: F)
where
    F: FnOnce(WebDriver) -> Fut,
    Fut: Future<Output = WebDriverResult<()>>,
{
    with_browser_logging(false, body).await
}

/// [`with_browser`], the session recording the network when `network_log`
/// ([`Chromedriver::session_with`]).
pub async fn with_browser_logging<F, Fut>(network_log: bool, body: F)
where
    F: FnOnce(WebDriver) -> Fut,
    Fut: Future<Output = WebDriverResult<()>>,
{
    let chromedriver = chromedriver().await;
    let driver = chromedriver.session_with(network_log).await;
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
pub async fn wait_for_url(driver: &WebDriver, what: &str, pred: impl Fn(&url::Url) -> bool) -> url::Url {
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
pub async fn wait_for(driver: &WebDriver, by: By) -> WebElement {
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

/// Fill in and submit the sign-in form.
pub async fn sign_in(driver: &WebDriver, username: &str, password: &str) {
    let user = wait_for(driver, By::Id("username")).await;
    user.clear().await.unwrap();
    user.send_keys(username).await.unwrap();
    let pass = driver.find(By::Id("password")).await.unwrap();
    pass.clear().await.unwrap();
    pass.send_keys(password).await.unwrap();
    driver.find(By::Id("sign-in")).await.unwrap().click().await.unwrap();
}

/// A stand-in for the client application: 200 "callback received" at /callback.
pub async fn callback_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/callback", axum::routing::get(|| async { "callback received" }));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    url
}

/// Open `authorize_url` and expect the sign-in page.
pub async fn open_login(driver: &WebDriver, s: &TestServer, authorize_url: &str) {
    driver.goto(authorize_url).await.unwrap();
    wait_for_url(driver, "the sign-in page", |u| u.as_str().starts_with(&format!("{}/login", s.url))).await;
    assert_eq!(wait_for(driver, By::Id("client-name")).await.text().await.unwrap(), "Notes Client");
}

/// Expect the consent page; returns the requested scopes as (data-scope, text).
pub async fn consent_scopes(driver: &WebDriver, s: &TestServer) -> Vec<(String, String)> {
    wait_for_url(driver, "the consent page", |u| u.as_str().starts_with(&format!("{}/consent", s.url))).await;
    wait_for(driver, By::Id("allow")).await;
    let mut scopes = Vec::new();
    for li in driver.find_all(By::Css("ul#scopes li[data-scope]")).await.unwrap() {
        scopes.push((li.attr("data-scope").await.unwrap().unwrap(), li.text().await.unwrap()));
    }
    scopes
}

/// Wait for the browser to land on the client's callback page; returns its query.
pub async fn callback_query(driver: &WebDriver, cb: &str) -> std::collections::HashMap<String, String> {
    let url = wait_for_url(driver, "the client callback", |u| u.as_str().starts_with(cb)).await;
    let body = wait_for(driver, By::Tag("body")).await.text().await.unwrap();
    assert_eq!(body.trim(), "callback received", "the browser shows the client's page");
    url.query_pairs().into_owned().collect()
}
