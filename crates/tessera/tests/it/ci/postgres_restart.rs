//! Losing the database mid-run. Two `tessera serve` instances share one PostgreSQL database
//! under a bounded load; the machine's PostgreSQL is stopped (`pg_ctlcluster … stop -m fast`)
//! and started again. While it is down every answer that needs the store is 503 with
//! `Retry-After` (never a panic, a hang or a wrong `invalid_grant`); afterwards the instances
//! serve fully again by themselves, and no refresh token issued before the outage is lost.
//!
//! Refresh chains rotate and codes are redeemed throughout; a rotation or redemption in flight
//! when the database stops is done wholly or not at all (the consume and the refresh token it
//! pays for are one transaction), so every retry works afterwards: no `invalid_grant`, no lost
//! chain, no lost code.
//!
//! This is the only test that stops PostgreSQL; it holds PostgreSQL alone
//! (`common::postgres_alone`), so no other test of the binary uses it meanwhile. A guard starts
//! PostgreSQL again whatever happens.
use crate::common::cluster::{Cluster, REDIRECT, http, post};
use crate::common::{Browser, location, pkce_pair, query};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The machine's PostgreSQL cluster (`/etc/postgresql/VERSION/main`).
struct LocalPostgres {
    version: String,
}

impl LocalPostgres {
    fn find() -> Self {
        let version = std::fs::read_dir("/etc/postgresql")
            .ok()
            .and_then(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).max())
            .unwrap_or_else(|| panic!("this test stops and starts the machine's PostgreSQL: no cluster under /etc/postgresql (it never skips)"));
        Self { version }
    }

    fn ctl(&self, args: &[&str]) -> bool {
        Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("pg_ctlcluster: {e}"))
            .success()
    }

    fn is_ready() -> bool {
        Command::new("pg_isready").args(["-q", "-h", "127.0.0.1", "-p", "5432"]).status().is_ok_and(|s| s.success())
    }

    fn stop(&self) {
        assert!(self.ctl(&["stop", "-m", "fast"]), "pg_ctlcluster {} main stop failed", self.version);
    }

    /// Start and wait until it accepts connections (at most 60 s).
    fn start(&self) {
        if !Self::is_ready() {
            self.ctl(&["start"]);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !Self::is_ready() {
            assert!(Instant::now() < deadline, "PostgreSQL did not come back within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Starts PostgreSQL again when dropped, also when the test fails half-way.
struct Restart<'a>(&'a LocalPostgres);

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        if !LocalPostgres::is_ready() {
            self.0.ctl(&["start"]);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !LocalPostgres::is_ready() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ClientCredentials,
    Introspect,
    Authorize,
    Refresh,
    /// Get a code through a signed-in browser at one instance, redeem it at the other.
    Code,
    Jwks,
    /// RP-Initiated Logout with a post-logout URI the client never registered: the client is
    /// looked up (400 when the database answers, 503 when it does not; never a 500).
    Logout,
    /// `GET /health/ready`: 200 while the database answers, 503 with Retry-After while not.
    Ready,
}

/// One request of the load: when it started and ended (since the load began), what it was,
/// and how it was answered.
#[derive(Debug)]
struct Sample {
    started: Duration,
    ended: Duration,
    kind: Kind,
    instance: usize,
    /// The refresh-token chain of a `Refresh` request.
    chain: Option<usize>,
    status: u16,
    retry_after: bool,
    error: Option<String>,
}

struct Shared {
    cluster: Cluster,
    urls: [String; 2],
    http: reqwest::Client,
    access: String,
    /// One refresh token per chain worker: rotated on success, kept on 503.
    chains: Vec<Mutex<String>>,
    /// A signed-in browser (consent given) for fresh codes.
    browser: Browser,
    /// Per worker, a code not yet redeemed (kept on 503, retried).
    pending: Vec<Mutex<Option<(String, String)>>>,
    samples: Mutex<Vec<Sample>>,
    stop: AtomicBool,
    t0: Instant,
}

async fn one(s: &Shared, kind: Kind, instance: usize, chain: usize) -> (u16, bool, Option<String>) {
    let base = &s.urls[instance];
    let c = &s.cluster;
    let (status, body, retry) = match kind {
        Kind::ClientCredentials => c.token(&s.http, base, &[("grant_type", "client_credentials"), ("scope", "notes.read")]).await,
        Kind::Introspect => post(&s.http, &format!("{base}/introspect"), &c.client_id, &c.secret, &[("token", &s.access)]).await,
        Kind::Refresh => {
            let mut token = s.chains[chain].lock().await;
            let r = c.token(&s.http, base, &[("grant_type", "refresh_token"), ("refresh_token", &token)]).await;
            if r.0 == 200 {
                *token = r.1["refresh_token"].as_str().unwrap().to_string();
            }
            r
        }
        Kind::Code => {
            let mut pending = s.pending[chain].lock().await;
            if pending.is_none() {
                match fetch_code(s, &s.urls[1 - instance]).await {
                    Ok(pair) => *pending = Some(pair),
                    Err((status, retry)) => return (status, retry, None),
                }
            }
            let (code, verifier) = pending.clone().unwrap();
            let r = c
                .token(&s.http, base, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)])
                .await;
            if r.0 == 200 {
                *pending = None;
            }
            r
        }
        Kind::Authorize | Kind::Jwks | Kind::Logout | Kind::Ready => {
            let url = match kind {
                Kind::Jwks => format!("{base}/jwks.json"),
                Kind::Ready => format!("{base}/health/ready"),
                Kind::Logout => format!("{base}/logout?client_id={}&post_logout_redirect_uri=https%3A%2F%2Funregistered.example%2Fbye", c.client_id),
                _ => c.authorize_url(base, "load", &pkce_pair().1),
            };
            let res = s.http.get(url).send().await.unwrap();
            let status = res.status().as_u16();
            let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (status, serde_json::Value::Null, retry)
        }
    };
    let error = body.get("error").and_then(|e| e.as_str()).map(str::to_string);
    if kind == Kind::Introspect && status == 200 {
        assert_eq!(body["active"], true, "the access token stays active through the outage");
    }
    (status, retry.is_some(), error)
}

/// A fresh code from the signed-in browser at `base`, or the status (and whether Retry-After was
/// sent) of the step that failed.
async fn fetch_code(s: &Shared, base: &str) -> Result<(String, String), (u16, bool)> {
    let (verifier, challenge) = pkce_pair();
    let mut url = s.cluster.authorize_url(base, "code", &challenge);
    for _ in 0..5 {
        let res = s.browser.http.get(&url).send().await.unwrap();
        if res.status() != 303 {
            return Err((res.status().as_u16(), res.headers().contains_key("retry-after")));
        }
        let loc = location(&res);
        if loc.starts_with(REDIRECT) {
            return Ok((query(&loc)["code"].clone(), verifier));
        }
        url = format!("{base}{loc}");
    }
    Err((0, false))
}

/// A load worker: a fixed mix of requests alternating between the instances, paced, bounded in
/// count, until told to stop. Workers below `chains.len()` each own one refresh-token chain.
async fn worker(s: Arc<Shared>, w: usize) {
    let mut kinds = vec![Kind::ClientCredentials, Kind::Introspect, Kind::Authorize, Kind::Jwks, Kind::Logout, Kind::Ready];
    if w < s.chains.len() {
        kinds.push(Kind::Refresh);
    } else {
        kinds.push(Kind::Code);
    }
    for i in 0..150 {
        if s.stop.load(Ordering::Relaxed) {
            break;
        }
        let kind = kinds[(i + w) % kinds.len()];
        // Alternate instances, and swap the pairing every round of kinds, so that every kind
        // reaches both instances whatever the number of kinds (odd ones included: the round
        // counts on its own, not through `i`).
        let instance = (i % kinds.len() + w + i / kinds.len()) % 2;
        let started = s.t0.elapsed();
        let (status, retry_after, error) = one(&s, kind, instance, w).await;
        let ended = s.t0.elapsed();
        let chain = matches!(kind, Kind::Refresh | Kind::Code).then_some(w);
        s.samples.lock().await.push(Sample { started, ended, kind, instance, chain, status, retry_after, error });
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

/// `/health/ready` on both instances in turn, every 200 ms, until told to stop.
async fn prober(s: Arc<Shared>) {
    for i in 0..300 {
        if s.stop.load(Ordering::Relaxed) {
            break;
        }
        let started = s.t0.elapsed();
        let (status, retry_after, error) = one(&s, Kind::Ready, i % 2, 0).await;
        let ended = s.t0.elapsed();
        s.samples.lock().await.push(Sample { started, ended, kind: Kind::Ready, instance: i % 2, chain: None, status, retry_after, error });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A signed-in browser's next code at `base` (consent already given).
async fn next_code(c: &Cluster, browser: &Browser, base: &str) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let res = browser.get(&c.authorize_url(base, "s", &challenge)).await;
    assert_eq!(res.status(), 303);
    let mut loc = location(&res);
    while !loc.starts_with(REDIRECT) {
        let res = browser.get(&loc).await;
        assert_eq!(res.status(), 303, "{loc}");
        loc = location(&res);
    }
    (query(&loc)["code"].clone(), verifier)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_under_load() {
    let pg = LocalPostgres::find();
    let alone = crate::common::postgres_alone().await;
    pg.start();
    let cluster = Cluster::create_holding(alone).await;
    let a = cluster.serve("a");
    let b = cluster.serve("b");
    let _restart = Restart(&pg);
    let http = http();
    let urls = [a.url.clone(), b.url.clone()];

    // Before the outage: refresh tokens that are kept aside (not used until afterwards), chain
    // tokens for the load, and an access token to introspect.
    let (verifier, challenge) = pkce_pair();
    let browser = Browser::new(&a.url);
    let back = browser.authorize_and_allow(&cluster.authorize_url(&a.url, "s0", &challenge)).await;
    let first = cluster.redeem(&http, &b.url, &query(&back)["code"], &verifier).await;
    let access = first["access_token"].as_str().unwrap().to_string();
    let mut refresh_tokens = vec![first["refresh_token"].as_str().unwrap().to_string()];
    for i in 0..9 {
        let (code, verifier) = next_code(&cluster, &browser, &urls[i % 2]).await;
        let t = cluster.redeem(&http, &urls[(i + 1) % 2], &code, &verifier).await;
        refresh_tokens.push(t["refresh_token"].as_str().unwrap().to_string());
    }
    let chains: Vec<_> = refresh_tokens.split_off(6).into_iter().map(Mutex::new).collect();
    let kept = refresh_tokens;

    let pending = (0..6).map(|_| Mutex::new(None)).collect();
    let shared = Arc::new(Shared {
        cluster,
        urls: urls.clone(),
        http: http.clone(),
        access,
        chains,
        browser,
        pending,
        samples: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        t0: Instant::now(),
    });
    let mut workers: Vec<_> = (0..6).map(|w| tokio::spawn(worker(shared.clone(), w))).collect();
    // And a readiness probe of its own, as a load balancer polls: the mixed workers can all be
    // waiting out the pool's acquire timeout for seconds, and readiness must be seen during the
    // outage whatever they are doing.
    workers.push(tokio::spawn(prober(shared.clone())));

    // The outage: about 1 s of normal load, the database down for about 4 s, then back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down_at = shared.t0.elapsed();
    tokio::task::block_in_place(|| pg.stop());
    let down = shared.t0.elapsed();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let up_at = shared.t0.elapsed();
    tokio::task::block_in_place(|| pg.start());
    let up = shared.t0.elapsed();
    // Load goes on until every kind of request has succeeded on both instances after the
    // restart (at most 30 s), then 1 s more.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let samples = shared.samples.lock().await;
        let recovered = [Kind::ClientCredentials, Kind::Introspect, Kind::Authorize, Kind::Refresh, Kind::Code, Kind::Ready]
            .iter()
            .all(|k| (0..2).all(|i| samples.iter().any(|s| s.kind == *k && s.instance == i && s.started > up && matches!(s.status, 200 | 303))));
        drop(samples);
        if recovered {
            break;
        }
        assert!(Instant::now() < deadline, "no full service 30 s after PostgreSQL came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered_at = shared.t0.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    shared.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let samples = shared.samples.lock().await;
    let n503 = samples.iter().filter(|s| s.status == 503).count();
    let slowest_503 = samples.iter().filter(|s| s.status == 503).map(|s| s.ended - s.started).max().unwrap_or_default();
    eprintln!(
        "{} requests; PostgreSQL stopping at {down_at:?}, down at {down:?}, starting at {up_at:?}, up at {up:?}; full service again at {recovered_at:?}; {n503} answered 503 (slowest 503 after {slowest_503:?})",
        samples.len()
    );

    // Chains whose refresh request was in flight when the database stopped (started before it
    // was down, answered 503): their retries must work like any other.
    let interrupted: Vec<usize> = samples.iter().filter(|s| s.kind == Kind::Refresh && s.status == 503 && s.started < down).filter_map(|s| s.chain).collect();
    let interrupted_codes: Vec<usize> =
        samples.iter().filter(|s| s.kind == Kind::Code && s.status == 503 && s.started < down).filter_map(|s| s.chain).collect();
    eprintln!("chains with a rotation in flight when PostgreSQL stopped: {interrupted:?}; code workers with a redemption in flight: {interrupted_codes:?}");

    // Only success or 503 + Retry-After, at every moment: no 500, no hang, no invalid_grant.
    for s in samples.iter() {
        let expected = match s.kind {
            Kind::Authorize => matches!(s.status, 303 | 503),
            Kind::Logout => matches!(s.status, 400 | 503),
            _ => matches!(s.status, 200 | 503),
        };
        assert!(expected, "unexpected answer {s:?}");
        if s.status == 503 {
            assert!(s.retry_after, "a 503 carries Retry-After: {s:?}");
            if matches!(s.kind, Kind::ClientCredentials | Kind::Introspect | Kind::Refresh) {
                assert_eq!(s.error.as_deref(), Some("temporarily_unavailable"), "{s:?}");
            }
        }
    }
    assert!(samples.len() >= 100 && samples.len() <= 1000, "a bounded load of a few hundred requests: {}", samples.len());
    assert!(
        samples.iter().any(|s| s.status == 503 && s.started >= down && s.started < up_at),
        "the outage was seen: 503s for requests made while PostgreSQL was down: {:?}",
        samples.iter().filter(|s| s.ended >= down_at && s.started < up).collect::<Vec<_>>()
    );
    assert!(samples.iter().all(|s| s.ended >= down_at || s.status != 503), "no 503 before the outage");
    // Readiness follows the database: ready before, not ready while it is down, ready after.
    let ready = |s: &&Sample| s.kind == Kind::Ready;
    assert!(samples.iter().filter(ready).any(|s| s.ended < down_at && s.status == 200), "ready before the outage");
    assert!(
        // A probe asked while PostgreSQL was stopping may wait out the pool's 2 s acquire timeout
        // into the outage: any probe answered during it, and asked before the restart, counts.
        samples.iter().filter(ready).any(|s| s.ended >= down && s.started < up_at && s.status == 503 && s.retry_after),
        "not ready (503 + Retry-After) while PostgreSQL is down: {:?}",
        samples.iter().filter(ready).collect::<Vec<_>>()
    );
    assert!(samples.iter().filter(ready).any(|s| s.started > up && s.status == 200), "ready again after");
    assert!(slowest_503 < Duration::from_secs(10), "an unavailable database is answered quickly, not after a hang: {slowest_503:?}");
    assert!(samples.iter().all(|s| s.started < recovered_at || s.status != 503), "once recovered, service stays up");
    drop(samples);

    // Nothing issued before the outage was lost: every kept refresh token and every chain's
    // current token still rotates, at either instance.
    for (i, t) in kept.iter().enumerate() {
        let (status, body, _) = shared.cluster.token(&http, &urls[i % 2], &[("grant_type", "refresh_token"), ("refresh_token", t)]).await;
        assert_eq!(status, 200, "refresh token {i} issued before the outage: {body}");
    }
    for (i, t) in shared.chains.iter().enumerate() {
        let t = t.lock().await.clone();
        let (status, body, _) = shared.cluster.token(&http, &urls[i % 2], &[("grant_type", "refresh_token"), ("refresh_token", &t)]).await;
        assert_eq!(status, 200, "chain {i}: its last issued refresh token still works: {body}");
    }
    // A code whose redemption was answered 503 is still good for the retry.
    for (w, p) in shared.pending.iter().enumerate() {
        if let Some((code, verifier)) = p.lock().await.clone() {
            let (status, body, _) = shared
                .cluster
                .token(&http, &urls[w % 2], &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)])
                .await;
            assert_eq!(status, 200, "worker {w}: a code answered 503 is redeemed on retry: {body}");
        }
    }
    let (mut a, mut b) = (a, b);
    assert!(a.is_running() && b.is_running(), "both instances survived the outage");
    for i in [&a, &b] {
        assert!(!i.log().contains("panicked"), "instance {} logged a panic:\n{}", i.name, i.log());
    }
}
