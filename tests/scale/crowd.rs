//! Many clients at once through nginx: a prober that records every answer,
//! and a crowd of long-pollers whose tasks end while they wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Cluster;
use crate::common::{Client, eventually};

/// GETs `token` every 50 ms for `for_how_long`: each answer's status, and
/// whether it carried `Retry-After`. A request that gets no answer at all
/// (nginx itself unreachable) fails the test.
pub async fn probe(client: Client, token: String, for_how_long: Duration) -> Vec<(u16, bool)> {
    let until = Instant::now() + for_how_long;
    let mut seen = Vec::new();
    while Instant::now() < until {
        let r = client.get(&token).await;
        seen.push((r.status().as_u16(), r.headers().contains_key("retry-after")));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// How one poller fared.
struct Polled {
    /// When it saw its task end.
    answered: Instant,
    /// Answers other than 200 and 304, and requests that got none.
    errors: Vec<String>,
}

/// `n` pollers long-poll their own task each through nginx while the tasks
/// are cancelled over `spread`. Every poller sees its task end, no request
/// fails, and while they all wait the API nodes hold no more database
/// connections than their pools: a waiting poller holds none. The report
/// says how long after each end its poller heard of it.
pub async fn thousand_pollers(c: &Cluster, n: usize, spread: Duration) -> String {
    let lb = c.through_nginx(&c.user);
    let tokens = Arc::new(parked_tasks(&lb, n).await);
    let pollers: Vec<_> = tokens
        .iter()
        .map(|token| tokio::spawn(poll_until_ended(lb.clone(), token.clone())))
        .collect();
    eventually("every poller to wait", Duration::from_secs(60), || async {
        let watched = c.count("SELECT count(*) FROM tasks WHERE watched") as usize;
        (watched == n).then_some(())
    })
    .await;
    let connections = c.count(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
         AND datname = 'errand'",
    );
    // Two API nodes and two workers, pools of 10 (database.max_connections)
    // and a listener each, and on each API node one per HTTP thread (one
    // thread per CPU; its own pool, database.thread_connections, has one
    // in use); PgBouncer's own are fewer.
    let http_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        connections <= 4 * 11 + 2 * http_threads as i64,
        "{connections} connections while {n} polls wait"
    );
    let cancelled = cancel_over(c, &tokens, spread).await;
    let mut wakes = Vec::new();
    for (poller, at) in pollers.into_iter().zip(cancelled) {
        let polled = tokio::time::timeout(Duration::from_secs(60), poller)
            .await
            .expect("every poller hears its task end")
            .unwrap();
        assert!(
            polled.errors.is_empty(),
            "a poll failed: {:?}; the API nodes said: {:?}",
            polled.errors,
            apis_said(c, "request answered 503")
        );
        wakes.push(polled.answered.saturating_duration_since(at).as_secs_f64() * 1000.0);
    }
    wakes.sort_by(f64::total_cmp);
    let at = |q: f64| wakes[((wakes.len() - 1) as f64 * q).round() as usize];
    format!(
        "{n} long polls held through nginx: {connections} database connections meanwhile; \
         heard of its task's end after p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// The distinct errors the API nodes logged with `message`.
fn apis_said(c: &Cluster, message: &str) -> Vec<String> {
    let mut said: Vec<String> = (c.apis.iter())
        .flat_map(|a| a.events(message))
        .map(|e| e["fields"]["error"].to_string())
        .collect();
    said.sort();
    said.dedup();
    said
}

/// `n` tasks that nothing runs (a queue no worker serves), in batches.
async fn parked_tasks(lb: &Client, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    while tokens.len() < n {
        let size = (n - tokens.len()).min(500);
        let task = json!({"kind": "sleep", "payload": {"seconds": 1}, "queue": "nobody"});
        let r = lb
            .http
            .post(format!("{}/v1/tasks/batch", lb.base))
            .bearer_auth(&lb.token)
            .json(&json!({"tasks": vec![task; size]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let made: Value = r.json().await.unwrap();
        for t in made["tokens"].as_array().unwrap() {
            tokens.push(t.as_str().unwrap().to_string());
        }
    }
    tokens
}

/// Long polls `token` (with its ETag) until it has ended.
async fn poll_until_ended(lb: Client, token: String) -> Polled {
    let mut etag = String::new();
    let mut errors = Vec::new();
    loop {
        let r = lb
            .http
            .get(format!("{}/v1/tasks/{token}?wait=20", lb.base))
            .bearer_auth(&lb.token)
            .header("if-none-match", &etag)
            .timeout(Duration::from_secs(40))
            .send()
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        match r.status().as_u16() {
            304 => continue,
            200 => {
                etag = r.headers()["etag"].to_str().unwrap().to_string();
                let task: Value = r.json().await.unwrap();
                if task["done"] == true {
                    return Polled {
                        answered: Instant::now(),
                        errors,
                    };
                }
            }
            other => errors.push(format!("{other}: {}", r.text().await.unwrap_or_default())),
        }
    }
}

/// Cancels the tasks one after another over `spread`: when each was.
async fn cancel_over(c: &Cluster, tokens: &[String], spread: Duration) -> Vec<Instant> {
    let root = c.through_nginx(&c.root);
    let gap = spread / tokens.len().max(1) as u32;
    let mut at = Vec::with_capacity(tokens.len());
    for token in tokens {
        let started = Instant::now();
        let r = root.cancel(token).await;
        assert_eq!(r.status(), 200, "a parked task cancels at once");
        at.push(Instant::now());
        if let Some(rest) = gap.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    at
}
