//! The SQLite store: the embedded default, so that `errand serve` runs on a
//! fresh machine with nothing else installed. Queries in `sql/sqlite/`, the
//! schema in `migrations/sqlite/`.
//!
//! What differs from Postgres, and why:
//! - One writer at a time (WAL mode: readers don't block it). Each claim is
//!   one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`, which the write
//!   lock makes atomic, so no SKIP LOCKED is needed. Several processes may
//!   share the file; `busy_timeout` makes a writer wait its turn.
//! - No NOTIFY: the store wakes workers of this process itself (see
//!   `Store::announce`); workers in other processes find new work at their
//!   poll interval.
//! - No advisory locks: a rescue pass runs in a `BEGIN IMMEDIATE`
//!   transaction, which holds the write lock for its (bounded) length.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio_util::sync::CancellationToken;

use super::StoreError;
use crate::config::DatabaseSettings;

/// The text of query `sql/sqlite/<name>.sql`.
macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/store/sql/sqlite/",
            $name,
            ".sql"
        ))
    };
}

type Db = sqlx::Sqlite;
type Backend = SqliteStore;

/// SQLite keeps time as text in one fixed format (microseconds, `Z`), so
/// that text order is time order.
type DbTime = String;

fn db_time(t: DateTime<Utc>) -> DbTime {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn from_db_time(text: DbTime) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {text:?}: {e}")))
}

// The shared query code, compiled for this backend (see queries.rs): twice
// in all, on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "queries.rs"]
mod queries;

/// A transaction for a write that reads first: `BEGIN IMMEDIATE` takes the
/// write lock at once, so nothing changes between the read and the write.
async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// A transaction for a rescue pass: `BEGIN IMMEDIATE` holds the write lock,
/// keeping other rescuers and heartbeats out until it commits.
async fn begin_rescue(
    pool: &SqlitePool,
) -> Result<Option<sqlx::Transaction<'static, Db>>, StoreError> {
    begin_write(pool).await.map(Some)
}

/// A transaction in which processes take turns to mint the first token.
async fn begin_token_mint(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
    begin_write(pool).await
}

/// A transaction in which claims of a queue take turns: `BEGIN IMMEDIATE`
/// makes every write wait its turn anyway.
async fn begin_queue_claim(
    pool: &SqlitePool,
    _queue: &str,
) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
    begin_write(pool).await
}

/// A read transaction. SQLite has no statement timeout: `_timeout` is not
/// enforced (the file is local, and a listing reads with no lock held
/// against writers, in WAL mode).
async fn begin_bounded(
    pool: &SqlitePool,
    _timeout: std::time::Duration,
) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
    Ok(pool.begin().await?)
}

/// The schema, in order: `migrations/sqlite/`, compiled in.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "operators",
        include_str!("../../migrations/sqlite/0002_operators.sql"),
    ),
    (
        3,
        "dependencies",
        include_str!("../../migrations/sqlite/0003_dependencies.sql"),
    ),
    (
        4,
        "idempotency",
        include_str!("../../migrations/sqlite/0004_idempotency.sql"),
    ),
    (
        5,
        "queues",
        include_str!("../../migrations/sqlite/0005_queues.sql"),
    ),
    (
        6,
        "ended notifications",
        include_str!("../../migrations/sqlite/0006_ended_notifications.sql"),
    ),
    (
        7,
        "callbacks",
        include_str!("../../migrations/sqlite/0007_callbacks.sql"),
    ),
];

#[derive(Clone)]
pub(super) struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Processes migrating one file take turns, by an exclusive lock on a
    /// file beside it (sqlx's migrator does not lock on SQLite, and two
    /// processes starting together would both try to create the tables).
    /// Held until the returned file is dropped.
    async fn migration_turn(&self) -> Result<Option<std::fs::File>, StoreError> {
        let mut name = self.path.clone().into_os_string();
        name.push(".migrate-lock");
        let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(name)
            .map_err(io)?;
        tokio::task::spawn_blocking(move || file.lock().map(|()| Some(file)))
            .await
            .map_err(|e| io(std::io::Error::other(e)))?
            .map_err(io)
    }

    pub(super) fn connect(settings: &DatabaseSettings) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(&settings.url)
            .map_err(StoreError::Database)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses no committed transaction on a process
            // crash (only, perhaps, the last ones on a power cut).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(settings.acquire_timeout)
            .foreign_keys(true)
            // So that cancelling a task cancels its waiting children, and
            // theirs (see migrations/sqlite/0003_dependencies.sql).
            .pragma("recursive_triggers", "ON");
        let path = std::path::absolute(options.get_filename())
            .unwrap_or_else(|_| options.get_filename().to_path_buf());
        if let Some(dir) = path.parent() {
            // Best effort: opening the file says clearly if this failed.
            let _ = std::fs::create_dir_all(dir);
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        Ok(SqliteStore { pool, path })
    }

    /// The database file.
    pub(super) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Nothing to listen to: SQLite has no notifications.
    pub(super) async fn run_listener(&self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
    }
}
