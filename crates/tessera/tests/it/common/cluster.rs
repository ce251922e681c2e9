//! Fixtures for the PostgreSQL cluster tests: a fresh database with an API, a user and a
//! confidential client, and real `tessera serve` processes sharing it.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tessera_server::service::admin::{self, NewClient, NewUser};
use tessera_storage_postgres::PgStore;
use tessera_storage_postgres::testing::TestDatabase;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");
/// Every instance serves the same issuer, as behind a load balancer.
pub const ISSUER: &str = "http://localhost:7443";
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const SCOPE: &str = "notes.read notes.write";
/// The key-encryption key every instance shares (base64 of 32 bytes), as an operator sets it.
pub const KEK: &str = "dGVzc2VyYS1jbHVzdGVyLXRlc3Qta2V5LTMyLWJ5dGU=";

/// The shared database, opened directly for setup and checks.
pub struct Cluster {
    pub store: Arc<PgStore>,
    pub client_id: String,
    pub secret: String,
    pub logs: tempfile::TempDir,
    // Dropped last: the database goes after every connection to it.
    pub db: TestDatabase,
    /// Released after the database is dropped.
    _postgres: crate::common::PostgresUse,
}

impl Cluster {
    /// A fresh database with the Notes API, user alice and a confidential client allowed the
    /// code, refresh and client-credentials grants; PostgreSQL shared with other tests.
    pub async fn create() -> Self {
        Self::create_holding(crate::common::postgres().await).await
    }

    /// [`Cluster::create`], holding PostgreSQL as `postgres` says (alone, to stop it).
    pub async fn create_holding(postgres: crate::common::PostgresUse) -> Self {
        let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
        let store = Arc::new(PgStore::open(&db.url, 4).await.unwrap_or_else(|e| panic!("opening {}: {e}", db.url)));
        let now = now();
        let scopes = ["notes.read=Read your notes", "notes.write=Create and edit your notes"].iter().map(|s| admin::parse_api_scope(s).unwrap()).collect();
        admin::create_api(&*store, crate::common::API, "Notes", scopes, now).await.unwrap();
        crate::common::create_user(&*store, NewUser { username: crate::common::USER.into(), ..Default::default() }, now).await;
        let c = admin::create_client(
            &*store,
            NewClient {
                name: "Notes Client".into(),
                redirect_uris: vec![REDIRECT.into()],
                scope: SCOPE.into(),
                grant_types: vec!["authorization_code".into(), "refresh_token".into(), "client_credentials".into()],
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
        Self { store, client_id: c.client.client_id, secret: c.client_secret.unwrap(), logs: tempfile::tempdir().unwrap(), db, _postgres: postgres }
    }

    /// Start `tessera serve` on 127.0.0.1:0 against the shared database.
    pub fn serve(&self, name: &str) -> Instance {
        self.serve_with(name, &[])
    }

    /// [`Cluster::serve`] with more arguments.
    pub fn serve_with(&self, name: &str, extra: &[&str]) -> Instance {
        let log = self.logs.path().join(format!("{name}.log"));
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--issuer", ISSUER, "--database", &self.db.url, "--database-pool-size", "8"])
            .args(extra)
            .env_remove("TESSERA_DATABASE_URL")
            .env_remove("TESSERA_LISTEN")
            .env_remove("TESSERA_ISSUER")
            .env_remove("TESSERA_CONFIG")
            .env_remove("TESSERA_KEY_ENCRYPTION_KEY_FILE")
            .env("TESSERA_KEY_ENCRYPTION_KEY", KEK)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let Some(url) = line.trim().strip_prefix("Tessera is listening on ").map(str::to_string) else {
            let _ = child.kill();
            panic!("instance {name} did not start: {line:?}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        };
        std::thread::spawn(move || for _ in out.lines() {});
        Instance { child, url, log, name: name.into() }
    }

    pub fn authorize_url(&self, base: &str, state: &str, challenge: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", SCOPE)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        format!("{base}/authorize?{}", q.finish())
    }

    /// POST /token at `base` with this client's credentials: (status, body, Retry-After).
    pub async fn token(&self, http: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> (u16, Value, Option<String>) {
        post(http, &format!("{base}/token"), &self.client_id, &self.secret, form).await
    }

    /// POST /introspect at `base` as this client: whether the token is active.
    pub async fn active(&self, http: &reqwest::Client, base: &str, token: &str) -> bool {
        let (status, body, _) = post(http, &format!("{base}/introspect"), &self.client_id, &self.secret, &[("token", token)]).await;
        assert_eq!(status, 200, "introspection: {body}");
        body["active"].as_bool().unwrap()
    }

    /// A signed-in user's code, obtained through a browser at `base` (consenting when asked).
    pub async fn code_at(&self, base: &str) -> (String, String) {
        let (verifier, challenge) = crate::common::pkce_pair();
        let browser = crate::common::Browser::new(base);
        let back = browser.authorize_and_allow(&self.authorize_url(base, "s1", &challenge)).await;
        assert!(back.starts_with(REDIRECT), "{back}");
        (crate::common::query(&back)["code"].clone(), verifier)
    }

    /// Exchange a code at `base`: the token response.
    pub async fn redeem(&self, http: &reqwest::Client, base: &str, code: &str, verifier: &str) -> Value {
        let (status, body, _) =
            self.token(http, base, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT), ("code_verifier", verifier)]).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// A POST with HTTP Basic authentication: (status, JSON body or Null, Retry-After).
pub async fn post(http: &reqwest::Client, url: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value, Option<String>) {
    let res = http.post(url).basic_auth(id, Some(secret)).form(form).send().await.unwrap();
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body, retry)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(20)).build().unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A running `tessera serve`; killed on drop.
pub struct Instance {
    child: Child,
    pub url: String,
    pub log: PathBuf,
    pub name: String,
}

impl Instance {
    /// The instance's log (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Still running (no crash, no exit)?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
    /// Send SIGTERM and wait (at most `bound`) for the process to exit: its exit status, or
    /// `None` if it was still running.
    pub fn terminate(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM");
        let deadline = std::time::Instant::now() + bound;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
