//! The rows that batched writes pass as one JSON parameter (tasks_insert.sql,
//! task_end.sql): typed, and serialized straight to the parameter's text,
//! so that a batch of a thousand costs no tree of JSON values to build and
//! take apart again.

use chrono::{DateTime, Utc};
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
struct EndRow<'e> {
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
    fn new(ending: &'e TaskEnding, now: &str) -> EndRow<'e> {
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

/// `ends`, written at `now`, as JSON array parameters of `task_end.sql`,
/// each with the ends it holds: one, or, when `budget` bounds a statement's
/// bytes, as many as keep each within it (an end larger than the budget
/// goes alone).
pub(super) fn end_parts(
    ends: &[TaskEnding],
    now: DateTime<Utc>,
    budget: Option<usize>,
) -> Vec<(&[TaskEnding], String)> {
    let now = time_text(now);
    let budget = budget.unwrap_or(usize::MAX);
    let mut parts = Vec::new();
    let (mut start, mut text) = (0, String::from("["));
    for (i, ending) in ends.iter().enumerate() {
        let row = serde_json::to_string(&EndRow::new(ending, &now)).expect("an end serializes");
        if i > start && text.len() + row.len() + 2 > budget {
            text.push(']');
            parts.push((
                &ends[start..i],
                std::mem::replace(&mut text, String::from("[")),
            ));
            start = i;
        }
        if i > start {
            text.push(',');
        }
        text.push_str(&row);
    }
    if start < ends.len() {
        text.push(']');
        parts.push((&ends[start..], text));
    }
    parts
}

/// `rows` as the text of one JSON array parameter.
pub(super) fn json_text<T: Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("rows of plain data serialize")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tasks::{AttemptEnd, TaskId};

    fn completed(id: i64, result: Value) -> TaskEnding {
        TaskEnding {
            id: TaskId(id),
            attempt: 1,
            end: AttemptEnd {
                status: Status::Completed,
                result: Some(result),
                error: None,
                run_at: None,
                progress: None,
                outputs: Vec::new(),
            },
        }
    }

    #[test]
    fn a_batch_of_ends_is_cut_into_statements_within_the_budget() {
        let ends: Vec<TaskEnding> = (1..=300)
            .map(|i| completed(i, json!({"text": "x".repeat(100)})))
            .collect();
        let now = Utc::now();
        let whole = end_parts(&ends, now, None);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].0.len(), 300);

        let parts = end_parts(&ends, now, Some(15 * 1024));
        assert!(parts.len() > 1, "{} parts", parts.len());
        for (part, text) in &parts {
            assert!(text.len() <= 15 * 1024, "{} bytes", text.len());
            let rows: Vec<Value> = serde_json::from_str(text).unwrap();
            let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
            let expected: Vec<i64> = part.iter().map(|e| e.id.0).collect();
            assert_eq!(ids, expected);
        }
        let ids: Vec<i64> = parts
            .iter()
            .flat_map(|(p, _)| p.iter().map(|e| e.id.0))
            .collect();
        assert_eq!(
            ids,
            (1..=300).collect::<Vec<i64>>(),
            "every end once, in order"
        );
    }

    #[test]
    fn an_end_larger_than_the_budget_goes_alone() {
        let ends = vec![
            completed(1, json!(1)),
            completed(2, json!("x".repeat(2000))),
            completed(3, json!(3)),
        ];
        let parts = end_parts(&ends, Utc::now(), Some(1000));
        let sizes: Vec<usize> = parts.iter().map(|(p, _)| p.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        let finished = serde_json::from_str::<Vec<Value>>(&parts[1].1).unwrap();
        assert_eq!(finished[0]["result"], json!("x".repeat(2000)));
    }
}
