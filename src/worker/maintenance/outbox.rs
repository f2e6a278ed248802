//! The callback outbox: a task with a `callback_url` that has ended gets a
//! task of the built-in kind `callback` that delivers its final JSON (the
//! task row is the outbox; the delivery and the mark that it was queued are
//! written in one transaction). A pass follows soon after a task ends (a
//! store event; a burst of endings is served by one pass) and at least every
//! `callbacks.outbox_interval`, in case an event was missed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Service;
use crate::kinds::{Callback, CallbackPayload, Kind as _};
use crate::pacing::{Woken, pause, wait};
use crate::store::{Store, StoreError, StoreEvent};
use crate::tasks::{KindPolicy, NewTask, Status, Task, TaskToken, TaskView};

/// How long endings may gather before a pass: passes happen at most this
/// often however fast tasks end.
const GATHER: Duration = Duration::from_millis(100);

/// Queues callback deliveries.
pub struct CallbackOutbox {
    store: Store,
    /// The `callback` kind's queue and attempts.
    policy: KindPolicy,
    interval: Duration,
    batch: usize,
    /// Subscribed when made, so that no ending between passes is missed.
    events: broadcast::Receiver<StoreEvent>,
}

impl CallbackOutbox {
    /// A pass at least every `interval`, of at most `batch` deliveries.
    pub fn new(
        store: Store,
        policy: KindPolicy,
        interval: Duration,
        batch: usize,
    ) -> CallbackOutbox {
        let events = store.subscribe();
        CallbackOutbox {
            store,
            policy,
            interval,
            batch,
            events,
        }
    }

    /// One pass as of `now`: the deliveries it queued.
    pub async fn queue(&self, now: DateTime<Utc>) -> Result<Vec<Task>, StoreError> {
        let queued = self
            .store
            .task_callbacks_enqueue(now, self.batch, |task| self.delivery(task, now))
            .await?;
        for delivery in &queued {
            tracing::debug!(task.token = %delivery.token, "callback delivery queued");
        }
        Ok(queued)
    }

    /// The task that delivers `task`'s callback.
    fn delivery(&self, task: &Task, now: DateTime<Utc>) -> NewTask {
        NewTask {
            token: TaskToken::generate(),
            kind: Callback::NAME.into(),
            queue: self.policy.queue.clone(),
            priority: 0,
            status: Status::Queued,
            payload: json!(CallbackPayload {
                task: task.token,
                url: task.callback_url.clone().unwrap_or_default(),
                // Fixed now, so every attempt carries the same id and body.
                webhook_id: format!("msg_{}", TaskToken::generate()),
                body: json!(TaskView::from(task.clone())),
            }),
            max_attempts: self.policy.max_attempts,
            timeout_ms: None,
            owner: task.owner.clone(),
            product: task.product.clone(),
            created_at: now,
            run_at: now,
            depends_on: Vec::new(),
            callback_url: None,
            inputs: Vec::new(),
            start_by: None,
            tick: None,
        }
    }
}

impl Service for CallbackOutbox {
    const NAME: &'static str = "callback outbox";
    type Error = StoreError;

    async fn run_once(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.queue(now).await?.len() >= self.batch)
    }

    async fn next_pass(&mut self, shutdown: &CancellationToken) -> bool {
        let deadline = Instant::now() + self.interval;
        let ended = |e: &StoreEvent| matches!(e, StoreEvent::Ended { .. } | StoreEvent::Resync);
        if wait(&mut self.events, deadline, shutdown, ended).await == Woken::Stopped {
            return false;
        }
        // Let a burst of endings gather, then serve them with one pass.
        let gathered = pause(GATHER, shutdown).await;
        while self.events.try_recv().is_ok() {}
        gathered
    }
}
