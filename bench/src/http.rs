//! A small HTTP/1.1 client for the load generator: one keep-alive connection per virtual user
//! (hyper's connection-level client, no pool), `TCP_NODELAY`, an optional cookie jar for the
//! scripted browser.

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

/// A response, body read in full.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
    pub fn location(&self) -> anyhow::Result<&str> {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| anyhow!("HTTP {} without a Location header", self.status))
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

/// One keep-alive connection (reopened after an error) and, for browsers, a cookie jar.
pub struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Cookies by name (all sent on every request: the servers ignore the ones not theirs).
    pub jar: Vec<(String, String)>,
    pub use_jar: bool,
}

impl Client {
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self { addr, host: HeaderValue::from_str(&addr.to_string())?, sender: None, jar: Vec::new(), use_jar: false })
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.with_context(|| format!("connect {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    pub async fn get(&mut self, path: &str, auth: Option<&str>) -> anyhow::Result<Resp> {
        self.send(Method::GET, path, auth, None).await
    }

    pub async fn post_form(&mut self, path: &str, auth: Option<&str>, body: String) -> anyhow::Result<Resp> {
        self.send(Method::POST, path, auth, Some(body)).await
    }

    pub async fn send(&mut self, method: Method, path: &str, auth: Option<&str>, body: Option<String>) -> anyhow::Result<Resp> {
        let result = self.send_once(method, path, auth, body).await;
        if result.is_err() {
            // The next request opens a new connection.
            self.sender = None;
        }
        result
    }

    async fn send_once(&mut self, method: Method, path: &str, auth: Option<&str>, body: Option<String>) -> anyhow::Result<Resp> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let mut req = Request::builder().method(method).uri(path).header(header::HOST, self.host.clone());
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        if self.use_jar && !self.jar.is_empty() {
            let cookie = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            req = req.header(header::COOKIE, cookie);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(b))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body)?;
        let sender = self.sender.as_mut().ok_or_else(|| anyhow!("not connected"))?;
        sender.ready().await?;
        let res = sender.send_request(req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        if self.use_jar {
            for v in parts.headers.get_all(header::SET_COOKIE) {
                if let Ok(s) = v.to_str() {
                    self.store_cookie(s);
                }
            }
        }
        Ok(Resp { status: parts.status.as_u16(), headers: parts.headers, body })
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
