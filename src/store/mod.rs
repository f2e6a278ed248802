//! The only module that speaks SQL. [`Store`] has one method per operation,
//! named noun-first after the query it runs (`task_claim` runs
//! `sql/<dialect>/task_claim.sql`), so `ls src/store/sql/postgres` lists
//! every query errand makes. [`StoreError`] sorts database failures into
//! what a caller can act on.
//!
//! - `dialect`: the contract each database implements (time, transactions,
//!   query texts), and the table of queries;
//! - `queries/`: the shared query code, written once, generic over the
//!   dialect;
//! - `postgres`, `sqlite`: the two dialects, and what only each does
//!   (the file and its migration lock on SQLite); `listener`: Postgres's
//!   LISTEN/NOTIFY, which wakes every process; `pushes`: new tasks handed
//!   to idle workers in their insert's commit (Postgres);
//! - `kept`: connections kept between statements, past sqlx's test of
//!   each one it takes back;
//! - `params`: operations' parameters and answers; `error`: [`StoreError`];
//!   `embedded`: writes inside an application's own Postgres transaction;
//!   `lifecycle`: the writes of a task's life, each announcing what changed.
//!
//! The backend is chosen by the URL scheme; both pass the same conformance
//! suite (`tests/store`). Uses `tasks` (the rows it reads and writes are
//! domain types), `config`, `pacing` and `batching` (a thread's own store).

/// The text of a Postgres-only query, `sql/postgres/<name>.sql`.
macro_rules! pg_sql {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/store/sql/postgres/",
            $name,
            ".sql"
        ))
    };
}

mod dialect;
mod embedded;
mod error;
mod kept;
mod listener;
mod params;
mod postgres;
mod queries;
mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use embedded::{idempotency_claim_in, task_insert_in};
pub use error::{StoreError, Violation, redact};
pub use params::{
    CancelCount, EndedCount, FileBytes, FileRow, FileRowId, KeyClaim, KeyClaimTerms, LeaseRenewal,
    NewApiToken, NewFile, ScheduleFire, TaskClaim, TaskCount, TaskCounting, TaskEnding,
    TaskListing, TaskOffer,
};
pub use pushes::Push;

use crate::batching::PerThread;
use crate::config::DatabaseSettings;
use crate::tasks::{
    FileId, IdempotencyKey, Pause, Principal, Progress, ScheduleRecord, ScheduleSource, Status,
    Task, TaskId, TaskToken, TokenHash, WorkerId, WorkerInfo,
};

/// Something another process (or this one) did that a waiting loop cares
/// about. Postgres delivers these from every process with LISTEN/NOTIFY;
/// SQLite only from this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A task became runnable in this queue.
    Queued { queue: String },
    /// A cancel was requested for a task this worker runs.
    CancelRequested { worker: String },
    /// A task reached a terminal status.
    Ended { token: TaskToken },
    /// Events may have been missed (the listener reconnected): look again.
    Resync,
}

/// The task store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    events: broadcast::Sender<StoreEvent>,
    /// Each thread's own store, if threads get one (see [`Store::local`]).
    local: Option<Arc<PerThread<Option<Store>>>>,
    /// The workers of this process that hear of tasks pushed to them.
    pushes: Arc<pushes::PushSinks>,
    /// The queues lately offered idle slots, whose tasks are worth seating.
    offers: Arc<pushes::OfferBoard>,
}

#[derive(Clone)]
enum Backend {
    Postgres(postgres::PgStore),
    Sqlite(sqlite::LiteStore),
}

/// Runs `$body` with `$b` bound to whichever backend this store uses.
macro_rules! dispatch {
    ($self:ident, $b:ident => $body:expr) => {
        match &$self.backend {
            Backend::Postgres($b) => $body,
            Backend::Sqlite($b) => $body,
        }
    };
}

/// Store methods that only hand their arguments to the backend, each
/// written once with its documentation.
macro_rules! forward {
    ($($(#[$doc:meta])* pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(
            $(#[$doc])*
            pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                dispatch!(self, b => b.$name($($arg),*).await)
            }
        )*
    };
}

// After the macros, which they use.
mod lifecycle;
mod pushes;

impl Store {
    /// Opens a pool for `settings.url`, choosing the backend by its scheme
    /// (`postgres://…` or `sqlite:…`). No connection is made yet: the first
    /// query connects, so a process starts while its database is still down.
    pub fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let url = settings.url.as_str();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::PgStore::connect(settings)?)
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite::LiteStore::connect(settings)?)
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        let mut store = Store {
            backend,
            events: broadcast::channel(1024).0,
            local: None,
            pushes: Arc::default(),
            offers: Arc::default(),
        };
        let mut own = settings.clone();
        own.max_connections = settings.thread_connections;
        if matches!(store.backend, Backend::Postgres(_)) && own.max_connections > 0 {
            let shared = store.clone();
            store.local = Some(Arc::new(PerThread::new(move || {
                Some(Store {
                    backend: Backend::Postgres(postgres::PgStore::connect(&own).ok()?),
                    ..shared.clone()
                })
            })));
        }
        Ok(store)
    }

    /// The calling thread's own store (a pool of its own of
    /// `database.thread_connections`, opened on first use, and the same
    /// at every call on this thread), when the caller runs on a
    /// single-threaded runtime, as HTTP workers do: its statements are sent
    /// and answered on this thread, where the pool's would wake another
    /// thread and wait for it twice. Postgres only; `None` otherwise, or
    /// when threads get none.
    pub fn local(&self) -> Option<Store> {
        let own_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        self.local.as_ref().filter(|_| own_thread)?.get()
    }

    /// Where the data lives, for people: the SQLite file, or the Postgres
    /// URL without its password.
    pub fn location(&self, settings: &DatabaseSettings) -> String {
        match &self.backend {
            Backend::Postgres(_) => redact(&settings.url),
            Backend::Sqlite(b) => b.path().display().to_string(),
        }
    }

    /// Wakes this process's waiting loops, for backends without
    /// notifications of their own (Postgres's triggers NOTIFY every process).
    fn announce(&self, event: StoreEvent) {
        if matches!(self.backend, Backend::Sqlite(_)) {
            // No receiver is fine: nobody is waiting.
            let _ = self.events.send(event);
        }
    }

    /// Announces the tasks that just became runnable or ended.
    fn announce_changes<'t>(&self, tasks: impl IntoIterator<Item = &'t Task>) {
        let mut queued: Vec<&str> = Vec::new();
        for task in tasks {
            if task.status == Status::Queued {
                // Once per queue: one wake-up serves a whole batch.
                if !queued.contains(&task.queue.as_str()) {
                    queued.push(&task.queue);
                    self.announce(StoreEvent::Queued {
                        queue: task.queue.clone(),
                    });
                }
            } else if task.is_done() {
                self.announce(StoreEvent::Ended { token: task.token });
            }
        }
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        dispatch!(self, b => b.close().await)
    }

    /// Events from now on. A receiver that falls behind gets `Lagged`, which
    /// its owner should treat as [`StoreEvent::Resync`].
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// Feeds [`Store::subscribe`] until `shutdown`: a background loop that
    /// reconnects by itself and sends `Resync` whenever events may have been
    /// missed.
    pub async fn run_listener(&self, shutdown: CancellationToken) {
        match &self.backend {
            Backend::Postgres(b) => {
                b.run_listener(&self.events, &self.pushes, &self.offers, shutdown)
                    .await
            }
            Backend::Sqlite(b) => b.run_listener(shutdown).await,
        }
    }

    forward! {
        /// Applies the migrations that have not been applied yet.
        pub async fn migrate(&self) -> Result<(), StoreError>;
        /// Answers whether the database is reachable now.
        pub async fn ping(&self) -> Result<(), StoreError>;
        /// The task with this token, if there is one.
        pub async fn task_get(&self, token: TaskToken) -> Result<Option<Task>, StoreError>;
        /// The tasks with these tokens that exist, in any order.
        pub async fn tasks_get(&self, tokens: &[TaskToken]) -> Result<Vec<Task>, StoreError>;
        /// Something is about to wait for this task to end: its end will be
        /// announced to every process (Postgres sends a notification only for
        /// the ends of tasks something waits for).
        pub async fn task_watch(&self, token: TaskToken) -> Result<(), StoreError>;
        /// Records progress of attempt `attempt`. False: the attempt is no
        /// longer running (its worker must stop writing).
        pub async fn task_progress(&self, id: TaskId, attempt: i32, progress: &Progress) -> Result<bool, StoreError>;
        /// A page of the tasks in the listing's scope matching its filter,
        /// newest first, after its cursor; each statement bounded by its
        /// timeout.
        pub async fn task_list(&self, listing: &TaskListing<'_>) -> Result<Vec<Task>, StoreError>;
        /// Counts of the tasks in `scope`, by kind and status.
        pub async fn task_stats(&self, counting: &TaskCounting<'_>) -> Result<Vec<TaskCount>, StoreError>;
        /// How many of the tasks counted ended in each status, per interval
        /// of `interval_secs` of their end (each interval's start a multiple
        /// of it); intervals with none are left out.
        pub async fn task_throughput(&self, counting: &TaskCounting<'_>, interval_secs: i64) -> Result<Vec<EndedCount>, StoreError>;
        /// Counts of the tasks in `statuses`, by queue and status.
        pub async fn task_queue_depth(&self, statuses: &[Status]) -> Result<Vec<(String, Status, i64)>, StoreError>;
        /// Per queue with tasks due by `now` and not started, how long the
        /// one due longest has waited since it became due.
        pub async fn task_queue_oldest(&self, now: DateTime<Utc>) -> Result<Vec<(String, std::time::Duration)>, StoreError>;
        /// Pauses a queue (by `by`, at `now`): no worker starts its tasks
        /// until it is resumed. Pausing a paused queue keeps the first
        /// pause; the answer is the pause in effect.
        pub async fn queue_pause(&self, name: &str, by: &str, now: DateTime<Utc>) -> Result<Pause, StoreError>;
        /// The paused queues.
        pub async fn queue_pauses(&self) -> Result<Vec<(String, Pause)>, StoreError>;
        /// Stores a new schedule. False: one of that name exists.
        pub async fn schedule_insert(&self, record: &ScheduleRecord) -> Result<bool, StoreError>;
        /// Replaces an API schedule's definition and next tick (its pause
        /// and creation stay). `None`: there is no such API schedule.
        pub async fn schedule_update(&self, record: &ScheduleRecord) -> Result<Option<ScheduleRecord>, StoreError>;
        /// Writes a schedule the configuration declares, over any of that
        /// name; its pause stays, and its next tick unless its expression
        /// or zone changed.
        pub async fn schedule_upsert(&self, record: &ScheduleRecord) -> Result<ScheduleRecord, StoreError>;
        /// Forgets the schedules the configuration declared before but not
        /// among `keep`; returns their names.
        pub async fn schedules_prune_config(&self, keep: &[String]) -> Result<Vec<String>, StoreError>;
        /// The schedule of this name.
        pub async fn schedule_get(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError>;
        /// Every schedule, by name.
        pub async fn schedule_list(&self) -> Result<Vec<ScheduleRecord>, StoreError>;
        /// Deletes the schedule of this name if it comes from `source`
        /// (its tasks stay). False: there was none.
        pub async fn schedule_delete(&self, name: &str, source: ScheduleSource) -> Result<bool, StoreError>;
        /// Pauses a schedule (by `by`, at `now`); pausing a paused one
        /// keeps the first pause.
        pub async fn schedule_pause(&self, name: &str, by: &str, now: DateTime<Utc>) -> Result<Option<ScheduleRecord>, StoreError>;
        /// Resumes a schedule, its next tick `next_tick` (no task for the
        /// ticks it was paused over). Resuming a running one changes
        /// nothing.
        pub async fn schedule_resume(&self, name: &str, next_tick: DateTime<Utc>) -> Result<Option<ScheduleRecord>, StoreError>;
        /// The latest task (by tick) of each of these schedules that has
        /// one.
        pub async fn schedule_last_tasks(&self, names: &[String]) -> Result<Vec<Task>, StoreError>;
        /// The schedulers' last promise to look again.
        pub async fn schedule_clock(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
        /// A scheduler's promise to look again by `alive_until` (one that
        /// stops cleanly promises only up to its stop).
        pub async fn schedule_clock_set(&self, alive_until: Option<DateTime<Utc>>) -> Result<(), StoreError>;
        /// Retention: deletes up to `limit` tasks that finished before the
        /// cut-off of their status; returns how many.
        pub async fn task_prune(&self, cutoffs: &[(Status, DateTime<Utc>)], limit: usize) -> Result<u64, StoreError>;
        /// Claims an `Idempotency-Key` for a create request, or says what
        /// another request with that key did.
        pub async fn idempotency_claim(&self, claim: &KeyClaimTerms<'_>) -> Result<KeyClaim, StoreError>;
        /// Frees a claimed key whose request failed, so a retry may proceed.
        pub async fn idempotency_release(&self, key: &IdempotencyKey) -> Result<(), StoreError>;
        /// Forgets up to `limit` keys that expired before `now`.
        pub async fn idempotency_prune(&self, now: DateTime<Utc>, limit: usize) -> Result<u64, StoreError>;
        /// Registers a worker process, or renews its registration.
        pub async fn worker_upsert(&self, worker: &WorkerInfo) -> Result<(), StoreError>;
        /// Forgets a worker process (it is shutting down).
        pub async fn worker_delete(&self, id: &WorkerId) -> Result<(), StoreError>;
        /// The workers heard from since `alive_since`.
        pub async fn worker_list(&self, alive_since: DateTime<Utc>) -> Result<Vec<WorkerInfo>, StoreError>;
        /// Forgets workers not heard from since `before`; returns how many.
        pub async fn worker_prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
        /// Stores a new token's hash.
        pub async fn token_insert(&self, token: &NewApiToken, now: DateTime<Utc>) -> Result<(), StoreError>;
        /// Stores `token` only if there is no token at all, atomically across
        /// nodes. True if it was stored.
        pub async fn token_insert_first(&self, token: &NewApiToken, now: DateTime<Utc>) -> Result<bool, StoreError>;
        /// The caller a presented token stands for, unless unknown or revoked.
        pub async fn token_find(&self, hash: &TokenHash) -> Result<Option<Principal>, StoreError>;
        /// Revokes every live token with this name; returns how many.
        pub async fn token_revoke(&self, name: &str, now: DateTime<Utc>) -> Result<u64, StoreError>;
        /// Adds a file being written: invisible until [`Store::file_finish`].
        pub async fn file_insert(&self, file: &NewFile) -> Result<FileRowId, StoreError>;
        /// Stores chunk `seq` (from 0) of a file kept in the database.
        pub async fn file_chunk_insert(&self, file: FileRowId, seq: i64, data: Vec<u8>) -> Result<(), StoreError>;
        /// Keeps a file being written from counting as abandoned before
        /// `until`. False: it was doomed meanwhile.
        pub async fn file_renew(&self, file: FileRowId, until: DateTime<Utc>) -> Result<bool, StoreError>;
        /// Makes a written file visible with its size and digest, expiring
        /// unused at `expires_at`. `None`: it was not being written any more
        /// (doomed meanwhile).
        pub async fn file_finish(&self, file: FileRowId, size: u64, sha256: [u8; 32], expires_at: DateTime<Utc>) -> Result<Option<FileRow>, StoreError>;
        /// The ready file with this id.
        pub async fn file_get(&self, id: FileId) -> Result<Option<FileRow>, StoreError>;
        /// Up to `limit` chunks of a file, from chunk `from` on, in order.
        pub async fn file_chunks_read(&self, file: FileRowId, from: i64, limit: usize) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;
        /// Dooms up to `limit` files no task uses (nor runs to make) that a
        /// deleted task used or that expired before `now` (unused, or
        /// abandoned half written): each, and where its bytes are, if not in
        /// the database.
        pub async fn files_doom(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<(FileRowId, Option<String>)>, StoreError>;
        /// Dooms one file at once.
        pub async fn file_doom(&self, file: FileRowId) -> Result<Option<(FileRowId, Option<String>)>, StoreError>;
        /// `errand bench`: adds `n` completed no-op tasks that finished at `at`.
        pub async fn bench_history_insert(&self, n: usize, at: DateTime<Utc>) -> Result<u64, StoreError>;
        /// `errand bench`: the tasks table vacuumed and analysed.
        pub async fn bench_settle(&self) -> Result<(), StoreError>;
        /// `errand bench`: how many tasks completed since `since`, when the
        /// first of them started and the last ended.
        pub async fn bench_drain_window(&self, since: DateTime<Utc>) -> Result<(i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>), StoreError>;
        /// Deletes doomed files, with their chunks.
        pub async fn files_delete(&self, files: &[FileRowId]) -> Result<u64, StoreError>;
    }
}
