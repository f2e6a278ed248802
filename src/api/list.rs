//! `GET /v1/tasks`: the tasks a caller may see, filtered, newest first, a
//! page at a time (keyset pagination).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::error::CommonProblems;
use super::query::filter_and;
use super::{ApiError, ApiState, Caller, Problem};
use crate::store::TaskListing;
use crate::tasks::{Cursor, TaskFilter, TaskView};

/// `GET /v1/tasks` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Paging of `GET /v1/tasks`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Tasks per page: 1 to `http.max_page_size` (1000); default `http.page_size` (50).
    #[param(minimum = 1, maximum = 1000, value_type = Option<usize>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page; empty: the first page.
    cursor: Option<String>,
}

/// The keys of [`Paging`]; every other key of a listing's query string is
/// the filter's.
const PAGING_KEYS: [&str; 2] = ["limit", "cursor"];

/// A listing's query string: the filter, the page size and the cursor.
fn list_query(
    query: &str,
    state: &ApiState,
) -> Result<(TaskFilter, usize, Option<Cursor>), ApiError> {
    let (filter, paging): (TaskFilter, Paging) = filter_and(query, &PAGING_KEYS)?;
    let limit = match paging.limit {
        None => state.page_size,
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| (1..=state.max_page_size).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit: must be a number from 1 to {} (http.max_page_size), not {text:?}",
                    state.max_page_size
                ))
            })?,
    };
    let cursor = match paging.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse()
                .map_err(|e| ApiError::BadRequest(format!("cursor: {e}")))?,
        ),
    };
    Ok((filter, limit, cursor))
}

/// `GET /v1/tasks`: the tasks the caller may see (users their own, product
/// admins their product's, superusers all) that match the filters, newest
/// first, a page at a time (keyset pagination: stable while tasks are
/// added). The next page's address is in `next_cursor` and a `Link` header.
#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    params(TaskFilter, Paging),
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
        .task_list(&TaskListing {
            scope: &caller.scope(),
            filter: &filter,
            after: cursor.map(|c| c.0),
            limit: limit + 1,
            timeout: state.query_timeout,
        })
        .await?;
    let next = (tasks.len() > limit).then(|| {
        tasks.truncate(limit);
        Cursor(tasks[limit - 1].id)
    });
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-cache"));
    if let Some(next) = next {
        let mut pairs: Vec<(String, String)> =
            serde_html_form::from_str(req.query_string()).unwrap_or_default();
        pairs.retain(|(k, _)| k != "cursor");
        pairs.push(("cursor".into(), next.to_string()));
        let query = serde_html_form::to_string(&pairs).unwrap_or_default();
        response.insert_header((header::LINK, format!("</v1/tasks?{query}>; rel=\"next\"")));
    }
    Ok(response.json(TaskPage {
        tasks: tasks.into_iter().map(TaskView::from).collect(),
        next_cursor: next.map(|c| c.to_string()),
    }))
}
