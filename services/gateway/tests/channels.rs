//! Channels of every kind through the real gateway, over `/ws` and stock Socket.IO clients.
//!
//! A test publisher stands in for producers that do not exist yet: it writes
//! exactly what the bus's `publish_event` writes (`SET last:{channel}` and
//! `PUBLISH {channel}`), through a real redis-server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sio::{node, python, ClientProc};
use common::*;
use serde_json::{json, Value};

/// One channel of each kind but ticks, its event, and a payload shaped as its producer's.
fn kinds() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "trades:BTCUSDT",
            "trade",
            json!({"symbol":"BTCUSDT","price":43250.5,"size":0.25,"side":"buy","trade_id":"77","timestamp":"2026-12-05T10:30:00.123Z","source":"test","seq":5}),
        ),
        (
            "candles:1m:BTCUSDT",
            "candle",
            json!({"symbol":"BTCUSDT","interval":"1m","start":"2026-12-05T10:30:00.000Z","end":"2026-12-05T10:31:00.000Z","open":1.25,"high":2.5,"low":0.5,"close":1.5,"volume":3.5,"trades":4,"closed":false,"source":"trades"}),
        ),
        (
            "signals:BTCUSDT",
            "trading_signal",
            json!({"symbol":"BTCUSDT","signal":"BUY","strength":0.7,"reason":"EMA(12) crossed above EMA(26)","timestamp":"2026-12-05T10:31:00.000Z","interval":"1m","indicators":{"rsi":55.5}}),
        ),
        (
            "sentiment",
            "sentiment_update",
            json!({"overall_sentiment":"bullish","market_fear_greed":62,"market_mood":"greed","confidence":0.9,"trending_topics":["BTCUSDT"],"timestamp":"2026-12-05T10:31:00.000Z","breadth":{"advancing":3,"declining":1,"unchanged":0}}),
        ),
        (
            "feeds",
            "feed_status",
            json!({"name":"sim","status":"healthy","mode":"stream","connected":true,"symbols":["BTCUSDT"],"last_message_age_ms":12,"timestamp":"2026-12-05T10:31:00.000Z"}),
        ),
    ]
}

/// Publishes `payload` on `channel` as a producer does: cache it, then PUBLISH.
async fn produce(stack: &Stack, channel: &str, payload: &Value) {
    let mut c = stack.redis().await;
    let text = payload.to_string();
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(format!("last:{channel}"))
        .arg(&text)
        .ignore()
        .cmd("PUBLISH")
        .arg(channel)
        .arg(&text)
        .ignore()
        .query_async(&mut c)
        .await
        .unwrap();
}

/// Waits until the gateway holds exactly `n` Redis subscriptions to `channel`.
async fn wait_channel_numsub(stack: &Stack, channel: &str, n: i64) {
    let redis = &stack.redis;
    tickstream_testkit::wait_until(STEP, &format!("NUMSUB {channel} == {n}"), || async move {
        matches!(redis.numsub(channel).await, Ok(got) if got == n)
    })
    .await
    .unwrap();
}

async fn subscribe_channels(ws: &mut Ws, channels: &[&str]) -> Value {
    send(
        ws,
        json!({"event": "subscribe", "data": {"channels": channels}}),
    )
    .await;
    expect_event(ws, "subscribed").await
}

#[tokio::test]
async fn every_kind_fans_out_over_native_with_its_event_after_a_pending_reply() {
    let stack = Stack::start(&[]).await;
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    let names: Vec<&str> = kinds().iter().map(|k| k.0).collect();
    // Written in any case: the reply gives the canonical names.
    let asked: Vec<String> = names.iter().map(|n| n.to_uppercase()).collect();
    send(
        &mut ws,
        json!({"event": "subscribe", "data": {"channels": asked}, "id": 1}),
    )
    .await;
    let sub = expect_event(&mut ws, "subscribed").await;
    assert_eq!(sub["id"], 1);
    assert_eq!(sub["data"]["channels"], json!(names));
    assert_eq!(sub["data"]["symbols"], json!([]));
    assert_eq!(
        sub["data"]["pending"],
        json!(names),
        "nothing was ever published: every channel is pending"
    );
    assert_eq!(sub["data"]["message"], "Subscribed to 5 channels");
    for name in &names {
        wait_channel_numsub(&stack, name, 1).await;
    }
    for (channel, event, payload) in kinds() {
        produce(&stack, channel, &payload).await;
        let got = expect_event(&mut ws, event).await;
        assert_eq!(got["data"], payload, "{channel} delivered unchanged");
    }
    send(&mut ws, json!({"event": "list"})).await;
    let list = expect_event(&mut ws, "subscriptions").await;
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(list["data"]["channels"], json!(sorted));
    assert_eq!(list["data"]["symbols"], json!([]));

    // A second client now gets each cached value first (feeds: none, a single feed's status would mislead).
    let mut late = stack.ws("/ws").await;
    expect_event(&mut late, "connected").await;
    let sub = subscribe_channels(&mut late, &names).await;
    assert_eq!(sub["data"]["pending"], json!([]));
    for (channel, event, payload) in kinds() {
        if channel == "feeds" {
            continue;
        }
        let got = expect_event(&mut late, event).await;
        assert_eq!(got["data"], payload, "{channel} snapshot");
    }
    assert_usable(&mut late, "after-snapshots").await;
}

#[tokio::test]
async fn symbols_and_channels_together_and_unsubscribe_releases_redis() {
    let stack = Stack::start(&[]).await;
    stack.cache("BTCUSDT", 1, 43000.0).await;
    let mut a = stack.ws("/ws").await;
    expect_event(&mut a, "connected").await;
    send(
        &mut a,
        json!({"event": "subscribe", "data": {"symbols": ["btcusdt"], "channels": ["trades:BTCUSDT"]}}),
    )
    .await;
    let sub = expect_event(&mut a, "subscribed").await;
    assert_eq!(sub["data"]["symbols"], json!(["BTCUSDT"]));
    assert_eq!(sub["data"]["channels"], json!(["trades:BTCUSDT"]));
    assert_eq!(sub["data"]["pending"], json!(["trades:BTCUSDT"]));
    let snap = expect_event(&mut a, "price_update").await;
    assert_eq!(snap["data"]["seq"], 1);

    // A second client on the trades channel keeps it subscribed in Redis after the first leaves it.
    let mut b = stack.ws("/ws?channels=trades:BTCUSDT").await;
    expect_event(&mut b, "connected").await;
    let sub_b = expect_event(&mut b, "subscribed").await;
    assert_eq!(sub_b["data"]["channels"], json!(["trades:BTCUSDT"]));
    wait_channel_numsub(&stack, "trades:BTCUSDT", 1).await;

    send(
        &mut a,
        json!({"event": "unsubscribe", "data": {"channels": ["trades:BTCUSDT"]}}),
    )
    .await;
    let unsub = expect_event(&mut a, "unsubscribed").await;
    assert_eq!(unsub["data"]["channels"], json!(["trades:BTCUSDT"]));
    let trade = json!({"symbol":"BTCUSDT","price":1.0,"size":1.0,"timestamp":"2026-12-05T10:30:00.000Z","source":"test","seq":9});
    produce(&stack, "trades:BTCUSDT", &trade).await;
    assert_eq!(expect_event(&mut b, "trade").await["data"], trade);
    // `a` still holds the ticks: a tick after the trade proves the trade never reached it.
    wait_channel_numsub(&stack, "ticks:BTCUSDT", 1).await;
    let tick = stack.publish("BTCUSDT", 2, 43001.0).await;
    assert_eq!(expect_event(&mut a, "price_update").await["data"], tick);

    drop(b);
    wait_channel_numsub(&stack, "trades:BTCUSDT", 0).await;
    wait_channel_numsub(&stack, "ticks:BTCUSDT", 1).await;
    send(
        &mut a,
        json!({"event": "unsubscribe", "data": {"symbols": ["BTCUSDT"]}}),
    )
    .await;
    let unsub = expect_event(&mut a, "unsubscribed").await;
    assert_eq!(unsub["data"]["message"], "Unsubscribed from 1 symbols");
    wait_channel_numsub(&stack, "ticks:BTCUSDT", 0).await;
}

#[tokio::test]
async fn bad_channels_get_invalid_channel_and_the_connection_stays_up() {
    let stack = Stack::start(&[]).await;
    let mut ws = stack.ws("/ws").await;
    expect_event(&mut ws, "connected").await;
    for bad in [
        json!(["news:BTCUSDT"]),
        json!(["candles:2m:BTCUSDT"]),
        json!(["candles:BTCUSDT"]),
        json!(["trades:BTC USDT"]),
        json!(["sentiment:BTCUSDT"]),
        json!([]),
    ] {
        send(
            &mut ws,
            json!({"event": "subscribe", "data": {"channels": bad}, "id": "x"}),
        )
        .await;
        let e = expect_error(&mut ws, "invalid_channel").await;
        assert_eq!(e["id"], "x", "{bad}");
    }
    assert_usable(&mut ws, "still-up").await;
    // Nothing was subscribed by the refused requests.
    send(&mut ws, json!({"event": "list"})).await;
    let list = expect_event(&mut ws, "subscriptions").await;
    assert_eq!(list["data"]["channels"], json!([]));
    // A bad channel in the connect URL is an error frame too, not a refused connection.
    let mut ws = stack.ws("/ws?channels=weather:X").await;
    expect_event(&mut ws, "connected").await;
    expect_error(&mut ws, "invalid_channel").await;
    assert_usable(&mut ws, "url").await;
}

/// A stock Socket.IO client subscribes to a channel of each kind (and a symbol), receives each as published, and gets `invalid_channel`.
async fn socketio_scenario(stack: Stack, mut client: ClientProc) {
    socketio_receives_every_kind(&stack, &mut client).await;
    client.exit().await;
}

async fn socketio_receives_every_kind(stack: &Stack, client: &mut ClientProc) {
    client.wait_event(STEP, "connected", |_| true).await;
    let names: Vec<&str> = kinds().iter().map(|k| k.0).collect();
    client
        .cmd(json!({"emit": "subscribe", "data": {"channels": names, "symbols": ["ETHUSDT"]}}))
        .await;
    let sub = client.wait_event(STEP, "subscribed", |_| true).await;
    assert_eq!(sub["data"]["channels"], json!(names));
    assert_eq!(sub["data"]["symbols"], json!(["ETHUSDT"]));
    let mut pending = names.clone();
    pending.insert(0, "ticks:ETHUSDT");
    assert_eq!(sub["data"]["pending"], json!(pending));
    for name in names.iter().chain(&["ticks:ETHUSDT"]) {
        wait_channel_numsub(stack, name, 1).await;
    }
    for (channel, event, payload) in kinds() {
        produce(stack, channel, &payload).await;
        let got = client.wait_event(STEP, event, |_| true).await;
        assert_eq!(got["data"], payload, "{channel} over Socket.IO");
    }
    let tick = stack.publish("ETHUSDT", 3, 3000.5).await;
    let got = client.wait_event(STEP, "price_update", |_| true).await;
    assert_eq!(got["data"], tick);
    client
        .cmd(json!({"emit": "subscribe", "data": {"channels": ["moods"]}}))
        .await;
    let e = client.wait_event(STEP, "error", |_| true).await;
    assert_eq!(e["data"]["code"], "invalid_channel");
}

#[tokio::test]
async fn node_socketio_client_receives_every_kind() {
    let stack = Stack::start(&[]).await;
    let mut cmd = node();
    cmd.arg("sio-client.js")
        .arg(stack.gateway.http_url(""))
        .arg("websocket");
    let client = ClientProc::spawn("node", cmd);
    socketio_scenario(stack, client).await;
}

#[tokio::test]
async fn python_socketio_client_receives_every_kind() {
    let stack = Stack::start(&[]).await;
    let mut cmd = python();
    cmd.arg("sio_client.py").arg(stack.gateway.http_url(""));
    let client = ClientProc::spawn("python", cmd);
    socketio_scenario(stack, client).await;
}

#[tokio::test]
async fn an_alias_is_served_from_its_feed_symbol_under_the_name_the_client_used() {
    let stack = Stack::start(&[]).await;
    // A name some feed serves itself is never an alias (a feed announcing ETH in its heartbeat).
    let mut c = stack.redis().await;
    let hb = json!({"name":"eth-feed","status":"healthy","symbols":["ETH"],"ticks_published":0,"updated_at":"2026-12-05T10:00:00.000Z"});
    let _: () = redis::cmd("SET")
        .arg("tickstream:ingestor:eth-feed")
        .arg(hb.to_string())
        .query_async(&mut c)
        .await
        .unwrap();
    stack.cache("BTCUSDT", 1, 43000.0).await;
    let mut alias = stack.ws("/ws").await;
    expect_event(&mut alias, "connected").await;
    let sub = subscribe(&mut alias, &["btc"]).await;
    assert_eq!(sub["data"]["symbols"], json!(["BTC"]));
    assert_eq!(
        sub["data"]["pending"],
        json!([]),
        "served through BTCUSDT's cache"
    );
    let snap = expect_event(&mut alias, "price_update").await;
    assert_eq!(
        (&snap["data"]["symbol"], &snap["data"]["seq"]),
        (&json!("BTC"), &json!(1))
    );
    let mut direct = stack.ws("/ws").await;
    expect_event(&mut direct, "connected").await;
    subscribe(&mut direct, &["BTCUSDT"]).await;
    expect_event(&mut direct, "price_update").await;
    // One Redis subscription, to the feed's channel; none to the alias name.
    wait_channel_numsub(&stack, "ticks:BTCUSDT", 1).await;
    wait_channel_numsub(&stack, "ticks:BTC", 0).await;

    let tick = stack.publish("BTCUSDT", 2, 43001.5).await;
    let got = expect_event(&mut alias, "price_update").await;
    let mut want = tick.clone();
    want["symbol"] = json!("BTC");
    assert_eq!(got["data"], want, "the same tick under the client's name");
    assert_eq!(
        expect_event(&mut direct, "price_update").await["data"],
        tick
    );

    // Over Socket.IO too, with the default vocabulary.
    let mut cmd = node();
    cmd.arg("sio-client.js")
        .arg(stack.gateway.http_url(""))
        .arg("websocket");
    let mut client = ClientProc::spawn("node sio-client.js (alias)", cmd);
    client.wait_event(STEP, "connected", |_| true).await;
    client
        .cmd(json!({"emit": "subscribe", "data": {"symbols": ["BTC/USD"]}}))
        .await;
    let sub = client.wait_event(STEP, "subscribed", |_| true).await;
    assert_eq!(sub["data"]["symbols"], json!(["BTC/USD"]));
    let snap = client.wait_event(STEP, "price_update", |_| true).await;
    assert_eq!(snap["data"]["symbol"], "BTC/USD", "{snap}");
    stack.publish("BTCUSDT", 3, 43002.5).await;
    let live = client
        .wait_event(STEP, "price_update", |v| v["data"]["seq"] == 3)
        .await;
    assert_eq!(live["data"]["symbol"], "BTC/USD");
    assert_eq!(
        expect_event(&mut alias, "price_update").await["data"]["seq"],
        3
    );
    client.exit().await;

    // ETH is announced by a feed (above): served under its own name, not as an alias.
    subscribe(&mut alias, &["ETH"]).await;
    wait_channel_numsub(&stack, "ticks:ETH", 1).await;
    wait_channel_numsub(&stack, "ticks:ETHUSDT", 0).await;

    // The feed's channel is dropped only when the alias's and the direct client are both gone.
    drop(direct);
    send(
        &mut alias,
        json!({"event": "history", "data": {"channel": "ticks:BTC", "since_seq": 0}}),
    )
    .await;
    let h = expect_event(&mut alias, "history").await;
    assert_eq!(h["data"]["channel"], "ticks:BTC");
    drop(alias);
    wait_channel_numsub(&stack, "ticks:BTCUSDT", 0).await;
}
