//! Signed callbacks: delivery, retries, 410, and the SSRF guard.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use errand::app::Mode;
use errand::config::Settings;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestApp, TestDb, eventually};

on_both_stores!(
    callback_arrives_signed_and_is_retried_after_a_500,
    callback_answered_410_is_not_retried,
    callback_redirect_is_not_followed,
    private_callback_urls_are_refused_unless_allowed,
);

/// 24 bytes of key, as `callbacks.secret`.
const SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3ItdGhlLXRlc3Qtc3VpdGU=";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

/// A webhook receiver on a real port: answers with the statuses it is
/// given, in order (then 200), and keeps what it got.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    fn start(answers: &[u16]) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let plan = Arc::new(Mutex::new(
            answers.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/errand", listener.local_addr().unwrap());
        let (seen, plan2) = (got.clone(), plan.clone());
        let server = actix_web::HttpServer::new(move || {
            let (seen, plan) = (seen.clone(), plan2.clone());
            actix_web::App::new().default_service(web::to(
                move |req: HttpRequest, body: web::Bytes| {
                    let (seen, plan) = (seen.clone(), plan.clone());
                    async move {
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(n, v)| {
                                (n.to_string(), v.to_str().unwrap_or_default().to_string())
                            })
                            .collect();
                        seen.lock().unwrap().push(Received {
                            headers,
                            body: body.to_vec(),
                        });
                        let status = plan.lock().unwrap().pop_front().unwrap_or(200);
                        let mut response = HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(status).unwrap(),
                        );
                        if (300..400).contains(&status) {
                            // Somewhere a delivery must never follow.
                            response.insert_header(("location", "http://127.0.0.1:9/elsewhere"));
                        }
                        response.finish()
                    }
                },
            ))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver { url, got, handle }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

/// A Standard Webhooks verifier, written from the specification (not with
/// errand's signer): the signature must be the HMAC-SHA256 of
/// `id.timestamp.body` under the secret's key, and the timestamp recent.
fn verify(secret: &str, r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let (id, ts) = (r.header("webhook-id"), r.header("webhook-timestamp"));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let fresh = (chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap()).abs() < 300;
    fresh
        && r.header("webhook-signature")
            .split(' ')
            .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
}

/// The first callback delivery task in `client`'s listing, once it has ended.
async fn ended_delivery(app: &TestApp, client: &Client, timeout: Duration) -> Value {
    eventually("the delivery task to end", timeout, || async {
        let r = client
            .http
            .get(app.url("/v1/tasks?kind=callback"))
            .bearer_auth(&client.token)
            .send()
            .await
            .ok()?;
        let listed: Value = r.json().await.ok()?;
        let delivery = listed["tasks"].get(0)?.clone();
        (delivery["done"] == true).then_some(delivery)
    })
    .await
}

fn callbacks_on(s: &mut Settings) {
    s.callbacks.secret = SECRET.into();
    s.callbacks.allow_private_networks = true; // the receiver is on loopback
    let callback = s.kinds.entry("callback".into()).or_default();
    callback.backoff_base = Some(Duration::from_millis(200));
}

async fn callback_arrives_signed_and_is_retried_after_a_500(backend: Backend) {
    let db = TestDb::of(backend).await;
    let receiver = Receiver::start(&[500]);
    let app = TestApp::spawn(&db, Mode::Serve, callbacks_on).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    let task = alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0.1}, "callback_url": receiver.url}),
        )
        .await;
    let done = alice.wait_done(&task, Duration::from_secs(10)).await;
    let got = eventually(
        "a delivery after a 500",
        Duration::from_secs(15),
        || async {
            let got = receiver.got();
            (got.len() >= 2).then_some(got)
        },
    )
    .await;
    assert_eq!(got.len(), 2, "one failed attempt, one that succeeded");
    for r in &got {
        assert!(
            verify(SECRET, r),
            "a Standard Webhooks verifier accepts it: {r:?}"
        );
        assert_eq!(r.header("content-type"), "application/json");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, done, "the task's final JSON");
    }
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "the same id on retry"
    );
    assert!(got[0].header("webhook-id").starts_with("msg_"));

    // Delivery is a task of its own, in the owner's listing.
    let delivery = ended_delivery(&app, &alice, Duration::from_secs(10)).await;
    assert_eq!(delivery["status"], "completed");
    assert_eq!(delivery["attempt"], 2);
    assert_eq!(delivery["result"], json!({"status": 200}));
    assert!(
        delivery["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    // Clients can't make deliveries of their own.
    let r = alice
        .create(json!({"kind": "callback", "payload": {}}))
        .await;
    assert_eq!(r.status(), 422);
}

async fn callback_answered_410_is_not_retried(backend: Backend) {
    let db = TestDb::of(backend).await;
    let receiver = Receiver::start(&[410]);
    let app = TestApp::spawn(&db, Mode::Serve, callbacks_on).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0}, "callback_url": receiver.url}),
        )
        .await;
    let delivery = ended_delivery(&app, &alice, Duration::from_secs(15)).await;
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempt"], 1, "410 Gone stops delivery");
    assert_eq!(receiver.got().len(), 1);
}

async fn private_callback_urls_are_refused_unless_allowed(backend: Backend) {
    let db = TestDb::of(backend).await;
    let guarded = TestApp::spawn(&db, Mode::Api, |s| s.callbacks.secret = SECRET.into()).await;
    let token = guarded.token("alice", "user", None).await;
    let alice = Client::new(&guarded.base, &token);
    for (url, why) in [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost:9/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://10.0.0.5/hook", "private"),
        ("http://192.168.1.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("ftp://example.com/hook", "http or https"),
        ("https://user:secret@example.com/hook", "credentials"),
        ("not a url", "not a URL"),
    ] {
        let r = alice
            .create(json!({"kind": "sleep", "payload": {"seconds": 0}, "callback_url": url}))
            .await;
        assert_eq!(r.status(), 422, "{url}");
        let detail = r.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            detail.starts_with("callback_url") && detail.contains(why),
            "{url}: {detail}"
        );
    }
    let open = TestApp::spawn(&db, Mode::Api, callbacks_on).await;
    let r = Client::new(&open.base, &token)
        .create(json!({"kind": "sleep", "payload": {"seconds": 0}, "callback_url": "http://127.0.0.1:9/hook"}))
        .await;
    assert_eq!(
        r.status(),
        202,
        "callbacks.allow_private_networks lifts the rule"
    );
    let off = TestApp::spawn(&db, Mode::Api, |_| {}).await;
    let r = Client::new(&off.base, &token)
        .create(json!({"kind": "sleep", "payload": {"seconds": 0}, "callback_url": "https://example.com/hook"}))
        .await;
    assert_eq!(r.status(), 422);
    let detail = r.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("callbacks.secret"), "{detail}");
    assert_eq!(
        db.count("SELECT count(*) FROM tasks").await,
        1,
        "only the allowed one"
    );
}

async fn callback_redirect_is_not_followed(backend: Backend) {
    let db = TestDb::of(backend).await;
    let receiver = Receiver::start(&[302]);
    let app = TestApp::spawn(&db, Mode::Serve, callbacks_on).await;
    let alice = Client::new(&app.base, &app.token("alice", "user", None).await);
    alice
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0}, "callback_url": receiver.url}),
        )
        .await;
    let delivery = ended_delivery(&app, &alice, Duration::from_secs(15)).await;
    assert_eq!(delivery["status"], "completed");
    assert_eq!(
        delivery["attempt"], 2,
        "a redirect is an answer to retry, not a place to go"
    );
    assert!(
        delivery["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("302")
    );
    assert_eq!(receiver.got().len(), 2, "both attempts came here");
}
