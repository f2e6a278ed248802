//! The claim loop of one queue: claim a batch in one short statement when
//! the queue's pace wants one (see `pace`: free slots, and short handlers'
//! tasks claimed ahead), start each task, and when the queue runs dry wait
//! for a wake-up (NOTIFY) or the poll interval, its idle slots on offer
//! to new tasks meanwhile (see `push`).
//!
//! A task holds a slot while its handler runs; its end is then written in
//! the background (batched, see `ender`), so the slot takes the next task
//! at once.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::pace::{Pace, Place};
use super::push::Offers;
use super::{ServedQueue, Shared, executor};
use crate::pacing::{Retry, Woken, pause, wait};
use crate::store::{StoreError, StoreEvent, TaskClaim};

pub(super) async fn run(
    shared: Arc<Shared>,
    queue: ServedQueue,
    executors: TaskTracker,
    shutdown: CancellationToken,
) {
    let pace = shared.paces[&queue.name].clone();
    let mut events = shared.store.subscribe();
    let mut offers = Offers::new(&shared, &queue);
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
            Ok(claimed) => {
                retry.succeeded();
                offers.claimed(claimed);
                // A full batch: there may be more waiting; else the queue
                // ran dry.
                if claimed < wanted {
                    let woke = idle(&shared, &queue, &pace, &mut events, &mut offers, &shutdown);
                    if woke.await == Woken::Stopped {
                        return;
                    }
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

/// Waits until this queue may have work (a notification for it, a resync,
/// or the poll interval). Meanwhile its idle slots are on offer, where new
/// tasks can be pushed, and offered again as they free up.
async fn idle(
    shared: &Shared,
    queue: &ServedQueue,
    pace: &Pace,
    events: &mut broadcast::Receiver<StoreEvent>,
    offers: &mut Offers,
    shutdown: &CancellationToken,
) -> Woken {
    let deadline = Instant::now() + shared.settings.poll_interval;
    loop {
        offers.offer(shared, &queue.name, pace).await;
        let for_this_queue = |event: &StoreEvent| match event {
            StoreEvent::Queued { queue: q } => *q == queue.name,
            other => *other == StoreEvent::Resync,
        };
        tokio::select! {
            woke = wait(events, deadline, shutdown, for_this_queue) => return woke,
            // Slots taken or freed (pushed tasks start and end here).
            () = pace.changed() => {}
            () = offers.listener_changed() => {}
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
        let place = places.pop().expect("claimed no more tasks than places");
        executor::start(shared, task, lease_until, place, pace, executors);
    }
    Ok(claimed)
}
