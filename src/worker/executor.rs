//! One attempt of one task, from claim to its fenced end: the handler runs on
//! its own tokio task (a panic there is caught and recorded), under its
//! timeout, with its progress written at most every `progress_interval`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::files::AttemptFiles;
use super::pace::{Pace, Place};
use super::{Shared, Stop, StopReason, jitter};
use crate::kinds::{TaskContext, TaskError};
use crate::pacing::Retry;
use crate::store::{StoreError, TaskEnding};
use crate::tasks::{
    AttemptEnd, AttemptOutcome, Progress, Status, Task, TaskFile, end_attempt, snooze,
};
use crate::telemetry;

/// Starts a task this worker now holds (claimed, or pushed to it), leased
/// until `lease_until`: registered before its executor starts, so that the
/// next heartbeat renews it whatever the executor is doing; it then waits
/// in the backlog for a slot.
pub(super) fn start(
    shared: &Arc<Shared>,
    task: Task,
    lease_until: DateTime<Utc>,
    place: Place,
    pace: &Arc<Pace>,
    executors: &TaskTracker,
) {
    let stop = shared.running.insert(task.id, task.attempt, lease_until);
    pace.queued();
    executors.spawn(run(shared.clone(), task, stop, place, pace.clone()));
}

/// Runs one claimed attempt once it gets a slot, and records how it ended.
/// Holds the slot while the handler runs, and its place until the end is
/// written.
async fn run(shared: Arc<Shared>, task: Task, stop: Arc<Stop>, place: Place, pace: Arc<Pace>) {
    let span = tracing::info_span!(
        "task",
        task.token = %task.token,
        task.kind = %task.kind,
        task.attempt = task.attempt,
        worker.id = %shared.id,
    );
    async {
        let waited = task.started_at.unwrap_or(task.run_at) - task.run_at;
        telemetry::task_picked_up(&task.kind, waited.to_std().unwrap_or_default());
        let (ran, took) = match started(&pace, &stop).await {
            Some(slot) => {
                // `errand bench` times pickups to this line.
                tracing::debug!("attempt started");
                let started = std::time::Instant::now();
                let ran = attempt(&shared, &task, &stop).await;
                let took = started.elapsed();
                // The handler is done: its slot takes the next task while
                // the end is written.
                pace.finished(slot, took);
                (ran, took)
            }
            None => (unstarted(stop.reason()), Duration::ZERO),
        };
        match ran {
            Some(ran) => record(&shared, &task, ran, took).await,
            None => tracing::warn!("lease lost: this attempt stopped and wrote nothing more"),
        }
        shared.running.remove(task.id, &stop);
        drop(place);
    }
    .instrument(span)
    .await
}

/// A slot for the attempt, once one is free; `None` if the attempt was
/// stopped first (its lease lost, a cancel, the grace of a shutdown over).
async fn started(pace: &Pace, stop: &Stop) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        slot = pace.slot() => Some(slot),
        () = stop.token.cancelled() => {
            pace.dropped();
            None
        }
    }
}

/// How an attempt stopped before it started went.
fn unstarted(reason: Option<StopReason>) -> Option<Ran> {
    let outcome = match reason {
        Some(StopReason::CancelRequested) => AttemptOutcome::Cancelled,
        Some(StopReason::Shutdown | StopReason::Timeout) => AttemptOutcome::shut_down(),
        Some(StopReason::LeaseLost) | None => return None,
    };
    Some(Ran::without_files(outcome))
}

/// How an attempt went.
struct Ran {
    outcome: AttemptOutcome,
    /// The handler's last progress report, if not written yet.
    progress: Option<Progress>,
    /// The files it stored: the task's outputs, if it completed.
    outputs: Vec<TaskFile>,
}

impl Ran {
    fn without_files(outcome: AttemptOutcome) -> Ran {
        Ran {
            outcome,
            progress: None,
            outputs: Vec::new(),
        }
    }
}

/// Runs the handler: how it went. `None` when the lease was lost and
/// nothing may be written.
async fn attempt(shared: &Shared, task: &Task, stop: &Stop) -> Option<Ran> {
    if task.cancel_requested_at.is_some() {
        // Cancel was asked while an earlier attempt ran and that attempt
        // ended otherwise: honour it now rather than run again.
        return Some(Ran::without_files(AttemptOutcome::Cancelled));
    }
    let Some(kind) = shared.registry.get(&task.kind) else {
        // Workers claim only the kinds they know; a registry changed under
        // a running worker is the only way here.
        let message = format!("kind {:?} is not registered on this worker", task.kind);
        return Some(Ran::without_files(AttemptOutcome::Failed {
            message,
            retryable: false,
        }));
    };
    let timeout = task
        .timeout_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map_or(kind.policy.timeout, Duration::from_millis);

    let (progress_tx, mut progress_rx) = watch::channel::<Option<Progress>>(None);
    let files = Arc::new(AttemptFiles::new(shared.files.clone(), task));
    let ctx = TaskContext::new(
        task.token,
        task.attempt,
        stop.token.clone(),
        progress_tx,
        shared.state.clone(),
    )
    .with_files(files.clone());
    let mut handler = tokio::spawn(
        kind.start(task.payload.clone(), ctx)
            .instrument(tracing::Span::current()),
    );
    let finished = watch_handler(shared, task, stop, &mut handler, timeout, &mut progress_rx).await;
    // Asked to stop, the handler sees it through its context and gets
    // `cancel_grace` (or what its kind needs to stop, if longer: a command's
    // kill grace) to return; then it is aborted.
    let result = match finished {
        Some(result) => result,
        None => {
            stopped(
                &mut handler,
                shared.settings.cancel_grace.max(kind.stop_grace()),
            )
            .await
        }
    };
    // The handler's context (the sender) is gone by now, so ask the value
    // itself whether it is news.
    let latest = progress_rx.borrow_and_update();
    let unwritten = latest.has_changed().then(|| latest.clone()).flatten();
    drop(latest);
    outcome(stop.reason(), result, timeout).map(|outcome| Ran {
        outcome,
        progress: unwritten,
        outputs: files.outputs(),
    })
}

type HandlerResult = Result<Result<serde_json::Value, TaskError>, JoinError>;

/// Waits for the handler to end, writing its progress at most every
/// `progress_interval`, until it ends (`Some`), is asked to stop, or runs
/// out of time (`None`).
async fn watch_handler(
    shared: &Shared,
    task: &Task,
    stop: &Stop,
    handler: &mut JoinHandle<Result<serde_json::Value, TaskError>>,
    timeout: Duration,
    progress_rx: &mut watch::Receiver<Option<Progress>>,
) -> Option<HandlerResult> {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut progress_tick = tokio::time::interval(shared.settings.progress_interval);
    progress_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            result = &mut *handler => return Some(result),
            _ = stop.token.cancelled() => return None,
            _ = &mut deadline => {
                stop.stop(StopReason::Timeout);
                return None;
            }
            _ = progress_tick.tick() => {
                if progress_rx.has_changed().unwrap_or(false) {
                    let progress = progress_rx.borrow_and_update().clone();
                    if let Some(progress) = progress {
                        write_progress(shared, task, stop, &progress).await;
                    }
                }
            }
        }
    }
}

/// Gives a handler that was asked to stop `grace` to return, then aborts it.
async fn stopped(
    handler: &mut JoinHandle<Result<serde_json::Value, TaskError>>,
    grace: Duration,
) -> HandlerResult {
    match tokio::time::timeout(grace, &mut *handler).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(?grace, "the handler ignored its stop request; aborted");
            handler.abort();
            handler.await
        }
    }
}

/// What an attempt's end means, given why it was stopped (if it was).
fn outcome(
    reason: Option<StopReason>,
    result: HandlerResult,
    timeout: Duration,
) -> Option<AttemptOutcome> {
    match (reason, result) {
        (Some(StopReason::LeaseLost), _) => None,
        // A result that arrived is kept, whatever asked it to stop meanwhile.
        (_, Ok(Ok(value))) => Some(AttemptOutcome::Succeeded(value)),
        (Some(StopReason::CancelRequested), _) => Some(AttemptOutcome::Cancelled),
        (Some(StopReason::Timeout), result) => {
            let detail = match result {
                Ok(Err(e)) if e != TaskError::cancelled() => Some(e.message),
                _ => None,
            };
            Some(AttemptOutcome::timed_out(timeout, detail))
        }
        (Some(StopReason::Shutdown), _) => Some(AttemptOutcome::shut_down()),
        (None, Ok(Err(e))) if e.snoozed().is_some() => e.snoozed().map(AttemptOutcome::Snoozed),
        (None, Ok(Err(e))) => Some(AttemptOutcome::Failed {
            message: e.message,
            retryable: e.retryable,
        }),
        (None, Err(join)) => Some(AttemptOutcome::Failed {
            message: panic_message(join),
            retryable: true,
        }),
    }
}

fn panic_message(join: JoinError) -> String {
    if !join.is_panic() {
        return "the handler was aborted".into();
    }
    let payload = join.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".into());
    format!("the handler panicked: {text}")
}

async fn write_progress(shared: &Shared, task: &Task, stop: &Stop, progress: &Progress) {
    match shared
        .store
        .task_progress(task.id, task.attempt, progress)
        .await
    {
        Ok(true) => {}
        // The row is no longer this attempt's: someone else owns the task now.
        Ok(false) => stop.stop(StopReason::LeaseLost),
        // Progress is best effort; the heartbeat decides about the lease.
        Err(e) => tracing::debug!(error = %e, "progress not written"),
    }
}

/// Writes how the attempt ended, fenced by its attempt number. While the
/// database is unreachable it tries again, for as long as the lease is ours;
/// after that the rescuer takes over.
async fn record(shared: &Shared, task: &Task, ran: Ran, took: std::time::Duration) {
    let policy = shared.registry.policy(&task.kind);
    let outcome = match ran.outcome {
        // Within the task's limits, or a failure that says which it passed.
        AttemptOutcome::Snoozed(after) => snooze(after, task.snoozes, &policy.snooze),
        outcome => outcome,
    };
    let mut retry = Retry::default();
    loop {
        let now = Utc::now();
        let mut end = AttemptEnd {
            progress: ran.progress.clone(),
            ..end_attempt(
                task.attempt,
                task.max_attempts,
                outcome.clone(),
                &policy.backoff,
                jitter(),
                now,
            )
        };
        if end.status == Status::Completed {
            // The task takes the files only if it completes.
            end.outputs = ran.outputs.clone();
        }
        let ending = TaskEnding {
            id: task.id,
            attempt: task.attempt,
            started_at: task.started_at,
            end,
        };
        // No answer: the writers are gone (the runtime is stopping).
        let gone = || Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        match shared.ender.submit(ending).await.unwrap_or_else(gone) {
            Ok(Some(ended)) => {
                telemetry::attempt_ended(&ended.kind, ended.status.as_str(), took);
                if ended.is_done() {
                    telemetry::task_finished(&ended.kind, ended.status.as_str());
                }
                match &ended.error {
                    Some(error) => tracing::info!(status = %ended.status, error, "attempt ended"),
                    None => tracing::info!(status = %ended.status, "attempt ended"),
                }
                return;
            }
            Ok(None) => {
                tracing::warn!("attempt was no longer current; its outcome was discarded");
                return;
            }
            Err(e)
                if e.is_transient()
                    && shared
                        .running
                        .holds_lease(task.id, task.attempt, Utc::now()) =>
            {
                let delay = retry.failed();
                tracing::warn!(error = %e, retry_in = ?delay, "could not record the attempt's end");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record the attempt's end; the rescuer will");
                return;
            }
        }
    }
}
