//! The load generator: a fixed number of connections, each a virtual user running one
//! scenario's operation in a closed loop for a bounded time (and a bounded count), with a
//! warm-up whose operations are not recorded. Latency is per operation (an operation of a
//! multi-request scenario — the code flow, a sign-in — spans all of its requests).

use crate::http::{Client, Resp, form, short};
use crate::procfs;
use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    ClientCredentials,
    Introspection,
    Refresh,
    CodeFlow,
    PasswordSignIn,
    Jwks,
    Metadata,
    Guard,
    RefreshDpop,
    GuardDpop,
}

impl Scenario {
    /// Whether the operation goes to the tessera-guard resource server.
    pub fn at_resource_server(self) -> bool {
        matches!(self, Self::Guard | Self::GuardDpop)
    }
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Self::ClientCredentials,
        Self::Introspection,
        Self::Refresh,
        Self::RefreshDpop,
        Self::CodeFlow,
        Self::PasswordSignIn,
        Self::Jwks,
        Self::Metadata,
        Self::Guard,
        Self::GuardDpop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::Introspection => "introspection",
            Self::Refresh => "refresh",
            Self::RefreshDpop => "refresh_dpop",
            Self::GuardDpop => "guard_dpop",
            Self::CodeFlow => "code_flow",
            Self::PasswordSignIn => "password_sign_in",
            Self::Jwks => "jwks",
            Self::Metadata => "metadata",
            Self::Guard => "guard",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s).ok_or_else(|| anyhow!("unknown scenario {s:?}; one of {}", Self::ALL.map(|x| x.name()).join(", ")))
    }

    /// What one operation is, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ClientCredentials => "POST /token grant_type=client_credentials (Basic auth) → an ES256 JWT access token",
            Self::Introspection => "POST /introspect of a live access token (Basic auth)",
            Self::Refresh => "POST /token grant_type=refresh_token → new access token + rotated refresh token",
            Self::RefreshDpop => "the same with a fresh ES256 DPoP proof (RFC 9449) → a DPoP-bound access token",
            Self::GuardDpop => "the guard request with a DPoP-bound token and a fresh ES256 proof per request (RFC 9449 §7)",
            Self::CodeFlow => "GET /authorize (session cookie, consent remembered) → 303 with code; POST /token (code + PKCE verifier)",
            Self::PasswordSignIn => "GET /authorize → 303; GET /login; POST /login (Argon2id) → 303",
            Self::Jwks => "GET /jwks.json",
            Self::Metadata => "GET /.well-known/openid-configuration",
            Self::Guard => "GET on an axum route behind tessera-guard (Bearer ES256 JWT, keys cached)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Tessera,
    Peer,
}

/// A server under test and what was registered on it.
pub struct Target {
    pub kind: Kind,
    pub name: &'static str,
    pub addr: SocketAddr,
    pub issuer: String,
    /// The client_credentials client (Basic header).
    pub cc_auth: String,
    /// The web client: code flow and refresh.
    pub web_id: String,
    pub web_auth: String,
    pub redirect_uri: String,
    pub resource: String,
    pub scope: String,
    /// The user's name; connection `i` signs in to Tessera as `USERNAME-i` (`Target::for_connection`).
    pub username: String,
    pub password: String,
    /// The tessera-guard resource server in front of which tokens are validated.
    pub resource_server: Option<SocketAddr>,
}

impl Target {
    /// This target as connection `i` sees it: on Tessera, its own user.
    fn for_connection(&self, i: usize) -> Self {
        let username = if self.kind == Kind::Tessera { format!("{}-{i}", self.username) } else { self.username.clone() };
        Self {
            username,
            issuer: self.issuer.clone(),
            cc_auth: self.cc_auth.clone(),
            web_id: self.web_id.clone(),
            web_auth: self.web_auth.clone(),
            redirect_uri: self.redirect_uri.clone(),
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            password: self.password.clone(),
            ..*self
        }
    }

    pub fn supports(&self, s: Scenario) -> bool {
        match self.kind {
            Kind::Tessera => !s.at_resource_server() || self.resource_server.is_some(),
            // oidc-provider leaves sign-in to the application, and is no resource-server library.
            Kind::Peer => !matches!(s, Scenario::PasswordSignIn | Scenario::Guard | Scenario::GuardDpop),
        }
    }

    fn authorize_path(&self, state: &str, challenge: &str) -> String {
        let q = form(&[
            ("response_type", "code"),
            ("client_id", &self.web_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ]);
        format!("/authorize?{q}")
    }

    /// A path on this server from a Location header (absolute or not).
    fn local(&self, location: &str) -> String {
        location.strip_prefix(&self.issuer).unwrap_or(location).to_string()
    }
}

/// RFC 7636 §4.1–4.2: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of a hidden input in a page.
fn hidden(html: &str, name: &str) -> anyhow::Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).ok_or_else(|| anyhow!("no {name} field in the page"))? + marker.len();
    let end = html[start..].find('"').ok_or_else(|| anyhow!("malformed {name} field"))? + start;
    Ok(html[start..end].to_string())
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A browser (the client's cookie jar) goes from the authorization request to the redirect back
/// to the client, signing in and consenting on the way when asked; returns the code.
pub async fn browser_code(c: &mut Client, t: &Target, challenge: &str) -> anyhow::Result<String> {
    let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>());
    let mut path = t.authorize_path(&state, challenge);
    for _ in 0..12 {
        let res = c.get(&path, None).await?;
        let res = match res.status {
            200 if path.starts_with("/login") => {
                let html = res.text();
                let body =
                    form(&[("csrf", &hidden(html, "csrf")?), ("request", &hidden(html, "request")?), ("username", &t.username), ("password", &t.password)]);
                c.post_form("/login", None, &body).await?
            }
            200 if path.starts_with("/consent") => {
                let html = res.text();
                let body = form(&[("csrf", &hidden(html, "csrf")?), ("request", &hidden(html, "request")?), ("decision", "allow")]);
                c.post_form("/consent", None, &body).await?
            }
            _ => res,
        };
        if !matches!(res.status, 302 | 303) {
            bail!("GET {}: HTTP {}: {}", short(&path), res.status, short(res.text()));
        }
        let loc = res.location()?;
        if loc.starts_with(&t.redirect_uri) {
            if query_param(loc, "state").as_deref() != Some(state.as_str()) {
                bail!("redirect without our state: {loc}");
            }
            return query_param(loc, "code").ok_or_else(|| anyhow!("redirect without a code: {loc}"));
        }
        path = t.local(loc);
    }
    bail!("too many redirects")
}

/// Redeem a code (RFC 6749 §4.1.3, PKCE verifier) with the web client.
async fn redeem(c: &mut Client, t: &Target, code: &str, verifier: &str) -> anyhow::Result<Resp> {
    let body = form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &t.redirect_uri), ("code_verifier", verifier)]);
    c.post_form("/token", Some(&t.web_auth), &body).await?.expect(200)
}

/// A client_credentials token for the resource. `jwt: false` asks the peer for its native
/// (opaque) format — the only one it can introspect.
pub async fn cc_token(c: &mut Client, t: &Target, jwt: bool) -> anyhow::Result<String> {
    let mut pairs = vec![("grant_type", "client_credentials"), ("scope", t.scope.as_str())];
    if jwt || t.kind == Kind::Tessera {
        pairs.push(("resource", t.resource.as_str()));
    }
    c.post_form("/token", Some(&t.cc_auth), &form(&pairs)).await?.expect(200)?.json_str("access_token")
}

/// A virtual user's state between operations.
enum State {
    None,
    /// A prepared request body (client credentials, introspection).
    Body(String),
    /// The current refresh token of this user's grant.
    Refresh(String),
    /// `Authorization: Bearer …` for the resource server.
    Bearer(String),
    /// A DPoP-bound access token, its key, and the resource's URL.
    Dpop(String, Box<tessera_dpop::testing::ProofSigner>, String),
    /// The current refresh token and the user's DPoP key.
    DpopRefresh(String, Box<tessera_dpop::testing::ProofSigner>),
}

async fn setup(s: Scenario, c: &mut Client, t: &Target) -> anyhow::Result<State> {
    Ok(match s {
        Scenario::ClientCredentials => State::Body(form(&[("grant_type", "client_credentials"), ("scope", &t.scope), ("resource", &t.resource)])),
        Scenario::Introspection => {
            let token = cc_token(c, t, false).await?;
            State::Body(form(&[("token", &token), ("token_type_hint", "access_token")]))
        }
        Scenario::Refresh => State::Refresh(signed_in_refresh_token(c, t).await?),
        Scenario::RefreshDpop => State::DpopRefresh(signed_in_refresh_token(c, t).await?, Box::new(tessera_dpop::testing::ProofSigner::es256())),
        Scenario::CodeFlow => {
            // Sign in once (the session cookie stays in the jar) and consent once per user+client.
            c.use_jar = true;
            let (verifier, challenge) = pkce();
            let code = browser_code(c, t, &challenge).await?;
            redeem(c, t, &code, &verifier).await?;
            State::None
        }
        Scenario::PasswordSignIn => {
            c.use_jar = true;
            State::None
        }
        Scenario::Jwks | Scenario::Metadata => State::None,
        Scenario::Guard => State::Bearer(format!("Bearer {}", cc_token(c, t, true).await?)),
        Scenario::GuardDpop => {
            let key = tessera_dpop::testing::ProofSigner::es256();
            c.dpop = Some(key.sign("POST", &format!("{}/token", t.issuer), unix_now(), "setup", None, None));
            let token = cc_token(c, t, true).await?;
            let url = format!("http://{}/resource", t.resource_server.ok_or_else(|| anyhow!("no resource server"))?);
            State::Dpop(token, Box::new(key), url)
        }
    })
}

async fn signed_in_refresh_token(c: &mut Client, t: &Target) -> anyhow::Result<String> {
    c.use_jar = true;
    let (verifier, challenge) = pkce();
    let code = browser_code(c, t, &challenge).await?;
    let rt = redeem(c, t, &code, &verifier).await?.json_str("refresh_token")?;
    c.use_jar = false;
    c.jar.clear();
    Ok(rt)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// One operation. `Ok` only for the expected answer.
async fn op(s: Scenario, c: &mut Client, t: &Target, st: &mut State) -> anyhow::Result<()> {
    match (s, st) {
        (Scenario::ClientCredentials, State::Body(b)) => {
            let r = c.post_form("/token", Some(&t.cc_auth), b).await?.expect(200)?;
            if !r.text().contains("\"access_token\"") {
                bail!("no access_token: {}", short(r.text()));
            }
        }
        (Scenario::Introspection, State::Body(b)) => {
            let r = c.post_form("/introspect", Some(&t.cc_auth), b).await?.expect(200)?;
            if !r.text().contains("\"active\":true") {
                bail!("not active: {}", short(r.text()));
            }
        }
        (Scenario::Refresh, State::Refresh(rt)) => {
            let body = form(&[("grant_type", "refresh_token"), ("refresh_token", rt)]);
            match c.post_form("/token", Some(&t.web_auth), &body).await.and_then(|r| r.expect(200)).and_then(|r| r.json_str("refresh_token")) {
                Ok(next) => *rt = next,
                Err(e) => {
                    // The chain is broken: start a new grant for this user (not timed as an op).
                    *rt = signed_in_refresh_token(c, t).await.context("new grant after a failed refresh")?;
                    return Err(e);
                }
            }
        }
        (Scenario::RefreshDpop, State::DpopRefresh(rt, key)) => {
            let jti = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>());
            c.dpop = Some(key.sign("POST", &format!("{}/token", t.issuer), unix_now(), &jti, None, None));
            let body = form(&[("grant_type", "refresh_token"), ("refresh_token", rt)]);
            let answer = c.post_form("/token", Some(&t.web_auth), &body).await.and_then(|r| r.expect(200));
            match answer.and_then(|r| {
                if r.text().to_ascii_lowercase().contains("\"token_type\":\"dpop\"") {
                    r.json_str("refresh_token")
                } else {
                    Err(anyhow!("not DPoP-bound: {}", short(r.text())))
                }
            }) {
                Ok(next) => *rt = next,
                Err(e) => {
                    *rt = signed_in_refresh_token(c, t).await.context("new grant after a failed refresh")?;
                    return Err(e);
                }
            }
        }
        (Scenario::CodeFlow, State::None) => {
            let (verifier, challenge) = pkce();
            let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>());
            let r = c.get(&t.authorize_path(&state, &challenge), None).await?;
            if !matches!(r.status, 302 | 303) {
                bail!("authorize: HTTP {}: {}", r.status, short(r.text()));
            }
            let loc = r.location()?;
            if !loc.starts_with(&t.redirect_uri) {
                bail!("authorize did not answer straight away: {loc}");
            }
            let code = query_param(loc, "code").ok_or_else(|| anyhow!("no code: {loc}"))?;
            redeem(c, t, &code, &verifier).await?;
        }
        (Scenario::PasswordSignIn, State::None) => {
            c.jar.clear();
            let (_, challenge) = pkce();
            let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>());
            let r = c.get(&t.authorize_path(&state, &challenge), None).await?;
            let login = t.local(r.location()?);
            if !login.starts_with("/login") {
                bail!("authorize did not ask for a sign-in: {login}");
            }
            let page = c.get(&login, None).await?.expect(200)?;
            let html = page.text();
            let body = form(&[("csrf", &hidden(html, "csrf")?), ("request", &hidden(html, "request")?), ("username", &t.username), ("password", &t.password)]);
            let r = c.post_form("/login", None, &body).await?;
            if r.status != 303 {
                bail!("sign-in: HTTP {}: {}", r.status, short(r.text()));
            }
        }
        (Scenario::Jwks, _) => {
            c.get("/jwks.json", None).await?.expect(200)?;
        }
        (Scenario::Metadata, _) => {
            c.get("/.well-known/openid-configuration", None).await?.expect(200)?;
        }
        (Scenario::Guard, State::Bearer(b)) => {
            c.get("/resource", Some(b)).await?.expect(200)?;
        }
        (Scenario::GuardDpop, State::Dpop(token, key, url)) => {
            let jti = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>());
            c.dpop = Some(key.sign("GET", url, unix_now(), &jti, Some(token), None));
            c.get("/resource", Some(&format!("DPoP {token}"))).await?.expect(200)?;
        }
        _ => bail!("scenario state mismatch"),
    }
    Ok(())
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub ops: u64,
    pub errors: u64,
    pub secs: f64,
    /// Operation latencies in microseconds, sorted.
    pub lat_us: Vec<u32>,
    pub cpu_secs: f64,
    /// The load generator's own CPU seconds over the measured window (it shares the cores).
    pub generator_cpu_secs: f64,
    pub peak_rss_kb: u64,
    pub first_error: Option<String>,
}

impl RunResult {
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 { self.ops as f64 / self.secs } else { 0.0 }
    }
    pub fn pct_ms(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        let i = ((self.lat_us.len() as f64 * p / 100.0).ceil() as usize).clamp(1, self.lat_us.len()) - 1;
        f64::from(self.lat_us[i]) / 1000.0
    }
    pub fn max_ms(&self) -> f64 {
        self.lat_us.last().map(|&v| f64::from(v) / 1000.0).unwrap_or(0.0)
    }
    /// Server CPU seconds per 1,000 operations.
    pub fn cpu_per_1k(&self) -> f64 {
        self.per_1k(self.cpu_secs)
    }
    /// Load-generator CPU seconds per 1,000 operations.
    pub fn generator_cpu_per_1k(&self) -> f64 {
        self.per_1k(self.generator_cpu_secs)
    }
    fn per_1k(&self, secs: f64) -> f64 {
        if self.ops > 0 { secs * 1000.0 / self.ops as f64 } else { 0.0 }
    }
}

pub struct RunSpec {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// A hard bound on recorded operations per run.
    pub max_ops: u64,
}

/// Run `s` against `t` with `spec`; `server_pid` is the process whose CPU and memory are read.
pub async fn run(s: Scenario, t: Arc<Target>, spec: &RunSpec, server_pid: u32) -> anyhow::Result<RunResult> {
    let addr = if s.at_resource_server() { t.resource_server.ok_or_else(|| anyhow!("no resource server"))? } else { t.addr };
    let barrier = Arc::new(tokio::sync::Barrier::new(spec.connections + 1));
    let recorded = Arc::new(AtomicU64::new(0));
    let (warmup, duration, max_ops) = (spec.warmup, spec.duration, spec.max_ops);
    let mut tasks = Vec::new();
    for i in 0..spec.connections {
        let (t, barrier, recorded) = (Arc::new(t.for_connection(i)), barrier.clone(), recorded.clone());
        // A setup client talks to the authorization server; the measured one to `addr`.
        tasks.push(tokio::spawn(async move {
            let prepared = async {
                let mut setup_client = Client::new(t.addr)?;
                let st = setup(s, &mut setup_client, &t).await?;
                let mut c = if addr == t.addr { setup_client } else { Client::new(addr)? };
                if s.at_resource_server() {
                    c.get("/healthz", None).await?;
                }
                Ok::<_, anyhow::Error>((c, st))
            }
            .await;
            barrier.wait().await;
            let (mut c, mut st) = prepared?;
            let start = Instant::now();
            let (warm_end, end) = (start + warmup, start + warmup + duration);
            let mut lat = Vec::with_capacity(1 << 14);
            let (mut ops, mut errors, mut first_error) = (0u64, 0u64, None);
            loop {
                let t0 = Instant::now();
                if t0 >= end || recorded.load(Ordering::Relaxed) >= max_ops {
                    break;
                }
                let r = op(s, &mut c, &t, &mut st).await;
                let counted = t0 >= warm_end;
                match r {
                    Ok(()) if counted => {
                        lat.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                        ops += 1;
                        recorded.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        if counted {
                            errors += 1;
                        }
                        if first_error.is_none() {
                            first_error = Some(format!("{e:#}"));
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            Ok::<_, anyhow::Error>((lat, ops, errors, first_error))
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let (warm_end, end) = (start + warmup, start + warmup + duration);
    // Server-side cost (and the generator's own CPU) over the measured window, sampled from
    // another thread.
    let sampler = std::thread::spawn(move || {
        std::thread::sleep(warm_end.saturating_duration_since(Instant::now()));
        let own = std::process::id();
        let (cpu0, gen0) = (procfs::cpu_secs(server_pid).unwrap_or(0.0), procfs::cpu_secs(own).unwrap_or(0.0));
        let mut peak = procfs::rss_kb(server_pid).unwrap_or(0);
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
            peak = peak.max(procfs::rss_kb(server_pid).unwrap_or(0));
        }
        (procfs::cpu_secs(server_pid).unwrap_or(0.0) - cpu0, procfs::cpu_secs(own).unwrap_or(0.0) - gen0, peak)
    });
    let mut out = RunResult::default();
    for task in tasks {
        let (lat, ops, errors, first_error) = task.await??;
        out.lat_us.extend(lat);
        out.ops += ops;
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
    }
    let (cpu, generator_cpu, peak) = sampler.join().map_err(|_| anyhow!("sampler thread failed"))?;
    // The measured window; a run stopped early by the count bound is timed to its real end.
    out.secs = if recorded.load(Ordering::Relaxed) >= max_ops { warm_end.elapsed().min(duration) } else { duration }.as_secs_f64().max(1e-3);
    out.cpu_secs = cpu;
    out.generator_cpu_secs = generator_cpu;
    out.peak_rss_kb = peak;
    out.lat_us.sort_unstable();
    Ok(out)
}
