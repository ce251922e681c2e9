//! Test support (feature `test-support`): a fresh, empty PostgreSQL database per test run,
//! created through an admin connection and dropped when the guard goes.
//!
//! The admin URL is `TESSERA_TEST_POSTGRES_URL`, or [`DEFAULT_ADMIN_URL`] (the machine's
//! PostgreSQL with trust authentication). When it cannot be reached, [`TestDatabase::create`]
//! returns an error that says so: PostgreSQL tests fail, they never skip.

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::time::Duration;

/// The machine's PostgreSQL, its maintenance database.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test run.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the new database (same server, user and parameters as the admin URL).
    pub url: String,
    pub name: String,
    admin_url: String,
}

/// The admin URL in force.
pub fn admin_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, Some(p)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[after_scheme..].find('/').map(|i| i + after_scheme).unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(p) = params {
        out.push('?');
        out.push_str(p);
    }
    out
}

async fn admin_connection(admin: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(admin)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!(
            "PostgreSQL is not reachable at {admin}: {e}. Start it (`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`; \
             `.ci/run` does this) or point TESSERA_TEST_POSTGRES_URL at a server. PostgreSQL tests never skip."
        )),
        Err(_) => Err(format!("PostgreSQL at {admin} did not answer within 10 s. PostgreSQL tests never skip.")),
    }
}

impl TestDatabase {
    /// Create `tessera_test_<random>` on the admin URL's server.
    pub async fn create() -> Result<Self, String> {
        let admin = admin_url();
        let mut conn = admin_connection(&admin).await?;
        let suffix: String = (0..12).map(|_| char::from(b'a' + rand::random_range(0..26u8))).collect();
        let name = format!("tessera_test_{suffix}");
        // CREATE DATABASE copies template1 and refuses while another session is copying it: retry.
        let mut last = String::new();
        for attempt in 0..10 {
            match sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await {
                Ok(_) => {
                    let _ = conn.close().await;
                    return Ok(Self { url: with_database(&admin, &name), name, admin_url: admin });
                }
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                }
            }
        }
        Err(format!("CREATE DATABASE {name} failed on {admin}: {last}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // A thread of its own, so that dropping inside an async test does not block its runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(mut c) = admin_connection(&admin).await {
                    let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).execute(&mut c).await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"), "postgres://postgres@127.0.0.1:5432/x");
        assert_eq!(with_database("postgres://u:p@h/db?sslmode=require", "x"), "postgres://u:p@h/x?sslmode=require");
        assert_eq!(with_database("postgresql://h:5432", "x"), "postgresql://h:5432/x");
    }
}
