//! What a new task names, checked as the store finds it: its parents
//! (`depends_on`) and its input files. The store reads them in the
//! transaction that writes the task and asks these rules; a refusal writes
//! nothing.

use chrono::{DateTime, Utc};

use super::{FileId, NewTask, Scope, Status, StoredFile, Task, TaskFile, TaskToken};

/// Why a new task can't be accepted for what it names (its parents, its
/// input files); found by the store, which reads them in the transaction
/// that writes the task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No such task, or one the creator may not see.
    #[error("depends_on: no task {0}")]
    UnknownParent(TaskToken),
    /// It ended without completing, so the new task could never run.
    #[error("depends_on: task {0} has already ended {1}; a task depending on it could never run")]
    EndedParent(TaskToken, Status),
    /// No such file, or one the creator may not use.
    #[error("files.{name}: no file {id} of yours")]
    UnknownFile { name: String, id: FileId },
    /// It expired: it may be deleted at any moment.
    #[error("files.{name}: file {id} has expired; upload it again")]
    ExpiredFile { name: String, id: FileId },
}

impl NewTask {
    /// Checks this task's parents, as the store found them (`found`: the
    /// tasks whose tokens were asked for, whoever they belong to). Every
    /// parent must exist, be visible to the creator, and not have ended
    /// badly. Returns the status to create the task in (`waiting` while a
    /// parent has not completed) and how many parents it waits for.
    pub fn check_parents(
        &self,
        found: &[Task],
        creator: &Scope,
    ) -> Result<(Status, usize), Refused> {
        let mut pending = 0;
        for token in &self.depends_on {
            let parent = found
                .iter()
                .find(|p| p.token == *token && creator.allows(p))
                .ok_or(Refused::UnknownParent(*token))?;
            if parent.status.dooms_dependents() {
                return Err(Refused::EndedParent(*token, parent.status));
            }
            pending += usize::from(parent.status != Status::Completed);
        }
        let status = if pending > 0 {
            Status::Waiting
        } else {
            self.status
        };
        Ok((status, pending))
    }
}

impl NewTask {
    /// Checks this task's input files, as the store found them (`found`:
    /// the ready files whose ids were asked for): each must exist, be the
    /// creator's to use, and not have expired. The task's inputs, in the
    /// order given.
    pub fn check_inputs(
        &self,
        found: &[StoredFile],
        creator: &Scope,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskFile>, Refused> {
        self.inputs
            .iter()
            .map(|(name, id)| {
                let file = found
                    .iter()
                    .find(|f| f.id == *id && creator.may_use(f))
                    .ok_or_else(|| Refused::UnknownFile {
                        name: name.clone(),
                        id: *id,
                    })?;
                if file.expires_at <= now {
                    return Err(Refused::ExpiredFile {
                        name: name.clone(),
                        id: *id,
                    });
                }
                Ok(file.as_task_file(name))
            })
            .collect()
    }
}

impl Status {
    /// Whether a child waiting for a parent in this status can never run.
    pub fn dooms_dependents(self) -> bool {
        self.is_terminal() && self != Status::Completed
    }
}
