//! PostgreSQL implementation of [`tessera_storage::Store`]: for several stateless Tessera
//! instances behind one load balancer, on PostgreSQL or a Postgres-compatible database.
//!
//! Layout: [`PgStore::open`] (pool, migrations), the row mappers, then the trait, method for
//! method in the order of the trait, with the same semantics as the SQLite reference backend.
//!
//! - Atomic consumes are single `UPDATE … WHERE used_at IS NULL … RETURNING *` statements: under
//!   READ COMMITTED a concurrent second `UPDATE` re-checks its `WHERE` against the committed row,
//!   so exactly one caller wins.
//! - Every statement is a fixed string with `$n` parameters; sqlx prepares each once per
//!   connection and caches it (the pool's statement cache), so no statement is parsed twice on a
//!   connection.
//! - Losing the database surfaces as [`StoreError::Unavailable`] within [`ACQUIRE_TIMEOUT`]
//!   (the server answers 503 with `Retry-After`); connections are checked before use and
//!   reopened, so service resumes by itself when the database returns.
#![forbid(unsafe_code)]

#[cfg(feature = "test-support")]
pub mod testing;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;
use tessera_storage::*;

/// Longest a request waits for a connection (including reconnecting to a database that went
/// away) before it fails with [`StoreError::Unavailable`].
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

/// SQLSTATE codes that mean "the database is not there right now; try again": connection
/// exceptions (class 08), operator intervention (57P01 admin shutdown, 57P02 crash shutdown,
/// 57P03 cannot connect now), insufficient resources (class 53, e.g. too many connections),
/// serialization failures and deadlocks (40001, 40P01: distributed databases ask clients to
/// retry), and a read-only transaction (25006: a failover in progress).
fn is_transient(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "25006")
}

fn err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(d.message().to_string()),
        sqlx::Error::Database(d) if d.code().is_some_and(|c| is_transient(&c)) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

fn json_vec(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Other(format!("corrupt JSON column: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(e.to_string()))
}

/// Create the throttle rows that are missing and lock them all, in the order given (sorted by
/// the caller), returning each row as it is after any concurrent attempt committed.
const LOCK_THROTTLES: &str = "INSERT INTO throttles (key, failures, last_at) SELECT k, 0, 0 FROM UNNEST($1::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i \
     ON CONFLICT (key) DO UPDATE SET failures = throttles.failures RETURNING key, failures, last_at";

/// The advisory lock key under which instances decide whether to create a signing key.
const SIGNING_KEYS_LOCK: i64 = 0x7e55_e7a0_0000_0001;
const INSERT_KEY_UNLESS_SIGNING: &str = "INSERT INTO signing_keys (kid, alg, private_der, created_at, use_after) SELECT $1, $2, $3, $4, $5 \
     WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND use_after <= $6)";
const INSERT_KEY_UNLESS_CREATED: &str = "INSERT INTO signing_keys (kid, alg, private_der, created_at, use_after) SELECT $1, $2, $3, $4, $5 \
     WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND created_at >= $6)";

impl PgStore {
    /// Connect (`postgres://` or `postgresql://` URL, libpq-style parameters such as
    /// `sslmode=require` accepted), size the pool at `pool_size` connections, and apply the
    /// migrations (under a PostgreSQL advisory lock, so instances starting together are safe).
    pub async fn open(url: &str, pool_size: u32) -> Result<Self> {
        let store = Self::connect(url, pool_size)?;
        store.migrate().await?;
        Ok(store)
    }

    /// The pool without touching the database (connections open on first use).
    pub fn connect(url: &str, pool_size: u32) -> Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Other(format!("not a postgres URL: {url}")));
        }
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid postgres URL: {e}")))?
            .application_name("tessera")
            .statement_cache_capacity(256);
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection the database dropped (restart, failover) is found before use and
            // replaced, so one outage does not poison the pool.
            .test_before_acquire(true)
            .idle_timeout(Duration::from_secs(300))
            .max_lifetime(Duration::from_secs(1800))
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }

    /// Apply pending migrations (`tessera migrate`, and every start).
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations").run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => match err(e) {
                StoreError::Unavailable(m) => StoreError::Unavailable(m),
                other => StoreError::Other(format!("migration failed: {other}")),
            },
            e => StoreError::Other(format!("migration failed: {e}")),
        })
    }

    /// Close every connection (for tests and orderly shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn client_row(r: &PgRow) -> Result<ClientRecord> {
    Ok(ClientRecord {
        client_id: r.try_get("client_id").map_err(err)?,
        name: r.try_get("name").map_err(err)?,
        secret_hash: r.try_get("secret_hash").map_err(err)?,
        redirect_uris: json_vec(r.try_get("redirect_uris").map_err(err)?)?,
        scope: r.try_get("scope").map_err(err)?,
        grant_types: json_vec(r.try_get("grant_types").map_err(err)?)?,
        token_endpoint_auth_method: r.try_get("token_endpoint_auth_method").map_err(err)?,
        created_at: r.try_get("created_at").map_err(err)?,
        post_logout_redirect_uris: json_vec(r.try_get("post_logout_redirect_uris").map_err(err)?)?,
        backchannel_logout_uri: r.try_get("backchannel_logout_uri").map_err(err)?,
        id_token_signed_response_alg: r.try_get("id_token_signed_response_alg").map_err(err)?,
        subject_type: r.try_get("subject_type").map_err(err)?,
    })
}

fn user_row(r: &PgRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: r.try_get("id").map_err(err)?,
        username: r.try_get("username").map_err(err)?,
        email: r.try_get("email").map_err(err)?,
        name: r.try_get("name").map_err(err)?,
        password_hash: r.try_get("password_hash").map_err(err)?,
        created_at: r.try_get("created_at").map_err(err)?,
        profile: serde_json::from_str(r.try_get("profile").map_err(err)?).map_err(|e| StoreError::Other(format!("corrupt profile column: {e}")))?,
        updated_at: r.try_get("updated_at").map_err(err)?,
    })
}

fn session_row(r: &PgRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: r.try_get("id_hash").map_err(err)?,
        sid: r.try_get("sid").map_err(err)?,
        user_id: r.try_get("user_id").map_err(err)?,
        amr: r.try_get("amr").map_err(err)?,
        csrf_token: r.try_get("csrf_token").map_err(err)?,
        auth_time: r.try_get("auth_time").map_err(err)?,
        created_at: r.try_get("created_at").map_err(err)?,
        expires_at: r.try_get("expires_at").map_err(err)?,
    })
}

fn code_row(r: &PgRow) -> Result<CodeRecord> {
    Ok(CodeRecord {
        code_hash: r.try_get("code_hash").map_err(err)?,
        grant_id: r.try_get("grant_id").map_err(err)?,
        client_id: r.try_get("client_id").map_err(err)?,
        user_id: r.try_get("user_id").map_err(err)?,
        redirect_uri: r.try_get("redirect_uri").map_err(err)?,
        redirect_uri_given: r.try_get("redirect_uri_given").map_err(err)?,
        code_challenge: r.try_get("code_challenge").map_err(err)?,
        scope: r.try_get("scope").map_err(err)?,
        audience: r.try_get("audience").map_err(err)?,
        auth_time: r.try_get("auth_time").map_err(err)?,
        expires_at: r.try_get("expires_at").map_err(err)?,
        used_at: r.try_get("used_at").map_err(err)?,
        oidc: r.try_get("oidc").map_err(err)?,
    })
}

fn refresh_row(r: &PgRow) -> Result<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: r.try_get("token_hash").map_err(err)?,
        family_id: r.try_get("family_id").map_err(err)?,
        client_id: r.try_get("client_id").map_err(err)?,
        user_id: r.try_get("user_id").map_err(err)?,
        scope: r.try_get("scope").map_err(err)?,
        audience: r.try_get("audience").map_err(err)?,
        auth_time: r.try_get("auth_time").map_err(err)?,
        created_at: r.try_get("created_at").map_err(err)?,
        expires_at: r.try_get("expires_at").map_err(err)?,
        family_expires_at: r.try_get("family_expires_at").map_err(err)?,
        used_at: r.try_get("used_at").map_err(err)?,
        revoked_at: r.try_get("revoked_at").map_err(err)?,
        oidc: r.try_get("oidc").map_err(err)?,
    })
}

fn device_row(r: &PgRow) -> Result<DeviceCodeRecord> {
    Ok(DeviceCodeRecord {
        device_code_hash: r.try_get("device_code_hash").map_err(err)?,
        user_code: r.try_get("user_code").map_err(err)?,
        client_id: r.try_get("client_id").map_err(err)?,
        scope: r.try_get("scope").map_err(err)?,
        audience: r.try_get("audience").map_err(err)?,
        expires_at: r.try_get("expires_at").map_err(err)?,
        interval: r.try_get("interval").map_err(err)?,
        last_polled_at: r.try_get("last_polled_at").map_err(err)?,
        status: r.try_get("status").map_err(err)?,
        user_id: r.try_get("user_id").map_err(err)?,
        auth_time: r.try_get("auth_time").map_err(err)?,
        oidc: r.try_get("oidc").map_err(err)?,
    })
}

/// The atomic consume of a refresh token: unused (or used within the grace window), not revoked,
/// not expired, and its family not revoked.
const TAKE_REFRESH: &str = "UPDATE refresh_tokens SET used_at = COALESCE(used_at, $1) WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1 AND family_expires_at > $1 \
     AND (used_at IS NULL OR ($3 > 0 AND used_at >= $1 - $3)) \
     AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = refresh_tokens.family_id) RETURNING *";

/// Store a refresh token. One created in a family that was revoked meanwhile (a replay racing
/// the redemption that issues it) is born revoked.
type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Bind a key's columns in table order (kid, alg, private_der, created_at, use_after).
fn bind_key<'q>(q: PgQuery<'q>, k: &'q KeyRecord) -> PgQuery<'q> {
    q.bind(&k.kid).bind(&k.alg).bind(&k.private_der).bind(k.created_at).bind(k.use_after)
}

/// Bind a session's columns in table order (id_hash, sid, user_id, amr, csrf_token, auth_time,
/// created_at, expires_at).
fn bind_session<'q>(q: PgQuery<'q>, s: &'q SessionRecord) -> PgQuery<'q> {
    q.bind(&s.id_hash).bind(&s.sid).bind(&s.user_id).bind(&s.amr).bind(&s.csrf_token).bind(s.auth_time).bind(s.created_at).bind(s.expires_at)
}

/// Bind a pending request's columns in table order (id, session_hash, data, expires_at).
fn bind_pending<'q>(q: PgQuery<'q>, r: &'q PendingRequestRecord) -> PgQuery<'q> {
    q.bind(&r.id).bind(&r.session_hash).bind(&r.data).bind(r.expires_at)
}

async fn insert_refresh<'e, 't: 'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(e: E, t: &'t RefreshTokenRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, audience, auth_time, created_at, expires_at, used_at, revoked_at, family_expires_at, oidc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, (SELECT f.revoked_at FROM revoked_families f WHERE f.family_id = $2)), $12, $13)",
    )
    .bind(&t.token_hash)
    .bind(&t.family_id)
    .bind(&t.client_id)
    .bind(&t.user_id)
    .bind(&t.scope)
    .bind(&t.audience)
    .bind(t.auth_time)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.used_at)
    .bind(t.revoked_at)
    .bind(t.family_expires_at)
    .bind(&t.oidc)
    .execute(e)
    .await
    .map_err(err)?;
    Ok(())
}

/// The atomic consume of an authorization code.
const TAKE_CODE: &str = "UPDATE codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL RETURNING *";

/// The atomic consume of an approved, unexpired device code.
const TAKE_DEVICE_CODE: &str =
    "UPDATE device_codes SET status = 'consumed' WHERE device_code_hash = $1 AND status = 'approved' AND expires_at > $2 RETURNING *";

/// A code as it was before this call took it.
fn taken_code(r: &PgRow) -> Result<CodeRecord> {
    let mut c = code_row(r)?;
    c.used_at = None;
    Ok(c)
}

/// A device code as it was before this call took it.
fn taken_device_code(r: &PgRow) -> Result<DeviceCodeRecord> {
    let mut d = device_row(r)?;
    d.status = "approved".into();
    Ok(d)
}

impl PgStore {
    /// Why a code was not taken: it was used before, or it does not exist.
    async fn code_not_taken(&self, code_hash: &str) -> Result<Taken<CodeRecord>> {
        Ok(match self.find_code(code_hash).await? {
            Some(c) => Taken::AlreadyUsed(c),
            None => Taken::NotFound,
        })
    }

    /// Why a device code was not taken: not approved, consumed or expired, or it does not exist.
    async fn device_code_not_taken(&self, device_code_hash: &str) -> Result<Taken<DeviceCodeRecord>> {
        Ok(match self.find_device_code(device_code_hash).await? {
            Some(d) => Taken::AlreadyUsed(d),
            None => Taken::NotFound,
        })
    }

    /// Why a refresh token was not taken: it exists (used, revoked or expired) or it does not.
    async fn refresh_not_taken(&self, token_hash: &str) -> Result<Taken<RefreshTokenRecord>> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1").bind(token_hash).fetch_optional(&self.pool).await.map_err(err)?;
        Ok(match row {
            Some(r) => Taken::AlreadyUsed(refresh_row(&r)?),
            None => Taken::NotFound,
        })
    }
}

/// End every session of `user_id` but `keep` (an id hash), with the sessions' pending requests
/// and client lists (RFC 9700 §4.14.2).
async fn end_sessions(c: &mut sqlx::PgConnection, user_id: &str, keep: Option<&str>) -> Result<()> {
    sqlx::query("DELETE FROM pending_requests WHERE session_hash IN (SELECT id_hash FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2)")
        .bind(user_id)
        .bind(keep)
        .execute(&mut *c)
        .await
        .map_err(err)?;
    sqlx::query("DELETE FROM session_clients WHERE sid IN (SELECT sid FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2 AND sid <> '')")
        .bind(user_id)
        .bind(keep)
        .execute(&mut *c)
        .await
        .map_err(err)?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2").bind(user_id).bind(keep).execute(&mut *c).await.map_err(err)?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn create_client(&self, c: &ClientRecord) -> Result<()> {
        sqlx::query("INSERT INTO clients (client_id, name, secret_hash, redirect_uris, scope, grant_types, token_endpoint_auth_method, created_at, post_logout_redirect_uris, backchannel_logout_uri, id_token_signed_response_alg, subject_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(&c.client_id)
            .bind(&c.name)
            .bind(&c.secret_hash)
            .bind(to_json(&c.redirect_uris)?)
            .bind(&c.scope)
            .bind(to_json(&c.grant_types)?)
            .bind(&c.token_endpoint_auth_method)
            .bind(c.created_at)
            .bind(to_json(&c.post_logout_redirect_uris)?)
            .bind(&c.backchannel_logout_uri)
            .bind(&c.id_token_signed_response_alg)
            .bind(&c.subject_type)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1").bind(client_id).fetch_optional(&self.pool).await.map_err(err)?;
        row.as_ref().map(client_row).transpose()
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id").fetch_all(&self.pool).await.map_err(err)?;
        rows.iter().map(client_row).collect()
    }
    async fn update_client_secret(&self, client_id: &str, secret_hash: &str) -> Result<bool> {
        let r =
            sqlx::query("UPDATE clients SET secret_hash = $1 WHERE client_id = $2").bind(secret_hash).bind(client_id).execute(&self.pool).await.map_err(err)?;
        Ok(r.rows_affected() > 0)
    }
    async fn delete_client(&self, client_id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(client_id).execute(&self.pool).await.map_err(err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_user(&self, u: &UserRecord) -> Result<()> {
        sqlx::query("INSERT INTO users (id, username, email, name, password_hash, created_at, profile, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&u.id)
            .bind(&u.username)
            .bind(&u.email)
            .bind(&u.name)
            .bind(&u.password_hash)
            .bind(u.created_at)
            .bind(to_json(&u.profile)?)
            .bind(u.updated_at)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn find_user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1").bind(username).fetch_optional(&self.pool).await.map_err(err)?;
        row.as_ref().map(user_row).transpose()
    }
    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(id).fetch_optional(&self.pool).await.map_err(err)?;
        row.as_ref().map(user_row).transpose()
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username").fetch_all(&self.pool).await.map_err(err)?;
        rows.iter().map(user_row).collect()
    }
    async fn update_user(&self, u: &UserRecord) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET email = $1, name = $2, profile = $3, updated_at = $4 WHERE id = $5")
            .bind(&u.email)
            .bind(&u.name)
            .bind(to_json(&u.profile)?)
            .bind(u.updated_at)
            .bind(&u.id)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(r.rows_affected() > 0)
    }

    // Ending a user's access (RFC 9700 §4.14.2): one transaction each, opened by the statement on
    // the user's row (which it locks, so concurrent calls for one user queue behind it).
    async fn update_user_password(&self, username: &str, password_hash: &str, keep_session: Option<&str>, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(row) = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id")
            .bind(password_hash)
            .bind(username)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?
        else {
            return Ok(false);
        };
        let id: String = row.try_get("id").map_err(err)?;
        end_sessions(&mut tx, &id, keep_session).await?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query("DELETE FROM codes WHERE user_id = $1 AND used_at IS NULL").bind(&id).execute(&mut *tx).await.map_err(err)?;
        sqlx::query("DELETE FROM device_codes WHERE user_id = $1 AND status = 'approved'").bind(&id).execute(&mut *tx).await.map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(true)
    }
    async fn delete_user(&self, username: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(row) = sqlx::query("DELETE FROM users WHERE username = $1 RETURNING id").bind(username).fetch_optional(&mut *tx).await.map_err(err)? else {
            return Ok(false);
        };
        let id: String = row.try_get("id").map_err(err)?;
        end_sessions(&mut tx, &id, None).await?;
        for sql in [
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM codes WHERE user_id = $1",
            "DELETE FROM device_codes WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(true)
    }

    async fn create_api(&self, a: &ApiRecord) -> Result<()> {
        sqlx::query("INSERT INTO apis (identifier, name, scopes, created_at, secret_hash) VALUES ($1, $2, $3, $4, $5)")
            .bind(&a.identifier)
            .bind(&a.name)
            .bind(to_json(&a.scopes)?)
            .bind(a.created_at)
            .bind(&a.secret_hash)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn list_apis(&self) -> Result<Vec<ApiRecord>> {
        let rows = sqlx::query("SELECT * FROM apis ORDER BY created_at, identifier").fetch_all(&self.pool).await.map_err(err)?;
        rows.iter()
            .map(|r| {
                let scopes: String = r.try_get("scopes").map_err(err)?;
                Ok(ApiRecord {
                    identifier: r.try_get("identifier").map_err(err)?,
                    name: r.try_get("name").map_err(err)?,
                    scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Other(format!("corrupt scopes column: {e}")))?,
                    created_at: r.try_get("created_at").map_err(err)?,
                    secret_hash: r.try_get("secret_hash").map_err(err)?,
                })
            })
            .collect()
    }
    async fn update_api_secret(&self, identifier: &str, secret_hash: &str) -> Result<bool> {
        let r =
            sqlx::query("UPDATE apis SET secret_hash = $1 WHERE identifier = $2").bind(secret_hash).bind(identifier).execute(&self.pool).await.map_err(err)?;
        Ok(r.rows_affected() > 0)
    }
    async fn delete_api(&self, identifier: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM apis WHERE identifier = $1").bind(identifier).execute(&self.pool).await.map_err(err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_signing_key(&self, k: &KeyRecord) -> Result<()> {
        bind_key(sqlx::query("INSERT INTO signing_keys (kid, alg, private_der, created_at, use_after) VALUES ($1, $2, $3, $4, $5)"), k)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn create_signing_key_unless(&self, k: &KeyRecord, unless: ExistingKey) -> Result<bool> {
        // A transaction-scoped advisory lock serializes the decision across instances; the
        // insert is its own statement after the lock, so its NOT EXISTS sees every key committed
        // before (READ COMMITTED takes a snapshot per statement).
        let (insert, at) = match unless {
            ExistingKey::SignsAt(t) => (INSERT_KEY_UNLESS_SIGNING, t),
            ExistingKey::CreatedSince(t) => (INSERT_KEY_UNLESS_CREATED, t),
        };
        let mut tx = self.pool.begin().await.map_err(err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SIGNING_KEYS_LOCK).execute(&mut *tx).await.map_err(err)?;
        let stored = bind_key(sqlx::query(insert), k).bind(at).execute(&mut *tx).await.map_err(err)?.rows_affected() == 1;
        tx.commit().await.map_err(err)?;
        Ok(stored)
    }
    async fn list_signing_keys(&self) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid").fetch_all(&self.pool).await.map_err(err)?;
        rows.iter()
            .map(|r| {
                Ok(KeyRecord {
                    kid: r.try_get("kid").map_err(err)?,
                    alg: r.try_get("alg").map_err(err)?,
                    private_der: r.try_get("private_der").map_err(err)?,
                    created_at: r.try_get("created_at").map_err(err)?,
                    use_after: r.try_get("use_after").map_err(err)?,
                })
            })
            .collect()
    }
    async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid).execute(&self.pool).await.map_err(err)?;
        Ok(r.rows_affected() > 0)
    }

    // Signing keys at rest (issue 13, finding 4).
    async fn update_signing_key_der(&self, kid: &str, expected: &[u8], new: &[u8]) -> Result<bool> {
        let r = sqlx::query("UPDATE signing_keys SET private_der = $1 WHERE kid = $2 AND private_der = $3")
            .bind(new)
            .bind(kid)
            .bind(expected)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        bind_session(
            sqlx::query(
                "INSERT INTO sessions (id_hash, sid, user_id, amr, csrf_token, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ),
            s,
        )
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(())
    }
    async fn find_session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.as_ref().map(session_row).transpose()
    }
    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await.map_err(err)?;
        Ok(())
    }
    async fn find_session_by_sid(&self, sid: &str, now: i64) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE sid = $1 AND expires_at > $2").bind(sid).bind(now).fetch_optional(&self.pool).await.map_err(err)?;
        row.as_ref().map(session_row).transpose()
    }
    async fn add_session_client(&self, sid: &str, client_id: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO session_clients (sid, client_id, at) VALUES ($1, $2, $3) ON CONFLICT (sid, client_id) DO UPDATE SET at = excluded.at")
            .bind(sid)
            .bind(client_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn list_session_clients(&self, sid: &str) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT client_id FROM session_clients WHERE sid = $1 ORDER BY at, client_id").bind(sid).fetch_all(&self.pool).await.map_err(err)?;
        rows.iter().map(|r| r.try_get("client_id").map_err(err)).collect()
    }
    async fn create_pending_request(&self, r: &PendingRequestRecord) -> Result<()> {
        bind_pending(sqlx::query("INSERT INTO pending_requests (id, session_hash, data, expires_at) VALUES ($1, $2, $3, $4)"), r)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn find_pending_request(&self, id: &str, now: i64) -> Result<Option<PendingRequestRecord>> {
        let row =
            sqlx::query("SELECT * FROM pending_requests WHERE id = $1 AND expires_at > $2").bind(id).bind(now).fetch_optional(&self.pool).await.map_err(err)?;
        row.map(|r| {
            Ok(PendingRequestRecord {
                id: r.try_get("id").map_err(err)?,
                session_hash: r.try_get("session_hash").map_err(err)?,
                data: r.try_get("data").map_err(err)?,
                expires_at: r.try_get("expires_at").map_err(err)?,
            })
        })
        .transpose()
    }
    async fn delete_pending_request(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM pending_requests WHERE id = $1").bind(id).execute(&self.pool).await.map_err(err)?;
        Ok(())
    }
    async fn replace_session(&self, old_id_hash: &str, new: &SessionRecord, p: &PendingRequestRecord) -> Result<()> {
        // One statement (data-modifying CTEs, one round trip, one commit); the three touch
        // different rows, and a failing insert undoes the others.
        let q = sqlx::query(
            "WITH gone AS (DELETE FROM sessions WHERE id_hash = $1), \
             moved AS (INSERT INTO pending_requests (id, session_hash, data, expires_at) VALUES ($10, $11, $12, $13) \
               ON CONFLICT (id) DO UPDATE SET session_hash = excluded.session_hash, data = excluded.data, expires_at = excluded.expires_at) \
             INSERT INTO sessions (id_hash, sid, user_id, amr, csrf_token, auth_time, created_at, expires_at) VALUES ($2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(old_id_hash);
        bind_pending(bind_session(q, new), p).execute(&self.pool).await.map_err(err)?;
        Ok(())
    }

    async fn find_consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.map(|r| r.try_get("scope").map_err(err)).transpose()
    }
    async fn update_consent(&self, user_id: &str, client_id: &str, scope: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at")
            .bind(user_id)
            .bind(client_id)
            .bind(scope)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn create_code(&self, c: &CodeRecord) -> Result<()> {
        sqlx::query("INSERT INTO codes (code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_given, code_challenge, scope, audience, auth_time, expires_at, used_at, oidc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
            .bind(&c.code_hash)
            .bind(&c.grant_id)
            .bind(&c.client_id)
            .bind(&c.user_id)
            .bind(&c.redirect_uri)
            .bind(c.redirect_uri_given)
            .bind(&c.code_challenge)
            .bind(&c.scope)
            .bind(&c.audience)
            .bind(c.auth_time)
            .bind(c.expires_at)
            .bind(c.used_at)
            .bind(&c.oidc)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn find_code(&self, code_hash: &str) -> Result<Option<CodeRecord>> {
        let row = sqlx::query("SELECT * FROM codes WHERE code_hash = $1").bind(code_hash).fetch_optional(&self.pool).await.map_err(err)?;
        row.as_ref().map(code_row).transpose()
    }
    async fn take_code(&self, code_hash: &str, now: i64) -> Result<Taken<CodeRecord>> {
        let row = sqlx::query(TAKE_CODE).bind(now).bind(code_hash).fetch_optional(&self.pool).await.map_err(err)?;
        match row {
            Some(r) => Ok(Taken::Taken(taken_code(&r)?)),
            None => self.code_not_taken(code_hash).await,
        }
    }
    async fn take_code_issuing(&self, code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<CodeRecord>> {
        let Some(next) = next else { return self.take_code(code_hash, now).await };
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(row) = sqlx::query(TAKE_CODE).bind(now).bind(code_hash).fetch_optional(&mut *tx).await.map_err(err)? else {
            drop(tx);
            return self.code_not_taken(code_hash).await;
        };
        let taken = taken_code(&row)?;
        insert_refresh(&mut *tx, next).await?;
        tx.commit().await.map_err(err)?;
        Ok(Taken::Taken(taken))
    }

    async fn create_refresh_token(&self, t: &RefreshTokenRecord) -> Result<()> {
        insert_refresh(&self.pool, t).await
    }
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1").bind(token_hash).fetch_optional(&self.pool).await.map_err(err)?;
        row.as_ref().map(refresh_row).transpose()
    }
    async fn take_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64) -> Result<Taken<RefreshTokenRecord>> {
        let row = sqlx::query(TAKE_REFRESH).bind(now).bind(token_hash).bind(grace_secs).fetch_optional(&self.pool).await.map_err(err)?;
        match row {
            Some(r) => Ok(Taken::Taken(refresh_row(&r)?)),
            None => self.refresh_not_taken(token_hash).await,
        }
    }
    async fn rotate_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<RefreshTokenRecord>> {
        let Some(next) = next else { return self.take_refresh_token(token_hash, now, grace_secs).await };
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(row) = sqlx::query(TAKE_REFRESH).bind(now).bind(token_hash).bind(grace_secs).fetch_optional(&mut *tx).await.map_err(err)? else {
            drop(tx);
            return self.refresh_not_taken(token_hash).await;
        };
        let taken = refresh_row(&row)?;
        insert_refresh(&mut *tx, next).await?;
        tx.commit().await.map_err(err)?;
        Ok(Taken::Taken(taken))
    }
    async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64> {
        // One transaction: the family is revoked whole or not at all.
        let mut tx = self.pool.begin().await.map_err(err)?;
        let r = sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL AND used_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        // Kept a day: longer than any access token of the family lives.
        sqlx::query("INSERT INTO revoked_families (family_id, revoked_at, expires_at) VALUES ($1, $2, $3) ON CONFLICT (family_id) DO NOTHING")
            .bind(family_id)
            .bind(now)
            .bind(now + 86_400)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(r.rows_affected())
    }

    async fn create_revoked_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn is_revoked(&self, jti: &str, family_id: Option<&str>) -> Result<bool> {
        let r = sqlx::query(
            "SELECT (EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1) OR EXISTS (SELECT 1 FROM revoked_families WHERE family_id = $2)) AS revoked",
        )
        .bind(jti)
        .bind(family_id)
        .fetch_one(&self.pool)
        .await
        .map_err(err)?;
        r.try_get("revoked").map_err(err)
    }

    async fn create_device_code(&self, d: &DeviceCodeRecord) -> Result<()> {
        sqlx::query("INSERT INTO device_codes (device_code_hash, user_code, client_id, scope, audience, expires_at, \"interval\", last_polled_at, status, user_id, auth_time, oidc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(&d.device_code_hash)
            .bind(&d.user_code)
            .bind(&d.client_id)
            .bind(&d.scope)
            .bind(&d.audience)
            .bind(d.expires_at)
            .bind(d.interval)
            .bind(d.last_polled_at)
            .bind(&d.status)
            .bind(&d.user_id)
            .bind(d.auth_time)
            .bind(&d.oidc)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn find_device_code(&self, device_code_hash: &str) -> Result<Option<DeviceCodeRecord>> {
        let row = sqlx::query("SELECT * FROM device_codes WHERE device_code_hash = $1").bind(device_code_hash).fetch_optional(&self.pool).await.map_err(err)?;
        row.as_ref().map(device_row).transpose()
    }
    async fn find_device_code_by_user_code(&self, user_code: &str, now: i64) -> Result<Option<DeviceCodeRecord>> {
        let row = sqlx::query("SELECT * FROM device_codes WHERE user_code = $1 AND expires_at > $2")
            .bind(user_code)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.as_ref().map(device_row).transpose()
    }
    async fn decide_device_code(&self, user_code: &str, approve: bool, user_id: &str, auth_time: i64, oidc: Option<&str>, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE device_codes SET status = $1, user_id = $2, auth_time = $3, oidc = COALESCE($4, oidc) WHERE user_code = $5 AND status = 'pending' AND expires_at > $6")
            .bind(if approve { "approved" } else { "denied" })
            .bind(user_id)
            .bind(auth_time)
            .bind(oidc)
            .bind(user_code)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(r.rows_affected() > 0)
    }
    async fn update_device_poll(&self, device_code_hash: &str, now: i64, interval: i64) -> Result<()> {
        sqlx::query("UPDATE device_codes SET last_polled_at = $1, \"interval\" = $2 WHERE device_code_hash = $3")
            .bind(now)
            .bind(interval)
            .bind(device_code_hash)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn take_device_code(&self, device_code_hash: &str, now: i64) -> Result<Taken<DeviceCodeRecord>> {
        let row = sqlx::query(TAKE_DEVICE_CODE).bind(device_code_hash).bind(now).fetch_optional(&self.pool).await.map_err(err)?;
        match row {
            Some(r) => Ok(Taken::Taken(taken_device_code(&r)?)),
            None => self.device_code_not_taken(device_code_hash).await,
        }
    }
    async fn take_device_code_issuing(&self, device_code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<DeviceCodeRecord>> {
        let Some(next) = next else { return self.take_device_code(device_code_hash, now).await };
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(row) = sqlx::query(TAKE_DEVICE_CODE).bind(device_code_hash).bind(now).fetch_optional(&mut *tx).await.map_err(err)? else {
            drop(tx);
            return self.device_code_not_taken(device_code_hash).await;
        };
        let taken = taken_device_code(&row)?;
        insert_refresh(&mut *tx, next).await?;
        tx.commit().await.map_err(err)?;
        Ok(Taken::Taken(taken))
    }

    async fn delete_expired(&self, now: i64, batch: i64) -> Result<u64> {
        // One bounded DELETE per table; callers loop while rows keep going.
        const STATEMENTS: &[&str] = &[
            "DELETE FROM codes WHERE code_hash IN (SELECT code_hash FROM codes WHERE expires_at < $1 - 3600 LIMIT $2)",
            "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_at < $1 LIMIT $2)",
            "DELETE FROM pending_requests WHERE id IN (SELECT id FROM pending_requests WHERE expires_at < $1 LIMIT $2)",
            "DELETE FROM device_codes WHERE device_code_hash IN (SELECT device_code_hash FROM device_codes WHERE expires_at < $1 - 3600 LIMIT $2)",
            "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens WHERE family_expires_at < $1 LIMIT $2)",
            "DELETE FROM revoked_tokens WHERE jti IN (SELECT jti FROM revoked_tokens WHERE expires_at < $1 LIMIT $2)",
            "DELETE FROM revoked_families WHERE family_id IN (SELECT family_id FROM revoked_families WHERE expires_at < $1 LIMIT $2)",
            "DELETE FROM login_failures WHERE id IN (SELECT id FROM login_failures WHERE at < $1 - 86400 LIMIT $2)",
            // A day after its last failure a throttle key has started over (as in SQLite).
            "DELETE FROM throttles WHERE key IN (SELECT key FROM throttles WHERE last_at < $1 - 86400 LIMIT $2)",
            "DELETE FROM session_clients WHERE (sid, client_id) IN (SELECT sid, client_id FROM session_clients WHERE at < $1 - 2592000 LIMIT $2)",
        ];
        let mut n = 0;
        for sql in STATEMENTS {
            n += sqlx::query(*sql).bind(now).bind(batch).execute(&self.pool).await.map_err(err)?.rows_affected();
        }
        Ok(n)
    }

    // --- Throttling of guesses (issue 13, findings 1 and 6) ---
    async fn take_throttle_attempt(&self, keys: &[(String, ThrottleRule)], now: i64) -> Result<ThrottleAttempt> {
        // The keys' rows, created if new and locked (in key order, so that two attempts over the
        // same keys never deadlock) by one upsert; the decision; the new counts; commit. A
        // concurrent attempt on any of the keys, from any instance, waits for the commit and
        // then reads the counts it left (READ COMMITTED re-reads the locked row).
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|&a, &b| keys[a].0.cmp(&keys[b].0));
        order.dedup_by(|a, b| keys[*a].0 == keys[*b].0);
        let sorted: Vec<&str> = order.iter().map(|&i| keys[i].0.as_str()).collect();
        let mut tx = self.pool.begin().await.map_err(err)?;
        let rows = sqlx::query(LOCK_THROTTLES).bind(&sorted).fetch_all(&mut *tx).await.map_err(err)?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let key: String = r.try_get("key").map_err(err)?;
            found.insert(key, ThrottleState { failures: r.try_get("failures").map_err(err)?, last_at: r.try_get("last_at").map_err(err)? });
        }
        let states: Vec<ThrottleState> = keys.iter().map(|(k, _)| found.get(k).copied().unwrap_or_default()).collect();
        let (attempt, next) = decide_throttles(keys, &states, now);
        if next.is_empty() {
            // Refused (or no keys): nothing counted; the rollback also undoes new rows.
            tx.rollback().await.map_err(err)?;
            return Ok(attempt);
        }
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        let failures: Vec<i64> = next.iter().map(|s| s.failures).collect();
        let last_at: Vec<i64> = next.iter().map(|s| s.last_at).collect();
        sqlx::query("UPDATE throttles AS t SET failures = n.failures, last_at = n.last_at FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS n(key, failures, last_at) WHERE t.key = n.key")
            .bind(&names)
            .bind(&failures)
            .bind(&last_at)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(attempt)
    }
    async fn update_throttle_success(&self, reset: &[String], refund: &[String]) -> Result<()> {
        sqlx::query("UPDATE throttles SET failures = CASE WHEN key = ANY($1) THEN 0 ELSE GREATEST(failures - 1, 0) END WHERE key = ANY($1) OR key = ANY($2)")
            .bind(reset)
            .bind(refund)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn create_audit_event(&self, kind: &str, detail: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO audit_events (kind, detail, at) VALUES ($1, $2, $3)")
            .bind(kind)
            .bind(detail)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
    async fn list_audit_events(&self, kind: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT detail FROM audit_events WHERE kind = $1 ORDER BY id").bind(kind).fetch_all(&self.pool).await.map_err(err)?;
        rows.iter().map(|r| r.try_get("detail").map_err(err)).collect()
    }
}
