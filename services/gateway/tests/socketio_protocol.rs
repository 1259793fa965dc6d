//! Engine.IO v4 / Socket.IO v5 at the wire level: raw HTTP (reqwest) and
//! WebSocket (tokio-tungstenite) against the real gateway binary, for the
//! handshake, every bad-input case, the upgrade, pings and reaping, shutdown,
//! and parity with the native protocol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tickstream_testkit::{http_get_json, http_get_text, wait_until};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Raw Engine.IO over HTTP.
struct Eio {
    base: String,
    http: reqwest::Client,
}

impl Eio {
    fn new(stack: &Stack) -> Eio {
        Eio {
            base: stack.gateway.http_url("/socket.io/"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
        }
    }

    async fn get(&self, query: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}?{query}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn post(&self, query: &str, body: impl Into<String>) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}?{query}", self.base))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body.into())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Polling handshake: the sid and the open packet's JSON.
    async fn handshake(&self) -> (String, Value) {
        let (status, body) = self.get("EIO=4&transport=polling").await;
        assert_eq!(status, 200, "{body}");
        let open: Value =
            serde_json::from_str(body.strip_prefix('0').expect("open packet")).unwrap();
        (open["sid"].as_str().unwrap().to_owned(), open)
    }

    async fn poll(&self, sid: &str) -> Vec<String> {
        let (status, body) = self
            .get(&format!("EIO=4&transport=polling&sid={sid}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body.split('\x1e').map(str::to_owned).collect()
    }

    async fn send(&self, sid: &str, body: &str) {
        let (status, text) = self
            .post(&format!("EIO=4&transport=polling&sid={sid}"), body)
            .await;
        assert_eq!((status, text.as_str()), (200, "ok"), "POST {body:?}");
    }

    /// Polls until the packets received satisfy `done`; returns them all.
    async fn poll_until(&self, sid: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let mut all = Vec::new();
        tokio::time::timeout(STEP, async {
            while !done(&all) {
                all.extend(self.poll(sid).await);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("polling timed out; got {all:?}"));
        all
    }

    /// POST `40` and read `40{"sid"}` + `connected`; returns the client id.
    async fn join(&self, sid: &str) -> String {
        self.send(sid, "40").await;
        let packets = self
            .poll_until(sid, |p| p.iter().any(|x| x.starts_with("42[\"connected\"")))
            .await;
        let connect: Value = serde_json::from_str(&packets[0][2..]).unwrap();
        let hello = event_of(&packets[1]);
        assert_eq!(hello.0, "connected");
        assert_eq!(hello.1["client_id"], connect["sid"]);
        connect["sid"].as_str().unwrap().to_owned()
    }
}

/// Splits `42["name",data]` into (name, data).
fn event_of(packet: &str) -> (String, Value) {
    let v: Value = serde_json::from_str(
        packet
            .strip_prefix("42")
            .unwrap_or_else(|| panic!("not an event: {packet}")),
    )
    .unwrap();
    (v[0].as_str().unwrap().to_owned(), v[1].clone())
}

fn find_event(packets: &[String], name: &str) -> Option<Value> {
    packets
        .iter()
        .filter(|p| p.starts_with("42["))
        .map(|p| event_of(p))
        .find(|(n, _)| n == name)
        .map(|(_, d)| d)
}

fn assert_eio_error(status: u16, body: &str, code: u8, message: &str) {
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v, json!({"code": code, "message": message}));
}

/// Raw Socket.IO over a WebSocket (`transport=websocket`).
async fn sio_ws(stack: &Stack, query: &str) -> (Ws, Value) {
    let url = stack
        .gateway
        .ws_url(&format!("/socket.io/?EIO=4&transport=websocket{query}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = next_text(&mut ws).await;
    let open: Value = serde_json::from_str(open.strip_prefix('0').expect("open packet")).unwrap();
    (ws, open)
}

async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

/// `40` → `40{"sid"}` → `connected`; returns the client id.
async fn ws_join(ws: &mut Ws) -> String {
    send_text(ws, "40").await;
    let ok = next_text(ws).await;
    let sid: Value = serde_json::from_str(ok.strip_prefix("40").expect("CONNECT ok")).unwrap();
    let (name, data) = event_of(&next_text(ws).await);
    assert_eq!(name, "connected");
    assert_eq!(data["client_id"], sid["sid"]);
    assert_eq!(data["message"], "Connected to WebSocket Streaming Service");
    data["client_id"].as_str().unwrap().to_owned()
}

async fn ws_next_event(ws: &mut Ws) -> (String, Value) {
    event_of(&next_text(ws).await)
}

/// A WebSocket opened with the sid of a session already on WebSocket is closed at once.
async fn second_websocket_is_closed(stack: &Stack, sid: &str) {
    let url = stack
        .gateway
        .ws_url(&format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"));
    let (mut again, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    expect_close(&mut again).await;
}

async fn socketio_gauge(stack: &Stack) -> i64 {
    let (_, text) = http_get_text(&stack.gateway.http_url("/metrics"))
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("tickstream_gateway_connections{protocol=\"socketio\"} "))
        .and_then(|v| v.trim().parse().ok())
        .expect("socketio connections gauge")
}

async fn wait_no_sessions(stack: &Stack) {
    wait_until(STEP, "no Socket.IO session left", || async {
        socketio_gauge(stack).await == 0
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn handshake_and_engine_io_error_codes() {
    let stack = Stack::start(&[]).await;
    let eio = Eio::new(&stack);
    let (sid, open) = eio.handshake().await;
    assert_eq!(sid.len(), 20);
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], 25000);
    assert_eq!(open["pingTimeout"], 20000);
    assert_eq!(open["maxPayload"], 1_000_000);
    // Without the trailing slash too.
    let (status, body) =
        http_get_text(&stack.gateway.http_url("/socket.io?EIO=4&transport=polling"))
            .await
            .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("0{"), "{body}");
    // Browsers poll cross-origin (a dashboard on another port).
    let r = eio
        .http
        .get(format!("{}?EIO=4&transport=polling", eio.base))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("access-control-allow-origin").unwrap(),
        "http://localhost:3000"
    );

    let cases: &[(&str, u8, &str)] = &[
        ("EIO=4&transport=carrier-pigeon", 0, "Transport unknown"),
        ("EIO=4", 0, "Transport unknown"),
        ("EIO=3&transport=polling", 5, "Unsupported protocol version"),
        ("transport=polling", 5, "Unsupported protocol version"),
        ("EIO=4&transport=polling&sid=nope", 1, "Session ID unknown"),
        // A WebSocket request without the Upgrade header.
        ("EIO=4&transport=websocket", 3, "Bad request"),
    ];
    for (query, code, message) in cases {
        let (status, body) = eio.get(query).await;
        assert_eio_error(status, &body, *code, message);
    }
    let (status, body) = eio.post("EIO=4&transport=polling", "40").await;
    assert_eio_error(status, &body, 2, "Bad handshake method");
    let (status, body) = eio.post("EIO=4&transport=polling&sid=nope", "40").await;
    assert_eio_error(status, &body, 1, "Session ID unknown");
    // Wrong transport for an existing polling session (no Upgrade header).
    let (status, body) = eio
        .get(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await;
    assert_eio_error(status, &body, 3, "Bad request");

    // Wrong transport for a WebSocket-only session.
    let (mut ws, open) = sio_ws(&stack, "").await;
    assert_eq!(open["upgrades"], json!([]), "nothing to upgrade to");
    let ws_sid = open["sid"].as_str().unwrap();
    let (status, body) = eio
        .get(&format!("EIO=4&transport=polling&sid={ws_sid}"))
        .await;
    assert_eio_error(status, &body, 3, "Bad request");
    let (status, body) = eio
        .post(&format!("EIO=4&transport=polling&sid={ws_sid}"), "40")
        .await;
    assert_eio_error(status, &body, 3, "Bad request");
    ws_join(&mut ws).await;
}

#[tokio::test]
async fn polling_connect_events_acks_errors_and_close() {
    let stack = Stack::start(&[]).await;
    let eio = Eio::new(&stack);
    let (sid, _) = eio.handshake().await;
    // Another namespace is refused; the default one is accepted (auth payload allowed).
    eio.send(&sid, "40/admin,").await;
    let refused = eio.poll(&sid).await;
    assert_eq!(
        refused,
        vec![r#"44/admin,{"message":"Invalid namespace"}"#.to_owned()]
    );
    eio.send(&sid, r#"40{"token":"abc"}"#).await;
    let packets = eio.poll_until(&sid, |p| p.len() >= 2).await;
    let ok: Value = serde_json::from_str(packets[0].strip_prefix("40").unwrap()).unwrap();
    let (name, hello) = event_of(&packets[1]);
    assert_eq!(name, "connected");
    assert_eq!(hello["client_id"], ok["sid"]);

    let cached = stack.cache("BTCUSDT", 5, 43000.5).await;
    // Three packets in one POST, joined by \x1e: an acked subscribe, an unknown event, a bad symbol.
    eio.send(
        &sid,
        "421[\"subscribe\",{\"symbols\":[\"btcusdt\"]}]\x1e42[\"fly\"]\x1e42[\"subscribe\",{\"symbols\":[\"bad sym\"]}]",
    )
    .await;
    let packets = eio
        .poll_until(&sid, |p| {
            p.iter().filter(|x| x.starts_with("42[\"error\"")).count() >= 2
        })
        .await;
    assert!(packets[0].starts_with("42[\"subscribed\""), "{packets:?}");
    let (_, subscribed) = event_of(&packets[0]);
    assert_eq!(
        subscribed,
        json!({"symbols":["BTCUSDT"],"channels":[],"pending":[],"epoch":null,"message":"Subscribed to 1 symbols"})
    );
    let ack: Value = serde_json::from_str(packets[1].strip_prefix("431").expect("ack 1")).unwrap();
    assert_eq!(ack, json!([subscribed]), "reply data as the ack argument");
    let (name, snapshot) = event_of(&packets[2]);
    assert_eq!(
        (name.as_str(), &snapshot),
        ("price_update", &cached),
        "cached tick first"
    );
    let errors: Vec<Value> = packets[3..].iter().map(|p| event_of(p).1).collect();
    assert_eq!(errors[0]["code"], "unknown_event");
    assert_eq!(errors[1]["code"], "invalid_symbol");

    // Live tick over polling.
    stack.wait_numsub("BTCUSDT", 1).await;
    let live = stack.publish("BTCUSDT", 6, 43001.5).await;
    let packets = eio
        .poll_until(&sid, |p| find_event(p, "price_update").is_some())
        .await;
    assert_eq!(find_event(&packets, "price_update").unwrap(), live);

    // `b`-prefixed base64 binary over polling is decoded, then refused like a native binary frame.
    eio.send(&sid, "bAQID").await;
    let packets = eio
        .poll_until(&sid, |p| find_event(p, "error").is_some())
        .await;
    assert_eq!(find_event(&packets, "error").unwrap()["code"], "bad_json");

    // DISCONNECT drops the subscriptions; close ends the session.
    eio.send(&sid, "41").await;
    stack.wait_numsub("BTCUSDT", 0).await;
    eio.send(&sid, "1").await;
    wait_no_sessions(&stack).await;
    let (status, body) = eio.get(&format!("EIO=4&transport=polling&sid={sid}")).await;
    assert_eio_error(status, &body, 1, "Session ID unknown");
}

#[tokio::test]
async fn second_concurrent_get_is_refused_and_closes_the_session() {
    let stack = Stack::start(&[]).await;
    let eio = Eio::new(&stack);
    let (sid, _) = eio.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let (a, b) = tokio::join!(eio.get(&q), eio.get(&q));
    let mut answers = [a, b];
    answers.sort();
    // The pending GET is released with a close packet, the overlapping one gets 400.
    assert_eq!(answers[0], (200, "1".to_owned()), "{answers:?}");
    assert_eio_error(answers[1].0, &answers[1].1, 3, "Bad request");
    wait_no_sessions(&stack).await;
    let (status, body) = eio.get(&q).await;
    assert_eio_error(status, &body, 1, "Session ID unknown");
}

#[tokio::test]
async fn malformed_packets_close_the_session() {
    let stack = Stack::start(&[]).await;
    let eio = Eio::new(&stack);
    for bad in [
        "",
        "x",
        "7",
        "0",
        "4",
        "40\x1e",
        "4{\"a\":1}",
        "42{\"a\":1}",
        "42[1]",
        "42[\"subscribe\"",
        "44{\"message\":\"x\"}",
        "bnot base64!",
    ] {
        let (sid, _) = eio.handshake().await;
        let q = format!("EIO=4&transport=polling&sid={sid}");
        if bad.starts_with("42") {
            eio.join(&sid).await;
        }
        let (status, body) = eio.post(&q, bad).await;
        assert_eio_error(status, &body, 3, "Bad request");
        let (status, body) = eio.get(&q).await;
        assert_eio_error(status, &body, 1, "Session ID unknown");
    }
    // Binary content is not Engine.IO v4 polling.
    let (sid, _) = eio.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let r = eio
        .http
        .post(format!("{}?{q}", eio.base))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Over WebSocket a malformed packet closes the socket with a protocol error.
    let (mut ws, _) = sio_ws(&stack, "").await;
    ws_join(&mut ws).await;
    send_text(&mut ws, "4garbage").await;
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Protocol, "protocol error")
    );
    wait_no_sessions(&stack).await;
}

#[tokio::test]
async fn oversized_payloads() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__SOCKETIO_MAX_PAYLOAD_BYTES", "2000"),
        ("TICKSTREAM_GATEWAY__MAX_MESSAGE_BYTES", "200"),
        ("TICKSTREAM_GATEWAY__MAX_FRAME_BYTES", "2000"),
    ])
    .await;
    let eio = Eio::new(&stack);
    let (sid, open) = eio.handshake().await;
    assert_eq!(open["maxPayload"], 2000);
    // Over maxPayload: 413 with the error JSON, as the reference server.
    let (status, body) = eio
        .post(
            &format!("EIO=4&transport=polling&sid={sid}"),
            "4".repeat(2001),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 3);

    let (mut ws, _) = sio_ws(&stack, "").await;
    ws_join(&mut ws).await;
    // Over max_message_bytes but within maxPayload: `too_large`, and the socket stays.
    let long = format!(
        "42[\"subscribe\",{{\"symbols\":[\"{}\"]}}]",
        "A".repeat(300)
    );
    send_text(&mut ws, &long).await;
    let (name, err) = ws_next_event(&mut ws).await;
    assert_eq!(
        (name.as_str(), &err["code"]),
        ("error", &json!("too_large"))
    );
    send_text(&mut ws, "42[\"ping\"]").await;
    assert_eq!(ws_next_event(&mut ws).await.0, "pong");
    // Over maxPayload on WebSocket: closed with 1009.
    send_text(&mut ws, &"4".repeat(2500)).await;
    let (code, _) = expect_close(&mut ws).await;
    assert_eq!(code, CloseCode::Size);
}

#[tokio::test]
async fn upgrade_from_polling_releases_the_pending_poll_with_a_noop() {
    let stack = Stack::start(&[]).await;
    let eio = Eio::new(&stack);
    let (sid, _) = eio.handshake().await;
    eio.join(&sid).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let pending = {
        let http = eio.http.clone();
        let url = format!("{}?{q}", eio.base);
        tokio::spawn(async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let url = stack
        .gateway
        .ws_url(&format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send_text(&mut ws, "2probe").await;
    assert_eq!(next_text(&mut ws).await, "3probe");
    // The GET waiting on polling is released with a noop before the switch.
    let released = tokio::time::timeout(STEP, pending).await.unwrap().unwrap();
    assert_eq!(released, (200, "6".to_owned()));
    send_text(&mut ws, "5").await;
    send_text(&mut ws, "423[\"ping\"]").await;
    let (name, pong) = ws_next_event(&mut ws).await;
    assert_eq!(name, "pong");
    let ack = next_text(&mut ws).await;
    let ack: Value = serde_json::from_str(ack.strip_prefix("433").expect("ack 3")).unwrap();
    assert_eq!(ack, json!([pong]));
    // Polling is the wrong transport from now on.
    let (status, body) = eio.get(&q).await;
    assert_eio_error(status, &body, 3, "Bad request");
    // A second upgrade attempt is refused, the session goes on.
    second_websocket_is_closed(&stack, &sid).await;
    send_text(&mut ws, "42[\"list\"]").await;
    assert_eq!(ws_next_event(&mut ws).await.0, "subscriptions");
}

/// A session that opened on WebSocket: polling with its sid is the wrong
/// transport (400 code 3, as the reference answers), a second WebSocket with
/// its sid is opened and closed at once, and the session itself goes on.
#[tokio::test]
async fn requests_naming_a_websocket_session_are_refused_and_it_goes_on() {
    let stack = Stack::start(&[]).await;
    let eio = Eio::new(&stack);
    let (mut ws, open) = sio_ws(&stack, "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    ws_join(&mut ws).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let (status, body) = eio.get(&q).await;
    assert_eio_error(status, &body, 3, "Bad request");
    let (status, body) = eio.post(&q, "40").await;
    assert_eio_error(status, &body, 3, "Bad request");
    second_websocket_is_closed(&stack, &sid).await;
    send_text(&mut ws, "42[\"subscribe\",{\"symbols\":[\"BTCUSDT\"]}]").await;
    assert_eq!(ws_next_event(&mut ws).await.0, "subscribed");
    stack.wait_numsub("BTCUSDT", 1).await;
    stack.publish("BTCUSDT", 1, 43000.5).await;
    let (name, tick) = ws_next_event(&mut ws).await;
    assert_eq!(
        (name.as_str(), tick["seq"].clone()),
        ("price_update", json!(1))
    );
    assert_eq!(socketio_gauge(&stack).await, 1);
}

#[tokio::test]
async fn server_pings_and_silent_sessions_are_reaped() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__SOCKETIO_PING_INTERVAL_MS", "300"),
        ("TICKSTREAM_GATEWAY__SOCKETIO_PING_TIMEOUT_MS", "300"),
    ])
    .await;
    let eio = Eio::new(&stack);
    // A polling client that answers pings outlives interval + timeout several times.
    let (sid, open) = eio.handshake().await;
    assert_eq!(
        (open["pingInterval"].clone(), open["pingTimeout"].clone()),
        (json!(300), json!(300))
    );
    let started = std::time::Instant::now();
    for _ in 0..4 {
        assert_eq!(eio.poll(&sid).await, vec!["2".to_owned()]);
        eio.send(&sid, "3").await;
    }
    assert!(started.elapsed() > Duration::from_millis(1000));
    // Then it stops polling: reaped after pingInterval + pingTimeout.
    wait_no_sessions(&stack).await;
    let (status, body) = eio.get(&format!("EIO=4&transport=polling&sid={sid}")).await;
    assert_eio_error(status, &body, 1, "Session ID unknown");

    // WebSocket: ping `2`, pong `3`; no pong closes the socket.
    let (mut ws, _) = sio_ws(&stack, "").await;
    ws_join(&mut ws).await;
    assert_eq!(next_text(&mut ws).await, "2");
    send_text(&mut ws, "3").await;
    assert_eq!(next_text(&mut ws).await, "2");
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), (CloseCode::Policy, "idle timeout"));
    wait_no_sessions(&stack).await;
}

#[tokio::test]
async fn native_and_socketio_clients_get_the_same_ticks() {
    let stack = Stack::start(&[]).await;
    let mut native = stack.ws("/ws").await;
    expect_event(&mut native, "connected").await;
    subscribe(&mut native, &["BTCUSDT"]).await;
    let (mut sio, _) = sio_ws(&stack, "").await;
    ws_join(&mut sio).await;
    send_text(&mut sio, "42[\"subscribe\",{\"symbols\":[\"BTCUSDT\"]}]").await;
    let (name, data) = ws_next_event(&mut sio).await;
    assert_eq!(name, "subscribed");
    assert_eq!(
        data,
        json!({"symbols":["BTCUSDT"],"channels":[],"pending":["ticks:BTCUSDT"],"epoch":null,"message":"Subscribed to 1 symbols"})
    );
    stack.wait_numsub("BTCUSDT", 1).await;

    let (_, stats) = http_get_json(&stack.gateway.http_url("/stats"))
        .await
        .unwrap();
    assert_eq!(stats["data"]["active_streams"], 2, "both protocols count");
    assert_eq!(socketio_gauge(&stack).await, 1);

    for seq in 1..=3 {
        stack.publish("BTCUSDT", seq, 43000.5 + seq as f64).await;
    }
    for seq in 1..=3u64 {
        let n = expect_event(&mut native, "price_update").await;
        let (name, s) = ws_next_event(&mut sio).await;
        assert_eq!(name, "price_update");
        assert_eq!(n["data"], s, "same tick, same bytes decoded");
        assert_eq!(s["seq"], seq);
    }
}

#[tokio::test]
async fn sigterm_closes_socketio_clients_and_exits() {
    let mut stack = Stack::start(&[]).await;
    let (mut ws, _) = sio_ws(&stack, "").await;
    ws_join(&mut ws).await;
    send_text(&mut ws, "42[\"subscribe\",{\"symbols\":[\"BTCUSDT\"]}]").await;
    assert_eq!(ws_next_event(&mut ws).await.0, "subscribed");
    stack.gateway.terminate().unwrap();
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, CloseCode::Away);
    assert!(reason.contains("shutting down"), "{reason}");
    let status = stack
        .gateway
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("did not exit");
    assert!(status.success(), "{status:?}");
}
