//! The expirer: every `worker.rescue_interval`, tasks whose start deadline
//! (`start_by`) passed before any attempt of theirs counted end `expired`,
//! at most `worker.rescue_batch` a pass (a full batch is followed at once
//! by another). A claim never takes such a task meanwhile; the dependency
//! triggers cancel its waiting children, as for any bad end.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Service;
use crate::pacing::pause;
use crate::store::{Store, StoreError};
use crate::tasks::Task;

/// Ends the tasks that were not started in time.
pub struct Expirer {
    store: Store,
    interval: Duration,
    batch: usize,
}

impl Expirer {
    /// A pass every `interval`, of at most `batch` tasks.
    pub fn new(store: Store, interval: Duration, batch: usize) -> Expirer {
        Expirer {
            store,
            interval,
            batch,
        }
    }

    /// One pass as of `now`: the tasks it ended.
    pub async fn expire(&self, now: DateTime<Utc>) -> Result<Vec<Task>, StoreError> {
        let expired = self.store.tasks_expire(now, self.batch).await?;
        for task in &expired {
            crate::telemetry::task_finished(&task.kind, task.status.as_str());
            tracing::info!(
                task.token = %task.token,
                task.kind = %task.kind,
                start_by = ?task.start_by,
                "task expired: not started by its start deadline"
            );
        }
        Ok(expired)
    }
}

impl Service for Expirer {
    const NAME: &'static str = "expirer";
    type Error = StoreError;

    async fn run_once(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.expire(now).await?.len() >= self.batch)
    }

    async fn next_pass(&mut self, shutdown: &CancellationToken) -> bool {
        pause(self.interval, shutdown).await
    }
}
