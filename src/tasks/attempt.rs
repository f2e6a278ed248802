//! How an attempt ends: from what happened to it ([`AttemptOutcome`]) to the
//! write to make ([`AttemptEnd`]): completed, re-queued with backoff,
//! snoozed, failed, cancelled or dropped. The worker, the rescuer and a
//! shutting-down worker all decide here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ErrorEntry, Progress, SnoozeLimits, Status, TaskFile};

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// The handler returned a result.
    Succeeded(Value),
    /// The handler failed (or panicked, or timed out). A permanent failure
    /// is never retried.
    Failed { message: String, retryable: bool },
    /// The handler said "not yet, look again after this": the task is
    /// queued again without using up an attempt (see [`snooze`], which
    /// turns one past the task's limits into a failure).
    Snoozed(Duration),
    /// A requested cancel was honoured.
    Cancelled,
    /// The worker went away before the task could produce a result: it was
    /// killed or cut off (found by the rescuer), or shut down. `at_once`
    /// re-queues without backoff, for a worker that hands its task back.
    Lost { reason: String, at_once: bool },
}

impl AttemptOutcome {
    /// A worker's lease ran out: it died, froze or lost the database.
    pub fn lease_expired() -> AttemptOutcome {
        AttemptOutcome::Lost {
            reason: "worker lost: its lease expired before the task ended".into(),
            at_once: false,
        }
    }

    /// A worker shut down before the task ended, and handed it back.
    pub fn shut_down() -> AttemptOutcome {
        AttemptOutcome::Lost {
            reason: "worker shut down before the task ended".into(),
            at_once: true,
        }
    }

    /// An attempt that ran out of time: a retryable failure that says so,
    /// and what the handler said as it stopped (a program's last log lines),
    /// if anything.
    pub fn timed_out(after: Duration, detail: Option<String>) -> AttemptOutcome {
        let mut message = format!("timed out after {}", human(after));
        if let Some(detail) = detail {
            message = format!("{message}; {detail}");
        }
        AttemptOutcome::Failed {
            message,
            retryable: true,
        }
    }
}

/// What a handler's snooze comes to for a task that snoozed `snoozes`
/// times before: the snooze, or, past `limits` (too many snoozes, or one
/// too long), a permanent failure that says which.
pub fn snooze(delay: Duration, snoozes: i32, limits: &SnoozeLimits) -> AttemptOutcome {
    let failed = |message: String| AttemptOutcome::Failed {
        message,
        retryable: false,
    };
    if snoozes >= limits.max_snoozes {
        failed(format!(
            "snoozed {snoozes} times, the most tasks.max_snoozes allows; it asked to snooze again"
        ))
    } else if delay > limits.longest {
        failed(format!(
            "asked to snooze for {}, longer than tasks.snooze_limit ({})",
            human(delay),
            human(limits.longest)
        ))
    } else {
        AttemptOutcome::Snoozed(delay)
    }
}

/// The write that ends a running attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEnd {
    /// `completed`, `queued` (another attempt, or a snooze), `failed`,
    /// `cancelled` or `dropped`.
    pub status: Status,
    pub result: Option<Value>,
    /// Added to the error history, and becomes the task's `error`.
    pub error: Option<ErrorEntry>,
    /// When the next attempt may start; set exactly when re-queued.
    pub run_at: Option<DateTime<Utc>>,
    /// The handler's last progress report, if not yet written (so that a
    /// finished task shows where it got to, not the last throttled write).
    pub progress: Option<Progress>,
    /// The files a completed attempt made, which become the task's outputs.
    pub outputs: Vec<TaskFile>,
    /// A snooze: queued again with the attempt not counted (`attempt - 1`)
    /// and one more snooze counted.
    pub snoozed: bool,
}

/// Retry delays: `base * 2^(attempt-1)` capped at `max`, with "equal jitter"
/// (half the delay fixed, half random), so retries of tasks that failed
/// together spread out instead of arriving together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before the attempt after `attempt` (1-based). `jitter` is a
    /// random number in 0..1, passed in so this stays pure and testable.
    pub fn delay(&self, attempt: i32, jitter: f64) -> Duration {
        // 2^31 times any sane base is past any sane cap; stop there.
        let exponent = attempt.saturating_sub(1).clamp(0, 31) as u32;
        let full = self
            .base
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Decides how attempt number `attempt` of `max_attempts` ends.
pub fn end_attempt(
    attempt: i32,
    max_attempts: i32,
    outcome: AttemptOutcome,
    backoff: &Backoff,
    jitter: f64,
    now: DateTime<Utc>,
) -> AttemptEnd {
    let attempts_left = attempt < max_attempts;
    let retry_at = |at_once: bool| {
        if at_once {
            now
        } else {
            now + chrono::Duration::from_std(backoff.delay(attempt, jitter))
                .unwrap_or(chrono::TimeDelta::MAX)
        }
    };
    let ended = |status, message: String| AttemptEnd {
        status,
        result: None,
        error: Some(ErrorEntry::new(attempt, message, now)),
        run_at: (status == Status::Queued).then(|| retry_at(false)),
        progress: None,
        outputs: Vec::new(),
        snoozed: false,
    };
    match outcome {
        AttemptOutcome::Succeeded(result) => AttemptEnd {
            status: Status::Completed,
            result: Some(super::storable_json(result)),
            error: None,
            run_at: None,
            progress: None,
            outputs: Vec::new(),
            snoozed: false,
        },
        AttemptOutcome::Snoozed(delay) => AttemptEnd {
            status: Status::Queued,
            result: None,
            error: None,
            run_at: Some(now + chrono::Duration::from_std(delay).unwrap_or(chrono::TimeDelta::MAX)),
            progress: None,
            outputs: Vec::new(),
            snoozed: true,
        },
        AttemptOutcome::Failed { message, retryable } => {
            let status = if retryable && attempts_left {
                Status::Queued
            } else {
                Status::Failed
            };
            ended(status, message)
        }
        AttemptOutcome::Cancelled => ended(Status::Cancelled, "cancelled on request".into()),
        AttemptOutcome::Lost { reason, at_once } => {
            if attempts_left {
                AttemptEnd {
                    run_at: Some(retry_at(at_once)),
                    ..ended(Status::Queued, reason)
                }
            } else {
                ended(Status::Dropped, reason)
            }
        }
    }
}

/// "1.5 s", "2 min 3 s": a duration for a message.
fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{} s", (secs * 1000.0).round() / 1000.0)
    } else {
        let whole = d.as_secs();
        match (whole / 60, whole % 60) {
            (m, 0) => format!("{m} min"),
            (m, s) => format!("{m} min {s} s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(10),
    };

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        // With jitter 1 the delay is the full value.
        let full: Vec<_> = (1..=6).map(|a| BACKOFF.delay(a, 1.0).as_secs()).collect();
        assert_eq!(full, [1, 2, 4, 8, 10, 10]);
        // With jitter 0 it is half of it: never less.
        assert_eq!(BACKOFF.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(BACKOFF.delay(1000, 0.5), Duration::from_millis(7500));
    }

    #[test]
    fn success_completes_and_clears_the_error() {
        let end = end_attempt(
            2,
            3,
            AttemptOutcome::Succeeded(json!(42)),
            &BACKOFF,
            0.5,
            now(),
        );
        assert_eq!(end.status, Status::Completed);
        assert_eq!(end.result, Some(json!(42)));
        assert_eq!(end.error, None);
        assert_eq!(end.run_at, None);
    }

    #[test]
    fn retryable_failure_requeues_with_backoff_until_attempts_run_out() {
        let fail = || AttemptOutcome::Failed {
            message: "boom".into(),
            retryable: true,
        };
        let end = end_attempt(2, 3, fail(), &BACKOFF, 1.0, now());
        assert_eq!(end.status, Status::Queued);
        assert_eq!(end.run_at, Some(now() + chrono::Duration::seconds(2)));
        let entry = end.error.unwrap();
        assert_eq!(
            (entry.attempt, entry.message.as_str(), entry.at),
            (2, "boom", now())
        );

        let end = end_attempt(3, 3, fail(), &BACKOFF, 1.0, now());
        assert_eq!(end.status, Status::Failed);
        assert_eq!(end.run_at, None);
    }

    #[test]
    fn nul_in_what_a_handler_reports_is_replaced_so_it_can_be_stored() {
        let result = json!({"text": "a\u{0}b", "k\u{0}": ["\u{0}"]});
        let end = end_attempt(
            1,
            1,
            AttemptOutcome::Succeeded(result),
            &BACKOFF,
            0.5,
            now(),
        );
        assert_eq!(
            end.result,
            Some(json!({"text": "a\u{FFFD}b", "k\u{FFFD}": ["\u{FFFD}"]}))
        );
        let failed = AttemptOutcome::Failed {
            message: "bad \u{0} byte".into(),
            retryable: false,
        };
        let end = end_attempt(1, 1, failed, &BACKOFF, 0.5, now());
        assert_eq!(end.error.unwrap().message, "bad \u{FFFD} byte");
        let p = Progress::new(0.5, Some("x\u{0}".into()));
        assert_eq!(p.message.as_deref(), Some("x\u{FFFD}"));
    }

    #[test]
    fn permanent_failure_is_never_retried() {
        let end = end_attempt(
            1,
            5,
            AttemptOutcome::Failed {
                message: "bad input".into(),
                retryable: false,
            },
            &BACKOFF,
            0.5,
            now(),
        );
        assert_eq!(end.status, Status::Failed);
    }

    #[test]
    fn lost_task_is_requeued_while_attempts_remain_else_dropped() {
        let end = end_attempt(1, 2, AttemptOutcome::lease_expired(), &BACKOFF, 1.0, now());
        assert_eq!(end.status, Status::Queued);
        assert_eq!(end.run_at, Some(now() + chrono::Duration::seconds(1)));
        assert!(end.error.unwrap().message.contains("worker lost"));

        let end = end_attempt(1, 2, AttemptOutcome::shut_down(), &BACKOFF, 1.0, now());
        assert_eq!(end.status, Status::Queued);
        assert_eq!(
            end.run_at,
            Some(now()),
            "a released task is re-queued at once"
        );

        let end = end_attempt(2, 2, AttemptOutcome::lease_expired(), &BACKOFF, 1.0, now());
        assert_eq!(end.status, Status::Dropped);
        assert_eq!(end.run_at, None);
    }

    #[test]
    fn a_snooze_requeues_without_an_error_until_its_limits() {
        let limits = SnoozeLimits {
            max_snoozes: 3,
            longest: Duration::from_secs(60),
        };
        let outcome = snooze(Duration::from_secs(5), 2, &limits);
        assert_eq!(outcome, AttemptOutcome::Snoozed(Duration::from_secs(5)));
        // On the last attempt too: a snooze uses none up.
        let end = end_attempt(3, 3, outcome, &BACKOFF, 0.5, now());
        assert_eq!(end.status, Status::Queued);
        assert!(end.snoozed);
        assert_eq!(end.error, None);
        assert_eq!(end.run_at, Some(now() + chrono::Duration::seconds(5)));

        let AttemptOutcome::Failed { message, retryable } =
            snooze(Duration::from_secs(5), 3, &limits)
        else {
            panic!("a snooze past tasks.max_snoozes fails")
        };
        assert!(message.contains("tasks.max_snoozes"), "{message}");
        assert!(!retryable);
        let AttemptOutcome::Failed { message, .. } = snooze(Duration::from_secs(61), 0, &limits)
        else {
            panic!("a snooze past tasks.snooze_limit fails")
        };
        assert!(message.contains("tasks.snooze_limit (1 min)"), "{message}");
    }

    #[test]
    fn cancel_ends_cancelled_even_with_attempts_left() {
        let end = end_attempt(1, 3, AttemptOutcome::Cancelled, &BACKOFF, 0.5, now());
        assert_eq!(end.status, Status::Cancelled);
        assert_eq!(end.error.unwrap().message, "cancelled on request");
    }

    #[test]
    fn timeout_message_says_after_how_long() {
        let AttemptOutcome::Failed { message, retryable } =
            AttemptOutcome::timed_out(Duration::from_millis(1500), None)
        else {
            panic!("a timeout is a failure")
        };
        assert_eq!(message, "timed out after 1.5 s");
        assert!(retryable);
        let AttemptOutcome::Failed { message, .. } =
            AttemptOutcome::timed_out(Duration::from_secs(125), Some("it said: stuck".into()))
        else {
            panic!()
        };
        assert_eq!(message, "timed out after 2 min 5 s; it said: stuck");
    }
}
