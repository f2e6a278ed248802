//! The load `errand bench` puts on the API: single creates and batches from
//! concurrent keep-alive clients, polls, and a slow trickle of creates to
//! time pickups.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::BenchError;
use super::procs::handler_starts;
use super::wire::Connection;
use crate::store::Store;
use crate::tasks::TaskToken;

/// The bench's HTTP client and token against one API.
#[derive(Clone)]
pub(super) struct Api {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
}

/// A no-op task.
pub(super) fn noop() -> Value {
    json!({"kind": "sleep", "payload": {"seconds": 0}})
}

fn failed(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Load(format!("{what}: {e}"))
}

impl Api {
    async fn post(&self, path: &str, body: &Value) -> Result<Value, BenchError> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| failed(path, e))?;
        if r.status() != 202 {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            return Err(failed(path, format!("{status}: {text}")));
        }
        r.json().await.map_err(|e| failed(path, e))
    }

    /// Creates `n` no-op tasks, one `POST /v1/tasks` each, from `clients`
    /// concurrent connections: tasks per second.
    pub(super) async fn create_singly(&self, n: usize, clients: usize) -> Result<f64, BenchError> {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut loops = Vec::new();
        for _ in 0..clients {
            let (api, next) = (self.clone(), next.clone());
            loops.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    api.post("/v1/tasks", &noop()).await?;
                }
                Ok::<_, BenchError>(())
            }));
        }
        join_all(loops).await?;
        Ok(n as f64 / started.elapsed().as_secs_f64())
    }

    /// Creates `n` no-op tasks through `POST /v1/tasks/batch`, `batch` at a
    /// time, from `clients` concurrent connections: tasks per second, and
    /// the tokens.
    pub(super) async fn create_batches(
        &self,
        n: usize,
        batch: usize,
        clients: usize,
    ) -> Result<(f64, Vec<String>), BenchError> {
        let sizes: Vec<usize> = (0..n).step_by(batch).map(|i| batch.min(n - i)).collect();
        let sizes = Arc::new(sizes);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut loops = Vec::new();
        for _ in 0..clients {
            let (api, next, sizes) = (self.clone(), next.clone(), sizes.clone());
            loops.push(tokio::spawn(async move {
                let mut tokens = Vec::new();
                while let Some(size) = sizes.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let body = json!({"tasks": vec![noop(); *size]});
                    let created = api.post("/v1/tasks/batch", &body).await?;
                    let made = created["tokens"].as_array().cloned().unwrap_or_default();
                    tokens.extend(made.iter().filter_map(|t| t.as_str().map(str::to_string)));
                }
                Ok::<_, BenchError>(tokens)
            }));
        }
        let tokens: Vec<String> = join_all(loops).await?.into_iter().flatten().collect();
        Ok((n as f64 / started.elapsed().as_secs_f64(), tokens))
    }

    /// `GET /v1/tasks/{token}` from `clients` concurrent keep-alive
    /// connections (plain HTTP/1.1, see `wire`) for `seconds`, each going
    /// through `tokens` from its own place: requests per second.
    pub(super) async fn poll(
        &self,
        tokens: Arc<Vec<String>>,
        clients: usize,
        seconds: f64,
    ) -> Result<f64, BenchError> {
        let started = Instant::now();
        let mut loops = Vec::new();
        for client in 0..clients {
            let (api, tokens) = (self.clone(), tokens.clone());
            loops.push(tokio::spawn(async move {
                let mut i = client * tokens.len() / clients.max(1);
                let mut polls = 0u64;
                let mut connection = Connection::open(&api.base).await?;
                while started.elapsed().as_secs_f64() < seconds {
                    let path = format!("/v1/tasks/{}", tokens[i % tokens.len()]);
                    let status = connection.get(&path, &api.token).await?;
                    if status != 200 {
                        return Err(failed("GET /v1/tasks/{token}", status));
                    }
                    polls += 1;
                    i += 1;
                }
                Ok::<_, BenchError>(polls)
            }));
        }
        let polls: u64 = join_all(loops).await?.into_iter().sum();
        Ok(polls as f64 / started.elapsed().as_secs_f64())
    }

    /// Creates one task every `every` for `seconds` (on a plain HTTP/1.1
    /// connection), noting the time just before each POST; then finds when
    /// each one's handler started, as the worker logging into `log` wrote
    /// it: the pickups, in milliseconds.
    pub(super) async fn pickups(
        &self,
        store: &Store,
        every: Duration,
        seconds: f64,
        log: &Path,
    ) -> Result<Vec<f64>, BenchError> {
        let mut sent: Vec<(DateTime<Utc>, TaskToken)> = Vec::new();
        let mut tick = tokio::time::interval(every);
        let started = Instant::now();
        // A plain keep-alive connection, as for polls: reqwest's own work
        // on the shared CPUs added about 0.15 ms to every pickup.
        let mut connection = Connection::open(&self.base).await?;
        let body = noop().to_string();
        while started.elapsed().as_secs_f64() < seconds {
            tick.tick().await;
            let before = Utc::now();
            let (status, answer) = connection.post("/v1/tasks", &self.token, &body).await?;
            if status != 202 {
                return Err(failed("POST /v1/tasks", status));
            }
            let created: Value =
                serde_json::from_slice(&answer).map_err(|e| failed("POST /v1/tasks", e))?;
            let token = created["token"].as_str().unwrap_or_default().parse();
            sent.push((
                before,
                token.map_err(|e| failed("a created task's token", e))?,
            ));
        }
        for (_, token) in &sent {
            wait_started(store, *token).await?;
        }
        let starts = logged_starts(log, sent.iter().map(|(_, t)| t.to_string())).await?;
        let mut pickups: Vec<f64> = sent
            .iter()
            .map(|(before, token)| (starts[&token.to_string()] - *before).as_seconds_f64() * 1000.0)
            .collect();
        pickups.sort_by(f64::total_cmp);
        Ok(pickups)
    }
}

/// The handler starts the worker logged, once it has logged all of
/// `tokens` (its last lines may follow the claims they come from by a
/// moment).
async fn logged_starts(
    log: &Path,
    tokens: impl Iterator<Item = String> + Clone,
) -> Result<HashMap<String, DateTime<Utc>>, BenchError> {
    for _ in 0..500 {
        let starts = handler_starts(log)?;
        if tokens.clone().all(|t| starts.contains_key(&t)) {
            return Ok(starts);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(failed(
        "pickup",
        format!("the worker's log {} lacks handler starts", log.display()),
    ))
}

/// Waits up to 30 s for task `token` to start.
async fn wait_started(store: &Store, token: TaskToken) -> Result<(), BenchError> {
    for _ in 0..3000 {
        let task = store.task_get(token).await?;
        if task.is_some_and(|t| t.started_at.is_some()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(failed(
        "pickup",
        format!("task {token} did not start within 30 s"),
    ))
}

async fn join_all<T>(
    loops: Vec<tokio::task::JoinHandle<Result<T, BenchError>>>,
) -> Result<Vec<T>, BenchError> {
    let mut out = Vec::with_capacity(loops.len());
    for handle in loops {
        out.push(handle.await.map_err(|e| failed("a load loop", e))??);
    }
    Ok(out)
}

/// The value at fraction `p` (0 to 1) of sorted `values`.
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}
