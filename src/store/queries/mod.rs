//! The queries every backend runs the same way: the same parameters in the
//! same order, the same rows back, written once here against the
//! [`Dialect`] contract. Only the SQL text differs, one file per query in
//! `sql/<dialect>/`; the conformance suite (`tests/store`) checks each
//! dialect's SQL against this code.
//!
//! - `inserts`: new tasks, one or a batch in one statement, with their
//!   dependencies, input files and idempotency key;
//! - `tasks`: a task's life: read, claim, heartbeat, progress, end,
//!   cancel, retry;
//! - `listing`: what operators ask for: listings, stats, counts, bulk
//!   cancel and retry (all through one filter parameter);
//! - `upkeep`: what maintenance does: rescue, expiry, retention, the
//!   callback outbox;
//! - `keys`: idempotency keys; `accounts`: API tokens and workers;
//! - `schedules`: schedules, the firing of their ticks, the schedulers'
//!   clock; `queues`: paused queues;
//! - `offers`: Postgres only: workers' offers of free slots, and tasks
//!   pushed to a worker handed back;
//! - `bench`: what `errand bench` asks beyond that;
//! - `rows`: the typed rows that batched writes pass (as one JSON
//!   parameter, or as the dialect binds them: `Dialect::insert_new_tasks`).
//!
//! Uses `tasks` (the rows are domain types) and the dialect contract;
//! nothing else.

mod accounts;
mod bench;
mod files;
mod inserts;
mod keys;
mod listing;
mod offers;
mod queues;
mod rows;
mod schedules;
mod tasks;
mod upkeep;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection as _, Database, Pool, Row as _, SqlSafeStr};

use super::StoreError;
use super::dialect::{Dialect, Query, shared_queries, time_text};
use super::kept::Kept;
use crate::tasks::{
    ErrorEntry, Progress, Scope, Status, Task, TaskFile, TaskFiles, TaskFilter, TaskId, TaskRecord,
    TaskToken,
};
pub(super) use rows::{InsertRow, json_text};

/// A database's row.
type Row<D> = <<D as Dialect>::Db as Database>::Row;
/// A query about to be bound.
pub(super) type Statement<D> =
    sqlx::query::Query<'static, <D as Dialect>::Db, <<D as Dialect>::Db as Database>::Arguments>;

/// The store of one dialect: its pool, the connections it keeps between
/// statements, and the dialect itself (which may hold what only it needs:
/// SQLite's file).
pub(super) struct SqlStore<D: Dialect> {
    pub(super) pool: Pool<D::Db>,
    kept: Arc<Kept<D::Db>>,
    pub(super) dialect: D,
}

impl<D: Dialect + Clone> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            kept: self.kept.clone(),
            dialect: self.dialect.clone(),
        }
    }
}

impl<D: Dialect> SqlStore<D> {
    /// A store on `pool` that keeps a connection between statements while
    /// it is used at least every `fresh_for` (see `kept`).
    pub(super) fn new(pool: Pool<D::Db>, dialect: D, fresh_for: Duration) -> SqlStore<D> {
        SqlStore {
            pool,
            kept: Arc::new(Kept::new(fresh_for)),
            dialect,
        }
    }
}

/// `i64` for a count or limit (which a `usize` may exceed in theory).
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A caller's scope and a filter, as the one JSON parameter `$1` that every
/// dialect's `task_filter.sql` reads (absent keys match everything).
fn filter_param(scope: &Scope, f: &TaskFilter) -> Value {
    let mut param = serde_json::Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            param.insert(key.to_string(), value);
        }
    };
    let list = |values: Vec<String>| (!values.is_empty()).then(|| json!(values));
    let time = |t: Option<DateTime<Utc>>| t.map(|t| json!(time_text(t)));
    put("scope_owner", scope.owner.clone().map(Value::from));
    put("scope_product", scope.product.clone().map(Value::from));
    put(
        "status",
        list(f.status.iter().map(|s| s.as_str().to_string()).collect()),
    );
    put("kind", list(f.kind.clone()));
    put("queue", list(f.queue.clone()));
    put("owner", list(f.owner.clone()));
    put("product", list(f.product.clone()));
    put("schedule", list(f.schedule.clone()));
    put("created_after", time(f.created_after));
    put("created_before", time(f.created_before));
    put("finished_after", time(f.finished_after));
    put("finished_before", time(f.finished_before));
    put("cancel_requested", f.cancel_requested.map(Value::from));
    Value::Object(param)
}

shared_queries! {
    /// A statement of `query` in this dialect.
    fn sql(query: Query) -> Statement<D> {
        sqlx::query(D::sql(query)).persistent(D::keeps_statements())
    }

    /// Runs `run` on a connection of its own (kept for the next statement
    /// if it succeeds: see `kept`); behind a transaction pooler, in a
    /// transaction of its own: the pooler hands each transaction whichever
    /// server connection is free, and sqlx prepares and runs a statement in
    /// two round trips, which must reach the same one.
    async fn alone<T, E>(
        &self,
        run: impl AsyncFnOnce(&mut <D::Db as Database>::Connection) -> Result<T, E>,
    ) -> Result<T, StoreError>
    where
        StoreError: From<E>,
    {
        // On an error (or if this is dropped half-way) the connection goes
        // back to the pool, which tests it.
        let mut lent = self.kept.lend(&self.pool).await?;
        let out = if self.dialect.pooled() {
            let mut tx = lent.conn.begin().await?;
            let out = run(&mut *tx).await?;
            tx.commit().await?;
            out
        } else {
            run(&mut *lent.conn).await?
        };
        self.kept.take_back(lent, &self.pool);
        Ok(out)
    }

    /// A connection for a transaction: one kept, else the pool's.
    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<D::Db>, StoreError> {
        Ok(self.kept.lend(&self.pool).await?.conn)
    }

    async fn execute(&self, q: Statement<D>) -> Result<<D::Db as Database>::QueryResult, StoreError> {
        self.alone(async |c| q.execute(c).await).await
    }

    async fn fetch_all(&self, q: Statement<D>) -> Result<Vec<Row<D>>, StoreError> {
        self.alone(async |c| q.fetch_all(c).await).await
    }

    async fn fetch_optional(&self, q: Statement<D>) -> Result<Option<Row<D>>, StoreError> {
        self.alone(async |c| q.fetch_optional(c).await).await
    }

    async fn fetch_one(&self, q: Statement<D>) -> Result<Row<D>, StoreError> {
        self.alone(async |c| q.fetch_one(c).await).await
    }

    /// Applies the migrations not applied yet.
    pub(in crate::store) async fn migrate(&self) -> Result<(), StoreError> {
        // Processes starting together on a fresh database take turns.
        let _turn = self.dialect.migration_turn().await?;
        let migrations = D::migrations()
            .iter()
            .map(|(version, description, sql)| {
                // A migration that runs its own transactions says so on its
                // first line (see sqlite/0013_control.sql).
                let no_tx = sql.starts_with("-- no-transaction");
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    no_tx,
                )
            })
            .collect();
        // A pooler can't hold the migrator's session lock: straight to the
        // database, when the dialect has a way there.
        Migrator::with_migrations(migrations)
            .run(self.dialect.direct_pool().unwrap_or(&self.pool))
            .await
            .map_err(super::error::migrate_error)
    }

    pub(in crate::store) async fn ping(&self) -> Result<(), StoreError> {
        self.execute(Self::sql(Query::Ping)).await?;
        Ok(())
    }

    pub(in crate::store) async fn close(&self) {
        self.kept.release_all();
        self.pool.close().await;
    }

    /// A task row as the domain's [`Task`].
    fn task_from_row(row: &Row<D>) -> Result<Task, StoreError> {
        let record = TaskRecord {
            token: TaskToken::from_uuid(row.try_get("token")?),
            kind: row.try_get("kind")?,
            queue: row.try_get("queue")?,
            priority: row.try_get("priority")?,
            status: Self::status(row, "status")?,
            progress: Progress {
                fraction: row.try_get("progress_fraction")?,
                message: row.try_get("progress_message")?,
            },
            attempt: row.try_get("attempt")?,
            max_attempts: row.try_get("max_attempts")?,
            snoozes: row.try_get("snoozes")?,
            owner: row.try_get("owner")?,
            product: row.try_get("product")?,
            payload: row.try_get("payload")?,
            result: row.try_get("result")?,
            error: row.try_get("error")?,
            errors: Self::json::<Vec<ErrorEntry>>(row, "errors")?,
            depends_on: Self::json::<Vec<TaskToken>>(row, "depends_on")?,
            created_at: Self::time(row, "created_at")?,
            run_at: Self::time(row, "run_at")?,
            start_by: Self::maybe_time(row, "start_by")?,
            schedule: row.try_get("schedule")?,
            scheduled_for: Self::maybe_time(row, "scheduled_for")?,
            started_at: Self::maybe_time(row, "started_at")?,
            finished_at: Self::maybe_time(row, "finished_at")?,
        };
        Ok(Task {
            id: TaskId(row.try_get("id")?),
            record,
            cancel_requested_at: Self::maybe_time(row, "cancel_requested_at")?,
            timeout_ms: row.try_get("timeout_ms")?,
            callback_url: row.try_get("callback_url")?,
            files: Self::json::<TaskFiles>(row, "files")?,
            lease_expires_at: Self::maybe_time(row, "lease_expires_at")?,
            worker_id: row.try_get("worker_id")?,
        })
    }

    fn tasks_from_rows(rows: &[Row<D>]) -> Result<Vec<Task>, StoreError> {
        rows.iter().map(Self::task_from_row).collect()
    }

    fn time(row: &Row<D>, column: &'static str) -> Result<DateTime<Utc>, StoreError> {
        D::from_time(row.try_get::<D::Time, _>(column)?)
    }

    fn maybe_time(row: &Row<D>, column: &'static str) -> Result<Option<DateTime<Utc>>, StoreError> {
        row.try_get::<Option<D::Time>, _>(column)?
            .map(D::from_time)
            .transpose()
    }

    fn status(row: &Row<D>, column: &'static str) -> Result<Status, StoreError> {
        let text: String = row.try_get(column)?;
        text.parse().map_err(|e| StoreError::corrupt("status", e))
    }

    /// A JSON column as `T`.
    fn json<T: serde::de::DeserializeOwned>(
        row: &Row<D>,
        column: &'static str,
    ) -> Result<T, StoreError> {
        let value: Value = row.try_get(column)?;
        serde_json::from_value(value).map_err(|e| StoreError::corrupt(column, e))
    }

    /// Inserts `rows` in one statement: the tasks, in the rows' order.
    async fn insert_rows<'c>(
        executor: impl sqlx::Executor<'c, Database = D::Db>,
        rows: Vec<InsertRow<'_>>,
    ) -> Result<Vec<Task>, StoreError> {
        let inserted = D::insert_new_tasks(&rows)
            .fetch_all(executor)
            .await?;
        let mut by_token: std::collections::HashMap<TaskToken, Task> =
            Self::tasks_from_rows(&inserted)?.into_iter().map(|t| (t.token, t)).collect();
        rows.iter()
            .map(|row| {
                by_token.remove(&row.token)
                    .ok_or_else(|| StoreError::corrupt("inserted task", std::fmt::Error))
            })
            .collect()
    }

    /// `files`' rows of task `task`, in `role`; the files are used from now
    /// on, and go once no task uses them.
    async fn task_files_insert(
        conn: &mut <D::Db as Database>::Connection,
        task: TaskId,
        role: &str,
        files: &[TaskFile],
    ) -> Result<(), StoreError> {
        let rows: Vec<Value> = files
            .iter()
            .map(|f| json!({"name": f.name, "role": role, "file": f.file}))
            .collect();
        Self::sql(Query::TaskFilesInsert)
            .bind(task.0)
            .bind(Value::Array(rows))
            .execute(&mut *conn)
            .await?;
        let ids: Vec<String> = files.iter().map(|f| f.file.to_string()).collect();
        Self::sql(Query::FilesMarkUsed)
            .bind(json!(ids))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
