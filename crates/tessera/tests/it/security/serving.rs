//! Findings 5, 17 (headers) and 18 (HSTS): what the serving layer bounds and what every response
//! carries. Slowloris (RFC 9112 §9.5: a server closes connections that stay inactive) is
//! tried with raw sockets against a server with shortened limits, and against the real
//! `tessera serve` binary; anti-framing headers (RFC 7034 §2, CSP `frame-ancestors`) and HSTS
//! (RFC 6797 §7.1, §7.2) on every response, error responses included.

use crate::common::*;
use std::time::{Duration, Instant};
use tessera_http::ServeLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEAD: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(2);

fn limits(max_connections: usize) -> ServeLimits {
    ServeLimits { header_read_timeout: HEAD, idle_timeout: IDLE, max_connections, ..ServeLimits::default() }
}

async fn server(max_connections: usize) -> TestServer {
    TestServer::start_serving(ServeOptions { limits: limits(max_connections), ..ServeOptions::default() }, |_| {}).await
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (end of stream or reset), discarding data;
/// the time it took, or `None` if the connection is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + within).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one response head (and a body of `Content-Length`): status and lower-cased headers.
async fn read_response(stream: &mut TcpStream, within: Duration) -> Option<(u16, Vec<(String, String)>)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => data.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while data.len() < head_end + 4 + len {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => data.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    Some((status, headers))
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

/// A fresh connection answers a plain request: the server is (still) serving.
async fn serves(url: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr(url)).await else { return false };
    s.write_all(&get("/healthz")).await.is_ok() && matches!(read_response(&mut s, Duration::from_secs(5)).await, Some((200, _)))
}

#[tokio::test]
async fn regression_slowloris_trickled_head_is_cut_rfc9112_9_5() {
    let srv = server(64).await;
    let stream = TcpStream::connect(addr(&srv.url)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // A head that never ends: one header byte every 100 ms, as Slowloris sends it.
    let trickle = tokio::spawn(async move {
        let _ = write.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(b"X").await.is_err() {
                return;
            }
        }
    });
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(4), read.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    };
    trickle.abort();
    let closed = closed.expect("a connection trickling its request head was still open after 4 s (header read timeout 1 s)");
    assert!(closed < Duration::from_millis(2500), "closed after {closed:?}, header read timeout 1 s");
    assert!(serves(&srv.url).await, "a normal request after the attack");
}

#[tokio::test]
async fn regression_slowloris_silent_connection_is_cut_rfc9112_9_5() {
    let srv = server(64).await;
    let mut s = TcpStream::connect(addr(&srv.url)).await.unwrap();
    let closed =
        closed_within(&mut s, Duration::from_secs(4)).await.expect("a connection that sends nothing was still open after 4 s (header read timeout 1 s)");
    assert!(closed < Duration::from_millis(2500), "closed after {closed:?}");
    assert!(serves(&srv.url).await);
}

#[tokio::test]
async fn regression_slowloris_idle_keep_alive_is_cut_rfc9112_9_5() {
    let srv = server(64).await;
    let mut s = TcpStream::connect(addr(&srv.url)).await.unwrap();
    s.write_all(&get("/healthz")).await.unwrap();
    let (status, headers) = read_response(&mut s, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 200);
    assert!(!headers.iter().any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close")), "keep-alive: {headers:?}");
    // Idle keep-alive is bounded by the idle timeout (2 s), not by the header timeout (1 s).
    let closed = closed_within(&mut s, Duration::from_secs(5)).await.expect("an idle keep-alive connection was still open after 5 s (idle timeout 2 s)");
    assert!(closed >= Duration::from_millis(1500) && closed < Duration::from_millis(3500), "closed after {closed:?}, idle timeout 2 s");

    // A keep-alive connection that starts its next head and stalls gets the header timeout
    // from the head's first byte.
    let mut s = TcpStream::connect(addr(&srv.url)).await.unwrap();
    s.write_all(&get("/healthz")).await.unwrap();
    assert_eq!(read_response(&mut s, Duration::from_secs(5)).await.unwrap().0, 200);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 1").await.unwrap();
    let closed = closed_within(&mut s, Duration::from_secs(5)).await.expect("a stalled second head was still open after 5 s");
    assert!(closed < Duration::from_millis(1800), "closed after {closed:?}, header read timeout 1 s (idle would be 2 s)");
    assert!(serves(&srv.url).await);
}

/// Documented behaviour: at the cap, new connections wait in the accept backlog (their request
/// is buffered by the kernel) and are served as soon as a connection closes; idle attackers'
/// connections close within the header timeout, so the wait is bounded.
#[tokio::test]
async fn regression_slowloris_connection_cap_waits_in_backlog_rfc9112_9_5() {
    let srv = server(2).await;
    let mut silent1 = TcpStream::connect(addr(&srv.url)).await.unwrap();
    let _silent2 = TcpStream::connect(addr(&srv.url)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let mut third = TcpStream::connect(addr(&srv.url)).await.unwrap();
    third.write_all(&get("/healthz")).await.unwrap();
    assert!(read_response(&mut third, Duration::from_millis(500)).await.is_none(), "with max_connections = 2 and two connections open, a third was served");
    // The two silent ones are cut at the header timeout (1 s); then the third is served.
    assert_eq!(read_response(&mut third, Duration::from_secs(4)).await.map(|r| r.0), Some(200), "the waiting connection was served once the cap freed");
    assert!(start.elapsed() < Duration::from_secs(3), "served after {:?}", start.elapsed());
    assert!(closed_within(&mut silent1, Duration::from_secs(1)).await.is_some());
    drop(_silent2);

    // Closing a connection frees its place at once.
    drop((silent1, third));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut a = TcpStream::connect(addr(&srv.url)).await.unwrap();
    let mut b = TcpStream::connect(addr(&srv.url)).await.unwrap();
    for s in [&mut a, &mut b] {
        s.write_all(&get("/healthz")).await.unwrap();
        assert_eq!(read_response(s, Duration::from_secs(2)).await.map(|r| r.0), Some(200));
    }
    let mut c = TcpStream::connect(addr(&srv.url)).await.unwrap();
    c.write_all(&get("/healthz")).await.unwrap();
    assert!(read_response(&mut c, Duration::from_millis(300)).await.is_none(), "over the cap");
    drop(b);
    assert_eq!(read_response(&mut c, Duration::from_millis(700)).await.map(|r| r.0), Some(200), "served once a connection closed");
    drop((a, c));

    // A burst of attacking connections, three times the cap, delays new clients by about
    // three header timeouts, then the server serves again.
    let srv = server(8).await;
    let mut held = Vec::new();
    for i in 0..24 {
        let mut s = TcpStream::connect(addr(&srv.url)).await.unwrap();
        if i % 2 == 0 {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost:").await;
        }
        held.push(s);
    }
    let start = Instant::now();
    let mut ok = false;
    while start.elapsed() < Duration::from_secs(20) {
        if serves(&srv.url).await {
            ok = true;
            break;
        }
    }
    assert!(ok, "not serving 20 s after the burst");
    assert!(start.elapsed() < Duration::from_secs(8), "served {:?} after the burst", start.elapsed());
    drop(held);
    assert!(serves(&srv.url).await);
}

/// Finding 17: the timeout layer's 408 carries the anti-framing, no-sniff and referrer headers
/// (RFC 7034 §2; CSP Level 3 `frame-ancestors`), as do the 404 and 405 fallbacks.
#[tokio::test]
async fn regression_timeout_408_has_anti_framing_headers_rfc7034_2() {
    let srv = TestServer::start_serving(ServeOptions { request_timeout: Duration::from_millis(500), ..ServeOptions::default() }, |_| {}).await;
    let mut s = TcpStream::connect(addr(&srv.url)).await.unwrap();
    // A body that never arrives in full.
    s.write_all(b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=")
        .await
        .unwrap();
    let (status, headers) = read_response(&mut s, Duration::from_secs(5)).await.expect("no answer to a stalled body");
    assert_eq!(status, 408);
    assert_security_headers(&headers, "408");

    for (method, path, want) in [("GET", "/no-such-page", 404), ("DELETE", "/token", 405), ("PUT", "/authorize", 405)] {
        let mut s = TcpStream::connect(addr(&srv.url)).await.unwrap();
        s.write_all(format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").as_bytes()).await.unwrap();
        let (status, headers) = read_response(&mut s, Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, want, "{method} {path}");
        assert_security_headers(&headers, &format!("{method} {path}"));
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn assert_security_headers(headers: &[(String, String)], what: &str) {
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}: {headers:?}");
    assert!(header(headers, "content-security-policy").is_some_and(|v| v.contains("frame-ancestors 'none'")), "{what}: {headers:?}");
    assert_eq!(header(headers, "x-content-type-options"), Some("nosniff"), "{what}: {headers:?}");
    assert_eq!(header(headers, "referrer-policy"), Some("no-referrer"), "{what}: {headers:?}");
}

/// Finding 18 (HSTS): with an https issuer (TLS terminated in front of Tessera) every response
/// carries `Strict-Transport-Security` (RFC 6797 §6.1, §7.1), error responses included; with an
/// http issuer (loopback development) none does (§7.2: not over non-secure transport).
#[tokio::test]
async fn regression_hsts_on_https_issuer_rfc6797_7_1() {
    let srv = TestServer::start_serving(ServeOptions { request_timeout: Duration::from_millis(500), ..ServeOptions::default() }, |c| {
        c.issuer = "https://id.example".into()
    })
    .await;
    for req in [
        get("/healthz"),
        get("/.well-known/openid-configuration"),
        get("/nope"),
        b"DELETE /token HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nx".to_vec(),
    ] {
        let mut s = TcpStream::connect(addr(&srv.url)).await.unwrap();
        s.write_all(&req).await.unwrap();
        let (status, headers) = read_response(&mut s, Duration::from_secs(5)).await.unwrap();
        assert_eq!(header(&headers, "strict-transport-security"), Some("max-age=31536000"), "{status} for {}: {headers:?}", String::from_utf8_lossy(&req));
        assert_security_headers(&headers, &status.to_string());
    }

    let plain = TestServer::start().await;
    let mut s = TcpStream::connect(addr(&plain.url)).await.unwrap();
    s.write_all(&get("/healthz")).await.unwrap();
    let (_, headers) = read_response(&mut s, Duration::from_secs(5)).await.unwrap();
    assert_eq!(header(&headers, "strict-transport-security"), None, "http issuer: {headers:?}");
}

/// Finding 5 against the binary operators run: the limits are flags, and SIGTERM drains.
/// CI tier: spawns `tessera serve`.
#[cfg(feature = "ci-tier")]
#[tokio::test]
async fn regression_slowloris_tessera_serve_flags_rfc9112_9_5() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0", "--header-read-timeout", "1", "--idle-timeout", "2", "--max-connections", "3"])
        .current_dir(dir.path())
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_ISSUER")
        .env_remove("TESSERA_LISTEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut child = Kill(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("Tessera is listening on ").unwrap_or_else(|| panic!("tessera serve did not start: {line:?}")).to_string();
    std::thread::spawn(move || for _ in out.lines() {});

    let mut silent = TcpStream::connect(addr(&url)).await.unwrap();
    let mut partial = TcpStream::connect(addr(&url)).await.unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(4)).await.is_some_and(|d| d < Duration::from_millis(2500)),
        "--header-read-timeout 1: a silent connection"
    );
    assert!(closed_within(&mut partial, Duration::from_secs(2)).await.is_some(), "--header-read-timeout 1: a partial head");
    assert!(serves(&url).await);

    // SIGTERM: an idle keep-alive connection does not hold the process; it exits cleanly.
    let mut idle = TcpStream::connect(addr(&url)).await.unwrap();
    idle.write_all(&get("/healthz")).await.unwrap();
    assert_eq!(read_response(&mut idle, Duration::from_secs(5)).await.map(|r| r.0), Some(200));
    let term = std::process::Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    assert!(term.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "tessera serve still running 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}
