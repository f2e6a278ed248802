//! The contract between the shared query code (`queries/`) and each
//! database: a [`Dialect`] says how the database keeps time, how each kind
//! of transaction starts, and where each query's text is. Each backend
//! (`postgres.rs`, `sqlite.rs`) implements it once; the shared code is
//! generic over it.
//!
//! Every query has one file per dialect, of the same name
//! (`sql/postgres/task_claim.sql`, `sql/sqlite/task_claim.sql`), listed once
//! in [`Query`]: a query missing from either folder does not compile. A query
//! whose text holds the marker `/*task_filter*/` gets that dialect's
//! `task_filter.sql` there, so the filter of listings, bulk cancel and stats
//! is written once per dialect.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Decode, Encode, Pool, Transaction, Type};

use super::StoreError;
use super::queries::{InsertRow, Statement};

/// A type a database takes as a parameter and gives back from a row.
pub(super) trait Column<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync
{
}

impl<DB: Database, T> Column<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync
{
}

/// What a database does its own way.
pub(super) trait Dialect: Send + Sync + 'static {
    type Db: Database + sqlx::database::HasStatementCache;
    /// How the database keeps a point in time.
    type Time: Column<Self::Db>;

    /// A time as the database keeps it.
    fn time(t: DateTime<Utc>) -> Self::Time;
    /// A time as the database gave it back.
    fn from_time(t: Self::Time) -> Result<DateTime<Utc>, StoreError>;
    /// The text of `query` in this dialect.
    fn sql(query: Query) -> &'static str;
    /// The schema, in order: (version, description, SQL).
    fn migrations() -> &'static [(i64, &'static str, &'static str)];
    /// Held while this process migrates, so that processes starting together
    /// take turns (`None`: the database sees to it).
    fn migration_turn(
        &self,
    ) -> impl Future<Output = Result<Option<std::fs::File>, StoreError>> + Send;
    /// The insert of the new tasks' `rows`, bound, in order:
    /// `tasks_insert.sql`, or, where the dialect pushes tasks and a row has
    /// a seat (see `rows::seat`), its seating insert (Postgres:
    /// `tasks_insert_seated.sql`).
    fn insert_new_tasks(rows: &[InsertRow<'_>]) -> Statement<Self>
    where
        Self: Sized;
    /// How many rows a statement changed.
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;

    /// Whether a statement stays prepared on its connection, for reuse: not
    /// behind a transaction pooler, where a later transaction may run on
    /// another server connection (or meet another client's statement).
    fn keeps_statements() -> bool {
        true
    }
    /// Whether each statement needs a transaction of its own (behind a
    /// transaction pooler).
    fn pooled(&self) -> bool {
        false
    }
    /// The most bytes of parameters a statement should carry, if that is
    /// bounded: over TLS, a message longer than one TLS record (16 KiB)
    /// leaves in two writes, and as sqlx sets no `TCP_NODELAY` the second
    /// waits for the server's delayed acknowledgement (about 40 ms). A batch
    /// of ends is cut into statements that each fit.
    fn statement_bytes(&self) -> Option<usize> {
        None
    }
    /// A pool straight to the database, for what a pooler can't carry
    /// (LISTEN, the migrator's session lock); `None`: the main pool serves.
    fn direct_pool(&self) -> Option<&Pool<Self::Db>> {
        None
    }

    // Each transaction starts on a connection the store lent (see `kept`).

    /// A transaction for a write that reads first.
    fn begin_write(
        conn: PoolConnection<Self::Db>,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;
    /// A transaction for a rescue pass, if this node gets to do one now.
    fn begin_rescue(
        conn: PoolConnection<Self::Db>,
    ) -> impl Future<Output = Result<Option<Transaction<'static, Self::Db>>, StoreError>> + Send;
    /// A transaction in which claims of `queue` take turns.
    fn begin_queue_claim(
        conn: PoolConnection<Self::Db>,
        queue: &str,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;
    /// A transaction whose statements each stop after `timeout`.
    fn begin_bounded(
        conn: PoolConnection<Self::Db>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;
    /// A transaction in which nodes take turns to mint the first token.
    fn begin_token_mint(
        conn: PoolConnection<Self::Db>,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;
}

/// A time as text in one fixed form (microseconds, `Z`), so that text order
/// is time order: how SQLite keeps time, and how times travel inside JSON
/// parameters in both dialects.
pub(super) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Where a query's text takes its dialect's `task_filter.sql`.
const FILTER_MARK: &str = "/*task_filter*/";

/// The query texts of one dialect, with the filter put in where marked:
/// made once per process.
pub(super) struct QueryTexts {
    filled: HashMap<Query, &'static str>,
    lookup: fn(Query) -> &'static str,
}

impl QueryTexts {
    pub(super) fn new(lookup: fn(Query) -> &'static str, filter: &str) -> QueryTexts {
        let filled = Query::ALL
            .iter()
            .filter(|q| lookup(**q).contains(FILTER_MARK))
            .map(|q| {
                let text = lookup(*q).replace(FILTER_MARK, &format!("({})", filter.trim()));
                // Made once per process and kept for its life.
                (*q, &*Box::leak(text.into_boxed_str()))
            })
            .collect();
        QueryTexts { filled, lookup }
    }

    pub(super) fn get(&self, query: Query) -> &'static str {
        self.filled
            .get(&query)
            .copied()
            .unwrap_or_else(|| (self.lookup)(query))
    }
}

/// Declares [`Query`] and each dialect's lookup from one list of files.
macro_rules! queries {
    ($($query:ident => $file:literal),* $(,)?) => {
        /// Every query errand makes, each a file per dialect of this name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(super) enum Query { $($query),* }

        impl Query {
            pub(super) const ALL: &[Query] = &[$(Query::$query),*];

            /// The text in `sql/postgres/`.
            pub(super) fn postgres(self) -> &'static str {
                match self {
                    $(Query::$query => include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"), "/src/store/sql/postgres/", $file, ".sql"
                    )),)*
                }
            }

            /// The text in `sql/sqlite/`.
            pub(super) fn sqlite(self) -> &'static str {
                match self {
                    $(Query::$query => include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"), "/src/store/sql/sqlite/", $file, ".sql"
                    )),)*
                }
            }
        }
    };
}

queries! {
    BenchDrainWindow => "bench_drain_window",
    BenchHistoryInsert => "bench_history_insert",
    BenchSettle => "bench_settle",
    FileChunkInsert => "file_chunk_insert",
    FileChunksRead => "file_chunks_read",
    FileDoom => "file_doom",
    FileFinish => "file_finish",
    FileGet => "file_get",
    FileInsert => "file_insert",
    FileRenew => "file_renew",
    FilesDelete => "files_delete",
    FilesDoom => "files_doom",
    FilesMarkUsed => "files_mark_used",
    IdempotencyClaim => "idempotency_claim",
    IdempotencyComplete => "idempotency_complete",
    IdempotencyGet => "idempotency_get",
    IdempotencyPrune => "idempotency_prune",
    IdempotencyRelease => "idempotency_release",
    Ping => "ping",
    QueuePause => "queue_pause",
    QueuePauses => "queue_pauses",
    QueueResume => "queue_resume",
    ScheduleAdvance => "schedule_advance",
    ScheduleClock => "schedule_clock",
    ScheduleClockSet => "schedule_clock_set",
    ScheduleDelete => "schedule_delete",
    ScheduleGet => "schedule_get",
    ScheduleInsert => "schedule_insert",
    ScheduleLastTasks => "schedule_last_tasks",
    ScheduleList => "schedule_list",
    SchedulePause => "schedule_pause",
    ScheduleResume => "schedule_resume",
    ScheduleUpdate => "schedule_update",
    ScheduleUpsert => "schedule_upsert",
    SchedulesPruneConfig => "schedules_prune_config",
    TaskCallbacksDue => "task_callbacks_due",
    TaskCallbacksMark => "task_callbacks_mark",
    TaskCallbacksPending => "task_callbacks_pending",
    TaskCancelMatching => "task_cancel_matching",
    TaskCancelRequest => "task_cancel_request",
    TaskCancelUnstarted => "task_cancel_unstarted",
    TaskClaim => "task_claim",
    TaskCountByStatus => "task_count_by_status",
    TaskDependenciesInsert => "task_dependencies_insert",
    TaskEnd => "task_end",
    TaskExpired => "task_expired",
    TaskGet => "task_get",
    TaskFilesInsert => "task_files_insert",
    TaskHeartbeat => "task_heartbeat",
    TaskInputs => "task_inputs",
    TaskList => "task_list",
    TaskParents => "task_parents",
    TaskProgress => "task_progress",
    TaskPrune => "task_prune",
    TaskQueueDepth => "task_queue_depth",
    TaskQueueOldest => "task_queue_oldest",
    TaskRetry => "task_retry",
    TaskRetryMatching => "task_retry_matching",
    TaskRunningCount => "task_running_count",
    TaskSnooze => "task_snooze",
    TaskStats => "task_stats",
    TaskThroughput => "task_throughput",
    TaskWatch => "task_watch",
    TasksGetByIds => "tasks_get_by_ids",
    TasksGetByTokens => "tasks_get_by_tokens",
    TasksExpire => "tasks_expire",
    TasksInsert => "tasks_insert",
    TokenCount => "token_count",
    TokenFind => "token_find",
    TokenInsert => "token_insert",
    TokenRevoke => "token_revoke",
    WorkerDelete => "worker_delete",
    WorkerList => "worker_list",
    WorkerPrune => "worker_prune",
    WorkerUpsert => "worker_upsert",
}

/// `impl<D: Dialect> SqlStore<D> { … }` with what every shared query needs
/// of the database: the types it binds and reads, and executors. (One place
/// for these bounds: Rust can't name a set of where-clauses.)
macro_rules! shared_queries {
    ($($body:tt)*) => {
        impl<D: $crate::store::dialect::Dialect> $crate::store::queries::SqlStore<D>
        where
            for<'c> &'c mut <D::Db as sqlx::Database>::Connection:
                sqlx::Executor<'c, Database = D::Db>,
            <D::Db as sqlx::Database>::Arguments: sqlx::IntoArguments<D::Db>,
            <D::Db as sqlx::Database>::Connection: sqlx::migrate::Migrate,
            &'static str: sqlx::ColumnIndex<<D::Db as sqlx::Database>::Row>,
            i64: $crate::store::dialect::Column<D::Db>,
            i32: $crate::store::dialect::Column<D::Db>,
            f64: $crate::store::dialect::Column<D::Db>,
            bool: $crate::store::dialect::Column<D::Db>,
            String: $crate::store::dialect::Column<D::Db>,
            Vec<u8>: $crate::store::dialect::Column<D::Db>,
            uuid::Uuid: $crate::store::dialect::Column<D::Db>,
            serde_json::Value: $crate::store::dialect::Column<D::Db>,
            // Each database encodes NULL its own way (no blanket impl).
            Option<i64>: $crate::store::dialect::Column<D::Db>,
            Option<i32>: $crate::store::dialect::Column<D::Db>,
            Option<String>: $crate::store::dialect::Column<D::Db>,
            Option<serde_json::Value>: $crate::store::dialect::Column<D::Db>,
            Option<D::Time>: $crate::store::dialect::Column<D::Db>,
        {
            $($body)*
        }
    };
}

pub(super) use shared_queries;
