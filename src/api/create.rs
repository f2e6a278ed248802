//! `POST /v1/tasks`: create a task (through `intake`), answering `202`
//! at once, or the finished task when the client asked to wait for it
//! (`Prefer: wait=N`).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::read_json;
use super::conditional::{prefer_wait, wait_for};
use super::error::CommonProblems;
use super::multipart::create_multipart;
use super::respond::{accepted, task_path, task_response};
use super::{ApiError, ApiState, Caller, Problem};
use crate::intake::Created;
use crate::tasks::{Task, TaskDraft, TaskView};

/// `POST /v1/tasks`: checks everything, queues the task, and answers
/// `202 Accepted` at once with its `Location`. Nothing is written unless the
/// whole request is good.
#[utoipa::path(
    post, path = "/v1/tasks", tag = "tasks",
    request_body(
        description = "The task as JSON; or, as `multipart/form-data`, a part `task` with that JSON and one part per file, named as the task names it (`curl -F task=@task.json -F audio=@talk.wav`)",
        content((TaskDraft = "application/json"), (Object = "multipart/form-data"))),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Names this request (1 to 255 visible ASCII characters), per token name, for `idempotency.ttl` (24 h): sending it again with the same body answers the same task, with `Idempotent-Replayed: true`")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted: the task is queued; poll its `Location`", body = TaskView,
            headers(("Location" = String), ("Retry-After" = u64, description = "Seconds until polling again is worth it, only while the task has not ended: `http.retry_after` (2) while it runs; the time until it is due if it is delayed or backing off; a quarter of the time it has waited so far if it is due or waiting for its dependencies; never more than `http.retry_after_max` (30)"), ("ETag" = String))),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 409, description = "A request with this Idempotency-Key is still in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown kind, a payload the kind refuses, a bad field (named), an unknown or failed dependency, or an Idempotency-Key used with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_task(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    if multipart {
        return create_multipart(&req, &caller, &state, payload).await;
    }
    let draft: TaskDraft = read_json(&req, payload, state.max_body_bytes).await?;
    let key = idempotency_key_header(&req)?;
    let created = state.enqueuer.create(draft, &caller, key).await?;
    created_response(&req, created, &state).await
}

/// The request's `Idempotency-Key`, if it has one.
pub(super) fn idempotency_key_header(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    match req.headers().get("idempotency-key") {
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::BadRequest("Idempotency-Key: must be visible ASCII".into())),
        None => Ok(None),
    }
}

/// The answer to a create: `202 Accepted` with the task's `Location`; or,
/// when the client asked to wait (`Prefer: wait=N`) and the task ended in
/// that time, `200` with the finished task and `Preference-Applied`. A
/// replay says so (`Idempotent-Replayed: true`).
pub(super) async fn created_response(
    req: &HttpRequest,
    created: Created,
    state: &ApiState,
) -> Result<HttpResponse, ApiError> {
    let mut response =
        waited_response(created.task, state, prefer_wait(req, state.max_wait)).await?;
    if created.replayed {
        response.headers_mut().insert(
            header::HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// `202`, or the task once it ended if that is within `wait`.
async fn waited_response(
    task: Task,
    state: &ApiState,
    wait: Option<Duration>,
) -> Result<HttpResponse, ApiError> {
    let Some(wait) = wait.filter(|_| !task.is_done()) else {
        return Ok(accepted(task, state));
    };
    let until = tokio::time::Instant::now() + wait;
    let task = wait_for(state, task.token, until, |t| t.is_done()).await?;
    if !task.is_done() {
        return Ok(accepted(task, state));
    }
    let location = task_path(task.token);
    let mut response = task_response(StatusCode::OK, task, state);
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("a task path is ASCII"),
    );
    headers.insert(
        header::HeaderName::from_static("preference-applied"),
        HeaderValue::from_str(&format!("wait={}", wait.as_secs())).expect("digits are ASCII"),
    );
    Ok(response)
}
