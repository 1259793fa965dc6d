//! The dashboard at `/` and the served client module in headless Chromium
//! (Debian's `chromium` driven by npm `playwright-core`), against the real
//! gateway and ingest-sim.
//!
//! Screenshots (1280×800 and 390×844) go to `<target>/js-test-results/`.
//! Chromium and playwright-core are installed by `scripts/ensure-js-clients.sh`
//! (`make test` runs it); if they are not, this test fails saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/js.rs"]
mod js;

use js::run_node_tests;

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_headless_chromium() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            || std::env::var_os("CHROMIUM_PATH").is_some(),
        "no /usr/bin/chromium: run scripts/ensure-js-clients.sh (make test does)"
    );
    run_node_tests(&["test/browser/dashboard.test.js"]).await;
}
