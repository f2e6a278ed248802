//! Snoozes: a handler that answers "not yet, look again later" (a Rust
//! kind's `Outcome::Snooze`, a command kind's exit 75 with
//! `{"snooze": seconds}`) is queued again without using up an attempt, up
//! to `tasks.max_snoozes`; a bad snooze fails the task saying why.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use errand::app::Mode;
use errand::config::KindSettings;
use errand::kinds::{Kind, Outcome, TaskContext, TaskError};
use serde_json::{Value, json};

use crate::common::{self, Backend, Client, TestApp, TestDb};

on_both_stores!(
    a_rust_kind_snoozes_three_times_and_completes_on_its_first_attempt,
    a_task_snoozed_for_no_time_runs_again_here_and_keeps_its_lease,
    a_command_kind_snoozes_by_exit_75_and_a_bad_snooze_fails,
    a_task_past_max_snoozes_fails_saying_so,
);

/// How many times `Nap` ran, across its attempts.
struct Runs(AtomicUsize);

/// A kind whose input is ready on the fourth look.
struct Nap;

impl Kind for Nap {
    const NAME: &'static str = "nap";
    type Payload = Value;

    async fn run(&self, _: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let runs = ctx.state::<Runs>()?.0.fetch_add(1, Ordering::SeqCst) + 1;
        if runs <= 3 {
            return Err(Outcome::Snooze(Duration::from_millis(200)).into());
        }
        Ok(json!({"runs": runs, "attempt": ctx.attempt()}))
    }
}

async fn a_rust_kind_snoozes_three_times_and_completes_on_its_first_attempt(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn_built(common::test_settings(&db), Mode::Serve, |b| {
        b.kind(Nap).state(Runs(AtomicUsize::new(0)))
    })
    .await;
    let client = Client::new(&app.base, &app.token("alice", "user", None).await);
    let token = client
        .create_ok(json!({"kind": "nap", "max_attempts": 1}))
        .await;
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], json!({"runs": 4, "attempt": 1}));
    assert_eq!(
        (done["attempt"].clone(), done["snoozes"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(done["errors"], json!([]), "a snooze is not an error");
}

/// A kind that snoozes for no time at all three times, then runs longer
/// than a lease.
struct Doze;

impl Kind for Doze {
    const NAME: &'static str = "doze";
    type Payload = Value;

    async fn run(&self, _: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let runs = ctx.state::<Runs>()?.0.fetch_add(1, Ordering::SeqCst) + 1;
        if runs <= 3 {
            return Err(Outcome::Snooze(Duration::ZERO).into());
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        Ok(json!({"runs": runs}))
    }
}

/// Snoozed for no time, a task is claimed again at once (by this worker,
/// the only one) under the same attempt number: that run keeps its lease
/// past `worker.lease` (the heartbeat renews it), and the task completes
/// on its first attempt with no error. (The end of a snoozed run written
/// twice is fenced off the next run in the store's suite.)
async fn a_task_snoozed_for_no_time_runs_again_here_and_keeps_its_lease(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn_built(common::test_settings(&db), Mode::Serve, |b| {
        b.kind(Doze).state(Runs(AtomicUsize::new(0)))
    })
    .await;
    assert!(app.settings.worker.lease < Duration::from_secs(4));
    let client = Client::new(&app.base, &app.token("alice", "user", None).await);
    let token = client.create_ok(json!({"kind": "doze"})).await;
    let done = client.wait_done(&token, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (done["attempt"].clone(), done["snoozes"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(done["errors"], json!([]), "never lost: {done}");
    assert_eq!(done["result"], json!({"runs": 4}));
}

/// A program that snoozes `snoozes` times (counting its runs in a file
/// named by its task), then answers; or snoozes as `bad` says.
const SCRIPT: &str = r#"
import json, os, sys
p = json.load(sys.stdin)
if "bad" in p:
    print(p["bad"])
    sys.exit(75)
runs = os.path.join(p["dir"], os.environ["ERRAND_TASK_TOKEN"])
n = int(open(runs).read()) if os.path.exists(runs) else 0
open(runs, "w").write(str(n + 1))
if n < p["snoozes"]:
    print(json.dumps({"snooze": 0.2}))
    sys.exit(75)
print(json.dumps({"runs": n + 1, "attempt": int(os.environ["ERRAND_ATTEMPT"])}))
"#;

/// errand serving command kind `wait` (the script above), with `tweak`.
async fn serve(
    db: &TestDb,
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut errand::Settings),
) -> (TestApp, Client) {
    std::fs::write(dir.join("wait.py"), SCRIPT).unwrap();
    let kind = KindSettings {
        command: Some(vec![
            "python3".into(),
            dir.join("wait.py").display().to_string(),
        ]),
        max_attempts: Some(2),
        ..Default::default()
    };
    let app = TestApp::spawn(db, Mode::Serve, |s| {
        s.kinds.insert("wait".into(), kind);
        tweak(s);
    })
    .await;
    let client = Client::new(&app.base, &app.token("alice", "user", None).await);
    (app, client)
}

fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("errand-snooze-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn a_command_kind_snoozes_by_exit_75_and_a_bad_snooze_fails(backend: Backend) {
    let db = TestDb::of(backend).await;
    let dir = scratch();
    let (_app, client) = serve(&db, &dir, |_| {}).await;
    let payload = json!({"dir": dir.display().to_string(), "snoozes": 3});
    let token = client
        .create_ok(json!({"kind": "wait", "payload": payload}))
        .await;
    let done = client.wait_done(&token, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], json!({"runs": 4, "attempt": 1}));
    assert_eq!(
        (done["attempt"].clone(), done["snoozes"].clone()),
        (json!(1), json!(3))
    );

    for (bad, says) in [
        (r#"{"snooze": -1}"#, "0 seconds or more"),
        (r#"{"later": true}"#, "is not {\"snooze\": seconds}"),
        (r#"{"snooze": 999999999}"#, "tasks.snooze_limit"),
    ] {
        let token = client
            .create_ok(json!({"kind": "wait", "payload": {"bad": bad}}))
            .await;
        let failed = client.wait_done(&token, Duration::from_secs(30)).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["attempt"], 1, "not retried: {failed}");
        assert_eq!(failed["snoozes"], 0);
        let error = failed["error"].as_str().unwrap();
        assert!(error.contains(says), "{bad}: {error}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

async fn a_task_past_max_snoozes_fails_saying_so(backend: Backend) {
    let db = TestDb::of(backend).await;
    let dir = scratch();
    let (app, client) = serve(&db, &dir, |s| s.tasks.max_snoozes = 2).await;
    let payload = json!({"dir": dir.display().to_string(), "snoozes": 5});
    let token = client
        .create_ok(json!({"kind": "wait", "payload": payload}))
        .await;
    let failed = client.wait_done(&token, Duration::from_secs(30)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        (failed["attempt"].clone(), failed["snoozes"].clone()),
        (json!(1), json!(2))
    );
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("snoozed 2 times") && error.contains("tasks.max_snoozes"),
        "{error}"
    );
    // Retried, it may snooze afresh: two more, then it is ready.
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let r = root
        .http
        .post(format!("{}/v1/tasks/{token}/retry", root.base))
        .bearer_auth(&root.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let done = client.wait_done(&token, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["snoozes"], 2);
    let _ = std::fs::remove_dir_all(dir);
}
