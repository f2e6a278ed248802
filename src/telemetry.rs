//! Telemetry: logs and metrics.
//!
//! - Logs: human-readable text or one JSON object per line, to stderr
//!   (stdout is kept for what a command prints, such as a new token). Spans
//!   carry the same fields everywhere: `task.token`, `task.kind`,
//!   `task.attempt`, `worker.id`.
//! - Metrics: Prometheus, through the `metrics` facade. Every metric errand
//!   records is named here, once; the API and the worker call these
//!   functions.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log.level {level:?}: {source}")]
    Level {
        level: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init(level: &str, format: LogFormat) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|source| TelemetryError::Level {
        level: level.to_string(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling it twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// The process's Prometheus recorder, installed on first use.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = [
            0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
        ];
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
            .and_then(|b| b.install_recorder())
            // Only fails if another recorder was installed first, which
            // nothing in errand does.
            .expect("install the Prometheus recorder")
    })
}

/// Starts recording (metrics recorded before this are lost).
pub fn init_metrics() {
    prometheus();
}

/// The metrics in Prometheus's text format, after `sample` has set the
/// sampled gauges.
pub fn render_metrics() -> String {
    let handle = prometheus();
    handle.run_upkeep();
    handle.render()
}

/// A task was created.
pub fn task_created(kind: &str) {
    ::metrics::counter!("errand_tasks_created_total", "kind" => kind.to_string()).increment(1);
}

/// An attempt ended, leaving the task in `status` (`queued` for a retry),
/// after running `ran`.
pub fn attempt_ended(kind: &str, status: &str, ran: Duration) {
    ::metrics::counter!(
        "errand_attempts_ended_total",
        "kind" => kind.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    ::metrics::histogram!("errand_task_run_seconds", "kind" => kind.to_string())
        .record(ran.as_secs_f64());
}

/// A task reached a terminal status.
pub fn task_finished(kind: &str, status: &str) {
    ::metrics::counter!(
        "errand_tasks_finished_total",
        "kind" => kind.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
}

/// A worker started a task `waited` after it became runnable.
pub fn task_picked_up(kind: &str, waited: Duration) {
    ::metrics::histogram!("errand_task_pickup_seconds", "kind" => kind.to_string())
        .record(waited.as_secs_f64());
}

/// How many tasks this process runs now.
pub fn tasks_running(n: usize) {
    ::metrics::gauge!("errand_tasks_running").set(n as f64);
}

/// How many tasks are in `status` in `queue` (sampled from the database).
pub fn queue_depth(queue: &str, status: &str, n: i64) {
    ::metrics::gauge!(
        "errand_queue_depth",
        "queue" => queue.to_string(),
        "status" => status.to_string()
    )
    .set(n as f64);
}

/// A schedule's tick made its task.
pub fn schedule_fired(schedule: &str) {
    ::metrics::counter!("errand_schedule_ticks_total", "schedule" => schedule.to_string())
        .increment(1);
}

/// How long the task of `queue` that has waited longest since it became
/// due has waited (sampled from the database): 0 when none waits.
pub fn queue_oldest_queued(queue: &str, waited: Duration) {
    ::metrics::gauge!("errand_queue_oldest_queued_seconds", "queue" => queue.to_string())
        .set(waited.as_secs_f64());
}

/// An HTTP request was answered.
pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    let labels = [
        ("route", route.to_string()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    ::metrics::counter!("errand_http_requests_total", &labels).increment(1);
    ::metrics::histogram!("errand_http_request_seconds", &labels).record(took.as_secs_f64());
}
