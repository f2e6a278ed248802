//! Task files where the work is done: a command gets its inputs as files
//! and leaves outputs, a Rust kind reads and writes them through its
//! context; a 300 MB file goes in and out of a real `errand` in bounded
//! memory; a worker SIGKILLed while storing an output leaves nothing
//! half-made visible; files in a real S3-compatible server (moto); and the
//! transcode example with a real sox.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use errand::app::Mode;
use errand::config::KindSettings;
use errand::kinds::{Kind, TaskContext, TaskError};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::common::{
    self, Backend, Client, Proc, TestApp, TestDb, eventually, hex, pattern, peak_rss_mib,
    sha256_hex,
};
use crate::kinds::{Scripts, config, serve};

on_both_stores!(
    command_reads_inputs_as_files_and_what_it_leaves_becomes_outputs,
    rust_kind_reads_an_input_and_stores_an_output,
    a_300_mb_file_goes_in_and_out_of_a_real_errand_in_bounded_memory,
    worker_killed_while_storing_an_output_leaves_no_half_file,
);

/// The outputs' names, in order.
fn output_names(task: &Value) -> Vec<&str> {
    task["files"]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect()
}

/// The task's output `name`.
fn output<'a>(task: &'a Value, name: &str) -> &'a Value {
    let outputs = task["files"]["outputs"].as_array().unwrap();
    outputs
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no output {name}: {task}"))
}

pub async fn command_reads_inputs_as_files_and_what_it_leaves_becomes_outputs(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let kind = KindSettings {
        max_attempts: Some(2),
        backoff_base: Some(Duration::from_millis(10)),
        ..scripts.kind()
    };
    let (_app, client) = serve(&db, vec![("run", kind)]).await;
    let data = pattern(200_000);
    let a = client.upload_ok(data.clone()).await;
    let b = client.upload_ok(pattern(10)).await;
    let token = client
        .create_ok(json!({
            "kind": "run",
            "payload": {"copy": "a", "fail_first": true},
            "files": {"a": a["id"], "b": b["id"]},
        }))
        .await;
    // The first attempt fails (its outputs are not collected); the retry
    // gets the same inputs.
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempt"], 2, "{done}");
    assert_eq!(done["result"], json!({"bytes": 200_000}));
    assert_eq!(output_names(&done), ["names.json", "reversed.bin"]);
    let names = output(&done, "names.json");
    assert_eq!(names["content_type"], "application/json");
    let listed = client.download(names["href"].as_str().unwrap(), &[]).await;
    assert_eq!(listed.json::<Value>().await.unwrap(), json!(["a", "b"]));
    let reversed: Vec<u8> = data.iter().rev().copied().collect();
    let file = output(&done, "reversed.bin");
    assert_eq!(file["sha256"], sha256_hex(&reversed));
    let got = client.download(file["href"].as_str().unwrap(), &[]).await;
    assert_eq!(&got.bytes().await.unwrap()[..], &reversed[..]);
    // A folder in ERRAND_OUTPUT_DIR is not something the task can hand
    // back: a failure, not retried, and no outputs.
    let kind = KindSettings {
        max_attempts: Some(3),
        ..scripts.kind()
    };
    let (_app, client) = serve(&db, vec![("run", kind)]).await;
    let token = client
        .create_ok(json!({"kind": "run", "payload": {"mkdir": true}}))
        .await;
    let failed = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(failed["errors"].as_array().unwrap().len(), 1, "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("ERRAND_OUTPUT_DIR may hold only regular files; \"folder\""),
        "{failed}"
    );
    assert!(output_names(&failed).is_empty());
}

/// A kind of the test's own that upper-cases its input `text`.
struct Upper;

impl Kind for Upper {
    const NAME: &'static str = "upper";
    type Payload = Value;

    async fn run(&self, _: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let mut text = Vec::new();
        let mut input = ctx.read_input("text").await?;
        while let Some(piece) = input.next().await {
            text.extend_from_slice(&piece?);
        }
        let upper = text.to_ascii_uppercase();
        let file = ctx.put_file("upper.txt", "text/plain", &upper[..]).await?;
        if ctx.attempt() == 1 {
            return Err(TaskError::retryable("failing after storing an output"));
        }
        Ok(json!({"sha256": file.sha256}))
    }
}

pub async fn rust_kind_reads_an_input_and_stores_an_output(backend: Backend) {
    let db = TestDb::of(backend).await;
    let mut settings = common::test_settings(&db);
    settings.tasks.backoff_base = Duration::from_millis(10);
    settings.files.writing_timeout = Duration::from_secs(1);
    settings.retention.interval = Duration::from_millis(100);
    let app = TestApp::spawn_built(settings, Mode::Serve, |b| b.kind(Upper)).await;
    let client = Client::new(&app.base, &app.token("alice", "user", None).await);
    let text = b"quiet words ".repeat(100_000);
    let file = client.upload_ok(text.clone()).await;
    let token = client
        .create_ok(json!({"kind": "upper", "payload": {}, "files": {"text": file["id"]}}))
        .await;
    // The first attempt stores its output and fails: the task gets only
    // the output of the attempt that completed, and the other one goes.
    let done = client.wait_done(&token, Duration::from_secs(20)).await;
    assert_eq!(done["attempt"], 2, "{done}");
    assert_eq!(output_names(&done), ["upper.txt"]);
    let upper = output(&done, "upper.txt");
    assert_eq!(upper["content_type"], "text/plain");
    assert_eq!(upper["size"], text.len());
    assert_eq!(done["result"]["sha256"], upper["sha256"]);
    let got = client.download(upper["href"].as_str().unwrap(), &[]).await;
    assert_eq!(
        &got.bytes().await.unwrap()[..],
        &text.to_ascii_uppercase()[..]
    );
    let made = "SELECT count(*) FROM files WHERE made_by IS NOT NULL";
    eventually(
        "the failed attempt's output to go",
        Duration::from_secs(20),
        || async { (db.count(made).await == 1).then_some(()) },
    )
    .await;
    // Without the input, the attempt fails saying so.
    let token = client
        .create_ok(json!({"kind": "upper", "payload": {}}))
        .await;
    let failed = client.wait_done(&token, Duration::from_secs(20)).await;
    assert!(
        failed["error"].as_str().unwrap().contains("text"),
        "{failed}"
    );
}

/// errand serving as a newcomer runs it, its config in `dir`, with a user.
async fn serve_process(
    dir: &Path,
    cfg: &str,
    env: &std::collections::HashMap<String, String>,
) -> (Proc, Client) {
    let serve = Proc::spawn_in(dir, &["--config", cfg, "serve"], env);
    let base = serve.base_url().await;
    common::wait_ready(&base).await;
    let token = common::run_errand(
        dir,
        &["token", "create", "--name", "ann", "--role", "user"],
        env,
    );
    (serve, Client::new(&base, token.trim()))
}

/// Upload and download stream: errand holds a chunk or two, never a file.
pub async fn a_300_mb_file_goes_in_and_out_of_a_real_errand_in_bounded_memory(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let cfg = config(&scripts.dir, "");
    let (serve, client) = serve_process(&scripts.dir, &cfg, &common::proc_env(&db)).await;
    let data = pattern(300 << 20);
    let digest = sha256_hex(&data);
    let file = client.upload_ok(data).await;
    assert_eq!(file["sha256"], digest);
    let token = client
        .create_ok(
            json!({"kind": "sleep", "payload": {"seconds": 0}, "files": {"audio": file["id"]}}),
        )
        .await;
    let href = format!("/v1/tasks/{token}/files/audio");
    assert_eq!(client.download_digest(&href).await, (300 << 20, digest));
    let peak = peak_rss_mib(serve.pid());
    assert!(peak < 100, "errand peaked at {peak} MiB for a 300 MiB file");
}

/// The SHA-256 of what the script's `{"big": mib}` writes.
fn big_digest(mib: usize) -> String {
    let block: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let mut hasher = sha2::Sha256::new();
    for _ in 0..mib {
        hasher.update(&block);
    }
    hex(&hasher.finalize())
}

pub async fn worker_killed_while_storing_an_output_leaves_no_half_file(backend: Backend) {
    let db = TestDb::of(backend).await;
    let scripts = Scripts::new();
    let cfg = config(
        &scripts.dir,
        "[kinds.run]\ncommand = [\"python3\", \"kind.py\"]\nmax_attempts = 3\n",
    );
    let mut env = common::proc_env(&db);
    env.insert("ERRAND__FILES__WRITING_TIMEOUT".into(), "2s".into());
    env.insert("ERRAND__RETENTION__INTERVAL".into(), "500ms".into());
    let (mut first, client) = serve_process(&scripts.dir, &cfg, &env).await;
    let token = client
        .create_ok(json!({"kind": "run", "payload": {"big": 256}}))
        .await;
    eventually(
        "the output to be half stored",
        Duration::from_secs(60),
        || async {
            let chunks = db.count("SELECT count(*) FROM file_chunks").await;
            (chunks >= 8).then_some(())
        },
    )
    .await;
    first.kill();
    assert_eq!(
        db.count("SELECT count(*) FROM files WHERE state = 'writing'")
            .await,
        1,
        "killed while writing"
    );
    let (_second, client) = serve_process(&scripts.dir, &cfg, &env).await;
    let task = client.task(&token).await;
    assert!(output_names(&task).is_empty(), "no half file: {task}");
    let href = format!("/v1/tasks/{token}/files/big.bin");
    assert_eq!(client.download(&href, &[]).await.status(), 404);
    // Its lease runs out, it is run again, and completes whole.
    let done = client.wait_done(&token, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempt"], 2);
    let big = output(&done, "big.bin");
    let digest = big_digest(256);
    assert_eq!(big["sha256"], digest.as_str());
    assert_eq!(client.download_digest(&href).await, (256 << 20, digest));
    // The abandoned one is pruned; the task's own stays, whole.
    eventually("the half file to go", Duration::from_secs(30), || async {
        let files = db.count("SELECT count(*) FROM files").await;
        let chunks = db.count("SELECT count(*) FROM file_chunks").await;
        (files == 1 && chunks == 256).then_some(())
    })
    .await;
}

/// A real S3-compatible server (moto), on a free port, killed at the end.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    async fn start(bucket: &str) -> Moto {
        let port = common::free_port();
        let child = Command::new("moto_server")
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]')");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        common::tls();
        let http = reqwest::Client::new();
        let url = format!("{}/{bucket}", moto.endpoint);
        eventually(
            "moto to make the bucket",
            Duration::from_secs(30),
            || async {
                let r = http.put(&url).send().await.ok()?;
                r.status().is_success().then_some(())
            },
        )
        .await;
        moto
    }

    /// The keys in `bucket`.
    async fn keys(&self, bucket: &str) -> Vec<String> {
        let url = format!("{}/{bucket}?list-type=2", self.endpoint);
        let listing = reqwest::get(&url).await.unwrap().text().await.unwrap();
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `files.store = "s3://…"`, uploads, outputs and downloads go through
/// the S3 API, and pruning removes the objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_live_in_an_s3_compatible_store_and_go_with_their_task() {
    let db = TestDb::postgres().await;
    let moto = Moto::start("errand-test").await;
    let scripts = Scripts::new();
    let cfg = config(
        &scripts.dir,
        "[kinds.run]\ncommand = [\"python3\", \"kind.py\"]\n",
    );
    let mut env = common::proc_env(&db);
    for (name, value) in [
        ("ERRAND__FILES__STORE", "s3://errand-test/tasks"),
        ("ERRAND__RETENTION__COMPLETED", "2s"),
        ("ERRAND__RETENTION__INTERVAL", "500ms"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", &moto.endpoint),
        ("AWS_ALLOW_HTTP", "true"),
    ] {
        env.insert(name.into(), value.into());
    }
    let (_serve, client) = serve_process(&scripts.dir, &cfg, &env).await;
    let data = pattern(3_000_000);
    let a = client.upload_ok(data.clone()).await;
    assert_eq!(moto.keys("errand-test").await.len(), 1, "the upload");
    let token = client
        .create_ok(json!({"kind": "run", "payload": {"copy": "a"}, "files": {"a": a["id"]}}))
        .await;
    let done = client.wait_done(&token, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let reversed: Vec<u8> = data.iter().rev().copied().collect();
    let href = output(&done, "reversed.bin")["href"].as_str().unwrap();
    assert_eq!(
        client.download_digest(href).await,
        (3_000_000, sha256_hex(&reversed))
    );
    let keys = moto.keys("errand-test").await;
    assert_eq!(keys.len(), 3, "input and two outputs: {keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("tasks/")), "{keys:?}");
    assert_eq!(db.count("SELECT count(*) FROM file_chunks").await, 0);
    // Two seconds after it completed, the task goes, and its files with it.
    eventually("the objects to go", Duration::from_secs(30), || async {
        moto.keys("errand-test").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(client.get(&token).await.status(), 404);
}

/// The transcode example, run as the README shows it, with a real sox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcode_example_turns_a_wav_into_ogg_with_progress() {
    let db = TestDb::sqlite().await;
    let scripts = Scripts::new();
    let wav = scripts.path("tone.wav");
    let made = Command::new("sox")
        .args(["-n", "-r", "44100", "-c", "2", "-b", "16", &wav])
        .args(["synth", "3", "sine", "440"])
        .status()
        .expect("sox (apt-get install sox)");
    assert!(made.success());
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transcode/errand.toml");
    let cfg = cfg.to_str().unwrap();
    let (_serve, client) = serve_process(&scripts.dir, cfg, &common::proc_env(&db)).await;
    let audio = client.upload_ok(std::fs::read(&wav).unwrap()).await;
    let token = client
        .create_ok(json!({
            "kind": "transcode",
            "payload": {"format": "ogg", "rate": 16000},
            "files": {"audio": audio["id"]},
        }))
        .await;
    let done = client.wait_done(&token, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["fraction"], json!(1.0), "{done}");
    let ogg = output(&done, "audio.ogg");
    assert_eq!(ogg["content_type"], "audio/ogg");
    assert_eq!(done["result"]["bytes"], ogg["size"]);
    let got = client.download(ogg["href"].as_str().unwrap(), &[]).await;
    assert!(got.bytes().await.unwrap().starts_with(b"OggS"));
    // What is not audio fails for good: exit 65, not retried.
    let junk = client.upload_ok(b"not a wav".to_vec()).await;
    let token = client
        .create_ok(json!({"kind": "transcode", "payload": {}, "files": {"audio": junk["id"]}}))
        .await;
    let failed = client.wait_done(&token, Duration::from_secs(60)).await;
    assert_eq!(failed["errors"].as_array().unwrap().len(), 1, "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("sox"),
        "{failed}"
    );
}
