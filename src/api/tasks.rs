//! Task handlers: create, get (poll), cancel; and [`TaskView`], the task's
//! JSON as clients see it.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::CommonProblems;
use super::{ApiError, ApiState, Caller, Problem, read_json};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::store::StoreEvent;
use crate::tasks::{
    CancelAction, Cursor, Scope, Status, Task, TaskDraft, TaskFilter, TaskToken, TaskView,
};

fn task_path(token: TaskToken) -> String {
    TaskView::path(token)
}

/// `POST /v1/tasks`: checks everything, queues the task, and answers
/// `202 Accepted` at once with its `Location`. Nothing is written unless the
/// whole request is good.
#[utoipa::path(
    post, path = "/v1/tasks", tag = "tasks",
    request_body = TaskDraft,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Names this request (1 to 255 visible ASCII characters), per token name, for `idempotency.ttl` (24 h): sending it again with the same body answers the same task, with `Idempotent-Replayed: true`")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted: the task is queued; poll its `Location`", body = TaskView,
            headers(("Location" = String), ("Retry-After" = u64, description = "Seconds until the next poll is worth it"), ("ETag" = String))),
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
    let draft: TaskDraft = read_json(&req, payload, state.max_body_bytes).await?;
    let key =
        match req.headers().get("idempotency-key") {
            Some(value) => Some(value.to_str().map_err(|_| {
                ApiError::BadRequest("Idempotency-Key: must be visible ASCII".into())
            })?),
            None => None,
        };
    let created = state.enqueuer.create(draft, &caller, key).await?;
    let waited = prefer_wait(&req, state.max_wait);
    let mut response = created_response(created.task, &state, waited).await?;
    if created.replayed {
        response.headers_mut().insert(
            header::HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// The answer to a create: `202 Accepted` with the task's `Location`; or,
/// when the client asked to wait (`Prefer: wait=N`) and the task ended in
/// that time, `200` with the finished task and `Preference-Applied`.
async fn created_response(
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

/// How long `Prefer: wait=N` (RFC 7240) asks to wait, capped at `max`.
/// Other preferences, and ones that can't be read, are ignored, as the RFC
/// says.
fn prefer_wait(req: &HttpRequest, max: Duration) -> Option<Duration> {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pref| pref.trim().strip_prefix("wait="))
        .find_map(|n| n.trim().parse::<u64>().ok())
        .map(|n| Duration::from_secs(n).min(max))
        .filter(|d| !d.is_zero())
}

/// How often a waiting request looks at its task again even without a
/// notification (progress changes, and other processes' tasks on SQLite).
const WAIT_RECHECK: Duration = Duration::from_secs(1);

/// Reads the task until `done` says so or `until` comes, woken early when
/// the store says the task ended.
async fn wait_for(
    state: &ApiState,
    token: TaskToken,
    until: tokio::time::Instant,
    done: impl Fn(&Task) -> bool,
) -> Result<Task, ApiError> {
    // Subscribed before the first read, so no ending is missed in between.
    let mut events = state.store.subscribe();
    loop {
        let task = state
            .store
            .task_get(token)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no task {token}")))?;
        let now = tokio::time::Instant::now();
        if done(&task) || now >= until {
            return Ok(task);
        }
        let recheck = tokio::time::sleep_until(until.min(now + WAIT_RECHECK));
        tokio::pin!(recheck);
        loop {
            tokio::select! {
                _ = &mut recheck => break,
                event = events.recv() => match event {
                    Ok(StoreEvent::Ended { token: ended }) if ended == token => break,
                    Ok(StoreEvent::Resync) | Err(RecvError::Lagged(_)) => break,
                    Ok(_) => {}
                    Err(RecvError::Closed) => {
                        (&mut recheck).await;
                        break;
                    }
                },
            }
        }
    }
}

/// `202 Accepted` for a task, with its `Location`.
fn accepted(task: Task, state: &ApiState) -> HttpResponse {
    let location = task_path(task.token);
    let mut response = task_response(StatusCode::ACCEPTED, task, state);
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("a task path is ASCII"),
    );
    response
}

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
            headers(("ETag" = String), ("Cache-Control" = String), ("Retry-After" = u64, description = "Only while the task has not ended"))),
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

/// `POST /v1/tasks/{token}/cancel`: a task that has not started ends
/// `cancelled` at once (200); a running one is asked to stop (202) and ends
/// `cancelled` when its worker notices, within one heartbeat; cancelling a
/// cancelled task again is harmless (200); any other ended task is 409.
#[utoipa::path(
    post, path = "/v1/tasks/{token}/cancel", tag = "tasks",
    params(("token" = String, Path, description = "The task's token")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled (it had not started, or was cancelled already)", body = TaskView),
        (status = 202, description = "Running: its worker is asked to stop it", body = TaskView),
        CommonProblems,
        (status = 403, description = "You see the task but may not cancel it (`auth.cancel_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It has already ended otherwise", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_task(
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // A compare-and-set against the status we saw: if the task moves on in
    // between (a worker claims it, say), look again.
    for _ in 0..5 {
        let task = visible_task(&state, &caller, &path).await?;
        if !caller.can_cancel(&task, state.cancel_role) {
            return Err(ApiError::Forbidden(
                "you may not cancel this task (see auth.cancel_role)".into(),
            ));
        }
        let now = Utc::now();
        let (changed, status) = match task.status.cancel_action() {
            CancelAction::CancelNow => (
                state
                    .store
                    .task_cancel_unstarted(task.id, task.status, now)
                    .await?,
                StatusCode::OK,
            ),
            CancelAction::RequestStop => (
                state
                    .store
                    .task_cancel_request(task.id, task.attempt, now)
                    .await?,
                StatusCode::ACCEPTED,
            ),
            CancelAction::AlreadyCancelled => (Some(task), StatusCode::OK),
            CancelAction::AlreadyFinished => {
                return Err(ApiError::Conflict(format!(
                    "the task has already ended ({}); it can't be cancelled",
                    task.status
                )));
            }
        };
        if let Some(task) = changed {
            tracing::info!(task.token = %task.token, by = %caller.name, "cancel requested");
            return Ok(task_response(status, task, &state));
        }
    }
    Err(ApiError::Conflict(
        "the task kept changing while it was being cancelled; try again".into(),
    ))
}

/// The task named in the path, if the caller may see it. A malformed token,
/// an unknown task and someone else's task all answer the same 404.
async fn visible_task(
    state: &ApiState,
    caller: &crate::tasks::Principal,
    token: &str,
) -> Result<Task, ApiError> {
    let not_found = || ApiError::NotFound(format!("no task {token:?}"));
    let token: TaskToken = token.parse().map_err(|_| not_found())?;
    match state.store.task_get(token).await? {
        Some(task) if caller.can_see(&task) => Ok(task),
        _ => Err(not_found()),
    }
}

/// The task as JSON, with `ETag`, `Cache-Control: no-cache`, and
/// `Retry-After` while it has not ended.
fn task_response(status: StatusCode, task: Task, state: &ApiState) -> HttpResponse {
    let done = task.is_done();
    let body = render(&task);
    let mut response = HttpResponse::build(status);
    response
        .content_type("application/json")
        .insert_header((header::ETAG, etag(&body)))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if !done {
        response.insert_header((header::RETRY_AFTER, state.retry_after_secs));
    }
    response.body(body)
}

/// The task's JSON.
fn render(task: &Task) -> Vec<u8> {
    // Serialising plain data can't fail.
    serde_json::to_vec(&TaskView::from(task.clone())).unwrap_or_default()
}

/// A strong ETag of a rendered task: any change to what the client sees
/// changes it.
fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    format!("\"{:032x}\"", u128::from_be_bytes(first))
}

/// The first ETag of `If-None-Match`, if any.
fn if_none_match(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::IF_NONE_MATCH)?
        .to_str()
        .ok()?
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/").to_string())
        .find(|tag| tag.starts_with('"'))
}

/// Turns a 200 into a bodiless 304 when the client already has this version.
fn not_modified_if_unchanged(req: &HttpRequest, response: HttpResponse) -> HttpResponse {
    let Some(etag) = response.headers().get(header::ETAG).cloned() else {
        return response;
    };
    let matches = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag.as_bytes() == etag.as_bytes());
    if !matches {
        return response;
    }
    let mut not_modified = HttpResponse::NotModified();
    for name in [header::ETAG, header::CACHE_CONTROL, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            not_modified.insert_header((name, value.clone()));
        }
    }
    not_modified.finish()
}

/// `GET /v1/tasks` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// The list fields of a filter, which a query string may repeat.
const LIST_FIELDS: [&str; 5] = ["status", "kind", "queue", "owner", "product"];

/// A listing's query string: the filter, the page size and the cursor.
fn list_query(
    query: &str,
    state: &ApiState,
) -> Result<(TaskFilter, usize, Option<Cursor>), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    let mut fields = serde_json::Map::new();
    let (mut limit, mut cursor) = (state.page_size, None);
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=state.max_page_size).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit: must be a number from 1 to {} (http.max_page_size), not {value:?}",
                            state.max_page_size
                        ))
                    })?;
            }
            // An empty cursor is the first page.
            "cursor" if value.is_empty() => {}
            "cursor" => {
                cursor = Some(
                    value
                        .parse()
                        .map_err(|e| ApiError::BadRequest(format!("cursor: {e}")))?,
                );
            }
            list if LIST_FIELDS.contains(&list) => {
                let entry = fields
                    .entry(key)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(values) = entry {
                    values.push(Value::String(value));
                }
            }
            _ => {
                let value = match (key.as_str(), value.as_str()) {
                    ("cancel_requested", "true") => Value::Bool(true),
                    ("cancel_requested", "false") => Value::Bool(false),
                    _ => Value::String(value),
                };
                if fields.insert(key.clone(), value).is_some() {
                    return Err(ApiError::BadRequest(format!("{key}: given more than once")));
                }
            }
        }
    }
    let filter = serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
        match e.path().to_string().as_str() {
            "." => ApiError::BadRequest(format!("invalid filter: {}", e.into_inner())),
            path => ApiError::BadRequest(format!("{path}: {}", e.into_inner())),
        }
    })?;
    Ok((filter, limit, cursor))
}

/// `GET /v1/tasks`: the tasks the caller may see (users their own, product
/// admins their product's, superusers all) that match the filters, newest
/// first, a page at a time (keyset pagination: stable while tasks are
/// added). The next page's address is in `next_cursor` and a `Link` header.
#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    params(TaskFilter, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tasks, newest first", body = TaskPage,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` while there is a next page"))),
        (status = 400, description = "A bad filter value, limit or cursor (named)", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
    )
)]
pub async fn list_tasks(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (filter, limit, cursor) = list_query(req.query_string(), &state)?;
    // One more than asked tells whether there is a next page.
    let mut tasks = state
        .store
        .task_list(
            &caller.scope(),
            &filter,
            cursor.map(|c| c.0),
            limit + 1,
            state.query_timeout,
        )
        .await?;
    let next = (tasks.len() > limit).then(|| {
        tasks.truncate(limit);
        Cursor(tasks[limit - 1].id)
    });
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-cache"));
    if let Some(next) = next {
        let mut pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
        pairs.retain(|(k, _)| k != "cursor");
        pairs.push(("cursor".into(), next.to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        response.insert_header((header::LINK, format!("</v1/tasks?{query}>; rel=\"next\"")));
    }
    Ok(response.json(TaskPage {
        tasks: tasks.into_iter().map(TaskView::from).collect(),
        next_cursor: next.map(|c| c.to_string()),
    }))
}

/// Paging of `GET /v1/tasks`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; `list_query` reads them
pub struct PageParams {
    /// Tasks per page: 1 to `http.max_page_size` (1000); default `http.page_size` (50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

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

/// The body of `POST /v1/tasks/cancel`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelMatching {
    #[serde(flatten)]
    pub filter: TaskFilter,
    /// Required to cancel with an empty filter: every task.
    #[serde(default)]
    pub all: bool,
}

/// `POST /v1/tasks/cancel` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelledCount {
    /// Tasks that had not started and are now `cancelled`.
    pub cancelled: u64,
    /// Running tasks whose workers were asked to stop them.
    pub cancel_requested: u64,
}

/// `POST /v1/tasks/cancel` (superusers): cancels every task matching the
/// filter in the body (the fields of `GET /v1/tasks`). An empty filter is
/// refused unless `"all": true` says that every task is meant.
#[utoipa::path(
    post, path = "/v1/tasks/cancel", tag = "operators",
    request_body = CancelMatching,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were cancelled, and how many asked to stop", body = CancelledCount),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 403, description = "Not a superuser", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `http.max_body_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad filter value (named), or an empty filter without `all: true`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_tasks(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_superuser() {
        return Err(ApiError::Forbidden(
            "only superusers may cancel by filter".into(),
        ));
    }
    let body: CancelMatching = read_json(&req, payload, state.max_body_bytes).await?;
    if body.filter.is_empty() && !body.all {
        return Err(ApiError::Unprocessable(
            "the filter is empty, which would cancel every task; send \"all\": true if that is meant"
                .into(),
        ));
    }
    let count = state
        .store
        .task_cancel_matching(&Scope::everything(), &body.filter, Utc::now())
        .await?;
    tracing::info!(
        cancelled = count.cancelled,
        asked_to_stop = count.asked_to_stop,
        by = %caller.name,
        "cancelled by filter"
    );
    Ok(HttpResponse::Ok().json(CancelledCount {
        cancelled: count.cancelled,
        cancel_requested: count.asked_to_stop,
    }))
}
