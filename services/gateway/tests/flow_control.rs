//! Flow control against the real gateway binary and a real redis-server:
//! slow consumers are conflated then disconnected (1008 `slow consumer`),
//! normal clients keep getting every symbol's newest tick, and `max_hz`
//! caps a subscription's rate while always ending on the newest tick.
//! Both protocols (native `/ws` and Socket.IO over WebSocket).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tickstream_testkit::{http_get_text, wait_until};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const SYMBOLS: [&str; 3] = ["FLOWA", "FLOWB", "FLOWC"];

/// A WebSocket client whose socket receive buffer is tiny, so the server feels its backpressure at once.
async fn small_buffer_ws(stack: &Stack, path: &str) -> Ws {
    small_buffer_ws_at(stack.gateway.addr(), &stack.gateway.ws_url(path)).await
}

/// A Socket.IO client over the websocket transport: open, CONNECT, `connected`, then `subscribe` with `data`.
async fn sio_subscribed(mut ws: Ws, data: Value) -> Ws {
    let open = next_text(&mut ws).await;
    assert!(open.starts_with('0'), "{open}");
    ws.send(Message::text("40")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40"));
    assert!(next_text(&mut ws).await.starts_with(r#"42["connected""#));
    let packet = format!("42{}", json!(["subscribe", data]));
    ws.send(Message::text(packet)).await.unwrap();
    let reply = next_text(&mut ws).await;
    assert!(reply.starts_with(r#"42["subscribed""#), "{reply}");
    ws
}

/// The tick of a `price_update` in either protocol's framing.
fn tick_of(text: &str) -> Option<Value> {
    if let Some(rest) = text.strip_prefix("42") {
        let v: Value = serde_json::from_str(rest).ok()?;
        return (v[0] == "price_update").then(|| v[1].clone());
    }
    let v: Value = serde_json::from_str(text).ok()?;
    (v["event"] == "price_update").then(|| v["data"].clone())
}

async fn metric(stack: &Stack, series: &str) -> f64 {
    let (_, text) = http_get_text(&stack.gateway.http_url("/metrics"))
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no series {series}"))
}

/// How long the publisher pauses between its pipelined batches of 50 ticks per symbol.
///
/// `FAST` lets the gateway's reader keep up instead of Redis buffering
/// everything. `STEADY` (at most 6k ticks/s over three symbols) is for tests
/// where a normal client, whose reader shares the test's one thread with the
/// publisher, must keep up on a loaded two-core machine while the stuck one
/// still fills its buffers within seconds.
const FAST: Duration = Duration::from_millis(2);
const STEADY: Duration = Duration::from_millis(25);

/// Publishes ticks round-robin over `symbols` in pipelined batches, pausing `pause` between them, until `stop`; returns the last seq.
fn spawn_publisher(
    stack: &Stack,
    symbols: &'static [&'static str],
    stop: Arc<AtomicBool>,
    pause: Duration,
) -> JoinHandle<u64> {
    let client = redis::Client::open(stack.redis.url()).unwrap();
    tokio::spawn(async move {
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut pipe = redis::pipe();
            for _ in 0..50 {
                seq += 1;
                for sym in symbols {
                    let tick = tick_json(sym, seq, 100.0 + seq as f64);
                    pipe.cmd("PUBLISH")
                        .arg(format!("ticks:{sym}"))
                        .arg(tick.to_string())
                        .ignore();
                }
            }
            let _: () = pipe.query_async(&mut c).await.unwrap();
            // Pacing only (see `FAST` and `STEADY`).
            tokio::time::sleep(pause).await;
        }
        seq
    })
}

/// Reads until the close frame, skipping everything else.
async fn close_of(ws: &mut Ws) -> (CloseCode, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("timed out waiting for close");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return (f.code, f.reason.to_string()),
            Some(Ok(Message::Close(None))) => return (CloseCode::Status, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error before the close frame: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// The last seq a reader saw, per symbol.
type LastSeqs = Arc<std::sync::Mutex<HashMap<String, u64>>>;

/// A reader task that records the last seq it saw per symbol and checks seqs only increase.
fn spawn_reader(
    mut ws: Ws,
    pace: Option<Duration>,
) -> (JoinHandle<(Ws, usize)>, LastSeqs, Arc<AtomicBool>) {
    let last = Arc::new(std::sync::Mutex::new(HashMap::<String, u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (l, s) = (last.clone(), stop.clone());
    let task = tokio::spawn(async move {
        let mut count = 0usize;
        while !s.load(Ordering::Relaxed) {
            let Ok(msg) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await else {
                continue;
            };
            let text = match msg.expect("connection ended").expect("websocket error") {
                Message::Text(t) => t.to_string(),
                _ => continue,
            };
            let Some(tick) = tick_of(&text) else { continue };
            count += 1;
            let sym = tick["symbol"].as_str().unwrap().to_owned();
            let seq = tick["seq"].as_u64().unwrap();
            let prev = l.lock().unwrap().insert(sym.clone(), seq).unwrap_or(0);
            assert!(seq > prev, "{sym}: seq {seq} after {prev}");
            if let Some(p) = pace {
                // A deliberately slow consumer.
                tokio::time::sleep(p).await;
            }
        }
        (ws, count)
    });
    (task, last, stop)
}

async fn wait_last_seq(last: &std::sync::Mutex<HashMap<String, u64>>, want: u64, what: &str) {
    wait_until(Duration::from_secs(20), what, || async {
        let map = last.lock().unwrap();
        SYMBOLS.iter().all(|s| map.get(*s) == Some(&want))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; got {:?}", last.lock().unwrap()));
}

#[tokio::test]
async fn a_never_reading_native_client_is_cut_as_slow_consumer_while_others_keep_up() {
    never_reading_client_is_cut("/ws").await;
}

#[tokio::test]
async fn a_never_reading_socketio_client_is_cut_as_slow_consumer_while_others_keep_up() {
    never_reading_client_is_cut("/socket.io/?EIO=4&transport=websocket").await;
}

/// One client on `path` that stops reading beside a normal one: the stuck one
/// is conflated, then cut with 1008 `slow consumer` (which it gets once it
/// reads again); the normal one keeps getting every symbol's newest tick.
///
/// One stuck client per test: a client that does not read for good loses its
/// socket some seconds after the cut, so its close frame is read right away.
async fn never_reading_client_is_cut(path: &str) {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__QUEUE_CAPACITY", "16"),
        // Slack for the normal client's reader on a loaded machine; the stuck one is cut 2 s after it falls behind.
        ("TICKSTREAM_GATEWAY__SLOW_CONSUMER_TIMEOUT_MS", "2000"),
    ])
    .await;
    let mut normal = stack.ws("/ws").await;
    expect_event(&mut normal, "connected").await;
    subscribe(&mut normal, &SYMBOLS).await;

    let stuck = small_buffer_ws(&stack, path).await;
    let (mut stuck, protocol) = if path.starts_with("/socket.io") {
        let ws = sio_subscribed(stuck, json!({"symbols": SYMBOLS})).await;
        (ws, "socketio")
    } else {
        let mut ws = stuck;
        expect_event(&mut ws, "connected").await;
        let sub = json!({"event": "subscribe", "data": {"symbols": SYMBOLS}});
        send(&mut ws, sub).await;
        expect_event(&mut ws, "subscribed").await;
        (ws, "native")
    };
    for s in SYMBOLS {
        stack.wait_numsub(s, 1).await;
    }

    let (reader, last, reader_stop) = spawn_reader(normal, None);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = spawn_publisher(&stack, &SYMBOLS, stop.clone(), STEADY);
    let slow = r#"tickstream_gateway_disconnects_total{reason="slow_consumer"} "#;
    // Generous: the kernel's socket buffers (several MB on loopback) must fill first.
    let waited = wait_until(
        Duration::from_secs(60),
        "the slow-consumer disconnect",
        || async { metric(&stack, slow).await >= 1.0 },
    )
    .await;
    if let Err(e) = waited {
        let (_, text) = http_get_text(&stack.gateway.http_url("/metrics"))
            .await
            .unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("disconnects_total{")
                    || l.contains("conflated")
                    || l.starts_with("tickstream_gateway_connections{")
            })
            .collect();
        panic!("{e}; metrics: {lines:?}");
    }
    // The stuck client reads again: everything queued, then the close frame.
    assert_eq!(
        close_of(&mut stuck).await,
        (CloseCode::Policy, "slow consumer".to_owned())
    );
    stop.store(true, Ordering::Relaxed);
    let last_seq = publisher.await.unwrap();

    // The normal client got every symbol's newest tick.
    wait_last_seq(&last, last_seq, "the normal client to see the last seq").await;
    reader_stop.store(true, Ordering::Relaxed);
    let (mut normal, count) = reader.await.unwrap();
    assert!(count > 0);
    assert_usable(&mut normal, "still-fine").await;

    assert_eq!(metric(&stack, slow).await, 1.0);
    let conflated = r#"tickstream_gateway_ticks_dropped_total{reason="conflated"} "#;
    assert!(
        metric(&stack, conflated).await > 0.0,
        "the slow client was conflated first"
    );
    let gauge = format!(r#"tickstream_gateway_connections{{protocol="{protocol}"}} "#);
    let remaining = if protocol == "native" { 1.0 } else { 0.0 };
    wait_until(STEP, "the slow client's connection released", || async {
        metric(&stack, &gauge).await == remaining
    })
    .await
    .unwrap();
}

/// One slow reader per protocol: conflated (fewer ticks than published), seqs increasing, newest last.
#[tokio::test]
async fn slow_readers_are_conflated_to_the_newest_tick_per_symbol() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__QUEUE_CAPACITY", "4"),
        ("TICKSTREAM_GATEWAY__SLOW_CONSUMER_TIMEOUT_MS", "60000"),
    ])
    .await;
    let mut native = small_buffer_ws(&stack, "/ws").await;
    expect_event(&mut native, "connected").await;
    subscribe(&mut native, &SYMBOLS).await;
    let sio = small_buffer_ws(&stack, "/socket.io/?EIO=4&transport=websocket").await;
    let sio = sio_subscribed(sio, json!({"symbols": SYMBOLS})).await;
    for s in SYMBOLS {
        stack.wait_numsub(s, 1).await;
    }
    let pace = Some(Duration::from_millis(3));
    let (native_task, native_last, native_stop) = spawn_reader(native, pace);
    let (sio_task, sio_last, sio_stop) = spawn_reader(sio, pace);

    let stop = Arc::new(AtomicBool::new(false));
    let publisher = spawn_publisher(&stack, &SYMBOLS, stop.clone(), FAST);
    let conflated = r#"tickstream_gateway_ticks_dropped_total{reason="conflated"} "#;
    wait_until(Duration::from_secs(20), "conflation", || async {
        metric(&stack, conflated).await > 50.0
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let last_seq = publisher.await.unwrap();
    let published = last_seq as usize * SYMBOLS.len();

    wait_last_seq(
        &native_last,
        last_seq,
        "native reader to end on the newest ticks",
    )
    .await;
    wait_last_seq(
        &sio_last,
        last_seq,
        "Socket.IO reader to end on the newest ticks",
    )
    .await;
    native_stop.store(true, Ordering::Relaxed);
    sio_stop.store(true, Ordering::Relaxed);
    let (mut native, native_count) = native_task.await.unwrap();
    let (_, sio_count) = sio_task.await.unwrap();
    assert!(
        native_count < published,
        "native: {native_count} of {published}"
    );
    assert!(
        sio_count < published,
        "socketio: {sio_count} of {published}"
    );
    assert_usable(&mut native, "after-conflation").await;
    let slow = r#"tickstream_gateway_disconnects_total{reason="slow_consumer"} "#;
    assert_eq!(
        metric(&stack, slow).await,
        0.0,
        "slow but within the timeout"
    );
}

/// `max_hz`: at most N updates per second per symbol, and the newest tick last; an uncapped client gets all.
#[tokio::test]
async fn max_hz_caps_the_rate_and_ends_on_the_newest_tick() {
    const SYM: &str = "HZTEST";
    const TICKS: u64 = 100;
    let stack = Stack::start(&[]).await;
    let mut full = stack.ws("/ws").await;
    expect_event(&mut full, "connected").await;
    subscribe(&mut full, &[SYM]).await;
    let mut capped = stack.ws("/ws").await;
    expect_event(&mut capped, "connected").await;
    send(
        &mut capped,
        json!({"event": "subscribe", "data": {"symbols": [SYM], "max_hz": 2}}),
    )
    .await;
    let reply = expect_event(&mut capped, "subscribed").await;
    assert_eq!(reply["data"]["max_hz"], 2.0);
    let sio = stack.ws("/socket.io/?EIO=4&transport=websocket").await;
    let sio = sio_subscribed(sio, json!({"symbols": [SYM], "max_hz": 2})).await;
    stack.wait_numsub(SYM, 1).await;

    let start = Instant::now();
    let publisher = {
        let client = redis::Client::open(stack.redis.url()).unwrap();
        tokio::spawn(async move {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            for seq in 1..=TICKS {
                let tick = tick_json(SYM, seq, seq as f64);
                let _: i64 = redis::cmd("PUBLISH")
                    .arg(format!("ticks:{SYM}"))
                    .arg(tick.to_string())
                    .query_async(&mut c)
                    .await
                    .unwrap();
                // Pacing: 100 ticks over ~1.5 s.
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let capped_reader = tokio::spawn(read_until_seq(capped, TICKS));
    let sio_reader = tokio::spawn(read_until_seq(sio, TICKS));
    let (_, all) = read_until_seq(full, TICKS).await;
    publisher.await.unwrap();
    assert_eq!(all.len() as u64, TICKS, "uncapped client gets every tick");
    for (name, reader) in [("native", capped_reader), ("socketio", sio_reader)] {
        let (at, seqs) = reader.await.unwrap();
        let secs = (at - start).as_secs_f64();
        let bound = (2.0 * secs + 2.0).floor() as usize;
        assert!(
            seqs.len() >= 2 && seqs.len() <= bound,
            "{name}: {} updates in {secs:.2} s (bound {bound}): {seqs:?}",
            seqs.len()
        );
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{name}: {seqs:?}");
        assert_eq!(seqs.last(), Some(&TICKS), "{name} ends on the newest tick");
    }
}

/// Reads `price_update`s until seq `last` arrives; returns when it did and every seq seen.
async fn read_until_seq(mut ws: Ws, last: u64) -> (Instant, Vec<u64>) {
    let mut seqs = Vec::new();
    loop {
        let text = next_text(&mut ws).await;
        if let Some(tick) = tick_of(&text) {
            let seq = tick["seq"].as_u64().unwrap();
            seqs.push(seq);
            if seq == last {
                return (Instant::now(), seqs);
            }
        }
    }
}

/// Socket.IO over long-polling: a client that stops polling while ticks flow is conflated, then its session is closed.
#[tokio::test]
async fn a_polling_client_that_stops_polling_is_closed_as_a_slow_consumer() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__QUEUE_CAPACITY", "16"),
        ("TICKSTREAM_GATEWAY__SLOW_CONSUMER_TIMEOUT_MS", "1000"),
    ])
    .await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let base = stack
        .gateway
        .http_url("/socket.io/?EIO=4&transport=polling");
    let open = http.get(&base).send().await.unwrap().text().await.unwrap();
    let sid = serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{base}&sid={sid}");
    let post = |body: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.post(&url).body(body).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    };
    post("40".to_owned()).await;
    let subscribe = format!("42{}", json!(["subscribe", {"symbols": SYMBOLS}]));
    post(subscribe).await;
    let mut seen = String::new();
    while !seen.contains(r#"42["subscribed""#) {
        seen.push_str(&http.get(&url).send().await.unwrap().text().await.unwrap());
    }
    for s in SYMBOLS {
        stack.wait_numsub(s, 1).await;
    }

    // Stop polling; ticks keep coming.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = spawn_publisher(&stack, &SYMBOLS, stop.clone(), FAST);
    let slow = r#"tickstream_gateway_disconnects_total{reason="slow_consumer"} "#;
    wait_until(
        Duration::from_secs(20),
        "the polling session cut as slow",
        || async { metric(&stack, slow).await >= 1.0 },
    )
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let conflated = r#"tickstream_gateway_ticks_dropped_total{reason="conflated"} "#;
    assert!(metric(&stack, conflated).await > 0.0);
    // The session is gone: its sid is unknown now.
    let (status, body) = {
        let r = http.get(&url).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (status, body),
        (400, json!({"code": 1, "message": "Session ID unknown"}))
    );
}

/// A native client with a small receive buffer, subscribed to every symbol,
/// and the ports of its socket (gateway side, client side) for [`socket_entry`].
async fn subscribed_small_buffer_ws(stack: &Stack) -> (Ws, u16, u16) {
    let mut ws = small_buffer_ws(stack, "/ws").await;
    let client_port = client_port(&ws);
    expect_event(&mut ws, "connected").await;
    subscribe(&mut ws, &SYMBOLS).await;
    for s in SYMBOLS {
        stack.wait_numsub(s, 1).await;
    }
    (ws, stack.gateway.addr().port(), client_port)
}

/// A client that stops reading for good cannot even take its close frame: the
/// gateway must still let go of the socket (a reset), not hold it open.
#[tokio::test]
async fn a_client_that_never_reads_again_loses_its_socket() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__QUEUE_CAPACITY", "16"),
        ("TICKSTREAM_GATEWAY__SLOW_CONSUMER_TIMEOUT_MS", "300"),
    ])
    .await;
    let (mut stuck, gateway_port, client_port) = subscribed_small_buffer_ws(&stack).await;
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = spawn_publisher(&stack, &SYMBOLS, stop.clone(), FAST);
    let slow = r#"tickstream_gateway_disconnects_total{reason="slow_consumer"} "#;
    wait_until(Duration::from_secs(60), "the slow-consumer cut", || async {
        metric(&stack, slow).await >= 1.0
    })
    .await
    .unwrap();
    // Keep the socket buffers full a while longer so nothing more fits, close frame included.
    let full_for = tokio::time::sleep(Duration::from_secs(1));
    full_for.await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    assert!(
        socket_entry(gateway_port, client_port).is_some(),
        "the test must start with the socket held"
    );
    // The client never reads: the gateway's side of the socket must go away by itself. Reset
    // either when the socket has taken no bytes for the stall limit (slow-consumer timeout +
    // close timeout + 1 s), or, if the kernel took our close frame, when our FIN goes unanswered.
    wait_until(
        Duration::from_secs(40),
        "the gateway to drop the dead slow consumer's socket",
        || async { socket_entry(gateway_port, client_port).is_none() },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", socket_entry(gateway_port, client_port)));
    // Whatever the client reads now, its stream ends.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stuck.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the client's stream did not end");
}

/// A client that closes while it has stopped reading (its receive buffer full,
/// our frames still queued in the kernel) must not leave the gateway's socket
/// behind: unanswered, the kernel would probe its closed window for minutes
/// with our frames and buffers held. The gateway resets such a connection
/// once its close has gone unanswered for a second.
#[tokio::test]
async fn a_client_that_closes_without_reading_leaves_no_socket_behind() {
    let stack = Stack::start(&[]).await;
    let (mut stuck, gateway_port, client_port) = subscribed_small_buffer_ws(&stack).await;
    // Ticks until the gateway's kernel holds frames the client has no room for.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = spawn_publisher(&stack, &SYMBOLS, stop.clone(), FAST);
    wait_until(STEP, "frames the client has no room for", || async {
        unacknowledged_bytes(gateway_port, client_port).is_some_and(|b| b > 64 * 1024)
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let slow = r#"tickstream_gateway_disconnects_total{reason="slow_consumer"} "#;
    assert_eq!(
        metric(&stack, slow).await,
        0.0,
        "the client must still be a live connection when it closes"
    );

    // The client says goodbye and never reads again.
    stuck.send(Message::Close(None)).await.unwrap();
    wait_until(
        Duration::from_secs(10),
        "the gateway to let go of the closed client's socket",
        || async { socket_entry(gateway_port, client_port).is_none() },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", socket_entry(gateway_port, client_port)));
}
