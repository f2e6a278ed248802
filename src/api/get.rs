//! `GET /v1/tasks/{token}`: poll a task, with `ETag`/`304` and the
//! `?wait=` long poll.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::conditional::{etag, if_none_match, not_modified_if_unchanged, render, wait_for};
use super::error::CommonProblems;
use super::respond::{task_response, visible_task};
use super::{ApiError, ApiState, Caller, Problem};
use crate::tasks::TaskView;

/// `GET /v1/tasks/{token}`: the task, if the caller may see it (else 404,
/// exactly as for a task that does not exist). Strong `ETag`, so a poller
/// can send `If-None-Match` and get `304` while nothing changed.
#[utoipa::path(
    get, path = "/v1/tasks/{token}", tag = "tasks",
    params(("token" = String, Path, description = "The task's token"),
           ("If-None-Match" = Option<String>, Header, description = "The ETag of the copy you have"),
           PollParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = TaskView,
            headers(("ETag" = String), ("Cache-Control" = String), ("Retry-After" = u64, description = "Seconds until polling again is worth it, only while the task has not ended: `http.retry_after` (2) while it runs; the time until it is due if it is delayed or backing off; a quarter of the time it has waited so far if it is due or waiting for its dependencies; never more than `http.retry_after_max` (30)"))),
        (status = 304, description = "Unchanged since the ETag you sent"),
        (status = 400, description = "A bad `wait`", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 404, description = "No such task, or one you may not see", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_task(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    query: web::Query<PollParams>,
) -> Result<HttpResponse, ApiError> {
    let mut task = visible_task(&state, &caller, &path).await?;
    if let Some(wait) = query.wait_for(state.max_wait)? {
        // Long poll: until the task differs from the copy the client has
        // (If-None-Match), or from what it is now, or ends.
        let since = if_none_match(&req).unwrap_or_else(|| etag(&render(&task)));
        if !(task.is_done() || etag(&render(&task)) != since) {
            let until = tokio::time::Instant::now() + wait;
            task = wait_for(&state, task.token, until, |t| {
                t.is_done() || etag(&render(t)) != since
            })
            .await?;
        }
    }
    let response = task_response(StatusCode::OK, task, &state);
    Ok(not_modified_if_unchanged(&req, response))
}

/// `GET /v1/tasks/{token}?wait=S`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PollParams {
    /// Long poll: answer when the task changes (from your `If-None-Match`
    /// copy, or from what it is now) or ends, or after this many seconds
    /// (at most `http.max_wait`, 30 s), whichever comes first.
    #[param(minimum = 0)]
    wait: Option<f64>,
}

impl PollParams {
    fn wait_for(&self, max: Duration) -> Result<Option<Duration>, ApiError> {
        match self.wait {
            None => Ok(None),
            Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(
                s.min(max.as_secs_f64()),
            ))
            .filter(|d| !d.is_zero())),
            Some(_) => Err(ApiError::BadRequest(
                "wait: must be 0 or more seconds".into(),
            )),
        }
    }
}
