//! The Postgres store: the production backend. One query per file in
//! `sql/postgres/`, the schema in `migrations/postgres/`.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Row, SqlSafeStr};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{LeaseRenewal, NewApiToken, StoreError, StoreEvent};
use crate::config::DatabaseSettings;
use crate::tasks::{
    AttemptEnd, ErrorEntry, NewTask, Principal, Progress, Status, Task, TaskId, TaskToken,
    TokenHash, WorkerId,
};

/// The text of query `sql/postgres/<name>.sql`.
macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!("sql/postgres/", $name, ".sql"))
    };
}

/// Advisory lock keys (any two distinct numbers; these spell "errand" and a
/// purpose).
const LOCK_RESCUE: i64 = 0x6572_7261_6e64_0001;
const LOCK_TOKENS: i64 = 0x6572_7261_6e64_0002;

/// Notification channels, created by the triggers in the migrations.
const CHANNEL_QUEUED: &str = "errand_queued";
const CHANNEL_CANCEL: &str = "errand_cancel";

#[derive(Clone)]
pub(super) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub(super) fn connect(settings: &DatabaseSettings) -> Result<PgStore, StoreError> {
        let statement_timeout = settings.statement_timeout.as_millis().to_string();
        let options = PgConnectOptions::from_str(&settings.url)
            .map_err(StoreError::Database)?
            .application_name("errand")
            .options([("statement_timeout", statement_timeout.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        Ok(PgStore { pool })
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = vec![Migration::new(
            1,
            Cow::Borrowed("init"),
            MigrationType::Simple,
            include_str!("../../migrations/postgres/0001_init.sql").into_sql_str(),
            false,
        )];
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(sql!("ping")).execute(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn run_listener(
        &self,
        events: &broadcast::Sender<StoreEvent>,
        shutdown: CancellationToken,
    ) {
        let mut delay = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                outcome = self.listen(events, &mut delay) => outcome,
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, retry_in = ?delay, "notification listener lost the database");
            }
            // Whatever happened while not listening was missed.
            let _ = events.send(StoreEvent::Resync);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Listens until the connection is lost; resets `delay` once connected.
    async fn listen(
        &self,
        events: &broadcast::Sender<StoreEvent>,
        delay: &mut Duration,
    ) -> Result<(), StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([CHANNEL_QUEUED, CHANNEL_CANCEL])
            .await?;
        *delay = Duration::from_millis(100);
        // Anything sent before LISTEN took effect was missed.
        let _ = events.send(StoreEvent::Resync);
        while let Some(n) = listener.try_recv().await? {
            let event = match n.channel() {
                CHANNEL_QUEUED => StoreEvent::Queued {
                    queue: n.payload().to_string(),
                },
                CHANNEL_CANCEL => StoreEvent::CancelRequested {
                    worker: n.payload().to_string(),
                },
                _ => continue,
            };
            // No receiver is fine: nobody is waiting.
            let _ = events.send(event);
        }
        Ok(())
    }

    pub(super) async fn task_insert(&self, t: &NewTask) -> Result<Task, StoreError> {
        let row = sqlx::query(sql!("task_insert"))
            .bind(t.token.as_uuid())
            .bind(&t.kind)
            .bind(&t.queue)
            .bind(t.priority)
            .bind(t.status.as_str())
            .bind(&t.payload)
            .bind(t.max_attempts)
            .bind(t.timeout_ms)
            .bind(&t.owner)
            .bind(&t.product)
            .bind(t.created_at)
            .bind(t.run_at)
            .fetch_one(&self.pool)
            .await?;
        task_from_row(&row)
    }

    pub(super) async fn task_get(&self, token: TaskToken) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(sql!("task_get"))
            .bind(token.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(super) async fn task_claim(
        &self,
        queue: &str,
        worker: &WorkerId,
        limit: usize,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Task>, StoreError> {
        let rows = sqlx::query(sql!("task_claim"))
            .bind(queue)
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(&worker.0)
            .bind(lease_until)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(task_from_row).collect()
    }

    pub(super) async fn task_heartbeat(
        &self,
        worker: &WorkerId,
        attempts: &[(TaskId, i32)],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<LeaseRenewal>, StoreError> {
        let ids: Vec<i64> = attempts.iter().map(|(id, _)| id.0).collect();
        let numbers: Vec<i32> = attempts.iter().map(|(_, n)| *n).collect();
        let rows = sqlx::query(sql!("task_heartbeat"))
            .bind(ids)
            .bind(numbers)
            .bind(&worker.0)
            .bind(lease_until)
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

    pub(super) async fn task_progress(
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

    pub(super) async fn task_end(
        &self,
        ends: &[(TaskId, i32, AttemptEnd)],
        now: DateTime<Utc>,
        expired_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<Task>, StoreError> {
        task_end_on(&self.pool, ends, now, expired_before).await
    }

    pub(super) async fn task_cancel_unstarted(
        &self,
        id: TaskId,
        expected: Status,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(sql!("task_cancel_unstarted"))
            .bind(id.0)
            .bind(expected.as_str())
            .bind(now)
            .bind("cancelled on request before it started")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(super) async fn task_cancel_request(
        &self,
        id: TaskId,
        attempt: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(sql!("task_cancel_request"))
            .bind(id.0)
            .bind(attempt)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(super) async fn task_rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        decide: impl Fn(&Task) -> AttemptEnd + Send,
    ) -> Result<Vec<Task>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar(sql!("lock_try"))
            .bind(LOCK_RESCUE)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql!("task_expired"))
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        let mut ends = Vec::with_capacity(rows.len());
        for row in &rows {
            let task = task_from_row(row)?;
            ends.push((task.id, task.attempt, decide(&task)));
        }
        let rescued = task_end_on(&mut *tx, &ends, now, Some(now)).await?;
        tx.commit().await?;
        Ok(rescued)
    }

    pub(super) async fn token_insert(
        &self,
        t: &NewApiToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        token_insert_on(&self.pool, t, now).await
    }

    pub(super) async fn token_insert_first(
        &self,
        t: &NewApiToken,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Two nodes starting on an empty database at once: one mints.
        sqlx::query(sql!("lock_wait"))
            .bind(LOCK_TOKENS)
            .execute(&mut *tx)
            .await?;
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

    pub(super) async fn token_find(
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

    pub(super) async fn token_revoke(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(sql!("token_revoke"))
            .bind(name)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

async fn task_end_on<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    ends: &[(TaskId, i32, AttemptEnd)],
    now: DateTime<Utc>,
    expired_before: Option<DateTime<Utc>>,
) -> Result<Vec<Task>, StoreError> {
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = ends.iter().map(|(id, _, _)| id.0).collect();
    let attempts: Vec<i32> = ends.iter().map(|(_, n, _)| *n).collect();
    let statuses: Vec<&str> = ends.iter().map(|(_, _, e)| e.status.as_str()).collect();
    let results: Vec<Option<Value>> = ends.iter().map(|(_, _, e)| e.result.clone()).collect();
    let errors: Vec<Option<Value>> = ends
        .iter()
        // Serialising an ErrorEntry (numbers, a string, a time) can't fail.
        .map(|(_, _, e)| e.error.as_ref().map(|entry| json!(entry)))
        .collect();
    let run_ats: Vec<Option<DateTime<Utc>>> = ends.iter().map(|(_, _, e)| e.run_at).collect();
    let finished: Vec<Option<DateTime<Utc>>> = ends
        .iter()
        .map(|(_, _, e)| e.status.is_terminal().then_some(now))
        .collect();
    let fractions: Vec<Option<f64>> = ends
        .iter()
        .map(|(_, _, e)| e.progress.as_ref().map(|p| p.fraction))
        .collect();
    let messages: Vec<Option<String>> = ends
        .iter()
        .map(|(_, _, e)| e.progress.as_ref().and_then(|p| p.message.clone()))
        .collect();
    let rows = sqlx::query(sql!("task_end"))
        .bind(ids)
        .bind(attempts)
        .bind(statuses)
        .bind(results)
        .bind(errors)
        .bind(run_ats)
        .bind(finished)
        .bind(expired_before)
        .bind(fractions)
        .bind(messages)
        .fetch_all(executor)
        .await?;
    rows.iter().map(task_from_row).collect()
}

async fn token_insert_on<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    t: &NewApiToken,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(sql!("token_insert"))
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(&t.product)
        .bind(t.hash.0.as_slice())
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

fn task_from_row(row: &PgRow) -> Result<Task, StoreError> {
    let status: String = row.try_get("status")?;
    let Json(errors): Json<Vec<ErrorEntry>> = row.try_get("errors")?;
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
        cancel_requested_at: row.try_get("cancel_requested_at")?,
        timeout_ms: row.try_get("timeout_ms")?,
        depends_on: Vec::new(),
        created_at: row.try_get("created_at")?,
        run_at: row.try_get("run_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        worker_id: row.try_get("worker_id")?,
    })
}
