//! Schedules: a task made at every tick of a cron expression
//! ([`Schedule`]), declared in the configuration or created over the API
//! ([`ScheduleDraft`]), as stored ([`ScheduleRecord`]). Which ticks a
//! scheduler pass fires is `firing`'s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::new::{is_plain_name, validate_queue_name};
use super::{Cron, Invalid, Principal, Role, TaskDraft};

/// What a schedule does with ticks that passed while no scheduler was
/// running (every process down).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Missed {
    /// Nothing: the next tick fires as usual.
    #[default]
    Skip,
    /// One task, for the last of them, at the next start.
    Once,
}

/// Whether a tick makes a task while the schedule's last task has not
/// ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Yes: every tick makes its task.
    #[default]
    Allow,
    /// No: the tick passes without a task.
    Skip,
}

/// Where a schedule was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleSource {
    /// `[schedules.NAME]`: written at every start, from the configuration,
    /// which the API can't change (only pause and resume).
    Config,
    /// `POST /v1/schedules`.
    Api,
}

/// A schedule: when it fires, and the task it makes each time.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub cron: Cron,
    pub kind: String,
    pub payload: Value,
    /// `None`: the kind's.
    pub queue: Option<String>,
    pub priority: Option<i32>,
    pub max_attempts: Option<i32>,
    pub timeout: Option<Duration>,
    /// Who its tasks belong to (a token's name), and their product.
    pub owner: String,
    pub product: Option<String>,
    pub missed: Missed,
    pub overlap: Overlap,
    pub source: ScheduleSource,
}

/// Who paused something (a queue, a schedule), and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Pause {
    pub at: DateTime<Utc>,
    /// The name of the token that paused it.
    pub by: String,
}

/// A schedule as stored: the next tick not yet handled, and whether it is
/// paused.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    pub schedule: Schedule,
    /// The first tick no scheduler has handled yet.
    pub next_tick: DateTime<Utc>,
    pub paused: Option<Pause>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ScheduleRecord {
    /// A new schedule's record, made at `now`: it fires from its first
    /// tick after now.
    pub fn new(schedule: Schedule, now: DateTime<Utc>) -> ScheduleRecord {
        ScheduleRecord {
            next_tick: schedule.first_tick_after(now),
            schedule,
            paused: None,
            created_at: now,
            updated_at: now,
        }
    }
}

impl Schedule {
    /// Its first tick after `t` (far in the future if it has none: a
    /// schedule is checked to fire when made).
    pub fn first_tick_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.cron.next_after(t).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The create request of the task it makes at a tick (checked like
    /// any other create, by the kind and [`TaskDraft::validate`]).
    pub fn draft(&self) -> TaskDraft {
        TaskDraft {
            queue: self.queue.clone(),
            priority: self.priority,
            max_attempts: self.max_attempts,
            timeout: self.timeout.map(|t| t.as_secs_f64()),
            ..TaskDraft::new(self.kind.clone(), self.payload.clone())
        }
    }

    /// Who its tasks are created as.
    pub fn creator(&self) -> Principal {
        Principal {
            name: self.owner.clone(),
            role: Role::User,
            product: self.product.clone(),
        }
    }

    /// The request that would make this schedule again (what `PATCH`
    /// merges its changes into).
    pub fn as_draft(&self) -> ScheduleDraft {
        ScheduleDraft {
            name: self.name.clone(),
            cron: self.cron.expression().to_string(),
            timezone: self.cron.timezone().to_string(),
            kind: self.kind.clone(),
            payload: self.payload.clone(),
            queue: self.queue.clone(),
            priority: self.priority,
            max_attempts: self.max_attempts,
            timeout: self.timeout.map(|t| t.as_secs_f64()),
            missed: self.missed,
            overlap: self.overlap,
        }
    }
}

/// A schedule as a client (`POST /v1/schedules`) or the configuration
/// gives it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "nightly-report", "cron": "0 3 * * *", "timezone": "Europe/Berlin", "kind": "sleep", "payload": {"seconds": 1}}))]
pub struct ScheduleDraft {
    /// 1 to 64 letters, digits, `_`, `-` or `.`.
    pub name: String,
    /// Five fields (minute hour day-of-month month day-of-week), or six
    /// with seconds first; or `@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`.
    pub cron: String,
    /// The IANA time zone the expression is read in. Default `UTC`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// The kind of the task each tick makes.
    pub kind: String,
    /// Its payload, checked as a create's is.
    #[serde(default = "empty_object")]
    pub payload: Value,
    /// Default: the kind's queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    /// Seconds an attempt of its task may run. Default: the kind's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Ticks that passed while every process was down: `skip` (default)
    /// or `once` (one task, for the last of them).
    #[serde(default)]
    pub missed: Missed,
    /// While its last task has not ended: `allow` (default: a task at
    /// every tick) or `skip` (no task for the tick).
    #[serde(default)]
    pub overlap: Overlap,
}

fn utc() -> String {
    "UTC".into()
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl ScheduleDraft {
    /// Checks every field a schedule holds of its own (the name, the cron
    /// expression, which must fire after `now`, and its zone, the queue).
    /// Its task is checked as a create is, by the caller:
    /// [`Schedule::draft`]. Its tasks belong to `owner`.
    pub fn validate(
        self,
        owner: &Principal,
        source: ScheduleSource,
        now: DateTime<Utc>,
    ) -> Result<Schedule, Invalid> {
        validate_schedule_name(&self.name).map_err(|m| Invalid::new("name", m))?;
        let cron = Cron::parse(&self.cron, &self.timezone)?;
        cron.fires_after(now)?;
        if let Some(queue) = &self.queue {
            validate_queue_name(queue).map_err(|m| Invalid::new("queue", m))?;
        }
        let timeout = match self.timeout {
            Some(t) if t.is_finite() && t > 0.0 => Some(
                Duration::try_from_secs_f64(t)
                    .map_err(|_| Invalid::new("timeout", "is out of range"))?,
            ),
            Some(_) => return Err(Invalid::new("timeout", "must be more than 0 seconds")),
            None => None,
        };
        Ok(Schedule {
            name: self.name,
            cron,
            kind: self.kind,
            payload: self.payload,
            queue: self.queue,
            priority: self.priority,
            max_attempts: self.max_attempts,
            timeout,
            owner: owner.name.clone(),
            product: owner.product.clone(),
            missed: self.missed,
            overlap: self.overlap,
            source,
        })
    }
}

/// Schedule names: 1 to 64 of `A-Z a-z 0-9 _ - .` (safe in a URL and a
/// metrics label).
pub fn validate_schedule_name(name: &str) -> Result<(), String> {
    if is_plain_name(name, 64) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a schedule name (1 to 64 letters, digits, '_', '-' or '.')"
        ))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A schedule of every second (`firing`'s tests use it too).
    pub(in crate::tasks) fn every_second(missed: Missed, overlap: Overlap) -> Schedule {
        let owner = Principal {
            name: "ops".into(),
            role: Role::Superuser,
            product: None,
        };
        let draft: ScheduleDraft = serde_json::from_value(serde_json::json!({
            "name": "tick", "cron": "* * * * * *", "kind": "sleep",
        }))
        .unwrap();
        ScheduleDraft {
            missed,
            overlap,
            ..draft
        }
        .validate(&owner, ScheduleSource::Api, Utc::now())
        .unwrap()
    }

    #[test]
    fn a_draft_is_checked_field_by_field() {
        let owner = Principal {
            name: "ops".into(),
            role: Role::Superuser,
            product: None,
        };
        for (body, field) in [
            (
                serde_json::json!({"name": "a b", "cron": "* * * * *", "kind": "sleep"}),
                "name",
            ),
            (
                serde_json::json!({"name": "x", "cron": "* * *", "kind": "sleep"}),
                "cron",
            ),
            (
                serde_json::json!({"name": "x", "cron": "* * * * *", "timezone": "Nowhere", "kind": "sleep"}),
                "timezone",
            ),
            (
                serde_json::json!({"name": "x", "cron": "* * * * *", "kind": "sleep", "queue": "a b"}),
                "queue",
            ),
            (
                serde_json::json!({"name": "x", "cron": "* * * * *", "kind": "sleep", "timeout": -1}),
                "timeout",
            ),
        ] {
            let draft: ScheduleDraft = serde_json::from_value(body.clone()).unwrap();
            let err = draft
                .validate(&owner, ScheduleSource::Api, Utc::now())
                .unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
        let s = every_second(Missed::Skip, Overlap::Allow);
        assert_eq!(s.owner, "ops");
        assert_eq!(
            s.as_draft()
                .validate(&owner, ScheduleSource::Api, Utc::now())
                .unwrap(),
            s
        );
        assert_eq!(s.draft().kind, "sleep");
    }
}
