//! What maintenance does: rescue attempts whose lease expired, end the
//! tasks whose start deadline passed, delete what retention no longer
//! keeps, and queue callback deliveries (the task row as outbox).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row as _;

use super::count;
use super::rows::{self, InsertRow};
use crate::store::dialect::{Query, shared_queries, time_text};
use crate::store::{StoreError, TaskEnding};
use crate::tasks::{AttemptEnd, NewTask, Status, Task};

shared_queries! {
    pub(in crate::store) async fn task_rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        decide: impl Fn(&Task) -> AttemptEnd + Send,
    ) -> Result<Vec<Task>, StoreError> {
        let Some(mut tx) = D::begin_rescue(self.connection().await?).await? else {
            return Ok(Vec::new()); // another node is doing this pass
        };
        let rows = Self::sql(Query::TaskExpired)
            .bind(D::time(now))
            .bind(count(limit))
            .fetch_all(&mut *tx)
            .await?;
        let ends: Vec<TaskEnding> = Self::tasks_from_rows(&rows)?
            .iter()
            .map(|t| TaskEnding {
                id: t.id,
                attempt: t.attempt,
                started_at: t.started_at,
                end: decide(t),
            })
            .collect();
        let mut rescued = Vec::with_capacity(ends.len());
        for (_, rows) in rows::end_parts(&ends, now, None) {
            rescued.extend(Self::task_end_on(&mut *tx, rows, Some(now)).await?);
        }
        tx.commit().await?;
        Ok(rescued)
    }

    pub(in crate::store) async fn tasks_expire(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::TasksExpire)
            .bind(D::time(now))
            .bind(count(limit))
            .bind("not started by its start deadline (start_by)".to_string())
            )
            .await?;
        Self::tasks_from_rows(&rows)
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
            .map(|(status, t)| (status.as_str().to_string(), json!(time_text(*t))))
            .collect();
        let done = self.execute(Self::sql(Query::TaskPrune)
            .bind(Value::Object(by_status))
            .bind(D::time(latest))
            .bind(count(limit))
            )
            .await?;
        Ok(D::rows_affected(&done))
    }

    pub(in crate::store) async fn task_callbacks_enqueue(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        delivery: impl Fn(&Task) -> NewTask + Send,
    ) -> Result<Vec<Task>, StoreError> {
        // Most tasks have no callback: look before taking locks.
        let look = self.fetch_one(Self::sql(Query::TaskCallbacksPending)
            )
            .await?;
        if !look.try_get::<bool, _>("pending")? {
            return Ok(Vec::new());
        }
        let mut tx = D::begin_write(self.connection().await?).await?;
        let rows = Self::sql(Query::TaskCallbacksDue)
            .bind(count(limit))
            .fetch_all(&mut *tx)
            .await?;
        let due = Self::tasks_from_rows(&rows)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let news: Vec<NewTask> = due.iter().map(delivery).collect();
        let rows = news
            .iter()
            .map(|new| InsertRow::new(new, new.status, 0, &[]))
            .collect();
        let deliveries = Self::insert_rows(&mut *tx, rows).await?;
        let ids: Vec<i64> = due.iter().map(|t| t.id.0).collect();
        Self::sql(Query::TaskCallbacksMark)
            .bind(D::time(now))
            .bind(json!(ids))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deliveries)
    }
}
