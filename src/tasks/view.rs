//! What clients see: a task's JSON, of the API and of callbacks (the
//! "Fixed interface" of the design): its record, and what is derived from
//! it; and a schedule's, with its next ticks and its latest task.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    ScheduleDraft, ScheduleRecord, ScheduleSource, Status, Task, TaskFilesView, TaskRecord,
    TaskToken,
};

/// A task's JSON (the "Fixed interface" of the design).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    #[serde(flatten)]
    pub record: TaskRecord,
    /// Its input and output files, each with its download link.
    pub files: TaskFilesView,
    /// Whether the task has ended (its status is terminal).
    pub done: bool,
    /// Whether a cancel was requested while it ran.
    pub cancel_requested: bool,
    /// Where to find it.
    pub links: Links,
}

/// Where to find a task and what to do with it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
    /// The task itself: `/v1/tasks/{token}`.
    #[serde(rename = "self")]
    pub self_: String,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> TaskView {
        TaskView {
            links: Links {
                self_: TaskView::path(t.token),
            },
            files: TaskFilesView::of(&t.files, t.token),
            done: t.is_done(),
            cancel_requested: t.cancel_requested_at.is_some(),
            record: t.record,
        }
    }
}

impl TaskView {
    /// Where a task lives in the API.
    pub fn path(token: TaskToken) -> String {
        format!("/v1/tasks/{token}")
    }
}

/// A schedule, as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub definition: ScheduleDraft,
    /// Whose its tasks are (the token that made it, or the configuration's
    /// `owner`), and their product.
    pub owner: String,
    pub product: Option<String>,
    /// `config` (only pause and resume here) or `api`.
    pub source: ScheduleSource,
    /// While paused, its ticks make no task.
    pub paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    /// The name of the token that paused it.
    pub paused_by: Option<String>,
    /// Its next ticks (those it would fire from now if it is paused).
    pub next_ticks: Vec<DateTime<Utc>>,
    /// The task of its latest tick that made one, if it still exists.
    pub last_task: Option<LastTask>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub links: ScheduleLinks,
}

/// A schedule's latest task, in short.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LastTask {
    #[schema(value_type = String)]
    pub token: TaskToken,
    pub status: Status,
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The task: `/v1/tasks/{token}`.
    #[serde(rename = "self")]
    pub self_: String,
}

/// Where to find a schedule and its tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleLinks {
    /// `/v1/schedules/{name}`.
    #[serde(rename = "self")]
    pub self_: String,
    /// Its tasks: `/v1/tasks?schedule={name}`.
    pub tasks: String,
}

impl ScheduleView {
    /// How many of a schedule's next ticks its view shows.
    pub const NEXT_TICKS: usize = 5;

    /// `record` as the API shows it at `now`, with its latest task.
    pub fn new(record: ScheduleRecord, last: Option<Task>, now: DateTime<Utc>) -> ScheduleView {
        let s = &record.schedule;
        let next_ticks = match &record.paused {
            None => std::iter::once(record.next_tick)
                .chain(s.cron.upcoming(record.next_tick, Self::NEXT_TICKS - 1))
                .collect(),
            Some(_) => s.cron.upcoming(now, Self::NEXT_TICKS),
        };
        ScheduleView {
            definition: s.as_draft(),
            owner: s.owner.clone(),
            product: s.product.clone(),
            source: s.source,
            paused: record.paused.is_some(),
            paused_at: record.paused.as_ref().map(|p| p.at),
            paused_by: record.paused.as_ref().map(|p| p.by.clone()),
            next_ticks,
            last_task: last.map(|t| LastTask {
                self_: TaskView::path(t.token),
                token: t.token,
                status: t.status,
                scheduled_for: t.scheduled_for,
            }),
            created_at: record.created_at,
            updated_at: record.updated_at,
            links: ScheduleLinks {
                self_: ScheduleView::path(&s.name),
                tasks: format!("/v1/tasks?schedule={}", s.name),
            },
        }
    }

    /// Where a schedule lives in the API.
    pub fn path(name: &str) -> String {
        format!("/v1/schedules/{name}")
    }
}
