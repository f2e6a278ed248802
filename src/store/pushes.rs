//! Pushes (Postgres): a new task handed to an idle worker in its insert's
//! own commit, so that its handler starts without a claim statement and
//! its commit. A worker whose queue ran dry offers its free slots
//! ([`Store::task_offer`]), which every process hears of
//! (`errand_offered`, [`OfferBoard`]); an insert of an offered queue seats
//! new tasks on live offers, writing each running and leased to that
//! worker, and sends the worker the row on `errand_pushed`
//! (tasks_insert_seated.sql); this process's listener hands it to the
//! worker as a [`Push`], in order, on a channel of its own that never
//! drops one.
//!
//! A push whose notification is lost (the listener's connection dropped
//! just then) leaves a task running on a worker that doesn't know it: the
//! worker hands such tasks back ([`Store::tasks_pushed_release`]) each time
//! its listener is connected again, before it offers anew, and when it
//! stops. SQLite has no pushes: its workers claim.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Backend, Store, StoreError, TaskOffer};
use crate::tasks::{
    ErrorEntry, Progress, Status, Task, TaskFiles, TaskId, TaskRecord, TaskToken, WorkerId,
};

/// What a worker hears of the tasks pushed to it, in the order it happened.
#[derive(Debug)]
pub enum Push {
    /// This process listens, on the connection of backend `pid`: offers
    /// name it, so that a task is seated only where someone will hear of
    /// it. Pushes to this worker made before may have been missed.
    Listening { pid: i32 },
    /// The listener lost its connection: offers naming it seat nothing
    /// any more.
    Lost,
    /// A task pushed to this worker, as inserted: running, its attempt 1.
    Task(Box<Task>),
    /// A task pushed to this worker whose row was too large to come with
    /// the notification: read it ([`Store::tasks_get_by_ids`]).
    Unread(TaskId),
}

/// The workers of this process that hear of their pushes, by worker id,
/// and the listener's connection, if it has one.
#[derive(Default)]
pub(super) struct PushSinks(Mutex<Sinks>);

#[derive(Default)]
struct Sinks {
    by_worker: HashMap<String, mpsc::UnboundedSender<Push>>,
    /// The listening backend, while connected.
    listening: Option<i32>,
}

impl PushSinks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sinks> {
        // A panic while holding this lock would leave the map whole.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A worker's channel: it hears at once whether the listener listens.
    fn register(&self, worker: &WorkerId) -> mpsc::UnboundedReceiver<Push> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut sinks = self.lock();
        if let Some(pid) = sinks.listening {
            let _ = tx.send(Push::Listening { pid });
        }
        sinks.by_worker.insert(worker.0.clone(), tx);
        rx
    }

    /// Tells every worker that the listener listens on backend `pid`
    /// (`Some`) or lost its connection (one that went away is forgotten).
    pub(super) fn listening(&self, pid: Option<i32>) {
        let mut sinks = self.lock();
        sinks.listening = pid;
        let push = || pid.map_or(Push::Lost, |pid| Push::Listening { pid });
        sinks.by_worker.retain(|_, sink| sink.send(push()).is_ok());
    }

    /// Hands a worker of this process the task of an `errand_pushed`
    /// notification, `<worker id> <row as JSON>`; a push to a worker of
    /// another process is left alone unread.
    pub(super) fn deliver(&self, payload: &str) {
        let Some((worker, row)) = payload.split_once(' ') else {
            return;
        };
        let mut sinks = self.lock();
        let Some(sink) = sinks.by_worker.get(worker) else {
            return;
        };
        let push = match pushed(row) {
            Ok(push) => push,
            Err(e) => {
                tracing::warn!(error = %e, "a pushed task's notification could not be read");
                return;
            }
        };
        if sink.send(push).is_err() {
            sinks.by_worker.remove(worker);
        }
    }
}

/// The queues this process has lately heard an offer for (`errand_offered`,
/// sent when a worker offers idle slots, each time its heartbeat renews
/// them, and when it withdraws them): only their new tasks go through the
/// seating insert, whose plan costs every insert more; the others are
/// inserted as before, and claimed. Being wrong either way costs time,
/// never a task. (A process that just connected seats nothing until it
/// hears an offer: within a worker's `heartbeat_interval`.)
#[derive(Default)]
pub(super) struct OfferBoard(Mutex<HashMap<String, HashMap<String, Instant>>>);

impl OfferBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Instant>>> {
        // A panic while holding this lock would leave the map whole.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A worker's offer for a queue stands for so long (0: withdrawn):
    /// `<ms> <worker> <queue>`.
    pub(super) fn offered(&self, payload: &str) {
        let mut parts = payload.splitn(3, ' ');
        let (Some(ms), Some(worker), Some(queue)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let Ok(ms) = ms.parse::<u64>() else {
            return;
        };
        let now = Instant::now();
        let mut board = self.lock();
        let workers = board.entry(queue.to_string()).or_default();
        workers.insert(worker.to_string(), now + Duration::from_millis(ms));
        workers.retain(|_, until| *until > now);
        board.retain(|_, workers| !workers.is_empty());
    }

    /// Whether `queue` may have offers now.
    pub(super) fn may_seat(&self, queue: &str) -> bool {
        let now = Instant::now();
        self.lock()
            .get(queue)
            .is_some_and(|workers| workers.values().any(|until| *until > now))
    }
}

/// The task of a notification: its row, or only its id (also when the
/// row can't be read here: the worker then reads it from the table).
fn pushed(row: &str) -> Result<Push, StoreError> {
    let value: Value =
        serde_json::from_str(row).map_err(|e| StoreError::corrupt("pushed task", e))?;
    let id = value.get("id").and_then(Value::as_i64);
    if value.get("token").is_some()
        && let Ok(row) = serde_json::from_value::<PushedRow>(value)
    {
        return Ok(Push::Task(Box::new(row.into())));
    }
    let id = id.ok_or_else(|| StoreError::corrupt("pushed task", std::fmt::Error))?;
    Ok(Push::Unread(TaskId(id)))
}

/// A task's row as Postgres's `row_to_json` writes it (columns by name,
/// times in RFC 3339, JSON columns as JSON).
#[derive(Deserialize)]
struct PushedRow {
    id: i64,
    token: TaskToken,
    kind: String,
    queue: String,
    priority: i32,
    status: Status,
    progress_fraction: f64,
    progress_message: Option<String>,
    attempt: i32,
    max_attempts: i32,
    snoozes: i32,
    owner: String,
    product: Option<String>,
    payload: Value,
    result: Option<Value>,
    error: Option<String>,
    errors: Vec<ErrorEntry>,
    depends_on: Vec<TaskToken>,
    created_at: DateTime<Utc>,
    run_at: DateTime<Utc>,
    start_by: Option<DateTime<Utc>>,
    schedule: Option<String>,
    scheduled_for: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    cancel_requested_at: Option<DateTime<Utc>>,
    timeout_ms: Option<i64>,
    callback_url: Option<String>,
    files: TaskFiles,
    lease_expires_at: Option<DateTime<Utc>>,
    worker_id: Option<String>,
}

impl From<PushedRow> for Task {
    fn from(r: PushedRow) -> Task {
        Task {
            id: TaskId(r.id),
            record: TaskRecord {
                token: r.token,
                kind: r.kind,
                queue: r.queue,
                priority: r.priority,
                status: r.status,
                progress: Progress {
                    fraction: r.progress_fraction,
                    message: r.progress_message,
                },
                attempt: r.attempt,
                max_attempts: r.max_attempts,
                snoozes: r.snoozes,
                owner: r.owner,
                product: r.product,
                payload: r.payload,
                result: r.result,
                error: r.error,
                errors: r.errors,
                depends_on: r.depends_on,
                created_at: r.created_at,
                run_at: r.run_at,
                start_by: r.start_by,
                schedule: r.schedule,
                scheduled_for: r.scheduled_for,
                started_at: r.started_at,
                finished_at: r.finished_at,
            },
            cancel_requested_at: r.cancel_requested_at,
            timeout_ms: r.timeout_ms,
            callback_url: r.callback_url,
            files: r.files,
            lease_expires_at: r.lease_expires_at,
            worker_id: r.worker_id,
        }
    }
}

impl Store {
    /// Whether new tasks can be pushed to this store's idle workers
    /// (Postgres); if not, workers only claim.
    pub fn pushes_tasks(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Whether this process has lately heard of an offer of idle slots for
    /// `queue`: its inserts then try to seat that queue's new tasks.
    pub fn heard_offer(&self, queue: &str) -> bool {
        self.offers.may_seat(queue)
    }

    /// What `worker` hears of the tasks pushed to it, from now on, while
    /// this process's listener runs ([`Store::run_listener`]). `None`
    /// where tasks are not pushed.
    pub fn pushes(&self, worker: &WorkerId) -> Option<mpsc::UnboundedReceiver<Push>> {
        if !self.pushes_tasks() {
            return None;
        }
        Some(self.pushes.register(worker))
    }

    /// Offers `offer.slots` free slots of a queue to new tasks (replacing
    /// this worker's last offer for it). A no-op where tasks are not pushed.
    pub async fn task_offer(&self, offer: &TaskOffer<'_>) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Postgres(b) => b.task_offer(offer).await,
            Backend::Sqlite(_) => Ok(()),
        }
    }

    /// `worker`'s offers stand for `ttl` more.
    pub async fn task_offers_renew(
        &self,
        worker: &WorkerId,
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Postgres(b) => b.task_offers_renew(worker, ttl).await,
            Backend::Sqlite(_) => Ok(()),
        }
    }

    /// Withdraws every offer of `worker`; once this returns, every task
    /// pushed to it is written (and will be heard of, or handed back).
    pub async fn task_offers_withdraw(&self, worker: &WorkerId) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Postgres(b) => b.task_offers_withdraw(worker).await,
            Backend::Sqlite(_) => Ok(()),
        }
    }

    /// Hands back the tasks pushed to `worker` that it does not hold
    /// (`held`): each is queued again as if never pushed (its first attempt
    /// never started), and wakes its queue's workers. Returns their ids.
    pub async fn tasks_pushed_release(
        &self,
        worker: &WorkerId,
        held: &[TaskId],
    ) -> Result<Vec<TaskId>, StoreError> {
        match &self.backend {
            Backend::Postgres(b) => b.tasks_pushed_release(worker, held).await,
            Backend::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// The tasks with these ids that exist, in the order of `ids`.
    pub async fn tasks_get_by_ids(&self, ids: &[TaskId]) -> Result<Vec<Task>, StoreError> {
        dispatch!(self, b => b.tasks_by_ids(ids).await)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sinks_for(worker: &str) -> (PushSinks, mpsc::UnboundedReceiver<Push>) {
        let sinks = PushSinks::default();
        let rx = sinks.register(&WorkerId(worker.into()));
        (sinks, rx)
    }

    #[test]
    fn a_worker_hears_whether_the_listener_listens_even_if_it_came_later() {
        let sinks = PushSinks::default();
        let mut early = sinks.register(&WorkerId("w-1".into()));
        assert!(early.try_recv().is_err(), "not listening yet");
        sinks.listening(Some(4242));
        let mut late = sinks.register(&WorkerId("w-2".into()));
        for rx in [&mut early, &mut late] {
            assert!(matches!(rx.try_recv(), Ok(Push::Listening { pid: 4242 })));
        }
        sinks.listening(None);
        assert!(matches!(late.try_recv(), Ok(Push::Lost)));
    }

    #[test]
    fn a_pushed_row_reaches_its_worker_as_the_task_postgres_wrote() {
        let (sinks, mut rx) = sinks_for("w-1");
        let row = json!({
            "id": 7, "token": "0193a0f2-4c5e-7d3a-9b1c-2d3e4f506172", "kind": "sleep",
            "queue": "default", "priority": 2, "status": "running",
            "progress_fraction": 0, "progress_message": null, "attempt": 1, "max_attempts": 3,
            "snoozes": 0, "start_by": null, "schedule": null, "scheduled_for": null,
            "owner": "alice", "product": null, "payload": {"seconds": 0.5}, "result": null,
            "error": null, "errors": [], "depends_on": [],
            "created_at": "2026-12-06T02:10:11.123456+00:00",
            "run_at": "2026-12-06T02:10:11.123456+00:00",
            "started_at": "2026-12-06T02:10:11.123456+00:00", "finished_at": null,
            "cancel_requested_at": null, "timeout_ms": 1500, "callback_url": null,
            "files": {"inputs": [], "outputs": []},
            "lease_expires_at": "2026-12-06T02:10:41.123456+00:00", "worker_id": "w-1",
            "pushed": true, "watched": false, "has_dependents": false, "pending_parents": 0
        });
        sinks.deliver(&format!("w-2 {row}"));
        assert!(
            rx.try_recv().is_err(),
            "another worker's push is not this one's"
        );
        sinks.deliver(&format!("w-1 {row}"));
        let Ok(Push::Task(task)) = rx.try_recv() else {
            panic!("the task")
        };
        assert_eq!(task.id, TaskId(7));
        assert_eq!(task.status, Status::Running);
        assert_eq!((task.attempt, task.max_attempts), (1, 3));
        assert_eq!(task.payload, json!({"seconds": 0.5}));
        assert_eq!(task.timeout_ms, Some(1500));
        assert_eq!(task.worker_id.as_deref(), Some("w-1"));
        assert_eq!(
            task.lease_expires_at.unwrap() - task.started_at.unwrap(),
            chrono::Duration::seconds(30)
        );
    }

    #[test]
    fn only_queues_lately_offered_are_seated() {
        let board = OfferBoard::default();
        assert!(!board.may_seat("default"), "nothing heard");
        board.offered("60000 w-1 default");
        assert!(board.may_seat("default"));
        assert!(!board.may_seat("other"));
        board.offered("0 w-1 other");
        assert!(!board.may_seat("other"), "an offer that lapsed");
        board.offered("60000 w-2 default");
        board.offered("0 w-1 default");
        assert!(board.may_seat("default"), "w-2's offer still stands");
        board.offered("0 w-2 default");
        assert!(!board.may_seat("default"), "both withdrawn");
        board.offered("garbled");
        assert!(!board.may_seat("garbled"));
    }

    #[test]
    fn a_row_too_large_to_come_along_is_named_by_id() {
        let (sinks, mut rx) = sinks_for("w-1");
        sinks.deliver(r#"w-1 {"id": 42}"#);
        assert!(matches!(rx.try_recv(), Ok(Push::Unread(TaskId(42)))));
        sinks.deliver(r#"w-1 {"id": 43, "token": "not a token"}"#);
        assert!(
            matches!(rx.try_recv(), Ok(Push::Unread(TaskId(43)))),
            "a row that can't be read here is read from the table"
        );
        sinks.deliver("w-1 not json");
        assert!(rx.try_recv().is_err(), "nothing for a notification unread");
    }
}
