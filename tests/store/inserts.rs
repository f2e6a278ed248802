//! New tasks: one, or a batch in one statement, read back as written, in
//! the batch's order; and read by many tokens at once.

use chrono::Duration;
use errand::store::Store;
use errand::tasks::{NewTask, Scope, Status, TaskToken};
use serde_json::json;

use crate::{common, new_task, t0};

pub async fn inserted_task_reads_back_as_written(store: &Store) {
    let new = NewTask {
        timeout_ms: Some(1500),
        ..new_task("default", 7, t0(), 4)
    };
    let inserted = common::insert_task(store, &new).await;
    let read = store.task_get(new.token).await.unwrap().unwrap();
    assert_eq!(inserted, read);
    assert_eq!(read.token, new.token);
    assert_eq!(read.priority, 7);
    assert_eq!(read.max_attempts, 4);
    assert_eq!(read.timeout_ms, Some(1500));
    assert_eq!(read.status, Status::Queued);
    assert_eq!(read.attempt, 0);
    assert_eq!(read.product.as_deref(), Some("shop"));
    assert_eq!(read.payload, json!({"seconds": 1}));
    assert!(read.errors.is_empty() && read.finished_at.is_none());
    assert!(
        store
            .task_get(TaskToken::generate())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn tasks_are_read_by_many_tokens_at_once(store: &Store) {
    let mut tokens = Vec::new();
    for priority in 0..5 {
        let new = new_task("default", priority, t0(), 3);
        common::insert_task(store, &new).await;
        tokens.push(new.token);
    }
    let missing = TaskToken::generate();
    let asked = [tokens[3], missing, tokens[0], tokens[4]];
    let mut found = store.tasks_get(&asked).await.unwrap();
    found.sort_by_key(|t| t.priority);
    let priorities: Vec<i32> = found.iter().map(|t| t.priority).collect();
    assert_eq!(
        priorities,
        [0, 3, 4],
        "each existing task once, none for the missing"
    );
    for task in &found {
        assert_eq!(*task, store.task_get(task.token).await.unwrap().unwrap());
    }
    assert!(store.tasks_get(&[missing]).await.unwrap().is_empty());
}

/// Every column a batch carries, varied from row to row (NULLs among
/// values, JSON with quotes and non-ASCII text), comes back as written,
/// and ids follow the batch's order.
pub async fn a_batch_is_inserted_in_order_and_reads_back_as_written(store: &Store) {
    let news: Vec<NewTask> = (0..5)
        .map(|i| NewTask {
            kind: format!("kind-{i}"),
            queue: if i % 2 == 0 { "default" } else { "other" }.into(),
            timeout_ms: (i % 2 == 1).then_some(1000 * i64::from(i)),
            product: (i != 3).then(|| format!("shop-{i}")),
            callback_url: (i == 2).then(|| "https://example.com/done?a=1&b='2'".into()),
            payload: json!({"i": i, "text": "l'été \"quoted\" ✓", "nested": [{"n": null}]}),
            ..new_task(
                "default",
                5 - i,
                t0() + Duration::seconds(i64::from(i)),
                1 + i,
            )
        })
        .collect();
    let inserted = store
        .tasks_insert(&news, &Scope::everything(), None)
        .await
        .unwrap()
        .unwrap();
    let tokens: Vec<TaskToken> = inserted.iter().map(|t| t.token).collect();
    let asked: Vec<TaskToken> = news.iter().map(|n| n.token).collect();
    assert_eq!(tokens, asked, "the tasks come back in the batch's order");
    assert!(
        inserted.windows(2).all(|w| w[0].id.0 < w[1].id.0),
        "ids in that order"
    );
    for (new, task) in news.iter().zip(&inserted) {
        assert_eq!(*task, store.task_get(new.token).await.unwrap().unwrap());
        assert_eq!(
            (&task.kind, &task.queue, task.priority, task.max_attempts),
            (&new.kind, &new.queue, new.priority, new.max_attempts)
        );
        assert_eq!(task.status, Status::Queued);
        assert_eq!(task.payload, new.payload);
        assert_eq!(
            (task.timeout_ms, &task.product),
            (new.timeout_ms, &new.product)
        );
        assert_eq!(task.callback_url, new.callback_url);
        assert_eq!((task.owner.as_str(), task.run_at), ("alice", new.run_at));
        assert_eq!(task.created_at, new.created_at);
        assert!(task.depends_on.is_empty() && task.files.inputs.is_empty());
    }
}
