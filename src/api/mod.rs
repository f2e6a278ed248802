//! The HTTP API (actix-web only): the route table ([`routes`]), the
//! authentication extractor, request and response types, and [`ApiError`],
//! the single mapping from failures to HTTP statuses.
//!
//! Uses `store` for data, `tasks` for every rule (who sees what, what a
//! cancel does, what a valid task is) and `kinds` to check kinds and
//! payloads. Holds no state of its own beyond a short token cache, so any
//! number of API processes can stand behind a load balancer.

mod auth;
mod error;
mod health;
mod tasks;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

pub use auth::{Caller, TokenCache};
pub use error::{ApiError, Problem};
pub use tasks::TaskView;

use crate::config::Settings;
use crate::kinds::Registry;
use crate::store::Store;
use crate::tasks::{CancelRole, UnknownRole};

/// What every handler shares. Cheap to clone.
pub struct ApiState {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub tokens: TokenCache,
    pub cancel_role: CancelRole,
    pub max_body_bytes: usize,
    /// What `Retry-After` says while a task has not ended, in seconds.
    pub retry_after_secs: u64,
}

impl ApiState {
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        settings: &Settings,
    ) -> Result<ApiState, UnknownRole> {
        Ok(ApiState {
            store,
            registry,
            tokens: TokenCache::new(settings.auth.cache_ttl),
            cancel_role: settings.auth.cancel_role.parse()?,
            max_body_bytes: settings.http.max_body_bytes,
            retry_after_secs: settings.http.retry_after.as_secs().max(1),
        })
    }
}

/// The route table: every route errand answers, in one place.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default().error_handler(|e, _| {
            ApiError::BadRequest(format!("invalid query string: {e}")).into()
        }),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::NotFound(format!("no such resource: {e}")).into()),
    )
    .service(
        web::resource("/v1/tasks")
            .route(web::post().to(tasks::create_task))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/tasks/{token}")
            .route(web::get().to(tasks::get_task))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/tasks/{token}/cancel")
            .route(web::post().to(tasks::cancel_task))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/healthz")
            .route(web::get().to(health::healthz))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(health::readyz))
            .default_service(web::to(method_not_allowed)),
    )
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.path()
    )))
}

/// Reads a JSON request body of at most `limit` bytes: 413 past the limit
/// (checked against `Content-Length` before reading, and while reading),
/// 400 if it is not JSON, 422 if it is JSON of the wrong shape.
async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the request body is empty; send JSON".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::Unprocessable(
            "the request body must be a JSON object".into(),
        ));
    }
    let value = serde_path_to_error::deserialize(value).map_err(|e| {
        // Name the field at fault ("priority: invalid type…") when there is one.
        match e.path().to_string().as_str() {
            "." => ApiError::Unprocessable(e.into_inner().to_string()),
            path => ApiError::Unprocessable(format!("{path}: {}", e.into_inner())),
        }
    })?;
    Ok(value)
}
