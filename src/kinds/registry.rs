//! The [`Registry`]: the kinds this process knows, each with its handler,
//! its policy (queue, attempts, timeout, backoff: the `[tasks]` defaults
//! overridden by `[kinds.NAME]`) and its payload schema, compiled once.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize as _;
use serde_json::Value;

use super::callback::Callback;
use super::command::CommandKind;
use super::schema::PayloadSchema;
use super::sleep::Sleep;
use super::{Kind, TaskContext, TaskError};
use crate::config::{KindSettings, Settings};
use crate::tasks::{Backoff, KindPolicy, SnoozeLimits, WebhookSecret, validate_queue_name};

/// A running handler.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, TaskError>> + Send>>;

/// What the registry holds of a kind, whatever its payload type: a Rust
/// [`Kind`] (through the blanket impl below) or a command kind.
pub(super) trait Handler: Send + Sync {
    /// Whether clients may create tasks of it.
    fn public(&self) -> bool;
    /// Checks a payload beyond its schema; the message says what is wrong.
    fn check(&self, payload: &Value) -> Result<(), String>;
    /// Starts one attempt.
    fn start(self: Arc<Self>, payload: Value, ctx: TaskContext) -> HandlerFuture;
    /// How long it may need to stop once asked (beyond `worker.cancel_grace`).
    fn stop_grace(&self) -> Duration {
        Duration::ZERO
    }
    /// Whether this process can run it at all (a command kind's program is
    /// installed, say); checked when a worker starts.
    fn preflight(&self) -> Result<(), String> {
        Ok(())
    }
}

impl<K: Kind> Handler for K {
    fn public(&self) -> bool {
        K::PUBLIC
    }

    fn check(&self, payload: &Value) -> Result<(), String> {
        let payload: K::Payload = serde_path_to_error::deserialize(payload).map_err(at_path)?;
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

/// A payload that does not deserialize, said as a schema's failure is: the
/// JSON pointer of the value at fault first (`/seconds: invalid type: …`).
fn at_path(e: serde_path_to_error::Error<serde_json::Error>) -> String {
    use serde_path_to_error::Segment;
    let pointer: String = e
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(format!("/{index}")),
            Segment::Map { key } => Some(format!("/{}", key.replace('~', "~0").replace('/', "~1"))),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect();
    let message = e.into_inner();
    if pointer.is_empty() {
        message.to_string()
    } else {
        format!("{pointer}: {message}")
    }
}

/// One registered kind: its handler, its policy and its payload schema.
#[derive(Clone)]
pub struct RegisteredKind {
    pub(super) handler: Arc<dyn Handler>,
    /// Its queue, attempts, timeout and backoff.
    pub policy: KindPolicy,
    pub(super) schema: Option<Arc<PayloadSchema>>,
}

impl RegisteredKind {
    /// Starts one attempt of this kind.
    pub fn start(&self, payload: Value, ctx: TaskContext) -> HandlerFuture {
        self.handler.clone().start(payload, ctx)
    }

    /// How long an attempt may take to stop once asked, at the least.
    pub fn stop_grace(&self) -> Duration {
        self.handler.stop_grace()
    }

    /// The payload's JSON Schema, if the kind has one.
    pub fn schema(&self) -> Option<&Value> {
        self.schema.as_deref().map(PayloadSchema::document)
    }
}

/// A kind that can't be registered or run here, naming the setting at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct RegistryError {
    /// The setting (`kinds.transcribe.schema`) or kind at fault.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl RegistryError {
    pub(super) fn new(key: impl Into<String>, problem: impl Into<String>) -> RegistryError {
        RegistryError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// The kinds this process knows, by name.
#[derive(Clone)]
pub struct Registry {
    kinds: BTreeMap<String, RegisteredKind>,
    defaults: KindPolicy,
    configured: BTreeMap<String, KindSettings>,
    max_attempts_limit: u32,
    base_dir: PathBuf,
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
            max_files: settings.files.max_per_task,
            expires_in: None,
            snooze: SnoozeLimits {
                max_snoozes: to_i32(t.max_snoozes),
                longest: t.snooze_limit,
            },
        };
        Registry {
            kinds: BTreeMap::new(),
            defaults,
            configured: settings.kinds.clone(),
            max_attempts_limit: t.max_attempts_limit,
            base_dir: settings.base_dir.clone(),
        }
    }

    /// A registry with the built-in kinds (`sleep`, and `callback`, which
    /// delivers callbacks) and the command kinds the configuration declares.
    /// Call [`Registry::check_configured_kinds`] once every kind is in.
    pub fn with_builtins(settings: &Settings) -> Result<Registry, RegistryError> {
        let mut registry = Registry::new(settings);
        let c = &settings.callbacks;
        let secret = match c.secret.as_str() {
            "" => None,
            text => Some(
                WebhookSecret::parse(text)
                    .map_err(|problem| RegistryError::new("callbacks.secret", problem))?,
            ),
        };
        let callback = Callback::new(secret, c.allow_private_networks, c.timeout);
        registry.register(Sleep)?.register(callback)?;
        for (name, kind) in &settings.kinds {
            if let Some(argv) = &kind.command {
                let command = CommandKind::new(name, argv, kind, settings)?;
                registry.insert(name, Arc::new(command), None)?;
            }
        }
        Ok(registry)
    }

    /// Adds a Rust kind; `[kinds.NAME]` in the configuration may override
    /// its policy and its schema.
    pub fn register<K: Kind>(&mut self, kind: K) -> Result<&mut Registry, RegistryError> {
        let own_schema = kind.schema();
        let configured = self.configured.get(K::NAME);
        if let Some((key, _)) = configured
            .into_iter()
            .flat_map(KindSettings::command_keys)
            .find(|(_, set)| *set)
        {
            return Err(RegistryError::new(
                format!("kinds.{}.{key}", K::NAME),
                "only command kinds (with `command`) take this setting",
            ));
        }
        self.insert(K::NAME, Arc::new(kind), own_schema)?;
        Ok(self)
    }

    fn insert(
        &mut self,
        name: &str,
        handler: Arc<dyn Handler>,
        own_schema: Option<Value>,
    ) -> Result<(), RegistryError> {
        if self.kinds.contains_key(name) {
            return Err(RegistryError::new(
                format!("kinds.{name}"),
                "a kind of this name is already registered",
            ));
        }
        let registered = RegisteredKind {
            handler,
            policy: self.policy_from_settings(name)?,
            schema: self.schema_from_settings(name, own_schema)?.map(Arc::new),
        };
        self.kinds.insert(name.to_string(), registered);
        Ok(())
    }

    /// The kind's policy: the defaults, overridden by `[kinds.NAME]`.
    fn policy_from_settings(&self, name: &str) -> Result<KindPolicy, RegistryError> {
        let mut policy = self.defaults.clone();
        let Some(over) = self.configured.get(name) else {
            return Ok(policy);
        };
        if let Some(queue) = &over.queue {
            validate_queue_name(queue)
                .map_err(|m| RegistryError::new(format!("kinds.{name}.queue"), m))?;
            policy.queue = queue.clone();
        }
        if let Some(n) = over.max_attempts {
            if n == 0 || n > self.max_attempts_limit {
                return Err(RegistryError::new(
                    format!("kinds.{name}.max_attempts"),
                    "must be between 1 and tasks.max_attempts_limit",
                ));
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
        if let Some(d) = over.expires_in {
            if d.is_zero() {
                return Err(RegistryError::new(
                    format!("kinds.{name}.expires_in"),
                    "must be more than 0",
                ));
            }
            policy.expires_in = Some(d);
        }
        Ok(policy)
    }

    /// The kind's schema: `[kinds.NAME] schema` or `schema_file` if set,
    /// else the one the kind declares; compiled now, so a bad one stops the
    /// start.
    fn schema_from_settings(
        &self,
        name: &str,
        own: Option<Value>,
    ) -> Result<Option<PayloadSchema>, RegistryError> {
        let over = self.configured.get(name);
        let (inline, file) = (
            over.and_then(|k| k.schema.clone()),
            over.and_then(|k| k.schema_file.as_ref()),
        );
        let (key, compiled) = match (inline, file, own) {
            (Some(_), Some(_), _) => {
                return Err(RegistryError::new(
                    format!("kinds.{name}"),
                    "give schema or schema_file, not both",
                ));
            }
            (None, Some(path), _) => (
                "schema_file",
                PayloadSchema::from_file(&self.base_dir.join(path)),
            ),
            (Some(document), None, _) | (None, None, Some(document)) => {
                ("schema", PayloadSchema::compile(document))
            }
            (None, None, None) => return Ok(None),
        };
        compiled.map(Some).map_err(|problem| {
            RegistryError::new(
                format!("kinds.{name}.{key}"),
                format!("not a usable JSON Schema: {problem}"),
            )
        })
    }

    /// Fails on `[kinds.NAME]` sections for kinds nobody registered: most
    /// likely a typo that would otherwise be silently ignored.
    pub fn check_configured_kinds(&self) -> Result<(), RegistryError> {
        match self
            .configured
            .keys()
            .find(|name| !self.kinds.contains_key(name.as_str()))
        {
            Some(name) => Err(RegistryError::new(
                format!("kinds.{name}"),
                format!(
                    "configures a kind that is not registered (known: {}); \
                     a command kind needs `command`",
                    self.names().join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// Checks that this process can run every kind (each command kind's
    /// program is there): a worker that can't refuses to start rather than
    /// fail every task.
    pub fn check_runnable(&self) -> Result<(), RegistryError> {
        for (name, kind) in &self.kinds {
            kind.handler
                .preflight()
                .map_err(|problem| RegistryError::new(format!("kinds.{name}"), problem))?;
        }
        Ok(())
    }

    /// The kind of this name, if registered.
    pub fn get(&self, name: &str) -> Option<&RegisteredKind> {
        self.kinds.get(name)
    }

    /// The policy of a kind, or the defaults for a kind this process does
    /// not know (a task written by a newer node, say).
    pub fn policy(&self, name: &str) -> &KindPolicy {
        self.get(name).map_or(&self.defaults, |k| &k.policy)
    }

    /// Names of the kinds clients may create, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.kinds
            .iter()
            .filter(|(_, k)| k.handler.public())
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Names of every kind this process can run, internal ones included:
    /// what its workers claim.
    pub fn runnable(&self) -> Vec<String> {
        self.kinds.keys().cloned().collect()
    }
}
