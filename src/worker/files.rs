//! An attempt's files, as its handler reaches them through its context
//! (`kinds::FileAccess`): the task's inputs to read, and the outputs it
//! stores, kept here until the attempt ends (the task gets them only if it
//! completes).

use std::sync::Mutex;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::files::{Files, FilesError, Upload};
use crate::kinds::{FileAccess, FileStream, TaskError};
use crate::tasks::{Task, TaskFile, TaskId, validate_file_name};

/// The files of one attempt.
pub(super) struct AttemptFiles {
    files: Files,
    task: TaskId,
    owner: String,
    product: Option<String>,
    inputs: Vec<TaskFile>,
    /// What the attempt stored so far.
    outputs: Mutex<Vec<TaskFile>>,
}

impl AttemptFiles {
    pub(super) fn new(files: Files, task: &Task) -> AttemptFiles {
        AttemptFiles {
            files,
            task: task.id,
            owner: task.owner.clone(),
            product: task.product.clone(),
            inputs: task.files.inputs.clone(),
            outputs: Mutex::new(Vec::new()),
        }
    }

    /// The outputs stored, for the attempt's end.
    pub(super) fn outputs(&self) -> Vec<TaskFile> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TaskFile>> {
        // A list of plain data: a panic elsewhere leaves it whole.
        self.outputs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether output `name` may be stored now.
    fn check_output(&self, name: &str) -> Result<(), TaskError> {
        validate_file_name(name).map_err(|m| TaskError::permanent(format!("output file: {m}")))?;
        if self.inputs.iter().any(|f| f.name == name) {
            return Err(TaskError::permanent(format!(
                "output file {name:?} has the name of an input"
            )));
        }
        let outputs = self.lock();
        if outputs.iter().any(|f| f.name == name) {
            return Err(TaskError::permanent(format!(
                "output file {name:?} was stored twice"
            )));
        }
        if outputs.len() >= self.files.max_per_task() {
            return Err(TaskError::permanent(format!(
                "more than {} output files (files.max_per_task)",
                self.files.max_per_task()
            )));
        }
        Ok(())
    }
}

/// A storage failure, as an attempt's error: one too big or unreadable
/// never gets better, the rest may.
fn task_error(e: FilesError) -> TaskError {
    match e {
        FilesError::TooLarge { .. } | FilesError::Source(_) => TaskError::permanent(e.to_string()),
        e => TaskError::retryable(format!("file storage: {e}")),
    }
}

impl FileAccess for AttemptFiles {
    fn inputs(&self) -> &[TaskFile] {
        &self.inputs
    }

    fn read(&self, name: &str) -> BoxFuture<'_, Result<FileStream, TaskError>> {
        let input = self.inputs.iter().find(|f| f.name == name).cloned();
        let name = name.to_string();
        Box::pin(async move {
            let input = input
                .ok_or_else(|| TaskError::permanent(format!("the task has no input {name:?}")))?;
            let row = self.files.get(input.file).await.map_err(task_error)?;
            let row = row.ok_or_else(|| {
                TaskError::permanent(format!("input {name:?} is no longer stored"))
            })?;
            let bytes = self
                .files
                .read(&row, 0..row.file.size)
                .await
                .map_err(task_error)?;
            Ok(bytes.map_err(task_error).boxed())
        })
    }

    fn write<'a>(
        &'a self,
        name: &'a str,
        content_type: &'a str,
        body: BoxStream<'a, Result<Bytes, std::io::Error>>,
    ) -> BoxFuture<'a, Result<TaskFile, TaskError>> {
        Box::pin(async move {
            self.check_output(name)?;
            let upload = Upload {
                owner: self.owner.clone(),
                product: self.product.clone(),
                content_type: content_type.to_string(),
                expected_sha256: None,
                ttl: self.files.output_ttl(),
                made_by: Some(self.task),
            };
            let row = self.files.put(upload, body).await.map_err(task_error)?;
            let file = row.file.as_task_file(name);
            self.lock().push(file.clone());
            Ok(file)
        })
    }
}
