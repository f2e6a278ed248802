//! Queue control over HTTP: pausing and resuming a queue while tasks wait
//! and run in it (pushes included, on Postgres), the queues view, start
//! deadlines (`expired`), and retry by filter.

use std::time::{Duration, Instant};

use errand::app::Mode;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestApp, TestDb, eventually};

on_both_stores!(
    a_paused_queue_starts_nothing_then_drains_after_resume,
    the_queues_view_shows_pauses_counts_and_the_oldest_wait,
    pausing_an_unknown_or_malformed_queue_is_refused,
    a_task_not_started_by_its_deadline_expires_and_its_dependents_are_cancelled,
    bad_start_deadlines_are_refused_naming_the_field,
    retry_by_filter_requeues_exactly_the_matching_failed_tasks,
);

async fn post(client: &Client, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = client
        .http
        .post(format!("{}{path}", client.base))
        .bearer_auth(&client.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("POST")
}

/// The queue named `name` in `GET /v1/queues`.
async fn queue(client: &Client, name: &str) -> Value {
    let queues = client.get_json("/v1/queues").await;
    queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("queue {name} in {queues}"))
}

/// While a queue is paused no worker starts its tasks, for three heartbeat
/// intervals: neither by a claim nor (Postgres) by a push to the worker's
/// idle slots; the task that was running when it was paused finishes, and
/// after the resume the queue drains.
async fn a_paused_queue_starts_nothing_then_drains_after_resume(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let running = root
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 2}}))
        .await;
    eventually("the first task to run", Duration::from_secs(15), || async {
        (root.task(&running).await["status"] == "running").then_some(())
    })
    .await;
    let r = post(&root, "/v1/queues/default/pause", None).await;
    assert_eq!(r.status(), 200);
    let paused: Value = r.json().await.unwrap();
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["paused_by"], "root");
    let mut waiting = Vec::new();
    for _ in 0..5 {
        waiting.push(
            root.create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}}))
                .await,
        );
    }
    let heartbeat = app.settings.worker.heartbeat_interval;
    let until = Instant::now() + heartbeat * 3;
    while Instant::now() < until {
        for token in &waiting {
            let task = root.task(token).await;
            assert_eq!(task["status"], "queued", "started while paused: {task}");
            assert_eq!(task["attempt"], 0);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = root.wait_done(&running, Duration::from_secs(20)).await;
    assert_eq!(first["status"], "completed", "not interrupted: {first}");
    assert_eq!(
        (
            first["attempt"].as_i64(),
            first["errors"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );
    assert_eq!(queue(&root, "default").await["counts"]["queued"], 5);

    let r = post(&root, "/v1/queues/default/resume", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["paused"], false);
    for token in &waiting {
        let done = root.wait_done(token, Duration::from_secs(20)).await;
        assert_eq!(done["status"], "completed");
        assert_eq!(done["attempt"], 1);
    }
}

async fn the_queues_view_shows_pauses_counts_and_the_oldest_wait(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        s.queues.insert(
            "gpu".into(),
            errand::config::QueueSettings {
                global_limit: Some(2),
            },
        );
    })
    .await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let admin = Client::new(&app.base, &app.token("ops", "admin", Some("shop")).await);
    root.create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}, "queue": "mail"}))
        .await;
    root.create_ok(
        json!({"kind": "sleep", "payload": {"seconds": 1}, "queue": "mail", "delay": 600}),
    )
    .await;
    let view = admin.get_json("/v1/queues").await;
    let names: Vec<&str> = view["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["default", "gpu", "mail"],
        "configured, the kinds', with tasks"
    );
    let gpu = queue(&admin, "gpu").await;
    assert_eq!(gpu["global_limit"], 2);
    assert_eq!(gpu["paused"], false);
    assert_eq!(gpu["oldest_queued_seconds"], Value::Null);
    assert_eq!(
        gpu["counts"],
        json!({"waiting": 0, "queued": 0, "running": 0})
    );
    let mail = queue(&admin, "mail").await;
    assert_eq!(mail["counts"]["queued"], 2);
    let waited = mail["oldest_queued_seconds"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&waited), "{mail}");
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("errand_queue_oldest_queued_seconds{queue=\"mail\"}"),
        "the autoscaler's signal: {metrics}"
    );

    post(&root, "/v1/queues/mail/pause", None).await;
    let again = post(&root, "/v1/queues/mail/pause", None).await;
    assert_eq!(again.status(), 200, "pausing a paused queue is harmless");
    let paused = queue(&admin, "mail").await;
    assert_eq!(
        (paused["paused"].clone(), paused["paused_by"].clone()),
        (json!(true), json!("root"))
    );
    assert!(paused["paused_at"].is_string());
    let r = post(&admin, "/v1/queues/mail/resume", None).await;
    assert_eq!(r.status(), 403, "only superusers steer queues");
}

async fn pausing_an_unknown_or_malformed_queue_is_refused(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let r = post(&root, "/v1/queues/nowhere/pause", None).await;
    let problem = crate::problem(r, 404).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("nowhere"),
        "{problem}"
    );
    let r = post(&root, "/v1/queues/no%20spaces/pause", None).await;
    let problem = crate::problem(r, 422).await;
    assert!(
        problem["detail"].as_str().unwrap().starts_with("queue:"),
        "{problem}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM queues").await,
        0,
        "nothing written"
    );
}

async fn a_task_not_started_by_its_deadline_expires_and_its_dependents_are_cancelled(
    backend: Backend,
) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    assert_eq!(
        post(&root, "/v1/queues/default/pause", None).await.status(),
        200
    );
    let parent = root
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}, "expires_in": 1}))
        .await;
    let created = root.task(&parent).await;
    assert!(created["start_by"].is_string(), "{created}");
    let child = root
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}, "depends_on": [parent]}))
        .await;
    let expired = root.wait_done(&parent, Duration::from_secs(15)).await;
    assert_eq!(expired["status"], "expired", "{expired}");
    assert_eq!(expired["attempt"], 0, "it never ran");
    assert_eq!(expired["started_at"], Value::Null);
    assert!(expired["error"].as_str().unwrap().contains("start_by"));
    let child = root.wait_done(&child, Duration::from_secs(15)).await;
    assert_eq!(child["status"], "cancelled");
    assert!(
        child["error"].as_str().unwrap().contains("ended expired"),
        "{child}"
    );
    // Operators find it by its status, count it, and may retry it: the
    // deadline no longer holds.
    let page = root.get_json("/v1/tasks?status=expired").await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 1);
    let stats = root.get_json("/v1/tasks/stats").await;
    assert_eq!(stats["by_status"]["expired"], 1);
    post(&root, "/v1/queues/default/resume", None).await;
    let child_token = child["token"].as_str().unwrap().to_string();
    let r = post(&root, &format!("/v1/tasks/{child_token}/retry"), None).await;
    let problem = crate::problem(r, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("depends on"),
        "{problem}"
    );
    let r = post(&root, &format!("/v1/tasks/{parent}/retry"), None).await;
    assert_eq!(r.status(), 202);
    let retried: Value = r.json().await.unwrap();
    assert_eq!(retried["start_by"], Value::Null);
    let done = root.wait_done(&parent, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed");
    let r = post(&root, &format!("/v1/tasks/{child_token}/retry"), None).await;
    assert_eq!(r.status(), 202, "its parent completed");
    let done = root.wait_done(&child_token, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "completed");
}

async fn bad_start_deadlines_are_refused_naming_the_field(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let past = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    for (extra, field) in [
        (json!({"start_by": past}), "start_by"),
        (json!({"start_by": soon, "delay": 60}), "start_by"),
        (json!({"start_by": "tomorrow"}), "start_by"),
        (json!({"expires_in": 0}), "expires_in"),
        (json!({"expires_in": -3}), "expires_in"),
        (json!({"expires_in": "soon"}), "expires_in"),
        (json!({"expires_in": 5, "start_by": soon}), "expires_in"),
    ] {
        let mut body = json!({"kind": "sleep", "payload": {"seconds": 1}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = alice.create(body.clone()).await;
        let problem = crate::problem(r, 422).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with(field), "{body}: {detail}");
    }
    assert_eq!(crate::count_tasks(&db).await, 0, "nothing written");
}

async fn retry_by_filter_requeues_exactly_the_matching_failed_tasks(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let failing = |queue: &str| json!({"kind": "sleep", "payload": {"seconds": 0, "fail": true}, "max_attempts": 1, "queue": queue});
    let mut mail = Vec::new();
    for _ in 0..3 {
        mail.push(root.create_ok(failing("default")).await);
    }
    let other = root
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0, "fail": true}, "max_attempts": 1, "priority": 5}))
        .await;
    let ok = root
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}}))
        .await;
    for token in mail.iter().chain([&other, &ok]) {
        root.wait_done(token, Duration::from_secs(20)).await;
    }
    // Refused: an empty filter without "all", a bad filter value, a user.
    let r = post(&root, "/v1/tasks/retry", Some(json!({}))).await;
    crate::problem(r, 422).await;
    let r = post(
        &root,
        "/v1/tasks/retry",
        Some(json!({"status": "finished"})),
    )
    .await;
    crate::problem(r, 422).await;
    let r = post(&alice, "/v1/tasks/retry", Some(json!({"status": "failed"}))).await;
    crate::problem(r, 403).await;

    // The three failed tasks of priority 0 are told apart from the other
    // failed one by their creation window: the filter's fields are the
    // listing's.
    let since = root.task(&mail[0]).await["created_at"].clone();
    let before = root.task(&other).await["created_at"].clone();
    let r = post(
        &root,
        "/v1/tasks/retry",
        Some(json!({"status": ["failed", "completed"], "created_after": since, "created_before": before})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"retried": 3}));
    for token in &mail {
        let task = root.wait_done(token, Duration::from_secs(20)).await;
        assert_eq!(task["attempt"], 2, "a new attempt: {task}");
        assert_eq!(task["errors"].as_array().unwrap().len(), 2, "history kept");
    }
    assert_eq!(root.task(&other).await["attempt"], 1, "not matched");
    assert_eq!(root.task(&ok).await["attempt"], 1, "completed: not retried");
    let r = post(&root, "/v1/tasks/retry", Some(json!({"all": true}))).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"retried": 4}));
}
