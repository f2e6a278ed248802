//! Maintenance, on every `errand worker` and `errand serve`: five services,
//! each with its own settings, each a loop of bounded passes
//! (`run_once`) driven the same way ([`drive`]): a full batch is followed
//! at once by another, a failure is logged and backed off, and nothing but
//! shutdown ends the loop.
//!
//! - [`Rescuer`]: running tasks whose lease expired (their worker was
//!   killed, froze or lost the database) are re-queued with backoff, or end
//!   `dropped` when no attempt is left;
//! - [`Pruner`]: retention (finished tasks past it, expired idempotency
//!   keys) and workers whose heartbeat stopped;
//! - [`CallbackOutbox`]: a task with a `callback_url` that ended gets the
//!   task that delivers its callback (the task row is the outbox);
//! - [`Expirer`]: tasks not started by their start deadline end `expired`;
//! - [`Scheduler`]: schedules' due ticks make their tasks, once per tick
//!   across every process.
//!
//! Uses `store`, `tasks`, `kinds` (the callback kind's policy), `config`.

mod expirer;
mod outbox;
mod pruner;
mod rescuer;
mod scheduler;

use std::future::Future;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

pub use expirer::Expirer;
pub use outbox::CallbackOutbox;
pub use pruner::Pruner;
pub use rescuer::Rescuer;
pub use scheduler::Scheduler;

use crate::pacing::{Retry, pause};

/// One maintenance service: what a pass does, and how it waits for the
/// next.
pub trait Service: Send + Sync + 'static {
    /// Its name, in logs.
    const NAME: &'static str;
    /// Why a pass failed.
    type Error: std::fmt::Display + Send;

    /// One bounded pass as of `now`: whether it did a full batch (so more
    /// may be waiting).
    fn run_once(
        &mut self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Waits until the next pass is due; false on shutdown.
    fn next_pass(&mut self, shutdown: &CancellationToken) -> impl Future<Output = bool> + Send;

    /// Once, when the process shuts down, after the last pass.
    fn stopped(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Runs `service`'s passes until `shutdown`.
pub async fn drive<S: Service>(mut service: S, shutdown: CancellationToken) {
    passes(&mut service, &shutdown).await;
    service.stopped().await;
}

async fn passes<S: Service>(service: &mut S, shutdown: &CancellationToken) {
    let mut retry = Retry::default();
    while !shutdown.is_cancelled() {
        match service.run_once(Utc::now()).await {
            Ok(more) => {
                retry.succeeded();
                if more {
                    // Let claims and heartbeats in between batches.
                    tokio::task::yield_now().await;
                } else if !service.next_pass(shutdown).await {
                    return;
                }
            }
            Err(e) => {
                let delay = retry.failed();
                tracing::warn!(service = S::NAME, error = %e, retry_in = ?delay, "maintenance pass failed");
                if !pause(delay, shutdown).await {
                    return;
                }
            }
        }
    }
}
