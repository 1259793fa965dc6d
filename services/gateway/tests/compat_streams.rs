//! The Vue client's plain-WebSocket streams (driven by `tests/clients/vue_streams_client.mjs`,
//! that client's service on Node's `ws`, and by a raw WebSocket), and the alias
//! table through REST, against the real ingest-sim, analytics and gateway binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::sio::{node, ClientProc};
use common::{next_json, send};
use serde_json::{json, Value};
use tickstream_testkit::{bin_path, RedisServer, Service};
use tokio_tungstenite::tungstenite::Message;

/// How long the stack may take to produce what a step waits for (analytics needs the sim's heartbeat first).
const WAIT: Duration = Duration::from_secs(30);

struct Stack {
    _redis: RedisServer,
    _sim: Service,
    _analytics: Service,
    gateway: Service,
}

async fn start(gateway_env: &[(&str, &str)]) -> Stack {
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
        (
            "TICKSTREAM_GATEWAY__COMPAT__STREAM_SYMBOLS",
            "BTC,ETH,ADA,NOPE",
        ),
    ];
    env.extend_from_slice(gateway_env);
    let gateway = Service::spawn("gateway", &env).await.unwrap();
    Stack {
        _redis: redis,
        _sim: sim,
        _analytics: analytics,
        gateway,
    }
}

/// The JSON lines of `stream` the client printed so far.
fn of(client: &ClientProc, stream: &str) -> Vec<Value> {
    client
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["stream"] == stream)
        .collect()
}

/// The market updates of `symbol` printed so far.
fn market_prices(client: &ClientProc, symbol: &str) -> Vec<f64> {
    of(client, "market")
        .iter()
        .filter(|v| v["message"]["type"] == "market_update" && v["message"]["symbol"] == symbol)
        .filter_map(|v| v["message"]["data"]["price"].as_f64())
        .collect()
}

#[tokio::test]
async fn vue_client_streams_deliver_their_message_types_and_answer_ping() {
    let stack = start(&[(
        "TICKSTREAM_GATEWAY__COMPAT__MARKET_STREAM_INTERVAL_MS",
        "500",
    )])
    .await;
    let mut cmd = node();
    cmd.arg("vue_streams_client.mjs")
        .arg(stack.gateway.ws_url(""));
    let mut client = ClientProc::spawn("vue_streams_client.mjs", cmd);
    let deadline = tokio::time::Instant::now() + WAIT;
    let done = |c: &ClientProc| {
        let pongs = ["market", "signals", "binary"].iter().all(|s| {
            of(c, s)
                .iter()
                .any(|v| v["pong"] == true && v["message"]["type"] == "pong")
        });
        let btc = market_prices(c, "BTC");
        let markets = ["ETH", "ADA"]
            .iter()
            .all(|s| !market_prices(c, s).is_empty())
            && btc.len() >= 2
            && btc.iter().any(|p| *p != btc[0]);
        let signal = of(c, "signals").iter().any(|v| {
            let m = &v["message"];
            m["type"] == "signal_update"
                && ["BTC", "ETH", "ADA"].iter().any(|s| m["symbol"] == *s)
                && m["data"]["symbol"] == m["symbol"]
                && m["data"]["signal"].is_string()
        });
        let binary = of(c, "binary").iter().any(|v| {
            let m = &v["message"];
            m["type"] == "binary_update"
                && (m["data"]["sentiment"] == "BULLISH" || m["data"]["sentiment"] == "BEARISH")
        });
        pongs && markets && signal && binary
    };
    while !done(&client) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "timed out: {:#?}", client.seen);
        client.wait_line(left, "stream messages", |_| true).await;
    }
    // Payloads carry the configured names, never the feed's.
    let leaked: Vec<Value> = of(&client, "market")
        .into_iter()
        .filter(|v| {
            let s = v["message"]["symbol"].as_str().unwrap_or("");
            s.ends_with("USDT") || v["message"]["data"]["symbol"] != v["message"]["symbol"]
        })
        .collect();
    assert!(leaked.is_empty(), "feed names leaked: {leaked:?}");
    client.kill().await;

    // A JSON `{"type":"ping"}` is answered too.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(stack.gateway.ws_url("/ws/trading/binary/stream"))
            .await
            .unwrap();
    send(&mut ws, json!({"type": "ping"})).await;
    loop {
        let v = next_json(&mut ws).await;
        if v["type"] == "pong" {
            assert!(v["timestamp"].is_string(), "{v}");
            break;
        }
    }
    let _ = futures_util::SinkExt::send(&mut ws, Message::Close(None)).await;
}

#[tokio::test]
async fn market_stream_sends_every_tick_when_its_period_is_zero() {
    let stack = start(&[("TICKSTREAM_GATEWAY__COMPAT__MARKET_STREAM_INTERVAL_MS", "0")]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(stack.gateway.ws_url("/ws/market/stream"))
        .await
        .unwrap();
    // The sim sends 10 ticks/s per symbol: a 5 s period would give one per symbol; every tick gives many more.
    let mut btc_seqs = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while btc_seqs.len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "only {btc_seqs:?}");
        let v = next_json(&mut ws).await;
        assert_eq!(v["type"], "market_update", "{v}");
        if v["symbol"] == "BTC" {
            btc_seqs.push(v["data"]["seq"].as_u64().unwrap());
        }
    }
    assert!(btc_seqs.windows(2).all(|w| w[0] < w[1]), "{btc_seqs:?}");
}

#[tokio::test]
async fn rest_answers_through_the_alias_table() {
    let stack = start(&[]).await;
    let get = |path: &str| {
        let url = stack.gateway.http_url(path);
        async move {
            let (status, body) = tickstream_testkit::http_get_text(&url).await.unwrap();
            (status, serde_json::from_str::<Value>(&body).unwrap())
        }
    };
    // Until the simulator's first tick of each symbol is cached.
    let url = stack
        .gateway
        .http_url("/prices?symbols=BTCUSDT,ETHUSDT,ADAUSDT");
    tickstream_testkit::wait_until(WAIT, "a cached tick of each symbol", || {
        let url = url.clone();
        async move {
            tickstream_testkit::http_get_text(&url)
                .await
                .is_ok_and(|(_, body)| {
                    serde_json::from_str::<Value>(&body)
                        .is_ok_and(|v| v["missing"].as_array().is_some_and(Vec::is_empty))
                })
        }
    })
    .await
    .unwrap();
    let (status, btc) = get("/price/BTC").await;
    assert_eq!(status, 200, "{btc}");
    assert_eq!(btc["data"]["symbol"], "BTC", "{btc}");
    assert_eq!(btc["data"]["feed_symbol"], "BTCUSDT", "{btc}");
    let (status, slash) = get("/price/BTC%2FUSD").await;
    assert_eq!(
        (status, &slash["data"]["feed_symbol"]),
        (200, &json!("BTCUSDT")),
        "{slash}"
    );
    let (status, direct) = get("/price/BTCUSDT").await;
    assert_eq!(status, 200);
    assert_eq!(direct["data"]["symbol"], "BTCUSDT");
    assert!(direct["data"].get("feed_symbol").is_none(), "{direct}");
    let (status, many) = get("/prices?symbols=BTC,ETH,ADA").await;
    assert_eq!(status, 200, "{many}");
    for s in ["BTC", "ETH", "ADA"] {
        assert_eq!(many["data"][s]["symbol"], s, "{many}");
    }
}

#[tokio::test]
async fn dashboard_profile_per_connection_with_aliases_and_pending() {
    let stack = start(&[]).await;
    // `?profile=dashboard` on one connection; the gateway's default profile stays the native vocabulary.
    let url = format!("{}/?profile=dashboard", stack.gateway.http_url(""));
    let mut cmd = node();
    cmd.arg("sio-client.js").arg(&url).arg("websocket");
    let mut dash = ClientProc::spawn("sio-client.js ?profile=dashboard", cmd);
    let status = dash.wait_event(WAIT, "connection_status", |_| true).await;
    assert_eq!(status["data"]["status"], "connected", "{status}");
    assert!(
        status["data"].get("user_id").is_none(),
        "no auth, no user: {status}"
    );
    dash.cmd(json!({"ack": "subscribe", "data": {"symbols": ["btc/usd", "NOPE"]}}))
        .await;
    let ack = dash
        .wait_event(WAIT, "ack", |v| v["event"] == "subscribe")
        .await;
    assert_eq!(ack["data"]["symbols"], json!(["btc/usd", "NOPE"]), "{ack}");
    assert_eq!(ack["data"]["pending"], json!(["NOPE"]), "{ack}");
    let confirmed = dash.events("subscription_confirmed");
    assert_eq!(confirmed.len(), 1, "the reply event comes with the ack");
    // The alias and the default name both appear, each under its own name, with the same feed's price.
    let update = dash
        .wait_event(WAIT, "market_update", |v| {
            v["data"]["btc/usd"]["price"].is_number() && v["data"]["BTC"]["price"].is_number()
        })
        .await;
    let map = &update["data"];
    assert_eq!(map["btc/usd"]["symbol"], "btc/usd", "{map}");
    assert_eq!(map["btc/usd"]["price"], map["BTC"]["price"], "{map}");
    assert!(
        map.get("NOPE").is_none() && map.get("BTCUSDT").is_none(),
        "{map}"
    );
    assert!(
        dash.events("price_update").is_empty(),
        "ticks are conflated into market_update"
    );

    let mut cmd = node();
    cmd.arg("sio-client.js")
        .arg(stack.gateway.http_url(""))
        .arg("websocket");
    let mut plain = ClientProc::spawn("sio-client.js (default profile)", cmd);
    plain.wait_event(WAIT, "connected", |_| true).await;
    assert!(plain.events("connection_status").is_empty());
    plain.exit().await;
    dash.exit().await;
}
