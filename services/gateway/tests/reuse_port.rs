//! `gateway.reuse_port`: several gateway processes on one port (SO_REUSEPORT),
//! the real binary against a private redis-server and real WebSocket clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tickstream_testkit::{free_port, RedisServer, Service};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Clients spread over the two processes: with the kernel hashing each connection's
/// addresses, the chance that all land on one process is 2 × 2⁻⁴⁰.
const CLIENTS: usize = 40;

/// The symbol every client subscribes to.
const SYMBOL: &str = "BTCUSDT";

/// What a client saw next: a tick (its `seq`) or the server's close frame.
#[derive(Debug, PartialEq)]
enum Next {
    Tick(u64),
    Closed(CloseCode, String),
}

/// The next tick or close frame, skipping pings, pongs and other events.
async fn next_tick_or_close(ws: &mut Ws) -> Next {
    loop {
        match next_frame(ws).await {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["event"] == "price_update" {
                    return Next::Tick(v["data"]["seq"].as_u64().unwrap());
                }
            }
            Message::Close(Some(f)) => return Next::Closed(f.code, f.reason.to_string()),
            Message::Close(None) => return Next::Closed(CloseCode::Status, String::new()),
            _ => {}
        }
    }
}

/// A gateway on `port` with the given `reuse_port` setting, bound to `redis`.
async fn gateway(redis: &RedisServer, port: u16, reuse_port: bool) -> anyhow::Result<Service> {
    gateway_with(redis, port, reuse_port, &[]).await
}

/// [`gateway`] with more settings.
async fn gateway_with(
    redis: &RedisServer,
    port: u16,
    reuse_port: bool,
    extra: &[(&str, &str)],
) -> anyhow::Result<Service> {
    let url = redis.url();
    let port = port.to_string();
    let reuse = reuse_port.to_string();
    let mut env = vec![
        ("REDIS_URL", url.as_str()),
        ("PORT", port.as_str()),
        ("TICKSTREAM_GATEWAY__REUSE_PORT", reuse.as_str()),
    ];
    env.extend_from_slice(extra);
    Service::spawn("gateway", &env).await
}

/// Connects a client subscribed to [`SYMBOL`] at `ws://127.0.0.1:PORT/ws?symbols=...`.
async fn client(port: u16) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/ws?symbols={SYMBOL}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    expect_event(&mut ws, "connected").await;
    expect_event(&mut ws, "subscribed").await;
    ws
}

#[tokio::test]
async fn two_gateways_share_one_port_and_one_can_stop_alone() {
    let redis = RedisServer::start().await.unwrap();
    let port = free_port();
    let mut a = gateway(&redis, port, true).await.unwrap();
    let b = gateway(&redis, port, true).await.unwrap();
    assert_eq!(a.addr().port(), port);
    assert_eq!(b.addr().port(), port);
    assert_ne!(a.pid(), b.pid());
    // The Stack helpers publish and count Redis subscribers; its `gateway` is B.
    let stack = Stack { redis, gateway: b };

    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(client(port).await);
    }
    // Each process subscribes in Redis for its own clients: two subscribers = both got clients.
    stack.wait_numsub(SYMBOL, 2).await;
    stack.publish(SYMBOL, 1, 43_000.0).await;
    for ws in &mut clients {
        assert_eq!(next_tick_or_close(ws).await, Next::Tick(1));
    }

    // SIGTERM one process: its clients get 1001, then it exits and leaves Redis.
    a.terminate().unwrap();
    let status = a
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("the terminated gateway did not exit");
    assert!(status.success(), "{status:?}");
    stack.wait_numsub(SYMBOL, 1).await;

    // Every client now holds either the close frame (it was on A) or the next tick (it is on B).
    stack.publish(SYMBOL, 2, 43_001.0).await;
    let (mut closed, mut survivors) = (0, Vec::new());
    for mut ws in clients {
        match next_tick_or_close(&mut ws).await {
            Next::Closed(code, reason) => {
                assert_eq!(code, CloseCode::Away, "{reason}");
                assert!(reason.contains("shutting down"), "{reason}");
                closed += 1;
            }
            Next::Tick(seq) => {
                assert_eq!(seq, 2);
                survivors.push(ws);
            }
        }
    }
    assert!(
        closed > 0 && !survivors.is_empty(),
        "the kernel put {closed} of {CLIENTS} clients on the stopped process"
    );

    // New connections on the port still succeed (now all on B) and get live ticks with the old ones.
    for _ in 0..10 {
        survivors.push(client(port).await);
    }
    stack.publish(SYMBOL, 3, 43_002.0).await;
    for ws in &mut survivors {
        assert_eq!(next_tick_or_close(ws).await, Next::Tick(3));
    }
    assert_usable(&mut survivors[0], "after-restart").await;
}

/// A replica that is draining has stopped listening: every client that
/// connects meanwhile reaches the other replica instead of being accepted and
/// closed with 1001. The drain is held open by a client that never reads (its
/// connection task waits on a blocked write, up to the slow-consumer timeout).
#[tokio::test]
async fn a_draining_replica_takes_no_new_connections() {
    let redis = RedisServer::start().await.unwrap();
    let port = free_port();
    let hold = [
        ("TICKSTREAM_GATEWAY__SLOW_CONSUMER_TIMEOUT_MS", "30000"),
        ("TICKSTREAM_GATEWAY__SHUTDOWN_GRACE_SECS", "30"),
        ("TICKSTREAM_GATEWAY__QUEUE_CAPACITY", "16"),
    ];
    let mut a = gateway_with(&redis, port, true, &hold).await.unwrap();
    // Alone on the port, A gets the stuck client.
    let url = format!("ws://127.0.0.1:{port}/ws?symbols={SYMBOL}");
    let mut stuck = small_buffer_ws_at(a.addr(), &url).await;
    expect_event(&mut stuck, "connected").await;
    expect_event(&mut stuck, "subscribed").await;
    let stuck_port = client_port(&stuck);
    let b = gateway(&redis, port, true).await.unwrap();
    let stack = Stack { redis, gateway: b };
    stack.wait_numsub(SYMBOL, 1).await;

    // Ticks until A's socket to the stuck client takes no more (the same bytes
    // queued over two pauses, ticks published in between): its write is blocked.
    let mut c = stack.redis().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut seq, mut last, mut unchanged) = (0, None, 0);
    loop {
        let mut pipe = redis::pipe();
        for _ in 0..2000 {
            seq += 1;
            let tick = tick_json(SYMBOL, seq, 43_000.0);
            pipe.cmd("PUBLISH")
                .arg(format!("ticks:{SYMBOL}"))
                .arg(tick.to_string())
                .ignore();
        }
        let _: () = pipe.query_async(&mut c).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let queued = unacknowledged_bytes(port, stuck_port);
        unchanged = if queued == last { unchanged + 1 } else { 0 };
        if queued.is_some_and(|b| b > 512 * 1024) && unchanged >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A's write to the stuck client never blocked: {queued:?} bytes queued"
        );
        last = queued;
    }

    a.terminate().unwrap();
    a.wait_for_log(STEP, "Shutting down: closing client connections.")
        .await
        .unwrap();
    // A drains (held by the stuck client) while new clients arrive: all of them land on B.
    let mut fresh = Vec::new();
    for i in 0..20 {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
            .await
            .unwrap();
        expect_event(&mut ws, "connected").await;
        assert_usable(&mut ws, &format!("during-drain-{i}")).await;
        fresh.push(ws);
    }
    assert!(
        a.wait_exit(Duration::ZERO).await.is_none(),
        "A finished draining before the new clients were checked"
    );
    // Proof they are on B: with A gone for good they still answer.
    a.kill().unwrap();
    for (i, ws) in fresh.iter_mut().enumerate() {
        assert_usable(ws, &format!("after-{i}")).await;
    }
}

#[tokio::test]
async fn without_reuse_port_a_second_gateway_on_the_port_fails_clearly() {
    let redis = RedisServer::start().await.unwrap();
    // (first process, second process) reuse_port: SO_REUSEPORT only shares when both set it.
    for (first, second) in [(false, false), (true, false), (false, true)] {
        let port = free_port();
        let holder = gateway(&redis, port, first).await.unwrap();
        // `{:#}`: the whole chain, so a failure to even spawn the binary shows as such.
        let err = format!(
            "{:#}",
            gateway(&redis, port, second)
                .await
                .expect_err("a second gateway started on a taken port")
        );
        assert!(err.contains("Address already in use"), "{err}");
        assert!(
            err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
            "{err}"
        );
        assert!(err.contains("reuse_port"), "{err}");
        // The first one is unharmed.
        let (status, health) = tickstream_testkit::http_get_json(&holder.http_url("/health"))
            .await
            .unwrap();
        assert!(status == 200 || status == 503, "{status} {health}");
        assert_eq!(health["port"], port, "{health}");
    }
}
