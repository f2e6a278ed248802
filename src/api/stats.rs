//! `GET /v1/tasks/stats`: how many of the tasks a caller may see (and a
//! filter matches) are in each status, by kind and by queue; and, asked
//! with `interval`, how many ended in each interval of the recent past (the
//! dashboard's throughput chart).

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, DurationRound as _, Utc};
use serde::{Deserialize, Serialize};

use super::error::CommonProblems;
use super::query::filter_and;
use super::{ApiError, ApiState, Caller, Problem};
use crate::config::parse_duration;
use crate::store::{TaskCount, TaskCounting};
use crate::tasks::{Status, TaskFilter};

/// `GET /v1/tasks/stats` answers this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskStats {
    /// Tasks in each status (every status is present).
    pub by_status: BTreeMap<String, i64>,
    /// Per kind, tasks in each status (only counts above zero).
    pub by_kind: BTreeMap<String, BTreeMap<String, i64>>,
    /// Per queue, tasks in each status (only counts above zero).
    pub by_queue: BTreeMap<String, BTreeMap<String, i64>>,
    pub total: i64,
    /// With `interval` only: tasks that ended, per interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
}

/// How many tasks ended in each interval from `since` to now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Throughput {
    /// Each interval's length, in seconds.
    pub interval: u64,
    /// The first interval's start.
    pub since: DateTime<Utc>,
    /// Every interval, oldest first, the current one last.
    pub intervals: Vec<Interval>,
}

/// One interval of [`Throughput`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Interval {
    pub start: DateTime<Utc>,
    /// Tasks that ended in it, in each terminal status (every one present).
    pub ended: BTreeMap<String, i64>,
}

/// `GET /v1/tasks/stats`'s own keys; every other key is a filter, as for
/// `GET /v1/tasks`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Also count the tasks that ended, per interval of this length: `30s`,
    /// `1m`, `1h` (10 s to 1 day).
    interval: Option<String>,
    /// The first interval from this time on (RFC 3339; default: 60 intervals
    /// ago). At most 1,440 intervals.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<DateTime<Utc>>,
}

const STATS_KEYS: [&str; 2] = ["interval", "since"];
const INTERVAL_MIN: Duration = Duration::from_secs(10);
const INTERVAL_MAX: Duration = Duration::from_secs(86_400);
const MAX_INTERVALS: i64 = 1440;

/// `GET /v1/tasks/stats` (admins: their product; superusers: all): counts
/// by status, kind and queue of the tasks that match the filter (the keys
/// of `GET /v1/tasks`); with `interval`, also how many ended per interval.
#[utoipa::path(
    get, path = "/v1/tasks/stats", tag = "operators",
    params(TaskFilter, StatsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Counts", body = TaskStats),
        (status = 400, description = "A bad filter value, interval or since (named)", body = Problem, content_type = "application/problem+json"),
        CommonProblems,
        (status = 403, description = "Not an admin or superuser", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn task_stats(
    req: HttpRequest,
    Caller(caller): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::Forbidden(
            "task stats are for admins and superusers".into(),
        ));
    }
    let (filter, params): (TaskFilter, StatsParams) = filter_and(req.query_string(), &STATS_KEYS)?;
    let window = params.window(Utc::now())?;
    let scope = caller.scope();
    let counting = TaskCounting {
        scope: &scope,
        filter: &filter,
        timeout: state.query_timeout,
    };
    let mut stats = tally(state.store.task_stats(&counting).await?);
    if let Some((interval, since)) = window {
        let ended = TaskFilter {
            finished_after: Some(since),
            ..filter.clone()
        };
        let counting = TaskCounting {
            filter: &ended,
            ..counting
        };
        let secs = interval.num_seconds();
        let counts = state.store.task_throughput(&counting, secs).await?;
        stats.throughput = Some(throughput(interval, since, Utc::now(), counts));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(stats))
}

impl StatsParams {
    /// The intervals' length and the first one's start, if asked for.
    fn window(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<(chrono::TimeDelta, DateTime<Utc>)>, ApiError> {
        let Some(text) = &self.interval else {
            if self.since.is_some() {
                return Err(ApiError::BadRequest("since: needs interval".into()));
            }
            return Ok(None);
        };
        let bad = |what: String| ApiError::BadRequest(format!("interval: {what}"));
        let length = parse_duration(text).map_err(bad)?;
        if !(INTERVAL_MIN..=INTERVAL_MAX).contains(&length) || length.subsec_nanos() != 0 {
            return Err(bad(format!(
                "{text:?} is not whole seconds from 10 s to 1 day"
            )));
        }
        let interval = chrono::TimeDelta::from_std(length).map_err(|e| bad(e.to_string()))?;
        let since = self.since.unwrap_or(now - interval * 59);
        let since = since
            .duration_trunc(interval)
            .map_err(|e| bad(e.to_string()))?;
        if since > now || (now - since).num_seconds() / interval.num_seconds() >= MAX_INTERVALS {
            return Err(ApiError::BadRequest(format!(
                "since: must be in the past, at most {MAX_INTERVALS} intervals ago"
            )));
        }
        Ok(Some((interval, since)))
    }
}

/// The counts, by status, kind and queue.
fn tally(counts: Vec<TaskCount>) -> TaskStats {
    let mut stats = TaskStats {
        by_status: Status::ALL.iter().map(|s| (s.to_string(), 0)).collect(),
        by_kind: BTreeMap::new(),
        by_queue: BTreeMap::new(),
        total: 0,
        throughput: None,
    };
    for c in counts {
        let status = c.status.to_string();
        *stats.by_status.entry(status.clone()).or_default() += c.n;
        for (by, key) in [(&mut stats.by_kind, c.kind), (&mut stats.by_queue, c.queue)] {
            *by.entry(key)
                .or_default()
                .entry(status.clone())
                .or_default() += c.n;
        }
        stats.total += c.n;
    }
    stats
}

/// Every interval from `since` to `now`, with what ended in it.
fn throughput(
    interval: chrono::TimeDelta,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    counts: Vec<crate::store::EndedCount>,
) -> Throughput {
    let ended = || {
        Status::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| (s.to_string(), 0))
            .collect()
    };
    let mut intervals = Vec::new();
    let mut start = since;
    while start <= now {
        intervals.push(Interval {
            start,
            ended: ended(),
        });
        start += interval;
    }
    for c in counts {
        let i = (c.start - since).num_seconds() / interval.num_seconds();
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| intervals.get_mut(i)) {
            *slot.ended.entry(c.status.to_string()).or_default() += c.n;
        }
    }
    Throughput {
        interval: interval.num_seconds().unsigned_abs(),
        since,
        intervals,
    }
}
