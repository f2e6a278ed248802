//! The benchmark command (a measurement, not a test):
//!
//! ```sh
//! cargo run --release --example bench -- --store postgres   # or sqlite
//! ```
//!
//! On a fresh database it measures, with errand running in this process on
//! a real port:
//!
//! 1. enqueue rate: `POST /v1/tasks` from concurrent HTTP clients, no worker;
//! 2. drain rate: a worker draining those no-op tasks (`sleep 0`);
//! 3. pickup latency: with an idle worker (API and worker in one process, as
//!    `errand serve`), one task at a time, enqueue to start, p50/p99;
//! 4. poll rate: `GET /v1/tasks/{token}` from concurrent clients.
//!
//! Options: `--store postgres|sqlite` (default postgres), `--tasks N` (5000),
//! `--clients N` (32), `--concurrency N` (worker slots, 8), `--pg URL` (the
//! server to make the database on; default the local one).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use errand::app::{self, App, Mode};
use errand::config::Settings;
use errand::store::Store;
use errand::tasks::Status;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

struct Options {
    store: String,
    tasks: usize,
    clients: usize,
    concurrency: usize,
    pg: String,
}

fn options() -> Options {
    let mut o = Options {
        store: "postgres".into(),
        tasks: 5000,
        clients: 32,
        concurrency: 8,
        pg: "postgres://postgres@127.0.0.1:5432/postgres".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        let number = || {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--store" => o.store = value.clone(),
            "--tasks" => o.tasks = number(),
            "--clients" => o.clients = number(),
            "--concurrency" => o.concurrency = number(),
            "--pg" => o.pg = value.clone(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

struct Running {
    base: String,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), app::AppError>>,
}

async fn start(settings: &Settings, mode: Mode) -> Running {
    let app = App::build(settings.clone(), mode).expect("build");
    let base = app
        .local_addr()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run(shutdown.clone()));
    if mode != Mode::Worker {
        let http = reqwest::Client::new();
        while !matches!(http.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == 200)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Running {
        base,
        shutdown,
        handle,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    support::tls();
    let o = options();
    let (url, drop_database) = support::fresh_database(&o.store, &o.pg).await;
    let mut settings = Settings::defaults();
    settings.database.url = url;
    settings.http.bind = "127.0.0.1:0".into();
    settings.worker.concurrency = o.concurrency;
    settings.database.max_connections = 20;
    settings.log.level = "warn".into();
    errand::telemetry::init("warn", errand::config::LogFormat::Text).unwrap();
    let store = Store::connect(&settings.database).unwrap();
    store.migrate().await.unwrap();
    let token = app::token_create(&settings, "bench", "user", None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    println!(
        "errand benchmark: store {}, {} tasks, {} HTTP clients, {} worker slots, {} CPUs",
        o.store,
        o.tasks,
        o.clients,
        o.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Enqueue over HTTP, no worker running.
    let api = start(&settings, Mode::Api).await;
    let gate = Arc::new(Semaphore::new(o.clients));
    let started = Instant::now();
    let mut posts = Vec::with_capacity(o.tasks);
    for _ in 0..o.tasks {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (http, url, token) = (
            http.clone(),
            format!("{}/v1/tasks", api.base),
            token.clone(),
        );
        posts.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"kind": "sleep", "payload": {"seconds": 0}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            drop(permit);
        }));
    }
    for p in posts {
        p.await.unwrap();
    }
    let enqueue = o.tasks as f64 / started.elapsed().as_secs_f64();
    println!("enqueue over HTTP:  {enqueue:>9.0} tasks/s");
    api.stop().await;

    // 2. Drain.
    let started = Instant::now();
    let worker = start(&settings, Mode::Worker).await;
    while support::count(&store, Status::Completed).await < o.tasks as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = o.tasks as f64 / started.elapsed().as_secs_f64();
    println!("drain (no-op tasks): {drain:>8.0} tasks/s");
    worker.stop().await;

    // 3. Pickup latency, API and worker in one process, one task at a time.
    let serve = start(&settings, Mode::Serve).await;
    let mut latencies = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..200 {
        let created: Value = http
            .post(format!("{}/v1/tasks", serve.base))
            .bearer_auth(&token)
            .json(&json!({"kind": "sleep", "payload": {"seconds": 0}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let t = created["token"].as_str().unwrap().to_string();
        let done = loop {
            let task: Value = http
                .get(format!("{}/v1/tasks/{t}", serve.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if task["done"] == true {
                break task;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let at = |field: &str| {
            done[field]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
        };
        latencies.push((at("started_at") - at("created_at")).as_seconds_f64() * 1000.0);
        tokens.push(t);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "pickup latency:     p50 {:>6.2} ms   p99 {:>6.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );

    // 4. Poll rate.
    let seconds = 5.0;
    let started = Instant::now();
    let mut pollers = Vec::new();
    for i in 0..o.clients {
        let (http, token) = (http.clone(), token.clone());
        let url = format!("{}/v1/tasks/{}", serve.base, tokens[i % tokens.len()]);
        pollers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed().as_secs_f64() < seconds {
                let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut polls = 0;
    for p in pollers {
        polls += p.await.unwrap();
    }
    println!(
        "poll GET /v1/tasks/{{token}}: {:>6.0} requests/s",
        polls as f64 / started.elapsed().as_secs_f64()
    );
    serve.stop().await;
    store.close().await;
    drop_database();
}
