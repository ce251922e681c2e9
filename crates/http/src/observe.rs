//! What every request leaves for operators, in the outermost layer: a request id (the
//! caller's `X-Request-Id` when it is a short token, else a new one) answered in
//! `X-Request-Id` and available to every log line of the request ([`request_id`], a task-local:
//! the binary's log formatter adds it; a `tracing` span would cost about 6k instructions per
//! request to format), the request
//! counted in the latency histogram of its endpoint and status class, store failures counted,
//! and a log line per request at `debug` (a 5xx at `warn`). The path is logged without its
//! query: codes and tokens travel in queries.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
}

/// The id of the request being served on this task, if any (for log lines).
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.to_str().ok().map(str::to_string)).ok().flatten()
}

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Marks a response that failed because the store did (set by the error mapping).
#[derive(Debug, Clone, Copy)]
pub struct StoreFailed;

/// A caller's request id is kept when it is 1 to 64 of `A-Z a-z 0-9 . _ : -` (nothing that
/// could forge a log line or a header).
fn acceptable(id: &[u8]) -> bool {
    (1..=64).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(b))
}

/// A new id: this process's random prefix and a counter (unique, cheap, not a secret).
fn new_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| tessera_server::secret::random_alnum_id().chars().take(10).collect());
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The layer of [`Observe`], outermost in the router's stack.
#[derive(Clone)]
pub struct ObserveLayer(pub AppState);

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner, svc: self.0.clone() }
    }
}

/// A hand-written service rather than `axum::middleware::from_fn`, which would box and clone
/// the whole inner stack on every request: generic over the response body, so it wraps the
/// header, catch-panic and timeout layers directly.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    svc: AppState,
}

impl<S, B> tower::Service<Request> for Observe<S>
where
    S: tower::Service<Request, Response = axum::http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = axum::http::Response<B>;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let svc = self.svc.clone();
        let started = std::time::Instant::now();
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if acceptable(v.as_bytes()) => v.clone(),
            _ => HeaderValue::from_str(&new_id()).unwrap_or_else(|_| HeaderValue::from_static("-")),
        };
        let endpoint = tessera_server::metrics::endpoint_of(req.uri().path());
        let method = req.method().clone();
        let uri = req.uri().clone();
        let fut = REQUEST_ID.scope(id.clone(), inner.call(req));
        Box::pin(async move {
            let mut res = fut.await?;
            let status = res.status().as_u16();
            let secs = started.elapsed().as_secs_f64();
            svc.metrics.observe_request(endpoint, status, secs);
            if res.extensions().get::<StoreFailed>().is_some() {
                svc.metrics.store_error();
            }
            // Shutting down: the client's connection should not be reused for another request.
            if svc.is_draining() {
                res.headers_mut().insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            let (path, ms, rid) = (uri.path(), secs * 1e3, id.to_str().unwrap_or("-"));
            if status >= 500 {
                tracing::warn!(target: "tessera::access", request_id = rid, %method, path, status, ms, "request failed");
            } else {
                tracing::debug!(target: "tessera::access", request_id = rid, %method, path, status, ms, "request");
            }
            res.headers_mut().insert(X_REQUEST_ID, id);
            Ok(res)
        })
    }
}

/// `GET /metrics`: the Prometheus text exposition format, version 0.0.4.
pub async fn metrics(State(svc): State<AppState>) -> Response {
    let mut res = svc.render_metrics().into_response();
    res.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(acceptable(b"abc-123_x.y:z"));
        for bad in [&b""[..], b"has space", b"new\nline", b"quote\"", &[b'a'; 65]] {
            assert!(!acceptable(bad), "{bad:?}");
        }
        assert_ne!(new_id(), new_id());
    }
}
