//! What operators ask for: a page of a listing, stats, counts by status and
//! queue (and how long each queue's oldest task has waited), and
//! cancelling or retrying what a filter matches. The caller's scope and the
//! filter travel as one JSON parameter (`$1`), read by the dialect's
//! `task_filter.sql`.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row as _;

use super::{count, filter_param};
use crate::store::dialect::{Query, shared_queries};
use crate::store::{CancelCount, EndedCount, StoreError, TaskCount, TaskCounting, TaskListing};
use crate::tasks::{CancelAction, Scope, Status, Task, TaskFilter};

shared_queries! {
    pub(in crate::store) async fn task_count_by_status(
        &self,
    ) -> Result<Vec<(Status, i64)>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::TaskCountByStatus)
            )
            .await?;
        rows.iter()
            .map(|r| Ok((Self::status(r, "status")?, r.try_get("n")?)))
            .collect()
    }

    pub(in crate::store) async fn task_list(
        &self,
        l: &TaskListing<'_>,
    ) -> Result<Vec<Task>, StoreError> {
        let mut tx = D::begin_bounded(self.connection().await?, l.timeout).await?;
        let rows = Self::sql(Query::TaskList)
            .bind(filter_param(l.scope, l.filter))
            .bind(l.after.map(|id| id.0))
            .bind(count(l.limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Self::tasks_from_rows(&rows)
    }

    pub(in crate::store) async fn task_stats(
        &self,
        c: &TaskCounting<'_>,
    ) -> Result<Vec<TaskCount>, StoreError> {
        let mut tx = D::begin_bounded(self.connection().await?, c.timeout).await?;
        let rows = Self::sql(Query::TaskStats)
            .bind(filter_param(c.scope, c.filter))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(TaskCount {
                    kind: r.try_get("kind")?,
                    queue: r.try_get("queue")?,
                    status: Self::status(r, "status")?,
                    n: r.try_get("n")?,
                })
            })
            .collect()
    }

    pub(in crate::store) async fn task_throughput(
        &self,
        c: &TaskCounting<'_>,
        interval_secs: i64,
    ) -> Result<Vec<EndedCount>, StoreError> {
        let mut tx = D::begin_bounded(self.connection().await?, c.timeout).await?;
        let rows = Self::sql(Query::TaskThroughput)
            .bind(filter_param(c.scope, c.filter))
            .bind(interval_secs.max(1))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let start: i64 = r.try_get("bucket")?;
                Ok(EndedCount {
                    start: DateTime::from_timestamp(start, 0).unwrap_or_default(),
                    status: Self::status(r, "status")?,
                    n: r.try_get("n")?,
                })
            })
            .collect()
    }

    pub(in crate::store) async fn task_queue_depth(
        &self,
        statuses: &[Status],
    ) -> Result<Vec<(String, Status, i64)>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::TaskQueueDepth)
            .bind(json!(statuses))
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("queue")?, Self::status(r, "status")?, r.try_get("n")?)))
            .collect()
    }

    pub(in crate::store) async fn task_cancel_matching(
        &self,
        scope: &Scope,
        filter: &TaskFilter,
        now: DateTime<Utc>,
    ) -> Result<CancelCount, StoreError> {
        let with = |wanted: CancelAction| {
            json!(
                Status::cancellable()
                    .filter(|(_, action)| *action == wanted)
                    .map(|(status, _)| status)
                    .collect::<Vec<_>>()
            )
        };
        let rows = self.fetch_all(Self::sql(Query::TaskCancelMatching)
            .bind(filter_param(scope, filter))
            .bind(D::time(now))
            .bind(with(CancelAction::CancelNow))
            .bind(with(CancelAction::RequestStop))
            .bind("cancelled on request before it started".to_string())
            )
            .await?;
        let mut tally = CancelCount::default();
        for row in &rows {
            if Self::status(row, "status")? == Status::Cancelled {
                tally.cancelled += 1;
            } else {
                tally.asked_to_stop += 1;
                tally
                    .workers
                    .extend(row.try_get::<Option<String>, _>("worker_id")?);
            }
        }
        Ok(tally)
    }

    pub(in crate::store) async fn task_queue_oldest(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, std::time::Duration)>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::TaskQueueOldest).bind(D::time(now))).await?;
        rows.iter()
            .map(|r| {
                let waited = (now - Self::time(r, "oldest")?).to_std().unwrap_or_default();
                Ok((r.try_get("queue")?, waited))
            })
            .collect()
    }

    /// The queues of the tasks re-queued.
    pub(in crate::store) async fn task_retry_matching(
        &self,
        scope: &Scope,
        filter: &TaskFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let retryable: Vec<Status> = Status::retryable().collect();
        let rows = self.fetch_all(Self::sql(Query::TaskRetryMatching)
            .bind(filter_param(scope, filter))
            .bind(D::time(now))
            .bind(json!(retryable))
            )
            .await?;
        rows.iter().map(|r| Ok(r.try_get("queue")?)).collect()
    }
}
