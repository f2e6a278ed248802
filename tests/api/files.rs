//! Task files over HTTP: upload, the task's `files`, download (Range,
//! HEAD, ETag), the refusals (size, digest, someone else's file), multipart
//! create, and retention taking files with their task.

use std::time::Duration;

use base64::Engine as _;
use errand::app::Mode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Backend, Client, TestApp, TestDb, eventually, pattern, sha256_hex};

on_both_stores!(
    uploaded_file_round_trips_through_a_task_with_equal_digests,
    downloads_take_ranges_head_and_etags,
    refused_uploads_and_file_ids_leave_nothing_behind,
    multipart_create_takes_the_task_and_its_files_in_one_request,
    retention_deletes_files_with_their_task,
    an_upload_slower_than_the_writing_timeout_is_not_cut_short,
);

/// Small chunks, so that even small files span several.
fn small_chunks(s: &mut errand::config::Settings) {
    s.files.chunk_bytes = 64 * 1024;
}

async fn files_left(db: &TestDb) -> i64 {
    db.count("SELECT count(*) FROM files").await
        + db.count("SELECT count(*) FROM file_chunks").await
}

async fn uploaded_file_round_trips_through_a_task_with_equal_digests(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, small_chunks).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let data = pattern(300_000);
    let file = alice.upload_ok(data.clone()).await;
    assert_eq!(file["size"], 300_000);
    assert_eq!(file["sha256"], sha256_hex(&data));
    assert_eq!(file["content_type"], "audio/wav");
    let token = alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0}, "files": {"audio": file["id"]}}),
        )
        .await;
    let task = alice.wait_done(&token, Duration::from_secs(20)).await;
    let input = &task["files"]["inputs"][0];
    assert_eq!(input["name"], "audio");
    assert_eq!(input["sha256"], file["sha256"]);
    assert_eq!(input["href"], format!("/v1/tasks/{token}/files/audio"));
    let r = alice.download(input["href"].as_str().unwrap(), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert_eq!(r.headers()["content-length"], "300000");
    let got = r.bytes().await.unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
    // Someone else sees neither the task nor its file.
    let bob = Client::new(&app.base, &app.token("bob", "user", None).await);
    assert_eq!(
        bob.download(input["href"].as_str().unwrap(), &[])
            .await
            .status(),
        404
    );
    assert_eq!(
        alice
            .download(&format!("/v1/tasks/{token}/files/nope"), &[])
            .await
            .status(),
        404
    );
}

async fn downloads_take_ranges_head_and_etags(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, small_chunks).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let data = pattern(200_000);
    let file = alice.upload_ok(data.clone()).await;
    let token = alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0}, "files": {"audio": file["id"]}}),
        )
        .await;
    let href = format!("/v1/tasks/{token}/files/audio");
    // A range across chunk boundaries (64 KiB).
    let r = alice
        .download(&href, &[("range", "bytes=65000-140000")])
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 65000-140000/200000");
    assert_eq!(&r.bytes().await.unwrap()[..], &data[65000..=140000]);
    let r = alice.download(&href, &[("range", "bytes=-10")]).await;
    assert_eq!(&r.bytes().await.unwrap()[..], &data[199_990..]);
    let r = alice.download(&href, &[("range", "bytes=200000-")]).await;
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */200000");
    let etag = format!("\"{}\"", sha256_hex(&data));
    let r = alice.download(&href, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    let head = alice
        .http
        .head(format!("{}{href}", alice.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "200000");
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    assert!(head.bytes().await.unwrap().is_empty());
}

async fn refused_uploads_and_file_ids_leave_nothing_behind(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, |s| {
        small_chunks(s);
        s.files.max_bytes = 100_000;
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    // 413 past files.max_bytes, whether the length is declared or not.
    let r = alice.upload(pattern(150_000), "audio/wav").await;
    assert_eq!(r.status(), 413);
    let chunks =
        futures_util::stream::iter((0..15).map(|_| Ok::<_, std::io::Error>(pattern(10_000))));
    let r = alice
        .http
        .post(format!("{}/v1/files", alice.base))
        .bearer_auth(&alice.token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["status"], 413, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("files.max_bytes")
    );
    // 400 when the declared digest is not the body's.
    let wrong = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"other"));
    let r = alice
        .http
        .post(format!("{}/v1/files", alice.base))
        .bearer_auth(&alice.token)
        .header("content-digest", format!("sha-256=:{wrong}:"))
        .body(pattern(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(files_left(&db).await, 0, "nothing kept");
    // A right digest is fine.
    let right = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(pattern(1000)));
    let r = alice
        .http
        .post(format!("{}/v1/files", alice.base))
        .bearer_auth(&alice.token)
        .header("content-digest", format!("sha-256=:{right}:"))
        .body(pattern(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Someone else's file, or none, can't be used: 422, and no task.
    let bob = Client::new(&app.base, &app.token("bob", "user", None).await);
    let bobs = bob.upload_ok(pattern(10)).await;
    for id in [
        bobs["id"].clone(),
        json!("0123456789abcdef0123456789abcdef"),
    ] {
        let r = alice
            .create(json!({"kind": "sleep", "payload": {"seconds": 0}, "files": {"audio": id}}))
            .await;
        assert_eq!(r.status(), 422);
        let problem: Value = r.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("files.audio"),
            "{problem}"
        );
    }
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 0);
}

/// A multipart body: a `task` part, then file parts.
fn form(task: &Value, files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "errand-test-boundary-7f3a";
    let mut body = Vec::new();
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"task\"; filename=\"task.json\"\r\nContent-Type: application/json\r\n\r\n{task}\r\n").bytes());
    for (name, data) in files {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.wav\"\r\nContent-Type: audio/wav\r\n\r\n").bytes());
        body.extend_from_slice(data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(client: &Client, content_type: String, body: Vec<u8>) -> reqwest::Response {
    client
        .http
        .post(format!("{}/v1/tasks", client.base))
        .bearer_auth(&client.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn multipart_create_takes_the_task_and_its_files_in_one_request(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Api, small_chunks).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let data = pattern(150_000);
    let task = json!({"kind": "sleep", "payload": {"seconds": 0}});
    let (content_type, body) = form(&task, &[("audio", &data)]);
    let r = post_form(&alice, content_type, body).await;
    assert_eq!(r.status(), 202);
    let created: Value = r.json().await.unwrap();
    let input = &created["files"]["inputs"][0];
    assert_eq!(
        (&input["name"], &input["size"]),
        (&json!("audio"), &json!(150_000))
    );
    assert_eq!(input["sha256"], sha256_hex(&data));
    let got = alice.download(input["href"].as_str().unwrap(), &[]).await;
    assert_eq!(sha256_hex(&got.bytes().await.unwrap()), sha256_hex(&data));
    // A refused task keeps none of its files.
    let before = db.count("SELECT count(*) FROM files").await;
    let (content_type, body) = form(&json!({"kind": "nope"}), &[("audio", &data)]);
    assert_eq!(post_form(&alice, content_type, body).await.status(), 422);
    let (content_type, body) = form(&task, &[("../etc", &data)]);
    assert_eq!(post_form(&alice, content_type, body).await.status(), 422);
    assert_eq!(db.count("SELECT count(*) FROM files").await, before);
}

async fn retention_deletes_files_with_their_task(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        small_chunks(s);
        s.retention.completed = Duration::from_secs(1);
        s.retention.interval = Duration::from_millis(200);
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let kept = alice.upload_ok(pattern(200_000)).await;
    let file = alice.upload_ok(pattern(200_000)).await;
    let token = alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0}, "files": {"audio": file["id"]}}),
        )
        .await;
    alice.wait_done(&token, Duration::from_secs(20)).await;
    eventually(
        "the task and its file to go",
        Duration::from_secs(20),
        || async {
            let gone = alice.get(&token).await.status() == 404;
            (gone && db.count("SELECT count(*) FROM files").await == 1).then_some(())
        },
    )
    .await;
    // What is left is the upload no task used, not yet expired (24 h).
    let id = kept["id"].as_str().unwrap();
    let left = db.count("SELECT count(*) FROM file_chunks").await;
    assert_eq!(
        left, 4,
        "the unused upload's chunks, 200 kB in 64 KiB: {id}"
    );
}

/// A writer renews its file as it goes: only one that died is abandoned,
/// however slow the client.
async fn an_upload_slower_than_the_writing_timeout_is_not_cut_short(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |s| {
        small_chunks(s);
        s.files.writing_timeout = Duration::from_secs(1);
        s.retention.interval = Duration::from_millis(100);
    })
    .await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    // Ten pieces, 300 ms apart: three times the writing timeout.
    let pieces = futures_util::stream::unfold(0, |i| async move {
        if i == 10 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        Some((Ok::<_, std::io::Error>(pattern(100_000)), i + 1))
    });
    let r = alice
        .http
        .post(format!("{}/v1/files", alice.base))
        .bearer_auth(&alice.token)
        .body(reqwest::Body::wrap_stream(pieces))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let file: Value = r.json().await.unwrap();
    assert_eq!(file["size"], 1_000_000);
    assert_eq!(file["sha256"], sha256_hex(&pattern(100_000).repeat(10)));
}
