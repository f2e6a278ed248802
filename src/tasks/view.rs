//! A task as clients see it: the task JSON of the API and of callbacks
//! (the "Fixed interface" of the design): its record, and what is derived
//! from it.

use serde::Serialize;

use super::{Task, TaskFilesView, TaskRecord, TaskToken};

/// A task's JSON (the "Fixed interface" of the design).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    #[serde(flatten)]
    pub record: TaskRecord,
    /// Its input and output files, each with its download link.
    pub files: TaskFilesView,
    /// Whether the task has ended (its status is terminal).
    pub done: bool,
    /// Whether a cancel was requested while it ran.
    pub cancel_requested: bool,
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
            files: TaskFilesView::of(&t.files, t.token),
            done: t.is_done(),
            cancel_requested: t.cancel_requested_at.is_some(),
            record: t.record,
        }
    }
}

impl TaskView {
    /// Where a task lives in the API.
    pub fn path(token: TaskToken) -> String {
        format!("/v1/tasks/{token}")
    }
}
