//! The rows that batched writes pass (tasks_insert.sql, task_end.sql):
//! typed, and serialized straight to a parameter's text where they travel
//! as JSON, so that a batch of a thousand costs no tree of JSON values to
//! build and take apart again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::time_text;
use crate::store::TaskEnding;
use crate::tasks::{ErrorEntry, NewTask, Progress, Status, TaskFile, TaskToken};

/// A new task's row for `tasks_insert.sql`, which each dialect binds its
/// own way (`Dialect::insert_new_tasks`): Postgres as one array per column,
/// SQLite as one JSON array of these (times as `time_text`).
#[derive(Serialize)]
pub(in crate::store) struct InsertRow<'t> {
    pub(in crate::store) token: TaskToken,
    pub(in crate::store) kind: &'t str,
    pub(in crate::store) queue: &'t str,
    pub(in crate::store) priority: i32,
    pub(in crate::store) status: &'static str,
    pub(in crate::store) payload: &'t Value,
    pub(in crate::store) max_attempts: i32,
    pub(in crate::store) timeout_ms: Option<i64>,
    pub(in crate::store) owner: &'t str,
    pub(in crate::store) product: Option<&'t str>,
    #[serde(serialize_with = "as_time_text")]
    pub(in crate::store) created_at: DateTime<Utc>,
    #[serde(serialize_with = "as_time_text")]
    pub(in crate::store) run_at: DateTime<Utc>,
    pub(in crate::store) pending_parents: i32,
    pub(in crate::store) depends_on: &'t [TaskToken],
    pub(in crate::store) callback_url: Option<&'t str>,
    pub(in crate::store) files: RowFiles<'t>,
    // Absent keys read as NULL (SQLite's JSON rows): most tasks have
    // none of these, and a batch's JSON stays as small as it was.
    #[serde(
        serialize_with = "as_maybe_time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub(in crate::store) start_by: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::store) schedule: Option<&'t str>,
    #[serde(
        serialize_with = "as_maybe_time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub(in crate::store) scheduled_for: Option<DateTime<Utc>>,
    /// Its place among the tasks of its queue in this batch that may start
    /// at once (see [`seat`]); `None` for the others. Postgres hands seated
    /// tasks to idle workers' offers (tasks_insert_seated.sql).
    #[serde(skip)]
    pub(in crate::store) seat: Option<i32>,
}

/// A new task's files as its row keeps them.
#[derive(Serialize)]
pub(in crate::store) struct RowFiles<'t> {
    inputs: &'t [TaskFile],
    outputs: [TaskFile; 0],
}

fn as_time_text<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time_text(*t))
}

fn as_maybe_time_text<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&time_text(*t)),
        None => s.serialize_none(),
    }
}

impl<'t> InsertRow<'t> {
    /// `t` in `status`, waiting for `pending` parents, with its `inputs`.
    pub(super) fn new(
        t: &'t NewTask,
        status: Status,
        pending: usize,
        inputs: &'t [TaskFile],
    ) -> InsertRow<'t> {
        InsertRow {
            token: t.token,
            kind: &t.kind,
            queue: &t.queue,
            priority: t.priority,
            status: status.as_str(),
            payload: &t.payload,
            max_attempts: t.max_attempts,
            timeout_ms: t.timeout_ms,
            owner: &t.owner,
            product: t.product.as_deref(),
            created_at: t.created_at,
            run_at: t.run_at,
            // `tasks.max_dependencies` bounds the parents.
            pending_parents: i32::try_from(pending).unwrap_or(i32::MAX),
            depends_on: &t.depends_on,
            callback_url: t.callback_url.as_deref(),
            files: RowFiles {
                inputs,
                outputs: [],
            },
            start_by: t.start_by,
            schedule: t.tick.as_ref().map(|tick| tick.schedule.as_str()),
            scheduled_for: t.tick.as_ref().map(|tick| tick.at),
            seat: None,
        }
    }
}

/// Seats the rows of `seatable` queues that may start at once (queued and
/// due), numbered per queue in the batch's order: only those can go
/// straight to a worker that offered to take them. (An insert inside an
/// application's own transaction, which may stay open longer than a
/// lease, seats none.)
pub(super) fn seat(rows: &mut [InsertRow<'_>], seatable: &(dyn Fn(&str) -> bool + Sync)) {
    let mut seated: HashMap<&str, i32> = HashMap::new();
    for row in rows {
        let due = row.status == Status::Queued.as_str() && row.run_at <= row.created_at;
        if due && seatable(row.queue) {
            let n = seated.entry(row.queue).or_default();
            *n += 1;
            row.seat = Some(*n);
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
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    snoozed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
}

impl<'e> EndRow<'e> {
    /// `ending`, written at `now` (a task that ends for good finishes then).
    fn new(ending: &'e TaskEnding, now: &str) -> EndRow<'e> {
        let TaskEnding {
            id,
            attempt,
            started_at,
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
            snoozed: e.snoozed,
            // Only a snooze is fenced by it (task_snooze.sql).
            started_at: started_at.filter(|_| e.snoozed).map(time_text),
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
pub(in crate::store) fn json_text<T: Serialize>(rows: &[T]) -> String {
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
            started_at: None,
            end: AttemptEnd {
                status: Status::Completed,
                result: Some(result),
                error: None,
                run_at: None,
                progress: None,
                outputs: Vec::new(),
                snoozed: false,
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
