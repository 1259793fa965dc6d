//! Stock Socket.IO clients (npm socket.io-client 4.x, PyPI python-socketio) against the real gateway.
//!
//! Each client is a child process driven through stdin and printing one JSON
//! line per event (see `tests/clients/`). The clients must be installed by
//! `scripts/ensure-sio-clients.sh`; if they are not, these tests fail saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::sio::{node, python, ClientProc};
use common::*;
use serde_json::{json, Value};

/// Reconnecting after a restart takes the client's backoff (1 s, then up to 5 s) plus the binary's start.
const RECONNECT: Duration = Duration::from_secs(30);

/// A native `/ws` client holding every test symbol, so the gateway receives
/// them all from Redis and the Socket.IO client's filtering is really tested.
async fn witness(stack: &Stack) -> Ws {
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    subscribe(&mut ws, &["BTCUSDT", "ETHUSDT", "SOLUSDT"]).await;
    // The reply comes before Redis has confirmed every SUBSCRIBE: a tick published
    // earlier would be lost upstream of the gateway, not by it.
    for symbol in ["BTCUSDT", "ETHUSDT", "SOLUSDT"] {
        stack.wait_numsub(symbol, 1).await;
    }
    ws
}

/// Waits on the witness for a price_update of `symbol` with `seq`.
async fn witness_sees(ws: &mut Ws, symbol: &str, seq: u64) {
    loop {
        let v = expect_event(ws, "price_update").await;
        if v["data"]["symbol"] == symbol && v["data"]["seq"] == seq {
            return;
        }
    }
}

fn is_tick(v: &Value, symbol: &str, seq: u64) -> bool {
    v["data"]["symbol"] == symbol && v["data"]["seq"] == seq
}

/// Waits for `connect` then `connected`; returns the client id (= Socket.IO socket id).
async fn connected(client: &mut ClientProc) -> (Value, String) {
    let connect = client.wait_event(STEP, "connect", |_| true).await;
    let hello = client.wait_event(STEP, "connected", |_| true).await;
    assert_eq!(
        hello["data"]["message"],
        "Connected to WebSocket Streaming Service"
    );
    let client_id = hello["data"]["client_id"].as_str().unwrap().to_owned();
    assert!(!client_id.is_empty());
    assert_eq!(connect["id"], client_id.as_str(), "socket id = client_id");
    (connect, client_id)
}

/// How the gateway goes down before it is started again on the same port.
#[derive(Clone, Copy, PartialEq)]
enum Restart {
    /// SIGKILL: the client sees its transport drop.
    Crash,
    /// SIGTERM: the gateway closes the Engine.IO session itself (as the
    /// reference server's `close()`), which stock clients treat as a
    /// transport close and reconnect from; a Socket.IO DISCONNECT would stop them.
    Graceful,
}

/// The scenario of issue 4 for one connected client: subscribe two symbols,
/// live ticks of those only, unsubscribe and silence, the expected final
/// transport, then a gateway restart, automatic reconnect and ticks again.
async fn scenario(
    mut stack: Stack,
    mut client: ClientProc,
    client_id: &str,
    final_transport_ws: bool,
    restart: Restart,
) {
    let mut witness_ws = witness(&stack).await;
    client
        .cmd(json!({"emit": "subscribe", "data": {"symbols": ["BTCUSDT", "ethusdt"]}}))
        .await;
    let sub = client.wait_event(STEP, "subscribed", |_| true).await;
    assert_eq!(sub["data"]["symbols"], json!(["BTCUSDT", "ETHUSDT"]));
    assert_eq!(sub["data"]["message"], "Subscribed to 2 symbols");

    // Redis delivers in order: SOLUSDT (not subscribed) comes before the two
    // the client holds, so if it leaked it would be seen first.
    stack.publish("SOLUSDT", 1, 150.5).await;
    let btc = stack.publish("BTCUSDT", 1, 43000.5).await;
    let eth = stack.publish("ETHUSDT", 1, 3000.25).await;
    let got_btc = client
        .wait_event(STEP, "price_update", |v| is_tick(v, "BTCUSDT", 1))
        .await;
    assert_eq!(got_btc["data"], btc, "tick delivered unchanged");
    let got_eth = client
        .wait_event(STEP, "price_update", |v| is_tick(v, "ETHUSDT", 1))
        .await;
    assert_eq!(got_eth["data"], eth);

    // An acked request: the reply data comes back as the ack's argument.
    client.cmd(json!({"ack": "list", "data": null})).await;
    let ack = client
        .wait_event(STEP, "ack", |v| v["event"] == "list")
        .await;
    assert_eq!(ack["data"]["symbols"], json!(["BTCUSDT", "ETHUSDT"]));

    client
        .cmd(json!({"emit": "unsubscribe", "data": {"symbols": ["BTCUSDT", "ETHUSDT"]}}))
        .await;
    let unsub = client.wait_event(STEP, "unsubscribed", |_| true).await;
    assert_eq!(unsub["data"]["message"], "Unsubscribed from 2 symbols");
    let marker = client.seen.len();
    // The witness still holds them, so the gateway keeps receiving them.
    stack.publish("BTCUSDT", 2, 43001.5).await;
    witness_sees(&mut witness_ws, "BTCUSDT", 2).await;
    client.cmd(json!({"ack": "list", "data": null})).await;
    let ack = client
        .wait_event(STEP, "ack", |v| v["event"] == "list")
        .await;
    assert_eq!(ack["data"]["symbols"], json!([]));
    let after: Vec<&String> = client.seen[marker..]
        .iter()
        .filter(|l| l.contains("price_update"))
        .collect();
    assert!(after.is_empty(), "ticks after unsubscribe: {after:?}");
    if final_transport_ws {
        assert_eq!(
            ack["transport"], "websocket",
            "final transport after the upgrade"
        );
    }

    // Restart the gateway (same port): the client reconnects by itself.
    drop(witness_ws);
    if restart == Restart::Graceful {
        stack.gateway.terminate().unwrap();
        let bye = client.wait_event(STEP, "disconnect", |_| true).await;
        assert_ne!(bye["reason"], "io server disconnect", "{bye}");
        let status = stack
            .gateway
            .wait_exit(STEP)
            .await
            .expect("gateway did not exit");
        assert!(status.success(), "{status:?}");
    }
    stack.gateway.restart().await.unwrap();
    client
        .wait_event(RECONNECT, "connected", |v| {
            v["data"]["client_id"] != client_id
        })
        .await;
    client
        .cmd(json!({"emit": "subscribe", "data": {"symbols": ["BTCUSDT", "ETHUSDT"]}}))
        .await;
    client.wait_event(STEP, "subscribed", |_| true).await;
    stack.wait_numsub("BTCUSDT", 1).await;
    let again = stack.publish("BTCUSDT", 3, 43002.5).await;
    let got = client
        .wait_event(STEP, "price_update", |v| is_tick(v, "BTCUSDT", 3))
        .await;
    assert_eq!(got["data"], again);
    let leaked: Vec<Value> = client
        .events("price_update")
        .into_iter()
        .filter(|v| v["data"]["symbol"] == "SOLUSDT" || v["data"]["seq"] == 2)
        .collect();
    assert!(leaked.is_empty(), "unwanted ticks: {leaked:?}");
    client.exit().await;
}

#[tokio::test]
async fn node_client_default_options_polls_then_upgrades_to_websocket() {
    let stack = Stack::start(&[]).await;
    let mut cmd = node();
    cmd.arg("sio-client.js").arg(stack.gateway.http_url(""));
    let mut client = ClientProc::spawn("node sio-client.js (defaults)", cmd);
    let (_, client_id) = connected(&mut client).await;
    // Default options: the session starts on HTTP long-polling...
    let open = &client.events("open")[0];
    assert_eq!(open["transport"], "polling", "{open}");
    // ...and upgrades (2probe/3probe/5) to WebSocket.
    if client.events("upgrade").is_empty() {
        client.wait_event(STEP, "upgrade", |_| true).await;
    }
    assert_eq!(client.events("upgrade")[0]["to"], "websocket");
    scenario(stack, client, &client_id, true, Restart::Graceful).await;
}

#[tokio::test]
async fn node_client_websocket_only() {
    let stack = Stack::start(&[]).await;
    let mut cmd = node();
    cmd.arg("sio-client.js")
        .arg(stack.gateway.http_url(""))
        .arg("websocket");
    let mut client = ClientProc::spawn("node sio-client.js (websocket)", cmd);
    let (connect, client_id) = connected(&mut client).await;
    assert_eq!(client.events("open")[0]["transport"], "websocket");
    assert_eq!(connect["transport"], "websocket", "{connect}");
    scenario(stack, client, &client_id, true, Restart::Crash).await;
}

#[tokio::test]
async fn python_socketio_client_default_options() {
    let stack = Stack::start(&[]).await;
    let mut cmd = python();
    cmd.arg("sio_client.py").arg(stack.gateway.http_url(""));
    let mut client = ClientProc::spawn("python sio_client.py", cmd);
    let (_, client_id) = connected(&mut client).await;
    // python-socketio connects over HTTP long-polling, then upgrades to WebSocket.
    let metrics_url = stack.gateway.http_url("/metrics");
    tickstream_testkit::wait_until(STEP, "one polling → websocket upgrade", || {
        let url = metrics_url.clone();
        async move {
            let Ok((_, text)) = tickstream_testkit::http_get_text(&url).await else {
                return false;
            };
            text.lines()
                .any(|l| l == "tickstream_gateway_socketio_upgrades_total 1")
        }
    })
    .await
    .unwrap();
    scenario(stack, client, &client_id, true, Restart::Graceful).await;
}

/// The original service's client snippet with only host and port changed.
fn original_snippet(file: &str, stack: &Stack) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::sio::clients_dir().join(file)).unwrap();
    assert!(
        text.contains("http://localhost:5021"),
        "{file} is the original snippet's text"
    );
    let text = text.replace("http://localhost:5021", &stack.gateway.http_url(""));
    let dir = std::env::temp_dir().join(format!(
        "tickstream-snippet-{}-{}",
        std::process::id(),
        stack.gateway.addr().port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads output from the line starting with `marker` until all `needles` appeared (Node prints objects over several lines).
async fn wait_printed(client: &mut ClientProc, marker: &str, needles: &[&str]) -> String {
    let mut text = client
        .wait_line(STEP, marker, |l| l.starts_with(marker))
        .await;
    while !needles.iter().all(|n| text.contains(n)) {
        text.push('\n');
        text.push_str(&client.next_line(STEP).await);
    }
    text
}

/// Runs one of the original service's snippets and asserts on its printed output, then kills it (it never exits).
async fn run_original_snippet(stack: Stack, name: &str, cmd: tokio::process::Command) {
    let mut client = ClientProc::spawn(name, cmd);
    wait_printed(
        &mut client,
        "✅ Connected:",
        &["client_id", "Connected to WebSocket Streaming Service"],
    )
    .await;
    wait_printed(
        &mut client,
        "✅ Subscribed:",
        &["Subscribed to 2 symbols", "BTCUSDT", "ETHUSDT"],
    )
    .await;
    stack.wait_numsub("ETHUSDT", 1).await;
    stack.publish("ETHUSDT", 77, 3333.5).await;
    wait_printed(
        &mut client,
        "📊 Price Update:",
        &["ETHUSDT", "3333.5", "77", "timestamp"],
    )
    .await;
    client.kill().await;
}

#[tokio::test]
async fn the_original_node_snippet_runs_unchanged() {
    let stack = Stack::start(&[]).await;
    let path = original_snippet("original_test_websocket.js", &stack);
    let mut cmd = node();
    cmd.arg(&path);
    run_original_snippet(stack, "the original test-websocket.js", cmd).await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn the_original_python_snippet_runs_unchanged() {
    let stack = Stack::start(&[]).await;
    let path = original_snippet("original_client.py", &stack);
    let mut cmd = python();
    cmd.arg(&path);
    run_original_snippet(stack, "the original Python snippet", cmd).await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
