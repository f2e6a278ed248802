//! Tasks pushed to this worker (Postgres; see `store::Push`): a claim loop
//! whose queue ran dry offers its idle slots ([`Offers`]); an insert seats
//! new tasks there, written running and leased to this worker, and the
//! listener hands each row to [`run`], which starts it as a claim would,
//! without the claim's statement and commit.
//!
//! The rule that keeps a task from running twice: a task pushed to this
//! worker that it never heard of (its listener's connection dropped just
//! then) is handed back to the queue ([`hand_back`]) each time the
//! listener connects again, before any offer names the new connection,
//! and when the worker stops; a task that a hand-back took back is never
//! started here afterwards.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::pace::Pace;
use super::{ServedQueue, Shared, executor};
use crate::pacing::{Retry, pause};
use crate::store::{Push, TaskOffer};
use crate::tasks::{Status, Task, TaskId};

/// Takes the tasks pushed to this worker until `stop`.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut pushes: mpsc::UnboundedReceiver<Push>,
    executors: TaskTracker,
    stop: CancellationToken,
) {
    // What the last hand-back took back: never to start here.
    let mut handed_back: HashSet<TaskId> = HashSet::new();
    loop {
        let push = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            push = pushes.recv() => push,
        };
        match push {
            None => return,
            Some(Push::Listening { pid }) => {
                handed_back = hand_back(&shared, &stop).await;
                tracing::debug!(
                    backend = pid,
                    handed_back = handed_back.len(),
                    "offers may name the listener now"
                );
                // Only now may offers name this connection.
                shared.listener.send_replace(Some(pid));
            }
            Some(Push::Lost) => {
                tracing::debug!("no offers while the listener is not connected");
                shared.listener.send_replace(None);
            }
            Some(Push::Task(task)) => take(&shared, *task, &handed_back, &executors, &stop).await,
            Some(Push::Unread(id)) => match shared.store.tasks_get_by_ids(&[id]).await {
                Ok(tasks) => {
                    for task in tasks {
                        take(&shared, task, &handed_back, &executors, &stop).await;
                    }
                }
                // Handed back when the listener next connects or this
                // worker stops, else rescued when its lease runs out.
                Err(e) => {
                    tracing::warn!(error = %e, task.id = id.0, "a pushed task could not be read")
                }
            },
        }
    }
}

/// Starts a task pushed to this worker, if it is still this worker's to
/// run: its first attempt, not held yet, not handed back. One still waiting
/// for a place when the worker stops is handed back with the others.
async fn take(
    shared: &Arc<Shared>,
    task: Task,
    handed_back: &HashSet<TaskId>,
    executors: &TaskTracker,
    stop: &CancellationToken,
) {
    let ours = task.status == Status::Running
        && task.attempt == 1
        && task.worker_id.as_deref() == Some(shared.id.0.as_str());
    if !ours || handed_back.contains(&task.id) || shared.running.holds(task.id) {
        return;
    }
    let Some(pace) = shared.paces.get(&task.queue) else {
        // Offers name only the queues this worker serves.
        tracing::warn!(
            queue = task.queue,
            "a task was pushed for a queue not served here"
        );
        return;
    };
    let lease_until = task
        .lease_expires_at
        .unwrap_or_else(|| Utc::now() + shared.settings.lease);
    tracing::debug!(task.id = task.id.0, task.token = %task.token, "pushed task taken");
    let place = tokio::select! {
        place = pace.place() => place,
        () = stop.cancelled() => return,
    };
    pace.pushed();
    executor::start(shared, task, lease_until, place, pace, executors);
}

/// Hands back every task pushed to this worker that it does not hold
/// (their notifications were missed): queued again, for any worker. Tries
/// a few times; what is still left is rescued when its lease runs out.
/// Returns what was handed back.
pub(super) async fn hand_back(shared: &Shared, stop: &CancellationToken) -> HashSet<TaskId> {
    let mut retry = Retry::default();
    for _ in 0..5 {
        let held: Vec<TaskId> = shared
            .running
            .attempts()
            .iter()
            .map(|(id, _)| *id)
            .collect();
        match shared.store.tasks_pushed_release(&shared.id, &held).await {
            Ok(ids) => {
                if !ids.is_empty() {
                    tracing::info!(
                        count = ids.len(),
                        "handed back tasks pushed to this worker that it never heard of"
                    );
                }
                return ids.into_iter().collect();
            }
            Err(e) => {
                let delay = retry.failed();
                tracing::warn!(error = %e, retry_in = ?delay, "could not hand back missed pushes");
                if !pause(delay, stop).await {
                    break;
                }
            }
        }
    }
    HashSet::new()
}

/// How long an offer stands without the heartbeat renewing it.
pub(super) fn offer_ttl(heartbeat: Duration) -> Duration {
    heartbeat * 3
}

/// One claim loop's offer of its queue's idle slots: written when the
/// queue runs dry, written again when slots free up and less than half of
/// them are still on offer, and never while the listener is not connected
/// (nobody would hear of a pushed task).
pub(super) struct Offers {
    /// Whether this queue's tasks may be pushed here at all.
    enabled: bool,
    listener: watch::Receiver<Option<i32>>,
    /// The offer last written: its listener, its slots, and the pushes
    /// counted when it was written.
    standing: Option<(i32, usize, usize)>,
}

impl Offers {
    pub(super) fn new(shared: &Shared, queue: &ServedQueue) -> Offers {
        Offers {
            // A queue with a global limit counts its running tasks in every
            // claim, which a push would bypass.
            enabled: shared.pushes && queue.global_limit.is_none(),
            listener: shared.listener.subscribe(),
            standing: None,
        }
    }

    /// The listener connected or lost its connection.
    pub(super) async fn listener_changed(&mut self) {
        if !self.enabled || self.listener.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// `n` tasks were claimed: the claim took as many from the offer.
    pub(super) fn claimed(&mut self, n: usize) {
        if let Some((_, slots, _)) = &mut self.standing {
            *slots = slots.saturating_sub(n);
        }
    }

    /// Offers the queue's idle slots, if that is worth a statement now.
    pub(super) async fn offer(&mut self, shared: &Shared, queue: &str, pace: &Pace) {
        let Some(pid) = *self.listener.borrow_and_update() else {
            self.standing = None;
            return;
        };
        let room = pace.idle_room();
        let left = match self.standing {
            Some((on, slots, pushes)) if on == pid => {
                slots.saturating_sub(pace.pushes().saturating_sub(pushes))
            }
            _ => 0,
        };
        if !self.enabled || room == 0 || left * 2 > room {
            return;
        }
        let offer = TaskOffer {
            worker: &shared.id,
            queue,
            kinds: &shared.kinds,
            slots: room,
            lease: shared.settings.lease,
            listener_pid: pid,
            ttl: offer_ttl(shared.settings.heartbeat_interval),
        };
        let pushes = pace.pushes();
        match shared.store.task_offer(&offer).await {
            Ok(()) => self.standing = Some((pid, room, pushes)),
            // Tasks then come by claims, as without offers.
            Err(e) => tracing::debug!(queue, error = %e, "could not offer idle slots"),
        }
    }
}
