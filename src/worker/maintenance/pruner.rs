//! The pruner: every `retention.interval`, deletes finished tasks past
//! their retention (`retention.completed`, `retention.failed`) and expired
//! idempotency keys, at most `retention.batch` rows per statement (a full
//! batch is followed at once by another), and forgets workers not heard
//! from for one lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Service;
use crate::config::RetentionSettings;
use crate::pacing::pause;
use crate::store::{Store, StoreError};
use crate::tasks::Status;

/// Deletes what is past its time.
pub struct Pruner {
    store: Store,
    retention: RetentionSettings,
    /// A worker not heard from for this long is gone.
    worker_lease: Duration,
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub tasks: u64,
    pub keys: u64,
    pub workers: u64,
}

impl Pruner {
    pub fn new(store: Store, retention: RetentionSettings, worker_lease: Duration) -> Pruner {
        Pruner {
            store,
            retention,
            worker_lease,
        }
    }

    /// One pass as of `now`: a batch of tasks, a batch of keys, and the
    /// dead workers.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<Pruned, StoreError> {
        let before = |keep: Duration| {
            now - chrono::Duration::from_std(keep).unwrap_or(chrono::TimeDelta::MAX)
        };
        let cutoffs: Vec<(Status, DateTime<Utc>)> = Status::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(|s| match s {
                Status::Completed => (s, before(self.retention.completed)),
                _ => (s, before(self.retention.failed)),
            })
            .collect();
        let batch = self.retention.batch;
        let pruned = Pruned {
            tasks: self.store.task_prune(&cutoffs, batch).await?,
            keys: self.store.idempotency_prune(now, batch).await?,
            workers: self.store.worker_prune(before(self.worker_lease)).await?,
        };
        if pruned != Pruned::default() {
            tracing::info!(
                tasks = pruned.tasks,
                keys = pruned.keys,
                workers = pruned.workers,
                "deleted what was past its retention"
            );
        }
        Ok(pruned)
    }
}

impl Service for Pruner {
    const NAME: &'static str = "pruner";

    async fn run_once(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let pruned = self.prune(now).await?;
        let full = self.retention.batch as u64;
        Ok(pruned.tasks >= full || pruned.keys >= full)
    }

    async fn next_pass(&mut self, shutdown: &CancellationToken) -> bool {
        pause(self.retention.interval, shutdown).await
    }
}
