//! The load generator's HTTP/1.1 client: one keep-alive connection per virtual user, written
//! and read in the virtual user's own task (no connection task, no channel between the two),
//! `TCP_NODELAY`, an optional cookie jar for the scripted browser.
//!
//! Why not hyper's client: the generator shares the two cores with the server under test, so
//! every microsecond it spends per request is taken from the server. hyper's connection-level
//! client (a connection task fed through a channel, a `HeaderMap` per response) cost about
//! 22 µs of CPU per request here, 10 % more than `wrk`; this one writes the request with one
//! `write` and parses the response head in place with `httparse`, keeping only what the
//! scenarios read (status, `Location`, `Set-Cookie`, the body). BENCHMARKS.md has the figures.

use anyhow::{Context, anyhow, bail};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response head larger than this is an error (the servers' heads are under 1 KB).
const MAX_HEAD: usize = 64 * 1024;
/// A body larger than this is an error (the largest, a sign-in page, is a few KB).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// No request waits longer than this for its whole response: a stuck server fails the
/// operation (counted as an error) instead of hanging the run.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A response, body read in full.
pub struct Resp {
    pub status: u16,
    location: Option<String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
    pub fn location(&self) -> anyhow::Result<&str> {
        self.location.as_deref().ok_or_else(|| anyhow!("HTTP {} without a Location header", self.status))
    }
    /// A string member of a JSON object body.
    pub fn json_str(&self, field: &str) -> anyhow::Result<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).with_context(|| format!("HTTP {}: not JSON: {}", self.status, short(self.text())))?;
        v.get(field).and_then(|x| x.as_str()).map(str::to_string).ok_or_else(|| anyhow!("HTTP {}: no {field} in {}", self.status, short(self.text())))
    }
    /// Fail unless the status is `want`.
    pub fn expect(self, want: u16) -> anyhow::Result<Self> {
        if self.status != want {
            bail!("HTTP {} (expected {want}): {}", self.status, short(self.text()));
        }
        Ok(self)
    }
}

pub fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// One keep-alive connection (reopened after an error or a `Connection: close`) and, for
/// browsers, a cookie jar.
pub struct Client {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    /// The request being written, reused.
    out: Vec<u8>,
    /// Bytes read and not yet consumed; `buf[..filled]` is valid.
    buf: Vec<u8>,
    filled: usize,
    /// Cookies by name (all sent on every request: the servers ignore the ones not theirs).
    pub jar: Vec<(String, String)>,
    pub use_jar: bool,
    /// A DPoP proof to send with the next request only.
    pub dpop: Option<String>,
}

/// What the head of a response says about its body and connection.
struct Head {
    status: u16,
    len: usize,
    body: BodyLen,
    close: bool,
    location: Option<String>,
    set_cookies: Vec<String>,
}

enum BodyLen {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

impl Client {
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            host: addr.to_string(),
            stream: None,
            out: Vec::with_capacity(1024),
            buf: vec![0; 16 * 1024],
            filled: 0,
            jar: Vec::new(),
            use_jar: false,
            dpop: None,
        })
    }

    pub async fn get(&mut self, path: &str, auth: Option<&str>) -> anyhow::Result<Resp> {
        self.send("GET", path, auth, None).await
    }

    pub async fn post_form(&mut self, path: &str, auth: Option<&str>, body: &str) -> anyhow::Result<Resp> {
        self.send("POST", path, auth, Some(body)).await
    }

    pub async fn send(&mut self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> anyhow::Result<Resp> {
        self.encode(method, path, auth, body);
        let reused = self.stream.is_some();
        let mut result = self.exchange().await;
        if let Err(Exchange::ClosedIdle) = result {
            if reused {
                // The server closed the idle keep-alive connection before our request reached
                // it (Node closes idle connections after 5 s): nothing was answered, send again.
                result = self.exchange().await;
            }
        }
        result.map_err(|e| {
            // The next request opens a new connection.
            self.stream = None;
            self.filled = 0;
            match e {
                Exchange::ClosedIdle => anyhow!("the server closed the connection without answering"),
                Exchange::Failed(e) => e,
            }
        })
    }

    /// The request, in `self.out`.
    fn encode(&mut self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) {
        let o = &mut self.out;
        o.clear();
        for part in [method, " ", path, " HTTP/1.1\r\nhost: ", &self.host, "\r\n"] {
            o.extend_from_slice(part.as_bytes());
        }
        if let Some(a) = auth {
            for part in ["authorization: ", a, "\r\n"] {
                o.extend_from_slice(part.as_bytes());
            }
        }
        // A DPoP proof for this one request (RFC 9449 §4.1).
        if let Some(p) = self.dpop.take() {
            for part in ["dpop: ", p.as_str(), "\r\n"] {
                o.extend_from_slice(part.as_bytes());
            }
        }
        if self.use_jar && !self.jar.is_empty() {
            o.extend_from_slice(b"cookie: ");
            for (i, (k, v)) in self.jar.iter().enumerate() {
                if i > 0 {
                    o.extend_from_slice(b"; ");
                }
                for part in [k.as_str(), "=", v] {
                    o.extend_from_slice(part.as_bytes());
                }
            }
            o.extend_from_slice(b"\r\n");
        }
        if let Some(b) = body {
            o.extend_from_slice(b"content-type: application/x-www-form-urlencoded\r\ncontent-length: ");
            o.extend_from_slice(b.len().to_string().as_bytes());
            o.extend_from_slice(b"\r\n\r\n");
            o.extend_from_slice(b.as_bytes());
        } else {
            o.extend_from_slice(b"\r\n");
        }
    }

    async fn exchange(&mut self) -> Result<Resp, Exchange> {
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.exchange_inner()).await {
            Ok(r) => r,
            Err(_) => Err(Exchange::Failed(anyhow!("no complete response within {RESPONSE_TIMEOUT:?}"))),
        }
    }

    async fn exchange_inner(&mut self) -> Result<Resp, Exchange> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await.with_context(|| format!("connect {}", self.addr))?;
            stream.set_nodelay(true).context("TCP_NODELAY")?;
            self.stream = Some(stream);
            self.filled = 0;
        }
        let stream = self.stream.as_mut().ok_or_else(|| anyhow!("not connected"))?;
        stream.write_all(&self.out).await.map_err(|e| closed_or(e, "write", true))?;
        let head = loop {
            if let Some(h) = parse_head(&self.buf[..self.filled])? {
                break h;
            }
            if self.filled >= MAX_HEAD {
                return Err(anyhow!("response head over {MAX_HEAD} bytes").into());
            }
            self.read_more().await?;
        };
        let body_at = head.len;
        let (body, end) = match head.body {
            BodyLen::None => (Vec::new(), body_at),
            BodyLen::Length(n) => {
                if n > MAX_BODY {
                    return Err(anyhow!("body of {n} bytes").into());
                }
                while self.filled < body_at + n {
                    self.read_more().await?;
                }
                (self.buf[body_at..body_at + n].to_vec(), body_at + n)
            }
            BodyLen::Chunked => self.read_chunked(body_at).await?,
            BodyLen::UntilClose => {
                while self.read_some().await? > 0 {
                    if self.filled > body_at + MAX_BODY {
                        return Err(anyhow!("body over {MAX_BODY} bytes").into());
                    }
                }
                (self.buf[body_at..self.filled].to_vec(), self.filled)
            }
        };
        if self.use_jar {
            for c in &head.set_cookies {
                self.store_cookie(c);
            }
        }
        // Keep whatever follows the response (nothing, without pipelining).
        self.buf.copy_within(end..self.filled, 0);
        self.filled -= end;
        if head.close || matches!(head.body, BodyLen::UntilClose) {
            self.stream = None;
            self.filled = 0;
        }
        Ok(Resp { status: head.status, location: head.location, body })
    }

    /// RFC 9112 §7.1: chunks until the zero-size one, then the (ignored) trailer section.
    async fn read_chunked(&mut self, mut at: usize) -> Result<(Vec<u8>, usize), Exchange> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find_crlf(&self.buf[at..self.filled]) {
                    break at + i;
                }
                self.read_more().await?;
            };
            let line = std::str::from_utf8(&self.buf[at..line_end]).map_err(|_| anyhow!("bad chunk size line"))?;
            let size_hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| anyhow!("bad chunk size {size_hex:?}"))?;
            at = line_end + 2;
            if size == 0 {
                // Trailer fields, then the empty line.
                loop {
                    let end = loop {
                        if let Some(i) = find_crlf(&self.buf[at..self.filled]) {
                            break at + i;
                        }
                        self.read_more().await?;
                    };
                    let empty = end == at;
                    at = end + 2;
                    if empty {
                        return Ok((body, at));
                    }
                }
            }
            if body.len() + size > MAX_BODY {
                return Err(anyhow!("body over {MAX_BODY} bytes").into());
            }
            while self.filled < at + size + 2 {
                self.read_more().await?;
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
    }

    /// Read at least one more byte; the end of the stream is an error here.
    async fn read_more(&mut self) -> Result<(), Exchange> {
        let before = self.filled;
        if self.read_some().await? == 0 {
            // Closed before a byte of this response: an idle connection the server let go.
            return Err(if before == 0 { Exchange::ClosedIdle } else { Exchange::Failed(anyhow!("connection closed mid-response")) });
        }
        Ok(())
    }

    async fn read_some(&mut self) -> Result<usize, Exchange> {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let nothing_yet = self.filled == 0;
        let stream = self.stream.as_mut().ok_or_else(|| anyhow!("not connected"))?;
        let n = stream.read(&mut self.buf[self.filled..]).await.map_err(|e| closed_or(e, "read", nothing_yet))?;
        self.filled += n;
        Ok(n)
    }

    fn store_cookie(&mut self, set_cookie: &str) {
        let mut attrs = set_cookie.split(';');
        let Some((name, value)) = attrs.next().and_then(|nv| nv.trim().split_once('=')) else { return };
        let removed = attrs.any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == "max-age=0" || a.starts_with("expires=thu, 01 jan 1970")
        });
        self.jar.retain(|(k, _)| k != name);
        if !removed && !value.is_empty() {
            self.jar.push((name.to_string(), value.to_string()));
        }
    }
}

/// How an exchange failed: `ClosedIdle` (nothing was answered, the request may be sent again on
/// a new connection) or anything else.
enum Exchange {
    ClosedIdle,
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Exchange {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(e)
    }
}

/// A reset before any byte of the response arrived means the server had closed the connection.
fn closed_or(e: std::io::Error, what: &str, nothing_read: bool) -> Exchange {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | BrokenPipe | ConnectionAborted if nothing_read => Exchange::ClosedIdle,
        _ => Exchange::Failed(anyhow!("{what}: {e}")),
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// The response head at the start of `b`, or `None` while incomplete (RFC 9112 §6.3 for the
/// body's length).
fn parse_head(b: &[u8]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(b).context("malformed response head")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = res.code.ok_or_else(|| anyhow!("no status code"))?;
    let (mut length, mut chunked, mut close, mut location, mut set_cookies) = (None, false, false, None, Vec::new());
    for h in res.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok()).ok_or_else(|| anyhow!("bad content-length"))?;
            length = Some(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.split(|&c| c == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            close = h.value.split(|&c| c == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case("location") {
            location = std::str::from_utf8(h.value).ok().map(str::to_string);
        } else if name.eq_ignore_ascii_case("set-cookie") {
            set_cookies.extend(std::str::from_utf8(h.value).ok().map(str::to_string));
        }
    }
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyLen::None
    } else if chunked {
        BodyLen::Chunked
    } else if let Some(n) = length {
        BodyLen::Length(n)
    } else {
        BodyLen::UntilClose
    };
    Ok(Some(Head { status, len, body, close, location, set_cookies }))
}

/// `Authorization: Basic` for a client (RFC 6749 §2.3.1: form-urlencoded, then base64).
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
}

/// A form body from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request on a connection with the next canned response (split
    /// into small writes), then closes.
    async fn canned(responses: Vec<&'static [u8]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            for r in responses {
                // One request: its head, and its body by content-length.
                let mut got = Vec::new();
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = std::str::from_utf8(&got[..i]).unwrap().to_ascii_lowercase();
                        let cl = head.lines().find_map(|l| l.strip_prefix("content-length: ")).map(|v| v.parse::<usize>().unwrap()).unwrap_or(0);
                        if got.len() >= i + 4 + cl {
                            break;
                        }
                    }
                }
                for piece in r.chunks(7) {
                    s.write_all(piece).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn length_chunked_and_cookies_on_one_connection() {
        let addr = canned(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nset-cookie: a=1; Path=/\r\n\r\nhello",
            b"HTTP/1.1 303 See Other\r\nLocation: /next\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=; Max-Age=0\r\nset-cookie: b=2\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end",
        ])
        .await;
        let mut c = Client::new(addr).unwrap();
        c.use_jar = true;
        let r = c.get("/", None).await.unwrap();
        assert_eq!((r.status, r.text()), (200, "hello"));
        assert_eq!(c.jar, vec![("a".to_string(), "1".to_string())]);
        let r = c.post_form("/x", Some("Basic eA=="), "k=v").await.unwrap();
        assert_eq!((r.status, r.text(), r.location().unwrap()), (303, "abcde", "/next"));
        assert_eq!(c.jar, vec![("b".to_string(), "2".to_string())], "a removed, b set");
        let r = c.get("/", None).await.unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
        let r = c.get("/", None).await.unwrap();
        assert_eq!(r.text(), "to the end");
        assert!(c.stream.is_none(), "a body read to the end closes the connection");
    }

    #[tokio::test]
    async fn a_truncated_response_is_an_error() {
        let addr = canned(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort"]).await;
        let mut c = Client::new(addr).unwrap();
        assert!(c.get("/", None).await.is_err());
    }
}
