//! `device-login`: sign a user in from a terminal with the OAuth 2.0 device authorization grant
//! (RFC 8628), as `gcloud auth login --no-browser` does: discover the endpoints (RFC 8414), ask
//! for a device code (§3.1), tell the user where to go and what to type (§3.3), poll the token
//! endpoint honouring the interval and `slow_down` (§3.4–3.5), and return the token response.
//!
//! The client is public (RFC 6749 §2.1): it authenticates with its `client_id` only, as a CLI
//! that ships to users cannot keep a secret.
#![forbid(unsafe_code)]

use serde_json::Value;
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

/// RFC 8628 §7.2: the grant type of the device access token request.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default."
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// RFC 8628 §3.5 slow_down: "the interval MUST be increased by 5 seconds for this and all
/// subsequent requests."
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest wait between polls after transport errors (exponential backoff, RFC 8628 §3.5).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a sign-in did not produce tokens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The authorization server answered with an OAuth error (RFC 6749 §5.2, RFC 8628 §3.5):
    /// `access_denied`, `expired_token`, `invalid_client`, …
    #[error("{error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth { error: String, description: Option<String> },
    /// The issuer's metadata is missing, unreachable or inconsistent (RFC 8414 §3.3).
    #[error("discovery failed: {0}")]
    Discovery(String),
    /// A response that does not follow the protocol.
    #[error("unexpected response: {0}")]
    Protocol(String),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The OAuth error code, when the server sent one.
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            Self::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The endpoints this flow needs, from the RFC 8414 metadata.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
}

/// RFC 8628 §3.2 device authorization response.
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: Duration,
    pub interval: Duration,
}

fn http_client() -> Result<reqwest::Client, Error> {
    // RFC 6749 §3.2 token endpoint answers are never redirects; a bounded wait per request.
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(30)).build()?)
}

/// RFC 8414 §2: the issuer is https, except on loopback (a local development server).
fn check_issuer(issuer: &str) -> Result<url::Url, Error> {
    let url = url::Url::parse(issuer).map_err(|e| Error::Discovery(format!("the issuer {issuer:?} is not a URL: {e}")))?;
    let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
        || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(Error::Discovery(format!("the issuer must use https (http only on loopback): {issuer}"))),
    }
}

fn string_member(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

/// RFC 8414 §3: fetch `/.well-known/oauth-authorization-server` and take the device
/// authorization and token endpoints. §3.3: the `issuer` in the document "MUST be identical to
/// the issuer identifier value into which the well-known URI string was inserted".
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, Error> {
    let issuer = issuer.trim_end_matches('/');
    check_issuer(issuer)?;
    let url = format!("{issuer}/.well-known/oauth-authorization-server");
    let res = http.get(&url).send().await.map_err(|e| Error::Discovery(format!("{url}: {e}")))?;
    if !res.status().is_success() {
        return Err(Error::Discovery(format!("{url} answered {}", res.status())));
    }
    let meta: Value = res.json().await.map_err(|e| Error::Discovery(format!("{url}: not JSON: {e}")))?;
    if meta.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(Error::Discovery(format!("the metadata names issuer {} instead of {issuer}", meta.get("issuer").unwrap_or(&Value::Null))));
    }
    if let Some(grants) = meta.get("grant_types_supported").and_then(Value::as_array) {
        if !grants.iter().any(|g| g.as_str() == Some(DEVICE_GRANT)) {
            return Err(Error::Discovery(format!("{issuer} does not support the device authorization grant")));
        }
    }
    let get = |k: &str| string_member(&meta, k).ok_or_else(|| Error::Discovery(format!("the metadata has no {k}")));
    Ok(Endpoints { device_authorization_endpoint: get("device_authorization_endpoint")?, token_endpoint: get("token_endpoint")? })
}

/// An OAuth error body (RFC 6749 §5.2), or a protocol error describing what came instead.
async fn error_of(res: reqwest::Response) -> Error {
    let status = res.status();
    match res.json::<Value>().await {
        Ok(v) => match string_member(&v, "error") {
            Some(error) => Error::OAuth { error, description: string_member(&v, "error_description") },
            None => Error::Protocol(format!("{status} without an error code: {v}")),
        },
        Err(_) => Error::Protocol(format!("{status} with a body that is not JSON")),
    }
}

/// RFC 8628 §3.1: ask for a device code and a user code.
pub async fn request_device_code(http: &reqwest::Client, endpoints: &Endpoints, client_id: &str, scope: Option<&str>) -> Result<DeviceAuthorization, Error> {
    let mut form = vec![("client_id", client_id)];
    if let Some(s) = scope.filter(|s| !s.trim().is_empty()) {
        form.push(("scope", s));
    }
    let res = http.post(&endpoints.device_authorization_endpoint).form(&form).send().await?;
    if !res.status().is_success() {
        return Err(error_of(res).await);
    }
    let v: Value = res.json().await?;
    let need = |k: &str| string_member(&v, k).ok_or_else(|| Error::Protocol(format!("the device authorization response has no {k}")));
    let secs = |k: &str| v.get(k).and_then(Value::as_u64).map(Duration::from_secs);
    Ok(DeviceAuthorization {
        device_code: need("device_code")?,
        user_code: need("user_code")?,
        verification_uri: need("verification_uri")?,
        verification_uri_complete: string_member(&v, "verification_uri_complete"),
        expires_in: secs("expires_in").ok_or_else(|| Error::Protocol("the device authorization response has no expires_in".into()))?,
        interval: secs("interval").filter(|d| !d.is_zero()).unwrap_or(DEFAULT_INTERVAL),
    })
}

/// Sign a user in: discover, request a code, print the instructions to `out`, poll until the
/// user answers. Returns the token response (RFC 6749 §5.1) as JSON.
pub async fn run(issuer: &str, client_id: &str, scope: Option<&str>, out: impl Write) -> Result<Value, Error> {
    run_with(issuer, client_id, scope, out, tokio::time::sleep).await
}

/// [`run`] with the wait between polls supplied by the caller (tests move a manual clock
/// instead of sleeping).
pub async fn run_with<S, F>(issuer: &str, client_id: &str, scope: Option<&str>, mut out: impl Write, mut sleep: S) -> Result<Value, Error>
where
    S: FnMut(Duration) -> F,
    F: Future<Output = ()>,
{
    let http = http_client()?;
    let endpoints = discover(&http, issuer).await?;
    let auth = request_device_code(&http, &endpoints, client_id, scope).await?;
    // RFC 8628 §3.3: show the user where to go and the code to type.
    writeln!(out, "Open {} and enter {}", auth.verification_uri, auth.user_code)?;
    if let Some(complete) = &auth.verification_uri_complete {
        // §3.3.1: the complete URI carries the code (for a link or a QR code); the user still
        // confirms it.
        writeln!(out, "or open {complete}")?;
    }
    writeln!(out, "Waiting for approval (the code expires in {} minutes)…", auth.expires_in.as_secs().div_ceil(60))?;
    out.flush()?;
    poll(&http, &endpoints, client_id, &auth, &mut sleep).await
}

/// RFC 8628 §3.4–3.5: poll the token endpoint every `interval` until tokens or a final error.
pub async fn poll<S, F>(http: &reqwest::Client, endpoints: &Endpoints, client_id: &str, auth: &DeviceAuthorization, sleep: &mut S) -> Result<Value, Error>
where
    S: FnMut(Duration) -> F,
    F: Future<Output = ()>,
{
    let deadline = Instant::now() + auth.expires_in;
    let mut interval = auth.interval;
    let mut backoff = Duration::ZERO;
    loop {
        // §3.5: "the client SHOULD wait at least [interval] seconds between polling requests"
        // (after the user has had a chance to act, so the first wait comes before the first poll).
        sleep(interval + backoff).await;
        if Instant::now() >= deadline {
            return Err(Error::OAuth { error: "expired_token".into(), description: Some("the code expired before it was approved".into()) });
        }
        let form = [("grant_type", DEVICE_GRANT), ("device_code", auth.device_code.as_str()), ("client_id", client_id)];
        let res = match http.post(&endpoints.token_endpoint).form(&form).send().await {
            Ok(r) => r,
            // §3.5: on a connection timeout, back off exponentially (bounded).
            Err(e) if e.is_timeout() || e.is_connect() => {
                backoff = (backoff * 2).max(interval).min(MAX_BACKOFF);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        backoff = Duration::ZERO;
        if res.status().is_success() {
            let tokens: Value = res.json().await?;
            if string_member(&tokens, "access_token").is_none() {
                return Err(Error::Protocol("the token response has no access_token".into()));
            }
            return Ok(tokens);
        }
        match error_of(res).await {
            Error::OAuth { error, .. } if error == "authorization_pending" => {}
            Error::OAuth { error, .. } if error == "slow_down" => interval += SLOW_DOWN_STEP,
            e => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8414 §2: https issuers; http only on loopback.
    #[test]
    fn rfc8414_2_issuer_scheme() {
        for ok in ["https://auth.example", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"] {
            assert!(check_issuer(ok).is_ok(), "{ok}");
        }
        for bad in ["http://auth.example", "ftp://127.0.0.1", "not a url"] {
            assert!(matches!(check_issuer(bad), Err(Error::Discovery(_))), "{bad}");
        }
    }

    /// RFC 6749 §5.2 errors display as `code: description`.
    #[test]
    fn rfc6749_5_2_error_display() {
        let e = Error::OAuth { error: "access_denied".into(), description: Some("the user denied the request".into()) };
        assert_eq!(e.to_string(), "access_denied: the user denied the request");
        assert_eq!(Error::OAuth { error: "expired_token".into(), description: None }.to_string(), "expired_token");
    }
}
