//! The processes `errand bench` measures: `errand api` and `errand worker`
//! started from its own binary, with its configuration, on a free port;
//! their memory read from `/proc`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Utc};

use super::BenchError;

/// How to start errand as the bench was started: the same binary and
/// `--config`, the environment it inherits.
#[derive(Clone)]
pub(super) struct Launcher {
    pub(super) binary: PathBuf,
    pub(super) config: Option<PathBuf>,
    /// `ERRAND__*` settings for every process it starts.
    pub(super) env: Vec<(String, String)>,
}

/// A started errand process, killed when dropped.
pub(super) struct Proc {
    child: Child,
    /// The API's base URL, for an API process.
    pub(super) base: Option<String>,
}

impl Launcher {
    /// `errand api` on a free port, once it answers `/readyz`.
    pub(super) async fn api(&self, http: &reqwest::Client) -> Result<Proc, BenchError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BenchError::Process(format!("no free port: {e}")))?
            .port();
        let bind = format!("127.0.0.1:{port}");
        let mut proc = self.spawn(&["api", "--bind", &bind], &[])?;
        let base = format!("http://{bind}");
        wait_ready(http, &base, &mut proc.child).await?;
        proc.base = Some(base);
        Ok(proc)
    }

    /// `errand worker --concurrency N`, with `extra` settings.
    pub(super) fn worker(
        &self,
        concurrency: usize,
        extra: &[(&str, &str)],
    ) -> Result<Proc, BenchError> {
        let n = concurrency.to_string();
        self.spawn(&["worker", "--concurrency", &n], extra)
    }

    /// `errand worker --concurrency N` that logs, as JSON lines into `log`,
    /// when each attempt's handler starts (see [`handler_starts`]).
    pub(super) fn logging_worker(
        &self,
        concurrency: usize,
        log: &Path,
    ) -> Result<Proc, BenchError> {
        let file = std::fs::File::create(log)
            .map_err(|e| BenchError::Process(format!("{}: {e}", log.display())))?;
        let n = concurrency.to_string();
        let env = [
            ("RUST_LOG", "warn,errand::worker::executor=debug"),
            ("ERRAND__LOG__FORMAT", "json"),
        ];
        self.start(&["worker", "--concurrency", &n], &env, Stdio::from(file))
    }

    fn spawn(&self, args: &[&str], extra: &[(&str, &str)]) -> Result<Proc, BenchError> {
        self.start(args, extra, Stdio::inherit())
    }

    fn start(
        &self,
        args: &[&str],
        extra: &[(&str, &str)],
        stderr: Stdio,
    ) -> Result<Proc, BenchError> {
        let mut command = Command::new(&self.binary);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command
            .spawn()
            .map_err(|e| BenchError::Process(format!("could not start errand {args:?}: {e}")))?;
        Ok(Proc { child, base: None })
    }
}

async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    child: &mut Child,
) -> Result<(), BenchError> {
    let url = format!("{base}/readyz");
    for _ in 0..600 {
        if let Ok(r) = http.get(&url).send().await
            && r.status() == 200
        {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(BenchError::Process(format!("errand api exited: {status}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::Process(
        "errand api was not ready within 30 s".into(),
    ))
}

impl Proc {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn base(&self) -> &str {
        self.base.as_deref().unwrap_or_default()
    }

    /// SIGTERM, and wait for it to exit (at most 30 s, then SIGKILL).
    pub(super) async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.pid().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` now, in MB (10^6 bytes).
pub(super) fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kib * 1024.0 / 1e6
}

/// The most resident memory of a process while it is watched.
pub(super) struct PeakRss {
    peak_kb: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl PeakRss {
    /// Samples `pid` every 50 ms until [`PeakRss::finish`].
    pub(super) fn watch(pid: u32) -> PeakRss {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (peak, done) = (peak_kb.clone(), stop.clone());
        tokio::spawn(async move {
            while !done.is_cancelled() {
                let now = (rss_mb(pid) * 1000.0) as u64;
                peak.fetch_max(now, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        PeakRss { peak_kb, stop }
    }

    /// The peak seen, in MB.
    pub(super) fn finish(self) -> f64 {
        self.stop.cancel();
        self.peak_kb.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// When each attempt's handler started, by task token, as a
/// [`Launcher::logging_worker`] logged it.
pub(super) fn handler_starts(log: &Path) -> Result<HashMap<String, DateTime<Utc>>, BenchError> {
    let text = std::fs::read_to_string(log)
        .map_err(|e| BenchError::Process(format!("{}: {e}", log.display())))?;
    let mut starts = HashMap::new();
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if entry["fields"]["message"] != "attempt started" {
            continue;
        }
        let token = entry["span"]["task.token"].as_str();
        let at = entry["timestamp"]
            .as_str()
            .map(DateTime::parse_from_rfc3339);
        if let (Some(token), Some(Ok(at))) = (token, at) {
            starts.insert(token.to_string(), at.with_timezone(&Utc));
        }
    }
    Ok(starts)
}
