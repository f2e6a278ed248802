//! What a kind decides for its tasks ([`KindPolicy`]): where they go,
//! how often and how long they run, how they back off and snooze, and the
//! limits a create request is held to. Set from the configuration
//! (`[tasks]`, `[kinds.NAME]`) by the registry of kinds.

use std::time::Duration;

use super::Backoff;

/// What a kind (and the configuration) decides for its tasks unless a create
/// request says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct KindPolicy {
    /// Where its tasks go unless a request names a queue.
    pub queue: String,
    /// Attempts a task gets unless a request says otherwise.
    pub max_attempts: i32,
    /// How long an attempt may run unless a request says otherwise.
    pub timeout: Duration,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Largest `max_attempts` a request may ask for.
    pub max_attempts_limit: i32,
    /// Longest `timeout` a request may ask for.
    pub timeout_limit: Duration,
    /// Most parents a task may depend on.
    pub max_dependencies: usize,
    /// Most input files a task may take.
    pub max_files: usize,
    /// The start deadline its tasks get unless a request sets one: this
    /// long after they are due.
    pub expires_in: Option<Duration>,
    /// How its handler may snooze.
    pub snooze: SnoozeLimits,
}

/// How often, and for how long, a handler may answer "not yet, look again
/// later" (`tasks.max_snoozes`, `tasks.snooze_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnoozeLimits {
    /// Snoozes a task may take in all; one more fails it.
    pub max_snoozes: i32,
    /// The longest one snooze may be.
    pub longest: Duration,
}
