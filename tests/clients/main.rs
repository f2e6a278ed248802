//! errand's two clients for people who never read Rust, each run against
//! real `errand serve` processes on a fresh Postgres database: the
//! JavaScript client (`clients/js`, its own suite under Node's test runner,
//! and its types under `tsc`), and the dashboard at `/ui` in headless
//! Chromium (`tests/ui`, driven by playwright-core).
//!
//! They need Node 20+ with npm (the packages of `clients/js` and `tests/ui`
//! are installed from their lock files when missing), and Debian's
//! `chromium`.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod dashboard;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Proc, TestDb, proc_env, run_errand};

/// Held by each test of this binary: a browser, Node and errand at once
/// are all two cores can take (the client's suite times an abort).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The repository's folder `rel`.
fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Installs a folder's npm packages as its lock file pins them, unless
/// they are there already (`.ci/run` installs them afresh).
fn npm_packages_in(dir: &Path) {
    if dir.join("node_modules/.package-lock.json").is_file() {
        return;
    }
    run_node(dir, "npm", &["ci", "--no-audit", "--no-fund"], &[]);
}

/// A real `errand serve` on a fresh database, and tokens for it.
struct Served {
    _db: TestDb,
    _proc: Proc,
    base: String,
    env: HashMap<String, String>,
}

impl Served {
    async fn start(extra: &[(&str, &str)]) -> Served {
        let db = TestDb::postgres().await;
        let mut env = proc_env(&db);
        env.insert("ERRAND__WORKER__CONCURRENCY".into(), "4".into());
        env.insert("ERRAND__WORKER__PROGRESS_INTERVAL".into(), "100ms".into());
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let proc = Proc::spawn(&["serve"], &env);
        let base = proc.base_url().await;
        common::wait_ready(&base).await;
        Served {
            _db: db,
            _proc: proc,
            base,
            env,
        }
    }

    fn token(&self, name: &str, role: &str, product: Option<&str>) -> String {
        let mut args = vec!["token", "create", "--name", name, "--role", role];
        if let Some(p) = product {
            args.extend(["--product", p]);
        }
        run_errand(&std::env::temp_dir(), &args, &self.env)
            .trim()
            .to_string()
    }
}

/// Runs `program args` in `dir` with `env`; fails showing its output.
fn run_node(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("could not run {program} (is Node 20+ installed?): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// The JavaScript client, imported as a frontend imports it, against a real
/// errand: success with progress, failure, cancel, abort mid-wait, a lost
/// create answer retried without a duplicate, refusals with their details,
/// start deadlines and expiry, queues paused and resumed, retry by filter,
/// schedules (a superuser's and a product admin's) (see
/// `clients/js/test/client.test.js`); and its published types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_client_passes_its_suite_against_a_real_errand() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = repo("clients/js");
    npm_packages_in(&dir);
    let served = Served::start(&[]).await;
    let user = served.token("alice", "user", None);
    let root = served.token("root", "superuser", None);
    let admin = served.token("shop-admin", "admin", Some("shop"));
    let report = run_node(
        &dir,
        "node",
        &["--test", "test/"],
        &[
            ("ERRAND_URL", served.base.as_str()),
            ("ERRAND_TOKEN", user.as_str()),
            ("ERRAND_ROOT_TOKEN", root.as_str()),
            ("ERRAND_ADMIN_TOKEN", admin.as_str()),
        ],
    );
    assert!(report.contains("# fail 0"), "{report}");
    run_node(&dir, "node_modules/.bin/tsc", &["-p", "."], &[]);
}
