//! What the example programs (`bench`, `dag`) share: a fresh database to
//! measure on, and task counts.

use errand::store::Store;
use errand::tasks::Status;
use sqlx::{Connection, Executor};

/// A fresh database URL, and how to throw it away.
pub async fn fresh_database(store: &str, pg: &str) -> (String, Box<dyn FnOnce()>) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    match store {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("errand-example-{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}/errand.db", dir.display());
            (url, Box::new(move || drop(std::fs::remove_dir_all(dir))))
        }
        "postgres" => {
            let name = format!("errand_example_{id}");
            let mut admin = sqlx::PgConnection::connect(pg)
                .await
                .expect("connect to --pg");
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let base = pg.rsplit_once('/').unwrap().0.to_string();
            let pg = pg.to_string();
            // Called from inside the runtime: block on a thread of its own.
            let drop_it = move || {
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Runtime::new().unwrap();
                    rt.block_on(async {
                        let mut admin = sqlx::PgConnection::connect(&pg).await.unwrap();
                        let sql = format!("DROP DATABASE {name} WITH (FORCE)");
                        let _ = admin.execute(sqlx::AssertSqlSafe(sql)).await;
                    });
                })
                .join();
            };
            (format!("{base}/errand_example_{id}"), Box::new(drop_it))
        }
        other => panic!("--store must be postgres or sqlite, not {other}"),
    }
}

/// Lets reqwest make clients (errand builds it without a TLS crypto
/// provider of its own).
pub fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How many tasks are in `status`.
pub async fn count(store: &Store, status: Status) -> i64 {
    store
        .task_count_by_status()
        .await
        .unwrap()
        .get(&status)
        .copied()
        .unwrap_or(0)
}
