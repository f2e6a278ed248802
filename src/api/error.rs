//! [`ApiError`]: the one place that chooses an HTTP status for a failure and
//! writes it as RFC 9457 problem details (`application/problem+json`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::files::FilesError;
use crate::intake::EnqueueError;
use crate::store::StoreError;

/// Seconds a client is told to wait before trying again after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// Every way an API request can fail, each with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or a query string can't be read.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no token, or one that is unknown or revoked.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: the caller sees the task but may not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such task, or one the caller may not see; or no such route.
    #[error("{0}")]
    NotFound(String),
    /// 405: `allow` lists the methods the route takes.
    #[error("{detail}")]
    MethodNotAllowed { allow: &'static str, detail: String },
    /// 409: the task's state does not allow this.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over `http.max_body_bytes`.
    #[error("the request body is larger than the limit of {limit} bytes (http.max_body_bytes)")]
    PayloadTooLarge { limit: usize },
    /// 413: a batch create's body is over `http.max_batch_bytes`.
    #[error("the request body is larger than the limit of {limit} bytes (http.max_batch_bytes)")]
    BatchTooLarge { limit: usize },
    /// 413: a file over `files.max_bytes`.
    #[error("the file is larger than the limit of {limit} bytes (files.max_bytes)")]
    FileTooLarge { limit: u64 },
    /// 400: a file's declared digest did not match, or its bytes could not
    /// be read from the request.
    #[error("{0}")]
    BadFile(#[source] FilesError),
    /// 422: well-formed JSON that can't be accepted.
    #[error("{0}")]
    Unprocessable(String),
    /// A create request `intake` refused (never for a database failure):
    /// 400 for a malformed `Idempotency-Key`, 409 for one still in flight,
    /// 422 for the rest.
    #[error("{0}")]
    Refused(#[source] EnqueueError),
    /// 422: a batch some of whose tasks can't be created (each with its
    /// place in the batch); none was.
    #[error("{} of the batch's tasks can't be created, so none was; see errors", .0.len())]
    BatchRefused(Vec<(usize, ApiError)>),
    /// 503: the database is unreachable or too slow; try again later.
    #[error("the database is unavailable; try again shortly")]
    Unavailable(#[source] StoreError),
    /// 503: file storage failed; try again later.
    #[error("file storage is unavailable; try again shortly")]
    Storage(#[source] FilesError),
    /// 500: a bug. The details go to the log, not to the client.
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_transient() {
            ApiError::Unavailable(e)
        } else {
            ApiError::Internal(e)
        }
    }
}

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> ApiError {
        match e {
            FilesError::Store(e) => e.into(),
            FilesError::TooLarge { limit } => ApiError::FileTooLarge { limit },
            FilesError::DigestMismatch { .. } | FilesError::Source(_) => ApiError::BadFile(e),
            // Object storage down or refusing: like a database that is.
            FilesError::Object(_) | FilesError::Config(_) | FilesError::Removed => {
                ApiError::Storage(e)
            }
        }
    }
}

impl From<EnqueueError> for ApiError {
    fn from(e: EnqueueError) -> ApiError {
        match e {
            EnqueueError::Store(e) => e.into(),
            refused => ApiError::Refused(refused),
        }
    }
}

/// RFC 9457 problem details: every error errand answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:errand:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// A refused batch: the problem of each task that can't be created.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ItemProblem>,
}

/// The problem of one task of a refused batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemProblem {
    /// Its place in the batch, from 0.
    pub index: usize,
    pub status: u16,
    pub detail: String,
}

/// The problems every route behind a token can answer, for the OpenAPI
/// description.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses; ApiError makes them
pub enum CommonProblems {
    /// No token, or an unknown or revoked one
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// A bug (the details are in the log)
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// The database is unavailable, or a query ran past its time limit: try
    /// again after `Retry-After` seconds
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

impl ApiError {
    /// A short slug naming the problem type, used in its `type` URI.
    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::FileTooLarge { .. } | ApiError::BatchTooLarge { .. } => "payload-too-large",
            ApiError::BadFile(_) => "bad-request",
            ApiError::Storage(_) => "unavailable",
            ApiError::Unprocessable(_) | ApiError::BatchRefused(_) => "unprocessable",
            ApiError::Refused(EnqueueError::BadKey(_)) => "bad-request",
            ApiError::Refused(EnqueueError::KeyInFlight) => "conflict",
            ApiError::Refused(_) => "unprocessable",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        Problem {
            kind: format!("urn:errand:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.to_string(),
            errors: match self {
                ApiError::BatchRefused(items) => items
                    .iter()
                    .map(|(index, e)| ItemProblem {
                        index: *index,
                        status: e.status_code().as_u16(),
                        detail: e.to_string(),
                    })
                    .collect(),
                _ => Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::FileTooLarge { .. } | ApiError::BatchTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::BadFile(_) => StatusCode::BAD_REQUEST,
            ApiError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unprocessable(_) | ApiError::BatchRefused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Refused(EnqueueError::BadKey(_)) => StatusCode::BAD_REQUEST,
            ApiError::Refused(EnqueueError::KeyInFlight) => StatusCode::CONFLICT,
            ApiError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // Logged once, here, where the error is handled.
        match self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "request answered 503"),
            ApiError::Storage(e) => tracing::warn!(error = %e, "request answered 503"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        match self {
            ApiError::Unavailable(_) | ApiError::Storage(_) => {
                response.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECS));
            }
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        // Serialising a struct of strings and a number can't fail.
        response.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}
