//! A task's status and the rules for moving between statuses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a task is in its life. This comment is the state machine's spec.
///
/// ```text
///             depends_on unmet
///   create ──► waiting ──► queued ──claim──► running ──► completed
///                │           ▲ │               │  ├────► failed
///                │           │ │  retry/backoff│  ├────► cancelled
///                │           └─┼──────snooze───┘  └────► dropped
///                ├─► cancelled │
///                └─────────────┴─► expired (its start deadline passed)
/// ```
///
/// | from | to | who |
/// | --- | --- | --- |
/// | (create) | `queued` | the API, when the task has no unmet dependency (a future `run_at` delays it) |
/// | (create) | `waiting` | the API, when a dependency has not completed |
/// | (create) | `running` | the insert itself, on Postgres, when a worker offered an idle slot and the task may start now: pushed to it (attempt 1, leased to it), with no claim |
/// | `waiting` | `queued` | a parent's completion, in the same transaction |
/// | `waiting`, `queued` | `cancelled` | a cancel request, at once; a parent ending badly |
/// | `waiting`, `queued` | `expired` | the expirer (maintenance), once the task's `start_by` has passed and no attempt has counted (`attempt = 0`); a claim never takes such a task |
/// | `queued` | `running` | a worker's claim (`attempt + 1`, lease taken) |
/// | `running` | `completed` | the worker holding the attempt, when the handler returns a result |
/// | `running` | `queued` | the worker, when the handler snoozes (`run_at` = now + the snooze, `snoozes + 1`, and the attempt is not counted: `attempt - 1`); the worker, after a retryable failure or timeout with attempts left (`run_at` = now + backoff); the rescuer, for a lost worker; a shutting-down worker, releasing its task; a worker handing back a pushed task it never heard of (back to attempt 0: it never started) |
/// | `running` | `failed` | the worker, after a permanent failure or the last attempt's failure |
/// | `running` | `cancelled` | the worker, when a requested cancel is honoured |
/// | `running` | `dropped` | the rescuer or a shutting-down worker, when the worker was lost with no attempts left |
/// | `failed`, `cancelled`, `dropped`, `expired` | `queued` | only an explicit superuser retry (one task, or by filter), for a new attempt (keeping its history; the start deadline is lifted) |
///
/// Every write about a running task is fenced by `status = 'running' AND
/// attempt = n`, so only the current attempt moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created; waits for its parents (`depends_on`) to complete.
    Waiting,
    /// Runnable from `run_at` on (a new task, a retry, a rescued one).
    Queued,
    /// Claimed by a worker, whose lease holds it.
    Running,
    /// Ended with a result.
    Completed,
    /// Ended with an error and no attempt left (or a permanent error).
    Failed,
    /// Ended by a cancel request, or by a parent that ended badly.
    Cancelled,
    /// Its worker was lost with no attempt left.
    Dropped,
    /// Its start deadline (`start_by`) passed before any attempt of it
    /// counted (a snoozed attempt does not).
    Expired,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 8] = [
        Status::Waiting,
        Status::Queued,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
        Status::Dropped,
        Status::Expired,
    ];

    /// The name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Dropped => "dropped",
            Status::Expired => "expired",
        }
    }

    /// A terminal task never changes again, except by an explicit retry.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Completed
                | Status::Failed
                | Status::Cancelled
                | Status::Dropped
                | Status::Expired
        )
    }

    /// Whether a superuser may retry a task in this status: one that ended
    /// without a result (failed, cancelled, dropped or expired).
    pub fn can_retry(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::Cancelled | Status::Dropped | Status::Expired
        )
    }

    /// The statuses a superuser may retry, in lifecycle order.
    pub fn retryable() -> impl Iterator<Item = Status> {
        Status::ALL.into_iter().filter(|s| s.can_retry())
    }

    /// The statuses a cancel request acts on, and how (for cancelling many
    /// tasks at once).
    pub fn cancellable() -> impl Iterator<Item = (Status, CancelAction)> {
        Status::ALL
            .into_iter()
            .filter_map(|s| match s.cancel_action() {
                action @ (CancelAction::CancelNow | CancelAction::RequestStop) => Some((s, action)),
                _ => None,
            })
    }

    /// What a cancel request does to a task in this status.
    pub fn cancel_action(self) -> CancelAction {
        match self {
            Status::Waiting | Status::Queued => CancelAction::CancelNow,
            Status::Running => CancelAction::RequestStop,
            Status::Cancelled => CancelAction::AlreadyCancelled,
            Status::Completed | Status::Failed | Status::Dropped | Status::Expired => {
                CancelAction::AlreadyFinished
            }
        }
    }
}

/// The effect of a cancel request, by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAction {
    /// Not started: it becomes `cancelled` at once.
    CancelNow,
    /// Running: the worker is asked to stop; it ends `cancelled` when it does.
    /// Asking twice is harmless.
    RequestStop,
    /// Already cancelled: nothing changes, which makes cancel idempotent.
    AlreadyCancelled,
    /// Ended otherwise: cancel is refused.
    AlreadyFinished,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`Status::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status {0:?} (one of waiting, queued, running, completed, failed, cancelled, dropped, expired)"
)]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert!("finished".parse::<Status>().is_err());
    }

    #[test]
    fn terminal_statuses_are_the_five_endings() {
        let terminal: Vec<_> = Status::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                Status::Completed,
                Status::Failed,
                Status::Cancelled,
                Status::Dropped,
                Status::Expired
            ]
        );
        let retryable: Vec<_> = Status::retryable().collect();
        assert_eq!(
            retryable,
            [
                Status::Failed,
                Status::Cancelled,
                Status::Dropped,
                Status::Expired
            ]
        );
    }

    #[test]
    fn cancel_ends_unstarted_tasks_asks_running_ones_and_refuses_finished_ones() {
        assert_eq!(Status::Queued.cancel_action(), CancelAction::CancelNow);
        assert_eq!(Status::Waiting.cancel_action(), CancelAction::CancelNow);
        assert_eq!(Status::Running.cancel_action(), CancelAction::RequestStop);
        assert_eq!(
            Status::Cancelled.cancel_action(),
            CancelAction::AlreadyCancelled
        );
        for s in [
            Status::Completed,
            Status::Failed,
            Status::Dropped,
            Status::Expired,
        ] {
            assert_eq!(s.cancel_action(), CancelAction::AlreadyFinished);
        }
    }
}
