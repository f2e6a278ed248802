//! A task's life after its insert (`inserts`): read, claim, heartbeat,
//! progress, end (fenced by attempt), cancel, retry.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row as _;

use super::count;
use super::rows;
use crate::store::dialect::{Query, shared_queries};
use crate::store::{LeaseRenewal, StoreError, TaskClaim, TaskEnding};
use crate::tasks::{Progress, Status, Task, TaskId, TaskToken, WorkerId};

shared_queries! {
    pub(in crate::store) async fn task_get(
        &self,
        token: TaskToken,
    ) -> Result<Option<Task>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::TaskGet)
            .bind(token.as_uuid())
            )
            .await?;
        row.as_ref().map(Self::task_from_row).transpose()
    }

    /// The tasks with these ids that exist, in the order of `ids`.
    pub(in crate::store) async fn tasks_by_ids(&self, ids: &[TaskId]) -> Result<Vec<Task>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        self.alone(async |c| Self::tasks_get_by_ids(c, &ids).await).await
    }

    pub(in crate::store) async fn tasks_get(
        &self,
        tokens: &[TaskToken],
    ) -> Result<Vec<Task>, StoreError> {
        let hex: Vec<String> = tokens.iter().map(|t| t.as_uuid().simple().to_string()).collect();
        let rows = self.fetch_all(Self::sql(Query::TasksGetByTokens)
            .bind(json!(hex))
            )
            .await?;
        Self::tasks_from_rows(&rows)
    }

    pub(in crate::store) async fn task_watch(&self, token: TaskToken) -> Result<(), StoreError> {
        self.execute(Self::sql(Query::TaskWatch)
            .bind(token.as_uuid())
            )
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn task_claim(
        &self,
        c: &TaskClaim<'_>,
    ) -> Result<Vec<Task>, StoreError> {
        let claim = |limit: usize| {
            Self::sql(Query::TaskClaim)
                .bind(c.queue.to_string())
                .bind(D::time(c.now))
                .bind(count(limit))
                .bind(c.worker.0.clone())
                .bind(D::time(c.lease_until))
                .bind(c.kinds.map(|kinds| json!(kinds)))
        };
        let rows = match c.global_limit {
            None => self.fetch_all(claim(c.limit)).await?,
            Some(global) => {
                // Claims of a limited queue take turns, so each counts the
                // running tasks every earlier claim left.
                let mut tx = D::begin_queue_claim(self.connection().await?, c.queue).await?;
                let running: i64 = Self::sql(Query::TaskRunningCount)
                    .bind(c.queue.to_string())
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                let room = usize::try_from(count(global) - running).unwrap_or(0);
                let rows = match room.min(c.limit) {
                    0 => Vec::new(),
                    limit => claim(limit).fetch_all(&mut *tx).await?,
                };
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
        let rows = self.fetch_all(Self::sql(Query::TaskHeartbeat)
            .bind(Value::Array(mine))
            .bind(worker.0.clone())
            .bind(D::time(lease_until))
            )
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
        let done = self.execute(Self::sql(Query::TaskProgress)
            .bind(id.0)
            .bind(attempt)
            .bind(progress.fraction)
            .bind(progress.message.clone())
            )
            .await?;
        Ok(D::rows_affected(&done) == 1)
    }

    pub(in crate::store) async fn task_end(
        &self,
        ends: &[TaskEnding],
        now: DateTime<Utc>,
    ) -> Result<Vec<Task>, StoreError> {
        if ends.iter().any(|e| e.end.snoozed) {
            // Snoozes (rare) take a statement of their own: the others'
            // stays as light as it was.
            let (snoozes, others): (Vec<TaskEnding>, Vec<TaskEnding>) =
                ends.iter().cloned().partition(|e| e.end.snoozed);
            let mut ended = Vec::with_capacity(ends.len());
            for (_, rows) in rows::end_parts(&snoozes, now, self.dialect.statement_bytes()) {
                let rows = Self::sql(Query::TaskSnooze).bind(rows);
                ended.extend(Self::tasks_from_rows(&self.fetch_all(rows).await?)?);
            }
            if !others.is_empty() {
                ended.extend(Box::pin(self.task_end(&others, now)).await?);
            }
            return Ok(ended);
        }
        let parts = rows::end_parts(ends, now, self.dialect.statement_bytes());
        let mut ended = Vec::with_capacity(ends.len());
        if ends.iter().all(|e| e.end.outputs.is_empty()) {
            for (_, rows) in parts {
                ended.extend(self.alone(async |c| Self::task_end_on(c, rows, None).await).await?);
            }
            return Ok(ended);
        }
        // Attempts that made files: their task_files rows in the same
        // transaction, for the tasks the (fenced) end did touch.
        let mut tx = D::begin_write(self.connection().await?).await?;
        for (part, rows) in parts {
            let done = Self::task_end_on(&mut *tx, rows, None).await?;
            for task in &done {
                let made = part.iter().find(|e| e.id == task.id);
                if let Some(e) = made.filter(|e| !e.end.outputs.is_empty()) {
                    Self::task_files_insert(&mut tx, task.id, "output", &e.end.outputs).await?;
                }
            }
            ended.extend(done);
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// Ends attempts in one statement (`rows`: a part from
    /// [`rows::end_parts`]), on a pool or inside a transaction; with
    /// `expired_before` (the rescuer), only those whose lease ran out.
    pub(super) async fn task_end_on<'c>(
        executor: impl sqlx::Executor<'c, Database = D::Db>,
        rows: String,
        expired_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<Task>, StoreError> {
        let rows = Self::sql(Query::TaskEnd)
            .bind(rows)
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
        let row = self.fetch_optional(Self::sql(Query::TaskCancelUnstarted)
            .bind(id.0)
            .bind(expected.as_str().to_string())
            .bind(D::time(now))
            .bind("cancelled on request before it started".to_string())
            )
            .await?;
        row.as_ref().map(Self::task_from_row).transpose()
    }

    pub(in crate::store) async fn task_cancel_request(
        &self,
        id: TaskId,
        attempt: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::TaskCancelRequest)
            .bind(id.0)
            .bind(attempt)
            .bind(D::time(now))
            )
            .await?;
        row.as_ref().map(Self::task_from_row).transpose()
    }

    pub(in crate::store) async fn task_retry(
        &self,
        seen: &Task,
        max_attempts: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::TaskRetry)
            .bind(seen.id.0)
            .bind(seen.status.as_str().to_string())
            .bind(seen.attempt)
            .bind(D::time(now))
            .bind(max_attempts)
            )
            .await?;
        row.as_ref().map(Self::task_from_row).transpose()
    }
}
