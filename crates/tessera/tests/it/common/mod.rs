//! Shared test fixtures: a real Tessera on 127.0.0.1:0 over a real SQLite file, a scripted
//! browser (reqwest with a cookie jar, redirects not followed), PKCE pairs and JWT checks.
#![allow(dead_code)]

pub mod oauth_http;
pub mod smtp;
pub mod stack;

/// Headless Chromium over WebDriver (CI tier).
#[cfg(feature = "ci-tier")]
pub mod chromium;
/// `tessera serve` processes sharing one PostgreSQL database (CI tier).
#[cfg(feature = "ci-tier")]
pub mod cluster;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use tessera_jose::Alg;
use tessera_jose::kek::{Kek, KeyEncryption};
use tessera_server::service::admin::{self, NewClient, NewUser};
use tessera_server::{Config, ManualClock, Tessera};
use tessera_storage::prelude::*;
use tessera_storage::{KeyRecord, UserRecord};
use tessera_storage_sqlite::SqliteStore;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";
pub const API: &str = "https://notes.example";
/// The device authorization grant's `grant_type` (RFC 8628 §3.4).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub struct TestServer {
    pub url: String,
    pub svc: Arc<Tessera>,
    pub clock: Arc<ManualClock>,
    pub db_url: String,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with the Notes API (notes.read, notes.write, notes.delete) and user alice.
    pub async fn start() -> Self {
        Self::start_serving(ServeOptions::default(), |_| {}).await
    }

    pub async fn client(&self, req: NewClient) -> admin::CreatedClient {
        admin::create_client(&*self.svc.store, req, self.clock.now_secs()).await.unwrap()
    }

    /// A confidential client (client_secret_basic) allowed every notes scope.
    pub async fn confidential_client(&self, redirect_uri: &str) -> (String, String) {
        let c = self
            .client(NewClient {
                name: "Notes Client".into(),
                redirect_uris: vec![redirect_uri.into()],
                scope: "notes.read notes.write notes.delete".into(),
                ..Default::default()
            })
            .await;
        (c.client.client_id, c.client_secret.unwrap())
    }

    /// A public client for the device grant (and refresh), like a CLI or a TV app (RFC 8628).
    pub async fn device_client(&self) -> String {
        let c = self
            .client(NewClient {
                name: "Notes CLI".into(),
                scope: "notes.read notes.write".into(),
                grant_types: vec![DEVICE_GRANT.into(), "refresh_token".into()],
                public: true,
                ..Default::default()
            })
            .await;
        c.client.client_id
    }

    /// A public client (PKCE, no secret).
    pub async fn public_client(&self, redirect_uri: &str) -> String {
        let c = self
            .client(NewClient {
                name: "Notes Mobile".into(),
                redirect_uris: vec![redirect_uri.into()],
                scope: "notes.read notes.write notes.delete".into(),
                public: true,
                ..Default::default()
            })
            .await;
        c.client.client_id
    }

    pub fn authorize_url(&self, client_id: &str, redirect_uri: &str, scope: &str, state: &str, challenge: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", state);
        if let Some(c) = challenge {
            q.append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
        }
        format!("{}/authorize?{}", self.url, q.finish())
    }
}

/// Every test using the machine's PostgreSQL holds this shared ([`postgres`]), and
/// `postgres_restart`, which stops and starts it, holds it alone ([`postgres_alone`]): in one test
/// binary they would otherwise overlap.
#[cfg(feature = "ci-tier")]
static POSTGRES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A test's hold on the machine's PostgreSQL, for as long as it is kept.
#[cfg(feature = "ci-tier")]
pub enum PostgresUse {
    Shared(tokio::sync::RwLockReadGuard<'static, ()>),
    Alone(tokio::sync::RwLockWriteGuard<'static, ()>),
}

/// Use PostgreSQL alongside other tests (it stays up meanwhile).
#[cfg(feature = "ci-tier")]
pub async fn postgres() -> PostgresUse {
    PostgresUse::Shared(POSTGRES.read().await)
}

/// Use PostgreSQL with no other test using it (to stop it).
#[cfg(feature = "ci-tier")]
pub async fn postgres_alone() -> PostgresUse {
    PostgresUse::Alone(POSTGRES.write().await)
}

/// What every [`TestServer`] of the process shares instead of making its own: the RSA key
/// generation and the Argon2 hash are most of a server start's CPU. Tests of key generation
/// (security::keys, `tessera serve`) and of hashing (set-password) still make their own.
pub struct Seeds {
    /// The key-encryption key the seeded signing keys are sealed under (the servers' KEK).
    pub kek: Arc<KeyEncryption>,
    /// One signing key per algorithm: (alg, kid, PKCS#8 sealed under `kek`).
    pub keys: Vec<(Alg, String, Vec<u8>)>,
    /// [`PASSWORD`] hashed as `tessera user create` hashes it (Argon2id, the product's parameters).
    pub password_hash: String,
}

/// The process's [`Seeds`], made on first use.
pub fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let kek = Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap();
        let kek = Arc::new(KeyEncryption::new(kek, vec![]));
        let keys = Alg::ALL
            .iter()
            .map(|&alg| {
                let der = tessera_jose::generate(alg).unwrap();
                let kid = tessera_jose::SigningKey::from_pkcs8(alg, &der).unwrap().kid().to_string();
                let sealed = kek.seal(&kid, &der).unwrap();
                (alg, kid, sealed)
            })
            .collect();
        let password_hash = tessera_server::service::authn::hash_password(PASSWORD).unwrap();
        Seeds { kek, keys, password_hash }
    })
}

/// A user whose password is [`PASSWORD`], created with the process's hash of it (`admin::create_user`
/// without the Argon2 run).
pub async fn create_user(store: &dyn Store, user: NewUser, now: i64) -> UserRecord {
    admin::create_user_with_hash(store, user, seeds().password_hash.clone(), now).await.unwrap()
}

trait NowSecs {
    fn now_secs(&self) -> i64;
}
impl NowSecs for ManualClock {
    fn now_secs(&self) -> i64 {
        tessera_server::Clock::now(self)
    }
}

/// Run the real `tessera` binary with `args` (in `cwd` when given, without an inherited
/// `TESSERA_DATABASE_URL`), `stdin` fed to it; returns (exit ok, stdout, stderr).
pub fn run_tessera(cwd: Option<&std::path::Path>, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args).env_remove("TESSERA_DATABASE_URL").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// (verifier, S256 challenge), RFC 7636 §4.1–4.2.
pub fn pkce_pair() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A scripted browser: a cookie jar, redirects handled by the test.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").expect("a Location header").to_str().unwrap().to_string()
}

/// Query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: base.to_string() }
    }

    /// A browser that sends `User-Agent: user_agent` with every request (reqwest sends none).
    pub fn with_user_agent(base: &str, user_agent: &str) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).user_agent(user_agent).build().unwrap();
        Self { http, base: base.to_string() }
    }

    fn abs(&self, loc: &str) -> String {
        if loc.starts_with('/') { format!("{}{loc}", self.base) } else { loc.to_string() }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(self.abs(url)).send().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.abs(path)).form(form).send().await.unwrap()
    }

    /// Open the authorization URL and expect to land on the sign-in page; returns its HTML.
    pub async fn open_login(&self, authorize_url: &str) -> (String, String) {
        let res = self.get(authorize_url).await;
        assert_eq!(res.status(), 303, "authorize should redirect to sign-in");
        let login = location(&res);
        assert!(login.starts_with("/login?request="), "{login}");
        let res = self.get(&login).await;
        assert_eq!(res.status(), 200);
        (login, res.text().await.unwrap())
    }

    /// Submit the sign-in form found in `html`.
    pub async fn sign_in(&self, html: &str, username: &str, password: &str) -> reqwest::Response {
        let csrf = hidden(html, "csrf").expect("csrf field");
        let request = hidden(html, "request").expect("request field");
        self.post_form("/login", &[("csrf", &csrf), ("request", &request), ("username", username), ("password", password)]).await
    }

    /// Submit the consent form found in `html` with `decision` (allow/deny); returns the redirect.
    pub async fn decide(&self, html: &str, decision: &str) -> String {
        let csrf = hidden(html, "csrf").expect("csrf field");
        let request = hidden(html, "request").expect("request field");
        let res = self.post_form("/consent", &[("csrf", &csrf), ("request", &request), ("decision", decision)]).await;
        assert_eq!(res.status(), 303);
        location(&res)
    }

    /// Drive the browser from an authorization URL to the client's redirect, signing in as
    /// `user` and allowing on whatever pages come up (none, sign-in, consent, or both).
    pub async fn journey_as(&self, url: &str, user: &str) -> String {
        let mut res = self.get(url).await;
        for _ in 0..6 {
            assert_eq!(res.status(), 303, "expected a redirect");
            let loc = location(&res);
            if loc.starts_with("/login") {
                let html = self.get(&loc).await.text().await.unwrap();
                res = self.sign_in(&html, user, PASSWORD).await;
            } else if loc.starts_with("/consent") {
                let page = self.get(&loc).await;
                if page.status() == 303 {
                    res = page;
                    continue;
                }
                let html = page.text().await.unwrap();
                return self.decide(&html, "allow").await;
            } else {
                return loc;
            }
        }
        panic!("too many steps");
    }

    /// The full user journey for a fresh browser: authorize → sign in → consent (allow) → the
    /// redirect back to the client (returned).
    pub async fn authorize_and_allow(&self, authorize_url: &str) -> String {
        let (_, html) = self.open_login(authorize_url).await;
        let res = self.sign_in(&html, USER, PASSWORD).await;
        assert_eq!(res.status(), 303, "sign-in should succeed");
        let consent = location(&res);
        let res = self.get(&consent).await;
        if res.status() == 303 {
            return location(&res);
        }
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        self.decide(&html, "allow").await
    }
}

/// Fetch the JWKS through the metadata and verify an access token as a resource server would
/// (RFC 9068 §4): signature, `typ`, `iss`, `aud`, `exp`. Returns the claims.
pub async fn verify_access_token(issuer: &str, token: &str, audience: &str) -> Value {
    let http = reqwest::Client::new();
    let meta: Value = http.get(format!("{issuer}/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = http.get(meta["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid in JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &v).expect("a valid access token").claims
}

/// POST a form to `base` + `path` with HTTP Basic credentials (or none); the body as JSON
/// (`Null` when empty, as for a successful revocation).
pub async fn post(base: &str, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().post(format!("{base}{path}")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}")) };
    (status, body, headers)
}

/// POST /token with HTTP Basic client authentication.
pub async fn token_basic(base: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
    post(base, "/token", Some((id, secret)), form).await
}

/// POST /token with a raw form (client authentication in the body, or none).
pub async fn token_form(base: &str, form: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
    post(base, "/token", None, form).await
}

impl TestServer {
    /// Like [`TestServer::start`], with the server's [`Config`] adjusted by `config_fn` first
    /// (refresh-token lifetimes, grace window, …).
    /// Like [`TestServer::start`], its issuer on `http://localhost:PORT` (passkeys offered).
    pub async fn start_on_localhost() -> Self {
        Self::start_serving(ServeOptions { localhost: true, ..Default::default() }, |_| {}).await
    }

    pub async fn start_with(config_fn: impl FnOnce(&mut Config)) -> Self {
        Self::start_serving(ServeOptions::default(), config_fn).await
    }

    /// Like [`TestServer::start_with`], served with `options` (shortened connection limits and
    /// request timeout).
    pub async fn start_serving(options: ServeOptions, config_fn: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}/tessera.db", dir.path().display());
        let store = Arc::new(SqliteStore::open_server(&db_url).await.unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = if options.localhost { format!("http://localhost:{}", addr.port()) } else { format!("http://{addr}") };
        let clock = Arc::new(ManualClock::new());
        let now = clock.now_secs();
        let mut config = Config::new(&url);
        config_fn(&mut config);
        if config.key_encryption.is_none() {
            // The process's signing keys, so that the server does not generate its own.
            let seeds = seeds();
            config.key_encryption = Some(seeds.kek.clone());
            for (alg, kid, sealed) in &seeds.keys {
                let record = KeyRecord { kid: kid.clone(), alg: alg.as_str().into(), private_der: sealed.clone(), created_at: now, use_after: now };
                store.create_signing_key(&record).await.unwrap();
            }
        }
        let svc = Tessera::new(store, clock.clone(), config).await.unwrap();
        let scopes = ["notes.read=Read your notes", "notes.write=Create and edit your notes", "notes.delete=Delete your notes"]
            .iter()
            .map(|s| admin::parse_api_scope(s).unwrap())
            .collect();
        admin::create_api(&*svc.store, API, "Notes", scopes, now).await.unwrap();
        create_user(
            &*svc.store,
            NewUser { username: USER.into(), email: Some("alice@example.com".into()), name: Some("Alice Doe".into()), ..Default::default() },
            now,
        )
        .await;
        serve_in_background(listener, svc.clone(), options);
        Self { url, svc, clock, db_url, dir }
    }
}

/// How a [`TestServer`] serves: the connection limits of `tessera_http::serve` and the
/// router's request timeout.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub limits: tessera_http::ServeLimits,
    pub request_timeout: std::time::Duration,
    /// The issuer on `http://localhost:PORT` rather than `http://127.0.0.1:PORT`: WebAuthn
    /// needs a domain name, so only then are passkeys offered.
    pub localhost: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { limits: tessera_http::ServeLimits::default(), request_timeout: tessera_http::REQUEST_TIMEOUT, localhost: false }
    }
}

/// Serves Tessera on `listener` as `tessera serve` does, for the rest of the test.
fn serve_in_background(listener: tokio::net::TcpListener, svc: Arc<Tessera>, options: ServeOptions) {
    let app = tessera_http::router_with_timeout(svc, options.request_timeout);
    tokio::spawn(async move {
        tessera_http::serve(listener, app, options.limits, std::future::pending()).await.unwrap();
    });
}

/// The RFC 6238 code (SHA-1, 6 digits, 30 s) of time `now` for the base32 secret a page shows
/// (spaces allowed), as an authenticator app computes it.
pub fn totp_code(secret_base32: &str, now: i64) -> String {
    let compact: String = secret_base32.chars().filter(|c| !c.is_whitespace()).collect();
    let secret = totp_rs::Secret::try_from_base32(&compact).expect("a base32 secret");
    totp_rs::Builder::new().with_secret(secret).build_noncompliant().generate(now as u64).to_string()
}

/// The text of the element with this `id` (no nested tags), HTML entities left as they are.
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let open = html[start..].find('>')? + start + 1;
    let close = html[open..].find('<')? + open;
    Some(html[open..close].to_string())
}

impl Browser {
    /// Add an authenticator app on the account page of the signed-in user: the secret shown,
    /// a code computed from it at `now`, confirmed. Returns the secret and the recovery codes
    /// shown (none when the user had some already).
    pub async fn enrol_totp(&self, now: i64) -> (String, Vec<String>) {
        let res = self.get("/account/two-step/new").await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        let secret = element_text(&html, "totp-secret").expect("the secret as text");
        assert!(element_text(&html, "totp-uri").unwrap().starts_with("otpauth://totp/"), "the otpauth URI as text");
        assert!(html.contains("<svg"), "a QR code");
        let csrf = hidden(&html, "csrf").unwrap();
        let setup = hidden(&html, "setup").unwrap();
        let code = totp_code(&secret, now);
        let res = self.post_form("/account/two-step", &[("csrf", &csrf), ("setup", &setup), ("code", &code), ("name", "Phone")]).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        (secret, recovery_codes(&html))
    }

    /// The second step's form: submit `code`.
    pub async fn second_step(&self, code: &str) -> reqwest::Response {
        let html = self.get("/login/two-step").await.text().await.unwrap();
        let csrf = hidden(&html, "csrf").expect("csrf on the second step");
        self.post_form("/login/two-step", &[("csrf", &csrf), ("code", code)]).await
    }
}

/// The recovery codes a page shows.
pub fn recovery_codes(html: &str) -> Vec<String> {
    let Some(start) = html.find("id=\"recovery-codes\"") else { return vec![] };
    let end = html[start..].find("</ul>").map(|e| e + start).unwrap_or(html.len());
    html[start..end].split("<code>").skip(1).filter_map(|c| c.split("</code>").next()).map(str::to_string).collect()
}
