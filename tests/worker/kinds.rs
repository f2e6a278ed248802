//! Command kinds, run for real: a program errand starts for each attempt,
//! fed the payload on stdin, reporting progress on stderr, answering on
//! stdout; stopped (with its grandchildren) on timeout and cancel; and the
//! checks at start (a missing program, a schema that does not compile).

use std::path::{Path, PathBuf};
use std::time::Duration;

use errand::app::Mode;
use errand::config::{KindSettings, Settings};
use errand::kinds::{Kind, TaskContext, TaskError};
use serde_json::{Value, json};

use crate::common::{self, Backend, Client, Proc, TestApp, TestDb, eventually};

on_both_stores!(
    command_reports_progress_from_stderr_and_completes_with_its_stdout,
    failing_command_is_retried_with_its_exit_code_and_stderr_tail,
    non_json_stdout_is_a_string_result_and_too_much_output_fails,
    timeout_kills_the_program_and_its_grandchild,
    cancel_stops_the_program_and_its_grandchild_within_seconds,
    payload_failing_its_schema_is_refused_naming_the_path,
    kind_settings_set_queue_attempts_timeout_and_backoff,
    builder_assembled_process_runs_an_application_kind_created_over_http,
);

/// The program under test: what it does is chosen by its payload.
const SCRIPT: &str = r#"
import json, os, signal, subprocess, sys, time
p = json.load(sys.stdin)
err = lambda line: print(line, file=sys.stderr, flush=True)
if "gate" in p:
    err(json.dumps({"progress": 0.5, "message": "half way"}))
    err("a log line")
    while not os.path.exists(p["gate"]):
        time.sleep(0.02)
    err(json.dumps({"progress": 1.0}))
    print(json.dumps({"echo": p["echo"], "attempt": int(os.environ["ERRAND_ATTEMPT"])}))
elif "exit" in p:
    for line in p["stderr"]:
        err(line)
    sys.exit(p["exit"])
elif "stdout" in p:
    sys.stdout.write(p["stdout"])
elif "flood" in p:
    sys.stdout.write("x" * p["flood"])
elif "env" in p:
    print(json.dumps(dict(os.environ)))
elif "copy" in p:
    inputs, outputs = os.environ["ERRAND_INPUT_DIR"], os.environ["ERRAND_OUTPUT_DIR"]
    data = open(os.path.join(inputs, p["copy"]), "rb").read()
    open(os.path.join(outputs, "reversed.bin"), "wb").write(data[::-1])
    open(os.path.join(outputs, "names.json"), "w").write(json.dumps(sorted(os.listdir(inputs))))
    if p.get("fail_first") and os.environ["ERRAND_ATTEMPT"] == "1":
        sys.exit(3)  # outputs left by a failing program are not collected
    print(json.dumps({"bytes": len(data)}))
elif "mkdir" in p:
    os.mkdir(os.path.join(os.environ["ERRAND_OUTPUT_DIR"], "folder"))
elif "big" in p:
    # p["big"] MiB of a known pattern, as an output file.
    block = bytes(range(256)) * 4096
    with open(os.path.join(os.environ["ERRAND_OUTPUT_DIR"], "big.bin"), "wb") as f:
        for _ in range(p["big"]):
            f.write(block)
elif "hang" in p:
    # A grandchild in the same group, and a program that ignores SIGTERM:
    # only SIGKILL after kill_grace ends it.
    child = subprocess.Popen(["sleep", "1000"])
    with open(p["hang"], "w") as f:
        f.write(str(child.pid))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    err("waiting for ever")
    while True:
        time.sleep(1)
"#;

/// A folder with the script in it, removed at the end.
pub struct Scripts {
    pub dir: PathBuf,
}

impl Scripts {
    pub fn new() -> Scripts {
        let dir =
            std::env::temp_dir().join(format!("errand-cmd-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kind.py"), SCRIPT).unwrap();
        Scripts { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `[kinds.NAME]` running the script.
    pub fn kind(&self) -> KindSettings {
        KindSettings {
            command: Some(vec!["python3".into(), self.path("kind.py")]),
            kill_grace: Some(Duration::from_millis(500)),
            max_attempts: Some(1),
            ..Default::default()
        }
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// errand serving with command kind `run` (and any other given).
pub async fn serve(db: &TestDb, kinds: Vec<(&str, KindSettings)>) -> (TestApp, Client) {
    let app = TestApp::spawn(db, Mode::Serve, |s: &mut Settings| {
        for (name, kind) in kinds {
            s.kinds.insert(name.into(), kind);
        }
    })
    .await;
    let client = Client::new(&app.base, &app.token("alice", "superuser", None).await);
    (app, client)
}

async fn run(client: &Client, payload: Value) -> String {
    client
        .create_ok(json!({"kind": "run", "payload": payload}))
        .await
}

/// Whether process `pid` is gone (or a zombie: dead, waiting to be reaped).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

pub async fn command_reports_progress_from_stderr_and_completes_with_its_stdout(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let (_app, client) = serve(&db, vec![("run", scripts.kind())]).await;
    let gate = scripts.path("gate");
    let token = run(
        &client,
        json!({"gate": gate, "echo": {"words": ["a", "b"]}}),
    )
    .await;
    let running = eventually("progress from stderr", Duration::from_secs(20), || async {
        let t = client.task(&token).await;
        (t["progress"]["fraction"] == json!(0.5)).then_some(t)
    })
    .await;
    assert_eq!(running["status"], "running");
    assert_eq!(running["progress"]["message"], "half way");
    std::fs::write(&gate, "").unwrap();
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"],
        json!({"echo": {"words": ["a", "b"]}, "attempt": 1})
    );
    assert_eq!(done["progress"]["fraction"], json!(1.0));
}

pub async fn failing_command_is_retried_with_its_exit_code_and_stderr_tail(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let kind = KindSettings {
        max_attempts: Some(2),
        backoff_base: Some(Duration::from_millis(10)),
        ..scripts.kind()
    };
    let (_app, client) = serve(&db, vec![("run", kind)]).await;
    let lines: Vec<String> = (0..300).map(|i| format!("log line {i}")).collect();
    let token = run(&client, json!({"exit": 3, "stderr": lines})).await;
    let failed = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["errors"].as_array().unwrap().len(),
        2,
        "retried: {failed}"
    );
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with("the program exited with code 3"),
        "{error}"
    );
    assert!(
        error.ends_with("log line 299") && !error.contains("log line 0\n"),
        "{error}"
    );
    // Exit code 65 means: do not retry.
    let token = run(&client, json!({"exit": 65, "stderr": ["bad input"]})).await;
    let failed = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(failed["errors"].as_array().unwrap().len(), 1, "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("permanent"),
        "{failed}"
    );
}

pub async fn non_json_stdout_is_a_string_result_and_too_much_output_fails(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let kind = KindSettings {
        max_output_bytes: Some(10_000),
        ..scripts.kind()
    };
    let (_app, client) = serve(&db, vec![("run", kind)]).await;
    let token = run(&client, json!({"stdout": "42 words\n"})).await;
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(done["result"], json!("42 words"), "{done}");
    // A NUL no database text can hold is kept as U+FFFD, never a stuck task.
    let token = run(&client, json!({"stdout": "{\"a\": \"x\\u0000y\"}"})).await;
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(done["result"], json!({"a": "x\u{FFFD}y"}), "{done}");
    let token = run(&client, json!({"stdout": ""})).await;
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(
        (&done["status"], &done["result"]),
        (&json!("completed"), &Value::Null)
    );
    let token = run(&client, json!({"flood": 5_000_000})).await;
    let failed = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(failed["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("stdout went past max_output_bytes (10000 bytes)"),
        "{error}"
    );
}

pub async fn timeout_kills_the_program_and_its_grandchild(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let kind = KindSettings {
        timeout: Some(Duration::from_secs(1)),
        ..scripts.kind()
    };
    let (_app, client) = serve(&db, vec![("run", kind)]).await;
    let pid_file = scripts.path("grandchild.pid");
    let token = run(&client, json!({"hang": pid_file})).await;
    let failed = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(failed["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.starts_with("timed out after 1 s"), "{error}");
    assert!(
        error.contains("waiting for ever"),
        "the log tail is kept: {error}"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    eventually(
        "the grandchild to be gone",
        Duration::from_secs(5),
        || async { gone(&pid).then_some(()) },
    )
    .await;
}

pub async fn cancel_stops_the_program_and_its_grandchild_within_seconds(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let (_app, client) = serve(&db, vec![("run", scripts.kind())]).await;
    let pid_file = scripts.path("grandchild.pid");
    let token = run(&client, json!({"hang": pid_file})).await;
    let pid = eventually("the program to start", Duration::from_secs(20), || async {
        std::fs::read_to_string(&pid_file)
            .ok()
            .filter(|p| !p.is_empty())
    })
    .await;
    assert_eq!(client.cancel(&token).await.status(), 202);
    // SIGTERM is ignored: SIGKILL after kill_grace (0.5 s) ends it.
    let cancelled = client.wait_done(&token, Duration::from_secs(5)).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    eventually(
        "the grandchild to be gone",
        Duration::from_secs(5),
        || async { gone(&pid).then_some(()) },
    )
    .await;
}

pub async fn payload_failing_its_schema_is_refused_naming_the_path(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let kind = KindSettings {
        schema: Some(json!({
            "type": "object",
            "required": ["audio_url"],
            "properties": {"audio_url": {"type": "string", "format": "uri"}}
        })),
        ..scripts.kind()
    };
    let (_app, client) = serve(&db, vec![("run", kind)]).await;
    for (payload, says) in [
        (json!({}), "/audio_url: is required"),
        (json!({"audio_url": 7}), "/audio_url: 7 is not of type"),
        (
            json!({"audio_url": "no uri"}),
            "/audio_url: \"no uri\" is not a \"uri\"",
        ),
    ] {
        let r = client
            .create(json!({"kind": "run", "payload": payload}))
            .await;
        assert_eq!(r.status(), 422);
        let problem: Value = r.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{detail}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM tasks").await,
        0,
        "nothing queued"
    );
    let kinds = client.get_json("/v1/kinds").await;
    let run = kinds["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "run");
    assert_eq!(
        run.unwrap()["payload_schema"]["required"],
        json!(["audio_url"])
    );
}

// ---- the real binary ---------------------------------------------------------

/// A config file in `dir` declaring `body`.
pub fn config(dir: &Path, body: &str) -> String {
    let path = dir.join("errand.toml");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

/// The program sees only its own environment: never errand's database URL,
/// its callback secret, or anything of its configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_sees_neither_the_database_url_nor_the_callback_secret() {
    let db = TestDb::postgres().await;
    let scripts = Scripts::new();
    let cfg = config(
        &scripts.dir,
        "[kinds.run]\ncommand = [\"python3\", \"kind.py\"]\nenv = { GREETING = \"hi\" }\n",
    );
    let secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
    let mut env = common::proc_env(&db);
    env.insert("ERRAND__CALLBACKS__SECRET".into(), secret.into());
    env.insert("HOME".into(), "/home/test".into());
    let serve = Proc::spawn(&["--config", &cfg, "serve"], &env);
    let base = serve.base_url().await;
    common::wait_ready(&base).await;
    let root = common::run_errand(
        &scripts.dir,
        &["token", "create", "--name", "root", "--role", "superuser"],
        &env,
    );
    let client = Client::new(&base, root.trim());
    let token = client
        .create_ok(json!({"kind": "run", "payload": {"env": true}}))
        .await;
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    let seen = done["result"]
        .as_object()
        .unwrap_or_else(|| panic!("{done}"));
    let text = serde_json::to_string(seen).unwrap();
    assert!(!text.contains(&db.url) && !text.contains(secret), "{text}");
    assert!(!seen.contains_key("DATABASE_URL"), "{text}");
    assert!(!seen.keys().any(|k| k.starts_with("ERRAND__")), "{text}");
    assert_eq!(seen["GREETING"], "hi");
    assert_eq!(seen["HOME"], "/home/test", "passed through by default");
    assert_eq!(seen["ERRAND_TASK_TOKEN"], token.as_str());
    assert_eq!(seen["ERRAND_KIND"], "run");
    assert_eq!(seen["TMPDIR"], seen["ERRAND_SCRATCH_DIR"]);
}

/// A worker without a command kind's program refuses to start, naming the
/// kind and the program; an API node, which does not run it, starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_the_program_refuses_to_start() {
    let db = TestDb::sqlite().await;
    let scripts = Scripts::new();
    let cfg = config(
        &scripts.dir,
        "[kinds.transcribe]\ncommand = [\"whisper-not-installed\", \"--model\", \"base\"]\n",
    );
    let env = common::proc_env(&db);
    let mut worker = Proc::spawn(&["--config", &cfg, "worker"], &env);
    let status = worker.exited(Duration::from_secs(20)).await;
    assert!(!status.success());
    let said = format!("{:?}", worker.log.lock().unwrap());
    assert!(
        said.contains("kinds.transcribe")
            && said.contains("\\\"whisper-not-installed\\\" was not found"),
        "{said}"
    );
    let api = Proc::spawn(&["--config", &cfg, "api"], &env);
    common::wait_ready(&api.base_url().await).await;
}

/// A schema that does not compile stops the start, naming its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_that_does_not_compile_refuses_start() {
    let db = TestDb::sqlite().await;
    let scripts = Scripts::new();
    std::fs::write(scripts.dir.join("bad.json"), r#"{"type": "strung"}"#).unwrap();
    let cfg = config(
        &scripts.dir,
        "[kinds.run]\ncommand = [\"python3\", \"kind.py\"]\nschema_file = \"bad.json\"\n",
    );
    let mut serve = Proc::spawn(&["--config", &cfg, "serve"], &common::proc_env(&db));
    assert!(!serve.exited(Duration::from_secs(20)).await.success());
    let said = format!("{:?}", serve.log.lock().unwrap());
    assert!(
        said.contains("kinds.run.schema_file: not a usable JSON Schema"),
        "{said}"
    );
}

// ---- every kind's settings, and kinds of an application's own -------------------

/// `[kinds.NAME]` sets queue, attempts, timeout and backoff for a Rust kind
/// as for a command kind (whose attempts and timeout are tested above).
pub async fn kind_settings_set_queue_attempts_timeout_and_backoff(backend: Backend) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn(&db, Mode::Serve, |s: &mut Settings| {
        s.worker.queues = errand::config::parse_queues("naps").unwrap();
        // Without the kind's own backoff, retries would come within 10 ms.
        s.tasks.backoff_base = Duration::from_millis(10);
        s.kinds.insert(
            "sleep".into(),
            KindSettings {
                queue: Some("naps".into()),
                max_attempts: Some(2),
                timeout: Some(Duration::from_millis(300)),
                backoff_base: Some(Duration::from_secs(1)),
                ..Default::default()
            },
        );
    })
    .await;
    let client = Client::new(&app.base, &app.token("alice", "user", None).await);
    let token = client
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 0, "fail": true}}))
        .await;
    let failed = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(
        failed["queue"], "naps",
        "the kind's queue, served: {failed}"
    );
    let errors = failed["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "the kind's max_attempts: {failed}");
    let at = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    // Equal jitter on a 1 s base: the retry waited at least half of it.
    let gap = at(&failed["started_at"]) - at(&errors[0]["at"]);
    assert!(
        gap >= chrono::Duration::milliseconds(500),
        "the kind's backoff: {gap}"
    );
    let token = client
        .create_ok(json!({"kind": "sleep", "payload": {"seconds": 30}}))
        .await;
    let failed = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(
        failed["errors"][0]["message"], "timed out after 0.3 s",
        "{failed}"
    );
}

/// The application's own state, as a handler reads it.
struct Greeting(&'static str);

/// A kind of the test's own, with a typed payload and a schema.
struct Greet;

#[derive(serde::Deserialize)]
struct GreetPayload {
    name: String,
}

impl Kind for Greet {
    const NAME: &'static str = "greet";
    type Payload = GreetPayload;

    fn schema(&self) -> Option<Value> {
        Some(json!({"type": "object", "required": ["name"]}))
    }

    async fn run(&self, p: GreetPayload, ctx: &TaskContext) -> Result<Value, TaskError> {
        let greeting = ctx.state::<Greeting>()?;
        ctx.progress(0.5, "greeting");
        Ok(json!(format!("{}, {}", greeting.0, p.name)))
    }
}

/// A process the builder assembled runs a Rust kind of the application's
/// own, created over HTTP, with the application's state.
pub async fn builder_assembled_process_runs_an_application_kind_created_over_http(
    backend: Backend,
) {
    let db = TestDb::of(backend).await;
    let app = TestApp::spawn_built(common::test_settings(&db), Mode::Serve, |b| {
        b.kind(Greet).state(Greeting("hello"))
    })
    .await;
    let client = Client::new(&app.base, &app.token("alice", "user", None).await);
    let token = client
        .create_ok(json!({"kind": "greet", "payload": {"name": "Ann"}}))
        .await;
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(done["result"], json!("hello, Ann"), "{done}");
    let r = client.create(json!({"kind": "greet", "payload": {}})).await;
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("/name: is required"),
        "{problem}"
    );
}

/// The command-kind example of the README, run as a newcomer would: errand
/// with `--config examples/transcribe/errand.toml`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcribe_example_runs_as_the_readme_shows() {
    let db = TestDb::sqlite().await;
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transcribe/errand.toml");
    let env = common::proc_env(&db);
    let serve = Proc::spawn(&["--config", cfg.to_str().unwrap(), "serve"], &env);
    let base = serve.base_url().await;
    common::wait_ready(&base).await;
    let dir = std::env::temp_dir();
    let token = common::run_errand(
        &dir,
        &["token", "create", "--name", "ann", "--role", "user"],
        &env,
    );
    let client = Client::new(&base, token.trim());
    let payload = json!({"audio_url": "https://example.com/talk.wav", "duration": 4});
    let task = client
        .create_ok(json!({"kind": "transcribe", "payload": payload}))
        .await;
    let done = client.wait_done(&task, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["text"], "segment1 segment2");
    assert_eq!(done["progress"]["message"], "segment 2 of 2");
    let refused = client
        .create(json!({"kind": "transcribe", "payload": {"audio_url": "talk.wav", "speed": 2}}))
        .await;
    assert_eq!(refused.status(), 422);
    let payload = json!({"audio_url": "ftp://example.com/talk.wav"});
    let task = client
        .create_ok(json!({"kind": "transcribe", "payload": payload}))
        .await;
    let failed = client.wait_done(&task, Duration::from_secs(20)).await;
    assert_eq!(
        failed["errors"].as_array().unwrap().len(),
        1,
        "exit 65 is not retried"
    );
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("only http(s) audio"),
        "{failed}"
    );
}
