//! Feed status and control end to end: the real gateway, ingest-sim and
//! ingest-binance binaries (Binance against its local mock), one private
//! redis-server. An admin stops and starts each feed (and analytics) through
//! `POST /feeds/{name}/stop|start`; ticks stop and resume, `GET /feeds`, the
//! `feeds` channel and the ingestor's `/health` follow, the stop survives an
//! ingestor restart, and refused callers change nothing.
//!
//! Needs the workspace's binaries built (`cargo build --bins`, as `make test` does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tickstream_mock_upstream::harness::{metric, Ingestor, Upstreams};
use tickstream_mock_upstream::MockResponse;
use tickstream_testkit::{
    bin_path, http_get_json, http_post_json, wait_for, wait_until, JsonChannel, RedisServer,
    Service,
};

/// Bound on any awaited condition (debug builds on a busy 2-core machine).
const STEP: Duration = Duration::from_secs(15);
/// The contract: after a stop is answered no tick arrives later than this after the request, and after a start the first comes within it.
const TWO_SECONDS: Duration = Duration::from_secs(2);
/// A window in which nothing may happen (no tick, no connection, no REST poll).
const QUIET: Duration = Duration::from_millis(1500);
/// The gateway's admin token in these tests.
const ADMIN_TOKEN: &str = "feeds-test-admin-token-0123456789";
/// The gateway's HS256 secret in these tests.
const JWT_SECRET: &str = "feeds-test-jwt-secret-0123456789abcdef";

/// ingest-binance from the workspace's target directory, pointed at the mocks.
fn binance() -> Ingestor {
    let bin = bin_path("ingest-binance");
    assert!(
        bin.exists(),
        "ingest-binance not built: run `cargo build --bins` first"
    );
    let bin: &'static str = Box::leak(bin.to_string_lossy().into_owned().into_boxed_str());
    Ingestor::new(bin, "BINANCE_WS_URL", "BINANCE_REST_URL")
}

fn jwt(claims: Value) -> String {
    let exp = chrono::Utc::now().timestamp() + 600;
    let mut claims = claims;
    claims["exp"] = json!(exp);
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn gateway(redis: &RedisServer) -> Service {
    let url = redis.url();
    Service::spawn(
        "gateway",
        &[
            ("REDIS_URL", url.as_str()),
            ("TICKSTREAM_GATEWAY__ADMIN_TOKEN", ADMIN_TOKEN),
            ("TICKSTREAM_GATEWAY__AUTH__ALGORITHM", "HS256"),
            ("TICKSTREAM_GATEWAY__AUTH__HS256_SECRET", JWT_SECRET),
        ],
    )
    .await
    .unwrap()
}

/// `POST /feeds/{name}/{action}` with `token` as the bearer.
async fn control(gw: &Service, name: &str, action: &str, token: Option<&str>) -> (u16, Value) {
    http_post_json(&gw.http_url(&format!("/feeds/{name}/{action}")), token)
        .await
        .unwrap()
}

/// The feed `name` in `GET /feeds`, if listed.
async fn listed(gw: &Service, name: &str) -> Option<Value> {
    let (code, body) = http_get_json(&gw.http_url("/feeds")).await.ok()?;
    assert_eq!(code, 200, "{body}");
    body["feeds"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
}

/// Waits until `GET /feeds` lists `name` in `mode`.
async fn wait_listed(gw: &Service, name: &str, mode: &str) -> Value {
    wait_for(STEP, &format!("{name} listed as {mode}"), || async {
        listed(gw, name).await.filter(|f| f["mode"] == mode)
    })
    .await
    .unwrap()
}

/// Waits until the ingestor's own `/health` says `status` (with HTTP `code`).
async fn wait_own_health(svc: &Service, code: u16, status: &str) {
    wait_until(STEP, &format!("/health {code} {status}"), || async {
        matches!(http_get_json(&svc.http_url("/health")).await,
            Ok((c, b)) if c == code && b["status"] == status)
    })
    .await
    .unwrap();
}

async fn desired_key(redis: &RedisServer, name: &str) -> Option<String> {
    let mut c = redis.client().await.unwrap();
    redis::cmd("GET")
        .arg(format!("tickstream:feed:{name}:desired"))
        .query_async(&mut c)
        .await
        .unwrap()
}

/// Reads ticks until none comes for [`QUIET`]; returns how many came and the newest one's time.
async fn ticks_until_quiet(
    ticks: &mut JsonChannel,
) -> (usize, Option<chrono::DateTime<chrono::Utc>>) {
    let mut n = 0;
    let mut newest = None;
    while let Some(t) = ticks.try_next(QUIET).await {
        n += 1;
        let at = chrono::DateTime::parse_from_rfc3339(t["timestamp"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        newest = newest.max(Some(at));
    }
    (n, newest)
}

/// Every refused caller: no credentials, a wrong token, a JWT without the
/// admin claim, an unknown feed. None of them stores anything.
async fn assert_refusals(gw: &Service, redis: &RedisServer, name: &str) {
    let (code, body) = control(gw, name, "stop", None).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let (code, _) = control(gw, name, "stop", Some("not-the-admin-token")).await;
    assert_eq!(code, 401);
    let reader = jwt(json!({"sub": "reader", "role": "reader"}));
    let (code, body) = control(gw, name, "stop", Some(&reader)).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (code, _) = control(gw, "no-such-feed", "stop", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 404);
    let (code, _) = control(gw, "Bad:Name", "stop", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 400);
    assert_eq!(desired_key(redis, name).await, None);
    assert_eq!(desired_key(redis, "no-such-feed").await, None);
}

#[tokio::test]
async fn sim_stops_and_starts_through_the_gateway_and_stays_stopped_across_a_restart() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let mut sim = Service::spawn(
        "ingest-sim",
        &[
            ("REDIS_URL", url.as_str()),
            ("SYMBOLS", "BTCUSDT"),
            ("TICKSTREAM_SIM__RATE", "500"),
            ("TICKSTREAM_SIM__HEARTBEAT_SECS", "1"),
        ],
    )
    .await
    .unwrap();
    let gw = gateway(&redis).await;
    let running = wait_for(STEP, "sim listed as healthy", || async {
        listed(&gw, "sim")
            .await
            .filter(|f| f["status"] == "healthy")
    })
    .await
    .unwrap();
    assert_eq!(running["mode"], "stream", "{running}");
    assert_eq!(running["connected"], true);
    assert_eq!(running["symbols"], json!(["BTCUSDT"]));

    let mut ticks = JsonChannel::subscribe(&redis, "ticks:BTCUSDT").await;
    let mut feeds = JsonChannel::subscribe(&redis, "feeds").await;
    ticks.try_next(STEP).await.expect("the simulator publishes");

    // Refused callers change nothing: the simulator keeps publishing.
    assert_refusals(&gw, &redis, "sim").await;
    ticks
        .try_next(STEP)
        .await
        .expect("still publishing after refusals");
    assert_eq!(listed(&gw, "sim").await.unwrap()["mode"], "stream");

    // Stop, with an admin JWT.
    let admin = jwt(json!({"sub": "ops", "admin": true}));
    let asked_at = chrono::Utc::now();
    let asked = Instant::now();
    let (code, body) = control(&gw, "sim", "stop", Some(&admin)).await;
    let answered = asked.elapsed();
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["desired"], "stopped");
    assert_eq!(body["feed"]["mode"], "stopped");
    assert_eq!(body["feed"]["status"], "stopped");
    assert_eq!(body["feed"]["connected"], false);
    // Ticks stamped before the stop may still be queued; none is stamped 2 s after it.
    let (drained, newest) = ticks_until_quiet(&mut ticks).await;
    let stop_to_last = newest.map(|t| (t - asked_at).num_milliseconds());
    assert!(
        stop_to_last.is_none_or(|ms| ms < 2000),
        "a tick stamped {stop_to_last:?} ms after the stop request"
    );
    eprintln!(
        "sim: stop answered in {answered:?}; {drained} queued ticks, the newest stamped {stop_to_last:?} ms after the request"
    );
    let status = feeds
        .wait(STEP, |f| f["name"] == "sim" && f["mode"] == "stopped")
        .await;
    assert_eq!(status["status"], "stopped", "{status}");
    wait_listed(&gw, "sim", "stopped").await;
    wait_own_health(&sim, 200, "stopped").await;
    assert_eq!(
        metric(&sim, "tickstream_ingest_feed_stopped{source=\"sim\"}").await,
        Some(1.0)
    );
    assert_eq!(desired_key(&redis, "sim").await.as_deref(), Some("stopped"));
    // Stopping again is answered at once with the same state.
    let (code, body) = control(&gw, "sim", "stop", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        (code, body["feed"]["mode"].as_str()),
        (200, Some("stopped"))
    );

    // A restarted simulator reads the stop back and publishes nothing.
    sim.restart().await.unwrap();
    wait_own_health(&sim, 200, "stopped").await;
    assert!(
        ticks.try_next(QUIET).await.is_none(),
        "the restarted simulator published while stopped"
    );
    assert_eq!(listed(&gw, "sim").await.unwrap()["mode"], "stopped");

    // Refusals while stopped do not start it either.
    assert_eq!(control(&gw, "sim", "start", None).await.0, 401);
    let reader = jwt(json!({"sub": "reader"}));
    assert_eq!(control(&gw, "sim", "start", Some(&reader)).await.0, 403);
    assert!(ticks.try_next(QUIET).await.is_none());

    // Start, with the admin token.
    let asked = Instant::now();
    let (code, body) = control(&gw, "sim", "start", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["desired"], "running");
    assert_eq!(body["feed"]["mode"], "stream");
    ticks
        .try_next(STEP)
        .await
        .expect("ticks resume after start");
    let first = asked.elapsed();
    assert!(first < TWO_SECONDS, "first tick {first:?} after start");
    eprintln!("sim: first tick {first:?} after the start request");
    feeds
        .wait(STEP, |f| f["name"] == "sim" && f["mode"] == "stream")
        .await;
    wait_own_health(&sim, 200, "healthy").await;
    assert_eq!(desired_key(&redis, "sim").await.as_deref(), Some("running"));
}

#[tokio::test]
async fn binance_closes_its_stream_and_fallback_on_stop_and_reconnects_on_start() {
    let binance = binance();
    let u = Upstreams::start().await;
    u.rest.set(
        "/api/v3/ticker/24hr",
        MockResponse::ok(binance.fixture("rest_ticker_24hr.json")),
    );
    let mut s = u
        .spawn(
            &binance,
            &[
                ("SYMBOLS", "bnbbtc"),
                ("TICKSTREAM_UPSTREAM__HEARTBEAT_SECS", "1"),
                ("TICKSTREAM_UPSTREAM__FALLBACK_AFTER_MS", "300"),
                ("TICKSTREAM_UPSTREAM__REST_INTERVAL_MS", "200"),
            ],
        )
        .await;
    let gw = gateway(&s.redis).await;
    let mut ticks = JsonChannel::subscribe(&s.redis, "ticks:BNBBTC").await;
    let mut feeds = JsonChannel::subscribe(&s.redis, "feeds").await;
    s.ws.wait_connections(1, STEP).await;
    s.ws.send(0, &s.frame("ws_ticker_combined.json")).await;
    let tick = ticks.try_next(STEP).await.expect("a live tick");
    assert_eq!(tick["source"], "binance");
    let live = wait_for(STEP, "binance listed as connected", || async {
        listed(&gw, "binance")
            .await
            .filter(|f| f["mode"] == "stream" && f["connected"] == true)
    })
    .await
    .unwrap();
    assert_eq!(live["symbols"], json!(["BNBBTC"]));
    assert!(live["last_message_age_ms"].as_u64().is_some(), "{live}");

    assert_refusals(&gw, &s.redis, "binance").await;
    assert!(s.ws.is_open(0), "a refused stop closed the stream");

    // Stop: the stream is closed, nothing reconnects or polls REST, nothing is published.
    let asked = Instant::now();
    let (code, body) = control(&gw, "binance", "stop", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["feed"]["mode"], "stopped");
    s.ws.wait_closed(0, STEP).await;
    let closed = asked.elapsed();
    assert!(
        closed < TWO_SECONDS,
        "stream closed {closed:?} after the stop"
    );
    eprintln!("binance: upstream closed {closed:?} after the stop request");
    let polls = s.rest.count("/api/v3/ticker/24hr");
    assert!(
        ticks.try_next(QUIET).await.is_none(),
        "a tick while stopped"
    );
    assert_eq!(s.ws.connections(), 1, "reconnected while stopped");
    assert_eq!(
        s.rest.count("/api/v3/ticker/24hr"),
        polls,
        "REST polled while stopped"
    );
    feeds
        .wait(STEP, |f| f["name"] == "binance" && f["mode"] == "stopped")
        .await;
    wait_listed(&gw, "binance", "stopped").await;
    wait_own_health(&s.svc, 200, "stopped").await;

    // A restarted ingestor stays stopped: no connection, no poll.
    s.svc.restart().await.unwrap();
    wait_own_health(&s.svc, 200, "stopped").await;
    assert!(
        ticks.try_next(QUIET).await.is_none(),
        "a tick after the restart"
    );
    assert_eq!(
        s.ws.connections(),
        1,
        "connected while stopped after a restart"
    );
    assert_eq!(s.rest.count("/api/v3/ticker/24hr"), polls);

    // Start: it reconnects and live ticks flow again.
    let asked = Instant::now();
    let (code, body) = control(&gw, "binance", "start", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_ne!(body["feed"]["mode"], "stopped");
    s.ws.wait_connections(2, STEP).await;
    s.ws.send(1, &s.frame("ws_ticker_combined.json")).await;
    // The fixture's seq-stamped tick is newer than the one before the stop.
    let resumed = ticks.try_next(STEP).await.expect("a live tick after start");
    let first = asked.elapsed();
    assert!(first < TWO_SECONDS, "first tick {first:?} after the start");
    eprintln!("binance: first tick {first:?} after the start request");
    assert!(resumed["seq"].as_u64() > tick["seq"].as_u64());
    feeds
        .wait(STEP, |f| f["name"] == "binance" && f["connected"] == true)
        .await;

    // With the stream cut the REST fallback polls (mode rest); a stop ends the polling too.
    s.ws.refuse(true);
    s.ws.drop_conn(1).await;
    wait_listed(&gw, "binance", "rest").await;
    s.rest
        .wait_requests("/api/v3/ticker/24hr", polls + 1, STEP)
        .await;
    let (code, _) = control(&gw, "binance", "stop", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200);
    // A poll already in flight may land; after that, none.
    wait_until(STEP, "the REST fallback to go quiet", || {
        let before = s.rest.count("/api/v3/ticker/24hr");
        let rest = &s.rest;
        async move {
            tokio::time::sleep(QUIET).await;
            rest.count("/api/v3/ticker/24hr") == before
        }
    })
    .await
    .unwrap();
    let (code, body) = control(&gw, "binance", "start", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        desired_key(&s.redis, "binance").await.as_deref(),
        Some("running")
    );
    wait_listed(&gw, "binance", "rest").await;
}

#[tokio::test]
async fn a_feed_that_does_not_act_gets_a_504_naming_it() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let gw = Service::spawn(
        "gateway",
        &[
            ("REDIS_URL", url.as_str()),
            ("TICKSTREAM_GATEWAY__ADMIN_TOKEN", ADMIN_TOKEN),
            ("TICKSTREAM_GATEWAY__FEED_CONTROL_TIMEOUT_MS", "300"),
        ],
    )
    .await
    .unwrap();
    // A feed status written by hand: a producer that reports but does not obey.
    let mut c = redis.client().await.unwrap();
    let status = json!({"name":"acme","status":"healthy","mode":"stream","connected":true,
        "symbols":["ACME"],"last_message_age_ms":10,"reconnects":0,"timestamp":"2026-12-05T15:00:00.000Z"});
    let _: () = redis::cmd("SET")
        .arg("tickstream:feed:acme:status")
        .arg(status.to_string())
        .arg("EX")
        .arg(60)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(listed(&gw, "acme").await.unwrap()["mode"], "stream");
    let (code, body) = control(&gw, "acme", "stop", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 504, "{body}");
    assert_eq!(body["code"], "feed_timeout");
    assert!(body["error"].as_str().unwrap().contains("acme"), "{body}");
    // Without JWT auth configured, a token that is not the admin token is 401.
    assert_eq!(control(&gw, "acme", "stop", Some("x")).await.0, 401);
}

/// `PUBSUB NUMSUB channel`: how many connections follow `channel` now.
async fn subscribers(redis: &RedisServer, channel: &str) -> i64 {
    redis.numsub(channel).await.unwrap()
}

#[tokio::test]
async fn analytics_stops_and_starts_through_the_gateway_and_stays_stopped_across_a_restart() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let _sim = Service::spawn(
        "ingest-sim",
        &[
            ("REDIS_URL", url.as_str()),
            ("SYMBOLS", "BTCUSDT"),
            ("TICKSTREAM_SIM__RATE", "50"),
            ("TICKSTREAM_SIM__HEARTBEAT_SECS", "1"),
        ],
    )
    .await
    .unwrap();
    let analytics_env = [
        ("REDIS_URL", url.as_str()),
        ("TICKSTREAM_ANALYTICS__SYMBOLS", "BTCUSDT"),
        ("TICKSTREAM_ANALYTICS__SENTIMENT_MS", "200"),
        ("TICKSTREAM_ANALYTICS__UPDATE_MS", "100"),
        ("TICKSTREAM_ANALYTICS__HEARTBEAT_SECS", "1"),
    ];
    let mut analytics = Service::spawn("analytics", &analytics_env).await.unwrap();
    let gw = gateway(&redis).await;
    let running = wait_for(STEP, "analytics listed as healthy", || async {
        listed(&gw, "analytics")
            .await
            .filter(|f| f["status"] == "healthy")
    })
    .await
    .unwrap();
    assert_eq!(running["mode"], "stream", "{running}");
    // It follows the simulator's ticks and publishes the market mood on its clock.
    wait_until(STEP, "analytics subscribed to ticks:BTCUSDT", || async {
        subscribers(&redis, "ticks:BTCUSDT").await == 1
    })
    .await
    .unwrap();
    let mut mood = JsonChannel::subscribe(&redis, "sentiment").await;
    let mut candles = JsonChannel::subscribe(&redis, "candles:1m:BTCUSDT").await;
    mood.try_next(STEP)
        .await
        .expect("analytics publishes sentiment");
    candles
        .try_next(STEP)
        .await
        .expect("analytics publishes candles");

    // Refused callers change nothing.
    assert_refusals(&gw, &redis, "analytics").await;
    mood.try_next(STEP)
        .await
        .expect("still publishing after refusals");

    // Stop: it lets go of its inputs and publishes nothing, not even on its clock.
    let asked = Instant::now();
    let (code, body) = control(&gw, "analytics", "stop", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["feed"]["mode"], "stopped", "{body}");
    assert_eq!(body["feed"]["status"], "stopped");
    assert_eq!(body["feed"]["connected"], false);
    eprintln!("analytics: stop answered in {:?}", asked.elapsed());
    // What was published before the answer may still be queued; then nothing.
    let mut drained = 0;
    while mood.try_next(Duration::from_millis(300)).await.is_some() {
        drained += 1;
        assert!(drained < 10, "sentiment keeps coming after the stop");
    }
    candles.drain().await;
    assert!(
        mood.try_next(QUIET).await.is_none(),
        "sentiment published while stopped"
    );
    assert!(
        candles.try_next(Duration::from_millis(1)).await.is_none(),
        "a candle published while stopped"
    );
    wait_until(
        STEP,
        "analytics unsubscribed from ticks:BTCUSDT",
        || async { subscribers(&redis, "ticks:BTCUSDT").await == 0 },
    )
    .await
    .unwrap();
    wait_own_health(&analytics, 200, "stopped").await;
    let (code, text) = tickstream_testkit::http_get_text(&analytics.http_url("/metrics"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(text.contains("tickstream_analytics_"), "{text}");
    wait_listed(&gw, "analytics", "stopped").await;
    assert_eq!(
        desired_key(&redis, "analytics").await.as_deref(),
        Some("stopped")
    );

    // A restarted analytics reads the stop back: no inputs, no outputs.
    analytics.restart().await.unwrap();
    wait_own_health(&analytics, 200, "stopped").await;
    assert!(
        mood.try_next(QUIET).await.is_none(),
        "the restarted analytics published while stopped"
    );
    assert_eq!(subscribers(&redis, "ticks:BTCUSDT").await, 0);

    // Start: inputs and outputs resume within 2 s.
    let asked = Instant::now();
    let (code, body) = control(&gw, "analytics", "start", Some(ADMIN_TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["feed"]["mode"], "stream", "{body}");
    mood.try_next(STEP)
        .await
        .expect("sentiment resumes after start");
    let first = asked.elapsed();
    assert!(first < TWO_SECONDS, "first sentiment {first:?} after start");
    eprintln!("analytics: first sentiment {first:?} after the start request");
    candles
        .try_next(STEP)
        .await
        .expect("candles resume after start");
    wait_until(STEP, "analytics subscribed again", || async {
        subscribers(&redis, "ticks:BTCUSDT").await == 1
    })
    .await
    .unwrap();
    wait_own_health(&analytics, 200, "healthy").await;
    wait_listed(&gw, "analytics", "stream").await;
}
