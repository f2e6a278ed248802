//! A task as clients see it: the task JSON of the API and of callbacks
//! (the "Fixed interface" of the design).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{ErrorEntry, Progress, Status, Task, TaskToken};

/// A task's JSON (the "Fixed interface" of the design).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
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
    /// The name of the token that created it.
    pub owner: String,
    /// The product of the token that created it.
    pub product: Option<String>,
    /// Its input, as given.
    pub payload: Value,
    /// Its output, once completed.
    pub result: Option<Value>,
    /// The last attempt's error, if it failed.
    pub error: Option<String>,
    /// One entry per attempt that did not succeed, oldest first.
    pub errors: Vec<ErrorEntry>,
    /// Whether the task has ended (its status is terminal).
    pub done: bool,
    /// Whether a cancel was requested while it ran.
    pub cancel_requested: bool,
    /// The tasks it waits for.
    #[schema(value_type = Vec<String>)]
    pub depends_on: Vec<TaskToken>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Not before then: the delay asked for, or a retry's backoff.
    pub run_at: DateTime<Utc>,
    /// When its latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Where to find it.
    pub links: Links,
}

/// Where to find a task and what to do with it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
    /// The task itself: `/v1/tasks/{token}`.
    #[serde(rename = "self")]
    pub self_: String,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> TaskView {
        TaskView {
            links: Links {
                self_: TaskView::path(t.token),
            },
            done: t.is_done(),
            cancel_requested: t.cancel_requested_at.is_some(),
            token: t.token,
            kind: t.kind,
            queue: t.queue,
            priority: t.priority,
            status: t.status,
            progress: t.progress,
            attempt: t.attempt,
            max_attempts: t.max_attempts,
            owner: t.owner,
            product: t.product,
            payload: t.payload,
            result: t.result,
            error: t.error,
            errors: t.errors,
            depends_on: t.depends_on,
            created_at: t.created_at,
            run_at: t.run_at,
            started_at: t.started_at,
            finished_at: t.finished_at,
        }
    }
}

impl TaskView {
    /// Where a task lives in the API.
    pub fn path(token: TaskToken) -> String {
        format!("/v1/tasks/{token}")
    }
}
