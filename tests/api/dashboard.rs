//! What the dashboard and browser clients rely on beyond the task routes:
//! `GET /v1/me`, stats of a filtered set and by queue, the throughput of
//! the recent past, and cross-origin requests (CORS).

use std::time::Duration;

use errand::app::Mode;
use errand::config::CorsOrigins;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestApp, TestDb};

on_both_stores!(
    me_says_who_the_token_is_and_what_it_may_do,
    stats_take_the_listing_filter_and_count_by_queue,
    throughput_counts_what_ended_per_interval,
);

async fn get(client: &Client, path: &str) -> reqwest::Response {
    client
        .http
        .get(format!("{}{path}", client.base))
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("GET")
}

async fn me_says_who_the_token_is_and_what_it_may_do(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        s.auth.cancel_role = "owner".into();
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", Some("shop")).await);
    let admin = Client::new(&app.base, &app.token("ops", "admin", Some("shop")).await);
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let me = alice.get_json("/v1/me").await;
    assert_eq!(
        me,
        json!({"name": "alice", "role": "user", "product": "shop",
               "may": {"cancel": "own", "retry": false, "cancel_matching": false,
                       "retry_matching": false, "stats": false, "workers": false,
                       "queues": false, "pause_queues": false, "schedules": false}})
    );
    let me = admin.get_json("/v1/me").await;
    assert_eq!(me["may"]["cancel"], "seen");
    assert_eq!(me["may"]["stats"], true);
    assert_eq!(me["may"]["retry"], false);
    assert_eq!(me["may"]["queues"], true);
    assert_eq!(me["may"]["pause_queues"], false);
    assert_eq!(me["may"]["schedules"], true);
    let me = root.get_json("/v1/me").await;
    assert_eq!(me["role"], "superuser");
    assert_eq!(me["may"]["retry"], true);
    assert_eq!(me["may"]["cancel_matching"], true);
    assert_eq!(me["may"]["retry_matching"], true);
    assert_eq!(me["may"]["pause_queues"], true);
    let nobody = Client::new(&app.base, "errand_not_a_token");
    assert_eq!(get(&nobody, "/v1/me").await.status(), 401);

    // With the default policy, a user may cancel nothing.
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let bob = Client::new(&app.base, &app.token("bob", "user", None).await);
    assert_eq!(bob.get_json("/v1/me").await["may"]["cancel"], "nothing");
}

async fn stats_take_the_listing_filter_and_count_by_queue(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let parked = |queue: &str| json!({"kind": "sleep", "payload": {"seconds": 1}, "delay": 3600, "queue": queue});
    for queue in ["default", "default", "media"] {
        root.create_ok(parked(queue)).await;
    }
    let stats = root.get_json("/v1/tasks/stats").await;
    assert_eq!(stats["total"], 3);
    assert_eq!(
        stats["by_queue"],
        json!({"default": {"queued": 2}, "media": {"queued": 1}})
    );
    assert!(stats.get("throughput").is_none(), "only with interval");
    let media = root.get_json("/v1/tasks/stats?queue=media").await;
    assert_eq!(media["total"], 1);
    assert_eq!(media["by_status"]["queued"], 1);
    assert_eq!(media["by_kind"], json!({"sleep": {"queued": 1}}));
    let none = root.get_json("/v1/tasks/stats?status=running").await;
    assert_eq!(none["total"], 0);
    for (query, key) in [
        ("colour=red", "colour"),
        ("status=asleep", "status"),
        ("interval=5s", "interval"),
        ("interval=1m&since=yesterday", "since"),
        ("since=2026-01-01T00:00:00Z", "since"),
        ("interval=10s&since=2000-01-01T00:00:00Z", "since"),
    ] {
        let r = get(&root, &format!("/v1/tasks/stats?{query}")).await;
        assert_eq!(r.status(), 400, "?{query}");
        let body: Value = r.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with(key), "?{query}: {detail}");
    }
}

async fn throughput_counts_what_ended_per_interval(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |_| {}).await;
    let root = Client::new(&app.base, &app.token("root", "superuser", None).await);
    let admin = Client::new(&app.base, &app.token("ops", "admin", Some("blog")).await);
    let mut tokens = Vec::new();
    for fail in [false, false, true] {
        let body = json!({"kind": "sleep", "payload": {"seconds": 0, "fail": fail},
                          "max_attempts": 1});
        tokens.push(root.create_ok(body).await);
    }
    for token in &tokens {
        root.wait_done(token, Duration::from_secs(20)).await;
    }
    let stats = root.get_json("/v1/tasks/stats?interval=1m").await;
    let throughput = &stats["throughput"];
    assert_eq!(throughput["interval"], 60);
    let intervals = throughput["intervals"].as_array().unwrap();
    assert!(
        (60..=61).contains(&intervals.len()),
        "an hour: {}",
        intervals.len()
    );
    let ended = |status: &str| -> i64 {
        intervals
            .iter()
            .map(|i| i["ended"][status].as_i64().unwrap())
            .sum()
    };
    assert_eq!(ended("completed"), 2);
    assert_eq!(ended("failed"), 1);
    assert_eq!(ended("dropped"), 0, "every terminal status is there");
    let last = intervals.last().unwrap();
    let start: chrono::DateTime<chrono::Utc> = last["start"].as_str().unwrap().parse().unwrap();
    assert!(chrono::Utc::now() - start < chrono::Duration::seconds(61));
    // Scoped like the rest: the blog's admin saw none of them end.
    let blog = admin.get_json("/v1/tasks/stats?interval=1m").await;
    let intervals = blog["throughput"]["intervals"].as_array().unwrap();
    assert!(intervals.iter().all(|i| i["ended"]["completed"] == 0));
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let path = format!(
        "/v1/tasks/stats?interval=30s&since={}&status=failed",
        urlencode(&since)
    );
    let stats = root.get_json(&path).await;
    let intervals = stats["throughput"]["intervals"].as_array().unwrap();
    assert!((10..=11).contains(&intervals.len()));
    let failed: i64 = intervals
        .iter()
        .map(|i| i["ended"]["failed"].as_i64().unwrap() + i["ended"]["completed"].as_i64().unwrap())
        .sum();
    assert_eq!(failed, 1, "the filter holds for the throughput too");
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A page of another origin may call the API only if listed: its preflight
/// is answered, and its answers carry what it needs to read (ETag,
/// Retry-After, Location). Other origins get nothing of the sort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_origins_may_call_the_api_from_a_browser() {
    let db = TestDb::postgres().await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        s.http.cors_origins = CorsOrigins::parse(&["http://app.example".into()]).unwrap();
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let preflight = |origin: &'static str| {
        let http = alice.http.clone();
        let url = app.url("/v1/tasks");
        async move {
            http.request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type, idempotency-key",
                )
                .send()
                .await
                .unwrap()
        }
    };
    let r = preflight("http://app.example").await;
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "http://app.example");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    for method in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(method), "{method} in {methods}");
    }
    let headers = h["access-control-allow-headers"].to_str().unwrap();
    for needed in [
        "authorization",
        "content-type",
        "idempotency-key",
        "if-none-match",
    ] {
        assert!(headers.contains(needed), "{needed}: {headers}");
    }
    let r = preflight("http://evil.example").await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let create = |origin: &'static str| {
        let http = alice.http.clone();
        let (url, token) = (app.url("/v1/tasks"), alice.token.clone());
        async move {
            http.post(url)
                .header("origin", origin)
                .bearer_auth(token)
                .json(&json!({"kind": "sleep", "payload": {"seconds": 1}}))
                .send()
                .await
                .unwrap()
        }
    };
    let r = create("http://app.example").await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    for needed in ["etag", "retry-after", "location"] {
        assert!(exposed.contains(needed), "{needed}: {exposed}");
    }
    assert!(r.headers()["vary"].to_str().unwrap().contains("origin"));
    // Another origin's request is served (the browser keeps the answer from
    // its page), without the headers that would let the page read it.
    let r = create("http://evil.example").await;
    assert_eq!(r.status(), 202);
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    // By default no origin is listed: a preflight gets no permission.
    let db = TestDb::postgres().await;
    let plain = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let r = alice
        .http
        .request(reqwest::Method::OPTIONS, plain.url("/v1/tasks"))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert!(r.status().is_client_error());
}
