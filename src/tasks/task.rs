//! A task as stored ([`Task`]): its public record, which the task JSON
//! shows ([`TaskRecord`]), and what only the server keeps (its row id, its
//! own timeout, its callback URL, who holds it and until when).

use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{ErrorEntry, Progress, Status, TaskFiles, TaskId, TaskToken};

/// What a task's JSON shows of it, as stored (see [`TaskView`](super::TaskView),
/// which adds what is derived from it).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TaskRecord {
    /// The task's public name: 32 hex digits.
    #[schema(value_type = String, example = "6f1c2a9e0d3b4c5f8a7e6d5c4b3a2f10")]
    pub token: TaskToken,
    /// What runs it (see `GET /v1/kinds`).
    pub kind: String,
    /// The queue it waits in.
    pub queue: String,
    /// Higher runs first within its queue.
    pub priority: i32,
    /// Where it is in its life.
    pub status: Status,
    /// How far it has come, as its handler last reported.
    pub progress: Progress,
    /// The attempt running or last run: 0 before the first.
    pub attempt: i32,
    /// Attempts it gets in all.
    pub max_attempts: i32,
    /// How often its handler said "not yet" and it was queued again
    /// without using up an attempt (at most `tasks.max_snoozes`).
    pub snoozes: i32,
    /// The name of the token that created it.
    pub owner: String,
    /// The product of the token that created it.
    pub product: Option<String>,
    /// Its input, as given.
    pub payload: Value,
    /// Its output, once completed.
    pub result: Option<Value>,
    /// The last attempt's error, if it did not succeed.
    pub error: Option<String>,
    /// One entry per attempt that did not succeed, oldest first.
    pub errors: Vec<ErrorEntry>,
    /// The tasks it waits for.
    #[schema(value_type = Vec<String>)]
    pub depends_on: Vec<TaskToken>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Not before then: the delay asked for, a retry's backoff, or a snooze.
    pub run_at: DateTime<Utc>,
    /// Its start deadline: not started by then (no attempt counted), it
    /// never starts, and ends `expired`.
    pub start_by: Option<DateTime<Utc>>,
    /// The schedule that made it, if one did.
    pub schedule: Option<String>,
    /// The schedule's tick it was made for.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// When its latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A task as stored: its public record, plus what the worker and the
/// rescuer need.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: TaskId,
    /// What its JSON shows.
    pub record: TaskRecord,
    /// Set when a cancel was requested while the task was running.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// This task's own timeout, overriding its kind's.
    pub timeout_ms: Option<i64>,
    /// Where its final JSON goes when it ends.
    pub callback_url: Option<String>,
    /// Its input and output files (the JSON shows them with their links).
    pub files: TaskFiles,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub worker_id: Option<String>,
}

/// A task's record reads as the task's own fields (`task.status`): the
/// record is the task as the world sees it, not a part among others.
impl Deref for Task {
    type Target = TaskRecord;

    fn deref(&self) -> &TaskRecord {
        &self.record
    }
}

impl DerefMut for Task {
    fn deref_mut(&mut self) -> &mut TaskRecord {
        &mut self.record
    }
}

impl Task {
    /// Whether the task has reached a terminal status.
    pub fn is_done(&self) -> bool {
        self.status.is_terminal()
    }

    /// The attempts a retried task gets in all: at least one more than it
    /// has used.
    pub fn attempts_for_retry(&self) -> i32 {
        self.max_attempts.max(self.attempt + 1)
    }
}
