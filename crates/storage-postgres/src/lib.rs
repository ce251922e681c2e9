//! PostgreSQL implementation of [`tessera_storage::Store`]: for several stateless Tessera
//! instances behind one load balancer, on PostgreSQL or a Postgres-compatible database.
//!
//! Layout: [`PgStore::open`] (pool, migrations), the driver glue (rows read through
//! [`tessera_storage::row`], arguments bound from [`tessera_storage::sql::Arg`]), what only
//! PostgreSQL does (throttle locking, the advisory lock around key creation, the sign-in's
//! session change as one statement), then one `impl` per contract over the shared statements of
//! [`tessera_storage::sql`].
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
use std::sync::LazyLock;
use std::time::Duration;
use tessera_protocol::scope::Scopes;
use tessera_storage::row::{self, Mapper};
use tessera_storage::sql::{self, Arg, OneTime};
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

/// A sqlx row, read through the shared mappers.
struct PgRowRef<'a>(&'a PgRow);

tessera_storage::impl_row!(PgRowRef<'_>, |r, i| r.0.try_get(i).map_err(err));

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// A shared statement with its arguments bound (sqlx prepares it once per connection).
fn query<'q>(sql: &'static str, args: &'q [Arg<'q>]) -> PgQuery<'q> {
    args.iter().fold(sqlx::query(sql), |q, a| match a {
        Arg::Text(s) => q.bind(*s),
        Arg::OptText(s) => q.bind(*s),
        Arg::Owned(s) => q.bind(s.as_str()),
        Arg::OptOwned(s) => q.bind(s.as_deref()),
        Arg::Int(i) => q.bind(*i),
        Arg::OptInt(i) => q.bind(*i),
        Arg::Bool(b) => q.bind(*b),
        Arg::Bytes(b) => q.bind(*b),
    })
}

async fn fetch_opt<'e, T, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(e: E, sql: &'static str, args: &[Arg<'_>], map: Mapper<T>) -> Result<Option<T>> {
    query(sql, args).fetch_optional(e).await.map_err(err)?.as_ref().map(|r| map(&PgRowRef(r))).transpose()
}

async fn fetch_all<'e, T, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(e: E, sql: &'static str, args: &[Arg<'_>], map: Mapper<T>) -> Result<Vec<T>> {
    query(sql, args).fetch_all(e).await.map_err(err)?.iter().map(|r| map(&PgRowRef(r))).collect()
}

/// Run a statement that returns no rows; the number of rows it changed.
async fn run<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(e: E, sql: &'static str, args: &[Arg<'_>]) -> Result<u64> {
    Ok(query(sql, args).execute(e).await.map_err(err)?.rows_affected())
}

/// Create the throttle rows that are missing and lock them all, in the order given (sorted by
/// the caller), returning each row as it is after any concurrent attempt committed.
const LOCK_THROTTLES: &str = "INSERT INTO throttles (key, failures, last_at) SELECT k, 0, 0 FROM UNNEST($1::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i \
     ON CONFLICT (key) DO UPDATE SET failures = throttles.failures RETURNING key, failures, last_at";

/// The advisory lock key under which instances decide whether to create a signing key.
const SIGNING_KEYS_LOCK: i64 = 0x7e55_e7a0_0000_0001;

/// Sign-in's change of session as one statement (data-modifying CTEs, one round trip, one
/// commit): `$1` the old session, `$2`–`$12` the new one (`sql::SESSION_COLUMNS`' order),
/// `$13`–`$16` the pending request. The three touch different rows, and a failing insert undoes
/// the others.
const REPLACE_SESSION: &str = concat!(
    "WITH gone AS (DELETE FROM sessions WHERE id_hash = $1), ",
    "moved AS (INSERT INTO pending_requests (id, session_hash, data, expires_at) VALUES ($13, $14, $15, $16) ",
    "ON CONFLICT (id) DO UPDATE SET session_hash = excluded.session_hash, data = excluded.data, expires_at = excluded.expires_at) ",
    "INSERT INTO sessions (id_hash, sid, user_id, amr, csrf_token, auth_time, created_at, expires_at, user_agent, address, last_used_at) ",
    "VALUES ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);

/// The clean-up statements, rows addressed by primary key.
static DELETE_EXPIRED: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| sql::EXPIRED.iter().map(|e| &*Box::leak(sql::expiry_statement(e, e.key, false).into_boxed_str())).collect());

impl PgStore {
    /// Take a one-time value (and, if given, store `next` with it in one transaction); when the
    /// take fails, why: it was used (revoked, expired, not approved) before, or it does not exist.
    async fn take<T>(&self, one: &OneTime<T>, args: &[Arg<'_>], key: &str, next: Option<&RefreshTokenRecord>) -> Result<Taken<T>> {
        let taken = match next {
            None => fetch_opt(&self.pool, one.take, args, one.taken).await?,
            Some(next) => {
                let mut tx = self.pool.begin().await.map_err(err)?;
                let taken = fetch_opt(&mut *tx, one.take, args, one.taken).await?;
                if taken.is_some() {
                    run(&mut *tx, sql::INSERT_REFRESH, &sql::refresh_args(next)?).await?;
                    tx.commit().await.map_err(err)?;
                }
                taken
            }
        };
        if let Some(t) = taken {
            return Ok(Taken::Taken(t));
        }
        Ok(match fetch_opt(&self.pool, one.find, &[Arg::Text(key)], one.found).await? {
            Some(t) => Taken::AlreadyUsed(t),
            None => Taken::NotFound,
        })
    }
}

/// End every session of `user_id` but `keep` (an id hash), with the sessions' pending requests
/// and client lists (RFC 9700 §4.14.2).
/// What a new password or a disabled account ends: the sessions (but `keep`), the refresh
/// tokens, the unredeemed codes and approved device codes.
async fn end_access(c: &mut sqlx::PgConnection, user_id: &str, keep: Option<&str>, now: i64) -> Result<()> {
    end_sessions(&mut *c, user_id, keep).await?;
    run(&mut *c, sql::REVOKE_USER_REFRESH_TOKENS, &[Arg::Text(user_id), Arg::Int(now)]).await?;
    for sql in sql::PASSWORD_DELETES {
        run(&mut *c, sql, &[Arg::Text(user_id)]).await?;
    }
    Ok(())
}

async fn end_sessions(c: &mut sqlx::PgConnection, user_id: &str, keep: Option<&str>) -> Result<()> {
    for sql in sql::END_SESSIONS {
        run(&mut *c, sql, &[Arg::Text(user_id), Arg::OptText(keep)]).await?;
    }
    Ok(())
}

#[async_trait]
impl ClientStore for PgStore {
    async fn create_client(&self, c: &ClientRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_CLIENT, &sql::client_args(c)?).await.map(drop)
    }
    async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        fetch_opt(&self.pool, sql::FIND_CLIENT, &[Arg::Text(client_id)], row::client_from_row).await
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
        fetch_all(&self.pool, sql::LIST_CLIENTS, &[], row::client_from_row).await
    }
    async fn update_client_secret(&self, client_id: &str, secret_hash: &str) -> Result<bool> {
        Ok(run(&self.pool, sql::UPDATE_CLIENT_SECRET, &[Arg::Text(secret_hash), Arg::Text(client_id)]).await? > 0)
    }
    async fn update_client(&self, c: &ClientRecord) -> Result<bool> {
        Ok(run(&self.pool, sql::UPDATE_CLIENT, &sql::client_update_args(c)?).await? > 0)
    }
    async fn delete_client(&self, client_id: &str) -> Result<bool> {
        Ok(run(&self.pool, sql::DELETE_CLIENT, &[Arg::Text(client_id)]).await? > 0)
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, u: &UserRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_USER, &sql::user_args(u)?).await.map(drop)
    }
    async fn find_user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        fetch_opt(&self.pool, sql::FIND_USER_BY_USERNAME, &[Arg::Text(username)], row::user_from_row).await
    }
    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>> {
        fetch_opt(&self.pool, sql::FIND_USER, &[Arg::Text(id)], row::user_from_row).await
    }
    async fn find_users_by_email(&self, email: &str) -> Result<Vec<UserRecord>> {
        fetch_all(&self.pool, sql::FIND_USERS_BY_EMAIL, &[Arg::Text(email)], row::user_from_row).await
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        fetch_all(&self.pool, sql::LIST_USERS, &[], row::user_from_row).await
    }
    async fn update_user(&self, u: &UserRecord) -> Result<bool> {
        Ok(run(&self.pool, sql::UPDATE_USER, &sql::user_update_args(u)?).await? > 0)
    }

    // Ending a user's access (RFC 9700 §4.14.2): one transaction each, opened by the statement on
    // the user's row (which it locks, so concurrent calls for one user queue behind it).
    async fn update_user_password(&self, username: &str, password_hash: &str, keep_session: Option<&str>, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(id) = fetch_opt(&mut *tx, sql::UPDATE_PASSWORD, &[Arg::Text(password_hash), Arg::Text(username)], row::text_from_row).await? else {
            return Ok(false);
        };
        end_access(&mut tx, &id, keep_session, now).await?;
        tx.commit().await.map_err(err)?;
        Ok(true)
    }
    async fn update_user_admin(&self, user_id: &str, is_admin: bool) -> Result<bool> {
        Ok(fetch_opt(&self.pool, sql::UPDATE_USER_ADMIN, &[Arg::Text(user_id), Arg::Bool(is_admin)], row::text_from_row).await?.is_some())
    }
    async fn update_user_require_mfa(&self, user_id: &str, require: bool) -> Result<bool> {
        Ok(fetch_opt(&self.pool, sql::UPDATE_USER_REQUIRE_MFA, &[Arg::Text(user_id), Arg::Bool(require)], row::text_from_row).await?.is_some())
    }
    async fn update_user_email_verified(&self, user_id: &str, email: &str) -> Result<bool> {
        Ok(fetch_opt(&self.pool, sql::UPDATE_USER_EMAIL_VERIFIED, &[Arg::Text(user_id), Arg::Text(email)], row::text_from_row).await?.is_some())
    }
    async fn update_user_password_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool> {
        Ok(run(&self.pool, sql::UPDATE_PASSWORD_HASH, &[Arg::Text(user_id), Arg::Text(new), Arg::Text(old)]).await? > 0)
    }
    async fn update_user_disabled(&self, user_id: &str, disabled: bool, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let at = disabled.then_some(now);
        if fetch_opt(&mut *tx, sql::UPDATE_USER_DISABLED, &[Arg::Text(user_id), Arg::OptInt(at)], row::text_from_row).await?.is_none() {
            return Ok(false);
        }
        if disabled {
            end_access(&mut tx, user_id, None, now).await?;
        }
        tx.commit().await.map_err(err)?;
        Ok(true)
    }
    async fn delete_user(&self, username: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(id) = fetch_opt(&mut *tx, sql::DELETE_USER, &[Arg::Text(username)], row::text_from_row).await? else {
            return Ok(false);
        };
        end_sessions(&mut tx, &id, None).await?;
        for sql in sql::DELETE_USER_ROWS {
            run(&mut *tx, sql, &[Arg::Text(&id)]).await?;
        }
        tx.commit().await.map_err(err)?;
        Ok(true)
    }
}

#[async_trait]
impl FactorStore for PgStore {
    async fn create_factor(&self, f: &FactorRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_FACTOR, &sql::factor_args(f)).await.map(drop)
    }
    async fn list_factors(&self, user_id: &str) -> Result<Vec<FactorRecord>> {
        fetch_all(&self.pool, sql::LIST_FACTORS, &[Arg::Text(user_id)], row::factor_from_row).await
    }
    async fn find_factor_by_credential(&self, credential_id: &str) -> Result<Option<FactorRecord>> {
        fetch_opt(&self.pool, sql::FIND_FACTOR_BY_CREDENTIAL, &[Arg::Text(credential_id)], row::factor_from_row).await
    }
    async fn delete_factor(&self, user_id: &str, id: &str) -> Result<bool> {
        Ok(run(&self.pool, sql::DELETE_FACTOR, &[Arg::Text(user_id), Arg::Text(id)]).await? > 0)
    }
    async fn update_factor_step(&self, id: &str, step: i64, now: i64) -> Result<bool> {
        let args = [Arg::Text(id), Arg::Int(step), Arg::Int(now)];
        Ok(fetch_opt(&self.pool, sql::UPDATE_FACTOR_STEP, &args, row::text_from_row).await?.is_some())
    }
    async fn update_factor_secret(&self, id: &str, expected: &[u8], new: &[u8], now: i64) -> Result<bool> {
        let args = [Arg::Text(id), Arg::Bytes(new), Arg::Int(now), Arg::Bytes(expected)];
        Ok(fetch_opt(&self.pool, sql::UPDATE_FACTOR_SECRET, &args, row::text_from_row).await?.is_some())
    }
    async fn delete_factors(&self, user_id: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let n = run(&mut *tx, sql::DELETE_FACTORS[0], &[Arg::Text(user_id)]).await?;
        run(&mut *tx, sql::DELETE_FACTORS[1], &[Arg::Text(user_id)]).await?;
        tx.commit().await.map_err(err)?;
        Ok(n)
    }
    async fn replace_recovery_codes(&self, user_id: &str, code_hashes: &[String], now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        run(&mut *tx, sql::DELETE_RECOVERY_CODES, &[Arg::Text(user_id)]).await?;
        for h in code_hashes {
            run(&mut *tx, sql::INSERT_RECOVERY_CODE, &[Arg::Text(user_id), Arg::Text(h), Arg::Int(now)]).await?;
        }
        tx.commit().await.map_err(err)
    }
    async fn take_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool> {
        let args = [Arg::Text(user_id), Arg::Text(code_hash), Arg::Int(now)];
        Ok(fetch_opt(&self.pool, sql::TAKE_RECOVERY_CODE, &args, row::text_from_row).await?.is_some())
    }
    async fn count_recovery_codes(&self, user_id: &str) -> Result<i64> {
        Ok(fetch_opt(&self.pool, sql::COUNT_RECOVERY_CODES, &[Arg::Text(user_id)], row::int_from_row).await?.unwrap_or(0))
    }
}

#[async_trait]
impl UserTokenStore for PgStore {
    async fn create_user_token(&self, t: &UserTokenRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_USER_TOKEN, &sql::user_token_args(t)).await.map(drop)
    }
    async fn find_user_token(&self, token_hash: &str, purpose: &str, now: i64) -> Result<Option<UserTokenRecord>> {
        let args = [Arg::Text(token_hash), Arg::Text(purpose), Arg::Int(now)];
        fetch_opt(&self.pool, sql::FIND_USER_TOKEN, &args, row::user_token_from_row).await
    }
    async fn take_user_token(&self, token_hash: &str, purpose: &str, now: i64) -> Result<Option<UserTokenRecord>> {
        let args = [Arg::Text(token_hash), Arg::Text(purpose), Arg::Int(now)];
        fetch_opt(&self.pool, sql::TAKE_USER_TOKEN, &args, row::user_token_from_row).await
    }
    async fn delete_user_tokens(&self, user_id: &str, purpose: &str) -> Result<u64> {
        run(&self.pool, sql::DELETE_USER_TOKENS, &[Arg::Text(user_id), Arg::Text(purpose)]).await
    }
}

#[async_trait]
impl ApiStore for PgStore {
    async fn create_api(&self, a: &ApiRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_API, &sql::api_args(a)?).await.map(drop)
    }
    async fn list_apis(&self) -> Result<Vec<ApiRecord>> {
        fetch_all(&self.pool, sql::LIST_APIS, &[], row::api_from_row).await
    }
    async fn update_api_secret(&self, identifier: &str, secret_hash: &str) -> Result<bool> {
        Ok(run(&self.pool, sql::UPDATE_API_SECRET, &[Arg::Text(secret_hash), Arg::Text(identifier)]).await? > 0)
    }
    async fn delete_api(&self, identifier: &str) -> Result<bool> {
        self.delete_with(&sql::DELETE_API_ROWS, sql::DELETE_API, identifier).await
    }
}

impl PgStore {
    /// Delete one row by `key` with `main`, after the rows that go with it (`rows`), in one
    /// transaction.
    async fn delete_with(&self, rows: &[&'static str], main: &'static str, key: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        for sql in rows {
            run(&mut *tx, sql, &[Arg::Text(key)]).await?;
        }
        let deleted = run(&mut *tx, main, &[Arg::Text(key)]).await? > 0;
        tx.commit().await.map_err(err)?;
        Ok(deleted)
    }
}

#[async_trait]
impl GroupStore for PgStore {
    async fn create_group(&self, g: &GroupRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_GROUP, &sql::group_args(g)).await.map(drop)
    }
    async fn find_group(&self, name: &str) -> Result<Option<GroupRecord>> {
        fetch_opt(&self.pool, sql::FIND_GROUP, &[Arg::Text(name)], row::group_from_row).await
    }
    async fn list_groups(&self) -> Result<Vec<GroupRecord>> {
        fetch_all(&self.pool, sql::LIST_GROUPS, &[], row::group_from_row).await
    }
    async fn delete_group(&self, name: &str) -> Result<bool> {
        self.delete_with(&sql::DELETE_GROUP_ROWS, sql::DELETE_GROUP, name).await
    }
    async fn create_group_member(&self, group: &str, user_id: &str) -> Result<bool> {
        Ok(run(&self.pool, sql::INSERT_GROUP_MEMBER, &[Arg::Text(group), Arg::Text(user_id)]).await? > 0)
    }
    async fn delete_group_member(&self, group: &str, user_id: &str) -> Result<bool> {
        Ok(run(&self.pool, sql::DELETE_GROUP_MEMBER, &[Arg::Text(group), Arg::Text(user_id)]).await? > 0)
    }
    async fn list_group_members(&self, group: &str) -> Result<Vec<String>> {
        fetch_all(&self.pool, sql::LIST_GROUP_MEMBERS, &[Arg::Text(group)], row::text_from_row).await
    }
    async fn list_user_groups(&self, user_id: &str) -> Result<Vec<String>> {
        fetch_all(&self.pool, sql::LIST_USER_GROUPS, &[Arg::Text(user_id)], row::text_from_row).await
    }
}

#[async_trait]
impl RoleStore for PgStore {
    async fn create_role_assignment(&self, a: &RoleAssignment) -> Result<bool> {
        Ok(run(&self.pool, sql::INSERT_ROLE_ASSIGNMENT, &sql::role_assignment_args(a)).await? > 0)
    }
    async fn delete_role_assignment(&self, a: &RoleAssignment) -> Result<bool> {
        Ok(run(&self.pool, sql::DELETE_ROLE_ASSIGNMENT, &sql::role_assignment_args(a)).await? > 0)
    }
    async fn list_role_assignments(&self, api: &str) -> Result<Vec<RoleAssignment>> {
        fetch_all(&self.pool, sql::LIST_ROLE_ASSIGNMENTS, &[Arg::Text(api)], row::role_assignment_from_row).await
    }
    async fn find_user_roles(&self, user_id: &str, api: &str) -> Result<Vec<String>> {
        fetch_all(&self.pool, sql::FIND_USER_ROLES, &[Arg::Text(api), Arg::Text(user_id)], row::text_from_row).await
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn create_signing_key(&self, k: &KeyRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_KEY, &sql::key_args(k)).await.map(drop)
    }
    async fn create_signing_key_unless(&self, k: &KeyRecord, unless: ExistingKey) -> Result<bool> {
        // A transaction-scoped advisory lock serializes the decision across instances; the
        // insert is its own statement after the lock, so its NOT EXISTS sees every key committed
        // before (READ COMMITTED takes a snapshot per statement).
        let (insert, args) = sql::key_unless(k, unless, false);
        let mut tx = self.pool.begin().await.map_err(err)?;
        run(&mut *tx, "SELECT pg_advisory_xact_lock($1)", &[Arg::Int(SIGNING_KEYS_LOCK)]).await?;
        let stored = run(&mut *tx, insert, &args).await? == 1;
        tx.commit().await.map_err(err)?;
        Ok(stored)
    }
    async fn list_signing_keys(&self) -> Result<Vec<KeyRecord>> {
        fetch_all(&self.pool, sql::LIST_KEYS, &[], row::key_from_row).await
    }
    async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        Ok(run(&self.pool, sql::DELETE_KEY, &[Arg::Text(kid)]).await? > 0)
    }
    async fn update_signing_key_der(&self, kid: &str, expected: &[u8], new: &[u8]) -> Result<bool> {
        Ok(run(&self.pool, sql::UPDATE_KEY_DER, &[Arg::Bytes(new), Arg::Text(kid), Arg::Bytes(expected)]).await? > 0)
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn list_user_sessions(&self, user_id: &str, now: i64) -> Result<Vec<SessionRecord>> {
        fetch_all(&self.pool, sql::LIST_USER_SESSIONS, &[Arg::Text(user_id), Arg::Int(now)], row::session_from_row).await
    }
    async fn delete_user_sessions(&self, user_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        end_sessions(&mut tx, user_id, None).await?;
        tx.commit().await.map_err(err)
    }
    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_SESSION, &sql::session_args(s)).await.map(drop)
    }
    async fn find_session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>> {
        fetch_opt(&self.pool, sql::FIND_SESSION, &[Arg::Text(id_hash), Arg::Int(now)], row::session_from_row).await
    }
    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        run(&self.pool, sql::DELETE_SESSION, &[Arg::Text(id_hash)]).await.map(drop)
    }
    async fn find_session_by_sid(&self, sid: &str, now: i64) -> Result<Option<SessionRecord>> {
        fetch_opt(&self.pool, sql::FIND_SESSION_BY_SID, &[Arg::Text(sid), Arg::Int(now)], row::session_from_row).await
    }
    async fn update_session_last_used(&self, id_hash: &str, now: i64) -> Result<bool> {
        run(&self.pool, sql::TOUCH_SESSION, &[Arg::Text(id_hash), Arg::Int(now)]).await.map(|n| n > 0)
    }
    async fn add_session_client(&self, sid: &str, client_id: &str, now: i64) -> Result<()> {
        run(&self.pool, sql::UPSERT_SESSION_CLIENT, &[Arg::Text(sid), Arg::Text(client_id), Arg::Int(now)]).await.map(drop)
    }
    async fn list_session_clients(&self, sid: &str) -> Result<Vec<String>> {
        fetch_all(&self.pool, sql::LIST_SESSION_CLIENTS, &[Arg::Text(sid)], row::text_from_row).await
    }
    async fn create_pending_request(&self, p: &PendingRequestRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_PENDING, &sql::pending_args(p)).await.map(drop)
    }
    async fn find_pending_request(&self, id: &str, now: i64) -> Result<Option<PendingRequestRecord>> {
        fetch_opt(&self.pool, sql::FIND_PENDING, &[Arg::Text(id), Arg::Int(now)], row::pending_from_row).await
    }
    async fn delete_pending_request(&self, id: &str) -> Result<()> {
        run(&self.pool, sql::DELETE_PENDING, &[Arg::Text(id)]).await.map(drop)
    }
    async fn replace_session(&self, old_id_hash: &str, new: &SessionRecord, p: &PendingRequestRecord) -> Result<()> {
        let args: Vec<Arg<'_>> = std::iter::once(Arg::Text(old_id_hash)).chain(sql::session_args(new)).chain(sql::pending_args(p)).collect();
        run(&self.pool, REPLACE_SESSION, &args).await.map(drop)
    }
}

#[async_trait]
impl ConsentStore for PgStore {
    async fn find_consent(&self, user_id: &str, client_id: &str) -> Result<Option<Scopes>> {
        fetch_opt(&self.pool, sql::FIND_CONSENT, &[Arg::Text(user_id), Arg::Text(client_id)], row::scopes_from_row).await
    }
    async fn update_consent(&self, user_id: &str, client_id: &str, scope: &Scopes, now: i64) -> Result<()> {
        let args = [Arg::Text(user_id), Arg::Text(client_id), Arg::Owned(scope.to_string()), Arg::Int(now)];
        run(&self.pool, sql::UPSERT_CONSENT, &args).await.map(drop)
    }
    async fn list_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>> {
        fetch_all(&self.pool, sql::LIST_CONSENTS, &[Arg::Text(user_id)], row::consent_from_row).await
    }
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        run(&mut *tx, sql::DELETE_CONSENT[0], &[Arg::Text(user_id), Arg::Text(client_id)]).await?;
        let deleted = run(&mut *tx, sql::DELETE_CONSENT[1], &[Arg::Text(user_id), Arg::Text(client_id)]).await? > 0;
        tx.commit().await.map_err(err)?;
        Ok(deleted)
    }
    async fn list_grant_families(&self, user_id: &str, client_id: &str) -> Result<Vec<String>> {
        fetch_all(&self.pool, sql::LIST_GRANT_FAMILIES, &[Arg::Text(user_id), Arg::Text(client_id)], row::text_from_row).await
    }
}

#[async_trait]
impl CodeStore for PgStore {
    async fn create_code(&self, c: &CodeRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_CODE, &sql::code_args(c)?).await.map(drop)
    }
    async fn find_code(&self, code_hash: &str) -> Result<Option<CodeRecord>> {
        fetch_opt(&self.pool, sql::FIND_CODE, &[Arg::Text(code_hash)], row::code_from_row).await
    }
    async fn take_code(&self, code_hash: &str, now: i64) -> Result<Taken<CodeRecord>> {
        self.take(&sql::CODE, &[Arg::Int(now), Arg::Text(code_hash)], code_hash, None).await
    }
    async fn take_code_issuing(&self, code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<CodeRecord>> {
        self.take(&sql::CODE, &[Arg::Int(now), Arg::Text(code_hash)], code_hash, next).await
    }
}

#[async_trait]
impl RefreshTokenStore for PgStore {
    async fn create_refresh_token(&self, t: &RefreshTokenRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_REFRESH, &sql::refresh_args(t)?).await.map(drop)
    }
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>> {
        fetch_opt(&self.pool, sql::FIND_REFRESH, &[Arg::Text(token_hash)], row::refresh_from_row).await
    }
    async fn take_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64) -> Result<Taken<RefreshTokenRecord>> {
        self.take(&sql::REFRESH, &[Arg::Int(now), Arg::Text(token_hash), Arg::Int(grace_secs)], token_hash, None).await
    }
    async fn rotate_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<RefreshTokenRecord>> {
        self.take(&sql::REFRESH, &[Arg::Int(now), Arg::Text(token_hash), Arg::Int(grace_secs)], token_hash, next).await
    }
    async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64> {
        // One transaction: the family is revoked whole or not at all.
        let mut tx = self.pool.begin().await.map_err(err)?;
        let live = run(&mut *tx, sql::REVOKE_FAMILY_LIVE, &[Arg::Int(now), Arg::Text(family_id)]).await?;
        run(&mut *tx, sql::REVOKE_FAMILY_REST, &[Arg::Int(now), Arg::Text(family_id)]).await?;
        run(&mut *tx, sql::INSERT_REVOKED_FAMILY, &[Arg::Text(family_id), Arg::Int(now), Arg::Int(now + sql::REVOKED_FAMILY_KEPT_SECS)]).await?;
        tx.commit().await.map_err(err)?;
        Ok(live)
    }
}

#[async_trait]
impl RevocationStore for PgStore {
    async fn create_revoked_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        run(&self.pool, sql::INSERT_REVOKED_TOKEN, &[Arg::Text(jti), Arg::Int(expires_at)]).await.map(drop)
    }
    async fn is_revoked(&self, jti: &str, family_id: Option<&str>) -> Result<bool> {
        Ok(fetch_opt(&self.pool, sql::IS_REVOKED, &[Arg::Text(jti), Arg::OptText(family_id)], row::bool_from_row).await?.unwrap_or(false))
    }
}

#[async_trait]
impl DpopStore for PgStore {
    async fn create_dpop_proof(&self, id: &str, expires_at: i64, now: i64) -> Result<bool> {
        Ok(run(&self.pool, sql::INSERT_SEEN_JWT, &[Arg::Text(id), Arg::Int(expires_at), Arg::Int(now)]).await? > 0)
    }
    async fn create_dpop_nonce(&self, nonce_hash: &str, expires_at: i64) -> Result<()> {
        run(&self.pool, sql::INSERT_DPOP_NONCE, &[Arg::Text(nonce_hash), Arg::Int(expires_at)]).await.map(drop)
    }
    async fn find_dpop_nonce(&self, nonce_hash: &str, now: i64) -> Result<bool> {
        Ok(fetch_opt(&self.pool, sql::FIND_DPOP_NONCE, &[Arg::Text(nonce_hash), Arg::Int(now)], row::bool_from_row).await?.unwrap_or(false))
    }
}

#[async_trait]
impl AssertionStore for PgStore {
    async fn take_assertion(&self, id: &str, expires_at: i64, now: i64) -> Result<bool> {
        Ok(run(&self.pool, sql::INSERT_SEEN_JWT, &[Arg::Text(id), Arg::Int(expires_at), Arg::Int(now)]).await? > 0)
    }
}

#[async_trait]
impl DeviceCodeStore for PgStore {
    async fn create_device_code(&self, d: &DeviceCodeRecord) -> Result<()> {
        run(&self.pool, sql::INSERT_DEVICE_CODE, &sql::device_args(d)?).await.map(drop)
    }
    async fn find_device_code(&self, device_code_hash: &str) -> Result<Option<DeviceCodeRecord>> {
        fetch_opt(&self.pool, sql::FIND_DEVICE_CODE, &[Arg::Text(device_code_hash)], row::device_from_row).await
    }
    async fn find_device_code_by_user_code(&self, user_code: &str, now: i64) -> Result<Option<DeviceCodeRecord>> {
        fetch_opt(&self.pool, sql::FIND_DEVICE_CODE_BY_USER_CODE, &[Arg::Text(user_code), Arg::Int(now)], row::device_from_row).await
    }
    async fn decide_device_code(&self, user_code: &str, approve: bool, user_id: &str, auth_time: i64, oidc: Option<&OidcContext>, now: i64) -> Result<bool> {
        let args = sql::device_decision_args(user_code, approve, user_id, auth_time, oidc, now)?;
        Ok(run(&self.pool, sql::DECIDE_DEVICE_CODE, &args).await? > 0)
    }
    async fn update_device_poll(&self, device_code_hash: &str, now: i64, interval: i64) -> Result<()> {
        run(&self.pool, sql::UPDATE_DEVICE_POLL, &[Arg::Int(now), Arg::Int(interval), Arg::Text(device_code_hash)]).await.map(drop)
    }
    async fn take_device_code(&self, device_code_hash: &str, now: i64) -> Result<Taken<DeviceCodeRecord>> {
        self.take(&sql::DEVICE_CODE, &[Arg::Text(device_code_hash), Arg::Int(now)], device_code_hash, None).await
    }
    async fn take_device_code_issuing(&self, device_code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<DeviceCodeRecord>> {
        self.take(&sql::DEVICE_CODE, &[Arg::Text(device_code_hash), Arg::Int(now)], device_code_hash, next).await
    }
}

#[async_trait]
impl ConfigStore for PgStore {
    async fn apply_config(&self, changes: &[ConfigChange]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        for c in changes {
            for (statement, args) in sql::config_statements(c)? {
                run(&mut *tx, statement, &args).await?;
            }
        }
        tx.commit().await.map_err(err)
    }
    async fn list_applied(&self) -> Result<Vec<(String, String)>> {
        fetch_all(&self.pool, sql::LIST_APPLIED, &[], row::text_pair_from_row).await
    }
}

#[async_trait]
impl MaintenanceStore for PgStore {
    async fn delete_expired(&self, now: i64, batch: i64) -> Result<u64> {
        // One bounded DELETE per table; callers loop while rows keep going.
        let mut n = 0;
        for sql in DELETE_EXPIRED.iter() {
            n += run(&self.pool, sql, &[Arg::Int(now), Arg::Int(batch)]).await?;
        }
        Ok(n)
    }

    fn pool_stats(&self) -> Option<(u32, u32, u32)> {
        Some((self.pool.size(), u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX), self.pool.options().get_max_connections()))
    }
    async fn ping(&self) -> Result<()> {
        run(&self.pool, sql::PING, &[]).await.map(drop)
    }
}

#[async_trait]
impl ThrottleStore for PgStore {
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
            let key: String = r.try_get(0).map_err(err)?;
            found.insert(key, ThrottleState { failures: r.try_get(1).map_err(err)?, last_at: r.try_get(2).map_err(err)? });
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
}

#[async_trait]
impl AuditStore for PgStore {
    async fn create_audit_event(&self, kind: &str, detail: &str, now: i64) -> Result<()> {
        run(&self.pool, sql::INSERT_AUDIT_EVENT, &[Arg::Text(kind), Arg::Text(detail), Arg::Int(now)]).await.map(drop)
    }
    async fn list_audit_events(&self, kind: &str) -> Result<Vec<String>> {
        fetch_all(&self.pool, sql::LIST_AUDIT_EVENTS, &[Arg::Text(kind)], row::text_from_row).await
    }
    async fn record_audit_event(&self, e: &NewAuditEvent<'_>, now: i64) -> Result<()> {
        run(&self.pool, sql::RECORD_AUDIT_EVENT, &sql::audit_args(e, now)).await.map(drop)
    }
    async fn find_audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        fetch_all(&self.pool, sql::FIND_AUDIT_EVENTS, &sql::audit_query_args(q), row::audit_from_row).await
    }
    async fn delete_audit_events_before(&self, at: i64, limit: i64) -> Result<u64> {
        run(&self.pool, sql::DELETE_AUDIT_EVENTS_BEFORE, &[Arg::Int(at), Arg::Int(limit)]).await
    }
}
