//! `POST /v1/tasks/{token}/retry` (superusers): a failed, cancelled or
//! dropped task gets a new attempt.

use actix_web::{HttpResponse, web};
use chrono::Utc;

use super::error::CommonProblems;
use super::respond::{accepted, visible_task};
use super::{ApiError, ApiState, Caller, Problem};
use crate::tasks::TaskView;

/// `POST /v1/tasks/{token}/retry` (superusers): re-queues a failed,
/// cancelled or dropped task for a new attempt, keeping its history; any
/// other task is 409.
#[utoipa::path(
    post, path = "/v1/tasks/{token}/retry", tag = "operators",
    params(("token" = String, Path, description = "The task's token")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Re-queued for a new attempt", body = TaskView, headers(("Location" = String))),
        CommonProblems,
        (status = 403, description = "Not a superuser", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not failed, cancelled or dropped", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry_task(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    for _ in 0..5 {
        let task = visible_task(&state, &caller, &path).await?;
        if !caller.is_superuser() {
            return Err(ApiError::Forbidden(
                "only superusers may retry tasks".into(),
            ));
        }
        if !task.status.can_retry() {
            return Err(ApiError::Conflict(format!(
                "only failed, cancelled or dropped tasks can be retried; this one is {}",
                task.status
            )));
        }
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
