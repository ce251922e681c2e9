//! `tessera demo`: the seed's story in one command. Starts, on the embedded default, the
//! authorization server, the Notes API (a resource server guarded by tessera-guard) and the
//! Notes Client (a third-party web app), each on its own loopback port; registers the API with
//! its three scopes, the client and a demo user; prints the one URL to open and the user's
//! credentials.
//!
//! Idempotent: a second run on the same folder reuses the API, the user (and password) and the
//! client (and secret, kept in `demo.json` there since Tessera shows a secret only once); a
//! client is registered again only if the Notes Client's port, hence its redirect URI, changed.

use crate::cli::DemoArgs;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_guard::{Guard, GuardConfig};
use tessera_server::service::admin::{self, NewClient, NewUser};
use tessera_server::{Config, SystemClock, Tessera};
use tessera_storage_sqlite::SqliteStore;

/// The Notes API's identifier: the `aud` of its access tokens (RFC 8707, RFC 9068 §2.2).
pub const API_IDENTIFIER: &str = "https://notes.example";
pub const DEMO_USER: &str = "demo";
const STATE_FILE: &str = "demo.json";

/// What the demo remembers between runs (the client secret and the user's password are shown
/// by Tessera only once).
#[derive(Debug, Serialize, Deserialize)]
struct DemoState {
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    username: String,
    password: String,
    /// The Notes SPA's public client (absent in folders of demos before it).
    #[serde(default)]
    spa_client_id: Option<String>,
    #[serde(default)]
    spa_redirect_uri: Option<String>,
}

fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyz23456789";
    let bytes: [u8; 15] = rand::random();
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    chars.chunks(5).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

fn read_state(dir: &Path) -> Option<DemoState> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(dir: &Path, s: &DemoState) -> anyhow::Result<()> {
    let path = dir.join(STATE_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(s)?).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

async fn bind(port: u16, what: &str, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("{what}: cannot listen on 127.0.0.1:{port} (in use? choose another with {flag})"))
}

/// Register what is missing; returns the state to use.
async fn register(svc: &Tessera, dir: &Path, redirect_uri: &str, spa_redirect_uri: &str, notes: &notes_api::Db) -> anyhow::Result<DemoState> {
    let store = &*svc.store;
    let now = svc.now();
    let previous = read_state(dir);

    if !store.list_apis().await?.iter().any(|a| a.identifier == API_IDENTIFIER) {
        let scopes = notes_api::SCOPES.iter().map(|(n, d)| admin::parse_api_scope(&format!("{n}={d}"))).collect::<Result<Vec<_>, _>>()?;
        admin::create_api(store, API_IDENTIFIER, "Notes", scopes, now).await?;
    }

    let known_password = previous.as_ref().filter(|p| p.username == DEMO_USER).map(|p| p.password.clone());
    let password = match (store.find_user_by_username(DEMO_USER).await?, known_password) {
        (Some(_), Some(pw)) => pw,
        (Some(_), None) => {
            let pw = random_password();
            admin::set_password(store, DEMO_USER, &pw, &svc.config.argon2, now).await?;
            pw
        }
        (None, _) => {
            let pw = random_password();
            let user = admin::create_user(
                store,
                NewUser { username: DEMO_USER.into(), email: Some("demo@example.com".into()), name: Some("Demo User".into()), ..Default::default() },
                &pw,
                &svc.config.argon2,
                now,
            )
            .await?;
            // A first visit shows something: two notes owned by the new user (`sub` is the user id).
            let t = now;
            notes
                .create(&user.id, "Welcome to your notes", "These notes live in the Notes API. Notes Client shows them only because you allowed it.", t)
                .await?;
            notes
                .create(
                    &user.id,
                    "Try a refusal",
                    "Connect again with only \"Read your notes\" ticked, then press Delete: the API refuses, and the app says so.",
                    t,
                )
                .await?;
            pw
        }
    };

    let reusable = match &previous {
        Some(p) if p.redirect_uri == redirect_uri => store
            .find_client(&p.client_id)
            .await?
            .filter(|c| c.redirect_uris.iter().any(|u| u == redirect_uri))
            .map(|_| (p.client_id.clone(), p.client_secret.clone())),
        _ => None,
    };
    let (client_id, client_secret) = match reusable {
        Some(c) => c,
        None => {
            let scope = notes_api::SCOPES.iter().map(|s| s.0).collect::<Vec<_>>().join(" ");
            let created = admin::create_client(
                store,
                NewClient { name: "Notes Client".into(), redirect_uris: vec![redirect_uri.into()], scope, ..Default::default() },
                now,
            )
            .await?;
            let secret = created.client_secret.context("a confidential client has a secret")?;
            (created.client.client_id, secret)
        }
    };
    // The SPA: a public client that must use DPoP; its browser origin is its redirect URI's.
    let spa_reusable = match &previous {
        Some(DemoState { spa_client_id: Some(id), spa_redirect_uri: Some(uri), .. }) if uri == spa_redirect_uri => {
            store.find_client(id).await?.filter(|c| c.redirect_uris.iter().any(|u| u == spa_redirect_uri)).map(|c| c.client_id)
        }
        _ => None,
    };
    let spa_client_id = match spa_reusable {
        Some(id) => id,
        None => {
            let scope = notes_api::SCOPES.iter().map(|s| s.0).collect::<Vec<_>>().join(" ");
            let created = admin::create_client(
                store,
                NewClient {
                    name: "Notes SPA".into(),
                    redirect_uris: vec![spa_redirect_uri.into()],
                    scope,
                    public: true,
                    require_dpop: true,
                    ..Default::default()
                },
                now,
            )
            .await?;
            created.client.client_id
        }
    };
    let state = DemoState {
        client_id,
        client_secret,
        redirect_uri: redirect_uri.to_string(),
        username: DEMO_USER.into(),
        password,
        spa_client_id: Some(spa_client_id),
        spa_redirect_uri: Some(spa_redirect_uri.to_string()),
    };
    write_state(dir, &state)?;
    Ok(state)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let temp = if args.temp { Some(tempfile::Builder::new().prefix("tessera-demo-").tempdir().context("creating a temporary folder")?) } else { None };
    let dir: PathBuf = match &temp {
        Some(t) => t.path().to_path_buf(),
        None => args.dir.clone(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let as_listener = bind(args.port, "authorization server", "--port").await?;
    let api_listener = bind(args.api_port, "Notes API", "--api-port").await?;
    let client_listener = bind(args.client_port, "Notes Client", "--client-port").await?;
    let spa_listener = bind(args.spa_port, "Notes SPA", "--spa-port").await?;
    let (as_addr, api_addr, client_addr) = (as_listener.local_addr()?, api_listener.local_addr()?, client_listener.local_addr()?);
    let spa_url = format!("http://{}", spa_listener.local_addr()?);
    let spa_redirect_uri = format!("{spa_url}/callback");
    // On localhost, so that passkeys work in the demo (WebAuthn refuses IP addresses).
    let issuer = crate::settings::default_issuer(as_addr);
    let api_url = format!("http://{api_addr}");
    let client_url = format!("http://{client_addr}");
    let redirect_uri = format!("{client_url}/callback");

    let db_url = format!("sqlite://{}", dir.join("tessera.db").display());
    let store = Arc::new(SqliteStore::open_server(&db_url).await.with_context(|| format!("opening {db_url}"))?);
    // Keys sealed under a key-encryption key generated in the demo's folder (issue 13, finding 4).
    let kek = crate::store::key_encryption(&crate::settings::KekSources::default(), &db_url, &*store).await?;
    let svc = Tessera::new(store, Arc::new(SystemClock), Config { key_encryption: Some(kek), ..Config::new(&issuer) }).await.context("loading signing keys")?;
    let notes_db = notes_api::Db::open(&format!("sqlite://{}", dir.join("notes.db").display())).await.context("opening the Notes API database")?;
    let state = register(&svc, &dir, &redirect_uri, &spa_redirect_uri, &notes_db).await?;

    let as_app = tessera_http::router(svc.clone());
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(async move {
        tessera_http::serve(as_listener, as_app, tessera_http::ServeLimits::default(), std::future::pending()).await.context("authorization server")
    });

    let guard = Guard::new(GuardConfig::new(&issuer, API_IDENTIFIER))?;
    guard.refresh().await.context("the Notes API could not fetch the authorization server's keys")?;
    let browser_origins = vec![spa_url.clone()];
    servers
        .spawn(async move { notes_api::serve_for_browsers(api_listener, guard, notes_db, browser_origins, std::future::pending()).await.context("Notes API") });
    let spa = notes_spa::SpaConfig {
        issuer: issuer.clone(),
        client_id: state.spa_client_id.clone().unwrap_or_default(),
        api: api_url.clone(),
        redirect_uri: spa_redirect_uri.clone(),
        scope: notes_api::SCOPES.iter().map(|s| s.0).collect::<Vec<_>>().join(" "),
    };
    servers.spawn(async move { notes_spa::serve(spa_listener, spa, std::future::pending()).await.context("Notes SPA") });

    let client =
        notes_client::NotesClient::new(notes_client::ClientConfig::new(&issuer, &state.client_id, &state.client_secret, &redirect_uri, &api_url)).await?;
    servers.spawn(async move { notes_client::serve(client_listener, client, std::future::pending()).await.context("Notes Client") });

    let where_ = if temp.is_some() { format!("a temporary folder, {} (deleted on exit)", dir.display()) } else { dir.display().to_string() };
    println!("Tessera demo is running. Open {client_url}");
    println!();
    println!("  Press \"Connect your Notes account\" and sign in as");
    println!("    username: {}", state.username);
    println!("    password: {}", state.password);
    println!();
    println!("  authorization server  {issuer}");
    println!("  Notes API             {api_url}   (audience {API_IDENTIFIER}; scopes notes.read notes.write notes.delete)");
    println!("  Notes Client          {client_url}   (client_id {}; a server-side app)", state.client_id);
    println!(
        "  Notes SPA             {spa_url}   (client_id {}; runs in your browser: PKCE, DPoP, tokens in memory)",
        state.spa_client_id.as_deref().unwrap_or("")
    );
    println!("  data                  {where_}");
    println!();
    println!("Or open the browser app, {spa_url}, and sign in as the same user.");
    println!("Ctrl-C stops all four.");
    use std::io::Write;
    let _ = std::io::stdout().flush();

    tokio::select! {
        _ = crate::serve::shutdown() => {}
        Some(done) = servers.join_next() => {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => anyhow::bail!("a demo server stopped: {e}"),
            }
        }
    }
    servers.abort_all();
    drop(temp);
    Ok(())
}
