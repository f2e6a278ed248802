//! Queues: `GET /v1/queues` (each queue's state: paused or not, its global
//! limit, its unfinished tasks by status, how long its oldest due task has
//! waited), and `POST /v1/queues/{name}/pause` and `/resume`
//! (superusers): while a queue is paused no worker starts its tasks
//! (running ones finish; new ones may still be created, and wait).

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::CommonProblems;
use super::{ApiError, ApiState, Caller, Problem};
use crate::tasks::{Principal, Status, validate_queue_name};

/// One queue, as `GET /v1/queues` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    pub name: String,
    /// While paused, no worker starts its tasks.
    pub paused: bool,
    /// Since when it is paused.
    pub paused_at: Option<DateTime<Utc>>,
    /// The name of the token that paused it.
    pub paused_by: Option<String>,
    /// Most of its tasks running at once across all workers
    /// (`[queues.NAME] global_limit`), if limited.
    pub global_limit: Option<usize>,
    /// Its unfinished tasks by status (`waiting`, `queued`, `running`;
    /// each present).
    pub counts: BTreeMap<String, i64>,
    /// How long, in seconds, the task that has waited longest since it
    /// became due has waited; `null` when none waits.
    pub oldest_queued_seconds: Option<f64>,
}

/// `GET /v1/queues` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueList {
    pub queues: Vec<QueueView>,
}

/// `GET /v1/queues` (admins, superusers): every queue errand knows of
/// (configured, a kind's, served by a live worker, holding unfinished
/// tasks, or paused), by name.
#[utoipa::path(
    get, path = "/v1/queues", tag = "operators",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The queues", body = QueueList),
        CommonProblems,
        (status = 403, description = "Not an admin or superuser", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_queues(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::Forbidden(
            "the queues view is for admins and superusers".into(),
        ));
    }
    let queues = queues(&state).await?.into_values().collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(QueueList { queues }))
}

/// `POST /v1/queues/{name}/pause` (superusers): from the answer on, no
/// claim takes the queue's tasks and (Postgres) no new task of it is
/// pushed to an idle worker; a claim or insert already under way may still
/// start one, and so may a task a worker claimed ahead of a free slot.
/// Running tasks finish, and new tasks may still be created (they wait).
/// Pausing a paused queue changes nothing.
#[utoipa::path(
    post, path = "/v1/queues/{name}/pause", tag = "operators",
    params(("name" = String, Path, description = "The queue's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Paused (or paused already)", body = QueueView),
        CommonProblems,
        (status = 403, description = "Not a superuser", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No queue of this name is known", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a queue name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn pause_queue(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut queue = known_queue(&state, &caller, &path).await?;
    let pause = state
        .store
        .queue_pause(&queue.name, &caller.name, Utc::now())
        .await?;
    tracing::info!(queue = queue.name, by = %caller.name, since = %pause.at, "queue paused");
    queue.paused = true;
    queue.paused_at = Some(pause.at);
    queue.paused_by = Some(pause.by);
    Ok(HttpResponse::Ok().json(queue))
}

/// `POST /v1/queues/{name}/resume` (superusers): workers start the
/// queue's tasks again. Resuming a queue that is not paused changes
/// nothing.
#[utoipa::path(
    post, path = "/v1/queues/{name}/resume", tag = "operators",
    params(("name" = String, Path, description = "The queue's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Resumed (or not paused)", body = QueueView),
        CommonProblems,
        (status = 403, description = "Not a superuser", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No queue of this name is known", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a queue name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resume_queue(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut queue = known_queue(&state, &caller, &path).await?;
    if state.store.queue_resume(&queue.name).await? {
        tracing::info!(queue = queue.name, by = %caller.name, "queue resumed");
    }
    queue.paused = false;
    queue.paused_at = None;
    queue.paused_by = None;
    Ok(HttpResponse::Ok().json(queue))
}

/// The queue named in the path, as it is now, for a superuser: 422 for a
/// malformed name, 404 for one errand knows nothing of.
async fn known_queue(
    state: &ApiState,
    caller: &Principal,
    name: &str,
) -> Result<QueueView, ApiError> {
    if !caller.is_superuser() {
        return Err(ApiError::Forbidden(
            "only superusers may pause and resume queues".into(),
        ));
    }
    validate_queue_name(name).map_err(|m| ApiError::Unprocessable(format!("queue: {m}")))?;
    queues(state).await?.remove(name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no queue {name:?}: it is not configured, no kind or worker uses it, and no unfinished task is in it"
        ))
    })
}

/// Every queue errand knows of, by name: configured, a kind's, a live
/// worker's, holding unfinished tasks, or paused.
async fn queues(state: &ApiState) -> Result<BTreeMap<String, QueueView>, ApiError> {
    let now = Utc::now();
    let mut queues = BTreeMap::new();
    for name in state.queue_limits.keys() {
        queue(&mut queues, state, name);
    }
    let registry = state.enqueuer.registry();
    for kind in registry.runnable() {
        queue(&mut queues, state, &registry.policy(&kind).queue);
    }
    let since = now - chrono::Duration::from_std(state.worker_lease).unwrap_or_default();
    for worker in state.store.worker_list(since).await? {
        for name in worker.queues.keys() {
            queue(&mut queues, state, name);
        }
    }
    let statuses: Vec<Status> = unfinished().collect();
    for (name, status, n) in state.store.task_queue_depth(&statuses).await? {
        queue(&mut queues, state, &name)
            .counts
            .insert(status.to_string(), n);
    }
    for (name, waited) in state.store.task_queue_oldest(now).await? {
        queue(&mut queues, state, &name).oldest_queued_seconds = Some(waited.as_secs_f64());
    }
    for (name, pause) in state.store.queue_pauses().await? {
        let view = queue(&mut queues, state, &name);
        view.paused = true;
        view.paused_at = Some(pause.at);
        view.paused_by = Some(pause.by);
    }
    Ok(queues)
}

/// The view of queue `name` in `queues`, made (with nothing in it) if new.
fn queue<'q>(
    queues: &'q mut BTreeMap<String, QueueView>,
    state: &ApiState,
    name: &str,
) -> &'q mut QueueView {
    queues.entry(name.to_string()).or_insert_with(|| QueueView {
        name: name.to_string(),
        paused: false,
        paused_at: None,
        paused_by: None,
        global_limit: state.queue_limits.get(name).copied().flatten(),
        counts: unfinished().map(|s| (s.to_string(), 0)).collect(),
        oldest_queued_seconds: None,
    })
}

/// The statuses of a task that has not ended.
fn unfinished() -> impl Iterator<Item = Status> {
    Status::ALL.into_iter().filter(|s| !s.is_terminal())
}
