//! Control over time and load, in the store: start deadlines (a claim
//! skips a task past its deadline, the expirer ends it `expired`, its
//! children are cancelled), snoozes (queued again, the attempt not
//! counted), paused queues (no claim takes their tasks), retry by filter,
//! and how long each queue's oldest due task has waited.

use chrono::Duration;
use errand::store::{Store, TaskListing};
use errand::tasks::{AttemptOutcome, NewTask, Scope, Status, TaskFilter, end_attempt, snooze};
use serde_json::json;

use crate::suite::claim;
use crate::{BACKOFF, common, new_task, t0};

/// A task of the default queue that must start by `start_by`.
fn with_deadline(start_by: chrono::DateTime<chrono::Utc>) -> NewTask {
    NewTask {
        start_by: Some(start_by),
        ..new_task("default", 0, t0(), 3)
    }
}

pub async fn a_task_past_its_start_deadline_is_never_claimed_and_expires(store: &Store) {
    let deadline = t0() + Duration::seconds(5);
    let late = common::insert_task(store, &with_deadline(deadline)).await;
    assert_eq!(late.start_by, Some(deadline));
    let mut child = new_task("default", 0, t0(), 3);
    child.depends_on = vec![late.token];
    let child = common::insert_task(store, &child).await;
    assert_eq!(child.status, Status::Waiting);
    let after = deadline + Duration::seconds(1);
    assert!(
        claim(store, "w", 10, after).await.is_empty(),
        "a claim never takes a task past its deadline"
    );
    // Before the deadline, the expirer leaves it alone.
    assert!(store.tasks_expire(deadline, 10).await.unwrap().is_empty());
    let expired = store.tasks_expire(after, 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    let task = &expired[0];
    assert_eq!((task.token, task.status), (late.token, Status::Expired));
    assert_eq!(task.finished_at, Some(after));
    assert!(
        task.error.as_deref().unwrap().contains("start_by"),
        "{task:?}"
    );
    assert_eq!(task.errors.len(), 1);
    let child = store.task_get(child.token).await.unwrap().unwrap();
    assert_eq!(
        child.status,
        Status::Cancelled,
        "its waiting child is cancelled"
    );
    assert!(child.error.as_deref().unwrap().contains("ended expired"));
    assert!(store.tasks_expire(after, 10).await.unwrap().is_empty());
}

pub async fn a_deadline_holds_only_until_an_attempt_counts(store: &Store) {
    let deadline = t0() + Duration::seconds(5);
    common::insert_task(store, &with_deadline(deadline)).await;
    let task = claim(store, "w", 1, t0()).await.remove(0);
    let failed = AttemptOutcome::Failed {
        message: "try again".into(),
        retryable: true,
    };
    let end = end_attempt(1, 3, failed, &BACKOFF, 0.0, t0());
    store
        .task_end(&common::ending(task.id, 1, &end), t0())
        .await
        .unwrap()
        .unwrap();
    let later = deadline + Duration::seconds(60);
    assert!(store.tasks_expire(later, 10).await.unwrap().is_empty());
    let again = claim(store, "w", 1, later).await;
    assert_eq!(again.len(), 1, "a retry after its first start still runs");
    assert_eq!(again[0].attempt, 2);
}

pub async fn a_snooze_requeues_without_counting_the_attempt(store: &Store) {
    common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
    let mut now = t0();
    for round in 1..=3 {
        let task = claim(store, "w", 1, now).await.remove(0);
        assert_eq!(task.attempt, 1, "round {round}: still the first attempt");
        let limits = errand::tasks::SnoozeLimits {
            max_snoozes: 100,
            longest: std::time::Duration::from_secs(3600),
        };
        let outcome = snooze(std::time::Duration::from_secs(30), task.snoozes, &limits);
        let end = end_attempt(task.attempt, task.max_attempts, outcome, &BACKOFF, 0.5, now);
        let snoozed = store
            .task_end(&common::ending(task.id, task.attempt, &end), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(snoozed.status, Status::Queued);
        assert_eq!((snoozed.attempt, snoozed.snoozes), (0, round));
        assert_eq!(snoozed.started_at, None, "it never really started");
        assert_eq!(snoozed.run_at, now + Duration::seconds(30));
        assert!(snoozed.errors.is_empty() && snoozed.error.is_none());
        assert!(
            claim(store, "w", 1, now + Duration::seconds(29))
                .await
                .is_empty(),
            "not before the snooze is over"
        );
        now += Duration::seconds(30);
    }
}

/// A snooze gives its attempt number back, so the next claim runs under
/// the same number: an end written again for the snoozed run (its first
/// write was done, but its answer lost) must not touch the new one.
pub async fn an_end_of_a_snoozed_run_can_not_touch_the_next_run_of_its_number(store: &Store) {
    common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
    let first = claim(store, "w", 1, t0()).await.remove(0);
    let limits = errand::tasks::SnoozeLimits {
        max_snoozes: 100,
        longest: std::time::Duration::from_secs(60),
    };
    let outcome = snooze(std::time::Duration::ZERO, 0, &limits);
    let end = end_attempt(1, 3, outcome, &BACKOFF, 0.5, t0());
    let snoozed = errand::store::TaskEnding {
        started_at: first.started_at,
        ..common::ending(first.id, 1, &end)
    };
    store.task_end(&snoozed, t0()).await.unwrap().unwrap();
    let later = t0() + Duration::seconds(1);
    let second = claim(store, "w", 1, later).await.remove(0);
    assert_eq!((second.id, second.attempt), (first.id, 1));
    assert!(
        store.task_end(&snoozed, later).await.unwrap().is_none(),
        "fenced by the run's start"
    );
    let task = store.task_get(first.token).await.unwrap().unwrap();
    assert_eq!((task.status, task.snoozes), (Status::Running, 1));
}

pub async fn a_paused_queue_gives_no_task_until_resumed(store: &Store) {
    common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
    common::insert_task(store, &new_task("other", 0, t0(), 3)).await;
    let pause = store.queue_pause("default", "ops", t0()).await.unwrap();
    assert_eq!((pause.at, pause.by.as_str()), (t0(), "ops"));
    // Pausing again keeps the first pause.
    let again = store
        .queue_pause("default", "someone-else", t0() + Duration::seconds(9))
        .await
        .unwrap();
    assert_eq!(again, pause);
    let paused = store.queue_pauses().await.unwrap();
    assert_eq!(paused, [("default".to_string(), pause)]);
    assert!(claim(store, "w", 10, t0()).await.is_empty());
    // A task can still be created into it; it waits.
    common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
    assert!(claim(store, "w", 10, t0()).await.is_empty());
    assert!(store.queue_resume("default").await.unwrap());
    assert!(
        !store.queue_resume("default").await.unwrap(),
        "resumed already"
    );
    assert!(store.queue_pauses().await.unwrap().is_empty());
    assert_eq!(claim(store, "w", 10, t0()).await.len(), 2);
}

pub async fn retry_by_filter_requeues_only_matching_tasks_that_ended_badly(store: &Store) {
    let mut tokens = Vec::new();
    for kind in ["sleep", "sleep", "sleep", "other"] {
        let task = NewTask {
            kind: kind.into(),
            ..new_task("default", 0, t0(), 1)
        };
        tokens.push(common::insert_task(store, &task).await.token);
    }
    let claimed = claim(store, "w", 4, t0()).await;
    let failed = AttemptOutcome::Failed {
        message: "bug".into(),
        retryable: false,
    };
    for (i, task) in claimed.iter().enumerate() {
        let outcome = match task.token == tokens[0] {
            true => AttemptOutcome::Succeeded(json!(i)),
            false => failed.clone(),
        };
        let end = end_attempt(1, 1, outcome, &BACKOFF, 0.0, t0());
        store
            .task_end(&common::ending(task.id, 1, &end), t0())
            .await
            .unwrap();
    }
    let still_queued = common::insert_task(store, &new_task("default", 0, t0(), 1)).await;
    let sleeps = TaskFilter {
        kind: vec!["sleep".into()],
        ..TaskFilter::default()
    };
    let later = t0() + Duration::seconds(5);
    let retried = store
        .task_retry_matching(&Scope::everything(), &sleeps, later)
        .await
        .unwrap();
    assert_eq!(retried, 2, "the two failed sleeps, not the completed one");
    let status = |i: usize| {
        let token = tokens[i];
        async move { store.task_get(token).await.unwrap().unwrap() }
    };
    assert_eq!(status(0).await.status, Status::Completed);
    for i in [1, 2] {
        let task = status(i).await;
        assert_eq!(task.status, Status::Queued);
        assert_eq!((task.attempt, task.max_attempts), (1, 2));
        assert_eq!((task.run_at, task.finished_at), (later, None));
        assert_eq!(task.errors.len(), 1, "history kept");
    }
    assert_eq!(status(3).await.status, Status::Failed, "another kind");

    let queued = store.task_get(still_queued.token).await.unwrap().unwrap();
    assert_eq!(queued.status, Status::Queued);
    assert_eq!(claim(store, "w", 10, later).await.len(), 3);
}

/// A child cancelled because its parent failed can't be retried (one, or
/// by filter) until that parent has completed: it would run without the
/// parent's result. Then it can, and a claim takes it.
pub async fn a_task_is_retried_only_once_its_parents_completed(store: &Store) {
    let parent = common::insert_task(store, &new_task("default", 0, t0(), 1)).await;
    let mut child = new_task("default", 0, t0(), 1);
    child.depends_on = vec![parent.token];
    let child = common::insert_task(store, &child).await;
    let running = claim(store, "w", 1, t0()).await.remove(0);
    let failed = AttemptOutcome::Failed {
        message: "bug".into(),
        retryable: false,
    };
    let end = end_attempt(1, 1, failed, &BACKOFF, 0.0, t0());
    store
        .task_end(&common::ending(running.id, 1, &end), t0())
        .await
        .unwrap();
    let cancelled = store.task_get(child.token).await.unwrap().unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    let every = TaskFilter {
        status: vec![Status::Cancelled],
        ..TaskFilter::default()
    };
    let retried = store
        .task_retry_matching(&Scope::everything(), &every, t0())
        .await
        .unwrap();
    assert_eq!(retried, 0, "its parent failed");
    assert!(
        store
            .task_retry(&cancelled, 2, t0())
            .await
            .unwrap()
            .is_none()
    );

    let failed = store.task_get(parent.token).await.unwrap().unwrap();
    store.task_retry(&failed, 2, t0()).await.unwrap().unwrap();
    let again = claim(store, "w", 1, t0()).await.remove(0);
    assert_eq!(again.token, parent.token);
    let ok = end_attempt(
        2,
        2,
        AttemptOutcome::Succeeded(json!(1)),
        &BACKOFF,
        0.0,
        t0(),
    );
    store
        .task_end(&common::ending(again.id, 2, &ok), t0())
        .await
        .unwrap();
    let retried = store
        .task_retry_matching(&Scope::everything(), &every, t0())
        .await
        .unwrap();
    assert_eq!(retried, 1, "its parent completed");
    let child = claim(store, "w", 1, t0()).await.remove(0);
    assert_eq!(
        (child.token, child.status),
        (cancelled.token, Status::Running)
    );
}

pub async fn each_queue_tells_how_long_its_oldest_due_task_waited(store: &Store) {
    common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
    let newer = t0() + Duration::seconds(10);
    common::insert_task(store, &new_task("default", 0, newer, 3)).await;
    common::insert_task(store, &new_task("mail", 0, newer, 3)).await;
    let delayed = t0() + Duration::hours(1);
    common::insert_task(store, &new_task("later", 0, delayed, 3)).await;
    let mut oldest = store.task_queue_oldest(newer).await.unwrap();
    oldest.sort();
    assert_eq!(
        oldest,
        [
            ("default".to_string(), std::time::Duration::from_secs(10)),
            ("mail".to_string(), std::time::Duration::ZERO)
        ],
        "a delayed task is not waiting yet"
    );
}

pub async fn a_listing_filters_by_schedule(store: &Store) {
    let tick = errand::tasks::ScheduleTick {
        schedule: "nightly".into(),
        at: t0(),
    };
    let scheduled = NewTask {
        tick: Some(tick),
        ..new_task("default", 0, t0(), 3)
    };
    let scheduled = common::insert_task(store, &scheduled).await;
    assert_eq!(scheduled.schedule.as_deref(), Some("nightly"));
    assert_eq!(scheduled.scheduled_for, Some(t0()));
    common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
    let filter = TaskFilter {
        schedule: vec!["nightly".into()],
        ..TaskFilter::default()
    };
    let page = store
        .task_list(&TaskListing {
            scope: &Scope::everything(),
            filter: &filter,
            after: None,
            limit: 10,
            timeout: std::time::Duration::from_secs(5),
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].token, scheduled.token);
    assert!(filter.matches(&page[0]));
}
