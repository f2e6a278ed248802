//! Migrations on a database that holds tasks: SQLite's migration 0013
//! makes the tasks table anew (to allow the status `expired`), and must
//! keep every row, every id (and where ids go on from), every row that
//! refers to a task, and the triggers.

use std::borrow::Cow;

use errand::tasks::Status;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection, Executor, Row, SqlSafeStr, SqliteConnection};

use crate::common;

/// The SQLite migrations before `before`, as sqlx applies them.
fn sqlite_migrations_before(before: i64) -> Migrator {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let migrations = files
        .iter()
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_string();
            let version: i64 = name.split('_').next()?.parse().ok()?;
            (version < before).then(|| {
                let sql = std::fs::read_to_string(path).unwrap();
                Migration::new(
                    version,
                    Cow::Owned(name),
                    MigrationType::Simple,
                    sqlx::AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_task_its_id_and_what_refers_to_it_through_the_new_statuses() {
    let dir = std::env::temp_dir().join(format!("errand-mig-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/errand.db?mode=rwc", dir.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    conn.execute("PRAGMA foreign_keys = ON").await.unwrap();
    sqlite_migrations_before(13).run(&mut conn).await.unwrap();
    // Three tasks (the third deleted, so that ids have gone past the
    // highest left), a child waiting for the first, an idempotency key.
    for (token, status) in [(1u8, "queued"), (2, "waiting"), (3, "queued")] {
        sqlx::query(
            "INSERT INTO tasks (token, kind, queue, status, payload, max_attempts, owner, \
             created_at, run_at, pending_parents) \
             VALUES (?1, 'sleep', 'default', ?2, '{}', 3, 'alice', \
             '2026-06-01T12:00:00.000000Z', '2026-06-01T12:00:00.000000Z', ?3)",
        )
        .bind(vec![token; 16])
        .bind(status)
        .bind(i64::from(status == "waiting"))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.execute("INSERT INTO task_dependencies (child_id, parent_id) VALUES (2, 1)")
        .await
        .unwrap();
    conn.execute(
        "INSERT INTO idempotency_keys (owner, key, request_hash, task_id, created_at, expires_at) \
         VALUES ('alice', 'k', zeroblob(32), 1, 'x', 'y')",
    )
    .await
    .unwrap();
    conn.execute("DELETE FROM tasks WHERE id = 3")
        .await
        .unwrap();
    conn.close().await.unwrap();

    let mut settings = errand::config::Settings::defaults();
    settings.database.url = url.clone();
    let store = errand::store::Store::connect(&settings.database).unwrap();
    store.migrate().await.unwrap();

    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM tasks ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(ids, [1, 2]);
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_dependencies d JOIN idempotency_keys k ON k.task_id = d.parent_id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(kept, 1, "rows that refer to a task still do");
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(broken.is_empty());
    let row = sqlx::query("SELECT snoozes, start_by, schedule FROM tasks WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("snoozes"), 0);
    assert_eq!(row.get::<Option<String>, _>("start_by"), None);
    conn.close().await.unwrap();

    // Ids go on past the deleted task's; the dependency triggers still
    // cancel a child when its parent ends badly, and `expired` is a status.
    let parent = store
        .task_get("01010101010101010101010101010101".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let new = common::insert_task(&store, &crate::new_task("default", 0, crate::t0(), 3)).await;
    assert_eq!(new.id.0, 4);
    let cancelled = store
        .task_cancel_unstarted(parent.id, Status::Queued, crate::t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    let child = store
        .task_get("02020202020202020202020202020202".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(child.status, Status::Cancelled);
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
