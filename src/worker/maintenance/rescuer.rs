//! The rescuer: every `worker.rescue_interval`, running tasks whose lease
//! expired are re-queued with backoff (a "worker lost" entry in their
//! history), or end `dropped` when no attempt is left. One node does a pass
//! at a time (an advisory lock on Postgres, the write lock on SQLite); a
//! pass handles at most `worker.rescue_batch` tasks, so claims never stall
//! behind it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Service;
use crate::kinds::Registry;
use crate::pacing::pause;
use crate::store::{Store, StoreError};
use crate::tasks::{AttemptOutcome, Task, end_attempt};

/// Finds and rescues tasks whose worker was lost.
pub struct Rescuer {
    store: Store,
    /// Each kind's backoff for the re-queued attempt.
    registry: Arc<Registry>,
    interval: Duration,
    batch: usize,
}

impl Rescuer {
    /// A pass every `interval`, of at most `batch` tasks.
    pub fn new(store: Store, registry: Arc<Registry>, interval: Duration, batch: usize) -> Rescuer {
        Rescuer {
            store,
            registry,
            interval,
            batch,
        }
    }

    /// One pass as of `now`: the tasks it rescued.
    pub async fn rescue(&self, now: DateTime<Utc>) -> Result<Vec<Task>, StoreError> {
        let rescued = self
            .store
            .task_rescue_expired(now, self.batch, |task| {
                end_attempt(
                    task.attempt,
                    task.max_attempts,
                    AttemptOutcome::lease_expired(),
                    &self.registry.policy(&task.kind).backoff,
                    crate::worker::jitter(),
                    now,
                )
            })
            .await?;
        for task in &rescued {
            tracing::warn!(
                task.token = %task.token,
                task.kind = %task.kind,
                task.attempt = task.attempt,
                status = %task.status,
                "rescued a task whose worker was lost"
            );
        }
        Ok(rescued)
    }
}

impl Service for Rescuer {
    const NAME: &'static str = "rescuer";
    type Error = StoreError;

    async fn run_once(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.rescue(now).await?.len() >= self.batch)
    }

    async fn next_pass(&mut self, shutdown: &CancellationToken) -> bool {
        pause(self.interval, shutdown).await
    }
}
