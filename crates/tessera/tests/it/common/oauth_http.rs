//! The HTTP transport the `oauth2` and `openidconnect` interop tests give those crates (built
//! without an HTTP client of their own): oauth2's `AsyncHttpClient` (openidconnect uses the same
//! trait) over reqwest 0.13, `http::Request<Vec<u8>>` in, `http::Response<Vec<u8>>` out.
//! Redirects are not followed (token, revocation, introspection, discovery and UserInfo
//! responses are never redirects). `https://127.0.0.1:PORT` is sent as plain HTTP: oauth2
//! insists on an https revocation URL (RFC 7009 §2) while the test server speaks plain HTTP on
//! loopback; the transport is not what these tests check.

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;

/// The error of the adapter: a transport failure, or a response that could not be rebuilt.
#[derive(Debug)]
pub enum AdapterError {
    Reqwest(reqwest::Error),
    Http(oauth2::http::Error),
}

impl std::fmt::Display for AdapterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reqwest(e) => write!(f, "reqwest: {e}"),
            Self::Http(e) => write!(f, "http: {e}"),
        }
    }
}

impl std::error::Error for AdapterError {}

pub struct Reqwest013(reqwest::Client);

impl Reqwest013 {
    pub fn new() -> Self {
        Self(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap())
    }
}

impl<'c> AsyncHttpClient<'c> for Reqwest013 {
    type Error = AdapterError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, AdapterError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut url = parts.uri.to_string();
            if let Some(rest) = url.strip_prefix("https://127.0.0.1:") {
                url = format!("http://127.0.0.1:{rest}");
            }
            let res = self.0.request(parts.method, url).headers(parts.headers).body(body).send().await.map_err(AdapterError::Reqwest)?;
            let mut builder = oauth2::http::Response::builder().status(res.status()).version(res.version());
            for (name, value) in res.headers() {
                builder = builder.header(name, value);
            }
            let body = res.bytes().await.map_err(AdapterError::Reqwest)?.to_vec();
            builder.body(body).map_err(AdapterError::Http)
        })
    }
}
