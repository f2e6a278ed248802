//! The domain: what a task is, its statuses and their transitions, the
//! validation of a new task, how an attempt ends (retry, backoff, snooze,
//! drop), who may see or cancel what, and schedules (when a cron
//! expression fires, which ticks a pass fires).
//!
//! Pure: no I/O, no sqlx, no actix, nothing else from the crate. The API,
//! the store and the worker all come here for a rule, so each rule lives once.

mod access;
mod attempt;
mod callback;
mod cron;
mod files;
mod filter;
mod firing;
mod idempotency;
mod new;
mod policy;
mod polling;
mod references;
mod schedule;
mod status;
mod task;
mod view;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use access::{ApiToken, CancelReach, CancelRole, Principal, Role, TokenHash, UnknownRole};
pub use attempt::{AttemptEnd, AttemptOutcome, Backoff, end_attempt, snooze};
pub use callback::{WebhookSecret, check_callback_url, forbidden_address};
pub use cron::Cron;
pub use files::{
    FileId, FileView, StoredFile, TaskFile, TaskFileView, TaskFiles, TaskFilesView,
    validate_file_name,
};
pub use filter::{BadCursor, Cursor, Scope, TaskFilter};
pub use firing::{Firing, Liveness, plan};
pub use idempotency::IdempotencyKey;
pub use new::{Invalid, NewTask, ScheduleTick, TaskDraft, validate_queue_name};
pub use policy::{KindPolicy, SnoozeLimits};
pub use polling::PollPace;
pub use references::Refused;
pub use schedule::{
    Missed, Overlap, Pause, Schedule, ScheduleDraft, ScheduleRecord, ScheduleSource,
    validate_schedule_name,
};
pub use status::{CancelAction, Status, UnknownStatus};
pub use task::{Task, TaskRecord};
pub use view::{LastTask, Links, ScheduleLinks, ScheduleView, TaskView};

/// The internal row id of a task. Never leaves the server: clients see the
/// [`TaskToken`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub i64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The public, unguessable name of a task: a UUID of version 7, the time
/// it was made (to the millisecond) and then 74 random bits, written as 32
/// lowercase hex digits. Time first, so that the tokens of tasks made
/// together sit together in the database's index of tokens: random ones
/// touched a page of it anywhere for every write of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskToken(Uuid);

impl TaskToken {
    /// A fresh token: now, and random bits.
    pub fn generate() -> TaskToken {
        // Ten bytes of a random UUID, passing over the two that carry its
        // version and variant.
        let r = *Uuid::new_v4().as_bytes();
        let random = [r[0], r[1], r[2], r[3], r[4], r[5], r[7], r[9], r[10], r[11]];
        let millis = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        TaskToken(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }

    pub fn from_uuid(uuid: Uuid) -> TaskToken {
        TaskToken(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for TaskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

/// A string that is not a task token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a task token")]
pub struct BadToken(pub String);

impl FromStr for TaskToken {
    type Err = BadToken;

    /// Accepts the 32-digit form and, leniently, the hyphenated one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s)
            .map(TaskToken)
            .map_err(|_| BadToken(s.to_string()))
    }
}

impl Serialize for TaskToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The name of one worker process, unique across the cluster
/// (`host-pid-random`): what a running task's row says holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerId(pub String);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One worker process, as it registers itself and heart-beats: what the
/// workers view shows.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WorkerInfo {
    /// `host-pid-random`.
    #[schema(value_type = String)]
    pub id: WorkerId,
    pub host: String,
    pub pid: i64,
    /// Each queue it serves, with its slots.
    pub queues: std::collections::BTreeMap<String, i64>,
    /// Its slots in all.
    pub concurrency: i64,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Tasks it is running now.
    pub running: i64,
}

impl Serialize for WorkerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// How far a running task has come, as its handler last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Progress {
    /// From 0 to 1.
    pub fraction: f64,
    pub message: Option<String>,
}

impl Progress {
    /// A progress report, with the fraction clamped to 0..=1 (NaN reads as 0)
    /// and the message cut to a sane length.
    pub fn new(fraction: f64, message: Option<String>) -> Progress {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let message = message.map(|m| truncate(m, Progress::MAX_MESSAGE_CHARS));
        Progress { fraction, message }
    }

    /// Longest progress message kept, in characters.
    pub const MAX_MESSAGE_CHARS: usize = 500;
}

/// One failed (or lost, or cancelled) attempt in a task's error history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorEntry {
    pub attempt: i32,
    pub message: String,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// When the attempt started (recorded with the entry by the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

impl ErrorEntry {
    /// Longest error message kept, in characters; longer ones are cut.
    pub const MAX_MESSAGE_CHARS: usize = 2000;

    pub fn new(attempt: i32, message: impl Into<String>, at: DateTime<Utc>) -> ErrorEntry {
        ErrorEntry {
            attempt,
            message: truncate(message.into(), Self::MAX_MESSAGE_CHARS),
            at,
            started_at: None,
        }
    }
}

/// `text` cut to `max_chars` (with an ellipsis), fit for storing.
fn truncate(text: String, max_chars: usize) -> String {
    let mut text = storable(text);
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Text as a database can keep it: NUL, which no text or JSON column holds
/// (Postgres refuses it), becomes U+FFFD. What handlers report goes through
/// this, so an odd byte in a result never keeps a task from ending.
fn storable(text: String) -> String {
    match text.contains('\0') {
        true => text.replace('\0', "\u{FFFD}"),
        false => text,
    }
}

/// A JSON value as a database can keep it: every string and key in it
/// with NUL replaced by U+FFFD (see `storable`).
pub fn storable_json(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(storable(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (storable(k), storable_json(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_32_hex_digits_and_parses_back() {
        let token = TaskToken::generate();
        let text = token.to_string();
        assert_eq!(text.len(), 32);
        assert!(text.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(text.parse::<TaskToken>().unwrap(), token);
        assert!("not-a-token".parse::<TaskToken>().is_err());
        assert_ne!(TaskToken::generate(), token);
    }

    #[test]
    fn tokens_start_with_their_time_and_end_random() {
        let before = Utc::now().timestamp_millis();
        let tokens: Vec<TaskToken> = (0..1000).map(|_| TaskToken::generate()).collect();
        let after = Utc::now().timestamp_millis();
        let millis = |t: &TaskToken| {
            let (secs, nanos) = t.0.get_timestamp().unwrap().to_unix();
            (secs * 1000 + u64::from(nanos / 1_000_000)) as i64
        };
        for pair in tokens.windows(2) {
            assert!(millis(&pair[0]) <= millis(&pair[1]), "in the order made");
        }
        assert!(tokens.iter().all(|t| (before..=after).contains(&millis(t))));
        assert!(tokens.iter().all(|t| t.0.get_version_num() == 7));
        // Made in the same millisecond, they still differ in their random
        // part, each bit of which is set in some and clear in others.
        let mut seen: std::collections::HashSet<TaskToken> = std::collections::HashSet::new();
        assert!(tokens.iter().all(|t| seen.insert(*t)));
        let tails: Vec<u128> = tokens
            .iter()
            .map(|t| t.0.as_u128() & ((1 << 62) - 1))
            .collect();
        let (ones, zeros) = (
            tails.iter().fold(0, |a, t| a | t),
            tails.iter().fold(!0, |a, t| a & t),
        );
        assert_eq!((ones, zeros & ((1 << 62) - 1)), ((1 << 62) - 1, 0));
    }

    #[test]
    fn progress_is_clamped() {
        assert_eq!(Progress::new(1.5, None).fraction, 1.0);
        assert_eq!(Progress::new(-1.0, None).fraction, 0.0);
        assert_eq!(Progress::new(f64::NAN, None).fraction, 0.0);
        let long = "x".repeat(Progress::MAX_MESSAGE_CHARS + 10);
        let kept = Progress::new(0.5, Some(long)).message.unwrap();
        assert_eq!(kept.chars().count(), Progress::MAX_MESSAGE_CHARS + 1);
    }
}
