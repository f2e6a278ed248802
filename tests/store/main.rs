//! The store conformance suite: every store behaviour specified once, as a
//! function over a `Store`, and stamped out for each backend. Time is passed
//! in (`now`), so no test sleeps to make a lease expire.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod connections;
mod control;
mod files;
mod inserts;
mod migrations;
mod pushes;
mod schedules;

use chrono::{DateTime, Duration, Utc};
use errand::store::{Store, StoreError, TaskClaim, TaskListing, Violation};
use errand::tasks::{
    AttemptOutcome, Backoff, NewTask, Progress, Scope, Status, TaskId, TaskToken, WorkerId,
    end_attempt,
};
use serde_json::json;

/// Stamps out each suite function twice, `postgres::…` and `sqlite::…`,
/// each run on a store over a fresh database of that backend.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        conformance!(@backend postgres; $($test),*);
        conformance!(@backend sqlite; $($test),*);
        conformance!(@backend pgbouncer; $($test),*);
    };
    (@backend $backend:ident; $($test:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, _db) = super::$backend().await;
                    super::suite::$test(&store).await;
                }
            )*
        }
    };
}

async fn postgres() -> (Store, common::TestDb) {
    let db = common::TestDb::postgres().await;
    (db.store(), db)
}

async fn sqlite() -> (Store, common::TestDb) {
    let db = common::TestDb::sqlite().await;
    (db.store(), db)
}

/// Postgres through PgBouncer in transaction mode (`database.pooled`, with
/// the direct connection for LISTEN and migrations).
async fn pgbouncer() -> (Store, (common::TestDb, common::servers::PgBouncer)) {
    let db = common::TestDb::postgres().await;
    let bouncer = common::servers::PgBouncer::launch(5432);
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let mut settings = errand::config::Settings::defaults();
    settings.database.url = bouncer.url(&name);
    settings.database.pooled = true;
    settings.database.direct_url = db.url.clone();
    let store = Store::connect(&settings.database).expect("a store through PgBouncer");
    (store, (db, bouncer))
}

conformance!(
    inserted_task_reads_back_as_written,
    a_batch_is_inserted_in_order_and_reads_back_as_written,
    tasks_are_read_by_many_tokens_at_once,
    claimed_task_is_invisible_to_second_worker,
    claim_takes_priority_then_run_at_then_id,
    claim_waits_for_run_at,
    claim_takes_only_its_queue,
    claim_takes_only_the_kinds_the_worker_runs,
    a_broken_invariant_is_a_typed_violation_naming_it,
    heartbeat_renews_reports_cancel_and_omits_lost_attempts,
    stale_attempt_cannot_write_after_rescue,
    rescue_requeues_with_history_then_drops_when_attempts_run_out,
    rescue_leaves_live_leases_alone,
    retryable_failure_requeues_with_backoff_and_history,
    cancel_of_unstarted_task_is_compare_and_set,
    cancel_request_is_fenced_and_idempotent,
    tokens_are_found_by_hash_until_revoked,
    first_token_is_minted_only_on_an_empty_table,
    counts_by_status_cover_every_task,
    listing_pages_newest_first_within_scope,
    retry_is_a_compare_and_set_that_keeps_history,
    prune_deletes_only_what_is_past_its_cutoff,
    workers_register_renew_and_are_pruned,
    child_waits_for_every_parent_and_is_released_by_the_last,
    parent_ending_badly_cancels_waiting_descendants,
    dependencies_must_exist_be_visible_and_not_have_failed,
    global_limit_caps_running_tasks_across_workers,
    a_file_is_visible_only_once_written_and_reads_back_whole,
    files_go_only_unused_expired_and_not_being_made,
    a_task_past_its_start_deadline_is_never_claimed_and_expires,
    a_deadline_holds_only_until_an_attempt_counts,
    a_snooze_requeues_without_counting_the_attempt,
    an_end_of_a_snoozed_run_can_not_touch_the_next_run_of_its_number,
    a_task_is_retried_only_once_its_parents_completed,
    a_paused_queue_gives_no_task_until_resumed,
    retry_by_filter_requeues_only_matching_tasks_that_ended_badly,
    each_queue_tells_how_long_its_oldest_due_task_waited,
    a_listing_filters_by_schedule,
    a_schedule_reads_back_as_written_and_pauses_and_resumes,
    the_configuration_writes_its_schedules_over_the_database,
    a_tick_is_fired_by_one_pass_however_many_try,
    overlap_skip_makes_no_task_while_the_last_one_runs,
    the_schedulers_clock_keeps_the_last_promise,
);

/// Stamps out each push test (Postgres only: SQLite has no pushes) for a
/// store straight on Postgres and one through PgBouncer; each also gets a
/// URL straight to the database, for connections of its own.
macro_rules! on_postgres {
    ($($test:ident),* $(,)?) => {
        mod pushes_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, db) = super::postgres().await;
                    super::pushes::$test(&store, &db.url).await;
                }
            )*
        }
        mod pushes_pgbouncer {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, (db, _bouncer)) = super::pgbouncer().await;
                    super::pushes::$test(&store, &db.url).await;
                }
            )*
        }
    };
}

on_postgres!(
    new_tasks_go_to_a_live_offer_and_the_worker_hears_of_them,
    a_row_too_large_for_a_notification_is_heard_by_its_id,
    only_tasks_due_now_of_kinds_the_worker_runs_are_pushed,
    an_offer_seats_nothing_without_a_listener_or_once_lapsed,
    a_claim_takes_its_tasks_off_the_workers_offer,
    concurrent_inserts_seat_no_more_than_offered,
    pushed_tasks_not_held_are_handed_back,
    lapsed_offers_are_pruned_with_silent_workers,
);

/// SQLite has no pushes: its workers only claim, and the push calls do
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_pushes_nothing() {
    let (store, _db) = sqlite().await;
    let worker = WorkerId("w".into());
    assert!(!store.pushes_tasks() && store.pushes(&worker).is_none());
    let offer = errand::store::TaskOffer {
        worker: &worker,
        queue: "default",
        kinds: &["sleep".to_string()],
        slots: 3,
        lease: std::time::Duration::from_secs(30),
        listener_pid: 1,
        ttl: std::time::Duration::from_secs(60),
    };
    store.task_offer(&offer).await.unwrap();
    let task = common::insert_task(&store, &new_task("default", 0, t0(), 3)).await;
    assert_eq!((task.status, task.worker_id), (Status::Queued, None));
    assert!(
        store
            .tasks_pushed_release(&worker, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

const BACKOFF: Backoff = Backoff {
    base: std::time::Duration::from_secs(1),
    max: std::time::Duration::from_secs(60),
};

fn t0() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn new_task(queue: &str, priority: i32, run_at: DateTime<Utc>, max_attempts: i32) -> NewTask {
    NewTask {
        queue: queue.into(),
        priority,
        owner: "alice".into(),
        product: Some("shop".into()),
        created_at: t0(),
        run_at,
        ..common::new_task("sleep", json!({"seconds": 1}), max_attempts)
    }
}

/// The rescuer's decision as of `now` (backoff with full jitter = `jitter`).
fn lost(
    now: DateTime<Utc>,
    jitter: f64,
) -> impl Fn(&errand::tasks::Task) -> errand::tasks::AttemptEnd {
    move |t| {
        end_attempt(
            t.attempt,
            t.max_attempts,
            AttemptOutcome::lease_expired(),
            &BACKOFF,
            jitter,
            now,
        )
    }
}

fn worker(name: &str) -> WorkerId {
    WorkerId(name.into())
}

mod suite {
    use super::*;
    pub use crate::control::*;
    pub use crate::files::*;
    pub use crate::inserts::*;
    pub use crate::schedules::*;

    pub(crate) async fn insert(store: &Store, n: usize) -> Vec<TaskId> {
        let mut ids = Vec::new();
        for _ in 0..n {
            ids.push(
                common::insert_task(store, &new_task("default", 0, t0(), 3))
                    .await
                    .id,
            );
        }
        ids
    }

    pub(crate) async fn claim(
        store: &Store,
        who: &str,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Vec<errand::tasks::Task> {
        store
            .task_claim(&TaskClaim {
                queue: "default",
                worker: &worker(who),
                kinds: None,
                limit,
                lease_until: now + Duration::seconds(30),
                now,
                global_limit: None,
            })
            .await
            .unwrap()
    }

    pub async fn claimed_task_is_invisible_to_second_worker(store: &Store) {
        let ids = insert(store, 20).await;
        let now = t0();
        let (a, b) = tokio::join!(claim(store, "a", 15, now), claim(store, "b", 15, now));
        let mut all: Vec<TaskId> = a.iter().chain(&b).map(|t| t.id).collect();
        all.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(all, expected, "each task claimed exactly once");
        assert!(
            a.iter()
                .all(|t| t.worker_id.as_deref() == Some("a") && t.attempt == 1)
        );
        assert!(
            b.iter()
                .all(|t| t.worker_id.as_deref() == Some("b") && t.status == Status::Running)
        );
        assert!(claim(store, "c", 10, now).await.is_empty());
    }

    pub async fn claim_takes_priority_then_run_at_then_id(store: &Store) {
        let early = t0() - Duration::seconds(10);
        let low_old = common::insert_task(store, &new_task("default", 0, early, 3)).await;
        let high = common::insert_task(store, &new_task("default", 5, t0(), 3)).await;
        let low_new = common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
        let low_new_2 = common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
        let order: Vec<TaskId> = claim(store, "w", 10, t0())
            .await
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(order, [high.id, low_old.id, low_new.id, low_new_2.id]);
    }

    pub async fn claim_waits_for_run_at(store: &Store) {
        let later = t0() + Duration::seconds(60);
        common::insert_task(store, &new_task("default", 0, later, 3)).await;
        assert!(claim(store, "w", 10, t0()).await.is_empty());
        assert_eq!(claim(store, "w", 10, later).await.len(), 1);
    }

    pub async fn a_broken_invariant_is_a_typed_violation_naming_it(store: &Store) {
        let task = new_task("default", 0, t0(), 3);
        common::insert_task(store, &task).await;
        let again = store.task_insert(&task, &Scope::everything(), None).await;
        match again {
            Err(StoreError::Violated {
                constraint,
                violation: Violation::Unique,
                ..
            }) => assert!(constraint.contains("token"), "{constraint}"),
            other => panic!("a second task with the same token: {other:?}"),
        }
        let bad = NewTask {
            max_attempts: 0,
            ..new_task("default", 0, t0(), 3)
        };
        match store.task_insert(&bad, &Scope::everything(), None).await {
            Err(StoreError::Violated {
                constraint,
                violation: Violation::Check,
                ..
            }) => assert_eq!(constraint, "tasks_attempts_valid"),
            other => panic!("max_attempts 0: {other:?}"),
        }
    }

    pub async fn claim_takes_only_the_kinds_the_worker_runs(store: &Store) {
        let sleep = common::insert_task(store, &new_task("default", 5, t0(), 3)).await;
        let other = NewTask {
            kind: "transcribe".into(),
            ..new_task("default", 9, t0(), 3)
        };
        let transcribe = common::insert_task(store, &other).await;
        let kinds = ["sleep".to_string(), "callback".to_string()];
        let w = worker("w");
        let claim = |kinds| TaskClaim {
            queue: "default",
            worker: &w,
            kinds,
            limit: 10,
            lease_until: t0() + Duration::seconds(30),
            now: t0(),
            global_limit: None,
        };
        // The transcribe task comes first by priority, but this worker
        // can't run it: it is left for one that can.
        let claimed = store.task_claim(&claim(Some(&kinds))).await.unwrap();
        let ids: Vec<TaskId> = claimed.iter().map(|t| t.id).collect();
        assert_eq!(ids, [sleep.id]);
        let claimed = store.task_claim(&claim(None)).await.unwrap();
        let ids: Vec<TaskId> = claimed.iter().map(|t| t.id).collect();
        assert_eq!(ids, [transcribe.id]);
    }

    pub async fn claim_takes_only_its_queue(store: &Store) {
        common::insert_task(store, &new_task("gpu", 0, t0(), 3)).await;
        assert!(claim(store, "w", 10, t0()).await.is_empty());
        let gpu = store
            .task_claim(&TaskClaim {
                queue: "gpu",
                worker: &worker("w"),
                kinds: None,
                limit: 10,
                lease_until: t0() + Duration::seconds(30),
                now: t0(),
                global_limit: None,
            })
            .await
            .unwrap();
        assert_eq!(gpu.len(), 1);
    }

    pub async fn heartbeat_renews_reports_cancel_and_omits_lost_attempts(store: &Store) {
        insert(store, 3).await;
        let claimed = claim(store, "w", 3, t0()).await;
        let attempts: Vec<(TaskId, i32)> = claimed.iter().map(|t| (t.id, t.attempt)).collect();
        // One gets a cancel request; one is claimed by another's attempt
        // number (as if it were rescued and re-claimed).
        store
            .task_cancel_request(claimed[0].id, 1, t0())
            .await
            .unwrap()
            .expect("running");
        let mut asked = attempts.clone();
        asked[2].1 = 7;
        let until = t0() + Duration::seconds(90);
        let renewed = store
            .task_heartbeat(&worker("w"), &asked, until)
            .await
            .unwrap();
        let mut got: Vec<(TaskId, bool)> =
            renewed.iter().map(|r| (r.id, r.cancel_requested)).collect();
        got.sort();
        assert_eq!(got, [(claimed[0].id, true), (claimed[1].id, false)]);
        let t = store.task_get(claimed[1].token).await.unwrap().unwrap();
        assert_eq!(t.lease_expires_at, Some(until));
        // Another worker can't renew what isn't its own.
        assert!(
            store
                .task_heartbeat(&worker("x"), &attempts, until)
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn stale_attempt_cannot_write_after_rescue(store: &Store) {
        insert(store, 1).await;
        let first = claim(store, "old", 1, t0()).await.remove(0);
        let later = t0() + Duration::seconds(31);
        let rescued = store
            .task_rescue_expired(later, 10, lost(later, 0.0))
            .await
            .unwrap();
        assert_eq!(rescued.len(), 1);
        assert_eq!(rescued[0].status, Status::Queued);
        let second = claim(store, "new", 1, later + Duration::seconds(5))
            .await
            .remove(0);
        assert_eq!(second.attempt, 2);

        // The old attempt writes nothing: not progress, not a result.
        let progress = Progress::new(0.9, Some("stale".into()));
        assert!(!store.task_progress(first.id, 1, &progress).await.unwrap());
        let done = end_attempt(
            1,
            3,
            AttemptOutcome::Succeeded(json!("stale")),
            &BACKOFF,
            0.0,
            later,
        );
        assert!(
            store
                .task_end(&common::ending(first.id, 1, &done), later)
                .await
                .unwrap()
                .is_none()
        );
        let fail = end_attempt(
            1,
            3,
            AttemptOutcome::Failed {
                message: "stale".into(),
                retryable: false,
            },
            &BACKOFF,
            0.0,
            later,
        );
        assert!(
            store
                .task_end(&common::ending(first.id, 1, &fail), later)
                .await
                .unwrap()
                .is_none()
        );

        // The current attempt's result stands.
        let ok = end_attempt(
            2,
            3,
            AttemptOutcome::Succeeded(json!("fresh")),
            &BACKOFF,
            0.0,
            later,
        );
        let ended = store
            .task_end(&common::ending(second.id, 2, &ok), later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ended.status, Status::Completed);
        assert_eq!(ended.result, Some(json!("fresh")));
        assert_eq!(
            ended.progress.message, None,
            "the stale progress was not written"
        );
        // And nothing moves a finished task, not even its own attempt again.
        assert!(
            store
                .task_end(&common::ending(second.id, 2, &fail), later)
                .await
                .unwrap()
                .is_none()
        );
    }

    pub async fn rescue_requeues_with_history_then_drops_when_attempts_run_out(store: &Store) {
        common::insert_task(store, &new_task("default", 0, t0(), 2)).await;
        let decide = |now| lost(now, 1.0);
        claim(store, "w", 1, t0()).await;
        let t1 = t0() + Duration::seconds(31);
        let rescued = store.task_rescue_expired(t1, 10, decide(t1)).await.unwrap();
        assert_eq!(rescued[0].status, Status::Queued);
        assert_eq!(
            rescued[0].run_at,
            t1 + Duration::seconds(1),
            "backoff after a lost worker"
        );
        assert_eq!(rescued[0].errors.len(), 1);
        assert!(rescued[0].errors[0].message.contains("worker lost"));
        assert_eq!(rescued[0].worker_id, None);

        let t2 = t1 + Duration::seconds(2);
        let second = claim(store, "w2", 1, t2).await.remove(0);
        assert_eq!(second.attempt, 2);
        let t3 = t2 + Duration::seconds(31);
        let rescued = store.task_rescue_expired(t3, 10, decide(t3)).await.unwrap();
        let dropped = &rescued[0];
        assert_eq!(dropped.status, Status::Dropped);
        assert_eq!(dropped.finished_at, Some(t3));
        assert_eq!(
            dropped.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(),
            [1, 2],
            "one history entry per attempt"
        );
        assert_eq!(dropped.error, Some(dropped.errors[1].message.clone()));
    }

    pub async fn rescue_leaves_live_leases_alone(store: &Store) {
        insert(store, 2).await;
        let claimed = claim(store, "w", 2, t0()).await;
        let now = t0() + Duration::seconds(29);
        let rescued = store
            .task_rescue_expired(now, 10, lost(now, 0.0))
            .await
            .unwrap();
        assert!(rescued.is_empty(), "leases run to t0 + 30 s");
        // A renewed lease moves the line.
        let attempts = [(claimed[0].id, 1)];
        store
            .task_heartbeat(&worker("w"), &attempts, t0() + Duration::seconds(90))
            .await
            .unwrap();
        let now = t0() + Duration::seconds(45);
        let rescued = store
            .task_rescue_expired(now, 10, lost(now, 0.0))
            .await
            .unwrap();
        assert_eq!(
            rescued.iter().map(|t| t.id).collect::<Vec<_>>(),
            [claimed[1].id]
        );
    }

    pub async fn retryable_failure_requeues_with_backoff_and_history(store: &Store) {
        insert(store, 1).await;
        let t = claim(store, "w", 1, t0()).await.remove(0);
        let failed = AttemptOutcome::Failed {
            message: "boom".into(),
            retryable: true,
        };
        let end = end_attempt(1, 3, failed, &BACKOFF, 1.0, t0());
        let after = store
            .task_end(&common::ending(t.id, 1, &end), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.status, Status::Queued);
        assert_eq!(after.run_at, t0() + Duration::seconds(1));
        assert_eq!(after.error.as_deref(), Some("boom"));
        assert_eq!(after.errors.len(), 1);
        assert_eq!(
            after.errors[0].started_at, t.started_at,
            "the history says when each attempt started"
        );
        assert!(
            claim(store, "w", 1, t0()).await.is_empty(),
            "not before its backoff"
        );
        let again = claim(store, "w", 1, t0() + Duration::seconds(1))
            .await
            .remove(0);
        assert_eq!(again.attempt, 2);
        let ok = end_attempt(
            2,
            3,
            AttemptOutcome::Succeeded(json!(1)),
            &BACKOFF,
            0.0,
            t0(),
        );
        let done = store
            .task_end(&common::ending(t.id, 2, &ok), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status, Status::Completed);
        assert_eq!(done.error, None, "a success clears the error…");
        assert_eq!(done.errors.len(), 1, "…and keeps the history");
    }

    pub async fn cancel_of_unstarted_task_is_compare_and_set(store: &Store) {
        let ids = insert(store, 2).await;
        let cancelled = store
            .task_cancel_unstarted(ids[0], Status::Queued, t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.status, Status::Cancelled);
        assert_eq!(cancelled.finished_at, Some(t0()));
        // The second task gets claimed before the cancel lands: no change.
        claim(store, "w", 1, t0()).await;
        assert!(
            store
                .task_cancel_unstarted(ids[1], Status::Queued, t0())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .task_cancel_unstarted(ids[0], Status::Queued, t0())
                .await
                .unwrap()
                .is_none()
        );
    }

    pub async fn cancel_request_is_fenced_and_idempotent(store: &Store) {
        insert(store, 1).await;
        let t = claim(store, "w", 1, t0()).await.remove(0);
        assert!(
            store
                .task_cancel_request(t.id, 2, t0())
                .await
                .unwrap()
                .is_none(),
            "wrong attempt"
        );
        let first = store
            .task_cancel_request(t.id, 1, t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.cancel_requested_at, Some(t0()));
        assert_eq!(first.status, Status::Running);
        let later = t0() + Duration::seconds(5);
        let second = store
            .task_cancel_request(t.id, 1, later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            second.cancel_requested_at,
            Some(t0()),
            "the first request's time is kept"
        );
    }

    pub async fn tokens_are_found_by_hash_until_revoked(store: &Store) {
        use errand::store::NewApiToken;
        use errand::tasks::{ApiToken, Role, TokenHash};
        let token = ApiToken::generate().unwrap();
        let row = NewApiToken {
            name: "shop-admin".into(),
            role: Role::Admin,
            product: Some("shop".into()),
            hash: token.hash(),
        };
        store.token_insert(&row, t0()).await.unwrap();
        let found = store
            .token_find(&TokenHash::of(token.secret()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.name.as_str(), found.role, found.product.as_deref()),
            ("shop-admin", Role::Admin, Some("shop"))
        );
        assert!(
            store
                .token_find(&TokenHash::of("errand_guess"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.token_revoke("shop-admin", t0()).await.unwrap(), 1);
        assert!(store.token_find(&token.hash()).await.unwrap().is_none());
    }

    pub async fn counts_by_status_cover_every_task(store: &Store) {
        assert!(store.task_count_by_status().await.unwrap().is_empty());
        let ids = insert(store, 5).await;
        claim(store, "w", 2, t0()).await;
        store
            .task_cancel_unstarted(ids[4], Status::Queued, t0())
            .await
            .unwrap()
            .unwrap();
        let counts = store.task_count_by_status().await.unwrap();
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert_eq!(counts[&Status::Running], 2);
        assert_eq!(counts[&Status::Queued], 2);
        assert_eq!(counts[&Status::Cancelled], 1);
    }

    pub async fn listing_pages_newest_first_within_scope(store: &Store) {
        use errand::tasks::{Scope, TaskFilter};
        let ids = insert(store, 5).await;
        let mut bob = new_task("default", 0, t0(), 3);
        bob.owner = "bob".into();
        bob.product = None;
        let bob = common::insert_task(store, &bob).await;
        let all = TaskFilter::default();
        let timeout = std::time::Duration::from_secs(5);
        let page = |scope: Scope, after: Option<TaskId>, limit| {
            let all = all.clone();
            async move {
                store
                    .task_list(&TaskListing {
                        scope: &scope,
                        filter: &all,
                        after,
                        limit,
                        timeout,
                    })
                    .await
                    .unwrap()
            }
        };
        let first = page(Scope::everything(), None, 4).await;
        let got: Vec<TaskId> = first.iter().map(|t| t.id).collect();
        assert_eq!(got, [bob.id, ids[4], ids[3], ids[2]]);
        let rest = page(Scope::everything(), Some(ids[2]), 4).await;
        assert_eq!(
            rest.iter().map(|t| t.id).collect::<Vec<_>>(),
            [ids[1], ids[0]]
        );
        let alice = Scope {
            owner: Some("alice".into()),
            product: None,
        };
        assert_eq!(page(alice, None, 10).await.len(), 5);
        let shop = Scope {
            owner: Some("shop-admin".into()),
            product: Some("shop".into()),
        };
        assert!(
            page(shop, None, 10)
                .await
                .iter()
                .all(|t| t.owner == "alice")
        );
        let filter = TaskFilter {
            owner: vec!["bob".into()],
            ..Default::default()
        };
        let only_bob = store
            .task_list(&TaskListing {
                scope: &Scope::everything(),
                filter: &filter,
                after: None,
                limit: 10,
                timeout,
            })
            .await
            .unwrap();
        assert_eq!(only_bob, [bob]);
    }

    pub async fn retry_is_a_compare_and_set_that_keeps_history(store: &Store) {
        common::insert_task(store, &new_task("default", 0, t0(), 1)).await;
        let t = claim(store, "w", 1, t0()).await.remove(0);
        let fail = AttemptOutcome::Failed {
            message: "boom".into(),
            retryable: true,
        };
        let end = end_attempt(1, 1, fail, &BACKOFF, 0.0, t0());
        let failed = store
            .task_end(&common::ending(t.id, 1, &end), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failed.status, Status::Failed);
        let later = t0() + Duration::seconds(10);
        let retried = store
            .task_retry(&failed, failed.attempts_for_retry(), later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retried.status, Status::Queued);
        assert_eq!((retried.attempt, retried.max_attempts), (1, 2));
        assert_eq!(retried.run_at, later);
        assert_eq!(retried.finished_at, None);
        assert_eq!(retried.errors, failed.errors, "history kept");
        // Stale: the caller saw it failed, but it is queued now.
        assert!(store.task_retry(&failed, 2, later).await.unwrap().is_none());
        assert_eq!(claim(store, "w", 1, later).await[0].attempt, 2);
    }

    pub async fn prune_deletes_only_what_is_past_its_cutoff(store: &Store) {
        let ids = insert(store, 4).await;
        let claimed = claim(store, "w", 3, t0()).await;
        let ok = |n| {
            end_attempt(
                1,
                3,
                AttemptOutcome::Succeeded(json!(n)),
                &BACKOFF,
                0.0,
                t0(),
            )
        };
        let failed = AttemptOutcome::Failed {
            message: "x".into(),
            retryable: false,
        };
        let fail = end_attempt(1, 3, failed, &BACKOFF, 0.0, t0());
        store
            .task_end(&common::ending(claimed[0].id, 1, &ok(0)), t0())
            .await
            .unwrap()
            .unwrap();
        store
            .task_end(
                &common::ending(claimed[1].id, 1, &ok(1)),
                t0() + Duration::hours(2),
            )
            .await
            .unwrap()
            .unwrap();
        store
            .task_end(&common::ending(claimed[2].id, 1, &fail), t0())
            .await
            .unwrap()
            .unwrap();
        let cutoffs = [
            (Status::Completed, t0() + Duration::hours(1)),
            (Status::Failed, t0()),
        ];
        assert_eq!(store.task_prune(&cutoffs, 10).await.unwrap(), 1);
        assert!(
            store.task_get(claimed[0].token).await.unwrap().is_none(),
            "old and completed"
        );
        assert!(
            store.task_get(claimed[1].token).await.unwrap().is_some(),
            "recent"
        );
        assert!(
            store.task_get(claimed[2].token).await.unwrap().is_some(),
            "failed: its own cutoff"
        );
        let queued = store.task_count_by_status().await.unwrap()[&Status::Queued];
        assert_eq!(queued, 1, "unfinished tasks stay");
        let _ = ids;
        // Batches: at most `limit` a statement.
        let far = [
            (Status::Completed, t0() + Duration::days(1)),
            (Status::Failed, t0() + Duration::days(1)),
        ];
        assert_eq!(store.task_prune(&far, 1).await.unwrap(), 1);
        assert_eq!(store.task_prune(&far, 1).await.unwrap(), 1);
        assert_eq!(store.task_prune(&far, 1).await.unwrap(), 0);
    }

    pub async fn workers_register_renew_and_are_pruned(store: &Store) {
        use errand::tasks::WorkerInfo;
        let info = |id: &str, at| WorkerInfo {
            id: worker(id),
            host: "box".into(),
            pid: 42,
            queues: [("default".to_string(), 4)].into_iter().collect(),
            concurrency: 4,
            started_at: t0(),
            heartbeat_at: at,
            running: 1,
        };
        store.worker_upsert(&info("a", t0())).await.unwrap();
        store.worker_upsert(&info("b", t0())).await.unwrap();
        store
            .worker_upsert(&info("a", t0() + Duration::seconds(60)))
            .await
            .unwrap();
        let alive = store
            .worker_list(t0() + Duration::seconds(30))
            .await
            .unwrap();
        assert_eq!(alive, [info("a", t0() + Duration::seconds(60))]);
        assert_eq!(
            store
                .worker_prune(t0() + Duration::seconds(30))
                .await
                .unwrap(),
            1
        );
        store.worker_delete(&worker("a")).await.unwrap();
        assert!(
            store
                .worker_list(t0() - Duration::days(1))
                .await
                .unwrap()
                .is_empty()
        );
    }

    fn child_of(parents: &[&errand::tasks::Task]) -> NewTask {
        NewTask {
            depends_on: parents.iter().map(|p| p.token).collect(),
            ..new_task("default", 0, t0(), 3)
        }
    }

    async fn complete(store: &Store, task: &errand::tasks::Task, at: DateTime<Utc>) {
        let claimed = store
            .task_claim(&TaskClaim {
                queue: &task.queue,
                worker: &worker("w"),
                kinds: None,
                limit: 100,
                lease_until: at + Duration::seconds(30),
                now: at,
                global_limit: None,
            })
            .await
            .unwrap();
        let mine = claimed.iter().find(|t| t.id == task.id).expect("claimable");
        let ok = end_attempt(
            mine.attempt,
            3,
            AttemptOutcome::Succeeded(json!(1)),
            &BACKOFF,
            0.0,
            at,
        );
        store
            .task_end(&common::ending(mine.id, mine.attempt, &ok), at)
            .await
            .unwrap()
            .unwrap();
        for other in claimed.iter().filter(|t| t.id != task.id) {
            // Hand back what was claimed along: re-queued at once.
            let back = end_attempt(
                other.attempt,
                other.max_attempts,
                AttemptOutcome::shut_down(),
                &BACKOFF,
                0.0,
                at,
            );
            store
                .task_end(&common::ending(other.id, other.attempt, &back), at)
                .await
                .unwrap();
        }
    }

    async fn get(store: &Store, task: &errand::tasks::Task) -> errand::tasks::Task {
        store.task_get(task.token).await.unwrap().unwrap()
    }

    pub async fn child_waits_for_every_parent_and_is_released_by_the_last(store: &Store) {
        let p1 = common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
        let p2 = common::insert_task(store, &new_task("other", 0, t0(), 3)).await;
        let child = common::insert_task(store, &child_of(&[&p1, &p2])).await;
        assert_eq!(child.status, Status::Waiting);
        assert_eq!(child.depends_on, [p1.token, p2.token]);

        complete(store, &p1, t0() + Duration::seconds(1)).await;
        assert_eq!(
            get(store, &child).await.status,
            Status::Waiting,
            "one parent left"
        );
        let done_at = t0() + Duration::seconds(2);
        complete(store, &p2, done_at).await;
        let released = get(store, &child).await;
        assert_eq!(
            released.status,
            Status::Queued,
            "released with the last parent"
        );
        assert_eq!(
            released.run_at, done_at,
            "runnable from the moment the last parent ended"
        );
        // A child of a completed parent is queued at once.
        let late = common::insert_task(store, &child_of(&[&p1])).await;
        assert_eq!(late.status, Status::Queued);
    }

    pub async fn parent_ending_badly_cancels_waiting_descendants(store: &Store) {
        let a = common::insert_task(store, &new_task("default", 0, t0(), 1)).await;
        let x = common::insert_task(store, &new_task("elsewhere", 0, t0(), 1)).await;
        let b = common::insert_task(store, &child_of(&[&a])).await;
        let c = common::insert_task(store, &child_of(&[&b])).await;
        let d = common::insert_task(store, &child_of(&[&a, &x])).await;
        let at = t0() + Duration::seconds(5);
        let claimed = claim(store, "w", 1, at).await.remove(0);
        assert_eq!(claimed.id, a.id);
        let fail = AttemptOutcome::Failed {
            message: "no".into(),
            retryable: false,
        };
        let end = end_attempt(1, 1, fail, &BACKOFF, 0.0, at);
        store
            .task_end(&common::ending(a.id, 1, &end), at)
            .await
            .unwrap()
            .unwrap();
        for (task, cause) in [(&b, &a), (&c, &b), (&d, &a)] {
            let t = get(store, task).await;
            assert_eq!(t.status, Status::Cancelled);
            assert_eq!(t.finished_at, Some(at));
            let why = format!("dependency {} ended ", cause.token);
            assert!(
                t.error.as_deref().unwrap().starts_with(&why),
                "{:?}",
                t.error
            );
            assert_eq!(t.errors.len(), 1);
            assert!(t.errors[0].message.starts_with(&why));
        }
        assert_eq!(
            get(store, &x).await.status,
            Status::Queued,
            "other parents are untouched"
        );

        // Cancelling a waiting task cancels its own children too.
        let p = common::insert_task(store, &new_task("elsewhere", 0, t0(), 1)).await;
        let q = common::insert_task(store, &child_of(&[&p])).await;
        let r = common::insert_task(store, &child_of(&[&q])).await;
        store
            .task_cancel_unstarted(q.id, Status::Waiting, at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(get(store, &r).await.status, Status::Cancelled);
        assert_eq!(get(store, &p).await.status, Status::Queued);
    }

    pub async fn dependencies_must_exist_be_visible_and_not_have_failed(store: &Store) {
        use errand::tasks::{Refused, Scope};
        let mine = common::insert_task(store, &new_task("default", 0, t0(), 1)).await;
        let theirs = common::insert_task(
            store,
            &NewTask {
                owner: "bob".into(),
                product: None,
                ..new_task("default", 0, t0(), 1)
            },
        )
        .await;
        let alice = Scope {
            owner: Some("alice".into()),
            product: None,
        };
        let ghost = TaskToken::generate();
        let ghostly = NewTask {
            depends_on: vec![mine.token, ghost],
            ..new_task("default", 0, t0(), 1)
        };
        assert_eq!(
            store.task_insert(&ghostly, &alice, None).await.unwrap(),
            Err(Refused::UnknownParent(ghost))
        );
        let nosy = child_of(&[&mine, &theirs]);
        assert_eq!(
            store.task_insert(&nosy, &alice, None).await.unwrap(),
            Err(Refused::UnknownParent(theirs.token))
        );
        store
            .task_cancel_unstarted(mine.id, Status::Queued, t0())
            .await
            .unwrap()
            .unwrap();
        let doomed = child_of(&[&mine]);
        assert_eq!(
            store.task_insert(&doomed, &alice, None).await.unwrap(),
            Err(Refused::EndedParent(mine.token, Status::Cancelled))
        );
        assert_eq!(
            store
                .task_count_by_status()
                .await
                .unwrap()
                .values()
                .sum::<i64>(),
            2,
            "nothing was written"
        );
    }

    pub async fn global_limit_caps_running_tasks_across_workers(store: &Store) {
        for _ in 0..8 {
            common::insert_task(store, &new_task("gpu", 0, t0(), 3)).await;
        }
        let lease = t0() + Duration::seconds(30);
        let gpu = |who: &'static str, n| async move {
            store
                .task_claim(&TaskClaim {
                    queue: "gpu",
                    worker: &worker(who),
                    kinds: None,
                    limit: n,
                    lease_until: lease,
                    now: t0(),
                    global_limit: Some(3),
                })
                .await
                .unwrap()
        };
        // Racing claims from four workers: never more than 3 in all.
        let (a, b, c, d) = tokio::join!(gpu("a", 2), gpu("b", 2), gpu("c", 2), gpu("d", 2));
        let running: Vec<_> = [a, b, c, d].into_iter().flatten().collect();
        assert_eq!(running.len(), 3);
        assert!(gpu("e", 5).await.is_empty(), "at the limit");
        let t = &running[0];
        let ok = end_attempt(
            1,
            3,
            AttemptOutcome::Succeeded(json!(1)),
            &BACKOFF,
            0.0,
            t0(),
        );
        store
            .task_end(&common::ending(t.id, 1, &ok), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(gpu("e", 5).await.len(), 1, "one slot freed");
        // Other queues are not limited by it.
        common::insert_task(store, &new_task("default", 0, t0(), 3)).await;
        assert_eq!(claim(store, "w", 5, t0()).await.len(), 1);
    }

    pub async fn first_token_is_minted_only_on_an_empty_table(store: &Store) {
        use errand::store::NewApiToken;
        use errand::tasks::{ApiToken, Role};
        let row = || NewApiToken {
            name: "bootstrap".into(),
            role: Role::Superuser,
            product: None,
            hash: ApiToken::generate().unwrap().hash(),
        };
        // Two nodes starting at once: exactly one mints.
        let (first, second) = (row(), row());
        let (a, b) = tokio::join!(
            store.token_insert_first(&first, t0()),
            store.token_insert_first(&second, t0())
        );
        assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);
        assert!(!store.token_insert_first(&row(), t0()).await.unwrap());
    }
}

mod schema {
    use super::*;

    /// The schema itself refuses rows that break the lifecycle's invariants, so
    /// no code path (nor a hand-written UPDATE) can write them.
    async fn schema_enforces_task_invariants(backend: common::Backend) {
        let db = common::TestDb::of(backend).await;
        let store = db.store();
        let task = common::insert_task(&store, &new_task("default", 0, t0(), 3)).await;
        let other = common::insert_task(&store, &new_task("default", 0, t0(), 3)).await;
        for (statement, constraint) in [
            (
                "UPDATE tasks SET finished_at = created_at WHERE id = ?1",
                "tasks_finished_iff_terminal",
            ),
            (
                "UPDATE tasks SET status = 'completed' WHERE id = ?1",
                "tasks_finished_iff_terminal",
            ),
            (
                "UPDATE tasks SET status = 'done' WHERE id = ?1",
                "tasks_status_valid",
            ),
            (
                "UPDATE tasks SET status = 'running' WHERE id = ?1",
                "tasks_running_iff_leased",
            ),
            (
                "UPDATE tasks SET attempt = 4 WHERE id = ?1",
                "tasks_attempts_valid",
            ),
            (
                "UPDATE tasks SET progress_fraction = 2 WHERE id = ?1",
                "tasks_progress_fraction_valid",
            ),
            (
                "UPDATE tasks SET status = 'waiting' WHERE id = ?1",
                "tasks_waiting_has_pending_parents",
            ),
            (
                "UPDATE tasks SET status = 'expired' WHERE id = ?1",
                "tasks_finished_iff_terminal",
            ),
            (
                "UPDATE tasks SET snoozes = -1 WHERE id = ?1",
                "tasks_snoozes_valid",
            ),
            (
                "UPDATE tasks SET schedule = 'nightly' WHERE id = ?1",
                "tasks_scheduled_with_tick",
            ),
            (
                "UPDATE tasks SET token = (SELECT token FROM tasks WHERE id = ?1) WHERE id <> ?1",
                "tasks_token_unique",
            ),
        ] {
            let error = db.refused(statement, task.id.0).await;
            // SQLite names a UNIQUE constraint by its columns.
            let named = error.contains(constraint)
                || (constraint == "tasks_token_unique" && error.contains("tasks.token"));
            assert!(named, "{statement}: {error}");
        }
        let _ = other;
    }

    on_both_stores!(schema_enforces_task_invariants);
}

/// Postgres announces a task's end to every process only when something
/// waits for it (a long poll marks it watched first, and a callback is
/// always awaited): most tasks end with nobody waiting, and a notification
/// per ended row was most of the cost of writing a batch of ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_the_ends_of_watched_tasks_only() {
    use errand::store::StoreEvent;
    use tokio_util::sync::CancellationToken;

    let (store, _db) = postgres().await;
    let listening = CancellationToken::new();
    let listener = {
        let (store, stop) = (store.clone(), listening.clone());
        tokio::spawn(async move { store.run_listener(stop).await })
    };
    let mut events = store.subscribe();
    let unwatched = suite::insert(&store, 1).await[0];
    let watched = common::insert_task(&store, &new_task("default", 0, t0(), 3)).await;
    store.task_watch(watched.token).await.unwrap();
    let claimed = suite::claim(&store, "w", 2, t0()).await;
    assert_eq!(claimed.len(), 2);
    // The listener says Resync once it listens.
    next_event(&mut events, |e| *e == StoreEvent::Resync).await;
    let done = end_attempt(
        1,
        3,
        AttemptOutcome::Succeeded(json!(1)),
        &BACKOFF,
        0.0,
        t0(),
    );
    // The unwatched task ends first: had it been announced, its event
    // would come before the watched one's.
    for id in [unwatched, watched.id] {
        let ended = store.task_end(&common::ending(id, 1, &done), t0()).await;
        assert!(ended.unwrap().is_some());
    }
    let first_end = next_event(&mut events, |e| matches!(e, StoreEvent::Ended { .. })).await;
    assert_eq!(
        first_end,
        StoreEvent::Ended {
            token: watched.token
        }
    );
    listening.cancel();
    listener.await.unwrap();
}

/// The next event `wanted` accepts, within ten seconds.
async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<errand::store::StoreEvent>,
    wanted: fn(&errand::store::StoreEvent) -> bool,
) -> errand::store::StoreEvent {
    let wait = std::time::Duration::from_secs(10);
    tokio::time::timeout(wait, async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return event,
                Ok(_) => continue,
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("an event")
}

/// Through PgBouncer without `database.pooled`, the pooler refuses errand's
/// startup settings: a clear error that says what to set, not a wait for a
/// database that will never take the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooler_errand_was_not_told_of_is_named_and_not_waited_for() {
    let db = common::TestDb::postgres().await;
    let bouncer = common::servers::PgBouncer::launch(5432);
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let mut settings = errand::config::Settings::defaults();
    settings.database.url = bouncer.url(&name);
    let store = Store::connect(&settings.database).unwrap();
    let e = store.ping().await.unwrap_err();
    assert!(matches!(e, StoreError::Pooler(_)), "{e:?}");
    assert!(!e.is_transient());
    assert!(e.to_string().contains("database.pooled"), "{e}");
}
