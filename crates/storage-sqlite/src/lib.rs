//! SQLite implementation of [`tessera_storage::Store`]: the embedded default. The statements,
//! row mappers and argument encoders are `tessera_storage`'s (rewritten to `?N` parameters at
//! compile time by [`tessera_storage::sqlite!`]); this crate holds connections, transactions,
//! migrations, file modes, the server lock and the in-memory revocations.
//!
//! WAL mode with a busy timeout, so the admin CLI can write while the server runs. Atomic
//! consumes are single `UPDATE … WHERE used_at IS NULL … RETURNING` statements.
//!
//! Statements run inline, synchronously, on the calling task, through [`rusqlite`]: on a WAL
//! database each takes microseconds. (Under sqlx, which runs every SQLite connection on a worker
//! thread of its own and passes each statement and its rows through channels, a refresh-token
//! load spent ~45% of the server's CPU in those thread hand-offs.) Within the process, every
//! write and write transaction goes through one writer connection behind a mutex: SQLite admits
//! one writer at a time, and queueing writers here makes each wait only as long as the write
//! before it takes, where writers on several connections would sleep in the busy handler
//! (1, 2, 5, 10 … ms). Reads go through the same connection, whose page cache then stays
//! warm (see `SqliteStore::read`). Another process, such as the admin CLI, still meets the busy timeout.
//!
//! Migrations are recorded in `_sqlx_migrations`, as sqlx's migrator recorded them, so that
//! databases created by earlier versions open unchanged (and this one's stay readable by them).
#![forbid(unsafe_code)]

use async_trait::async_trait;
use rusqlite::types::{Null, ToSql, ToSqlOutput};
use rusqlite::{Connection, ErrorCode, OpenFlags, Params, Row, TransactionBehavior, params, params_from_iter};
use sha2::{Digest, Sha384};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tessera_protocol::scope::Scopes;
use tessera_storage::row::{self, Mapper};
use tessera_storage::sql::{self, Arg, OneTime};
use tessera_storage::*;

/// Prepared statements kept per connection: more than this store has.
const STATEMENT_CACHE: usize = 128;

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Connections>,
}

#[derive(Debug)]
struct Connections {
    /// The one connection every statement goes through, writes and reads (see
    /// [`SqliteStore::read`]).
    writer: Mutex<Connection>,
    /// Every revocation, in memory, when this store is the only server on the database (see
    /// [`SqliteStore::open_server`]); `None` otherwise, and `is_revoked` reads the tables.
    revocations: Option<std::sync::RwLock<Revocations>>,
    /// The lock that makes this process the database's one server, held while the store lives.
    _serve_lock: Option<std::fs::File>,
}

/// Revoked access-token ids and grant families, each with its row's `expires_at`.
#[derive(Debug, Default)]
struct Revocations {
    tokens: std::collections::HashMap<String, i64>,
    families: std::collections::HashMap<String, i64>,
}

fn err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == ErrorCode::ConstraintViolation
                && matches!(f.extended_code, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
        {
            StoreError::Conflict(msg.clone().unwrap_or_else(|| e.to_string()))
        }
        rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// A connection whose holder panicked: nothing more goes through it.
fn poisoned() -> StoreError {
    StoreError::Unavailable("a database connection was poisoned by a panic".into())
}

/// One column of a row, by name.
fn col<T: rusqlite::types::FromSql>(r: &Row, name: &str) -> Result<T> {
    r.get(name).map_err(err)
}

/// The first row of `sql`, mapped. The statement is stepped to completion, so a write with
/// `RETURNING` is finished (and, outside a transaction, committed) when this returns.
fn query_opt<T>(c: &Connection, sql: &str, p: impl Params, f: impl FnOnce(&Row) -> Result<T>) -> Result<Option<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(err)?;
    let mut rows = stmt.query(p).map_err(err)?;
    let first = match rows.next().map_err(err)? {
        Some(r) => Some(f(r)?),
        None => return Ok(None),
    };
    while rows.next().map_err(err)?.is_some() {}
    Ok(first)
}

/// Every row of `sql`, mapped.
fn query_all<T>(c: &Connection, sql: &str, p: impl Params, mut f: impl FnMut(&Row) -> Result<T>) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(err)?;
    let mut rows = stmt.query(p).map_err(err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        out.push(f(r)?);
    }
    Ok(out)
}

/// Run a statement that returns no rows; the number of rows it changed.
fn exec(c: &Connection, sql: &str, p: impl Params) -> Result<u64> {
    let n = c.prepare_cached(sql).map_err(err)?.execute(p).map_err(err)?;
    Ok(n as u64)
}

/// The migrations, as sqlx's migrator named them: version, description (the file name after
/// the version, `_` read as a space) and SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "lifecycle oidc", include_str!("../migrations/0002_lifecycle_oidc.sql")),
    (3, "indexes", include_str!("../migrations/0003_indexes.sql")),
    (4, "user sessions", include_str!("../migrations/0004_user_sessions.sql")),
    (5, "throttles", include_str!("../migrations/0005_throttles.sql")),
    (7, "dpop", include_str!("../migrations/0007_dpop.sql")),
    (8, "jwt bearer", include_str!("../migrations/0008_jwt_bearer.sql")),
    (9, "groups roles", include_str!("../migrations/0009_groups_roles.sql")),
    (10, "audit", include_str!("../migrations/0010_audit.sql")),
    (11, "disabled users", include_str!("../migrations/0011_disabled_users.sql")),
    (12, "admins", include_str!("../migrations/0012_admins.sql")),
    (13, "applied objects", include_str!("../migrations/0013_applied_objects.sql")),
    (14, "accounts", include_str!("../migrations/0014_accounts.sql")),
    (15, "session devices", include_str!("../migrations/0015_session_devices.sql")),
];

/// Apply the migrations this database lacks, each in one transaction with its record in
/// `_sqlx_migrations` (the table, checksums and checks of sqlx's migrator: a database migrated
/// by either opens with the other).
fn migrate(c: &mut Connection) -> Result<()> {
    let fail = |e: StoreError| StoreError::Other(format!("migration failed: {e}"));
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
         success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .map_err(|e| fail(err(e)))?;
    if let Some(v) =
        query_opt(c, "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1", [], |r| col::<i64>(r, "version")).map_err(fail)?
    {
        return Err(StoreError::Other(format!("migration failed: migration {v} is partially applied; fix and remove it from _sqlx_migrations")));
    }
    let applied = query_all(c, "SELECT version, checksum FROM _sqlx_migrations ORDER BY version", [], |r| {
        Ok((col::<i64>(r, "version")?, col::<Vec<u8>>(r, "checksum")?))
    })
    .map_err(fail)?;
    if let Some((v, _)) = applied.iter().find(|(v, _)| !MIGRATIONS.iter().any(|(m, _, _)| m == v)) {
        return Err(StoreError::Other(format!("migration failed: migration {v} was applied but is unknown to this version")));
    }
    for &(version, description, sql) in MIGRATIONS {
        let checksum = Sha384::digest(sql.as_bytes()).to_vec();
        let check = |recorded: &[u8]| {
            if recorded == checksum.as_slice() {
                Ok(())
            } else {
                Err(StoreError::Other(format!("migration failed: migration {version} was applied but has been modified")))
            }
        };
        if let Some((_, recorded)) = applied.iter().find(|(v, _)| *v == version) {
            check(recorded)?;
            continue;
        }
        let start = Instant::now();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| fail(err(e)))?;
        // Another process may have applied it since the list above was read.
        if let Some(recorded) =
            query_opt(&tx, "SELECT checksum FROM _sqlx_migrations WHERE version = ?1", [version], |r| col::<Vec<u8>>(r, "checksum")).map_err(fail)?
        {
            check(&recorded)?;
            continue;
        }
        tx.execute_batch(sql).map_err(|e| StoreError::Other(format!("migration {version} failed: {}", err(e))))?;
        exec(
            &tx,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?1, ?2, TRUE, ?3, -1)",
            params![version, description, checksum],
        )
        .map_err(fail)?;
        tx.commit().map_err(|e| fail(err(e)))?;
        let nanos = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        exec(c, "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2", params![nanos, version]).map_err(fail)?;
    }
    Ok(())
}

/// Open one connection with the store's settings.
fn connect(path: Option<&Path>) -> Result<Connection> {
    let c = match path {
        Some(p) => Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX),
        None => Connection::open_in_memory(),
    }
    .map_err(err)?;
    c.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let journal = if path.is_some() { "WAL" } else { "MEMORY" };
    c.execute_batch(&format!("PRAGMA journal_mode = {journal}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")).map_err(err)?;
    Ok(c)
}

/// `%XX` escapes decoded (as sqlx did, so that a path can hold `?` or `#`).
fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| StoreError::Other(format!("not an sqlite URL: {e}")))
}

// Data files readable only by their owner (issue 13, finding 4; RFC 6819 §5.1.4.1.1): a folder
// the store creates is 0700; the database, its `-wal` and `-shm` files and the server lock are
// 0600. SQLite creates `-wal` and `-shm` with the main file's mode, so the main file is created
// 0600 before SQLite opens it. Files found with looser modes (an older version, a copy) are
// tightened to 0600 on open; an existing folder is left as it is (it may be shared, e.g.
// /var/lib), the files in it being private.

/// Open options that create a file 0600.
fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Create `dir` (and missing parents) 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[allow(unused_mut)]
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Set an existing file readable by its owner only (0600) when its mode allows more.
fn tighten(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::Unavailable(format!("cannot read {}: {e}", path.display()))),
        };
        if meta.is_file() && meta.permissions().mode() & 0o177 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::Unavailable(format!("cannot make {} private (0600): {e}", path.display())))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The database file created 0600 if missing (before SQLite creates it 0644 and gives its WAL
/// and shared-memory files the same mode), and the database, `-wal` and `-shm` tightened.
fn private_files(db: &Path) -> Result<()> {
    private_options().create(true).truncate(false).write(true).open(db).map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", db.display())))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        tighten(Path::new(&name))?;
    }
    Ok(())
}

/// The exclusive lock of the database's one server: the file `PATH-serve.lock`, locked (an
/// advisory lock, released by the kernel when the process ends) for as long as it is held.
fn take_serve_lock(db: &Path) -> Result<std::fs::File> {
    let mut name = db.as_os_str().to_owned();
    name.push("-serve.lock");
    let f = private_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", Path::new(&name).display())))?;
    tighten(Path::new(&name))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "another tessera server is running on {} (one server per SQLite database; several instances need PostgreSQL)",
            db.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Unavailable(format!("cannot lock {}: {e}", Path::new(&name).display()))),
    }
}

/// Every revocation in the database.
fn load_revocations(c: &Connection) -> Result<Revocations> {
    let pairs = |sql| query_all(c, sql, [], |r| Ok((r.get::<_, String>(0).map_err(err)?, r.get::<_, i64>(1).map_err(err)?)));
    Ok(Revocations {
        tokens: pairs("SELECT jti, expires_at FROM revoked_tokens")?.into_iter().collect(),
        families: pairs("SELECT family_id, expires_at FROM revoked_families")?.into_iter().collect(),
    })
}

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// WAL pages after which the writer checkpoints by itself, should the checkpointer fall behind.
const BACKSTOP_CHECKPOINT_PAGES: u32 = 20_000;

/// Run WAL checkpoints (`PASSIVE`: they never wait for or block a writer or reader) on a
/// thread and connection of their own, until the store is dropped. SQLite's default runs a
/// checkpoint inside the commit that crosses 1,000 WAL pages, so one request in a few hundred
/// carried a checkpoint (its writes and an fsync): p99 ≈ 20 ms under refresh load, 40–55 ms
/// with a larger threshold. Here the commit path only appends to the WAL.
fn spawn_checkpointer(c: Connection, store: std::sync::Weak<Connections>) -> Result<()> {
    let run = move || {
        while store.strong_count() > 0 {
            std::thread::sleep(CHECKPOINT_INTERVAL);
            // Busy (another checkpoint, e.g. the CLI's) or failed: the next round tries again.
            let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    };
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(run)
        .map(drop)
        .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}")))
}

impl SqliteStore {
    /// Open (creating the file and its folder if needed) and migrate. `url` is `sqlite://PATH`
    /// or `sqlite::memory:`.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_blocking(url)
    }

    /// [`SqliteStore::open`] for `tessera serve`: also takes an exclusive lock (the file
    /// `PATH-serve.lock`), so that at most one server runs on a database, and then answers
    /// `is_revoked` from memory. Revocations are written only by the server (the admin commands
    /// never revoke tokens), so with one server its memory holds every revocation: introspection
    /// and UserInfo need no database read, and a revocation is still seen at once. A second
    /// server on the same file is refused with an error that says so; several instances need
    /// PostgreSQL.
    pub async fn open_server(url: &str) -> Result<Self> {
        Self::open_with(url, true)
    }

    fn open_blocking(url: &str) -> Result<Self> {
        Self::open_with(url, false)
    }

    fn open_with(url: &str, server: bool) -> Result<Self> {
        let path =
            url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).ok_or_else(|| StoreError::Other(format!("not an sqlite URL: {url}")))?;
        if path.contains('?') {
            return Err(StoreError::Other(format!("not an sqlite URL: {url} (query parameters are not supported; write `?` in a file name as %3F)")));
        }
        if path == ":memory:" {
            let mut writer = connect(None)?;
            migrate(&mut writer)?;
            // Nobody else can reach an in-memory database: no lock needed.
            let revocations = if server { Some(std::sync::RwLock::new(load_revocations(&writer)?)) } else { None };
            return Ok(Self { inner: Arc::new(Connections { writer: Mutex::new(writer), revocations, _serve_lock: None }) });
        }
        let path = percent_decode(path)?;
        let path = Path::new(&path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir).map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        private_files(path)?;
        let serve_lock = if server { Some(take_serve_lock(path)?) } else { None };
        let mut writer = connect(Some(path))?;
        migrate(&mut writer)?;
        let revocations = if server { Some(std::sync::RwLock::new(load_revocations(&writer)?)) } else { None };
        // Checkpoints run on their own thread (below); the writer's own automatic checkpoint
        // stays only as a backstop, far out.
        writer.execute_batch(&format!("PRAGMA wal_autocheckpoint = {BACKSTOP_CHECKPOINT_PAGES};")).map_err(err)?;
        let inner = Arc::new(Connections { writer: Mutex::new(writer), revocations, _serve_lock: serve_lock });
        spawn_checkpointer(connect(Some(path))?, Arc::downgrade(&inner))?;
        Ok(Self { inner })
    }

    /// Record a committed revocation in memory, when revocations are kept there.
    fn remember(&self, f: impl FnOnce(&mut Revocations)) {
        if let Some(known) = &self.inner.revocations {
            // A poisoned lock means a panic mid-update: is_revoked then fails closed (an error).
            if let Ok(mut r) = known.write() {
                f(&mut r);
            }
        }
    }

    /// The writer connection, waiting for the write before to finish.
    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.inner.writer.lock().map_err(|_| poisoned())
    }

    /// Run `f` on the writer connection (every write goes through it).
    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut c = self.writer()?;
        f(&mut c)
    }

    /// Run `f` in an immediate transaction on the writer, committed if `f` returns `Ok((true,
    /// _))`, rolled back otherwise.
    fn transaction<T>(&self, f: impl FnOnce(&rusqlite::Transaction) -> Result<(bool, T)>) -> Result<T> {
        let mut c = self.writer()?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let (commit, out) = f(&tx)?;
        if commit {
            tx.commit().map_err(err)?;
        }
        Ok(out)
    }

    /// Run a read on the store's one connection. Reads share it with the writes: a
    /// connection's page cache is emptied whenever another connection writes, so readers beside
    /// the writer went back to the kernel (a `pread` per page, plus file locks) after every
    /// write; on one connection the cache stays warm. Measured with tessera-bench on 2 cores:
    /// introspection 26–28k → 33–36k/s, the code flow 2.3–2.6k → 2.5–2.7k/s, refresh unchanged
    /// (≈ 4k/s). A statement holds the connection for microseconds and never across an `.await`.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&*self.writer()?)
    }
}

/// A rusqlite row, read through the shared mappers.
struct SqliteRow<'a, 'b>(&'a Row<'b>);

tessera_storage::impl_row!(SqliteRow<'_, '_>, |r, i| r.0.get(i).map_err(err));

/// A shared statement argument, bound by rusqlite.
struct SqliteArg<'a>(&'a Arg<'a>);

impl ToSql for SqliteArg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Arg::Text(s) => ToSqlOutput::from(*s),
            Arg::OptText(s) => s.map_or(ToSqlOutput::from(Null), ToSqlOutput::from),
            Arg::Owned(s) => ToSqlOutput::from(s.as_str()),
            Arg::OptOwned(s) => s.as_deref().map_or(ToSqlOutput::from(Null), ToSqlOutput::from),
            Arg::Int(i) => ToSqlOutput::from(*i),
            Arg::OptInt(i) => i.map_or(ToSqlOutput::from(Null), ToSqlOutput::from),
            Arg::Bool(b) => ToSqlOutput::from(*b),
            Arg::Bytes(b) => ToSqlOutput::from(*b),
        })
    }
}

fn bind<'a>(args: &'a [Arg<'a>]) -> impl Params + 'a {
    params_from_iter(args.iter().map(SqliteArg))
}

/// The first row of a shared statement, mapped.
fn fetch_opt<T>(c: &Connection, sql: &str, args: &[Arg], map: Mapper<T>) -> Result<Option<T>> {
    query_opt(c, sql, bind(args), |r| map(&SqliteRow(r)))
}

/// Every row of a shared statement, mapped.
fn fetch_all<T>(c: &Connection, sql: &str, args: &[Arg], map: Mapper<T>) -> Result<Vec<T>> {
    query_all(c, sql, bind(args), |r| map(&SqliteRow(r)))
}

/// Run a shared statement that returns no rows; the number of rows it changed.
fn run(c: &Connection, sql: &str, args: &[Arg]) -> Result<u64> {
    exec(c, sql, bind(args))
}

/// Take a one-time value (and, if given, store `next` with it in the same transaction): the
/// take, or — read on the same connection right after it — why not.
fn take_on<T>(c: &Connection, one: &OneTime<T>, args: &[Arg], key: &str, next: Option<&RefreshTokenRecord>) -> Result<(bool, Taken<T>)> {
    if let Some(taken) = fetch_opt(c, one.take, args, one.taken)? {
        if let Some(next) = next {
            run(c, sqlite!(sql::INSERT_REFRESH), &sql::refresh_args(next)?)?;
        }
        return Ok((true, Taken::Taken(taken)));
    }
    Ok((
        false,
        match fetch_opt(c, one.find, &[Arg::Text(key)], one.found)? {
            Some(t) => Taken::AlreadyUsed(t),
            None => Taken::NotFound,
        },
    ))
}

impl SqliteStore {
    /// [`take_on`]: a plain take on the writer, or a take issuing `next` in an immediate transaction.
    fn take<T>(&self, one: &OneTime<T>, args: &[Arg], key: &str, next: Option<&RefreshTokenRecord>) -> Result<Taken<T>> {
        match next {
            Some(_) => self.transaction(|tx| take_on(tx, one, args, key, next)),
            None => self.write(|w| take_on(w, one, args, key, None)).map(|(_, t)| t),
        }
    }
}

/// The clean-up statements, rows addressed by rowid.
static DELETE_EXPIRED: LazyLock<Vec<String>> = LazyLock::new(|| sql::EXPIRED.iter().map(|e| sql::expiry_statement(e, "rowid", true)).collect());

#[async_trait]
impl ClientStore for SqliteStore {
    async fn create_client(&self, c: &ClientRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_CLIENT), &sql::client_args(c)?)).map(drop)
    }
    async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_CLIENT), &[Arg::Text(client_id)], row::client_from_row))
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_CLIENTS), &[], row::client_from_row))
    }
    async fn update_client_secret(&self, client_id: &str, secret_hash: &str) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::UPDATE_CLIENT_SECRET), &[Arg::Text(secret_hash), Arg::Text(client_id)]))? > 0)
    }
    async fn update_client(&self, c: &ClientRecord) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::UPDATE_CLIENT), &sql::client_update_args(c)?))? > 0)
    }
    async fn delete_client(&self, client_id: &str) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::DELETE_CLIENT), &[Arg::Text(client_id)]))? > 0)
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, u: &UserRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_USER), &sql::user_args(u)?)).map(drop)
    }
    async fn find_user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_USER_BY_USERNAME), &[Arg::Text(username)], row::user_from_row))
    }
    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_USER), &[Arg::Text(id)], row::user_from_row))
    }
    async fn find_users_by_email(&self, email: &str) -> Result<Vec<UserRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::FIND_USERS_BY_EMAIL), &[Arg::Text(email)], row::user_from_row))
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_USERS), &[], row::user_from_row))
    }
    async fn update_user(&self, u: &UserRecord) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::UPDATE_USER), &sql::user_update_args(u)?))? > 0)
    }

    // Ending a user's access (RFC 9700 §4.14.2): one immediate transaction each.
    async fn update_user_password(&self, username: &str, password_hash: &str, keep_session: Option<&str>, now: i64) -> Result<bool> {
        self.transaction(|tx| {
            let Some(id) = fetch_opt(tx, sqlite!(sql::UPDATE_PASSWORD), &[Arg::Text(password_hash), Arg::Text(username)], row::text_from_row)? else {
                return Ok((false, false));
            };
            end_access(tx, &id, keep_session, now)?;
            Ok((true, true))
        })
    }
    async fn update_user_admin(&self, user_id: &str, is_admin: bool) -> Result<bool> {
        Ok(self.write(|w| fetch_opt(w, sqlite!(sql::UPDATE_USER_ADMIN), &[Arg::Text(user_id), Arg::Bool(is_admin)], row::text_from_row))?.is_some())
    }
    async fn update_user_require_mfa(&self, user_id: &str, require: bool) -> Result<bool> {
        Ok(self.write(|w| fetch_opt(w, sqlite!(sql::UPDATE_USER_REQUIRE_MFA), &[Arg::Text(user_id), Arg::Bool(require)], row::text_from_row))?.is_some())
    }
    async fn update_user_email_verified(&self, user_id: &str, email: &str) -> Result<bool> {
        Ok(self.write(|w| fetch_opt(w, sqlite!(sql::UPDATE_USER_EMAIL_VERIFIED), &[Arg::Text(user_id), Arg::Text(email)], row::text_from_row))?.is_some())
    }
    async fn update_user_password_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::UPDATE_PASSWORD_HASH), &[Arg::Text(user_id), Arg::Text(new), Arg::Text(old)]))? > 0)
    }
    async fn update_user_disabled(&self, user_id: &str, disabled: bool, now: i64) -> Result<bool> {
        self.transaction(|tx| {
            let at = disabled.then_some(now);
            if fetch_opt(tx, sqlite!(sql::UPDATE_USER_DISABLED), &[Arg::Text(user_id), Arg::OptInt(at)], row::text_from_row)?.is_none() {
                return Ok((false, false));
            }
            if disabled {
                end_access(tx, user_id, None, now)?;
            }
            Ok((true, true))
        })
    }
    async fn delete_user(&self, username: &str) -> Result<bool> {
        self.transaction(|tx| {
            let Some(id) = fetch_opt(tx, sqlite!(sql::DELETE_USER), &[Arg::Text(username)], row::text_from_row)? else {
                return Ok((false, false));
            };
            end_sessions(tx, &id, None)?;
            for sql in SQLITE_DELETE_USER_ROWS {
                run(tx, sql, &[Arg::Text(&id)])?;
            }
            Ok((true, true))
        })
    }
}

const SQLITE_END_SESSIONS: [&str; 3] = [sqlite!(sql::END_SESSIONS[0]), sqlite!(sql::END_SESSIONS[1]), sqlite!(sql::END_SESSIONS[2])];
const SQLITE_PASSWORD_DELETES: [&str; 2] = [sqlite!(sql::PASSWORD_DELETES[0]), sqlite!(sql::PASSWORD_DELETES[1])];
const SQLITE_DELETE_USER_ROWS: [&str; 9] = [
    sqlite!(sql::DELETE_USER_ROWS[0]),
    sqlite!(sql::DELETE_USER_ROWS[1]),
    sqlite!(sql::DELETE_USER_ROWS[2]),
    sqlite!(sql::DELETE_USER_ROWS[3]),
    sqlite!(sql::DELETE_USER_ROWS[4]),
    sqlite!(sql::DELETE_USER_ROWS[5]),
    sqlite!(sql::DELETE_USER_ROWS[6]),
    sqlite!(sql::DELETE_USER_ROWS[7]),
    sqlite!(sql::DELETE_USER_ROWS[8]),
];
const SQLITE_DELETE_FACTORS: [&str; 2] = [sqlite!(sql::DELETE_FACTORS[0]), sqlite!(sql::DELETE_FACTORS[1])];

#[async_trait]
impl FactorStore for SqliteStore {
    async fn create_factor(&self, f: &FactorRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_FACTOR), &sql::factor_args(f))).map(drop)
    }
    async fn list_factors(&self, user_id: &str) -> Result<Vec<FactorRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_FACTORS), &[Arg::Text(user_id)], row::factor_from_row))
    }
    async fn find_factor_by_credential(&self, credential_id: &str) -> Result<Option<FactorRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_FACTOR_BY_CREDENTIAL), &[Arg::Text(credential_id)], row::factor_from_row))
    }
    async fn delete_factor(&self, user_id: &str, id: &str) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::DELETE_FACTOR), &[Arg::Text(user_id), Arg::Text(id)]))? > 0)
    }
    async fn update_factor_step(&self, id: &str, step: i64, now: i64) -> Result<bool> {
        let args = [Arg::Text(id), Arg::Int(step), Arg::Int(now)];
        Ok(self.write(|w| fetch_opt(w, sqlite!(sql::UPDATE_FACTOR_STEP), &args, row::text_from_row))?.is_some())
    }
    async fn update_factor_secret(&self, id: &str, expected: &[u8], new: &[u8], now: i64) -> Result<bool> {
        let args = [Arg::Text(id), Arg::Bytes(new), Arg::Int(now), Arg::Bytes(expected)];
        Ok(self.write(|w| fetch_opt(w, sqlite!(sql::UPDATE_FACTOR_SECRET), &args, row::text_from_row))?.is_some())
    }
    async fn delete_factors(&self, user_id: &str) -> Result<u64> {
        self.transaction(|tx| {
            let n = run(tx, SQLITE_DELETE_FACTORS[0], &[Arg::Text(user_id)])?;
            run(tx, SQLITE_DELETE_FACTORS[1], &[Arg::Text(user_id)])?;
            Ok((true, n))
        })
    }
    async fn replace_recovery_codes(&self, user_id: &str, code_hashes: &[String], now: i64) -> Result<()> {
        self.transaction(|tx| {
            run(tx, sqlite!(sql::DELETE_RECOVERY_CODES), &[Arg::Text(user_id)])?;
            for h in code_hashes {
                run(tx, sqlite!(sql::INSERT_RECOVERY_CODE), &[Arg::Text(user_id), Arg::Text(h), Arg::Int(now)])?;
            }
            Ok((true, ()))
        })
    }
    async fn take_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool> {
        let args = [Arg::Text(user_id), Arg::Text(code_hash), Arg::Int(now)];
        Ok(self.write(|w| fetch_opt(w, sqlite!(sql::TAKE_RECOVERY_CODE), &args, row::text_from_row))?.is_some())
    }
    async fn count_recovery_codes(&self, user_id: &str) -> Result<i64> {
        Ok(self.read(|r| fetch_opt(r, sqlite!(sql::COUNT_RECOVERY_CODES), &[Arg::Text(user_id)], row::int_from_row))?.unwrap_or(0))
    }
}

#[async_trait]
impl UserTokenStore for SqliteStore {
    async fn create_user_token(&self, t: &UserTokenRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_USER_TOKEN), &sql::user_token_args(t))).map(drop)
    }
    async fn find_user_token(&self, token_hash: &str, purpose: &str, now: i64) -> Result<Option<UserTokenRecord>> {
        let args = [Arg::Text(token_hash), Arg::Text(purpose), Arg::Int(now)];
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_USER_TOKEN), &args, row::user_token_from_row))
    }
    async fn take_user_token(&self, token_hash: &str, purpose: &str, now: i64) -> Result<Option<UserTokenRecord>> {
        let args = [Arg::Text(token_hash), Arg::Text(purpose), Arg::Int(now)];
        self.write(|w| fetch_opt(w, sqlite!(sql::TAKE_USER_TOKEN), &args, row::user_token_from_row))
    }
    async fn delete_user_tokens(&self, user_id: &str, purpose: &str) -> Result<u64> {
        self.write(|w| run(w, sqlite!(sql::DELETE_USER_TOKENS), &[Arg::Text(user_id), Arg::Text(purpose)]))
    }
}
const SQLITE_DELETE_GROUP_ROWS: [&str; 2] = [sqlite!(sql::DELETE_GROUP_ROWS[0]), sqlite!(sql::DELETE_GROUP_ROWS[1])];
const SQLITE_DELETE_API_ROWS: [&str; 1] = [sqlite!(sql::DELETE_API_ROWS[0])];

/// Delete one row by `key` with `main`, after the rows that go with it (`rows`), in one
/// immediate transaction.
fn delete_with(store: &SqliteStore, rows: &[&str], main: &str, key: &str) -> Result<bool> {
    store.transaction(|tx| {
        for sql in rows {
            run(tx, sql, &[Arg::Text(key)])?;
        }
        let deleted = run(tx, main, &[Arg::Text(key)])? > 0;
        Ok((deleted, deleted))
    })
}

/// What a new password or a disabled account ends: the sessions (but `keep`), the refresh
/// tokens, the unredeemed codes and approved device codes.
fn end_access(c: &Connection, user_id: &str, keep: Option<&str>, now: i64) -> Result<()> {
    end_sessions(c, user_id, keep)?;
    run(c, sqlite!(sql::REVOKE_USER_REFRESH_TOKENS), &[Arg::Text(user_id), Arg::Int(now)])?;
    for sql in SQLITE_PASSWORD_DELETES {
        run(c, sql, &[Arg::Text(user_id)])?;
    }
    Ok(())
}

/// End every session of `user_id` but `keep` (an id hash), with the sessions' pending requests
/// and client lists (RFC 9700 §4.14.2).
fn end_sessions(c: &Connection, user_id: &str, keep: Option<&str>) -> Result<()> {
    for sql in SQLITE_END_SESSIONS {
        run(c, sql, &[Arg::Text(user_id), Arg::OptText(keep)])?;
    }
    Ok(())
}

#[async_trait]
impl ApiStore for SqliteStore {
    async fn create_api(&self, a: &ApiRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_API), &sql::api_args(a)?)).map(drop)
    }
    async fn list_apis(&self) -> Result<Vec<ApiRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_APIS), &[], row::api_from_row))
    }
    async fn update_api_secret(&self, identifier: &str, secret_hash: &str) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::UPDATE_API_SECRET), &[Arg::Text(secret_hash), Arg::Text(identifier)]))? > 0)
    }
    async fn delete_api(&self, identifier: &str) -> Result<bool> {
        delete_with(self, &SQLITE_DELETE_API_ROWS, sqlite!(sql::DELETE_API), identifier)
    }
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, g: &GroupRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_GROUP), &sql::group_args(g))).map(drop)
    }
    async fn find_group(&self, name: &str) -> Result<Option<GroupRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_GROUP), &[Arg::Text(name)], row::group_from_row))
    }
    async fn list_groups(&self) -> Result<Vec<GroupRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_GROUPS), &[], row::group_from_row))
    }
    async fn delete_group(&self, name: &str) -> Result<bool> {
        delete_with(self, &SQLITE_DELETE_GROUP_ROWS, sqlite!(sql::DELETE_GROUP), name)
    }
    async fn create_group_member(&self, group: &str, user_id: &str) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::INSERT_GROUP_MEMBER), &[Arg::Text(group), Arg::Text(user_id)]))? > 0)
    }
    async fn delete_group_member(&self, group: &str, user_id: &str) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::DELETE_GROUP_MEMBER), &[Arg::Text(group), Arg::Text(user_id)]))? > 0)
    }
    async fn list_group_members(&self, group: &str) -> Result<Vec<String>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_GROUP_MEMBERS), &[Arg::Text(group)], row::text_from_row))
    }
    async fn list_user_groups(&self, user_id: &str) -> Result<Vec<String>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_USER_GROUPS), &[Arg::Text(user_id)], row::text_from_row))
    }
}

#[async_trait]
impl RoleStore for SqliteStore {
    async fn create_role_assignment(&self, a: &RoleAssignment) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::INSERT_ROLE_ASSIGNMENT), &sql::role_assignment_args(a)))? > 0)
    }
    async fn delete_role_assignment(&self, a: &RoleAssignment) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::DELETE_ROLE_ASSIGNMENT), &sql::role_assignment_args(a)))? > 0)
    }
    async fn list_role_assignments(&self, api: &str) -> Result<Vec<RoleAssignment>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_ROLE_ASSIGNMENTS), &[Arg::Text(api)], row::role_assignment_from_row))
    }
    async fn find_user_roles(&self, user_id: &str, api: &str) -> Result<Vec<String>> {
        self.read(|r| fetch_all(r, sqlite!(sql::FIND_USER_ROLES), &[Arg::Text(api), Arg::Text(user_id)], row::text_from_row))
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_signing_key(&self, k: &KeyRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_KEY), &sql::key_args(k))).map(drop)
    }
    async fn create_signing_key_unless(&self, k: &KeyRecord, unless: ExistingKey) -> Result<bool> {
        // BEGIN IMMEDIATE: the check and the insert hold SQLite's write lock, across processes.
        let (statement, args) = sql::key_unless(k, unless, true);
        self.transaction(|tx| {
            let stored = run(tx, statement, &args)? == 1;
            Ok((stored, stored))
        })
    }
    async fn list_signing_keys(&self) -> Result<Vec<KeyRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_KEYS), &[], row::key_from_row))
    }
    async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::DELETE_KEY), &[Arg::Text(kid)]))? > 0)
    }
    async fn update_signing_key_der(&self, kid: &str, expected: &[u8], new: &[u8]) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::UPDATE_KEY_DER), &[Arg::Bytes(new), Arg::Text(kid), Arg::Bytes(expected)]))? > 0)
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn list_user_sessions(&self, user_id: &str, now: i64) -> Result<Vec<SessionRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_USER_SESSIONS), &[Arg::Text(user_id), Arg::Int(now)], row::session_from_row))
    }
    async fn delete_user_sessions(&self, user_id: &str) -> Result<()> {
        self.transaction(|tx| end_sessions(tx, user_id, None).map(|()| (true, ())))
    }
    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_SESSION), &sql::session_args(s))).map(drop)
    }
    async fn find_session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_SESSION), &[Arg::Text(id_hash), Arg::Int(now)], row::session_from_row))
    }
    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::DELETE_SESSION), &[Arg::Text(id_hash)])).map(drop)
    }
    async fn find_session_by_sid(&self, sid: &str, now: i64) -> Result<Option<SessionRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_SESSION_BY_SID), &[Arg::Text(sid), Arg::Int(now)], row::session_from_row))
    }
    async fn update_session_last_used(&self, id_hash: &str, now: i64) -> Result<bool> {
        self.write(|w| run(w, sqlite!(sql::TOUCH_SESSION), &[Arg::Text(id_hash), Arg::Int(now)])).map(|n| n > 0)
    }
    async fn add_session_client(&self, sid: &str, client_id: &str, now: i64) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::UPSERT_SESSION_CLIENT), &[Arg::Text(sid), Arg::Text(client_id), Arg::Int(now)])).map(drop)
    }
    async fn list_session_clients(&self, sid: &str) -> Result<Vec<String>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_SESSION_CLIENTS), &[Arg::Text(sid)], row::text_from_row))
    }
    async fn create_pending_request(&self, p: &PendingRequestRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_PENDING), &sql::pending_args(p))).map(drop)
    }
    async fn find_pending_request(&self, id: &str, now: i64) -> Result<Option<PendingRequestRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_PENDING), &[Arg::Text(id), Arg::Int(now)], row::pending_from_row))
    }
    async fn delete_pending_request(&self, id: &str) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::DELETE_PENDING), &[Arg::Text(id)])).map(drop)
    }
    async fn replace_session(&self, old_id_hash: &str, new: &SessionRecord, p: &PendingRequestRecord) -> Result<()> {
        self.transaction(|tx| {
            run(tx, sqlite!(sql::INSERT_SESSION), &sql::session_args(new))?;
            run(tx, sqlite!(sql::DELETE_SESSION), &[Arg::Text(old_id_hash)])?;
            run(tx, sqlite!(sql::UPSERT_PENDING), &sql::pending_args(p))?;
            Ok((true, ()))
        })
    }
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn find_consent(&self, user_id: &str, client_id: &str) -> Result<Option<Scopes>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_CONSENT), &[Arg::Text(user_id), Arg::Text(client_id)], row::scopes_from_row))
    }
    async fn update_consent(&self, user_id: &str, client_id: &str, scope: &Scopes, now: i64) -> Result<()> {
        let args = [Arg::Text(user_id), Arg::Text(client_id), Arg::Owned(scope.to_string()), Arg::Int(now)];
        self.write(|w| run(w, sqlite!(sql::UPSERT_CONSENT), &args)).map(drop)
    }
    async fn list_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_CONSENTS), &[Arg::Text(user_id)], row::consent_from_row))
    }
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> Result<bool> {
        const STATEMENTS: [&str; 2] = [sqlite!(sql::DELETE_CONSENT[0]), sqlite!(sql::DELETE_CONSENT[1])];
        self.transaction(|tx| {
            run(tx, STATEMENTS[0], &[Arg::Text(user_id), Arg::Text(client_id)])?;
            let deleted = run(tx, STATEMENTS[1], &[Arg::Text(user_id), Arg::Text(client_id)])? > 0;
            Ok((true, deleted))
        })
    }
    async fn list_grant_families(&self, user_id: &str, client_id: &str) -> Result<Vec<String>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_GRANT_FAMILIES), &[Arg::Text(user_id), Arg::Text(client_id)], row::text_from_row))
    }
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn create_code(&self, c: &CodeRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_CODE), &sql::code_args(c)?)).map(drop)
    }
    async fn find_code(&self, code_hash: &str) -> Result<Option<CodeRecord>> {
        self.read(|r| fetch_opt(r, sql::sqlite::CODE.find, &[Arg::Text(code_hash)], row::code_from_row))
    }
    async fn take_code(&self, code_hash: &str, now: i64) -> Result<Taken<CodeRecord>> {
        self.take(&sql::sqlite::CODE, &[Arg::Int(now), Arg::Text(code_hash)], code_hash, None)
    }
    async fn take_code_issuing(&self, code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<CodeRecord>> {
        self.take(&sql::sqlite::CODE, &[Arg::Int(now), Arg::Text(code_hash)], code_hash, next)
    }
}

#[async_trait]
impl RefreshTokenStore for SqliteStore {
    async fn create_refresh_token(&self, t: &RefreshTokenRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_REFRESH), &sql::refresh_args(t)?)).map(drop)
    }
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>> {
        self.read(|r| fetch_opt(r, sql::sqlite::REFRESH.find, &[Arg::Text(token_hash)], row::refresh_from_row))
    }
    async fn take_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64) -> Result<Taken<RefreshTokenRecord>> {
        self.take(&sql::sqlite::REFRESH, &[Arg::Int(now), Arg::Text(token_hash), Arg::Int(grace_secs)], token_hash, None)
    }
    async fn rotate_refresh_token(&self, token_hash: &str, now: i64, grace_secs: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<RefreshTokenRecord>> {
        self.take(&sql::sqlite::REFRESH, &[Arg::Int(now), Arg::Text(token_hash), Arg::Int(grace_secs)], token_hash, next)
    }
    async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64> {
        let until = now + sql::REVOKED_FAMILY_KEPT_SECS;
        self.transaction(|tx| {
            let live = run(tx, sqlite!(sql::REVOKE_FAMILY_LIVE), &[Arg::Int(now), Arg::Text(family_id)])?;
            run(tx, sqlite!(sql::REVOKE_FAMILY_REST), &[Arg::Int(now), Arg::Text(family_id)])?;
            run(tx, sqlite!(sql::INSERT_REVOKED_FAMILY), &[Arg::Text(family_id), Arg::Int(now), Arg::Int(until)])?;
            Ok((true, live))
        })
        .inspect(|_| {
            self.remember(|r| {
                r.families.entry(family_id.to_string()).or_insert(until);
            })
        })
    }
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn create_revoked_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_REVOKED_TOKEN), &[Arg::Text(jti), Arg::Int(expires_at)]))?;
        self.remember(|r| {
            r.tokens.entry(jti.to_string()).or_insert(expires_at);
        });
        Ok(())
    }
    async fn is_revoked(&self, jti: &str, family_id: Option<&str>) -> Result<bool> {
        if let Some(known) = &self.inner.revocations {
            let r = known.read().map_err(|_| poisoned())?;
            return Ok(r.tokens.contains_key(jti) || family_id.is_some_and(|f| r.families.contains_key(f)));
        }
        let revoked = self.read(|r| fetch_opt(r, sqlite!(sql::IS_REVOKED), &[Arg::Text(jti), Arg::OptText(family_id)], row::bool_from_row))?;
        Ok(revoked.unwrap_or(false))
    }
}

#[async_trait]
impl DpopStore for SqliteStore {
    async fn create_dpop_proof(&self, id: &str, expires_at: i64, now: i64) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::INSERT_SEEN_JWT), &[Arg::Text(id), Arg::Int(expires_at), Arg::Int(now)]))? > 0)
    }
    async fn create_dpop_nonce(&self, nonce_hash: &str, expires_at: i64) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_DPOP_NONCE), &[Arg::Text(nonce_hash), Arg::Int(expires_at)])).map(drop)
    }
    async fn find_dpop_nonce(&self, nonce_hash: &str, now: i64) -> Result<bool> {
        Ok(self.read(|r| fetch_opt(r, sqlite!(sql::FIND_DPOP_NONCE), &[Arg::Text(nonce_hash), Arg::Int(now)], row::bool_from_row))?.unwrap_or(false))
    }
}

#[async_trait]
impl AssertionStore for SqliteStore {
    async fn take_assertion(&self, id: &str, expires_at: i64, now: i64) -> Result<bool> {
        Ok(self.write(|w| run(w, sqlite!(sql::INSERT_SEEN_JWT), &[Arg::Text(id), Arg::Int(expires_at), Arg::Int(now)]))? > 0)
    }
}

#[async_trait]
impl DeviceCodeStore for SqliteStore {
    async fn create_device_code(&self, d: &DeviceCodeRecord) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_DEVICE_CODE), &sql::device_args(d)?)).map(drop)
    }
    async fn find_device_code(&self, device_code_hash: &str) -> Result<Option<DeviceCodeRecord>> {
        self.read(|r| fetch_opt(r, sql::sqlite::DEVICE_CODE.find, &[Arg::Text(device_code_hash)], row::device_from_row))
    }
    async fn find_device_code_by_user_code(&self, user_code: &str, now: i64) -> Result<Option<DeviceCodeRecord>> {
        self.read(|r| fetch_opt(r, sqlite!(sql::FIND_DEVICE_CODE_BY_USER_CODE), &[Arg::Text(user_code), Arg::Int(now)], row::device_from_row))
    }
    async fn decide_device_code(&self, user_code: &str, approve: bool, user_id: &str, auth_time: i64, oidc: Option<&OidcContext>, now: i64) -> Result<bool> {
        let args = sql::device_decision_args(user_code, approve, user_id, auth_time, oidc, now)?;
        Ok(self.write(|w| run(w, sqlite!(sql::DECIDE_DEVICE_CODE), &args))? > 0)
    }
    async fn update_device_poll(&self, device_code_hash: &str, now: i64, interval: i64) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::UPDATE_DEVICE_POLL), &[Arg::Int(now), Arg::Int(interval), Arg::Text(device_code_hash)])).map(drop)
    }
    async fn take_device_code(&self, device_code_hash: &str, now: i64) -> Result<Taken<DeviceCodeRecord>> {
        self.take(&sql::sqlite::DEVICE_CODE, &[Arg::Text(device_code_hash), Arg::Int(now)], device_code_hash, None)
    }
    async fn take_device_code_issuing(&self, device_code_hash: &str, now: i64, next: Option<&RefreshTokenRecord>) -> Result<Taken<DeviceCodeRecord>> {
        self.take(&sql::sqlite::DEVICE_CODE, &[Arg::Text(device_code_hash), Arg::Int(now)], device_code_hash, next)
    }
}

#[async_trait]
impl ConfigStore for SqliteStore {
    async fn apply_config(&self, changes: &[ConfigChange]) -> Result<()> {
        self.transaction(|tx| {
            for c in changes {
                for (statement, args) in sql::config_statements(c)? {
                    run(tx, &sql::to_sqlite_text(statement), &args)?;
                }
            }
            Ok((true, ()))
        })
    }
    async fn list_applied(&self) -> Result<Vec<(String, String)>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_APPLIED), &[], row::text_pair_from_row))
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn delete_expired(&self, now: i64, batch: i64) -> Result<u64> {
        // One bounded DELETE per table, in one transaction; callers loop while rows keep going.
        let n = self.transaction(|tx| {
            let mut n = 0;
            for sql in DELETE_EXPIRED.iter() {
                n += run(tx, sql, &[Arg::Int(now), Arg::Int(batch)])?;
            }
            Ok((true, n))
        })?;
        // The same rule as the clean-up of the two revocation tables.
        self.remember(|r| {
            r.tokens.retain(|_, exp| *exp >= now);
            r.families.retain(|_, exp| *exp >= now);
        });
        Ok(n)
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| query_opt(c, sqlite!(sql::PING), [], |_| Ok(()))).map(drop)
    }
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn take_throttle_attempt(&self, keys: &[(String, ThrottleRule)], now: i64) -> Result<ThrottleAttempt> {
        // One immediate transaction on the writer: the reads, the decision and the writes are
        // one step for every connection on the file.
        self.transaction(|tx| {
            let mut states = Vec::with_capacity(keys.len());
            for (key, _) in keys {
                states.push(fetch_opt(tx, "SELECT failures, last_at FROM throttles WHERE key = ?1", &[Arg::Text(key)], row::throttle_from_row)?.unwrap_or_default());
            }
            let (attempt, next) = decide_throttles(keys, &states, now);
            for ((key, _), state) in keys.iter().zip(&next) {
                run(
                    tx,
                    "INSERT INTO throttles (key, failures, last_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at",
                    &[Arg::Text(key), Arg::Int(state.failures), Arg::Int(state.last_at)],
                )?;
            }
            Ok((!next.is_empty(), attempt))
        })
    }
    async fn update_throttle_success(&self, reset: &[String], refund: &[String]) -> Result<()> {
        self.transaction(|tx| {
            for key in reset {
                run(tx, "UPDATE throttles SET failures = 0 WHERE key = ?1", &[Arg::Text(key)])?;
            }
            for key in refund {
                run(tx, "UPDATE throttles SET failures = MAX(failures - 1, 0) WHERE key = ?1", &[Arg::Text(key)])?;
            }
            Ok((true, ()))
        })
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn create_audit_event(&self, kind: &str, detail: &str, now: i64) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::INSERT_AUDIT_EVENT), &[Arg::Text(kind), Arg::Text(detail), Arg::Int(now)])).map(drop)
    }
    async fn list_audit_events(&self, kind: &str) -> Result<Vec<String>> {
        self.read(|r| fetch_all(r, sqlite!(sql::LIST_AUDIT_EVENTS), &[Arg::Text(kind)], row::text_from_row))
    }
    async fn record_audit_event(&self, e: &NewAuditEvent<'_>, now: i64) -> Result<()> {
        self.write(|w| run(w, sqlite!(sql::RECORD_AUDIT_EVENT), &sql::audit_args(e, now))).map(drop)
    }
    async fn find_audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        self.read(|r| fetch_all(r, sqlite!(sql::FIND_AUDIT_EVENTS), &sql::audit_query_args(q), row::audit_from_row))
    }
    async fn delete_audit_events_before(&self, at: i64, limit: i64) -> Result<u64> {
        self.write(|w| run(w, sqlite!(sql::DELETE_AUDIT_EVENTS_BEFORE), &[Arg::Int(at), Arg::Int(limit)]))
    }
}

/// The shared storage suite (`tessera_storage::conformance_tests!`), on every kind of SQLite
/// store: a file (the second handle another store on it, as the admin CLI would open), memory
/// (one connection both writes and reads), and a server's store on a file and in memory
/// (revocations answered from memory).
#[cfg(test)]
mod conformance {
    use super::SqliteStore;
    use std::sync::Arc;
    use tessera_storage::Store;
    use tessera_storage::conformance::Factory;

    /// A store on a file in a temporary folder (created below it, as `serve` creates its folder).
    pub struct OnFile {
        store: Arc<dyn Store>,
        url: String,
        _dir: tempfile::TempDir,
    }

    impl OnFile {
        async fn open_as(server: bool) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/nested/tessera.db", dir.path().display());
            let store = if server { SqliteStore::open_server(&url).await } else { SqliteStore::open(&url).await };
            Self { store: Arc::new(store.unwrap()), url, _dir: dir }
        }
    }

    impl Factory for OnFile {
        async fn open() -> Self {
            Self::open_as(false).await
        }
        fn store(&self) -> Arc<dyn Store> {
            self.store.clone()
        }
        async fn second(&self) -> Arc<dyn Store> {
            Arc::new(SqliteStore::open(&self.url).await.unwrap())
        }
    }

    /// The server's store on a file (`open_server`).
    pub struct ServerOnFile(OnFile);

    impl Factory for ServerOnFile {
        async fn open() -> Self {
            Self(OnFile::open_as(true).await)
        }
        fn store(&self) -> Arc<dyn Store> {
            self.0.store()
        }
        async fn second(&self) -> Arc<dyn Store> {
            self.0.second().await
        }
    }

    /// An in-memory store (`sqlite::memory:`; `server`: as `open_server` opens it).
    pub struct InMemory<const SERVER: bool>(Arc<dyn Store>);

    impl<const SERVER: bool> Factory for InMemory<SERVER> {
        async fn open() -> Self {
            let store = if SERVER { SqliteStore::open_server("sqlite::memory:").await } else { SqliteStore::open("sqlite::memory:").await };
            Self(Arc::new(store.unwrap()))
        }
        fn store(&self) -> Arc<dyn Store> {
            self.0.clone()
        }
        async fn second(&self) -> Arc<dyn Store> {
            // Nobody else can reach an in-memory database.
            self.0.clone()
        }
    }

    mod file {
        tessera_storage::conformance_tests!(crate::conformance::OnFile);
    }
    mod memory {
        tessera_storage::conformance_tests!(crate::conformance::InMemory<false>);
    }
    mod server_file {
        tessera_storage::conformance_tests!(crate::conformance::ServerOnFile);
    }
    mod server_memory {
        tessera_storage::conformance_tests!(crate::conformance::InMemory<true>);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reopening an existing database migrates nothing and keeps the data.
    #[tokio::test]
    async fn reopening_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/tessera.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
        store.create_client(&tessera_storage::conformance::client("c-1")).await.unwrap();
        let again = SqliteStore::open(&url).await.unwrap();
        assert!(again.find_client("c-1").await.unwrap().is_some());
    }

    /// Issue 13, finding 4: a new data folder is 0700; the database, its WAL and shared-memory
    /// files and the server lock are 0600, and looser modes are tightened on open.
    #[cfg(unix)]
    #[tokio::test]
    async fn data_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data/tessera.db");
        let url = format!("sqlite://{}", db.display());
        let mode = |suffix: &str| std::fs::metadata(format!("{}{suffix}", db.display())).unwrap().permissions().mode() & 0o777;
        let files = ["", "-wal", "-shm", "-serve.lock"];
        {
            let store = SqliteStore::open_server(&url).await.unwrap();
            store.create_audit_event("x", "y", 1).await.unwrap();
            assert_eq!(std::fs::metadata(dir.path().join("data")).unwrap().permissions().mode() & 0o777, 0o700);
            for f in files {
                assert_eq!(mode(f), 0o600, "tessera.db{f}");
            }
        }
        // Loosen what is left after the close: SQLite may have removed -wal/-shm by now (a
        // background checkpoint's last close races this; seen failing in CI), and a file it
        // creates again takes the database file's loosened mode — to be tightened on open too.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o664)).unwrap();
        for f in files {
            match std::fs::set_permissions(format!("{}{f}", db.display()), std::fs::Permissions::from_mode(0o664)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other.unwrap(),
            }
        }
        let store = SqliteStore::open_server(&url).await.unwrap();
        store.create_audit_event("x", "y", 2).await.unwrap();
        for f in files {
            assert_eq!(mode(f), 0o600, "tessera.db{f} tightened");
        }
    }

    /// One server per database file; its memory of revocations starts from the tables and
    /// follows its own revocations and clean-ups.
    #[tokio::test]
    async fn one_server_per_file_and_its_revocations() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/tessera.db", dir.path().display());
        let admin = SqliteStore::open(&url).await.unwrap();
        admin.create_revoked_token("before", 2_000).await.unwrap();
        admin.revoke_family("fam-before", 1_000).await.unwrap();
        let server = SqliteStore::open_server(&url).await.unwrap();
        let second = SqliteStore::open_server(&url).await.map(drop).unwrap_err();
        assert!(second.to_string().contains("another tessera server is running"), "{second}");
        assert!(SqliteStore::open(&url).await.is_ok(), "admin commands still open it");
        assert!(server.is_revoked("before", None).await.unwrap(), "loaded at open");
        assert!(server.is_revoked("fam-before.x", Some("fam-before")).await.unwrap());
        assert!(!server.is_revoked("other", Some("fam-other")).await.unwrap());
        server.create_revoked_token("now", 3_000).await.unwrap();
        server.revoke_family("fam-now", 1_000).await.unwrap();
        assert!(server.is_revoked("now", None).await.unwrap());
        assert!(server.is_revoked("fam-now.y", Some("fam-now")).await.unwrap());
        assert!(admin.is_revoked("now", None).await.unwrap(), "and written to the tables");
        // Clean-up at t = 2,500: "before" (expired 2,000) and both families (1,000 + 86,400 > 2,500: kept).
        admin.delete_expired(2_500, 500).await.unwrap();
        server.delete_expired(2_500, 500).await.unwrap();
        assert!(!server.is_revoked("before", None).await.unwrap(), "expired rows leave memory with the tables");
        assert!(server.is_revoked("now", None).await.unwrap());
        drop(server);
        assert!(SqliteStore::open_server(&url).await.is_ok(), "the lock goes with the store");
    }

    type MigrationRow = (i64, String, Vec<u8>, i64);

    fn migration_rows(store: &SqliteStore) -> Vec<MigrationRow> {
        store
            .read(|c| {
                query_all(c, "SELECT version, description, checksum, execution_time FROM _sqlx_migrations ORDER BY version", [], |r| {
                    Ok((col(r, "version")?, col(r, "description")?, col(r, "checksum")?, col(r, "execution_time")?))
                })
            })
            .unwrap()
    }

    /// A database that sqlx's migrator created (as every earlier version did) opens without
    /// re-applying a migration and keeps its data; one created here passes sqlx's migrator, which
    /// finds nothing to apply and every checksum matching.
    #[tokio::test]
    async fn migrations_compatible_with_sqlx() {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let dir = tempfile::tempdir().unwrap();
        let connect = |path: std::path::PathBuf| async move {
            SqlitePoolOptions::new().max_connections(1).connect_with(SqliteConnectOptions::new().filename(path).create_if_missing(true)).await.unwrap()
        };
        let migrator = sqlx::migrate!("./migrations");
        let expected: Vec<(i64, String, Vec<u8>)> = migrator.iter().map(|m| (m.version, m.description.to_string(), m.checksum.to_vec())).collect();
        assert_eq!(expected.len(), MIGRATIONS.len());

        let old = dir.path().join("old.db");
        let pool = connect(old.clone()).await;
        migrator.run(&pool).await.unwrap();
        sqlx::query("INSERT INTO clients (client_id, name, redirect_uris, scope, grant_types, token_endpoint_auth_method, created_at) VALUES ('old', 'Old', '[]', '', '[]', 'none', 1)").execute(&pool).await.unwrap();
        let recorded: Vec<MigrationRow> =
            sqlx::query_as("SELECT version, description, checksum, execution_time FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
        pool.close().await;
        let store = SqliteStore::open(&format!("sqlite://{}", old.display())).await.unwrap();
        assert_eq!(migration_rows(&store), recorded, "nothing re-applied or re-recorded");
        assert_eq!(store.find_client("old").await.unwrap().unwrap().subject_type, "public");
        drop(store);

        let new = dir.path().join("new.db");
        let store = SqliteStore::open(&format!("sqlite://{}", new.display())).await.unwrap();
        store.create_client(&tessera_storage::conformance::client("new")).await.unwrap();
        let rows = migration_rows(&store);
        assert_eq!(rows.iter().map(|(v, d, c, _)| (*v, d.clone(), c.clone())).collect::<Vec<_>>(), expected, "recorded as sqlx records them");
        drop(store);
        let pool = connect(new).await;
        migrator.run(&pool).await.unwrap();
        let after: Vec<MigrationRow> =
            sqlx::query_as("SELECT version, description, checksum, execution_time FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
        assert_eq!(after, rows);
        pool.close().await;
    }

    /// A database some migration of which failed half-way (as sqlx's migrator records it), or that
    /// a newer version migrated further, is not opened.
    #[tokio::test]
    async fn dirty_or_unknown_migrations_refuse_to_open() {
        let dir = tempfile::tempdir().unwrap();
        for (name, sql) in [
            ("dirty.db", "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 3"),
            ("newer.db", "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (999, 'later', TRUE, x'00', 1)"),
        ] {
            let url = format!("sqlite://{}", dir.path().join(name).display());
            let store = SqliteStore::open(&url).await.unwrap();
            store.write(|w| exec(w, sql, [])).unwrap();
            drop(store);
            assert!(matches!(SqliteStore::open(&url).await, Err(StoreError::Other(m)) if m.contains("migration")), "{name}");
        }
    }

    /// Takes on OS threads at once, through one store and through a second one on the same file
    /// (another process's connections, such as the admin CLI's): exactly one wins, and reads go
    /// on meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_rotations_across_connections() {
        use tessera_storage::conformance::{client, refresh};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/tessera.db", dir.path().display());
        let a = SqliteStore::open(&url).await.unwrap();
        let b = SqliteStore::open(&url).await.unwrap();
        a.create_client(&client("c-1")).await.unwrap();
        for round in 0..10 {
            let token = format!("t-{round}");
            a.create_refresh_token(&refresh(&token, "f")).await.unwrap();
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                    let token = token.clone();
                    tokio::spawn(async move {
                        assert!(s.find_client("c-1").await.unwrap().is_some());
                        s.rotate_refresh_token(&token, 5, 0, Some(&refresh(&format!("{token}-next-{i}"), "f"))).await.unwrap()
                    })
                })
                .collect();
            let mut won = 0;
            for t in tasks {
                won += usize::from(matches!(t.await.unwrap(), Taken::Taken(_)));
            }
            assert_eq!(won, 1, "round {round}: exactly one rotation wins");
            let successors = (0..16).filter(|i| stored(&b, &format!("{token}-next-{i}"))).count();
            assert_eq!(successors, 1, "round {round}: exactly one successor stored");
        }
    }

    /// Throttled attempts on OS threads at once, through two stores on one file (two
    /// connections, as another process would have): never more allowed than the burst.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_throttle_attempts_across_connections() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/tessera.db", dir.path().display());
        let a = SqliteStore::open(&url).await.unwrap();
        let b = SqliteStore::open(&url).await.unwrap();
        let rule = ThrottleRule { burst: 4, max_delay: 900, reset_after: 900 };
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { s.take_throttle_attempt(&[("user:alice".to_string(), rule)], 7).await.unwrap() })
            })
            .collect();
        let mut allowed = 0;
        for t in tasks {
            allowed += usize::from(matches!(t.await.unwrap(), ThrottleAttempt::Allowed { .. }));
        }
        assert_eq!(allowed, 4);
    }

    fn stored(s: &SqliteStore, token_hash: &str) -> bool {
        s.read(|r| fetch_opt(r, sql::sqlite::REFRESH.find, &[Arg::Text(token_hash)], row::refresh_from_row)).unwrap().is_some()
    }
}
