//! What operators look at besides tasks: the live workers, the registered
//! kinds, and Prometheus metrics.

use std::time::Duration;

use actix_web::FromRequest as _;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;

use super::error::CommonProblems;
use super::{ApiError, ApiState, Caller, Problem};
use crate::config::MetricsExposure;
use crate::tasks::{Status, WorkerInfo};

/// `GET /v1/workers` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerInfo>,
}

/// `GET /v1/workers` (admins, superusers): the worker processes alive now
/// (heard from within one lease), with their queues and running tasks.
#[utoipa::path(
    get, path = "/v1/workers", tag = "operators",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The live workers", body = WorkerList),
        CommonProblems,
        (status = 403, description = "Not an admin or superuser", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_workers(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::Forbidden(
            "the workers view is for admins and superusers".into(),
        ));
    }
    let since = Utc::now() - chrono::Duration::from_std(state.worker_lease).unwrap_or_default();
    let workers = state.store.worker_list(since).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(WorkerList { workers }))
}

/// One kind in `GET /v1/kinds`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KindView {
    pub name: String,
    pub queue: String,
    pub max_attempts: i32,
    /// Seconds an attempt may run.
    pub timeout: f64,
    pub backoff: BackoffView,
    /// The JSON Schema of the payload, if the kind declares one.
    pub payload_schema: Option<serde_json::Value>,
}

/// Retry delays: `base * 2^(attempt-1)`, at most `max`, in seconds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackoffView {
    pub base: f64,
    pub max: f64,
}

/// `GET /v1/kinds` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KindList {
    pub kinds: Vec<KindView>,
}

/// `GET /v1/kinds` (anyone with a token): the kinds this API accepts, with
/// their queue, defaults, and payload schema (a create whose payload fails
/// it is refused with 422, naming the failing path).
#[utoipa::path(
    get, path = "/v1/kinds", tag = "tasks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The registered kinds", body = KindList),
        CommonProblems,
    )
)]
pub async fn list_kinds(
    Caller(_): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let secs = Duration::as_secs_f64;
    let registry = state.enqueuer.registry();
    let kinds = registry
        .names()
        .into_iter()
        .map(|name| {
            let policy = registry.policy(name);
            KindView {
                name: name.to_string(),
                queue: policy.queue.clone(),
                max_attempts: policy.max_attempts,
                timeout: secs(&policy.timeout),
                backoff: BackoffView {
                    base: secs(&policy.backoff.base),
                    max: secs(&policy.backoff.max),
                },
                payload_schema: registry.get(name).and_then(|k| k.schema().cloned()),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(KindList { kinds }))
}

/// `GET /metrics`: Prometheus text format. Who may read it is
/// `metrics.expose`; queue depths are sampled from the database here.
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "`metrics.expose = \"superuser\"` and no token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`metrics.expose = \"superuser\"` and not a superuser", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`metrics.expose = \"off\"`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    match state.metrics {
        MetricsExposure::Off => {
            return Err(ApiError::NotFound(
                "metrics are off (metrics.expose)".into(),
            ));
        }
        MetricsExposure::Superuser => {
            let Caller(caller) = Caller::extract(&req).await?;
            if !caller.is_superuser() {
                return Err(ApiError::Forbidden(
                    "metrics are for superusers (metrics.expose)".into(),
                ));
            }
        }
        MetricsExposure::Public => {}
    }
    sample_queue_depth(&state).await;
    sample_queue_oldest(&state).await;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::render_metrics()))
}

/// Sets `errand_queue_oldest_queued_seconds` from the database (0 for a
/// queue none waits in any more); a failure leaves the gauges as they
/// were (and is logged).
async fn sample_queue_oldest(state: &ApiState) {
    let oldest = match state.store.task_queue_oldest(Utc::now()).await {
        Ok(oldest) => oldest,
        Err(e) => {
            tracing::warn!(error = %e, "could not sample the oldest queued tasks");
            return;
        }
    };
    let mut seen = state
        .oldest_gauges
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let waiting: std::collections::HashSet<String> =
        oldest.iter().map(|(q, _)| q.clone()).collect();
    for queue in seen.difference(&waiting) {
        crate::telemetry::queue_oldest_queued(queue, Duration::ZERO);
    }
    for (queue, waited) in &oldest {
        crate::telemetry::queue_oldest_queued(queue, *waited);
    }
    *seen = waiting;
}

/// Sets the queue-depth gauges from the database; a failure leaves them as
/// they were (and is logged), so that metrics stay readable while the
/// database is down.
async fn sample_queue_depth(state: &ApiState) {
    let waiting: Vec<Status> = Status::ALL
        .into_iter()
        .filter(|s| !s.is_terminal())
        .collect();
    let depths = match state.store.task_queue_depth(&waiting).await {
        Ok(depths) => depths,
        Err(e) => {
            tracing::warn!(error = %e, "could not sample queue depths");
            return;
        }
    };
    let mut seen = state.depth_gauges.lock().unwrap_or_else(|p| p.into_inner());
    let now: std::collections::HashSet<(String, String)> = depths
        .iter()
        .map(|(queue, status, _)| (queue.clone(), status.to_string()))
        .collect();
    for (queue, status) in seen.difference(&now) {
        crate::telemetry::queue_depth(queue, status, 0);
    }
    for (queue, status, n) in &depths {
        crate::telemetry::queue_depth(queue, status.as_str(), *n);
    }
    *seen = now;
}
