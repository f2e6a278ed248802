//! Worker tests: claims, cancel, retries, timeouts, panics, and crash tests
//! that kill real `errand` processes (SIGKILL, SIGTERM, SIGSTOP) and restart
//! a real Postgres server. Short timings (1 s heartbeat, 3 s lease), and
//! conditions with deadlines instead of sleeps.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod bench;
mod files;
mod kinds;
mod pushes;
mod schedules;
mod snoozes;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{
    Backend, Client, Proc, Run, TestApp, TestDb, eventually, proc_env, proc_env_for_url, runs,
    test_settings,
};
use errand::app::Mode;
use errand::files::Files;
use errand::kinds::{Kind, Registry, TaskContext, TaskError};
use errand::store::Store;
use errand::tasks::{NewTask, Status, Task, TaskToken};
use errand::worker::{Rescuer, ServedQueue, Worker, WorkerParts, drive};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

on_both_stores!(
    two_worker_processes_drain_1000_tasks_running_each_once,
    chaos_every_task_completes_and_no_attempts_overlap,
    sigkilled_worker_task_with_no_attempts_left_is_dropped_in_time,
    sigterm_releases_running_tasks_before_exit,
    frozen_worker_resumed_after_its_lease_writes_nothing,
    always_failing_task_fails_after_exactly_max_attempts_with_backoff,
    permanent_failure_and_panic_are_recorded,
    task_over_its_timeout_fails_saying_so,
    handler_that_ignores_cancel_is_aborted_after_the_grace,
    graceful_stop_waits_for_short_tasks,
    global_limit_holds_across_worker_processes,
    sigterm_to_serve_releases_tasks_created_through_its_api,
);

/// Inserts `n` sleep tasks straight into the store.
async fn insert_sleeps(store: &Store, n: usize, seconds: f64, max_attempts: i32) -> Vec<TaskToken> {
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        let task = common::insert_task(
            store,
            &common::new_task("sleep", json!({"seconds": seconds}), max_attempts),
        )
        .await;
        tokens.push(task.token);
    }
    tokens
}

/// Counts of tasks by status, straight from the database.
async fn status_counts(db: &TestDb) -> HashMap<String, i64> {
    db.counts("SELECT status, count(*) FROM tasks GROUP BY status")
        .await
}

async fn task(store: &Store, token: TaskToken) -> Task {
    store
        .task_get(token)
        .await
        .unwrap()
        .expect("the task exists")
}

async fn wait_status(store: &Store, token: TaskToken, status: Status, timeout: Duration) -> Task {
    eventually(&format!("task {token} to be {status}"), timeout, || async {
        let t = task(store, token).await;
        (t.status == status).then_some(t)
    })
    .await
}

async fn two_worker_processes_drain_1000_tasks_running_each_once(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let env = proc_env(&db);
    let workers = [
        Proc::spawn(&["worker", "--concurrency", "8"], &env),
        Proc::spawn(&["worker", "--concurrency", "8"], &env),
    ];
    // Both are up before there is work, and the work (10 ms a task) takes
    // one worker longer than the other's poll interval: the first to look
    // can't drain it all alone.
    eventually(
        "both workers to register",
        Duration::from_secs(30),
        || async { (db.count("SELECT count(*) FROM workers").await == 2).then_some(()) },
    )
    .await;
    let tokens = insert_sleeps(&store, 1000, 0.01, 3).await;
    eventually(
        "1000 tasks to complete",
        Duration::from_secs(120),
        || async { (status_counts(&db).await.get("completed") == Some(&1000)).then_some(()) },
    )
    .await;

    let retried = db
        .count("SELECT count(*) FROM tasks WHERE attempt <> 1")
        .await;
    assert_eq!(retried, 0, "every task ran in exactly one attempt");
    let mut starts: HashMap<String, usize> = HashMap::new();
    for worker in &workers {
        for run in runs(worker, None) {
            *starts.entry(run.token).or_default() += 1;
        }
    }
    assert_eq!(starts.len(), 1000, "every task ran");
    assert!(starts.values().all(|n| *n == 1), "no task ran twice");
    for token in tokens {
        assert_eq!(starts.get(&token.to_string()), Some(&1));
    }
    let per_worker: Vec<usize> = workers.iter().map(|w| runs(w, None).len()).collect();
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "both workers took part: {per_worker:?}"
    );
}

/// Hundreds of short tasks drain through two workers while one of them is
/// SIGKILLed and restarted every couple of seconds. Every task completes,
/// and no two attempts of one task are ever live at the same time.
async fn chaos_every_task_completes_and_no_attempts_overlap(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let total = 300;
    insert_sleeps(&store, total, 0.1, 20).await;
    let env = proc_env(&db);
    let steady = Proc::spawn(&["worker", "--concurrency", "4"], &env);
    let mut victims: Vec<(Proc, Option<DateTime<Utc>>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut kills = 0;
    loop {
        let victim = Proc::spawn(&["worker", "--concurrency", "4"], &env);
        tokio::time::sleep(Duration::from_millis(1500 + (kills % 3) * 400)).await;
        let done = status_counts(&db)
            .await
            .get("completed")
            .copied()
            .unwrap_or(0);
        let mut victim = victim;
        victim.kill();
        victims.push((victim, Some(Utc::now())));
        kills += 1;
        if done as usize == total {
            break;
        }
        assert!(Instant::now() < deadline, "the chaos run took too long");
    }
    eventually(
        "every task to complete",
        Duration::from_secs(60),
        || async {
            (status_counts(&db).await.get("completed").copied() == Some(total as i64)).then_some(())
        },
    )
    .await;
    assert_eq!(
        status_counts(&db).await.len(),
        1,
        "nothing ended any other way"
    );

    let mut all: Vec<Run> = runs(&steady, None);
    for (victim, killed_at) in &victims {
        all.extend(runs(victim, *killed_at));
    }
    let mut by_task: HashMap<String, Vec<Run>> = HashMap::new();
    for run in all {
        by_task.entry(run.token.clone()).or_default().push(run);
    }
    assert_eq!(by_task.len(), total);
    let mut rerun = 0;
    for (token, mut runs) in by_task {
        runs.sort_by_key(|r| r.attempt);
        rerun += usize::from(runs.len() > 1);
        for pair in runs.windows(2) {
            let (earlier, later) = (&pair[0], &pair[1]);
            let earlier_end = earlier.ended.expect("steady attempts finish");
            assert!(
                later.started >= earlier_end,
                "task {token}: attempt {} started at {} while attempt {} was live until {}",
                later.attempt,
                later.started,
                earlier.attempt,
                earlier_end
            );
        }
    }
    assert!(kills >= 2, "the victim was killed {kills} times");
    assert!(
        rerun > 0,
        "some task must have been rescued and re-run for this test to mean anything"
    );
    eprintln!("chaos: {kills} kills, {rerun} tasks re-run after a kill");
}

async fn sigkilled_worker_task_with_no_attempts_left_is_dropped_in_time(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let default_timings = std::env::var("ERRAND_TEST_DEFAULT_TIMINGS").is_ok();
    let mut env = proc_env(&db);
    if default_timings {
        // For measuring the production figure: the compiled-in defaults.
        env.retain(|k, _| !k.starts_with("ERRAND__WORKER__"));
    }
    let token = insert_sleeps(&store, 1, 600.0, 1).await[0];
    let mut worker = Proc::spawn(&["worker"], &env);
    wait_status(&store, token, Status::Running, Duration::from_secs(10)).await;
    // The other worker serves another queue: only its rescuer matters here.
    let _rescuer = Proc::spawn(&["worker", "--queues", "elsewhere"], &env);
    let settings = errand::config::load(None, &env).unwrap();
    worker.kill();
    let killed = Instant::now();
    let dropped = wait_status(&store, token, Status::Dropped, Duration::from_secs(90)).await;
    let took = killed.elapsed();
    let bound = settings.worker.lease + settings.worker.rescue_interval;
    eprintln!(
        "rescued {took:?} after SIGKILL (lease {:?}, rescue interval {:?})",
        settings.worker.lease, settings.worker.rescue_interval
    );
    assert!(
        took <= bound + Duration::from_secs(1),
        "took {took:?}, more than lease + rescue interval"
    );
    assert_eq!(dropped.attempt, 1);
    assert!(dropped.error.as_deref().unwrap().contains("worker lost"));
    assert!(dropped.finished_at.is_some());
}

async fn sigterm_releases_running_tasks_before_exit(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let last_chance = insert_sleeps(&store, 1, 600.0, 1).await[0];
    let can_retry = insert_sleeps(&store, 1, 600.0, 3).await[0];
    let mut env = proc_env(&db);
    env.insert("ERRAND__WORKER__SHUTDOWN_GRACE".into(), "1s".into());
    let mut worker = Proc::spawn(&["worker", "--concurrency", "2"], &env);
    wait_status(
        &store,
        last_chance,
        Status::Running,
        Duration::from_secs(10),
    )
    .await;
    wait_status(&store, can_retry, Status::Running, Duration::from_secs(10)).await;

    let sent = Instant::now();
    worker.signal("TERM");
    let status = worker.exited(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(8),
        "took {:?}",
        sent.elapsed()
    );
    // Released before the process exited: not left for the lease to expire.
    let dropped = task(&store, last_chance).await;
    assert_eq!(dropped.status, Status::Dropped);
    assert!(dropped.error.as_deref().unwrap().contains("shut down"));
    let requeued = task(&store, can_retry).await;
    assert_eq!(requeued.status, Status::Queued);
    assert_eq!(requeued.attempt, 1);
    assert!(
        requeued.run_at <= Utc::now(),
        "re-queued to run again at once"
    );
    assert_eq!(requeued.worker_id, None);
}

/// A worker frozen past its lease, then resumed, writes nothing: the new
/// attempt's result stands.
async fn frozen_worker_resumed_after_its_lease_writes_nothing(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let token = insert_sleeps(&store, 1, 4.0, 3).await[0];
    let env = proc_env(&db);
    let stale = Proc::spawn(&["worker"], &env);
    let first = wait_status(&store, token, Status::Running, Duration::from_secs(10)).await;
    stale.signal("STOP");

    let fresh = Proc::spawn(&["worker"], &env);
    let done = wait_status(&store, token, Status::Completed, Duration::from_secs(30)).await;
    assert_eq!(done.attempt, 2);
    assert_ne!(done.worker_id, first.worker_id);
    assert!(done.errors[0].message.contains("worker lost"));

    stale.signal("CONT");
    eventually(
        "the resumed worker to notice it lost the task",
        Duration::from_secs(15),
        || async {
            let lost = stale
                .events("lease lost: this attempt stopped and wrote nothing more")
                .len()
                + stale
                    .events("attempt was no longer current; its outcome was discarded")
                    .len();
            (lost > 0).then_some(())
        },
    )
    .await;
    assert_eq!(
        task(&store, token).await,
        done,
        "the stale attempt changed nothing"
    );
    assert!(stale.events("attempt ended").is_empty());
    drop(fresh);
}

/// Postgres restarting under a running cluster loses no task and crashes no
/// process. It restarts a private Postgres server, so the other tests
/// (which share the machine's server) are not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_loses_no_task_and_crashes_no_process() {
    let pg = common::servers::PrivatePostgres::launch();
    let url = pg.create_database("errand");
    let mut env = proc_env_for_url(&url);
    env.insert("ERRAND__DATABASE__ACQUIRE_TIMEOUT".into(), "1s".into());
    let mut settings = errand::config::Settings::defaults();
    settings.database.url = url.clone();
    let store = Store::connect(&settings.database).unwrap();
    store.migrate().await.unwrap();

    let api = Proc::spawn(&["api"], &env);
    let base = api.base_url().await;
    let token = errand::app::token_create(&settings, "alice", "user", None)
        .await
        .unwrap();
    let client = Client::new(&base, &token);
    let workers = [
        Proc::spawn(&["worker", "--concurrency", "4"], &env),
        Proc::spawn(&["worker", "--concurrency", "4"], &env),
    ];
    let mut tokens = Vec::new();
    for _ in 0..40 {
        tokens.push(
            client
                .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0.5}}))
                .await,
        );
    }
    eventually(
        "some tasks to be running",
        Duration::from_secs(10),
        || async {
            let running = store_count(&store, &tokens, "running").await;
            (running > 0).then_some(())
        },
    )
    .await;

    pg.stop();
    // While it is down, the API answers 503 with Retry-After, quickly.
    let asked = Instant::now();
    let r = client.get(&tokens[0]).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(asked.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(500)).await; // an outage, not a blip
    pg.start();

    let counts = eventually(
        "every task to complete",
        Duration::from_secs(90),
        || async {
            let done = store_count(&store, &tokens, "completed").await;
            (done == tokens.len()).then_some(done)
        },
    )
    .await;
    assert_eq!(counts, 40);
    for (name, proc) in [
        ("api", &api),
        ("worker 1", &workers[0]),
        ("worker 2", &workers[1]),
    ] {
        assert!(proc_alive(proc), "{name} exited");
    }
    let r = client.get(&tokens[0]).await;
    assert_eq!(r.status(), 200, "the API recovered by itself");
}

fn proc_alive(proc: &Proc) -> bool {
    std::path::Path::new(&format!("/proc/{}", proc.pid())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", proc.pid()))
            .unwrap_or_default()
            .contains(") Z ")
}

async fn store_count(store: &Store, tokens: &[String], status: &str) -> usize {
    let mut n = 0;
    for token in tokens {
        let t = store.task_get(token.parse().unwrap()).await;
        if matches!(t, Ok(Some(t)) if t.status.as_str() == status) {
            n += 1;
        }
    }
    n
}

// ---- in-process workers, with kinds of the test's own ----------------------

/// A kind that fails every attempt, retryably.
struct AlwaysFails;

impl Kind for AlwaysFails {
    const NAME: &'static str = "always_fails";
    type Payload = Value;

    async fn run(&self, _: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        Err(TaskError::retryable(format!(
            "attempt {} failed",
            ctx.attempt()
        )))
    }
}

/// A kind that panics.
struct Panics;

impl Kind for Panics {
    const NAME: &'static str = "panics";
    type Payload = Value;

    async fn run(&self, _: Value, _: &TaskContext) -> Result<Value, TaskError> {
        panic!("the handler blew up")
    }
}

/// A kind that fails permanently on a bad payload.
struct Picky;

impl Kind for Picky {
    const NAME: &'static str = "picky";
    type Payload = Value;

    async fn run(&self, _: Value, _: &TaskContext) -> Result<Value, TaskError> {
        Err(TaskError::permanent("this input can never work"))
    }
}

/// A kind that ignores cancellation and counts its runs.
struct Stubborn(Arc<AtomicUsize>);

impl Kind for Stubborn {
    const NAME: &'static str = "stubborn";
    type Payload = Value;

    async fn run(&self, _: Value, _: &TaskContext) -> Result<Value, TaskError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(json!("never"))
    }
}

/// A worker and a rescuer running in this process with the test's kinds.
struct InProcess {
    shutdown: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl InProcess {
    fn start(
        db: &TestDb,
        tweak: impl FnOnce(&mut errand::config::Settings),
        register: impl FnOnce(&mut Registry),
    ) -> InProcess {
        let mut settings = test_settings(db);
        settings.tasks.backoff_base = Duration::from_millis(200);
        tweak(&mut settings);
        let mut registry = Registry::with_builtins(&settings).unwrap();
        register(&mut registry);
        let registry = Arc::new(registry);
        let store = db.store();
        let shutdown = CancellationToken::new();
        let worker = Worker::new(WorkerParts {
            store: store.clone(),
            files: Files::new(store.clone(), &settings.files).unwrap(),
            registry: registry.clone(),
            state: Default::default(),
            settings: settings.worker.clone(),
            queues: vec![ServedQueue {
                name: "default".into(),
                slots: 4,
                global_limit: None,
            }],
        });
        let rescuer = Rescuer::new(
            store.clone(),
            registry,
            settings.worker.rescue_interval,
            settings.worker.rescue_batch,
        );
        let listener = {
            let store = store.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move { store.run_listener(stop).await })
        };
        InProcess {
            handles: vec![
                tokio::spawn(worker.run(shutdown.clone())),
                tokio::spawn(drive(rescuer, shutdown.clone())),
                listener,
            ],
            shutdown,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for h in self.handles {
            h.await.unwrap();
        }
    }
}

async fn insert_kind(
    store: &Store,
    kind: &str,
    max_attempts: i32,
    timeout_ms: Option<i64>,
) -> TaskToken {
    common::insert_task(
        store,
        &NewTask {
            timeout_ms,
            ..common::new_task(kind, json!({}), max_attempts)
        },
    )
    .await
    .token
}

/// For tests whose every attempt must end by itself: a lease the shared
/// machine's slowest moments can't outlast (a 2–4 s stall of every
/// statement once outlasted the tests' 3 s, and a rescue took an attempt).
fn never_lost(s: &mut errand::config::Settings) {
    s.worker.lease = Duration::from_secs(30);
}

async fn always_failing_task_fails_after_exactly_max_attempts_with_backoff(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let workers = InProcess::start(&db, never_lost, |r| {
        r.register(AlwaysFails).unwrap();
    });
    let token = insert_kind(&store, "always_fails", 4, None).await;
    let failed = wait_status(&store, token, Status::Failed, Duration::from_secs(30)).await;
    assert_eq!(failed.attempt, 4);
    let attempts: Vec<i32> = failed.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4], "one history entry per attempt");
    assert_eq!(failed.errors[3].message, "attempt 4 failed");
    assert_eq!(failed.error.as_deref(), Some("attempt 4 failed"));
    // Backoff base 200 ms, doubling, with equal jitter: gaps of at least
    // 100, 200, 400 ms.
    let at: Vec<DateTime<Utc>> = failed.errors.iter().map(|e| e.at).collect();
    for (i, pair) in at.windows(2).enumerate() {
        let gap = (pair[1] - pair[0]).to_std().unwrap();
        let least = Duration::from_millis(100 << i);
        assert!(
            gap >= least,
            "gap {i} was {gap:?}, less than {least:?}: {at:?}"
        );
    }
    workers.stop().await;
}

async fn permanent_failure_and_panic_are_recorded(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let workers = InProcess::start(&db, never_lost, |r| {
        r.register(Picky).unwrap().register(Panics).unwrap();
    });
    let picky = insert_kind(&store, "picky", 5, None).await;
    let panics = insert_kind(&store, "panics", 2, None).await;
    let failed = wait_status(&store, picky, Status::Failed, Duration::from_secs(10)).await;
    assert_eq!(failed.attempt, 1, "a permanent failure is not retried");
    assert_eq!(failed.error.as_deref(), Some("this input can never work"));
    let panicked = wait_status(&store, panics, Status::Failed, Duration::from_secs(10)).await;
    assert_eq!(panicked.attempt, 2, "a panic is a retryable failure");
    assert_eq!(panicked.errors.len(), 2);
    assert!(
        panicked.errors[0].message.contains("the handler blew up"),
        "{:?}",
        panicked.errors
    );
    workers.stop().await;
}

async fn task_over_its_timeout_fails_saying_so(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        s.tasks.backoff_base = Duration::from_millis(100)
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let token = alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 30}, "timeout": 0.5, "max_attempts": 2}),
        )
        .await;
    let done = alice.wait_done(&token, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["attempt"], 2, "a timeout is retryable");
    assert_eq!(done["error"], "timed out after 0.5 s");
    assert_eq!(done["errors"].as_array().unwrap().len(), 2);
}

async fn handler_that_ignores_cancel_is_aborted_after_the_grace(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let runs = Arc::new(AtomicUsize::new(0));
    let kind_runs = runs.clone();
    let workers = InProcess::start(
        &db,
        |s| s.worker.cancel_grace = Duration::from_millis(300),
        move |r| {
            r.register(Stubborn(kind_runs)).unwrap();
        },
    );
    let token = insert_kind(&store, "stubborn", 3, Some(500)).await;
    let done = wait_status(&store, token, Status::Failed, Duration::from_secs(20)).await;
    assert_eq!(done.attempt, 3);
    assert!(
        done.errors
            .iter()
            .all(|e| e.message == "timed out after 0.5 s"),
        "{:?}",
        done.errors
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    workers.stop().await;
}

async fn graceful_stop_waits_for_short_tasks(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let workers = InProcess::start(
        &db,
        |s| s.worker.shutdown_grace = Duration::from_secs(10),
        |_| {},
    );
    let token = insert_sleeps(&store, 1, 1.0, 1).await[0];
    wait_status(&store, token, Status::Running, Duration::from_secs(10)).await;
    workers.stop().await;
    assert_eq!(
        task(&store, token).await.status,
        Status::Completed,
        "finished within the grace"
    );
}

/// `queues.gpu.global_limit = 2`: three worker processes with three gpu
/// slots each never run more than two gpu tasks at once between them.
async fn global_limit_holds_across_worker_processes(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let mut tokens = Vec::new();
    for _ in 0..18 {
        let task = common::insert_task(
            &store,
            &NewTask {
                queue: "gpu".into(),
                ..common::new_task("sleep", json!({"seconds": 0.2}), 3)
            },
        )
        .await;
        tokens.push(task.token);
    }
    let mut env = proc_env(&db);
    env.insert("ERRAND__QUEUES__GPU__GLOBAL_LIMIT".into(), "2".into());
    env.insert("ERRAND__WORKER__POLL_INTERVAL".into(), "50ms".into());
    let workers: Vec<Proc> = (0..3)
        .map(|_| Proc::spawn(&["worker", "--queues", "gpu=3"], &env))
        .collect();
    let most = std::sync::atomic::AtomicI64::new(0);
    eventually(
        "every gpu task to complete",
        Duration::from_secs(60),
        || async {
            let counts = status_counts(&db).await;
            let running = counts.get("running").copied().unwrap_or(0);
            most.fetch_max(running, Ordering::SeqCst);
            (counts.get("completed") == Some(&18)).then_some(())
        },
    )
    .await;
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 2, "sampled {most} running at once");
    // The attempts' own start and end lines, from all three processes.
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for worker in &workers {
        for run in runs(worker, None) {
            edges.push((run.started, 1));
            edges.push((run.ended.expect("every attempt finished"), -1));
        }
    }
    edges.sort();
    let (mut live, mut peak) = (0, 0);
    for (_, step) in edges {
        live += step;
        peak = peak.max(live);
    }
    assert_eq!(peak, 2, "the limit was reached and never exceeded");
}

/// The same through `errand serve`, whose API (on its own threads) made the
/// task: the release must still get through as the process winds down.
async fn sigterm_to_serve_releases_tasks_created_through_its_api(backend: Backend) {
    let db = TestDb::of(backend).await;
    let store = db.store();
    let mut env = proc_env(&db);
    env.insert("ERRAND__WORKER__SHUTDOWN_GRACE".into(), "500ms".into());
    env.insert("ERRAND__WORKER__CONCURRENCY".into(), "4".into());
    let mut serve = Proc::spawn(&["serve"], &env);
    let base = serve.base_url().await;
    common::wait_ready(&base).await;
    let token = errand::app::token_create(
        &errand::config::load(None, &env).unwrap(),
        "alice",
        "user",
        None,
    )
    .await
    .unwrap();
    let alice = Client::new(&base, &token);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(
            alice
                .create_ok(json!({"kind": "sleep", "payload": {"seconds": 600}}))
                .await,
        );
        // Polls, so that the API's threads hold database connections.
        alice.task(tasks.last().unwrap()).await;
    }
    for t in &tasks {
        wait_status(
            &store,
            t.parse().unwrap(),
            Status::Running,
            Duration::from_secs(10),
        )
        .await;
    }
    serve.signal("TERM");
    let status = serve.exited(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status:?}");
    for t in &tasks {
        let released = task(&store, t.parse().unwrap()).await;
        assert_eq!(released.status, Status::Queued, "handed back before exit");
        assert!(released.error.as_deref().unwrap().contains("shut down"));
    }
    assert!(
        serve
            .events("could not record the attempt's end; the rescuer will")
            .is_empty()
    );
}
