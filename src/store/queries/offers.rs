//! Pushes, on Postgres only: a worker's offers of free slots (made,
//! renewed, withdrawn, each announced on `errand_offered`) and the
//! hand-back of tasks pushed to it that it never heard of. The insert that
//! seats new tasks on offers, and sends each worker its row, is
//! `tasks_insert_seated.sql`.

use super::SqlStore;
use crate::store::StoreError;
use crate::store::params::TaskOffer;
use crate::store::postgres::{Pg, statement};
use crate::tasks::{TaskId, WorkerId};

/// Milliseconds, as the statements take durations.
fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqlStore<Pg> {
    pub(in crate::store) async fn task_offer(&self, o: &TaskOffer<'_>) -> Result<(), StoreError> {
        let q = statement(pg_sql!("task_offer"))
            .bind(o.worker.0.clone())
            .bind(o.queue.to_string())
            .bind(i32::try_from(o.slots).unwrap_or(i32::MAX))
            .bind(o.kinds.to_vec())
            .bind(ms(o.lease).max(1))
            .bind(o.listener_pid)
            .bind(ms(o.ttl));
        self.execute(q).await?;
        Ok(())
    }

    pub(in crate::store) async fn task_offers_renew(
        &self,
        worker: &WorkerId,
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        let q = statement(pg_sql!("task_offers_renew"))
            .bind(worker.0.clone())
            .bind(ms(ttl));
        self.execute(q).await?;
        Ok(())
    }

    pub(in crate::store) async fn task_offers_withdraw(
        &self,
        worker: &WorkerId,
    ) -> Result<(), StoreError> {
        let q = statement(pg_sql!("task_offers_withdraw")).bind(worker.0.clone());
        self.execute(q).await?;
        Ok(())
    }

    pub(in crate::store) async fn tasks_pushed_release(
        &self,
        worker: &WorkerId,
        held: &[TaskId],
    ) -> Result<Vec<TaskId>, StoreError> {
        let held: Vec<i64> = held.iter().map(|id| id.0).collect();
        let q = statement(pg_sql!("tasks_pushed_release"))
            .bind(worker.0.clone())
            .bind(held);
        let rows = self.fetch_all(q).await?;
        rows.iter()
            .map(|r| Ok(TaskId(sqlx::Row::try_get(r, "id")?)))
            .collect()
    }
}
