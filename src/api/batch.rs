//! `POST /v1/tasks/batch`: up to `http.max_batch` tasks in one request,
//! created in one statement, all or none (through `intake`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::body::read_json;
use super::create::idempotency_key_header;
use super::error::CommonProblems;
use super::{ApiError, ApiState, Caller, Problem};
use crate::intake::BatchError;
use crate::tasks::TaskDraft;

/// A batch of tasks to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Each as `POST /v1/tasks` takes one: 1 to `http.max_batch` (1,000).
    pub tasks: Vec<TaskDraft>,
}

/// The created tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchCreated {
    /// Each task's token, in the order of the request.
    pub tokens: Vec<String>,
}

impl From<BatchError> for ApiError {
    fn from(e: BatchError) -> ApiError {
        match e {
            BatchError::Items(items) => {
                ApiError::BatchRefused(items.into_iter().map(|(i, e)| (i, e.into())).collect())
            }
            BatchError::Whole(e) => e.into(),
        }
    }
}

/// `POST /v1/tasks/batch`: checks every task, then creates them all in one
/// statement and answers `202` with their tokens in order; or refuses the
/// whole batch with each bad task's place and problem, and writes nothing.
#[utoipa::path(
    post, path = "/v1/tasks/batch", tag = "tasks",
    request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Names this batch, as for `POST /v1/tasks`: sending it again with the same body answers the same tokens, with `Idempotent-Replayed: true`")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted: every task is queued (or waiting for its dependencies)", body = BatchCreated),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 409, description = "A request with this Idempotency-Key is still in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `http.max_batch_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No tasks, more than `http.max_batch`, or tasks that can't be created: `errors` names each by its `index`; none was created", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_batch(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let batch: BatchRequest = read_json(&req, payload, state.max_batch_bytes)
        .await
        .map_err(|e| match e {
            ApiError::PayloadTooLarge { limit } => ApiError::BatchTooLarge { limit },
            e => e,
        })?;
    if batch.tasks.is_empty() || batch.tasks.len() > state.max_batch {
        return Err(ApiError::Unprocessable(format!(
            "tasks: a batch holds 1 to {} tasks (http.max_batch), not {}",
            state.max_batch,
            batch.tasks.len()
        )));
    }
    let key = idempotency_key_header(&req)?;
    let created = state
        .enqueuer
        .create_batch(batch.tasks, &caller, key)
        .await?;
    let tokens = created.tasks.iter().map(|t| t.token.to_string()).collect();
    let mut response = HttpResponse::build(StatusCode::ACCEPTED);
    if created.replayed {
        response.insert_header((
            header::HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        ));
    }
    Ok(response.json(BatchCreated { tokens }))
}
