//! Settings: plain serde data with documented units and defaults, and
//! [`load`], which layers the sources in the documented order:
//!
//! 1. `config/default.toml`, compiled into the binary (every key is there,
//!    with its unit and meaning);
//! 2. the file given with `--config FILE`;
//! 3. environment variables `ERRAND__SECTION__KEY`;
//! 4. `DATABASE_URL`, which overrides `database.url`.
//!
//! This module imports nothing from the crate: the values it cannot check on
//! its own (a role name, say) are checked by the code that uses them, at start.

mod database;
mod duration;
mod files;
mod kinds;
mod origins;
mod queues;
mod schedules;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use database::DatabaseSettings;
pub use duration::parse_duration;
pub use files::FilesSettings;
pub use kinds::{CommandSettings, KindSettings};
pub use origins::CorsOrigins;
pub use queues::{QueueSpec, parse_queues};
pub use schedules::ScheduleSettings;

/// The defaults, compiled in so that the binary runs from an empty folder.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Everything errand reads from configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub worker: WorkerSettings,
    pub idempotency: IdempotencySettings,
    pub callbacks: CallbackSettings,
    pub retention: RetentionSettings,
    pub metrics: MetricsSettings,
    pub tasks: TaskSettings,
    #[serde(default)]
    pub queues: BTreeMap<String, QueueSettings>,
    #[serde(default)]
    pub kinds: BTreeMap<String, KindSettings>,
    /// `[schedules.NAME]`: tasks made at every tick of a cron expression.
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleSettings>,
    pub commands: CommandSettings,
    pub files: FilesSettings,
    pub log: LogSettings,
    /// The folder relative paths in the configuration (`schema_file`,
    /// `workdir`) start from: that of the `--config` file, or the working
    /// directory without one.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: String,
    pub max_body_bytes: usize,
    /// Most tasks in one `POST /v1/tasks/batch`.
    pub max_batch: usize,
    /// Largest body of a `POST /v1/tasks/batch`, in bytes.
    pub max_batch_bytes: usize,
    /// Most concurrent single creates written by one statement.
    pub create_batch: usize,
    /// Most concurrent polls answered by one statement.
    pub read_batch: usize,
    /// How often clients polling a task are asked to look again, at the
    /// most often and the least (see `tasks::PollPace`).
    #[serde(with = "duration")]
    pub retry_after: Duration,
    #[serde(with = "duration")]
    pub retry_after_max: Duration,
    /// 0: one per CPU.
    pub workers: usize,
    #[serde(with = "duration")]
    pub max_wait: Duration,
    pub page_size: usize,
    pub max_page_size: usize,
    #[serde(with = "duration")]
    pub query_timeout: Duration,
    /// Other web origins whose pages may call the API from a browser.
    pub cors_origins: CorsOrigins,
}

/// `[idempotency]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    #[serde(with = "duration")]
    pub ttl: Duration,
    #[serde(with = "duration")]
    pub in_flight_timeout: Duration,
}

/// `[callbacks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    /// `whsec_…`; empty: callbacks are off. Checked at start.
    pub secret: String,
    pub allow_private_networks: bool,
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// How often the outbox looks for ended tasks whose callback is not
    /// queued yet, when no ending woke it.
    #[serde(with = "duration")]
    pub outbox_interval: Duration,
    /// Most deliveries the outbox queues per pass.
    pub outbox_batch: usize,
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    #[serde(with = "duration")]
    pub completed: Duration,
    /// For failed, cancelled, dropped and expired tasks.
    #[serde(with = "duration")]
    pub failed: Duration,
    #[serde(with = "duration")]
    pub interval: Duration,
    pub batch: usize,
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub expose: MetricsExposure,
}

/// Who may read `/metrics` (`metrics.expose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsExposure {
    /// Anyone.
    Public,
    /// A superuser's bearer token.
    Superuser,
    /// Nobody: `/metrics` is a 404.
    Off,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// "superuser", "admin" or "owner"; checked at start.
    pub cancel_role: String,
    #[serde(with = "duration")]
    pub cache_ttl: Duration,
}

/// `[worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Slots per queue; 0: one per CPU.
    pub concurrency: usize,
    /// "NAME[=N],…" in the configuration; see [`parse_queues`].
    #[serde(deserialize_with = "queues::deserialize")]
    pub queues: Vec<QueueSpec>,
    pub claim_batch: usize,
    /// Tasks claimed ahead of free slots: as many as would start within this.
    #[serde(with = "duration")]
    pub claim_ahead: Duration,
    /// Most ended attempts written by one statement.
    pub end_batch: usize,
    /// Writers of ended attempts at once.
    pub end_writers: usize,
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Whether idle slots are offered to new tasks, which then start
    /// without a claim (Postgres).
    pub push: bool,
    #[serde(with = "duration")]
    pub heartbeat_interval: Duration,
    #[serde(with = "duration")]
    pub lease: Duration,
    #[serde(with = "duration")]
    pub rescue_interval: Duration,
    pub rescue_batch: usize,
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    #[serde(with = "duration")]
    pub cancel_grace: Duration,
    #[serde(with = "duration")]
    pub progress_interval: Duration,
}

/// `[tasks]`: defaults for every kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSettings {
    pub max_attempts: u32,
    #[serde(with = "duration")]
    pub backoff_base: Duration,
    #[serde(with = "duration")]
    pub backoff_max: Duration,
    #[serde(with = "duration")]
    pub timeout: Duration,
    pub max_attempts_limit: u32,
    #[serde(with = "duration")]
    pub timeout_limit: Duration,
    pub max_dependencies: usize,
    /// Snoozes a task may take in all; one more fails it.
    pub max_snoozes: u32,
    /// The longest one snooze may be.
    #[serde(with = "duration")]
    pub snooze_limit: Duration,
}

/// `[queues.NAME]`: one queue's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// Most tasks of this queue running at once across all workers.
    pub global_limit: Option<usize>,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    MissingFile { path: String },
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Value(String),
}

/// Loads the settings from the layered sources. `file` is `--config`;
/// `env` is the process environment (a map in tests).
pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
    let mut builder = config::Config::builder().add_source(config::File::from_str(
        DEFAULT_TOML,
        config::FileFormat::Toml,
    ));
    if let Some(path) = file {
        // The config crate reports a missing file as a "not found" without the
        // path; say which file it was.
        if !path.is_file() {
            return Err(ConfigError::MissingFile {
                path: path.display().to_string(),
            });
        }
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let errand_vars: config::Map<String, String> = env
        .iter()
        .filter(|(key, _)| key.starts_with("ERRAND__"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("ERRAND")
            .prefix_separator("__")
            .separator("__")
            .source(Some(errand_vars)),
    );
    if let Some(url) = env.get("DATABASE_URL").filter(|url| !url.is_empty()) {
        builder = builder.set_override("database.url", url.as_str())?;
    }
    let mut settings: Settings = builder.build()?.try_deserialize()?;
    settings.base_dir = match file.and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    settings.check()?;
    Ok(settings)
}

impl Settings {
    /// The defaults alone, as compiled in.
    pub fn defaults() -> Settings {
        // The compiled-in file is tested (`defaults_load`), so this can't fail.
        load(None, &HashMap::new()).expect("compiled-in defaults are valid")
    }

    /// Worker slots per queue when not given: `worker.concurrency`, or one per
    /// CPU when that is 0 (as CodeChecker's `background_worker_processes`).
    pub fn default_slots(&self) -> usize {
        if self.worker.concurrency > 0 {
            self.worker.concurrency
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// Checks what serde can't: ranges and relations between keys.
    fn check(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Value(msg));
        let w = &self.worker;
        if w.heartbeat_interval.is_zero() || w.lease <= w.heartbeat_interval {
            return bad(format!(
                "worker.lease ({:?}) must be longer than worker.heartbeat_interval ({:?})",
                w.lease, w.heartbeat_interval
            ));
        }
        for (key, value) in [
            ("worker.poll_interval", w.poll_interval),
            ("worker.rescue_interval", w.rescue_interval),
            ("callbacks.outbox_interval", self.callbacks.outbox_interval),
            ("worker.progress_interval", w.progress_interval),
            ("database.acquire_timeout", self.database.acquire_timeout),
            ("tasks.timeout", self.tasks.timeout),
            ("tasks.backoff_base", self.tasks.backoff_base),
            ("retention.interval", self.retention.interval),
        ] {
            if value.is_zero() {
                return bad(format!("{key} must be more than 0"));
            }
        }
        for (key, value) in [
            ("retention.batch", self.retention.batch),
            ("worker.claim_batch", w.claim_batch),
            ("worker.end_batch", w.end_batch),
            ("worker.end_writers", w.end_writers),
            ("worker.rescue_batch", w.rescue_batch),
            ("callbacks.outbox_batch", self.callbacks.outbox_batch),
            ("http.max_body_bytes", self.http.max_body_bytes),
            ("http.max_batch", self.http.max_batch),
            ("http.max_batch_bytes", self.http.max_batch_bytes),
            ("http.create_batch", self.http.create_batch),
            ("http.read_batch", self.http.read_batch),
            ("commands.max_output_bytes", self.commands.max_output_bytes),
        ] {
            if value == 0 {
                return bad(format!("{key} must be more than 0"));
            }
        }
        if self.tasks.max_attempts == 0 || self.tasks.max_attempts > self.tasks.max_attempts_limit {
            return bad("tasks.max_attempts must be between 1 and tasks.max_attempts_limit".into());
        }
        if let Some((name, _)) = self.queues.iter().find(|(_, q)| q.global_limit == Some(0)) {
            return bad(format!("queues.{name}.global_limit must be at least 1"));
        }
        self.files.check()?;
        self.database.check()?;
        self.http.check()
    }
}

impl HttpSettings {
    fn check(&self) -> Result<(), ConfigError> {
        let bad = |msg: &str| Err(ConfigError::Value(msg.into()));
        if self.retry_after.is_zero() || self.retry_after > self.retry_after_max {
            return bad("http.retry_after must be more than 0 and at most http.retry_after_max");
        }
        if self.page_size == 0 || self.page_size > self.max_page_size {
            return bad("http.page_size must be between 1 and http.max_page_size");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let s = load(None, &HashMap::new()).unwrap();
        assert_eq!(s.http.max_body_bytes, 1024 * 1024);
        assert_eq!(s.worker.heartbeat_interval, Duration::from_secs(2));
        assert_eq!(s.auth.cancel_role, "superuser");
        assert_eq!(s.kinds["sleep"].queue.as_deref(), Some("default"));
    }

    #[test]
    fn environment_overrides_defaults_and_database_url_wins() {
        let s = load(
            None,
            &env(&[
                ("ERRAND__WORKER__CONCURRENCY", "8"),
                ("ERRAND__WORKER__HEARTBEAT_INTERVAL", "1s"),
                ("ERRAND__HTTP__BIND", "127.0.0.1:9999"),
                ("ERRAND__DATABASE__URL", "postgres://ignored/x"),
                ("DATABASE_URL", "postgres://winner/y"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.worker.concurrency, 8);
        assert_eq!(s.worker.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(s.http.bind, "127.0.0.1:9999");
        assert_eq!(s.database.url, "postgres://winner/y");
    }

    #[test]
    fn config_file_is_layered_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("errand-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("errand.toml");
        std::fs::write(&path, "[worker]\nlease = \"45s\"\nconcurrency = 3\n").unwrap();
        let s = load(Some(&path), &env(&[("ERRAND__WORKER__CONCURRENCY", "5")])).unwrap();
        assert_eq!(s.worker.lease, Duration::from_secs(45));
        assert_eq!(s.worker.concurrency, 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_config_file_names_the_path() {
        let err = load(Some(Path::new("/nonexistent/errand.toml")), &HashMap::new()).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/errand.toml"),
            "{err}"
        );
    }

    #[test]
    fn bad_duration_in_environment_is_refused() {
        let err = load(None, &env(&[("ERRAND__WORKER__LEASE", "soon")])).unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
    }

    #[test]
    fn typed_values_are_checked_as_they_load_naming_the_key() {
        for (var, value, key) in [
            ("ERRAND__METRICS__EXPOSE", "everyone", "metrics.expose"),
            ("ERRAND__LOG__FORMAT", "xml", "log.format"),
            ("ERRAND__WORKER__QUEUES", "gpu=0", "worker.queues"),
            ("ERRAND__WORKER__QUEUES", "a,a", "worker.queues"),
        ] {
            let err = load(None, &env(&[(var, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{var}={value}: {err}");
        }
        let s = load(None, &env(&[("ERRAND__WORKER__QUEUES", "gpu=1,default")])).unwrap();
        assert_eq!(s.worker.queues[0].slots, Some(1));
        assert_eq!(s.metrics.expose, MetricsExposure::Public);
        assert_eq!(s.log.format, LogFormat::Text);
    }

    #[test]
    fn cors_origins_come_from_a_comma_separated_variable_and_are_checked() {
        let s = load(
            None,
            &env(&[(
                "ERRAND__HTTP__CORS_ORIGINS",
                "https://app.example.com,http://localhost:5173",
            )]),
        )
        .unwrap();
        assert!(s.http.cors_origins.allows("http://localhost:5173"));
        assert!(!s.http.cors_origins.allows("https://other.example.com"));
        assert!(Settings::defaults().http.cors_origins.is_empty());
        let e = load(
            None,
            &env(&[("ERRAND__HTTP__CORS_ORIGINS", "app.example.com")]),
        );
        assert!(e.unwrap_err().to_string().contains("http.cors_origins"));
    }

    #[test]
    fn lease_must_outlast_heartbeat() {
        let err = load(None, &env(&[("ERRAND__WORKER__LEASE", "1s")])).unwrap_err();
        assert!(err.to_string().contains("worker.lease"), "{err}");
    }
}
