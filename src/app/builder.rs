//! [`Builder`]: assembles an errand process with an application's own
//! kinds and state, for the binary and for applications that embed errand.

use std::net::TcpListener;
use std::sync::Arc;

use super::{App, AppError, Mode};
use crate::api::ApiSettings;
use crate::config::Settings;
use crate::files::Files;
use crate::intake::Enqueuer;
use crate::kinds::{Kind, Registry, RegistryError, State};
use crate::store::Store;

/// A kind waiting to be registered when the process is built.
type Registration = Box<dyn FnOnce(&mut Registry) -> Result<(), RegistryError>>;

/// Assembles an errand process: the built-in kinds and the command kinds of
/// the configuration, plus the application's own kinds and the state they
/// need.
///
/// ```no_run
/// # use errand::app::{Builder, Mode};
/// # use errand::kinds::{Kind, TaskContext, TaskError};
/// # struct SendMail;
/// # impl Kind for SendMail {
/// #     const NAME: &'static str = "send_mail";
/// #     type Payload = serde_json::Value;
/// #     async fn run(&self, _: serde_json::Value, _: &TaskContext) -> Result<serde_json::Value, TaskError> { Ok(serde_json::Value::Null) }
/// # }
/// # struct Mailer;
/// # async fn demo(settings: errand::config::Settings) -> Result<(), errand::app::AppError> {
/// let app = Builder::new(settings)
///     .kind(SendMail)          // its handler reads ctx.state::<Mailer>()
///     .state(Mailer)
///     .build(Mode::Serve)?;
/// app.run(tokio_util::sync::CancellationToken::new()).await
/// # }
/// ```
pub struct Builder {
    settings: Settings,
    kinds: Vec<Registration>,
    state: State,
    mounted: bool,
}

impl Builder {
    /// A process with the built-in kinds and the configuration's command
    /// kinds, and no state.
    pub fn new(settings: Settings) -> Builder {
        Builder {
            settings,
            kinds: Vec::new(),
            state: State::default(),
            mounted: false,
        }
    }

    /// Adds a kind of the application's own. `[kinds.NAME]` in the
    /// configuration may set its queue, attempts, timeout, backoff and
    /// schema, as for any kind.
    pub fn kind<K: Kind>(mut self, kind: K) -> Builder {
        self.kinds.push(Box::new(move |registry| {
            registry.register(kind).map(|_| ())
        }));
        self
    }

    /// Hands `value` to every handler, read with
    /// [`TaskContext::state`](crate::kinds::TaskContext::state); one value
    /// per type.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Builder {
        self.state.insert(value);
        self
    }

    /// The application serves HTTP itself: errand binds no listener, and
    /// [`App::routes`] gives the routes to mount into the application's own
    /// actix-web `App`.
    pub fn mounted(mut self) -> Builder {
        self.mounted = true;
        self
    }

    /// Checks the settings and every kind (a schema that does not compile,
    /// a `[kinds.NAME]` naming no kind, and, where workers run, a command
    /// kind whose program is missing, all stop here), opens the (lazy)
    /// database pool and binds the HTTP listener, so the port is known
    /// before anything runs.
    pub fn build(self, mode: Mode) -> Result<App, AppError> {
        let settings = self.settings;
        let store = Store::connect(&settings.database)?;
        let mut registry = Registry::with_builtins(&settings)?;
        for register in self.kinds {
            register(&mut registry)?;
        }
        registry.check_configured_kinds()?;
        if mode.runs_workers() {
            registry.check_runnable()?;
        }
        let schedules = super::schedules::configured(&settings, &registry)?;
        crate::telemetry::init_metrics();
        let api = ApiSettings {
            http: settings.http.clone(),
            token_cache_ttl: settings.auth.cache_ttl,
            cancel_role: settings.auth.cancel_role.parse()?,
            metrics: settings.metrics.expose,
            worker_lease: settings.worker.lease,
            queue_limits: (settings.queues.iter())
                .map(|(name, q)| (name.clone(), q.global_limit))
                .collect(),
        };
        let listener = if mode.serves_http() && !self.mounted {
            let bind = &settings.http.bind;
            let listener = TcpListener::bind(bind).map_err(|source| AppError::Bind {
                addr: bind.clone(),
                source,
            })?;
            Some(listener)
        } else {
            None
        };
        // The TLS provider object storage's HTTPS client uses (reqwest is
        // built without one of its own); a second install changes nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let files = Files::new(store.clone(), &settings.files)?;
        let registry = Arc::new(registry);
        let enqueuer = Enqueuer::new(store.clone(), registry.clone(), &settings);
        Ok(App {
            mode,
            settings,
            api,
            store,
            registry,
            enqueuer,
            files,
            state: self.state,
            listener,
            stopping: tokio_util::sync::CancellationToken::new(),
            schedules,
        })
    }
}
