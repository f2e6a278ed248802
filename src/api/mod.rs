//! The HTTP API (actix-web only): the route table ([`routes`]) and what
//! every handler shares ([`ApiState`]), one module per route or small group
//! of them:
//!
//! - `create` (`POST /v1/tasks`, JSON or multipart), `get`
//!   (`GET /v1/tasks/{token}`), `list` (`GET /v1/tasks`), `cancel` and
//!   `retry` (one task, or by filter), `stats`; `upload` (`POST /v1/files`),
//!   `download` (a task's file); `queues` (`/v1/queues`: pause, resume),
//!   `schedules` (`/v1/schedules`);
//!   `operations` (workers, kinds, metrics), `me` (who the caller is),
//!   `health`, `openapi`, `ui` (the dashboard's files);
//! - `reads` (polls read together), `respond` (a task the caller may see, as JSON with its ETag),
//!   `conditional` (ETag, 304, `Prefer: wait`, the long poll), `body`
//!   (bounded JSON bodies), `query` (query strings with a filter), `cors`
//!   (cross-origin requests), `auth` (the bearer-token extractor), `error`
//!   ([`ApiError`], the single mapping from failures to HTTP statuses).
//!
//! Uses `intake` to create tasks, `store` for data, `tasks` for every rule
//! (who sees what, what a cancel does, what a valid task is) and `kinds`
//! to list the kinds. Holds no state of its own beyond a short token cache,
//! so any number of API processes can stand behind a load balancer.

mod auth;
mod batch;
mod body;
mod cancel;
mod conditional;
mod cors;
mod create;
mod download;
mod error;
mod get;
mod health;
mod list;
mod me;
mod multipart;
mod openapi;
mod operations;
mod query;
mod queues;
mod reads;
mod respond;
mod retry;
mod schedules;
mod stats;
mod ui;
mod upload;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use tokio_util::sync::CancellationToken;

pub use auth::{Caller, TokenCache};
pub use cors::cors;
pub use error::{ApiError, Problem};
pub use openapi::ApiDoc;
pub use reads::TaskReads;

use crate::config::{HttpSettings, MetricsExposure};
use crate::files::Files;
use crate::intake::Enqueuer;
use crate::store::Store;
use crate::tasks::{CancelRole, PollPace};

/// What the API takes from the configuration, parsed once when the process
/// is built.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub http: HttpSettings,
    /// How long a verified token is remembered (`auth.cache_ttl`).
    pub token_cache_ttl: Duration,
    /// Who may cancel a task (`auth.cancel_role`).
    pub cancel_role: CancelRole,
    /// Who may read `/metrics` (`metrics.expose`).
    pub metrics: MetricsExposure,
    /// A worker not heard from for this long is not shown (`worker.lease`).
    pub worker_lease: Duration,
    /// The configured queues (`[queues.NAME]`), with their global limits.
    pub queue_limits: BTreeMap<String, Option<usize>>,
}

/// What every handler shares.
pub struct ApiState {
    pub store: Store,
    /// Reads the tasks that polls ask for, together.
    pub reads: TaskReads,
    /// Creates tasks (and knows the kinds).
    pub enqueuer: Enqueuer,
    /// Task files' bytes.
    pub files: Files,
    pub tokens: TokenCache,
    pub cancel_role: CancelRole,
    pub max_body_bytes: usize,
    /// Most tasks, and largest body, of a batch create.
    pub max_batch: usize,
    pub max_batch_bytes: usize,
    /// What `Retry-After` says while a task has not ended.
    pub poll_pace: PollPace,
    /// Longest a request may wait for a task to change.
    pub max_wait: Duration,
    pub page_size: usize,
    pub max_page_size: usize,
    /// Bound on each statement of listings, stats and metrics.
    pub query_timeout: Duration,
    /// Who may read `/metrics`.
    pub metrics: MetricsExposure,
    /// A worker not heard from for this long is not shown.
    pub worker_lease: Duration,
    /// The configured queues, with their global limits.
    pub queue_limits: BTreeMap<String, Option<usize>>,
    /// Queue-depth gauges already set, so that emptied ones go back to 0.
    pub depth_gauges: Mutex<HashSet<(String, String)>>,
    /// Queues whose oldest-queued gauge is set, likewise.
    pub oldest_gauges: Mutex<HashSet<String>>,
    /// Cancelled when the process starts shutting down: a request waiting
    /// for a task answers with the task as it is.
    pub stopping: CancellationToken,
}

impl ApiState {
    pub fn new(
        store: Store,
        enqueuer: Enqueuer,
        files: Files,
        settings: &ApiSettings,
        stopping: CancellationToken,
    ) -> ApiState {
        let http = &settings.http;
        ApiState {
            reads: TaskReads::new(store.clone(), http.read_batch),
            store,
            enqueuer,
            files,
            tokens: TokenCache::new(settings.token_cache_ttl),
            cancel_role: settings.cancel_role,
            max_body_bytes: http.max_body_bytes,
            max_batch: http.max_batch,
            max_batch_bytes: http.max_batch_bytes,
            poll_pace: PollPace {
                base: http.retry_after,
                max: http.retry_after_max,
            },
            max_wait: http.max_wait,
            page_size: http.page_size,
            max_page_size: http.max_page_size,
            query_timeout: http.query_timeout,
            metrics: settings.metrics,
            worker_lease: settings.worker_lease,
            queue_limits: settings.queue_limits.clone(),
            depth_gauges: Mutex::new(HashSet::new()),
            oldest_gauges: Mutex::new(HashSet::new()),
            stopping,
        }
    }
}

/// The route table: every route errand answers, in one place. Nothing here
/// reaches beyond errand's own routes, so that an application can mount
/// them into its own actix-web `App` (its 404s stay its own); errand's own
/// server adds [`not_found`] as the default service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/v1/tasks", "GET, POST")
            .route(web::post().to(create::create_task))
            .route(web::get().to(list::list_tasks)),
    )
    // Before /v1/tasks/{token}, which would match them too.
    .service(resource("/v1/tasks/batch", "POST").route(web::post().to(batch::create_batch)))
    .service(resource("/v1/tasks/stats", "GET").route(web::get().to(stats::task_stats)))
    .service(resource("/v1/tasks/cancel", "POST").route(web::post().to(cancel::cancel_tasks)))
    .service(resource("/v1/tasks/retry", "POST").route(web::post().to(retry::retry_tasks)))
    .service(resource("/v1/tasks/{token}", "GET").route(web::get().to(get::get_task)))
    .service(
        resource("/v1/tasks/{token}/cancel", "POST").route(web::post().to(cancel::cancel_task)),
    )
    .service(resource("/v1/tasks/{token}/retry", "POST").route(web::post().to(retry::retry_task)))
    .service(resource("/v1/files", "POST").route(web::post().to(upload::upload_file)))
    .service(
        resource("/v1/tasks/{token}/files/{name}", "GET, HEAD")
            .route(web::get().to(download::download_file))
            .route(web::head().to(download::download_file)),
    )
    .service(resource("/v1/workers", "GET").route(web::get().to(operations::list_workers)))
    .service(resource("/v1/queues", "GET").route(web::get().to(queues::list_queues)))
    .service(resource("/v1/queues/{name}/pause", "POST").route(web::post().to(queues::pause_queue)))
    .service(
        resource("/v1/queues/{name}/resume", "POST").route(web::post().to(queues::resume_queue)),
    )
    .service(
        resource("/v1/schedules", "GET, POST")
            .route(web::get().to(schedules::list_schedules))
            .route(web::post().to(schedules::create_schedule)),
    )
    .service(
        resource("/v1/schedules/{name}", "GET, PATCH, DELETE")
            .route(web::get().to(schedules::get_schedule))
            .route(web::patch().to(schedules::update_schedule))
            .route(web::delete().to(schedules::delete_schedule)),
    )
    .service(
        resource("/v1/schedules/{name}/pause", "POST")
            .route(web::post().to(schedules::pause_schedule)),
    )
    .service(
        resource("/v1/schedules/{name}/resume", "POST")
            .route(web::post().to(schedules::resume_schedule)),
    )
    .service(resource("/v1/kinds", "GET").route(web::get().to(operations::list_kinds)))
    .service(resource("/v1/me", "GET").route(web::get().to(me::get_me)))
    .service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
    .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
    .service(resource("/metrics", "GET").route(web::get().to(operations::metrics)))
    .service(resource("/openapi.json", "GET").route(web::get().to(openapi::openapi_json)))
    .service(resource("/docs", "GET").route(web::get().to(openapi::docs)))
    .service(resource("/ui", "GET").route(web::get().to(ui::ui_page)))
    .service(resource("/ui/", "GET").route(web::get().to(ui::ui_page)))
    .service(resource("/ui/{file}", "GET").route(web::get().to(ui::ui_asset)))
    .service(openapi::docs_service());
}

/// A resource that answers any method but `allow` (which its routes take)
/// with 405 and an `Allow` header, and whose bad query strings and paths
/// are answered as problems.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path)
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            ApiError::BadRequest(format!("invalid query string: {e}")).into()
        }))
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::NotFound(format!("no such resource: {e}")).into()),
        )
        .default_service(web::to(move |req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                allow,
                detail: format!(
                    "{} is not allowed on {}; use {allow}",
                    req.method(),
                    req.path()
                ),
            })
        }))
}

/// Any path errand has no route for: a 404 problem.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Counts every answered request by route pattern, method and status.
pub async fn record_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let response = next.call(req).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    crate::telemetry::http_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    Ok(response)
}
