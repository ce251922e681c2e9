//! The `tessera serve` binary's signals (issue 16): `/metrics` passes Debian's `promtool check
//! metrics`, `--metrics-listen` moves it to a listener of its own, and `--log-format json`
//! writes one JSON object per line whose request lines carry the `X-Request-Id` answered.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

struct Server {
    child: Child,
    url: String,
    metrics: Option<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .current_dir(dir)
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_ISSUER")
        .env_remove("TESSERA_LISTEN")
        .env("RUST_LOG", "info,tessera::access=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, stderr) = mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut metrics) = (None, None);
    let mut line = String::new();
    // The banner: the URL first; the metrics address (when asked for) after the hints.
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(u) = line.trim().strip_prefix("Tessera is listening on ") {
            url = Some(u.to_string());
            if !extra.contains(&"--metrics-listen") {
                break;
            }
        }
        if let Some(m) = line.trim().strip_prefix("metrics:  ") {
            metrics = Some(m.to_string());
            break;
        }
        line.clear();
    }
    std::thread::spawn(move || for _ in out.lines() {});
    Server { child, url: url.expect("the listening line"), metrics, stderr }
}

fn promtool(text: &str) -> (bool, String) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    use std::io::Write;
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn metrics_pass_promtool_and_move_to_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &[]);
    let http = reqwest::Client::new();
    // Some traffic of several kinds first.
    for path in ["/.well-known/openid-configuration", "/jwks.json", "/nowhere", "/health/ready"] {
        http.get(format!("{}{path}", s.url)).send().await.unwrap();
    }
    http.post(format!("{}/token", s.url)).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    let text = http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("tessera_http_request_duration_seconds_bucket{endpoint=\"jwks\""), "{text}");
    let (ok, report) = promtool(&text);
    assert!(ok, "promtool check metrics: {report}\n{text}");
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = s.metrics.clone().expect("the metrics address in the banner");
    assert_eq!(http.get(format!("{}/metrics", s.url)).send().await.unwrap().status(), 404, "not on the main listener");
    let res = http.get(&metrics).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(promtool(&res.text().await.unwrap()).0);
    assert_eq!(http.get(format!("{}/token", metrics.trim_end_matches("/metrics"))).send().await.unwrap().status(), 404, "nothing else there");
}

/// The next JSON line on stderr that `pick` accepts (within 10 s).
fn next_json(s: &Server, what: &str, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let l = s.stderr.recv_timeout(left).unwrap_or_else(|_| panic!("no {what} line; stderr: {seen:#?}"));
        let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        if pick(&v) {
            return v;
        }
        seen.push(l);
    }
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    use crate::common::{Browser, PASSWORD, USER, query};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = serve(d, &["--log-format", "json"]);
    let res = reqwest::Client::new().get(format!("{}/jwks.json?code=secret-code", s.url)).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-42");
    let line = next_json(&s, "access", |v| v["fields"]["message"] == "request");
    assert_eq!(line["fields"]["request_id"], "trace-42", "{line}");
    assert_eq!(line["fields"]["path"], "/jwks.json", "no query in the log: {line}");
    assert_eq!(line["fields"]["status"], 200);
    assert!(!line.to_string().contains("secret-code"));

    // A warning logged within a request (a replayed code) names that request's id.
    let (ok, _, err) = crate::common::run_tessera(Some(d), &["user", "create", "--username", USER, "--password-stdin"], Some(&format!("{PASSWORD}\n")));
    assert!(ok, "{err}");
    let (ok, _, err) =
        crate::common::run_tessera(Some(d), &["api", "create", "--identifier", "https://notes.example", "--name", "Notes", "--scope", "notes.read=Read"], None);
    assert!(ok, "{err}");
    let (ok, out, err) = crate::common::run_tessera(
        Some(d),
        &["client", "create", "--name", "App", "--redirect-uri", "https://app.example/cb", "--scope", "notes.read", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (c["client_id"].as_str().unwrap(), c["client_secret"].as_str().unwrap());
    let url = format!("{}/authorize?response_type=code&client_id={id}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=notes.read&state=s", s.url);
    let back = Browser::new(&s.url).journey_as(&url, USER).await;
    let code = query(&back).remove("code").unwrap();
    let http = reqwest::Client::new();
    let redeem = || {
        http.post(format!("{}/token", s.url))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example/cb")])
            .send()
    };
    assert_eq!(redeem().await.unwrap().status(), 200);
    let replay = redeem().await.unwrap();
    assert_eq!(replay.status(), 400);
    let rid = replay.headers()["x-request-id"].to_str().unwrap().to_string();
    let warned = next_json(&s, "replay warning", |v| v["fields"]["message"].as_str().is_some_and(|m| m.contains("replayed")));
    assert_eq!(warned["request_id"], rid.as_str(), "{warned}");
    assert_eq!(warned["level"], "WARN");

    let bad = Command::new(BIN).args(["serve", "--log-format", "xml"]).current_dir(d).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--log-format"), "{bad:?}");
}
