//! Runs Node test files of `clients/js` (node --test) against a private Redis
//! and the workspace's gateway and ingest-sim binaries.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tickstream_testkit::{bin_path, RedisServer};

/// The whole Node run may take this long (restarts and browser start-up included).
const NODE_TIMEOUT: Duration = Duration::from_secs(300);

/// `clients/js` in the workspace.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../clients/js")
}

/// Runs `node --test` on `files` (relative to `clients/js`) and fails with its output unless every test passed.
pub async fn run_node_tests(files: &[&str]) {
    let dir = js_dir();
    assert!(
        dir.join("node_modules/ws/package.json").exists(),
        "the JS test dependencies are not installed: run scripts/ensure-js-clients.sh (make test does)"
    );
    for bin in ["gateway", "ingest-sim"] {
        assert!(
            bin_path(bin).exists(),
            "binary {bin} not built: run `cargo build -p gateway -p ingest-sim` (make test builds every binary)"
        );
    }
    let redis = RedisServer::start().await.unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(&dir)
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(files)
        .env("REDIS_URL", redis.url())
        .env("TICKSTREAM_GATEWAY_BIN", bin_path("gateway"))
        .env("TICKSTREAM_INGEST_SIM_BIN", bin_path("ingest-sim"))
        .env("TICKSTREAM_RESULTS_DIR", results_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .expect("running node (scripts/ensure-js-clients.sh installs it)");
    let out = tokio::time::timeout(NODE_TIMEOUT, child.wait_with_output())
        .await
        .expect("node --test did not finish in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "node --test {files:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// Where browser tests save screenshots: `<target>/js-test-results`.
pub fn results_dir() -> PathBuf {
    let dir = tickstream_testkit::target_dir().join("js-test-results");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
