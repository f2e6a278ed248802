//! Conditional requests and waiting: the task's strong `ETag`,
//! `If-None-Match` and `304`, `Prefer: wait=N` (RFC 7240), and the long poll
//! that wakes when a task ends (a store event) or changes (a re-read every
//! second).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::{ApiError, ApiState};
use crate::pacing::wait;
use crate::store::StoreEvent;
use crate::tasks::{Task, TaskToken, TaskView};

/// How long `Prefer: wait=N` (RFC 7240) asks to wait, capped at `max`.
/// Other preferences, and ones that can't be read, are ignored, as the RFC
/// says.
pub(super) fn prefer_wait(req: &HttpRequest, max: Duration) -> Option<Duration> {
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
pub(super) async fn wait_for(
    state: &ApiState,
    token: TaskToken,
    until: tokio::time::Instant,
    done: impl Fn(&Task) -> bool,
) -> Result<Task, ApiError> {
    // Subscribed before the first read, so no ending is missed in between.
    let mut events = state.store.subscribe();
    // And marked watched before that read, so that its end is announced.
    state.store.task_watch(token).await?;
    // The client may go away, which drops this future; the process
    // stopping answers at once (a load balancer passes it on, where a cut
    // connection would be an error).
    loop {
        let task = state
            .reads
            .get(token)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no task {token}")))?;
        let now = tokio::time::Instant::now();
        if done(&task) || now >= until || state.stopping.is_cancelled() {
            return Ok(task);
        }
        let ended = |event: &StoreEvent| match event {
            StoreEvent::Ended { token: ended } => *ended == token,
            other => *other == StoreEvent::Resync,
        };
        wait(
            &mut events,
            until.min(now + WAIT_RECHECK),
            &state.stopping,
            ended,
        )
        .await;
    }
}

/// The task's JSON.
pub(super) fn render(task: &Task) -> Vec<u8> {
    render_owned(task.clone())
}

/// [`render`], for a task the caller is done with (no copy).
pub(super) fn render_owned(task: Task) -> Vec<u8> {
    // Serialising plain data can't fail.
    serde_json::to_vec(&TaskView::from(task)).unwrap_or_default()
}

/// A strong ETag of a rendered task: any change to what the client sees
/// changes it.
pub(super) fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    format!("\"{:032x}\"", u128::from_be_bytes(first))
}

/// The first ETag of `If-None-Match`, if any.
pub(super) fn if_none_match(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::IF_NONE_MATCH)?
        .to_str()
        .ok()?
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/").to_string())
        .find(|tag| tag.starts_with('"'))
}

/// Turns a 200 into a bodiless 304 when the client already has this version.
pub(super) fn not_modified_if_unchanged(req: &HttpRequest, response: HttpResponse) -> HttpResponse {
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
