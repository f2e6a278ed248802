//! `errand bench`: measures errand as it runs, with real `errand api` and
//! `errand worker` processes of this binary against the database in the
//! configuration (which must hold no tasks): enqueue over HTTP, one at a
//! time and in batches; drains of no-op tasks, timed as the database
//! recorded them; pickup latency; polls; memory; and a drain beside a large
//! history of finished tasks. A measurement, not a test.

mod load;
mod procs;
mod wire;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use self::load::{Api, percentile};
use self::procs::{Launcher, PeakRss, rss_mb};
use crate::config::Settings;
use crate::store::{Store, StoreError};

/// What to measure, and how hard.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Tasks per enqueue and per drain.
    pub tasks: usize,
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// Worker slots of the drains.
    pub concurrency: usize,
    /// Finished tasks in the table for the last drain.
    pub history: usize,
    /// How long pickups and polls are measured, each.
    pub seconds: f64,
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("the database holds {0} tasks: errand bench needs one with none")]
    NotEmpty(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    App(#[from] Box<super::AppError>),
    #[error("{0}")]
    Process(String),
    #[error("{0}")]
    Load(String),
}

/// Memory of one process, in MB.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rss {
    pub idle: f64,
    pub load: f64,
}

/// What the bench measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub store: String,
    pub cpus: usize,
    pub tasks: usize,
    pub clients: usize,
    pub concurrency: usize,
    pub enqueue_http_per_s: f64,
    pub enqueue_bulk_per_s: f64,
    pub drain_per_s: f64,
    pub drain_best_per_s: f64,
    pub drain_best_settings: String,
    pub pickup_p50_ms: f64,
    pub pickup_p99_ms: f64,
    pub poll_http_per_s: f64,
    pub rss_api_mb: Rss,
    pub rss_worker_mb: Rss,
    pub history: usize,
    pub drain_with_history_per_s: f64,
}

/// The best drain settings found on a 2-CPU machine beside its database
/// (connected without TLS: see docs/performance.md).
const BEST: (usize, &[(&str, &str)]) = (
    32,
    &[
        ("ERRAND__WORKER__CLAIM_BATCH", "500"),
        ("ERRAND__WORKER__END_BATCH", "1000"),
    ],
);

/// Runs every phase, saying each on stderr.
pub async fn run(
    settings: &Settings,
    config: Option<&Path>,
    o: &BenchOptions,
) -> Result<Report, BenchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::connect(&settings.database)?;
    store.migrate().await?;
    let existing: i64 = store.task_count_by_status().await?.values().sum();
    if existing > 0 {
        return Err(BenchError::NotEmpty(existing));
    }
    let token = super::token_create(settings, "bench", "user", None)
        .await
        .map_err(Box::new)?;
    let launcher = Launcher {
        binary: std::env::current_exe().map_err(|e| BenchError::Process(e.to_string()))?,
        config: config.map(Path::to_path_buf),
        env: vec![("ERRAND__LOG__LEVEL".into(), "warn".into())],
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(o.clients * 2)
        .build()
        .map_err(|e| BenchError::Load(e.to_string()))?;
    let api_proc = launcher.api(&http).await?;
    let api = Api {
        http,
        base: api_proc.base().to_string(),
        token,
    };
    let report = phases(&store, &launcher, &api, api_proc.pid(), o, settings).await;
    api_proc.stop().await;
    store.close().await;
    report
}

async fn phases(
    store: &Store,
    launcher: &Launcher,
    api: &Api,
    api_pid: u32,
    o: &BenchOptions,
    settings: &Settings,
) -> Result<Report, BenchError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let api_idle = rss_mb(api_pid);
    let api_peak = PeakRss::watch(api_pid);
    let d = enqueues_and_drains(store, launcher, api, o).await?;
    say(&format!(
        "pickup: one task every 20 ms for {} s, idle worker",
        o.seconds
    ));
    let log = std::env::temp_dir().join(format!("errand-bench-{}-pickup.log", std::process::id()));
    let worker = launcher.logging_worker(o.concurrency, &log)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let worker_idle = rss_mb(worker.pid());
    let pickups = api
        .pickups(store, Duration::from_millis(20), o.seconds, &log)
        .await;
    worker.stop().await;
    let _ = std::fs::remove_file(&log);
    let pickups = pickups?;
    let polled: Vec<String> = d.tokens.into_iter().take(10_000).collect();
    say(&format!(
        "poll: GET /v1/tasks/{{token}} from {} clients over {} tasks for {} s",
        o.clients,
        polled.len(),
        o.seconds
    ));
    let poll = api.poll(Arc::new(polled), o.clients, o.seconds).await?;
    let api_load = api_peak.finish();
    let drain_with_history = history_drain(store, launcher, api, o).await?;
    Ok(Report {
        store: store.location(&settings.database),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        tasks: o.tasks,
        clients: o.clients,
        concurrency: o.concurrency,
        enqueue_http_per_s: d.enqueue_http,
        enqueue_bulk_per_s: d.enqueue_bulk,
        drain_per_s: d.drain,
        drain_best_per_s: d.drain_best,
        drain_best_settings: d.best,
        pickup_p50_ms: percentile(&pickups, 0.5),
        pickup_p99_ms: percentile(&pickups, 0.99),
        poll_http_per_s: poll,
        rss_api_mb: Rss {
            idle: api_idle,
            load: api_load,
        },
        rss_worker_mb: Rss {
            idle: worker_idle,
            load: d.worker_load,
        },
        history: o.history,
        drain_with_history_per_s: drain_with_history,
    })
}

/// The enqueues and the drains that follow them.
struct Drains {
    enqueue_http: f64,
    drain: f64,
    worker_load: f64,
    enqueue_bulk: f64,
    drain_best: f64,
    best: String,
    /// The batches' tokens, to poll.
    tokens: Vec<String>,
}

async fn enqueues_and_drains(
    store: &Store,
    launcher: &Launcher,
    api: &Api,
    o: &BenchOptions,
) -> Result<Drains, BenchError> {
    let n = o.tasks;
    say(&format!(
        "enqueue: {n} single creates over HTTP from {} clients",
        o.clients
    ));
    let enqueue_http = api.create_singly(n, o.clients).await?;
    say(&format!(
        "drain: {n} tasks, one worker process at concurrency {}",
        o.concurrency
    ));
    let (drained, worker_load) = drain(store, launcher, o.concurrency, &[], n).await?;
    say(&format!("enqueue: {n} tasks in batches of 1000 over HTTP"));
    let (enqueue_bulk, tokens) = api.create_batches(n, 1000, o.clients).await?;
    let best = format!("worker --concurrency {}, {}", BEST.0, best_env());
    say(&format!("drain: {n} tasks, best settings ({best})"));
    let (drain_best, _) = drain(store, launcher, BEST.0, BEST.1, n).await?;
    Ok(Drains {
        enqueue_http,
        drain: drained,
        worker_load,
        enqueue_bulk,
        drain_best,
        best,
        tokens,
    })
}

fn best_env() -> String {
    let settings: Vec<String> = BEST.1.iter().map(|(k, v)| format!("{k}={v}")).collect();
    settings.join(", ")
}

/// Drains `n` queued tasks with one worker process: tasks per second from
/// the first start to the last end, as the database recorded them, and
/// the worker's peak memory.
async fn drain(
    store: &Store,
    launcher: &Launcher,
    concurrency: usize,
    extra: &[(&str, &str)],
    n: usize,
) -> Result<(f64, f64), BenchError> {
    let since = Utc::now();
    let worker = launcher.worker(concurrency, extra)?;
    let peak = PeakRss::watch(worker.pid());
    let window = loop {
        let window = store.bench_drain_window(since).await?;
        if window.0 >= n as i64 {
            break window;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let peak = peak.finish();
    worker.stop().await;
    let (Some(first), Some(last)) = (window.1, window.2) else {
        return Err(BenchError::Load("the drain recorded no times".into()));
    };
    let seconds = (last - first).as_seconds_f64().max(1e-6);
    Ok((n as f64 / seconds, peak))
}

/// Adds the history, queues `tasks` more, and drains them beside it.
async fn history_drain(
    store: &Store,
    launcher: &Launcher,
    api: &Api,
    o: &BenchOptions,
) -> Result<f64, BenchError> {
    let at = Utc::now() - chrono::Duration::days(1);
    let mut added = 0;
    while added < o.history {
        let chunk = (o.history - added).min(100_000);
        say(&format!(
            "history: {added} of {} finished tasks written",
            o.history
        ));
        store.bench_history_insert(chunk, at).await?;
        added += chunk;
    }
    // As it would be long after that history was written.
    store.bench_settle().await?;
    api.create_batches(o.tasks, 1000, o.clients).await?;
    say(&format!(
        "drain: {} tasks beside {} finished ones",
        o.tasks, o.history
    ));
    Ok(drain(store, launcher, o.concurrency, &[], o.tasks).await?.0)
}

fn say(phase: &str) {
    eprintln!("bench: {phase}");
}

/// The report as a table, for people.
pub fn table(r: &Report) -> String {
    let rows = [
        ("store", r.store.clone()),
        (
            "tasks, clients, slots, CPUs",
            format!("{}, {}, {}, {}", r.tasks, r.clients, r.concurrency, r.cpus),
        ),
        (
            "enqueue over HTTP, one per request",
            format!("{:.0} tasks/s", r.enqueue_http_per_s),
        ),
        (
            "enqueue over HTTP, batches of 1000",
            format!("{:.0} tasks/s", r.enqueue_bulk_per_s),
        ),
        (
            "drain, one worker process",
            format!("{:.0} tasks/s", r.drain_per_s),
        ),
        (
            "drain, best settings",
            format!(
                "{:.0} tasks/s ({})",
                r.drain_best_per_s, r.drain_best_settings
            ),
        ),
        (
            "pickup p50 / p99",
            format!("{:.2} / {:.2} ms", r.pickup_p50_ms, r.pickup_p99_ms),
        ),
        (
            "poll GET /v1/tasks/{token}",
            format!("{:.0} requests/s", r.poll_http_per_s),
        ),
        (
            "api RSS idle / under load",
            format!("{:.1} / {:.1} MB", r.rss_api_mb.idle, r.rss_api_mb.load),
        ),
        (
            "worker RSS idle / draining",
            format!(
                "{:.1} / {:.1} MB",
                r.rss_worker_mb.idle, r.rss_worker_mb.load
            ),
        ),
        (
            "drain beside finished tasks",
            format!(
                "{:.0} tasks/s ({} finished)",
                r.drain_with_history_per_s, r.history
            ),
        ),
    ];
    rows.iter()
        .map(|(what, value)| format!("{what:<38} {value}\n"))
        .collect()
}
