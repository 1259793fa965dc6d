//! On-demand streaming end to end: a real gateway keeps interest leases in a
//! private redis-server for the symbols its WebSocket clients hold, and the
//! real ingest-binance in on-demand mode streams its pinned symbol plus the
//! allowed symbols someone wants, live on the mock Binance (which records every
//! SUBSCRIBE/UNSUBSCRIBE), dropping them after the grace once nobody wants them
//! (the last client leaves, or the gateway dies). With two gateways on one
//! Redis, a symbol stays streamed while either wants it: one gateway's clients
//! leaving, or the gateway being killed, releases only what the other does not
//! hold; every control message stays within Binance's limits.
//!
//! Needs the workspace's binaries built (`cargo build --bins`, as `make test` does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tickstream_mock_upstream::harness::{Ingestor, Upstreams};
use tickstream_mock_upstream::{BinanceOptions, MockWs};
use tickstream_testkit::{bin_path, wait_until, Service};
use tokio_tungstenite::tungstenite::Message;

/// Bound on any awaited condition.
const STEP: Duration = Duration::from_secs(15);
/// The ingestor's grace in this test.
const GRACE_MS: &str = "500";

fn binance() -> Ingestor {
    let bin = bin_path("ingest-binance");
    assert!(
        bin.exists(),
        "ingest-binance not built: run `cargo build --bins` first"
    );
    let bin: &'static str = Box::leak(bin.to_string_lossy().into_owned().into_boxed_str());
    Ingestor::new(bin, "BINANCE_WS_URL", "BINANCE_REST_URL")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A native client of `gw` subscribed to `symbols` (waits for `subscribed`).
async fn client(gw: &Service, symbols: &[&str]) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(gw.ws_url("/ws"))
        .await
        .unwrap();
    let req = json!({"event": "subscribe", "data": {"symbols": symbols}});
    ws.send(Message::text(req.to_string())).await.unwrap();
    tokio::time::timeout(STEP, async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "subscribed" {
                    return;
                }
            }
        }
        panic!("the gateway closed before subscribed");
    })
    .await
    .expect("no subscribed reply");
    ws
}

/// Every stream connection 0 of the mock was told to (un)subscribe, as `METHOD stream`.
fn controls(ws: &MockWs) -> Vec<String> {
    ws.controls(0)
        .into_iter()
        .flat_map(|c| {
            c.params
                .into_iter()
                .map(move |p| format!("{} {p}", c.method))
        })
        .collect()
}

async fn wait_control(ws: &MockWs, want: &str) -> Instant {
    wait_until(STEP, want, || async {
        controls(ws).iter().any(|c| c == want)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; controls: {:?}", controls(ws)));
    Instant::now()
}

#[tokio::test]
async fn binance_subscribes_wanted_symbols_and_unsubscribes_after_the_grace() {
    let binance = binance();
    let mock = MockWs::start_binance(BinanceOptions {
        ticker_template: binance.frame("ws_ticker_raw.json"),
        tick_interval: Some(Duration::from_millis(200)),
    })
    .await;
    let s = Upstreams::with_ws(mock)
        .await
        .spawn(
            &binance,
            &[
                ("SYMBOLS", "bnbbtc"),
                ("TICKSTREAM_UPSTREAM__ON_DEMAND", "true"),
                ("TICKSTREAM_UPSTREAM__ON_DEMAND_SYMBOLS", "ETHUSDT,SOLUSDT"),
                ("TICKSTREAM_UPSTREAM__ON_DEMAND_GRACE_MS", GRACE_MS),
            ],
        )
        .await;
    s.ws.wait_connections(1, STEP).await;
    assert_eq!(
        s.ws.path(0),
        "/stream?streams=bnbbtc@ticker/bnbbtc@trade",
        "pinned only at start"
    );
    let url = s.redis.url();
    let mut gw = Service::spawn("gateway", &[("REDIS_URL", url.as_str())])
        .await
        .unwrap();

    // A client wants ETHUSDT (allowed) and XRPUSDT (not allowed): only ETHUSDT is subscribed.
    let asked = Instant::now();
    let mut a = client(&gw, &["ETHUSDT", "XRPUSDT"]).await;
    let subscribed = wait_control(&s.ws, "SUBSCRIBE ethusdt@ticker").await;
    eprintln!(
        "on demand: SUBSCRIBE {:?} after the client subscribed",
        subscribed - asked
    );
    // The mock now sends ETHUSDT tickers: they reach the client through the gateway.
    tokio::time::timeout(STEP, async {
        while let Some(Ok(msg)) = a.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "price_update" && v["data"]["symbol"] == "ETHUSDT" {
                    return;
                }
            }
        }
    })
    .await
    .expect("no ETHUSDT tick reached the client");
    // `/symbols`: what the feed can serve (pinned + allowed) and what it streams now.
    let symbols_url = gw.http_url("/symbols");
    let feed = feed_in_symbols(&symbols_url, |f| {
        f["streaming"] == json!(["BNBBTC", "ETHUSDT"])
    })
    .await;
    assert_eq!(
        feed["can_serve"],
        json!(["BNBBTC", "ETHUSDT", "SOLUSDT"]),
        "{feed}"
    );
    assert_eq!(feed["on_demand"], true);
    assert_eq!(feed["mode"], "stream");

    // A second client of the same symbol, then both leave: unsubscribed after lease + grace.
    let b = client(&gw, &["ETHUSDT"]).await;
    a.close(None).await.unwrap();
    drop(a);
    drop(b);
    let left = Instant::now();
    let unsubscribed = wait_control(&s.ws, "UNSUBSCRIBE ethusdt@ticker").await;
    let after = unsubscribed - left;
    eprintln!("on demand: UNSUBSCRIBE {after:?} after the last client left");
    assert!(after < Duration::from_secs(10), "{after:?}");
    // Within the grace it was not dropped early: the lease alone is 3 s.
    assert!(after >= Duration::from_millis(500), "{after:?}");
    assert_eq!(
        s.ws.open_subscriptions(),
        vec![(
            0,
            vec!["bnbbtc@ticker".to_owned(), "bnbbtc@trade".to_owned()]
        )]
    );
    assert!(!controls(&s.ws).iter().any(|c| c.contains("xrpusdt")));
    feed_in_symbols(&symbols_url, |f| f["streaming"] == json!(["BNBBTC"])).await;

    // The gateway dies while a client holds SOLUSDT: the interest expires by itself.
    let _c = client(&gw, &["SOLUSDT"]).await;
    wait_control(&s.ws, "SUBSCRIBE solusdt@ticker").await;
    gw.kill().unwrap();
    let died = Instant::now();
    let dropped = wait_control(&s.ws, "UNSUBSCRIBE solusdt@ticker").await;
    eprintln!(
        "on demand: UNSUBSCRIBE {:?} after the gateway died",
        dropped - died
    );
    assert_eq!(s.ws.connections(), 1, "changed live, no reconnect");
}

/// Waits until `GET /symbols` shows the binance feed matching `pred`, and returns its entry.
async fn feed_in_symbols(url: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let pred = &pred;
    tickstream_testkit::wait_for(STEP, "/symbols to show the feed", || async move {
        let (_, body) = tickstream_testkit::http_get_json(url).await.ok()?;
        let feed = body["data"]["feeds"]["binance"].clone();
        pred(&feed).then_some(feed)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for the next `price_update` of `symbol` on a client (other frames are skipped).
async fn next_tick(ws: &mut Ws, symbol: &str) {
    tokio::time::timeout(STEP, async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "price_update" && v["data"]["symbol"] == symbol {
                    return;
                }
            }
        }
        panic!("the gateway closed the client before a {symbol} tick");
    })
    .await
    .unwrap_or_else(|_| panic!("no {symbol} tick reached the client"));
}

/// A client of `gw` subscribed to `symbols`, and the time from its subscribe to its first tick of `symbols[0]`.
async fn client_with_first_tick(gw: &Service, symbols: &[&str]) -> (Ws, Duration) {
    let asked = Instant::now();
    let mut ws = client(gw, symbols).await;
    next_tick(&mut ws, symbols[0]).await;
    (ws, asked.elapsed())
}

/// How often connection 0 was told `METHOD stream`.
fn count(ws: &MockWs, want: &str) -> usize {
    controls(ws).iter().filter(|c| *c == want).count()
}

/// The streams of every open connection, sorted, to compare as sets.
fn open_streams(ws: &MockWs) -> Vec<Vec<String>> {
    ws.open_subscriptions()
        .into_iter()
        .map(|(_, mut streams)| {
            streams.sort();
            streams
        })
        .collect()
}

#[tokio::test]
async fn two_gateways_share_interest_and_a_killed_gateway_releases_only_what_the_other_does_not_want(
) {
    let binance = binance();
    let mock = MockWs::start_binance(BinanceOptions {
        ticker_template: binance.frame("ws_ticker_raw.json"),
        tick_interval: Some(Duration::from_millis(200)),
    })
    .await;
    let s = Upstreams::with_ws(mock)
        .await
        .spawn(
            &binance,
            &[
                ("SYMBOLS", "bnbbtc"),
                ("TICKSTREAM_UPSTREAM__ON_DEMAND", "true"),
                (
                    "TICKSTREAM_UPSTREAM__ON_DEMAND_SYMBOLS",
                    "ETHUSDT,SOLUSDT,ADAUSDT,XRPUSDT,DOGEUSDT,DOTUSDT,LTCUSDT,LINKUSDT,TRXUSDT,AVAXUSDT,ATOMUSDT",
                ),
                ("TICKSTREAM_UPSTREAM__ON_DEMAND_GRACE_MS", GRACE_MS),
            ],
        )
        .await;
    s.ws.wait_connections(1, STEP).await;
    let url = s.redis.url();
    let gw1 = Service::spawn("gateway", &[("REDIS_URL", url.as_str())])
        .await
        .unwrap();
    let mut gw2 = Service::spawn("gateway", &[("REDIS_URL", url.as_str())])
        .await
        .unwrap();

    // A client of gateway 1 wants ETHUSDT: subscribed upstream, its first tick arrives.
    let (mut a1, first) = client_with_first_tick(&gw1, &["ETHUSDT"]).await;
    eprintln!("on demand, two gateways: first ETHUSDT tick {first:?} after the client subscribed");
    assert!(first < Duration::from_secs(3), "{first:?}");
    // A client of gateway 2 wants ETHUSDT too and SOLUSDT: only SOLUSDT is new upstream.
    let (b1, first) = client_with_first_tick(&gw2, &["SOLUSDT", "ETHUSDT"]).await;
    eprintln!("on demand, two gateways: first SOLUSDT tick {first:?} after the client subscribed");
    assert_eq!(count(&s.ws, "SUBSCRIBE ethusdt@ticker"), 1);
    // Gateway 1 also serves ADAUSDT for a while.
    let (a2, _) = client_with_first_tick(&gw1, &["ADAUSDT"]).await;

    // Gateway 1's clients leave. ADAUSDT (wanted by nobody else) is dropped;
    // ETHUSDT stays because gateway 2 still wants it. Both leases expire
    // together, so ADAUSDT's unsubscribe proves ETHUSDT's moment has passed.
    a1.close(None).await.unwrap();
    drop(a1);
    drop(a2);
    let left = Instant::now();
    let dropped = wait_control(&s.ws, "UNSUBSCRIBE adausdt@ticker").await;
    eprintln!(
        "on demand, two gateways: UNSUBSCRIBE adausdt {:?} after gateway 1's clients left",
        dropped - left
    );
    assert_eq!(
        count(&s.ws, "UNSUBSCRIBE ethusdt@ticker"),
        0,
        "{:?}",
        controls(&s.ws)
    );
    let mut b1 = b1;
    next_tick(&mut b1, "ETHUSDT").await;

    // Gateway 1 wants SOLUSDT again; gateway 2 is killed with its client on
    // it. ETHUSDT (only gateway 2 wanted it) is released when its leases
    // expire; SOLUSDT is kept for gateway 1.
    let (mut a3, _) = client_with_first_tick(&gw1, &["SOLUSDT"]).await;
    gw2.kill().unwrap();
    let killed = Instant::now();
    let released = wait_control(&s.ws, "UNSUBSCRIBE ethusdt@ticker").await;
    let release = released - killed;
    eprintln!(
        "on demand, two gateways: UNSUBSCRIBE ethusdt {release:?} after gateway 2 was killed"
    );
    assert!(release >= Duration::from_millis(500), "{release:?}");
    assert!(release < Duration::from_secs(10), "{release:?}");
    // SOLUSDT still streams to gateway 1's client after the release.
    let gw3 = Service::spawn("gateway", &[("REDIS_URL", url.as_str())])
        .await
        .unwrap();
    next_tick(&mut a3, "SOLUSDT").await;
    assert_eq!(
        count(&s.ws, "UNSUBSCRIBE solusdt@ticker"),
        0,
        "{:?}",
        controls(&s.ws)
    );
    assert_eq!(
        open_streams(&s.ws),
        vec![vec![
            "bnbbtc@ticker".to_owned(),
            "bnbbtc@trade".to_owned(),
            "solusdt@ticker".to_owned(),
            "solusdt@trade".to_owned(),
        ]]
    );
    drop(a3);

    // A burst: eight clients, alternating between the gateways, each wanting
    // another symbol at once; every one is subscribed, paced.
    let burst = [
        "XRPUSDT", "DOGEUSDT", "DOTUSDT", "LTCUSDT", "LINKUSDT", "TRXUSDT", "AVAXUSDT", "ATOMUSDT",
    ];
    let mut burst_clients = Vec::new();
    for (i, symbol) in burst.iter().enumerate() {
        let gw = if i % 2 == 0 { &gw1 } else { &gw3 };
        burst_clients.push(client(gw, &[symbol]).await);
    }
    for symbol in burst {
        wait_control(
            &s.ws,
            &format!("SUBSCRIBE {}@ticker", symbol.to_ascii_lowercase()),
        )
        .await;
    }
    drop(burst_clients);

    // Within Binance's limits all along: ≤ 5 incoming messages in any second
    // (the mock also closes a connection past it), ≤ 1024 streams, no refusal.
    assert_eq!(s.ws.rate_limited(), Vec::<usize>::new());
    let times: Vec<Instant> = s.ws.controls(0).iter().map(|c| c.at).collect();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(1))
            .count();
        assert!(in_window <= 5, "{in_window} control messages within 1 s");
    }
    // Paced: never two control messages closer than ingest-binance's 300 ms.
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(290),
            "{gap:?} between control messages"
        );
    }
    assert!(open_streams(&s.ws).iter().all(|st| st.len() <= 1024));
    assert_eq!(
        s.metric("tickstream_upstream_error_messages_total").await,
        Some(0.0)
    );
    assert_eq!(s.ws.connections(), 1, "changed live, no reconnect");
    eprintln!(
        "on demand, two gateways: {} control messages: {:?}",
        times.len(),
        controls(&s.ws)
    );
}
