//! Retrying (superusers): a task that ended without a result (failed,
//! cancelled, dropped or expired) gets a new attempt; one
//! (`POST /v1/tasks/{token}/retry`), or every one a filter matches
//! (`POST /v1/tasks/retry`).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;

use super::error::CommonProblems;
use super::query::Matching;
use super::respond::{accepted, visible_task};
use super::{ApiError, ApiState, Caller, Problem};
use crate::tasks::{Scope, TaskView};

/// `POST /v1/tasks/{token}/retry` (superusers): re-queues a failed,
/// cancelled, dropped or expired task for a new attempt, keeping its
/// history (an expired one's start deadline no longer holds); any other
/// task is 409, and so is one a parent of which has not completed (it
/// would run without that parent's result: retry the parent first).
#[utoipa::path(
    post, path = "/v1/tasks/{token}/retry", tag = "operators",
    params(("token" = String, Path, description = "The task's token")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Re-queued for a new attempt", body = TaskView, headers(("Location" = String))),
        CommonProblems,
        (status = 403, description = "Not a superuser", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not failed, cancelled, dropped or expired, or a task it depends on has not completed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry_task(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut seen = None;
    for _ in 0..5 {
        let task = visible_task(&state, &caller, &path).await?;
        if !caller.is_superuser() {
            return Err(ApiError::Forbidden(
                "only superusers may retry tasks".into(),
            ));
        }
        if !task.status.can_retry() {
            return Err(ApiError::Conflict(format!(
                "only failed, cancelled, dropped or expired tasks can be retried; this one is {}",
                task.status
            )));
        }
        if seen == Some((task.status, task.attempt)) {
            // Unchanged, and still not retried: a parent has not completed.
            return Err(ApiError::Conflict(
                "a task it depends on has not completed: retry that one first".into(),
            ));
        }
        seen = Some((task.status, task.attempt));
        if let Some(task) = state
            .store
            .task_retry(&task, task.attempts_for_retry(), Utc::now())
            .await?
        {
            tracing::info!(task.token = %task.token, by = %caller.name, "task retried");
            return Ok(accepted(task, &state));
        }
    }
    Err(ApiError::Conflict(
        "the task kept changing while it was being retried; try again".into(),
    ))
}

/// `POST /v1/tasks/retry` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetriedCount {
    /// Tasks re-queued for a new attempt.
    pub retried: u64,
}

/// `POST /v1/tasks/retry` (superusers): re-queues every task matching the
/// filter in the body (the fields of `GET /v1/tasks`) that ended without a
/// result (failed, cancelled, dropped or expired), each for a new attempt
/// (keeping its history); others are left as they are, and so is a task a
/// parent of which has not completed. An empty filter is refused unless
/// `"all": true` says that every task is meant.
#[utoipa::path(
    post, path = "/v1/tasks/retry", tag = "operators",
    request_body = Matching,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were re-queued", body = RetriedCount),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 403, description = "Not a superuser", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad filter value (named), or an empty filter without `all: true`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry_tasks(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let filter = Matching::read(&req, payload, &caller, state.max_body_bytes, "retry").await?;
    let retried = state
        .store
        .task_retry_matching(&Scope::everything(), &filter, Utc::now())
        .await?;
    tracing::info!(retried, by = %caller.name, "retried by filter");
    Ok(HttpResponse::Ok().json(RetriedCount { retried }))
}
