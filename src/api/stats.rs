//! `GET /v1/tasks/stats`: counts by status, and by kind and status.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::error::CommonProblems;
use super::{ApiError, ApiState, Caller, Problem};
use crate::tasks::Status;

/// `GET /v1/tasks/stats` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskStats {
    /// Tasks in each status (every status is present).
    pub by_status: BTreeMap<String, i64>,
    /// Per kind, tasks in each status (only counts above zero).
    pub by_kind: BTreeMap<String, BTreeMap<String, i64>>,
    pub total: i64,
}

/// `GET /v1/tasks/stats` (admins: their product; superusers: all): counts
/// by status, and by kind and status.
#[utoipa::path(
    get, path = "/v1/tasks/stats", tag = "operators",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Counts", body = TaskStats),
        CommonProblems,
        (status = 403, description = "Not an admin or superuser", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn task_stats(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::Forbidden(
            "task stats are for admins and superusers".into(),
        ));
    }
    let counts = state
        .store
        .task_stats(&caller.scope(), state.query_timeout)
        .await?;
    let mut stats = TaskStats {
        by_status: Status::ALL.iter().map(|s| (s.to_string(), 0)).collect(),
        by_kind: BTreeMap::new(),
        total: 0,
    };
    for (kind, status, n) in counts {
        *stats.by_status.entry(status.to_string()).or_default() += n;
        *stats
            .by_kind
            .entry(kind)
            .or_default()
            .entry(status.to_string())
            .or_default() += n;
        stats.total += n;
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(stats))
}
