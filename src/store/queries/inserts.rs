//! New tasks: one, or a batch, written in one statement; with their
//! dependencies, input files and idempotency key in the same transaction
//! when they have any.

use serde_json::json;
use sqlx::Database;

use super::rows::{InsertRow, seat};
use crate::store::StoreError;
use crate::store::dialect::{Query, shared_queries};
use crate::tasks::{IdempotencyKey, NewTask, Refused, Scope, Status, Task, TaskFile, TaskToken};

/// A new task with what its checks found: its status (`waiting` while
/// parents are pending), its parents and its input files.
struct Checked<'t> {
    task: &'t NewTask,
    status: Status,
    pending: usize,
    parents: Vec<Task>,
    inputs: Vec<TaskFile>,
}

/// Inserted tasks in order, or the first refused one: its place in the
/// batch and why.
pub(in crate::store) type Inserted = Result<Vec<Task>, (usize, Refused)>;

shared_queries! {
    /// Inserts checked new tasks, all or none (see [`Self::tasks_insert_on`]).
    /// Plain ones (no parents, no input files, no key) take one statement
    /// and no transaction. Those of `seatable` queues may go straight to
    /// an idle worker.
    pub(in crate::store) async fn tasks_insert(
        &self,
        tasks: &[NewTask],
        creator: &Scope,
        key: Option<&IdempotencyKey>,
        seatable: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Inserted, StoreError> {
        let plain = |t: &NewTask| t.depends_on.is_empty() && t.inputs.is_empty();
        if key.is_none() && tasks.iter().all(plain) {
            let mut rows: Vec<InsertRow<'_>> = tasks
                .iter()
                .map(|t| InsertRow::new(t, t.status, 0, &[]))
                .collect();
            seat(&mut rows, seatable);
            return Ok(Ok(self.alone(async |c| Self::insert_rows(c, rows).await).await?));
        }
        let mut tx = D::begin_write(self.connection().await?).await?;
        let inserted = Self::tasks_insert_on(&mut tx, tasks, creator, key, seatable).await?;
        if inserted.is_ok() {
            tx.commit().await?;
        }
        Ok(inserted)
    }

    /// Inserts checked new tasks on a connection inside a transaction (the
    /// store's own, or an application's): every parent must exist, be
    /// visible to `creator`, and not have ended badly, and every input file
    /// be the creator's and not expired, else the first refusal and nothing
    /// is written. Parents and files are read (and locked) and the tasks
    /// written in that transaction, so that no parent ends and no file goes
    /// unseen in between (see task_parents.sql, task_inputs.sql); `key`,
    /// claimed before, gets its tasks there too. Tasks of `seatable` queues
    /// that may start at once can go straight to an idle worker (see
    /// `rows::seat`).
    pub(in crate::store) async fn tasks_insert_on(
        conn: &mut <D::Db as Database>::Connection,
        tasks: &[NewTask],
        creator: &Scope,
        key: Option<&IdempotencyKey>,
        seatable: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Inserted, StoreError> {
        let mut checked = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            match Self::task_check(conn, task, creator).await? {
                Ok(c) => checked.push(c),
                Err(refused) => return Ok(Err((i, refused))),
            }
        }
        let mut rows: Vec<InsertRow<'_>> = checked
            .iter()
            .map(|c| InsertRow::new(c.task, c.status, c.pending, &c.inputs))
            .collect();
        seat(&mut rows, seatable);
        let inserted = Self::insert_rows(&mut *conn, rows).await?;
        for (c, task) in checked.iter().zip(&inserted) {
            if !c.inputs.is_empty() {
                Self::task_files_insert(conn, task.id, "input", &c.inputs).await?;
            }
            if !c.parents.is_empty() {
                let ids: Vec<i64> = c.parents.iter().map(|p| p.id.0).collect();
                Self::sql(Query::TaskDependenciesInsert)
                    .bind(task.id.0)
                    .bind(json!(ids))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        if let Some(key) = key {
            let ids: Vec<i64> = inserted.iter().map(|t| t.id.0).collect();
            Self::sql(Query::IdempotencyComplete)
                .bind(key.owner.clone())
                .bind(key.key.clone())
                .bind(ids.first().copied())
                .bind((ids.len() > 1).then(|| json!(ids)))
                .execute(&mut *conn)
                .await?;
        }
        Ok(Ok(inserted))
    }

    /// A new task's parents and input files, read (and locked) and checked.
    async fn task_check<'t>(
        conn: &mut <D::Db as Database>::Connection,
        task: &'t NewTask,
        creator: &Scope,
    ) -> Result<Result<Checked<'t>, Refused>, StoreError> {
        let mut parents: Vec<Task> = Vec::new();
        if !task.depends_on.is_empty() {
            let tokens: Vec<String> = task.depends_on.iter().map(TaskToken::to_string).collect();
            let rows = Self::sql(Query::TaskParents)
                .bind(json!(tokens))
                .fetch_all(&mut *conn)
                .await?;
            parents = Self::tasks_from_rows(&rows)?;
        }
        let (status, pending) = match task.check_parents(&parents, creator) {
            Ok(checked) => checked,
            Err(refused) => return Ok(Err(refused)),
        };
        let inputs = match Self::task_inputs(conn, task, creator).await? {
            Ok(inputs) => inputs,
            Err(refused) => return Ok(Err(refused)),
        };
        Ok(Ok(Checked { task, status, pending, parents, inputs }))
    }

    /// The new task's input files, checked (and locked, on Postgres).
    async fn task_inputs(
        conn: &mut <D::Db as Database>::Connection,
        t: &NewTask,
        creator: &Scope,
    ) -> Result<Result<Vec<TaskFile>, Refused>, StoreError> {
        if t.inputs.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let ids: Vec<String> = t.inputs.iter().map(|(_, id)| id.to_string()).collect();
        let rows = Self::sql(Query::TaskInputs)
            .bind(json!(ids))
            .fetch_all(&mut *conn)
            .await?;
        let found = rows
            .iter()
            .map(|r| Self::file_from_row(r).map(|f| f.file))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(t.check_inputs(&found, creator, t.created_at))
    }

    /// Tasks by id, in the order of `ids` (those that still exist).
    pub(super) async fn tasks_get_by_ids(
        conn: &mut <D::Db as Database>::Connection,
        ids: &[i64],
    ) -> Result<Vec<Task>, StoreError> {
        let rows = Self::sql(Query::TasksGetByIds)
            .bind(json!(ids))
            .fetch_all(&mut *conn)
            .await?;
        let mut found = Self::tasks_from_rows(&rows)?;
        found.sort_by_key(|t| ids.iter().position(|id| *id == t.id.0));
        Ok(found)
    }
}
