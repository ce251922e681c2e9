//! The store a database URL names, opened and migrated: SQLite (`sqlite://PATH`, the embedded
//! default) or PostgreSQL (`postgres://…`, for several instances behind one load balancer).
//! `serve`, `migrate` and every admin command open their store here.

use crate::settings::{self, KekSources};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tessera_jose::kek::{Kek, KeyEncryption};
use tessera_storage::Store;
use tessera_storage_postgres::PgStore;
use tessera_storage_sqlite::SqliteStore;

/// Connections an admin command opens to PostgreSQL.
pub const ADMIN_POOL_SIZE: u32 = 2;

/// How often `serve` deletes expired rows, and how many per table and statement.
pub const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);
pub const CLEANUP_BATCH: i64 = 500;
/// Batches per cleanup round at most, so that one round never runs long.
const CLEANUP_MAX_BATCHES: usize = 100;

/// Open (creating and migrating as needed) the store `url` names, for an admin command.
pub async fn open_store(url: &str, pool_size: u32) -> anyhow::Result<Arc<dyn Store>> {
    open(url, pool_size, false).await
}

/// [`open_store`] for `serve`: on SQLite, the one server of the database (a second is refused;
/// revocations are then kept in memory, see `SqliteStore::open_server`).
pub async fn open_server_store(url: &str, pool_size: u32) -> anyhow::Result<Arc<dyn Store>> {
    open(url, pool_size, true).await
}

async fn open(url: &str, pool_size: u32, server: bool) -> anyhow::Result<Arc<dyn Store>> {
    settings::check_database(url)?;
    let shown = redact(url);
    if url.starts_with("sqlite:") {
        let s = if server { SqliteStore::open_server(url).await } else { SqliteStore::open(url).await };
        let s = s.with_context(|| format!("database (--database / TESSERA_DATABASE_URL): cannot open {shown}"))?;
        warn_if_shared_folder(url);
        Ok(Arc::new(s))
    } else {
        let s = PgStore::open(url, pool_size).await.with_context(|| format!("database (--database / TESSERA_DATABASE_URL): cannot open {shown}"))?;
        Ok(Arc::new(s))
    }
}

// Keys at rest (issue 13, finding 4; RFC 6819 §5.1.4.1.3).

/// The name of the generated key-encryption key file.
pub const KEK_FILE_NAME: &str = "key-encryption-key";

/// Where the KEK is generated when no setting names one: beside the SQLite database (in the data
/// folder); for PostgreSQL (and an in-memory SQLite), `tessera-data/key-encryption-key` in the
/// working directory — every PostgreSQL instance needs the same KEK, so several instances
/// should be given one explicitly (docs/deployment.md).
pub fn default_kek_path(database_url: &str) -> PathBuf {
    let sqlite = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:")).filter(|p| *p != ":memory:");
    match sqlite.map(Path::new).and_then(Path::parent) {
        Some(dir) => dir.join(KEK_FILE_NAME),
        None if sqlite.is_some() => PathBuf::from(KEK_FILE_NAME),
        None => Path::new("tessera-data").join(KEK_FILE_NAME),
    }
}

/// Read a KEK file (base64 text).
fn read_kek_file(path: &Path, setting: &str) -> anyhow::Result<Kek> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{setting}: cannot read {}", path.display()))?;
    Kek::from_base64(&text).with_context(|| format!("{setting}: {}", path.display()))
}

/// Make `path` readable by its owner only (0600) when its mode allows more, saying so.
#[cfg(unix)]
fn tighten(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).with_context(|| format!("cannot make {} private (0600)", path.display()))?;
        tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "the key-encryption key file was readable by others: now 0600");
    }
    Ok(())
}
#[cfg(not(unix))]
fn tighten(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Write a new KEK to `path` (0600, never overwriting: a concurrent start's file wins).
fn generate_kek_file(path: &Path) -> anyhow::Result<Kek> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = Kek::generate_base64()?;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(mut f) => {
            f.write_all(format!("{text}\n").as_bytes()).and_then(|()| f.sync_all()).with_context(|| format!("cannot write {}", path.display()))?;
            Ok(Kek::from_base64(&text)?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_kek_file(path, "key-encryption key"),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// The key-encryption keys for `store`, from the settings or the default file (generated on
/// first start). Checks that every stored signing key can be opened with them, so that a wrong
/// or missing KEK stops the start with a message naming the KEK ids and where the KEK came
/// from; a missing default file is generated only when no stored key is sealed under a KEK not
/// given (never a new KEK over keys sealed by a lost one).
pub async fn key_encryption(sources: &KekSources, database_url: &str, store: &dyn Store) -> anyhow::Result<Arc<KeyEncryption>> {
    let previous = match (&sources.previous, &sources.previous_file) {
        (Some(k), _) => vec![Kek::from_base64(k).context("TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS")?],
        (None, Some(p)) => vec![read_kek_file(p, "--key-encryption-key-previous-file / TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS_FILE")?],
        (None, None) => vec![],
    };
    let forms = tessera_server::keys::stored_forms(store).await?;
    let (current, from) = match (&sources.key, &sources.file) {
        (Some(_), Some(_)) => {
            bail!("key-encryption key: set TESSERA_KEY_ENCRYPTION_KEY or --key-encryption-key-file / TESSERA_KEY_ENCRYPTION_KEY_FILE, not both")
        }
        (Some(k), None) => (Kek::from_base64(k).context("TESSERA_KEY_ENCRYPTION_KEY")?, "TESSERA_KEY_ENCRYPTION_KEY".to_string()),
        (None, Some(p)) => {
            tighten(p)?;
            (read_kek_file(p, "--key-encryption-key-file / TESSERA_KEY_ENCRYPTION_KEY_FILE")?, p.display().to_string())
        }
        (None, None) => {
            let path = default_kek_path(database_url);
            if path.exists() {
                tighten(&path)?;
                (read_kek_file(&path, "key-encryption key")?, path.display().to_string())
            } else {
                let lost: Vec<String> = forms.iter().filter_map(|(_, f)| f.kek_id()).filter(|id| !previous.iter().any(|k| k.id() == *id)).collect();
                if let Some(id) = lost.first() {
                    bail!(
                        "the signing keys are sealed under key-encryption key {id}, but {} does not exist: restore it, or set TESSERA_KEY_ENCRYPTION_KEY / --key-encryption-key-file to the key-encryption key that sealed them",
                        path.display()
                    );
                }
                let kek = generate_kek_file(&path)?;
                tracing::info!(file = %path.display(), kek = %kek.id(), "generated a key-encryption key");
                if !database_url.starts_with("sqlite:") {
                    tracing::warn!(file = %path.display(), "generated a key-encryption key for a PostgreSQL database: every instance needs this same key (copy the file, or set TESSERA_KEY_ENCRYPTION_KEY_FILE on each)");
                }
                (kek, path.display().to_string())
            }
        }
    };
    let kek = KeyEncryption::new(current, previous);
    for (kid, form) in &forms {
        if !kek.can_open(*form) {
            bail!(
                "signing key {kid} is sealed under key-encryption key {}, but this server has key-encryption key {} (from {from}): every instance must use the key-encryption key that sealed the keys; during a rotation, give the old one as TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS or --key-encryption-key-previous-file",
                form.kek_id().unwrap_or_default(),
                kek.ids()
            );
        }
    }
    Ok(Arc::new(kek))
}

/// The database's files are 0600 (`SqliteStore` makes them so); a folder that others can read or
/// enter is left as it is (it may be shared), with a warning.
fn warn_if_shared_folder(url: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or("");
        let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) else { return };
        if let Ok(m) = std::fs::metadata(dir) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(folder = %dir.display(), mode = format!("{:o}", m.permissions().mode() & 0o777), "the data folder is open to other users (its files are 0600); consider chmod 700");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = url;
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!("{}{}:***{}", &url[..scheme_end], &authority[..colon], &rest[at..]),
        _ => url.to_string(),
    }
}

/// One cleanup round: delete expired rows in bounded batches until none are left (or the round's
/// limit). Errors are logged, never fatal: the next round tries again.
pub async fn cleanup_round(store: &dyn Store, now: i64) {
    let total = in_batches("expired rows", || store.delete_expired(now, CLEANUP_BATCH)).await;
    if total > 0 {
        tracing::info!(rows = total, "deleted expired rows");
    }
}

/// Run `batch` (a bounded delete) until it deletes nothing, fails, or [`CLEANUP_MAX_BATCHES`]
/// ran, pausing between batches; how many rows went.
async fn in_batches<'a, F, Fut>(what: &str, mut batch: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = tessera_storage::Result<u64>> + 'a,
{
    let mut total = 0;
    for _ in 0..CLEANUP_MAX_BATCHES {
        match batch().await {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => {
                tracing::warn!(error = %e, "deleting {what} failed");
                break;
            }
        }
        // Let request traffic in between batches.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    total
}

/// Audit events older than `before` go, in bounded batches (the retention setting).
pub async fn audit_retention_round(store: &dyn Store, before: i64) {
    let total = in_batches("old audit events", || store.delete_audit_events_before(before, CLEANUP_BATCH)).await;
    if total > 0 {
        tracing::info!(events = total, "deleted audit events past their retention");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retention deletes what is older than the bound, in batches, and nothing newer.
    #[tokio::test]
    async fn audit_retention_deletes_only_older_events() {
        use tessera_storage::prelude::*;
        let store = tessera_storage_sqlite::SqliteStore::open("sqlite::memory:").await.unwrap();
        for at in 0..1_200 {
            let e = tessera_storage::NewAuditEvent { kind: "sign_in", detail: "{}", ..Default::default() };
            store.record_audit_event(&e, at).await.unwrap();
        }
        audit_retention_round(&store, 1_100).await;
        let left = store.find_audit_events(&tessera_storage::AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
        assert_eq!(left.len(), 100, "more than one batch (500) went");
        assert!(left.iter().all(|e| e.at >= 1_100));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://tessera:s3cret@db.internal:5432/tessera?sslmode=require"),
            "postgres://tessera:***@db.internal:5432/tessera?sslmode=require"
        );
        assert_eq!(redact("postgres://postgres@127.0.0.1/db"), "postgres://postgres@127.0.0.1/db");
        assert_eq!(redact("postgres://h:5432/db"), "postgres://h:5432/db");
        assert_eq!(redact("sqlite://tessera-data/tessera.db"), "sqlite://tessera-data/tessera.db");
    }
}
