//! The heartbeat: every `worker.heartbeat_interval`, renew the leases of all
//! running attempts in one statement. The answer also says which have a
//! cancel request (delivered to their handlers), and which are no longer
//! ours (stopped, writing nothing more). A cancel notification for this
//! worker makes it beat at once.

use std::sync::Arc;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Shared, StopReason};
use crate::pacing::{Woken, wait};
use crate::store::{StoreError, StoreEvent};

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut events = shared.store.subscribe();
    let interval = shared.settings.heartbeat_interval;
    // The first beat at once, then one per interval, and one whenever a
    // cancel is requested for a task of this worker.
    let mut next = Instant::now();
    loop {
        let cancel_for_me = |event: &StoreEvent| match event {
            StoreEvent::CancelRequested { worker } => *worker == shared.id.0,
            other => *other == StoreEvent::Resync,
        };
        match wait(&mut events, next, &stop, cancel_for_me).await {
            Woken::Stopped => return,
            Woken::Deadline => next = Instant::now() + interval,
            Woken::Event => {}
        }
        if let Err(e) = run_once(&shared).await {
            tracing::warn!(worker.id = %shared.id, error = %e, "heartbeat failed");
        }
    }
}

/// One beat. Whatever happens, attempts whose lease has run out by this
/// process's own clock are stopped: after that the rescuer may hand the task
/// to another worker, and two live attempts must never overlap.
pub(super) async fn run_once(shared: &Shared) -> Result<(), StoreError> {
    let attempts = shared.running.attempts();
    let now = Utc::now();
    let lease_until = now + shared.settings.lease;
    let renewed = shared
        .store
        .task_heartbeat(&shared.id, &attempts, lease_until)
        .await;
    {
        let mut held = shared.running.lock();
        if let Ok(renewed) = &renewed {
            for (id, attempt) in &attempts {
                let Some(h) = held.get_mut(id).filter(|h| h.attempt == *attempt) else {
                    continue; // ended meanwhile
                };
                match renewed
                    .iter()
                    .find(|r| r.id == *id && r.attempt == *attempt)
                {
                    Some(r) => {
                        h.lease_until = lease_until;
                        if r.cancel_requested {
                            h.stop.stop(StopReason::CancelRequested);
                        }
                    }
                    None => h.stop.stop(StopReason::LeaseLost),
                }
            }
        }
        let now = Utc::now();
        for h in held.values().filter(|h| h.lease_until <= now) {
            h.stop.stop(StopReason::LeaseLost);
        }
    }
    crate::telemetry::tasks_running(shared.running.len());
    renewed?;
    // The workers view: this process is alive, running so many tasks.
    shared.store.worker_upsert(&shared.info(now)).await?;
    if shared.listener.borrow().is_some() {
        // This worker's offers of idle slots stand a while longer; if not,
        // they lapse, and its queues' tasks come by claims meanwhile.
        let ttl = super::push::offer_ttl(shared.settings.heartbeat_interval);
        if let Err(e) = shared.store.task_offers_renew(&shared.id, ttl).await {
            tracing::debug!(error = %e, "offers not renewed");
        }
    }
    Ok(())
}
