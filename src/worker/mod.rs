//! The worker: claims tasks, runs them, keeps their leases alive, and hands
//! them back on shutdown ([`Worker`]); and the maintenance services that
//! run beside it ([`Rescuer`], [`Pruner`], [`CallbackOutbox`], [`Expirer`],
//! [`Scheduler`]).
//!
//! - `claim`: per queue, a loop that waits for a free slot and a wake-up
//!   (NOTIFY, or the poll fallback), then claims a batch in one statement,
//!   of the kinds this process can run.
//! - `executor`: one attempt: the handler on its own tokio task (so a panic
//!   is caught), its timeout, throttled progress writes, and the fenced end.
//! - `heartbeat`: renews all leases in one statement and delivers cancel
//!   requests; stops tasks whose lease was lost.
//! - `push`: on Postgres, a queue that ran dry offers its idle slots, and
//!   new tasks come straight to them from their insert (no claim); pushes
//!   this worker never heard of are handed back.
//! - `maintenance`: the rescuer, the pruner, the callback outbox, the
//!   expirer, the scheduler.
//!
//! Uses `store`, `tasks`, `kinds`, `config` and `pacing`. Every loop has the
//! same shape: wait for its event or deadline (`pacing::wait`), one bounded
//! pass, errors logged and backed off (`pacing::Retry`), never a return
//! before shutdown.

mod claim;
mod ender;
mod executor;
mod files;
mod heartbeat;
mod maintenance;
mod pace;
mod push;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{QueueSettings, QueueSpec, WorkerSettings};
use crate::files::Files;
use crate::kinds::{Registry, State};
use crate::store::Store;
use crate::tasks::{TaskId, WorkerId, WorkerInfo};
use pace::Pace;

pub use maintenance::{CallbackOutbox, Expirer, Pruner, Rescuer, Scheduler, Service, drive};

/// Why a running attempt is being stopped. The first reason given wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    /// A client asked for it: the task ends `cancelled`.
    CancelRequested,
    /// The attempt ran out of time: a retryable failure.
    Timeout,
    /// This process is shutting down: the task is handed back.
    Shutdown,
    /// The lease was lost (rescued, or not renewed in time): someone else may
    /// run the task now, so this attempt must write nothing more.
    LeaseLost,
}

/// The stop signal of one running attempt.
#[derive(Default)]
struct Stop {
    reason: OnceLock<StopReason>,
    token: CancellationToken,
}

impl Stop {
    fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }
}

/// What the worker holds for one running attempt.
struct Held {
    attempt: i32,
    /// Until when the lease is known to be ours, by the last renewal.
    lease_until: DateTime<Utc>,
    stop: Arc<Stop>,
}

/// The attempts this process is running, shared by the claim loops, the
/// executors and the heartbeat. The lock is never held across an `.await`.
#[derive(Default)]
struct Running {
    held: Mutex<HashMap<TaskId, Held>>,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Held>> {
        // A panic while holding this lock would be a bug in a few lines of
        // map bookkeeping; the map itself stays consistent, so go on.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, id: TaskId, attempt: i32, lease_until: DateTime<Utc>) -> Arc<Stop> {
        let stop = Arc::new(Stop::default());
        self.lock().insert(
            id,
            Held {
                attempt,
                lease_until,
                stop: stop.clone(),
            },
        );
        stop
    }

    fn holds(&self, id: TaskId) -> bool {
        self.lock().contains_key(&id)
    }

    /// Forgets the attempt whose stop signal is `stop`. (After a snooze,
    /// this process may claim the task again, under the same attempt
    /// number, before the snoozed attempt's executor is done: that one must
    /// not take the new one's place away.)
    fn remove(&self, id: TaskId, stop: &Arc<Stop>) {
        let mut held = self.lock();
        if held.get(&id).is_some_and(|h| Arc::ptr_eq(&h.stop, stop)) {
            held.remove(&id);
        }
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn attempts(&self) -> Vec<(TaskId, i32)> {
        self.lock().iter().map(|(id, h)| (*id, h.attempt)).collect()
    }

    /// Whether attempt `attempt` of `id` still holds its lease at `now`.
    fn holds_lease(&self, id: TaskId, attempt: i32, now: DateTime<Utc>) -> bool {
        self.lock()
            .get(&id)
            .is_some_and(|h| h.attempt == attempt && h.lease_until > now)
    }

    fn stop_all(&self, reason: StopReason) {
        for held in self.lock().values() {
            held.stop.stop(reason);
        }
    }
}

/// What a worker runs with.
pub struct WorkerParts {
    pub store: Store,
    pub files: Files,
    /// The kinds it runs (and claims).
    pub registry: Arc<Registry>,
    /// The application's state, for every handler.
    pub state: State,
    pub settings: WorkerSettings,
    pub queues: Vec<ServedQueue>,
}

/// One worker process's worth of workers: slots per queue, sharing one
/// heartbeat.
pub struct Worker {
    shared: Arc<Shared>,
    queues: Vec<ServedQueue>,
}

/// A queue this worker serves.
#[derive(Debug, Clone)]
pub struct ServedQueue {
    pub name: String,
    /// Tasks of it this process runs at once.
    pub slots: usize,
    /// Most tasks of it running at once across all workers.
    pub global_limit: Option<usize>,
}

impl ServedQueue {
    /// The queues of `specs`, each with its slots (or `default_slots`) and
    /// the global limit `[queues.NAME]` gives it.
    pub fn from_settings(
        specs: &[QueueSpec],
        default_slots: usize,
        limits: &BTreeMap<String, QueueSettings>,
    ) -> Vec<ServedQueue> {
        specs
            .iter()
            .map(|q| ServedQueue {
                name: q.name.clone(),
                slots: q.slots.unwrap_or(default_slots).max(1),
                global_limit: limits.get(&q.name).and_then(|l| l.global_limit),
            })
            .collect()
    }
}

/// What the claim loops, executors and heartbeat share.
struct Shared {
    id: WorkerId,
    store: Store,
    /// Tasks' input and output files.
    files: Files,
    registry: Arc<Registry>,
    /// The kinds it claims: those it can run.
    kinds: Vec<String>,
    /// The application's state, handed to every handler.
    state: State,
    settings: WorkerSettings,
    running: Running,
    /// Writes ended attempts, in batches.
    ender: ender::Ender,
    /// How this process shows in the workers view.
    info: WorkerInfo,
    /// Each queue's slots and backlog, by name.
    paces: HashMap<String, Arc<Pace>>,
    /// Whether new tasks may be pushed to this worker (`worker.push`, on a
    /// store that pushes).
    pushes: bool,
    /// The backend of this process's listening connection, once the tasks
    /// pushed before it connected are handed back: what offers name. `None`
    /// while not listening.
    listener: watch::Sender<Option<i32>>,
}

impl Shared {
    /// This worker as the workers view shows it now.
    fn info(&self, now: DateTime<Utc>) -> WorkerInfo {
        WorkerInfo {
            heartbeat_at: now,
            running: self.running.len() as i64,
            ..self.info.clone()
        }
    }
}

impl Worker {
    /// A worker serving its queues, running the kinds of its registry with
    /// the application's state.
    pub fn new(parts: WorkerParts) -> Worker {
        let WorkerParts {
            store,
            files,
            registry,
            state,
            settings,
            queues,
        } = parts;
        let (id, host) = worker_id();
        let now = Utc::now();
        let info = WorkerInfo {
            id: id.clone(),
            host,
            pid: i64::from(std::process::id()),
            queues: queues
                .iter()
                .map(|q| (q.name.clone(), q.slots as i64))
                .collect(),
            concurrency: queues.iter().map(|q| q.slots as i64).sum(),
            started_at: now,
            heartbeat_at: now,
            running: 0,
        };
        let paces = queues
            .iter()
            .map(|q| (q.name.clone(), Pace::new(q.slots, &settings)))
            .collect();
        Worker {
            shared: Arc::new(Shared {
                id,
                ender: ender::ender(store.clone(), &settings),
                pushes: settings.push && store.pushes_tasks(),
                paces,
                listener: watch::Sender::new(None),
                store,
                files,
                kinds: registry.runnable(),
                registry,
                state,
                settings,
                running: Running::default(),
                info,
            }),
            queues,
        }
    }

    pub fn id(&self) -> &WorkerId {
        &self.shared.id
    }

    /// Runs until `shutdown`, then shuts down gracefully: stop claiming at
    /// once; give running tasks `worker.shutdown_grace`; then ask them to
    /// stop, and hand back (re-queue or drop) whatever has not ended.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared;
        let executors = TaskTracker::new();
        let loops = TaskTracker::new();
        let heartbeat_stop = CancellationToken::new();
        tracing::info!(
            worker.id = %shared.id,
            queues = ?self.queues,
            "worker started"
        );
        // Best effort: the heartbeat registers it again if this fails.
        if let Err(e) = shared.store.worker_upsert(&shared.info(Utc::now())).await {
            tracing::warn!(error = %e, "could not register this worker yet");
        }
        let pushes = shared
            .pushes
            .then(|| shared.store.pushes(&shared.id))
            .flatten();
        let taking = pushes.map(|pushes| {
            tokio::spawn(push::run(
                shared.clone(),
                pushes,
                executors.clone(),
                shutdown.clone(),
            ))
        });
        for queue in self.queues {
            loops.spawn(claim::run(
                shared.clone(),
                queue,
                executors.clone(),
                shutdown.clone(),
            ));
        }
        let heartbeat = tokio::spawn(heartbeat::run(shared.clone(), heartbeat_stop.clone()));

        shutdown.cancelled().await;
        loops.close();
        loops.wait().await;
        if let Some(taking) = taking {
            // No task is taken from now on; once the offers are gone, every
            // task pushed here is written, and those not taken go back.
            let _ = taking.await;
            if let Err(e) = shared.store.task_offers_withdraw(&shared.id).await {
                tracing::warn!(error = %e, "could not withdraw this worker's offers; they lapse");
            }
            push::hand_back(&shared, &CancellationToken::new()).await;
        }
        executors.close();
        let running = shared.running.len();
        if running > 0 {
            tracing::info!(
                running,
                grace = ?shared.settings.shutdown_grace,
                "shutting down: waiting for running tasks"
            );
        }
        if tokio::time::timeout(shared.settings.shutdown_grace, executors.wait())
            .await
            .is_err()
        {
            tracing::info!(
                running = shared.running.len(),
                "shutdown grace is over: stopping and releasing the tasks still running"
            );
            shared.running.stop_all(StopReason::Shutdown);
            executors.wait().await;
        }
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        if let Err(e) = shared.store.worker_delete(&shared.id).await {
            tracing::warn!(error = %e, "could not unregister this worker; maintenance will");
        }
        tracing::info!(worker.id = %shared.id, "worker stopped");
    }
}

/// `host-pid-random` (unique across the cluster and readable in a
/// listing), and the host.
fn worker_id() -> (WorkerId, String) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let random = getrandom::u32().unwrap_or(0) & 0xffff;
    let id = WorkerId(format!("{host}-{}-{random:04x}", std::process::id()));
    (id, host)
}

/// A random number in 0..1 for retry jitter.
pub(crate) fn jitter() -> f64 {
    // 53 random bits: exactly what an f64 holds.
    (getrandom::u64().unwrap_or(0) >> 11) as f64 / (1u64 << 53) as f64
}
