//! Admission against the real gateway binary and a real redis-server:
//! connection limits (429), JWT auth (native 401, Socket.IO CONNECT_ERROR,
//! symbol grants), allowed origins (403, CORS), for both protocols.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::sio::{node, python, ClientProc};
use common::*;
use futures_util::SinkExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tickstream_testkit::http_get_text;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

const SECRET: &str = "test-secret-0123456789-abcdefghij";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn metric(stack: &Stack, series: &str) -> f64 {
    let (_, text) = http_get_text(&stack.gateway.http_url("/metrics"))
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no series {series}"))
}

/// A WebSocket handshake from source address `from` with extra headers; `Err((status, body))` when refused.
async fn ws_from(
    stack: &Stack,
    from: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, Value)> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let tcp = sock.connect(stack.gateway.addr()).await.unwrap();
    let mut req = stack.gateway.ws_url(path).into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body = res.body().clone().unwrap_or_default();
            let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
            Err((res.status().as_u16(), v))
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

async fn ws_with(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> Result<Ws, (u16, Value)> {
    ws_from(stack, "127.0.0.1", path, headers).await
}

fn assert_refused(r: Result<Ws, (u16, Value)>, status: u16, code: &str) {
    match r {
        Ok(_) => panic!("expected {status} {code}, got a connection"),
        Err((got, body)) => {
            assert_eq!(got, status, "{body}");
            assert_eq!(body["success"], false, "{body}");
            assert_eq!(body["code"], code, "{body}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
}

#[tokio::test]
async fn connection_limits_refuse_with_429_for_both_protocols() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__MAX_CONNECTIONS", "3"),
        ("TICKSTREAM_GATEWAY__MAX_CONNECTIONS_PER_IP", "2"),
    ])
    .await;
    let mut a = ws_with(&stack, "/ws", &[]).await.unwrap();
    expect_event(&mut a, "connected").await;
    // A Socket.IO polling session counts as a connection too.
    let eio = stack
        .gateway
        .http_url("/socket.io/?EIO=4&transport=polling");
    let r = http().get(&eio).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let open = r.text().await.unwrap();
    let sid = serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // Third from 127.0.0.1: per-IP limit, both protocols.
    assert_refused(
        ws_with(&stack, "/ws", &[]).await,
        429,
        "too_many_connections_per_ip",
    );
    let r = http().get(&eio).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_connections_per_ip");
    assert_refused(
        ws_with(&stack, "/socket.io/?EIO=4&transport=websocket", &[]).await,
        429,
        "too_many_connections_per_ip",
    );

    // Another address gets the last slot; then the total limit bites.
    let mut b = ws_from(&stack, "127.0.0.2", "/ws", &[]).await.unwrap();
    expect_event(&mut b, "connected").await;
    assert_refused(
        ws_from(&stack, "127.0.0.3", "/ws", &[]).await,
        429,
        "too_many_connections",
    );
    assert_eq!(
        metric(&stack, r#"tickstream_gateway_connections_rejected_total{reason="too_many_connections_per_ip"} "#).await,
        3.0
    );
    assert_eq!(
        metric(
            &stack,
            r#"tickstream_gateway_connections_rejected_total{reason="too_many_connections"} "#
        )
        .await,
        1.0
    );

    // Closing releases the slot: the Socket.IO session ends with an Engine.IO close.
    let r = http()
        .post(format!("{eio}&sid={sid}"))
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Polls (like wait_until) until the closed session's slot is free again.
    let deadline = tokio::time::Instant::now() + STEP;
    let mut c = loop {
        match ws_with(&stack, "/ws", &[]).await {
            Ok(ws) => break ws,
            Err((429, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(tickstream_testkit::wait::POLL_INTERVAL).await;
            }
            Err(other) => panic!("the slot was not released: {other:?}"),
        }
    };
    expect_event(&mut c, "connected").await;
    assert_usable(&mut a, "a").await;
    assert_usable(&mut b, "b").await;
}

fn hs256(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn alg_none(claims: Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

/// Every refused token, with the `auth_failures_total` reason it must count as.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let wrong_key = encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": now() + 600}),
        &EncodingKey::from_secret(b"some-other-secret-0123456789-xyz"),
    )
    .unwrap();
    vec![
        ("expired", hs256(json!({"exp": now() - 3600}))),
        (
            "not_yet_valid",
            hs256(json!({"exp": now() + 7200, "nbf": now() + 3600})),
        ),
        ("bad_signature", wrong_key),
        ("bad_algorithm", alg_none(json!({"exp": now() + 600}))),
        ("malformed", "definitely.not.a-jwt".to_owned()),
    ]
}

#[tokio::test]
async fn jwt_hs256_native_refuses_bad_tokens_with_401_and_grants_symbols() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__AUTH__ALGORITHM", "HS256"),
        ("TICKSTREAM_GATEWAY__AUTH__HS256_SECRET", SECRET),
        ("LOG_LEVEL", "debug"),
    ])
    .await;
    assert_refused(ws_with(&stack, "/ws", &[]).await, 401, "unauthorized");
    for (reason, token) in bad_tokens() {
        assert_refused(
            ws_with(&stack, &format!("/ws?token={token}"), &[]).await,
            401,
            "unauthorized",
        );
        let bearer = format!("Bearer {token}");
        assert_refused(
            ws_with(&stack, "/ws", &[("authorization", &bearer)]).await,
            401,
            "unauthorized",
        );
        let series = format!(r#"tickstream_gateway_auth_failures_total{{reason="{reason}"}} "#);
        assert_eq!(metric(&stack, &series).await, 2.0, "{reason}");
    }
    assert_eq!(
        metric(
            &stack,
            r#"tickstream_gateway_auth_failures_total{reason="missing"} "#
        )
        .await,
        1.0
    );

    // A valid token in the query: any symbol.
    let open = hs256(json!({"exp": now() + 600, "sub": "alice"}));
    let mut ws = ws_with(&stack, &format!("/ws?token={open}"), &[])
        .await
        .unwrap();
    expect_event(&mut ws, "connected").await;
    subscribe(&mut ws, &["ETHUSDT"]).await;

    // A valid token in the header with a `symbols` claim: only those.
    let limited = hs256(json!({"exp": now() + 600, "symbols": ["BTCUSDT", "eur/usd"]}));
    let bearer = format!("Bearer {limited}");
    let mut ws = ws_with(&stack, "/ws", &[("authorization", &bearer)])
        .await
        .unwrap();
    expect_event(&mut ws, "connected").await;
    subscribe(&mut ws, &["BTCUSDT", "EUR/USD"]).await;
    send(
        &mut ws,
        json!({"event": "subscribe", "data": {"symbols": ["ETHUSDT"]}, "id": 5}),
    )
    .await;
    let e = expect_error(&mut ws, "unauthorized").await;
    assert_eq!(e["id"], 5);
    assert_usable(&mut ws, "after-denied").await;
    assert_eq!(
        metric(
            &stack,
            r#"tickstream_gateway_auth_failures_total{reason="symbol_denied"} "#
        )
        .await,
        1.0
    );

    // Neither the secret nor any token shows up in the logs.
    let logs = stack.gateway.logs().join("\n");
    assert!(!logs.contains(SECRET), "secret leaked into logs");
    assert!(
        !logs.contains(&limited) && !logs.contains(&open),
        "token leaked into logs"
    );
}

/// `40{auth}` on a raw Socket.IO websocket: the CONNECT reply packet.
async fn sio_connect(stack: &Stack, query: &str, auth: Option<Value>) -> (Ws, String) {
    let url = stack
        .gateway
        .ws_url(&format!("/socket.io/?EIO=4&transport=websocket{query}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = next_text(&mut ws).await;
    assert!(open.starts_with('0'));
    let connect = match auth {
        Some(a) => format!("40{a}"),
        None => "40".to_owned(),
    };
    ws.send(Message::text(connect)).await.unwrap();
    let reply = next_text(&mut ws).await;
    (ws, reply)
}

#[tokio::test]
async fn jwt_socketio_refuses_with_connect_error_and_grants_symbols() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__AUTH__ALGORITHM", "HS256"),
        ("TICKSTREAM_GATEWAY__AUTH__HS256_SECRET", SECRET),
    ])
    .await;
    let refused = r#"44{"message":"unauthorized"}"#;
    let (_, reply) = sio_connect(&stack, "", None).await;
    assert_eq!(reply, refused, "missing token");
    for (reason, token) in bad_tokens() {
        let (_, reply) = sio_connect(&stack, "", Some(json!({ "token": token }))).await;
        assert_eq!(reply, refused, "{reason}");
        let series = format!(r#"tickstream_gateway_auth_failures_total{{reason="{reason}"}} "#);
        assert_eq!(metric(&stack, &series).await, 1.0, "{reason}");
    }

    // Valid in the CONNECT auth payload, with a symbols claim.
    let limited = hs256(json!({"exp": now() + 600, "symbols": ["BTCUSDT"]}));
    let (mut ws, reply) = sio_connect(&stack, "", Some(json!({ "token": limited }))).await;
    assert!(reply.starts_with(r#"40{"sid""#), "{reply}");
    assert!(next_text(&mut ws).await.starts_with(r#"42["connected""#));
    ws.send(Message::text(r#"42["subscribe",{"symbols":["ETHUSDT"]}]"#))
        .await
        .unwrap();
    let e = next_text(&mut ws).await;
    assert!(e.starts_with(r#"42["error",{"code":"unauthorized""#), "{e}");
    ws.send(Message::text(r#"42["subscribe",{"symbols":["BTCUSDT"]}]"#))
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.starts_with(r#"42["subscribed""#));

    // Valid as ?token= on the handshake (no auth payload), over polling.
    let good = hs256(json!({"exp": now() + 600}));
    let (_, reply) = sio_connect(&stack, &format!("&token={good}"), None).await;
    assert!(reply.starts_with(r#"40{"sid""#), "{reply}");
    let base = stack
        .gateway
        .http_url("/socket.io/?EIO=4&transport=polling");
    let open = http()
        .get(&base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sid = serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{base}&sid={sid}");
    let connect = format!(
        "40{}",
        json!({ "token": hs256(json!({"exp": now() - 3600})) })
    );
    assert_eq!(
        http()
            .post(&url)
            .body(connect)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let body = http().get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, refused);
}

#[tokio::test]
async fn jwt_rs256_accepts_signed_tokens_and_refuses_algorithm_confusion() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test_data");
    let public = dir.join("jwt_rs256_public.pem");
    let private = std::fs::read(dir.join("jwt_rs256_private.pem")).unwrap();
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__AUTH__ALGORITHM", "RS256"),
        (
            "TICKSTREAM_GATEWAY__AUTH__RS256_PUBLIC_KEY_FILE",
            public.to_str().unwrap(),
        ),
    ])
    .await;
    let key = EncodingKey::from_rsa_pem(&private).unwrap();
    let good = encode(
        &Header::new(Algorithm::RS256),
        &json!({"exp": now() + 600}),
        &key,
    )
    .unwrap();
    let mut ws = ws_with(&stack, &format!("/ws?token={good}"), &[])
        .await
        .unwrap();
    expect_event(&mut ws, "connected").await;
    // HS256 signed with the public key as the secret: the classic confusion attack.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": now() + 600}),
        &EncodingKey::from_secret(&std::fs::read(&public).unwrap()),
    )
    .unwrap();
    assert_refused(
        ws_with(&stack, &format!("/ws?token={confused}"), &[]).await,
        401,
        "unauthorized",
    );
    assert_eq!(
        metric(
            &stack,
            r#"tickstream_gateway_auth_failures_total{reason="bad_algorithm"} "#
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn allowed_origins_gate_websockets_engine_io_and_cors() {
    let stack = Stack::start(&[(
        "ALLOWED_ORIGINS",
        "https://good.example,http://localhost:3000",
    )])
    .await;
    let good = [("origin", "https://good.example")];
    let evil = [("origin", "https://evil.example")];
    assert_refused(ws_with(&stack, "/ws", &evil).await, 403, "origin_forbidden");
    let mut ws = ws_with(&stack, "/ws", &good).await.unwrap();
    expect_event(&mut ws, "connected").await;
    let mut ws = ws_with(&stack, "/ws", &[]).await.unwrap();
    expect_event(&mut ws, "connected").await;

    let eio = stack
        .gateway
        .http_url("/socket.io/?EIO=4&transport=polling");
    let r = http()
        .get(&eio)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"code": 4, "message": "Forbidden"})
    );
    let r = http()
        .get(&eio)
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let r = ws_with(&stack, "/socket.io/?EIO=4&transport=websocket", &evil).await;
    assert!(
        matches!(r, Err((403, _))),
        "Engine.IO websocket from a bad origin"
    );

    let health = stack.gateway.http_url("/health");
    let r = http()
        .get(&health)
        .header("origin", "https://good.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    let r = http()
        .get(&health)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = http()
        .request(
            reqwest::Method::OPTIONS,
            stack.gateway.http_url("/price/BTCUSDT"),
        )
        .header("origin", "https://good.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    assert_eq!(
        metric(
            &stack,
            r#"tickstream_gateway_connections_rejected_total{reason="origin_forbidden"} "#
        )
        .await,
        3.0
    );

    // Without a list, any origin may read REST.
    let open = Stack::start(&[]).await;
    let r = http()
        .get(open.gateway.http_url("/health"))
        .header("origin", "https://anything.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn stock_socketio_clients_send_their_token_in_the_connect_auth_payload() {
    let stack = Stack::start(&[
        ("TICKSTREAM_GATEWAY__AUTH__ALGORITHM", "HS256"),
        ("TICKSTREAM_GATEWAY__AUTH__HS256_SECRET", SECRET),
    ])
    .await;
    let url = stack.gateway.http_url("");
    let limited = hs256(json!({"exp": now() + 600, "symbols": ["BTCUSDT"]}));
    let expired = hs256(json!({"exp": now() - 3600}));

    let mut cmd = node();
    cmd.arg("sio-client.js")
        .arg(&url)
        .env("SIO_AUTH_TOKEN", &limited);
    let mut client = ClientProc::spawn("node sio-client.js (token)", cmd);
    client.wait_event(STEP, "connected", |_| true).await;
    client
        .cmd(json!({"emit": "subscribe", "data": {"symbols": ["ETHUSDT"]}}))
        .await;
    let e = client.wait_event(STEP, "error", |_| true).await;
    assert_eq!(e["data"]["code"], "unauthorized", "{e}");
    client
        .cmd(json!({"emit": "subscribe", "data": {"symbols": ["BTCUSDT"]}}))
        .await;
    client.wait_event(STEP, "subscribed", |_| true).await;
    client.exit().await;

    let mut cmd = node();
    cmd.arg("sio-client.js")
        .arg(&url)
        .env("SIO_AUTH_TOKEN", &expired);
    let mut client = ClientProc::spawn("node sio-client.js (expired)", cmd);
    let refused = client.wait_event(STEP, "connect_error", |_| true).await;
    assert_eq!(refused["message"], "unauthorized", "{refused}");
    assert!(client.events("connected").is_empty());
    client.kill().await;

    let mut cmd = python();
    cmd.arg("sio_client.py")
        .arg(&url)
        .env("SIO_AUTH_TOKEN", &limited);
    let mut client = ClientProc::spawn("python sio_client.py (token)", cmd);
    client.wait_event(STEP, "connected", |_| true).await;
    client.exit().await;

    let mut cmd = python();
    cmd.arg("sio_client.py").arg(&url);
    let mut client = ClientProc::spawn("python sio_client.py (no token)", cmd);
    client.wait_event(STEP, "connect_failed", |_| true).await;
    let errors = client.events("connect_error");
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("unauthorized"))),
        "{errors:?}"
    );
    client.kill().await;
    assert_eq!(
        metric(
            &stack,
            r#"tickstream_gateway_auth_failures_total{reason="missing"} "#
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &stack,
            r#"tickstream_gateway_auth_failures_total{reason="expired"} "#
        )
        .await,
        1.0
    );
}
