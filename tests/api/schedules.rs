//! Schedules over HTTP: made, listed with their next ticks and last task,
//! changed, paused, resumed and deleted; the configuration's, which the API
//! may only pause; who may see which; bad input.

use std::time::Duration;

use errand::app::Mode;
use errand::config::ScheduleSettings;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestApp, TestDb, eventually};

on_both_stores!(
    a_schedule_fires_each_second_and_is_changed_paused_and_deleted,
    the_configurations_schedules_are_written_at_start_and_only_paused_here,
    bad_schedules_are_refused_naming_the_field_and_write_nothing,
    admins_see_and_steer_only_their_products_schedules,
);

async fn send(client: &Client, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let url = format!("{}{path}", client.base);
    let request = match method {
        "POST" => client.http.post(url),
        "PATCH" => client.http.patch(url),
        "DELETE" => client.http.delete(url),
        "GET" => client.http.get(url),
        other => panic!("method {other}"),
    };
    let request = request.bearer_auth(&client.token);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .await
    .expect("request")
}

/// The tokens of the tasks schedule `name` made, by the listing's filter.
async fn tasks_of(client: &Client, name: &str) -> Vec<Value> {
    let page = client
        .get_json(&format!("/v1/tasks?schedule={name}&limit=1000"))
        .await;
    page["tasks"].as_array().unwrap().clone()
}

async fn a_schedule_fires_each_second_and_is_changed_paused_and_deleted(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let r = send(
        &root,
        "POST",
        "/v1/schedules",
        Some(
            json!({"name": "beat", "cron": "* * * * * *", "kind": "sleep",
                    "payload": {"seconds": 0}, "priority": 2}),
        ),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/v1/schedules/beat");
    let made: Value = r.json().await.unwrap();
    assert_eq!(made["timezone"], "UTC");
    assert_eq!(
        (made["missed"].clone(), made["overlap"].clone()),
        (json!("skip"), json!("allow"))
    );
    assert_eq!(
        (made["source"].clone(), made["owner"].clone()),
        (json!("api"), json!("root"))
    );
    let ticks: Vec<chrono::DateTime<chrono::Utc>> = made["next_ticks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ticks.len(), 5);
    assert!(
        ticks
            .windows(2)
            .all(|w| w[1] - w[0] == chrono::Duration::seconds(1)),
        "{ticks:?}"
    );

    let fired = eventually("three ticks' tasks", Duration::from_secs(20), || async {
        let tasks = tasks_of(&root, "beat").await;
        (tasks.len() >= 3).then_some(tasks)
    })
    .await;
    let task = &fired[0];
    assert_eq!(task["schedule"], "beat");
    assert_eq!(task["priority"], 2);
    assert_eq!(task["owner"], "root");
    assert!(
        task["scheduled_for"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    let listed = root.get_json("/v1/schedules").await;
    let beat = &listed["schedules"][0];
    assert_eq!(beat["name"], "beat");
    let last = &beat["last_task"];
    assert!(last["token"].is_string(), "{beat}");
    assert_eq!(
        last["self"],
        format!("/v1/tasks/{}", last["token"].as_str().unwrap())
    );
    assert_eq!(beat["links"]["tasks"], "/v1/tasks?schedule=beat");
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("errand_schedule_ticks_total{schedule=\"beat\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("errand_queue_oldest_queued_seconds"),
        "{metrics}"
    );

    // Changed: a merge patch; the name stays.
    let r = send(
        &root,
        "PATCH",
        "/v1/schedules/beat",
        Some(json!({"payload": {"seconds": 0.1}, "priority": null})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(changed["payload"], json!({"seconds": 0.1}));
    assert!(
        changed.get("priority").is_none(),
        "back to the default: {changed}"
    );
    let r = send(
        &root,
        "PATCH",
        "/v1/schedules/beat",
        Some(json!({"name": "other"})),
    )
    .await;
    crate::problem(r, 422).await;
    let r = send(
        &root,
        "PATCH",
        "/v1/schedules/beat",
        Some(json!({"cron": "61 * * * *"})),
    )
    .await;
    crate::problem(r, 422).await;

    // Paused: its ticks make nothing; resumed: they do again.
    let r = send(&root, "POST", "/v1/schedules/beat/pause", None).await;
    assert_eq!(r.status(), 200);
    let paused: Value = r.json().await.unwrap();
    assert_eq!(
        (paused["paused"].clone(), paused["paused_by"].clone()),
        (json!(true), json!("root"))
    );
    // Once the pause is written, no pass fires the schedule (a pass moves
    // it on only if it is not paused, in the transaction of its tasks).
    let before = tasks_of(&root, "beat").await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        tasks_of(&root, "beat").await.len(),
        before,
        "no task while paused"
    );
    assert_eq!(
        send(&root, "POST", "/v1/schedules/beat/resume", None)
            .await
            .status(),
        200
    );
    eventually(
        "a tick after the resume",
        Duration::from_secs(20),
        || async { (tasks_of(&root, "beat").await.len() > before).then_some(()) },
    )
    .await;

    let r = send(&root, "DELETE", "/v1/schedules/beat", None).await;
    assert_eq!(r.status(), 204);
    crate::problem(send(&root, "GET", "/v1/schedules/beat", None).await, 404).await;
    assert!(!tasks_of(&root, "beat").await.is_empty(), "its tasks stay");
}

async fn the_configurations_schedules_are_written_at_start_and_only_paused_here(backend: Backend) {
    let db = TestDb::of(backend).await;
    let declared = ScheduleSettings {
        cron: "0 3 * * *".into(),
        timezone: Some("Europe/Berlin".into()),
        kind: "sleep".into(),
        payload: Some(json!({"seconds": 1})),
        queue: None,
        priority: None,
        max_attempts: Some(2),
        timeout: Some(Duration::from_secs(60)),
        owner: Some("ops".into()),
        missed: Some("once".into()),
        overlap: Some("skip".into()),
    };
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        s.schedules.insert("nightly".into(), declared.clone());
    })
    .await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let nightly = root.get_json("/v1/schedules/nightly").await;
    assert_eq!(nightly["source"], "config");
    assert_eq!(nightly["owner"], "ops");
    assert_eq!(nightly["timezone"], "Europe/Berlin");
    assert_eq!(
        (nightly["missed"].clone(), nightly["overlap"].clone()),
        (json!("once"), json!("skip"))
    );
    assert_eq!(nightly["timeout"], 60.0);
    let first: chrono::DateTime<chrono::Utc> =
        nightly["next_ticks"][0].as_str().unwrap().parse().unwrap();
    let local = first.with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!(local.format("%H:%M:%S").to_string(), "03:00:00", "{first}");
    let r = send(
        &root,
        "PATCH",
        "/v1/schedules/nightly",
        Some(json!({"priority": 1})),
    )
    .await;
    let problem = crate::problem(r, 409).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("[schedules.nightly]"),
        "{problem}"
    );
    crate::problem(
        send(&root, "DELETE", "/v1/schedules/nightly", None).await,
        409,
    )
    .await;
    assert_eq!(
        send(&root, "POST", "/v1/schedules/nightly/pause", None)
            .await
            .status(),
        200
    );
    app.stop().await;

    // Started again without it, errand forgets it; with a bad one, it
    // refuses to start, naming the key.
    let again = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let root = Client::new(&again.base, &root.token);
    crate::problem(send(&root, "GET", "/v1/schedules/nightly", None).await, 404).await;
    let mut settings = crate::common::test_settings(&db);
    settings.schedules.insert(
        "bad".into(),
        ScheduleSettings {
            cron: "* * *".into(),
            ..declared.clone()
        },
    );
    let err = errand::app::App::build(settings.clone(), Mode::Serve)
        .err()
        .unwrap();
    assert!(err.to_string().contains("schedules.bad.cron"), "{err}");
    settings.schedules.insert(
        "bad".into(),
        ScheduleSettings {
            timezone: Some("Moon/Base".into()),
            ..declared.clone()
        },
    );
    let err = errand::app::App::build(settings.clone(), Mode::Serve)
        .err()
        .unwrap();
    assert!(err.to_string().contains("schedules.bad.timezone"), "{err}");
    settings.schedules.insert(
        "bad".into(),
        ScheduleSettings {
            kind: "nope".into(),
            ..declared
        },
    );
    let err = errand::app::App::build(settings, Mode::Serve)
        .err()
        .unwrap();
    assert!(err.to_string().contains("schedules.bad.kind"), "{err}");
}

async fn bad_schedules_are_refused_naming_the_field_and_write_nothing(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let good =
        json!({"name": "ok", "cron": "*/5 * * * *", "kind": "sleep", "payload": {"seconds": 1}});
    for (change, field) in [
        (json!({"name": "no spaces"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"cron": "* * * *"}), "cron"),
        (json!({"cron": "every minute"}), "cron"),
        (json!({"cron": "0 0 31 2 *"}), "cron"),
        (json!({"timezone": "Atlantis/Capital"}), "timezone"),
        (json!({"kind": "nope"}), "unknown kind"),
        (json!({"payload": {"seconds": "ten"}}), "invalid payload"),
        (json!({"queue": "a b"}), "queue"),
        (json!({"max_attempts": 0}), "max_attempts"),
        (json!({"timeout": -1}), "timeout"),
        (json!({"missed": "sometimes"}), "missed"),
        (json!({"overlap": "never"}), "overlap"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let mut body = good.clone();
        body.as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        let r = send(&root, "POST", "/v1/schedules", Some(body.clone())).await;
        let problem = crate::problem(r, 422).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{body}: {detail}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM schedules").await,
        0,
        "nothing written"
    );
    crate::problem(
        send(&alice, "POST", "/v1/schedules", Some(good.clone())).await,
        403,
    )
    .await;
    crate::problem(send(&alice, "GET", "/v1/schedules", None).await, 403).await;
    assert_eq!(
        send(&root, "POST", "/v1/schedules", Some(good.clone()))
            .await
            .status(),
        201
    );
    crate::problem(send(&root, "POST", "/v1/schedules", Some(good)).await, 409).await;
    crate::problem(send(&root, "GET", "/v1/schedules/a%20b", None).await, 404).await;
    crate::problem(
        send(&root, "POST", "/v1/schedules/none/pause", None).await,
        404,
    )
    .await;
}

async fn admins_see_and_steer_only_their_products_schedules(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let shop = Client::new(
        &app.base,
        &app.token("shop-ops", "admin", Some("shop")).await,
    );
    let blog = Client::new(
        &app.base,
        &app.token("blog-ops", "admin", Some("blog")).await,
    );
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let body = json!({"name": "shop-report", "cron": "0 * * * *", "kind": "sleep",
                      "payload": {"seconds": 1}});
    let r = send(&shop, "POST", "/v1/schedules", Some(body)).await;
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    assert_eq!(
        (made["owner"].clone(), made["product"].clone()),
        (json!("shop-ops"), json!("shop"))
    );
    let names = |list: Value| -> Vec<String> {
        list["schedules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(shop.get_json("/v1/schedules").await), ["shop-report"]);
    assert!(names(blog.get_json("/v1/schedules").await).is_empty());
    assert_eq!(names(root.get_json("/v1/schedules").await), ["shop-report"]);
    crate::problem(
        send(&blog, "GET", "/v1/schedules/shop-report", None).await,
        404,
    )
    .await;
    crate::problem(
        send(&blog, "POST", "/v1/schedules/shop-report/pause", None).await,
        404,
    )
    .await;
    crate::problem(
        send(&blog, "DELETE", "/v1/schedules/shop-report", None).await,
        404,
    )
    .await;
    assert_eq!(
        send(&shop, "POST", "/v1/schedules/shop-report/pause", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&root, "DELETE", "/v1/schedules/shop-report", None)
            .await
            .status(),
        204
    );
}
