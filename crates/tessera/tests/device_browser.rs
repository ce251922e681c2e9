//! The device verification page (RFC 8628 §3.3) in a real browser: headless Chromium driven over
//! WebDriver (chromedriver, started by the test) against a real Tessera. The user opens the
//! verification URI (or the complete one, code prefilled), continues, signs in, sees the device
//! notice with the code on the consent page, and allows or denies; the device's poll then gets
//! tokens or access_denied. These tests need `chromium` and `chromedriver` on PATH and fail
//! (never skip) without. The browser helpers are those of `browser.rs`.
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


const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public device client; returns its id and a fresh device authorization (RFC 8628 §3.2).
async fn device_request(s: &TestServer) -> (String, serde_json::Value) {
    let c = s
        .client(tessera_server::service::admin::NewClient {
            name: "Notes CLI".into(),
            scope: "notes.read notes.write".into(),
            grant_types: vec![DEVICE_GRANT.into(), "refresh_token".into()],
            public: true,
            ..Default::default()
        })
        .await;
    let id = c.client.client_id;
    let res = reqwest::Client::new().post(format!("{}/device_authorization", s.url)).form(&[("client_id", id.as_str()), ("scope", "notes.read notes.write")]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    (id, res.json().await.unwrap())
}

/// The device's poll (RFC 8628 §3.4).
async fn poll(s: &TestServer, client_id: &str, device_code: &str) -> (u16, serde_json::Value) {
    let (status, body, _) = token_form(&s.url, &[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", client_id)]).await;
    (status, body)
}

/// Wait for the verification page's code field.
async fn code_field(driver: &WebDriver) -> WebElement {
    wait_for(driver, By::Id("user_code")).await
}

/// After the code: the sign-in page (the client's name shown), then sign in.
async fn sign_in_for_device(driver: &WebDriver, s: &TestServer) {
    wait_for_url(driver, "the sign-in page", |u| u.as_str().starts_with(&format!("{}/login", s.url))).await;
    assert_eq!(wait_for(driver, By::Id("client-name")).await.text().await.unwrap(), "Notes CLI");
    sign_in(driver, USER, PASSWORD).await;
}

/// The consent page of a device request: returns the code in the device notice.
async fn device_consent(driver: &WebDriver, s: &TestServer) -> String {
    wait_for_url(driver, "the consent page", |u| u.as_str().starts_with(&format!("{}/consent", s.url))).await;
    let notice = wait_for(driver, By::Id("device-notice")).await;
    assert!(notice.is_displayed().await.unwrap(), "the device notice is visible");
    let mut scopes = Vec::new();
    for li in driver.find_all(By::Css("ul#scopes li[data-scope]")).await.unwrap() {
        scopes.push(li.attr("data-scope").await.unwrap().unwrap());
    }
    assert_eq!(scopes, ["notes.read", "notes.write"]);
    driver.find(By::Id("device-code")).await.unwrap().text().await.unwrap()
}

/// The final page's `h1#title`.
async fn final_title(driver: &WebDriver) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(h1) = driver.find(By::Id("title")).await {
            return h1.text().await.unwrap();
        }
        if Instant::now() > deadline {
            panic!("no h1#title at {}; page:\n{}", driver.current_url().await.unwrap(), driver.source().await.unwrap_or_default());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// RFC 8628 §3.3.1 `verification_uri_complete`: the page opens with the code prefilled (the user
/// still confirms), Continue, sign in, the consent page shows the device notice with the same
/// code, Allow, "Device connected"; the device's next poll gets tokens for the Notes API.
#[tokio::test(flavor = "multi_thread")]
async fn browser_device_verification_uri_complete_and_allow() {
    let s = TestServer::start().await;
    let (id, d) = device_request(&s).await;
    let user_code = d["user_code"].as_str().unwrap().to_string();
    let complete = d["verification_uri_complete"].as_str().unwrap().to_string();
    let (status, body) = poll(&s, &id, d["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));
    let s = &s;
    let code = user_code.clone();
    with_browser(|driver| async move {
        driver.goto(&complete).await?;
        let field = code_field(&driver).await;
        assert_eq!(field.value().await?.as_deref(), Some(code.as_str()), "prefilled from verification_uri_complete");
        driver.find(By::Id("continue")).await?.click().await?;
        sign_in_for_device(&driver, s).await;
        assert_eq!(device_consent(&driver, s).await, code, "the consent page shows the device's code");
        driver.screenshot(Path::new("/tmp/tessera-device-consent.png")).await?;
        driver.find(By::Id("allow")).await?.click().await?;
        assert_eq!(final_title(&driver).await, "Device connected");
        Ok(())
    })
    .await;
    s.clock.advance(5);
    let (status, t) = poll(s, &id, d["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["scope"], "notes.read notes.write");
    let claims = verify_access_token(&s.url, t["access_token"].as_str().unwrap(), API).await;
    assert_eq!(claims["client_id"], id);
}

/// RFC 8628 §6.1 by hand: a wrong code shows an error on the page; the right code typed in lower
/// case without the dash works (case-insensitive, punctuation ignored).
#[tokio::test(flavor = "multi_thread")]
async fn browser_device_code_typed_by_hand_lowercase_without_dash() {
    let s = TestServer::start().await;
    let (id, d) = device_request(&s).await;
    let user_code = d["user_code"].as_str().unwrap().to_string();
    let verification_uri = d["verification_uri"].as_str().unwrap().to_string();
    let s = &s;
    let code = user_code.clone();
    with_browser(|driver| async move {
        driver.goto(&verification_uri).await?;
        let field = code_field(&driver).await;
        assert_eq!(field.value().await?.as_deref(), Some(""), "empty without ?user_code");
        field.send_keys("bcdf-ghjk").await?;
        driver.find(By::Id("continue")).await?.click().await?;
        let error = wait_for(&driver, By::Id("error")).await;
        assert_eq!(error.text().await?, "That code is not valid or has expired. Check the code on your device.");
        let field = code_field(&driver).await;
        field.clear().await?;
        let typed = code.replace('-', "").to_lowercase();
        field.send_keys(&typed).await?;
        driver.find(By::Id("continue")).await?.click().await?;
        sign_in_for_device(&driver, s).await;
        assert_eq!(device_consent(&driver, s).await, code, "shown in its display form");
        driver.find(By::Id("allow")).await?.click().await?;
        assert_eq!(final_title(&driver).await, "Device connected");
        Ok(())
    })
    .await;
    let (status, t) = poll(s, &id, d["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{t}");
}

/// RFC 8628 §3.5 access_denied from the page: Deny shows "Request denied" and the device's poll
/// answers access_denied.
#[tokio::test(flavor = "multi_thread")]
async fn browser_device_deny() {
    let s = TestServer::start().await;
    let (id, d) = device_request(&s).await;
    let complete = d["verification_uri_complete"].as_str().unwrap().to_string();
    let s = &s;
    with_browser(|driver| async move {
        driver.goto(&complete).await?;
        code_field(&driver).await;
        driver.find(By::Id("continue")).await?.click().await?;
        sign_in_for_device(&driver, s).await;
        device_consent(&driver, s).await;
        driver.find(By::Id("deny")).await?.click().await?;
        assert_eq!(final_title(&driver).await, "Request denied");
        Ok(())
    })
    .await;
    let (status, body) = poll(s, &id, d["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")));
}
