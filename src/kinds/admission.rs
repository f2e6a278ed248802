//! Admission: whether a create request may become a task, before
//! anything is written. The kind must be one clients may create and the
//! payload pass its schema and the kind's own checks ([`Registry::check`]);
//! then every field is checked under the kind's policy
//! ([`Registry::prepare`]). A schedule's tick is admitted the same way
//! ([`Registry::schedule_task`]).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Registry;
use crate::tasks::{Invalid, KindPolicy, NewTask, Principal, Schedule, ScheduleTick, TaskDraft};

/// Why a create request's kind or payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// No such kind (or an internal one).
    #[error("unknown kind {kind:?}; known kinds: {known}")]
    Unknown {
        /// The kind asked for.
        kind: String,
        /// The kinds there are, comma-separated.
        known: String,
    },
    /// The payload fails the kind's schema or its own checks.
    #[error("invalid payload for kind {kind:?}: {message}")]
    BadPayload {
        /// The kind asked for.
        kind: String,
        /// What is wrong, led by the failing path where there is one.
        message: String,
    },
}

/// Why a create request can't become a task (nothing was written).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DraftError {
    /// An unknown kind, or a payload it refuses.
    #[error(transparent)]
    Kind(#[from] KindError),
    /// A field that can't be accepted (named).
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

impl Registry {
    /// Checks a create request's kind and payload (its schema, then the
    /// kind's own checks): the kind's policy if both are good.
    pub fn check(&self, kind: &str, payload: &Value) -> Result<&KindPolicy, KindError> {
        let registered = self
            .get(kind)
            .filter(|k| k.handler.public())
            .ok_or_else(|| KindError::Unknown {
                kind: kind.to_string(),
                known: self.names().join(", "),
            })?;
        let bad = |message| KindError::BadPayload {
            kind: kind.to_string(),
            message,
        };
        if let Some(schema) = &registered.schema {
            schema.check(payload).map_err(bad)?;
        }
        registered.handler.check(payload).map_err(bad)?;
        Ok(&registered.policy)
    }

    /// A create request checked (its kind and payload, then every field,
    /// under the kind's policy) and made into the row to insert, for
    /// `creator`, at `now`. (Where a `callback_url` points is checked
    /// apart, by resolving it.)
    pub fn prepare(
        &self,
        draft: TaskDraft,
        creator: &Principal,
        now: DateTime<Utc>,
    ) -> Result<NewTask, DraftError> {
        let policy = self.check(&draft.kind, &draft.payload)?;
        Ok(draft.validate(policy, creator, now)?)
    }

    /// The task `schedule` makes at `tick`, made at `now` and checked as a
    /// create of it would be.
    pub fn schedule_task(
        &self,
        schedule: &Schedule,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<NewTask, DraftError> {
        let mut task = self.prepare(schedule.draft(), &schedule.creator(), now)?;
        task.tick = Some(ScheduleTick {
            schedule: schedule.name.clone(),
            at: tick,
        });
        Ok(task)
    }
}
