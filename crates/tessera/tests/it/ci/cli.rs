//! The `tessera` binary as operators use it: `serve` on the embedded default, and the admin CLI
//! working on the same database while the server runs.
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `tessera serve` in `dir` (default database: ./tessera-data/) and read its URL.
fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

/// [`serve`] with further flags.
fn serve_with(dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .current_dir(dir)
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_ISSUER")
        .env_remove("TESSERA_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("Tessera is listening on ").unwrap_or_else(|| panic!("unexpected first line: {line:?}")).to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    Server { child, url }
}

/// Run an admin command in `dir`; returns (exit ok, stdout, stderr).
fn tessera(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    crate::common::run_tessera(Some(dir), args, stdin)
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let (ok, out, err) = tessera(dir, args, None);
    assert!(ok, "{args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(10)).build().unwrap()
}

/// The embedded default: SQLite under ./tessera-data created on first start, keys generated once
/// and persisted, and the CLI's changes seen by the running server without a restart.
#[tokio::test]
async fn serve_and_administer_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    assert!(dir.path().join("tessera-data/tessera.db").exists(), "database created under ./tessera-data");
    let jwks: Value = http().get(format!("{}/jwks.json", server.url)).send().await.unwrap().json().await.unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();

    // One server per SQLite database: a second `serve` says why it cannot start.
    let (ok, _, err) = tessera(dir.path(), &["serve", "--listen", "127.0.0.1:0"], None);
    assert!(!ok && err.contains("another tessera server is running") && err.contains("PostgreSQL"), "{err}");

    let api =
        json(dir.path(), &["api", "create", "--identifier", "https://notes.example", "--name", "Notes", "--scope", "notes.read=Read your notes", "--json"]);
    assert_eq!(api["scopes"][0]["description"], "Read your notes");
    let client = json(dir.path(), &["client", "create", "--name", "CLI App", "--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "notes.read", "--json"]);
    let id = client["client_id"].as_str().unwrap().to_string();
    let secret = client["client_secret"].as_str().unwrap().to_string();

    // The running server sees the new client and API at once.
    let res = http()
        .get(format!("{}/authorize?response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=notes.read", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login"));

    // Secret rotation: the old secret stops working, the new one authenticates.
    let token = |s: String| {
        let (url, id) = (server.url.clone(), id.clone());
        async move {
            let res =
                http().post(format!("{url}/token")).basic_auth(id, Some(s)).form(&[("grant_type", "authorization_code"), ("code", "x")]).send().await.unwrap();
            res.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(token(secret.clone()).await, "invalid_grant", "authenticated, bad code");
    let rotated = json(dir.path(), &["client", "rotate-secret", &id, "--json"]);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    // Token-side client lookups are cached for at most 2 s: the old secret dies within that.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while token(secret.clone()).await != "invalid_client" {
        assert!(std::time::Instant::now() < deadline, "the old secret still works after 5 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(token(new_secret).await, "invalid_grant");

    // Deleting the client: the server refuses it within the same 2 s bound.
    json(dir.path(), &["client", "delete", &id, "--json"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let res = http().get(format!("{}/authorize?response_type=code&client_id={id}&scope=notes.read", server.url)).send().await.unwrap();
        if res.status() == 400 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a deleted client still works after 5 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Restart: same database, same keys.
    drop(server);
    let server = serve(dir.path());
    let jwks: Value = http().get(format!("{}/jwks.json", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid, "signing keys persist across restarts");
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3, "one key per algorithm (ES256, RS256, EdDSA), none added on restart");
}

#[test]
fn client_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let public = json(d, &["client", "create", "--name", "SPA", "--redirect-uri", "https://spa.example/cb", "--scope", "a b", "--public", "--json"]);
    assert!(public.get("client_secret").is_none(), "public clients get no secret");
    assert_eq!(public["token_endpoint_auth_method"], "none");
    let post = json(
        d,
        &[
            "client",
            "create",
            "--name",
            "Web",
            "--redirect-uri",
            "https://web.example/cb",
            "--redirect-uri",
            "https://web.example/cb2",
            "--token-auth-method",
            "client_secret_post",
            "--grant-type",
            "authorization_code",
            "--json",
        ],
    );
    assert_eq!(post["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(post["grant_types"], serde_json::json!(["authorization_code"]));
    assert_eq!(post["client_secret"].as_str().unwrap().len(), 43);
    let id = post["client_id"].as_str().unwrap();
    let list = json(d, &["client", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let listed = list.to_string();
    assert!(
        !listed.contains(post["client_secret"].as_str().unwrap()) && !listed.contains("client_secret\"") && !listed.contains("secret_hash"),
        "list never shows secrets or their hashes: {listed}"
    );
    let shown = json(d, &["client", "show", id, "--json"]);
    assert_eq!(shown["redirect_uris"], serde_json::json!(["https://web.example/cb", "https://web.example/cb2"]));
    // Human output shows the secret once, with a warning.
    let (ok, out, _) = tessera(d, &["client", "create", "--name", "Human", "--redirect-uri", "https://h.example/cb"], None);
    assert!(ok && out.contains("client_secret: ") && out.contains("only this once"), "{out}");
    // Errors name the flag and exit non-zero.
    for (args, needle) in [
        (vec!["client", "create", "--name", "X", "--redirect-uri", "http://evil.example/cb"], "--redirect-uri"),
        (vec!["client", "create", "--name", "X", "--redirect-uri", "https://x.example/cb#f"], "fragment"),
        (vec!["client", "create", "--name", "X", "--redirect-uri", "https://x.example/cb", "--grant-type", "password"], "--grant-type"),
        (vec!["client", "create", "--name", "X", "--redirect-uri", "https://x.example/cb", "--grant-type", "implicit"], "--grant-type"),
        (vec!["client", "create", "--name", "X"], "--redirect-uri"),
        (
            vec!["client", "create", "--name", "X", "--redirect-uri", "https://x.example/cb", "--public", "--token-auth-method", "client_secret_basic"],
            "--public",
        ),
        (vec!["client", "delete", "nope"], "no client"),
        (vec!["client", "rotate-secret", public["client_id"].as_str().unwrap()], "public"),
    ] {
        let (ok, _, err) = tessera(d, &args, None);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `client create --allowed-origin/--require-dpop` and `client update` (issue 17): options not
/// given stay, lists given replace, values are validated as at creation.
#[test]
fn client_update_and_browser_options() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = json(
        d,
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "https://spa.example/cb",
            "--scope",
            "a",
            "--allowed-origin",
            "http://localhost:5173",
            "--require-dpop",
            "--json",
        ],
    );
    assert_eq!(c["allowed_origins"], serde_json::json!(["http://localhost:5173"]));
    assert_eq!(c["effective_allowed_origins"], serde_json::json!(["http://localhost:5173", "https://spa.example"]));
    assert_eq!(c["require_dpop"], true);
    let id = c["client_id"].as_str().unwrap();
    let u = json(d, &["client", "update", id, "--name", "Notes SPA", "--allowed-origin", "https://other.example", "--require-dpop", "false", "--json"]);
    assert_eq!((u["name"].as_str(), u["require_dpop"].as_bool()), (Some("Notes SPA"), Some(false)));
    assert_eq!(u["allowed_origins"], serde_json::json!(["https://other.example"]), "a list given replaces the list");
    assert_eq!((u["redirect_uris"].clone(), u["scope"].as_str()), (serde_json::json!(["https://spa.example/cb"]), Some("a")), "what was not given stays");
    let shown = json(d, &["client", "show", id, "--json"]);
    assert_eq!(shown["allowed_origins"], u["allowed_origins"]);
    let cleared = json(d, &["client", "update", id, "--clear-allowed-origins", "--json"]);
    assert_eq!(cleared["allowed_origins"], serde_json::json!([]));
    for (args, needle) in [
        (vec!["client", "update", id, "--allowed-origin", "https://spa.example/path"], "--allowed-origin"),
        (vec!["client", "update", id, "--allowed-origin", "http://spa.example"], "--allowed-origin"),
        (vec!["client", "update", id, "--redirect-uri", "http://evil.example/cb"], "--redirect-uri"),
        (vec!["client", "update", "nope", "--name", "X"], "no client"),
    ] {
        let (ok, _, err) = tessera(d, &args, None);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `client create|update --jwks FILE` and `--clear-jwks` (the JWT bearer grant, RFC 7523):
/// public keys only, shown by thumbprint; the grant cannot lose its keys.
#[test]
fn client_keys_for_the_jwt_bearer_grant() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = tessera_dpop::testing::ProofSigner::es256();
    std::fs::write(d.join("keys.json"), serde_json::json!({ "keys": [key.jwk()] }).to_string()).unwrap();
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let c = json(d, &["client", "create", "--name", "Sync", "--scope", "a", "--grant-type", grant, "--jwks", "keys.json", "--json"]);
    assert_eq!(c["jwks"]["keys"][0]["x"], key.jwk()["x"]);
    let id = c["client_id"].as_str().unwrap();
    let (ok, text, err) = tessera(d, &["client", "show", id], None);
    assert!(ok, "{err}");
    assert!(text.contains(&format!("keys: {}", key.thumbprint())), "{text}");
    let other = tessera_dpop::testing::ProofSigner::ed25519();
    std::fs::write(d.join("one.json"), other.jwk().to_string()).unwrap();
    let u = json(d, &["client", "update", id, "--jwks", "one.json", "--json"]);
    assert_eq!(u["jwks"]["keys"].as_array().map(Vec::len), Some(1), "a single JWK is stored as a set: {u}");
    assert_eq!(u["jwks"]["keys"][0]["x"], other.jwk()["x"]);
    let mut private = key.jwk();
    private["d"] = serde_json::json!("c2VjcmV0");
    std::fs::write(d.join("private.json"), private.to_string()).unwrap();
    for (args, needle) in [
        (vec!["client", "update", id, "--clear-jwks"], "needs its keys"),
        (vec!["client", "update", id, "--jwks", "private.json"], "private"),
        (vec!["client", "update", id, "--jwks", "missing.json"], "cannot read"),
        (vec!["client", "create", "--name", "X", "--grant-type", grant], "--jwks is required"),
    ] {
        let (ok, _, err) = tessera(d, &args, None);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `group create|list|show|delete|add-member|remove-member`, `api create --role`,
/// `api grant-role|revoke-role|roles` (issue 16).
#[test]
fn group_and_role_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, _, err) = tessera(d, &["user", "create", "--username", "ann", "--password-stdin"], Some("a long enough password\n"));
    assert!(ok, "{err}");
    let a = json(
        d,
        &["api", "create", "--identifier", "https://docs.example", "--name", "Docs", "--scope", "docs.read=Read", "--role", "editor=Can edit", "--json"],
    );
    assert_eq!(a["roles"], serde_json::json!([{"name": "editor", "description": "Can edit"}]));
    let g = json(d, &["group", "create", "editors", "--description", "People who edit", "--json"]);
    assert_eq!(g["name"], "editors");
    assert_eq!(json(d, &["group", "add-member", "editors", "ann", "--json"])["changed"], true);
    assert_eq!(json(d, &["group", "add-member", "editors", "ann", "--json"])["changed"], false, "twice: no change");
    assert_eq!(json(d, &["group", "show", "editors", "--json"])["members"], serde_json::json!(["ann"]));
    assert_eq!(json(d, &["group", "list", "--json"]).as_array().map(Vec::len), Some(1));
    assert_eq!(json(d, &["api", "grant-role", "https://docs.example", "editor", "--group", "editors", "--json"])["changed"], true);
    assert_eq!(json(d, &["api", "grant-role", "https://docs.example", "editor", "--user", "ann", "--json"])["changed"], true);
    let roles = json(d, &["api", "roles", "https://docs.example", "--json"]);
    assert_eq!(roles["grants"], serde_json::json!([{"role": "editor", "holder": {"group": "editors"}}, {"role": "editor", "holder": {"user": "ann"}}]));
    let (ok, text, _) = tessera(d, &["api", "roles", "https://docs.example"], None);
    assert!(ok && text.contains("editor → group editors") && text.contains("editor → user ann"), "{text}");
    assert_eq!(json(d, &["api", "revoke-role", "https://docs.example", "editor", "--user", "ann", "--json"])["changed"], true);
    assert_eq!(json(d, &["group", "remove-member", "editors", "ann", "--json"])["changed"], true);
    assert_eq!(json(d, &["group", "delete", "editors", "--json"])["deleted"], "editors");
    assert_eq!(json(d, &["api", "roles", "https://docs.example", "--json"])["grants"], serde_json::json!([]), "the group's grant went with it");
    for (args, needle) in [
        (vec!["api", "grant-role", "https://docs.example", "owner", "--user", "ann"], "declares no role owner"),
        (vec!["api", "grant-role", "https://docs.example", "editor"], "--user"),
        (vec!["api", "grant-role", "https://docs.example", "editor", "--user", "ann", "--group", "x"], "cannot be used with"),
        (vec!["group", "add-member", "nope", "ann"], "no group nope"),
        (vec!["group", "create", "has space"], "group name"),
        (vec!["group", "delete", "nope"], "no group"),
        (vec!["api", "create", "--identifier", "https://x.example", "--name", "X", "--scope", "x.r=R", "--role", "bad role=R"], "--role"),
    ] {
        let (ok, _, err) = tessera(d, &args, None);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `audit list|export` (issue 16): every admin change is recorded with the CLI's actor and what
/// it concerns; filters by type, user, client and time; pages; JSON lines.
#[test]
fn audit_commands_show_admin_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, _, err) = tessera(d, &["user", "create", "--username", "ann", "--password-stdin"], Some("a long enough password\n"));
    assert!(ok, "{err}");
    let c = json(d, &["client", "create", "--name", "App", "--redirect-uri", "https://app.example/cb", "--scope", "a", "--json"]);
    let id = c["client_id"].as_str().unwrap();
    json(d, &["client", "rotate-secret", id, "--json"]);
    json(d, &["group", "create", "ops", "--json"]);
    json(d, &["group", "add-member", "ops", "ann", "--json"]);
    let all = json(d, &["audit", "list", "--json"]);
    let kinds: Vec<&str> = all["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["admin.group_member_added", "admin.group_created", "admin.client_secret_rotated", "admin.client_created", "admin.user_created"]);
    assert!(all["events"].as_array().unwrap().iter().all(|e| e["actor"].as_str().unwrap().starts_with("cli:")), "{all}");
    let by_client = json(d, &["audit", "list", "--client", id, "--json"]);
    assert_eq!(by_client["events"].as_array().unwrap().len(), 2);
    let by_user = json(d, &["audit", "list", "--user", "ann", "--json"]);
    assert_eq!(
        by_user["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect::<Vec<_>>(),
        ["admin.group_member_added", "admin.user_created"]
    );
    let typed = json(d, &["audit", "list", "--type", "admin.client_created", "--json"]);
    assert_eq!(typed["events"][0]["detail"]["name"], "App");
    // Pages: two, then the rest below the last id shown.
    let page = json(d, &["audit", "list", "--limit", "2", "--json"]);
    let next = page["next_before"].as_i64().expect("a next page");
    let rest = json(d, &["audit", "list", "--before", &next.to_string(), "--json"]);
    assert_eq!(rest["events"].as_array().unwrap().len(), 3);
    assert_eq!(json(d, &["audit", "list", "--since", "2000-01-01T00:00:00Z", "--until", "2001-01-01T00:00:00Z", "--json"])["events"], serde_json::json!([]));
    // Export: JSON lines, oldest first.
    let (ok, out, err) = tessera(d, &["audit", "export"], None);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["type"], "admin.user_created");
    let (ok, text, _) = tessera(d, &["audit", "list"], None);
    assert!(ok && text.contains("admin.client_created") && text.contains("by cli:"), "{text}");
    for (args, needle) in [
        (vec!["audit", "list", "--since", "yesterday"], "--since"),
        (vec!["audit", "list", "--user", "nobody"], "no user nobody"),
        (vec!["audit", "list", "--limit", "0"], "--limit"),
    ] {
        let (ok, _, err) = tessera(d, &args, None);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `user update --disable|--enable` and `--admin|--no-admin` (issue 16), recorded in the audit log.
#[test]
fn users_are_disabled_and_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, _, err) = tessera(d, &["user", "create", "--username", "ann", "--password-stdin"], Some("a long enough password\n"));
    assert!(ok, "{err}");
    let u = json(d, &["user", "update", "ann", "--disable", "--json"]);
    assert_eq!(u["disabled"], true, "{u}");
    assert_eq!(json(d, &["user", "list", "--json"])[0]["disabled"], true);
    assert_eq!(json(d, &["user", "update", "ann", "--enable", "--json"])["disabled"], false);
    assert_eq!(json(d, &["user", "update", "ann", "--admin", "--json"])["admin"], true);
    assert_eq!(json(d, &["user", "update", "ann", "--no-admin", "--json"])["admin"], false);
    let (ok, _, err) = tessera(d, &["user", "update", "ann", "--disable", "--enable"], None);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    let kinds: Vec<String> =
        json(d, &["audit", "list", "--json"])["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    for k in ["admin.user_disabled", "admin.user_enabled", "admin.admin_granted", "admin.admin_revoked"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

/// Issue 15: `--require-mfa` on clients and users, and `tessera user reset-mfa`.
#[test]
fn second_factor_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, _, err) = tessera(d, &["user", "create", "--username", "ann", "--password-stdin"], Some("a long enough password\n"));
    assert!(ok, "{err}");
    let c = json(d, &["client", "create", "--name", "Payroll", "--redirect-uri", "https://pay.example/cb", "--require-mfa", "--json"]);
    assert_eq!(c["require_mfa"], true, "{c}");
    let id = c["client_id"].as_str().unwrap().to_string();
    assert_eq!(json(d, &["client", "update", &id, "--no-require-mfa", "--json"])["require_mfa"], false);
    assert_eq!(json(d, &["client", "update", &id, "--require-mfa", "--json"])["require_mfa"], true);
    let (ok, out, _) = tessera(d, &["client", "show", &id], None);
    assert!(ok && out.contains("require_mfa: true"), "{out}");
    assert_eq!(json(d, &["user", "update", "ann", "--require-mfa", "--json"])["require_mfa"], true);
    assert_eq!(json(d, &["user", "update", "ann", "--no-require-mfa", "--json"])["require_mfa"], false);
    let (ok, _, err) = tessera(d, &["user", "update", "ann", "--require-mfa", "--no-require-mfa"], None);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    let r = json(d, &["user", "reset-mfa", "ann", "--json"]);
    assert_eq!((r["username"].as_str(), r["factors_removed"].as_u64()), (Some("ann"), Some(0)), "{r}");
    let (ok, _, err) = tessera(d, &["user", "reset-mfa", "nobody"], None);
    assert!(!ok && err.contains("nobody"), "{err}");
    let kinds: Vec<String> =
        json(d, &["audit", "list", "--json"])["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    for k in ["admin.mfa_required", "admin.mfa_not_required", "admin.mfa_reset"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

#[test]
fn user_and_api_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, err) = tessera(
        d,
        &["user", "create", "--username", "bob", "--email", "bob@example.com", "--name", "Bob B", "--password-stdin", "--json"],
        Some("a long password\n"),
    );
    assert!(ok, "{err}");
    let user: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(user["username"], "bob");
    assert!(!out.contains("argon2"), "password hashes are never printed");
    let (ok, _, err) = tessera(d, &["user", "create", "--username", "bob", "--password-stdin"], Some("another password\n"));
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = tessera(d, &["user", "create", "--username", "carol", "--password-stdin"], Some("short\n"));
    assert!(!ok && err.contains("8 to 1024"), "{err}");
    let (ok, _, err) = tessera(d, &["user", "create", "--username", "carol"], None);
    assert!(!ok && err.contains("--password-stdin"), "passwords only from stdin: {err}");
    let (ok, _, err) = tessera(d, &["user", "set-password", "bob", "--password-stdin"], Some("a new long password\n"));
    assert!(ok, "{err}");
    assert_eq!(json(d, &["user", "list", "--json"]).as_array().unwrap().len(), 1);
    assert!(tessera(d, &["user", "delete", "bob"], None).0);
    assert!(!tessera(d, &["user", "delete", "bob"], None).0);

    json(
        d,
        &[
            "api",
            "create",
            "--identifier",
            "https://notes.example",
            "--name",
            "Notes",
            "--scope",
            "notes.read=Read your notes",
            "--scope",
            "notes.write=Create and edit your notes",
            "--json",
        ],
    );
    let (ok, _, err) = tessera(d, &["api", "create", "--identifier", "https://other.example", "--name", "Other", "--scope", "notes.read=Steal"], None);
    assert!(!ok && err.contains("already defined"), "scope names are unique across APIs: {err}");
    let (ok, _, err) = tessera(d, &["api", "create", "--identifier", "not a uri", "--name", "X", "--scope", "x=y"], None);
    assert!(!ok && err.contains("--identifier"), "{err}");
    let (ok, _, err) = tessera(d, &["api", "create", "--identifier", "https://x.example", "--name", "X", "--scope", "noequals"], None);
    assert!(!ok && err.contains("NAME=Description"), "{err}");
    let list = json(d, &["api", "list", "--json"]);
    assert_eq!(list[0]["scopes"][1]["name"], "notes.write");
    assert!(tessera(d, &["api", "delete", "https://notes.example"], None).0);
}

/// Wrong settings stop start-up with a message naming the setting.
#[test]
fn bad_settings_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (args, env, needle) in [
        (vec!["serve", "--listen", "nonsense"], None, "--listen"),
        (vec!["serve", "--listen", "127.0.0.1:0", "--issuer", "http://id.example"], None, "--issuer"),
        (vec!["serve", "--listen", "127.0.0.1:0", "--issuer", "not a url"], None, "--issuer"),
        (vec!["serve", "--listen", "127.0.0.1:0", "--database", "mysql://x"], None, "--database"),
        (vec!["serve", "--listen", "127.0.0.1:0"], Some(("TESSERA_ISSUER", "ftp://x")), "TESSERA_ISSUER"),
        (vec!["serve", "--listen", "127.0.0.1:0", "--config", "/nonexistent.toml"], None, "--config"),
        (vec!["serve", "--listen", "127.0.0.1:0", "--argon2-memory-kib", "1024"], None, "--argon2-memory-kib must be 7168 to 4194304"),
        (vec!["serve", "--listen", "127.0.0.1:0"], Some(("TESSERA_ARGON2_ITERATIONS", "1")), "--argon2-iterations 1 is too few"),
        (vec!["user", "list", "--argon2-parallelism", "99"], None, "--argon2-parallelism must be 1 to 16"),
        (vec!["serve", "--listen", "127.0.0.1:0"], Some(("TESSERA_PASSWORD_MIN_LENGTH_SINGLE_FACTOR", "99")), "--password-min-length-single-factor"),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(&args).current_dir(dir.path()).env_remove("TESSERA_ISSUER").stdout(Stdio::null()).stderr(Stdio::piped());
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `tessera apply` (issue 16) as operators script it: `--dry-run` changes nothing, the first
/// apply prints and makes the plan, the second says there is nothing to do, `--prune` deletes
/// what left the file, `export` writes a file that reproduces the state on a fresh database,
/// and `serve --apply` reconciles at start (a broken file stops the start with the reason).
#[test]
fn apply_export_and_serve_apply() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    let secret_file = dir.path().join("web-secret");
    std::fs::write(&secret_file, "a-secret-read-from-a-file-of-32-characters-or-more\n").unwrap();
    let text = format!(
        r#"[[api]]
identifier = "https://notes.example"
name = "Notes"
scopes = [{{ name = "notes.read", description = "Read your notes" }}]

[[client]]
client_id = "notes-web"
name = "Notes Client"
redirect_uris = ["https://notes.example/cb"]
scope = "notes.read"
secret_file = "{}"

[[client]]
client_id = "notes-tv"
name = "Notes TV"
public = true
grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
scope = "notes.read"
"#,
        secret_file.display()
    );
    std::fs::write(&file, &text).unwrap();
    let f = file.to_str().unwrap();
    let (ok, out, err) = tessera(dir.path(), &["apply", f, "--dry-run"], None);
    assert!(ok, "{err}");
    assert!(out.contains("+ create client notes-web") && out.contains("Plan: 3 to create, 0 to update, 0 to delete.") && out.contains("Dry run"), "{out}");
    assert_eq!(json(dir.path(), &["--json", "client", "list"]), serde_json::json!([]), "a dry run changes nothing");
    let (ok, out, err) = tessera(dir.path(), &["apply", f], None);
    assert!(ok && out.contains("Applied."), "{out}{err}");
    let (ok, out, _) = tessera(dir.path(), &["apply", f], None);
    assert!(ok && out.contains("No changes: the database matches"), "{out}");
    // A change by hand is drift, put back by the next apply.
    assert!(tessera(dir.path(), &["client", "update", "notes-web", "--name", "Renamed"], None).0);
    let (_, out, _) = tessera(dir.path(), &["apply", f], None);
    assert!(out.contains("~ update client notes-web: name"), "{out}");
    // The TV client leaves the file: left, then pruned.
    let i = text.find("[[client]]\nclient_id = \"notes-tv\"").unwrap();
    std::fs::write(&file, &text[..i]).unwrap();
    let (_, out, _) = tessera(dir.path(), &["apply", f], None);
    assert!(out.contains("left: client notes-tv"), "{out}");
    let (_, out, _) = tessera(dir.path(), &["apply", f, "--prune"], None);
    assert!(out.contains("- delete client notes-tv"), "{out}");
    // Export, then apply on a fresh database: the same state.
    let (ok, exported, err) = tessera(dir.path(), &["export"], None);
    assert!(ok, "{err}");
    assert!(!exported.contains("a-secret-read"), "no secrets in an export");
    let fresh = tempfile::tempdir().unwrap();
    let copy = fresh.path().join("exported.toml");
    std::fs::write(&copy, exported.replace("client_id = \"notes-web\"", &format!("client_id = \"notes-web\"\nsecret_file = \"{}\"", secret_file.display())))
        .unwrap();
    assert!(tessera(fresh.path(), &["apply", copy.to_str().unwrap()], None).0);
    assert_eq!(tessera(fresh.path(), &["export"], None).1, exported);
    // serve --apply: a broken file stops the start and says why.
    std::fs::write(dir.path().join("broken.toml"), "[[client]]\nclient_id = \"x\"\n").unwrap();
    let (ok, _, err) = tessera(dir.path(), &["serve", "--listen", "127.0.0.1:0", "--apply", "broken.toml"], None);
    assert!(!ok && err.contains("--apply broken.toml"), "{err}");
    // And a good one is reconciled before the server answers: the client it declares is back.
    assert!(tessera(dir.path(), &["client", "update", "notes-web", "--name", "Renamed again"], None).0);
    let server = serve_with(dir.path(), &["--apply", "tessera.toml"]);
    drop(server);
    assert_eq!(json(dir.path(), &["--json", "client", "show", "notes-web"])["name"], "Notes Client");
}

/// The password rules as global flags: `user create` refuses a breached or short password
/// (and creates nobody), and takes a good one.
#[test]
fn user_commands_apply_the_password_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("breached.txt"), "# Pwned Passwords form\nE38AD214943DAAD1D64C102FAEC29DE4AFE9DA3D:123\n").unwrap();
    let flags = ["--breached-passwords", "breached.txt", "--password-min-length", "9"];
    let create = |pw: &str| {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["user", "create", "--username", "carol", "--password-stdin"]);
        tessera(dir.path(), &args, Some(&format!("{pw}\n")))
    };
    let (ok, _, err) = create("password1");
    assert!(!ok && err.contains("breaches"), "{err}");
    let (ok, _, err) = create("eightchr");
    assert!(!ok && err.contains("9 to 1024"), "{err}");
    assert_eq!(json(dir.path(), &["--json", "user", "list"]), serde_json::json!([]), "nobody was created");
    let (ok, _, err) = create("a fine long password");
    assert!(ok, "{err}");
    let (ok, _, err) = tessera(dir.path(), &["--password-min-length", "7", "user", "list"], None);
    assert!(!ok && err.contains("8 to 64"), "{err}");
}

/// `--password-min-length-single-factor 15` (NIST SP 800-63B-4 §3.1.1.2) on the CLI: a new
/// user, who has no second factor yet, and `set-password` for a user without one need 15
/// characters (the error names the rule); once the user has a second factor, the general
/// minimum holds. The `--argon2-*` flags choose the parameters the CLI hashes with.
#[tokio::test]
async fn user_set_password_asks_15_characters_of_a_password_alone() {
    use tessera_storage::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rule = ["--password-min-length-single-factor", "15"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> { rule.iter().copied().chain(extra.iter().copied()).collect() };
    let (ok, _, err) = tessera(d, &with(&["user", "create", "--username", "dave", "--password-stdin"]), Some("fourteen chars\n"));
    assert!(!ok && err.contains("at least 15 characters, or set up two-step sign-in first"), "{err}");
    assert_eq!(json(d, &["--json", "user", "list"]), serde_json::json!([]), "nobody was created");
    let (ok, _, err) = tessera(d, &with(&["user", "create", "--username", "dave", "--password-stdin"]), Some("fifteen chars!!\n"));
    assert!(ok, "{err}");
    let (ok, _, err) = tessera(d, &with(&["user", "set-password", "dave", "--password-stdin"]), Some("fourteen chars\n"));
    assert!(!ok && err.contains("at least 15 characters, or set up two-step sign-in first"), "{err}");
    let (ok, _, err) = tessera(d, &with(&["user", "set-password", "nobody", "--password-stdin"]), Some("fifteen chars!!\n"));
    assert!(!ok && err.contains("no user nobody"), "{err}");

    // dave gets an authenticator app (as the account page stores one): eight characters do.
    let store = tessera_storage_sqlite::SqliteStore::open(&format!("sqlite://{}/tessera-data/tessera.db", d.display())).await.unwrap();
    let dave = store.find_user_by_username("dave").await.unwrap().unwrap();
    let factor = tessera_storage::FactorRecord {
        id: "f-dave".into(),
        user_id: dave.id.clone(),
        kind: tessera_storage::FactorKind::Totp,
        name: "Phone".into(),
        secret: vec![1, 2, 3],
        credential_id: None,
        last_step: None,
        created_at: 0,
        last_used_at: None,
    };
    store.create_factor(&factor).await.unwrap();
    let (ok, _, err) = tessera(d, &with(&["user", "set-password", "dave", "--password-stdin"]), Some("seven c\n"));
    assert!(!ok && err.contains("8 to 1024"), "{err}");
    let args = with(&["--argon2-memory-kib", "12288", "--argon2-iterations", "3", "user", "set-password", "dave", "--password-stdin"]);
    let (ok, _, err) = tessera(d, &args, Some("eight ch\n"));
    assert!(ok, "{err}");
    let hash = store.find_user_by_username("dave").await.unwrap().unwrap().password_hash;
    assert!(hash.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "the CLI hashes with the flags' parameters: {hash}");
    assert!(tessera_server::service::authn::verify_password("eight ch", &hash));
}
