//! The Socket.IO trading-dashboard client's own code (Python python-socketio and
//! JS socket.io-client, as that client's documentation writes them; see
//! `tests/clients/dashboard_client.*`) against the real ingest-sim, analytics
//! and gateway binaries with JWT auth on and the dashboard profile.
//!
//! The snippets are run with only their host/port changed and their login step
//! replaced by a token minted here; they print what they receive and the test
//! reads their output. The clients must be installed by
//! `scripts/ensure-sio-clients.sh` (make test runs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::sio::{clients_dir, node, python, ClientProc};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use tickstream_testkit::{bin_path, RedisServer, Service};

/// The gateway's HS256 secret in these tests.
const SECRET: &str = "dashboard-test-secret-0123456789";
/// How long the stack may take to produce what a step waits for (analytics needs the sim's heartbeat first).
const WAIT: Duration = Duration::from_secs(30);
/// Reconnecting after a restart: the client's backoff (1 s, up to 5 s) plus the binary's start.
const RECONNECT: Duration = Duration::from_secs(30);
/// The snippets' own server address, replaced by the gateway's.
const ORIGINAL_URL: &str = "http://localhost:5000";

/// Redis, the simulator, analytics and a gateway with auth on.
struct Stack {
    _redis: RedisServer,
    _sim: Service,
    _analytics: Service,
    gateway: Service,
}

impl Stack {
    /// `profile_by_config`: the gateway's default Socket.IO profile is the dashboard one (else clients ask with `?profile=`).
    async fn start(profile_by_config: bool) -> Stack {
        let redis = RedisServer::start().await.unwrap();
        let url = redis.url();
        let sim = Service::spawn_path(
            &bin_path("ingest-sim"),
            &[
                ("REDIS_URL", &url),
                ("SYMBOLS", "BTCUSDT,ETHUSDT,ADAUSDT"),
                ("TICKSTREAM_SIM__RATE", "30"),
                ("TICKSTREAM_SIM__HEARTBEAT_SECS", "1"),
            ],
        )
        .await
        .expect("ingest-sim (cargo build --bins)");
        let analytics = Service::spawn_path(
            &bin_path("analytics"),
            &[
                ("REDIS_URL", &url),
                ("TICKSTREAM_ANALYTICS__UPDATE_MS", "50"),
                ("TICKSTREAM_ANALYTICS__SIGNAL_REFRESH_MS", "300"),
                ("TICKSTREAM_ANALYTICS__SENTIMENT_MS", "300"),
                ("TICKSTREAM_ANALYTICS__UNIVERSE_REFRESH_MS", "200"),
            ],
        )
        .await
        .expect("analytics (cargo build --bins)");
        let mut env = vec![
            ("REDIS_URL", url.as_str()),
            ("TICKSTREAM_GATEWAY__AUTH__ALGORITHM", "HS256"),
            ("TICKSTREAM_GATEWAY__AUTH__HS256_SECRET", SECRET),
            (
                "TICKSTREAM_GATEWAY__COMPAT__DASHBOARD_MARKET_INTERVAL_MS",
                "1000",
            ),
        ];
        if profile_by_config {
            env.push(("TICKSTREAM_GATEWAY__COMPAT__SOCKETIO_PROFILE", "dashboard"));
        }
        let gateway = Service::spawn("gateway", &env).await.unwrap();
        Stack {
            _redis: redis,
            _sim: sim,
            _analytics: analytics,
            gateway,
        }
    }
}

fn token(claims: serde_json::Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token of user `user-42`, valid for 10 minutes.
fn good_token() -> String {
    token(json!({"sub": "user-42", "exp": now() + 600}), SECRET)
}

/// A token that expired 10 minutes ago.
fn expired_token() -> String {
    token(json!({"sub": "user-42", "exp": now() - 600}), SECRET)
}

/// A token signed with another key.
fn forged_token() -> String {
    token(
        json!({"sub": "user-42", "exp": now() + 600}),
        "not-the-gateway-secret-0123456789",
    )
}

/// Writes the snippet with the gateway's address (plus `query`) in place of the original one.
///
/// It goes under `node_modules/` so that an ES module's `import 'socket.io-client'` resolves.
fn materialize(file: &str, gateway: &Service, query: &str, tag: &str) -> PathBuf {
    let text = std::fs::read_to_string(clients_dir().join(file)).unwrap();
    assert!(
        text.contains(ORIGINAL_URL),
        "{file} is the client's own text"
    );
    let url = format!("{}{query}", gateway.http_url(""));
    let text = text.replace(ORIGINAL_URL, &url);
    let dir = clients_dir().join("node_modules").join(format!(
        ".dashboard-{}-{}-{tag}",
        std::process::id(),
        gateway.addr().port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// The JS snippet under node, stderr merged into stdout (it reports auth errors with `console.error`).
fn js_client(gateway: &Service, token: &str, tag: &str) -> (ClientProc, PathBuf) {
    let path = materialize("dashboard_client.mjs", gateway, "/?profile=dashboard", tag);
    let mut cmd = node();
    let node_bin = cmd.as_std().get_program().to_owned();
    let mut sh = tokio::process::Command::new("sh");
    sh.arg("-c")
        .arg("exec \"$0\" \"$1\" 2>&1")
        .arg(node_bin)
        .arg(&path)
        .env("DASHBOARD_TOKEN", token);
    cmd = sh;
    (ClientProc::spawn("dashboard_client.mjs", cmd), path)
}

/// The Python snippet (the gateway's default profile is the dashboard one).
fn py_client(gateway: &Service, token: &str, tag: &str) -> (ClientProc, PathBuf) {
    let path = materialize("dashboard_client.py", gateway, "", tag);
    let mut cmd = python();
    cmd.arg(&path).env("DASHBOARD_TOKEN", token);
    (ClientProc::spawn("dashboard_client.py", cmd), path)
}

/// Reads output until `done` holds over every line read so far.
async fn read_until(
    client: &mut ClientProc,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done(&client.seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for {what}: {:#?}",
            client.seen
        );
        client.wait_line(left, what, |_| true).await;
    }
}

/// The prices of `symbol` printed by the JS snippet (`BTC: $95000.1 (0.12%)`), from line `from` on.
fn js_prices(lines: &[String], symbol: &str, from: usize) -> Vec<String> {
    let prefix = format!("{symbol}: $");
    lines[from.min(lines.len())..]
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| rest.split(' ').next())
        .filter(|p| p.parse::<f64>().is_ok())
        .map(str::to_owned)
        .collect()
}

/// The JS snippet printed at least two market updates with BTC, ETH and ADA, and BTC's price moved.
fn js_markets_advance(lines: &[String], from: usize) -> bool {
    let btc = js_prices(lines, "BTC", from);
    ["ETH", "ADA"]
        .iter()
        .all(|s| js_prices(lines, s, from).len() >= 2)
        && btc.len() >= 2
        && btc.iter().any(|p| *p != btc[0])
}

fn count(lines: &[String], pred: impl Fn(&str) -> bool) -> usize {
    lines.iter().filter(|l| pred(l)).count()
}

fn is_signal_line(l: &str) -> bool {
    ["STRONG_BUY ", "BUY ", "HOLD ", "SELL ", "STRONG_SELL "]
        .iter()
        .any(|w| l.starts_with(w))
        && ["BTC", "ETH", "ADA"]
            .iter()
            .any(|s| l.contains(&format!(" {s} - Strength: ")))
}

#[tokio::test]
async fn js_dashboard_client_receives_its_events_and_reconnects_after_a_restart() {
    let mut stack = Stack::start(false).await;
    let (mut client, path) = js_client(&stack.gateway, &good_token(), "ok");
    read_until(&mut client, WAIT, "every event kind", |l| {
        py_printed(l, "Connected: ").any(|x| x.starts_with("Connected to real-time data stream"))
            && py_printed(l, "User ID: ").any(|x| x.starts_with("user-42"))
            && l.iter().any(|x| x == "Subscribed to: BTC, ETH, ADA")
            && js_markets_advance(l, 0)
            && l.iter().any(|x| {
                ["BULLISH", "BEARISH", "NEUTRAL"]
                    .iter()
                    .any(|m| *x == format!("Market Mood: {m}"))
            })
            && l.iter().any(|x| x.starts_with("Fear & Greed: "))
            && count(l, is_signal_line) > 0
    })
    .await;

    // Restart: socket.io-client's own backoff reconnects with the same token and data flows again.
    stack.gateway.restart().await.unwrap();
    let mark = client.seen.len();
    read_until(
        &mut client,
        RECONNECT,
        "reconnect and market updates",
        |l| {
            let after = &l[mark.min(l.len())..];
            after
                .iter()
                .any(|x| x == "Connected: Connected to real-time data stream")
                && js_markets_advance(l, mark)
        },
    )
    .await;
    client.kill().await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn js_dashboard_client_reads_auth_error_before_the_disconnect() {
    let stack = Stack::start(false).await;
    for (tag, token, error) in [
        ("expired", expired_token(), "Token expired"),
        ("forged", forged_token(), "Invalid token"),
    ] {
        let (mut client, path) = js_client(&stack.gateway, &token, tag);
        let failed = format!("Authentication failed: {error}");
        read_until(&mut client, WAIT, "auth_error then disconnect", |l| {
            let at = l.iter().position(|x| *x == failed);
            let gone = l
                .iter()
                .position(|x| x == "Disconnected: io server disconnect");
            matches!((at, gone), (Some(a), Some(g)) if a < g)
        })
        .await;
        assert_eq!(
            count(&client.seen, |l| l.starts_with("Connected: ")
                || l.starts_with("BTC: $")),
            0,
            "{tag}: nothing for a refused token: {:#?}",
            client.seen
        );
        client.kill().await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}

/// The field `key` of the entry `symbol` in a Python dict repr of `market_update` (`'BTC': {..., 'price': 1.5, ...}`).
fn py_entry_field(line: &str, symbol: &str, key: &str) -> Option<String> {
    let entry = line
        .split(&format!("'{symbol}': {{"))
        .nth(1)?
        .split('}')
        .next()?;
    if !entry.contains(&format!("'symbol': '{symbol}'")) {
        return None;
    }
    let value = entry
        .split(&format!("'{key}': "))
        .nth(1)?
        .split(',')
        .next()?;
    Some(value.trim().to_owned())
}

/// What follows each `prefix` the Python snippet printed (its handlers run on
/// several threads, so two prints can share a line).
fn py_printed<'a>(lines: &'a [String], prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    lines.iter().flat_map(move |l| l.split(prefix).skip(1))
}

/// BTC's price in each of the Python snippet's `Market Update: {...}` prints that hold BTC, ETH and ADA.
fn py_btc_prices(lines: &[String]) -> Vec<String> {
    py_printed(lines, "Market Update: ")
        .filter(|l| {
            ["ETH", "ADA"]
                .iter()
                .all(|s| py_entry_field(l, s, "price").is_some())
        })
        .filter_map(|l| py_entry_field(l, "BTC", "price"))
        .collect()
}

#[tokio::test]
async fn python_dashboard_client_receives_its_events() {
    let stack = Stack::start(true).await;
    let (mut client, path) = py_client(&stack.gateway, &good_token(), "ok");
    read_until(&mut client, WAIT, "every event kind", |l| {
        let btc = py_btc_prices(l);
        py_printed(l, "Connected: ").any(|x| x.starts_with("Connected to real-time data stream"))
            && py_printed(l, "User ID: ").any(|x| x.starts_with("user-42"))
            && py_printed(l, "Subscription confirmed: ").any(|x| {
                x.contains("'symbols': ['BTC', 'ETH', 'ADA']") && x.contains("'pending': []")
            })
            && btc.len() >= 2
            && btc.iter().any(|p| *p != btc[0])
            && py_printed(l, "Sentiment Update: ").any(|x| {
                x.contains("'overall_sentiment': '")
                    && x.contains("'market_fear_greed': ")
                    && x.contains("'market_mood': '")
            })
            && py_printed(l, "Trading Signal: ").any(|x| {
                x.contains("'signal': '")
                    && ["BTC", "ETH", "ADA"]
                        .iter()
                        .any(|s| x.contains(&format!("'symbol': '{s}'")))
            })
    })
    .await;
    client.kill().await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn python_dashboard_client_reads_auth_error_before_the_disconnect() {
    let stack = Stack::start(true).await;
    for (tag, token, error) in [
        ("expired", expired_token(), "Token expired"),
        ("forged", forged_token(), "Invalid token"),
    ] {
        let (mut client, path) = py_client(&stack.gateway, &token, tag);
        let failed = format!("Authentication error: {error}");
        // The snippet's auth_error handler disconnects; then `sio.wait()` returns and the script ends.
        let mut ended = false;
        while !ended && !client.seen.iter().any(|l| l.contains("Disconnected")) {
            ended = client.line_or_exit(WAIT).await.is_none();
        }
        let at = client.seen.iter().position(|x| x.contains(&failed));
        assert!(at.is_some(), "{tag}: no auth_error: {:#?}", client.seen);
        assert_eq!(
            count(&client.seen, |l| l.starts_with("Connected: ")
                || l.starts_with("Market Update: ")),
            0,
            "{tag}: nothing for a refused token: {:#?}",
            client.seen
        );
        client.kill().await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
