//! The notes, in SQLite (sqlx, runtime queries). Every query is scoped by owner: a note of
//! another user is indistinguishable from a missing one.

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{FromRow, SqlitePool};
use std::str::FromStr;

pub type DbError = sqlx::Error;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, serde::Deserialize)]
pub struct Note {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The notes database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: SqlitePool,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_owner ON notes (owner, id)";

impl Db {
    /// Open `sqlite://PATH` (creating the file and its folder) or `sqlite::memory:`, and create
    /// the table if needed.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(DbError::Io)?;
                }
            }
        }
        let opts =
            SqliteConnectOptions::from_str(url)?.create_if_missing(true).journal_mode(SqliteJournalMode::Wal).busy_timeout(std::time::Duration::from_secs(5));
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(opts).await?;
        for stmt in SCHEMA.split(';') {
            sqlx::query(stmt).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    pub async fn list(&self, owner: &str) -> Result<Vec<Note>, DbError> {
        sqlx::query_as("SELECT id, title, body, created_at, updated_at FROM notes WHERE owner = $1 ORDER BY id").bind(owner).fetch_all(&self.pool).await
    }

    pub async fn find(&self, owner: &str, id: i64) -> Result<Option<Note>, DbError> {
        sqlx::query_as("SELECT id, title, body, created_at, updated_at FROM notes WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn create(&self, owner: &str, title: &str, body: &str, now: i64) -> Result<Note, DbError> {
        sqlx::query_as(
            "INSERT INTO notes (owner, title, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id, title, body, created_at, updated_at",
        )
        .bind(owner)
        .bind(title)
        .bind(body)
        .bind(now)
        .fetch_one(&self.pool)
        .await
    }

    pub async fn update(&self, owner: &str, id: i64, title: &str, body: &str, now: i64) -> Result<Option<Note>, DbError> {
        sqlx::query_as("UPDATE notes SET title = $1, body = $2, updated_at = $3 WHERE owner = $4 AND id = $5 RETURNING id, title, body, created_at, updated_at")
            .bind(title)
            .bind(body)
            .bind(now)
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn delete(&self, owner: &str, id: i64) -> Result<bool, DbError> {
        Ok(sqlx::query("DELETE FROM notes WHERE owner = $1 AND id = $2").bind(owner).bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }

    pub async fn count(&self, owner: &str) -> Result<i64, DbError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM notes WHERE owner = $1").bind(owner).fetch_one(&self.pool).await
    }
}
