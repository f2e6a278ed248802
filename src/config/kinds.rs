//! `[kinds.NAME]` (one kind's settings: its policy overrides, and for a
//! command kind the program to run) and `[commands]` (the defaults of every
//! command kind).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// `[kinds.NAME]`: one kind's overrides of `[tasks]`, and, with `command`, a
/// kind of its own that runs a program.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindSettings {
    pub queue: Option<String>,
    pub max_attempts: Option<u32>,
    #[serde(default, with = "duration::option")]
    pub backoff_base: Option<Duration>,
    #[serde(default, with = "duration::option")]
    pub backoff_max: Option<Duration>,
    #[serde(default, with = "duration::option")]
    pub timeout: Option<Duration>,
    /// Its tasks' start deadline unless a request sets one: this long
    /// after each is due.
    #[serde(default, with = "duration::option")]
    pub expires_in: Option<Duration>,
    /// A JSON Schema for the payload, inline.
    pub schema: Option<serde_json::Value>,
    /// A JSON Schema for the payload, in a file (relative to
    /// [`Settings::base_dir`](super::Settings::base_dir)).
    pub schema_file: Option<PathBuf>,
    /// The program and its arguments: makes this a command kind.
    pub command: Option<Vec<String>>,
    /// Where the program runs; default [`Settings::base_dir`](super::Settings::base_dir).
    pub workdir: Option<PathBuf>,
    /// Variables set for the program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables copied from errand's own environment; default
    /// `commands.env_passthrough`.
    pub env_passthrough: Option<Vec<String>>,
    /// After SIGTERM, how long before SIGKILL; default `commands.kill_grace`.
    #[serde(default, with = "duration::option")]
    pub kill_grace: Option<Duration>,
    /// Most bytes read from stdout, and from stderr; default
    /// `commands.max_output_bytes`.
    pub max_output_bytes: Option<usize>,
}

impl KindSettings {
    /// The keys that only a command kind may set, with whether each is set.
    pub fn command_keys(&self) -> [(&'static str, bool); 5] {
        [
            ("workdir", self.workdir.is_some()),
            ("env", !self.env.is_empty()),
            ("env_passthrough", self.env_passthrough.is_some()),
            ("kill_grace", self.kill_grace.is_some()),
            ("max_output_bytes", self.max_output_bytes.is_some()),
        ]
    }
}

/// `[commands]`: defaults of every command kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSettings {
    #[serde(with = "duration")]
    pub kill_grace: Duration,
    pub max_output_bytes: usize,
    pub env_passthrough: Vec<String>,
    /// Where each attempt's scratch folder is made; empty: the system's
    /// temporary folder.
    pub scratch_dir: PathBuf,
}
