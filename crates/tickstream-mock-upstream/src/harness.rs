//! What every venue ingestor's suite needs: the ingestor started on a private
//! Redis and mock upstreams ([`Ingestor`], [`Upstreams`], [`Setup`]), and
//! assertions on the cached tick in Redis and ticks on the pub/sub channel
//! (`tickstream-testkit`'s, which the simulator's suite uses too, re-exported
//! here) and on values of `/metrics` and `/health` — each awaited, never
//! slept for.
//!
//! A suite says only what is its venue's:
//!
//! ```text
//! const BINANCE: Ingestor = Ingestor::new(
//!     env!("CARGO_BIN_EXE_ingest-binance"),
//!     "BINANCE_WS_URL",
//!     "BINANCE_REST_URL",
//! )
//! .with_env(&[("SYMBOLS", "bnbbtc")]);
//!
//! let s = BINANCE.start(&[("TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS", "500")]).await;
//! s.ws.wait_connections(1, STEP).await;
//! s.ws.send(0, &s.frame("ws_ticker_combined.json")).await;
//! s.wait_metric("tickstream_upstream_messages_total", STEP, |v| v == 1.0).await;
//! ```
//!
//! The ingestor's name comes from its binary (`ingest-<name>`), and with it
//! its fixtures (`services/ingest-<name>/test_data/`) and its metric series
//! (`{source="<name>"}`), so a suite never spells them out.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tickstream_testkit::{http_get_text, wait_for, wait_until, RedisServer, Service};

/// What an ingestor wrote to Redis, and the environment helper: from the testkit, where the simulator's suite uses them too.
pub use tickstream_testkit::{cached_tick, env_with, wait_tick, TickChannel};

use crate::{MockRest, MockWs};

/// What every suite runs its ingestor with unless a test says otherwise:
/// quick reconnects, and no REST fallback (the tests of the fallback turn it on).
pub const TEST_ENV: &[(&str, &str)] = &[
    ("TICKSTREAM_UPSTREAM__RECONNECT_INITIAL_MS", "50"),
    ("TICKSTREAM_UPSTREAM__RECONNECT_MAX_MS", "200"),
    ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "0"),
];

/// How a suite runs its venue's ingestor: the binary, the variables that
/// point it at the mocks, and the suite's own defaults (symbols, keys, timings).
#[derive(Debug, Clone, Copy)]
pub struct Ingestor {
    /// Path of the binary, `env!("CARGO_BIN_EXE_ingest-<venue>")`, so cargo has built it.
    pub bin: &'static str,
    /// The variable naming its WebSocket URL (`BINANCE_WS_URL`).
    pub ws_env: &'static str,
    /// The variable naming its REST URL (`BINANCE_REST_URL`).
    pub rest_env: &'static str,
    /// Appended to the mock WebSocket's URL (Twelve Data's `/v1/quotes/price`); empty for most.
    pub ws_path: &'static str,
    /// The suite's defaults, over [`TEST_ENV`]; each test's extras go over these.
    pub env: &'static [(&'static str, &'static str)],
    /// Whether the venue names its streams in the connection URL (Binance), so a
    /// connection is subscribed once open; otherwise it sends a `subscribe` frame first.
    pub url_subscribes: bool,
}

impl Ingestor {
    /// The ingestor `bin`, pointed at the mocks through `ws_env` and `rest_env`.
    pub const fn new(bin: &'static str, ws_env: &'static str, rest_env: &'static str) -> Self {
        Self {
            bin,
            ws_env,
            rest_env,
            ws_path: "",
            env: &[],
            url_subscribes: false,
        }
    }

    /// The same for a venue whose connection URL names its streams (no subscribe frame).
    pub const fn with_url_subscriptions(self) -> Self {
        Self {
            url_subscribes: true,
            ..self
        }
    }

    /// The same with the suite's defaults (`SYMBOLS`, an API key, a heartbeat).
    pub const fn with_env(self, env: &'static [(&'static str, &'static str)]) -> Self {
        Self { env, ..self }
    }

    /// The same, connecting to `path` on the mock WebSocket.
    pub const fn with_ws_path(self, ws_path: &'static str) -> Self {
        Self { ws_path, ..self }
    }

    /// The ingestor's name, from its binary (`binance` for `ingest-binance`):
    /// its ticks' `source` and its metrics' `source` label.
    pub fn source(&self) -> &'static str {
        let file = self.bin.rsplit(['/', '\\']).next().unwrap_or(self.bin);
        let file = file.strip_suffix(".exe").unwrap_or(file);
        file.strip_prefix("ingest-").unwrap_or(file)
    }

    /// `services/ingest-<source>`: every upstream is one folder with its `test_data/` there.
    fn service_dir(&self) -> String {
        format!(
            "{}/../../services/ingest-{}",
            env!("CARGO_MANIFEST_DIR"),
            self.source()
        )
    }

    /// The venue's documented payload `test_data/<name>`, as written.
    pub fn fixture(&self, name: &str) -> String {
        crate::fixture(&self.service_dir(), name)
    }

    /// The venue's documented payload `test_data/<name>` on one line, as the venue sends frames.
    pub fn frame(&self, name: &str) -> String {
        crate::fixture_frame(&self.service_dir(), name)
    }

    /// The metric series `name{source="<source>"}`, as `/metrics` exports it.
    pub fn series(&self, name: &str) -> String {
        format!("{name}{{source=\"{}\"}}", self.source())
    }

    /// The whole path upstream → ingestor → Redis → gateway → client: starts
    /// the ingestor and a gateway client subscribed to `symbol`, and once the
    /// ingestor has subscribed upstream, sends the frame `test_data/<frame>`;
    /// returns the tick the client receives.
    pub async fn tick_through_gateway(
        &self,
        symbol: &str,
        frame: &str,
        timeout: Duration,
    ) -> Value {
        let s = self.start(&[]).await;
        s.ws.wait_connections(1, timeout).await;
        s.ws.wait_received(0, "subscribe", timeout).await;
        let mut client = GatewayClient::start(&s.redis, symbol).await;
        s.ws.send(0, &self.frame(frame)).await;
        client.next_tick(symbol, timeout, |_| true).await
    }

    /// The trades twin of [`Ingestor::tick_through_gateway`]: starts the ingestor and a
    /// gateway client subscribed to the channel `trades:{symbol}`, sends the frame
    /// `test_data/<frame>` once the ingestor has subscribed upstream and takes the `trade`
    /// the client receives; then restarts the ingestor on the same Redis, sends the frame
    /// again on its new connection and takes that trade too. Returns both, so a suite
    /// checks the fields and that the trade seq continued across the restart.
    pub async fn trades_through_gateway(
        &self,
        symbol: &str,
        frame: &str,
        timeout: Duration,
    ) -> (Value, Value) {
        let mut s = self.start(&[]).await;
        let channel = format!("trades:{symbol}");
        let mut client = GatewayClient::start_channels(&s.redis, &[channel.as_str()]).await;
        let mut trades = Vec::new();
        for conn in 0..2 {
            if conn > 0 {
                s.svc
                    .restart()
                    .await
                    .unwrap_or_else(|e| panic!("{} did not restart: {e:#}", self.bin));
            }
            s.ws.wait_connections(conn + 1, timeout).await;
            if !self.url_subscribes {
                s.ws.wait_received(conn, "subscribe", timeout).await;
            }
            s.ws.send(conn, &self.frame(frame)).await;
            trades.push(client.next_trade(symbol, timeout, |_| true).await);
        }
        let second = trades.pop().unwrap_or_default();
        let first = trades.pop().unwrap_or_default();
        (first, second)
    }

    /// On-demand mode end to end, the same steps for every venue: starts the
    /// ingestor on `upstreams` in on-demand mode (pinned `case.pinned`, allowed
    /// `case.allowed`, grace [`ON_DEMAND_GRACE_MS`]) and a real gateway; a client
    /// subscribes to `case.wanted` → the mock records `case.subscribe` on the open
    /// connection → the mock sends `case.frame` → its tick reaches Redis and the
    /// client, and the gateway's `/symbols` shows the feed streaming it; the client
    /// leaves → the mock records `case.unsubscribe` once the gateway's lease and the
    /// grace have passed, and `/symbols` shows it no longer streamed (still servable). Every frame is compared as JSON;
    /// nothing reconnects. Returns the measured figures (also printed).
    pub async fn on_demand_round_trip(
        &self,
        upstreams: Upstreams,
        case: OnDemandCase,
        timeout: Duration,
    ) -> OnDemandFigures {
        let env = [
            ("SYMBOLS", case.pinned),
            ("TICKSTREAM_UPSTREAM__ON_DEMAND", "true"),
            ("TICKSTREAM_UPSTREAM__ON_DEMAND_SYMBOLS", case.allowed),
            (
                "TICKSTREAM_UPSTREAM__ON_DEMAND_GRACE_MS",
                ON_DEMAND_GRACE_MS,
            ),
        ];
        let s = upstreams.spawn(self, &env).await;
        s.ws.wait_connections(1, timeout).await;
        if !self.url_subscribes {
            s.ws.wait_received(0, "subscribe", timeout).await;
        }
        let frames = |ws: &MockWs| -> Vec<Value> {
            ws.received(0)
                .iter()
                .filter_map(|f| serde_json::from_str(f).ok())
                .collect()
        };
        let before = frames(&s.ws);
        assert!(
            !before.contains(&case.subscribe),
            "{} subscribed to {} before anyone wanted it: {before:?}",
            self.bin,
            case.wanted
        );
        let asked = Instant::now();
        let mut client = GatewayClient::start(&s.redis, case.wanted).await;
        let ws = &s.ws;
        let sub = &case.subscribe;
        wait_until(timeout, "the on-demand subscribe", || async move {
            frames(ws).contains(sub)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; received: {:?}", s.ws.received(0)));
        let subscribe = asked.elapsed();
        let sent = Instant::now();
        s.ws.send(0, &case.frame).await;
        let source = self.source();
        s.wait_tick(case.wanted, timeout, |t| t["source"] == source)
            .await;
        let in_redis = sent.elapsed();
        client.next_tick(case.wanted, timeout, |_| true).await;
        let first_tick = asked.elapsed();

        // `/symbols` shows the feed streaming the wanted symbol, among those it can serve.
        let wanted = case.wanted;
        let url = client.gateway().http_url("/symbols");
        let url = &url;
        let feed = wait_for(
            timeout,
            "/symbols to show the wanted symbol streaming",
            || async move {
                let (_, body) = tickstream_testkit::http_get_json(url).await.ok()?;
                let feed = body["data"]["feeds"][source].clone();
                let streaming = feed["streaming"].as_array()?;
                streaming.iter().any(|s| s == wanted).then_some(feed)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(feed["on_demand"], true, "{feed}");
        let can_serve = feed["can_serve"].as_array().cloned().unwrap_or_default();
        assert!(can_serve.iter().any(|s| s == wanted), "{feed}");

        client.leave().await;
        let left = Instant::now();
        let unsub = &case.unsubscribe;
        wait_until(timeout, "the on-demand unsubscribe", || async move {
            frames(ws).contains(unsub)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; received: {:?}", s.ws.received(0)));
        let unsubscribe = left.elapsed();
        assert_eq!(s.ws.connections(), 1, "changed live, no reconnect");
        // And `/symbols` no longer shows it streaming, while it can still be served.
        wait_for(
            timeout,
            "/symbols to show the symbol dropped",
            || async move {
                let (_, body) = tickstream_testkit::http_get_json(url).await.ok()?;
                let feed = &body["data"]["feeds"][source];
                let streaming = feed["streaming"].as_array()?;
                let can_serve = feed["can_serve"].as_array()?;
                (!streaming.iter().any(|s| s == wanted) && can_serve.iter().any(|s| s == wanted))
                    .then_some(())
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let figures = OnDemandFigures {
            subscribe,
            in_redis,
            first_tick,
            unsubscribe,
        };
        eprintln!("{} on demand: {figures:?}", self.source());
        figures
    }

    /// Starts a private Redis and mock upstreams, then the ingestor on them
    /// with `extra` over the suite's environment.
    pub async fn start(&self, extra: &[(&str, &str)]) -> Setup {
        Upstreams::start().await.spawn(self, extra).await
    }

    /// Runs the ingestor on `redis` and the given upstream URLs (for a test's
    /// own upstream), with `extra` over the suite's environment.
    pub async fn spawn(
        &self,
        redis: &RedisServer,
        ws_url: &str,
        rest_url: &str,
        extra: &[(&str, &str)],
    ) -> Service {
        let redis_url = redis.url();
        let base = vec![
            ("REDIS_URL", redis_url.as_str()),
            (self.ws_env, ws_url),
            (self.rest_env, rest_url),
        ];
        let env = env_with(env_with(env_with(base, TEST_ENV), self.env), extra);
        Service::spawn_path(Path::new(self.bin), &env)
            .await
            .unwrap_or_else(|e| panic!("{} did not start: {e:#}", self.bin))
    }

    /// Starts the ingestor on the shipped `deploy/tickstream.example.toml`
    /// (its real upstream URLs overridden so the test stays on loopback; none
    /// of the suite's defaults, so the file's own values are checked) and
    /// fails the test if the file is rejected.
    pub async fn assert_accepts_example_config(&self) {
        let redis = start_redis().await;
        let ws = MockWs::start().await;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/tickstream.example.toml"
        );
        let (redis_url, ws_url, rest_url) = (redis.url(), ws.url(), unused_http_url());
        let svc = Service::spawn_path(
            Path::new(self.bin),
            &[
                ("TICKSTREAM_CONFIG", path),
                ("REDIS_URL", redis_url.as_str()),
                (self.ws_env, ws_url.as_str()),
                (self.rest_env, rest_url.as_str()),
            ],
        )
        .await;
        assert!(svc.is_ok(), "{} rejected {path}: {:?}", self.bin, svc.err());
    }
}

/// The grace of [`Ingestor::on_demand_round_trip`]: short, so the test is quick.
pub const ON_DEMAND_GRACE_MS: &str = "500";

/// One venue's on-demand case: what to stream, what a client wants, and the
/// venue's documented control frames for it.
#[derive(Debug, Clone)]
pub struct OnDemandCase {
    /// `SYMBOLS`: streamed always.
    pub pinned: &'static str,
    /// `upstream.on_demand_symbols`, in the venue's notation.
    pub allowed: &'static str,
    /// The tick symbol a gateway client subscribes to.
    pub wanted: &'static str,
    /// A documented data frame of `wanted`, sent once the subscribe is seen.
    pub frame: String,
    /// The control frame expected when `wanted` is added.
    pub subscribe: Value,
    /// The control frame expected when it is dropped.
    pub unsubscribe: Value,
}

/// What [`Ingestor::on_demand_round_trip`] measured.
#[derive(Debug, Clone, Copy)]
pub struct OnDemandFigures {
    /// From the client's subscribe to the venue's subscribe frame at the mock.
    pub subscribe: Duration,
    /// From the mock sending the first frame to its tick in Redis.
    pub in_redis: Duration,
    /// From the client's subscribe to its first tick (the mock sends at once).
    pub first_tick: Duration,
    /// From the client leaving to the unsubscribe frame at the mock (lease + grace).
    pub unsubscribe: Duration,
}

/// A test's private Redis and mock upstreams before its ingestor starts, so
/// the test can script them first (replies, refused connections, REST answers).
pub struct Upstreams {
    /// The test's own `redis-server`.
    pub redis: RedisServer,
    /// The mock WebSocket upstream.
    pub ws: MockWs,
    /// The mock REST upstream (the fallback's).
    pub rest: MockRest,
}

impl Upstreams {
    /// A fresh Redis, a plain [`MockWs`] and a [`MockRest`].
    pub async fn start() -> Upstreams {
        Self::with_ws(MockWs::start().await).await
    }

    /// A fresh Redis and [`MockRest`] around `ws` (e.g. [`MockWs::start_binance`]).
    pub async fn with_ws(ws: MockWs) -> Upstreams {
        Upstreams {
            redis: start_redis().await,
            ws,
            rest: MockRest::start().await,
        }
    }

    /// Starts `ingestor` on these upstreams with `extra` over the suite's environment.
    pub async fn spawn(self, ingestor: &Ingestor, extra: &[(&str, &str)]) -> Setup {
        let ws_url = format!("{}{}", self.ws.url(), ingestor.ws_path);
        let svc = ingestor
            .spawn(&self.redis, &ws_url, &self.rest.url(), extra)
            .await;
        Setup {
            redis: self.redis,
            ws: self.ws,
            rest: self.rest,
            svc,
            ingestor: *ingestor,
        }
    }
}

/// One ingestor under test with everything it talks to, all private to the test.
pub struct Setup {
    /// Its Redis.
    pub redis: RedisServer,
    /// Its WebSocket upstream.
    pub ws: MockWs,
    /// Its REST upstream.
    pub rest: MockRest,
    /// The ingestor process (killed on drop).
    pub svc: Service,
    /// How it was started: its name, fixtures and metric series.
    pub ingestor: Ingestor,
}

impl Setup {
    /// The venue's documented payload `test_data/<name>` on one line.
    pub fn frame(&self, name: &str) -> String {
        self.ingestor.frame(name)
    }

    /// The venue's documented payload `test_data/<name>`, as written.
    pub fn fixture(&self, name: &str) -> String {
        self.ingestor.fixture(name)
    }

    /// The ingestor's value of the metric `name` (its own `source` series).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        metric(&self.svc, &self.ingestor.series(name)).await
    }

    /// Waits until the ingestor's metric `name` satisfies `pred`, and returns the value.
    pub async fn wait_metric(
        &self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        wait_metric(&self.svc, &self.ingestor.series(name), timeout, pred).await
    }

    /// Waits until `price:{symbol}` holds a tick for which `pred` holds, and returns it.
    pub async fn wait_tick(
        &self,
        symbol: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_tick(&self.redis, symbol, timeout, pred).await
    }

    /// Waits until `price:{symbol}` holds a tick from the REST fallback (`<source>-rest`).
    pub async fn wait_rest_tick(&self, symbol: &str, timeout: Duration) -> Value {
        let rest = format!("{}-rest", self.ingestor.source());
        wait_tick(&self.redis, symbol, timeout, |t| {
            t["source"] == rest.as_str()
        })
        .await
    }

    /// Cuts the stream for good: the mock refuses new connections and drops connection 0.
    pub async fn cut_stream(&self) {
        self.ws.refuse(true);
        self.ws.drop_conn(0).await;
    }

    /// Lets the stream come back: the mock accepts again, the ingestor has
    /// made `connections` in all, and its REST fallback has stopped.
    pub async fn restore_stream(&self, connections: usize, timeout: Duration) {
        self.ws.refuse(false);
        self.ws.wait_connections(connections, timeout).await;
        self.wait_metric("tickstream_upstream_fallback_active", timeout, |v| v == 0.0)
            .await;
    }

    /// Asserts the REST fallback, engaged now (its feed status says `rest`, each of
    /// `prefixes` has been polled), is released when the stream returns: the mock
    /// accepts again and the ingestor has made `connections` in all, its fallback
    /// stops, its feed status says `stream` again, and the mock's request log under
    /// each prefix no longer grows — checked once two more of the ingestor's
    /// periodic feed statuses have been published (at least one heartbeat period,
    /// several REST intervals in these tests). Returns the time from the mock
    /// accepting again to the feed status saying `stream`.
    pub async fn assert_fallback_released(
        &self,
        connections: usize,
        prefixes: &[&str],
        timeout: Duration,
    ) -> Duration {
        let source = self.ingestor.source();
        let key = format!("tickstream:feed:{source}:status");
        let redis = &self.redis;
        let key = &key;
        let mode = || async move {
            let mut con = redis.client().await.ok()?;
            let raw: Option<String> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut con)
                .await
                .ok()?;
            let status: Value = serde_json::from_str(&raw?).ok()?;
            status["mode"].as_str().map(str::to_owned)
        };
        wait_for(timeout, "the feed status to say rest", || async move {
            mode().await.filter(|m| m == "rest")
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        for prefix in prefixes {
            assert!(self.rest.count(prefix) > 0, "{prefix} was never polled");
        }
        let mut feeds = tickstream_testkit::JsonChannel::subscribe(redis, "feeds").await;
        let back = Instant::now();
        self.restore_stream(connections, timeout).await;
        wait_for(timeout, "the feed status to say stream", || async move {
            mode().await.filter(|m| m == "stream")
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let released = back.elapsed();
        let counts: Vec<usize> = prefixes.iter().map(|p| self.rest.count(p)).collect();
        feeds.drain().await;
        for _ in 0..2 {
            let status = feeds
                .wait(timeout, |v| v["name"] == source && v["mode"] == "stream")
                .await;
            assert_eq!(status["connected"], true, "{status}");
        }
        for (prefix, before) in prefixes.iter().zip(counts) {
            assert_eq!(
                self.rest.count(prefix),
                before,
                "{prefix} still polled after the stream returned: {:?}",
                self.rest.requests()
            );
        }
        eprintln!("{source}: REST fallback released {released:?} after the stream came back");
        released
    }

    /// Asserts the fallback honoured a `Retry-After: 1` on `path`: its second
    /// request came at least about a second after the first.
    pub fn assert_retry_after_honoured(&self, path: &str) {
        let times = self.rest.request_times(path);
        assert!(times.len() >= 2, "fewer than two requests to {path}");
        let gap = times[1] - times[0];
        assert!(
            gap >= Duration::from_millis(950),
            "Retry-After: 1 not honoured on {path}: {gap:?}"
        );
    }
}

/// The test's own `redis-server`; a test cannot go on without it.
async fn start_redis() -> RedisServer {
    RedisServer::start()
        .await
        .unwrap_or_else(|e| panic!("the test's redis-server did not start: {e:#}"))
}

/// An HTTP URL nothing listens on: a REST upstream that is down.
pub fn unused_http_url() -> String {
    format!("http://127.0.0.1:{}", tickstream_testkit::free_port())
}

/// The value of the sample whose line starts with `series` (name and labels exactly as exported).
pub async fn metric(service: &Service, series: &str) -> Option<f64> {
    let (_, text) = http_get_text(&service.http_url("/metrics")).await.ok()?;
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Waits until `series` on `/metrics` satisfies `pred`, and returns the value.
pub async fn wait_metric(
    service: &Service,
    series: &str,
    timeout: Duration,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let pred = &pred;
    wait_for(timeout, &format!("{series} to match"), || async move {
        metric(service, series).await.filter(|v| pred(*v))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until `/health` answers a body for which `pred` holds, and returns `(code, body)`.
pub async fn wait_health(
    service: &Service,
    timeout: Duration,
    pred: impl Fn(u16, &Value) -> bool,
) -> (u16, Value) {
    let url = service.http_url("/health");
    let (pred, url) = (&pred, &url);
    wait_for(timeout, "/health to match", || async move {
        tickstream_testkit::http_get_json(url)
            .await
            .ok()
            .filter(|(code, body)| pred(*code, body))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The real `gateway` binary on a test's Redis with one WebSocket client
/// subscribed to a symbol: the end of the path upstream → ingestor → Redis → gateway → client.
pub struct GatewayClient {
    /// The gateway process (killed on drop).
    gateway: Service,
    /// The client socket.
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl GatewayClient {
    /// Starts the gateway on `redis` and subscribes a client to `symbol`, waiting for `subscribed`.
    pub async fn start(redis: &RedisServer, symbol: &str) -> GatewayClient {
        Self::start_with(redis, serde_json::json!({"symbols": [symbol]})).await
    }

    /// Starts the gateway on `redis` and subscribes a client to `channels`
    /// (`trades:BTCUSDT`), waiting for `subscribed`.
    pub async fn start_channels(redis: &RedisServer, channels: &[&str]) -> GatewayClient {
        Self::start_with(redis, serde_json::json!({ "channels": channels })).await
    }

    /// Starts the gateway on `redis` and sends one `subscribe` with `data`, waiting for `subscribed`.
    async fn start_with(redis: &RedisServer, data: Value) -> GatewayClient {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;

        let url = redis.url();
        let gateway = Service::spawn("gateway", &[("REDIS_URL", url.as_str())])
            .await
            .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"));
        let (ws, _) = tokio_tungstenite::connect_async(gateway.ws_url("/ws"))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the gateway's /ws: {e}"));
        let mut client = GatewayClient { gateway, ws };
        let subscribe = serde_json::json!({"event": "subscribe", "data": data});
        client
            .ws
            .send(Message::text(subscribe.to_string()))
            .await
            .unwrap_or_else(|e| panic!("cannot send subscribe to the gateway: {e}"));
        client
            .next_event(Duration::from_secs(10), |v| v["event"] == "subscribed")
            .await;
        client
    }

    /// The client closes its socket and the gateway keeps running: its symbols are no longer wanted.
    pub async fn leave(&mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The gateway process, for REST assertions (`/symbols`, `/health`).
    pub fn gateway(&self) -> &Service {
        &self.gateway
    }

    /// The next `price_update` of `symbol` whose data satisfies `pred`.
    pub async fn next_tick(
        &mut self,
        symbol: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let v = self
            .next_event(timeout, |v| {
                v["event"] == "price_update" && v["data"]["symbol"] == symbol && pred(&v["data"])
            })
            .await;
        v["data"].clone()
    }

    /// The next `trade` of `symbol` whose data satisfies `pred`.
    pub async fn next_trade(
        &mut self,
        symbol: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let v = self
            .next_event(timeout, |v| {
                v["event"] == "trade" && v["data"]["symbol"] == symbol && pred(&v["data"])
            })
            .await;
        v["data"].clone()
    }

    async fn next_event(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no matching gateway frame within {timeout:?}"))
                .expect("gateway closed the WebSocket")
                .unwrap_or_else(|e| panic!("gateway WebSocket error: {e}"));
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str())
                .unwrap_or_else(|e| panic!("the gateway sent non-JSON text {text:?}: {e}"));
            if pred(&v) {
                return v;
            }
        }
    }
}
