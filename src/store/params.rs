//! What the store's operations take and give, for the operations with
//! more than a few parameters (so each argument is named where it is
//! called, as River's driver interface does) and those that answer more
//! than a row.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::tasks::{
    AttemptEnd, FileId, IdempotencyKey, NewTask, Role, Scope, Status, StoredFile, Task, TaskFilter,
    TaskId, TokenHash, WorkerId,
};

/// One renewed lease, as the heartbeat reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRenewal {
    pub id: TaskId,
    pub attempt: i32,
    pub cancel_requested: bool,
}

/// What one claim asks for (see [`Store::task_claim`](super::Store::task_claim)).
#[derive(Debug, Clone)]
pub struct TaskClaim<'a> {
    pub queue: &'a str,
    pub worker: &'a WorkerId,
    /// The kinds the worker can run; `None`: any kind.
    pub kinds: Option<&'a [String]>,
    /// Most tasks to take.
    pub limit: usize,
    pub lease_until: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// The queue's limit of running tasks across all workers.
    pub global_limit: Option<usize>,
}

/// A worker's offer to take new tasks of one queue at once: an insert may
/// seat up to `slots` of them on it, each written running and leased to
/// the worker (see [`Store::task_offer`](super::Store::task_offer)).
#[derive(Debug, Clone)]
pub struct TaskOffer<'a> {
    pub worker: &'a WorkerId,
    pub queue: &'a str,
    /// The kinds it runs.
    pub kinds: &'a [String],
    pub slots: usize,
    /// The lease each task gets from its insert.
    pub lease: Duration,
    /// The backend of the worker's listening connection (see
    /// [`Push::Listening`](super::Push::Listening)).
    pub listener_pid: i32,
    /// How long the offer stands unless renewed.
    pub ttl: Duration,
}

/// What cancelling by filter did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelCount {
    /// Tasks that had not started and are now `cancelled`.
    pub cancelled: u64,
    /// Running tasks whose workers were asked to stop them.
    pub asked_to_stop: u64,
    /// Those workers (to wake, where the backend can't).
    pub workers: Vec<String>,
}

/// What claiming an `Idempotency-Key` found.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyClaim {
    /// The key is this request's now: go on and create the task.
    Claimed,
    /// Another request holds it and has not finished.
    InFlight,
    /// It names a request with another body.
    Mismatch,
    /// It names these tasks (one, or a batch's), created by an earlier
    /// request with the same body.
    Done(Vec<Task>),
}

/// A page of a listing (see [`Store::task_list`](super::Store::task_list)).
#[derive(Debug, Clone)]
pub struct TaskListing<'a> {
    /// Who is asking: what it may see.
    pub scope: &'a Scope,
    pub filter: &'a TaskFilter,
    /// The tasks after this one (older), for the next page.
    pub after: Option<TaskId>,
    pub limit: usize,
    /// Each statement stops after this (Postgres).
    pub timeout: Duration,
}

/// What [`Store::task_stats`](super::Store::task_stats) and
/// [`Store::task_throughput`](super::Store::task_throughput) count: the
/// tasks of a scope that a filter matches.
#[derive(Debug, Clone)]
pub struct TaskCounting<'a> {
    /// Who is asking: what it may see.
    pub scope: &'a Scope,
    pub filter: &'a TaskFilter,
    /// Each statement stops after this (Postgres).
    pub timeout: Duration,
}

/// How many tasks of a kind and queue are in a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCount {
    pub kind: String,
    pub queue: String,
    pub status: Status,
    pub n: i64,
}

/// How many tasks ended in a status within an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedCount {
    /// The interval's start.
    pub start: DateTime<Utc>,
    pub status: Status,
    pub n: i64,
}

/// How one running attempt ends (see [`Store::task_end`](super::Store::task_end)).
#[derive(Debug, Clone)]
pub struct TaskEnding {
    pub id: TaskId,
    /// The attempt that ends: the write is fenced by it.
    pub attempt: i32,
    /// When that attempt started, if known: the write is fenced by it too.
    /// A snooze gives its attempt number back, so the next claim runs
    /// under the same number; its start time is its own.
    pub started_at: Option<DateTime<Utc>>,
    pub end: AttemptEnd,
}

/// An `Idempotency-Key` to claim (see [`Store::idempotency_claim`](super::Store::idempotency_claim)).
#[derive(Debug, Clone)]
pub struct KeyClaimTerms<'a> {
    pub key: &'a IdempotencyKey,
    pub now: DateTime<Utc>,
    /// Until when the key names its task.
    pub expires_at: DateTime<Utc>,
    /// A key claimed before this, whose request never created its task,
    /// was abandoned: it may be taken over.
    pub stale_before: DateTime<Utc>,
}

/// A new API token's row.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub name: String,
    pub role: Role,
    pub product: Option<String>,
    pub hash: TokenHash,
}

/// A file's row, as the store names it (never seen by clients, who have
/// the [`FileId`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRowId(pub i64);

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileBytes {
    /// In the database, in `file_chunks`, chunks of this many bytes.
    Chunks { chunk_bytes: usize },
    /// In object storage, at this path.
    Object { location: String },
}

/// A new file, about to be written (see [`Store::file_insert`](super::Store::file_insert)).
#[derive(Debug, Clone)]
pub struct NewFile {
    pub id: FileId,
    pub owner: String,
    pub product: Option<String>,
    pub content_type: String,
    pub bytes: FileBytes,
    pub created_at: DateTime<Utc>,
    /// Not renewed by then, its writer died and it is removed.
    pub expires_at: DateTime<Utc>,
    /// The task whose attempt makes it (an output).
    pub made_by: Option<TaskId>,
}

/// A ready file and where its bytes are.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub row: FileRowId,
    pub file: StoredFile,
    pub bytes: FileBytes,
}

/// One scheduler pass's firing of a schedule (see
/// [`Store::schedule_fire`](super::Store::schedule_fire)).
#[derive(Debug, Clone)]
pub struct ScheduleFire<'a> {
    pub name: &'a str,
    /// The schedule's next tick as the pass read it: if another pass moved
    /// it on since, that pass fired these ticks, and this one does nothing.
    pub seen_next_tick: DateTime<Utc>,
    /// Its next tick after this firing.
    pub next_tick: DateTime<Utc>,
    /// The tasks of the ticks fired, each with its tick.
    pub tasks: &'a [NewTask],
    /// Make them only if the schedule's latest task has ended
    /// (`overlap = "skip"`).
    pub unless_running: bool,
}
