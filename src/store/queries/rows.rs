//! The rows that batched writes pass as one JSON parameter (tasks_insert.sql,
//! task_end.sql): typed, and serialized straight to the parameter's text,
//! so that a batch of a thousand costs no tree of JSON values to build and
//! take apart again.

use serde::Serialize;
use serde_json::Value;

use super::time_text;
use crate::store::TaskEnding;
use crate::tasks::{ErrorEntry, NewTask, Progress, Status, TaskFile, TaskToken};

/// A new task's row for `tasks_insert.sql`.
#[derive(Serialize)]
pub(super) struct InsertRow<'t> {
    /// Its place in the batch: ids are given in this order.
    ord: usize,
    pub(super) token: String,
    kind: &'t str,
    queue: &'t str,
    priority: i32,
    status: &'static str,
    payload: &'t Value,
    max_attempts: i32,
    timeout_ms: Option<i64>,
    owner: &'t str,
    product: Option<&'t str>,
    created_at: String,
    run_at: String,
    pending_parents: usize,
    depends_on: Vec<String>,
    callback_url: Option<&'t str>,
    files: RowFiles<'t>,
}

#[derive(Serialize)]
struct RowFiles<'t> {
    inputs: &'t [TaskFile],
    outputs: [TaskFile; 0],
}

impl<'t> InsertRow<'t> {
    /// `t` in `status`, waiting for `pending` parents, with its `inputs`, at
    /// place `ord` of its batch.
    pub(super) fn new(
        t: &'t NewTask,
        status: Status,
        pending: usize,
        inputs: &'t [TaskFile],
        ord: usize,
    ) -> InsertRow<'t> {
        InsertRow {
            ord,
            token: t.token.to_string(),
            kind: &t.kind,
            queue: &t.queue,
            priority: t.priority,
            status: status.as_str(),
            payload: &t.payload,
            max_attempts: t.max_attempts,
            timeout_ms: t.timeout_ms,
            owner: &t.owner,
            product: t.product.as_deref(),
            created_at: time_text(t.created_at),
            run_at: time_text(t.run_at),
            pending_parents: pending,
            depends_on: t.depends_on.iter().map(TaskToken::to_string).collect(),
            callback_url: t.callback_url.as_deref(),
            files: RowFiles {
                inputs,
                outputs: [],
            },
        }
    }
}

/// An attempt's end for `task_end.sql`. An absent field reads as NULL
/// there: rows stay small, and a batch of ends fits in one network packet.
#[derive(Serialize)]
pub(super) struct EndRow<'e> {
    id: i64,
    attempt: i32,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'e Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'e ErrorEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress_message: Option<&'e str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    outputs: &'e [TaskFile],
}

impl<'e> EndRow<'e> {
    /// `ending`, written at `now` (a task that ends for good finishes then).
    pub(super) fn new(ending: &'e TaskEnding, now: &str) -> EndRow<'e> {
        let TaskEnding {
            id,
            attempt,
            end: e,
        } = ending;
        EndRow {
            id: id.0,
            attempt: *attempt,
            status: e.status.as_str(),
            // A JSON null result is no result.
            result: e.result.as_ref().filter(|r| !r.is_null()),
            error: e.error.as_ref(),
            run_at: e.run_at.map(time_text),
            finished_at: e.status.is_terminal().then(|| now.to_string()),
            progress_fraction: e.progress.as_ref().map(|p: &Progress| p.fraction),
            progress_message: e.progress.as_ref().and_then(|p| p.message.as_deref()),
            outputs: &e.outputs,
        }
    }
}

/// `rows` as the text of one JSON array parameter.
pub(super) fn json_text<T: Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("rows of plain data serialize")
}
