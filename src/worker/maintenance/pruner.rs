//! The pruner: every `retention.interval`, deletes finished tasks past
//! their retention (`retention.completed`, `retention.failed`) and expired
//! idempotency keys, at most `retention.batch` rows per statement (a full
//! batch is followed at once by another), forgets workers not heard from
//! for one lease, and deletes files no task uses that expired (uploads
//! after `files.upload_ttl`, the files of deleted tasks) or were abandoned
//! half written (after `files.writing_timeout`), bytes first.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Service;
use crate::config::RetentionSettings;
use crate::files::{Files, FilesError};
use crate::pacing::pause;
use crate::store::Store;
use crate::tasks::Status;

/// Deletes what is past its time.
pub struct Pruner {
    store: Store,
    files: Files,
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
    /// Files no task uses that expired, or were abandoned half written.
    pub files: u64,
}

impl Pruner {
    pub fn new(
        store: Store,
        files: Files,
        retention: RetentionSettings,
        worker_lease: Duration,
    ) -> Pruner {
        Pruner {
            store,
            files,
            retention,
            worker_lease,
        }
    }

    /// One pass as of `now`: a batch of tasks, a batch of keys, the dead
    /// workers, and a batch of files (those of the tasks just deleted among
    /// them).
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<Pruned, FilesError> {
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
            files: self.files.prune(now, batch).await?,
        };
        if pruned != Pruned::default() {
            tracing::info!(
                tasks = pruned.tasks,
                keys = pruned.keys,
                workers = pruned.workers,
                files = pruned.files,
                "deleted what was past its retention"
            );
        }
        Ok(pruned)
    }
}

impl Service for Pruner {
    const NAME: &'static str = "pruner";
    type Error = FilesError;

    async fn run_once(&mut self, now: DateTime<Utc>) -> Result<bool, FilesError> {
        let pruned = self.prune(now).await?;
        let full = self.retention.batch as u64;
        Ok(pruned.tasks >= full || pruned.keys >= full || pruned.files >= full)
    }

    async fn next_pass(&mut self, shutdown: &CancellationToken) -> bool {
        pause(self.retention.interval, shutdown).await
    }
}
