//! Polls read together ([`TaskReads`]): concurrent `GET /v1/tasks/{token}`
//! requests, and long polls looking again, hand their tokens to two
//! readers, each of which reads whatever has gathered in one statement
//! (`batching::Batcher`). A poll that arrives alone is read at once; under
//! load, one round trip to the database answers many polls. Each read
//! starts after its poll arrived, so a poll never sees the task older than
//! it was then.
//!
//! On an HTTP worker thread with connections of its own (Postgres,
//! `database.thread_connections`), that thread's reader reads its polls on
//! one of them, on the thread itself (see `Store::local`).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;

use crate::batching::{Batcher, PerThread};
use crate::store::{Store, StoreError};
use crate::tasks::{Task, TaskToken};

/// Readers of concurrent polls at once, of the process's pool.
const READERS: usize = 2;

type Read = Result<Option<Task>, StoreError>;

/// See the module. Cheap to clone.
#[derive(Clone)]
pub struct TaskReads {
    shared: Reader,
    /// Each thread's own reader, if it has connections of its own.
    local: Arc<PerThread<Option<Reader>>>,
}

/// Reads polls: each alone (`http.read_batch` = 1), or together.
#[derive(Clone)]
enum Reader {
    Alone(Store),
    Together(Batcher<TaskToken, Read>),
}

impl TaskReads {
    /// At most `max` tokens per statement (`http.read_batch`).
    pub fn new(store: Store, max: usize) -> TaskReads {
        let from = store.clone();
        let local = PerThread::new(move || from.local().map(|own| Reader::new(own, max, 1)));
        TaskReads {
            shared: Reader::new(store, max, READERS),
            local: Arc::new(local),
        }
    }

    /// The task with this token, if there is one.
    pub async fn get(&self, token: TaskToken) -> Read {
        let local = self.local.get();
        local.as_ref().unwrap_or(&self.shared).get(token).await
    }
}

impl Reader {
    /// Reads on `store`, with `readers` statements at once at most.
    fn new(store: Store, max: usize, readers: usize) -> Reader {
        if max <= 1 {
            return Reader::Alone(store);
        }
        Reader::Together(Batcher::new(max, readers, move |tokens| {
            let store = store.clone();
            async move { read_together(&store, tokens).await }
        }))
    }

    async fn get(&self, token: TaskToken) -> Read {
        match self {
            Reader::Alone(store) => store.task_get(token).await,
            // The readers stop only with the runtime.
            Reader::Together(reader) => (reader.submit(token).await)
                .unwrap_or(Err(StoreError::Unavailable(sqlx::Error::PoolClosed))),
        }
    }
}

/// One answer per token, in order (a token asked for twice gets the task
/// twice). If the statement fails, each token is read alone, all at once,
/// so that each caller gets its own error.
async fn read_together(store: &Store, tokens: Vec<TaskToken>) -> Vec<Read> {
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
