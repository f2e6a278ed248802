//! The Postgres store: the production backend. Queries in `sql/postgres/`,
//! the schema in `migrations/postgres/`. What only Postgres does lives here:
//! the [`Dialect`] (times as `timestamptz`, advisory locks for the rescuer,
//! limited queues and the first token, a statement timeout per listing);
//! its LISTEN/NOTIFY listener is `listener`.

use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult, PgSslMode};
use sqlx::{Connection as _, Postgres, Transaction};

use super::StoreError;
use super::dialect::{Dialect, Query, QueryTexts};
use super::queries::{InsertRow, SqlStore, Statement};
use crate::config::DatabaseSettings;

/// The Postgres dialect, and how this process reaches the database.
#[derive(Debug, Clone)]
pub(super) struct Pg {
    /// `database.pooled`: through a transaction pooler.
    pooled: bool,
    /// `database.direct_url`: straight to Postgres, when pooled.
    direct: Option<PgPool>,
    /// Whether connections may be encrypted: not with `sslmode=disable`,
    /// nor over a Unix socket.
    tls: bool,
}

/// The queues that `rows` seat tasks of (see `rows::seat`), each once.
fn seated_queues(rows: &[InsertRow<'_>]) -> Vec<String> {
    let mut queues: Vec<String> = Vec::new();
    for row in rows.iter().filter(|r| r.seat.is_some()) {
        if !queues.iter().any(|q| q == row.queue) {
            queues.push(row.queue.to_string());
        }
    }
    queues
}

/// A Postgres-only statement (`pg_sql!`), kept prepared unless this
/// process goes through a transaction pooler.
pub(super) fn statement(text: &'static str) -> Statement<Pg> {
    sqlx::query(text).persistent(Pg::keeps_statements())
}

/// What a statement carries at most over TLS: one TLS record with room
/// for the message's framing.
const TLS_STATEMENT_BYTES: usize = 15 * 1024;

/// Set once a store connects through a transaction pooler: from then on no
/// statement of this process stays prepared. (Process-wide because queries
/// are built before they meet a connection; a process has one store, and a
/// statement that is not kept is only slower, never wrong.)
static THROUGH_POOLER: AtomicBool = AtomicBool::new(false);

/// Postgres's store.
pub(super) type PgStore = SqlStore<Pg>;

static TEXTS: LazyLock<QueryTexts> =
    LazyLock::new(|| QueryTexts::new(Query::postgres, pg_sql!("task_filter")));

impl Dialect for Pg {
    type Db = Postgres;
    /// Postgres keeps time as `timestamptz`.
    type Time = DateTime<Utc>;

    fn time(t: DateTime<Utc>) -> DateTime<Utc> {
        t
    }

    fn from_time(t: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        Ok(t)
    }

    fn sql(query: Query) -> &'static str {
        TEXTS.get(query)
    }

    fn migrations() -> &'static [(i64, &'static str, &'static str)] {
        MIGRATIONS
    }

    /// One array per column: Postgres reads typed binary arrays faster than
    /// it takes a JSON array apart (bulk creates of 1,000 cost it about 15
    /// µs of CPU a task, against 23). JSON columns travel as text. Rows with
    /// seats go through the seating insert, with their seats and queues.
    fn insert_new_tasks(rows: &[InsertRow<'_>]) -> Statement<Pg> {
        let seated = rows.iter().any(|r| r.seat.is_some());
        let text = if seated {
            pg_sql!("tasks_insert_seated")
        } else {
            Pg::sql(Query::TasksInsert)
        };
        let query = statement(text);
        fn column<T>(rows: &[InsertRow<'_>], f: impl Fn(&InsertRow<'_>) -> T) -> Vec<T> {
            rows.iter().map(f).collect()
        }
        fn json(value: &impl serde::Serialize) -> String {
            serde_json::to_string(value).expect("a row's JSON serializes")
        }
        let query = query
            .bind(column(rows, |r| r.token.as_uuid()))
            .bind(column(rows, |r| r.kind.to_string()))
            .bind(column(rows, |r| r.queue.to_string()))
            .bind(column(rows, |r| r.priority))
            .bind(column(rows, |r| r.status.to_string()))
            .bind(column(rows, |r| json(r.payload)))
            .bind(column(rows, |r| r.max_attempts))
            .bind(column(rows, |r| r.timeout_ms))
            .bind(column(rows, |r| r.owner.to_string()))
            .bind(column(rows, |r| r.product.map(str::to_string)))
            .bind(column(rows, |r| r.created_at))
            .bind(column(rows, |r| r.run_at))
            .bind(column(rows, |r| r.pending_parents))
            .bind(column(rows, |r| json(&r.depends_on)))
            .bind(column(rows, |r| r.callback_url.map(str::to_string)))
            .bind(column(rows, |r| json(&r.files)))
            .bind(column(rows, |r| r.start_by))
            .bind(column(rows, |r| r.schedule.map(str::to_string)))
            .bind(column(rows, |r| r.scheduled_for));
        if seated {
            query
                .bind(column(rows, |r| r.seat))
                .bind(seated_queues(rows))
        } else {
            query
        }
    }

    /// Nothing to hold: sqlx's migrator takes an advisory lock on Postgres.
    async fn migration_turn(&self) -> Result<Option<std::fs::File>, StoreError> {
        Ok(None)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn keeps_statements() -> bool {
        !THROUGH_POOLER.load(Ordering::Relaxed)
    }

    fn pooled(&self) -> bool {
        self.pooled
    }

    fn statement_bytes(&self) -> Option<usize> {
        self.tls.then_some(TLS_STATEMENT_BYTES)
    }

    fn direct_pool(&self) -> Option<&PgPool> {
        self.direct.as_ref()
    }

    /// Row locks keep a write that reads first safe.
    async fn begin_write(
        conn: PoolConnection<Postgres>,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(Transaction::begin(conn, None).await?)
    }

    /// An advisory lock keeps two nodes from doing the same pass; expired
    /// rows are then locked with SKIP LOCKED.
    async fn begin_rescue(
        conn: PoolConnection<Postgres>,
    ) -> Result<Option<Transaction<'static, Postgres>>, StoreError> {
        let mut tx = Transaction::begin(conn, None).await?;
        let locked: bool = sqlx::query_scalar(pg_sql!("lock_try"))
            .persistent(Pg::keeps_statements())
            .bind(LOCK_RESCUE)
            .fetch_one(&mut *tx)
            .await?;
        Ok(locked.then_some(tx))
    }

    /// Claims of a limited queue take turns: an advisory lock per queue.
    async fn begin_queue_claim(
        conn: PoolConnection<Postgres>,
        queue: &str,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = Transaction::begin(conn, None).await?;
        statement(pg_sql!("queue_lock"))
            .bind(queue)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Each statement stops after `timeout`, answered as
    /// [`StoreError::Timeout`].
    async fn begin_bounded(
        conn: PoolConnection<Postgres>,
        timeout: Duration,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = Transaction::begin(conn, None).await?;
        statement(pg_sql!("statement_timeout_set"))
            .bind(format!("{}ms", timeout.as_millis().max(1)))
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Nodes take turns to mint the first token: an advisory lock.
    async fn begin_token_mint(
        conn: PoolConnection<Postgres>,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = Transaction::begin(conn, None).await?;
        statement(pg_sql!("lock_wait"))
            .bind(LOCK_TOKENS)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Advisory lock keys (any two distinct numbers; these spell "errand" and a
/// purpose).
const LOCK_RESCUE: i64 = 0x6572_7261_6e64_0001;
const LOCK_TOKENS: i64 = 0x6572_7261_6e64_0002;

/// The schema, in order: `migrations/postgres/`, compiled in.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "operators",
        include_str!("../../migrations/postgres/0002_operators.sql"),
    ),
    (
        3,
        "dependencies",
        include_str!("../../migrations/postgres/0003_dependencies.sql"),
    ),
    (
        4,
        "idempotency",
        include_str!("../../migrations/postgres/0004_idempotency.sql"),
    ),
    (
        5,
        "queues",
        include_str!("../../migrations/postgres/0005_queues.sql"),
    ),
    (
        6,
        "ended notifications",
        include_str!("../../migrations/postgres/0006_ended_notifications.sql"),
    ),
    (
        7,
        "callbacks",
        include_str!("../../migrations/postgres/0007_callbacks.sql"),
    ),
    (
        8,
        "files",
        include_str!("../../migrations/postgres/0008_files.sql"),
    ),
    (
        9,
        "batches",
        include_str!("../../migrations/postgres/0009_batches.sql"),
    ),
    (
        10,
        "speed",
        include_str!("../../migrations/postgres/0010_speed.sql"),
    ),
    (
        11,
        "lighter writes",
        include_str!("../../migrations/postgres/0011_lighter_writes.sql"),
    ),
    (
        12,
        "pushes",
        include_str!("../../migrations/postgres/0012_pushes.sql"),
    ),
    (
        13,
        "control",
        include_str!("../../migrations/postgres/0013_control.sql"),
    ),
];

/// Whether connections to `url` may be encrypted.
fn may_encrypt(url: &str) -> Result<bool, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(StoreError::Database)?;
    let socket = options.get_socket().is_some() || options.get_host().starts_with('/');
    Ok(!socket && !matches!(options.get_ssl_mode(), PgSslMode::Disable))
}

impl PgStore {
    pub(super) fn connect(settings: &DatabaseSettings) -> Result<PgStore, StoreError> {
        let check_idle_after = settings.check_idle_after;
        let pool = |url: &str, connections: u32, pooled: bool| {
            let mut options = PgConnectOptions::from_str(url)
                .map_err(StoreError::Database)?
                .application_name("errand");
            if pooled {
                // A pooler refuses session settings, and shares server
                // connections between clients' transactions.
                options = options.statement_cache_capacity(0);
            } else {
                let timeout = settings.statement_timeout.as_millis().to_string();
                options = options.options([("statement_timeout", timeout.as_str())]);
            }
            Ok::<_, StoreError>(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(settings.acquire_timeout)
                    .test_before_acquire(false)
                    .before_acquire(move |conn, meta| {
                        // Only a connection idle for a while is worth a
                        // round trip first (`database.check_idle_after`);
                        // one that fails it is replaced.
                        Box::pin(async move {
                            Ok(meta.idle_for < check_idle_after || conn.ping().await.is_ok())
                        })
                    })
                    .connect_lazy_with(options),
            )
        };
        let direct = if settings.pooled {
            THROUGH_POOLER.store(true, Ordering::Relaxed);
            // The listener and the migrator, one connection each.
            Some(pool(&settings.direct_url, 2, false)?)
        } else {
            None
        };
        let dialect = Pg {
            pooled: settings.pooled,
            direct,
            tls: may_encrypt(&settings.url)?,
        };
        let pool = pool(&settings.url, settings.max_connections, settings.pooled)?;
        Ok(SqlStore::new(pool, dialect, check_idle_after))
    }
}
