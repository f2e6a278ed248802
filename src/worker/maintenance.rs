//! Maintenance, on every `errand worker` and `errand serve`:
//!
//! - the rescuer: every `worker.rescue_interval` it finds running tasks whose
//!   lease expired (their worker was killed, froze or lost the database) and
//!   re-queues them with backoff, or ends them `dropped` when no attempt is
//!   left. An advisory lock keeps two nodes from doing the same pass; each
//!   pass is one bounded batch, so claims never stall behind it;
//! - retention: every `retention.interval` it deletes finished tasks past
//!   their retention, and expired idempotency keys, in batches of
//!   `retention.batch`;
//! - it forgets workers whose heartbeat stopped.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{FIRST_DELAY, jitter, next_delay, pause};
use crate::config::{RetentionSettings, WorkerSettings};
use crate::kinds::Registry;
use crate::store::{Store, StoreError};
use crate::tasks::{AttemptOutcome, Status, Task, end_attempt};

/// The maintenance loop of one process.
pub struct Maintenance {
    store: Store,
    registry: Arc<Registry>,
    settings: WorkerSettings,
    retention: RetentionSettings,
}

impl Maintenance {
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        settings: WorkerSettings,
        retention: RetentionSettings,
    ) -> Maintenance {
        Maintenance {
            store,
            registry,
            settings,
            retention,
        }
    }

    /// Runs passes until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut delay = FIRST_DELAY;
        let mut wait = self.settings.rescue_interval;
        let mut last_cleanup: Option<tokio::time::Instant> = None;
        while pause(wait, &shutdown).await {
            if last_cleanup.is_none_or(|at| at.elapsed() >= self.retention.interval) {
                last_cleanup = Some(tokio::time::Instant::now());
                if let Err(e) = self.clean_up(Utc::now(), &shutdown).await {
                    tracing::warn!(error = %e, "clean-up pass failed");
                }
            }
            wait = match self.run_once(Utc::now()).await {
                // A full batch: more may be waiting.
                Ok(rescued) if rescued.len() >= self.settings.rescue_batch => FIRST_DELAY,
                Ok(_) => {
                    delay = FIRST_DELAY;
                    self.settings.rescue_interval
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "rescue pass failed");
                    delay = next_delay(delay);
                    delay
                }
            };
        }
    }

    /// Retention and forgetting dead workers, as of `now`: batch after batch
    /// until nothing is left. Returns how many tasks it deleted.
    pub async fn clean_up(
        &self,
        now: DateTime<Utc>,
        shutdown: &CancellationToken,
    ) -> Result<u64, StoreError> {
        let before = |keep: std::time::Duration| {
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
        let mut deleted = 0;
        while !shutdown.is_cancelled() {
            let n = self
                .store
                .task_prune(&cutoffs, self.retention.batch)
                .await?;
            deleted += n;
            if n < self.retention.batch as u64 {
                break;
            }
            // Let claims and heartbeats in between batches.
            tokio::task::yield_now().await;
        }
        if deleted > 0 {
            tracing::info!(deleted, "deleted finished tasks past their retention");
        }
        let mut keys = 0;
        while !shutdown.is_cancelled() {
            let n = self
                .store
                .idempotency_prune(now, self.retention.batch)
                .await?;
            keys += n;
            if n < self.retention.batch as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
        if keys > 0 {
            tracing::info!(keys, "forgot expired idempotency keys");
        }
        let forgotten = self.store.worker_prune(before(self.settings.lease)).await?;
        if forgotten > 0 {
            tracing::info!(forgotten, "forgot workers whose heartbeat stopped");
        }
        Ok(deleted)
    }

    /// One rescue pass as of `now`; returns the tasks it rescued.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<Vec<Task>, StoreError> {
        let rescued = self
            .store
            .task_rescue_expired(now, self.settings.rescue_batch, |task| {
                end_attempt(
                    task.attempt,
                    task.max_attempts,
                    AttemptOutcome::lease_expired(),
                    &self.registry.policy(&task.kind).backoff,
                    jitter(),
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
