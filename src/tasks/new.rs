//! A new task: the create request as a client writes it ([`TaskDraft`]) and
//! the checked, complete row to insert ([`NewTask`]). Everything is checked
//! before anything is written: a task that can't run is refused, never
//! accepted and failed later.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::collections::BTreeMap;

use super::files::validate_file_name;
use super::{FileId, KindPolicy, Principal, Status, TaskToken};

/// The body of `POST /v1/tasks`, as the client sent it. Absent fields take
/// the kind's defaults; an application builds one with [`TaskDraft::new`]
/// and struct update syntax.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "sleep", "payload": {"seconds": 2.5}}))]
pub struct TaskDraft {
    /// A registered kind (see `GET /v1/kinds`).
    pub kind: String,
    /// The kind's input. Checked before anything is queued: against the
    /// kind's JSON Schema, if it has one (each kind's is in
    /// `GET /v1/kinds`, as `payload_schema`), and by the kind itself.
    #[serde(default = "empty_object")]
    pub payload: Value,
    /// Default: the kind's queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Higher runs first within a queue. Default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Not before this time (RFC 3339). Not with `delay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
    /// Not before this many seconds from now. Not with `run_at`.
    #[schema(minimum = 0)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<f64>,
    /// Attempts in all, from 1 to `tasks.max_attempts_limit` (100 unless
    /// configured). Default: the kind's.
    #[schema(minimum = 1)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    /// Seconds one attempt may run, up to `tasks.timeout_limit` (7 days
    /// unless configured). Default: the kind's.
    #[schema(exclusive_minimum = 0)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Tokens of tasks this one waits for: it is `waiting` until every one
    /// has completed, and ends `cancelled` if one ends otherwise. Each must
    /// exist and be visible to you (else 422).
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<TaskToken>>,
    /// An http(s) URL to POST the task's final JSON to when it ends, signed
    /// as Standard Webhooks are. Refused (422) if it points at a loopback,
    /// private, link-local or metadata address, unless the server allows
    /// private networks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Input files, by the name the task knows each by: the id of an upload
    /// of yours (`POST /v1/files`). Unknown, someone else's or expired: 422.
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, FileId>>,
    /// A start deadline (RFC 3339, in the future, not before `run_at`): a
    /// task not started by then never starts, and ends `expired`. Not with
    /// `expires_in`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_by: Option<DateTime<Utc>>,
    /// A start deadline this many seconds after the task is due (its
    /// `run_at`: now, unless delayed; a task waiting for its parents
    /// counts from its creation). Default: the kind's `expires_in`, if it
    /// has one. Not with `start_by`.
    #[schema(exclusive_minimum = 0)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<f64>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl TaskDraft {
    /// A task of `kind` with `payload`, every other field the kind's default.
    pub fn new(kind: impl Into<String>, payload: Value) -> TaskDraft {
        TaskDraft {
            kind: kind.into(),
            payload,
            queue: None,
            priority: None,
            run_at: None,
            delay: None,
            max_attempts: None,
            timeout: None,
            depends_on: None,
            callback_url: None,
            files: None,
            start_by: None,
            expires_in: None,
        }
    }
}

/// A checked task, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub token: TaskToken,
    pub kind: String,
    pub queue: String,
    pub priority: i32,
    pub status: Status,
    pub payload: Value,
    pub max_attempts: i32,
    pub timeout_ms: Option<i64>,
    pub owner: String,
    pub product: Option<String>,
    pub created_at: DateTime<Utc>,
    pub run_at: DateTime<Utc>,
    /// Parents, each once, in the order given. The task is `waiting` while
    /// any of them has not completed.
    pub depends_on: Vec<TaskToken>,
    /// Where its final JSON is POSTed when it ends (checked in form here;
    /// where it points is checked by resolving it, outside the domain).
    pub callback_url: Option<String>,
    /// Input files: (name, file), names checked. The store checks the files
    /// (see [`NewTask::check_inputs`]).
    pub inputs: Vec<(String, FileId)>,
    /// Not started by then, it never starts (see [`Status::Expired`]).
    pub start_by: Option<DateTime<Utc>>,
    /// The schedule and tick that made it, if a schedule did.
    pub tick: Option<ScheduleTick>,
}

/// The schedule tick a task was made for: at most one task per tick, which
/// the database enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTick {
    pub schedule: String,
    pub at: DateTime<Utc>,
}

/// A create request that can't be accepted, and which field is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field at fault, as the client wrote it.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    /// A refusal of `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            field,
            message: message.into(),
        }
    }
}

impl TaskDraft {
    /// Checks the draft against its kind's policy and makes the row to
    /// insert. The kind's payload is checked by the kind itself, before this.
    pub fn validate(
        self,
        policy: &KindPolicy,
        owner: &Principal,
        now: DateTime<Utc>,
    ) -> Result<NewTask, Invalid> {
        let callback_url = match &self.callback_url {
            Some(text) => Some(super::check_callback_url(text)?.to_string()),
            None => None,
        };
        let queue = match &self.queue {
            Some(queue) => {
                validate_queue_name(queue).map_err(|m| Invalid::new("queue", m))?;
                queue.clone()
            }
            None => policy.queue.clone(),
        };
        let run_at = self.run_at(now)?;
        Ok(NewTask {
            token: TaskToken::generate(),
            queue,
            priority: self.priority.unwrap_or(0),
            status: Status::Queued,
            max_attempts: self.max_attempts(policy)?,
            timeout_ms: self.timeout_ms(policy)?,
            owner: owner.name.clone(),
            product: owner.product.clone(),
            created_at: now,
            start_by: self.start_by(policy, run_at, now)?,
            run_at,
            tick: None,
            depends_on: self.parents(policy)?,
            inputs: self.inputs(policy)?,
            callback_url,
            kind: self.kind,
            payload: self.payload,
        })
    }

    /// The parents, each once, in the order given.
    fn parents(&self, policy: &KindPolicy) -> Result<Vec<TaskToken>, Invalid> {
        let mut seen = std::collections::HashSet::new();
        let parents: Vec<TaskToken> = (self.depends_on.iter().flatten())
            .filter(|token| seen.insert(**token))
            .copied()
            .collect();
        if parents.len() > policy.max_dependencies {
            return Err(Invalid::new(
                "depends_on",
                format!(
                    "at most {} parents (tasks.max_dependencies)",
                    policy.max_dependencies
                ),
            ));
        }
        Ok(parents)
    }

    /// Not before: `run_at` (a time in the past means now) or `delay`.
    fn run_at(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
        match (self.run_at, self.delay) {
            (Some(_), Some(_)) => Err(Invalid::new("delay", "give run_at or delay, not both")),
            (Some(at), None) => Ok(at.max(now)),
            (None, Some(delay)) => {
                let delay = seconds("delay", delay, None, true)?;
                chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .ok_or_else(|| Invalid::new("delay", "is too far in the future"))
            }
            (None, None) => Ok(now),
        }
    }

    /// The start deadline: `start_by` (in the future, and not before the
    /// task is due), or `expires_in` (or the kind's) after it is due.
    fn start_by(
        &self,
        policy: &KindPolicy,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Invalid> {
        let after_due = |field, span: Duration| {
            chrono::Duration::from_std(span)
                .ok()
                .and_then(|d| run_at.checked_add_signed(d))
                .map(Some)
                .ok_or_else(|| Invalid::new(field, "is too far in the future"))
        };
        match (self.start_by, self.expires_in) {
            (Some(_), Some(_)) => Err(Invalid::new(
                "expires_in",
                "give start_by or expires_in, not both",
            )),
            (Some(at), None) if at <= now => Err(Invalid::new(
                "start_by",
                "is not in the future: the task would never start",
            )),
            (Some(at), None) if at <= run_at => Err(Invalid::new(
                "start_by",
                "is before the task is due (run_at or delay): it would never start",
            )),
            (Some(at), None) => Ok(Some(at)),
            (None, Some(secs)) => {
                after_due("expires_in", seconds("expires_in", secs, None, false)?)
            }
            (None, None) => match policy.expires_in {
                Some(span) => after_due("expires_in", span),
                None => Ok(None),
            },
        }
    }

    /// The input files, names checked, at most `max_files`.
    fn inputs(&self, policy: &KindPolicy) -> Result<Vec<(String, FileId)>, Invalid> {
        let files = self.files.iter().flatten();
        if files.clone().count() > policy.max_files {
            return Err(Invalid::new(
                "files",
                format!("at most {} files (files.max_per_task)", policy.max_files),
            ));
        }
        files
            .map(|(name, id)| {
                validate_file_name(name).map_err(|m| Invalid::new("files", m))?;
                Ok((name.clone(), *id))
            })
            .collect()
    }

    fn max_attempts(&self, policy: &KindPolicy) -> Result<i32, Invalid> {
        match self.max_attempts {
            Some(n) if n < 1 || n > policy.max_attempts_limit => Err(Invalid::new(
                "max_attempts",
                format!("must be between 1 and {}", policy.max_attempts_limit),
            )),
            Some(n) => Ok(n),
            None => Ok(policy.max_attempts),
        }
    }

    fn timeout_ms(&self, policy: &KindPolicy) -> Result<Option<i64>, Invalid> {
        let Some(t) = self.timeout else {
            return Ok(None);
        };
        let t = seconds("timeout", t, Some(policy.timeout_limit), false)?;
        Ok(Some(
            i64::try_from(t.as_millis()).unwrap_or(i64::MAX).max(1),
        ))
    }
}

/// A number of seconds given by a client, checked and converted.
fn seconds(
    field: &'static str,
    value: f64,
    max: Option<Duration>,
    zero_ok: bool,
) -> Result<Duration, Invalid> {
    let ok = value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0));
    if !ok {
        let least = if zero_ok { "0 or more" } else { "more than 0" };
        return Err(Invalid::new(field, format!("must be {least} seconds")));
    }
    match (Duration::try_from_secs_f64(value), max) {
        (Ok(d), Some(max)) if d > max => Err(Invalid::new(
            field,
            format!("must be at most {} seconds", max.as_secs()),
        )),
        (Ok(d), _) => Ok(d),
        (Err(_), _) => Err(Invalid::new(field, "is out of range")),
    }
}

/// Queue names: 1 to 64 of `A-Z a-z 0-9 _ - .`, so they are safe in URLs,
/// logs and metrics labels.
pub fn validate_queue_name(name: &str) -> Result<(), String> {
    if is_plain_name(name, 64) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a queue name (1 to 64 letters, digits, '_', '-' or '.')"
        ))
    }
}

/// 1 to `max` ASCII letters, digits, `_`, `-` or `.`: a name that is safe
/// in a URL, a path, a log line and a metrics label.
pub(crate) fn is_plain_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::super::{Backoff, Role, SnoozeLimits};
    use super::*;
    use serde_json::json;

    fn policy() -> KindPolicy {
        KindPolicy {
            queue: "default".into(),
            max_attempts: 3,
            timeout: Duration::from_secs(60),
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            max_attempts_limit: 100,
            timeout_limit: Duration::from_secs(3600),
            max_dependencies: 3,
            max_files: 2,
            expires_in: None,
            snooze: SnoozeLimits {
                max_snoozes: 100,
                longest: Duration::from_secs(3600),
            },
        }
    }

    fn alice() -> Principal {
        Principal {
            name: "alice".into(),
            role: Role::User,
            product: Some("shop".into()),
        }
    }

    fn draft(body: Value) -> TaskDraft {
        serde_json::from_value(body).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn defaults_come_from_the_kind_and_the_caller() {
        let t = draft(json!({"kind": "sleep", "payload": {"seconds": 1}}))
            .validate(&policy(), &alice(), now())
            .unwrap();
        assert_eq!(t.queue, "default");
        assert_eq!(t.max_attempts, 3);
        assert_eq!(t.priority, 0);
        assert_eq!(t.status, Status::Queued);
        assert_eq!(t.run_at, now());
        assert_eq!(t.owner, "alice");
        assert_eq!(t.product.as_deref(), Some("shop"));
        assert_eq!(t.timeout_ms, None);
    }

    #[test]
    fn delay_and_run_at_delay_the_task() {
        let t = draft(json!({"kind": "sleep", "delay": 2.5}))
            .validate(&policy(), &alice(), now())
            .unwrap();
        assert_eq!(t.run_at, now() + chrono::Duration::milliseconds(2500));
        let t = draft(json!({"kind": "sleep", "run_at": "2026-01-01T01:00:00Z"}))
            .validate(&policy(), &alice(), now())
            .unwrap();
        assert_eq!(
            t.run_at,
            "2026-01-01T01:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // A run_at in the past means "now".
        let t = draft(json!({"kind": "sleep", "run_at": "2020-01-01T00:00:00Z"}))
            .validate(&policy(), &alice(), now())
            .unwrap();
        assert_eq!(t.run_at, now());
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                json!({"kind": "sleep", "delay": 1, "run_at": "2026-01-01T00:00:00Z"}),
                "delay",
            ),
            (json!({"kind": "sleep", "delay": -1}), "delay"),
            (json!({"kind": "sleep", "delay": 1e300}), "delay"),
            (json!({"kind": "sleep", "max_attempts": 0}), "max_attempts"),
            (
                json!({"kind": "sleep", "max_attempts": 101}),
                "max_attempts",
            ),
            (json!({"kind": "sleep", "timeout": 0}), "timeout"),
            (json!({"kind": "sleep", "timeout": 7200}), "timeout"),
            (json!({"kind": "sleep", "queue": "no spaces"}), "queue"),
            (
                json!({"kind": "sleep", "start_by": "2025-12-31T23:59:59Z"}),
                "start_by",
            ),
            (
                json!({"kind": "sleep", "start_by": "2026-01-01T00:00:00Z"}),
                "start_by",
            ),
            (
                json!({"kind": "sleep", "delay": 60, "start_by": "2026-01-01T00:00:30Z"}),
                "start_by",
            ),
            (json!({"kind": "sleep", "expires_in": 0}), "expires_in"),
            (json!({"kind": "sleep", "expires_in": -5}), "expires_in"),
            (json!({"kind": "sleep", "expires_in": 1e300}), "expires_in"),
            (
                json!({"kind": "sleep", "expires_in": 5, "start_by": "2026-01-01T01:00:00Z"}),
                "expires_in",
            ),
            (json!({"kind": "sleep", "queue": ""}), "queue"),
            (
                json!({"kind": "sleep", "depends_on": (0..4).map(|_| TaskToken::generate()).collect::<Vec<_>>()}),
                "depends_on",
            ),
            (
                json!({"kind": "sleep", "callback_url": "ftp://example.com/"}),
                "callback_url",
            ),
            (
                json!({"kind": "sleep", "files": {"../etc": FileId::generate()}}),
                "files",
            ),
            (
                json!({"kind": "sleep", "files": {"a": FileId::generate(), "b": FileId::generate(), "c": FileId::generate()}}),
                "files",
            ),
        ];
        for (body, field) in cases {
            let err = draft(body.clone())
                .validate(&policy(), &alice(), now())
                .unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
    }

    #[test]
    fn a_start_deadline_is_given_or_counted_from_when_the_task_is_due() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let t = draft(json!({"kind": "sleep", "start_by": "2026-01-01T00:10:00Z"}))
            .validate(&policy(), &alice(), now())
            .unwrap();
        assert_eq!(t.start_by, Some(at("2026-01-01T00:10:00Z")));
        let t = draft(json!({"kind": "sleep", "delay": 60, "expires_in": 30}))
            .validate(&policy(), &alice(), now())
            .unwrap();
        assert_eq!(t.start_by, Some(at("2026-01-01T00:01:30Z")));
        let plain = draft(json!({"kind": "sleep"}));
        assert_eq!(
            plain
                .clone()
                .validate(&policy(), &alice(), now())
                .unwrap()
                .start_by,
            None
        );
        // The kind's default, after the task is due; a request's own wins.
        let mut kind = policy();
        kind.expires_in = Some(Duration::from_secs(300));
        let t = plain.validate(&kind, &alice(), now()).unwrap();
        assert_eq!(t.start_by, Some(at("2026-01-01T00:05:00Z")));
        let t = draft(json!({"kind": "sleep", "expires_in": 1}))
            .validate(&kind, &alice(), now())
            .unwrap();
        assert_eq!(t.start_by, Some(at("2026-01-01T00:00:01Z")));
    }

    #[test]
    fn dependencies_are_kept_once_each_in_order() {
        let (a, b) = (TaskToken::generate(), TaskToken::generate());
        let t = draft(json!({"kind": "sleep", "depends_on": [a, b, a, b, a]}))
            .validate(&policy(), &alice(), now())
            .unwrap();
        assert_eq!(t.depends_on, [a, b]);
        assert!(Status::Failed.dooms_dependents() && Status::Dropped.dooms_dependents());
        assert!(!Status::Completed.dooms_dependents() && !Status::Running.dooms_dependents());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_value::<TaskDraft>(json!({"kind": "sleep", "colour": "red"}))
            .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn request_overrides_apply() {
        let t = draft(json!({"kind": "sleep", "queue": "gpu", "priority": 5, "max_attempts": 7, "timeout": 1.5}))
            .validate(&policy(), &alice(), now())
            .unwrap();
        assert_eq!(t.queue, "gpu");
        assert_eq!(t.priority, 5);
        assert_eq!(t.max_attempts, 7);
        assert_eq!(t.timeout_ms, Some(1500));
    }
}
