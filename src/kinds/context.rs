//! What a running handler gets: [`TaskContext`] (who it is, progress,
//! cancellation, its files) and, through it, the application's own
//! [`State`]. Files come through [`FileAccess`], which the worker provides:
//! a kind never reaches the store.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::io::AsyncRead;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::TaskError;
use crate::tasks::{Progress, TaskFile, TaskToken};

/// A file's bytes, as a handler reads them.
pub type FileStream = BoxStream<'static, Result<Bytes, TaskError>>;

/// What a running attempt may do with its task's files: read the inputs
/// it was given, store the outputs it makes. The worker provides it.
pub trait FileAccess: Send + Sync {
    /// The task's input files.
    fn inputs(&self) -> &[TaskFile];
    /// The bytes of input `name`.
    fn read(&self, name: &str) -> BoxFuture<'_, Result<FileStream, TaskError>>;
    /// Stores `body` as output `name`, which the task gets if the attempt
    /// completes.
    fn write<'a>(
        &'a self,
        name: &'a str,
        content_type: &'a str,
        body: BoxStream<'a, Result<Bytes, std::io::Error>>,
    ) -> BoxFuture<'a, Result<TaskFile, TaskError>>;
}

/// No files: what a context made outside a worker has.
struct NoFiles;

impl FileAccess for NoFiles {
    fn inputs(&self) -> &[TaskFile] {
        &[]
    }

    fn read(&self, name: &str) -> BoxFuture<'_, Result<FileStream, TaskError>> {
        let err = TaskError::permanent(format!("the task has no input {name:?}"));
        Box::pin(async move { Err(err) })
    }

    fn write<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: BoxStream<'a, Result<Bytes, std::io::Error>>,
    ) -> BoxFuture<'a, Result<TaskFile, TaskError>> {
        Box::pin(async { Err(TaskError::permanent("no file storage here")) })
    }
}

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
    files: Arc<dyn FileAccess>,
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
            files: Arc::new(NoFiles),
        }
    }

    /// The same context, with its task's files (the worker gives them).
    pub fn with_files(self, files: Arc<dyn FileAccess>) -> TaskContext {
        TaskContext { files, ..self }
    }

    /// The task's input files (each `name`, `size`, `sha256`,
    /// `content_type`).
    pub fn inputs(&self) -> &[TaskFile] {
        self.files.inputs()
    }

    /// Streams input file `name`.
    pub async fn read_input(&self, name: &str) -> Result<FileStream, TaskError> {
        self.files.read(name).await
    }

    /// Stores what `reader` gives as output file `name` (see
    /// `validate_file_name`), streamed: the task gets it if this attempt
    /// completes. At most `files.max_per_task` outputs, each at most
    /// `files.max_bytes`.
    pub async fn put_file(
        &self,
        name: &str,
        content_type: &str,
        reader: impl AsyncRead + Send + Unpin,
    ) -> Result<TaskFile, TaskError> {
        let body = tokio_util::io::ReaderStream::new(reader).boxed();
        self.files.write(name, content_type, body).await
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
