//! What a running handler gets: [`TaskContext`] (who it is, progress,
//! cancellation) and, through it, the application's own [`State`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::tasks::{Progress, TaskToken};

/// Values an application hands to its kinds (a database pool, an HTTP
/// client, a mailer), one per type, as the crates.io worker hands each job
/// its `Context`. Given to the builder with
/// [`Builder::state`](crate::app::Builder::state); read in a handler with
/// [`TaskContext::state`]. Cheap to clone.
#[derive(Clone, Default)]
pub struct State {
    values: Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl State {
    /// Adds `value`, replacing any earlier value of its type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.values).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was given.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

/// What a running handler gets: which task and attempt it runs, a way to
/// report progress, cancellation (a cancel request, a timeout or a
/// shutdown), and the application's [`State`].
pub struct TaskContext {
    token: TaskToken,
    attempt: i32,
    cancel: CancellationToken,
    progress: watch::Sender<Option<Progress>>,
    state: State,
}

impl TaskContext {
    /// Made by the worker for each attempt. The worker writes what is sent on
    /// `progress` to the database, throttled.
    pub fn new(
        token: TaskToken,
        attempt: i32,
        cancel: CancellationToken,
        progress: watch::Sender<Option<Progress>>,
        state: State,
    ) -> TaskContext {
        TaskContext {
            token,
            attempt,
            cancel,
            progress,
            state,
        }
    }

    /// The task's token, as clients know it.
    pub fn token(&self) -> TaskToken {
        self.token
    }

    /// 1 for the first run, 2 for the first retry…
    pub fn attempt(&self) -> i32 {
        self.attempt
    }

    /// Whether the handler has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the handler is asked to stop.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Reports progress: `fraction` from 0 to 1 and a short message. Cheap:
    /// call it as often as you like, the worker writes at most one report per
    /// `worker.progress_interval`.
    pub fn progress(&self, fraction: f64, message: impl Into<String>) {
        self.progress
            .send_replace(Some(Progress::new(fraction, Some(message.into()))));
    }

    /// Reports progress as it is (a command's report may carry no message).
    pub(crate) fn report(&self, progress: Progress) {
        self.progress.send_replace(Some(progress));
    }

    /// The application's value of type `T` (see [`State`]), or a permanent
    /// error naming the type if the application gave none: a wiring mistake
    /// no retry can mend.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, super::TaskError> {
        self.state.get().ok_or_else(|| {
            super::TaskError::permanent(format!(
                "no application state of type {} was given to the builder",
                std::any::type_name::<T>()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_holds_one_value_per_type() {
        let mut state = State::default();
        state.insert(7u32);
        state.insert(String::from("pool"));
        state.insert(9u32);
        assert_eq!(state.get::<u32>(), Some(&9));
        assert_eq!(state.get::<String>().map(String::as_str), Some("pool"));
        assert_eq!(state.get::<i64>(), None);
        let (tx, _rx) = watch::channel(None);
        let ctx = TaskContext::new(
            TaskToken::generate(),
            1,
            CancellationToken::new(),
            tx,
            state,
        );
        assert_eq!(*ctx.state::<u32>().unwrap(), 9);
        let err = ctx.state::<i64>().unwrap_err();
        assert!(!err.retryable && err.message.contains("i64"), "{err}");
    }
}
