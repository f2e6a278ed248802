//! Black-box HTTP tests: the app spawned on port 0 against a fresh Postgres
//! database, driven with a real HTTP client.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod batch;
mod callbacks;
mod control;
mod dashboard;
mod files;
mod library;
mod operators;
mod schedules;
mod workflows;

use std::time::{Duration, Instant};

use common::{Backend, Client, TestApp, TestDb, eventually};
use errand::app::Mode;
use serde_json::{Value, json};

on_both_stores!(
    sleep_task_goes_from_202_to_completed_with_growing_progress,
    task_json_has_exactly_the_documented_fields,
    callers_see_only_what_their_role_allows,
    missing_bad_and_revoked_tokens_get_401,
    bad_requests_get_clear_problems_and_write_nothing,
    nul_characters_get_400_naming_where_and_write_nothing,
    unknown_routes_and_methods_and_tokens_are_problems,
    polling_with_the_etag_gets_304_until_the_task_changes,
    concurrent_polls_read_together_each_get_their_own_task,
    retry_after_paces_polls_by_where_the_task_is,
    delay_and_run_at_hold_a_task_back,
    superuser_cancel_stops_a_running_task_within_a_heartbeat,
    queued_task_cancels_at_once_and_finished_task_refuses,
    cancel_role_can_be_lowered_to_admin_or_owner,
    a_second_api_process_answers_for_the_same_task,
    unreachable_database_gets_503_with_retry_after,
);

async fn count_tasks(db: &TestDb) -> i64 {
    db.count("SELECT count(*) FROM tasks").await
}

async fn problem(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "errors are RFC 9457 problem details"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:errand:problem:")
    );
    assert!(!body["title"].as_str().unwrap().is_empty());
    body
}

/// `Retry-After` as `tasks::PollPace` says: the base pace while running,
/// the time until a delayed task is due, and less often the longer a task
/// has waited in its queue; none once it ended.
async fn retry_after_paces_polls_by_where_the_task_is(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let retry_after = |r: &reqwest::Response| -> Option<u64> {
        let value = r.headers().get("retry-after")?;
        Some(value.to_str().unwrap().parse().unwrap())
    };

    let delayed = alice
        .create(json!({"kind": "sleep", "payload": {"seconds": 0}, "delay": 20}))
        .await;
    let secs = retry_after(&delayed).unwrap();
    assert!((19..=20).contains(&secs), "due in 20 s: {secs}");

    let running = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 30}}))
        .await;
    eventually("the task to run", Duration::from_secs(15), || async {
        (alice.task(&running).await["status"] == "running").then_some(())
    })
    .await;
    assert_eq!(retry_after(&alice.get(&running).await), Some(2));

    // Queued a minute ago in a queue no worker serves: a quarter of that.
    let minute_ago = chrono::Utc::now() - chrono::Duration::seconds(60);
    let waiting = errand::tasks::NewTask {
        queue: "nobody".into(),
        owner: "alice".into(),
        created_at: minute_ago,
        run_at: minute_ago,
        ..common::new_task("sleep", json!({"seconds": 0}), 3)
    };
    common::insert_task(&db.store(), &waiting).await;
    let secs = retry_after(&alice.get(&waiting.token.to_string()).await).unwrap();
    assert!((15..=16).contains(&secs), "a quarter of 60 s: {secs}");

    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    root.cancel(&running).await;
    let ended = alice.wait_done(&running, Duration::from_secs(15)).await;
    assert_eq!(ended["done"], true);
    assert_eq!(retry_after(&alice.get(&running).await), None);
}

async fn sleep_task_goes_from_202_to_completed_with_growing_progress(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);

    let r = alice
        .create(json!({"kind": "sleep", "payload": {"seconds": 1.5}}))
        .await;
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(r.headers().contains_key("retry-after"));
    let created: Value = r.json().await.unwrap();
    let token = created["token"].as_str().unwrap();
    assert_eq!(location, format!("/v1/tasks/{token}"));
    assert_eq!(created["links"]["self"], location);
    assert_eq!(created["owner"], "alice");
    assert_eq!(created["done"], false);
    assert_eq!(created["payload"], json!({"seconds": 1.5}));

    // Poll as a client would; collect the progress seen while running.
    let seen = std::sync::Mutex::new(Vec::new());
    let done = eventually("the task to complete", Duration::from_secs(15), || async {
        let r = alice.get(token).await;
        assert_eq!(r.status(), 200);
        let not_done = r.headers().contains_key("retry-after");
        let task: Value = r.json().await.unwrap();
        assert_eq!(
            not_done,
            task["done"] == false,
            "Retry-After only while not done"
        );
        if task["status"] == "running" {
            seen.lock()
                .unwrap()
                .push(task["progress"]["fraction"].as_f64().unwrap());
        }
        (task["done"] == true).then_some(task)
    })
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["attempt"], 1);
    assert_eq!(done["result"], json!({"slept": 1.5}));
    assert_eq!(done["progress"]["fraction"], 1.0);
    assert!(done["started_at"].is_string() && done["finished_at"].is_string());
    assert_eq!(done["error"], Value::Null);
    let fractions = seen.into_inner().unwrap();
    let distinct: Vec<f64> = fractions.iter().copied().fold(Vec::new(), |mut v, f| {
        if v.last() != Some(&f) {
            v.push(f);
        }
        v
    });
    assert!(
        distinct.len() >= 3,
        "progress should grow while running: {fractions:?}"
    );
    assert!(distinct.windows(2).all(|w| w[0] < w[1]), "{fractions:?}");
}

async fn task_json_has_exactly_the_documented_fields(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", Some("shop")).await);
    let token = alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 1}, "priority": 3, "max_attempts": 5}),
        )
        .await;
    let task = alice.task(&token).await;
    let mut keys: Vec<&str> = task
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = vec![
        "token",
        "kind",
        "queue",
        "priority",
        "status",
        "progress",
        "attempt",
        "max_attempts",
        "snoozes",
        "owner",
        "product",
        "payload",
        "result",
        "error",
        "errors",
        "done",
        "cancel_requested",
        "depends_on",
        "created_at",
        "run_at",
        "start_by",
        "schedule",
        "scheduled_for",
        "started_at",
        "finished_at",
        "files",
        "links",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(task["files"], json!({"inputs": [], "outputs": []}));
    assert_eq!(task["status"], "queued", "no worker runs in api mode");
    assert_eq!(task["queue"], "default");
    assert_eq!(task["priority"], 3);
    assert_eq!(task["max_attempts"], 5);
    assert_eq!(task["attempt"], 0);
    assert_eq!(task["product"], "shop");
    assert_eq!(task["progress"], json!({"fraction": 0.0, "message": null}));
    assert_eq!(task["errors"], json!([]));
    assert_eq!(task["depends_on"], json!([]));
    assert_eq!(task["cancel_requested"], false);
}

async fn callers_see_only_what_their_role_allows(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", Some("shop")).await);
    let bob = Client::new(&app.base, &app.token("bob", "user", Some("shop")).await);
    let shop_admin = Client::new(
        &app.base,
        &app.token("shop-admin", "admin", Some("shop")).await,
    );
    let blog_admin = Client::new(
        &app.base,
        &app.token("blog-admin", "admin", Some("blog")).await,
    );
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let token = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}}))
        .await;

    for (who, client, status) in [
        ("the owner", &alice, 200),
        ("another user", &bob, 404),
        ("the product's admin", &shop_admin, 200),
        ("another product's admin", &blog_admin, 404),
        ("a superuser", &root, 200),
    ] {
        let r = client.get(&token).await;
        assert_eq!(r.status(), status, "{who}");
        if status == 404 {
            // Exactly like a task that does not exist: nothing leaks.
            let body = problem(r, 404).await;
            let unknown = problem(client.get(&"0".repeat(32)).await, 404).await;
            assert_eq!(body["title"], unknown["title"]);
        }
    }
}

async fn missing_bad_and_revoked_tokens_get_401(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        s.auth.cache_ttl = Duration::from_millis(200)
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let token = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}}))
        .await;
    let http = reqwest::Client::new();
    let url = app.url(&format!("/v1/tasks/{token}"));

    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    problem(r, 401).await;
    problem(
        http.get(&url)
            .bearer_auth("errand_nonsense")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    problem(
        http.get(&url)
            .header("authorization", "Basic YWxpY2U6eA==")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    let r = http
        .post(app.url("/v1/tasks"))
        .json(&json!({"kind": "sleep", "payload": {"seconds": 1}}))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;

    // Revoking takes effect within the cache's lifetime.
    assert_eq!(alice.get(&token).await.status(), 200);
    errand::app::token_revoke(&app.settings, "alice")
        .await
        .unwrap();
    eventually(
        "the revoked token to be refused",
        Duration::from_secs(5),
        || async { (alice.get(&token).await.status() == 401).then_some(()) },
    )
    .await;
}

/// No database text can hold a NUL character (Postgres refuses it): a
/// request holding one, wherever, is a 400 naming where, on both stores.
async fn nul_characters_get_400_naming_where_and_write_nothing(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        s.callbacks.secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into();
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "superuser", None).await);
    for (query, field) in [
        ("owner=%00", "owner"),
        ("kind=sleep,a%00b", "kind"),
        ("queue=q%00", "queue"),
        ("product=%00", "product"),
        ("created_after=%00", "created_after"),
    ] {
        let r = alice
            .http
            .get(app.url(&format!("/v1/tasks?{query}")))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap();
        let p = problem(r, 400).await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(field) && detail.contains("NUL"),
            "?{query}: {detail}"
        );
    }
    let sleep = json!({"seconds": 0});
    for (body, at) in [
        (json!({"kind": "sl\u{0}eep", "payload": sleep}), "/kind"),
        (
            json!({"kind": "sleep", "queue": "q\u{0}", "payload": sleep}),
            "/queue",
        ),
        (
            json!({"kind": "sleep", "payload": sleep, "callback_url": "https://example.com/\u{0}"}),
            "/callback_url",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": 0, "note": ["\u{0}"]}}),
            "/payload/note/0",
        ),
    ] {
        let p = problem(alice.create(body.clone()).await, 400).await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(at) && detail.contains("NUL"),
            "{body}: {detail}"
        );
    }
    let r = alice
        .http
        .post(app.url("/v1/tasks"))
        .bearer_auth(&alice.token)
        // A NUL can't travel in an HTTP header at all; a tab can, and is
        // refused by the key's own rule, as every control character.
        .header("idempotency-key", "a\tb")
        .json(&json!({"kind": "sleep", "payload": sleep}))
        .send()
        .await
        .unwrap();
    let p = problem(r, 400).await;
    assert!(
        p["detail"].as_str().unwrap().starts_with("Idempotency-Key"),
        "{p}"
    );
    let cancel = alice
        .http
        .post(app.url("/v1/tasks/cancel"))
        .bearer_auth(&alice.token)
        .json(&json!({"owner": "x\u{0}"}))
        .send()
        .await
        .unwrap();
    problem(cancel, 400).await;
    assert_eq!(count_tasks(&db).await, 0);
}

async fn bad_requests_get_clear_problems_and_write_nothing(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let token = app.token("alice", "user", None).await;
    let alice = Client::new(&app.base, &token);
    let post_raw = |body: Vec<u8>| {
        let http = reqwest::Client::new();
        let url = app.url("/v1/tasks");
        let token = token.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };

    // 400: not JSON.
    let p = problem(
        post_raw(br#"{"kind": "sleep", "payload": {"seconds"#.to_vec()).await,
        400,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("not valid JSON"),
        "{p}"
    );
    problem(post_raw(Vec::new()).await, 400).await;

    // 413: over http.max_body_bytes (1 MiB by default).
    let mut big = br#"{"kind": "sleep", "payload": {"seconds": 1, "pad": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024));
    big.extend(br#""}}"#);
    let p = problem(post_raw(big).await, 413).await;
    assert!(
        p["detail"].as_str().unwrap().contains("max_body_bytes"),
        "{p}"
    );

    // 422: each names what is wrong.
    for (body, needle) in [
        (json!({"kind": "transcode", "payload": {}}), "unknown kind"),
        (
            json!({"kind": "sleep", "payload": {"seconds": "ten"}}),
            "invalid payload for kind \"sleep\": /seconds: invalid type",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": -1}}),
            "seconds",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": 1, "colour": "red"}}),
            "colour",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": 1}, "colour": "red"}),
            "colour",
        ),
        (json!({"payload": {"seconds": 1}}), "kind"),
        (
            json!({"kind": "sleep", "payload": {"seconds": 1}, "delay": -5}),
            "delay",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": 1}, "max_attempts": 0}),
            "max_attempts",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": 1}, "timeout": 0}),
            "timeout",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": 1}, "queue": "a b"}),
            "queue",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": 1}, "priority": "high"}),
            "priority",
        ),
        (
            json!({"kind": "sleep", "payload": {"seconds": 1}, "run_at": "tomorrow"}),
            "run_at",
        ),
        (json!([1, 2, 3]), "JSON object"),
    ] {
        let p = problem(alice.create(body.clone()).await, 422).await;
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{body} → {detail}");
    }
    assert_eq!(
        count_tasks(&db).await,
        0,
        "a refused request writes nothing"
    );
}

async fn unknown_routes_and_methods_and_tokens_are_problems(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let http = reqwest::Client::new();
    problem(http.get(app.url("/v2/things")).send().await.unwrap(), 404).await;
    let r = http.delete(app.url("/v1/tasks")).send().await.unwrap();
    assert_eq!(
        r.headers()["allow"],
        "GET, POST",
        "a 405 says what is allowed"
    );
    problem(r, 405).await;
    problem(alice.get("not-a-token").await, 404).await;
    problem(alice.get(&"f".repeat(32)).await, 404).await;
    problem(alice.cancel("not-a-token").await, 404).await;
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

async fn polling_with_the_etag_gets_304_until_the_task_changes(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let token = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}}))
        .await;
    let first = alice.get(&token).await;
    assert_eq!(first.headers()["cache-control"], "no-cache");
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    let conditional = || {
        alice
            .http
            .get(app.url(&format!("/v1/tasks/{token}")))
            .bearer_auth(&alice.token)
            .header("if-none-match", &etag)
            .send()
    };
    let r = conditional().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(root.cancel(&token).await.status(), 200);
    let r = conditional().await.unwrap();
    assert_eq!(r.status(), 200, "a changed task is sent again");
}

/// Polls that arrive together are read in one statement: each still gets
/// its own task (or the same 404 as for none), and one asked for twice
/// comes back whole both times. On Postgres each HTTP thread reads them on
/// a pool of its own, and the process holds no more connections than
/// docs/scaling.md counts for it.
async fn concurrent_polls_read_together_each_get_their_own_task(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| s.http.workers = 2).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let bob = Client::new(&app.base, &app.token("bob", "user", None).await);
    let mut mine = Vec::new();
    for i in 0..30 {
        let body = json!({"kind": "sleep", "payload": {"seconds": i}});
        mine.push((alice.create_ok(body).await, i));
    }
    let bobs = bob
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 99}}))
        .await;
    let polls = mine
        .iter()
        .chain(&mine)
        .chain(&mine)
        .map(|(token, seconds)| {
            let alice = &alice;
            async move {
                let r = alice.get(token).await;
                assert_eq!(r.status(), 200);
                let task: Value = r.json().await.unwrap();
                assert_eq!(task["token"], token.as_str());
                assert_eq!(task["payload"]["seconds"], *seconds);
            }
        });
    let foreign = (0..10).map(|_| async { assert_eq!(alice.get(&bobs).await.status(), 404) });
    tokio::join!(
        futures_util::future::join_all(polls),
        futures_util::future::join_all(foreign)
    );
    if backend == Backend::Postgres {
        let d = &app.settings.database;
        let threads = u32::try_from(app.settings.http.workers).unwrap();
        let most = d.max_connections + 1 + threads * d.thread_connections;
        let held = db
            .count(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = 'errand'",
            )
            .await;
        assert!(
            held >= 1 && held <= i64::from(most),
            "{held} connections, at most {most}"
        );
    }
}

async fn delay_and_run_at_hold_a_task_back(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let created = Instant::now();
    let delayed = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}, "delay": 1.5}))
        .await;
    let far = alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0}, "run_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    let task = alice.task(&far).await;
    assert!(task["run_at"].as_str().unwrap().starts_with("2099"));
    let done = alice.wait_done(&delayed, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed");
    assert!(
        created.elapsed() >= Duration::from_millis(1500),
        "ran before its delay"
    );
    let started: chrono::DateTime<chrono::Utc> =
        done["started_at"].as_str().unwrap().parse().unwrap();
    let run_at: chrono::DateTime<chrono::Utc> = done["run_at"].as_str().unwrap().parse().unwrap();
    assert!(started >= run_at);
    assert_eq!(alice.task(&far).await["status"], "queued");
}

async fn superuser_cancel_stops_a_running_task_within_a_heartbeat(backend: Backend) {
    let db = TestDb::of(backend).await;
    // Default heartbeat (2 s): the promise is "within one heartbeat".
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        s.worker.heartbeat_interval = Duration::from_secs(2);
        s.worker.lease = Duration::from_secs(30);
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let token = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 60}}))
        .await;
    eventually("the task to run", Duration::from_secs(10), || async {
        (alice.task(&token).await["status"] == "running").then_some(())
    })
    .await;

    // The owner may not cancel by default.
    let p = problem(alice.cancel(&token).await, 403).await;
    assert!(p["detail"].as_str().unwrap().contains("cancel_role"));

    let asked = Instant::now();
    let r = root.cancel(&token).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["cancel_requested"], true);
    assert_eq!(body["status"], "running");
    // Asking twice is harmless: 202 again, or 200 if it has already stopped.
    let again = root.cancel(&token).await.status();
    assert!(again == 202 || again == 200, "{again}");

    let done = alice.wait_done(&token, Duration::from_secs(5)).await;
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["attempt"], 1);
    assert_eq!(done["errors"][0]["message"], "cancelled on request");
    // Once cancelled, cancelling again changes nothing.
    let again = root.cancel(&token).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.unwrap()["finished_at"],
        done["finished_at"]
    );
}

async fn queued_task_cancels_at_once_and_finished_task_refuses(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);

    let delayed = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}, "delay": 3600}))
        .await;
    let r = root.cancel(&delayed).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["done"], true);
    assert_eq!(body["attempt"], 0, "it never ran");

    let quick = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}}))
        .await;
    alice.wait_done(&quick, Duration::from_secs(10)).await;
    let p = problem(root.cancel(&quick).await, 409).await;
    assert!(p["detail"].as_str().unwrap().contains("completed"), "{p}");
}

async fn cancel_role_can_be_lowered_to_admin_or_owner(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| s.auth.cancel_role = "owner".into()).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", Some("shop")).await);
    let bob = Client::new(&app.base, &app.token("bob", "user", Some("shop")).await);
    let t1 = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}}))
        .await;
    assert_eq!(bob.cancel(&t1).await.status(), 404, "bob can't even see it");
    assert_eq!(alice.cancel(&t1).await.status(), 200);

    let db2 = TestDb::of(backend).await;
    let app2 = TestApp::spawn(&db2, Mode::Api, |s| s.auth.cancel_role = "admin".into()).await;
    let alice = Client::new(&app2.base, &app2.token("alice", "user", Some("shop")).await);
    let admin = Client::new(
        &app2.base,
        &app2.token("shop-admin", "admin", Some("shop")).await,
    );
    let t2 = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}}))
        .await;
    assert_eq!(alice.cancel(&t2).await.status(), 403);
    assert_eq!(admin.cancel(&t2).await.status(), 200);
}

async fn a_second_api_process_answers_for_the_same_task(backend: Backend) {
    let db = TestDb::of(backend).await;
    let first = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let second = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let token = first.token("alice", "user", None).await;
    let task = Client::new(&first.base, &token)
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}}))
        .await;
    let seen = Client::new(&second.base, &token).task(&task).await;
    assert_eq!(seen["token"], task.as_str());
}

async fn unreachable_database_gets_503_with_retry_after(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let token = app.token("alice", "user", None).await;
    // The same app, pointed at a port where no database listens.
    let mut settings = app.settings.clone();
    settings.database.url = "postgres://postgres@127.0.0.1:1/errand".into();
    settings.database.migrate_on_start = false;
    settings.database.acquire_timeout = Duration::from_millis(500);
    let down = TestApp::spawn_with(settings, Mode::Api).await;
    let client = Client::new(&down.base, &token);
    let started = Instant::now();
    for r in [
        client
            .create(json!({"kind": "sleep", "payload": {"seconds": 1}}))
            .await,
        client.get(&"a".repeat(32)).await,
        reqwest::get(down.url("/readyz")).await.unwrap(),
    ] {
        assert!(r.headers().contains_key("retry-after"));
        problem(r, 503).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "503s must come quickly, not hang"
    );
}

// ---- the embedded default: the real binary in an empty folder ------------

/// A temporary empty folder, removed at the end.
struct Folder(std::path::PathBuf);

impl Folder {
    fn new() -> Folder {
        let dir =
            std::env::temp_dir().join(format!("errand-fresh-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Folder(dir)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_folder_serve_and_token_create_just_work() {
    let folder = Folder::new();
    let nothing = std::collections::HashMap::new(); // no DATABASE_URL, no ERRAND__
    let port = common::free_port();
    let bind = format!("127.0.0.1:{port}");
    let serve = common::Proc::spawn_in(&folder.0, &["serve", "--bind", &bind], &nothing);
    let base = format!("http://{bind}");
    common::wait_ready(&base).await;

    let stdout = serve.stdout.lock().unwrap().clone();
    let data = folder.0.join("errand.db");
    assert!(
        stdout
            .iter()
            .any(|l| l.contains(&data.display().to_string())),
        "serve says where the data lives: {stdout:?}"
    );
    let bootstrap = stdout
        .iter()
        .find(|l| l.starts_with("errand_"))
        .expect("serve prints a bootstrap token on first start")
        .clone();
    assert!(data.is_file(), "the database is a file in the folder");

    let user = common::run_errand(
        &folder.0,
        &["token", "create", "--name", "alice", "--role", "user"],
        &nothing,
    );
    let alice = Client::new(&base, user.trim());
    let task = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0.2}}))
        .await;
    let done = alice.wait_done(&task, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed");
    let root = Client::new(&base, &bootstrap);
    assert_eq!(
        root.task(&task).await["owner"],
        "alice",
        "the bootstrap token is a superuser"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_serve_survives_sigkill_finishing_the_running_task() {
    let folder = Folder::new();
    let mut env = std::collections::HashMap::new();
    // Short leases, so the restarted server rescues the task quickly.
    env.insert(
        "ERRAND__WORKER__HEARTBEAT_INTERVAL".to_string(),
        "1s".to_string(),
    );
    env.insert("ERRAND__WORKER__LEASE".to_string(), "3s".to_string());
    env.insert(
        "ERRAND__WORKER__RESCUE_INTERVAL".to_string(),
        "500ms".to_string(),
    );
    let bind = format!("127.0.0.1:{}", common::free_port());
    let base = format!("http://{bind}");
    let token = common::run_errand(
        &folder.0,
        &["token", "create", "--name", "alice", "--role", "user"],
        &env,
    );
    let alice = Client::new(&base, token.trim());

    let mut serve = common::Proc::spawn_in(&folder.0, &["serve", "--bind", &bind], &env);
    common::wait_ready(&base).await;
    let quick = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}}))
        .await;
    let finished = alice.wait_done(&quick, Duration::from_secs(10)).await;
    let long = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 2}}))
        .await;
    eventually("the long task to run", Duration::from_secs(10), || async {
        (alice.task(&long).await["status"] == "running").then_some(())
    })
    .await;
    serve.kill();

    let _serve = common::Proc::spawn_in(&folder.0, &["serve", "--bind", &bind], &env);
    common::wait_ready(&base).await;
    assert_eq!(
        alice.task(&quick).await,
        finished,
        "finished tasks are still there"
    );
    let done = alice.wait_done(&long, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["attempt"], 2);
    assert!(
        done["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("worker lost")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_api_and_worker_share_one_sqlite_file() {
    let folder = Folder::new();
    let mut env = std::collections::HashMap::new();
    env.insert(
        "ERRAND__WORKER__POLL_INTERVAL".to_string(),
        "200ms".to_string(),
    );
    let bind = format!("127.0.0.1:{}", common::free_port());
    let base = format!("http://{bind}");
    let token = common::run_errand(
        &folder.0,
        &["token", "create", "--name", "alice", "--role", "user"],
        &env,
    );
    let alice = Client::new(&base, token.trim());
    let _api = common::Proc::spawn_in(&folder.0, &["api", "--bind", &bind], &env);
    let _worker = common::Proc::spawn_in(&folder.0, &["worker", "--concurrency", "4"], &env);
    common::wait_ready(&base).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        tasks.push(
            alice
                .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0.05}}))
                .await,
        );
    }
    for task in &tasks {
        let done = alice.wait_done(task, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "completed");
        assert_eq!(done["attempt"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_on_a_fresh_sqlite_file_all_come_up() {
    let folder = Folder::new();
    let env = std::collections::HashMap::new();
    let bind = format!("127.0.0.1:{}", common::free_port());
    let mut procs = vec![
        common::Proc::spawn_in(&folder.0, &["api", "--bind", &bind], &env),
        common::Proc::spawn_in(&folder.0, &["worker"], &env),
        common::Proc::spawn_in(&folder.0, &["worker"], &env),
    ];
    common::wait_ready(&format!("http://{bind}")).await;
    for proc in &procs[1..] {
        eventually("the worker to start", Duration::from_secs(20), || async {
            let log = proc.log.lock().unwrap();
            log.iter()
                .any(|line| line.as_str().is_some_and(|l| l.contains("worker started")))
                .then_some(())
        })
        .await;
    }
    for proc in &mut procs {
        assert!(
            proc.still_running(),
            "a process exited: {:?}",
            proc.log.lock().unwrap()
        );
    }
}
