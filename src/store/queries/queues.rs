//! Queues an operator paused: no worker starts their tasks until they are
//! resumed (the claim and the seating insert look here).

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use crate::store::StoreError;
use crate::store::dialect::{Query, shared_queries};
use crate::tasks::Pause;

shared_queries! {
    pub(in crate::store) async fn queue_pause(
        &self,
        name: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Pause, StoreError> {
        let row = self.fetch_one(Self::sql(Query::QueuePause)
            .bind(name.to_string())
            .bind(by.to_string())
            .bind(D::time(now)))
            .await?;
        Ok(Pause {
            at: Self::time(&row, "paused_at")?,
            by: row.try_get("paused_by")?,
        })
    }

    pub(in crate::store) async fn queue_resume(&self, name: &str) -> Result<bool, StoreError> {
        let row = self.fetch_optional(Self::sql(Query::QueueResume).bind(name.to_string())).await?;
        Ok(row.is_some())
    }

    pub(in crate::store) async fn queue_pauses(&self) -> Result<Vec<(String, Pause)>, StoreError> {
        let rows = self.fetch_all(Self::sql(Query::QueuePauses)).await?;
        rows.iter()
            .map(|r| {
                let pause = Pause {
                    at: Self::time(r, "paused_at")?,
                    by: r.try_get("paused_by")?,
                };
                Ok((r.try_get("name")?, pause))
            })
            .collect()
    }
}
