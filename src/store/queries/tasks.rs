//! A task's life: insert (with its dependencies and idempotency key), read,
//! claim, heartbeat, progress, end (fenced by attempt), cancel, retry.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Database, Row as _};

use super::count;
use crate::store::dialect::{Query, shared_queries, time_text};
use crate::store::{LeaseRenewal, StoreError, TaskClaim, TaskEnding};
use crate::tasks::{
    IdempotencyKey, NewTask, Progress, Refused, Scope, Status, Task, TaskFile, TaskId, TaskToken,
    WorkerId,
};

shared_queries! {
    pub(in crate::store) async fn task_insert(
        &self,
        t: &NewTask,
        creator: &Scope,
        key: Option<&IdempotencyKey>,
    ) -> Result<Result<Task, Refused>, StoreError> {
        if t.depends_on.is_empty() && key.is_none() && t.inputs.is_empty() {
            let row = Self::insert_query(t, t.status, 0, &[])
                .fetch_one(&self.pool)
                .await?;
            return Ok(Ok(Self::task_from_row(&row)?));
        }
        let mut tx = D::begin_write(&self.pool).await?;
        let inserted = Self::task_insert_on(&mut tx, t, creator, key).await?;
        if inserted.is_ok() {
            tx.commit().await?;
        }
        Ok(inserted)
    }

    /// Inserts a checked task, with its dependencies and input files, on a
    /// connection inside a transaction (the store's own, or an
    /// application's): every parent must exist, be visible to `creator`,
    /// and not have ended badly, and every input file be the creator's and
    /// not expired, else the refusal and nothing is written. Parents and
    /// files are read (and locked) and the task written in that
    /// transaction, so that no parent ends and no file goes unseen in
    /// between (see task_parents.sql, task_inputs.sql); `key`, claimed
    /// before, gets its task there too.
    pub(in crate::store) async fn task_insert_on(
        conn: &mut <D::Db as Database>::Connection,
        t: &NewTask,
        creator: &Scope,
        key: Option<&IdempotencyKey>,
    ) -> Result<Result<Task, Refused>, StoreError> {
        let mut parents: Vec<Task> = Vec::new();
        if !t.depends_on.is_empty() {
            let tokens: Vec<String> = t.depends_on.iter().map(TaskToken::to_string).collect();
            let rows = Self::sql(Query::TaskParents)
                .bind(json!(tokens))
                .fetch_all(&mut *conn)
                .await?;
            parents = Self::tasks_from_rows(&rows)?;
        }
        let (status, pending) = match t.check_parents(&parents, creator) {
            Ok(checked) => checked,
            Err(refused) => return Ok(Err(refused)),
        };
        let inputs = match Self::task_inputs(conn, t, creator).await? {
            Ok(inputs) => inputs,
            Err(refused) => return Ok(Err(refused)),
        };
        let row = Self::insert_query(t, status, pending, &inputs)
            .fetch_one(&mut *conn)
            .await?;
        let task = Self::task_from_row(&row)?;
        if !inputs.is_empty() {
            Self::task_files_insert(conn, task.id, "input", &inputs).await?;
        }
        if !parents.is_empty() {
            let ids: Vec<i64> = parents.iter().map(|p| p.id.0).collect();
            Self::sql(Query::TaskDependenciesInsert)
                .bind(task.id.0)
                .bind(json!(ids))
                .execute(&mut *conn)
                .await?;
        }
        if let Some(key) = key {
            Self::sql(Query::IdempotencyComplete)
                .bind(key.owner.clone())
                .bind(key.key.clone())
                .bind(task.id.0)
                .execute(&mut *conn)
                .await?;
        }
        Ok(Ok(task))
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

    pub(in crate::store) async fn task_get(
        &self,
        token: TaskToken,
    ) -> Result<Option<Task>, StoreError> {
        let row = Self::sql(Query::TaskGet)
            .bind(token.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::task_from_row).transpose()
    }

    pub(in crate::store) async fn task_claim(
        &self,
        c: &TaskClaim<'_>,
    ) -> Result<Vec<Task>, StoreError> {
        let query = Self::sql(Query::TaskClaim)
            .bind(c.queue.to_string())
            .bind(D::time(c.now))
            .bind(count(c.limit))
            .bind(c.worker.0.clone())
            .bind(D::time(c.lease_until))
            .bind(c.global_limit.map(count))
            .bind(c.kinds.map(|kinds| json!(kinds)));
        let rows = match c.global_limit {
            None => query.fetch_all(&self.pool).await?,
            Some(_) => {
                // Claims of a limited queue take turns, so each counts the
                // running tasks every earlier claim left.
                let mut tx = D::begin_queue_claim(&self.pool, c.queue).await?;
                let rows = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        };
        Self::tasks_from_rows(&rows)
    }

    pub(in crate::store) async fn task_heartbeat(
        &self,
        worker: &WorkerId,
        attempts: &[(TaskId, i32)],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<LeaseRenewal>, StoreError> {
        let mine: Vec<Value> = attempts
            .iter()
            .map(|(id, attempt)| json!({"id": id.0, "attempt": attempt}))
            .collect();
        let rows = Self::sql(Query::TaskHeartbeat)
            .bind(Value::Array(mine))
            .bind(worker.0.clone())
            .bind(D::time(lease_until))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LeaseRenewal {
                    id: TaskId(r.try_get("id")?),
                    attempt: r.try_get("attempt")?,
                    cancel_requested: r.try_get("cancel_requested")?,
                })
            })
            .collect()
    }

    pub(in crate::store) async fn task_progress(
        &self,
        id: TaskId,
        attempt: i32,
        progress: &Progress,
    ) -> Result<bool, StoreError> {
        let done = Self::sql(Query::TaskProgress)
            .bind(id.0)
            .bind(attempt)
            .bind(progress.fraction)
            .bind(progress.message.clone())
            .execute(&self.pool)
            .await?;
        Ok(D::rows_affected(&done) == 1)
    }

    pub(in crate::store) async fn task_end(
        &self,
        ends: &[TaskEnding],
        now: DateTime<Utc>,
    ) -> Result<Vec<Task>, StoreError> {
        if ends.iter().all(|e| e.end.outputs.is_empty()) {
            return Self::task_end_on(&self.pool, ends, now, None).await;
        }
        // Attempts that made files: their task_files rows in the same
        // transaction, for the tasks the (fenced) end did touch.
        let mut tx = D::begin_write(&self.pool).await?;
        let ended = Self::task_end_on(&mut *tx, ends, now, None).await?;
        for task in &ended {
            let made = ends.iter().find(|e| e.id == task.id);
            if let Some(e) = made.filter(|e| !e.end.outputs.is_empty()) {
                Self::task_files_insert(&mut tx, task.id, "output", &e.end.outputs).await?;
            }
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// Ends attempts in one statement, on a pool or inside a transaction;
    /// with `expired_before` (the rescuer), only those whose lease ran out.
    pub(super) async fn task_end_on<'c>(
        executor: impl sqlx::Executor<'c, Database = D::Db>,
        ends: &[TaskEnding],
        now: DateTime<Utc>,
        expired_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<Task>, StoreError> {
        if ends.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Value> = ends
            .iter()
            .map(|TaskEnding { id, attempt, end: e }| {
                json!({
                    "id": id.0,
                    "attempt": attempt,
                    "status": e.status.as_str(),
                    "result": e.result,
                    "error": e.error,
                    "run_at": e.run_at.map(time_text),
                    "finished_at": e.status.is_terminal().then(|| time_text(now)),
                    "progress_fraction": e.progress.as_ref().map(|p| p.fraction),
                    "progress_message": e.progress.as_ref().and_then(|p| p.message.as_deref()),
                    "outputs": (!e.outputs.is_empty()).then_some(&e.outputs),
                })
            })
            .collect();
        let rows = Self::sql(Query::TaskEnd)
            .bind(Value::Array(rows))
            .bind(expired_before.map(D::time))
            .fetch_all(executor)
            .await?;
        Self::tasks_from_rows(&rows)
    }

    pub(in crate::store) async fn task_cancel_unstarted(
        &self,
        id: TaskId,
        expected: Status,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = Self::sql(Query::TaskCancelUnstarted)
            .bind(id.0)
            .bind(expected.as_str().to_string())
            .bind(D::time(now))
            .bind("cancelled on request before it started".to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::task_from_row).transpose()
    }

    pub(in crate::store) async fn task_cancel_request(
        &self,
        id: TaskId,
        attempt: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = Self::sql(Query::TaskCancelRequest)
            .bind(id.0)
            .bind(attempt)
            .bind(D::time(now))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::task_from_row).transpose()
    }

    pub(in crate::store) async fn task_retry(
        &self,
        seen: &Task,
        max_attempts: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = Self::sql(Query::TaskRetry)
            .bind(seen.id.0)
            .bind(seen.status.as_str().to_string())
            .bind(seen.attempt)
            .bind(D::time(now))
            .bind(max_attempts)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::task_from_row).transpose()
    }
}
