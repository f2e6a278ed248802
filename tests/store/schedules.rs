//! Schedules in the store: their definitions written and read back, paused
//! and resumed, the configuration's written over; a tick fired once
//! however many passes try, each tick's task made at most once, a task
//! not made while the last one runs (overlap = skip); the schedulers'
//! clock.

use chrono::{DateTime, Duration, Utc};
use errand::store::{ScheduleFire, Store};
use errand::tasks::{
    NewTask, Principal, Role, ScheduleDraft, ScheduleRecord, ScheduleSource, ScheduleTick, Status,
};
use serde_json::json;

use crate::suite::claim;
use crate::{new_task, t0};

fn schedule(name: &str, cron: &str, source: ScheduleSource) -> ScheduleRecord {
    let draft: ScheduleDraft = serde_json::from_value(json!({
        "name": name, "cron": cron, "timezone": "Europe/Berlin", "kind": "sleep",
        "payload": {"seconds": 1}, "queue": "default", "priority": 3, "timeout": 2.5,
    }))
    .unwrap();
    let owner = Principal {
        name: "ops".into(),
        role: Role::Admin,
        product: Some("shop".into()),
    };
    ScheduleRecord::new(draft.validate(&owner, source, t0()).unwrap(), t0())
}

/// A task of `name`'s tick at `at`.
fn tick_task(name: &str, at: DateTime<Utc>) -> NewTask {
    NewTask {
        tick: Some(ScheduleTick {
            schedule: name.into(),
            at,
        }),
        ..new_task("default", 0, t0(), 3)
    }
}

pub async fn a_schedule_reads_back_as_written_and_pauses_and_resumes(store: &Store) {
    let made = schedule("nightly", "0 3 * * *", ScheduleSource::Api);
    assert!(store.schedule_insert(&made).await.unwrap());
    assert!(
        !store.schedule_insert(&made).await.unwrap(),
        "a name is taken once"
    );
    let read = store.schedule_get("nightly").await.unwrap().unwrap();
    assert_eq!(read, made);
    assert_eq!(
        read.schedule.timeout,
        Some(std::time::Duration::from_millis(2500))
    );
    assert_eq!(read.schedule.product.as_deref(), Some("shop"));
    assert!(store.schedule_get("daily").await.unwrap().is_none());

    let later = t0() + Duration::hours(1);
    let paused = store
        .schedule_pause("nightly", "ops", later)
        .await
        .unwrap()
        .unwrap();
    let pause = paused.paused.clone().unwrap();
    assert_eq!((pause.at, pause.by.as_str()), (later, "ops"));
    let again = store
        .schedule_pause("nightly", "bob", later + Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.paused, Some(pause), "the first pause stays");
    let next = t0() + Duration::days(3);
    let resumed = store
        .schedule_resume("nightly", next)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((resumed.paused, resumed.next_tick), (None, next));
    let twice = store
        .schedule_resume("nightly", next + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        twice.unwrap().next_tick,
        next,
        "resuming a running one changes nothing"
    );
    assert!(
        store
            .schedule_pause("nope", "ops", later)
            .await
            .unwrap()
            .is_none()
    );

    let mut changed = read.clone();
    changed.schedule.payload = json!({"seconds": 2});
    changed.updated_at = later;
    let updated = store.schedule_update(&changed).await.unwrap().unwrap();
    assert_eq!(updated.schedule.payload, json!({"seconds": 2}));
    assert_eq!((updated.created_at, updated.updated_at), (t0(), later));
    assert_eq!(
        updated.next_tick, next,
        "the expression is the same: a pass's move is not undone"
    );
    let mut moved = changed.clone();
    moved.schedule = schedule("nightly", "0 4 * * *", ScheduleSource::Api).schedule;
    moved.next_tick = t0() + Duration::days(5);
    let updated = store.schedule_update(&moved).await.unwrap().unwrap();
    assert_eq!(
        updated.next_tick, moved.next_tick,
        "a new expression: its own"
    );
    assert_eq!(store.schedule_list().await.unwrap().len(), 1);
    assert!(
        !store
            .schedule_delete("nightly", ScheduleSource::Config)
            .await
            .unwrap()
    );
    assert!(
        store
            .schedule_delete("nightly", ScheduleSource::Api)
            .await
            .unwrap()
    );
    assert!(store.schedule_list().await.unwrap().is_empty());
}

pub async fn the_configuration_writes_its_schedules_over_the_database(store: &Store) {
    let api = schedule("report", "0 3 * * *", ScheduleSource::Api);
    store.schedule_insert(&api).await.unwrap();
    store
        .schedule_pause("report", "ops", t0() + Duration::minutes(1))
        .await
        .unwrap();
    // The configuration declares one of that name: it takes it over, and
    // its pause stays; so does its next tick, as the expression is the same.
    let mut declared = schedule("report", "0 3 * * *", ScheduleSource::Config);
    declared.next_tick = t0() + Duration::days(9);
    declared.updated_at = t0() + Duration::hours(1);
    let written = store.schedule_upsert(&declared).await.unwrap();
    assert_eq!(written.schedule.source, ScheduleSource::Config);
    assert!(written.paused.is_some());
    assert_eq!(written.next_tick, api.next_tick);
    assert_eq!(
        written.updated_at, declared.updated_at,
        "the source changed"
    );
    // Written again unchanged: nothing moves.
    let mut same = declared.clone();
    same.updated_at = t0() + Duration::hours(2);
    let rewritten = store.schedule_upsert(&same).await.unwrap();
    assert_eq!(rewritten.updated_at, declared.updated_at);
    // A new expression fires from its own next tick.
    let mut moved = schedule("report", "0 4 * * *", ScheduleSource::Config);
    moved.next_tick = t0() + Duration::days(2);
    let rewritten = store.schedule_upsert(&moved).await.unwrap();
    assert_eq!(rewritten.next_tick, moved.next_tick);
    store
        .schedule_upsert(&schedule("other", "0 5 * * *", ScheduleSource::Config))
        .await
        .unwrap();
    store
        .schedule_insert(&schedule("mine", "0 5 * * *", ScheduleSource::Api))
        .await
        .unwrap();
    let gone = store
        .schedules_prune_config(&["other".into()])
        .await
        .unwrap();
    assert_eq!(gone, ["report"]);
    let left: Vec<String> = (store.schedule_list().await.unwrap().into_iter())
        .map(|r| r.schedule.name)
        .collect();
    assert_eq!(left, ["mine", "other"], "the API's stay");
}

pub async fn a_tick_is_fired_by_one_pass_however_many_try(store: &Store) {
    let made = schedule("tick", "* * * * * *", ScheduleSource::Api);
    store.schedule_insert(&made).await.unwrap();
    let seen = made.next_tick;
    let next = seen + Duration::seconds(1);
    let tasks: Vec<Vec<NewTask>> = (0..4).map(|_| vec![tick_task("tick", seen)]).collect();
    let fires = tasks.iter().map(|tasks| async move {
        store
            .schedule_fire(&ScheduleFire {
                name: "tick",
                seen_next_tick: seen,
                next_tick: next,
                tasks,
                unless_running: false,
            })
            .await
    });
    let fired = futures_util::future::join_all(fires).await;
    let made: Vec<Vec<errand::tasks::Task>> =
        fired.into_iter().filter_map(|f| f.unwrap()).collect();
    assert_eq!(made.len(), 1, "one pass fired the tick");
    assert_eq!(made[0].len(), 1);
    let task = &made[0][0];
    assert_eq!(task.schedule.as_deref(), Some("tick"));
    assert_eq!(task.scheduled_for, Some(seen));
    assert_eq!(
        store.schedule_get("tick").await.unwrap().unwrap().next_tick,
        next
    );
    let last = store
        .schedule_last_tasks(&["tick".into(), "none".into()])
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].token, task.token);

    // A tick's task is made once: firing it again (the schedule moved back
    // by hand, say) moves the schedule on and makes nothing.
    let again = [tick_task("tick", seen)];
    let fired = store
        .schedule_fire(&ScheduleFire {
            name: "tick",
            seen_next_tick: next,
            next_tick: next + Duration::seconds(1),
            tasks: &again,
            unless_running: false,
        })
        .await
        .unwrap();
    assert_eq!(fired.map(|t| t.len()), Some(0));
    assert_eq!(
        store.schedule_get("tick").await.unwrap().unwrap().next_tick,
        next + Duration::seconds(1)
    );
    // A paused schedule fires nothing.
    store.schedule_pause("tick", "ops", t0()).await.unwrap();
    let paused = [tick_task("tick", next + Duration::seconds(1))];
    let fired = store
        .schedule_fire(&ScheduleFire {
            name: "tick",
            seen_next_tick: next + Duration::seconds(1),
            next_tick: next + Duration::seconds(2),
            tasks: &paused,
            unless_running: false,
        })
        .await
        .unwrap();
    assert!(fired.is_none());
}

pub async fn overlap_skip_makes_no_task_while_the_last_one_runs(store: &Store) {
    let made = schedule("report", "* * * * * *", ScheduleSource::Api);
    store.schedule_insert(&made).await.unwrap();
    let first_tick = made.next_tick;
    let fire = |seen: DateTime<Utc>, tasks: Vec<NewTask>| async move {
        store
            .schedule_fire(&ScheduleFire {
                name: "report",
                seen_next_tick: seen,
                next_tick: seen + Duration::seconds(1),
                tasks: &tasks,
                unless_running: true,
            })
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        fire(first_tick, vec![tick_task("report", first_tick)])
            .await
            .len(),
        1
    );
    let second = first_tick + Duration::seconds(1);
    assert!(
        fire(second, vec![tick_task("report", second)])
            .await
            .is_empty(),
        "the first is still queued"
    );
    let running = claim(store, "w", 1, t0() + Duration::days(1))
        .await
        .remove(0);
    assert_eq!(running.schedule.as_deref(), Some("report"));
    let third = second + Duration::seconds(1);
    assert!(
        fire(third, vec![tick_task("report", third)])
            .await
            .is_empty()
    );
    let done = errand::tasks::end_attempt(
        1,
        3,
        errand::tasks::AttemptOutcome::Succeeded(json!(1)),
        &crate::BACKOFF,
        0.0,
        t0(),
    );
    store
        .task_end(&crate::common::ending(running.id, 1, &done), t0())
        .await
        .unwrap();
    let fourth = third + Duration::seconds(1);
    let made = fire(fourth, vec![tick_task("report", fourth)]).await;
    assert_eq!(made.len(), 1, "the last one ended: a new one");
    assert_eq!(made[0].status, Status::Queued);
}

pub async fn the_schedulers_clock_keeps_the_last_promise(store: &Store) {
    assert_eq!(store.schedule_clock().await.unwrap(), None);
    let until = t0() + Duration::seconds(3);
    store.schedule_clock_set(Some(until)).await.unwrap();
    assert_eq!(store.schedule_clock().await.unwrap(), Some(until));
    store.schedule_clock_set(None).await.unwrap();
    assert_eq!(store.schedule_clock().await.unwrap(), None);
}
