//! SIGHUP reload of the real ingest-binance binary: a TOML config file is
//! rewritten, the process gets SIGHUP, and the symbol difference is applied
//! live on the mock Binance (which speaks the real control protocol and
//! enforces its limits) — ticks of the new symbols reach a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tickstream_mock_upstream::harness::{
    metric, unused_http_url, wait_health, wait_tick, Ingestor, TickChannel,
};
use tickstream_mock_upstream::ws::url_streams;
use tickstream_mock_upstream::{BinanceOptions, ControlRecord, MockWs};
use tickstream_testkit::{wait_until, RedisServer, Service};

/// Bound on any single awaited condition.
const STEP: Duration = Duration::from_secs(15);

/// ingest-binance with a 1 s heartbeat; its symbols come from each test's file.
const BINANCE: Ingestor = Ingestor::new(
    env!("CARGO_BIN_EXE_ingest-binance"),
    "BINANCE_WS_URL",
    "BINANCE_REST_URL",
)
.with_env(&[("TICKSTREAM_UPSTREAM__HEARTBEAT_SECS", "1")]);

/// A config file private to one test.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(test: &str, symbols: &[String]) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!(
            "ingest-binance-reload-{}-{test}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let f = ConfigFile(dir.join("binance.toml"));
        f.write_symbols(symbols);
        f
    }

    fn write_symbols(&self, symbols: &[String]) {
        let list: Vec<String> = symbols.iter().map(|s| format!("{s:?}")).collect();
        self.write(&format!("[binance]\nsymbols = [{}]\n", list.join(", ")));
    }

    fn write(&self, text: &str) {
        // Write then rename, as an editor or config tool would: never half a file.
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}usdt")).collect()
}

fn list(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

fn streams(symbols: &[String]) -> BTreeSet<String> {
    symbols
        .iter()
        .flat_map(|s| [format!("{s}@ticker"), format!("{s}@trade")])
        .collect()
}

fn hangup(svc: &Service) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &svc.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn binance_mock(tick_interval: Option<Duration>) -> MockWs {
    MockWs::start_binance(BinanceOptions {
        ticker_template: BINANCE.frame("ws_ticker_raw.json"),
        tick_interval,
    })
    .await
}

/// ingest-binance on `redis` and the Binance mock `ws`, reading its symbols from `file`.
async fn spawn(redis: &RedisServer, ws: &MockWs, file: &ConfigFile) -> Service {
    BINANCE
        .spawn(
            redis,
            &ws.url(),
            &unused_http_url(),
            &[("TICKSTREAM_CONFIG", file.path())],
        )
        .await
}

/// No one-second window holds more than Binance's 5 incoming messages.
fn assert_paced(controls: &[ControlRecord]) {
    let times: Vec<_> = controls.iter().map(|c| c.at).collect();
    for (i, first) in times.iter().enumerate() {
        let n = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*first) < Duration::from_secs(1))
            .count();
        assert!(n <= 5, "{n} control messages within 1 s from #{i}");
    }
}

/// Every control message carries an integer id, strictly increasing.
fn assert_ids(controls: &[ControlRecord]) -> Vec<u64> {
    let ids: Vec<u64> = controls
        .iter()
        .map(|c| {
            c.id.as_ref()
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_else(|| panic!("control without an integer id: {c:?}"))
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
    ids
}

fn open_set(open: &[(usize, Vec<String>)]) -> BTreeSet<String> {
    open.iter().flat_map(|(_, s)| s.iter().cloned()).collect()
}

async fn log_count(svc: &Service, needle: &str, n: usize) {
    wait_until(STEP, &format!("{n} log lines with {needle:?}"), || {
        let count = svc.logs().iter().filter(|l| l.contains(needle)).count();
        async move { count >= n }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", svc.logs().join("\n")));
}

#[tokio::test]
async fn sighup_subscribes_added_and_unsubscribes_removed_symbols_live() {
    let redis = RedisServer::start().await.unwrap();
    // XRPBTC was published before (by an earlier run): its seq must continue.
    let mut c = redis.client().await.unwrap();
    let old = r#"{"symbol":"XRPBTC","price":0.00001,"timestamp":"2024-01-01T00:00:00.000Z","source":"binance","seq":41}"#;
    let _: () = redis::cmd("SET")
        .arg("price:XRPBTC")
        .arg(old)
        .query_async(&mut c)
        .await
        .unwrap();
    let ws = binance_mock(Some(Duration::from_millis(200))).await;
    let file = ConfigFile::new("live", &list(&["bnbbtc", "ethbtc"]));
    let svc = spawn(&redis, &ws, &file).await;

    ws.wait_connections(1, STEP).await;
    assert_eq!(
        ws.path(0),
        "/stream?streams=bnbbtc@ticker/bnbbtc@trade/ethbtc@ticker/ethbtc@trade"
    );
    wait_tick(&redis, "ETHBTC", STEP, |t| t["source"] == "binance").await;
    let mut xrp = TickChannel::subscribe(&redis, "XRPBTC").await;

    let new = list(&["bnbbtc", "xrpbtc", "ltcbtc"]);
    file.write_symbols(&new);
    hangup(&svc);

    let want = streams(&new);
    ws.wait_subscriptions(STEP, "the new stream set on the open connection", |open| {
        open.len() == 1 && open_set(open) == want
    })
    .await;
    assert_eq!(ws.connections(), 1, "applied live, without reconnecting");
    assert!(ws.is_open(0));

    // New symbols' ticks reach Redis, seq continuing from what Redis had.
    let tick = xrp.next(STEP).await;
    assert_eq!(tick["symbol"], "XRPBTC");
    assert_eq!(tick["seq"], 42);
    assert_eq!(tick["source"], "binance");
    wait_tick(&redis, "XRPBTC", STEP, |t| t["seq"].as_u64() >= Some(42)).await;
    wait_tick(&redis, "LTCBTC", STEP, |t| t["seq"].as_u64() >= Some(1)).await;

    // The removed symbol is unsubscribed at the mock: nothing streams it any more.
    assert_eq!(ws.push_ticker("ETHBTC").await, 0);

    let controls = ws.controls(0);
    assert_ids(&controls);
    assert_paced(&controls);
    let sent: Vec<(String, Vec<String>)> = controls
        .iter()
        .map(|c| (c.method.clone(), c.params.clone()))
        .collect();
    assert_eq!(
        sent,
        [
            (
                "UNSUBSCRIBE".to_owned(),
                list(&["ethbtc@ticker", "ethbtc@trade"])
            ),
            (
                "SUBSCRIBE".to_owned(),
                list(&[
                    "xrpbtc@ticker",
                    "xrpbtc@trade",
                    "ltcbtc@ticker",
                    "ltcbtc@trade"
                ])
            ),
        ]
    );
    log_count(&svc, "Upstream confirmed the subscription change.", 2).await;
    log_count(&svc, "Symbols changed.", 1).await;

    let (_, health) = wait_health(&svc, STEP, |_, h| {
        h["symbols"] == serde_json::json!(["BNBBTC", "XRPBTC", "LTCBTC"])
    })
    .await;
    assert_eq!(health["upstream"]["expected_connections"], 1);
    assert_eq!(
        metric(&svc, &BINANCE.series("tickstream_ingest_symbols")).await,
        Some(3.0)
    );
    assert_eq!(
        metric(
            &svc,
            &BINANCE.series("tickstream_upstream_control_messages_total")
        )
        .await,
        Some(2.0)
    );
    assert_eq!(
        metric(
            &svc,
            "tickstream_upstream_config_reloads_total{outcome=\"ok\",source=\"binance\"}"
        )
        .await,
        Some(1.0)
    );

    // After a reconnect the URL carries the current set: nothing is lost.
    ws.drop_conn(0).await;
    ws.wait_connections(2, STEP).await;
    let url: BTreeSet<String> = url_streams(&ws.path(1)).into_iter().collect();
    assert_eq!(url, want);
    assert!(ws.rate_limited().is_empty());
}

#[tokio::test]
async fn many_changes_at_once_are_paced_and_1024_streams_per_connection_hold() {
    let redis = RedisServer::start().await.unwrap();
    let ws = binance_mock(None).await;
    let file = ConfigFile::new("many", &names("s", 0..100));
    let svc = spawn(&redis, &ws, &file).await;
    ws.wait_connections(1, STEP).await;
    assert_eq!(ws.subscriptions(0).len(), 200);

    // Two reloads back to back, the second before the first is done.
    file.write_symbols(&names("s", 0..300));
    hangup(&svc);
    log_count(&svc, "Received SIGHUP", 1).await;
    let last = names("s", 10..560);
    file.write_symbols(&last);
    hangup(&svc);

    // 550 symbols, 1100 streams (ticker and trades each): the first connection
    // is filled to 1024 streams (512 symbols), a second opens.
    let want = streams(&last);
    ws.wait_subscriptions(
        Duration::from_secs(40),
        "1100 streams over two connections",
        |open| open.len() == 2 && open_set(open) == want,
    )
    .await;
    let open = ws.open_subscriptions();
    assert_eq!(open[0].0, 0, "the first connection was changed live");
    assert_eq!(open[0].1.len(), 1024);
    assert_eq!(open[1].1.len(), 76);
    assert!(open[1].1.contains(&"s559usdt@trade".to_owned()));
    assert!(
        ws.controls(open[1].0).is_empty(),
        "the new connection subscribes by URL"
    );
    assert_eq!(url_streams(&ws.path(open[1].0)).len(), 76);

    let controls = ws.controls(0);
    assert!(controls.len() >= 6, "{} control messages", controls.len());
    assert!(controls.iter().all(|c| c.params.len() <= 200));
    assert_ids(&controls);
    assert_paced(&controls);
    assert!(
        ws.rate_limited().is_empty(),
        "the mock cut a connection for its rate"
    );
    assert!(ws.is_open(0));

    // A symbol on the second connection streams into Redis.
    wait_health(&svc, STEP, |_, h| h["upstream"]["connected"] == true).await;
    assert_eq!(ws.push_ticker("S559USDT").await, 1);
    wait_tick(&redis, "S559USDT", STEP, |t| t["seq"] == 1).await;
    let (_, health) = wait_health(&svc, STEP, |_, h| {
        h["symbols"].as_array().map(Vec::len) == Some(550)
    })
    .await;
    assert_eq!(health["upstream"]["expected_connections"], 2);

    // Removing every symbol of the second connection closes it.
    let fewer = names("s", 10..522);
    file.write_symbols(&fewer);
    hangup(&svc);
    ws.wait_closed(open[1].0, STEP).await;
    let want = streams(&fewer);
    ws.wait_subscriptions(STEP, "1024 streams on one connection", |open| {
        open.len() == 1 && open_set(open) == want
    })
    .await;
    let (_, health) = wait_health(&svc, STEP, |_, h| {
        h["upstream"]["expected_connections"] == 1 && h["upstream"]["connected"] == true
    })
    .await;
    assert_eq!(health["symbols"].as_array().map(Vec::len), Some(512));
    assert!(ws.rate_limited().is_empty());
}

#[tokio::test]
async fn a_bad_file_on_reload_keeps_the_running_symbols() {
    let redis = RedisServer::start().await.unwrap();
    let ws = binance_mock(None).await;
    let file = ConfigFile::new("bad", &list(&["bnbbtc"]));
    let mut svc = spawn(&redis, &ws, &file).await;
    ws.wait_connections(1, STEP).await;

    // A value that breaks a rule: the log names the key.
    file.write("[binance]\nsymbols = [\"btc-usdt\"]\n");
    hangup(&svc);
    log_count(&svc, "Configuration reload failed", 1).await;
    assert!(svc
        .logs()
        .iter()
        .any(|l| l.contains("Configuration reload failed") && l.contains("binance.symbols")));
    // A file that is not TOML at all.
    file.write("[binance\nsymbols = ");
    hangup(&svc);
    log_count(&svc, "Configuration reload failed", 2).await;
    // No symbols at all.
    file.write("[binance]\nsymbols = []\n");
    hangup(&svc);
    log_count(&svc, "Configuration reload failed", 3).await;

    assert!(
        svc.wait_exit(Duration::ZERO).await.is_none(),
        "the service died"
    );
    assert_eq!(ws.connections(), 1);
    assert!(ws.controls(0).is_empty());
    assert_eq!(ws.subscriptions(0), ["bnbbtc@ticker", "bnbbtc@trade"]);
    let (_, health) = wait_health(&svc, STEP, |_, h| h["upstream"]["connected"] == true).await;
    assert_eq!(health["symbols"], serde_json::json!(["BNBBTC"]));
    assert_eq!(
        metric(
            &svc,
            "tickstream_upstream_config_reloads_total{outcome=\"error\",source=\"binance\"}"
        )
        .await,
        Some(3.0)
    );

    // And the next good file is applied.
    file.write_symbols(&list(&["bnbbtc", "ethbtc"]));
    hangup(&svc);
    let want = streams(&list(&["bnbbtc", "ethbtc"]));
    ws.wait_subscriptions(STEP, "ethbtc added after the bad reloads", |open| {
        open_set(open) == want
    })
    .await;
    ws.send(0, &BINANCE.frame("ws_ticker_combined.json")).await;
    wait_tick(&redis, "BNBBTC", STEP, |t| t["seq"] == 1).await;
}
