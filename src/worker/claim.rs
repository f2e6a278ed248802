//! The claim loop of one queue: claim a batch in one short statement when
//! the queue's pace wants one (see `pace`: free slots, and short handlers'
//! tasks claimed ahead), start each task, and when the queue runs dry wait
//! for a wake-up (NOTIFY) or the poll interval.
//!
//! A task holds a slot while its handler runs; its end is then written in
//! the background (batched, see `ender`), so the slot takes the next task
//! at once.

use std::sync::Arc;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::pace::{Pace, Place};
use super::{ServedQueue, Shared, executor};
use crate::pacing::{Retry, Woken, pause, wait};
use crate::store::{StoreError, StoreEvent, TaskClaim};

pub(super) async fn run(
    shared: Arc<Shared>,
    queue: ServedQueue,
    executors: TaskTracker,
    shutdown: CancellationToken,
) {
    let pace = Pace::new(queue.slots, &shared.settings);
    let mut events = shared.store.subscribe();
    let mut retry = Retry::default();
    loop {
        let places = pace.places(pace.wanted());
        if places.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                () = pace.changed() => continue,
            }
        }
        // Wake-ups that came before this claim are answered by it.
        while events.try_recv().is_ok() {}
        let wanted = places.len();
        match run_once(&shared, &queue, &pace, places, &executors).await {
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

/// Claims up to one task per place and starts them; unused places go
/// back. Returns how many were claimed.
async fn run_once(
    shared: &Arc<Shared>,
    queue: &ServedQueue,
    pace: &Arc<Pace>,
    mut places: Vec<Place>,
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
            limit: places.len(),
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
        let place = places.pop().expect("claimed no more tasks than places");
        pace.queued();
        executors.spawn(executor::run(
            shared.clone(),
            task,
            stop,
            place,
            pace.clone(),
        ));
    }
    Ok(claimed)
}
