//! The composition root: builds the store, the kinds registry, the HTTP
//! server, the workers and the maintenance loop for each process mode, and
//! runs them until shutdown ([`Builder`], [`App`]). Also the one-shot
//! commands (`migrate`, `token create`, `token revoke`). Tests and
//! production run the same code: [`Builder::build`] binds the listener and
//! reports the port, [`App::run`] takes the shutdown signal. The only
//! module that names every other.

pub mod bench;
mod builder;
mod commands;
mod schedules;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpServer, web};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use builder::Builder;
pub use commands::{migrate, token_create, token_revoke};

use crate::api::{self, ApiSettings, ApiState};
use crate::config::{ConfigError, Settings};
use crate::files::{Files, FilesError};
use crate::intake::Enqueuer;
use crate::kinds::{Callback, Kind as _, Registry, RegistryError, State};
use crate::pacing::{Retry, pause};
use crate::store::{Store, StoreError};
use crate::tasks::Schedule;
use crate::tasks::UnknownRole;
use crate::worker::{
    CallbackOutbox, Expirer, Pruner, Rescuer, Scheduler, ServedQueue, Worker, WorkerParts, drive,
};

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// API, workers and maintenance in one process: the single-machine default.
    Serve,
    /// The HTTP API only.
    Api,
    /// Workers and maintenance only.
    Worker,
}

impl Mode {
    pub(crate) fn serves_http(self) -> bool {
        matches!(self, Mode::Serve | Mode::Api)
    }

    pub(crate) fn runs_workers(self) -> bool {
        matches!(self, Mode::Serve | Mode::Worker)
    }
}

/// Why errand could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The settings can't be loaded or make no sense.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A kind can't be registered or run here (a schema that does not
    /// compile, a missing program, a `[kinds.NAME]` naming no kind).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `auth.cancel_role` names no role.
    #[error("invalid auth.cancel_role: {0}")]
    CancelRole(#[from] UnknownRole),
    /// The HTTP listener could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed")]
    Http(#[source] std::io::Error),
    /// `files.store` can't be used.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// `errand bench` could not run.
    #[error(transparent)]
    Bench(#[from] bench::BenchError),
    /// The system gave no randomness for a token.
    #[error("could not make a random token")]
    Random(#[source] getrandom::Error),
    /// A command's argument is wrong (a token's name or role).
    #[error("{0}")]
    Invalid(String),
}

/// A built, not yet running, errand process.
pub struct App {
    mode: Mode,
    settings: Settings,
    /// The API's part of the settings, parsed once.
    api: ApiSettings,
    store: Store,
    registry: Arc<Registry>,
    enqueuer: Enqueuer,
    /// Task files' bytes.
    files: Files,
    state: State,
    listener: Option<TcpListener>,
    /// Cancelled when shutdown begins: requests waiting on a task answer.
    stopping: CancellationToken,
    /// The schedules the configuration declares, checked.
    schedules: Vec<Schedule>,
}

/// How long in-flight HTTP requests may take to finish on shutdown.
const HTTP_SHUTDOWN: Duration = Duration::from_secs(5);

/// The HTTP server of a running process, if it has one.
struct Http {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl App {
    /// The process for `mode` with the built-in kinds and the command kinds
    /// of `settings`: [`Builder::build`] without kinds of the application's.
    pub fn build(settings: Settings, mode: Mode) -> Result<App, AppError> {
        Builder::new(settings).build(mode)
    }

    /// The address the API listens on (with the real port when bound to 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The store this process uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates tasks with this process's kinds: for an application that
    /// enqueues in its own transaction ([`Enqueuer::create_in`]).
    pub fn enqueuer(&self) -> Enqueuer {
        self.enqueuer.clone()
    }

    /// errand's routes (`/v1/…`, `/healthz`, `/readyz`, `/metrics`,
    /// `/openapi.json`, `/docs`), for an application's own actix-web `App`:
    /// `App::new().configure(routes.clone())`. Build with
    /// [`Builder::mounted`] so that errand binds no listener of its own.
    ///
    /// Stop the application's HTTP server only after [`App::run`] has
    /// returned: database connections opened while serving a request belong
    /// to that server's threads, and the workers may still be using them to
    /// hand back their tasks.
    pub fn routes(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let state = self.api_state();
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone());
            api::routes(cfg);
        }
    }

    fn api_state(&self) -> web::Data<ApiState> {
        web::Data::new(ApiState::new(
            self.store.clone(),
            self.enqueuer.clone(),
            self.files.clone(),
            &self.api,
            self.stopping.clone(),
        ))
    }

    /// Runs until `shutdown` is cancelled, then shuts down in order: stop
    /// accepting requests and claiming tasks, let running tasks finish within
    /// the grace, hand back the rest, close the pool.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let store = self.store.clone();
        if self.settings.database.migrate_on_start
            && when_reachable(&shutdown, || store.migrate())
                .await?
                .is_none()
        {
            return Ok(());
        }
        if self.mode.runs_workers()
            && when_reachable(&shutdown, || schedules::write(&store, &self.schedules))
                .await?
                .is_none()
        {
            return Ok(());
        }
        let data = store.location(&self.settings.database);
        tracing::info!(database = %data, "tasks are kept in the database");
        if self.mode == Mode::Serve {
            println!("errand keeps its tasks in {data}");
            commands::print_bootstrap_token(&store).await?;
        }
        // Notifications feed the claim loops, heart-beats and long polls; it
        // stops last, since a draining worker still heart-beats.
        let listener_stop = CancellationToken::new();
        let notifications = {
            let (store, stop) = (store.clone(), listener_stop.clone());
            tokio::spawn(async move { store.run_listener(stop).await })
        };
        let http = self.start_http()?;
        // Workers and maintenance watch `shutdown` themselves.
        let loops = TaskTracker::new();
        if self.mode.runs_workers() {
            self.start_workers(&loops, &shutdown)?;
        }
        loops.close();

        shutdown.cancelled().await;
        tracing::info!("shutting down");
        // Long polls answer now, rather than be cut when the server stops.
        self.stopping.cancel();
        stop(http, &loops).await;
        listener_stop.cancel();
        let _ = notifications.await;
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }

    /// Starts the HTTP server on the bound listener, if there is one.
    fn start_http(&self) -> Result<Option<Http>, AppError> {
        let Some(listener) = &self.listener else {
            return Ok(None);
        };
        let listener = listener.try_clone().map_err(AppError::Http)?;
        let addr = listener
            .local_addr()
            .map_or_else(|_| self.settings.http.bind.clone(), |a| a.to_string());
        let state = self.api_state();
        let origins = self.settings.http.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            let origins = std::rc::Rc::new(origins.clone());
            let cors = actix_web::middleware::Condition::new(
                !origins.is_empty(),
                actix_web::middleware::from_fn(move |req, next| {
                    api::cors(origins.clone(), req, next)
                }),
            );
            actix_web::App::new()
                .app_data(state.clone())
                .wrap(cors)
                .wrap(actix_web::middleware::from_fn(api::record_request))
                .configure(api::routes)
                .default_service(web::to(api::not_found))
        })
        .disable_signals()
        .shutdown_timeout(HTTP_SHUTDOWN.as_secs());
        if self.settings.http.workers > 0 {
            server = server.workers(self.settings.http.workers);
        }
        let server = server.listen(listener).map_err(AppError::Http)?.run();
        tracing::info!(%addr, mode = ?self.mode, "errand is listening");
        Ok(Some(Http {
            handle: server.handle(),
            task: tokio::spawn(server),
        }))
    }

    /// Starts the workers and the maintenance loops on `loops`.
    fn start_workers(
        &self,
        loops: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Result<(), AppError> {
        let settings = &self.settings;
        let queues = ServedQueue::from_settings(
            &settings.worker.queues,
            settings.default_slots(),
            &settings.queues,
        );
        let worker = Worker::new(WorkerParts {
            store: self.store.clone(),
            files: self.files.clone(),
            registry: self.registry.clone(),
            state: self.state.clone(),
            settings: settings.worker.clone(),
            queues,
        });
        loops.spawn(worker.run(shutdown.clone()));
        let w = &settings.worker;
        let rescuer = Rescuer::new(
            self.store.clone(),
            self.registry.clone(),
            w.rescue_interval,
            w.rescue_batch,
        );
        let pruner = Pruner::new(
            self.store.clone(),
            self.files.clone(),
            settings.retention.clone(),
            w.lease,
        );
        let outbox = CallbackOutbox::new(
            self.store.clone(),
            self.registry.policy(Callback::NAME).clone(),
            settings.callbacks.outbox_interval,
            settings.callbacks.outbox_batch,
        );
        let expirer = Expirer::new(self.store.clone(), w.rescue_interval, w.rescue_batch);
        let scheduler = Scheduler::new(self.store.clone(), self.registry.clone(), w.poll_interval);
        loops.spawn(drive(rescuer, shutdown.clone()));
        loops.spawn(drive(pruner, shutdown.clone()));
        loops.spawn(drive(outbox, shutdown.clone()));
        loops.spawn(drive(expirer, shutdown.clone()));
        loops.spawn(drive(scheduler, shutdown.clone()));
        Ok(())
    }
}

/// Stops taking connections at once, but keeps the HTTP threads alive until
/// the workers have handed back their tasks: database connections the pool
/// opened on those threads' runtimes only work while they run.
async fn stop(http: Option<Http>, loops: &TaskTracker) {
    if let Some(http) = &http {
        http.handle.pause().await;
    }
    loops.wait().await;
    let Some(http) = http else { return };
    http.handle.stop(true).await;
    match http.task.await {
        Ok(Err(e)) => tracing::error!(error = %e, "the HTTP server failed"),
        // Cancelled: its runtime is shutting down under it (a test's, say).
        Err(e) if e.is_cancelled() => tracing::debug!("the HTTP server was cancelled"),
        Err(e) => tracing::error!(error = %e, "the HTTP server panicked"),
        Ok(Ok(())) => {}
    }
}

/// Runs `op` (what a process does at start: migrate, write the
/// configured schedules), waiting for the database while it is not up yet
/// (as when errand and Postgres start together). `None` if shut down first.
async fn when_reachable<T, F>(
    shutdown: &CancellationToken,
    mut op: impl FnMut() -> F,
) -> Result<Option<T>, AppError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut retry = Retry::default();
    loop {
        match op().await {
            Ok(done) => return Ok(Some(done)),
            Err(e) if e.is_transient() => {
                let delay = retry.failed();
                tracing::warn!(error = %e, retry_in = ?delay, "database unreachable; waiting for it");
                if !pause(delay, shutdown).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}
