//! Polls read together ([`TaskReads`]): concurrent `GET /v1/tasks/{token}`
//! requests, and long polls looking again, hand their tokens to two
//! readers, each of which reads whatever has gathered in one statement
//! (`batching::Batcher`). A poll that arrives alone is read at once; under
//! load, one round trip to the database answers many polls. Each read
//! starts after its poll arrived, so a poll never sees the task older than
//! it was then.

use std::collections::HashMap;

use futures_util::future::join_all;

use crate::batching::Batcher;
use crate::store::{Store, StoreError};
use crate::tasks::{Task, TaskToken};

/// Readers of concurrent polls at once.
const READERS: usize = 2;

/// See the module. Cheap to clone.
#[derive(Clone)]
pub struct TaskReads {
    store: Store,
    /// None when each poll is read alone (`http.read_batch` = 1).
    reader: Option<Batcher<TaskToken, Result<Option<Task>, StoreError>>>,
}

impl TaskReads {
    /// At most `max` tokens per statement (`http.read_batch`).
    pub fn new(store: Store, max: usize) -> TaskReads {
        let reads = store.clone();
        let reader = (max > 1).then(|| {
            Batcher::new(max, READERS, move |tokens| {
                let store = reads.clone();
                async move { read_together(&store, tokens).await }
            })
        });
        TaskReads { store, reader }
    }

    /// The task with this token, if there is one.
    pub async fn get(&self, token: TaskToken) -> Result<Option<Task>, StoreError> {
        let Some(reader) = &self.reader else {
            return self.store.task_get(token).await;
        };
        match reader.submit(token).await {
            Some(answer) => answer,
            // The readers stop only with the runtime.
            None => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
        }
    }
}

/// One answer per token, in order (a token asked for twice gets the task
/// twice). If the statement fails, each token is read alone, all at once,
/// so that each caller gets its own error.
async fn read_together(
    store: &Store,
    tokens: Vec<TaskToken>,
) -> Vec<Result<Option<Task>, StoreError>> {
    if let [token] = tokens[..] {
        return vec![store.task_get(token).await];
    }
    let Ok(found) = store.tasks_get(&tokens).await else {
        return join_all(tokens.iter().map(|t| store.task_get(*t))).await;
    };
    let mut by_token: HashMap<TaskToken, Task> = found.into_iter().map(|t| (t.token, t)).collect();
    let answers = tokens.iter().enumerate().map(|(i, token)| {
        if tokens[i + 1..].contains(token) {
            Ok(by_token.get(token).cloned())
        } else {
            Ok(by_token.remove(token))
        }
    });
    answers.collect()
}
