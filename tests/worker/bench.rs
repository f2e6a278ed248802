//! `errand bench`, run small as a smoke test: it starts its own processes,
//! goes through every phase, and reports every figure. Nothing about speed
//! is asserted (speed is measured by running it, not by tests).

use std::process::Command;

use serde_json::Value;

use crate::common::{self, Backend, TestDb};

on_both_stores!(bench_runs_every_phase_and_reports_every_figure);

pub async fn bench_runs_every_phase_and_reports_every_figure(backend: Backend) {
    let db = TestDb::of(backend).await;
    let out = Command::new(env!("CARGO_BIN_EXE_errand"))
        .args([
            "bench",
            "--tasks",
            "300",
            "--history",
            "2000",
            "--seconds",
            "1",
            "--json",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(common::proc_env(&db))
        .output()
        .expect("run errand bench");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    for phase in ["enqueue:", "drain:", "pickup:", "poll:", "history:"] {
        assert!(said.contains(phase), "a progress line for {phase}: {said}");
    }
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for field in [
        "enqueue_http_per_s",
        "enqueue_bulk_per_s",
        "drain_per_s",
        "drain_best_per_s",
        "pickup_p50_ms",
        "pickup_p99_ms",
        "poll_http_per_s",
        "drain_with_history_per_s",
    ] {
        let value = report[field].as_f64().unwrap_or(-1.0);
        assert!(value > 0.0, "{field}: {report}");
    }
    for process in ["rss_api_mb", "rss_worker_mb"] {
        assert!(
            report[process]["idle"].as_f64().unwrap_or(0.0) > 0.0,
            "{report}"
        );
    }
    assert!(
        report["drain_best_settings"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    // It measures only an empty database: a second run is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_errand"))
        .args(["bench", "--tasks", "10"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(common::proc_env(&db))
        .output()
        .expect("run errand bench");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("needs one with none"));
}
