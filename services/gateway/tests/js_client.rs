//! The JavaScript client library (`clients/js`) and its React hooks, driven by
//! Node's built-in test runner against the real gateway and ingest-sim.
//!
//! This test starts the private Redis; the Node tests start, kill and restart
//! the gateway and ingest-sim binaries themselves (they need to, to test
//! reconnecting). Node and the npm dev dependencies must be installed by
//! `scripts/ensure-js-clients.sh` (`make test` runs it); if they are not,
//! this test fails saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/js.rs"]
mod js;

use js::run_node_tests;

#[tokio::test(flavor = "multi_thread")]
async fn js_client_library_against_the_gateway() {
    run_node_tests(&[
        "test/unit.test.js",
        "test/client.test.js",
        "test/react.test.js",
    ])
    .await;
}
