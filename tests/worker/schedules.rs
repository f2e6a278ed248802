//! Schedules across real worker processes: one task per tick (no tick
//! twice, none missed) while three workers race for every tick and one of
//! them is SIGKILLed; and, with `missed = "once"`, exactly one catch-up
//! task for the ticks that passed while every worker was stopped.

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use errand::store::{Store, TaskListing};
use errand::tasks::{Scope, TaskFilter};

use crate::common::{self, Backend, Proc, TestDb, eventually};

on_both_stores!(
    three_workers_make_one_task_per_tick_through_a_sigkill,
    ticks_missed_while_every_worker_was_stopped_make_one_catch_up_task,
);

/// A configuration file declaring schedule `tick`, every second.
fn config(dir: &std::path::Path, missed: &str) -> String {
    let path = dir.join("errand.toml");
    std::fs::write(
        &path,
        format!(
            "[schedules.tick]\ncron = \"* * * * * *\"\nkind = \"sleep\"\n\
             payload = {{ seconds = 0 }}\nmissed = \"{missed}\"\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("errand-sched-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The ticks schedule `tick` made tasks for, in order.
async fn ticks(store: &Store) -> Vec<DateTime<Utc>> {
    let filter = TaskFilter {
        schedule: vec!["tick".into()],
        ..TaskFilter::default()
    };
    let tasks = store
        .task_list(&TaskListing {
            scope: &Scope::everything(),
            filter: &filter,
            after: None,
            limit: 10_000,
            timeout: Duration::from_secs(10),
        })
        .await
        .unwrap();
    let mut ticks: Vec<DateTime<Utc>> = tasks.iter().filter_map(|t| t.scheduled_for).collect();
    ticks.sort();
    ticks
}

/// Waits until schedule `tick` has made at least `n` tasks.
async fn made(store: &Store, n: usize) {
    eventually(
        &format!("{n} ticks' tasks"),
        Duration::from_secs(60),
        || async { (ticks(store).await.len() >= n).then_some(()) },
    )
    .await;
}

/// Stops every process gracefully (SIGTERM) and waits for each to exit.
async fn stop(procs: &mut [Proc]) {
    for proc in procs.iter() {
        proc.signal("TERM");
    }
    for proc in procs.iter_mut() {
        proc.exited(Duration::from_secs(30)).await;
    }
}

/// Each tick from the first to the last, once.
fn every_second_once(ticks: &[DateTime<Utc>]) {
    for pair in ticks.windows(2) {
        let gap = pair[1] - pair[0];
        assert_eq!(
            gap,
            chrono::Duration::seconds(1),
            "ticks {pair:?} in {ticks:?}"
        );
    }
}

async fn three_workers_make_one_task_per_tick_through_a_sigkill(backend: Backend) {
    let db = TestDb::of(backend).await;
    let dir = scratch();
    let config = config(&dir, "skip");
    let env = common::proc_env(&db);
    let mut workers: Vec<Proc> = (0..3)
        .map(|_| Proc::spawn(&["--config", &config, "worker"], &env))
        .collect();
    let store = db.store();
    made(&store, 4).await;
    workers[0].kill();
    let killed_at = ticks(&store).await.len();
    made(&store, killed_at + 8).await;
    stop(&mut workers[1..]).await;
    let ticks = ticks(&store).await;
    assert!(ticks.len() >= 12, "{ticks:?}");
    every_second_once(&ticks);
    let _ = std::fs::remove_dir_all(dir);
}

async fn ticks_missed_while_every_worker_was_stopped_make_one_catch_up_task(backend: Backend) {
    let db = TestDb::of(backend).await;
    let dir = scratch();
    let config = config(&dir, "once");
    let env = common::proc_env(&db);
    let mut workers: Vec<Proc> = (0..3)
        .map(|_| Proc::spawn(&["--config", &config, "worker"], &env))
        .collect();
    let store = db.store();
    made(&store, 3).await;
    stop(&mut workers).await;
    let stopped = Utc::now();
    let before = ticks(&store).await;
    every_second_once(&before);
    // The outage: five ticks and more pass with no worker running.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let restarted = Proc::spawn(&["--config", &config, "worker"], &env);
    let since: DateTime<Utc> = eventually(
        "the scheduler to start",
        Duration::from_secs(20),
        || async {
            restarted
                .events("scheduler started")
                .first()
                .and_then(|e| e["fields"]["since"].as_str()?.parse().ok())
        },
    )
    .await;
    made(&store, before.len() + 3).await;
    let mut restarted = [restarted];
    stop(&mut restarted).await;
    let after = ticks(&store).await;
    let missed: Vec<&DateTime<Utc>> = after
        .iter()
        .filter(|t| **t > stopped && **t < since)
        .collect();
    assert_eq!(
        missed.len(),
        1,
        "one catch-up task for the ticks from {stopped} to {since}: {after:?}"
    );
    let last_missed = match since.trunc_subsecs(0) {
        whole if whole < since => whole,
        whole => whole - chrono::Duration::seconds(1),
    };
    assert_eq!(*missed[0], last_missed, "for the last of them");
    assert!(
        since - stopped >= chrono::Duration::seconds(5),
        "across five ticks"
    );
    // From the restart on, every tick.
    let live: Vec<DateTime<Utc>> = after.iter().copied().filter(|t| *t >= since).collect();
    assert!(live.len() >= 2, "{after:?}");
    every_second_once(&live);
    let _ = std::fs::remove_dir_all(dir);
}
