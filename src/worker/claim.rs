//! The claim loop of one queue: wait for a free slot, claim a batch in one
//! short statement, start each task, and when the queue runs dry wait for a
//! wake-up (NOTIFY) or the poll interval.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ServedQueue, Shared, executor};
use crate::pacing::{Retry, Woken, pause, wait};
use crate::store::{StoreError, StoreEvent, TaskClaim};

pub(super) async fn run(
    shared: Arc<Shared>,
    queue: ServedQueue,
    executors: TaskTracker,
    shutdown: CancellationToken,
) {
    let semaphore = Arc::new(Semaphore::new(queue.slots));
    let mut events = shared.store.subscribe();
    let mut retry = Retry::default();
    loop {
        // A free slot first: there is no point claiming what can't run.
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = semaphore.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return, // never closed
            },
        };
        let mut permits = vec![first];
        while permits.len() < shared.settings.claim_batch {
            match semaphore.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        // Wake-ups that came before this claim are answered by it.
        while events.try_recv().is_ok() {}
        let wanted = permits.len();
        match run_once(&shared, &queue, permits, &executors).await {
            // A full batch: there may be more waiting.
            Ok(claimed) if claimed == wanted => retry.succeeded(),
            Ok(_) => {
                retry.succeeded();
                // Until this queue may have work: a notification for it, a
                // resync, or the poll interval.
                let deadline = Instant::now() + shared.settings.poll_interval;
                let woke = wait(&mut events, deadline, &shutdown, |event| match event {
                    StoreEvent::Queued { queue: q } => *q == queue.name,
                    other => *other == StoreEvent::Resync,
                });
                if woke.await == Woken::Stopped {
                    return;
                }
            }
            Err(e) => {
                let delay = retry.failed();
                tracing::warn!(queue = queue.name, error = %e, retry_in = ?delay, "claim failed");
                if !pause(delay, &shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Claims up to one task per permit and starts them; unused permits go
/// back. Returns how many were claimed.
async fn run_once(
    shared: &Arc<Shared>,
    queue: &ServedQueue,
    mut permits: Vec<OwnedSemaphorePermit>,
    executors: &TaskTracker,
) -> Result<usize, StoreError> {
    let now = Utc::now();
    let lease_until = now + shared.settings.lease;
    let tasks = shared
        .store
        .task_claim(&TaskClaim {
            queue: &queue.name,
            worker: &shared.id,
            kinds: Some(&shared.kinds),
            limit: permits.len(),
            lease_until,
            now,
            global_limit: queue.global_limit,
        })
        .await?;
    let claimed = tasks.len();
    for task in tasks {
        // Registered before its executor starts, so the next heartbeat
        // renews it whatever the executor is doing.
        let stop = shared.running.insert(task.id, task.attempt, lease_until);
        let permit = permits.pop().expect("claimed no more tasks than permits");
        executors.spawn(executor::run(shared.clone(), task, stop, permit));
    }
    Ok(claimed)
}
