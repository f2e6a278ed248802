//! Task kinds: the [`Kind`] trait a Rust kind implements, the
//! [`TaskContext`] its handler gets (progress, cancellation, the
//! application's [`State`]), the [`Registry`] of the kinds this process
//! knows, and the built-in kinds: `sleep`, `callback` (deliveries), and
//! command kinds, which run a program declared in the configuration.
//!
//! The API asks the registry whether a kind exists and whether a payload is
//! good (its JSON Schema, then the kind's own checks) before anything is
//! queued (`admission`: a create request, or a schedule's tick, made into
//! the row to insert); the worker asks it for the handler to run. No kind reaches into
//! the store: what a kind needs comes in its payload or its context.
//! Uses `tasks` and `config`.

mod admission;
mod callback;
mod command;
mod context;
mod registry;
mod schema;
mod sleep;

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use admission::{DraftError, KindError};
pub use callback::{Callback, CallbackPayload, Destination, resolve_destination};
pub use context::{FileAccess, FileStream, State, TaskContext};
pub use registry::{HandlerFuture, RegisteredKind, Registry, RegistryError};
pub use schema::PayloadSchema;
pub use sleep::{Sleep, SleepPayload};

/// A kind of task: a name, a payload type, and the handler that runs it.
///
/// ```
/// use errand::kinds::{Kind, TaskContext, TaskError};
/// use serde::Deserialize;
/// use serde_json::{Value, json};
///
/// #[derive(Deserialize)]
/// struct ThumbnailPayload {
///     url: String,
/// }
///
/// struct Thumbnail;
///
/// impl Kind for Thumbnail {
///     const NAME: &'static str = "thumbnail";
///     type Payload = ThumbnailPayload;
///
///     async fn run(&self, p: ThumbnailPayload, ctx: &TaskContext) -> Result<Value, TaskError> {
///         ctx.progress(0.5, "resizing");
///         if ctx.is_cancelled() {
///             return Err(TaskError::cancelled());
///         }
///         Ok(json!({ "thumbnail": format!("{}?w=128", p.url) }))
///     }
/// }
/// ```
///
/// A handler whose input is not ready yet answers "not yet, look again
/// later" with [`Outcome::Snooze`]: the task is queued again after that
/// long without using up an attempt (`snoozes` counts the times, at most
/// `tasks.max_snoozes`):
///
/// ```
/// # use errand::kinds::{Kind, Outcome, TaskContext, TaskError};
/// # use serde_json::{Value, json};
/// # use std::time::Duration;
/// # struct Export;
/// # fn ready() -> bool { false }
/// # impl Kind for Export {
/// #     const NAME: &'static str = "export";
/// #     type Payload = Value;
/// async fn run(&self, _: Value, _: &TaskContext) -> Result<Value, TaskError> {
///     if !ready() {
///         return Err(Outcome::Snooze(Duration::from_secs(30)).into());
///     }
///     Ok(json!({"exported": true}))
/// }
/// # }
/// ```
pub trait Kind: Send + Sync + 'static {
    /// What clients write as `kind`.
    const NAME: &'static str;
    /// Whether clients may create tasks of this kind (errand's own
    /// deliveries may not be created by hand).
    const PUBLIC: bool = true;
    /// The payload; a body that does not deserialize into it is refused (422).
    type Payload: DeserializeOwned + Send + 'static;

    /// A JSON Schema the payload must pass at create, shown by
    /// `GET /v1/kinds`. `[kinds.NAME] schema` or `schema_file` replaces it.
    fn schema(&self) -> Option<Value> {
        None
    }

    /// Checks a payload beyond its type, at the API, before anything is
    /// queued. The message says what is wrong.
    fn check(&self, _payload: &Self::Payload) -> Result<(), String> {
        Ok(())
    }

    /// Runs one attempt. Report progress and watch for cancellation through
    /// `ctx`; return the result, or a [`TaskError`] saying whether a retry
    /// could help. A panic counts as a retryable failure.
    fn run(
        &self,
        payload: Self::Payload,
        ctx: &TaskContext,
    ) -> impl Future<Output = Result<Value, TaskError>> + Send;
}

/// Why an attempt did not produce a result: it failed, or (see
/// [`Outcome`]) it asked to be run again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// What went wrong, for the task's error history.
    pub message: String,
    /// False: retrying can't help (a payload that can never work, say).
    pub retryable: bool,
    /// Not a failure: look again after this long.
    snooze: Option<Duration>,
}

/// How a handler ends an attempt other than with a result or a failure:
/// return it as the error (`Err(Outcome::Snooze(…).into())`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// "Not yet: look again in this long." The task goes back to `queued`
    /// with its `run_at` that far ahead; the attempt is not counted (its
    /// `attempt` goes back to what it was before this run, and the next
    /// run has this one's number again) and its `snoozes` goes up by one.
    /// Past
    /// `tasks.max_snoozes` snoozes, or for longer than
    /// `tasks.snooze_limit`, the task fails instead, saying so.
    Snooze(Duration),
}

impl From<Outcome> for TaskError {
    fn from(outcome: Outcome) -> TaskError {
        match outcome {
            Outcome::Snooze(after) => TaskError {
                message: format!("snoozed for {after:?}"),
                retryable: true,
                snooze: Some(after),
            },
        }
    }
}

impl TaskError {
    /// A failure another attempt might not meet (a timeout, a 503…).
    pub fn retryable(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            retryable: true,
            snooze: None,
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            retryable: false,
            snooze: None,
        }
    }

    /// The snooze asked for, if this is one (see [`Outcome::Snooze`]).
    pub fn snoozed(&self) -> Option<Duration> {
        self.snooze
    }

    /// The handler stopped because it was asked to.
    pub fn cancelled() -> TaskError {
        TaskError::permanent("cancelled")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KindSettings, Settings};
    use serde_json::json;

    fn with_kind(name: &str, kind: KindSettings) -> Settings {
        let mut settings = Settings::defaults();
        settings.kinds.insert(name.into(), kind);
        settings
    }

    #[test]
    fn unknown_kind_and_bad_payload_are_told_apart() {
        let registry = Registry::with_builtins(&Settings::defaults()).unwrap();
        assert!(registry.check("sleep", &json!({"seconds": 1})).is_ok());
        assert!(matches!(
            registry.check("transcode", &json!({})),
            Err(KindError::Unknown { .. })
        ));
        // Internal kinds are not for clients.
        assert!(matches!(
            registry.check("callback", &json!({})),
            Err(KindError::Unknown { .. })
        ));
        assert_eq!(registry.names(), ["sleep"]);
        assert_eq!(registry.runnable(), ["callback", "sleep"]);
        let err = registry
            .check("sleep", &json!({"seconds": "ten"}))
            .unwrap_err();
        assert!(matches!(err, KindError::BadPayload { .. }), "{err}");
        let err = registry
            .check("sleep", &json!({"seconds": -1}))
            .unwrap_err();
        assert!(err.to_string().contains("seconds"), "{err}");
    }

    #[test]
    fn kind_settings_override_task_defaults() {
        let settings = with_kind(
            "sleep",
            KindSettings {
                queue: Some("naps".into()),
                max_attempts: Some(5),
                ..Default::default()
            },
        );
        let registry = Registry::with_builtins(&settings).unwrap();
        let policy = registry.policy("sleep");
        assert_eq!(policy.queue, "naps");
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.timeout, settings.tasks.timeout);
    }

    #[test]
    fn configuring_an_unknown_kind_is_an_error() {
        let settings = with_kind("slep", KindSettings::default());
        let registry = Registry::with_builtins(&settings).unwrap();
        let err = registry.check_configured_kinds().unwrap_err();
        assert_eq!(err.key, "kinds.slep");
        assert!(err.to_string().contains("command"), "{err}");
    }

    #[test]
    fn a_configured_schema_applies_to_a_rust_kind() {
        let settings = with_kind(
            "sleep",
            KindSettings {
                schema: Some(json!({"type": "object", "required": ["seconds", "why"]})),
                ..Default::default()
            },
        );
        let registry = Registry::with_builtins(&settings).unwrap();
        assert_eq!(
            registry.get("sleep").unwrap().schema().unwrap()["required"][1],
            "why"
        );
        let err = registry.check("sleep", &json!({"seconds": 1})).unwrap_err();
        assert!(err.to_string().contains("/why: is required"), "{err}");
    }

    #[test]
    fn a_schema_that_does_not_compile_names_its_key() {
        let settings = with_kind(
            "sleep",
            KindSettings {
                schema: Some(json!({"type": "no such type"})),
                ..Default::default()
            },
        );
        let err = Registry::with_builtins(&settings).err().unwrap();
        assert_eq!(err.key, "kinds.sleep.schema");
    }

    #[test]
    fn command_settings_on_a_rust_kind_are_refused() {
        let settings = with_kind(
            "sleep",
            KindSettings {
                kill_grace: Some(std::time::Duration::from_secs(1)),
                ..Default::default()
            },
        );
        let err = Registry::with_builtins(&settings).err().unwrap();
        assert_eq!(err.key, "kinds.sleep.kill_grace");
    }
}
