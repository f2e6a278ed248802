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
    pub kind: String,
    pub queue: String,
    pub priority: i32,
    pub status: Status,
    pub progress: Progress,
    pub attempt: i32,
    pub max_attempts: i32,
    pub owner: String,
    pub product: Option<String>,
    pub payload: Value,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub errors: Vec<ErrorEntry>,
    /// Whether the task has ended (its status is terminal).
    pub done: bool,
    pub cancel_requested: bool,
    #[schema(value_type = Vec<String>)]
    pub depends_on: Vec<TaskToken>,
    pub created_at: DateTime<Utc>,
    pub run_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub links: Links,
}

/// Where to find a task and what to do with it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
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
