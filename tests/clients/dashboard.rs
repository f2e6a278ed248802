//! The dashboard at `/ui` in headless Chromium: `tests/ui/dashboard.test.mjs`
//! (Node's test runner, playwright-core driving Debian's `chromium`) against
//! a real `errand serve`, which also lists a page of another origin in
//! `http.cors_origins`, so that the JavaScript client is tried from a
//! browser across origins too.

use std::path::Path;

use crate::common::free_port;
use crate::{ONE_AT_A_TIME, Served, npm_packages_in, repo, run_node};

/// Where the browser is: Debian's package (`apt-get install chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Signs in from the address, lists, filters, opens a detail view, cancels
/// a running task and retries a failed one (each after a confirm), bulk
/// cancels and bulk retries, reads the stats, chart and workers, pauses
/// and resumes a queue, lists schedules with their next ticks and pauses
/// and resumes one (an admin its product's), shows expired tasks and
/// distinct short tokens, shows a user no Cancel button, keeps scroll and
/// detail across refreshes, works from the keyboard and at 390 px, and
/// leaves the console clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_headless_chromium() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = repo("tests/ui");
    npm_packages_in(&dir);
    assert!(
        Path::new(CHROMIUM).exists(),
        "the dashboard's tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    );
    let page_port = free_port().to_string();
    let page_origin = format!("http://127.0.0.1:{page_port}");
    let served = Served::start(&[
        ("ERRAND__WORKER__CONCURRENCY", "8"),
        ("ERRAND__HTTP__CORS_ORIGINS", page_origin.as_str()),
    ])
    .await;
    let root = served.token("root", "superuser", None);
    let user = served.token("alice", "user", None);
    let admin = served.token("shop-admin", "admin", Some("shop"));
    let shots = repo("target/ui-screenshots");
    let report = run_node(
        &dir,
        "node",
        &["--test", "dashboard.test.mjs"],
        &[
            ("ERRAND_URL", served.base.as_str()),
            ("ERRAND_ROOT_TOKEN", root.as_str()),
            ("ERRAND_USER_TOKEN", user.as_str()),
            ("ERRAND_ADMIN_TOKEN", admin.as_str()),
            ("ERRAND_PAGE_PORT", page_port.as_str()),
            ("ERRAND_SCREENSHOTS", &shots.display().to_string()),
        ],
    );
    assert!(report.contains("# fail 0"), "{report}");
}
