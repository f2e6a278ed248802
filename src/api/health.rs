//! Liveness and readiness, for load balancers and orchestrators.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{ApiError, ApiState, Problem};

/// `GET /healthz`: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "Up", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the process can reach its database, so it can answer for
/// tasks; 503 with `Retry-After` while it can't.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "Ready: the database answers", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state.store.ping().await.map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
