//! Pushes, on Postgres only: a worker's offers of free slots (made,
//! renewed, withdrawn) and the hand-back of tasks pushed to it that it
//! never heard of. The insert that seats new tasks on offers is
//! `tasks_insert.sql`; the notification that hands a worker its task is
//! the insert trigger of migration 0012.

use super::SqlStore;
use crate::store::StoreError;
use crate::store::params::TaskOffer;
use crate::store::postgres::Pg;
use crate::tasks::{TaskId, WorkerId};

/// Milliseconds, as the statements take durations.
fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqlStore<Pg> {
    pub(in crate::store) async fn task_offer(&self, o: &TaskOffer<'_>) -> Result<(), StoreError> {
        let q = sqlx::query(pg_sql!("task_offer"))
            .persistent(Self::keeps())
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
        let q = sqlx::query(pg_sql!("task_offers_renew"))
            .persistent(Self::keeps())
            .bind(worker.0.clone())
            .bind(ms(ttl));
        self.execute(q).await?;
        Ok(())
    }

    pub(in crate::store) async fn task_offers_withdraw(
        &self,
        worker: &WorkerId,
    ) -> Result<(), StoreError> {
        let q = sqlx::query(pg_sql!("task_offers_withdraw"))
            .persistent(Self::keeps())
            .bind(worker.0.clone());
        self.execute(q).await?;
        Ok(())
    }

    pub(in crate::store) async fn tasks_pushed_release(
        &self,
        worker: &WorkerId,
        held: &[TaskId],
    ) -> Result<Vec<TaskId>, StoreError> {
        let held: Vec<i64> = held.iter().map(|id| id.0).collect();
        let q = sqlx::query(pg_sql!("tasks_pushed_release"))
            .persistent(Self::keeps())
            .bind(worker.0.clone())
            .bind(held);
        let rows = self.fetch_all(q).await?;
        rows.iter()
            .map(|r| Ok(TaskId(sqlx::Row::try_get(r, "id")?)))
            .collect()
    }

    fn keeps() -> bool {
        <Pg as crate::store::dialect::Dialect>::keeps_statements()
    }
}
