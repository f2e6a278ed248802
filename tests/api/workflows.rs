//! Workflows: dependencies (the ticket shop), idempotency, priorities,
//! queues, Prefer: wait.

use std::time::Duration;

use errand::app::Mode;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestApp, TestDb};

on_both_stores!(
    send_tickets_waits_for_every_ticket,
    child_of_a_failed_parent_is_cancelled_down_the_chain,
    dependencies_must_be_known_visible_and_not_failed,
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
