//! Finding 4: signing keys and the database were readable by anyone on the host. The data folder
//! is now 0700 and its files 0600 (tightened on open when looser); private keys are stored
//! sealed under a key-encryption key (KEK) held outside the database (RFC 6819 §5.1.4.1.1
//! "Enforce Standard System Security Means", §5.1.4.1.3 "No Cleartext Storage of Credentials").

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tessera_jose::{Alg, SigningKey};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");
/// A fixed issuer, so that tokens stay valid across restarts on other ports.
const ISSUER: &str = "http://localhost:7443";

/// What a local reader of the database gets: each signing key's row.
fn sqlite_rows(db: &Path) -> Vec<(String, String, Vec<u8>)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = c.prepare("SELECT kid, alg, private_der FROM signing_keys ORDER BY created_at, kid").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

/// The rows whose private key parses as PKCS#8, i.e. that a local reader can sign with.
fn usable_keys(rows: &[(String, String, Vec<u8>)]) -> Vec<SigningKey> {
    rows.iter().filter_map(|(_, alg, der)| SigningKey::from_pkcs8(alg.parse().unwrap(), der).ok()).collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tessera serve` in `dir` (default database ./tessera-data/tessera.db) with `env`; the URL, or
/// what it wrote to stderr when it did not start.
fn serve(dir: &Path, env: &[(&str, &str)]) -> Result<Serve, String> {
    let log = dir.join(format!("serve-{}.log", rand::random::<u32>()));
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--issuer", ISSUER, "--key-rotation-days", "0"]).current_dir(dir);
    for v in [
        "TESSERA_DATABASE_URL",
        "TESSERA_ISSUER",
        "TESSERA_LISTEN",
        "TESSERA_CONFIG",
        "TESSERA_KEY_ENCRYPTION_KEY",
        "TESSERA_KEY_ENCRYPTION_KEY_FILE",
        "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS",
        "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS_FILE",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied()).env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    match line.trim().strip_prefix("Tessera is listening on ") {
        Some(url) => {
            std::thread::spawn(move || for _ in out.lines() {});
            Ok(Serve { url: url.to_string(), child })
        }
        None => {
            let _ = child.wait();
            Err(std::fs::read_to_string(&log).unwrap_or_default())
        }
    }
}

/// An admin command in `dir`; (success, stdout, stderr).
fn admin(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir);
    for v in [
        "TESSERA_DATABASE_URL",
        "TESSERA_KEY_ENCRYPTION_KEY",
        "TESSERA_KEY_ENCRYPTION_KEY_FILE",
        "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS",
        "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS_FILE",
    ] {
        cmd.env_remove(v);
    }
    let out = cmd.envs(env.iter().copied()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn data(dir: &Path) -> PathBuf {
    dir.join("tessera-data")
}

async fn jwks_kids(url: &str) -> Vec<String> {
    let v: Value = reqwest::get(format!("{url}/jwks.json")).await.unwrap().json().await.unwrap();
    let mut kids: Vec<String> = v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect();
    kids.sort();
    kids
}

/// A confidential client_credentials client and the Notes API, registered through the CLI.
fn register(dir: &Path) -> (String, String) {
    let (ok, _, err) = admin(dir, &["api", "create", "--identifier", API, "--name", "Notes", "--scope", "notes.read=Read your notes"], &[]);
    assert!(ok, "{err}");
    let (ok, out, err) = admin(dir, &["--json", "client", "create", "--name", "M2M", "--grant-type", "client_credentials", "--scope", "notes.read"], &[]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    (v["client_id"].as_str().unwrap().to_string(), v["client_secret"].as_str().unwrap().to_string())
}

async fn introspect_active(url: &str, id: &str, secret: &str, token: &str) -> bool {
    let v: Value = reqwest::Client::new()
        .post(format!("{url}/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["active"] == json!(true)
}

/// The review's steps: read the signing-keys table straight from the SQLite file, take the
/// ES256 key, mint an access token and call `/userinfo` with it. The stored keys must not parse
/// as PKCS#8 (they are ciphertext), so no token can be minted with what a local reader gets.
#[tokio::test]
async fn regression_signing_keys_encrypted_at_rest_rfc6819_5_1_4_1_3() {
    let s = TestServer::start().await;
    let db = PathBuf::from(s.db_url.strip_prefix("sqlite://").unwrap());
    let rows = sqlite_rows(&db);
    assert_eq!(rows.len(), Alg::ALL.len(), "one key per algorithm");
    let user = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    let now = tessera_server::Clock::now(&*s.clock);
    let mut accepted = Vec::new();
    for key in usable_keys(&rows) {
        let claims = json!({"iss": s.url, "sub": user.id, "aud": API, "client_id": "stolen", "scope": "openid profile email", "iat": now, "exp": now + 600, "jti": "forged.token"});
        let token = key.sign_jwt("at+jwt", &claims).unwrap();
        let res = reqwest::Client::new().get(format!("{}/userinfo", s.url)).bearer_auth(&token).send().await.unwrap();
        accepted.push((key.kid().to_string(), key.alg(), res.status().as_u16()));
    }
    assert!(accepted.is_empty(), "private keys read from the database parse as PKCS#8 and sign tokens (kid, alg, /userinfo status): {accepted:?}");
    // The server itself still signs and verifies with them.
    let client = s
        .client(tessera_server::service::admin::NewClient {
            name: "M2M".into(),
            scope: "notes.read".into(),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        })
        .await;
    let (status, body, _) = token_basic(
        &s.url,
        &client.client.client_id,
        client.client_secret.as_deref().unwrap(),
        &[("grant_type", "client_credentials"), ("scope", "notes.read")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    verify_access_token(&s.url, body["access_token"].as_str().unwrap(), API).await;
}

/// The same on PostgreSQL: the signing-keys table holds ciphertext.
#[tokio::test]
async fn regression_signing_keys_encrypted_at_rest_postgres_rfc6819_5_1_4_1_3() {
    use sqlx::Row;
    let _postgres = postgres().await;
    let db = tessera_storage_postgres::testing::TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let store = std::sync::Arc::new(tessera_storage_postgres::PgStore::open(&db.url, 2).await.unwrap());
    let svc = tessera_server::Tessera::new(store.clone(), std::sync::Arc::new(tessera_server::SystemClock), tessera_server::Config::new(ISSUER)).await.unwrap();
    assert_eq!(svc.keys.current().all.len(), Alg::ALL.len());
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query("SELECT kid, alg, private_der FROM signing_keys").fetch_all(&pool).await.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(rows.len(), Alg::ALL.len());
    let usable: Vec<String> = usable_keys(&rows).iter().map(|k| k.kid().to_string()).collect();
    assert!(usable.is_empty(), "private keys in PostgreSQL parse as PKCS#8: {usable:?}");
    pool.close().await;
    drop((svc, store));
}

/// After a real `tessera serve` start on the default data folder: the folder is 0700 and the
/// database, its WAL and shared-memory files, the server lock and the KEK file are 0600, and
/// looser modes left by an older version are tightened on the next start.
#[tokio::test]
async fn regression_data_files_private_rfc6819_5_1_4_1_1() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).unwrap_or_else(|e| panic!("serve did not start: {e}"));
    assert!(!jwks_kids(&server.url).await.is_empty());
    let d = data(dir.path());
    let files = ["tessera.db", "tessera.db-wal", "tessera.db-shm", "tessera.db-serve.lock", "key-encryption-key"];
    let mut modes: Vec<(String, u32)> = vec![("tessera-data/".into(), mode(&d))];
    modes.extend(files.iter().map(|f| (f.to_string(), mode(&d.join(f)))));
    let want: Vec<(String, u32)> = std::iter::once(("tessera-data/".to_string(), 0o700)).chain(files.iter().map(|f| (f.to_string(), 0o600))).collect();
    let shown = |m: &[(String, u32)]| m.iter().map(|(f, m)| format!("{f} {m:o}")).collect::<Vec<_>>().join(", ");
    assert_eq!(shown(&modes), shown(&want), "modes after the first start");
    // The rows are sealed under the KEK in the file.
    let usable: Vec<String> = usable_keys(&sqlite_rows(&d.join("tessera.db"))).iter().map(|k| k.kid().to_string()).collect();
    assert!(usable.is_empty(), "plain PKCS#8 in the database: {usable:?}");
    drop(server);

    // Files made readable by others (an older version, a copy) are tightened on the next start.
    for f in files {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server = serve(dir.path(), &[]).unwrap_or_else(|e| panic!("serve did not restart: {e}"));
    assert!(!jwks_kids(&server.url).await.is_empty());
    for f in files {
        assert_eq!(mode(&d.join(f)), 0o600, "{f} tightened on open");
    }
}

/// A server started with another KEK than the one that sealed the keys stops with an error that
/// names both KEK ids; a missing KEK file is not silently replaced by a new one.
#[tokio::test]
async fn regression_wrong_kek_refused_at_start_rfc6819_5_1_4_1_3() {
    let dir = tempfile::tempdir().unwrap();
    drop(serve(dir.path(), &[]).unwrap_or_else(|e| panic!("serve did not start: {e}")));
    let kek_file = data(dir.path()).join("key-encryption-key");
    let right = tessera_jose::kek::Kek::from_base64(&std::fs::read_to_string(&kek_file).unwrap()).unwrap();
    let other_text = tessera_jose::kek::Kek::generate_base64().unwrap();
    let other = tessera_jose::kek::Kek::from_base64(&other_text).unwrap();
    let err = serve(dir.path(), &[("TESSERA_KEY_ENCRYPTION_KEY", &other_text)]).err().expect("a wrong KEK must stop the start");
    assert!(err.contains("key-encryption key") && err.contains(&right.id()) && err.contains(&other.id()), "the error names both KEKs: {err}");
    let err = serve(dir.path(), &[("TESSERA_KEY_ENCRYPTION_KEY", "not base64!")]).err().expect("a malformed KEK must stop the start");
    assert!(err.contains("TESSERA_KEY_ENCRYPTION_KEY"), "{err}");

    std::fs::rename(&kek_file, dir.path().join("kek.saved")).unwrap();
    let err = serve(dir.path(), &[]).err().expect("a missing KEK file must stop the start");
    assert!(err.contains(&right.id()) && err.contains("key-encryption-key"), "{err}");
    assert!(!kek_file.exists(), "no new KEK generated over keys sealed by another");
    let saved = dir.path().join("kek.saved");
    let server = serve(dir.path(), &[("TESSERA_KEY_ENCRYPTION_KEY_FILE", saved.to_str().unwrap())]).unwrap_or_else(|e| panic!("the right KEK file: {e}"));
    assert_eq!(jwks_kids(&server.url).await.len(), Alg::ALL.len());
}

/// KEK rotation: a start with a new KEK and the previous one re-seals every key under the new
/// one (same kids, same JWKS; tokens signed before still verify); `tessera keys rewrap` does the
/// same offline; then the new KEK alone is enough and the old one no longer opens anything.
#[tokio::test]
async fn regression_kek_rotation_keeps_keys_rfc6819_5_1_4_1_3() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), &[]).unwrap_or_else(|e| panic!("serve did not start: {e}"));
    let (id, secret) = register(dir.path());
    let (status, body, _) = token_basic(&first.url, &id, &secret, &[("grant_type", "client_credentials"), ("scope", "notes.read")]).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let kids = jwks_kids(&first.url).await;
    drop(first);
    let old_file = data(dir.path()).join("key-encryption-key");
    let old = tessera_jose::kek::Kek::from_base64(&std::fs::read_to_string(&old_file).unwrap()).unwrap();
    let sealed_under = |dir: &Path| -> Vec<String> {
        sqlite_rows(&data(dir).join("tessera.db"))
            .iter()
            .map(|(_, _, b)| tessera_jose::kek::StoredForm::of(b).kek_id().unwrap_or_else(|| "plain".into()))
            .collect()
    };
    assert!(sealed_under(dir.path()).iter().all(|i| *i == old.id()));

    // Rotation on start: the new KEK in the environment, the previous one as a file.
    let b_text = tessera_jose::kek::Kek::generate_base64().unwrap();
    let b = tessera_jose::kek::Kek::from_base64(&b_text).unwrap();
    let server = serve(dir.path(), &[("TESSERA_KEY_ENCRYPTION_KEY", &b_text), ("TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS_FILE", old_file.to_str().unwrap())])
        .unwrap_or_else(|e| panic!("rotation start: {e}"));
    assert_eq!(jwks_kids(&server.url).await, kids, "same keys, same JWKS");
    assert!(introspect_active(&server.url, &id, &secret, &token).await, "a token signed before the rotation still verifies");
    drop(server);
    assert!(sealed_under(dir.path()).iter().all(|i| *i == b.id()), "every key re-sealed under the new KEK");
    let err = serve(dir.path(), &[]).err().expect("the old KEK file alone no longer opens the keys");
    assert!(err.contains(&b.id()), "{err}");

    // Rotation offline: `tessera keys rewrap`.
    let c_text = tessera_jose::kek::Kek::generate_base64().unwrap();
    let c = tessera_jose::kek::Kek::from_base64(&c_text).unwrap();
    let (ok, out, err) =
        admin(dir.path(), &["--json", "keys", "rewrap"], &[("TESSERA_KEY_ENCRYPTION_KEY", &c_text), ("TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS", &b_text)]);
    assert!(ok, "keys rewrap: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resealed"].as_array().map(Vec::len), Some(Alg::ALL.len()), "{out}");
    assert_eq!(v["key_encryption_key"], json!(c.id()), "{out}");
    assert!(sealed_under(dir.path()).iter().all(|i| *i == c.id()));
    let (ok, _, err) = admin(dir.path(), &["keys", "rewrap"], &[("TESSERA_KEY_ENCRYPTION_KEY", &b_text)]);
    assert!(!ok && err.contains(&c.id()), "rewrap without the KEK that sealed the keys fails clearly: {err}");
    let server = serve(dir.path(), &[("TESSERA_KEY_ENCRYPTION_KEY", &c_text)]).unwrap_or_else(|e| panic!("after rewrap: {e}"));
    assert_eq!(jwks_kids(&server.url).await, kids);
    assert!(introspect_active(&server.url, &id, &secret, &token).await);
    // `keys rotate` seals the new key under the KEK it is given.
    let (ok, out, err) = admin(dir.path(), &["--json", "keys", "rotate", "--alg", "ES256", "--publish-delay", "0"], &[("TESSERA_KEY_ENCRYPTION_KEY", &c_text)]);
    assert!(ok, "keys rotate: {err}");
    let new_kid = serde_json::from_str::<Value>(&out).unwrap()[0]["kid"].as_str().unwrap().to_string();
    assert!(sealed_under(dir.path()).iter().all(|i| *i == c.id()), "the rotated key is sealed too");
    let started = std::time::Instant::now();
    while !jwks_kids(&server.url).await.contains(&new_kid) {
        assert!(started.elapsed() < Duration::from_secs(15), "the rotated key is not published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A database from before encryption at rest (plain PKCS#8 rows, as older versions wrote them)
/// is sealed in place on start; the keys (kids, JWKS) are the same.
#[tokio::test]
async fn regression_legacy_plaintext_keys_sealed_on_start_rfc6819_5_1_4_1_3() {
    let dir = tempfile::tempdir().unwrap();
    let db = data(dir.path()).join("tessera.db");
    let mut kids = Vec::new();
    {
        let store = tessera_storage_sqlite::SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
        let now = tessera_server::Clock::now(&tessera_server::SystemClock);
        for alg in Alg::ALL {
            let der = tessera_jose::generate(alg).unwrap();
            let kid = SigningKey::from_pkcs8(alg, &der).unwrap().kid().to_string();
            tessera_storage::KeyStore::create_signing_key(
                &store,
                &tessera_storage::KeyRecord { kid: kid.clone(), alg: alg.as_str().into(), private_der: der, created_at: now - 10, use_after: now - 10 },
            )
            .await
            .unwrap();
            kids.push(kid);
        }
    }
    kids.sort();
    assert_eq!(usable_keys(&sqlite_rows(&db)).len(), 3, "the legacy rows are plain PKCS#8");
    let server = serve(dir.path(), &[]).unwrap_or_else(|e| panic!("serve did not start: {e}"));
    assert_eq!(jwks_kids(&server.url).await, kids, "the same keys");
    let rows = sqlite_rows(&db);
    assert!(usable_keys(&rows).is_empty(), "legacy rows sealed on start");
    let kek = tessera_jose::kek::Kek::from_base64(&std::fs::read_to_string(data(dir.path()).join("key-encryption-key")).unwrap()).unwrap();
    for (kid, _, b) in &rows {
        assert_eq!(tessera_jose::kek::StoredForm::of(b).kek_id(), Some(kek.id()), "{kid}");
    }
}
