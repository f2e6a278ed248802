//! Scale-out on one machine, with real parts: two `errand api` nodes on
//! their ports behind nginx (Debian's, with the shipped
//! `deploy/nginx.conf`), two `errand worker` processes, and a Postgres of
//! the test's own (so that it may be restarted), or PgBouncer in
//! transaction mode in front of it. What a team gets when it deploys
//! errand as `docker-compose.yml` does, and what happens to clients when a
//! node, or the database, goes away.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod crowd;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::servers::{Nginx, PgBouncer, PrivatePostgres};
use common::{Client, Proc, eventually, free_port, proc_env_for_url, run_errand, runs, wait_ready};
use serde_json::{Value, json};

/// The processes of one deployment.
struct Cluster {
    pg: PrivatePostgres,
    _bouncer: Option<PgBouncer>,
    apis: Vec<Proc>,
    api_bases: Vec<String>,
    workers: Vec<Proc>,
    nginx: Nginx,
    /// A user's token and a superuser's.
    user: String,
    root: String,
}

impl Cluster {
    /// Two API nodes, nginx, two workers; through PgBouncer if `pooled`.
    async fn start(pooled: bool) -> Cluster {
        common::tls();
        let pg = PrivatePostgres::launch();
        let direct = pg.create_database("errand");
        let bouncer = pooled.then(|| PgBouncer::launch(pg.port));
        let mut env = proc_env_for_url(&direct);
        if let Some(b) = &bouncer {
            env.insert("DATABASE_URL".into(), b.url("errand"));
            env.insert("ERRAND__DATABASE__POOLED".into(), "true".into());
            env.insert("ERRAND__DATABASE__DIRECT_URL".into(), direct.clone());
        }
        env.insert("ERRAND__DATABASE__ACQUIRE_TIMEOUT".into(), "1s".into());
        env.insert("ERRAND__HTTP__MAX_WAIT".into(), "30s".into());
        // A create whose node died holding its key is answered 409 until
        // the key is taken over: sooner here than the default minute.
        env.insert("ERRAND__IDEMPOTENCY__IN_FLIGHT_TIMEOUT".into(), "3s".into());
        let dir = std::env::temp_dir();
        run_errand(&dir, &["migrate"], &env);
        let token = |name: &str, role: &str| {
            let args = ["token", "create", "--name", name, "--role", role];
            run_errand(&dir, &args, &env).trim().to_string()
        };
        let (user, root) = (token("alice", "user"), token("root", "superuser"));
        let ports = [free_port(), free_port()];
        let mut apis = Vec::new();
        let mut api_bases = Vec::new();
        for port in ports {
            let addr = format!("127.0.0.1:{port}");
            apis.push(Proc::spawn(&["api", "--bind", &addr], &env));
            api_bases.push(format!("http://{addr}"));
        }
        for base in &api_bases {
            wait_ready(base).await;
        }
        let workers = (0..2)
            .map(|_| Proc::spawn(&["worker", "--concurrency", "8"], &env))
            .collect();
        let nginx = Nginx::launch(&ports);
        wait_ready(&nginx.base()).await;
        Cluster {
            pg,
            _bouncer: bouncer,
            apis,
            api_bases,
            workers,
            nginx,
            user,
            root,
        }
    }

    /// A client through nginx, as `token`.
    fn through_nginx(&self, token: &str) -> Client {
        Client::new(&self.nginx.base(), token)
    }

    /// A client of API node `i` directly.
    fn node(&self, i: usize, token: &str) -> Client {
        Client::new(&self.api_bases[i], token)
    }

    fn count(&self, sql: &str) -> i64 {
        self.pg.psql("errand", sql).parse().unwrap_or(-1)
    }

    /// Waits until the tasks with these tokens have all ended; their statuses.
    async fn ended(&self, tokens: &[String], timeout: Duration) -> HashMap<String, i64> {
        let list = tokens
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(",");
        let unfinished = format!(
            "SELECT count(*) FROM tasks WHERE replace(token::text, '-', '') IN ({list}) AND finished_at IS NULL"
        );
        eventually("the tasks to end", timeout, || async {
            (self.count(&unfinished) == 0).then_some(())
        })
        .await;
        let by_status = self.pg.psql(
            "errand",
            &format!(
                "SELECT status || '=' || count(*) FROM tasks \
                 WHERE replace(token::text, '-', '') IN ({list}) GROUP BY status"
            ),
        );
        by_status
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(s, n)| (s.to_string(), n.parse().unwrap()))
            .collect()
    }

    /// Creates 400 short tasks through nginx, 16 at a time, and waits for
    /// them all to complete; their tokens.
    async fn four_hundred_complete(&self) -> Vec<String> {
        let lb = self.through_nginx(&self.user);
        let tokens = create_many(&lb, 400, 16, sleep_task(0.05)).await;
        let statuses = self.ended(&tokens, Duration::from_secs(120)).await;
        assert_eq!(statuses.get("completed"), Some(&400), "{statuses:?}");
        tokens
    }
}

fn sleep_task(seconds: f64) -> Value {
    json!({"kind": "sleep", "payload": {"seconds": seconds}})
}

/// Creates `n` tasks through `client`, `at_once` at a time; their tokens.
async fn create_many(client: &Client, n: usize, at_once: usize, body: Value) -> Vec<String> {
    let client = Arc::new(client.clone());
    let mut tokens = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(at_once) {
        let calls: Vec<_> = chunk
            .iter()
            .map(|_| {
                let (client, body) = (client.clone(), body.clone());
                tokio::spawn(async move { client.create_ok(body).await })
            })
            .collect();
        for call in calls {
            tokens.push(call.await.unwrap());
        }
    }
    tokens
}

fn alive(proc: &Proc) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", proc.pid()))
        .is_ok_and(|stat| !stat.contains(") Z "))
}

/// No task ran two attempts at once, by the workers' own logs.
fn no_attempts_overlapped(workers: &[Proc]) -> usize {
    let mut by_task: HashMap<String, Vec<common::Run>> = HashMap::new();
    for worker in workers {
        for run in runs(worker, None) {
            by_task.entry(run.token.clone()).or_default().push(run);
        }
    }
    let mut rerun = 0;
    for (token, mut runs) in by_task {
        runs.sort_by_key(|r| r.attempt);
        rerun += usize::from(runs.len() > 1);
        for pair in runs.windows(2) {
            let ended = pair[0].ended.unwrap_or(pair[1].started);
            assert!(
                pair[1].started >= ended,
                "task {token}: attempt {} started while attempt {} ran",
                pair[1].attempt,
                pair[0].attempt
            );
        }
    }
    rerun
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_created_through_nginx_complete_and_read_back_on_either_node() {
    let c = Cluster::start(false).await;
    let tokens = c.four_hundred_complete().await;
    for node in 0..2 {
        let direct = c.node(node, &c.user);
        for token in &tokens {
            let task = direct.task(token).await;
            assert_eq!(task["status"], "completed", "node {node}, {token}");
        }
    }
    let workers = c.through_nginx(&c.root).get_json("/v1/workers").await;
    let listed = workers["workers"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{workers}");
    for (i, worker) in c.workers.iter().enumerate() {
        assert!(!runs(worker, None).is_empty(), "worker {i} took work");
    }
    assert!(
        !c.nginx.errors().contains("[emerg]"),
        "{}",
        c.nginx.errors()
    );
}

/// Creates with an Idempotency-Key each, through nginx, while one API node
/// is SIGKILLed: each is retried until answered, none fails in the end, and
/// no key makes two tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_an_api_node_mid_stream_fails_no_keyed_create_and_doubles_none() {
    let mut c = Cluster::start(false).await;
    let lb = Arc::new(c.through_nginx(&c.user));
    let streams: Vec<_> = (0..4)
        .map(|stream| {
            let lb = lb.clone();
            tokio::spawn(async move {
                let mut made = Vec::new();
                let mut retries = 0;
                for i in 0..75 {
                    let key = format!("stream{stream}-create{i}");
                    let (token, tries) = create_keyed(&lb, &key).await;
                    retries += tries - 1;
                    made.push((key, token));
                }
                (made, retries)
            })
        })
        .collect();
    eventually("some creates first", Duration::from_secs(30), || async {
        (c.count("SELECT count(*) FROM tasks") >= 60).then_some(())
    })
    .await;
    c.apis[0].kill();
    let mut keys = HashMap::new();
    let mut retries = 0;
    for stream in streams {
        let (made, tried_again) = stream.await.unwrap();
        retries += tried_again;
        for (key, token) in made {
            assert!(keys.insert(key, token).is_none());
        }
    }
    assert_eq!(keys.len(), 300, "every create succeeded in the end");
    let distinct: HashSet<&String> = keys.values().collect();
    assert_eq!(distinct.len(), 300, "no two keys answered the same task");
    assert_eq!(
        c.count("SELECT count(*) FROM tasks"),
        300,
        "no key made two tasks"
    );
    eprintln!("scale: 300 keyed creates through nginx, one node killed, {retries} retried");
}

/// One create, sent again with its key until errand answers it: its token
/// and how many tries it took. A key its dead node was holding answers 409
/// until `idempotency.in_flight_timeout` (3 s here) lets the retry take it.
async fn create_keyed(lb: &Client, key: &str) -> (String, usize) {
    for tries in 1..=300 {
        let sent = lb
            .http
            .post(format!("{}/v1/tasks", lb.base))
            .bearer_auth(&lb.token)
            .header("idempotency-key", key)
            .json(&sleep_task(0.01))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 202 || r.status() == 200 => {
                let task: Value = r.json().await.unwrap();
                return (task["token"].as_str().unwrap().to_string(), tries);
            }
            Ok(r) => assert!(
                [409, 502, 503, 504].contains(&r.status().as_u16()),
                "{key}: {}",
                r.status()
            ),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{key}: never answered");
}

/// Long polls held through nginx while one API node is asked to stop: each
/// is answered (the task, unchanged: 304), none hangs past its wait, none
/// is cut into a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_polls_through_nginx_on_a_stopping_node_are_answered() {
    let c = Cluster::start(false).await;
    let lb = c.through_nginx(&c.user);
    let parked = json!({"kind": "sleep", "payload": {"seconds": 1}, "queue": "nobody"});
    let tokens = create_many(&lb, 10, 10, parked).await;
    let wait = 15;
    let polls: Vec<_> = tokens
        .iter()
        .map(|token| {
            let (lb, token) = (lb.clone(), token.clone());
            tokio::spawn(async move {
                let etag = lb.get(&token).await.headers()["etag"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let asked = Instant::now();
                let r = lb
                    .http
                    .get(format!("{}/v1/tasks/{token}?wait={wait}", lb.base))
                    .bearer_auth(&lb.token)
                    .header("if-none-match", etag)
                    .send()
                    .await
                    .expect("an answer");
                (r.status().as_u16(), asked.elapsed())
            })
        })
        .collect();
    eventually("every poll to wait", Duration::from_secs(20), || async {
        (c.count("SELECT count(*) FROM tasks WHERE watched") == 10).then_some(())
    })
    .await;
    c.apis[0].signal("TERM");
    let mut quick = 0;
    for poll in polls {
        let (status, took) = poll.await.unwrap();
        assert!(status == 304 || status == 503, "a poll got {status}");
        assert!(took < Duration::from_secs(wait + 5), "a poll hung {took:?}");
        quick += usize::from(took < Duration::from_secs(wait / 2));
    }
    // Round robin put about half of them on the stopping node.
    assert!(quick >= 1, "the stopping node answered its polls at once");
}

/// Postgres restarted twice under load (`-m fast`, then `-m immediate`):
/// the API answers 503 with Retry-After while it is down, never 500; every
/// process survives; every task completes; no task ran twice at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarts_mid_run_lose_nothing_and_run_nothing_twice() {
    let c = Cluster::start(false).await;
    let lb = c.through_nginx(&c.user);
    let tokens = create_many(&lb, 200, 16, sleep_task(0.3)).await;
    let probe = {
        let (lb, token) = (lb.clone(), tokens[0].clone());
        tokio::spawn(crowd::probe(lb, token, Duration::from_secs(12)))
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.pg.restart("fast");
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.pg.restart("immediate");
    let seen = probe.await.unwrap();
    for (status, retry_after) in &seen {
        assert!(
            *status == 200 || *status == 503,
            "the API answered {status}"
        );
        assert!(*status != 503 || *retry_after, "a 503 without Retry-After");
    }
    let statuses = c.ended(&tokens, Duration::from_secs(120)).await;
    assert_eq!(statuses.get("completed"), Some(&200), "{statuses:?}");
    for proc in c.apis.iter().chain(&c.workers) {
        assert!(alive(proc), "process {} exited", proc.pid());
    }
    let rerun = no_attempts_overlapped(&c.workers);
    let unavailable = seen.iter().filter(|(s, _)| *s == 503).count();
    eprintln!(
        "scale: two Postgres restarts, {} probes ({unavailable} answered 503), {rerun} tasks re-run",
        seen.len()
    );
}

/// 1,000 clients long-poll their tasks through nginx at once; the tasks
/// end over 30 s. Every poller gets its task's end, no request fails, and
/// the waiting pollers hold no database connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_long_pollers_through_nginx_hold_no_database_connection() {
    let c = Cluster::start(false).await;
    let report = crowd::thousand_pollers(&c, 1000, Duration::from_secs(30)).await;
    eprintln!("scale: {report}");
}

/// The same deployment through PgBouncer in transaction mode: every task
/// completes, and long polls still wake (each process LISTENs on its direct
/// connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_pgbouncer_every_task_completes_and_long_polls_wake() {
    let c = Cluster::start(true).await;
    c.four_hundred_complete().await;
    let listening = c.count(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'errand' AND query LIKE 'LISTEN%'",
    );
    assert_eq!(
        listening, 4,
        "two API nodes and two workers listen, directly"
    );
    let report = crowd::thousand_pollers(&c, 100, Duration::from_secs(5)).await;
    eprintln!("scale, through PgBouncer: {report}");
}

/// What `docker-compose.yml` and `deploy/nginx.conf` promise, checked with
/// what runs here (Docker does not): the compose file parses and names the
/// parts, and nginx accepts the shipped configuration.
#[test]
fn the_shipped_deployment_files_are_valid() {
    let compose = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.yml");
    let script = "import sys, yaml, json; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&compose)
        .output()
        .expect("python3 with PyYAML");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = parsed["services"].as_object().unwrap();
    for name in ["postgres", "migrate", "api1", "api2", "worker", "nginx"] {
        assert!(services.contains_key(name), "docker-compose.yml has {name}");
    }
    assert_eq!(parsed["services"]["worker"]["deploy"]["replicas"], 2);
    let dir =
        std::env::temp_dir().join(format!("errand-nginx-t-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = Nginx::config(&[18081, 18082], free_port(), &dir);
    let out = std::process::Command::new("/usr/sbin/nginx")
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&config)
        .output()
        .expect("nginx (Debian's nginx-light)");
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && said.contains("test is successful"),
        "{said}"
    );
}
