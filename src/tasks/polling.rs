//! When a client polling a task that has not ended should look again: the
//! `Retry-After` the API answers with ([`PollPace`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Status, Task};

/// How often clients are asked to poll: never more often than `base`
/// (`http.retry_after`), never less often than `max`
/// (`http.retry_after_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPace {
    pub base: Duration,
    pub max: Duration,
}

impl PollPace {
    /// How long a client should wait before polling `task` again, in whole
    /// seconds (at least 1); `None` once it has ended (nothing will change):
    ///
    /// - **running**: `base`. It moves, and its progress is worth showing.
    /// - **queued, not due yet** (a `delay`, `run_at`, or a retry's
    ///   backoff): the time until it is due, between `base` and `max`;
    ///   nothing can happen before then.
    /// - **queued and due, or waiting** for its dependencies: a quarter of
    ///   the time it has waited so far, between `base` and `max`. A task
    ///   that starts at once is polled every `base`; one far back in a long
    ///   queue, or behind slow parents, is looked at less often the longer
    ///   it has waited, so a backlog does not multiply the polls.
    pub fn retry_after(&self, task: &Task, now: DateTime<Utc>) -> Option<Duration> {
        let wait = match task.status {
            s if s.is_terminal() => return None,
            Status::Running => self.base,
            Status::Queued if task.run_at > now => self.clamp(task.run_at - now),
            _ => self.clamp((now - task.run_at.max(task.created_at)) / 4),
        };
        Some(whole_seconds(wait))
    }

    fn clamp(&self, wait: chrono::TimeDelta) -> Duration {
        let floor = self.base.min(self.max);
        wait.to_std().unwrap_or_default().clamp(floor, self.max)
    }
}

/// `Retry-After` takes whole seconds: rounded up, at least one.
fn whole_seconds(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Progress, TaskFiles, TaskId, TaskRecord, TaskToken};

    const PACE: PollPace = PollPace {
        base: Duration::from_secs(2),
        max: Duration::from_secs(30),
    };

    fn now() -> DateTime<Utc> {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    fn task(status: Status, created_ago: i64, run_in: i64) -> Task {
        Task {
            id: TaskId(1),
            record: TaskRecord {
                token: TaskToken::generate(),
                kind: "sleep".into(),
                queue: "default".into(),
                priority: 0,
                status,
                progress: Progress::new(0.0, None),
                attempt: 0,
                max_attempts: 3,
                snoozes: 0,
                owner: "alice".into(),
                product: None,
                payload: serde_json::json!({}),
                result: None,
                error: None,
                errors: vec![],
                depends_on: vec![],
                created_at: now() - chrono::Duration::seconds(created_ago),
                run_at: now() + chrono::Duration::seconds(run_in),
                start_by: None,
                schedule: None,
                scheduled_for: None,
                started_at: None,
                finished_at: None,
            },
            cancel_requested_at: None,
            timeout_ms: None,
            callback_url: None,
            files: TaskFiles::default(),
            lease_expires_at: None,
            worker_id: None,
        }
    }

    fn secs(status: Status, created_ago: i64, run_in: i64) -> Option<u64> {
        PACE.retry_after(&task(status, created_ago, run_in), now())
            .map(|d| d.as_secs())
    }

    #[test]
    fn a_running_task_is_polled_at_the_base_pace() {
        assert_eq!(secs(Status::Running, 3600, -3600), Some(2));
    }

    #[test]
    fn a_task_not_due_yet_is_polled_when_it_comes_due_within_the_bounds() {
        assert_eq!(secs(Status::Queued, 0, 10), Some(10));
        assert_eq!(secs(Status::Queued, 0, 1), Some(2));
        assert_eq!(secs(Status::Queued, 0, 3600), Some(30));
    }

    #[test]
    fn a_task_that_waits_long_is_polled_less_often_the_longer_it_waits() {
        assert_eq!(secs(Status::Queued, 0, 0), Some(2));
        assert_eq!(secs(Status::Queued, 40, -40), Some(10));
        assert_eq!(secs(Status::Waiting, 60, -60), Some(15));
        assert_eq!(secs(Status::Queued, 3600, -3600), Some(30));
        // A retry that came due 8 s ago waited since then, not since its creation.
        assert_eq!(secs(Status::Queued, 3600, -8), Some(2));
    }

    #[test]
    fn an_ended_task_has_no_retry_after() {
        for status in [
            Status::Completed,
            Status::Failed,
            Status::Cancelled,
            Status::Dropped,
        ] {
            assert_eq!(secs(status, 10, -10), None);
        }
    }
}
