//! The bus against a private redis-server: publish → subscribe → cache, heartbeats, seq, reconnect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickstream_bus::{ChannelHandler, Heartbeat, IngestorStatus, Redis, RedisOptions, Subscriber};
use tickstream_model::{Symbol, Tick};
use tickstream_testkit::{wait_until, RedisServer};

const STEP: Duration = Duration::from_secs(10);

/// Records what the subscriber delivers; wants whatever is in `wanted`.
#[derive(Default)]
struct Recorder {
    wanted: Mutex<Vec<String>>,
    got: Mutex<Vec<(String, Vec<u8>)>>,
}

impl ChannelHandler for Recorder {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        self.got
            .lock()
            .unwrap()
            .push((channel.to_owned(), payload.to_vec()));
    }
    fn wants(&self, channel: &str) -> bool {
        self.wanted.lock().unwrap().iter().any(|s| s == channel)
    }
    fn wanted(&self) -> Vec<String> {
        self.wanted.lock().unwrap().clone()
    }
}

impl Recorder {
    /// Wants (or stops wanting) a symbol's `ticks:` channel.
    fn want(&self, symbol: &str, yes: bool) {
        self.want_channel(&ch(symbol), yes);
    }
    fn want_channel(&self, channel: &str, yes: bool) {
        let mut w = self.wanted.lock().unwrap();
        w.retain(|s| s != channel);
        if yes {
            w.push(channel.to_owned());
        }
    }
    fn payloads(&self, channel: &str) -> Vec<Vec<u8>> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == channel)
            .map(|(_, p)| p.clone())
            .collect()
    }
    fn seqs(&self, symbol: &str) -> Vec<u64> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| *c == ch(symbol))
            .map(|(_, p)| Tick::from_json(p).unwrap().seq)
            .collect()
    }
}

/// The `ticks:` channel of a symbol.
fn ch(symbol: &str) -> String {
    format!("ticks:{symbol}")
}

fn tick(symbol: &str, seq: u64) -> Tick {
    Tick {
        symbol: Symbol::parse(symbol).unwrap(),
        price: 100.0 + seq as f64,
        volume: Some(1.0),
        high: None,
        low: None,
        change: None,
        change_percent: None,
        bid: None,
        ask: None,
        timestamp: chrono::Utc::now(),
        source: "test".to_owned(),
        seq,
    }
}

async fn numsub(redis: &RedisServer, channel: &str) -> i64 {
    redis.numsub(channel).await.unwrap()
}

async fn wait_numsub(server: &RedisServer, channel: &str, n: i64) {
    wait_until(STEP, &format!("NUMSUB {channel} == {n}"), || async move {
        server.ping().await && numsub(server, channel).await == n
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn publish_reaches_subscriber_and_cache_holds_latest() {
    let server = RedisServer::start().await.unwrap();
    let bus = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    let rec = Arc::new(Recorder::default());
    let sub = Subscriber::spawn(bus.client().clone(), rec.clone(), bus.health().clone());
    rec.want("BTCUSDT", true);
    sub.sync(&ch("BTCUSDT")).await;
    wait_numsub(&server, "ticks:BTCUSDT", 1).await;

    bus.publish(&[tick("BTCUSDT", 1), tick("ETHUSDT", 1), tick("BTCUSDT", 2)])
        .await
        .unwrap();
    wait_until(STEP, "two BTCUSDT ticks", || async {
        rec.seqs("BTCUSDT").len() == 2
    })
    .await
    .unwrap();
    assert_eq!(rec.seqs("BTCUSDT"), vec![1, 2]);
    assert!(rec.seqs("ETHUSDT").is_empty(), "unwanted symbol delivered");
    assert!(bus.health().is_up());

    let latest = Tick::from_json(&bus.latest("BTCUSDT").await.unwrap().unwrap()).unwrap();
    assert_eq!(latest.seq, 2);
    assert_eq!(bus.latest("NOPE").await.unwrap(), None);
    let many = bus
        .latest_many(&["ETHUSDT", "NOPE", "BTCUSDT"])
        .await
        .unwrap();
    assert!(many[0].is_some() && many[1].is_none() && many[2].is_some());
    let mut c = server.client().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg("price:BTCUSDT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 86_400, "price key TTL {ttl}");

    let seqs = bus
        .load_seqs(&[
            Symbol::parse("BTCUSDT").unwrap(),
            Symbol::parse("AAPL").unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(seqs.get(&Symbol::parse("BTCUSDT").unwrap()), Some(&2));
    assert_eq!(seqs.len(), 1);

    rec.want("BTCUSDT", false);
    sub.sync(&ch("BTCUSDT")).await;
    wait_numsub(&server, "ticks:BTCUSDT", 0).await;
}

#[tokio::test]
async fn heartbeats_round_trip_and_expire() {
    let server = RedisServer::start().await.unwrap();
    let bus = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    assert!(bus.heartbeats().await.unwrap().is_empty());
    let hb = Heartbeat {
        name: "sim".into(),
        status: IngestorStatus::Degraded,
        message: Some("upstream down".into()),
        symbols: vec!["BTCUSDT".into()],
        last_tick: None,
        ticks_published: 7,
        updated_at: "2025-11-01T10:30:00.000Z".into(),
    };
    bus.write_heartbeat(&hb, Duration::from_secs(1))
        .await
        .unwrap();
    let mut c = server.client().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("tickstream:ingestor:junk")
        .arg("not json")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(bus.heartbeats().await.unwrap(), vec![hb]);
    wait_until(
        Duration::from_secs(5),
        "heartbeat expires with its TTL",
        || async { bus.heartbeats().await.unwrap().is_empty() },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn subscriber_survives_redis_restart_and_restores_subscriptions() {
    let mut server = RedisServer::start().await.unwrap();
    let bus = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    let rec = Arc::new(Recorder::default());
    let sub = Subscriber::spawn(bus.client().clone(), rec.clone(), bus.health().clone());
    for s in ["AAPL", "MSFT"] {
        rec.want(s, true);
        sub.sync(&ch(s)).await;
    }
    wait_numsub(&server, "ticks:MSFT", 1).await;

    server.kill();
    assert!(
        bus.publish(&[tick("AAPL", 1)]).await.is_err(),
        "publish with Redis down must fail, not hang"
    );
    assert!(!bus.health().is_up());
    assert!(bus.health().last_error().is_some());
    // Interest changes while down are honoured after the reconnect.
    rec.want("NVDA", true);
    sub.sync(&ch("NVDA")).await;

    server.restart().await.unwrap();
    for ch in ["ticks:AAPL", "ticks:MSFT", "ticks:NVDA"] {
        wait_numsub(&server, ch, 1).await;
    }
    wait_until(STEP, "command connection back", || async {
        bus.publish(&[tick("AAPL", 2)]).await.is_ok()
    })
    .await
    .unwrap();
    wait_until(STEP, "tick after restart", || async {
        rec.seqs("AAPL").contains(&2)
    })
    .await
    .unwrap();
    assert!(bus.health().is_up());
    assert!(bus.health().reconnects() >= 1);
}

#[tokio::test]
async fn starts_while_redis_is_down() {
    let port = tickstream_testkit::free_port();
    let bus = Redis::connect_lazy(RedisOptions::new(format!("redis://127.0.0.1:{port}"))).unwrap();
    assert!(bus.ping().await.is_err());
    assert!(!bus.health().is_up());
    assert!(Redis::connect_lazy(RedisOptions::new("nonsense://")).is_err());
}

/// `(id, last command)` of every client of `server` that holds a channel subscription.
async fn subscribed_clients(server: &RedisServer) -> Vec<(String, String)> {
    let mut c = server.client().await.unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut c)
        .await
        .unwrap();
    list.lines()
        .filter(|l| l.split(' ').any(|f| f.starts_with("sub=") && f != "sub=0"))
        .map(|l| {
            let field = |k: &str| {
                l.split(' ')
                    .find_map(|f| f.strip_prefix(k))
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("id="), field("cmd="))
        })
        .collect()
}

#[tokio::test]
async fn idle_probe_keeps_a_subscribed_connection() {
    // In subscribed mode Redis answers PING with ["pong", ""], not "PONG"; a
    // probe that insisted on a string dropped the connection every
    // PING_INTERVAL and lost the ticks published while it reconnected.
    let server = RedisServer::start().await.unwrap();
    let bus = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    let rec = Arc::new(Recorder::default());
    let sub = Subscriber::spawn(bus.client().clone(), rec.clone(), bus.health().clone());
    rec.want("AAPL", true);
    sub.sync(&ch("AAPL")).await;
    wait_numsub(&server, "ticks:AAPL", 1).await;
    let before = subscribed_clients(&server).await;
    assert_eq!(before.len(), 1, "{before:?}");

    let probe_wait = tickstream_bus::subscriber::PING_INTERVAL + STEP;
    // Done when the probe is seen on the connection, or when it broke it.
    let health = bus.health().clone();
    wait_until(probe_wait, "the subscriber's PING probe", || {
        let health = health.clone();
        let server = &server;
        async move {
            health.reconnects() > 0
                || subscribed_clients(server)
                    .await
                    .iter()
                    .any(|(_, cmd)| cmd == "ping")
        }
    })
    .await
    .unwrap();
    assert_eq!(
        bus.health().reconnects(),
        0,
        "the probe broke the connection"
    );
    bus.publish(&[tick("AAPL", 7)]).await.unwrap();
    wait_until(STEP, "a tick after the probe", || async {
        rec.seqs("AAPL").contains(&7)
    })
    .await
    .unwrap();
    let after = subscribed_clients(&server).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].0, before[0].0, "the connection was replaced");
    assert_eq!(bus.health().reconnects(), 0);
    assert!(bus.health().is_up());
}

#[tokio::test]
async fn the_cache_is_never_rolled_back_to_an_older_tick() {
    let server = RedisServer::start().await.unwrap();
    let bus = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    let rec = Arc::new(Recorder::default());
    let sub = Subscriber::spawn(bus.client().clone(), rec.clone(), bus.health().clone());
    rec.want("NVDA", true);
    sub.sync(&ch("NVDA")).await;
    wait_numsub(&server, "ticks:NVDA", 1).await;

    bus.publish(&[tick("NVDA", 5)]).await.unwrap();
    // A second publisher (or a late retry) with older and equal seqs, then a newer one.
    let other = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    other
        .publish(&[
            tick("NVDA", 3),
            tick("NVDA", 5),
            tick("NVDA", 6),
            tick("NVDA", 4),
        ])
        .await
        .unwrap();
    assert_eq!(other.stale_ticks_skipped(), 3);
    assert_eq!(bus.stale_ticks_skipped(), 0);
    wait_until(STEP, "ticks 5 and 6 delivered", || async {
        rec.seqs("NVDA").len() == 2
    })
    .await
    .unwrap();
    assert_eq!(
        rec.seqs("NVDA"),
        vec![5, 6],
        "stale ticks must not be published"
    );
    let cached = Tick::from_json(&bus.latest("NVDA").await.unwrap().unwrap()).unwrap();
    assert_eq!(cached.seq, 6);
    let seqs = bus
        .load_seqs(&[Symbol::parse("NVDA").unwrap()])
        .await
        .unwrap();
    assert_eq!(seqs.get(&Symbol::parse("NVDA").unwrap()), Some(&6));
}

#[tokio::test]
async fn any_channel_is_published_cached_and_subscribed_by_its_name() {
    let server = RedisServer::start().await.unwrap();
    let bus = Redis::connect_lazy(RedisOptions::new(server.url())).unwrap();
    let rec = Arc::new(Recorder::default());
    let sub = Subscriber::spawn(bus.client().clone(), rec.clone(), bus.health().clone());
    let candles = tickstream_model::Channel::parse("candles:1m:BTCUSDT").unwrap();
    let mood = tickstream_model::Channel::parse("sentiment").unwrap();
    rec.want_channel(candles.as_str(), true);
    sub.sync(candles.as_str()).await;
    wait_numsub(&server, "candles:1m:BTCUSDT", 1).await;

    bus.publish_event(&candles, r#"{"close":1.5}"#)
        .await
        .unwrap();
    bus.publish_event(&mood, r#"{"market_fear_greed":50}"#)
        .await
        .unwrap();
    wait_until(STEP, "the candle", || async {
        !rec.payloads("candles:1m:BTCUSDT").is_empty()
    })
    .await
    .unwrap();
    assert_eq!(
        rec.payloads("candles:1m:BTCUSDT"),
        vec![br#"{"close":1.5}"#.to_vec()]
    );
    assert!(
        rec.payloads("sentiment").is_empty(),
        "unwanted channel delivered"
    );

    let cached = bus
        .latest_channels(&[
            candles.clone(),
            mood,
            tickstream_model::Channel::parse("signals:BTCUSDT").unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(cached[0].as_deref(), Some(&br#"{"close":1.5}"#[..]));
    assert_eq!(
        cached[1].as_deref(),
        Some(&br#"{"market_fear_greed":50}"#[..])
    );
    assert_eq!(cached[2], None, "nothing published: pending");
    let mut c = server.client().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg("last:candles:1m:BTCUSDT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0, "cache key TTL {ttl}");

    rec.want_channel(candles.as_str(), false);
    sub.sync(candles.as_str()).await;
    wait_numsub(&server, "candles:1m:BTCUSDT", 0).await;
}

fn trade(symbol: &str, seq: u64) -> tickstream_model::Trade {
    tickstream_model::Trade {
        symbol: Symbol::parse(symbol).unwrap(),
        price: 50.0 + seq as f64,
        size: 0.5,
        side: Some(tickstream_model::Side::Sell),
        trade_id: Some(format!("t{seq}")),
        timestamp: chrono::Utc::now(),
        source: "test".to_owned(),
        seq,
    }
}

#[tokio::test]
async fn history_keeps_ticks_and_trades_by_seq_and_the_epoch_marks_lost_data() {
    let mut server = RedisServer::start().await.unwrap();
    let mut opts = RedisOptions::new(server.url());
    opts.history_len = 50;
    let bus = Redis::connect_lazy(opts).unwrap();
    let ticks_ch = tickstream_model::Channel::parse("ticks:BTCUSDT").unwrap();
    let trades_ch = tickstream_model::Channel::parse("trades:BTCUSDT").unwrap();

    let epoch = bus.epoch().await.unwrap();
    assert_eq!(bus.epoch().await.unwrap(), epoch, "created once");
    let ticks: Vec<Tick> = (1..=30).map(|s| tick("BTCUSDT", s)).collect();
    bus.publish(&ticks).await.unwrap();
    // A stale seq is refused everywhere, history included.
    bus.publish(&[tick("BTCUSDT", 12)]).await.unwrap();
    bus.publish_trades(&[trade("BTCUSDT", 1), trade("BTCUSDT", 2)])
        .await
        .unwrap();

    let page = bus.history(&ticks_ch, 10, 5).await.unwrap();
    assert_eq!(page.epoch, epoch, "the producer kept the existing epoch");
    let seqs: Vec<u64> = page.items.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [11, 12, 13, 14, 15], "in seq order, after `since`");
    let t = Tick::from_json(&page.items[1].1).unwrap();
    assert_eq!(
        (t.seq, t.price),
        (12, 112.0),
        "the original tick 12, not the stale one"
    );
    assert_eq!((page.oldest, page.newest), (Some(1), Some(30)));
    assert!(page.reaches(0) && page.reaches(30));

    let page = bus.history(&trades_ch, 0, 100).await.unwrap();
    let got: Vec<tickstream_model::Trade> = page
        .items
        .iter()
        .map(|(_, d)| tickstream_model::Trade::from_json(d).unwrap())
        .collect();
    let ids: Vec<(u64, Option<&str>)> =
        got.iter().map(|t| (t.seq, t.trade_id.as_deref())).collect();
    assert_eq!(ids, [(1, Some("t1")), (2, Some("t2"))]);
    let cached = bus
        .latest_channels(std::slice::from_ref(&trades_ch))
        .await
        .unwrap();
    let last = tickstream_model::Trade::from_json(cached[0].as_deref().unwrap()).unwrap();
    assert_eq!(last.seq, 2, "trades are cached under last:trades:");
    let btc = Symbol::parse("BTCUSDT").unwrap();
    let trade_seqs = bus
        .load_trade_seqs(&[btc.clone(), Symbol::parse("ETHUSDT").unwrap()])
        .await
        .unwrap();
    assert_eq!(
        trade_seqs,
        std::collections::HashMap::from([(btc.clone(), 2)]),
        "trade seqs are their own, apart from the ticks' (30 for BTCUSDT)"
    );
    assert_eq!(
        bus.load_seqs(&[btc]).await.unwrap().values().next(),
        Some(&30)
    );

    // Past the cap the oldest entries go (approximately: Redis trims whole nodes).
    let more: Vec<Tick> = (31..=600).map(|s| tick("BTCUSDT", s)).collect();
    bus.publish(&more).await.unwrap();
    let page = bus.history(&ticks_ch, 0, 10).await.unwrap();
    let oldest = page.oldest.unwrap();
    assert!(oldest > 1 && oldest < 600 - 49, "oldest kept {oldest}");
    assert!(
        !page.reaches(0),
        "seq 1 is gone: a client behind it cannot recover"
    );
    assert_eq!(page.items.first().map(|(s, _)| *s), Some(oldest));

    // Redis loses its data: the epoch changes.
    server.restart().await.unwrap();
    let renewed = tickstream_testkit::wait_for(STEP, "the epoch after the restart", || async {
        bus.epoch().await.ok()
    })
    .await
    .unwrap();
    assert_ne!(renewed, epoch, "a Redis restarted empty has a new epoch");
    let page = bus.history(&ticks_ch, 0, 10).await.unwrap();
    assert!(page.items.is_empty() && page.oldest.is_none());
}
