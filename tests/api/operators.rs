//! Operators: listing and filters, stats, retry, bulk cancel, workers,
//! kinds, metrics, retention, and the access matrix.

use std::collections::HashSet;
use std::time::Duration;

use errand::app::Mode;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestApp, TestDb, eventually};

on_both_stores!(
    every_route_answers_every_role_as_the_access_table_says,
    each_role_lists_exactly_the_tasks_it_may_see,
    filters_match_exactly_and_combine,
    pagination_is_stable_while_tasks_are_added,
    hostile_filter_values_match_nothing,
    bad_filter_values_get_400_naming_the_field,
    stats_count_by_status_and_kind,
    retry_requeues_an_ended_task_keeping_its_history,
    bulk_cancel_cancels_what_the_filter_matches,
    workers_view_lists_live_workers,
    kinds_and_metrics_are_served,
    finished_tasks_past_their_retention_are_deleted,
);

/// The people of these tests: two users and two admins of two products,
/// and a superuser.
struct Cast {
    alice: Client,
    bob: Client,
    carol: Client,
    shop_admin: Client,
    blog_admin: Client,
    root: Client,
    anonymous: Client,
}

async fn cast(app: &TestApp) -> Cast {
    let client = |token: String| Client::new(&app.base, &token);
    Cast {
        alice: client(app.token("alice", "user", Some("shop")).await),
        bob: client(app.token("bob", "user", Some("shop")).await),
        carol: client(app.token("carol", "user", Some("blog")).await),
        shop_admin: client(app.token("shop-admin", "admin", Some("shop")).await),
        blog_admin: client(app.token("blog-admin", "admin", Some("blog")).await),
        root: client(app.token("root", "superuser", None).await),
        anonymous: client(String::new()),
    }
}

fn sleep_task(seconds: f64) -> Value {
    json!({"kind": "sleep", "payload": {"seconds": seconds}})
}

/// A task that stays queued (no worker runs in api mode, and it is far off).
fn parked() -> Value {
    json!({"kind": "sleep", "payload": {"seconds": 1}, "delay": 3600})
}

async fn send(client: &Client, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let url = format!("{}{path}", client.base);
    let mut request = match method {
        "GET" => client.http.get(url),
        "POST" => client.http.post(url),
        other => panic!("method {other}"),
    };
    if !client.token.is_empty() {
        request = request.bearer_auth(&client.token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

async fn list(client: &Client, query: &str) -> (Vec<String>, Option<String>) {
    let r = send(client, "GET", &format!("/v1/tasks?{query}"), None).await;
    assert_eq!(r.status(), 200, "GET /v1/tasks?{query}");
    let body: Value = r.json().await.unwrap();
    let tokens = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_string())
        .collect();
    (tokens, body["next_cursor"].as_str().map(String::from))
}

fn set(tokens: &[&String]) -> HashSet<String> {
    tokens.iter().map(|t| t.to_string()).collect()
}

async fn every_route_answers_every_role_as_the_access_table_says(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let c = cast(&app).await;
    // Who, relative to a task of alice's (user, product "shop").
    let who: [(&str, &Client); 6] = [
        ("anonymous", &c.anonymous),
        ("owner", &c.alice),
        ("other user", &c.bob),
        ("product admin", &c.shop_admin),
        ("other admin", &c.blog_admin),
        ("superuser", &c.root),
    ];
    // One row per route: the expected status for each of `who`, in order.
    // "task" routes act on a fresh task of alice's; "own" ones on a fresh
    // task of the caller's own.
    let table: [(&str, &str, &str, [u16; 6]); 20] = [
        (
            "GET",
            "/v1/tasks/{task}",
            "queued",
            [401, 200, 404, 200, 404, 200],
        ),
        (
            "GET",
            "/v1/tasks/{own}",
            "queued",
            [401, 200, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/v1/tasks/{task}/cancel",
            "queued",
            [401, 403, 404, 403, 404, 200],
        ),
        (
            "POST",
            "/v1/tasks/{own}/cancel",
            "queued",
            [401, 403, 403, 403, 403, 200],
        ),
        (
            "POST",
            "/v1/tasks/{task}/retry",
            "cancelled",
            [401, 403, 404, 403, 404, 202],
        ),
        (
            "POST",
            "/v1/tasks/{own}/retry",
            "cancelled",
            [401, 403, 403, 403, 403, 202],
        ),
        ("POST", "/v1/tasks", "", [401, 202, 202, 202, 202, 202]),
        (
            "POST",
            "/v1/tasks/batch",
            "",
            [401, 202, 202, 202, 202, 202],
        ),
        ("GET", "/v1/tasks", "", [401, 200, 200, 200, 200, 200]),
        ("GET", "/v1/tasks/stats", "", [401, 403, 403, 200, 200, 200]),
        (
            "POST",
            "/v1/tasks/cancel",
            "",
            [401, 403, 403, 403, 403, 200],
        ),
        (
            "POST",
            "/v1/tasks/retry",
            "",
            [401, 403, 403, 403, 403, 200],
        ),
        ("GET", "/v1/workers", "", [401, 403, 403, 200, 200, 200]),
        ("GET", "/v1/queues", "", [401, 403, 403, 200, 200, 200]),
        (
            "POST",
            "/v1/queues/default/pause",
            "",
            [401, 403, 403, 403, 403, 200],
        ),
        (
            "POST",
            "/v1/queues/default/resume",
            "",
            [401, 403, 403, 403, 403, 200],
        ),
        ("GET", "/v1/schedules", "", [401, 403, 403, 200, 200, 200]),
        ("GET", "/v1/kinds", "", [401, 200, 200, 200, 200, 200]),
        ("GET", "/v1/me", "", [401, 200, 200, 200, 200, 200]),
        ("GET", "/readyz", "", [200, 200, 200, 200, 200, 200]),
    ];
    for (method, route, state, expected) in table {
        for ((name, client), status) in who.iter().zip(expected) {
            let owner = if route.contains("{own}") && *name != "anonymous" {
                *client
            } else {
                &c.alice
            };
            let path = if route.contains('{') {
                let task = owner.create_ok(parked()).await;
                if state == "cancelled" {
                    assert_eq!(c.root.cancel(&task).await.status(), 200);
                }
                route.replace("{task}", &task).replace("{own}", &task)
            } else {
                route.to_string()
            };
            let body = match (method, route) {
                ("POST", "/v1/tasks") => Some(parked()),
                ("POST", "/v1/tasks/batch") => Some(json!({"tasks": [parked(), parked()]})),
                ("POST", "/v1/tasks/cancel" | "/v1/tasks/retry") => {
                    Some(json!({"kind": "no-such-kind"}))
                }
                _ => None,
            };
            let r = send(client, method, &path, body).await;
            assert_eq!(r.status(), status, "{method} {route} as {name}");
        }
    }
}

async fn each_role_lists_exactly_the_tasks_it_may_see(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let c = cast(&app).await;
    let a = c.alice.create_ok(parked()).await;
    let b = c.bob.create_ok(parked()).await;
    let k = c.carol.create_ok(parked()).await;
    let r = c.root.create_ok(parked()).await;
    for (name, client, expected) in [
        ("alice", &c.alice, set(&[&a])),
        ("bob", &c.bob, set(&[&b])),
        ("carol", &c.carol, set(&[&k])),
        ("shop-admin", &c.shop_admin, set(&[&a, &b])),
        ("blog-admin", &c.blog_admin, set(&[&k])),
        ("root", &c.root, set(&[&a, &b, &k, &r])),
    ] {
        let (tokens, _) = list(client, "").await;
        assert_eq!(
            tokens.iter().cloned().collect::<HashSet<_>>(),
            expected,
            "{name}"
        );
        // A filter can't widen what a caller sees.
        let (tokens, _) = list(client, "owner=alice,bob,carol,root").await;
        assert!(
            tokens.iter().all(|t| expected.contains(t)),
            "{name} with an owner filter"
        );
    }
}

async fn filters_match_exactly_and_combine(backend: Backend) {
    use errand::tasks::{AttemptOutcome, Backoff, WorkerId, end_attempt};
    let db = TestDb::of(backend).await;
    // No worker runs in api mode: the test moves tasks along itself, through
    // the store, as a worker would.
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let store = db.store();
    let c = cast(&app).await;
    let backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(1),
    };
    let claim_and_end = |outcome: Option<AttemptOutcome>| {
        let store = store.clone();
        async move {
            let now = chrono::Utc::now();
            let task = store
                .task_claim(&errand::store::TaskClaim {
                    queue: "default",
                    worker: &WorkerId("w".into()),
                    kinds: None,
                    limit: 1,
                    lease_until: now + chrono::Duration::seconds(60),
                    now,
                    global_limit: None,
                })
                .await
                .unwrap()
                .remove(0);
            if let Some(outcome) = outcome {
                let end = end_attempt(1, 1, outcome, &backoff, 0.0, chrono::Utc::now());
                store
                    .task_end(&crate::common::ending(task.id, 1, &end), chrono::Utc::now())
                    .await
                    .unwrap()
                    .unwrap();
            }
        }
    };
    let done = c.alice.create_ok(sleep_task(0.0)).await;
    claim_and_end(Some(AttemptOutcome::Succeeded(json!(1)))).await;
    let failed = c.alice.create_ok(sleep_task(0.0)).await;
    claim_and_end(Some(AttemptOutcome::Failed {
        message: "no".into(),
        retryable: false,
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(5)).await; // a clear line in time
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let running = c.alice.create_ok(sleep_task(0.0)).await;
    claim_and_end(None).await;
    assert_eq!(c.root.cancel(&running).await.status(), 202);
    let queued = c.bob.create_ok(parked()).await;
    let other_queue = c
        .bob
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 1}, "queue": "slow", "delay": 3600}),
        )
        .await;
    let cancelled = c.carol.create_ok(parked()).await;
    assert_eq!(c.root.cancel(&cancelled).await.status(), 200);
    let between = urlencode(&between.to_rfc3339());

    for (query, expected) in [
        ("status=completed".to_string(), set(&[&done])),
        ("status=failed,completed".into(), set(&[&done, &failed])),
        (
            "status=failed&status=completed".into(),
            set(&[&done, &failed]),
        ),
        (
            "status=queued&owner=bob".into(),
            set(&[&queued, &other_queue]),
        ),
        (
            "status=queued&owner=bob&queue=slow".into(),
            set(&[&other_queue]),
        ),
        ("owner=alice&status=failed".into(), set(&[&failed])),
        ("owner=carol".into(), set(&[&cancelled])),
        (
            "product=shop&status=queued".into(),
            set(&[&queued, &other_queue]),
        ),
        ("product=blog".into(), set(&[&cancelled])),
        (
            "kind=sleep&owner=carol,bob".into(),
            set(&[&queued, &other_queue, &cancelled]),
        ),
        ("kind=transcode".into(), set(&[])),
        (format!("created_before={between}"), set(&[&done, &failed])),
        (
            format!("created_after={between}&owner=alice"),
            set(&[&running]),
        ),
        (format!("finished_after={between}"), set(&[&cancelled])),
        (
            format!("finished_before={between}&status=completed"),
            set(&[&done]),
        ),
        ("cancel_requested=true".into(), set(&[&running])),
        ("cancel_requested=true&status=queued".into(), set(&[])),
        (
            "cancel_requested=false&owner=alice".into(),
            set(&[&done, &failed]),
        ),
    ] {
        let (tokens, _) = list(&c.root, &query).await;
        assert_eq!(
            tokens.iter().cloned().collect::<HashSet<_>>(),
            expected,
            "?{query}"
        );
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn pagination_is_stable_while_tasks_are_added(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let c = cast(&app).await;
    let mut created = Vec::new();
    for _ in 0..25 {
        created.push(c.alice.create_ok(parked()).await);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut query = "limit=10".to_string();
    let mut pages = 0;
    loop {
        let r = send(&c.alice, "GET", &format!("/v1/tasks?{query}"), None).await;
        let link = r
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let body: Value = r.json().await.unwrap();
        pages += 1;
        seen.extend(
            body["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["token"].as_str().unwrap().to_string()),
        );
        // New tasks arrive while the client pages.
        for _ in 0..3 {
            c.alice.create_ok(parked()).await;
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                let link = link.expect("a Link header while there is a next page");
                assert!(
                    link.contains(&format!("cursor={cursor}")) && link.ends_with("rel=\"next\""),
                    "{link}"
                );
                assert!(
                    link.contains("limit=10"),
                    "the link keeps the query: {link}"
                );
                query = format!("limit=10&cursor={cursor}");
            }
            None => {
                assert!(link.is_none());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    created.reverse(); // newest first
    assert_eq!(seen, created, "every task once, none skipped, newest first");
}

async fn hostile_filter_values_match_nothing(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let c = cast(&app).await;
    c.alice.create_ok(parked()).await;
    for query in [
        "owner=%27%20OR%201%3D1%20--",
        "kind=sleep%27%3B%20DROP%20TABLE%20tasks%3B%20--",
        "queue=%22%29%20OR%20%28%221%22%3D%221",
        "product=%25",
        "owner=*",
    ] {
        let (tokens, _) = list(&c.root, query).await;
        assert!(tokens.is_empty(), "?{query} matched {tokens:?}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM tasks").await,
        1,
        "the table is intact"
    );
}

async fn bad_filter_values_get_400_naming_the_field(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let c = cast(&app).await;
    for (query, field) in [
        ("status=finished", "status"),
        ("created_after=yesterday", "created_after"),
        ("finished_before=2026-13-01", "finished_before"),
        ("cancel_requested=maybe", "cancel_requested"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=forged", "cursor"),
        ("colour=red", "colour"),
        (
            "owner=alice&created_after=2026-01-01T00:00:00Z&created_after=2026-01-02T00:00:00Z",
            "created_after",
        ),
    ] {
        let r = send(&c.root, "GET", &format!("/v1/tasks?{query}"), None).await;
        assert_eq!(r.status(), 400, "?{query}");
        let body: Value = r.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with(field), "?{query}: {detail}");
    }
}

async fn stats_count_by_status_and_kind(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let c = cast(&app).await;
    for _ in 0..3 {
        c.alice.create_ok(parked()).await;
    }
    let cancelled = c.carol.create_ok(parked()).await;
    c.root.cancel(&cancelled).await;
    let stats = |client: &Client| {
        let client = client.clone();
        async move {
            let r = send(&client, "GET", "/v1/tasks/stats", None).await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let all = stats(&c.root).await;
    assert_eq!(all["total"], 4);
    assert_eq!(all["by_status"]["queued"], 3);
    assert_eq!(all["by_status"]["cancelled"], 1);
    assert_eq!(all["by_status"]["running"], 0, "every status is there");
    assert_eq!(
        all["by_kind"]["sleep"],
        json!({"queued": 3, "cancelled": 1})
    );
    let shop = stats(&c.shop_admin).await;
    assert_eq!(shop["total"], 3, "an admin counts its product's tasks only");
    let blog = stats(&c.blog_admin).await;
    assert_eq!(blog["by_kind"]["sleep"], json!({"cancelled": 1}));
}

async fn retry_requeues_an_ended_task_keeping_its_history(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let c = cast(&app).await;
    let failing = c
        .alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0, "fail": true}, "max_attempts": 1}),
        )
        .await;
    let first = c.alice.wait_done(&failing, Duration::from_secs(10)).await;
    assert_eq!(
        (first["status"].as_str(), first["attempt"].as_i64()),
        (Some("failed"), Some(1))
    );

    let r = send(&c.root, "POST", &format!("/v1/tasks/{failing}/retry"), None).await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v1/tasks/{failing}")
    );
    let retried: Value = r.json().await.unwrap();
    assert!(matches!(
        retried["status"].as_str(),
        Some("queued" | "running" | "failed")
    ));
    let second = c.alice.wait_done(&failing, Duration::from_secs(10)).await;
    assert_eq!(second["status"], "failed");
    assert_eq!(second["attempt"], 2, "a new attempt");
    assert_eq!(second["max_attempts"], 2);
    assert_eq!(
        second["errors"].as_array().unwrap().len(),
        2,
        "the history is kept"
    );

    let ok = c.alice.create_ok(sleep_task(0.0)).await;
    c.alice.wait_done(&ok, Duration::from_secs(10)).await;
    let r = send(&c.root, "POST", &format!("/v1/tasks/{ok}/retry"), None).await;
    assert_eq!(r.status(), 409, "a completed task is not retried");
    let queued = c.alice.create_ok(parked()).await;
    let r = send(&c.root, "POST", &format!("/v1/tasks/{queued}/retry"), None).await;
    assert_eq!(r.status(), 409, "nor one that has not ended");
}

async fn bulk_cancel_cancels_what_the_filter_matches(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let c = cast(&app).await;
    let mut parked_alice = Vec::new();
    for _ in 0..3 {
        parked_alice.push(c.alice.create_ok(parked()).await);
    }
    let parked_bob = c.bob.create_ok(parked()).await;
    let running = c.alice.create_ok(sleep_task(60.0)).await;
    eventually("the long task to run", Duration::from_secs(10), || async {
        (c.alice.task(&running).await["status"] == "running").then_some(())
    })
    .await;

    let r = send(&c.root, "POST", "/v1/tasks/cancel", Some(json!({}))).await;
    assert_eq!(r.status(), 422, "an empty filter must say all: true");
    let r = send(
        &c.root,
        "POST",
        "/v1/tasks/cancel",
        Some(json!({"status": "bogus"})),
    )
    .await;
    assert_eq!(r.status(), 422);

    let r = send(
        &c.root,
        "POST",
        "/v1/tasks/cancel",
        Some(json!({"owner": "alice"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"cancelled": 3, "cancel_requested": 1})
    );
    for t in &parked_alice {
        assert_eq!(c.alice.task(t).await["status"], "cancelled");
    }
    assert_eq!(
        c.bob.task(&parked_bob).await["status"],
        "queued",
        "bob's task is untouched"
    );
    let stopped = c.alice.wait_done(&running, Duration::from_secs(5)).await;
    assert_eq!(stopped["status"], "cancelled");

    let r = send(
        &c.root,
        "POST",
        "/v1/tasks/cancel",
        Some(json!({"all": true})),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"cancelled": 1, "cancel_requested": 0})
    );
}

async fn workers_view_lists_live_workers(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        s.worker.queues = errand::config::parse_queues("default,slow=1").unwrap()
    })
    .await;
    let c = cast(&app).await;
    let workers = eventually(
        "the worker to register",
        Duration::from_secs(10),
        || async {
            let body: Value = send(&c.shop_admin, "GET", "/v1/workers", None)
                .await
                .json()
                .await
                .ok()?;
            let workers = body["workers"].as_array()?.clone();
            (!workers.is_empty()).then_some(workers)
        },
    )
    .await;
    assert_eq!(workers.len(), 1);
    let w = &workers[0];
    assert_eq!(w["pid"], std::process::id());
    assert_eq!(w["queues"], json!({"default": 4, "slow": 1}));
    assert_eq!(w["concurrency"], 5);
    for field in ["id", "host", "started_at", "heartbeat_at", "running"] {
        assert!(!w[field].is_null(), "{field}");
    }
    let long = c.alice.create_ok(sleep_task(30.0)).await;
    eventually("the running count", Duration::from_secs(10), || async {
        let body: Value = send(&c.root, "GET", "/v1/workers", None)
            .await
            .json()
            .await
            .ok()?;
        (body["workers"][0]["running"] == 1).then_some(())
    })
    .await;
    c.root.cancel(&long).await;
    let id = w["id"].as_str().unwrap().to_string();
    app.stop().await;
    // A worker that stopped is gone from the view (it unregisters itself;
    // one that died is pruned once its lease is over).
    let other = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let body: Value = send(
        &Client::new(&other.base, &c.root.token),
        "GET",
        "/v1/workers",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        body["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["id"] != id.as_str())
    );
}

async fn kinds_and_metrics_are_served(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let c = cast(&app).await;
    let body: Value = send(&c.alice, "GET", "/v1/kinds", None)
        .await
        .json()
        .await
        .unwrap();
    let sleep = &body["kinds"][0];
    assert_eq!(sleep["name"], "sleep");
    assert_eq!(sleep["queue"], "default");
    assert_eq!(sleep["max_attempts"], 3);

    let task = c.alice.create_ok(sleep_task(0.0)).await;
    c.alice.wait_done(&task, Duration::from_secs(10)).await;
    c.alice.create_ok(parked()).await;
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "errand_tasks_created_total{kind=\"sleep\"}",
        "errand_tasks_finished_total{kind=\"sleep\",status=\"completed\"}",
        "errand_task_run_seconds_bucket{kind=\"sleep\"",
        "errand_task_pickup_seconds_bucket{kind=\"sleep\"",
        // (The value is shared by every app in this test process.)
        "errand_queue_depth{queue=\"default\",status=\"queued\"}",
        "errand_tasks_running",
        "errand_http_requests_total{route=\"/v1/tasks\",method=\"POST\",status=\"202\"}",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }

    // Exposure is configurable.
    let guarded = TestApp::spawn(&db, Mode::Api, |s| {
        s.metrics.expose = errand::config::MetricsExposure::Superuser
    })
    .await;
    let url = guarded.url("/metrics");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 401);
    let as_user = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&c.alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), 403);
    let as_root = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&c.root.token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_root.status(), 200);
    let off = TestApp::spawn(&db, Mode::Api, |s| {
        s.metrics.expose = errand::config::MetricsExposure::Off
    })
    .await;
    assert_eq!(
        reqwest::get(off.url("/metrics")).await.unwrap().status(),
        404
    );
}

async fn finished_tasks_past_their_retention_are_deleted(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        s.retention.completed = Duration::from_secs(1);
        s.retention.failed = Duration::from_secs(3600);
        s.retention.interval = Duration::from_millis(200);
        s.retention.batch = 2;
    })
    .await;
    let c = cast(&app).await;
    let mut completed = Vec::new();
    for _ in 0..5 {
        completed.push(c.alice.create_ok(sleep_task(0.0)).await);
    }
    let failed = c
        .alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0, "fail": true}, "max_attempts": 1}),
        )
        .await;
    let queued = c.alice.create_ok(parked()).await;
    for t in completed.iter().chain([&failed]) {
        c.alice.wait_done(t, Duration::from_secs(10)).await;
    }
    eventually(
        "completed tasks to be deleted",
        Duration::from_secs(15),
        || async {
            let mut gone = 0;
            for t in &completed {
                gone += usize::from(c.alice.get(t).await.status() == 404);
            }
            (gone == completed.len()).then_some(())
        },
    )
    .await;
    assert_eq!(
        c.alice.task(&failed).await["status"],
        "failed",
        "kept for retention.failed"
    );
    assert_eq!(
        c.alice.task(&queued).await["status"],
        "queued",
        "unfinished tasks are never deleted"
    );
}

/// A listing stuck behind a lock (or just slow) is cut off by
/// `http.query_timeout` and answered 503, never a 500 or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_listing_answers_503_on_postgres() {
    use sqlx::{Connection, Executor};
    let db = TestDb::postgres().await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        s.http.query_timeout = Duration::from_millis(300)
    })
    .await;
    let c = cast(&app).await;
    c.alice.create_ok(parked()).await;
    let mut locker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = send(&c.root, "GET", "/v1/tasks", None).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let r = send(&c.root, "GET", "/v1/tasks/stats", None).await;
    assert_eq!(r.status(), 503);
    locker.execute("ROLLBACK").await.unwrap();
    assert_eq!(send(&c.root, "GET", "/v1/tasks", None).await.status(), 200);
}

/// The OpenAPI description names every route and every schema, and the docs
/// page loads nothing from the internet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route_and_docs_need_no_internet() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let spec: Value = reqwest::get(app.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut routes: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    routes.sort();
    let mut expected = vec![
        "POST /v1/tasks",
        "POST /v1/tasks/batch",
        "GET /v1/tasks",
        "GET /v1/tasks/{token}",
        "POST /v1/tasks/{token}/cancel",
        "POST /v1/tasks/{token}/retry",
        "GET /v1/tasks/stats",
        "POST /v1/tasks/cancel",
        "POST /v1/tasks/retry",
        "GET /v1/queues",
        "POST /v1/queues/{name}/pause",
        "POST /v1/queues/{name}/resume",
        "POST /v1/schedules",
        "GET /v1/schedules",
        "GET /v1/schedules/{name}",
        "PATCH /v1/schedules/{name}",
        "DELETE /v1/schedules/{name}",
        "POST /v1/schedules/{name}/pause",
        "POST /v1/schedules/{name}/resume",
        "POST /v1/files",
        "GET /v1/tasks/{token}/files/{name}",
        "GET /v1/workers",
        "GET /v1/kinds",
        "GET /v1/me",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /openapi.json",
        "GET /docs",
        "GET /ui",
    ];
    expected.sort_unstable();
    assert_eq!(routes, expected);
    // Every route that takes a token says so, and says 401.
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op.get("security").is_some() {
                assert!(
                    op["responses"].get("401").is_some(),
                    "{method} {path} lacks 401"
                );
            }
        }
    }
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for name in [
        "TaskView",
        "TaskDraft",
        "Problem",
        "TaskPage",
        "TaskFilter",
        "WorkerInfo",
        "Status",
        "Matching",
        "QueueView",
        "ScheduleDraft",
        "ScheduleView",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    // The status enum and the create body know what this release added.
    let statuses = &schemas["Status"]["enum"];
    assert!(
        statuses.as_array().unwrap().contains(&json!("expired")),
        "{statuses}"
    );
    for field in ["start_by", "expires_in"] {
        assert!(
            schemas["TaskDraft"]["properties"].get(field).is_some(),
            "TaskDraft.{field}"
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // The docs page and everything it loads come from errand itself.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .unwrap();
    let page = http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external links:\n{html}"
    );
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset));
        let r = http
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    let init = http
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        init.contains("/openapi.json"),
        "the page renders our spec:\n{init}"
    );
}
