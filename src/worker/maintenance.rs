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
//! - it forgets workers whose heartbeat stopped;
//! - callbacks: when a task with a `callback_url` ends, it queues the task
//!   that delivers it (the task row is the outbox).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{FIRST_DELAY, jitter, next_delay, pause};
use crate::config::{RetentionSettings, WorkerSettings};
use crate::kinds::Registry;
use crate::kinds::{Callback, CallbackPayload, Kind as _};
use crate::store::StoreEvent;
use crate::store::{Store, StoreError};
use crate::tasks::{AttemptOutcome, NewTask, Status, Task, TaskToken, TaskView, end_attempt};
use serde_json::json;
use tokio::sync::broadcast;

/// How long the callback loop lets endings gather before a pass: passes
/// happen at most this often however fast tasks end.
const CALLBACK_GATHER: std::time::Duration = std::time::Duration::from_millis(100);

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
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
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

    /// Queues the callback deliveries of tasks that ended, until `shutdown`:
    /// soon after a task ends (the store's events; endings that come in a
    /// burst are served by one pass), and every rescue interval in case an
    /// event was missed.
    pub async fn run_callbacks(self: Arc<Self>, shutdown: CancellationToken) {
        let mut events = self.store.subscribe();
        let mut delay = FIRST_DELAY;
        loop {
            match self.queue_callbacks(Utc::now()).await {
                Ok(queued) if queued >= self.settings.rescue_batch => continue,
                Ok(_) => delay = FIRST_DELAY,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "could not queue callbacks");
                    if !pause(delay, &shutdown).await {
                        return;
                    }
                    delay = next_delay(delay);
                    continue;
                }
            }
            let tick = tokio::time::sleep(self.settings.rescue_interval);
            tokio::pin!(tick);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = &mut tick => break,
                    event = events.recv() => match event {
                        Ok(StoreEvent::Ended { .. } | StoreEvent::Resync)
                        | Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Closed) => {
                            (&mut tick).await;
                            break;
                        }
                    },
                }
            }
            // Let a burst of endings gather, then serve them with one pass.
            if !pause(CALLBACK_GATHER, &shutdown).await {
                return;
            }
            while events.try_recv().is_ok() {}
        }
    }

    /// One pass: queues a delivery task for each ended task with a
    /// `callback_url` whose callback was not queued yet. Returns how many.
    pub async fn queue_callbacks(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let policy = self.registry.policy(Callback::NAME);
        let queued = self
            .store
            .task_callbacks_enqueue(now, self.settings.rescue_batch, |task| NewTask {
                token: TaskToken::generate(),
                kind: Callback::NAME.into(),
                queue: policy.queue.clone(),
                priority: 0,
                status: Status::Queued,
                payload: json!(CallbackPayload {
                    task: task.token,
                    url: task.callback_url.clone().unwrap_or_default(),
                    // Fixed now, so every attempt carries the same id and body.
                    webhook_id: format!("msg_{}", TaskToken::generate()),
                    body: json!(TaskView::from(task.clone())),
                }),
                max_attempts: policy.max_attempts,
                timeout_ms: None,
                owner: task.owner.clone(),
                product: task.product.clone(),
                created_at: now,
                run_at: now,
                depends_on: Vec::new(),
                callback_url: None,
            })
            .await?;
        for delivery in &queued {
            tracing::debug!(task.token = %delivery.token, "callback delivery queued");
        }
        Ok(queued.len())
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
