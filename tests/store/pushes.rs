//! Pushes (Postgres only): a new task goes straight to a worker's live
//! offer of idle slots, written running and leased to it, and the worker
//! hears of it with the row; never more tasks than offered, never to an
//! offer whose listener is gone or that lapsed, never a kind it doesn't
//! run; and tasks pushed to a worker that it doesn't hold are handed back.
//! Each test runs straight on Postgres and through PgBouncer.

use std::time::Duration as StdDuration;

use chrono::Duration;
use errand::store::{Push, Store, TaskOffer};
use errand::tasks::{NewTask, Scope, Status, Task, TaskId, WorkerId};
use sqlx::{Connection as _, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::{common, new_task, t0};

/// A backend that stays connected while the test holds it: an offer's
/// listener.
pub struct Listener {
    conn: PgConnection,
    pid: i32,
}

impl Listener {
    pub async fn connect(url: &str) -> Listener {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        Listener { conn, pid }
    }
}

fn kinds(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| k.to_string()).collect()
}

/// Offers slots, and waits until this process has heard of it (its
/// listener must run: see [`Hearing`]).
async fn offer(store: &Store, worker: &WorkerId, slots: usize, kinds: &[String], pid: i32) {
    offer_for(store, worker, slots, kinds, pid, StdDuration::from_secs(60)).await;
    common::eventually("the offer heard of", StdDuration::from_secs(10), || async {
        store.heard_offer("default").then_some(())
    })
    .await;
}

async fn offer_for(
    store: &Store,
    worker: &WorkerId,
    slots: usize,
    kinds: &[String],
    pid: i32,
    ttl: StdDuration,
) {
    store
        .task_offer(&TaskOffer {
            worker,
            queue: "default",
            kinds,
            slots,
            lease: StdDuration::from_secs(30),
            listener_pid: pid,
            ttl,
        })
        .await
        .unwrap();
}

/// New tasks due now, in one statement.
async fn insert(store: &Store, n: usize) -> Vec<Task> {
    let news: Vec<NewTask> = (0..n).map(|_| new_task("default", 0, t0(), 3)).collect();
    store
        .tasks_insert(&news, &Scope::everything(), None)
        .await
        .unwrap()
        .unwrap()
}

fn pushed_to(tasks: &[Task], worker: &WorkerId) -> usize {
    tasks
        .iter()
        .filter(|t| t.worker_id.as_deref() == Some(worker.0.as_str()))
        .count()
}

/// A worker hearing of its pushes through this process's listener, which
/// has said it listens (on backend `pid`).
struct Hearing {
    pushes: tokio::sync::mpsc::UnboundedReceiver<Push>,
    pid: i32,
    stop: CancellationToken,
    listener: tokio::task::JoinHandle<()>,
}

impl Hearing {
    async fn start(store: &Store, worker: &WorkerId) -> Hearing {
        let pushes = store.pushes(worker).expect("Postgres pushes tasks");
        let stop = CancellationToken::new();
        let listener = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move { store.run_listener(stop).await })
        };
        let mut hearing = Hearing {
            pushes,
            pid: 0,
            stop,
            listener,
        };
        let Push::Listening { pid } = hearing.next().await else {
            panic!("the listener says it listens first")
        };
        hearing.pid = pid;
        hearing
    }

    /// The next push the worker hears, within ten seconds.
    async fn next(&mut self) -> Push {
        tokio::time::timeout(StdDuration::from_secs(10), self.pushes.recv())
            .await
            .expect("a push within 10 s")
            .expect("the channel open")
    }

    async fn stop(self) {
        self.stop.cancel();
        self.listener.await.unwrap();
    }
}

/// The whole path: the worker's listener connects, the worker offers two
/// slots on it, a batch of three comes: two go to the worker, running,
/// attempt 1, leased, and it hears of each with the row as inserted; the
/// third waits, queued, and so does the next task (the offer is used up).
pub async fn new_tasks_go_to_a_live_offer_and_the_worker_hears_of_them(store: &Store, _: &str) {
    let worker = WorkerId("pushed-to".into());
    let mut hearing = Hearing::start(store, &worker).await;
    offer(store, &worker, 2, &kinds(&["sleep"]), hearing.pid).await;

    let inserted = insert(store, 3).await;
    for task in &inserted[..2] {
        assert_eq!(task.status, Status::Running, "{task:?}");
        assert_eq!(task.attempt, 1);
        assert_eq!(task.worker_id.as_deref(), Some("pushed-to"));
        assert_eq!(task.started_at, Some(task.created_at));
        assert_eq!(
            task.lease_expires_at,
            Some(task.created_at + Duration::seconds(30))
        );
        let Push::Task(heard) = hearing.next().await else {
            panic!("a pushed task")
        };
        assert_eq!(*heard, *task, "the worker hears of the row as written");
    }
    assert_eq!(inserted[2].status, Status::Queued);
    assert_eq!(
        (inserted[2].attempt, inserted[2].worker_id.clone()),
        (0, None)
    );
    let next = insert(store, 1).await;
    assert_eq!(next[0].status, Status::Queued, "the offer is used up");

    hearing.stop().await;
}

/// A row too large to travel in a notification (8,000 bytes) is pushed
/// all the same: the worker hears its id, and reads it.
pub async fn a_row_too_large_for_a_notification_is_heard_by_its_id(store: &Store, _: &str) {
    let worker = WorkerId("big".into());
    let mut hearing = Hearing::start(store, &worker).await;
    offer(store, &worker, 1, &kinds(&["sleep"]), hearing.pid).await;
    let big = NewTask {
        payload: serde_json::json!({"seconds": 0, "text": "x".repeat(10_000)}),
        ..new_task("default", 0, t0(), 3)
    };
    let pushed = common::insert_task(store, &big).await;
    assert_eq!(pushed.worker_id.as_deref(), Some("big"));
    let Push::Unread(id) = hearing.next().await else {
        panic!("only its id")
    };
    assert_eq!(id, pushed.id);
    assert_eq!(store.tasks_get_by_ids(&[id]).await.unwrap(), [pushed]);
    hearing.stop().await;
}

/// Only tasks that may start now, of a kind the worker runs, are pushed;
/// a task waiting for its run_at or for a parent is written as it is.
pub async fn only_tasks_due_now_of_kinds_the_worker_runs_are_pushed(store: &Store, url: &str) {
    let listener = Listener::connect(url).await;
    let worker = WorkerId("picky".into());
    let hearing = Hearing::start(store, &worker).await;
    offer(store, &worker, 5, &kinds(&["other"]), listener.pid).await;
    assert_eq!(
        pushed_to(&insert(store, 2).await, &worker),
        0,
        "not its kind"
    );

    offer(store, &worker, 5, &kinds(&["sleep", "other"]), listener.pid).await;
    let later = new_task("default", 0, t0() + Duration::seconds(60), 3);
    let delayed = common::insert_task(store, &later).await;
    assert_eq!(delayed.status, Status::Queued);
    assert_eq!(delayed.worker_id, None, "a delayed task waits for its time");
    let parent = insert(store, 1).await.remove(0);
    assert_eq!(parent.worker_id.as_deref(), Some("picky"));
    let child = NewTask {
        depends_on: vec![parent.token],
        ..new_task("default", 0, t0(), 3)
    };
    let child = common::insert_task(store, &child).await;
    assert_eq!(
        child.status,
        Status::Waiting,
        "a child waits for its parent"
    );
    drop(listener);
    hearing.stop().await;
}

/// An offer seats nothing once its listener is gone (nobody would hear of
/// the task), once it lapsed, or once withdrawn; a renewal revives one
/// that lapsed. And a process seats nothing while it has heard of no
/// offer (its own listener not connected yet): its tasks go in as ever.
pub async fn an_offer_seats_nothing_without_a_listener_or_once_lapsed(store: &Store, url: &str) {
    let worker = WorkerId("gone".into());
    let sleep = kinds(&["sleep"]);
    let live = Listener::connect(url).await;
    let minute = StdDuration::from_secs(60);
    offer_for(store, &worker, 5, &sleep, live.pid, minute).await;
    let unheard = pushed_to(&insert(store, 2).await, &worker);
    assert_eq!(unheard, 0, "not heard of");
    let hearing = Hearing::start(store, &worker).await;
    offer(store, &worker, 5, &sleep, live.pid).await;
    assert_eq!(pushed_to(&insert(store, 2).await, &worker), 2, "heard of");

    // Another worker whose listener is gone: its offer, heard of, keeps
    // this process trying to seat tasks; the insert itself must refuse.
    let other = WorkerId("dead".into());
    let listener = Listener::connect(url).await;
    let dead = listener.pid;
    listener.conn.close().await.unwrap();
    common::eventually("the backend to go", StdDuration::from_secs(10), || async {
        let mut conn = PgConnection::connect(url).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_get_activity($1)")
            .bind(dead)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        (n == 0).then_some(())
    })
    .await;
    offer(store, &other, 5, &sleep, dead).await;
    offer_for(store, &worker, 5, &sleep, live.pid, StdDuration::ZERO).await;
    let tasks = insert(store, 2).await;
    assert_eq!(pushed_to(&tasks, &other), 0, "listener gone");
    assert_eq!(pushed_to(&tasks, &worker), 0, "lapsed");
    store.task_offers_renew(&worker, minute).await.unwrap();
    common::eventually(
        "the renewal heard of",
        StdDuration::from_secs(10),
        || async {
            let renewed = pushed_to(&insert(store, 1).await, &worker);
            (renewed == 1).then_some(())
        },
    )
    .await;
    store.task_offers_withdraw(&worker).await.unwrap();
    assert_eq!(pushed_to(&insert(store, 2).await, &worker), 0, "withdrawn");
    hearing.stop().await;
}

/// Tasks the worker claims while its offer stands come off the offer, so
/// that it never gets more tasks than it has room for.
pub async fn a_claim_takes_its_tasks_off_the_workers_offer(store: &Store, url: &str) {
    let worker = WorkerId("claimer".into());
    insert(store, 2).await;
    let hearing = Hearing::start(store, &worker).await;
    let listener = Listener::connect(url).await;
    offer(store, &worker, 3, &kinds(&["sleep"]), listener.pid).await;
    let claimed = crate::suite::claim(store, "claimer", 5, t0() + Duration::seconds(1)).await;
    assert_eq!(claimed.len(), 2);
    assert_eq!(pushed_to(&insert(store, 3).await, &worker), 1, "3 - 2 left");
    hearing.stop().await;
}

/// However many inserts come at once, an offer seats at most its slots.
pub async fn concurrent_inserts_seat_no_more_than_offered(store: &Store, url: &str) {
    let worker = WorkerId("busy".into());
    let hearing = Hearing::start(store, &worker).await;
    let listener = Listener::connect(url).await;
    offer(store, &worker, 5, &kinds(&["sleep"]), listener.pid).await;
    let inserts: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { insert(&store, 2).await })
        })
        .collect();
    let mut tasks = Vec::new();
    for insert in inserts {
        tasks.extend(insert.await.unwrap());
    }
    let pushed = pushed_to(&tasks, &worker);
    assert!((1..=5).contains(&pushed), "{pushed} pushed of 5 offered");
    let queued = tasks.iter().filter(|t| t.status == Status::Queued).count();
    assert_eq!(pushed + queued, 24);
    hearing.stop().await;
}

/// The tasks pushed to a worker that it does not hold go back to the
/// queue as if never pushed (attempt 0, no error), and a claim takes them;
/// the tasks it holds, and tasks it claimed, stay as they are.
pub async fn pushed_tasks_not_held_are_handed_back(store: &Store, url: &str) {
    let worker = WorkerId("forgetful".into());
    insert(store, 1).await;
    let mine = crate::suite::claim(store, "forgetful", 1, t0()).await;
    let hearing = Hearing::start(store, &worker).await;
    let listener = Listener::connect(url).await;
    offer(store, &worker, 3, &kinds(&["sleep"]), listener.pid).await;
    let pushed = insert(store, 3).await;
    assert_eq!(pushed_to(&pushed, &worker), 3);

    let held = [pushed[0].id];
    let mut back = store.tasks_pushed_release(&worker, &held).await.unwrap();
    back.sort();
    assert_eq!(back, [pushed[1].id, pushed[2].id]);
    for task in &pushed[1..] {
        let read = store.task_get(task.token).await.unwrap().unwrap();
        assert_eq!(read.status, Status::Queued);
        assert_eq!((read.attempt, read.started_at), (0, None));
        assert_eq!((&read.worker_id, read.lease_expires_at), (&None, None));
        assert!(read.errors.is_empty());
    }
    for id in [pushed[0].id, mine[0].id] {
        let read = store.tasks_get_by_ids(&[id]).await.unwrap().remove(0);
        assert_eq!(read.status, Status::Running, "{id:?} stays");
    }
    let again = crate::suite::claim(store, "other", 5, t0() + Duration::seconds(1)).await;
    let mut ids: Vec<TaskId> = again.iter().map(|t| t.id).collect();
    ids.sort();
    assert_eq!(ids, [pushed[1].id, pushed[2].id]);
    assert!(again.iter().all(|t| t.attempt == 1));
    let none = store.tasks_pushed_release(&worker, &[]).await.unwrap();
    assert_eq!(
        none,
        [pushed[0].id],
        "the one no longer held; not those claimed elsewhere since"
    );
    hearing.stop().await;
}

/// The offers a worker killed outright leaves behind go with the workers
/// maintenance forgets; standing offers stay.
pub async fn lapsed_offers_are_pruned_with_silent_workers(store: &Store, url: &str) {
    let listener = Listener::connect(url).await;
    let sleep = kinds(&["sleep"]);
    let (gone, alive) = (WorkerId("killed".into()), WorkerId("idle".into()));
    offer_for(store, &gone, 2, &sleep, listener.pid, StdDuration::ZERO).await;
    offer_for(
        store,
        &alive,
        2,
        &sleep,
        listener.pid,
        StdDuration::from_secs(60),
    )
    .await;
    store
        .worker_prune(chrono::Utc::now() + Duration::seconds(1))
        .await
        .unwrap();
    let mut conn = PgConnection::connect(url).await.unwrap();
    let left: Vec<String> = sqlx::query_scalar("SELECT worker_id FROM task_offers")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, ["idle"]);
}
