//! Task kinds: the [`Kind`] trait a kind implements, the [`TaskContext`] its
//! handler gets (progress, cancellation), the [`Registry`] of the kinds this
//! process knows, and the built-in kinds.
//!
//! The API asks the registry whether a kind exists and whether a payload is
//! good before anything is queued; the worker asks it for the handler to run.
//! Uses `tasks` and `config`.

mod callback;
mod sleep;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::store::Store;
use crate::tasks::{Backoff, KindPolicy, Progress, TaskToken, WebhookSecret, validate_queue_name};

pub use callback::{Callback, CallbackPayload, Destination, resolve_destination};
pub use sleep::{Sleep, SleepPayload};

/// A kind of task: a name, a payload type, and the handler that runs it.
///
/// ```ignore
/// struct Thumbnail;
/// impl Kind for Thumbnail {
///     const NAME: &'static str = "thumbnail";
///     type Payload = ThumbnailPayload;
///     async fn run(&self, p: ThumbnailPayload, ctx: &TaskContext) -> Result<Value, TaskError> {
///         ctx.progress(0.5, "resizing");
///         …
///     }
/// }
/// ```
pub trait Kind: Send + Sync + 'static {
    /// What clients write as `kind`.
    const NAME: &'static str;
    /// Whether clients may create tasks of this kind (errand's own
    /// deliveries may not be created by hand).
    const PUBLIC: bool = true;
    /// The payload; a body that does not deserialize into it is refused (422).
    type Payload: DeserializeOwned + Send + 'static;

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

/// Why an attempt did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub message: String,
    /// False: retrying can't help (a payload that can never work, say).
    pub retryable: bool,
}

impl TaskError {
    /// A failure another attempt might not meet (a timeout, a 503…).
    pub fn retryable(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            retryable: false,
        }
    }

    /// The handler stopped because it was asked to.
    pub fn cancelled() -> TaskError {
        TaskError::permanent("cancelled")
    }
}

/// What a running handler gets: who it is, a way to report progress, and
/// cancellation (a cancel request, a timeout or a shutdown).
pub struct TaskContext {
    token: TaskToken,
    attempt: i32,
    cancel: CancellationToken,
    progress: watch::Sender<Option<Progress>>,
}

impl TaskContext {
    /// Made by the worker for each attempt. The worker writes what is sent on
    /// `progress` to the database, throttled.
    pub fn new(
        token: TaskToken,
        attempt: i32,
        cancel: CancellationToken,
        progress: watch::Sender<Option<Progress>>,
    ) -> TaskContext {
        TaskContext {
            token,
            attempt,
            cancel,
            progress,
        }
    }

    pub fn token(&self) -> TaskToken {
        self.token
    }

    /// 1 for the first run, 2 for the first retry…
    pub fn attempt(&self) -> i32 {
        self.attempt
    }

    /// Whether the handler has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the handler is asked to stop.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Reports progress: `fraction` from 0 to 1 and a short message. Cheap:
    /// call it as often as you like, the worker writes at most one report per
    /// `worker.progress_interval`.
    pub fn progress(&self, fraction: f64, message: impl Into<String>) {
        self.progress
            .send_replace(Some(Progress::new(fraction, Some(message.into()))));
    }
}

/// The type-erased face of a [`Kind`], so kinds of different payload types
/// sit in one registry.
trait DynKind: Send + Sync {
    fn public(&self) -> bool;
    fn check(&self, payload: &Value) -> Result<(), String>;
    fn start(self: Arc<Self>, payload: Value, ctx: TaskContext) -> HandlerFuture;
}

/// A running handler.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, TaskError>> + Send>>;

impl<K: Kind> DynKind for K {
    fn public(&self) -> bool {
        K::PUBLIC
    }

    fn check(&self, payload: &Value) -> Result<(), String> {
        let payload = K::Payload::deserialize(payload).map_err(|e| e.to_string())?;
        Kind::check(self, &payload)
    }

    fn start(self: Arc<Self>, payload: Value, ctx: TaskContext) -> HandlerFuture {
        Box::pin(async move {
            let payload = K::Payload::deserialize(payload)
                .map_err(|e| TaskError::permanent(format!("invalid payload: {e}")))?;
            self.run(payload, &ctx).await
        })
    }
}

/// One registered kind: its handler and its policy (queue, attempts,
/// timeout, backoff), from its defaults and the configuration.
#[derive(Clone)]
pub struct RegisteredKind {
    handler: Arc<dyn DynKind>,
    pub policy: KindPolicy,
}

impl RegisteredKind {
    /// Starts one attempt of this kind.
    pub fn start(&self, payload: Value, ctx: TaskContext) -> HandlerFuture {
        self.handler.clone().start(payload, ctx)
    }
}

/// Why a create request's kind or payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    #[error("unknown kind {kind:?}; known kinds: {known}")]
    Unknown { kind: String, known: String },
    #[error("invalid payload for kind {kind:?}: {message}")]
    BadPayload { kind: String, message: String },
}

/// A problem in the `[kinds]` or `[tasks]` configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid kind configuration: {0}")]
pub struct RegistryError(String);

/// The kinds this process knows, by name.
#[derive(Clone)]
pub struct Registry {
    kinds: BTreeMap<&'static str, RegisteredKind>,
    defaults: KindPolicy,
    settings: Settings,
}

impl Registry {
    /// A registry with no kinds yet, taking its policies from `settings`.
    pub fn new(settings: &Settings) -> Registry {
        let t = &settings.tasks;
        let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let defaults = KindPolicy {
            queue: "default".into(),
            max_attempts: to_i32(t.max_attempts),
            timeout: t.timeout,
            backoff: Backoff {
                base: t.backoff_base,
                max: t.backoff_max,
            },
            max_attempts_limit: to_i32(t.max_attempts_limit),
            timeout_limit: t.timeout_limit,
            max_dependencies: t.max_dependencies,
        };
        Registry {
            kinds: BTreeMap::new(),
            defaults,
            settings: settings.clone(),
        }
    }

    /// A registry with the built-in kinds: `sleep`, and `callback` (which
    /// reads tasks from `store` to deliver them). Fails if the configuration
    /// names a kind that is not registered, or sets a bad value for one.
    pub fn with_builtins(settings: &Settings, store: &Store) -> Result<Registry, RegistryError> {
        let mut registry = Registry::new(settings);
        let c = &settings.callbacks;
        let secret = match c.secret.as_str() {
            "" => None,
            text => Some(WebhookSecret::parse(text).map_err(RegistryError)?),
        };
        let callback = Callback::new(store.clone(), secret, c.allow_private_networks, c.timeout);
        registry.register(Sleep)?.register(callback)?;
        registry.check_configured_kinds()?;
        Ok(registry)
    }

    /// Adds a kind; `[kinds.NAME]` in the configuration overrides its policy.
    pub fn register<K: Kind>(&mut self, kind: K) -> Result<&mut Registry, RegistryError> {
        let mut policy = self.defaults.clone();
        if let Some(over) = self.settings.kinds.get(K::NAME) {
            if let Some(queue) = &over.queue {
                validate_queue_name(queue)
                    .map_err(|m| RegistryError(format!("kinds.{}.queue: {m}", K::NAME)))?;
                policy.queue = queue.clone();
            }
            if let Some(n) = over.max_attempts {
                if n == 0 || n > self.settings.tasks.max_attempts_limit {
                    return Err(RegistryError(format!(
                        "kinds.{}.max_attempts must be between 1 and tasks.max_attempts_limit",
                        K::NAME
                    )));
                }
                policy.max_attempts = i32::try_from(n).unwrap_or(i32::MAX);
            }
            if let Some(d) = over.timeout.filter(|d| !d.is_zero()) {
                policy.timeout = d;
            }
            if let Some(d) = over.backoff_base.filter(|d| !d.is_zero()) {
                policy.backoff.base = d;
            }
            if let Some(d) = over.backoff_max {
                policy.backoff.max = d;
            }
        }
        self.kinds.insert(
            K::NAME,
            RegisteredKind {
                handler: Arc::new(kind),
                policy,
            },
        );
        Ok(self)
    }

    /// Fails on `[kinds.NAME]` sections for kinds nobody registered: most
    /// likely a typo that would otherwise be silently ignored.
    pub fn check_configured_kinds(&self) -> Result<(), RegistryError> {
        match self
            .settings
            .kinds
            .keys()
            .find(|name| !self.kinds.contains_key(name.as_str()))
        {
            Some(name) => Err(RegistryError(format!(
                "[kinds.{name}] configures a kind that is not registered (known: {})",
                self.names().join(", ")
            ))),
            None => Ok(()),
        }
    }

    pub fn get(&self, name: &str) -> Option<&RegisteredKind> {
        self.kinds.get(name)
    }

    /// The policy of a kind, or the defaults for a kind this process does
    /// not know (a task written by a newer node, say).
    pub fn policy(&self, name: &str) -> &KindPolicy {
        self.get(name).map_or(&self.defaults, |k| &k.policy)
    }

    /// Names of the kinds clients may create, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds
            .iter()
            .filter(|(_, k)| k.handler.public())
            .map(|(name, _)| *name)
            .collect()
    }

    /// Checks a create request's kind and payload: the kind's policy if both
    /// are good.
    pub fn check(&self, kind: &str, payload: &Value) -> Result<&KindPolicy, KindError> {
        let registered = self
            .get(kind)
            .filter(|k| k.handler.public())
            .ok_or_else(|| KindError::Unknown {
                kind: kind.to_string(),
                known: self.names().join(", "),
            })?;
        registered
            .handler
            .check(payload)
            .map_err(|message| KindError::BadPayload {
                kind: kind.to_string(),
                message,
            })?;
        Ok(&registered.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A store that is never opened (the pool connects lazily).
    fn test_store() -> Store {
        let mut settings = Settings::defaults();
        settings.database.url = "sqlite://never-opened.db".into();
        Store::connect(&settings.database).unwrap()
    }

    #[tokio::test]
    async fn unknown_kind_and_bad_payload_are_told_apart() {
        let registry = Registry::with_builtins(&Settings::defaults(), &test_store()).unwrap();
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
        let err = registry
            .check("sleep", &json!({"seconds": "ten"}))
            .unwrap_err();
        assert!(matches!(err, KindError::BadPayload { .. }), "{err}");
        let err = registry
            .check("sleep", &json!({"seconds": -1}))
            .unwrap_err();
        assert!(err.to_string().contains("seconds"), "{err}");
    }

    #[tokio::test]
    async fn kind_settings_override_task_defaults() {
        let mut settings = Settings::defaults();
        settings.kinds.insert(
            "sleep".into(),
            crate::config::KindSettings {
                queue: Some("naps".into()),
                max_attempts: Some(5),
                ..Default::default()
            },
        );
        let registry = Registry::with_builtins(&settings, &test_store()).unwrap();
        let policy = registry.policy("sleep");
        assert_eq!(policy.queue, "naps");
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.timeout, settings.tasks.timeout);
    }

    #[tokio::test]
    async fn configuring_an_unknown_kind_is_an_error() {
        let mut settings = Settings::defaults();
        settings.kinds.insert("slep".into(), Default::default());
        let err = Registry::with_builtins(&settings, &test_store())
            .err()
            .unwrap();
        assert!(err.to_string().contains("slep"), "{err}");
    }
}
