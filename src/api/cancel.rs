//! Cancelling: one task (`POST /v1/tasks/{token}/cancel`), or every task
//! a filter matches (`POST /v1/tasks/cancel`, superusers).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;

use super::error::CommonProblems;
use super::query::Matching;
use super::respond::{task_response, visible_task};
use super::{ApiError, ApiState, Caller, Problem};
use crate::tasks::{CancelAction, Scope, TaskView};

/// `POST /v1/tasks/{token}/cancel`: a task that has not started ends
/// `cancelled` at once (200); a running one is asked to stop (202) and ends
/// `cancelled` when its worker notices, within one heartbeat; cancelling a
/// cancelled task again is harmless (200); any other ended task is 409.
#[utoipa::path(
    post, path = "/v1/tasks/{token}/cancel", tag = "tasks",
    params(("token" = String, Path, description = "The task's token")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled (it had not started, or was cancelled already)", body = TaskView),
        (status = 202, description = "Running: its worker is asked to stop it", body = TaskView),
        CommonProblems,
        (status = 403, description = "You see the task but may not cancel it (`auth.cancel_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It has already ended otherwise", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_task(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // A compare-and-set against the status we saw: if the task moves on in
    // between (a worker claims it, say), look again.
    for _ in 0..5 {
        let task = visible_task(&state, &caller, &path).await?;
        if !caller.can_cancel(&task, state.cancel_role) {
            return Err(ApiError::Forbidden(
                "you may not cancel this task (see auth.cancel_role)".into(),
            ));
        }
        let now = Utc::now();
        let (changed, status) = match task.status.cancel_action() {
            CancelAction::CancelNow => (
                state
                    .store
                    .task_cancel_unstarted(task.id, task.status, now)
                    .await?,
                StatusCode::OK,
            ),
            CancelAction::RequestStop => (
                state
                    .store
                    .task_cancel_request(task.id, task.attempt, now)
                    .await?,
                StatusCode::ACCEPTED,
            ),
            CancelAction::AlreadyCancelled => (Some(task), StatusCode::OK),
            CancelAction::AlreadyFinished => {
                return Err(ApiError::Conflict(format!(
                    "the task has already ended ({}); it can't be cancelled",
                    task.status
                )));
            }
        };
        if let Some(task) = changed {
            tracing::info!(task.token = %task.token, by = %caller.name, "cancel requested");
            return Ok(task_response(status, task, &state));
        }
    }
    Err(ApiError::Conflict(
        "the task kept changing while it was being cancelled; try again".into(),
    ))
}

/// `POST /v1/tasks/cancel` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelledCount {
    /// Tasks that had not started and are now `cancelled`.
    pub cancelled: u64,
    /// Running tasks whose workers were asked to stop them.
    pub cancel_requested: u64,
}

/// `POST /v1/tasks/cancel` (superusers): cancels every task matching the
/// filter in the body (the fields of `GET /v1/tasks`). An empty filter is
/// refused unless `"all": true` says that every task is meant.
#[utoipa::path(
    post, path = "/v1/tasks/cancel", tag = "operators",
    request_body = Matching,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were cancelled, and how many asked to stop", body = CancelledCount),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 403, description = "Not a superuser", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad filter value (named), or an empty filter without `all: true`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_tasks(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let filter = Matching::read(&req, payload, &caller, state.max_body_bytes, "cancel").await?;
    let count = state
        .store
        .task_cancel_matching(&Scope::everything(), &filter, Utc::now())
        .await?;
    tracing::info!(
        cancelled = count.cancelled,
        asked_to_stop = count.asked_to_stop,
        by = %caller.name,
        "cancelled by filter"
    );
    Ok(HttpResponse::Ok().json(CancelledCount {
        cancelled: count.cancelled,
        cancel_requested: count.asked_to_stop,
    }))
}
