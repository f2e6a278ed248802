//! What `errand bench` asks of the database beyond a task's life: a
//! history of finished tasks to work beside, and a drain's window as the
//! database recorded it.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::count;
use crate::store::StoreError;
use crate::store::dialect::{Query, shared_queries};

shared_queries! {
    /// Adds `n` completed no-op tasks that finished at `at`.
    pub(in crate::store) async fn bench_history_insert(
        &self,
        n: usize,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = self.execute(Self::sql(Query::BenchHistoryInsert)
            .bind(count(n))
            .bind(D::time(at))
            )
            .await?;
        Ok(D::rows_affected(&done))
    }

    /// Brings the tasks table to a steady state (vacuumed, analysed).
    pub(in crate::store) async fn bench_settle(&self) -> Result<(), StoreError> {
        self.execute(Self::sql(Query::BenchSettle)).await?;
        Ok(())
    }

    /// How many tasks completed since `since`, when the first of them
    /// started and when the last ended.
    pub(in crate::store) async fn bench_drain_window(
        &self,
        since: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>), StoreError> {
        let row = self.fetch_one(Self::sql(Query::BenchDrainWindow)
            .bind(D::time(since))
            )
            .await?;
        Ok((
            row.try_get("n")?,
            Self::maybe_time(&row, "first_start")?,
            Self::maybe_time(&row, "last_end")?,
        ))
    }
}
