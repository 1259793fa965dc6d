//! An upstream that floods: ingest-coinbase, the real binary, against a mock
//! Coinbase feed that answers the subscribe and then writes real-shaped
//! `ticker` messages (mixed with garbage frames) as fast as the socket takes
//! them: an upstream that floods never takes the ingestor down.
//!
//! The mock is written here rather than with `tickstream-mock-upstream`'s
//! `MockWs`, whose frames go one by one through a command queue with a flush
//! each: it cannot write faster than the ingestor reads, which a flood must.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tickstream_mock_upstream::harness::{
    cached_tick, metric, unused_http_url, wait_health, wait_tick, Ingestor,
};
use tickstream_testkit::{http_get_json, RedisServer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Any single expected event.
const STEP: Duration = Duration::from_secs(10);
/// How long the mock floods.
const FLOOD_FOR: Duration = Duration::from_secs(3);
/// Most frames the flood writes, whatever the time.
const FLOOD_MAX_FRAMES: u64 = 500_000;
/// One frame in this many is garbage.
const GARBAGE_EVERY: u64 = 97;
/// Frames fed to the socket between flushes: one write syscall per batch.
const FLUSH_EVERY: u64 = 256;
/// Every `/health` during the flood must answer within this.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How often `/health` and RSS are probed during the flood.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Growth of the ingestor's RSS over its pre-flood size that fails the test.
/// An ingestor that reads only as fast as it publishes pushes back through
/// TCP and stays flat; one that read ahead into a queue would take the flood
/// at socket speed (hundreds of MB in `FLOOD_FOR`) and cross this.
const RSS_GROWTH_LIMIT_KIB: u64 = 64 * 1024;
/// Time for the ingestor to work off what the kernel buffered when the flood stops.
const CATCH_UP: Duration = Duration::from_secs(60);
const PRODUCTS: [&str; 3] = ["ETH-USD", "BTC-USD", "SOL-USD"];
/// ingest-coinbase on the three products, against the flood upstream below.
const COINBASE: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-coinbase"),
    "COINBASE_WS_URL",
    "COINBASE_REST_URL",
)
.with_env(&[("SYMBOLS", "eth-usd,btc-usd,sol-usd")]);

/// The documented ticker (test_data/ws_ticker.json) for `product` with `sequence` and `price`.
struct TickerTemplate(String);

impl TickerTemplate {
    fn new() -> Self {
        let raw = COINBASE.frame("ws_ticker.json");
        for needle in ["37475248783", "\"price\":\"1285.22\"", "ETH-USD"] {
            assert_eq!(raw.matches(needle).count(), 1, "{needle} in {raw}");
        }
        Self(
            raw.replace("37475248783", "@SEQ@")
                .replace("\"price\":\"1285.22\"", "\"price\":\"@PRICE@\"")
                .replace("ETH-USD", "@PRODUCT@"),
        )
    }

    fn render(&self, product: &str, sequence: u64, price: &str) -> String {
        self.0
            .replace("@SEQ@", &sequence.to_string())
            .replace("@PRICE@", price)
            .replace("@PRODUCT@", product)
    }
}

/// What the flood wrote.
#[derive(Debug, Default)]
struct FloodReport {
    /// Frames written (tickers + garbage).
    frames: u64,
    /// Garbage frames among them; each must count as one parse error.
    garbage: u64,
    /// Bytes of payload written.
    bytes: u64,
    /// Tickers written per product, in `PRODUCTS` order.
    tickers: [u64; PRODUCTS.len()],
    /// The last price written per product, as sent and as a number.
    last_price: [(String, f64); PRODUCTS.len()],
    /// How long it ran.
    elapsed: Duration,
}

/// What the test asks the (first) connection to do.
enum Cmd {
    /// Flood, then report.
    Flood(oneshot::Sender<FloodReport>),
    /// Send one text frame.
    Send(String),
}

/// A Coinbase-shaped WebSocket upstream on port 0.
struct FloodUpstream {
    addr: std::net::SocketAddr,
    /// Connections accepted (the flood must not make the ingestor reconnect).
    connections: Arc<AtomicUsize>,
    /// Commands for the first connection.
    cmds: mpsc::Sender<Cmd>,
    /// The first connection's subscribe frame, once received.
    subscribed: Option<oneshot::Receiver<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FloodUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FloodUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let (cmds, rx) = mpsc::channel(16);
        let (sub_tx, sub_rx) = oneshot::channel();
        let first = Arc::new(Mutex::new(Some((rx, sub_tx))));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let mine = first.lock().unwrap().take();
                tokio::spawn(serve(stream, mine));
            }
        });
        Self {
            addr,
            connections,
            cmds,
            subscribed: Some(sub_rx),
            task,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

/// One connection: handshake, answer the subscribe, then obey the test (first connection) or idle.
async fn serve(
    stream: tokio::net::TcpStream,
    first: Option<(mpsc::Receiver<Cmd>, oneshot::Sender<String>)>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let sub = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"subscribe\"") => break t.to_string(),
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    // Coinbase acknowledges a subscribe with the resulting subscriptions.
    if ws
        .send(Message::text(COINBASE.frame("ws_subscriptions.json")))
        .await
        .is_err()
    {
        return;
    }
    let Some((mut cmds, subscribed)) = first else {
        // A reconnect: keep it open and quiet.
        while let Some(Ok(_)) = ws.next().await {}
        return;
    };
    let _ = subscribed.send(sub);
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Flood(done)) => {
                    let report = flood(&mut ws).await;
                    let _ = done.send(report);
                }
                Some(Cmd::Send(text)) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Writes tickers round-robin over `PRODUCTS`, one garbage frame in `GARBAGE_EVERY`, as fast as the socket takes them.
async fn flood(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> FloodReport {
    let template = TickerTemplate::new();
    let good = template.render("ETH-USD", 1, "1.00");
    // Each is one parse error: not JSON, truncated, a ticker without its
    // required price, an unknown message type, a binary frame that is not UTF-8.
    let garbage: Vec<Message> = vec![
        Message::text("{not json"),
        Message::text(good[..good.len() - 20].to_owned()),
        Message::text(good.replace("\"price\":\"1.00\",", "")),
        Message::text(good.replace("\"type\":\"ticker\"", "\"type\":\"tickerV2\"")),
        Message::binary(vec![0xff, 0xfe, 0x00, 0x80]),
    ];
    let mut r = FloodReport::default();
    let started = Instant::now();
    // Sequences start above the 1 used for `good`, and rise with every frame.
    let mut n: u64 = 1;
    while r.frames < FLOOD_MAX_FRAMES && started.elapsed() < FLOOD_FOR {
        n += 1;
        let msg = if n % GARBAGE_EVERY == 0 {
            r.garbage += 1;
            garbage[(r.garbage as usize) % garbage.len()].clone()
        } else {
            let p = (n as usize) % PRODUCTS.len();
            // A different price every frame, so only the very last one matches at the end.
            let price = format!("{}.{:02}", 1000 + (n / 100) % 100_000, n % 100);
            r.tickers[p] += 1;
            r.last_price[p] = (price.clone(), price.parse().unwrap());
            Message::text(template.render(PRODUCTS[p], n, &price))
        };
        r.bytes += msg.len() as u64;
        r.frames += 1;
        // feed() buffers; the socket pushes back through flush() once the ingestor stops keeping up.
        ws.feed(msg).await.unwrap();
        if r.frames % FLUSH_EVERY == 0 {
            ws.flush().await.unwrap();
        }
    }
    ws.flush().await.unwrap();
    r.elapsed = started.elapsed();
    r
}

/// `VmRSS` of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// What the probe saw while the flood ran.
#[derive(Debug, Default)]
struct Probes {
    /// `/health` requests answered, and the slowest.
    health_ok: u64,
    slowest_health: Duration,
    /// Largest RSS seen, KiB.
    rss_max_kib: u64,
}

#[tokio::test]
async fn a_flooding_upstream_never_takes_the_ingestor_down() {
    let redis = RedisServer::start().await.unwrap();
    let mut upstream = FloodUpstream::start().await;
    let mut svc = COINBASE
        .spawn(&redis, &upstream.url(), &unused_http_url(), &[])
        .await;
    let sub = tokio::time::timeout(STEP, upstream.subscribed.take().unwrap())
        .await
        .expect("the ingestor subscribed in time")
        .unwrap();
    for p in PRODUCTS {
        assert!(sub.contains(p), "{p} in {sub}");
    }
    wait_health(&svc, STEP, |code, h| {
        code == 200 && h["status"] == "healthy"
    })
    .await;
    let rss_before = rss_kib(svc.pid());

    // Probe /health (each within HEALTH_TIMEOUT) and RSS for as long as the flood runs.
    let flooding = Arc::new(AtomicBool::new(true));
    let probe = {
        let (url, pid, flooding) = (svc.http_url("/health"), svc.pid(), flooding.clone());
        tokio::spawn(async move {
            let mut p = Probes::default();
            let mut every = tokio::time::interval(PROBE_EVERY);
            while flooding.load(Ordering::Relaxed) {
                every.tick().await;
                p.rss_max_kib = p.rss_max_kib.max(rss_kib(pid));
                let asked = Instant::now();
                let answer = tokio::time::timeout(HEALTH_TIMEOUT, http_get_json(&url))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("/health took over {HEALTH_TIMEOUT:?} during the flood")
                    })
                    .unwrap();
                let took = asked.elapsed();
                assert_eq!(answer.0, 200, "/health during the flood: {answer:?}");
                p.health_ok += 1;
                p.slowest_health = p.slowest_health.max(took);
            }
            p
        })
    };
    let (done_tx, done_rx) = oneshot::channel();
    upstream.cmds.send(Cmd::Flood(done_tx)).await.unwrap();
    let flood = tokio::time::timeout(FLOOD_FOR + STEP, done_rx)
        .await
        .expect("the flood ended")
        .unwrap();

    // What the kernel buffered is worked off: each product's cache holds the very last ticker sent.
    for (i, p) in PRODUCTS.iter().enumerate() {
        let (ref text, price) = flood.last_price[i];
        let t = wait_tick(&redis, p, CATCH_UP, |t| t["seq"] == flood.tickers[i]).await;
        assert_eq!(
            t["price"], price,
            "{p}: last ticker sent had price {text}; cache: {t}"
        );
        assert_eq!(t["source"], "coinbase");
    }
    flooding.store(false, Ordering::Relaxed);
    let probes = probe.await.unwrap();
    eprintln!(
        "flood: {} frames ({} garbage, {:.1} MB) in {:?} = {:.0} frames/s; /health answered {} times, slowest {:?}; RSS {} KiB before, {} KiB max",
        flood.frames,
        flood.garbage,
        flood.bytes as f64 / 1e6,
        flood.elapsed,
        flood.frames as f64 / flood.elapsed.as_secs_f64(),
        probes.health_ok,
        probes.slowest_health,
        rss_before,
        probes.rss_max_kib
    );
    // Kernel buffers alone take thousands; the ingestor's own pace sets the rest.
    assert!(flood.frames > 3_000, "too small to be a flood: {flood:?}");
    assert!(probes.health_ok > 0, "/health was probed during the flood");
    assert!(
        probes.rss_max_kib <= rss_before + RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {rss_before} KiB to {} KiB while {:.1} MB were flooded in",
        probes.rss_max_kib,
        flood.bytes as f64 / 1e6
    );

    // Every frame was read and every garbage frame counted, on the one connection.
    assert_eq!(
        metric(
            &svc,
            &COINBASE.series("tickstream_upstream_parse_errors_total")
        )
        .await,
        Some(flood.garbage as f64)
    );
    assert_eq!(
        metric(&svc, &COINBASE.series("tickstream_upstream_messages_total")).await,
        // + the subscriptions acknowledgement.
        Some((flood.frames + 1) as f64)
    );
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        1,
        "the flood forced a reconnect"
    );
    assert_eq!(
        svc.wait_exit(Duration::ZERO).await,
        None,
        "the ingestor exited"
    );

    // And it goes on serving normally.
    let next = flood.tickers[0] + 1;
    let after = TickerTemplate::new().render(PRODUCTS[0], 10 * FLOOD_MAX_FRAMES, "4321.5");
    upstream.cmds.send(Cmd::Send(after)).await.unwrap();
    let t = wait_tick(&redis, PRODUCTS[0], STEP, |t| t["seq"] == next).await;
    assert_eq!(t["price"], 4321.5, "{t}");
    let (code, health) = wait_health(&svc, STEP, |code, h| {
        code == 200 && h["status"] == "healthy"
    })
    .await;
    assert_eq!(code, 200, "{health}");
    assert!(cached_tick(&redis, PRODUCTS[1]).await.is_some());
}
