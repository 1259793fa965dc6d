//! The subscription engine: which local client wants which channel, and fan-out.
//!
//! One `Hub` serves every protocol and every stream kind. A message arriving
//! from Redis on a channel is validated once, wrapped in a [`Publication`],
//! and the same `Arc` is offered to every subscriber's [`Outlet`] (a bounded
//! queue that conflates to the newest item per channel when full), so a slow
//! client never blocks the Redis reader or anyone else, and fan-out allocates
//! nothing per receiver. Each protocol's bytes are encoded at most once per
//! publication, on first use, and shared. The hub is the source of truth the
//! Redis [`Subscriber`](tickstream_bus::Subscriber) reconciles against: a
//! channel is subscribed in Redis exactly while some local client wants it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tickstream_bus::ChannelHandler;
use tickstream_model::Channel;

use super::publication::{Outbound, Publication};
use super::queue::{Offer, Outlet};
use crate::metrics::GatewayMetrics;

/// Process-unique connection number.
pub type ClientId = u64;

/// Subscribers of one channel: a dense vector for fast fan-out plus an index for O(1) removal.
#[derive(Default)]
struct Subscribers {
    /// Walked on every publication.
    queues: Vec<(ClientId, Arc<Outlet>)>,
    /// Position of each client in `queues`.
    index: HashMap<ClientId, usize>,
    /// The newest seq dispatched on this channel (0: none yet, or a kind without seq).
    last_seq: AtomicU64,
    /// For an alias channel (`ticks:BTC`): the channel it is fed from (`ticks:BTCUSDT`).
    source: Option<Channel>,
}

/// The subscription table: channels as clients named them, and which aliases each Redis channel feeds.
#[derive(Default)]
struct Table {
    /// channel → its local subscribers (alias channels included, under the name clients used).
    channels: HashMap<Channel, Subscribers>,
    /// Redis channel → the alias channels it feeds (`ticks:BTCUSDT` → `[ticks:BTC]`).
    aliases: HashMap<Channel, Vec<Channel>>,
}

impl Table {
    /// Whether the gateway needs the Redis channel `name`: held directly, or as an alias's source.
    fn wants(&self, name: &str) -> bool {
        self.channels.get(name).is_some_and(|s| s.source.is_none())
            || self.aliases.contains_key(name)
    }
}

/// How far below the last seq a publication counts as already delivered (a
/// backfill overlapping the live stream, an out-of-order publisher) rather
/// than as a producer that started over after Redis lost its data.
const SEQ_REPLAY_WINDOW: u64 = tickstream_bus::subscriber::BACKFILL_MAX as u64;

impl Subscribers {
    /// Records `seq` as delivered; false when it was delivered already (or is older than what was).
    fn advance(&self, seq: u64) -> bool {
        if seq == 0 {
            return true;
        }
        // Only the Redis reader task dispatches, so load-then-store cannot race with itself.
        let last = self.last_seq.load(Ordering::Relaxed);
        if seq <= last && last - seq <= SEQ_REPLAY_WINDOW {
            return false;
        }
        self.last_seq.store(seq, Ordering::Relaxed);
        true
    }
}

impl Subscribers {
    fn insert(&mut self, id: ClientId, tx: &Arc<Outlet>) -> bool {
        if self.index.contains_key(&id) {
            return false;
        }
        self.index.insert(id, self.queues.len());
        self.queues.push((id, tx.clone()));
        true
    }

    fn remove(&mut self, id: ClientId) -> bool {
        let Some(pos) = self.index.remove(&id) else {
            return false;
        };
        self.queues.swap_remove(pos);
        if let Some((moved, _)) = self.queues.get(pos) {
            self.index.insert(*moved, pos);
        }
        true
    }
}

/// The subscription table plus fan-out.
pub struct Hub {
    /// Channels and aliases; read-locked per message, write-locked only on (un)subscribe.
    table: RwLock<Table>,
    /// Total client-channel pairs, for `/stats` without walking the table.
    subscriptions: AtomicI64,
    /// Source of connection ids.
    next_client: AtomicU64,
    /// Random per-process prefix so client ids differ across replicas and restarts.
    id_prefix: u32,
    /// Counters updated by fan-out.
    metrics: GatewayMetrics,
}

impl Hub {
    /// An empty hub reporting into `metrics`.
    pub fn new(metrics: GatewayMetrics) -> Self {
        Self {
            table: RwLock::new(Table::default()),
            subscriptions: AtomicI64::new(0),
            next_client: AtomicU64::new(1),
            id_prefix: rand::random(),
            metrics,
        }
    }

    /// A fresh connection id and its public string form (`connected.client_id`).
    pub fn new_client(&self) -> (ClientId, String) {
        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
        (n, format!("{:08x}-{n}", self.id_prefix))
    }

    /// Adds `client` to each channel; returns the Redis channels that had no local subscriber before.
    pub fn subscribe(
        &self,
        client: ClientId,
        tx: &Arc<Outlet>,
        channels: &[Channel],
    ) -> Vec<Channel> {
        let sourced: Vec<(Channel, Option<Channel>)> =
            channels.iter().map(|c| (c.clone(), None)).collect();
        self.subscribe_sourced(client, tx, &sourced)
    }

    /// Like [`Hub::subscribe`], where a channel may be an alias fed from another
    /// (`(ticks:BTC, Some(ticks:BTCUSDT))`): its subscribers get the source's
    /// publications with the symbol they asked for, re-encoded once per
    /// publication and alias, not per client. Returns the Redis channels newly
    /// needed (sources, never alias names).
    pub fn subscribe_sourced(
        &self,
        client: ClientId,
        tx: &Arc<Outlet>,
        channels: &[(Channel, Option<Channel>)],
    ) -> Vec<Channel> {
        let mut first = Vec::new();
        let Ok(mut table) = self.table.write() else {
            return first;
        };
        let mut added = 0;
        for (ch, source) in channels {
            let redis = source.as_ref().unwrap_or(ch);
            let wanted_before = table.wants(redis.as_str());
            let entry = table
                .channels
                .entry(ch.clone())
                .or_insert_with(|| Subscribers {
                    source: source.clone(),
                    ..Subscribers::default()
                });
            if entry.insert(client, tx) {
                added += 1;
            }
            if let Some(source) = source {
                let fed = table.aliases.entry(source.clone()).or_default();
                if !fed.contains(ch) {
                    fed.push(ch.clone());
                }
            }
            if !wanted_before && table.wants(redis.as_str()) && !first.contains(redis) {
                first.push(redis.clone());
            }
        }
        self.set_active(&table);
        drop(table);
        let total = self.subscriptions.fetch_add(added, Ordering::Relaxed) + added;
        self.metrics.subscriptions.set(total);
        first
    }

    /// Removes `client` from each channel; returns the Redis channels nobody local needs any more.
    pub fn unsubscribe<'a>(
        &self,
        client: ClientId,
        channels: impl IntoIterator<Item = &'a Channel>,
    ) -> Vec<Channel> {
        let mut emptied = Vec::new();
        let Ok(mut table) = self.table.write() else {
            return emptied;
        };
        let mut removed = 0;
        for ch in channels {
            let Some(entry) = table.channels.get_mut(ch.as_str()) else {
                continue;
            };
            let redis = entry.source.clone().unwrap_or_else(|| ch.clone());
            let wanted_before = table.wants(redis.as_str());
            let Some(entry) = table.channels.get_mut(ch.as_str()) else {
                continue;
            };
            if entry.remove(client) {
                removed += 1;
            }
            if entry.queues.is_empty() {
                let source = entry.source.clone();
                table.channels.remove(ch.as_str());
                if let Some(source) = source {
                    if let Some(fed) = table.aliases.get_mut(source.as_str()) {
                        fed.retain(|a| a != ch);
                        if fed.is_empty() {
                            table.aliases.remove(source.as_str());
                        }
                    }
                }
            }
            if wanted_before && !table.wants(redis.as_str()) && !emptied.contains(&redis) {
                emptied.push(redis);
            }
        }
        self.set_active(&table);
        drop(table);
        let total = self.subscriptions.fetch_sub(removed, Ordering::Relaxed) - removed;
        self.metrics.subscriptions.set(total);
        emptied
    }

    /// Updates the active channel and symbol gauges after a table change.
    fn set_active(&self, table: &Table) {
        self.metrics
            .active_channels
            .set(table.channels.len() as i64);
        let ticks = table.channels.keys().filter(|c| c.is_ticks()).count();
        self.metrics.active_symbols.set(ticks as i64);
    }

    /// Client-channel pairs currently held.
    pub fn total_subscriptions(&self) -> i64 {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// Each active channel with its local subscriber count, sorted by channel.
    pub fn subscriptions_by_channel(&self) -> Vec<(Channel, usize)> {
        let mut out: Vec<(Channel, usize)> = match self.table.read() {
            Ok(t) => t
                .channels
                .iter()
                .map(|(c, subs)| (c.clone(), subs.queues.len()))
                .collect(),
            Err(_) => Vec::new(),
        };
        out.sort();
        out
    }

    /// Offers one publication to every subscriber of its channel without waiting for anyone,
    /// unless its seq shows the channel's subscribers have it already.
    pub fn dispatch(&self, frame: Outbound) {
        let (mut sent, mut conflated, mut full) = (0u64, 0u64, 0u64);
        if let Ok(table) = self.table.read() {
            if let Some(subs) = table.channels.get(frame.channel.as_str()) {
                if !subs.advance(frame.seq) {
                    self.metrics.messages_stale.inc();
                    return;
                }
                for (_, outlet) in &subs.queues {
                    match outlet.offer(&frame) {
                        Offer::Delivered => sent += 1,
                        // Queue full: kept as this client's newest pending item of the channel, an older one superseded.
                        Offer::Conflated => {
                            sent += 1;
                            conflated += 1;
                        }
                        // Being disconnected as a slow consumer: dropped for it only.
                        Offer::Dropped => full += 1,
                        // Connection is closing; its cleanup removes it from the table.
                        Offer::Closed => {}
                    }
                }
            }
        }
        if sent > 0 {
            self.metrics.messages_sent.inc_by(sent);
        }
        if conflated > 0 {
            self.metrics.dropped_conflated.inc_by(conflated);
        }
        if full > 0 {
            self.metrics.dropped_queue_full.inc_by(full);
        }
    }

    /// Who needs a Redis message on `name`: the channel itself if held directly, and the aliases it feeds.
    fn receivers(&self, name: &str) -> (Option<Channel>, Vec<Channel>) {
        let Ok(table) = self.table.read() else {
            return (None, Vec::new());
        };
        let direct = table
            .channels
            .get_key_value(name)
            .filter(|(_, s)| s.source.is_none())
            .map(|(c, _)| c.clone());
        let aliases = if table.aliases.is_empty() {
            Vec::new()
        } else {
            table.aliases.get(name).cloned().unwrap_or_default()
        };
        (direct, aliases)
    }
}

impl ChannelHandler for Hub {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        // Messages for channels nobody here holds any more (an unsubscribe in flight) cost no parsing.
        let (direct, aliases) = self.receivers(channel);
        let source = match (&direct, aliases.is_empty()) {
            (Some(c), _) => c.clone(),
            (None, false) => match Channel::parse(channel) {
                Ok(c) => c,
                Err(_) => return,
            },
            (None, true) => return,
        };
        let (publication, timestamp) = match Publication::decode_timed(&source, payload) {
            Ok(p) => p,
            Err(e) => {
                self.metrics.invalid(&source).inc();
                tracing::debug!(channel = %source, error = %e, "Invalid message skipped.");
                return;
            }
        };
        self.metrics.received(&source).inc();
        if let Some(Ok(age)) = timestamp.map(|t| (chrono::Utc::now() - t).to_std()) {
            self.metrics.tick_latency.observe(age.as_secs_f64());
        }
        for alias in &aliases {
            if let Some(renamed) = publication.renamed(alias) {
                self.dispatch(Arc::new(renamed));
            }
        }
        if direct.is_some() {
            self.dispatch(Arc::new(publication));
        }
    }

    fn wants(&self, channel: &str) -> bool {
        self.table.read().map(|t| t.wants(channel)).unwrap_or(false)
    }

    fn wanted(&self) -> Vec<String> {
        self.table
            .read()
            .map(|t| {
                t.channels
                    .iter()
                    .filter(|(_, s)| s.source.is_none())
                    .map(|(c, _)| c)
                    .chain(t.aliases.keys())
                    .map(|c| c.as_str().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn last_seq(&self, channel: &str) -> Option<u64> {
        let table = self.table.read().ok()?;
        let direct = table
            .channels
            .get(channel)
            .map(|s| s.last_seq.load(Ordering::Relaxed));
        // Aliases fed from `channel` track the same seqs; the lowest is where a backfill starts.
        let aliased = table
            .aliases
            .get(channel)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                table
                    .channels
                    .get(a.as_str())
                    .map(|s| s.last_seq.load(Ordering::Relaxed))
            });
        let seq = direct.into_iter().chain(aliased).filter(|s| *s > 0).min()?;
        Some(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `ticks:` channel of a symbol.
    fn sym(s: &str) -> Channel {
        Channel::parse(&format!("ticks:{s}")).unwrap()
    }

    fn tick(s: &str, seq: u64) -> Vec<u8> {
        format!(r#"{{"symbol":"{s}","price":1.5,"timestamp":"2025-11-01T10:30:00.000Z","source":"sim","seq":{seq}}}"#).into_bytes()
    }

    #[test]
    fn first_and_last_subscriber_are_reported() {
        let hub = Hub::new(GatewayMetrics::new());
        let (tx1, _rx1) = Outlet::new(4);
        let (tx2, _rx2) = Outlet::new(4);
        assert_eq!(
            hub.subscribe(1, &tx1, &[sym("A"), sym("B")]),
            vec![sym("A"), sym("B")]
        );
        assert_eq!(hub.subscribe(2, &tx2, &[sym("A")]), Vec::<Channel>::new());
        assert_eq!(
            hub.subscribe(2, &tx2, &[sym("A")]),
            Vec::<Channel>::new(),
            "idempotent"
        );
        assert_eq!(hub.total_subscriptions(), 3);
        assert!(hub.wants("ticks:A") && hub.wants("ticks:B") && !hub.wants("ticks:C"));
        assert_eq!(hub.unsubscribe(1, &[sym("A")]), Vec::<Channel>::new());
        assert_eq!(hub.unsubscribe(2, &[sym("A")]), vec![sym("A")]);
        assert_eq!(hub.unsubscribe(1, &[sym("B"), sym("Z")]), vec![sym("B")]);
        assert_eq!(hub.total_subscriptions(), 0);
        assert!(hub.wanted().is_empty());
    }

    #[test]
    fn fan_out_shares_one_frame_and_respects_bounds() {
        let metrics = GatewayMetrics::new();
        let hub = Hub::new(metrics.clone());
        let (tx1, mut rx1) = Outlet::new(8);
        let (tx2, mut rx2) = Outlet::new(1);
        let (tx3, mut rx3) = Outlet::new(8);
        hub.subscribe(1, &tx1, &[sym("BTCUSDT")]);
        hub.subscribe(2, &tx2, &[sym("BTCUSDT")]);
        hub.subscribe(3, &tx3, &[sym("ETHUSDT")]);
        hub.on_message("ticks:BTCUSDT", &tick("BTCUSDT", 1));
        hub.on_message("ticks:BTCUSDT", &tick("BTCUSDT", 2));
        let a = rx1.try_recv().unwrap();
        let b = rx2.try_recv().unwrap();
        assert!(
            std::sync::Arc::ptr_eq(&a, &b),
            "one encoding shared by receivers"
        );
        assert!(a
            .native()
            .starts_with(r#"{"event":"price_update","data":{"symbol":"BTCUSDT""#));
        assert!(
            std::ptr::eq(a.socketio(), b.socketio()),
            "one Socket.IO encoding too"
        );
        assert!(
            std::ptr::eq(a.socketio_ws(), b.socketio_ws()),
            "and one Socket.IO WebSocket frame"
        );
        let mut ws_frame = actix_web::web::BytesMut::from(&a.socketio_ws()[..]);
        let mut parser = actix_http::ws::Codec::new().client_mode();
        match actix_codec::Decoder::decode(&mut parser, &mut ws_frame).unwrap() {
            Some(actix_http::ws::Frame::Text(payload)) => {
                assert_eq!(&payload[..], a.socketio().as_bytes());
            }
            other => panic!("not one text frame: {other:?}"),
        }
        assert!(ws_frame.is_empty(), "exactly one frame");
        let sio: &str = a.socketio();
        assert!(
            sio.starts_with(r#"42["price_update",{"symbol":"BTCUSDT""#),
            "{sio}"
        );
        let v: serde_json::Value = serde_json::from_str(&sio[2..]).unwrap();
        let native: serde_json::Value = serde_json::from_str(a.native()).unwrap();
        assert_eq!(v[1], native["data"], "same tick in both protocols");
        assert_eq!(rx1.try_recv().unwrap().seq, 2);
        assert!(
            rx2.try_recv().is_none(),
            "the overflow waits in the conflation slot, not the queue"
        );
        let mut pending = Vec::new();
        assert!(tx2.take_pending(&rx2, &mut pending));
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].seq, 2);
        assert!(rx3.try_recv().is_none(), "other symbol not delivered");
        assert_eq!(metrics.messages_sent.get(), 4);
        assert_eq!(metrics.dropped.with_label_values(&["queue_full"]).get(), 0);
        assert_eq!(metrics.dropped.with_label_values(&["conflated"]).get(), 0);
    }

    #[test]
    fn every_kind_fans_out_with_its_event_in_both_protocols() {
        let metrics = GatewayMetrics::new();
        let hub = Hub::new(metrics.clone());
        let (tx, mut rx) = Outlet::new(16);
        let cases = [
            (
                "trades:BTCUSDT",
                "trade",
                r#"{"symbol":"BTCUSDT","price":1.5,"size":2,"seq":7}"#,
                7,
            ),
            (
                "candles:1m:BTCUSDT",
                "candle",
                r#"{"symbol":"BTCUSDT","interval":"1m","close":1.5}"#,
                0,
            ),
            (
                "signals:BTCUSDT",
                "trading_signal",
                r#"{"symbol":"BTCUSDT","signal":"BUY"}"#,
                0,
            ),
            (
                "sentiment",
                "sentiment_update",
                r#"{"market_fear_greed":55}"#,
                0,
            ),
            (
                "feeds",
                "feed_status",
                r#"{"name":"sim","status":"healthy"}"#,
                0,
            ),
        ];
        let channels: Vec<Channel> = cases.iter().map(|c| Channel::parse(c.0).unwrap()).collect();
        hub.subscribe(1, &tx, &channels);
        assert_eq!(
            hub.wanted().len(),
            cases.len(),
            "the subscriber is asked for every channel by name"
        );
        for (channel, event, payload, seq) in cases {
            hub.on_message(channel, payload.as_bytes());
            let got = rx
                .try_recv()
                .unwrap_or_else(|| panic!("{channel} not delivered"));
            assert_eq!(got.channel.as_str(), channel);
            assert_eq!(got.seq, seq);
            let native: serde_json::Value = serde_json::from_str(got.native()).unwrap();
            let data: serde_json::Value = serde_json::from_str(payload).unwrap();
            assert_eq!(native, serde_json::json!({"event": event, "data": data}));
            let sio: &str = got.socketio();
            let sio: serde_json::Value =
                serde_json::from_str(sio.strip_prefix("42").unwrap()).unwrap();
            assert_eq!(sio, serde_json::json!([event, data]));
        }
        hub.on_message("trades:ETHUSDT", br#"{"symbol":"ETHUSDT"}"#);
        assert!(
            rx.try_recv().is_none(),
            "a channel nobody holds is not parsed or delivered"
        );
        assert_eq!(
            metrics
                .messages_received
                .with_label_values(&["trades"])
                .get(),
            1
        );
    }

    #[test]
    fn invalid_messages_of_other_kinds_are_counted_and_skipped() {
        let metrics = GatewayMetrics::new();
        let hub = Hub::new(metrics.clone());
        let (tx, mut rx) = Outlet::new(8);
        hub.subscribe(1, &tx, &[Channel::parse("sentiment").unwrap()]);
        for bad in [
            &b"garbage"[..],
            b"[1,2]",
            b"\"text\"",
            b"{\"seq\":\"x\"}",
            b"{\"a\":",
            b"\xff\xfe",
        ] {
            hub.on_message("sentiment", bad);
        }
        assert!(rx.try_recv().is_none());
        assert_eq!(
            metrics
                .messages_invalid
                .with_label_values(&["sentiment"])
                .get(),
            6
        );
        assert_eq!(metrics.ticks_invalid.get(), 0);
    }

    #[test]
    fn invalid_and_mismatched_ticks_are_counted_and_skipped() {
        let metrics = GatewayMetrics::new();
        let hub = Hub::new(metrics.clone());
        let (tx, mut rx) = Outlet::new(8);
        hub.subscribe(1, &tx, &[sym("AAPL")]);
        hub.on_message("ticks:AAPL", b"garbage");
        hub.on_message("ticks:AAPL", &tick("MSFT", 1));
        hub.on_message("ticks:AAPL", br#"{"symbol":"AAPL","price":-1,"timestamp":"2025-11-01T10:30:00Z","source":"sim","seq":1}"#);
        assert!(rx.try_recv().is_none());
        assert_eq!(metrics.ticks_invalid.get(), 3);
        assert_eq!(metrics.ticks_received.get(), 0);
    }
}
