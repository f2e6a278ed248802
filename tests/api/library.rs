//! errand as a library: an application's own actix-web server with errand's
//! routes mounted, its own kinds and state (the ticket shop of
//! `examples/tickets`), and tasks created inside its own Postgres
//! transaction.

#[path = "../../examples/tickets/shop.rs"]
mod shop;

use std::net::TcpListener;
use std::time::Duration;

use errand::app::{self, Builder, Mode};
use errand::sqlx::{self, PgPool};
use errand::{EnqueueError, Enqueuer, Principal, Role, TaskDraft};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{self, Client, TestDb};

/// An errand process running in the test, and a client of its API.
struct Running {
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<Result<(), app::AppError>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.done.await.unwrap().unwrap();
    }
}

fn start(app: errand::App) -> Running {
    let shutdown = CancellationToken::new();
    let done = tokio::spawn(app.run(shutdown.clone()));
    Running { shutdown, done }
}

fn user(name: &str) -> Principal {
    Principal {
        name: name.into(),
        role: Role::User,
        product: None,
    }
}

fn at(task: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    task[field].as_str().unwrap().parse().unwrap()
}

/// The ticket shop: an order's tickets are made, and only then sent; the
/// shop's routes and errand's answer on one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_shop_sends_tickets_only_after_every_ticket_is_made() {
    let db = TestDb::postgres().await;
    let settings = common::test_settings(&db);
    let pool = PgPool::connect(&db.url).await.unwrap();
    shop::migrate(&pool).await.unwrap();
    let errand = Builder::new(settings.clone())
        .kind(shop::GenerateTicket)
        .kind(shop::SendTickets)
        .state(pool.clone())
        .mounted()
        .build(Mode::Serve)
        .unwrap();
    assert_eq!(errand.local_addr(), None, "mounted: no listener of its own");
    let routes = errand.routes();
    let shop = actix_web::web::Data::new(shop::Shop {
        pool: pool.clone(),
        enqueuer: errand.enqueuer(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(shop.clone())
            .configure(routes.clone())
            .configure(shop::routes)
    })
    .workers(2)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let http = server.handle();
    tokio::spawn(server);
    let running = start(errand);

    common::wait_ready(&base).await;
    let token = app::token_create(&settings, shop::OWNER, "user", None)
        .await
        .unwrap();
    let client = Client::new(&base, &token);
    let placed: Value = client
        .http
        .post(format!("{base}/shop/orders"))
        .json(&json!({"email": "ann@example.com", "seats": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let send = placed["send"]
        .as_str()
        .unwrap_or_else(|| panic!("{placed}"));
    let sent = client.wait_done(send, Duration::from_secs(30)).await;
    assert_eq!(sent["status"], "completed", "{sent}");
    assert_eq!(sent["result"], json!({"sent": 5, "to": "ann@example.com"}));
    let tickets = placed["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 5);
    for ticket in tickets {
        let ticket = client.task(ticket.as_str().unwrap()).await;
        assert_eq!(ticket["status"], "completed");
        assert!(
            at(&ticket, "finished_at") <= at(&sent, "started_at"),
            "{ticket} {sent}"
        );
    }
    let sent_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT sent_at FROM shop_orders WHERE id = $1")
            .bind(placed["order"].as_i64().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(sent_at.is_some());
    running.stop().await;
    http.stop(true).await;
}

/// errand running with an enqueuer for the test's transactions.
async fn errand_on(db: &TestDb) -> (Running, Enqueuer, Client, PgPool) {
    let settings = common::test_settings(db);
    let errand = Builder::new(settings.clone()).build(Mode::Serve).unwrap();
    let base = format!("http://{}", errand.local_addr().unwrap());
    let enqueuer = errand.enqueuer();
    let running = start(errand);
    common::wait_ready(&base).await;
    let token = app::token_create(&settings, "alice", "user", None)
        .await
        .unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::query("CREATE TABLE orders (id integer PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    (running, enqueuer, Client::new(&base, &token), pool)
}

/// The task exists if and only if the caller's own write commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_enqueue_exists_only_if_the_callers_transaction_commits() {
    let db = TestDb::postgres().await;
    let (running, enqueuer, client, pool) = errand_on(&db).await;
    // An order of the test's own, and its task, in one transaction.
    let order = async |id: i32| {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO orders VALUES ($1)")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        let sleep = TaskDraft::new("sleep", json!({"seconds": 0}));
        let created = enqueuer
            .create_in(&mut tx, sleep, &user("alice"), None)
            .await;
        (tx, created.unwrap().task.token.to_string())
    };

    let (tx, token) = order(1).await;
    assert_eq!(
        client.get(&token).await.status(),
        404,
        "not before the commit"
    );
    tx.commit().await.unwrap();
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed");

    let (tx, token) = order(2).await;
    tx.rollback().await.unwrap();
    assert_eq!(client.get(&token).await.status(), 404);
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 1);
    assert_eq!(db.count("SELECT count(*) FROM orders").await, 1);
    running.stop().await;
}

/// Inside a transaction, dependencies, idempotency keys and the kinds'
/// checks behave as over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_enqueue_keeps_dependencies_keys_and_checks() {
    let db = TestDb::postgres().await;
    let (running, enqueuer, client, pool) = errand_on(&db).await;
    let alice = user("alice");
    let mut tx = pool.begin().await.unwrap();
    let parent = TaskDraft::new("sleep", json!({"seconds": 0.2}));
    let parent = enqueuer
        .create_in(&mut tx, parent, &alice, None)
        .await
        .unwrap()
        .task;
    let child = TaskDraft {
        depends_on: Some(vec![parent.token]),
        ..TaskDraft::new("sleep", json!({"seconds": 0}))
    };
    let first = enqueuer
        .create_in(&mut tx, child.clone(), &alice, Some("order-7"))
        .await
        .unwrap();
    assert_eq!(first.task.status.as_str(), "waiting");
    let again = enqueuer
        .create_in(&mut tx, child.clone(), &alice, Some("order-7"))
        .await
        .unwrap();
    assert!(again.replayed && again.task.token == first.task.token);
    let other = TaskDraft::new("sleep", json!({"seconds": 1}));
    let reused = enqueuer
        .create_in(&mut tx, other, &alice, Some("order-7"))
        .await;
    assert!(matches!(reused, Err(EnqueueError::KeyReused)), "{reused:?}");
    let bad = TaskDraft::new("sleep", json!({"seconds": "soon"}));
    let refused = enqueuer.create_in(&mut tx, bad, &alice, None).await;
    assert!(matches!(refused, Err(EnqueueError::Kind(_))), "{refused:?}");
    let unknown_parent = TaskDraft {
        depends_on: Some(vec![errand::TaskToken::generate()]),
        ..TaskDraft::new("sleep", json!({"seconds": 0}))
    };
    let refused = enqueuer
        .create_in(&mut tx, unknown_parent, &alice, None)
        .await;
    assert!(
        matches!(refused, Err(EnqueueError::Refused(_))),
        "{refused:?}"
    );
    // Refusals write nothing: the transaction goes on and commits.
    tx.commit().await.unwrap();
    let child = client
        .wait_done(&first.task.token.to_string(), Duration::from_secs(20))
        .await;
    let parent = client.task(&parent.token.to_string()).await;
    assert_eq!(child["status"], "completed");
    assert!(at(&parent, "finished_at") <= at(&child, "started_at"));
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 2);
    running.stop().await;
}
