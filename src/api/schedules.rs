//! Schedules, for superusers and (for their product's) product admins:
//! `POST /v1/schedules`, `GET /v1/schedules`, `GET`/`PATCH`/`DELETE
//! /v1/schedules/{name}`, `POST /v1/schedules/{name}/pause` and
//! `/resume`. Those the configuration declares can only be paused and
//! resumed here: the configuration is their source of truth.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::body::{json_into, merge_patch, read_json_value};
use super::error::CommonProblems;
use super::{ApiError, ApiState, Caller, Problem};
use crate::intake::EnqueueError;
use crate::tasks::{
    Principal, ScheduleDraft, ScheduleRecord, ScheduleSource, ScheduleView, Task,
    validate_schedule_name,
};

/// `GET /v1/schedules` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

/// `POST /v1/schedules` (superusers; product admins, for their product):
/// a schedule whose tasks are the caller's. Its fields are checked, and its
/// task as a create's would be (the kind, the payload, the queue,
/// attempts, timeout): 422 naming the field. It fires from its first tick
/// after now.
#[utoipa::path(
    post, path = "/v1/schedules", tag = "schedules",
    request_body = ScheduleDraft,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Made", body = ScheduleView, headers(("Location" = String))),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 403, description = "Not a superuser or product admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A schedule of this name exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field that can't be accepted (named)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_schedule(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    may_schedule(&caller)?;
    let body = read_json_value(&req, payload, state.max_body_bytes).await?;
    let draft: ScheduleDraft = json_into(body)?;
    let now = Utc::now();
    let schedule = draft
        .validate(&caller, ScheduleSource::Api, now)
        .map_err(EnqueueError::from)?;
    check_task(&state, &schedule, now)?;
    let record = ScheduleRecord::new(schedule, now);
    if !state.store.schedule_insert(&record).await? {
        return Err(ApiError::Conflict(format!(
            "a schedule named {:?} exists",
            record.schedule.name
        )));
    }
    tracing::info!(schedule = record.schedule.name, by = %caller.name, "schedule made");
    let location = ScheduleView::path(&record.schedule.name);
    let view = ScheduleView::new(record, None, now);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(view))
}

/// `GET /v1/schedules` (superusers: all; product admins: their
/// product's): each with its next ticks, its latest task, and whether it
/// is paused.
#[utoipa::path(
    get, path = "/v1/schedules", tag = "schedules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The schedules, by name", body = ScheduleList),
        CommonProblems,
        (status = 403, description = "Not a superuser or product admin", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_schedules(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    may_schedule(&caller)?;
    let records: Vec<ScheduleRecord> = (state.store.schedule_list().await?.into_iter())
        .filter(|r| caller.can_manage(&r.schedule))
        .collect();
    let names: Vec<String> = records.iter().map(|r| r.schedule.name.clone()).collect();
    let mut last: HashMap<String, Task> = (state.store.schedule_last_tasks(&names).await?)
        .into_iter()
        .filter_map(|t| Some((t.schedule.clone()?, t)))
        .collect();
    let now = Utc::now();
    let schedules = records
        .into_iter()
        .map(|r| {
            let last = last.remove(&r.schedule.name);
            ScheduleView::new(r, last, now)
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(ScheduleList { schedules }))
}

/// `GET /v1/schedules/{name}`: one schedule the caller may see (else 404).
#[utoipa::path(
    get, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        CommonProblems,
        (status = 403, description = "Not a superuser or product admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule, or one you may not see", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_schedule(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&state, &caller, &path).await?;
    answer(&state, StatusCode::OK, record).await
}

/// `PATCH /v1/schedules/{name}`: changes a schedule made over the API, as
/// a JSON merge patch (RFC 7396) of its fields (`null` takes a field back
/// to its default); checked as a new one is. A new expression or zone
/// fires from its first tick after now. Its name can't change, nor a
/// schedule of the configuration (409).
#[utoipa::path(
    patch, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    request_body(content = Object, description = "Fields of `POST /v1/schedules` to change", content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = ScheduleView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 403, description = "Not a superuser or product admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The configuration declares it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field that can't be accepted (named)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_schedule(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&state, &caller, &path).await?;
    from_api(&record, "changed")?;
    let patch = read_json_value(&req, payload, state.max_body_bytes).await?;
    if patch
        .get("name")
        .is_some_and(|n| n.as_str() != Some(&record.schedule.name))
    {
        return Err(ApiError::Unprocessable(
            "name: a schedule's name can't change; make a new one".into(),
        ));
    }
    let mut merged = serde_json::to_value(record.schedule.as_draft()).unwrap_or_default();
    merge_patch(&mut merged, patch);
    let draft: ScheduleDraft = json_into(merged)?;
    let now = Utc::now();
    let schedule = draft
        .validate(&record.schedule.creator(), ScheduleSource::Api, now)
        .map_err(EnqueueError::from)?;
    check_task(&state, &schedule, now)?;
    let moved = schedule.cron != record.schedule.cron;
    let changed = ScheduleRecord {
        next_tick: match moved {
            true => schedule.first_tick_after(now),
            false => record.next_tick,
        },
        schedule,
        updated_at: now,
        ..record
    };
    let Some(updated) = state.store.schedule_update(&changed).await? else {
        // Deleted meanwhile, or taken over by the configuration.
        let now = visible(&state, &caller, &path).await?;
        from_api(&now, "changed")?;
        return Err(ApiError::Conflict(
            "the schedule changed while this request ran; try again".into(),
        ));
    };
    tracing::info!(schedule = updated.schedule.name, by = %caller.name, "schedule changed");
    answer(&state, StatusCode::OK, updated).await
}

/// `DELETE /v1/schedules/{name}`: deletes a schedule made over the API (its
/// tasks stay); one of the configuration is 409.
#[utoipa::path(
    delete, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        CommonProblems,
        (status = 403, description = "Not a superuser or product admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The configuration declares it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_schedule(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&state, &caller, &path).await?;
    from_api(&record, "deleted")?;
    if !state
        .store
        .schedule_delete(&record.schedule.name, ScheduleSource::Api)
        .await?
    {
        return Err(ApiError::NotFound(format!("no schedule {:?}", *path)));
    }
    tracing::info!(schedule = record.schedule.name, by = %caller.name, "schedule deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/schedules/{name}/pause`: its ticks make no task until it is
/// resumed. Pausing a paused schedule changes nothing.
#[utoipa::path(
    post, path = "/v1/schedules/{name}/pause", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Paused (or paused already)", body = ScheduleView),
        CommonProblems,
        (status = 403, description = "Not a superuser or product admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule, or one you may not see", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn pause_schedule(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&state, &caller, &path).await?;
    let paused = state
        .store
        .schedule_pause(&record.schedule.name, &caller.name, Utc::now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no schedule {:?}", *path)))?;
    tracing::info!(schedule = paused.schedule.name, by = %caller.name, "schedule paused");
    answer(&state, StatusCode::OK, paused).await
}

/// `POST /v1/schedules/{name}/resume`: it fires again from its first tick
/// after now (the ticks it was paused over make no task). Resuming a
/// schedule that is not paused changes nothing.
#[utoipa::path(
    post, path = "/v1/schedules/{name}/resume", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Resumed (or not paused)", body = ScheduleView),
        CommonProblems,
        (status = 403, description = "Not a superuser or product admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule, or one you may not see", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resume_schedule(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&state, &caller, &path).await?;
    let next = record.schedule.first_tick_after(Utc::now());
    let resumed = state
        .store
        .schedule_resume(&record.schedule.name, next)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no schedule {:?}", *path)))?;
    tracing::info!(schedule = resumed.schedule.name, by = %caller.name, "schedule resumed");
    answer(&state, StatusCode::OK, resumed).await
}

/// Schedules are for superusers and product admins.
fn may_schedule(caller: &Principal) -> Result<(), ApiError> {
    match caller.is_operator() {
        true => Ok(()),
        false => Err(ApiError::Forbidden(
            "schedules are for superusers and product admins".into(),
        )),
    }
}

/// The schedule named in the path, if the caller may see it: a malformed
/// name, an unknown schedule and another product's all answer 404.
async fn visible(
    state: &ApiState,
    caller: &Principal,
    name: &str,
) -> Result<ScheduleRecord, ApiError> {
    may_schedule(caller)?;
    let not_found = || ApiError::NotFound(format!("no schedule {name:?}"));
    validate_schedule_name(name).map_err(|_| not_found())?;
    match state.store.schedule_get(name).await? {
        Some(record) if caller.can_manage(&record.schedule) => Ok(record),
        _ => Err(not_found()),
    }
}

/// Only schedules made over the API change here.
fn from_api(record: &ScheduleRecord, act: &str) -> Result<(), ApiError> {
    match record.schedule.source {
        ScheduleSource::Api => Ok(()),
        ScheduleSource::Config => Err(ApiError::Conflict(format!(
            "schedule {:?} is declared in the configuration ([schedules.{}]): it can only be {act} there (here: paused and resumed)",
            record.schedule.name, record.schedule.name
        ))),
    }
}

/// Checks the task a schedule makes, as a create of it would be checked.
fn check_task(
    state: &ApiState,
    schedule: &crate::tasks::Schedule,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let registry = state.enqueuer.registry();
    registry
        .schedule_task(schedule, now, now)
        .map(|_| ())
        .map_err(|e| ApiError::from(EnqueueError::from(e)))
}

/// One schedule's view, with its latest task, as an answer.
async fn answer(
    state: &ApiState,
    status: StatusCode,
    record: ScheduleRecord,
) -> Result<HttpResponse, ApiError> {
    let last = (state
        .store
        .schedule_last_tasks(std::slice::from_ref(&record.schedule.name))
        .await?)
        .into_iter()
        .next();
    Ok(HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(ScheduleView::new(record, last, Utc::now())))
}
