//! Workflows: dependencies (the ticket shop), idempotency, priorities,
//! queues, Prefer: wait.

use std::time::Duration;

use errand::app::Mode;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestApp, TestDb, eventually};

on_both_stores!(
    send_tickets_waits_for_every_ticket,
    child_of_a_failed_parent_is_cancelled_down_the_chain,
    dependencies_must_be_known_visible_and_not_failed,
    same_idempotency_key_and_body_answer_the_same_task,
    idempotency_key_in_flight_is_409_until_abandoned,
    idempotency_races_across_two_api_nodes_create_one_task,
    higher_priority_runs_first_on_a_single_slot_worker,
    queue_tasks_wait_for_a_worker_of_their_queue,
    prefer_wait_answers_the_finished_task_when_it_ends_in_time,
    get_with_wait_long_polls_until_the_task_changes,
    a_long_poll_answers_when_its_process_shuts_down,
);

fn time(task: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    task[field].as_str().unwrap().parse().unwrap()
}

/// The ticket shop: five tickets are made, each its own task; the e-mail
/// goes out only once every ticket exists.
async fn send_tickets_waits_for_every_ticket(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let shop = Client::new(&app.base, &app.token("shop", "user", None).await);
    let mut tickets = Vec::new();
    for i in 0..5 {
        let seconds = 0.2 + 0.15 * f64::from(i);
        tickets.push(
            shop.create_ok(json!({"kind": "sleep", "payload": {"seconds": seconds}}))
                .await,
        );
    }
    let r = shop
        .create(json!({"kind": "sleep", "payload": {"seconds": 0}, "depends_on": tickets}))
        .await;
    assert_eq!(r.status(), 202);
    let send: Value = r.json().await.unwrap();
    assert_eq!(send["status"], "waiting", "waiting at create");
    assert_eq!(send["depends_on"], json!(tickets));
    let send = send["token"].as_str().unwrap();

    let sent = shop.wait_done(send, Duration::from_secs(20)).await;
    assert_eq!(sent["status"], "completed");
    let mut last_ticket = None;
    for t in &tickets {
        let ticket = shop.task(t).await;
        assert_eq!(ticket["status"], "completed");
        last_ticket = last_ticket.max(Some(time(&ticket, "finished_at")));
    }
    assert!(
        time(&sent, "started_at") >= last_ticket.unwrap(),
        "send_tickets started only after the last ticket was made"
    );
}

async fn child_of_a_failed_parent_is_cancelled_down_the_chain(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let parent = alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0.3, "fail": true}, "max_attempts": 1}),
        )
        .await;
    let child = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}, "depends_on": [parent]}))
        .await;
    let grandchild = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}, "depends_on": [child]}))
        .await;
    let failed = alice.wait_done(&parent, Duration::from_secs(10)).await;
    assert_eq!(failed["status"], "failed");
    for (task, cause) in [(&child, &parent), (&grandchild, &child)] {
        let t = alice.wait_done(task, Duration::from_secs(5)).await;
        assert_eq!(t["status"], "cancelled");
        assert_eq!(t["attempt"], 0, "it never ran");
        let error = t["error"].as_str().unwrap();
        assert!(
            error.contains(cause.as_str()),
            "the history names the parent: {error}"
        );
        assert_eq!(t["errors"][0]["message"], error);
    }
}

async fn dependencies_must_be_known_visible_and_not_failed(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let bob = Client::new(&app.base, &app.token("bob", "user", None).await);
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let parked = json!({"kind": "sleep", "payload": {"seconds": 1}, "delay": 3600});
    let mine = alice.create_ok(parked.clone()).await;
    let bobs = bob.create_ok(parked.clone()).await;
    let cancelled = alice.create_ok(parked).await;
    root.cancel(&cancelled).await;
    for (depends_on, needle) in [
        (json!([mine, "0".repeat(32)]), "no task 0000"),
        (json!([mine, bobs]), "no task"),
        (json!([cancelled]), "has already ended cancelled"),
        (json!(["not-a-token"]), "depends_on"),
    ] {
        let r = alice
            .create(json!({"kind": "sleep", "payload": {"seconds": 0}, "depends_on": depends_on}))
            .await;
        assert_eq!(r.status(), 422, "{depends_on}");
        let body: Value = r.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{depends_on}: {detail}");
    }
    // A refused request writes nothing; bob's task stays invisible to alice.
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 3);
    let r = alice.get(&bobs).await;
    assert_eq!(r.status(), 404);
}

async fn post_keyed(client: &Client, key: &str, body: String) -> reqwest::Response {
    client
        .http
        .post(format!("{}/v1/tasks", client.base))
        .bearer_auth(&client.token)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn same_idempotency_key_and_body_answer_the_same_task(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let bob = Client::new(&app.base, &app.token("bob", "user", None).await);
    let body = r#"{"kind": "sleep", "payload": {"seconds": 1, "fail": false}}"#;
    let first = post_keyed(&alice, "order-42", body.into()).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    // A retry, written differently but meaning the same.
    let again = post_keyed(
        &alice,
        "order-42",
        r#"{ "payload": {"fail": false, "seconds": 1}, "kind": "sleep" }"#.into(),
    )
    .await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.headers()["location"].to_str().unwrap(),
        format!("/v1/tasks/{}", first["token"].as_str().unwrap())
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["token"], first["token"]);

    let other = post_keyed(
        &alice,
        "order-42",
        r#"{"kind": "sleep", "payload": {"seconds": 2}}"#.into(),
    )
    .await;
    assert_eq!(other.status(), 422, "the same key with another body");
    let detail = other.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("Idempotency-Key"), "{detail}");

    // Keys are per owner.
    let bobs = post_keyed(&bob, "order-42", body.into()).await;
    assert_eq!(bobs.status(), 202);
    assert_ne!(bobs.json::<Value>().await.unwrap()["token"], first["token"]);

    let bad = post_keyed(&alice, &"k".repeat(300), body.into()).await;
    assert_eq!(bad.status(), 400);
    // A refused request frees nothing and takes no key: a bad body with a
    // new key can be corrected and sent again with that key.
    let broken = post_keyed(
        &alice,
        "order-43",
        r#"{"kind": "sleep", "payload": {}}"#.into(),
    )
    .await;
    assert_eq!(broken.status(), 422);
    let fixed = post_keyed(&alice, "order-43", body.into()).await;
    assert_eq!(fixed.status(), 202);
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 3);
}

async fn idempotency_key_in_flight_is_409_until_abandoned(backend: Backend) {
    use errand::tasks::IdempotencyKey;
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        s.idempotency.in_flight_timeout = Duration::from_millis(500);
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let body = json!({"kind": "sleep", "payload": {"seconds": 1}});
    // Another request holds the key and has not finished (or died).
    let key = IdempotencyKey::new("alice", "slow-1", &body).unwrap();
    let now = chrono::Utc::now();
    let claim = db
        .store()
        .idempotency_claim(&errand::store::KeyClaimTerms {
            key: &key,
            now,
            expires_at: now + chrono::Duration::hours(1),
            stale_before: now - chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    assert_eq!(claim, errand::store::KeyClaim::Claimed);
    let r = post_keyed(&alice, "slow-1", body.to_string()).await;
    assert_eq!(r.status(), 409);
    // Once the holder has been gone for in_flight_timeout, a retry takes over.
    crate::common::eventually(
        "the abandoned key to be taken over",
        Duration::from_secs(5),
        || async {
            let r = post_keyed(&alice, "slow-1", body.to_string()).await;
            (r.status() == 202).then_some(())
        },
    )
    .await;
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 1);
}

async fn idempotency_races_across_two_api_nodes_create_one_task(backend: Backend) {
    let db = TestDb::of(backend).await;
    let one = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let two = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let token = one.token("alice", "user", None).await;
    let nodes = [
        Client::new(&one.base, &token),
        Client::new(&two.base, &token),
    ];
    let body = r#"{"kind": "sleep", "payload": {"seconds": 1}}"#;
    for round in 0..5 {
        let key = format!("race-{round}");
        let requests = (0..16).map(|i| {
            let client = nodes[i % 2].clone();
            let key = key.clone();
            tokio::spawn(async move { post_keyed(&client, &key, body.into()).await })
        });
        let mut tokens = std::collections::HashSet::new();
        let mut accepted = 0;
        for request in requests.collect::<Vec<_>>() {
            let r = request.await.unwrap();
            match r.status().as_u16() {
                202 => {
                    accepted += 1;
                    tokens.insert(
                        r.json::<Value>().await.unwrap()["token"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
                409 => {}
                other => panic!("unexpected {other}"),
            }
        }
        assert!(accepted >= 1, "round {round}: someone created it");
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: every 202 names the same task"
        );
    }
    assert_eq!(
        db.count("SELECT count(*) FROM tasks").await,
        5,
        "one task per key"
    );
}

async fn higher_priority_runs_first_on_a_single_slot_worker(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        s.worker.queues = errand::config::parse_queues("default=1").unwrap()
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    // Keep the only slot busy while the others queue up.
    let blocker = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0.5}}))
        .await;
    crate::common::eventually("the blocker to run", Duration::from_secs(10), || async {
        (alice.task(&blocker).await["status"] == "running").then_some(())
    })
    .await;
    let low = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}, "priority": 0}))
        .await;
    let high = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}, "priority": 10}))
        .await;
    let low = alice.wait_done(&low, Duration::from_secs(10)).await;
    let high = alice.wait_done(&high, Duration::from_secs(10)).await;
    assert!(
        time(&high, "started_at") <= time(&low, "started_at"),
        "the priority-10 task, queued later, started first"
    );
}

async fn queue_tasks_wait_for_a_worker_of_their_queue(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let gpu = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}, "queue": "gpu"}))
        .await;
    // A default task created after it runs; the gpu task is left alone.
    let plain = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}}))
        .await;
    alice.wait_done(&plain, Duration::from_secs(10)).await;
    for _ in 0..3 {
        let more = alice
            .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0}}))
            .await;
        alice.wait_done(&more, Duration::from_secs(10)).await;
    }
    assert_eq!(
        alice.task(&gpu).await["status"],
        "queued",
        "no default worker takes it"
    );
    // A worker of the gpu queue runs it.
    let _gpu_worker = TestApp::spawn(&db, Mode::Worker, |s| {
        s.worker.queues = errand::config::parse_queues("gpu=1").unwrap()
    })
    .await;
    let done = alice.wait_done(&gpu, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed");
}

async fn post_preferring(client: &Client, prefer: &str, body: Value) -> reqwest::Response {
    client
        .http
        .post(format!("{}/v1/tasks", client.base))
        .bearer_auth(&client.token)
        .header("prefer", prefer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn prefer_wait_answers_the_finished_task_when_it_ends_in_time(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        s.http.max_wait = Duration::from_secs(3)
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);

    let asked = std::time::Instant::now();
    let r = post_preferring(
        &alice,
        "respond-async, wait=10",
        json!({"kind": "sleep", "payload": {"seconds": 0.3}}),
    )
    .await;
    assert_eq!(r.status(), 200, "it ended within the wait");
    assert_eq!(
        r.headers()["preference-applied"],
        "wait=3",
        "capped at http.max_wait"
    );
    assert!(r.headers().contains_key("location"));
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["status"], "completed");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "answered when it ended, not at the cap"
    );

    let asked = std::time::Instant::now();
    let r = post_preferring(
        &alice,
        "wait=1",
        json!({"kind": "sleep", "payload": {"seconds": 5}}),
    )
    .await;
    assert_eq!(
        r.status(),
        202,
        "still running after the wait: the usual answer"
    );
    assert!(r.headers().get("preference-applied").is_none());
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let pending: Value = r.json().await.unwrap();
    assert_eq!(pending["done"], false);

    let r = post_preferring(
        &alice,
        "wait=nonsense",
        json!({"kind": "sleep", "payload": {"seconds": 0}}),
    )
    .await;
    assert_eq!(
        r.status(),
        202,
        "a preference that can't be read is ignored"
    );
}

async fn get_with_wait_long_polls_until_the_task_changes(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let task = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0.5}, "delay": 1}))
        .await;
    let first = alice.get(&task).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let poll = |wait: &str, etag: &str| {
        alice
            .http
            .get(format!("{}/v1/tasks/{task}?wait={wait}", alice.base))
            .bearer_auth(&alice.token)
            .header("if-none-match", etag)
            .send()
    };
    // Queued (delayed 1 s): the long poll answers when it starts running.
    let asked = std::time::Instant::now();
    let r = poll("10", &etag).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(
        r.headers()["etag"].to_str().unwrap(),
        etag,
        "a changed task"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    let done = alice.wait_done(&task, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed");
    let final_etag = alice.get(&task).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    let asked = std::time::Instant::now();
    let r = poll("10", &final_etag).await.unwrap();
    assert_eq!(
        r.status(),
        304,
        "an ended task will not change: answered at once"
    );
    assert!(asked.elapsed() < Duration::from_secs(1));
    let r = poll("-1", &final_etag).await.unwrap();
    assert_eq!(r.status(), 400);
}

/// A process asked to stop answers the requests waiting on a task with the
/// task as it is, instead of holding them until it is cut off (a load
/// balancer would pass that on as an error).
async fn a_long_poll_answers_when_its_process_shuts_down(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let task = alice
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 1}}))
        .await;
    let first = alice.get(&task).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let poll = alice
        .http
        .get(format!("{}/v1/tasks/{task}?wait=30", alice.base))
        .bearer_auth(&alice.token)
        .header("if-none-match", &etag)
        .send();
    let poll = tokio::spawn(poll);
    // The poll is waiting once it marked the task watched (and nothing runs
    // the task: no worker in api mode).
    eventually("the poll to wait", Duration::from_secs(10), || async {
        let watched = db.count("SELECT count(*) FROM tasks WHERE watched").await;
        (watched == 1).then_some(())
    })
    .await;
    let stopped = tokio::spawn(app.stop());
    let answer = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("answered well before its 30 s")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), 304, "unchanged: the copy the client has");
    stopped.await.unwrap();
}
