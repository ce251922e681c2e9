//! Serving a router over TCP with bounded connections: the one accept loop of `tessera serve`,
//! `tessera demo` and the test fixtures.
//!
//! `axum::serve` bounds nothing below the request (a client sending half a request head, or
//! nothing, holds its connection and a file descriptor forever: "Slowloris"). Here every
//! connection is in one of three phases, each bounded ([`ServeLimits`]):
//!
//! - **waiting for a request head**: a new connection must deliver a complete head within
//!   `header_read_timeout` of being accepted; on a keep-alive connection, within
//!   `header_read_timeout` of the first byte of the next request;
//! - **idle** (keep-alive, no request in flight): closed after `idle_timeout` without traffic;
//!   this also bounds a client that stops reading its response;
//! - **a request in flight** (head parsed, until the handler answers): bounded by the router's own
//!   request timeout (408), not here.
//!
//! Why not hyper's `http1::Builder::header_read_timeout` alone: hyper starts that timer as soon
//! as a connection is ready for its next request (`State::idle` sets `notify_read`, and
//! `Conn::poll_read_head` arms the timer before any byte arrives), so it bounds idle keep-alive
//! and the head read as one period. A keep-alive idle bound shorter than a load balancer's pool
//! timeout (commonly 60 s) makes the balancer send requests on connections the server is closing,
//! which clients see as 502s. The phases above keep the two bounds apart; hyper's own timer is
//! turned off.
//!
//! At most `max_connections` connections are served at once. Beyond that, new connections are
//! not accepted: they wait in the kernel's accept backlog (the client's request is buffered) and
//! are served, in order, as soon as a connection closes, which the bounds above guarantee happens
//! within `header_read_timeout` for any connection that is not sending requests. The process so
//! never runs out of file descriptors because of clients.
//!
//! A connection's watchdog checks its phase when the phase's deadline is due and at least every
//! quarter of `header_read_timeout`, rather than on every request, so a bound is kept to within
//! that quarter (a head that starts stalling on a keep-alive connection is cut between 1 and
//! 1.25 × `header_read_timeout` after its first byte).
//!
//! On shutdown the listener is closed, idle connections are closed, requests in flight finish
//! (hyper's graceful shutdown) for at most [`ServeLimits::drain_timeout`].
//!
//! HTTP/1.1 only (HTTP/2 is not compiled in, as with the `axum::serve` this replaces); TLS is
//! terminated in front of Tessera (`docs/deployment.md`). Sockets set `TCP_NODELAY`; handlers
//! get the peer's address as `axum::extract::ConnectInfo<SocketAddr>`.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::Service;

/// Bounds on connections; see the module documentation for what each covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A request head must arrive in full within this time (of the accept, or of its first byte
    /// on a keep-alive connection). Default 10 s.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed. Default
    /// 75 s: longer than the 60 s idle timeout of common load balancers, so that the balancer,
    /// not Tessera, closes pooled connections.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the accept backlog. Default: the process's
    /// open-file limit less [`FD_RESERVE`], between 16 and 8192 (1024 where it is unknown).
    pub max_connections: usize,
    /// On shutdown, how long requests in flight may take to finish. Default 30 s.
    pub drain_timeout: Duration,
}

/// File descriptors kept for everything other than clients (the listener, database files and
/// connections, logs) when `max_connections` is derived from the open-file limit.
pub const FD_RESERVE: u64 = 64;

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: default_max_connections(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// The default connection cap: the soft `RLIMIT_NOFILE` less [`FD_RESERVE`], in 16..=8192.
pub fn default_max_connections() -> usize {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        match limit.current {
            Some(soft) => usize::try_from(soft.saturating_sub(FD_RESERVE).clamp(16, 8192)).unwrap_or(1024),
            None => 8192,
        }
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then drains.
///
/// Accept errors (file descriptors exhausted by something else, a connection reset before it
/// was accepted) are logged and retried after a short pause; they never end the server.
pub async fn serve(listener: TcpListener, router: Router, limits: ServeLimits, shutdown: impl Future<Output = ()> + Send) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // Phases are bounded by `Watch` below; hyper's timer would also cut idle keep-alive at the
    // header timeout (module documentation).
    http.header_read_timeout(None).keep_alive(true);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // The permit first: at the cap, connections stay in the backlog, not accepted.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small request/response exchanges: answers go out without waiting for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let phase = Arc::new(Phase::new());
        let service = ConnService { router: router.clone(), peer, phase: phase.clone() };
        let conn = http.serve_connection(TokioIo::new(Watch { tcp, phase: phase.clone() }), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let mut conn = pin!(conn);
            // The watchdog looks at the phase when its deadline is due and at least every
            // `tick`, instead of being woken by every request: a deadline that appears or moves
            // earlier (a head starts, a request ends) is seen within `tick`. Waking it on every
            // request cost a task wake-up and a timer re-registration per request (measured:
            // +3 µs server CPU per client_credentials token, +4–6 µs per introspection).
            let tick = (limits.header_read_timeout / 4).max(Duration::from_millis(50));
            loop {
                let wake = match phase.deadline(&limits) {
                    Some(d) => d.min(Instant::now() + tick),
                    None => Instant::now() + tick,
                };
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    () = tokio::time::sleep_until(wake) => {
                        if phase.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                            tracing::debug!(%peer, "closing a connection: no complete request head or idle too long");
                            break;
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after the drain timeout were cut");
    }
    Ok(())
}

/// Where one connection stands; shared by its socket wrapper, its service and its watchdog.
struct Phase {
    state: Mutex<PhaseState>,
}

struct PhaseState {
    accepted: Instant,
    /// No request has been handled yet: the first head is due `header_read_timeout` after the accept.
    fresh: bool,
    in_flight: usize,
    /// First byte of the next request head on a keep-alive connection.
    head_started: Option<Instant>,
    last_io: Instant,
}

impl Phase {
    fn new() -> Self {
        let now = Instant::now();
        Self { state: Mutex::new(PhaseState { accepted: now, fresh: true, in_flight: 0, head_started: None, last_io: now }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PhaseState> {
        // Nothing panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the connection is to be closed unless something happens; `None` while a request is
    /// in flight.
    fn deadline(&self, limits: &ServeLimits) -> Option<Instant> {
        let s = self.lock();
        if s.in_flight > 0 {
            None
        } else if s.fresh {
            Some(s.accepted + limits.header_read_timeout)
        } else if let Some(t) = s.head_started {
            Some(t + limits.header_read_timeout)
        } else {
            Some(s.last_io + limits.idle_timeout)
        }
    }

    fn on_read(&self) {
        let mut s = self.lock();
        s.last_io = Instant::now();
        if s.in_flight == 0 && !s.fresh && s.head_started.is_none() {
            s.head_started = Some(s.last_io);
        }
    }

    fn on_write(&self) {
        self.lock().last_io = Instant::now();
    }

    fn begin_request(self: &Arc<Self>) -> InFlight {
        let mut s = self.lock();
        s.fresh = false;
        s.head_started = None;
        s.in_flight += 1;
        InFlight(self.clone())
    }
}

/// A request in flight on its connection (from its parsed head until its response is ready).
struct InFlight(Arc<Phase>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.head_started = None;
        s.last_io = Instant::now();
    }
}

/// The socket, recording traffic into its connection's [`Phase`].
struct Watch {
    tcp: TcpStream,
    phase: Arc<Phase>,
}

impl AsyncRead for Watch {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.phase.on_read();
        }
        r
    }
}

impl AsyncWrite for Watch {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.phase.on_write();
        }
        r
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.phase.on_write();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The router as one connection's hyper service: adds `ConnectInfo` and marks requests in flight.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    phase: Arc<Phase>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = self.phase.begin_request();
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        // `Router` is always ready (its `poll_ready` returns `Ready(Ok)`); cloning it is a
        // reference-count increment.
        let fut = self.router.clone().call(req);
        Box::pin(async move {
            let res = fut.await;
            drop(in_flight);
            res
        })
    }
}
