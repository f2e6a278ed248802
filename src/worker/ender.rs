//! Ends attempts in batches: a worker process's executors hand their
//! endings to a few writers (`batching::Batcher`), each of which writes
//! whatever has gathered in one statement, every ending still fenced by
//! status and attempt (`task_end.sql`). One commit then serves many tasks.

use std::collections::HashMap;

use chrono::Utc;

use crate::batching::Batcher;
use crate::config::WorkerSettings;
use crate::store::{Store, StoreError, TaskEnding};
use crate::tasks::{Task, TaskId};

/// What ending an attempt gave: the task as ended, `None` if the attempt
/// was no longer current (nothing was written), or the failure.
pub(super) type Ended = Result<Option<Task>, StoreError>;

pub(super) type Ender = Batcher<TaskEnding, Ended>;

/// The writers of `store`, as `settings` size them.
pub(super) fn ender(store: Store, settings: &WorkerSettings) -> Ender {
    Batcher::new(settings.end_batch, settings.end_writers, move |endings| {
        let store = store.clone();
        async move { write(&store, endings).await }
    })
}

/// Writes a batch in one statement. If that fails, each is written alone,
/// so that each gets its own answer (one bad row can't fail the others).
async fn write(store: &Store, endings: Vec<TaskEnding>) -> Vec<Ended> {
    let now = Utc::now();
    match store.tasks_end(&endings, now).await {
        Ok(ended) => {
            let mut by_id: HashMap<TaskId, Task> = ended.into_iter().map(|t| (t.id, t)).collect();
            endings.iter().map(|e| Ok(by_id.remove(&e.id))).collect()
        }
        Err(e) if endings.len() == 1 => vec![Err(e)],
        Err(_) => {
            let mut answers = Vec::with_capacity(endings.len());
            for ending in &endings {
                answers.push(store.task_end(ending, now).await);
            }
            answers
        }
    }
}
