//! The store's connections: one kept between statements (so that it need
//! not go back through sqlx's test after each) never makes a transaction
//! wait for a connection the pool no longer has.

use std::time::Duration;

use errand::store::{Store, TaskListing};
use errand::tasks::{NewTask, Scope, TaskFilter};
use sqlx::{Connection, PgConnection};

use crate::{common, new_task, t0};

/// How long a test waits for something it expects.
const WAIT: Duration = Duration::from_secs(10);

/// A store of two connections that gives up waiting for one after 2 s.
fn two_connections(db: &common::TestDb) -> Store {
    let mut settings = errand::config::Settings::defaults();
    settings.database.url = db.url.clone();
    settings.database.max_connections = 2;
    settings.database.acquire_timeout = Duration::from_secs(2);
    Store::connect(&settings.database).expect("a store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_serves_a_transaction_when_the_pool_has_none_left() {
    let db = common::TestDb::postgres().await;
    let store = two_connections(&db);
    let parent = common::insert_task(&store, &new_task("default", 0, t0(), 3)).await;
    // Reads, alone and two at a time: both connections open, and at least
    // one kept by the store rather than idle in the pool.
    for _ in 0..20 {
        let (a, b) = tokio::join!(store.task_get(parent.token), store.task_get(parent.token));
        assert!(a.unwrap().is_some() && b.unwrap().is_some());
    }
    store.task_get(parent.token).await.unwrap();

    // A child of `parent` locks it while it is inserted: with the parent's
    // row locked by another session, that transaction holds a connection
    // until the lock is let go.
    let mut other = PgConnection::connect(&db.url).await.unwrap();
    let mut lock = other.begin().await.unwrap();
    sqlx::query("SELECT id FROM tasks WHERE id = $1 FOR UPDATE")
        .bind(parent.id.0)
        .execute(&mut *lock)
        .await
        .unwrap();
    let child = NewTask {
        depends_on: vec![parent.token],
        ..new_task("default", 0, t0(), 3)
    };
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move { common::insert_task(&store, &child).await })
    };
    let watch = sqlx::PgPool::connect(&db.url).await.unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    common::eventually(
        "the child's insert to wait on the parent's row",
        WAIT,
        || {
            let watch = watch.clone();
            async move {
                let n: i64 = sqlx::query_scalar(waiting).fetch_one(&watch).await.unwrap();
                (n == 1).then_some(())
            }
        },
    )
    .await;

    // The other connection still serves a transaction of its own.
    let listed = store
        .task_list(&TaskListing {
            scope: &Scope::everything(),
            filter: &TaskFilter::default(),
            after: None,
            limit: 10,
            timeout: Duration::from_secs(5),
        })
        .await
        .expect("a listing while the other connection waits on a lock");
    assert_eq!(listed.len(), 1);

    lock.rollback().await.unwrap();
    let child = blocked.await.unwrap();
    assert_eq!(child.depends_on, [parent.token]);
    store.close().await;
}
