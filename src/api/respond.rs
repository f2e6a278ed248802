//! Answering with one task: finding the task a caller may see (else the
//! same 404 as for none), and its JSON with `ETag`, `Cache-Control` and
//! `Retry-After`, or as `202 Accepted` with its `Location`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};

use super::conditional::{etag, render_owned};
use super::{ApiError, ApiState};
use crate::tasks::{Principal, Task, TaskToken, TaskView};

pub(super) fn task_path(token: TaskToken) -> String {
    TaskView::path(token)
}

/// `202 Accepted` for a task, with its `Location`.
pub(super) fn accepted(task: Task, state: &ApiState) -> HttpResponse {
    let location = task_path(task.token);
    let mut response = task_response(StatusCode::ACCEPTED, task, state);
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("a task path is ASCII"),
    );
    response
}

/// The task named in the path, if the caller may see it. A malformed token,
/// an unknown task and someone else's task all answer the same 404.
pub(super) async fn visible_task(
    state: &ApiState,
    caller: &Principal,
    token: &str,
) -> Result<Task, ApiError> {
    let not_found = || ApiError::NotFound(format!("no task {token:?}"));
    let token: TaskToken = token.parse().map_err(|_| not_found())?;
    match state.reads.get(token).await? {
        Some(task) if caller.can_see(&task) => Ok(task),
        _ => Err(not_found()),
    }
}

/// The task as JSON, with `ETag`, `Cache-Control: no-cache`, and
/// `Retry-After` while it has not ended (as [`PollPace`](crate::tasks::PollPace) says).
pub(super) fn task_response(status: StatusCode, task: Task, state: &ApiState) -> HttpResponse {
    let retry_after = state.poll_pace.retry_after(&task, chrono::Utc::now());
    let body = render_owned(task);
    let mut response = HttpResponse::build(status);
    response
        .content_type("application/json")
        .insert_header((header::ETAG, etag(&body)))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if let Some(wait) = retry_after {
        response.insert_header((header::RETRY_AFTER, wait.as_secs()));
    }
    response.body(body)
}
