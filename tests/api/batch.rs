//! `POST /v1/tasks/batch`: all the tasks in order, or none with each bad
//! one named; its limits; its Idempotency-Key; files and dependencies.

use std::time::Duration;

use errand::app::Mode;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestApp, TestDb, pattern};

on_both_stores!(
    a_batch_creates_every_task_in_order_and_they_run,
    a_batch_with_bad_tasks_is_refused_whole_naming_each,
    batch_limits_are_explicit,
    a_batch_replayed_with_its_key_answers_the_same_tokens,
    batch_tasks_take_files_and_dependencies,
);

async fn post_batch(client: &Client, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = client
        .http
        .post(format!("{}/v1/tasks/batch", client.base))
        .bearer_auth(&client.token)
        .json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

fn sleeps(n: usize) -> Value {
    let tasks: Vec<Value> = (0..n)
        .map(|i| json!({"kind": "sleep", "payload": {"seconds": i as f64 * 1e-6}}))
        .collect();
    json!({ "tasks": tasks })
}

fn tokens(created: &Value) -> Vec<String> {
    created["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

async fn a_batch_creates_every_task_in_order_and_they_run(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let r = post_batch(&alice, &sleeps(300), None).await;
    assert_eq!(r.status(), 202);
    let tokens = tokens(&r.json().await.unwrap());
    assert_eq!(tokens.len(), 300);
    for (i, token) in tokens.iter().enumerate().step_by(37) {
        let task = alice.task(token).await;
        let seconds = task["payload"]["seconds"].as_f64().unwrap();
        assert_eq!(seconds, i as f64 * 1e-6, "in the order asked");
        assert_eq!(task["owner"], "alice");
    }
    let last = alice.wait_done(&tokens[299], Duration::from_secs(30)).await;
    assert_eq!(last["status"], "completed");
}

async fn a_batch_with_bad_tasks_is_refused_whole_naming_each(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let body = json!({"tasks": [
        {"kind": "sleep", "payload": {"seconds": 0}},
        {"kind": "nope", "payload": {}},
        {"kind": "sleep", "payload": {"seconds": 0}, "priority": "high"},
        {"kind": "sleep", "payload": {"seconds": 0}, "max_attempts": 0},
    ]});
    // A body that does not parse is refused naming where.
    let r = post_batch(&alice, &body, None).await;
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("tasks[2].priority"),
        "{problem}"
    );
    let mut body = body;
    body["tasks"][2]["priority"] = json!(5);
    let r = post_batch(&alice, &body, None).await;
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    let errors = problem["errors"].as_array().unwrap();
    let indexes: Vec<&Value> = errors.iter().map(|e| &e["index"]).collect();
    assert_eq!(indexes, [&json!(1), &json!(3)], "{problem}");
    assert!(
        errors[0]["detail"].as_str().unwrap().contains("nope"),
        "{problem}"
    );
    assert!(
        errors[1]["detail"]
            .as_str()
            .unwrap()
            .contains("max_attempts"),
        "{problem}"
    );
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 0);
}

async fn batch_limits_are_explicit(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        s.http.max_batch = 10;
        s.http.max_batch_bytes = 4096;
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    for n in [0, 11] {
        let r = post_batch(&alice, &sleeps(n), None).await;
        assert_eq!(r.status(), 422);
        let problem: Value = r.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("1 to 10 tasks (http.max_batch)"),
            "{problem}"
        );
    }
    let big =
        json!({"tasks": [{"kind": "sleep", "payload": {"seconds": 0, "pad": "x".repeat(5000)}}]});
    let r = post_batch(&alice, &big, None).await;
    assert_eq!(r.status(), 413);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("http.max_batch_bytes"),
        "{problem}"
    );
    assert_eq!(post_batch(&alice, &sleeps(10), None).await.status(), 202);
}

async fn a_batch_replayed_with_its_key_answers_the_same_tokens(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let first = post_batch(&alice, &sleeps(5), Some("nightly-2026-11-25")).await;
    assert_eq!(first.status(), 202);
    let first = tokens(&first.json().await.unwrap());
    let again = post_batch(&alice, &sleeps(5), Some("nightly-2026-11-25")).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(tokens(&again.json().await.unwrap()), first);
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 5);
    let other = post_batch(&alice, &sleeps(4), Some("nightly-2026-11-25")).await;
    assert_eq!(other.status(), 422, "the same key with another batch");
}

async fn batch_tasks_take_files_and_dependencies(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let file = alice.upload_ok(pattern(1000)).await;
    let parent = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}}))
        .await;
    let body = json!({"tasks": [
        {"kind": "sleep", "payload": {"seconds": 0}, "files": {"audio": file["id"]}},
        {"kind": "sleep", "payload": {"seconds": 0}, "depends_on": [parent]},
    ]});
    let r = post_batch(&alice, &body, None).await;
    assert_eq!(r.status(), 202);
    let made = tokens(&r.json().await.unwrap());
    let with_file = alice.task(&made[0]).await;
    assert_eq!(with_file["files"]["inputs"][0]["sha256"], file["sha256"]);
    assert_eq!(alice.task(&made[1]).await["status"], "waiting");
    // An unknown parent refuses the batch, naming the task; nothing written.
    let before = db.count("SELECT count(*) FROM tasks").await;
    let ghost = "0123456789abcdef0123456789abcdef";
    let body = json!({"tasks": [
        {"kind": "sleep", "payload": {"seconds": 0}},
        {"kind": "sleep", "payload": {"seconds": 0}, "depends_on": [ghost]},
    ]});
    let r = post_batch(&alice, &body, None).await;
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"][0]["index"], 1, "{problem}");
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, before);
}
