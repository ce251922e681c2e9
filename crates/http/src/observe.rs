//! What every request leaves for operators, in the outermost layer: a request id (the
//! caller's `X-Request-Id` when it is a short token, else a new one) answered in
//! `X-Request-Id` and carried by every log line of the request (a `request` span), the request
//! counted in the latency histogram of its endpoint and status class, store failures counted,
//! and a log line per request at `debug` (a 5xx at `warn`). The path is logged without its
//! query: codes and tokens travel in queries.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::Instrument;

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

pub async fn observe(State(svc): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = match req.headers().get(&X_REQUEST_ID) {
        Some(v) if acceptable(v.as_bytes()) => v.to_str().map(str::to_string).unwrap_or_else(|_| new_id()),
        _ => new_id(),
    };
    let endpoint = tessera_server::metrics::endpoint_of(req.uri().path());
    let method = req.method().clone();
    let path = req.uri().path().chars().take(200).collect::<String>();
    let span = tracing::info_span!("request", id = %id);
    let mut res = next.run(req).instrument(span.clone()).await.into_response();
    let status = res.status().as_u16();
    let secs = started.elapsed().as_secs_f64();
    svc.metrics.observe_request(endpoint, status, secs);
    if res.extensions().get::<StoreFailed>().is_some() {
        svc.metrics.store_error();
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, v);
    }
    // Shutting down: the client's connection should not be reused for another request here.
    if svc.is_draining() {
        res.headers_mut().insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    span.in_scope(|| {
        let ms = secs * 1e3;
        if status >= 500 {
            tracing::warn!(target: "tessera::access", %method, %path, status, ms, "request failed");
        } else {
            tracing::debug!(target: "tessera::access", %method, %path, status, ms, "request");
        }
    });
    res
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
