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
//! - Time is text in one fixed form, so that text order is time order.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{SqlSafeStr, Sqlite, Transaction};
use tokio_util::sync::CancellationToken;

use super::StoreError;
use super::dialect::{Dialect, Query, QueryTexts, time_text};
use super::queries::{InsertRow, SqlStore, Statement, json_text};
use crate::config::DatabaseSettings;

/// The SQLite dialect, with the file it keeps.
#[derive(Debug, Clone)]
pub(super) struct Lite {
    path: PathBuf,
}

/// SQLite's store.
pub(super) type LiteStore = SqlStore<Lite>;

static TEXTS: LazyLock<QueryTexts> =
    LazyLock::new(|| QueryTexts::new(Query::sqlite, include_str!("sql/sqlite/task_filter.sql")));

impl Dialect for Lite {
    type Db = Sqlite;
    /// Text in one fixed form (microseconds, `Z`): text order is time order.
    type Time = String;

    fn time(t: DateTime<Utc>) -> String {
        time_text(t)
    }

    fn from_time(text: String) -> Result<DateTime<Utc>, StoreError> {
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::corrupt("time", e))
    }

    fn sql(query: Query) -> &'static str {
        TEXTS.get(query)
    }

    fn migrations() -> &'static [(i64, &'static str, &'static str)] {
        MIGRATIONS
    }

    /// One JSON array of the rows (SQLite pushes no task).
    fn insert_new_tasks(rows: &[InsertRow<'_>]) -> Statement<Lite> {
        sqlx::query(Lite::sql(Query::TasksInsert))
            .persistent(Lite::keeps_statements())
            .bind(json_text(rows))
    }

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

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// `BEGIN IMMEDIATE` takes the write lock at once, so nothing changes
    /// between the read and the write.
    async fn begin_write(
        conn: PoolConnection<Sqlite>,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        let begin = "BEGIN IMMEDIATE".into_sql_str();
        Ok(Transaction::begin(conn, Some(begin)).await?)
    }

    /// The write lock (`BEGIN IMMEDIATE`) keeps other rescuers and
    /// heartbeats out until the pass commits.
    async fn begin_rescue(
        conn: PoolConnection<Sqlite>,
    ) -> Result<Option<Transaction<'static, Sqlite>>, StoreError> {
        Lite::begin_write(conn).await.map(Some)
    }

    /// `BEGIN IMMEDIATE` makes every write wait its turn anyway.
    async fn begin_queue_claim(
        conn: PoolConnection<Sqlite>,
        _queue: &str,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Lite::begin_write(conn).await
    }

    /// SQLite has no statement timeout: `_timeout` is not enforced (the file
    /// is local, and a listing reads with no lock held against writers, in
    /// WAL mode).
    async fn begin_bounded(
        conn: PoolConnection<Sqlite>,
        _timeout: Duration,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(Transaction::begin(conn, None).await?)
    }

    async fn begin_token_mint(
        conn: PoolConnection<Sqlite>,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Lite::begin_write(conn).await
    }
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
    (
        8,
        "files",
        include_str!("../../migrations/sqlite/0008_files.sql"),
    ),
    (
        9,
        "batches",
        include_str!("../../migrations/sqlite/0009_batches.sql"),
    ),
    (
        11,
        "lighter writes",
        include_str!("../../migrations/sqlite/0011_lighter_writes.sql"),
    ),
    (
        13,
        "control",
        include_str!("../../migrations/sqlite/0013_control.sql"),
    ),
];

impl LiteStore {
    pub(super) fn connect(settings: &DatabaseSettings) -> Result<LiteStore, StoreError> {
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
            // A file does not hang up: no round trip to the connection's
            // thread before every statement.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        // A file does not hang up: a connection is kept however long it
        // waits (up to `kept::HOLD`).
        Ok(SqlStore::new(pool, Lite { path }, super::kept::HOLD))
    }

    /// The database file.
    pub(super) fn path(&self) -> &std::path::Path {
        &self.dialect.path
    }

    /// Nothing to listen to: SQLite has no notifications.
    pub(super) async fn run_listener(&self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
    }
}
