//! `[schedules.NAME]`: a task made at every tick of a cron expression,
//! declared in the configuration. The configuration is such a schedule's
//! source of truth: `errand serve` and `errand worker` write it to the
//! database at every start. Its values (the expression, the zone, the
//! kind and payload) are checked at start, by the code that runs it.

use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// `[schedules.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Five fields (minute hour day-of-month month day-of-week), or six
    /// with seconds first; or `@hourly`, `@daily`, ….
    pub cron: String,
    /// An IANA time zone name; default `UTC`.
    pub timezone: Option<String>,
    pub kind: String,
    /// The task's payload; default `{}`.
    pub payload: Option<serde_json::Value>,
    /// Default: the kind's.
    pub queue: Option<String>,
    pub priority: Option<i32>,
    pub max_attempts: Option<i32>,
    #[serde(default, with = "duration::option")]
    pub timeout: Option<Duration>,
    /// The name its tasks belong to; default `errand`.
    pub owner: Option<String>,
    /// `skip` (default) or `once`.
    pub missed: Option<String>,
    /// `allow` (default) or `skip`.
    pub overlap: Option<String>,
}
