//! What operators watch, counted in process (atomics, no locks on the request path) and
//! rendered in the Prometheus text exposition format (version 0.0.4) at `/metrics`: request
//! latency per endpoint and status class, tokens issued per grant and outcome, sign-in
//! outcomes, throttling, refresh-token reuse, store errors, and (at render time) the store's
//! pool and the signing keys' age. Every label takes values from a fixed set, so the number of
//! series is bounded whatever requests arrive.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The endpoints requests are counted under (an unknown path is `other`).
pub const ENDPOINTS: &[&str] = &[
    "authorize",
    "login",
    "consent",
    "token",
    "introspect",
    "revoke",
    "device_authorization",
    "device",
    "metadata",
    "userinfo",
    "logout",
    "jwks",
    "health",
    "metrics",
    "static",
    "home",
    "other",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The grants counted by name, and a slot for a request whose grant was not recognised.
const GRANTS: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "unknown",
];
/// Token endpoint outcomes: success, or the RFC 6749 §5.2 (and extensions') error code.
const TOKEN_OUTCOMES: &[&str] = &[
    "success",
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "invalid_dpop_proof",
    "use_dpop_nonce",
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "temporarily_unavailable",
    "server_error",
    "other",
];

/// How a sign-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    Success,
    InvalidCredentials,
    Throttled,
    Busy,
}

impl SignInOutcome {
    const ALL: [SignInOutcome; 4] = [Self::Success, Self::InvalidCredentials, Self::Throttled, Self::Busy];
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Throttled => "throttled",
            Self::Busy => "busy",
        }
    }
}

struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self { buckets: std::array::from_fn(|_| AtomicU64::new(0)), count: AtomicU64::new(0), sum_micros: AtomicU64::new(0) }
    }
    fn observe(&self, secs: f64) {
        // Non-cumulative per bucket; cumulated when rendered.
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }
}

fn counters(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// One instance's signals.
pub struct Metrics {
    requests: Vec<Histogram>,
    tokens: Vec<AtomicU64>,
    sign_ins: Vec<AtomicU64>,
    /// Sign-in refusals by the key that refused: username, address.
    throttled: [AtomicU64; 2],
    refresh_reuse: AtomicU64,
    store_errors: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: (0..ENDPOINTS.len() * STATUS_CLASSES.len()).map(|_| Histogram::new()).collect(),
            tokens: counters(GRANTS.len() * TOKEN_OUTCOMES.len()),
            sign_ins: counters(SignInOutcome::ALL.len()),
            throttled: [AtomicU64::new(0), AtomicU64::new(0)],
            refresh_reuse: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
        }
    }
}

/// Gauges read when rendering.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// (connections open, idle, maximum) of the store's pool, when it has one.
    pub pool: Option<(u32, u32, u32)>,
    /// Per algorithm, the age in seconds of the key that signs now.
    pub key_ages: Vec<(String, i64)>,
}

/// The endpoint label of a request path.
pub fn endpoint_of(path: &str) -> &'static str {
    use tessera_protocol::metadata::paths;
    match path {
        paths::AUTHORIZE => "authorize",
        paths::LOGIN => "login",
        paths::CONSENT => "consent",
        paths::TOKEN => "token",
        paths::INTROSPECT => "introspect",
        paths::REVOKE => "revoke",
        paths::DEVICE_AUTHORIZATION => "device_authorization",
        paths::DEVICE => "device",
        paths::OAUTH_AUTHORIZATION_SERVER | paths::OPENID_CONFIGURATION => "metadata",
        paths::USERINFO => "userinfo",
        paths::LOGOUT => "logout",
        paths::JWKS => "jwks",
        "/health/live" | "/health/ready" | "/healthz" => "health",
        "/metrics" => "metrics",
        "/" => "home",
        p if p.starts_with("/static/") => "static",
        _ => "other",
    }
}

fn index_of(list: &[&str], value: &str) -> usize {
    list.iter().position(|v| *v == value).unwrap_or(list.len() - 1)
}

impl Metrics {
    /// A request to `endpoint` ([`endpoint_of`]) answered `status` after `secs`.
    pub fn observe_request(&self, endpoint: &str, status: u16, secs: f64) {
        let e = index_of(ENDPOINTS, endpoint);
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.requests[e * STATUS_CLASSES.len() + class].observe(secs);
    }

    /// A token request of `grant` (its registered name, or anything for `unknown`) ended with
    /// `outcome`: `None` for tokens issued, or the error code.
    pub fn token_outcome(&self, grant: &str, outcome: Option<&str>) {
        let g = index_of(GRANTS, grant);
        let o = index_of(TOKEN_OUTCOMES, outcome.unwrap_or("success"));
        self.tokens[g * TOKEN_OUTCOMES.len() + o].fetch_add(1, Ordering::Relaxed);
    }

    pub fn sign_in(&self, outcome: SignInOutcome) {
        let i = SignInOutcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.sign_ins[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A sign-in refused by its username's (`true`) or its address's back-off.
    pub fn throttled(&self, by_username: bool) {
        self.throttled[usize::from(!by_username)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refresh_reuse(&self) {
        self.refresh_reuse.fetch_add(1, Ordering::Relaxed);
    }

    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let _ = self.render_into(&mut out, gauges);
        out
    }

    fn render_into(&self, out: &mut String, gauges: &Gauges) -> std::fmt::Result {
        writeln!(out, "# HELP tessera_http_request_duration_seconds Time to answer a request, by endpoint and status class.")?;
        writeln!(out, "# TYPE tessera_http_request_duration_seconds histogram")?;
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            for (c, class) in STATUS_CLASSES.iter().enumerate() {
                let h = &self.requests[e * STATUS_CLASSES.len() + c];
                let count = h.count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let labels = format!("endpoint=\"{endpoint}\",status=\"{class}\"");
                let mut cumulative = 0;
                for (i, le) in BUCKETS.iter().enumerate() {
                    cumulative += h.buckets[i].load(Ordering::Relaxed);
                    writeln!(out, "tessera_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}")?;
                }
                writeln!(out, "tessera_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}")?;
                writeln!(out, "tessera_http_request_duration_seconds_sum{{{labels}}} {}", h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)?;
                writeln!(out, "tessera_http_request_duration_seconds_count{{{labels}}} {count}")?;
            }
        }
        writeln!(out, "# HELP tessera_token_requests_total Token endpoint requests, by grant type and outcome (success or the error code).")?;
        writeln!(out, "# TYPE tessera_token_requests_total counter")?;
        for (g, grant) in GRANTS.iter().enumerate() {
            for (o, outcome) in TOKEN_OUTCOMES.iter().enumerate() {
                let n = self.tokens[g * TOKEN_OUTCOMES.len() + o].load(Ordering::Relaxed);
                if n > 0 || *outcome == "success" {
                    writeln!(out, "tessera_token_requests_total{{grant_type=\"{grant}\",outcome=\"{outcome}\"}} {n}")?;
                }
            }
        }
        writeln!(out, "# HELP tessera_sign_ins_total Password sign-ins, by outcome.")?;
        writeln!(out, "# TYPE tessera_sign_ins_total counter")?;
        for (i, o) in SignInOutcome::ALL.iter().enumerate() {
            writeln!(out, "tessera_sign_ins_total{{outcome=\"{}\"}} {}", o.as_str(), self.sign_ins[i].load(Ordering::Relaxed))?;
        }
        writeln!(out, "# HELP tessera_sign_in_throttled_total Sign-ins refused by a back-off, by the key that refused.")?;
        writeln!(out, "# TYPE tessera_sign_in_throttled_total counter")?;
        for (i, by) in ["username", "address"].iter().enumerate() {
            writeln!(out, "tessera_sign_in_throttled_total{{by=\"{by}\"}} {}", self.throttled[i].load(Ordering::Relaxed))?;
        }
        writeln!(out, "# HELP tessera_refresh_token_reuse_total Rotated refresh tokens presented again (their grant was revoked).")?;
        writeln!(out, "# TYPE tessera_refresh_token_reuse_total counter")?;
        writeln!(out, "tessera_refresh_token_reuse_total {}", self.refresh_reuse.load(Ordering::Relaxed))?;
        writeln!(out, "# HELP tessera_store_errors_total Requests that failed because the store did.")?;
        writeln!(out, "# TYPE tessera_store_errors_total counter")?;
        writeln!(out, "tessera_store_errors_total {}", self.store_errors.load(Ordering::Relaxed))?;
        if let Some((open, idle, max)) = gauges.pool {
            writeln!(out, "# HELP tessera_store_pool_connections Store connections, by state (max: the pool's bound).")?;
            writeln!(out, "# TYPE tessera_store_pool_connections gauge")?;
            writeln!(out, "tessera_store_pool_connections{{state=\"open\"}} {open}")?;
            writeln!(out, "tessera_store_pool_connections{{state=\"idle\"}} {idle}")?;
            writeln!(out, "tessera_store_pool_connections{{state=\"max\"}} {max}")?;
        }
        writeln!(out, "# HELP tessera_signing_key_age_seconds Age of the key that signs now, by algorithm.")?;
        writeln!(out, "# TYPE tessera_signing_key_age_seconds gauge")?;
        for (alg, age) in &gauges.key_ages {
            writeln!(out, "tessera_signing_key_age_seconds{{alg=\"{alg}\"}} {age}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_bounded() {
        let m = Metrics::default();
        m.observe_request("token", 200, 0.0007);
        m.observe_request("token", 200, 0.2);
        m.observe_request("token", 400, 30.0);
        m.observe_request("/../../etc", 599, 0.001);
        m.token_outcome("password", Some("made_up"));
        let text = m.render(&Gauges::default());
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{endpoint=\"token\",status=\"2xx\",le=\"0.0005\"} 0"));
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{endpoint=\"token\",status=\"2xx\",le=\"0.001\"} 1"));
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{endpoint=\"token\",status=\"2xx\",le=\"0.25\"} 2"));
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{endpoint=\"token\",status=\"4xx\",le=\"10\"} 0"), "30 s is past the last bucket");
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{endpoint=\"token\",status=\"4xx\",le=\"+Inf\"} 1"));
        assert!(text.contains("tessera_http_request_duration_seconds_count{endpoint=\"other\",status=\"5xx\"} 1"), "unknown values fall in fixed slots");
        assert!(text.contains("tessera_token_requests_total{grant_type=\"unknown\",outcome=\"other\"} 1"));
        assert!(!text.contains("etc") && !text.contains("made_up") && !text.contains("password\""));
    }
}
