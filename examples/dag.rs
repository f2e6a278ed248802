//! Measures dependencies at scale (a measurement, not a test):
//!
//! ```sh
//! cargo run --release --example dag -- --store postgres   # or sqlite
//! ```
//!
//! - fan-in: one child depending on N parents (default 10,000): how long the
//!   create takes over HTTP, and how long after the last parent completes the
//!   child starts;
//! - fan-out: N children of one parent: how long the parent's completion
//!   (which releases every child in its own transaction) takes, and how long
//!   the worker then needs to drain them.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use errand::app::{self, App, Mode};
use errand::config::Settings;
use errand::store::Store;
use errand::tasks::{
    AttemptOutcome, Backoff, NewTask, Scope, Status, Task, TaskToken, WorkerId, end_attempt,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn new_task(depends_on: Vec<TaskToken>) -> NewTask {
    let now = chrono::Utc::now();
    NewTask {
        token: TaskToken::generate(),
        kind: "sleep".into(),
        queue: "default".into(),
        priority: 0,
        status: Status::Queued,
        payload: json!({"seconds": 0}),
        max_attempts: 3,
        timeout_ms: None,
        owner: "dag".into(),
        product: None,
        created_at: now,
        run_at: now,
        depends_on,
        callback_url: None,
        inputs: vec![],
        start_by: None,
        tick: None,
    }
}

async fn insert(store: &Store, task: &NewTask) -> Task {
    store
        .task_insert(task, &Scope::everything(), None)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::main]
async fn main() {
    support::tls();
    let store_kind = arg("--store", "postgres");
    let n: usize = arg("--n", "10000").parse().unwrap();
    let pg = arg("--pg", "postgres://postgres@127.0.0.1:5432/postgres");
    let (url, drop_database) = support::fresh_database(&store_kind, &pg).await;
    let mut settings = Settings::defaults();
    settings.database.url = url;
    settings.http.bind = "127.0.0.1:0".into();
    settings.http.max_body_bytes = 4 << 20;
    settings.worker.concurrency = 8;
    settings.log.level = "warn".into();
    errand::telemetry::init("warn", errand::config::LogFormat::Text).unwrap();
    let store = Store::connect(&settings.database).unwrap();
    store.migrate().await.unwrap();
    let token = app::token_create(&settings, "dag", "user", None)
        .await
        .unwrap();
    println!("errand dependencies: store {store_kind}, n = {n}");

    // Fan-in: n parents, one child.
    let mut parents = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        parents.push(insert(&store, &new_task(vec![])).await.token);
    }
    println!(
        "(for comparison: {n} tasks without dependencies created through the store, one at a time, in {:?})",
        started.elapsed()
    );
    let api = App::build(settings.clone(), Mode::Api).unwrap();
    let base = format!("http://{}", api.local_addr().unwrap());
    let stop = CancellationToken::new();
    let running = tokio::spawn(api.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/tasks"))
        .bearer_auth(&token)
        .json(&json!({"kind": "sleep", "payload": {"seconds": 0}, "depends_on": parents}))
        .send()
        .await
        .unwrap();
    let create = started.elapsed();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let child: Value = r.json().await.unwrap();
    println!("fan-in:  create a child of {n} parents over HTTP: {create:?}");
    stop.cancel();
    running.await.unwrap().unwrap();

    let worker = App::build(settings.clone(), Mode::Worker).unwrap();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(worker.run(stop.clone()));
    let child_token: TaskToken = child["token"].as_str().unwrap().parse().unwrap();
    let child = loop {
        let t = store.task_get(child_token).await.unwrap().unwrap();
        if t.status == Status::Completed {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut last_parent = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    for p in &parents {
        let t = store.task_get(*p).await.unwrap().unwrap();
        last_parent = last_parent.max(t.finished_at.unwrap());
    }
    println!(
        "fan-in:  {n} parents drained and the child run in {:?}; the child started {:?} after the last parent completed",
        started.elapsed(),
        (child.started_at.unwrap() - last_parent)
            .to_std()
            .unwrap_or_default()
    );
    stop.cancel();
    running.await.unwrap().unwrap();

    // Fan-out: one parent, n children.
    let parent = insert(&store, &new_task(vec![])).await;
    let started = Instant::now();
    for _ in 0..n {
        insert(&store, &new_task(vec![parent.token])).await;
    }
    println!(
        "fan-out: {n} children of one parent created (through the store) in {:?}",
        started.elapsed()
    );
    let now = chrono::Utc::now();
    let claimed = store
        .task_claim(&errand::store::TaskClaim {
            queue: "default",
            worker: &WorkerId("dag".into()),
            kinds: None,
            limit: 1,
            lease_until: now + chrono::Duration::seconds(60),
            now,
            global_limit: None,
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(claimed.id, parent.id);
    let backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(1),
    };
    let end = end_attempt(
        1,
        3,
        AttemptOutcome::Succeeded(json!(1)),
        &backoff,
        0.0,
        now,
    );
    let started = Instant::now();
    store
        .task_end(
            &errand::store::TaskEnding {
                id: parent.id,
                attempt: 1,
                started_at: parent.started_at,
                end,
            },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    let released = started.elapsed();
    let queued = support::count(&store, Status::Queued).await;
    println!(
        "fan-out: completing the parent released {queued} waiting children in one statement: {released:?}"
    );
    let worker = App::build(settings.clone(), Mode::Worker).unwrap();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(worker.run(stop.clone()));
    while support::count(&store, Status::Completed).await < (2 * n + 2) as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "fan-out: the {n} children drained in {:?}",
        started.elapsed()
    );
    stop.cancel();
    running.await.unwrap().unwrap();
    store.close().await;
    drop_database();
}
