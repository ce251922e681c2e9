//! `device-login` against an in-process Tessera (real HTTP, real SQLite, a manual clock): the
//! library's `run_with` with a scripted wait between polls, and (CI tier, feature `ci-tier`) the
//! real binary once for approval and once for denial. The user's side (verification page, sign-in, consent) is
//! scripted over HTTP with a cookie jar.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_server::service::admin::{self, NewClient, NewUser};
use tessera_server::{Clock, Config, ManualClock, Tessera};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const API: &str = "https://notes.example";

/// A Tessera on 127.0.0.1:0 with the Notes API, user alice and a public device client.
struct Server {
    url: String,
    clock: Arc<ManualClock>,
    client_id: String,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(tessera_storage_sqlite::SqliteStore::open(&format!("sqlite://{}/tessera.db", dir.path().display())).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let clock = Arc::new(ManualClock::new());
    let svc = Tessera::new(store, clock.clone(), Config::new(&url)).await.unwrap();
    let now = clock.now();
    let scopes = ["notes.read=Read your notes", "notes.write=Create and edit your notes"].iter().map(|s| admin::parse_api_scope(s).unwrap()).collect();
    admin::create_api(&*svc.store, API, "Notes", scopes, now).await.unwrap();
    admin::create_user(&*svc.store, NewUser { username: USER.into(), ..Default::default() }, PASSWORD, &svc.config.argon2, now).await.unwrap();
    let client = NewClient {
        name: "Notes CLI".into(),
        scope: "notes.read notes.write".into(),
        grant_types: vec![device_login::DEVICE_GRANT.into(), "refresh_token".into()],
        public: true,
        ..Default::default()
    };
    let client_id = admin::create_client(&*svc.store, client, now).await.unwrap().client.client_id;
    let app = tessera_http::router(svc).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { url, clock, client_id, _dir: dir }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

/// The user's side of RFC 8628 §3.3: type the code, sign in, consent (`allow` or `deny`).
async fn answer(base: &str, user_code: &str, decision: &str) {
    let b = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let html = b.get(format!("{base}/device")).send().await.unwrap().text().await.unwrap();
    let res = b.post(format!("{base}/device")).form(&[("csrf", hidden(&html, "csrf").as_str()), ("user_code", user_code)]).send().await.unwrap();
    assert_eq!(res.status(), 303, "the user code is accepted");
    let html = b.get(format!("{base}{}", location(&res))).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", hidden(&html, "csrf")), ("request", hidden(&html, "request")), ("username", USER.into()), ("password", PASSWORD.into())];
    let res = b.post(format!("{base}/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed in");
    let html = b.get(format!("{base}{}", location(&res))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(user_code), "the consent page shows the code");
    let form = [("csrf", hidden(&html, "csrf")), ("request", hidden(&html, "request")), ("decision", decision.into())];
    let res = b.post(format!("{base}/consent")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// What `run` printed, shared with the test while it runs.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
    /// The user code from "Open URL and enter CODE".
    fn user_code(&self) -> String {
        let text = self.text();
        let line = text.lines().next().expect("an instruction line");
        line.rsplit(' ').next().unwrap().to_string()
    }
}

/// The wait between polls, scripted: records each requested interval, moves the server's clock
/// by `advance(interval)` instead of sleeping, and before the poll numbered `answer_at` has the
/// user answer with `decision`.
#[derive(Clone)]
struct Script {
    base: String,
    clock: Arc<ManualClock>,
    out: Output,
    slept: Arc<Mutex<Vec<u64>>>,
    advance: fn(u64) -> i64,
    answer_at: usize,
    decision: &'static str,
}

impl Script {
    fn new(s: &Server, out: &Output, advance: fn(u64) -> i64, answer_at: usize, decision: &'static str) -> Self {
        Self { base: s.url.clone(), clock: s.clock.clone(), out: out.clone(), slept: Arc::default(), advance, answer_at, decision }
    }
    fn wait(&self, d: Duration) -> impl std::future::Future<Output = ()> + use<> {
        let me = self.clone();
        async move {
            let n = {
                let mut slept = me.slept.lock().unwrap();
                slept.push(d.as_secs());
                slept.len()
            };
            me.clock.advance((me.advance)(d.as_secs()));
            if n == me.answer_at {
                answer(&me.base, &me.out.user_code(), me.decision).await;
            }
        }
    }
    fn slept(&self) -> Vec<u64> {
        self.slept.lock().unwrap().clone()
    }
}

/// RFC 8628 §3.3–3.5: the instructions name the verification URI, the code and the complete URI;
/// the first poll is pending, the user approves, the next poll returns the token response.
#[tokio::test]
async fn rfc8628_3_3_device_login_prints_instructions_and_returns_tokens() {
    let s = server().await;
    let out = Output::default();
    let script = Script::new(&s, &out, |d| d as i64, 2, "allow");
    let w = script.clone();
    let tokens = device_login::run_with(&s.url, &s.client_id, Some("notes.read"), out.clone(), move |d| w.wait(d)).await.expect("tokens");
    let text = out.text();
    let code = out.user_code();
    assert!(text.starts_with(&format!("Open {}/device and enter {code}\n", s.url)), "{text}");
    assert!(text.contains(&format!("or open {}/device?user_code={code}\n", s.url)), "{text}");
    assert!(text.contains("expires in 10 minutes"), "{text}");
    assert_eq!(script.slept(), [5, 5], "waits the interval before each poll: pending, then tokens");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "notes.read");
    assert!(tokens["access_token"].is_string() && tokens["refresh_token"].is_string(), "{tokens}");
}

/// RFC 8628 §3.5 slow_down: a poll the server sees as too early raises the interval by 5 s for
/// every later poll.
#[tokio::test]
async fn rfc8628_3_5_device_login_honours_slow_down() {
    let s = server().await;
    let out = Output::default();
    // The second wait moves the server's clock by 1 s only: that poll is too early.
    let script = Script::new(&s, &out, |d| if d == 5 { 1 } else { d as i64 }, 4, "allow");
    let w = script.clone();
    let tokens = device_login::run_with(&s.url, &s.client_id, Some("notes.read notes.write"), out.clone(), move |d| w.wait(d)).await.expect("tokens");
    // poll 1 pending; poll 2 (1 s later) slow_down → 10 s; poll 3 pending; poll 4 tokens.
    assert_eq!(script.slept(), [5, 5, 10, 10]);
    assert_eq!(tokens["scope"], "notes.read notes.write");
}

/// RFC 8628 §3.5 access_denied and expired_token end the flow with the RFC error.
#[tokio::test]
async fn rfc8628_3_5_device_login_denied_and_expired() {
    let s = server().await;
    let out = Output::default();
    let script = Script::new(&s, &out, |d| d as i64, 1, "deny");
    let w = script.clone();
    let err = device_login::run_with(&s.url, &s.client_id, Some("notes.read"), out.clone(), move |d| w.wait(d)).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("access_denied"), "{err}");

    let out = Output::default();
    let script = Script::new(&s, &out, |_| 600, 0, "allow");
    let w = script.clone();
    let err = device_login::run_with(&s.url, &s.client_id, Some("notes.read"), out.clone(), move |d| w.wait(d)).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("expired_token"), "{err}");
    assert!(err.to_string().starts_with("expired_token"), "{err}");
}

/// RFC 8414 §3.3 and RFC 6749 §5.2: a metadata document naming another issuer is refused; so is
/// plain http off loopback; the server's own errors (unknown client, bad scope) come back as such.
#[tokio::test]
async fn rfc8414_3_3_device_login_discovery_and_request_errors() {
    let s = server().await;
    let other_name = s.url.replace("127.0.0.1", "localhost");
    let err = device_login::run(&other_name, &s.client_id, Some("notes.read"), std::io::sink()).await.unwrap_err();
    assert!(matches!(err, device_login::Error::Discovery(_)), "{err}");
    let err = device_login::run("http://auth.example", &s.client_id, Some("notes.read"), std::io::sink()).await.unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");
    let err = device_login::run(&s.url, "no-such-client", Some("notes.read"), std::io::sink()).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("invalid_client"), "{err}");
    let err = device_login::run(&s.url, &s.client_id, Some("admin"), std::io::sink()).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("invalid_scope"), "{err}");
    let err = device_login::run(&s.url, &s.client_id, None, std::io::sink()).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("invalid_scope"), "Tessera requires a scope: {err}");
}

/// The real binary (real 5 s interval): instructions on stderr, the token response as JSON on
/// stdout and exit 0 after approval; exit 1 with `access_denied` after denial. The two runs wait
/// out their intervals side by side. CI tier: spawns the binary.
#[cfg(feature = "ci-tier")]
#[tokio::test(flavor = "multi_thread")]
async fn rfc8628_3_4_device_login_binary_approve_and_deny() {
    let s = server().await;
    tokio::join!(binary_run(&s, "allow"), binary_run(&s, "deny"));
}

/// One run of the binary, answered with `decision`.
#[cfg(feature = "ci-tier")]
async fn binary_run(s: &Server, decision: &str) {
    use serde_json::Value;
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_device-login"))
        .args(["--issuer", &s.url, "--client-id", &s.client_id, "--scope", "notes.read"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let (first, rx) = tokio::task::spawn_blocking(move || (rx.recv_timeout(Duration::from_secs(30)).expect("the instructions"), rx)).await.unwrap();
    let code = first.strip_prefix(&format!("Open {}/device and enter ", s.url)).unwrap_or_else(|| panic!("{first}")).to_string();
    answer(&s.url, &code, decision).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    match decision {
        "allow" => {
            assert!(out.status.success(), "{rest:?}");
            let tokens: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
            assert_eq!(tokens["token_type"], "Bearer");
            assert!(tokens["access_token"].is_string());
        }
        _ => {
            assert_eq!(out.status.code(), Some(1));
            assert!(out.stdout.is_empty());
            assert!(rest.iter().any(|l| l.starts_with("device-login: access_denied")), "{rest:?}");
        }
    }
}
