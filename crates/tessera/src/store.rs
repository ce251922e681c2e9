//! The store a database URL names, opened and migrated: SQLite (`sqlite://PATH`, the embedded
//! default) or PostgreSQL (`postgres://…`, for several instances behind one load balancer).
//! `serve`, `migrate` and every admin command open their store here.

use crate::settings;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
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
        Ok(Arc::new(s))
    } else {
        let s = PgStore::open(url, pool_size).await.with_context(|| format!("database (--database / TESSERA_DATABASE_URL): cannot open {shown}"))?;
        Ok(Arc::new(s))
    }
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
    let mut total = 0;
    for _ in 0..CLEANUP_MAX_BATCHES {
        match store.delete_expired(now, CLEANUP_BATCH).await {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => {
                tracing::warn!(error = %e, "deleting expired rows failed");
                break;
            }
        }
        // Let request traffic in between batches.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if total > 0 {
        tracing::info!(rows = total, "deleted expired rows");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://tessera:s3cret@db.internal:5432/tessera?sslmode=require"), "postgres://tessera:***@db.internal:5432/tessera?sslmode=require");
        assert_eq!(redact("postgres://postgres@127.0.0.1/db"), "postgres://postgres@127.0.0.1/db");
        assert_eq!(redact("postgres://h:5432/db"), "postgres://h:5432/db");
        assert_eq!(redact("sqlite://tessera-data/tessera.db"), "sqlite://tessera-data/tessera.db");
    }
}
