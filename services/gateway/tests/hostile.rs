//! Hostile input against the real gateway binary: every malformed frame class
//! on native `/ws` and on Socket.IO over WebSocket, each checked for its
//! documented answer (an `error` frame with its code, or a close with its
//! code), while a well-behaved client on the same gateway keeps receiving
//! every tick and the process stays up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    assert_usable, expect_close, expect_error, expect_event, next_json, next_text, subscribe,
    Stack, Ws, STEP,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tickstream_testkit::http_get_text;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// The symbol the well-behaved client follows throughout.
const GOOD: &str = "HOSTILEGOOD";

/// Bytes that are not UTF-8 (a lone continuation byte, then an invalid lead byte).
const NOT_UTF8: &[u8] = &[b'{', 0x80, 0xfe, 0xff, b'}'];

/// The well-behaved client: a native connection whose ticks a task forwards to `seqs`.
struct Witness {
    /// `seq` of every `price_update` of [`GOOD`], in arrival order.
    seqs: mpsc::Receiver<u64>,
    /// Last seq published.
    published: u64,
    /// Last seq received.
    received: u64,
}

impl Witness {
    async fn start(stack: &Stack) -> Witness {
        let mut ws = stack.ws("/ws").await;
        expect_event(&mut ws, "connected").await;
        subscribe(&mut ws, &[GOOD]).await;
        stack.wait_numsub(GOOD, 1).await;
        let (tx, seqs) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(t) = msg else { continue };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["event"] == "price_update"
                    && v["data"]["symbol"] == GOOD
                    && tx.send(v["data"]["seq"].as_u64().unwrap()).await.is_err()
                {
                    return;
                }
            }
        });
        Witness {
            seqs,
            published: 0,
            received: 0,
        }
    }

    /// Publishes the next tick and waits until the good client has it, with no tick missing before it.
    async fn still_served(&mut self, stack: &Stack, after: &str) {
        self.published += 1;
        stack.publish(GOOD, self.published, 100.0).await;
        while self.received < self.published {
            let seq = tokio::time::timeout(STEP, self.seqs.recv())
                .await
                .unwrap_or_else(|_| panic!("good client got no tick after {after}"))
                .unwrap_or_else(|| panic!("good client's connection ended after {after}"));
            assert_eq!(
                seq,
                self.received + 1,
                "good client missed a tick after {after}"
            );
            self.received = seq;
        }
    }
}

/// A native connection past its `connected` frame.
async fn native(stack: &Stack) -> Ws {
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    ws
}

/// A text frame carrying bytes that are not UTF-8 (tungstenite refuses to build one as `Message::Text`).
fn invalid_utf8_text_frame() -> Message {
    Message::Frame(Frame::message(
        NOT_UTF8.to_vec(),
        OpCode::Data(Data::Text),
        true,
    ))
}

/// `{"event":"subscribe","data":{"symbols":[...n symbols...]}}`.
fn subscribe_many(n: usize) -> String {
    let symbols: Vec<String> = (0..n).map(|i| format!("S{i}")).collect();
    json!({"event": "subscribe", "data": {"symbols": symbols}}).to_string()
}

/// `depth` nested arrays.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Sends `text` and expects an `error` frame with `code`, the connection still usable.
async fn native_error(ws: &mut Ws, text: String, code: &str) {
    ws.send(Message::text(text.clone())).await.unwrap();
    let shown: String = text.chars().take(60).collect();
    let v = next_json(ws).await;
    assert_eq!(v["event"], "error", "{shown}: {v}");
    assert_eq!(v["data"]["code"], code, "{shown}: {v}");
}

/// Asserts the gateway process is still running and answers `/health`.
async fn assert_alive(stack: &mut Stack) {
    assert!(
        stack.gateway.wait_exit(Duration::ZERO).await.is_none(),
        "gateway exited: {:?}",
        stack.gateway.logs()
    );
    let (status, _) = http_get_text(&stack.gateway.http_url("/health"))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn native_ws_answers_every_malformed_frame_class_and_serves_others() {
    let mut stack = Stack::start(&[]).await;
    let mut good = Witness::start(&stack).await;
    good.still_served(&stack, "start").await;

    // Answered with an error frame; the connection stays up.
    let mut ws = native(&stack).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("non-JSON", "not json".into(), "bad_json"),
        ("empty", String::new(), "bad_json"),
        (
            "truncated",
            r#"{"event":"subscribe","data":{"symb"#.into(),
            "bad_json",
        ),
        ("array", "[1,2,3]".into(), "bad_json"),
        ("string", r#""subscribe""#.into(), "bad_json"),
        ("event number", r#"{"event":42}"#.into(), "bad_json"),
        ("missing event", r#"{"data":{}}"#.into(), "bad_json"),
        (
            "id object",
            r#"{"event":"ping","id":{}}"#.into(),
            "bad_json",
        ),
        (
            "symbols numbers",
            r#"{"event":"subscribe","data":{"symbols":[1,2]}}"#.into(),
            "bad_json",
        ),
        (
            "symbols object",
            r#"{"event":"subscribe","data":{"symbols":{"a":1}}}"#.into(),
            "bad_json",
        ),
        (
            "unknown event",
            r#"{"event":"fly"}"#.into(),
            "unknown_event",
        ),
        (
            "bad symbol",
            r#"{"event":"subscribe","data":{"symbols":["BTC USDT"]}}"#.into(),
            "invalid_symbol",
        ),
        ("201 symbols", subscribe_many(201), "too_many_symbols"),
        ("100k symbols", subscribe_many(100_000), "too_large"),
        ("deep nesting (small)", nested(4_000), "bad_json"),
        (
            "deep nesting in data",
            format!(r#"{{"event":"subscribe","data":{}}}"#, nested(3_000)),
            "bad_json",
        ),
        ("deep nesting (large)", nested(200_000), "too_large"),
    ];
    for (i, (what, text, code)) in cases.into_iter().enumerate() {
        native_error(&mut ws, text, code).await;
        assert_usable(&mut ws, &format!("after-{i}")).await;
        good.still_served(&stack, what).await;
    }

    // Binary frames: an error, the connection stays.
    ws.send(Message::binary(b"{\"event\":\"list\"}".to_vec()))
        .await
        .unwrap();
    expect_error(&mut ws, "bad_json").await;
    assert_usable(&mut ws, "after-binary").await;
    good.still_served(&stack, "binary frame").await;
    drop(ws);

    // Invalid UTF-8 in a text frame: close 1007.
    let mut ws = native(&stack).await;
    ws.send(invalid_utf8_text_frame()).await.unwrap();
    let (code, _) = expect_close(&mut ws).await;
    assert_eq!(
        code,
        CloseCode::Invalid,
        "invalid UTF-8 must close with 1007"
    );
    good.still_served(&stack, "invalid UTF-8").await;

    // A frame over max_frame_bytes (1 MiB): error too_large, then close 1009.
    let mut ws = native(&stack).await;
    let _ = ws.send(Message::text("x".repeat(1024 * 1024 + 16))).await;
    expect_error(&mut ws, "too_large").await;
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, CloseCode::Size, "oversized frame: {reason}");
    good.still_served(&stack, "oversized frame").await;

    // Repeated abuse: every bad request answered, then close 1008.
    let mut ws = native(&stack).await;
    let mut errors = 0;
    let (code, reason) = loop {
        let _ = ws.send(Message::text("garbage")).await;
        match tokio::time::timeout(STEP, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_eq!(v["data"]["code"], "bad_json", "{v}");
                errors += 1;
                assert!(errors <= 100, "never closed after {errors} bad requests");
            }
            Some(Ok(Message::Close(Some(f)))) => break (f.code, f.reason.to_string()),
            other => panic!("unexpected {other:?} after {errors} bad requests"),
        }
    };
    assert_eq!(code, CloseCode::Policy, "{reason}");
    assert_eq!(reason, "too many invalid requests");
    assert!(errors >= 2, "closed after only {errors} bad requests");
    good.still_served(&stack, "repeated abuse").await;

    assert_alive(&mut stack).await;
}

/// A Socket.IO WebSocket session past its Engine.IO open packet and `40` CONNECT.
async fn sio_joined(stack: &Stack) -> Ws {
    let url = stack
        .gateway
        .ws_url("/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"), "open packet");
    ws.send(Message::text("40")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40{"), "CONNECT ok");
    let (name, _) = sio_event(&mut ws).await;
    assert_eq!(name, "connected");
    ws
}

/// Waits for the session to end: `Some(code)` for a close frame, `None` for a dropped connection.
async fn close_or_reset(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(STEP, ws.next())
            .await
            .expect("session did not end")
        {
            Some(Ok(Message::Close(f))) => return Some(f.map_or(CloseCode::Status, |f| f.code)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("served {other:?} after a hostile frame"),
            Some(Err(_)) | None => return None,
        }
    }
}

/// Next `42[name, data]` event.
async fn sio_event(ws: &mut Ws) -> (String, Value) {
    let text = next_text(ws).await;
    let body = text
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("not an event: {text}"));
    let v: Value = serde_json::from_str(body).unwrap();
    (v[0].as_str().unwrap().to_owned(), v[1].clone())
}

/// Expects a Socket.IO `error` event with `code`.
async fn sio_error(ws: &mut Ws, code: &str, what: &str) {
    let (name, data) = sio_event(ws).await;
    assert_eq!(name, "error", "{what}: {data}");
    assert_eq!(data["code"], code, "{what}: {data}");
}

/// Proves the Socket.IO session still works: `ping` gets `pong`.
async fn sio_usable(ws: &mut Ws) {
    ws.send(Message::text(r#"42["ping"]"#)).await.unwrap();
    let (name, _) = sio_event(ws).await;
    assert_eq!(name, "pong");
}

#[tokio::test]
async fn socketio_answers_every_malformed_frame_class_and_serves_others() {
    let mut stack = Stack::start(&[]).await;
    let mut good = Witness::start(&stack).await;
    good.still_served(&stack, "start").await;

    // Wrong types inside a well-formed event: an error event, the session stays.
    let mut ws = sio_joined(&stack).await;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "symbols numbers",
            r#"42["subscribe",{"symbols":[1,2]}]"#.into(),
            "bad_json",
        ),
        ("symbols missing", r#"42["subscribe",7]"#.into(), "bad_json"),
        ("unknown event", r#"42["fly"]"#.into(), "unknown_event"),
        (
            "bad symbol",
            r#"42["subscribe",{"symbols":["a b"]}]"#.into(),
            "invalid_symbol",
        ),
        (
            "201 symbols",
            format!(
                "42[\"subscribe\",{}]",
                serde_json::from_str::<Value>(&subscribe_many(201)).unwrap()["data"]
            ),
            "too_many_symbols",
        ),
        (
            "100k symbols",
            format!(
                "42[\"subscribe\",{}]",
                serde_json::from_str::<Value>(&subscribe_many(100_000)).unwrap()["data"]
            ),
            "too_large",
        ),
    ];
    for (what, text, code) in cases {
        ws.send(Message::text(text)).await.unwrap();
        sio_error(&mut ws, code, what).await;
        sio_usable(&mut ws).await;
        good.still_served(&stack, what).await;
    }
    // Binary frames: an error event, the session stays.
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    sio_error(&mut ws, "bad_json", "binary frame").await;
    sio_usable(&mut ws).await;
    good.still_served(&stack, "binary frame").await;
    drop(ws);

    // Broken framing closes the session with 1002 (as the reference server does).
    let framing: Vec<(&str, String)> = vec![
        ("non-JSON engine.io", "not a packet".into()),
        ("empty", String::new()),
        ("non-JSON socket.io", "42not json".into()),
        ("event object", "42{}".into()),
        ("event without name", "42[1]".into()),
        ("deep nesting", format!("42[\"ping\",{}]", nested(4_000))),
    ];
    for (what, text) in framing {
        let mut ws = sio_joined(&stack).await;
        ws.send(Message::text(text)).await.unwrap();
        let (code, reason) = expect_close(&mut ws).await;
        assert_eq!(code, CloseCode::Protocol, "{what}: {reason}");
        good.still_served(&stack, what).await;
    }

    // Invalid UTF-8 in a text frame: close 1007 (RFC 6455 §8.1), as on native /ws.
    let mut ws = sio_joined(&stack).await;
    ws.send(invalid_utf8_text_frame()).await.unwrap();
    let code = close_or_reset(&mut ws).await;
    assert_eq!(
        code,
        Some(CloseCode::Invalid),
        "invalid UTF-8 must close with 1007"
    );
    good.still_served(&stack, "socket.io invalid UTF-8").await;

    // A message over maxPayload (1,000,000 bytes): close 1009.
    let mut ws = sio_joined(&stack).await;
    let huge = format!("42[\"ping\",\"{}\"]", "x".repeat(1_000_001));
    let _ = ws.send(Message::text(huge)).await;
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, CloseCode::Size, "{reason}");
    good.still_served(&stack, "socket.io oversized").await;

    // Repeated abuse: error events, then close 1008.
    let mut ws = sio_joined(&stack).await;
    let mut errors = 0;
    let (code, reason) = loop {
        let _ = ws.send(Message::text(r#"42["fly"]"#)).await;
        match tokio::time::timeout(STEP, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => {
                let body = t.as_str().strip_prefix("42").unwrap();
                let v: Value = serde_json::from_str(body).unwrap();
                assert_eq!(v[0], "error", "{v}");
                errors += 1;
                assert!(errors <= 100, "never closed after {errors} bad requests");
            }
            Some(Ok(Message::Close(Some(f)))) => break (f.code, f.reason.to_string()),
            other => panic!("unexpected {other:?} after {errors} bad requests"),
        }
    };
    assert_eq!(code, CloseCode::Policy, "{reason}");
    assert!(errors >= 2, "closed after only {errors} bad requests");
    good.still_served(&stack, "socket.io repeated abuse").await;

    assert_alive(&mut stack).await;
}

/// A client that sends its first frame in the same packet as its upgrade
/// request (no wait for the 101): the frame is answered, not lost. The
/// gateway serves upgraded connections itself, so bytes read together with
/// the request must reach the connection.
#[tokio::test]
async fn a_frame_sent_with_the_upgrade_request_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start(&[]).await;
    let addr = stack.gateway.addr();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let text = json!({"event": "subscribe", "data": {"symbols": ["EARLYBIRD"]}}).to_string();
    // One masked text frame (mask key 0: the payload goes as is), payload < 126 bytes.
    let mut packet = request.into_bytes();
    packet.extend_from_slice(&[0x81, 0x80 | text.len() as u8, 0, 0, 0, 0]);
    packet.extend_from_slice(text.as_bytes());
    tcp.write_all(&packet).await.unwrap();
    let mut seen = Vec::new();
    let got = tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed; got {:?}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains(r#""event":"subscribed""#) {
                return;
            }
        }
    })
    .await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(got.is_ok(), "no `subscribed` reply; got {seen:?}");
    assert!(seen.starts_with("HTTP/1.1 101"), "{seen}");
    assert!(seen.contains("EARLYBIRD"), "{seen}");
}
