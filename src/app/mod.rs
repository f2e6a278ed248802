//! The composition root: builds the store, the kinds registry, the HTTP
//! server, the workers and the maintenance loop for each process mode, and
//! runs them until shutdown. Also the one-shot commands (`migrate`,
//! `token create`, `token revoke`). Tests and production run the same code:
//! [`App::build`] binds the listener and reports the port, [`App::run`]
//! takes the shutdown signal.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpServer, web};
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, ApiState};
use crate::config::{self, ConfigError, Settings};
use crate::kinds::{Registry, RegistryError};
use crate::store::{NewApiToken, Store, StoreError};
use crate::tasks::{ApiToken, Principal, Role, UnknownRole};
use crate::worker::{Maintenance, ServedQueue, Worker};

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
    fn serves_http(self) -> bool {
        matches!(self, Mode::Serve | Mode::Api)
    }

    fn runs_workers(self) -> bool {
        matches!(self, Mode::Serve | Mode::Worker)
    }
}

/// Why errand could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid auth.cancel_role: {0}")]
    CancelRole(#[from] UnknownRole),
    #[error("could not listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Http(#[source] std::io::Error),
    #[error("could not make a random token")]
    Random(#[source] getrandom::Error),
    #[error("{0}")]
    Invalid(String),
}

/// A built, not yet running, errand process.
pub struct App {
    mode: Mode,
    settings: Settings,
    store: Store,
    registry: Arc<Registry>,
    listener: Option<TcpListener>,
}

/// How long in-flight HTTP requests may take to finish on shutdown.
const HTTP_SHUTDOWN: Duration = Duration::from_secs(5);

impl App {
    /// Checks the settings, opens the (lazy) database pool and binds the HTTP
    /// listener, so the port is known before anything runs.
    pub fn build(settings: Settings, mode: Mode) -> Result<App, AppError> {
        let store = Store::connect(&settings.database)?;
        let registry = Arc::new(Registry::with_builtins(&settings, &store)?);
        crate::telemetry::init_metrics();
        settings
            .auth
            .cancel_role
            .parse::<crate::tasks::CancelRole>()?;
        config::parse_queues(&settings.worker.queues)?;
        let listener = if mode.serves_http() {
            let bind = &settings.http.bind;
            let listener = TcpListener::bind(bind).map_err(|source| AppError::Bind {
                addr: bind.clone(),
                source,
            })?;
            Some(listener)
        } else {
            None
        };
        Ok(App {
            mode,
            settings,
            store,
            registry,
            listener,
        })
    }

    /// The address the API listens on (with the real port when bound to 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The store this process uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs until `shutdown` is cancelled, then shuts down in order: stop
    /// accepting requests and claiming tasks, let running tasks finish within
    /// the grace, hand back the rest, close the pool.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let App {
            mode,
            settings,
            store,
            registry,
            listener,
        } = self;
        if settings.database.migrate_on_start && !migrate_when_reachable(&store, &shutdown).await? {
            return Ok(());
        }
        let data = store.location(&settings.database);
        tracing::info!(database = %data, "tasks are kept in the database");
        if mode == Mode::Serve {
            println!("errand keeps its tasks in {data}");
            print_bootstrap_token(&store).await?;
        }

        // Notifications feed the claim loops and heart-beats; it stops last,
        // since a draining worker still heart-beats.
        let listener_stop = CancellationToken::new();
        let notifications = {
            let store = store.clone();
            let stop = listener_stop.clone();
            tokio::spawn(async move { store.run_listener(stop).await })
        };

        let http = match listener {
            Some(listener) => {
                let addr = listener
                    .local_addr()
                    .map_or_else(|_| settings.http.bind.clone(), |a| a.to_string());
                let server = http_server(listener, &settings, store.clone(), registry.clone())?;
                tracing::info!(%addr, ?mode, "errand is listening");
                Some(server)
            }
            None => None,
        };
        let http_handle = http.as_ref().map(|s| s.handle());
        let http_task = http.map(tokio::spawn);

        // Workers and maintenance watch `shutdown` themselves.
        let loops = TaskTracker::new();
        if mode.runs_workers() {
            let specs = config::parse_queues(&settings.worker.queues)?;
            let queues = ServedQueue::from_settings(&specs, settings.default_slots(), &settings);
            let worker = Worker::new(
                store.clone(),
                registry.clone(),
                settings.worker.clone(),
                queues,
            );
            loops.spawn(worker.run(shutdown.clone()));
            let maintenance = Arc::new(Maintenance::new(
                store.clone(),
                registry.clone(),
                settings.worker.clone(),
                settings.retention.clone(),
            ));
            loops.spawn(maintenance.clone().run_callbacks(shutdown.clone()));
            loops.spawn(maintenance.run(shutdown.clone()));
        }
        loops.close();

        shutdown.cancelled().await;
        tracing::info!("shutting down");
        // Stop taking connections at once, but keep the HTTP threads alive
        // until the workers have handed back their tasks: database
        // connections the pool opened on those threads' runtimes only work
        // while they run.
        if let Some(handle) = &http_handle {
            handle.pause().await;
        }
        loops.wait().await;
        if let Some(handle) = http_handle {
            handle.stop(true).await;
        }
        if let Some(task) = http_task {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "the HTTP server failed"),
                Err(e) => tracing::error!(error = %e, "the HTTP server panicked"),
                Ok(Ok(())) => {}
            }
        }
        listener_stop.cancel();
        let _ = notifications.await;
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn http_server(
    listener: TcpListener,
    settings: &Settings,
    store: Store,
    registry: Arc<Registry>,
) -> Result<actix_web::dev::Server, AppError> {
    let state = web::Data::new(ApiState::new(store, registry, settings)?);
    let mut server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(api::record_request))
            .configure(api::routes)
    })
    .disable_signals()
    .shutdown_timeout(HTTP_SHUTDOWN.as_secs());
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    Ok(server.listen(listener).map_err(AppError::Http)?.run())
}

/// Applies migrations, waiting for the database if it is not up yet (as
/// when errand and Postgres start together). False if shut down first.
async fn migrate_when_reachable(
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<bool, AppError> {
    let mut delay = Duration::from_millis(250);
    loop {
        match store.migrate().await {
            Ok(()) => return Ok(true),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?delay, "database unreachable; waiting for it");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(false),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// On a database with no API token at all, mints a superuser token and
/// prints it, once: the way in on a fresh install.
async fn print_bootstrap_token(store: &Store) -> Result<(), AppError> {
    let token = ApiToken::generate().map_err(AppError::Random)?;
    let row = NewApiToken {
        name: "bootstrap".into(),
        role: Role::Superuser,
        product: None,
        hash: token.hash(),
    };
    if store.token_insert_first(&row, Utc::now()).await? {
        println!(
            "No API token existed, so errand minted a superuser token named \"bootstrap\".\n\
             It is shown only this once; keep it safe:\n\n{}\n",
            token.secret()
        );
        tracing::info!("minted the bootstrap superuser token");
    }
    Ok(())
}

/// `errand migrate`: applies migrations and returns.
pub async fn migrate(settings: &Settings) -> Result<(), AppError> {
    let store = Store::connect(&settings.database)?;
    store.migrate().await?;
    store.close().await;
    Ok(())
}

/// `errand token create`: mints a token and returns it (to print once).
pub async fn token_create(
    settings: &Settings,
    name: &str,
    role: &str,
    product: Option<&str>,
) -> Result<String, AppError> {
    let role: Role = role
        .parse()
        .map_err(|e: UnknownRole| AppError::Invalid(e.to_string()))?;
    let who = Principal::checked(name, role, product).map_err(AppError::Invalid)?;
    let store = Store::connect(&settings.database)?;
    if settings.database.migrate_on_start {
        store.migrate().await?;
    }
    let token = ApiToken::generate().map_err(AppError::Random)?;
    let row = NewApiToken {
        name: who.name,
        role: who.role,
        product: who.product,
        hash: token.hash(),
    };
    store.token_insert(&row, Utc::now()).await?;
    store.close().await;
    Ok(token.secret().to_string())
}

/// `errand token revoke`: revokes every token with this name; returns how
/// many.
pub async fn token_revoke(settings: &Settings, name: &str) -> Result<u64, AppError> {
    let store = Store::connect(&settings.database)?;
    let revoked = store.token_revoke(name, Utc::now()).await?;
    store.close().await;
    Ok(revoked)
}
