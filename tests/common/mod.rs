//! What every integration test binary shares: a fresh Postgres database per
//! test, the app spawned in-process on port 0, real `errand` processes, and
//! waiting on a condition with a deadline (never sleep-and-hope).
#![allow(dead_code)] // each test binary uses a different part of this

pub mod servers;

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use errand::app::{self, Builder, Mode};
use errand::config::Settings;
use errand::store::Store;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Lets reqwest make clients: errand builds it without a TLS crypto provider
/// of its own (the app installs ring's; a test that starts no app in its
/// process must too).
pub fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where the test Postgres server is: `ERRAND_TEST_DATABASE_URL`, or the
/// local server with trust auth.
pub fn admin_url() -> String {
    std::env::var("ERRAND_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn url_for(database: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{database}")
}

async fn admin_connection() -> PgConnection {
    match PgConnection::connect(&admin_url()).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "the tests need Postgres at {} ({e}).\n\
             Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             or point ERRAND_TEST_DATABASE_URL at another server.",
            admin_url()
        ),
    }
}

/// The two stores every behaviour is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Stamps out each listed `async fn test(backend: Backend)` as two tests,
/// `postgres::test` and `sqlite::test`.
#[macro_export]
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::Backend::Sqlite).await
                }
            )*
        }
    };
}

/// A fresh, migrated database, removed when the test ends (pass or fail).
/// Postgres: copied from a migrated template; databases left behind by a
/// killed run are swept by later runs once they are an hour old. SQLite: a
/// file in a temporary folder.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    place: String,
}

impl TestDb {
    pub async fn of(backend: Backend) -> TestDb {
        match backend {
            Backend::Postgres => TestDb::postgres().await,
            Backend::Sqlite => TestDb::sqlite().await,
        }
    }

    pub async fn postgres() -> TestDb {
        let mut admin = admin_connection().await;
        let template = ensure_template(&mut admin).await;
        let now = unix_secs();
        let name = format!("errand_t_{now}_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name} TEMPLATE {template}"
            )))
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        TestDb {
            url: url_for(&name),
            backend: Backend::Postgres,
            place: name,
        }
    }

    pub async fn sqlite() -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("errand-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let db = TestDb {
            url: format!("sqlite://{}/errand.db", dir.display()),
            backend: Backend::Sqlite,
            place: dir.display().to_string(),
        };
        let store = db.store();
        store.migrate().await.expect("migrate the SQLite database");
        store.close().await;
        db
    }

    /// A pool on this database, through errand's own store.
    pub fn store(&self) -> Store {
        let mut settings = Settings::defaults();
        settings.database.url = self.url.clone();
        Store::connect(&settings.database).expect("store")
    }

    /// A number from a query of the test's own (a count, say).
    pub async fn count(&self, sql: &'static str) -> i64 {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut conn)
                    .await
                    .expect(sql)
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut conn)
                    .await
                    .expect(sql)
            }
        }
    }

    /// (text, number) rows from a query of the test's own.
    pub async fn counts(&self, sql: &'static str) -> HashMap<String, i64> {
        let rows: Vec<(String, i64)> = match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                sqlx::query_as(sql).fetch_all(&mut conn).await.expect(sql)
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_as(sql).fetch_all(&mut conn).await.expect(sql)
            }
        };
        rows.into_iter().collect()
    }

    /// An error message from a statement the test expects to fail, run on
    /// one task row (`$1`/`?1` is its id).
    pub async fn refused(&self, statement: &str, id: i64) -> String {
        let error = match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(statement.replace("?1", "$1")))
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
            }
        };
        let error = error.expect_err(statement);
        let db = error.as_database_error().expect("a database error");
        // Postgres names the constraint; SQLite puts it in the message.
        format!("{} {}", db.constraint().unwrap_or_default(), db.message())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let place = self.place.clone();
        if self.backend == Backend::Sqlite {
            let _ = std::fs::remove_dir_all(place);
            return;
        }
        // Drop can't await; do it on a thread with its own small runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&admin_url()).await.ok()?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {place} WITH (FORCE)"
                    )))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The migrated template for this schema, made once (under a lock, as test
/// processes run in parallel), named after a hash of the migrations so that
/// a changed schema gets a new one.
async fn ensure_template(admin: &mut PgConnection) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the migrations folder")
        .map(|e| e.expect("a migration").path())
        .collect();
    files.sort();
    let schema: Vec<u8> = files
        .iter()
        .flat_map(|f| std::fs::read(f).expect("read a migration"))
        .collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in &schema {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    let template = format!("errand_tmpl_{hash:016x}");
    admin
        .execute("SELECT pg_advisory_lock(4242424242)")
        .await
        .expect("lock");
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&template)
        .fetch_optional(&mut *admin)
        .await
        .expect("look for the template");
    if exists.is_none() {
        sweep_old_databases(admin).await;
        let building = format!("{template}_building");
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {building} WITH (FORCE)"
            )))
            .await
            .expect("drop a half-built template");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}")))
            .await
            .expect("create the template");
        let mut settings = Settings::defaults();
        settings.database.url = url_for(&building);
        let store = Store::connect(&settings.database).expect("store");
        store.migrate().await.expect("migrate the template");
        store.close().await;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {building} RENAME TO {template}"
            )))
            .await
            .expect("publish the template");
    }
    admin
        .execute("SELECT pg_advisory_unlock(4242424242)")
        .await
        .expect("unlock");
    template
}

/// Drops test databases over an hour old (left by killed runs) and
/// templates of other schemas.
async fn sweep_old_databases(admin: &mut PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'errand\\_t\\_%' OR datname LIKE 'errand\\_tmpl\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    let hour_ago = unix_secs().saturating_sub(3600);
    for name in names {
        let stale = match name.strip_prefix("errand_t_") {
            Some(rest) => rest
                .split('_')
                .next()
                .and_then(|secs| secs.parse::<u64>().ok())
                .is_some_and(|secs| secs < hour_ago),
            None => true, // an older template: this one is being made anew
        };
        if stale {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// A queued task of `kind` with `payload`, owned by "test", runnable now:
/// change what a test needs with `NewTask { …, ..new_task(…) }`.
pub fn new_task(kind: &str, payload: Value, max_attempts: i32) -> errand::tasks::NewTask {
    let now = chrono::Utc::now();
    errand::tasks::NewTask {
        token: errand::tasks::TaskToken::generate(),
        kind: kind.into(),
        queue: "default".into(),
        priority: 0,
        status: errand::tasks::Status::Queued,
        payload,
        max_attempts,
        timeout_ms: None,
        owner: "test".into(),
        product: None,
        created_at: now,
        run_at: now,
        depends_on: vec![],
        callback_url: None,
        inputs: vec![],
        start_by: None,
        tick: None,
    }
}

/// How attempt `attempt` of task `id` ends, for `Store::task_end`.
pub fn ending(
    id: errand::tasks::TaskId,
    attempt: i32,
    end: &errand::tasks::AttemptEnd,
) -> errand::store::TaskEnding {
    errand::store::TaskEnding {
        id,
        attempt,
        started_at: None,
        end: end.clone(),
    }
}

/// Inserts a task through the store, as anyone (no dependency checks to
/// fail on visibility).
pub async fn insert_task(store: &Store, task: &errand::tasks::NewTask) -> errand::tasks::Task {
    store
        .task_insert(task, &errand::tasks::Scope::everything(), None)
        .await
        .expect("insert a task")
        .expect("its dependencies are fine")
}

/// Settings for a test: the defaults, on this database, on a free port,
/// with quick timings.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut s = Settings::defaults();
    s.database.url = db.url.clone();
    s.http.bind = "127.0.0.1:0".into();
    s.http.workers = 2;
    s.worker.concurrency = 4;
    s.worker.poll_interval = Duration::from_millis(200);
    s.worker.heartbeat_interval = Duration::from_secs(1);
    s.worker.lease = Duration::from_secs(3);
    s.worker.rescue_interval = Duration::from_millis(500);
    s.worker.shutdown_grace = Duration::from_secs(2);
    s.worker.cancel_grace = Duration::from_secs(2);
    s.worker.progress_interval = Duration::from_millis(100);
    s.log.level = std::env::var("ERRAND_TEST_LOG").unwrap_or_else(|_| "warn".into());
    s
}

/// errand running inside the test process, as `serve` (or `api`, or
/// `worker`) would run it.
pub struct TestApp {
    pub base: String,
    pub settings: Settings,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<Result<(), app::AppError>>>,
}

impl TestApp {
    pub async fn spawn(db: &TestDb, mode: Mode, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = test_settings(db);
        tweak(&mut settings);
        Self::spawn_with(settings, mode).await
    }

    pub async fn spawn_with(settings: Settings, mode: Mode) -> TestApp {
        Self::spawn_built(settings, mode, |b| b).await
    }

    /// [`TestApp::spawn_with`], the process assembled by `assemble` (kinds
    /// and state of the test's own).
    pub async fn spawn_built(
        settings: Settings,
        mode: Mode,
        assemble: impl FnOnce(Builder) -> Builder,
    ) -> TestApp {
        let _ = errand::telemetry::init(&settings.log.level, errand::config::LogFormat::Text);
        let app = assemble(Builder::new(settings.clone()))
            .build(mode)
            .expect("build the app");
        let base = app
            .local_addr()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run(shutdown.clone()));
        let test_app = TestApp {
            base,
            settings,
            http: reqwest::Client::new(),
            shutdown,
            handle: Some(handle),
        };
        if mode != Mode::Worker && test_app.settings.database.migrate_on_start {
            test_app.wait_ready().await;
        }
        test_app
    }

    async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.base);
        eventually("the app to be ready", Duration::from_secs(20), || async {
            let r = self.http.get(&url).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
    }

    /// Mints a token on this app's database.
    pub async fn token(&self, name: &str, role: &str, product: Option<&str>) -> String {
        app::token_create(&self.settings, name, role, product)
            .await
            .expect("mint a token")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the app as SIGTERM would, and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.expect("app task").expect("app run");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A client for the API as a given caller.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        tls();
        Client {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn create(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/tasks", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("POST /v1/tasks")
    }

    /// Creates a task and returns its token, asserting 202.
    pub async fn create_ok(&self, body: Value) -> String {
        let r = self.create(body).await;
        let status = r.status();
        let json: Value = r.json().await.expect("task JSON");
        assert_eq!(status, 202, "{json}");
        json["token"].as_str().expect("token").to_string()
    }

    pub async fn get(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/tasks/{token}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET /v1/tasks/{token}")
    }

    /// The task's JSON, asserting 200.
    pub async fn task(&self, token: &str) -> Value {
        let r = self.get(token).await;
        assert_eq!(r.status(), 200);
        r.json().await.expect("task JSON")
    }

    /// `GET path` as this caller: the JSON answer, asserting 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.expect("JSON")
    }

    pub async fn cancel(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/tasks/{token}/cancel", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("POST cancel")
    }

    /// `POST /v1/files` with `data` as the body.
    pub async fn upload(&self, data: Vec<u8>, content_type: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/files", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(data)
            .send()
            .await
            .expect("POST /v1/files")
    }

    /// Uploads `data` as audio/wav; the file's JSON, asserting 201.
    pub async fn upload_ok(&self, data: Vec<u8>) -> Value {
        let r = self.upload(data, "audio/wav").await;
        assert_eq!(r.status(), 201);
        r.json().await.expect("file JSON")
    }

    /// `GET href` (a task file's) with `headers`.
    pub async fn download(&self, href: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}{href}", self.base))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("GET a file")
    }

    /// Downloads `href` whole, a piece at a time: its length and SHA-256.
    pub async fn download_digest(&self, href: &str) -> (u64, String) {
        use sha2::Digest as _;
        let mut r = self.download(href, &[]).await;
        assert_eq!(r.status(), 200, "GET {href}");
        let mut hasher = sha2::Sha256::new();
        let mut length = 0;
        while let Some(piece) = r.chunk().await.expect("the body") {
            length += piece.len() as u64;
            hasher.update(&piece);
        }
        (length, hex(&hasher.finalize()))
    }

    /// Polls until the task is done; its final JSON.
    pub async fn wait_done(&self, token: &str, timeout: Duration) -> Value {
        eventually(&format!("task {token} to end"), timeout, || async {
            let task = self.task(token).await;
            (task["done"] == json!(true)).then_some(task)
        })
        .await
    }
}

/// `n` bytes that are not all alike.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// The SHA-256 of `data`, in lowercase hex (as errand shows digests).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The most memory process `pid` has held (its VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib / 1024
}

/// Calls `check` every 50 ms until it answers `Some`, and returns that;
/// panics, naming `what`, if `timeout` passes first.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real `errand` process, with its JSON log lines collected.
pub struct Proc {
    child: Child,
    pub log: Arc<Mutex<Vec<Value>>>,
    pub stdout: Arc<Mutex<Vec<String>>>,
}

/// The environment a test process gets: only what it needs, so that the
/// developer's own ERRAND__ variables do not leak in.
pub fn proc_env(db: &TestDb) -> HashMap<String, String> {
    proc_env_for_url(&db.url)
}

/// [`proc_env`] for a database of another server.
pub fn proc_env_for_url(url: &str) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("DATABASE_URL".into(), url.to_string());
    env.insert("ERRAND__LOG__FORMAT".into(), "json".into());
    env.insert("ERRAND__LOG__LEVEL".into(), "info,actix_server=warn".into());
    env.insert("ERRAND__HTTP__BIND".into(), "127.0.0.1:0".into());
    env.insert("ERRAND__HTTP__WORKERS".into(), "2".into());
    env.insert("ERRAND__WORKER__HEARTBEAT_INTERVAL".into(), "1s".into());
    env.insert("ERRAND__WORKER__LEASE".into(), "3s".into());
    env.insert("ERRAND__WORKER__RESCUE_INTERVAL".into(), "500ms".into());
    env.insert("ERRAND__WORKER__POLL_INTERVAL".into(), "200ms".into());
    env.insert("ERRAND__WORKER__PROGRESS_INTERVAL".into(), "100ms".into());
    env
}

impl Proc {
    /// Starts `errand ARGS` with exactly `env` (plus PATH).
    pub fn spawn(args: &[&str], env: &HashMap<String, String>) -> Proc {
        Proc::spawn_in(&std::env::temp_dir(), args, env)
    }

    /// [`Proc::spawn`] in working directory `dir`.
    pub fn spawn_in(dir: &std::path::Path, args: &[&str], env: &HashMap<String, String>) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_errand"))
            .current_dir(dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start errand");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let echo = std::env::var("ERRAND_TEST_ECHO").is_ok();
        let pid = child.id();
        {
            let log = log.clone();
            let stderr = child.stderr.take().expect("piped stderr");
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("[errand {pid}] {line}");
                    }
                    let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                    log.lock().unwrap().push(value);
                }
            });
        }
        {
            let stdout = stdout.clone();
            let out = child.stdout.take().expect("piped stdout");
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    stdout.lock().unwrap().push(line);
                }
            });
        }
        Proc { child, log, stdout }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (TERM, STOP, CONT, INT).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Whether the process has not exited.
    pub fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit on its own.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        eventually("the process to exit", timeout, || {
            let status = self.child.try_wait().expect("try_wait");
            async move { status }
        })
        .await
    }

    /// Log events (JSON lines) whose message is `message`.
    pub fn events(&self, message: &str) -> Vec<Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["fields"]["message"] == message)
            .cloned()
            .collect()
    }

    /// Waits for the "errand is listening" line and returns the base URL.
    pub async fn base_url(&self) -> String {
        eventually("errand to listen", Duration::from_secs(20), || async {
            self.events("errand is listening")
                .first()
                .and_then(|e| e["fields"]["addr"].as_str().map(|a| format!("http://{a}")))
        })
        .await
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `errand ARGS` to completion in `dir` with exactly `env`; its stdout.
pub fn run_errand(dir: &std::path::Path, args: &[&str], env: &HashMap<String, String>) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_errand"))
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .output()
        .expect("run errand");
    assert!(
        out.status.success(),
        "errand {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Waits until `GET base/readyz` answers 200.
pub async fn wait_ready(base: &str) {
    tls();
    let http = reqwest::Client::new();
    let url = format!("{base}/readyz");
    eventually("errand to be ready", Duration::from_secs(20), || async {
        let r = http.get(&url).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One attempt of one task as the sleep kind logged it.
#[derive(Debug, Clone)]
pub struct Run {
    pub token: String,
    pub attempt: i64,
    pub started: DateTime<Utc>,
    /// When it finished, or when its process was killed.
    pub ended: Option<DateTime<Utc>>,
}

/// The attempts a process logged ("sleep started", then "sleep finished" or
/// "sleep stopped: …"),
/// those never finished ending at `killed_at`.
pub fn runs(proc: &Proc, killed_at: Option<DateTime<Utc>>) -> Vec<Run> {
    let log = proc.log.lock().unwrap();
    let mut by_attempt: HashMap<(String, i64), Run> = HashMap::new();
    for event in log.iter() {
        let message = event["fields"]["message"].as_str().unwrap_or_default();
        let ends = message == "sleep finished" || message.starts_with("sleep stopped");
        if message != "sleep started" && !ends {
            continue;
        }
        let span = &event["span"];
        let token = span["task.token"]
            .as_str()
            .expect("the task span names the token")
            .to_string();
        let attempt = span["task.attempt"].as_i64().expect("and the attempt");
        let at: DateTime<Utc> = event["timestamp"].as_str().unwrap().parse().unwrap();
        let run = by_attempt.entry((token.clone(), attempt)).or_insert(Run {
            token,
            attempt,
            started: at,
            ended: None,
        });
        if ends {
            run.ended = Some(at);
        }
    }
    by_attempt
        .into_values()
        .map(|mut run| {
            run.ended = run.ended.or(killed_at);
            run
        })
        .collect()
}
