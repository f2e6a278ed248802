//! Maintenance: the rescuer. Every `worker.rescue_interval` it finds running
//! tasks whose lease expired (their worker was killed, froze or lost the
//! database) and re-queues them with backoff, or ends them `dropped` when no
//! attempt is left. An advisory lock keeps two nodes from doing the same pass;
//! each pass is one bounded batch, so claims never stall behind it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{FIRST_DELAY, jitter, next_delay, pause};
use crate::config::WorkerSettings;
use crate::kinds::Registry;
use crate::store::{Store, StoreError};
use crate::tasks::{AttemptOutcome, Task, end_attempt};

/// The maintenance loop of one process.
pub struct Maintenance {
    store: Store,
    registry: Arc<Registry>,
    settings: WorkerSettings,
}

impl Maintenance {
    pub fn new(store: Store, registry: Arc<Registry>, settings: WorkerSettings) -> Maintenance {
        Maintenance {
            store,
            registry,
            settings,
        }
    }

    /// Runs passes until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut delay = FIRST_DELAY;
        let mut wait = self.settings.rescue_interval;
        while pause(wait, &shutdown).await {
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
