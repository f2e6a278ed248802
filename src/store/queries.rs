//! The queries every backend runs the same way: the same parameters in the
//! same order, the same rows back. Only the SQL text differs, one file per
//! query in `sql/<backend>/`.
//!
//! This file is compiled once per backend: `postgres.rs` and `sqlite.rs` each
//! include it as their `queries` module, after defining `Db` (the sqlx
//! database), `Backend` (their store type, with a `pool`), `sql!` (their
//! query files), and `DbTime`/`db_time`/`from_db_time` (how they store time).
//! So the Rust side of a query is written once, and each backend's SQL is
//! checked against it by the conformance suite.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::types::Json;

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{
    Backend, Db, DbTime, MIGRATIONS, begin_bounded, begin_queue_claim, begin_rescue,
    begin_token_mint, begin_write, db_time, from_db_time,
};
use crate::store::{
    CancelCount, KeyClaim, KeyClaimTerms, LeaseRenewal, NewApiToken, StoreError, TaskClaim,
};
use crate::tasks::{
    AttemptEnd, CancelAction, DependencyError, ErrorEntry, IdempotencyKey, NewTask, Principal,
    Progress, Scope, Status, Task, TaskFilter, TaskId, TaskToken, TokenHash, WorkerId, WorkerInfo,
};

type DbRow = <Db as sqlx::Database>::Row;
type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>;

/// Binds the caller's scope and a filter: the first twelve parameters of
/// every query that selects tasks by filter (see `task_list.sql`).
fn bind_filter<'q>(query: Query<'q>, scope: &Scope, f: &TaskFilter) -> Query<'q> {
    fn list<T: serde::Serialize>(values: &[T]) -> Option<Value> {
        (!values.is_empty()).then(|| json!(values))
    }
    query
        .bind(scope.owner.clone())
        .bind(scope.product.clone())
        .bind(list(&f.status))
        .bind(list(&f.kind))
        .bind(list(&f.queue))
        .bind(list(&f.owner))
        .bind(list(&f.product))
        .bind(f.created_after.map(db_time))
        .bind(f.created_before.map(db_time))
        .bind(f.finished_after.map(db_time))
        .bind(f.finished_before.map(db_time))
        .bind(f.cancel_requested)
}

fn status_of(row: &DbRow, column: &str) -> Result<Status, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{e}")))
}

impl Backend {
    /// Applies the migrations not applied yet (`MIGRATIONS`, compiled in).
    pub(in crate::store) async fn migrate(&self) -> Result<(), StoreError> {
        // Processes starting together on a fresh database take turns.
        let _turn = self.migration_turn().await?;
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .map_err(crate::store::migrate_error)
    }

    pub(in crate::store) async fn task_rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        decide: impl Fn(&Task) -> AttemptEnd + Send,
    ) -> Result<Vec<Task>, StoreError> {
        let Some(mut tx) = begin_rescue(&self.pool).await? else {
            return Ok(Vec::new()); // another node is doing this pass
        };
        let expired: Vec<Task> = sqlx::query(sql!("task_expired"))
            .bind(db_time(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(task_from_row)
            .collect::<Result<_, _>>()?;
        let ends: Vec<_> = expired
            .iter()
            .map(|t| (t.id, t.attempt, decide(t)))
            .collect();
        let rescued = task_end_on(&mut *tx, &ends, now, Some(now)).await?;
        tx.commit().await?;
        Ok(rescued)
    }

    pub(in crate::store) async fn token_insert_first(
        &self,
        t: &NewApiToken,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Two nodes starting on an empty database at once: one mints.
        let mut tx = begin_token_mint(&self.pool).await?;
        let count: i64 = sqlx::query_scalar(sql!("token_count"))
            .fetch_one(&mut *tx)
            .await?;
        if count > 0 {
            return Ok(false);
        }
        token_insert_on(&mut *tx, t, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(in crate::store) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(sql!("ping")).execute(&self.pool).await?;
        Ok(())
    }

    pub(in crate::store) async fn close(&self) {
        self.pool.close().await;
    }

    pub(in crate::store) async fn task_insert(
        &self,
        t: &NewTask,
        creator: &Scope,
        key: Option<&IdempotencyKey>,
    ) -> Result<Result<Task, DependencyError>, StoreError> {
        if t.depends_on.is_empty() && key.is_none() {
            let row = insert_query(t, t.status, 0).fetch_one(&self.pool).await?;
            return Ok(Ok(task_from_row(&row)?));
        }
        let mut tx = begin_write(&self.pool).await?;
        let inserted = task_insert_on(&mut tx, t, creator, key).await?;
        if inserted.is_ok() {
            tx.commit().await?;
        }
        Ok(inserted)
    }

    pub(in crate::store) async fn task_callbacks_enqueue(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        delivery: impl Fn(&Task) -> NewTask + Send,
    ) -> Result<Vec<Task>, StoreError> {
        // Most tasks have no callback: look before taking locks.
        let pending: bool = sqlx::query_scalar(sql!("task_callbacks_pending"))
            .fetch_one(&self.pool)
            .await?;
        if !pending {
            return Ok(Vec::new());
        }
        let mut tx = begin_write(&self.pool).await?;
        let due: Vec<Task> = sqlx::query(sql!("task_callbacks_due"))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(task_from_row)
            .collect::<Result<_, _>>()?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut deliveries = Vec::with_capacity(due.len());
        for task in &due {
            let new = delivery(task);
            let row = insert_query(&new, new.status, 0)
                .fetch_one(&mut *tx)
                .await?;
            deliveries.push(task_from_row(&row)?);
        }
        let ids: Vec<i64> = due.iter().map(|t| t.id.0).collect();
        sqlx::query(sql!("task_callbacks_mark"))
            .bind(db_time(now))
            .bind(json!(ids))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deliveries)
    }

    pub(in crate::store) async fn idempotency_claim(
        &self,
        claim: &KeyClaimTerms<'_>,
    ) -> Result<KeyClaim, StoreError> {
        let mut conn = self.pool.acquire().await?;
        idempotency_claim_on(&mut conn, claim).await
    }

    pub(in crate::store) async fn idempotency_release(
        &self,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        sqlx::query(sql!("idempotency_release"))
            .bind(&key.owner)
            .bind(&key.key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn idempotency_prune(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(sql!("idempotency_prune"))
            .bind(db_time(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(in crate::store) async fn task_get(
        &self,
        token: TaskToken,
    ) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(sql!("task_get"))
            .bind(token.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(in crate::store) async fn task_claim(
        &self,
        c: &TaskClaim<'_>,
    ) -> Result<Vec<Task>, StoreError> {
        let query = sqlx::query(sql!("task_claim"))
            .bind(c.queue)
            .bind(db_time(c.now))
            .bind(i64::try_from(c.limit).unwrap_or(i64::MAX))
            .bind(&c.worker.0)
            .bind(db_time(c.lease_until))
            .bind(c.global_limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
            .bind(c.kinds.map(|kinds| json!(kinds)));
        let rows = match c.global_limit {
            None => query.fetch_all(&self.pool).await?,
            Some(_) => {
                // Claims of a limited queue take turns, so each counts the
                // running tasks every earlier claim left.
                let mut tx = begin_queue_claim(&self.pool, c.queue).await?;
                let rows = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        };
        rows.iter().map(task_from_row).collect()
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
        let rows = sqlx::query(sql!("task_heartbeat"))
            .bind(Value::Array(mine))
            .bind(&worker.0)
            .bind(db_time(lease_until))
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
        let done = sqlx::query(sql!("task_progress"))
            .bind(id.0)
            .bind(attempt)
            .bind(progress.fraction)
            .bind(&progress.message)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(in crate::store) async fn task_end(
        &self,
        ends: &[(TaskId, i32, AttemptEnd)],
        now: DateTime<Utc>,
        expired_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<Task>, StoreError> {
        task_end_on(&self.pool, ends, now, expired_before).await
    }

    pub(in crate::store) async fn task_cancel_unstarted(
        &self,
        id: TaskId,
        expected: Status,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(sql!("task_cancel_unstarted"))
            .bind(id.0)
            .bind(expected.as_str())
            .bind(db_time(now))
            .bind("cancelled on request before it started")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(in crate::store) async fn task_cancel_request(
        &self,
        id: TaskId,
        attempt: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(sql!("task_cancel_request"))
            .bind(id.0)
            .bind(attempt)
            .bind(db_time(now))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(in crate::store) async fn task_count_by_status(
        &self,
    ) -> Result<Vec<(Status, i64)>, StoreError> {
        let rows = sqlx::query(sql!("task_count_by_status"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((status_of(r, "status")?, r.try_get("n")?)))
            .collect()
    }

    pub(in crate::store) async fn task_list(
        &self,
        scope: &Scope,
        filter: &TaskFilter,
        after: Option<TaskId>,
        limit: usize,
        timeout: std::time::Duration,
    ) -> Result<Vec<Task>, StoreError> {
        let mut tx = begin_bounded(&self.pool, timeout).await?;
        let rows = bind_filter(sqlx::query(sql!("task_list")), scope, filter)
            .bind(after.map(|id| id.0))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(task_from_row).collect()
    }

    pub(in crate::store) async fn task_stats(
        &self,
        scope: &Scope,
        timeout: std::time::Duration,
    ) -> Result<Vec<(String, Status, i64)>, StoreError> {
        let mut tx = begin_bounded(&self.pool, timeout).await?;
        let rows = sqlx::query(sql!("task_stats"))
            .bind(scope.owner.clone())
            .bind(scope.product.clone())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, status_of(r, "status")?, r.try_get("n")?)))
            .collect()
    }

    pub(in crate::store) async fn task_queue_depth(
        &self,
        statuses: &[Status],
    ) -> Result<Vec<(String, Status, i64)>, StoreError> {
        let rows = sqlx::query(sql!("task_queue_depth"))
            .bind(json!(statuses))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("queue")?,
                    status_of(r, "status")?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    pub(in crate::store) async fn task_retry(
        &self,
        seen: &Task,
        max_attempts: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(sql!("task_retry"))
            .bind(seen.id.0)
            .bind(seen.status.as_str())
            .bind(seen.attempt)
            .bind(db_time(now))
            .bind(max_attempts)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(in crate::store) async fn task_cancel_matching(
        &self,
        scope: &Scope,
        filter: &TaskFilter,
        now: DateTime<Utc>,
    ) -> Result<CancelCount, StoreError> {
        let with = |wanted: CancelAction| -> Value {
            json!(
                Status::cancellable()
                    .filter(|(_, action)| *action == wanted)
                    .map(|(status, _)| status)
                    .collect::<Vec<_>>()
            )
        };
        let rows = bind_filter(sqlx::query(sql!("task_cancel_matching")), scope, filter)
            .bind(db_time(now))
            .bind(with(CancelAction::CancelNow))
            .bind(with(CancelAction::RequestStop))
            .bind("cancelled on request before it started")
            .fetch_all(&self.pool)
            .await?;
        let mut count = CancelCount::default();
        for row in &rows {
            if status_of(row, "status")? == Status::Cancelled {
                count.cancelled += 1;
            } else {
                count.asked_to_stop += 1;
                count
                    .workers
                    .extend(row.try_get::<Option<String>, _>("worker_id")?);
            }
        }
        Ok(count)
    }

    pub(in crate::store) async fn task_prune(
        &self,
        cutoffs: &[(Status, DateTime<Utc>)],
        limit: usize,
    ) -> Result<u64, StoreError> {
        let Some(latest) = cutoffs.iter().map(|(_, t)| *t).max() else {
            return Ok(0);
        };
        let by_status: serde_json::Map<String, Value> = cutoffs
            .iter()
            .map(|(status, t)| (status.as_str().to_string(), json!(db_time(*t))))
            .collect();
        let done = sqlx::query(sql!("task_prune"))
            .bind(Value::Object(by_status))
            .bind(db_time(latest))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(in crate::store) async fn worker_upsert(&self, w: &WorkerInfo) -> Result<(), StoreError> {
        sqlx::query(sql!("worker_upsert"))
            .bind(&w.id.0)
            .bind(&w.host)
            .bind(w.pid)
            .bind(json!(w.queues))
            .bind(w.concurrency)
            .bind(db_time(w.started_at))
            .bind(db_time(w.heartbeat_at))
            .bind(w.running)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn worker_delete(&self, id: &WorkerId) -> Result<(), StoreError> {
        sqlx::query(sql!("worker_delete"))
            .bind(&id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn worker_list(
        &self,
        alive_since: DateTime<Utc>,
    ) -> Result<Vec<WorkerInfo>, StoreError> {
        let rows = sqlx::query(sql!("worker_list"))
            .bind(db_time(alive_since))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let Json(queues) = r.try_get("queues")?;
                Ok(WorkerInfo {
                    id: WorkerId(r.try_get("id")?),
                    host: r.try_get("host")?,
                    pid: r.try_get::<i64, _>("pid")?,
                    queues,
                    concurrency: r.try_get::<i64, _>("concurrency")?,
                    started_at: time(r, "started_at")?,
                    heartbeat_at: time(r, "heartbeat_at")?,
                    running: r.try_get::<i64, _>("running")?,
                })
            })
            .collect()
    }

    pub(in crate::store) async fn worker_prune(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(sql!("worker_prune"))
            .bind(db_time(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(in crate::store) async fn token_insert(
        &self,
        t: &NewApiToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        token_insert_on(&self.pool, t, now).await
    }

    pub(in crate::store) async fn token_find(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(sql!("token_find"))
            .bind(hash.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        Ok(Some(Principal {
            name: row.try_get("name")?,
            role: role
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
            product: row.try_get("product")?,
        }))
    }

    pub(in crate::store) async fn token_revoke(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(sql!("token_revoke"))
            .bind(name)
            .bind(db_time(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Inserts a checked task, with its dependencies, on a connection inside
/// a transaction (the store's own, or an application's): every parent must
/// exist, be visible to `creator`, and not have ended badly, else the
/// refusal and nothing is written. Parents are read and the child written
/// in that transaction, so that no parent ends unseen in between (see
/// task_parents.sql); `key`, claimed before, gets its task there too.
pub(in crate::store) async fn task_insert_on(
    conn: &mut <Db as sqlx::Database>::Connection,
    t: &NewTask,
    creator: &Scope,
    key: Option<&IdempotencyKey>,
) -> Result<Result<Task, DependencyError>, StoreError> {
    let mut parents: Vec<Task> = Vec::new();
    if !t.depends_on.is_empty() {
        let tokens: Vec<String> = t.depends_on.iter().map(TaskToken::to_string).collect();
        parents = sqlx::query(sql!("task_parents"))
            .bind(json!(tokens))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(task_from_row)
            .collect::<Result<_, _>>()?;
    }
    let (status, pending) = match t.check_parents(&parents, creator) {
        Ok(checked) => checked,
        Err(refused) => return Ok(Err(refused)),
    };
    let row = insert_query(t, status, pending)
        .fetch_one(&mut *conn)
        .await?;
    let task = task_from_row(&row)?;
    if !parents.is_empty() {
        let ids: Vec<i64> = parents.iter().map(|p| p.id.0).collect();
        sqlx::query(sql!("task_dependencies_insert"))
            .bind(task.id.0)
            .bind(json!(ids))
            .execute(&mut *conn)
            .await?;
    }
    if let Some(key) = key {
        sqlx::query(sql!("idempotency_complete"))
            .bind(&key.owner)
            .bind(&key.key)
            .bind(task.id.0)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Ok(task))
}

/// Claims an `Idempotency-Key`, or says what the request that holds it did.
pub(in crate::store) async fn idempotency_claim_on(
    conn: &mut <Db as sqlx::Database>::Connection,
    c: &KeyClaimTerms<'_>,
) -> Result<KeyClaim, StoreError> {
    let key = c.key;
    let claimed = sqlx::query(sql!("idempotency_claim"))
        .bind(&key.owner)
        .bind(&key.key)
        .bind(key.request_hash.as_slice())
        .bind(db_time(c.now))
        .bind(db_time(c.expires_at))
        .bind(db_time(c.stale_before))
        .fetch_optional(&mut *conn)
        .await?;
    if claimed.is_some() {
        return Ok(KeyClaim::Claimed);
    }
    let Some(row) = sqlx::query(sql!("idempotency_get"))
        .bind(&key.owner)
        .bind(&key.key)
        .fetch_optional(&mut *conn)
        .await?
    else {
        // Deleted just now (it expired): as good as in flight; retry.
        return Ok(KeyClaim::InFlight);
    };
    let hash: Vec<u8> = row.try_get("request_hash")?;
    if hash != key.request_hash {
        return Ok(KeyClaim::Mismatch);
    }
    let Some(task_id) = row.try_get::<Option<i64>, _>("task_id")? else {
        return Ok(KeyClaim::InFlight);
    };
    let task = sqlx::query(sql!("task_get_by_id"))
        .bind(task_id)
        .fetch_optional(&mut *conn)
        .await?;
    match task {
        Some(row) => Ok(KeyClaim::Done(Box::new(task_from_row(&row)?))),
        None => Ok(KeyClaim::InFlight),
    }
}

/// The insert of a new task, in `status`, waiting for `pending` parents.
fn insert_query(t: &NewTask, status: Status, pending: usize) -> Query<'_> {
    let depends_on: Vec<String> = t.depends_on.iter().map(TaskToken::to_string).collect();
    sqlx::query(sql!("task_insert"))
        .bind(t.token.as_uuid())
        .bind(&t.kind)
        .bind(&t.queue)
        .bind(t.priority)
        .bind(status.as_str())
        .bind(&t.payload)
        .bind(t.max_attempts)
        .bind(t.timeout_ms)
        .bind(&t.owner)
        .bind(&t.product)
        .bind(db_time(t.created_at))
        .bind(db_time(t.run_at))
        .bind(i32::try_from(pending).unwrap_or(i32::MAX))
        .bind(json!(depends_on))
        .bind(&t.callback_url)
}

/// Ends attempts in one statement, on a pool or inside a transaction.
async fn task_end_on<'c>(
    executor: impl sqlx::Executor<'c, Database = Db>,
    ends: &[(TaskId, i32, AttemptEnd)],
    now: DateTime<Utc>,
    expired_before: Option<DateTime<Utc>>,
) -> Result<Vec<Task>, StoreError> {
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Value> = ends
        .iter()
        .map(|(id, attempt, e)| {
            json!({
                "id": id.0,
                "attempt": attempt,
                "status": e.status.as_str(),
                "result": e.result,
                "error": e.error,
                "run_at": e.run_at.map(db_time),
                "finished_at": e.status.is_terminal().then(|| db_time(now)),
                "progress_fraction": e.progress.as_ref().map(|p| p.fraction),
                "progress_message": e.progress.as_ref().and_then(|p| p.message.as_deref()),
            })
        })
        .collect();
    let rows = sqlx::query(sql!("task_end"))
        .bind(Value::Array(rows))
        .bind(expired_before.map(db_time))
        .fetch_all(executor)
        .await?;
    rows.iter().map(task_from_row).collect()
}

async fn token_insert_on<'c>(
    executor: impl sqlx::Executor<'c, Database = Db>,
    t: &NewApiToken,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(sql!("token_insert"))
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(&t.product)
        .bind(t.hash.0.as_slice())
        .bind(db_time(now))
        .execute(executor)
        .await?;
    Ok(())
}

fn time(row: &DbRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    from_db_time(row.try_get::<DbTime, _>(column)?)
}

fn maybe_time(row: &DbRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.try_get::<Option<DbTime>, _>(column)?
        .map(from_db_time)
        .transpose()
}

fn task_from_row(row: &DbRow) -> Result<Task, StoreError> {
    let status: String = row.try_get("status")?;
    let Json(errors): Json<Vec<ErrorEntry>> = row.try_get("errors")?;
    let Json(depends_on): Json<Vec<TaskToken>> = row.try_get("depends_on")?;
    Ok(Task {
        id: TaskId(row.try_get("id")?),
        token: TaskToken::from_uuid(row.try_get("token")?),
        kind: row.try_get("kind")?,
        queue: row.try_get("queue")?,
        priority: row.try_get("priority")?,
        status: status
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        progress: Progress {
            fraction: row.try_get("progress_fraction")?,
            message: row.try_get("progress_message")?,
        },
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        owner: row.try_get("owner")?,
        product: row.try_get("product")?,
        payload: row.try_get::<Value, _>("payload")?,
        result: row.try_get::<Option<Value>, _>("result")?,
        error: row.try_get("error")?,
        errors,
        cancel_requested_at: maybe_time(row, "cancel_requested_at")?,
        timeout_ms: row.try_get("timeout_ms")?,
        depends_on,
        callback_url: row.try_get("callback_url")?,
        created_at: time(row, "created_at")?,
        run_at: time(row, "run_at")?,
        started_at: maybe_time(row, "started_at")?,
        finished_at: maybe_time(row, "finished_at")?,
        lease_expires_at: maybe_time(row, "lease_expires_at")?,
        worker_id: row.try_get("worker_id")?,
    })
}
