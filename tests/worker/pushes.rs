//! Pushes, with real processes on Postgres: a task created while a worker
//! idles goes straight to it and runs once; a worker killed while idle is
//! pushed nothing once Postgres sees its connection close; a push missed
//! while the worker's listener reconnects is handed back and runs; a
//! worker that stops withdraws its offers.
//!
//! The lease is a minute here, so that a task wrongly left with a worker
//! could only finish after it, well past these tests' deadlines.

use std::collections::HashMap;
use std::time::Duration;

use errand::store::Push;
use errand::tasks::{Status, WorkerId};
use serde_json::json;
use sqlx::{Connection as _, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::common::{Client, Proc, TestDb, eventually, proc_env};
use crate::{task, wait_status};

fn env(db: &TestDb) -> HashMap<String, String> {
    let mut env = proc_env(db);
    env.insert("ERRAND__WORKER__LEASE".into(), "60s".into());
    env
}

async fn conn(db: &TestDb) -> PgConnection {
    PgConnection::connect(&db.url).await.expect("connect")
}

/// The offer a worker process made once idle: its id and listener.
async fn offer_of(db: &TestDb, pid: u32) -> (String, i32) {
    let host_pid = format!("%-{pid}-%");
    eventually(
        "the idle worker's offer",
        Duration::from_secs(20),
        || async {
            sqlx::query_as(
            "SELECT worker_id, listener_pid FROM task_offers WHERE worker_id LIKE $1 AND slots > 0",
        )
        .bind(&host_pid)
        .fetch_optional(&mut conn(db).await)
        .await
        .unwrap()
        },
    )
    .await
}

async fn api_client(env: &HashMap<String, String>) -> (Proc, Client) {
    let api = Proc::spawn(&["api"], env);
    let base = api.base_url().await;
    crate::common::wait_ready(&base).await;
    let settings = errand::config::load(None, env).unwrap();
    let token = errand::app::token_create(&settings, "alice", "user", None)
        .await
        .unwrap();
    (api, Client::new(&base, &token))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_while_a_worker_idles_goes_straight_to_it_and_runs_once() {
    let db = TestDb::postgres().await;
    let env = env(&db);
    let mut api_env = env.clone();
    api_env.insert(
        "ERRAND__LOG__LEVEL".into(),
        "info,errand::store::listener=debug".into(),
    );
    let (api, alice) = api_client(&api_env).await;
    let mut worker = Proc::spawn(&["worker", "--concurrency", "2"], &env);
    offer_of(&db, worker.pid()).await;
    // The API seats tasks on offers it has heard of.
    eventually(
        "the API to hear the offer",
        Duration::from_secs(10),
        || async { (!api.events("an offer of idle slots heard").is_empty()).then_some(()) },
    )
    .await;

    // One task at a time, each while the worker idles: pushed to it. (An
    // insert that finds the offer locked by the worker's heartbeat, or
    // lapsed on a slow machine, leaves its task to a claim: as before
    // pushes, only slower. So: until one is pushed, within a deadline.)
    let mut created = 0;
    eventually(
        "a task pushed to the idle worker",
        Duration::from_secs(30),
        || {
            created += 1;
            async {
                let token = alice
                    .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0.2}}))
                    .await;
                let done = alice.wait_done(&token, Duration::from_secs(15)).await;
                assert_eq!(done["status"], "completed", "{done}");
                assert_eq!(done["attempt"], 1);
                assert_eq!(done["errors"], json!([]));
                let pushed: bool =
                    sqlx::query_scalar("SELECT pushed FROM tasks WHERE token = $1::uuid")
                        .bind(&token)
                        .fetch_one(&mut conn(&db).await)
                        .await
                        .unwrap();
                pushed.then_some(())
            }
        },
    )
    .await;
    let ended = worker.events("attempt ended").len();
    assert_eq!(ended, created, "each ran once, there");

    worker.signal("TERM");
    assert!(worker.exited(Duration::from_secs(15)).await.success());
    let offers: i64 = sqlx::query_scalar("SELECT count(*) FROM task_offers")
        .fetch_one(&mut conn(&db).await)
        .await
        .unwrap();
    assert_eq!(offers, 0, "a stopped worker's offers are withdrawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_idle_is_pushed_nothing_and_its_queue_runs_elsewhere() {
    let db = TestDb::postgres().await;
    let env = env(&db);
    let store = db.store();
    // This process listens, as every errand process does: it hears of
    // offers, so its inserts seat tasks on live ones.
    let listening = CancellationToken::new();
    let listener = {
        let (store, stop) = (store.clone(), listening.clone());
        tokio::spawn(async move { store.run_listener(stop).await })
    };
    let mut heard = store.pushes(&WorkerId("the test".into())).unwrap();
    let connected = tokio::time::timeout(Duration::from_secs(10), heard.recv()).await;
    assert!(matches!(connected, Ok(Some(Push::Listening { .. }))));

    let mut victim = Proc::spawn(&["worker"], &env);
    let (victim_id, _) = offer_of(&db, victim.pid()).await;
    eventually("the offer heard of", Duration::from_secs(10), || async {
        store.heard_offer("default").then_some(())
    })
    .await;
    // While it lives, its offer takes tasks (until one is pushed: see the
    // test above).
    eventually(
        "a task pushed to the live worker",
        Duration::from_secs(30),
        || async {
            let control = crate::insert_sleeps(&store, 1, 0.0, 1).await[0];
            let pushed = task(&store, control).await.worker_id == Some(victim_id.clone());
            wait_status(&store, control, Status::Completed, Duration::from_secs(10)).await;
            pushed.then_some(())
        },
    )
    .await;

    let (_, listener_pid) = offer_of(&db, victim.pid()).await;
    victim.kill();
    // Postgres sees the connection close; from then on its offer seats
    // nothing (until then a task would go to it, and run again after the
    // lease, as its running tasks would).
    eventually(
        "the listener's backend to go",
        Duration::from_secs(10),
        || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_get_activity($1)")
                .bind(listener_pid)
                .fetch_one(&mut conn(&db).await)
                .await
                .unwrap();
            (n == 0).then_some(())
        },
    )
    .await;
    let tokens = crate::insert_sleeps(&store, 5, 0.0, 1).await;
    for token in &tokens {
        let t = task(&store, *token).await;
        assert_eq!(
            (t.status, t.worker_id),
            (Status::Queued, None),
            "not pushed"
        );
    }
    let _heir = Proc::spawn(&["worker"], &env);
    for token in tokens {
        let done = wait_status(&store, token, Status::Completed, Duration::from_secs(20)).await;
        assert_eq!(done.attempt, 1);
        assert!(done.errors.is_empty(), "{:?}", done.errors);
    }
    listening.cancel();
    listener.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_missed_while_the_listener_reconnects_is_handed_back_and_runs() {
    let db = TestDb::postgres().await;
    let env = env(&db);
    let store = db.store();
    let worker = Proc::spawn(&["worker"], &env);
    let (worker_id, _) = offer_of(&db, worker.pid()).await;
    // A task pushed to the worker whose notification it can't hear: the
    // worker's connections are all ended, and it can't connect again until
    // the task's insert has committed.
    let mut admin = PgConnection::connect(&crate::common::admin_url())
        .await
        .unwrap();
    let mut inserting = conn(&db).await;
    let mine: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut inserting)
        .await
        .unwrap();
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let allow = |yes: bool| format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {yes}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow(false)))
        .execute(&mut admin)
        .await
        .unwrap();
    let others = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                  WHERE datname = $1 AND pid <> $2";
    eventually(
        "the worker's connections to end",
        Duration::from_secs(10),
        || async {
            let left: i64 = sqlx::query_scalar(others)
                .bind(&name)
                .bind(mine)
                .fetch_one(
                    &mut PgConnection::connect(&crate::common::admin_url())
                        .await
                        .unwrap(),
                )
                .await
                .unwrap();
            (left == 0).then_some(())
        },
    )
    .await;
    let token: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO tasks (token, kind, queue, status, payload, max_attempts, owner,
                            created_at, run_at, started_at, attempt, worker_id,
                            lease_expires_at, pushed)
         VALUES (gen_random_uuid(), 'sleep', 'default', 'running', '{\"seconds\": 0}', 1,
                 'alice', now(), now(), now(), 1, $1, now() + interval '60 s', true)
         RETURNING token",
    )
    .bind(&worker_id)
    .fetch_one(&mut inserting)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow(true)))
        .execute(&mut admin)
        .await
        .unwrap();

    let token = errand::tasks::TaskToken::from_uuid(token);
    let done = wait_status(&store, token, Status::Completed, Duration::from_secs(20)).await;
    assert_eq!(done.attempt, 1, "it never started before: no attempt lost");
    assert!(done.errors.is_empty(), "{:?}", done.errors);
    assert_eq!(
        worker
            .events("handed back tasks pushed to this worker that it never heard of")
            .len(),
        1
    );
}
